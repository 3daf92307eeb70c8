//! `connect` and `WsStream`: route -> tunnel -> TLS -> checked upgrade -> fastwebsockets.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError};
use proxy_resolve::{Route, Transport};
use proxy_tunnel::{
    ConnectTimings, TargetStream, TlsOptions, TunnelConnector, TunnelStream, redact_url,
    tls_to_target_sending,
};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{WsError, WsErrorKind};
use crate::frames;
use crate::handshake::{self, HandshakeError, UpgradeRequest};

/// How a WebSocket connection is opened and read. `Debug` shows header names, not values (an
/// exchange API key may ride in one).
#[derive(Clone)]
pub struct WsOptions {
    /// Trust anchors for `wss://` exchanges and https:// proxies.
    pub tls: TlsOptions,
    /// Extra request headers for the upgrade.
    pub headers: Vec<(String, String)>,
    /// Subprotocols to offer; when non-empty, the server must choose one of them.
    pub subprotocols: Vec<String>,
    /// The largest message accepted (fragments reassembled).
    pub max_message_size: usize,
    /// Fail a read when no frame (data or control) arrives for this long.
    pub idle_timeout: Option<Duration>,
    /// Bound on the tunnel (TCP connect) of a direct connection, and again on its TLS and
    /// upgrade (proxied: the proxy's `timeout_seconds` bounds the tunnel, and TLS plus upgrade
    /// get that limit again).
    pub direct_timeout: Duration,
    /// Optimistic SOCKS5 for socks5/socks5h routes (off by default): see
    /// `proxy_tunnel::TunnelConnector::with_socks5_optimistic`.
    pub socks5_optimistic: bool,
}

impl std::fmt::Debug for WsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("WsOptions")
            .field("tls", &self.tls)
            .field("headers", &header_names)
            .field("subprotocols", &self.subprotocols)
            .field("max_message_size", &self.max_message_size)
            .field("idle_timeout", &self.idle_timeout)
            .field("direct_timeout", &self.direct_timeout)
            .field("socks5_optimistic", &self.socks5_optimistic)
            .finish()
    }
}

impl Default for WsOptions {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            headers: Vec::new(),
            subprotocols: Vec::new(),
            max_message_size: 64 * 1024 * 1024,
            idle_timeout: None,
            direct_timeout: proxy_tunnel::DEFAULT_DIRECT_TIMEOUT,
            socks5_optimistic: false,
        }
    }
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8, checked when the message is complete).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// The server closed the connection (the close reply has been sent).
    Close {
        /// The close code, if the frame had one.
        code: Option<u16>,
        /// The reason (UTF-8, checked), at most 123 bytes by the protocol.
        reason: String,
    },
}

impl Message {
    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(bytes) => simdutf8::basic::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// An open WebSocket.
pub struct WsStream {
    // Frames are read here, not by fastwebsockets' `WebSocket::read_frame`: its per-frame moves
    // through three nested futures cost about a fifth of the read rate at 64 B
    // (docs/performance.md). A buffered frame is parsed by a plain function and handed out as
    // the read buffer's own bytes, with no await; fastwebsockets encodes and masks what we send.
    stream: TargetStream,
    /// Bytes read from the socket and not yet handed out.
    buf: BytesMut,
    /// The encoding buffer for frames sent.
    out: Vec<u8>,
    /// A fragmented message being reassembled: whether it is text, and the bytes so far.
    partial: Option<(bool, BytesMut)>,
    /// Socket reads that returned data.
    reads: u64,
    /// When the frame being waited for must have arrived (set at the first socket read it
    /// needs, cleared when it is complete).
    idle_deadline: Option<tokio::time::Instant>,
    subprotocol: Option<String>,
    idle_timeout: Option<Duration>,
    max_message_size: usize,
    exchange: Arc<str>,
    url: Arc<str>,
    /// No more messages: the server's close frame arrived, or the connection failed as closed.
    closed: bool,
    /// A close frame was sent: only a close frame may follow in either direction.
    close_sent: bool,
}

impl std::fmt::Debug for WsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsStream")
            .field("exchange", &self.exchange)
            .field("url", &self.url)
            .field("subprotocol", &self.subprotocol)
            .field("closed", &self.closed)
            .finish()
    }
}

/// How long each stage of [`connect_timed`] took; `None` for a stage that was not reached or did
/// not finish (and `tls` for a `ws://` URL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsTimings {
    /// TCP, and the proxy's TLS and handshake when there is one.
    pub tunnel: ConnectTimings,
    /// TLS to the exchange (`wss://`). The upgrade request is written before this stage ends (on
    /// TLS 1.3 in the same write as the client's Finished), so it includes sending it.
    pub tls: Option<Duration>,
    /// The upgrade request (over TLS: only what is left of it past rustls' 64 KiB buffer, nearly
    /// always nothing) and the checked 101 answer.
    pub upgrade: Option<Duration>,
}

/// Opens `url` (`ws://` or `wss://`) for `exchange` along `route`: the tunnel, TLS to the
/// exchange (SNI = the URL's host) for `wss://`, then the upgrade, checked strictly.
pub async fn connect(
    url: &str,
    route: Route,
    exchange: &str,
    options: &WsOptions,
) -> Result<WsStream, WsError> {
    connect_timed(url, route, exchange, options, &mut WsTimings::default()).await
}

/// [`connect`], recording into `timings` how long each stage took (also when a later stage
/// fails: the stages before it are filled in).
pub async fn connect_timed(
    url: &str,
    route: Route,
    exchange: &str,
    options: &WsOptions,
    timings: &mut WsTimings,
) -> Result<WsStream, WsError> {
    *timings = WsTimings::default();
    let shown = redact_url(url);
    let fail = |kind| WsError::new(kind, exchange.to_owned(), shown.clone());
    let target = Target::parse(url).ok_or_else(|| fail(WsErrorKind::InvalidUrl))?;
    let tls = if target.secure {
        Some(
            options
                .tls
                .client_config(&[b"http/1.1"])
                .map_err(|e| fail(WsErrorKind::Tls(io::Error::other(e.to_string()))))?,
        )
    } else {
        None
    };
    let proxy_tls = options
        .tls
        .client_config(&[])
        .map_err(|e| fail(WsErrorKind::Tls(io::Error::other(e.to_string()))))?;
    let limit = match &route {
        Route::Proxy(proxy) => proxy.timeout_seconds.as_duration(),
        Route::Direct => options.direct_timeout,
    };
    let tunnel = TunnelConnector::new(route, exchange, Transport::WebSocket)
        .with_proxy_tls(proxy_tls)
        .with_direct_timeout(options.direct_timeout)
        .with_socks5_optimistic(options.socks5_optimistic);
    // The tunnel is bounded by its own timeout, whose error says who is at fault (a silent
    // proxy is `ProxyTimeout`, party Proxy); TLS and the upgrade after it get `limit` again.
    let stream = tunnel
        .connect_timed(&target.host, target.port, &mut timings.tunnel)
        .await
        .map_err(|e| fail(WsErrorKind::Tunnel(e)))?;
    let opening = open(stream, &target, tls, options, timings);
    let (stream, leftover, subprotocol) = match tokio::time::timeout(limit, opening).await {
        Ok(result) => result.map_err(&fail)?,
        Err(_) => return Err(fail(WsErrorKind::HandshakeTimeout(limit))),
    };
    let reads = u64::from(!leftover.is_empty());
    let mut buf = BytesMut::with_capacity(READ_BUFFER.max(leftover.len()));
    buf.extend_from_slice(&leftover);
    Ok(WsStream {
        stream,
        buf,
        out: Vec::new(),
        partial: None,
        reads,
        idle_deadline: None,
        subprotocol,
        idle_timeout: options.idle_timeout,
        max_message_size: options.max_message_size,
        exchange: Arc::from(exchange),
        url: Arc::from(shown.as_str()),
        closed: false,
        close_sent: false,
    })
}

/// The read buffer's first capacity; what fastwebsockets used.
const READ_BUFFER: usize = 8192;

/// Room made in the read buffer before a socket read.
const READ_MIN: usize = 4096;
/// The most the read buffer grows for bytes a frame header announced but that have not
/// arrived (the header is the server's word; the bytes are what it costs).
const RESERVE_AHEAD: usize = 1 << 20;

/// TLS to the exchange (`wss://`) over the tunnel, then the upgrade, checked.
async fn open(
    stream: TunnelStream,
    target: &Target,
    tls: Option<Arc<ClientConfig>>,
    options: &WsOptions,
    timings: &mut WsTimings,
) -> Result<(TargetStream, Bytes, Option<String>), WsErrorKind> {
    let key = handshake::new_key().map_err(WsErrorKind::Handshake)?;
    let request = UpgradeRequest {
        host: &target.host,
        port: target.port,
        default_port: if target.secure { 443 } else { 80 },
        path_and_query: &target.path_and_query,
        key: &key,
        subprotocols: &options.subprotocols,
        headers: &options.headers,
    }
    .to_bytes();
    let mut started = Instant::now();
    // Over TLS, rustls takes the request before the handshake and sends it with the client's
    // Finished, once the server is verified (one write less per connection).
    let (mut stream, sent) = match tls {
        Some(config) => {
            let (stream, sent) = tls_to_target_sending(stream, &target.host, config, &request)
                .await
                .map_err(WsErrorKind::Tls)?;
            timings.tls = Some(started.elapsed());
            started = Instant::now();
            (stream, sent)
        }
        None => (TargetStream::Plain(stream), 0),
    };
    if sent < request.len() {
        stream
            .write_all(&request[sent..])
            .await
            .map_err(WsErrorKind::Io)?;
    }
    stream.flush().await.map_err(WsErrorKind::Io)?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(accepted) = handshake::check_response(&buf, &key, &options.subprotocols)
            .map_err(WsErrorKind::Handshake)?
        {
            buf.advance(accepted.head_len);
            timings.upgrade = Some(started.elapsed());
            // Frames the server sent right after its answer stay in front of the stream.
            return Ok((stream, buf.freeze(), accepted.subprotocol));
        }
        if buf.len() >= handshake::MAX_RESPONSE_HEAD {
            return Err(WsErrorKind::Handshake(HandshakeError::OversizedResponse));
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                    WsErrorKind::Handshake(HandshakeError::ClosedDuringHandshake)
                }
                _ => WsErrorKind::Io(e),
            })?;
        if n == 0 {
            return Err(WsErrorKind::Handshake(
                HandshakeError::ClosedDuringHandshake,
            ));
        }
    }
}

impl WsStream {
    /// The next message; `Ok(None)` once the connection is closed or has failed. Pings are
    /// answered and pongs consumed here; fragments are reassembled. A protocol or size error
    /// fails the connection. Reading is cancel-safe (bytes read stay buffered; the idle
    /// deadline of the awaited frame stays set, so a `select!` loop cannot postpone it);
    /// dropping the future while it writes a pong or close reply may leave a partial frame on
    /// the wire, so drop the stream after that.
    pub async fn next_message(&mut self) -> Result<Option<Message>, WsError> {
        if self.closed {
            return Ok(None);
        }
        loop {
            let head = match frames::parse_head(&self.buf, self.max_message_size) {
                Ok(Some(head)) if self.buf.len() >= head.frame_len() => head,
                Ok(Some(head)) => {
                    self.fill(head.frame_len()).await?;
                    continue;
                }
                Ok(None) => {
                    self.fill(frames::MAX_HEAD).await?;
                    continue;
                }
                Err(frames::HeadError::Ws(e)) => return Err(self.fail(e)),
                Err(frames::HeadError::Masked) => {
                    return Err(self.fail_with("a frame from the server was masked"));
                }
                Err(frames::HeadError::ControlTooLarge) => {
                    return Err(self.fail_with("a close or pong frame over 125 bytes"));
                }
            };
            self.idle_deadline = None;
            self.buf.advance(head.head_len);
            let payload = self.buf.split_to(head.payload_len);
            if self.close_sent && !matches!(head.opcode, OpCode::Close | OpCode::Ping) {
                return Err(self.frame_error(WebSocketError::ConnectionClosed));
            }
            match head.opcode {
                OpCode::Text | OpCode::Binary if head.fin && self.partial.is_none() => {
                    if head.opcode == OpCode::Binary {
                        return Ok(Some(Message::Binary(payload.freeze())));
                    }
                    if !is_utf8(&payload) {
                        return Err(self.fail(WebSocketError::InvalidUTF8));
                    }
                    return Ok(Some(Message::Text(payload.freeze())));
                }
                OpCode::Text | OpCode::Binary if self.partial.is_none() => {
                    // The first fragment; the whole text is checked once it is complete (a
                    // character may be split between fragments).
                    self.partial = Some((head.opcode == OpCode::Text, payload));
                }
                // A new message while a fragmented one is unfinished.
                OpCode::Text | OpCode::Binary => {
                    return Err(self.fail(WebSocketError::InvalidFragment));
                }
                OpCode::Continuation => {
                    let Some((text, collected)) = self.partial.as_mut() else {
                        return Err(self.fail(WebSocketError::InvalidContinuationFrame));
                    };
                    if collected.len().saturating_add(payload.len()) >= self.max_message_size {
                        return Err(self.fail(WebSocketError::FrameTooLarge));
                    }
                    collected.extend_from_slice(&payload);
                    if head.fin {
                        let text = *text;
                        let bytes = self
                            .partial
                            .take()
                            .map(|(_, collected)| collected.freeze())
                            .unwrap_or_default();
                        if !text {
                            return Ok(Some(Message::Binary(bytes)));
                        }
                        if !is_utf8(&bytes) {
                            return Err(self.fail(WebSocketError::InvalidUTF8));
                        }
                        return Ok(Some(Message::Text(bytes)));
                    }
                }
                OpCode::Close => return self.closed_by_server(&payload).await.map(Some),
                OpCode::Ping => {
                    if !self.close_sent {
                        let pong = Frame::pong(Payload::Borrowed(&payload));
                        self.reply(pong).await?;
                    }
                }
                OpCode::Pong => {}
            }
        }
    }

    /// Reads once from the socket, with room for at least `want` buffered bytes; bounded by the
    /// idle timeout of the frame being waited for.
    async fn fill(&mut self, want: usize) -> Result<(), WsError> {
        // Room for the whole frame, reserved once (a big frame is not grown again near its end),
        // and at least READ_MIN free for a read of small frames. A frame's header alone makes
        // room for at most RESERVE_AHEAD bytes that have not arrived: past that, the buffer
        // grows as the payload comes.
        let need = want.saturating_sub(self.buf.len()).min(RESERVE_AHEAD);
        let spare = self.buf.capacity() - self.buf.len();
        if spare < need {
            self.buf.reserve(need + READ_MIN);
        } else if spare < READ_MIN && self.buf.len() < READ_MIN {
            self.buf.reserve(READ_MIN);
        }
        // An idle timeout too long for the clock (`Duration::MAX`) is no deadline.
        let deadline = match (self.idle_timeout, self.idle_deadline) {
            (Some(limit), Some(deadline)) => Some((limit, deadline)),
            (Some(limit), None) => tokio::time::Instant::now()
                .checked_add(limit)
                .map(|deadline| (limit, *self.idle_deadline.insert(deadline))),
            (None, _) => None,
        };
        let read = match deadline {
            Some((limit, deadline)) => {
                match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        // A call after this one waits a whole limit again.
                        self.idle_deadline = None;
                        return Err(self.error(WsErrorKind::IdleTimeout(limit)));
                    }
                }
            }
            None => self.stream.read_buf(&mut self.buf).await,
        };
        match read {
            Ok(0) => Err(self.fail(WebSocketError::UnexpectedEOF)),
            Ok(_) => {
                self.reads += 1;
                Ok(())
            }
            Err(e) => Err(self.fail(WebSocketError::IoError(e))),
        }
    }

    /// The server's close frame: checked (a code, a UTF-8 reason, a code a peer may send),
    /// answered with the same payload unless we closed first, and the stream marked closed.
    async fn closed_by_server(&mut self, payload: &[u8]) -> Result<Message, WsError> {
        self.partial = None;
        let (code, reason) = match payload {
            [] => (None, String::new()),
            [_] => {
                self.closed = true;
                return Err(self.frame_error(WebSocketError::InvalidCloseFrame));
            }
            [hi, lo, rest @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                let Ok(reason) = std::str::from_utf8(rest) else {
                    self.closed = true;
                    return Err(self.fail(WebSocketError::InvalidUTF8));
                };
                if !fastwebsockets::CloseCode::from(code).is_allowed() {
                    if !self.close_sent {
                        let _ = self.reply(Frame::close(1002, rest)).await;
                    }
                    self.closed = true;
                    return Err(self.frame_error(WebSocketError::InvalidCloseCode));
                }
                (Some(code), reason.to_owned())
            }
        };
        if !self.close_sent {
            // The peer is leaving: a failed answer does not hide its close.
            let _ = self
                .write(Frame::close_raw(Payload::Borrowed(payload)))
                .await;
        }
        self.closed = true;
        Ok(Message::Close { code, reason })
    }

    /// Sends a text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.write(Frame::text(Payload::Borrowed(text.as_bytes())))
            .await
    }

    /// Sends a binary message.
    pub async fn send_binary(&mut self, bytes: &[u8]) -> Result<(), WsError> {
        self.write(Frame::binary(Payload::Borrowed(bytes))).await
    }

    /// Sends a ping.
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), WsError> {
        self.write(Frame::new(
            true,
            OpCode::Ping,
            None,
            Payload::Borrowed(payload),
        ))
        .await
    }

    /// Starts the close handshake with a code and reason; then read until `Ok(None)` or drop.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        self.write(Frame::close(code, reason.as_bytes())).await
    }

    /// The subprotocol the server chose.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// How many reads from the connection have returned data so far. Messages returned with no
    /// change in between arrived in the same read (a caller that timestamps messages can read
    /// the clock once per read instead of once per message).
    pub fn socket_reads(&self) -> u64 {
        self.reads
    }

    /// Masks and sends one frame. After a close frame was sent, only another close may be.
    async fn write(&mut self, mut frame: Frame<'_>) -> Result<(), WsError> {
        if self.closed {
            return Err(self.error(WsErrorKind::Closed));
        }
        if frame.opcode == OpCode::Close {
            self.close_sent = true;
        } else if self.close_sent {
            // Only a close may follow our close; the server's close reply can still be read.
            return Err(self.error(WsErrorKind::Closed));
        }
        frame.mask();
        let bytes = frame.write(&mut self.out);
        let sent = match self.stream.write_all(bytes).await {
            Ok(()) => self.stream.flush().await,
            Err(e) => Err(e),
        };
        sent.map_err(|e| self.frame_error(WebSocketError::IoError(e)))
    }

    /// A reply the protocol obliges (pong, close): bounded by the idle timeout, so a peer that
    /// stops reading cannot hold `next_message` past it.
    async fn reply(&mut self, frame: Frame<'_>) -> Result<(), WsError> {
        let Some(limit) = self.idle_timeout else {
            return self.write(frame).await;
        };
        match tokio::time::timeout(limit, self.write(frame)).await {
            Ok(result) => result,
            Err(_) => {
                self.closed = true;
                Err(self.error(WsErrorKind::IdleTimeout(limit)))
            }
        }
    }

    /// A protocol or size error: the connection is failed (RFC 6455 section 7.1.7); later reads
    /// return `Ok(None)` instead of the same error again.
    fn fail(&mut self, error: WebSocketError) -> WsError {
        self.closed = true;
        self.partial = None;
        self.frame_error(error)
    }

    /// [`WsStream::fail`] with our own description.
    fn fail_with(&mut self, what: &str) -> WsError {
        self.closed = true;
        self.partial = None;
        self.error(WsErrorKind::Protocol(what.to_owned()))
    }

    fn frame_error(&mut self, error: WebSocketError) -> WsError {
        let kind = match error {
            WebSocketError::FrameTooLarge => WsErrorKind::MessageTooLarge(self.max_message_size),
            WebSocketError::ConnectionClosed => {
                self.closed = true;
                WsErrorKind::Closed
            }
            WebSocketError::IoError(e) => WsErrorKind::Io(e),
            WebSocketError::UnexpectedEOF => WsErrorKind::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed without a close frame",
            )),
            other => WsErrorKind::Protocol(other.to_string()),
        };
        self.error(kind)
    }

    fn error(&self, kind: WsErrorKind) -> WsError {
        WsError::new(kind, self.exchange.to_string(), self.url.to_string())
    }
}

/// Whether `bytes` is valid UTF-8: the check every text message gets, with SIMD where the CPU
/// has it (simdutf8 picks AVX2 or SSE 4.2 at run time; several times std's speed on ASCII).
fn is_utf8(bytes: &[u8]) -> bool {
    simdutf8::basic::from_utf8(bytes).is_ok()
}

/// Where a WebSocket URL points.
#[derive(Debug)]
struct Target {
    secure: bool,
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Option<Self> {
        // Schemes are case-insensitive (RFC 3986 3.1): `WSS://` is `wss://`.
        let (scheme, rest) = url.split_once("://")?;
        let secure = if scheme.eq_ignore_ascii_case("wss") {
            true
        } else if scheme.eq_ignore_ascii_case("ws") {
            false
        } else {
            return None;
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            // Nothing after `]`, or `:port`: `[::1]x` is no URL (it used to mean port 443).
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok().filter(|p| *p > 0)?,
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
        };
        if host.is_empty() {
            return None;
        }
        let path_and_query = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        Some(Self {
            secure,
            host: host.to_owned(),
            port,
            path_and_query,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{Message, WsError, is_utf8};

    proptest! {
        /// The SIMD check accepts exactly what std accepts: any bytes, and valid text (mixed,
        /// and ASCII long enough for the vector path's all-ASCII blocks) with one byte changed.
        #[test]
        fn is_utf8_agrees_with_std(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            text in prop_oneof![".{0,200}", "[ -~]{64,300}"],
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            prop_assert_eq!(is_utf8(&bytes), std::str::from_utf8(&bytes).is_ok());
            let mut changed = text.into_bytes();
            prop_assert!(is_utf8(&changed));
            if !changed.is_empty() {
                let at = at.index(changed.len());
                changed[at] = byte;
            }
            prop_assert_eq!(is_utf8(&changed), std::str::from_utf8(&changed).is_ok());
        }
    }

    /// A read's result stays the size of the message it carries plus at most a word: the error
    /// is one pointer, so a successful read does not move an error-sized value.
    #[test]
    fn a_read_result_is_about_the_size_of_a_message() {
        assert_eq!(size_of::<WsError>(), size_of::<usize>());
        assert!(
            size_of::<Result<Option<Message>, WsError>>()
                <= size_of::<Option<Message>>() + size_of::<usize>(),
            "{} bytes",
            size_of::<Result<Option<Message>, WsError>>()
        );
    }
}
