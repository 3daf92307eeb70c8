//! The in-process relay every data-path arm passes through: it accepts a client, speaks the arm's
//! proxy protocol (none for the direct arm, HTTP CONNECT, SOCKS5, SOCKS4), connects to its one
//! fixed loopback target whatever address the client asked for, then copies bytes both ways with
//! the same code in every mode. With a delay, every byte towards the client (the relay's own
//! replies and the exchange's) is held `delay` from when it was produced: a one-way link latency,
//! so pipelined replies overlap as on a real network.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::server::find;

/// The relay's user name and password for the auth arms.
pub(crate) const USER: &str = "bench";
pub(crate) const PASSWORD: &str = "secret";
const COPY_BUFFER: usize = 64 * 1024;

/// The protocol the relay speaks before it starts copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// No handshake: copy at once (the client connects as if the relay were the exchange).
    Direct,
    /// HTTP CONNECT; with `auth`, a `Proxy-Authorization` header is required.
    Connect { auth: bool },
    /// SOCKS5; with `auth`, user/password (RFC 1929) is required.
    #[cfg(feature = "socks")]
    Socks5 { auth: bool },
    /// SOCKS4.
    #[cfg(feature = "socks")]
    Socks4,
}

/// A running relay on 127.0.0.1; its accept loop stops on drop (open connections end when
/// either side closes).
pub(crate) struct Relay {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    pub(crate) async fn start(mode: Mode, target: SocketAddr, delay: Duration) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = serve(client, mode, target, delay).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Where bytes for the client go: straight to the socket, or through the delay line.
enum ToClient {
    Now(OwnedWriteHalf),
    Delayed(Duration, mpsc::UnboundedSender<(Instant, Vec<u8>)>),
}

impl ToClient {
    fn new(write: OwnedWriteHalf, delay: Duration) -> Self {
        if delay.is_zero() {
            return ToClient::Now(write);
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        tokio::spawn(async move {
            let mut write = write;
            while let Some((due, bytes)) = rx.recv().await {
                // tokio's timer ticks in whole milliseconds and rounds up: sleep to within a
                // tick, then yield until due, so each flight costs D and not D + up to 1 ms.
                if let Some(early) = due.checked_sub(Duration::from_millis(2)) {
                    tokio::time::sleep_until(early).await;
                }
                while Instant::now() < due {
                    tokio::task::yield_now().await;
                }
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = write.shutdown().await;
        });
        ToClient::Delayed(delay, tx)
    }

    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            ToClient::Now(write) => write.write_all(bytes).await,
            ToClient::Delayed(delay, tx) => tx
                .send((Instant::now() + *delay, bytes.to_vec()))
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe)),
        }
    }
}

async fn serve(
    client: TcpStream,
    mode: Mode,
    target: SocketAddr,
    delay: Duration,
) -> io::Result<()> {
    client.set_nodelay(true)?;
    let (mut from_client, to_client) = client.into_split();
    let mut to_client = ToClient::new(to_client, delay);
    let mut pending = Vec::new();
    let upstream = match mode {
        Mode::Direct => connect(target).await?,
        Mode::Connect { auth } => {
            let head = read_until(&mut from_client, &mut pending, b"\r\n\r\n").await?;
            let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
            if auth && !text.contains("\r\nproxy-authorization: basic ") {
                to_client
                    .send(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await?;
                return Ok(());
            }
            let upstream = connect(target).await?;
            to_client
                .send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            upstream
        }
        #[cfg(feature = "socks")]
        Mode::Socks5 { auth } => {
            let greeting = read_exact(&mut from_client, &mut pending, 2).await?;
            let methods =
                read_exact(&mut from_client, &mut pending, usize::from(greeting[1])).await?;
            let wanted = if auth { 2 } else { 0 };
            if !methods.contains(&wanted) {
                to_client.send(&[5, 0xff]).await?;
                return Ok(());
            }
            to_client.send(&[5, wanted]).await?;
            if auth {
                let head = read_exact(&mut from_client, &mut pending, 2).await?;
                let user = read_exact(&mut from_client, &mut pending, usize::from(head[1])).await?;
                let len = read_exact(&mut from_client, &mut pending, 1).await?;
                let pass = read_exact(&mut from_client, &mut pending, usize::from(len[0])).await?;
                let ok = user == USER.as_bytes() && pass == PASSWORD.as_bytes();
                to_client.send(&[1, if ok { 0 } else { 1 }]).await?;
                if !ok {
                    return Ok(());
                }
            }
            let request = read_exact(&mut from_client, &mut pending, 4).await?;
            let address_len = match request[3] {
                1 => 4,
                4 => 16,
                3 => usize::from(read_exact(&mut from_client, &mut pending, 1).await?[0]),
                _ => return Err(io::Error::other("bad SOCKS5 address type")),
            };
            read_exact(&mut from_client, &mut pending, address_len + 2).await?;
            let upstream = connect(target).await?;
            to_client.send(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
            upstream
        }
        #[cfg(feature = "socks")]
        Mode::Socks4 => {
            read_exact(&mut from_client, &mut pending, 8).await?;
            read_until(&mut from_client, &mut pending, b"\0").await?;
            let upstream = connect(target).await?;
            to_client.send(&[0, 0x5a, 0, 0, 0, 0, 0, 0]).await?;
            upstream
        }
    };
    let (from_upstream, mut to_upstream) = upstream.into_split();
    if !pending.is_empty() {
        to_upstream.write_all(&pending).await?;
    }
    let up = async {
        let mut from_client = BufReader::with_capacity(COPY_BUFFER, from_client);
        let _ = tokio::io::copy_buf(&mut from_client, &mut to_upstream).await;
        let _ = to_upstream.shutdown().await;
    };
    let down = async {
        match to_client {
            ToClient::Now(mut write) => {
                let mut from_upstream = BufReader::with_capacity(COPY_BUFFER, from_upstream);
                let _ = tokio::io::copy_buf(&mut from_upstream, &mut write).await;
                let _ = write.shutdown().await;
            }
            delayed @ ToClient::Delayed(..) => {
                let mut delayed = delayed;
                let mut from_upstream = from_upstream;
                let mut buf = vec![0u8; COPY_BUFFER];
                while let Ok(n) = from_upstream.read(&mut buf).await {
                    if n == 0 || delayed.send(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(up, down);
    Ok(())
}

async fn connect(target: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads from `read` into `pending` until it holds `n` bytes; returns them and keeps the rest.
#[cfg(feature = "socks")]
async fn read_exact(
    read: &mut OwnedReadHalf,
    pending: &mut Vec<u8>,
    n: usize,
) -> io::Result<Vec<u8>> {
    while pending.len() < n {
        fill(read, pending).await?;
    }
    Ok(pending.drain(..n).collect())
}

/// Reads until `pending` contains `end`; returns everything up to and including it.
async fn read_until(
    read: &mut OwnedReadHalf,
    pending: &mut Vec<u8>,
    end: &[u8],
) -> io::Result<Vec<u8>> {
    loop {
        if let Some(at) = find(pending, end) {
            return Ok(pending.drain(..at + end.len()).collect());
        }
        if pending.len() > 16 * 1024 {
            return Err(io::Error::other("oversized proxy request"));
        }
        fill(read, pending).await?;
    }
}

async fn fill(read: &mut OwnedReadHalf, pending: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 1024];
    let n = read.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    pending.extend_from_slice(&chunk[..n]);
    Ok(())
}
