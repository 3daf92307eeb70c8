//! A minimal keep-alive HTTP/1.1 server over TLS on loopback: fixed responses per path, and a log
//! of every request it received.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::server::ServerTask;
use tokio_rustls::TlsAcceptor;

use crate::ca::TestCa;
use crate::wire::{self, MAX_BODY, MAX_HEAD, ReadHeadError};

/// A fixed response: status, extra headers and body. `Content-Length` is added by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Header lines sent after the status line, in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Send only part of the body (a fault); `None`: the whole body.
    pub cut: Option<BodyCut>,
}

/// A body cut short: the `Content-Length` of the whole body is announced, its first half sent,
/// then the connection is ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCut {
    /// ... closed (TLS close_notify, then FIN): a truncated body.
    Close,
    /// ... left open and silent (the client's bytes are read and dropped until it closes), as if
    /// the server had vanished without FIN or RST.
    Stall,
}

/// What one of the first requests gets instead of its route's answer ([`Routes::overrides`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Override {
    /// This response.
    Replace(Response),
    /// The route's own answer with its body cut short.
    Cut(BodyCut),
}

impl Response {
    /// A response with `status` and `body` and no extra headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            cut: None,
        }
    }

    /// A 200 response with `Content-Type: application/json`.
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, body).with_header("Content-Type", "application/json")
    }

    /// Adds a header line.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Responses by request path (without the query), for any of GET, POST and DELETE. Unknown paths
/// get 404. A path given a [`Routes::sequence`] answers its responses in turn, then repeats the
/// last. [`Routes::overrides`] change the first answers whatever their path.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    by_path: HashMap<String, Vec<Response>>,
    /// Requests answered so far per path (shared by clones, so a server's copy counts).
    hits: Arc<Mutex<HashMap<String, usize>>>,
    overrides: Vec<Override>,
    /// Requests answered so far over every path (shared by clones).
    answered: Arc<AtomicUsize>,
}

impl Routes {
    /// No routes: every request gets 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `path` with `response`.
    #[must_use]
    pub fn route(self, path: impl Into<String>, response: Response) -> Self {
        self.sequence(path, vec![response])
    }

    /// Answers the requests to `path` with `responses` in order (e.g. a 429, then a 200); once
    /// they are used up, the last one again. An empty list means 404.
    #[must_use]
    pub fn sequence(mut self, path: impl Into<String>, responses: Vec<Response>) -> Self {
        self.by_path.insert(path.into(), responses);
        self
    }

    /// The first requests, over every path and connection, get `overrides` in turn instead of
    /// their route's answer (e.g. a 429, then a body cut short); later ones, their route's.
    #[must_use]
    pub fn overrides(mut self, overrides: Vec<Override>) -> Self {
        self.overrides = overrides;
        self
    }

    fn answer(&self, method: &str, target: &str) -> Response {
        let routed = self.route_answer(method, target);
        let turn = self.answered.fetch_add(1, Ordering::SeqCst);
        match self.overrides.get(turn) {
            Some(Override::Replace(response)) => response.clone(),
            Some(Override::Cut(cut)) => Response {
                cut: Some(*cut),
                ..routed
            },
            None => routed,
        }
    }

    fn route_answer(&self, method: &str, target: &str) -> Response {
        if !matches!(method, "GET" | "POST" | "DELETE") {
            return Response::new(405, "feed-sim: method not allowed");
        }
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let Some(responses) = self.by_path.get(path).filter(|r| !r.is_empty()) else {
            return Response::new(404, "feed-sim: no route");
        };
        let mut hits = self
            .hits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let hit = hits.entry(path.to_owned()).or_insert(0);
        let index = (*hit).min(responses.len() - 1);
        *hit += 1;
        responses[index].clone()
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method, e.g. "GET".
    pub method: String,
    /// Request target as sent: path and query.
    pub target: String,
    /// Headers in order, values trimmed.
    pub headers: Vec<(String, String)>,
    /// Body bytes (from `Content-Length`).
    pub body: Vec<u8>,
    /// The TCP peer (a proxy's outgoing address when the request came through one).
    pub peer: SocketAddr,
    /// Which accepted connection carried it, counting from 1.
    pub connection: u64,
}

impl Request {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }
}

struct Shared {
    routes: Routes,
    log: Mutex<Vec<Request>>,
    connections: AtomicU64,
}

impl Shared {
    fn log(&self) -> MutexGuard<'_, Vec<Request>> {
        // A panicking test thread must not hide the log from the others.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An HTTPS server on loopback. Stops (closes its port and every connection) when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: ServerTask,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Starts on 127.0.0.1 with an ephemeral port, presenting a certificate from `ca` for
    /// "localhost", "127.0.0.1" and "::1".
    pub async fn start(ca: &TestCa, routes: Routes) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), ca, routes).await
    }

    /// Starts on `bind`, which must be a loopback address (e.g. `[::1]:0`).
    pub async fn start_on(bind: SocketAddr, ca: &TestCa, routes: Routes) -> io::Result<Self> {
        if !bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("feed-sim binds loopback only, not {bind}"),
            ));
        }
        let acceptor = TlsAcceptor::from(ca.server_config(&["localhost", "127.0.0.1", "::1"]));
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            routes,
            log: Mutex::new(Vec::new()),
            connections: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            task: ServerTask::new(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port, for `CONNECT 127.0.0.1:PORT` and URLs.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.log().clone()
    }

    /// TCP connections accepted so far (including ones whose TLS handshake failed).
    pub fn connection_count(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Stops accepting and closes every connection; returns once the port is released. The
    /// request log stays readable.
    pub async fn shutdown(&mut self) {
        self.task.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            // Transient accept errors (e.g. too many open files): back off, keep serving.
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let number = shared.connections.fetch_add(1, Ordering::SeqCst) + 1;
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = serve(tls, peer, number, &shared).await;
            }
        });
        while connections.try_join_next().is_some() {}
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
                return reply_and_close(&mut stream, Response::new(431, "head too large")).await;
            }
            Err(ReadHeadError::Io(e)) => return Err(e),
        };
        let head = match wire::parse_head(&raw) {
            Ok(head) => head,
            Err(why) => return reply_and_close(&mut stream, Response::new(400, why)).await,
        };
        if head.header("Transfer-Encoding").is_some() {
            return reply_and_close(&mut stream, Response::new(501, "no chunked bodies")).await;
        }
        let len = match head.header("Content-Length").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(len)) if len <= MAX_BODY => len,
            Some(Ok(_)) => {
                return reply_and_close(&mut stream, Response::new(413, "body too large")).await;
            }
            Some(Err(_)) => {
                return reply_and_close(&mut stream, Response::new(400, "bad Content-Length"))
                    .await;
            }
        };
        let body = wire::read_exact_body(&mut stream, &mut buf, len).await?;
        let close = head
            .header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let response = shared.routes.answer(&head.method, &head.target);
        shared.log().push(Request {
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
            peer,
            connection,
        });
        write_response(&mut stream, &response, close).await?;
        match response.cut {
            Some(BodyCut::Close) => return stream.shutdown().await,
            Some(BodyCut::Stall) => {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return Ok(());
            }
            None if close => return stream.shutdown().await,
            None => {}
        }
    }
}

async fn reply_and_close<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: Response,
) -> io::Result<()> {
    write_response(stream, &response, true).await?;
    stream.shutdown().await
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
    close: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        response.status,
        wire::reason(response.status)
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    let sent = match response.cut {
        Some(_) => &response.body[..response.body.len() / 2],
        None => &response.body[..],
    };
    bytes.extend_from_slice(sent);
    stream.write_all(&bytes).await?;
    stream.flush().await
}
