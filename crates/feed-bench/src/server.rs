//! The exchange side of the data-path benchmarks: a WSS server that answers the upgrade, waits
//! for the client's "go" message, then writes `COUNT` text messages of `SIZE` bytes (path
//! `/SIZE/COUNT`) from a buffer of frames encoded once, so the server does as little as possible
//! per message and the client side dominates. `COUNT` 0 holds the connection open, idle.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// The bytes of the client's masked "go" text frame: 2 header, 4 mask, 2 payload.
const GO_FRAME_LEN: usize = 8;
const MAX_HEAD: usize = 16 * 1024;
/// About this many bytes of frames per write.
const CHUNK: usize = 64 * 1024;

/// A running server on 127.0.0.1; its accept loop stops on drop.
pub(crate) struct Blaster {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Blaster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Blaster {
    /// Binds 127.0.0.1:0 and serves every connection with `config`.
    pub(crate) async fn start(config: Arc<ServerConfig>) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = serve(tcp, acceptor).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The path asking for `count` messages of `size` bytes.
pub(crate) fn path(size: usize, count: usize) -> String {
    format!("/{size}/{count}")
}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor) -> io::Result<()> {
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
        let mut chunk = [0u8; 2048];
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let (size, count) = parse_path(&head).ok_or_else(|| io::Error::other("bad path"))?;
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
    if count > 0 {
        let mut received = buf.len() - head_len;
        while received < GO_FRAME_LEN {
            let mut chunk = [0u8; 64];
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            received += n;
        }
        let frame = text_frame(size);
        let per_chunk = (CHUNK / frame.len()).max(1);
        let chunk = frame.repeat(per_chunk);
        let mut left = count;
        while left >= per_chunk {
            tls.write_all(&chunk).await?;
            left -= per_chunk;
        }
        tls.write_all(&chunk[..left * frame.len()]).await?;
        tls.flush().await?;
    }
    // Hold the connection until the client goes away.
    let mut sink = [0u8; 4096];
    while tls.read(&mut sink).await? > 0 {}
    Ok(())
}

fn parse_path(head: &str) -> Option<(usize, usize)> {
    let target = head.lines().next()?.split(' ').nth(1)?;
    let mut parts = target.trim_start_matches('/').split('/');
    let size = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    Some((size, count))
}

/// An unmasked, final text frame of `size` ASCII bytes.
fn text_frame(size: usize) -> Vec<u8> {
    let mut frame = vec![0x81];
    if size < 126 {
        frame.push(size as u8);
    } else if size <= usize::from(u16::MAX) {
        frame.push(126);
        frame.extend_from_slice(&(size as u16).to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(size as u64).to_be_bytes());
    }
    frame.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    frame
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
