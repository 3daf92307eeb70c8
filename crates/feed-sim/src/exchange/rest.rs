//! The REST side of a fake exchange whose first answers are scripted faults
//! ([`FakeExchangeOptions::rest_faults`](super::FakeExchangeOptions::rest_faults)): an error
//! status, or a body cut short by a close or by silence. Faults that need a `Content-Length` the
//! body does not honour cannot be expressed as an [`crate::https::Response`], hence this small
//! server of its own; after its script it answers exactly like the fixture routes.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::RestRoutes;
use crate::ca::TestCa;
use crate::https::Request;
use crate::server::ServerTask;
use crate::wire::{self, MAX_BODY, MAX_HEAD, ReadHeadError};

/// A scripted misbehaviour of a fake exchange's REST API, answered instead of the fixture body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestFault {
    /// Answer `status` (e.g. 429, 500, 503) with a short JSON error body, and `Retry-After: N`
    /// when `retry_after` is `Some(N)`; the connection stays open for the next request.
    Status {
        /// The status code.
        status: u16,
        /// Seconds for a `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// Answer `200` with the `Content-Length` of the whole fixture body, send only its first
    /// half, then close the connection (TLS close_notify, then FIN): a truncated body.
    CloseMidBody,
    /// Answer `200` with the whole body's `Content-Length`, send its first half, then nothing
    /// more and close nothing, as if the exchange had vanished without FIN or RST; the client's
    /// bytes are read and dropped until it closes.
    StallMidBody,
}

/// The JSON error body of a [`RestFault::Status`] answer.
pub(crate) const FAULT_BODY: &str = r#"{"code":-1,"msg":"feed-sim: scripted fault"}"#;

/// The header of every JSON body (fixtures and fault answers), as the fixture routes send it.
fn json() -> (&'static str, String) {
    ("Content-Type", "application/json".to_owned())
}

struct Shared {
    routes: RestRoutes,
    faults: Vec<RestFault>,
    /// Requests answered so far, over every path and connection.
    answered: AtomicUsize,
    connections: AtomicU64,
    log: Mutex<Vec<Request>>,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Vec<Request>> {
        // A panicking test thread must not hide the log from the others.
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An HTTPS server answering `faults` in turn, then the fixture `routes`.
pub(crate) struct ScriptedRest {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: ServerTask,
}

impl ScriptedRest {
    /// Binds `bind` (loopback, checked by the caller) with a certificate from `ca`.
    pub(crate) async fn start(
        bind: SocketAddr,
        ca: &TestCa,
        routes: RestRoutes,
        faults: Vec<RestFault>,
    ) -> io::Result<Self> {
        let acceptor = TlsAcceptor::from(ca.server_config(&["localhost", "127.0.0.1", "::1"]));
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes,
            faults,
            answered: AtomicUsize::new(0),
            connections: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            task: ServerTask::new(task),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.shared.log().clone()
    }

    pub(crate) async fn shutdown(&mut self) {
        self.task.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            // Transient accept errors (e.g. too many open files): back off, keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let number = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                // A client that breaks off is its own business; the log has what arrived.
                let _ = serve(tls, peer, number, &shared).await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// What to send for one request.
enum Answer {
    Whole {
        status: u16,
        extra: Vec<(&'static str, String)>,
        body: &'static str,
    },
    Cut {
        body: &'static str,
        stall: bool,
    },
}

impl Shared {
    fn answer(&self, method: &str, target: &str) -> Answer {
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let body = self
            .routes
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, body)| *body);
        let turn = self.answered.fetch_add(1, Ordering::SeqCst);
        match self.faults.get(turn) {
            Some(RestFault::Status {
                status,
                retry_after,
            }) => Answer::Whole {
                status: *status,
                extra: std::iter::once(json())
                    .chain(retry_after.map(|s| ("Retry-After", s.to_string())))
                    .collect(),
                body: FAULT_BODY,
            },
            Some(fault @ (RestFault::CloseMidBody | RestFault::StallMidBody)) => Answer::Cut {
                // Any path gets a fixture body to cut, so the fault shows whatever is asked.
                body: body
                    .or_else(|| self.routes.first().map(|(_, b)| *b))
                    .unwrap_or(FAULT_BODY),
                stall: *fault == RestFault::StallMidBody,
            },
            None if !matches!(method, "GET" | "POST" | "DELETE") => Answer::Whole {
                status: 405,
                extra: Vec::new(),
                body: "feed-sim: method not allowed",
            },
            None => match body {
                Some(body) => Answer::Whole {
                    status: 200,
                    extra: vec![json()],
                    body,
                },
                None => Answer::Whole {
                    status: 404,
                    extra: Vec::new(),
                    body: "feed-sim: no route",
                },
            },
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    connection: u64,
    shared: &Shared,
) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let raw = match wire::read_head(&mut stream, &mut buf, MAX_HEAD).await {
            Ok(Some(raw)) => raw,
            Ok(None) => return Ok(()),
            Err(ReadHeadError::TooLarge) => {
                return reply_and_close(&mut stream, 431, "head too large").await;
            }
            Err(ReadHeadError::Io(e)) => return Err(e),
        };
        let head = match wire::parse_head(&raw) {
            Ok(head) => head,
            Err(why) => return reply_and_close(&mut stream, 400, why).await,
        };
        if head.header("Transfer-Encoding").is_some() {
            return reply_and_close(&mut stream, 501, "no chunked bodies").await;
        }
        let len = match head.header("Content-Length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(len)) if len <= MAX_BODY => len,
            Some(Ok(_)) => return reply_and_close(&mut stream, 413, "body too large").await,
            Some(Err(_)) => return reply_and_close(&mut stream, 400, "bad Content-Length").await,
        };
        let body = wire::read_exact_body(&mut stream, &mut buf, len).await?;
        let close = head
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let answer = shared.answer(&head.method, &head.target);
        shared.log().push(Request {
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
            peer,
            connection,
        });
        match answer {
            Answer::Whole {
                status,
                extra,
                body,
            } => {
                let out = response_head(status, &extra, body.len(), close);
                stream
                    .write_all(&[out.as_bytes(), body.as_bytes()].concat())
                    .await?;
                stream.flush().await?;
                if close {
                    return stream.shutdown().await;
                }
            }
            Answer::Cut { body, stall } => {
                let half = &body.as_bytes()[..body.len() / 2];
                let out = response_head(200, &[json()], body.len(), close);
                stream.write_all(&[out.as_bytes(), half].concat()).await?;
                stream.flush().await?;
                if !stall {
                    return stream.shutdown().await;
                }
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return Ok(());
            }
        }
    }
}

fn response_head(
    status: u16,
    extra: &[(&'static str, String)],
    content_length: usize,
    close: bool,
) -> String {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", wire::reason(status));
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {content_length}\r\n"));
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out
}

async fn reply_and_close<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    body: &str,
) -> io::Result<()> {
    let out = response_head(status, &[], body.len(), true);
    stream
        .write_all(&[out.as_bytes(), body.as_bytes()].concat())
        .await?;
    stream.flush().await?;
    stream.shutdown().await
}
