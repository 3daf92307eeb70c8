//! The exchange side of the load and slow-consumer scenarios: a WSS server on 127.0.0.1 that,
//! for a request to `/CONN/COUNT/SIZE`, answers the upgrade, waits for the client's first text
//! frame ("go"), then sends COUNT text messages numbered 0..COUNT as fast as the socket takes
//! them, then a close frame (1000). Message `n` reads `CONN:n:` padded with `.` to SIZE bytes,
//! so a client can tell a message of another connection from its own.
//!
//! Frames are written in batches of about 64 KiB with `write_all`: when the client stops
//! reading, the socket fills and the writer waits, so nothing queues in this process. The
//! server records each client's address (to prove the connection came from the proxy) and
//! when each connection's last message was written (to show that a slow reader held it back).

use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

const MAX_HEAD: usize = 16 * 1024;
/// About this many bytes of frames per write.
const BATCH: usize = 64 * 1024;
/// How long the server waits for the client to go away after its close frame.
const LINGER: Duration = Duration::from_secs(10);
/// Close frame, status 1000.
const CLOSE_1000: [u8; 4] = [0x88, 0x02, 0x03, 0xE8];

/// What the server saw, shared with its connection tasks.
#[derive(Debug, Default)]
struct Seen {
    /// Each accepted client's address, in accept order.
    peers: Vec<SocketAddr>,
    /// When each connection finished writing its last message.
    finished: Vec<Instant>,
    /// Connections that ended with an error before their last message went out.
    errors: Vec<String>,
}

/// A running numbered-message server; stops (and drops every connection) on drop.
pub(crate) struct NumberedServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for NumberedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NumberedServer {
    /// Binds 127.0.0.1:0 and serves every connection with `config`.
    pub(crate) async fn start(config: Arc<ServerConfig>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&seen)));
        Ok(Self { addr, seen, task })
    }

    #[cfg_attr(
        not(feature = "socks"),
        expect(dead_code, reason = "only the SOCKS load scenarios use it")
    )]
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `wss://127.0.0.1:PORT/CONN/COUNT/SIZE`.
    pub(crate) fn url(&self, conn: usize, count: u64, size: usize) -> String {
        format!("wss://{}/{conn}/{count}/{size}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A panicking connection task must not hide what the others recorded.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every client address seen so far.
    pub(crate) fn peers(&self) -> Vec<SocketAddr> {
        self.lock().peers.clone()
    }

    /// When the latest connection finished writing, if any has.
    pub(crate) fn last_finished(&self) -> Option<Instant> {
        self.lock().finished.iter().max().copied()
    }

    /// Server-side errors, for a failing scenario's detail.
    pub(crate) fn errors(&self) -> Vec<String> {
        self.lock().errors.clone()
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, seen: Arc<Mutex<Seen>>) {
    // Connection tasks live in this set: aborting the accept task drops them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    seen.lock().unwrap_or_else(PoisonError::into_inner).peers.push(peer);
                    let (acceptor, seen) = (acceptor.clone(), Arc::clone(&seen));
                    connections.spawn(async move {
                        let result = serve(tcp, acceptor, &seen).await;
                        if let Err(error) = result {
                            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                            seen.errors.push(format!("{peer}: {error}"));
                        }
                    });
                }
                // e.g. too many open files: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What a client asked for in its request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) conn: u64,
    pub(crate) count: u64,
    pub(crate) size: usize,
}

/// `/CONN/COUNT/SIZE` from the request line.
pub(crate) fn parse_target(request_line: &str) -> Option<Ask> {
    let target = request_line.split(' ').nth(1)?;
    let mut parts = target.strip_prefix('/')?.split('/');
    let ask = Ask {
        conn: parts.next()?.parse().ok()?,
        count: parts.next()?.parse().ok()?,
        size: parts.next()?.parse().ok()?,
    };
    parts.next().is_none().then_some(ask)
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, seen: &Mutex<Seen>) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut tls = acceptor.accept(tcp).await?;
    let mut buf = Vec::with_capacity(1024);
    let head_len = loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::other("oversized upgrade request"));
        }
        if !read_more(&mut tls, &mut buf).await? {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let ask = head
        .lines()
        .next()
        .and_then(parse_target)
        .ok_or_else(|| io::Error::other("request target is not /CONN/COUNT/SIZE"))?;
    let key = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| io::Error::other("no Sec-WebSocket-Key"))?;
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        feed_sim::wss::accept_key(&key)
    );
    tls.write_all(answer.as_bytes()).await?;
    tls.flush().await?;

    // The client's first frame ("go"): masked, so 2 header bytes, 4 mask bytes, the payload.
    buf.drain(..head_len);
    while buf.len() < 2 || buf.len() < 6 + usize::from(buf[1] & 0x7F) {
        if !read_more(&mut tls, &mut buf).await? {
            return Ok(());
        }
    }

    let mut batch = Vec::with_capacity(BATCH + ask.size + 16);
    let mut payload = Vec::with_capacity(ask.size.max(32));
    for seq in 0..ask.count {
        payload.clear();
        write!(payload, "{}:{seq}:", ask.conn)?;
        if payload.len() < ask.size {
            payload.resize(ask.size, b'.');
        }
        push_text_frame(&mut batch, &payload);
        if batch.len() >= BATCH {
            tls.write_all(&batch).await?;
            batch.clear();
        }
    }
    batch.extend_from_slice(&CLOSE_1000);
    tls.write_all(&batch).await?;
    tls.flush().await?;
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .finished
        .push(Instant::now());
    // Until the client answers the close and goes away; a client that does not is dropped.
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}

/// Appends what one read gives; `false` at end of stream.
async fn read_more<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<bool> {
    let mut chunk = [0u8; 2048];
    let n = reader.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// An unmasked, final text frame.
fn push_text_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The connection tag and number of a message, if it is one of this server's.
pub(crate) fn parse_message(payload: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(3, ':');
    let conn = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let padding = parts.next()?;
    padding.bytes().all(|b| b == b'.').then_some((conn, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_targets() {
        let ask = |conn, count, size| Some(Ask { conn, count, size });
        let cases = [
            ("GET /3/1000/64 HTTP/1.1", ask(3, 1000, 64)),
            ("GET /0/0/0 HTTP/1.1", ask(0, 0, 0)),
            ("GET /3/1000 HTTP/1.1", None),
            ("GET /3/1000/64/9 HTTP/1.1", None),
            ("GET /a/1/1 HTTP/1.1", None),
            ("GET 3/1/1 HTTP/1.1", None),
            ("GET", None),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_target(line), expected, "{line}");
        }
    }

    #[test]
    fn frames_and_messages_round_trip() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536] {
            let mut frame = Vec::new();
            push_text_frame(&mut frame, &vec![b'.'; len]);
            let header = match len {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(frame.len(), header + len, "{len}");
            assert_eq!(frame[0], 0x81);
        }
        assert_eq!(parse_message(b"12:345:...."), Some((12, 345)));
        assert_eq!(parse_message(b"12:345:"), Some((12, 345)));
        assert_eq!(parse_message(b"12:345:..x"), None);
        assert_eq!(parse_message(b"12:345"), None);
        assert_eq!(parse_message(b"x:1:"), None);
    }
}
