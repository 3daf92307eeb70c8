//! `connect` and `WsStream`: route -> tunnel -> TLS -> checked upgrade -> fastwebsockets.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketError};
use proxy_resolve::{Route, Transport};
use proxy_tunnel::{
    ConnectTimings, TargetStream, TlsOptions, TunnelConnector, TunnelStream, redact_url,
    tls_to_target,
};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::error::{WsError, WsErrorKind};
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
    /// Bound on the whole handshake of a direct connection (proxied: the proxy's
    /// `timeout_seconds` bounds the route, TLS and upgrade together).
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
    /// A text message (valid UTF-8, checked by fastwebsockets).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// The server closed the connection (the close reply has been sent).
    Close {
        /// The close code, if the frame had one.
        code: Option<u16>,
        /// The reason, lossily decoded, at most 123 bytes by the protocol.
        reason: String,
    },
}

impl Message {
    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }
}

/// An open WebSocket.
pub struct WsStream {
    // Not fastwebsockets' FragmentCollector: its per-frame moves cost a third of the read rate at
    // 64 B (docs/performance.md); an unfragmented message, the common case, is handed out as the
    // frame's own bytes, and fragments are collected in `partial`.
    ws: WebSocket<Prefixed<TargetStream>>,
    /// A fragmented message being reassembled: whether it is text, and the bytes so far.
    partial: Option<(bool, BytesMut)>,
    /// Socket reads that returned data, counted by the stream under `ws`.
    reads: Arc<AtomicU64>,
    subprotocol: Option<String>,
    idle_timeout: Option<Duration>,
    max_message_size: usize,
    exchange: Arc<str>,
    url: Arc<str>,
    closed: bool,
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
    /// TLS to the exchange (`wss://`).
    pub tls: Option<Duration>,
    /// The upgrade request and the checked 101 answer.
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
    let fail = |kind| WsError {
        kind,
        exchange: exchange.to_owned(),
        url: shown.clone(),
    };
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
    let (stream, subprotocol) = match tokio::time::timeout(limit, opening).await {
        Ok(result) => result.map_err(&fail)?,
        Err(_) => return Err(fail(WsErrorKind::HandshakeTimeout(limit))),
    };
    let reads = Arc::clone(&stream.reads);
    let mut ws = WebSocket::after_handshake(stream, Role::Client);
    ws.set_auto_pong(true);
    ws.set_auto_close(true);
    ws.set_max_message_size(options.max_message_size);
    Ok(WsStream {
        ws,
        partial: None,
        reads,
        subprotocol,
        idle_timeout: options.idle_timeout,
        max_message_size: options.max_message_size,
        exchange: Arc::from(exchange),
        url: Arc::from(shown.as_str()),
        closed: false,
    })
}

/// TLS to the exchange (`wss://`) over the tunnel, then the upgrade, checked.
async fn open(
    stream: TunnelStream,
    target: &Target,
    tls: Option<Arc<ClientConfig>>,
    options: &WsOptions,
    timings: &mut WsTimings,
) -> Result<(Prefixed<TargetStream>, Option<String>), WsErrorKind> {
    let mut started = Instant::now();
    let mut stream = match tls {
        Some(config) => {
            let stream = tls_to_target(stream, &target.host, config)
                .await
                .map_err(WsErrorKind::Tls)?;
            timings.tls = Some(started.elapsed());
            started = Instant::now();
            stream
        }
        None => TargetStream::Plain(stream),
    };
    let key = handshake::new_key().map_err(WsErrorKind::Handshake)?;
    let request = UpgradeRequest {
        host: &target.host,
        port: target.port,
        default_port: if target.secure { 443 } else { 80 },
        path_and_query: &target.path_and_query,
        key: &key,
        subprotocols: &options.subprotocols,
        headers: &options.headers,
    };
    stream
        .write_all(&request.to_bytes())
        .await
        .map_err(WsErrorKind::Io)?;
    stream.flush().await.map_err(WsErrorKind::Io)?;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(accepted) = handshake::check_response(&buf, &key, &options.subprotocols)
            .map_err(WsErrorKind::Handshake)?
        {
            buf.advance(accepted.head_len);
            timings.upgrade = Some(started.elapsed());
            // Frames the server sent right after its answer stay in front of the stream.
            return Ok((Prefixed::new(buf.freeze(), stream), accepted.subprotocol));
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
    /// The next message; `Ok(None)` once the connection is closed. Pings are answered and pongs
    /// consumed here; fragments are reassembled.
    pub async fn next_message(&mut self) -> Result<Option<Message>, WsError> {
        if self.closed {
            return Ok(None);
        }
        loop {
            let frame = match self.idle_timeout {
                Some(limit) => match tokio::time::timeout(limit, self.ws.read_frame()).await {
                    Ok(frame) => frame,
                    Err(_) => return Err(self.error(WsErrorKind::IdleTimeout(limit))),
                },
                None => self.ws.read_frame().await,
            };
            let frame = frame.map_err(|e| self.frame_error(e))?;
            match frame.opcode {
                OpCode::Text | OpCode::Binary if frame.fin && self.partial.is_none() => {
                    let bytes = payload_bytes(frame.payload);
                    return Ok(Some(if frame.opcode == OpCode::Text {
                        Message::Text(bytes)
                    } else {
                        Message::Binary(bytes)
                    }));
                }
                OpCode::Text | OpCode::Binary if self.partial.is_none() => {
                    // The first fragment; fastwebsockets checks UTF-8 of final frames only, so
                    // the whole text is checked once it is complete.
                    let text = frame.opcode == OpCode::Text;
                    self.partial = Some((text, BytesMut::from(&frame.payload[..])));
                }
                // A new message while a fragmented one is unfinished.
                OpCode::Text | OpCode::Binary => {
                    return Err(self.frame_error(WebSocketError::InvalidFragment));
                }
                OpCode::Continuation => {
                    let Some((text, collected)) = self.partial.as_mut() else {
                        return Err(self.frame_error(WebSocketError::InvalidContinuationFrame));
                    };
                    if collected.len().saturating_add(frame.payload.len()) >= self.max_message_size
                    {
                        return Err(self.frame_error(WebSocketError::FrameTooLarge));
                    }
                    collected.extend_from_slice(&frame.payload);
                    if frame.fin {
                        let text = *text;
                        let bytes = self
                            .partial
                            .take()
                            .map(|(_, collected)| collected.freeze())
                            .unwrap_or_default();
                        if !text {
                            return Ok(Some(Message::Binary(bytes)));
                        }
                        if std::str::from_utf8(&bytes).is_err() {
                            return Err(self.frame_error(WebSocketError::InvalidUTF8));
                        }
                        return Ok(Some(Message::Text(bytes)));
                    }
                }
                OpCode::Close => {
                    self.closed = true;
                    self.partial = None;
                    let payload: &[u8] = &frame.payload;
                    let (code, reason) = match payload {
                        [hi, lo, rest @ ..] => (
                            Some(u16::from_be_bytes([*hi, *lo])),
                            String::from_utf8_lossy(rest).into_owned(),
                        ),
                        _ => (None, String::new()),
                    };
                    return Ok(Some(Message::Close { code, reason }));
                }
                OpCode::Ping | OpCode::Pong => continue,
            }
        }
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
        self.reads.load(Ordering::Relaxed)
    }

    async fn write(&mut self, frame: Frame<'_>) -> Result<(), WsError> {
        if self.closed {
            return Err(self.error(WsErrorKind::Closed));
        }
        match self.ws.write_frame(frame).await {
            Ok(()) => Ok(()),
            Err(e) => Err(self.frame_error(e)),
        }
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
        WsError {
            kind,
            exchange: self.exchange.to_string(),
            url: self.url.to_string(),
        }
    }
}

fn payload_bytes(payload: Payload<'_>) -> Bytes {
    match payload {
        Payload::Bytes(bytes) => bytes.freeze(),
        Payload::Owned(vec) => Bytes::from(vec),
        other => Bytes::copy_from_slice(&other),
    }
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
        let (secure, rest) = if let Some(rest) = url.strip_prefix("wss://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("ws://") {
            (false, rest)
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
            (host, after.strip_prefix(':'))
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

/// A stream that first yields bytes already read (frames that arrived with the upgrade answer),
/// and counts the reads that returned data.
pub(crate) struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
    reads: Arc<AtomicU64>,
}

impl<S> Prefixed<S> {
    fn new(prefix: Bytes, inner: S) -> Self {
        Self {
            prefix,
            inner,
            reads: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            this.reads.fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.reads.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
