//! An in-process HTTP CONNECT proxy on loopback (plain or over TLS, optional Basic auth,
//! selectable faults) that records what every client sent, and tunnels to loopback targets only.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::server::{Closed, Records, ServerTask};
use tokio_rustls::TlsAcceptor;

use crate::wire::{self, MAX_HEAD, ReadHeadError};

/// How long the proxy waits for a loopback target to accept before answering 502.
const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a closing connection keeps draining client input after the proxy's last reply.
const LINGER: Duration = Duration::from_secs(2);

/// Bytes of header lines sent by [`Fault::OversizedHeaders`]: well past any sane client cap.
const OVERSIZED_HEADERS_LEN: usize = 256 * 1024;

/// Percent-encode everything except RFC 3986 unreserved characters in URL userinfo.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A misbehaviour the proxy shows on every connection, to exercise client error paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Behave like a correct proxy.
    #[default]
    None,
    /// Accept the TCP connection, then close it at once (before any TLS handshake).
    CloseImmediately,
    /// Read the request, never answer; the connection stays open until the client closes it.
    NeverAnswer,
    /// Answer the request with bytes that are not HTTP, then close.
    Garbage,
    /// Send half a status line (`HTTP/1.1 20`), then close.
    CloseMidHandshake,
    /// Answer with this status (e.g. 502) and an empty body, then close.
    Status(u16),
    /// Answer `200` followed by 256 KiB of header lines, then the blank line, then close.
    OversizedHeaders,
    /// Go through the CONNECT as usual (auth, onward connection, `200`), then relay nothing in
    /// either direction and close nothing, as if the target had vanished without FIN or RST:
    /// the client's bytes are read and dropped until it closes, then both connections close.
    Stall,
}

/// How to start a [`ConnectProxy`].
#[derive(Clone)]
pub struct ProxyOptions {
    bind: SocketAddr,
    tls: Option<Arc<ServerConfig>>,
    auth: Option<(String, String)>,
    fault: Fault,
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("bind", &self.bind)
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .field("fault", &self.fault)
            .finish()
    }
}

impl Default for ProxyOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: None,
            auth: None,
            fault: Fault::None,
        }
    }
}

impl ProxyOptions {
    /// A plain, unauthenticated, well-behaved proxy on 127.0.0.1 with an ephemeral port.
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds to `addr` instead (must be loopback, e.g. `[::1]:0`).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Serves TLS (an `https://` proxy) with `config`, e.g. `TestCa::server_config(&["localhost"])`.
    #[must_use]
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Requires `Proxy-Authorization: Basic` with these credentials; anything else gets 407.
    #[must_use]
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Misbehaves as `fault` on every connection.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }
}

/// What the proxy saw and did on one client connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectRecord {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Whether the client connection was TLS (an `https://` proxy).
    pub tls: bool,
    /// The request line exactly as received, e.g. `CONNECT 127.0.0.1:443 HTTP/1.1`.
    pub request_line: Option<String>,
    /// Every header line exactly as received, in order.
    pub header_lines: Vec<String>,
    /// The `Host` header value.
    pub host: Option<String>,
    /// The raw `Proxy-Authorization` header value, e.g. `Basic dTpw`.
    pub proxy_authorization: Option<String>,
    /// The request target, e.g. `127.0.0.1:443`.
    pub target: Option<String>,
    /// `Some(true)` if the credentials matched, `Some(false)` if they were checked and did not;
    /// `None` when the proxy needs no auth or never got that far.
    pub auth_ok: Option<bool>,
    /// The status the proxy answered, if it sent a well-formed one.
    pub status: Option<u16>,
    /// The loopback address the proxy connected to, if it connected anywhere.
    pub upstream: Option<SocketAddr>,
    /// The proxy's own address on that onward connection: the peer the target sees.
    pub upstream_local: Option<SocketAddr>,
    /// Bytes relayed from the client to the target after the 200.
    pub bytes_to_target: u64,
    /// Bytes relayed from the target to the client after the 200.
    pub bytes_to_client: u64,
    /// Whether [`ConnectProxy::cut_tunnels`] cut this tunnel (the byte counts then stay 0).
    pub cut: bool,
    /// Whether this tunnel stopped relaying while staying open ([`Fault::Stall`] or
    /// [`ConnectProxy::stall_tunnels`]; the byte counts then stay 0).
    pub stalled: bool,
    /// The first error on this connection (TLS handshake, malformed request, relay failure).
    pub error: Option<String>,
    /// Whether the proxy is done with this connection.
    pub closed: bool,
}

struct Shared {
    auth: Option<(String, String)>,
    fault: Fault,
    records: Records<ConnectRecord>,
    tunnels: Tunnels,
}

/// How a test stops a relay (shared with the SOCKS proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Close both sides at once.
    Cut,
    /// Relay nothing more, close nothing.
    Stall,
}

/// The tunnels a proxy is relaying right now, by record index, so a test can cut or stall them
/// all at once (shared with the SOCKS proxy).
#[derive(Debug, Default)]
pub(crate) struct Tunnels(Mutex<HashMap<usize, oneshot::Sender<Stop>>>);

impl Tunnels {
    /// Registers the relay of connection `index`; the receiver completes when it is cut or
    /// stalled.
    pub(crate) fn open(&self, index: usize) -> oneshot::Receiver<Stop> {
        let (stop, stop_rx) = oneshot::channel();
        self.lock().insert(index, stop);
        stop_rx
    }

    /// Forgets the relay of connection `index` once it has ended.
    pub(crate) fn close(&self, index: usize) {
        self.lock().remove(&index);
    }

    /// Stops every registered relay as `how`; returns the indices of those still running, in
    /// order.
    pub(crate) fn stop_all(&self, how: Stop) -> Vec<usize> {
        let mut stopped: Vec<usize> = self
            .lock()
            .drain()
            .filter_map(|(index, sender)| sender.send(how).is_ok().then_some(index))
            .collect();
        stopped.sort_unstable();
        stopped
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<usize, oneshot::Sender<Stop>>> {
        // A panicking test thread must not keep the others from cutting.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An HTTP CONNECT proxy on loopback. Stops when dropped or on [`ConnectProxy::shutdown`].
pub struct ConnectProxy {
    addr: SocketAddr,
    tls: bool,
    auth: Option<(String, String)>,
    shared: Arc<Shared>,
    task: ServerTask,
}

impl fmt::Debug for ConnectProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectProxy")
            .field("url", &self.url())
            .field("auth", &self.auth.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl ConnectProxy {
    /// Binds and starts accepting.
    pub async fn start(options: ProxyOptions) -> io::Result<Self> {
        if !options.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("feed-sim binds loopback only, not {}", options.bind),
            ));
        }
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            auth: options.auth.clone(),
            fault: options.fault,
            records: Records::new(),
            tunnels: Tunnels::default(),
        });
        let tls = options.tls.is_some();
        let acceptor = options.tls.map(TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(listener, acceptor, Arc::clone(&shared)));
        Ok(Self {
            addr,
            tls,
            auth: options.auth,
            shared,
            task: ServerTask::new(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy URL without credentials: `http://127.0.0.1:PORT`, `http://[::1]:PORT`, or for a
    /// TLS proxy on 127.0.0.1 `https://localhost:PORT` (the name its certificate is usually for).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.authority())
    }

    /// The proxy URL with the configured credentials percent-encoded in its userinfo
    /// (`http://user:pass@127.0.0.1:PORT`); the same as [`ConnectProxy::url`] without auth.
    pub fn url_with_credentials(&self) -> String {
        match &self.auth {
            None => self.url(),
            Some((user, password)) => format!(
                "{}://{}:{}@{}",
                self.scheme(),
                utf8_percent_encode(user, USERINFO),
                utf8_percent_encode(password, USERINFO),
                self.authority()
            ),
        }
    }

    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    fn authority(&self) -> String {
        match self.addr.ip() {
            IpAddr::V4(ip) if self.tls && ip == Ipv4Addr::LOCALHOST => {
                format!("localhost:{}", self.addr.port())
            }
            IpAddr::V4(ip) => format!("{ip}:{}", self.addr.port()),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.addr.port()),
        }
    }

    /// Every connection seen so far, in accept order (records of open connections are partial).
    pub fn connections(&self) -> Vec<ConnectRecord> {
        self.shared.records.snapshot()
    }

    /// Waits until at least `count` connections are closed or `deadline` passes, then returns all
    /// records. Use it before asserting on byte counts, which are filled in when a relay ends.
    pub async fn connections_when_closed(
        &self,
        count: usize,
        deadline: Duration,
    ) -> Vec<ConnectRecord> {
        self.shared.records.when_closed(count, deadline).await
    }

    /// Cuts every tunnel relaying right now, as a proxy dropping its streams would: both sides
    /// are closed without a word (a TLS proxy sends no close_notify), so the client sees the
    /// stream end mid-way. Marks their records [`ConnectRecord::cut`] and returns how many were
    /// cut; later connections are served as usual.
    pub fn cut_tunnels(&self) -> usize {
        let cut = self.shared.tunnels.stop_all(Stop::Cut);
        for &index in &cut {
            self.shared.records.update(index, |r| r.cut = true);
        }
        cut.len()
    }

    /// Stalls every tunnel relaying right now, as a proxy that hangs (or a path whose far end
    /// vanished without FIN or RST) would: nothing more is relayed either way and nothing is
    /// closed, so the client sees a silent, open connection. The client's bytes are read and
    /// dropped until it closes; then both connections close. Marks their records
    /// [`ConnectRecord::stalled`] and returns how many were stalled; later connections are
    /// served as usual. A stalled tunnel cannot be cut.
    pub fn stall_tunnels(&self) -> usize {
        let stalled = self.shared.tunnels.stop_all(Stop::Stall);
        for &index in &stalled {
            self.shared.records.update(index, |r| r.stalled = true);
        }
        stalled.len()
    }

    /// Stops accepting and closes every connection; returns once the port is released.
    pub async fn shutdown(&mut self) {
        self.task.shutdown().await;
    }
}

async fn accept_loop(listener: TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            // Transient accept errors (e.g. too many open files): back off, keep serving.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let index = shared.records.push(ConnectRecord {
            peer: Some(peer),
            tls: acceptor.is_some(),
            ..ConnectRecord::default()
        });
        if shared.fault == Fault::CloseImmediately {
            drop(tcp);
            shared.records.update(index, |r| r.closed = true);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            match acceptor {
                None => serve(tcp, &shared, index).await,
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(tls) => serve(tls, &shared, index).await,
                    Err(e) => shared.records.update(index, |r| {
                        r.error = Some(format!("tls handshake with the client failed: {e}"));
                    }),
                },
            }
            shared.records.update(index, |r| r.closed = true);
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one client connection; records what happens in `shared` at `index`.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, shared: &Shared, index: usize) {
    let mut buf = Vec::new();
    let raw = match wire::read_head(&mut client, &mut buf, MAX_HEAD).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return,
        Err(ReadHeadError::TooLarge) => {
            shared
                .records
                .update(index, |r| r.error = Some("request head too large".into()));
            return reply(&mut client, shared, index, 431, &[]).await;
        }
        Err(ReadHeadError::Io(e)) => {
            shared.records.update(index, |r| {
                r.error = Some(format!("reading the request: {e}"))
            });
            return;
        }
    };
    let head = match wire::parse_head(&raw) {
        Ok(head) => head,
        Err(why) => {
            shared.records.update(index, |r| r.error = Some(why.into()));
            return reply(&mut client, shared, index, 400, &[]).await;
        }
    };
    shared.records.update(index, |r| {
        r.request_line = Some(head.request_line.clone());
        r.header_lines = head.header_lines.clone();
        r.host = head.header("Host").map(str::to_owned);
        r.proxy_authorization = head.header("Proxy-Authorization").map(str::to_owned);
        r.target = Some(head.target.clone());
    });

    match shared.fault {
        Fault::None | Fault::CloseImmediately | Fault::Stall => {}
        Fault::NeverAnswer => {
            // Keep the connection open, discarding input, until the client gives up.
            let mut sink = [0u8; 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        Fault::Garbage => {
            return close_with(
                &mut client,
                b"\x00\x01\x02 feed-sim garbage \xff\xfe\r\n\r\n",
            )
            .await;
        }
        Fault::CloseMidHandshake => return close_with(&mut client, b"HTTP/1.1 20").await,
        Fault::Status(status) => return reply(&mut client, shared, index, status, &[]).await,
        Fault::OversizedHeaders => {
            let mut out = b"HTTP/1.1 200 Connection established\r\n".to_vec();
            let line = format!("X-Feed-Sim-Filler: {}\r\n", "a".repeat(1000));
            while out.len() < OVERSIZED_HEADERS_LEN {
                out.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            return close_with(&mut client, &out).await;
        }
    }

    if head.method != "CONNECT" {
        return reply(&mut client, shared, index, 405, &[]).await;
    }
    if let Some((user, password)) = &shared.auth {
        let ok =
            head.header("Proxy-Authorization") == Some(&wire::basic_auth_value(user, password));
        shared.records.update(index, |r| r.auth_ok = Some(ok));
        if !ok {
            let challenge = [("Proxy-Authenticate", "Basic realm=\"feed-sim\"")];
            return reply(&mut client, shared, index, 407, &challenge).await;
        }
    }
    let Some((host, port)) = parse_authority(&head.target) else {
        shared.records.update(index, |r| {
            r.error = Some("CONNECT target is not host:port".into())
        });
        return reply(&mut client, shared, index, 400, &[]).await;
    };
    let Some(candidates) = loopback_targets(host, port) else {
        shared.records.update(index, |r| {
            r.error = Some("CONNECT target is not loopback: refused".into());
        });
        return reply(&mut client, shared, index, 403, &[]).await;
    };
    let Some((mut upstream, upstream_addr)) = connect_any(&candidates).await else {
        shared
            .records
            .update(index, |r| r.error = Some("loopback target refused".into()));
        return reply(&mut client, shared, index, 502, &[]).await;
    };
    shared.records.update(index, |r| {
        r.upstream = Some(upstream_addr);
        r.upstream_local = upstream.local_addr().ok();
    });
    reply_keep_open(&mut client, shared, index, 200).await;
    if shared
        .records
        .lock()
        .get(index)
        .is_some_and(|r| r.error.is_some())
    {
        return;
    }
    if shared.fault == Fault::Stall {
        // Not even the bytes that came right behind the request reach the target.
        shared.records.update(index, |r| r.stalled = true);
        return hold_stalled(&mut client).await;
    }
    // Bytes the client sent right behind its request (e.g. an eager TLS ClientHello).
    let early = buf.len() as u64;
    if !buf.is_empty()
        && let Err(e) = upstream.write_all(&buf).await
    {
        shared
            .records
            .update(index, |r| r.error = Some(format!("relay to target: {e}")));
        return;
    }
    let stop = shared.tunnels.open(index);
    let relayed = tokio::select! {
        relayed = tokio::io::copy_bidirectional(&mut client, &mut upstream) => Ok(relayed),
        // `cut_tunnels` / `stall_tunnels` mark the record. A sender dropped without a word
        // only happens when the proxy itself goes away: cut.
        stop = stop => Err(stop.unwrap_or(Stop::Cut)),
    };
    shared.tunnels.close(index);
    match relayed {
        // Returning drops both streams.
        Err(Stop::Cut) => {}
        // `upstream` stays open (unread) while the client is held.
        Err(Stop::Stall) => hold_stalled(&mut client).await,
        Ok(Ok((to_target, to_client))) => shared.records.update(index, |r| {
            r.bytes_to_target = early + to_target;
            r.bytes_to_client = to_client;
        }),
        Ok(Err(e)) => shared.records.update(index, |r| {
            r.bytes_to_target = early;
            r.error = Some(format!("relay: {e}"));
        }),
    }
}

/// Holds a stalled tunnel: relays nothing, closes nothing, and reads and drops what the client
/// sends until it closes (so the proxy notices when the client gives up).
async fn hold_stalled<S: AsyncRead + Unpin>(client: &mut S) {
    let mut sink = [0u8; 4096];
    while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Splits `host:port` or `[v6]:port`; `None` without a valid non-zero port.
fn parse_authority(target: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        (host, port)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

/// The addresses a CONNECT to `host` may reach: loopback IP literals as given, and `localhost`
/// as 127.0.0.1 then ::1. Anything else is refused without a DNS lookup.
fn loopback_targets(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return Some(vec![
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        ]);
    }
    let ip: IpAddr = host.parse().ok()?;
    let ip = ip.to_canonical();
    ip.is_loopback().then(|| vec![SocketAddr::new(ip, port)])
}

async fn connect_any(candidates: &[SocketAddr]) -> Option<(TcpStream, SocketAddr)> {
    for &addr in candidates {
        // Defence in depth behind `loopback_targets`: never dial anything else.
        if !addr.ip().is_loopback() {
            continue;
        }
        if let Ok(Ok(stream)) =
            tokio::time::timeout(TARGET_CONNECT_TIMEOUT, TcpStream::connect(addr)).await
        {
            let _ = stream.set_nodelay(true);
            return Some((stream, addr));
        }
    }
    None
}

/// Sends a status line (and `extra` headers), records it, and closes.
async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    client: &mut S,
    shared: &Shared,
    index: usize,
    status: u16,
    extra: &[(&str, &str)],
) {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", wire::reason(status));
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    shared.records.update(index, |r| r.status = Some(status));
    close_with(client, out.as_bytes()).await;
}

/// Sends `200 Connection established` and leaves the connection open for the relay.
async fn reply_keep_open<S: AsyncWrite + Unpin>(
    client: &mut S,
    shared: &Shared,
    index: usize,
    status: u16,
) {
    let out = format!("HTTP/1.1 {status} Connection established\r\n\r\n");
    shared.records.update(index, |r| r.status = Some(status));
    let written = async {
        client.write_all(out.as_bytes()).await?;
        client.flush().await
    }
    .await;
    if let Err(e) = written {
        shared.records.update(index, |r| {
            r.error = Some(format!("answering the client: {e}"))
        });
    }
}

/// Sends `bytes`, half-closes, then drains what the client still sends (for a short while) so the
/// kernel does not answer unread input with a reset that could destroy the reply in flight.
async fn close_with<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) {
    // The client may already be gone; there is nobody left to tell.
    let _ = client.write_all(bytes).await;
    let _ = client.flush().await;
    let _ = client.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

impl Closed for ConnectRecord {
    fn closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_reachable() {
        let v4 = |p| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
        let v6 = |p| SocketAddr::from((Ipv6Addr::LOCALHOST, p));
        let cases: &[(&str, Option<Vec<SocketAddr>>)] = &[
            ("127.0.0.1:443", Some(vec![v4(443)])),
            (
                "127.1.2.3:8080",
                Some(vec!["127.1.2.3:8080".parse().expect("addr")]),
            ),
            ("[::1]:443", Some(vec![v6(443)])),
            ("[::ffff:127.0.0.1]:443", Some(vec![v4(443)])),
            ("localhost:443", Some(vec![v4(443), v6(443)])),
            ("LOCALHOST.:9", Some(vec![v4(9), v6(9)])),
            ("192.0.2.1:443", None),
            ("10.0.0.1:80", None),
            ("[2001:db8::1]:443", None),
            ("example.com:443", None),
            ("localhost.example.com:443", None),
            ("0.0.0.0:443", None),
        ];
        for (target, expected) in cases {
            let (host, port) = parse_authority(target).expect(target);
            assert_eq!(&loopback_targets(host, port), expected, "target {target}");
        }
    }

    #[test]
    fn malformed_authorities_are_rejected() {
        for target in [
            "127.0.0.1",
            "127.0.0.1:0",
            ":443",
            "::1:443",
            "[::1]",
            "h:x",
            "/path",
        ] {
            assert_eq!(parse_authority(target), None, "target {target}");
        }
    }
}
