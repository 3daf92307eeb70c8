//! The exchange side of the data-path benchmarks: a WSS server that answers the upgrade, waits
//! for the client's "go" message, then writes `COUNT` text messages of `SIZE` bytes (path
//! `/SIZE/COUNT`). The messages (up to [`AHEAD`] bytes of them) are framed and TLS-encrypted
//! before the upgrade answer is sent, so after "go" the server only copies ciphertext into the
//! socket: it stays ahead of every client, and the client's read loop, not the server, sets the
//! rate. (Encrypting as it wrote, the server thread was busy 98% of the time and the client
//! waited for it: `perf stat --per-thread` of `--profile wsstream 1024`, 12k client waits a
//! second.) Frames past [`AHEAD`] bytes, only in long `--profile` runs, are encrypted as they
//! are written. `COUNT` 0 holds the connection open, idle.
//!
//! A Binance combined-stream path (`/stream?streams=...`, what `BinanceFeed` asks for) gets
//! [`Blaster::set_binance_count`] numbered `aggTrade` messages in the exchange's format instead,
//! right after the upgrade (Binance subscribes in the URL, so the client sends nothing first).

use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
/// At most this many bytes of frames are encrypted before the upgrade answer (a 10 ms arm reads
/// 9-25 MB on the machines of docs/performance.md).
const AHEAD: usize = 64 * 1024 * 1024;

/// A running server on 127.0.0.1; its accept loop stops on drop.
pub(crate) struct Blaster {
    addr: SocketAddr,
    /// How many trades the next Binance stream connection gets.
    binance_count: Arc<AtomicUsize>,
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
        Self::start_with_ahead(config, AHEAD).await
    }

    /// [`Blaster::start`] encrypting at most `ahead` bytes of frames before the upgrade answer
    /// (at least one frame).
    pub(crate) async fn start_with_ahead(
        config: Arc<ServerConfig>,
        ahead: usize,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let binance_count = Arc::new(AtomicUsize::new(0));
        let counts = Arc::clone(&binance_count);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counts = Arc::clone(&counts);
                tokio::spawn(async move {
                    let _ = serve(tcp, acceptor, &counts, ahead).await;
                });
            }
        });
        Ok(Self {
            addr,
            binance_count,
            task,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many trades each Binance stream connection opened from now on gets.
    pub(crate) fn set_binance_count(&self, count: usize) {
        self.binance_count.store(count, Ordering::Relaxed);
    }
}

/// The path of the Binance stream the benchmarks read (`BinanceFeed` for `BTC-USDT`).
pub(crate) const BINANCE_PATH: &str = "/stream?streams=btcusdt@aggTrade";

/// The first trade id [`binance_trades`] numbers from.
pub(crate) const FIRST_TRADE_ID: u64 = 3_603_125_811;

/// `count` numbered Binance `aggTrade` messages (ids from [`FIRST_TRADE_ID`]) as unmasked text
/// frames, in the fixture's field order and formats, each about 200 bytes.
fn binance_trades(count: usize) -> Vec<u8> {
    let mut frames = Vec::with_capacity(count * 210);
    for i in 0..count as u64 {
        let id = FIRST_TRADE_ID + i;
        let ms = 1_754_601_477_745 + i;
        let cents = 11_687_199 + i % 7;
        let message = format!(
            "{{\"stream\":\"btcusdt@aggTrade\",\"data\":{{\"e\":\"aggTrade\",\"E\":{},\"s\":\"BTCUSDT\",\
             \"a\":{id},\"p\":\"{}.{:02}000000\",\"q\":\"0.{:04}0000\",\"f\":{},\"l\":{},\"T\":{ms},\
             \"m\":{},\"M\":true}}}}",
            ms + 1,
            cents / 100,
            cents % 100,
            12 + i % 4000,
            5_150_441_211 + i,
            5_150_441_211 + i,
            i % 2 == 0,
        );
        frames.extend_from_slice(&frame_header(message.len()));
        frames.extend_from_slice(message.as_bytes());
    }
    frames
}

/// The path asking for `count` messages of `size` bytes.
pub(crate) fn path(size: usize, count: usize) -> String {
    format!("/{size}/{count}")
}

async fn serve(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    binance: &AtomicUsize,
    ahead_bytes: usize,
) -> io::Result<()> {
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
    let stream = parse_path(&head, binance).ok_or_else(|| io::Error::other("bad path"))?;
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
    if let Stream::Blast { size, count } = stream
        && count > 0
    {
        let frame = text_frame(size);
        let ahead = count.min((ahead_bytes / frame.len()).max(1));
        let (answer, frames) = encrypt_blast(tls.get_mut().1, answer.as_bytes(), &frame, ahead)?;
        tls.get_mut().0.write_all(&answer).await?;
        wait_for_go(&mut tls, &buf[head_len..]).await?;
        let tcp = tls.get_mut().0;
        for chunk in frames.chunks(CHUNK) {
            tcp.write_all(chunk).await?;
        }
        drop(frames);
        // The rest, if any, encrypted as it goes (rustls numbers its records after the ones
        // above).
        write_frames(&mut tls, &frame, count - ahead).await?;
        return hold(&mut tls).await;
    }
    tls.write_all(answer.as_bytes()).await?;
    tls.flush().await?;
    match stream {
        Stream::Binance(count) => {
            let frames = binance_trades(count);
            for chunk in frames.chunks(CHUNK) {
                tls.write_all(chunk).await?;
            }
            tls.flush().await?;
        }
        Stream::Blast { .. } => {}
    }
    hold(&mut tls).await
}

/// Holds the connection until the client goes away.
async fn hold<S: AsyncReadExt + Unpin>(tls: &mut S) -> io::Result<()> {
    let mut sink = [0u8; 4096];
    while tls.read(&mut sink).await? > 0 {}
    Ok(())
}

/// What a connection asked for.
enum Stream {
    /// `count` messages of `size` bytes after the client's "go".
    Blast { size: usize, count: usize },
    /// `count` Binance trades right after the upgrade.
    Binance(usize),
}

/// Waits for the client's "go" (`early`: bytes that came with the upgrade request).
async fn wait_for_go<S: AsyncReadExt + Unpin>(tls: &mut S, early: &[u8]) -> io::Result<()> {
    let mut received = early.len();
    while received < GO_FRAME_LEN {
        let mut chunk = [0u8; 64];
        let n = tls.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client left before \"go\"",
            ));
        }
        received += n;
    }
    Ok(())
}

/// Writes `count` copies of `frame` through the TLS stream, about [`CHUNK`] bytes per write.
async fn write_frames<S: AsyncWriteExt + Unpin>(
    tls: &mut S,
    frame: &[u8],
    count: usize,
) -> io::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let (chunk, lengths) = pieces(frame, count);
    for length in lengths {
        tls.write_all(&chunk[..length]).await?;
    }
    tls.flush().await
}

/// `count` copies of `frame` in pieces of about [`CHUNK`] bytes: a buffer of the largest piece,
/// and each piece's length (a prefix of that buffer), in order.
fn pieces(frame: &[u8], count: usize) -> (Vec<u8>, impl Iterator<Item = usize>) {
    let per_chunk = (CHUNK / frame.len()).max(1);
    let frame_len = frame.len();
    let lengths = (0..count)
        .step_by(per_chunk)
        .map(move |start| (count - start).min(per_chunk) * frame_len);
    (frame.repeat(per_chunk.min(count)), lengths)
}

/// The TLS records of the upgrade `answer`, and of `count` copies of `frame` after it,
/// encrypted by `conn` in the order they go out (anything `conn` still had queued first;
/// normally nothing, as the accept flushed the session tickets). Written to the socket as they
/// are, they are what writing the plaintext through the TLS stream would have sent.
fn encrypt_blast(
    conn: &mut rustls::ServerConnection,
    answer: &[u8],
    frame: &[u8],
    count: usize,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut head = Vec::new();
    encrypt(conn, answer, &mut head)?;
    // The ciphertext: the frames plus room for 32 bytes of record overhead per 16 KiB.
    let mut frames = Vec::with_capacity(frame.len() * count + frame.len() * count / 512 + 64);
    let (chunk, lengths) = pieces(frame, count);
    for length in lengths {
        encrypt(conn, &chunk[..length], &mut frames)?;
    }
    Ok((head, frames))
}

/// Encrypts `plain` with `conn` into `out`, in pieces that fit rustls's send buffer.
fn encrypt(
    conn: &mut rustls::ServerConnection,
    mut plain: &[u8],
    out: &mut Vec<u8>,
) -> io::Result<()> {
    drain(conn, out)?;
    while !plain.is_empty() {
        let taken = conn.writer().write(plain)?;
        drain(conn, out)?;
        if taken == 0 {
            return Err(io::Error::other(
                "rustls took no plaintext into an empty send buffer",
            ));
        }
        plain = &plain[taken..];
    }
    Ok(())
}

/// Moves every TLS record `conn` has queued into `out`.
fn drain(conn: &mut rustls::ServerConnection, out: &mut Vec<u8>) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(out)?;
    }
    Ok(())
}

fn parse_path(head: &str, binance: &AtomicUsize) -> Option<Stream> {
    let target = head.lines().next()?.split(' ').nth(1)?;
    if target == BINANCE_PATH {
        return Some(Stream::Binance(binance.load(Ordering::Relaxed)));
    }
    let mut parts = target.trim_start_matches('/').split('/');
    let size = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    Some(Stream::Blast { size, count })
}

/// An unmasked, final text frame of `size` ASCII bytes.
fn text_frame(size: usize) -> Vec<u8> {
    let mut frame = frame_header(size);
    frame.extend((0..size).map(|i| b'a' + (i % 26) as u8));
    frame
}

/// The header of an unmasked, final text frame with a `size`-byte payload.
fn frame_header(size: usize) -> Vec<u8> {
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
    frame
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use feed_sim::TestCa;
    use proxy_resolve::Route;
    use proxy_tunnel::TlsOptions;
    use proxy_ws::{Message, WsOptions};

    use super::{Blaster, CHUNK, path, pieces, text_frame};

    /// The pieces cover `count` frames exactly, each at most [`CHUNK`] bytes unless one frame is
    /// bigger, whole frames only.
    #[test]
    fn pieces_cover_every_frame_once() {
        for (size, count) in [
            (64, 0),
            (64, 1),
            (64, 5000),
            (1024, 64),
            (1024, 65),
            (70_000, 3),
        ] {
            let frame = text_frame(size);
            let (chunk, lengths) = pieces(&frame, count);
            let lengths: Vec<usize> = lengths.collect();
            assert_eq!(
                lengths.iter().sum::<usize>(),
                frame.len() * count,
                "{size} x {count}"
            );
            for &length in &lengths {
                assert!(length > 0 && length % frame.len() == 0 && length <= chunk.len());
                assert!(
                    length <= CHUNK.max(frame.len()),
                    "{size} x {count}: {length}"
                );
            }
        }
    }

    /// Frames encrypted before the upgrade answer, then (past the limit) frames encrypted as
    /// they are written: a real client reads every one, intact and in order, then nothing more.
    #[test]
    fn a_client_reads_every_frame_before_and_past_the_ahead_limit() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ca = TestCa::new();
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA");
        let options = WsOptions {
            tls,
            ..WsOptions::default()
        };
        // (size, count, ahead bytes): part ahead, part streamed; all ahead; one frame ahead of
        // frames larger than a TLS record.
        for (size, count, ahead) in [
            (64, 3000, 66 * 700),
            (1024, 200, usize::MAX),
            (20_000, 6, 1),
        ] {
            runtime.block_on(async {
                let blaster = Blaster::start_with_ahead(ca.server_config(&["127.0.0.1"]), ahead)
                    .await
                    .expect("server");
                let url = format!("wss://{}{}", blaster.addr(), path(size, count));
                let mut ws = proxy_ws::connect(&url, Route::Direct, "bench", &options)
                    .await
                    .expect("connect");
                ws.send_text("go").await.expect("go");
                let frame = text_frame(size);
                let payload = &frame[frame.len() - size..];
                for index in 0..count {
                    // A missing frame fails the test instead of hanging it.
                    let next = tokio::time::timeout(Duration::from_secs(10), ws.next_message());
                    match next.await.expect("a frame within 10 s") {
                        Ok(Some(Message::Text(bytes))) => {
                            assert_eq!(&bytes[..], payload, "size {size}, message {index}");
                        }
                        other => panic!("size {size}, message {index}: {other:?}"),
                    }
                }
                let more = tokio::time::timeout(Duration::from_millis(200), ws.next_message());
                assert!(more.await.is_err(), "size {size}: a message past {count}");
            });
        }
    }
}
