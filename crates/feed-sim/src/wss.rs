//! A WebSocket server over TLS on loopback (RFC 6455, written by hand so it can misbehave on
//! purpose): numbered streams, echo, scripted frames, selectable handshake faults, a hook for code
//! that plays the server's side ([`WssHandler`]), and a record of everything each client sent.
//!
//! Wire encoding (accept key, SHA-1, frame encoding and parsing) is plain functions over bytes;
//! only `serve` and its helpers touch a stream.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::server::{Closed, Records, ServerTask};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::ca::TestCa;
use crate::wire::{self, MAX_HEAD, ReadHeadError};

/// The GUID RFC 6455 section 1.3 appends to `Sec-WebSocket-Key` before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Largest message (and frame) the server accepts from a client; bigger ones are closed with 1009.
const MAX_MESSAGE: u64 = 64 * 1024 * 1024;

/// Bytes of header lines sent by [`HandshakeFault::OversizedHeaders`]: past a 64 KiB client cap.
const OVERSIZED_HEADERS_LEN: usize = 128 * 1024;

/// How long a closing connection waits for the client's close frame or keeps draining its input.
const LINGER: Duration = Duration::from_secs(2);

/// The subprotocol [`HandshakeFault::WrongSubprotocol`] answers with; no client asks for it.
pub const UNREQUESTED_SUBPROTOCOL: &str = "feed-sim.unrequested";

/// The `Sec-WebSocket-Accept` value for `key`: base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2.
pub fn accept_key(key: &str) -> String {
    let mut input = key.trim().as_bytes().to_vec();
    input.extend_from_slice(WEBSOCKET_GUID.as_bytes());
    wire::base64(&sha1::digest(&input))
}

/// The payload of binary message [`ServerMessage::Big`] of `len` bytes: byte `i` is `i % 251`,
/// so a client can check every byte arrived in place.
pub fn big_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A misbehaviour in the opening handshake, shown on every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HandshakeFault {
    /// Answer a valid upgrade request with a correct `101`.
    #[default]
    None,
    /// Answer with this status (e.g. 200, 403, 500), its reason phrase and a small text body,
    /// then close.
    Status(u16),
    /// Answer `101` with a `Sec-WebSocket-Accept` computed from the wrong key.
    BadAccept,
    /// Answer `101` without `Sec-WebSocket-Accept`.
    MissingAccept,
    /// Answer `101` without an `Upgrade` header.
    MissingUpgrade,
    /// Answer `101` with `Connection: keep-alive` only.
    ConnectionKeepAlive,
    /// Answer `101` followed by 128 KiB of header lines, then the blank line, then close.
    OversizedHeaders,
    /// Read the request, send half a status line (`HTTP/1.1 10`), then close.
    CloseDuringHandshake,
    /// Read the request, never answer; the connection stays open until the client closes it.
    NeverAnswer,
    /// Answer `101` with `Sec-WebSocket-Protocol: feed-sim.unrequested`
    /// ([`UNREQUESTED_SUBPROTOCOL`]), whatever the client asked for.
    WrongSubprotocol,
}

impl HandshakeFault {
    /// Whether the server answers `101` and then speaks frames.
    fn upgrades(self) -> bool {
        matches!(
            self,
            Self::None
                | Self::BadAccept
                | Self::MissingAccept
                | Self::MissingUpgrade
                | Self::ConnectionKeepAlive
                | Self::WrongSubprotocol
        )
    }
}

/// One scripted thing the server sends after the upgrade, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// One unfragmented text frame.
    Text(String),
    /// One unfragmented binary frame.
    Binary(Vec<u8>),
    /// A text message in `pieces` frames: a text frame without FIN, continuation frames, the
    /// last with FIN. The split is by bytes, so a piece may end inside a UTF-8 character.
    Fragmented {
        /// The whole message.
        text: String,
        /// How many frames (at least 1).
        pieces: usize,
    },
    /// A ping with this payload (at most 125 bytes); the pong that comes back is recorded.
    Ping(Vec<u8>),
    /// A close frame; the server then sends nothing more, waits for the client's close frame
    /// and closes the connection.
    Close {
        /// Status code, e.g. 1000 or 1001.
        code: u16,
        /// Reason text.
        reason: String,
    },
    /// These bytes verbatim (e.g. a malformed frame).
    Raw(Vec<u8>),
    /// These bytes verbatim, sent this long after the previous item (e.g. a frame header and
    /// its payload in separate reads).
    RawAfter(Duration, Vec<u8>),
    /// One unfragmented binary message of this many bytes, see [`big_payload`].
    Big(usize),
}

/// A data message as received from a client, unmasked and reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// A close frame's content. `code` is `None` for an empty close payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code, if the frame carried one.
    pub code: Option<u16>,
    /// The reason text (lossily decoded).
    pub reason: String,
}

/// How to start a [`WssServer`].
#[derive(Debug, Clone)]
pub struct WssOptions {
    bind: SocketAddr,
    fault: HandshakeFault,
    subprotocol: Option<String>,
    stream: Option<(usize, Option<Duration>)>,
    messages: Vec<ServerMessage>,
    echo: bool,
    connection_header: String,
    upgrade_header: String,
    cert_names: Vec<String>,
    handler: Option<Arc<dyn WssHandler>>,
}

impl Default for WssOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            fault: HandshakeFault::None,
            subprotocol: None,
            stream: None,
            messages: Vec::new(),
            echo: true,
            connection_header: "Upgrade".into(),
            upgrade_header: "websocket".into(),
            cert_names: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            handler: None,
        }
    }
}

impl WssOptions {
    /// A well-behaved echo server on 127.0.0.1 with an ephemeral port, sending nothing unasked.
    pub fn new() -> Self {
        Self::default()
    }

    /// The names the server certificate is issued for (default "localhost", "127.0.0.1", "::1");
    /// other names make a client's name check fail, for TLS name-mismatch tests.
    pub fn cert_names(mut self, names: &[&str]) -> Self {
        self.cert_names = names.iter().map(|n| (*n).to_owned()).collect();
        self
    }

    /// Binds to `addr` instead (must be loopback, e.g. `[::1]:0`).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Misbehaves as `fault` in every opening handshake.
    #[must_use]
    pub fn fault(mut self, fault: HandshakeFault) -> Self {
        self.fault = fault;
        self
    }

    /// Answers `Sec-WebSocket-Protocol: NAME` when the client offered `NAME`; `None` (the
    /// default) never selects a subprotocol.
    #[must_use]
    pub fn subprotocol(mut self, name: Option<&str>) -> Self {
        self.subprotocol = name.map(str::to_owned);
        self
    }

    /// After the upgrade (and after the [`WssOptions::messages`] script), sends `count` text
    /// messages `{"seq":N}` for N from 1, `interval` apart (`None`: as fast as possible), then
    /// keeps the connection open.
    #[must_use]
    pub fn stream(mut self, count: usize, interval: Option<Duration>) -> Self {
        self.stream = Some((count, interval));
        self
    }

    /// Sends these frames right after the upgrade, in order.
    #[must_use]
    pub fn messages(mut self, messages: Vec<ServerMessage>) -> Self {
        self.messages = messages;
        self
    }

    /// Whether every text and binary message received is sent back unfragmented (default: yes).
    #[must_use]
    pub fn echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// The `Connection` value of a `101` (default `Upgrade`), e.g. `Upgrade, keep-alive`.
    #[must_use]
    pub fn connection_header(mut self, value: impl Into<String>) -> Self {
        self.connection_header = value.into();
        self
    }

    /// The `Upgrade` value of a `101` (default `websocket`), e.g. `WebSocket`.
    #[must_use]
    pub fn upgrade_header(mut self, value: impl Into<String>) -> Self {
        self.upgrade_header = value.into();
        self
    }

    /// Lets `handler` play the server's side of every upgraded connection, next to the script,
    /// stream and echo (usually with [`WssOptions::echo`] off): see [`WssHandler`].
    #[must_use]
    pub fn handler(mut self, handler: Arc<dyn WssHandler>) -> Self {
        self.handler = Some(handler);
        self
    }
}

/// Code that plays the server's side of WebSocket connections, e.g. a fake exchange.
///
/// The server calls [`WssHandler::open`] once per connection right after its `101`; the returned
/// [`WssSession`] then sees every message the client sends and every tick it asked for. Callbacks
/// are synchronous and must not block: they only queue what to do in an [`Outbox`], which the
/// server applies in order once the callback returns. Client frames are still recorded, pings
/// still answered and a client close still replied to by the server itself.
pub trait WssHandler: fmt::Debug + Send + Sync + 'static {
    /// Starts serving connection `connection` (the index of its record in
    /// [`WssServer::connections`]) whose request target (path and query) is `target`. What `out`
    /// holds afterwards is sent before anything else the session queues.
    fn open(&self, connection: usize, target: &str, out: &mut Outbox) -> Box<dyn WssSession>;
}

/// The server's side of one connection, created by [`WssHandler::open`].
pub trait WssSession: Send {
    /// A text message from the client (already recorded in [`WssRecord::messages`]).
    fn on_text(&mut self, text: &str, out: &mut Outbox);

    /// A binary message from the client; ignored unless overridden.
    fn on_binary(&mut self, bytes: &[u8], out: &mut Outbox) {
        let _ = (bytes, out);
    }

    /// Tick `tick` (counting from 0) of the sequence started by [`Outbox::start_ticks`], called
    /// when it is due; what it queues is sent at once. Ignored unless overridden.
    fn on_tick(&mut self, tick: usize, out: &mut Outbox) {
        let _ = (tick, out);
    }
}

/// What a [`WssSession`] asks the server to do, in order.
#[derive(Debug, Default)]
pub struct Outbox {
    actions: Vec<Action>,
}

#[derive(Debug)]
enum Action {
    Text(String),
    Close(u16, String),
    StartTicks(usize, Option<Duration>),
    StopTicks,
}

impl Outbox {
    /// Sends one unfragmented text message (after whatever is already queued, including a
    /// delayed [`WssOptions::stream`]).
    pub fn text(&mut self, text: impl Into<String>) {
        self.actions.push(Action::Text(text.into()));
    }

    /// Sends a close frame with `code` and `reason` (cut to fit a control frame), then waits
    /// for the client's close; nothing queued after it is sent and ticks stop.
    pub fn close(&mut self, code: u16, reason: impl Into<String>) {
        self.actions.push(Action::Close(code, reason.into()));
    }

    /// Calls [`WssSession::on_tick`] `count` times: the first tick at once, the next ones
    /// `interval` apart (`None`: as fast as possible, still answering client frames between
    /// ticks). Replaces a sequence still running.
    pub fn start_ticks(&mut self, count: usize, interval: Option<Duration>) {
        self.actions.push(Action::StartTicks(count, interval));
    }

    /// Ends the running tick sequence, if any.
    pub fn stop_ticks(&mut self) {
        self.actions.push(Action::StopTicks);
    }
}

/// What the server saw and did on one client connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WssRecord {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The request line exactly as received, e.g. `GET /ws?x=1 HTTP/1.1`.
    pub request_line: Option<String>,
    /// Request headers in order, values trimmed.
    pub headers: Vec<(String, String)>,
    /// The request target: path and query, e.g. `/ws?x=1`.
    pub target: Option<String>,
    /// The status the server answered, if it sent a complete status line.
    pub status: Option<u16>,
    /// The subprotocol the server answered with, if any.
    pub subprotocol: Option<String>,
    /// Whether the server switched to WebSocket frames (after a `101`, faulty or not).
    pub upgraded: bool,
    /// Data messages received, unmasked and reassembled, in order.
    pub messages: Vec<WsMessage>,
    /// Payloads of pings received.
    pub pings_received: Vec<Vec<u8>>,
    /// Payloads of pongs received.
    pub pongs_received: Vec<Vec<u8>>,
    /// Payloads of the scripted pings sent.
    pub pings_sent: Vec<Vec<u8>>,
    /// Data messages sent (stream, script and echo), counting a fragmented one once.
    pub messages_sent: usize,
    /// The client's close frame, if one arrived.
    pub close_received: Option<CloseFrame>,
    /// The server's close frame (a reply or scripted), if it sent one.
    pub close_sent: Option<CloseFrame>,
    /// The first error on this connection (TLS, malformed request, protocol violation by the
    /// client such as an unmasked frame).
    pub error: Option<String>,
    /// Whether the server is done with this connection.
    pub closed: bool,
}

impl WssRecord {
    /// The first request header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header(&self.headers, name)
    }

    /// Whether a pong with exactly `payload` arrived.
    pub fn pong_received(&self, payload: &[u8]) -> bool {
        self.pongs_received.iter().any(|p| p == payload)
    }
}

struct Shared {
    options: WssOptions,
    records: Records<WssRecord>,
}

impl Shared {
    /// Records `error` unless an earlier one is already there.
    fn fail(&self, index: usize, error: impl Into<String>) {
        let error = error.into();
        self.records.update(index, |r| {
            r.error.get_or_insert(error);
        });
    }
}

/// A WebSocket-over-TLS server on loopback. Stops when dropped or on [`WssServer::shutdown`].
pub struct WssServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: ServerTask,
}

impl fmt::Debug for WssServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WssServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WssServer {
    /// Binds (127.0.0.1 with an ephemeral port unless [`WssOptions::bind`] says otherwise) and
    /// starts accepting, presenting a certificate from `ca` for [`WssOptions::cert_names`].
    pub async fn start(ca: &TestCa, options: WssOptions) -> io::Result<Self> {
        if !options.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("feed-sim binds loopback only, not {}", options.bind),
            ));
        }
        let names: Vec<&str> = options.cert_names.iter().map(String::as_str).collect();
        let acceptor = TlsAcceptor::from(ca.server_config(&names));
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            options,
            records: Records::new(),
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

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `wss://localhost:PORT/path` (or `wss://[::1]:PORT/path` when bound to an IPv6 address);
    /// a missing leading `/` is added.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        match self.addr.ip() {
            IpAddr::V4(_) => format!("wss://localhost:{}{slash}{path}", self.port()),
            IpAddr::V6(ip) => format!("wss://[{ip}]:{}{slash}{path}", self.port()),
        }
    }

    /// Every connection seen so far, in accept order (records of open connections are partial).
    pub fn connections(&self) -> Vec<WssRecord> {
        self.shared.records.snapshot()
    }

    /// Waits until at least `count` connections are closed or `deadline` passes, then returns all
    /// records.
    pub async fn connections_when_closed(
        &self,
        count: usize,
        deadline: Duration,
    ) -> Vec<WssRecord> {
        self.shared.records.when_closed(count, deadline).await
    }

    /// Stops accepting and closes every connection; returns once the port is released.
    pub async fn shutdown(&mut self) {
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
        let index = shared.records.push(WssRecord {
            peer: Some(peer),
            ..WssRecord::default()
        });
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => serve(tls, &shared, index).await,
                Err(e) => shared.fail(index, format!("tls handshake with the client failed: {e}")),
            }
            shared.records.update(index, |r| r.closed = true);
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one connection: the opening handshake, then frames.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, shared: &Shared, index: usize) {
    let mut buf = Vec::new();
    let raw = match wire::read_head(&mut stream, &mut buf, MAX_HEAD).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return,
        Err(ReadHeadError::TooLarge) => {
            shared.fail(index, "request head too large");
            return refuse(&mut stream, shared, index, 431, &[], "head too large").await;
        }
        Err(ReadHeadError::Io(e)) => {
            return shared.fail(index, format!("reading the request: {e}"));
        }
    };
    let head = match wire::parse_head(&raw) {
        Ok(head) => head,
        Err(why) => {
            shared.fail(index, why);
            return refuse(&mut stream, shared, index, 400, &[], why).await;
        }
    };
    shared.records.update(index, |r| {
        r.request_line = Some(head.request_line.clone());
        r.headers = head.headers.clone();
        r.target = Some(head.target.clone());
    });

    let options = &shared.options;
    match options.fault {
        HandshakeFault::Status(status) => {
            let body = format!("feed-sim: handshake answered with {status}");
            return refuse(&mut stream, shared, index, status, &[], &body).await;
        }
        HandshakeFault::NeverAnswer => {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        HandshakeFault::CloseDuringHandshake => {
            return close_with(&mut stream, b"HTTP/1.1 10").await;
        }
        _ => {}
    }

    let key = match validate_upgrade(&head.method, &head.headers) {
        Ok(key) => key,
        Err(Refusal {
            status,
            why,
            headers,
        }) => {
            shared.fail(index, why);
            return refuse(&mut stream, shared, index, status, headers, why).await;
        }
    };
    let offered = offered_subprotocols(&head.headers);
    let selected = match options.fault {
        HandshakeFault::WrongSubprotocol => Some(UNREQUESTED_SUBPROTOCOL.to_owned()),
        _ => options
            .subprotocol
            .clone()
            .filter(|p| offered.iter().any(|o| o == p)),
    };
    let answer = switching_protocols(options, key, selected.as_deref());
    shared.records.update(index, |r| {
        r.status = Some(101);
        r.subprotocol = selected;
    });
    if !options.fault.upgrades() {
        // OversizedHeaders: the head never ends within any sane cap; the server gives up.
        return close_with(&mut stream, &answer).await;
    }
    if let Err(e) = write_flush(&mut stream, &answer).await {
        return shared.fail(index, format!("answering the upgrade: {e}"));
    }
    shared.records.update(index, |r| r.upgraded = true);
    frames(stream, buf, shared, index, &head.target).await;
}

/// Why an upgrade request is refused: status, reason for the record and body, extra headers.
struct Refusal {
    status: u16,
    why: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

/// Checks an opening handshake request (RFC 6455 section 4.2.1); returns the client's key.
fn validate_upgrade<'a>(method: &str, headers: &'a [(String, String)]) -> Result<&'a str, Refusal> {
    let refuse = |status, why| Refusal {
        status,
        why,
        headers: &[],
    };
    if method != "GET" {
        return Err(refuse(405, "upgrade request method is not GET"));
    }
    if !has_token(wire::header(headers, "Upgrade"), "websocket") {
        return Err(refuse(400, "upgrade request without `Upgrade: websocket`"));
    }
    if !has_token(wire::header(headers, "Connection"), "upgrade") {
        return Err(refuse(400, "upgrade request without `Connection: Upgrade`"));
    }
    if wire::header(headers, "Sec-WebSocket-Version") != Some("13") {
        return Err(Refusal {
            status: 426,
            why: "upgrade request without `Sec-WebSocket-Version: 13`",
            headers: &[("Sec-WebSocket-Version", "13")],
        });
    }
    match wire::header(headers, "Sec-WebSocket-Key") {
        Some(key) if key.len() == 24 && key.ends_with("==") => Ok(key),
        _ => Err(refuse(
            400,
            "upgrade request without a 16-byte base64 `Sec-WebSocket-Key`",
        )),
    }
}

/// Whether the comma-separated header `value` holds `token` (case-insensitive).
fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The subprotocols a client offered, over every `Sec-WebSocket-Protocol` header.
fn offered_subprotocols(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The `101` answer, shaped by the options and the handshake fault.
fn switching_protocols(options: &WssOptions, key: &str, subprotocol: Option<&str>) -> Vec<u8> {
    let fault = options.fault;
    let mut out = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    if fault != HandshakeFault::MissingUpgrade {
        out.push_str(&format!("Upgrade: {}\r\n", options.upgrade_header));
    }
    if fault == HandshakeFault::ConnectionKeepAlive {
        out.push_str("Connection: keep-alive\r\n");
    } else {
        out.push_str(&format!("Connection: {}\r\n", options.connection_header));
    }
    match fault {
        HandshakeFault::MissingAccept => {}
        HandshakeFault::BadAccept => {
            let wrong = accept_key(&format!("{key}feed-sim"));
            out.push_str(&format!("Sec-WebSocket-Accept: {wrong}\r\n"));
        }
        _ => out.push_str(&format!("Sec-WebSocket-Accept: {}\r\n", accept_key(key))),
    }
    if let Some(protocol) = subprotocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {protocol}\r\n"));
    }
    if fault == HandshakeFault::OversizedHeaders {
        let line = format!("X-Feed-Sim-Filler: {}\r\n", "a".repeat(1000));
        while out.len() < OVERSIZED_HEADERS_LEN {
            out.push_str(&line);
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Sends a non-`101` status with a small text body, records it, and closes.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Shared,
    index: usize,
    status: u16,
    extra: &[(&str, &str)],
    body: &str,
) {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", wire::reason(status));
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    shared.records.update(index, |r| r.status = Some(status));
    close_with(stream, out.as_bytes()).await;
}

async fn write_flush<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Sends `bytes`, shuts down the write side, then drains what the client still sends (for a
/// short while) so the kernel does not answer unread input with a reset that could destroy the
/// bytes in flight.
async fn close_with<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    // The client may already be gone; there is nobody left to tell.
    let _ = write_flush(stream, bytes).await;
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Frame opcodes (RFC 6455 section 5.2).
mod opcode {
    pub(super) const CONTINUATION: u8 = 0x0;
    pub(super) const TEXT: u8 = 0x1;
    pub(super) const BINARY: u8 = 0x2;
    pub(super) const CLOSE: u8 = 0x8;
    pub(super) const PING: u8 = 0x9;
    pub(super) const PONG: u8 = 0xA;
}

/// One frame as parsed from a client, payload already unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// A frame the client should not have sent: the close code to answer with, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    code: u16,
    why: String,
}

impl Violation {
    fn protocol(why: impl Into<String>) -> Self {
        Self {
            code: 1002,
            why: why.into(),
        }
    }
}

/// Encodes one unmasked server frame.
fn encode_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

fn parse_close(payload: &[u8]) -> CloseFrame {
    match payload {
        [hi, lo, reason @ ..] => CloseFrame {
            code: Some(u16::from_be_bytes([*hi, *lo])),
            reason: String::from_utf8_lossy(reason).into_owned(),
        },
        _ => CloseFrame {
            code: None,
            reason: String::new(),
        },
    }
}

/// Parses one frame from the front of `buf`: `Ok(None)` if more bytes are needed, else the frame
/// and how many bytes it took. The length cap applies before the payload is buffered.
fn parse_frame(buf: &[u8], max_len: u64) -> Result<Option<(Frame, usize)>, Violation> {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    let masked = b1 & 0x80 != 0;
    let (len, rest) = match b1 & 0x7F {
        126 => match rest {
            [a, b, rest @ ..] => (u64::from(u16::from_be_bytes([*a, *b])), rest),
            _ => return Ok(None),
        },
        127 => match rest.split_first_chunk::<8>() {
            Some((bytes, rest)) => (u64::from_be_bytes(*bytes), rest),
            None => return Ok(None),
        },
        len => (u64::from(len), rest),
    };
    if len > max_len {
        return Err(Violation {
            code: 1009,
            why: format!("client frame of {len} bytes exceeds the {max_len}-byte cap"),
        });
    }
    let (mask, rest) = if masked {
        match rest.split_first_chunk::<4>() {
            Some((mask, rest)) => (Some(*mask), rest),
            None => return Ok(None),
        }
    } else {
        (None, rest)
    };
    let len = usize::try_from(len).map_err(|_| Violation::protocol("frame length overflows"))?;
    if rest.len() < len {
        return Ok(None);
    }
    let mut payload = rest[..len].to_vec();
    if let Some(mask) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
    }
    let used = buf.len() - rest.len() + len;
    Ok(Some((
        Frame {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0x7,
            opcode: b0 & 0x0F,
            masked,
            payload,
        },
        used,
    )))
}

/// Something queued to send after the upgrade.
struct Outgoing {
    /// Wait this long after the previous send (stream intervals).
    delay: Option<Duration>,
    bytes: Vec<u8>,
    kind: Sent,
}

enum Sent {
    /// A whole data message (one or more frames).
    Message,
    Ping(Vec<u8>),
    Close(CloseFrame),
    Raw,
}

fn script(options: &WssOptions) -> VecDeque<Outgoing> {
    let now = |bytes, kind| Outgoing {
        delay: None,
        bytes,
        kind,
    };
    let mut queue = VecDeque::new();
    for message in &options.messages {
        queue.push_back(match message {
            ServerMessage::Text(text) => now(
                encode_frame(true, opcode::TEXT, text.as_bytes()),
                Sent::Message,
            ),
            ServerMessage::Binary(bytes) => {
                now(encode_frame(true, opcode::BINARY, bytes), Sent::Message)
            }
            ServerMessage::Fragmented { text, pieces } => {
                now(fragments(text.as_bytes(), *pieces), Sent::Message)
            }
            ServerMessage::Ping(payload) => now(
                encode_frame(true, opcode::PING, payload),
                Sent::Ping(payload.clone()),
            ),
            ServerMessage::Close { code, reason } => now(
                encode_frame(true, opcode::CLOSE, &close_payload(*code, reason)),
                Sent::Close(CloseFrame {
                    code: Some(*code),
                    reason: reason.clone(),
                }),
            ),
            ServerMessage::Raw(bytes) => now(bytes.clone(), Sent::Raw),
            ServerMessage::RawAfter(delay, bytes) => Outgoing {
                delay: Some(*delay),
                bytes: bytes.clone(),
                kind: Sent::Raw,
            },
            ServerMessage::Big(len) => now(
                encode_frame(true, opcode::BINARY, &big_payload(*len)),
                Sent::Message,
            ),
        });
    }
    if let Some((count, interval)) = options.stream {
        for seq in 1..=count {
            let text = format!(r#"{{"seq":{seq}}}"#);
            queue.push_back(Outgoing {
                delay: if seq == 1 { None } else { interval },
                bytes: encode_frame(true, opcode::TEXT, text.as_bytes()),
                kind: Sent::Message,
            });
        }
    }
    queue
}

/// A text message split by bytes into `pieces` frames (at least one).
fn fragments(text: &[u8], pieces: usize) -> Vec<u8> {
    let pieces = pieces.max(1);
    let mut out = Vec::new();
    for i in 0..pieces {
        let (start, end) = (text.len() * i / pieces, text.len() * (i + 1) / pieces);
        let op = if i == 0 {
            opcode::TEXT
        } else {
            opcode::CONTINUATION
        };
        out.extend_from_slice(&encode_frame(i + 1 == pieces, op, &text[start..end]));
    }
    out
}

/// Reassembles data messages from client frames and decides what to answer.
#[derive(Default)]
struct Reassembly {
    /// The opcode and bytes so far of a fragmented message in progress.
    partial: Option<(u8, Vec<u8>)>,
}

/// What to do after one client frame.
enum Step {
    Nothing,
    Message(WsMessage),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(CloseFrame),
}

impl Reassembly {
    fn take(&mut self, frame: Frame) -> Result<Step, Violation> {
        if !frame.masked {
            return Err(Violation::protocol("client sent an unmasked frame"));
        }
        if frame.rsv != 0 {
            return Err(Violation::protocol(
                "client set RSV bits without an extension",
            ));
        }
        if frame.opcode >= opcode::CLOSE {
            if !frame.fin || frame.payload.len() > 125 {
                return Err(Violation::protocol(
                    "client sent a fragmented or oversized control frame",
                ));
            }
            return match frame.opcode {
                opcode::CLOSE => Ok(Step::Close(parse_close(&frame.payload))),
                opcode::PING => Ok(Step::Ping(frame.payload)),
                opcode::PONG => Ok(Step::Pong(frame.payload)),
                other => Err(Violation::protocol(format!(
                    "client sent reserved opcode {other:#x}"
                ))),
            };
        }
        let (op, mut bytes) = match (frame.opcode, self.partial.take()) {
            (opcode::CONTINUATION, Some((op, mut bytes))) => {
                bytes.extend_from_slice(&frame.payload);
                (op, bytes)
            }
            (opcode::CONTINUATION, None) => {
                return Err(Violation::protocol(
                    "client sent a continuation frame outside a message",
                ));
            }
            (opcode::TEXT | opcode::BINARY, None) => (frame.opcode, frame.payload),
            (opcode::TEXT | opcode::BINARY, Some(_)) => {
                return Err(Violation::protocol(
                    "client started a message inside a fragmented one",
                ));
            }
            (other, _) => {
                return Err(Violation::protocol(format!(
                    "client sent reserved opcode {other:#x}"
                )));
            }
        };
        if bytes.len() as u64 > MAX_MESSAGE {
            return Err(Violation {
                code: 1009,
                why: format!("client message exceeds the {MAX_MESSAGE}-byte cap"),
            });
        }
        if !frame.fin {
            self.partial = Some((op, bytes));
            return Ok(Step::Nothing);
        }
        if op == opcode::BINARY {
            return Ok(Step::Message(WsMessage::Binary(bytes)));
        }
        match String::from_utf8(std::mem::take(&mut bytes)) {
            Ok(text) => Ok(Step::Message(WsMessage::Text(text))),
            Err(_) => Err(Violation {
                code: 1007,
                why: "client sent a text message that is not UTF-8".into(),
            }),
        }
    }
}

/// After the upgrade: sends the script and stream, answers client frames, until a close.
async fn frames<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut buf: Vec<u8>,
    shared: &Shared,
    index: usize,
    target: &str,
) {
    let options = &shared.options;
    let mut queue = script(options);
    let mut ticks: Option<Ticks> = None;
    let mut session = options.handler.as_ref().map(|handler| {
        let mut out = Outbox::default();
        let session = handler.open(index, target, &mut out);
        apply(out, &mut queue, &mut ticks);
        session
    });
    let mut reassembly = Reassembly::default();
    let mut last_sent = Instant::now();
    // Set once the server has sent its close frame: it then only waits for the client's.
    let mut closing_since: Option<Instant> = None;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        // Answer every complete frame already buffered.
        loop {
            let (frame, used) = match parse_frame(&buf, MAX_MESSAGE) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(violation) => return violate(&mut stream, shared, index, violation).await,
            };
            buf.drain(..used);
            let step = match reassembly.take(frame) {
                Ok(step) => step,
                Err(violation) => return violate(&mut stream, shared, index, violation).await,
            };
            let reply = match step {
                Step::Nothing => None,
                Step::Message(message) => {
                    let echo = (options.echo && closing_since.is_none()).then(|| match &message {
                        WsMessage::Text(text) => encode_frame(true, opcode::TEXT, text.as_bytes()),
                        WsMessage::Binary(bytes) => encode_frame(true, opcode::BINARY, bytes),
                    });
                    let handled = session.as_mut().filter(|_| closing_since.is_none());
                    let mut out = Outbox::default();
                    if let Some(session) = handled {
                        match &message {
                            WsMessage::Text(text) => session.on_text(text, &mut out),
                            WsMessage::Binary(bytes) => session.on_binary(bytes, &mut out),
                        }
                    }
                    shared.records.update(index, |r| {
                        r.messages.push(message);
                        r.messages_sent += usize::from(echo.is_some());
                    });
                    apply(out, &mut queue, &mut ticks);
                    echo
                }
                Step::Ping(payload) => {
                    let pong = encode_frame(true, opcode::PONG, &payload);
                    shared
                        .records
                        .update(index, |r| r.pings_received.push(payload));
                    closing_since.is_none().then_some(pong)
                }
                Step::Pong(payload) => {
                    shared
                        .records
                        .update(index, |r| r.pongs_received.push(payload));
                    None
                }
                Step::Close(close) => {
                    let answered = closing_since.is_some();
                    let reply = match close.code {
                        Some(code) => close_payload(code, ""),
                        None => Vec::new(),
                    };
                    shared.records.update(index, |r| {
                        if !answered {
                            r.close_sent = Some(parse_close(&reply));
                        }
                        r.close_received = Some(close);
                    });
                    let bytes = if answered {
                        Vec::new()
                    } else {
                        encode_frame(true, opcode::CLOSE, &reply)
                    };
                    return close_with(&mut stream, &bytes).await;
                }
            };
            if let Some(bytes) = reply
                && let Err(e) = write_flush(&mut stream, &bytes).await
            {
                return shared.fail(index, format!("answering a frame: {e}"));
            }
        }

        // Let the session produce the next tick, if one is due.
        if closing_since.is_none()
            && let Some(session) = session.as_mut()
            && let Some(tick) = ticks.as_mut().and_then(|t| t.take_due(Instant::now()))
        {
            let mut out = Outbox::default();
            session.on_tick(tick, &mut out);
            apply(out, &mut queue, &mut ticks);
        }

        // Send whatever of the script, stream and session output is due.
        while closing_since.is_none()
            && let Some(next) = queue.front()
            && next.delay.is_none_or(|d| last_sent + d <= Instant::now())
        {
            let Some(next) = queue.pop_front() else { break };
            if let Err(e) = write_flush(&mut stream, &next.bytes).await {
                return shared.fail(index, format!("sending a scripted frame: {e}"));
            }
            last_sent = Instant::now();
            shared.records.update(index, |r| match next.kind {
                Sent::Message => r.messages_sent += 1,
                Sent::Ping(payload) => r.pings_sent.push(payload),
                Sent::Close(close) => {
                    r.close_sent = Some(close);
                    closing_since = Some(last_sent);
                }
                Sent::Raw => {}
            });
        }

        let due = match (closing_since, queue.front()) {
            (Some(since), _) => Some(since + LINGER),
            (None, front) => {
                let next_send = front.and_then(|next| next.delay.map(|d| last_sent + d));
                let next_tick = ticks.as_ref().filter(|t| t.next < t.count).map(|t| t.due);
                next_send.into_iter().chain(next_tick).min()
            }
        };
        tokio::select! {
            read = stream.read(&mut chunk) => match read {
                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                // A TCP close without TLS close_notify is still the client going away.
                Ok(_) => return closed_early(shared, index, closing_since.is_some()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return closed_early(shared, index, closing_since.is_some());
                }
                Err(e) => return shared.fail(index, format!("reading frames: {e}")),
            },
            () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if closing_since.is_some() {
                    shared.fail(index, "client did not answer the close frame");
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        }
    }
}

/// A running tick sequence of a [`WssSession`].
struct Ticks {
    next: usize,
    count: usize,
    interval: Option<Duration>,
    due: Instant,
}

impl Ticks {
    /// The number of the tick due at `now`, if any; schedules the one after it.
    fn take_due(&mut self, now: Instant) -> Option<usize> {
        if self.next >= self.count || self.due > now {
            return None;
        }
        let tick = self.next;
        self.next += 1;
        self.due = now + self.interval.unwrap_or_default();
        Some(tick)
    }
}

/// Queues what a session asked for; a finished tick sequence is dropped.
fn apply(out: Outbox, queue: &mut VecDeque<Outgoing>, ticks: &mut Option<Ticks>) {
    for action in out.actions {
        match action {
            Action::Text(text) => queue.push_back(Outgoing {
                delay: None,
                bytes: encode_frame(true, opcode::TEXT, text.as_bytes()),
                kind: Sent::Message,
            }),
            Action::Close(code, mut reason) => {
                // A close payload is a control frame: at most 125 bytes.
                let mut end = reason.len().min(120);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                reason.truncate(end);
                queue.push_back(Outgoing {
                    delay: None,
                    bytes: encode_frame(true, opcode::CLOSE, &close_payload(code, &reason)),
                    kind: Sent::Close(CloseFrame {
                        code: Some(code),
                        reason,
                    }),
                });
            }
            Action::StartTicks(count, interval) => {
                *ticks = Some(Ticks {
                    next: 0,
                    count,
                    interval,
                    due: Instant::now(),
                });
            }
            Action::StopTicks => *ticks = None,
        }
    }
    if ticks.as_ref().is_some_and(|t| t.next >= t.count) {
        *ticks = None;
    }
}

/// Records the client's going away without a close frame (unless the server had sent one and was
/// only waiting for the reply).
fn closed_early(shared: &Shared, index: usize, closing: bool) {
    if !closing {
        shared.fail(index, "client closed the connection without a close frame");
    }
}

/// Records a client's protocol violation, sends a close frame with its code, and closes.
async fn violate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Shared,
    index: usize,
    violation: Violation,
) {
    let close = CloseFrame {
        code: Some(violation.code),
        reason: violation.why.clone(),
    };
    shared.fail(index, violation.why.clone());
    shared.records.update(index, |r| r.close_sent = Some(close));
    let mut reason = violation.why;
    // A close payload is a control frame: at most 125 bytes.
    reason.truncate(120);
    let frame = encode_frame(true, opcode::CLOSE, &close_payload(violation.code, &reason));
    close_with(stream, &frame).await;
}

/// SHA-1 (RFC 3174), for `Sec-WebSocket-Accept` only: not for anything that needs security.
mod sha1 {
    /// The 20-byte digest of `input`.
    pub(super) fn digest(input: &[u8]) -> [u8; 20] {
        let mut h: [u32; 5] = [
            0x6745_2301,
            0xEFCD_AB89,
            0x98BA_DCFE,
            0x1032_5476,
            0xC3D2_E1F0,
        ];
        let bit_len = (input.len() as u64).wrapping_mul(8);
        let mut message = input.to_vec();
        message.push(0x80);
        while message.len() % 64 != 56 {
            message.push(0);
        }
        message.extend_from_slice(&bit_len.to_be_bytes());
        for block in message.chunks_exact(64) {
            let mut w = [0u32; 80];
            for (i, word) in block.chunks_exact(4).enumerate() {
                w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            for t in 16..80 {
                w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (t, wt) in w.iter().enumerate() {
                let (f, k) = match t {
                    0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                    20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                    _ => (b ^ c ^ d, 0xCA62_C1D6),
                };
                let temp = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wt);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = temp;
            }
            for (state, value) in h.iter_mut().zip([a, b, c, d, e]) {
                *state = state.wrapping_add(value);
            }
        }
        let mut out = [0u8; 20];
        for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

impl Closed for WssRecord {
    fn closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_matches_rfc3174_vectors() {
        let repeated = |s: &str, n| s.repeat(n);
        let cases = [
            (String::new(), "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            ("abc".to_owned(), "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_owned(),
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (
                repeated("a", 1_000_000),
                "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
            ),
            (
                repeated(
                    "0123456701234567012345670123456701234567012345670123456701234567",
                    10,
                ),
                "dea356a2cddd90c7a7ecedc5ebb563934f460452",
            ),
        ];
        for (input, expected) in &cases {
            assert_eq!(
                hex(&sha1::digest(input.as_bytes())),
                *expected,
                "len {}",
                input.len()
            );
        }
    }

    #[test]
    fn accept_key_matches_rfc6455_sample() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn frames_round_trip_at_every_length_encoding() {
        for len in [0usize, 5, 125, 126, 0xFFFF, 0x1_0000, 100_000] {
            let payload = big_payload(len);
            let mut bytes = encode_frame(true, opcode::BINARY, &payload);
            // Mask it the way a client would.
            let mask = [1, 2, 3, 4];
            let header = bytes.len() - len;
            bytes[1] |= 0x80;
            let mut masked = bytes[..header].to_vec();
            masked.extend_from_slice(&mask);
            masked.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            for cut in [0, 1, header, masked.len() - 1] {
                if cut < masked.len() {
                    assert_eq!(
                        parse_frame(&masked[..cut], MAX_MESSAGE),
                        Ok(None),
                        "len {len} cut {cut}"
                    );
                }
            }
            let (frame, used) = parse_frame(&masked, MAX_MESSAGE)
                .expect("valid frame")
                .expect("complete frame");
            assert_eq!(used, masked.len(), "len {len}");
            assert_eq!(frame.payload, payload, "len {len}");
            assert!(frame.fin && frame.masked && frame.opcode == opcode::BINARY);
        }
        let huge = [0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            parse_frame(&huge, MAX_MESSAGE).map_err(|v| v.code),
            Err(1009)
        );
    }

    #[test]
    fn reassembly_rejects_what_rfc6455_forbids() {
        let frame = |fin, opcode, masked, payload: &[u8]| Frame {
            fin,
            rsv: 0,
            opcode,
            masked,
            payload: payload.to_vec(),
        };
        let cases: Vec<(Vec<Frame>, Result<(), u16>)> = vec![
            (vec![frame(true, opcode::TEXT, false, b"x")], Err(1002)),
            (
                vec![frame(true, opcode::CONTINUATION, true, b"x")],
                Err(1002),
            ),
            (vec![frame(false, opcode::PING, true, b"")], Err(1002)),
            (vec![frame(true, 0x3, true, b"")], Err(1002)),
            (vec![frame(true, opcode::TEXT, true, b"\xff")], Err(1007)),
            (
                vec![
                    frame(false, opcode::TEXT, true, b"a"),
                    frame(true, opcode::TEXT, true, b"b"),
                ],
                Err(1002),
            ),
            (
                vec![
                    frame(false, opcode::TEXT, true, b"\xe2\x82"),
                    frame(true, opcode::PING, true, b"p"),
                    frame(true, opcode::CONTINUATION, true, b"\xac"),
                ],
                Ok(()),
            ),
        ];
        for (frames, expected) in cases {
            let mut reassembly = Reassembly::default();
            let mut outcome = Ok(());
            for f in frames.clone() {
                if let Err(v) = reassembly.take(f) {
                    outcome = Err(v.code);
                    break;
                }
            }
            assert_eq!(outcome, expected, "frames {frames:?}");
        }
    }

    #[test]
    fn fragments_split_into_the_asked_number_of_frames() {
        let bytes = fragments(b"hello world", 3);
        let mut rest = &bytes[..];
        let mut seen = Vec::new();
        while !rest.is_empty() {
            // Server frames are unmasked; parse_frame accepts them (the policy is in Reassembly).
            let (frame, used) = parse_frame(rest, MAX_MESSAGE)
                .expect("valid")
                .expect("complete");
            seen.push((frame.fin, frame.opcode, frame.payload));
            rest = &rest[used..];
        }
        assert_eq!(
            seen,
            [
                (false, opcode::TEXT, b"hel".to_vec()),
                (false, opcode::CONTINUATION, b"lo w".to_vec()),
                (true, opcode::CONTINUATION, b"orld".to_vec()),
            ]
        );
    }

    #[test]
    fn upgrade_requests_are_validated() {
        let headers = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect()
        };
        let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        let version = ("Sec-WebSocket-Version", "13");
        // Method, headers, and the refusal status expected (if any).
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Result<(), u16>);
        let cases: &[Case<'_>] = &[
            (
                "GET",
                &[
                    ("upgrade", "WebSocket"),
                    ("Connection", "keep-alive, Upgrade"),
                    key,
                    version,
                ],
                Ok(()),
            ),
            (
                "POST",
                &[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    key,
                    version,
                ],
                Err(405),
            ),
            ("GET", &[("Connection", "Upgrade"), key, version], Err(400)),
            (
                "GET",
                &[
                    ("Upgrade", "websocket"),
                    ("Connection", "keep-alive"),
                    key,
                    version,
                ],
                Err(400),
            ),
            (
                "GET",
                &[("Upgrade", "websocket"), ("Connection", "Upgrade"), key],
                Err(426),
            ),
            (
                "GET",
                &[("Upgrade", "websocket"), ("Connection", "Upgrade"), version],
                Err(400),
            ),
            (
                "GET",
                &[
                    ("Upgrade", "websocket"),
                    ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Key", "short"),
                    version,
                ],
                Err(400),
            ),
        ];
        for (method, pairs, expected) in cases {
            let headers = headers(pairs);
            let outcome = validate_upgrade(method, &headers)
                .map(|_| ())
                .map_err(|r| r.status);
            assert_eq!(&outcome, expected, "{method} {pairs:?}");
        }
    }
}
