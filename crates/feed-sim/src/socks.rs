//! In-process SOCKS4/4a/5 proxy for wire tests: records the exact bytes each client sends and only ever
//! connects onward to loopback.
//!
//! Hand-written rather than taken from a crate on purpose: a test double has to see and keep every byte
//! of the handshake, answer with scripted faults, and refuse to route anywhere but 127.0.0.0/8, `::1`
//! and `localhost`, so no test ever reaches the network.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connect_proxy::{Stop, Tunnels};
use crate::server::ServerTask;

/// The bytes a proxy with [`Fault::Garbage`] answers with: an HTTP error, which is what a client gets
/// when it speaks SOCKS to an HTTP proxy. Its first byte is neither a SOCKS4 (0x00) nor a SOCKS5 (0x05)
/// reply version.
pub const GARBAGE: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

/// Percent-encode everything except RFC 3986 unreserved characters in URL userinfo.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Longest SOCKS4 user id or SOCKS4a host name the proxy reads before calling it a protocol error.
const MAX_NUL_TERMINATED: usize = 255;
/// How long a closing connection keeps reading (and recording) what the client still sends.
const DRAIN_DEADLINE: Duration = Duration::from_secs(2);
/// Onward connections go to loopback only, so anything slower than this is broken.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

const SOCKS4_GRANTED: u8 = 0x5A;
const SOCKS4_REJECTED: u8 = 0x5B;
const SOCKS5_SUCCEEDED: u8 = 0x00;
const SOCKS5_GENERAL_FAILURE: u8 = 0x01;
const SOCKS5_NOT_ALLOWED: u8 = 0x02;
const SOCKS5_HOST_UNREACHABLE: u8 = 0x04;
const SOCKS5_CONNECTION_REFUSED: u8 = 0x05;
const SOCKS5_COMMAND_NOT_SUPPORTED: u8 = 0x07;
const SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
const SOCKS5_NO_AUTH: u8 = 0x00;
const SOCKS5_USER_PASS: u8 = 0x02;
const SOCKS5_NO_ACCEPTABLE_METHOD: u8 = 0xFF;

/// The protocol a client spoke, as the proxy understood it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocksVersion {
    /// SOCKS4 with an IPv4 destination.
    Socks4,
    /// SOCKS4a: destination 0.0.0.x followed by a host name.
    Socks4a,
    /// SOCKS5 (RFC 1928).
    Socks5,
}

/// The kind of destination address a client sent; tells `socks5h` (domain) from `socks5` (address) and
/// SOCKS4a from SOCKS4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    /// Four address bytes (SOCKS5 ATYP 0x01, or SOCKS4).
    Ipv4,
    /// Sixteen address bytes (SOCKS5 ATYP 0x04).
    Ipv6,
    /// A host name (SOCKS5 ATYP 0x03, or SOCKS4a).
    Domain,
}

/// A scripted misbehaviour of the proxy, for testing how clients cope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Behave correctly.
    #[default]
    None,
    /// Close each connection as soon as it is accepted, without reading.
    CloseImmediately,
    /// Read and record everything the client sends, never write a byte, close only when the client does.
    NeverAnswer,
    /// Answer the client's first bytes with [`GARBAGE`], then close.
    Garbage,
    /// Go through the handshake, then send only the start of the final reply and close: SOCKS5 sends
    /// the method selection (and auth status) in full, then 4 of the reply's bytes (`05 00 00 01`);
    /// SOCKS4 sends 2 of its 8 reply bytes (`00 5A`).
    CloseMidHandshake,
    /// Answer the connect request with this reply code instead of connecting, then close (e.g. 0x05
    /// connection refused for SOCKS5, 0x5B rejected for SOCKS4).
    Reply(u8),
    /// Go through the handshake as usual (auth, onward connection, success reply), then relay
    /// nothing in either direction and close nothing, as if the target had vanished without FIN or
    /// RST: the client's bytes are read and dropped until it closes, then both connections close.
    Stall,
}

/// The username and password a proxy requires from SOCKS5 clients (RFC 1929).
#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// How to start a [`SocksProxy`].
#[derive(Debug, Clone)]
pub struct SocksOptions {
    bind: SocketAddr,
    socks4: bool,
    socks5: bool,
    supports_socks4a: bool,
    credentials: Option<Credentials>,
    fault: Fault,
}

impl Default for SocksOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            socks4: true,
            socks5: true,
            supports_socks4a: true,
            credentials: None,
            fault: Fault::None,
        }
    }
}

impl SocksOptions {
    /// A well-behaved proxy on 127.0.0.1 with an ephemeral port that accepts SOCKS4, SOCKS4a and
    /// SOCKS5 on the same port (told apart by the first byte), SOCKS5 without authentication.
    pub fn new() -> Self {
        Self::default()
    }

    /// Like [`SocksOptions::new`], but only SOCKS5: a client starting with 0x04 is closed unanswered.
    pub fn socks5() -> Self {
        Self {
            socks4: false,
            ..Self::default()
        }
    }

    /// Like [`SocksOptions::new`], but only SOCKS4 and SOCKS4a: a client starting with 0x05 is closed
    /// unanswered.
    pub fn socks4() -> Self {
        Self {
            socks5: false,
            ..Self::default()
        }
    }

    /// Binds to `addr` instead (must be loopback, e.g. `[::1]:0`).
    #[must_use]
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Requires RFC 1929 username/password (method 0x02) from SOCKS5 clients instead of selecting
    /// method 0x00. SOCKS4 has no passwords: its user id is recorded, not checked.
    #[must_use]
    pub fn user_pass(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Whether the SOCKS4a marker (destination 0.0.0.x followed by a host name) is understood
    /// (default yes). Without it such a request is rejected with 0x5B, as a proxy that took 0.0.0.x
    /// for an address would fail, and recorded as [`SocksVersion::Socks4a`].
    #[must_use]
    pub fn socks4a(mut self, supported: bool) -> Self {
        self.supports_socks4a = supported;
        self
    }

    /// Misbehaves as `fault` on every connection.
    #[must_use]
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }
}

/// What the proxy saw and did on one client connection. Fields fill in as the handshake progresses,
/// so a record read mid-connection shows how far the client got.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocksRecord {
    /// The client's address.
    pub peer: SocketAddr,
    /// The protocol spoken, once the first byte (and for 4a, the destination) was read.
    pub version: Option<SocksVersion>,
    /// The authentication methods a SOCKS5 client offered, in its order.
    pub methods: Vec<u8>,
    /// The RFC 1929 username received, as sent (lossy UTF-8).
    pub username: Option<String>,
    /// The RFC 1929 password received, as sent (lossy UTF-8; this is a test double).
    pub password: Option<String>,
    /// The SOCKS4 user id received, without its NUL (lossy UTF-8).
    pub socks4_user_id: Option<String>,
    /// The kind of destination address received.
    pub addr_type: Option<AddrType>,
    /// The destination as sent: dotted IPv4, IPv6 without brackets, or the host name.
    pub target_host: Option<String>,
    /// The destination port.
    pub target_port: Option<u16>,
    /// Whether RFC 1929 authentication succeeded, when it was attempted.
    pub auth_ok: Option<bool>,
    /// The SOCKS4 `CD` or SOCKS5 `REP` code of the final reply, when one was sent (also for
    /// [`Fault::CloseMidHandshake`], whose reply is cut short).
    pub reply: Option<u8>,
    /// Every byte the client sent before relaying started (or before the connection closed).
    pub request_bytes: Vec<u8>,
    /// The loopback address the proxy connected onward to; `None` means it never connected.
    pub upstream: Option<SocketAddr>,
    /// The proxy's own address on that onward connection: the peer the target sees.
    pub upstream_local: Option<SocketAddr>,
    /// Bytes relayed from the client to the target.
    pub bytes_to_target: u64,
    /// Bytes relayed from the target to the client.
    pub bytes_to_client: u64,
    /// Whether [`SocksProxy::cut_tunnels`] cut this tunnel (the byte counts then stay 0).
    pub cut: bool,
    /// Whether this tunnel stopped relaying while staying open ([`Fault::Stall`] or
    /// [`SocksProxy::stall_tunnels`]; the byte counts then stay 0).
    pub stalled: bool,
    /// Why the connection ended without a normal relay: a protocol error, a refused target, a failed
    /// connect, a relay I/O error.
    pub error: Option<String>,
    /// Whether the proxy is done with this connection.
    pub closed: bool,
}

impl SocksRecord {
    fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            version: None,
            methods: Vec::new(),
            username: None,
            password: None,
            socks4_user_id: None,
            addr_type: None,
            target_host: None,
            target_port: None,
            auth_ok: None,
            reply: None,
            request_bytes: Vec::new(),
            upstream: None,
            upstream_local: None,
            bytes_to_target: 0,
            bytes_to_client: 0,
            cut: false,
            stalled: false,
            error: None,
            closed: false,
        }
    }
}

/// A running SOCKS proxy on loopback. Stops (and drops every open connection) on drop or
/// [`SocksProxy::shutdown`].
pub struct SocksProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    closed: watch::Receiver<usize>,
    task: ServerTask,
}

impl fmt::Debug for SocksProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocksProxy")
            .field("addr", &self.addr)
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl SocksProxy {
    /// Binds (127.0.0.1:0 unless [`SocksOptions::bind`] says otherwise) and starts accepting.
    ///
    /// # Errors
    /// When the bind address is not loopback, or cannot be bound (e.g. `::1` is not configured).
    pub async fn start(options: SocksOptions) -> io::Result<Self> {
        if !options.bind.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socks proxy bind address {} is not loopback", options.bind),
            ));
        }
        let listener = TcpListener::bind(options.bind).await?;
        let addr = listener.local_addr()?;
        let (closed_tx, closed) = watch::channel(0);
        let shared = Arc::new(Shared {
            options,
            records: Mutex::new(Vec::new()),
            closed: closed_tx,
            tunnels: Tunnels::default(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            closed,
            task: ServerTask::new(task),
        })
    }

    /// The address the proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `scheme://host:port`, e.g. `socks5h://127.0.0.1:40123` or `socks5://[::1]:40123`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// `scheme://user:password@host:port` with the configured [`SocksOptions::user_pass`]
    /// credentials percent-encoded (everything but RFC 3986 unreserved characters); the same as
    /// [`SocksProxy::url`] without credentials.
    pub fn url_with_credentials(&self, scheme: &str) -> String {
        match &self.shared.options.credentials {
            None => self.url(scheme),
            Some(credentials) => format!(
                "{scheme}://{}:{}@{}",
                utf8_percent_encode(&credentials.username, USERINFO),
                utf8_percent_encode(&credentials.password, USERINFO),
                self.addr
            ),
        }
    }

    /// Every connection seen so far, in accept order (records of open connections are partial).
    pub fn connections(&self) -> Vec<SocksRecord> {
        self.shared.lock().clone()
    }

    /// Waits until at least `count` connections are closed or `deadline` passes, then returns all
    /// records. Use it before asserting on byte counts, which are filled in when a relay ends.
    pub async fn connections_when_closed(
        &self,
        count: usize,
        deadline: Duration,
    ) -> Vec<SocksRecord> {
        let mut closed = self.closed.clone();
        // Either outcome is fine: the caller asserts on the records. The sender lives in `shared`,
        // which `self` keeps alive.
        let _ = tokio::time::timeout(deadline, closed.wait_for(|n| *n >= count)).await;
        self.connections()
    }

    /// Cuts every tunnel relaying right now, as a proxy dropping its streams would: both sides
    /// are closed without a word, so the client sees the stream end mid-way. Marks their records
    /// [`SocksRecord::cut`] and returns how many were cut; later connections are served as usual.
    pub fn cut_tunnels(&self) -> usize {
        let cut = self.shared.tunnels.stop_all(Stop::Cut);
        for &index in &cut {
            self.shared.update(index, |r| r.cut = true);
        }
        cut.len()
    }

    /// Stalls every tunnel relaying right now, as a proxy that hangs (or a path whose far end
    /// vanished without FIN or RST) would: nothing more is relayed either way and nothing is
    /// closed, so the client sees a silent, open connection. The client's bytes are read and
    /// dropped until it closes; then both connections close. Marks their records
    /// [`SocksRecord::stalled`] and returns how many were stalled; later connections are served
    /// as usual. A stalled tunnel cannot be cut.
    pub fn stall_tunnels(&self) -> usize {
        let stalled = self.shared.tunnels.stop_all(Stop::Stall);
        for &index in &stalled {
            self.shared.update(index, |r| r.stalled = true);
        }
        stalled.len()
    }

    /// Stops accepting and closes every connection; returns once the port is released. The records
    /// stay readable.
    pub async fn shutdown(&mut self) {
        self.task.shutdown().await;
    }
}

struct Shared {
    options: SocksOptions,
    records: Mutex<Vec<SocksRecord>>,
    /// How many connections are closed, for [`SocksProxy::connections_when_closed`].
    closed: watch::Sender<usize>,
    /// The relays running now, for [`SocksProxy::cut_tunnels`].
    tunnels: Tunnels,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SocksRecord>> {
        // A panic elsewhere must not hide what the proxy recorded.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut SocksRecord)) {
        if let Some(record) = self.lock().get_mut(index) {
            f(record);
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connection tasks live in this set, so aborting the accept task drops them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(handle(stream, peer, Arc::clone(&shared)));
                }
                // e.g. too many open files: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let index = {
        let mut records = shared.lock();
        records.push(SocksRecord::new(peer));
        records.len() - 1
    };
    let mut conn = Conn {
        stream,
        shared: Arc::clone(&shared),
        index,
    };
    if let Err(error) = conn.serve().await {
        conn.record(|r| r.error = Some(error));
    }
    drop(conn.stream);
    shared.update(index, |r| r.closed = true);
    shared.closed.send_modify(|n| *n += 1);
}

/// A destination as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Ip(IpAddr),
    Domain(Vec<u8>),
}

impl Target {
    fn addr_type(&self) -> AddrType {
        match self {
            Target::Ip(IpAddr::V4(_)) => AddrType::Ipv4,
            Target::Ip(IpAddr::V6(_)) => AddrType::Ipv6,
            Target::Domain(_) => AddrType::Domain,
        }
    }

    fn host(&self) -> String {
        match self {
            Target::Ip(ip) => ip.to_string(),
            Target::Domain(name) => String::from_utf8_lossy(name).into_owned(),
        }
    }
}

/// The network-safety policy: the only destinations are loopback addresses and the name `localhost`,
/// which maps to 127.0.0.1 without asking DNS.
fn loopback_target(target: &Target, port: u16) -> Result<SocketAddr, String> {
    match target {
        Target::Ip(ip) if ip.is_loopback() => Ok(SocketAddr::new(*ip, port)),
        Target::Domain(name) if name.eq_ignore_ascii_case(b"localhost") => {
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
        }
        other => Err(format!(
            "target {} is not loopback: not allowed",
            other.host()
        )),
    }
}

/// A SOCKS5 reply: `VER REP RSV ATYP BND.ADDR BND.PORT`.
fn socks5_reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let mut reply = vec![0x05, code, 0x00];
    match bound.unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)) {
        SocketAddr::V4(addr) => {
            reply.push(0x01);
            reply.extend_from_slice(&addr.ip().octets());
            reply.extend_from_slice(&addr.port().to_be_bytes());
        }
        SocketAddr::V6(addr) => {
            reply.push(0x04);
            reply.extend_from_slice(&addr.ip().octets());
            reply.extend_from_slice(&addr.port().to_be_bytes());
        }
    }
    reply
}

/// A SOCKS4 reply: `VN=0 CD DSTPORT DSTIP`, with the bound address when it is IPv4.
fn socks4_reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let mut reply = vec![0x00, code];
    match bound {
        Some(SocketAddr::V4(addr)) => {
            reply.extend_from_slice(&addr.port().to_be_bytes());
            reply.extend_from_slice(&addr.ip().octets());
        }
        _ => reply.extend_from_slice(&[0; 6]),
    }
    reply
}

/// SOCKS5 failure code for a failed onward connect.
fn socks5_connect_error(error: &io::Error) -> u8 {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => SOCKS5_CONNECTION_REFUSED,
        io::ErrorKind::TimedOut | io::ErrorKind::HostUnreachable => SOCKS5_HOST_UNREACHABLE,
        _ => SOCKS5_GENERAL_FAILURE,
    }
}

/// One client connection: every read is length-checked and recorded.
struct Conn {
    stream: TcpStream,
    shared: Arc<Shared>,
    index: usize,
}

impl Conn {
    fn record(&self, update: impl FnOnce(&mut SocksRecord)) {
        self.shared.update(self.index, update);
    }

    fn options(&self) -> &SocksOptions {
        &self.shared.options
    }

    /// Reads exactly `len` bytes, recording each chunk as it arrives so a truncated message is kept.
    async fn read_exact(&mut self, len: usize, what: &str) -> Result<Vec<u8>, String> {
        let mut buf = vec![0; len];
        let mut filled = 0;
        while filled < len {
            let n = self
                .stream
                .read(&mut buf[filled..])
                .await
                .map_err(|e| format!("reading {what}: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "client closed while sending {what} ({filled} of {len} bytes)"
                ));
            }
            let chunk = &buf[filled..filled + n];
            self.record(|r| r.request_bytes.extend_from_slice(chunk));
            filled += n;
        }
        Ok(buf)
    }

    async fn read_u8(&mut self, what: &str) -> Result<u8, String> {
        let bytes = self.read_exact(1, what).await?;
        Ok(bytes[0])
    }

    async fn read_u16(&mut self, what: &str) -> Result<u16, String> {
        let bytes = self.read_exact(2, what).await?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// Reads a NUL-terminated field of at most [`MAX_NUL_TERMINATED`] bytes, without the NUL.
    async fn read_nul_terminated(&mut self, what: &str) -> Result<Vec<u8>, String> {
        let mut field = Vec::new();
        loop {
            let byte = self.read_u8(what).await?;
            if byte == 0 {
                return Ok(field);
            }
            if field.len() == MAX_NUL_TERMINATED {
                return Err(format!(
                    "{what} longer than {MAX_NUL_TERMINATED} bytes without a NUL"
                ));
            }
            field.push(byte);
        }
    }

    async fn write(&mut self, bytes: &[u8], what: &str) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("writing {what}: {e}"))
    }

    /// Ends the connection politely: no more writes, then record whatever the client still sends until
    /// it closes, so closing does not reset the connection over unread bytes (which could discard the
    /// reply the client has not read yet).
    async fn close(&mut self) {
        let _ = self.stream.shutdown().await;
        let _ = tokio::time::timeout(DRAIN_DEADLINE, self.drain()).await;
    }

    /// Reads and records until the client closes.
    async fn drain(&mut self) {
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let chunk = &buf[..n];
                    self.record(|r| r.request_bytes.extend_from_slice(chunk));
                }
            }
        }
    }

    async fn serve(&mut self) -> Result<(), String> {
        match self.options().fault {
            Fault::CloseImmediately => return Ok(()),
            Fault::NeverAnswer => {
                self.drain().await;
                return Ok(());
            }
            Fault::Garbage => {
                let mut buf = [0u8; 1024];
                let n = self
                    .stream
                    .read(&mut buf)
                    .await
                    .map_err(|e| format!("reading first bytes: {e}"))?;
                let chunk = &buf[..n];
                self.record(|r| {
                    r.request_bytes.extend_from_slice(chunk);
                    r.version = match chunk.first() {
                        Some(4) => Some(SocksVersion::Socks4),
                        Some(5) => Some(SocksVersion::Socks5),
                        _ => None,
                    };
                });
                self.write(GARBAGE, "garbage").await?;
                self.close().await;
                return Ok(());
            }
            Fault::None | Fault::CloseMidHandshake | Fault::Reply(_) | Fault::Stall => {}
        }
        let version = self.read_u8("version byte").await?;
        let result = match version {
            4 if self.options().socks4 => self.socks4().await,
            5 if self.options().socks5 => self.socks5().await,
            4 | 5 => Err(format!("socks{version} is not accepted by this proxy")),
            other => Err(format!("unknown version byte {other:#04x}")),
        };
        if result.is_err() {
            self.close().await;
        }
        result
    }

    async fn socks4(&mut self) -> Result<(), String> {
        self.record(|r| r.version = Some(SocksVersion::Socks4));
        let command = self.read_u8("socks4 command").await?;
        let port = self.read_u16("socks4 port").await?;
        let ip = self.read_exact(4, "socks4 address").await?;
        let ip = Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]);
        let user_id = self.read_nul_terminated("socks4 user id").await?;
        self.record(|r| {
            r.socks4_user_id = Some(String::from_utf8_lossy(&user_id).into_owned());
            r.target_port = Some(port);
        });
        let [a, b, c, d] = ip.octets();
        let target = if [a, b, c] == [0, 0, 0] && d != 0 {
            self.record(|r| r.version = Some(SocksVersion::Socks4a));
            if !self.options().supports_socks4a {
                // Interpreted as an address, as a proxy without 4a would; the host name is not read.
                self.record(|r| {
                    r.addr_type = Some(AddrType::Ipv4);
                    r.target_host = Some(ip.to_string());
                });
                self.socks4_fail(SOCKS4_REJECTED).await;
                return Err(
                    "socks4a request (destination 0.0.0.x) but socks4a is not supported".into(),
                );
            }
            Target::Domain(self.read_nul_terminated("socks4a host name").await?)
        } else {
            Target::Ip(IpAddr::V4(ip))
        };
        self.record(|r| {
            r.addr_type = Some(target.addr_type());
            r.target_host = Some(target.host());
        });
        if command != 0x01 {
            self.socks4_fail(SOCKS4_REJECTED).await;
            return Err(format!("unsupported socks4 command {command:#04x}"));
        }
        match self.options().fault {
            Fault::CloseMidHandshake => {
                self.record(|r| r.reply = Some(SOCKS4_GRANTED));
                self.write(&[0x00, SOCKS4_GRANTED], "partial socks4 reply")
                    .await?;
                self.close().await;
                return Ok(());
            }
            Fault::Reply(code) => {
                self.socks4_fail(code).await;
                return Ok(());
            }
            _ => {}
        }
        let addr = match loopback_target(&target, port) {
            Ok(addr) => addr,
            Err(error) => {
                self.socks4_fail(SOCKS4_REJECTED).await;
                return Err(error);
            }
        };
        let onward = match connect(addr).await {
            Ok(onward) => onward,
            Err(error) => {
                self.socks4_fail(SOCKS4_REJECTED).await;
                return Err(format!("connecting to {addr}: {error}"));
            }
        };
        let bound = onward.local_addr().ok();
        self.record(|r| {
            r.upstream = Some(addr);
            r.upstream_local = bound;
            r.reply = Some(SOCKS4_GRANTED);
        });
        self.write(&socks4_reply(SOCKS4_GRANTED, bound), "socks4 reply")
            .await?;
        self.relay(onward).await
    }

    async fn socks4_fail(&mut self, code: u8) {
        self.record(|r| r.reply = Some(code));
        let _ = self.write(&socks4_reply(code, None), "socks4 reply").await;
        self.close().await;
    }

    async fn socks5(&mut self) -> Result<(), String> {
        self.record(|r| r.version = Some(SocksVersion::Socks5));
        let count = self.read_u8("socks5 method count").await?;
        let methods = self
            .read_exact(usize::from(count), "socks5 methods")
            .await?;
        self.record(|r| r.methods = methods.clone());
        let credentials = self.options().credentials.clone();
        let wanted = if credentials.is_some() {
            SOCKS5_USER_PASS
        } else {
            SOCKS5_NO_AUTH
        };
        if !methods.contains(&wanted) {
            self.write(
                &[0x05, SOCKS5_NO_ACCEPTABLE_METHOD],
                "socks5 method selection",
            )
            .await?;
            return Err(format!(
                "no acceptable socks5 method: wanted {wanted:#04x}, offered {methods:02x?}"
            ));
        }
        self.write(&[0x05, wanted], "socks5 method selection")
            .await?;
        if let Some(credentials) = credentials
            && !self.user_pass(&credentials).await?
        {
            self.close().await;
            return Ok(());
        }

        let version = self.read_u8("socks5 request version").await?;
        if version != 0x05 {
            return Err(format!("socks5 request with version byte {version:#04x}"));
        }
        let command = self.read_u8("socks5 command").await?;
        let reserved = self.read_u8("socks5 reserved byte").await?;
        if reserved != 0x00 {
            self.socks5_fail(SOCKS5_GENERAL_FAILURE).await;
            return Err(format!("socks5 reserved byte is {reserved:#04x}, not 0x00"));
        }
        let atyp = self.read_u8("socks5 address type").await?;
        let target = match atyp {
            0x01 => {
                let b = self.read_exact(4, "socks5 ipv4 address").await?;
                Target::Ip(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
            }
            0x04 => {
                let b = self.read_exact(16, "socks5 ipv6 address").await?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&b);
                Target::Ip(IpAddr::V6(Ipv6Addr::from(octets)))
            }
            0x03 => {
                let len = self.read_u8("socks5 domain length").await?;
                Target::Domain(self.read_exact(usize::from(len), "socks5 domain").await?)
            }
            other => {
                self.socks5_fail(SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED).await;
                return Err(format!("unknown socks5 address type {other:#04x}"));
            }
        };
        let port = self.read_u16("socks5 port").await?;
        self.record(|r| {
            r.addr_type = Some(target.addr_type());
            r.target_host = Some(target.host());
            r.target_port = Some(port);
        });
        if command != 0x01 {
            self.socks5_fail(SOCKS5_COMMAND_NOT_SUPPORTED).await;
            return Err(format!("unsupported socks5 command {command:#04x}"));
        }
        match self.options().fault {
            Fault::CloseMidHandshake => {
                self.record(|r| r.reply = Some(SOCKS5_SUCCEEDED));
                self.write(
                    &[0x05, SOCKS5_SUCCEEDED, 0x00, 0x01],
                    "partial socks5 reply",
                )
                .await?;
                self.close().await;
                return Ok(());
            }
            Fault::Reply(code) => {
                self.socks5_fail(code).await;
                return Ok(());
            }
            _ => {}
        }
        let addr = match loopback_target(&target, port) {
            Ok(addr) => addr,
            Err(error) => {
                self.socks5_fail(SOCKS5_NOT_ALLOWED).await;
                return Err(error);
            }
        };
        let onward = match connect(addr).await {
            Ok(onward) => onward,
            Err(error) => {
                self.socks5_fail(socks5_connect_error(&error)).await;
                return Err(format!("connecting to {addr}: {error}"));
            }
        };
        let bound = onward.local_addr().ok();
        self.record(|r| {
            r.upstream = Some(addr);
            r.upstream_local = bound;
            r.reply = Some(SOCKS5_SUCCEEDED);
        });
        self.write(&socks5_reply(SOCKS5_SUCCEEDED, bound), "socks5 reply")
            .await?;
        self.relay(onward).await
    }

    /// RFC 1929 sub-negotiation; returns whether the client authenticated.
    async fn user_pass(&mut self, credentials: &Credentials) -> Result<bool, String> {
        let version = self.read_u8("socks5 auth version").await?;
        if version != 0x01 {
            return Err(format!("socks5 auth version {version:#04x}, not 0x01"));
        }
        let len = self.read_u8("socks5 username length").await?;
        let username = self.read_exact(usize::from(len), "socks5 username").await?;
        let len = self.read_u8("socks5 password length").await?;
        let password = self.read_exact(usize::from(len), "socks5 password").await?;
        let ok = username == credentials.username.as_bytes()
            && password == credentials.password.as_bytes();
        self.record(|r| {
            r.username = Some(String::from_utf8_lossy(&username).into_owned());
            r.password = Some(String::from_utf8_lossy(&password).into_owned());
            r.auth_ok = Some(ok);
        });
        let status = if ok { 0x00 } else { 0x01 };
        self.write(&[0x01, status], "socks5 auth status").await?;
        Ok(ok)
    }

    async fn socks5_fail(&mut self, code: u8) {
        self.record(|r| r.reply = Some(code));
        let _ = self.write(&socks5_reply(code, None), "socks5 reply").await;
        self.close().await;
    }

    async fn relay(&mut self, mut onward: TcpStream) -> Result<(), String> {
        if self.options().fault == Fault::Stall {
            self.record(|r| r.stalled = true);
            self.hold_stalled().await;
            return Ok(());
        }
        let stop = self.shared.tunnels.open(self.index);
        let relayed = tokio::select! {
            relayed = tokio::io::copy_bidirectional(&mut self.stream, &mut onward) => Ok(relayed),
            // `cut_tunnels` / `stall_tunnels` mark the record. A sender dropped without a word
            // only happens when the proxy itself goes away: cut.
            stop = stop => Err(stop.unwrap_or(Stop::Cut)),
        };
        self.shared.tunnels.close(self.index);
        let relayed = match relayed {
            Ok(relayed) => relayed,
            // Returning drops both streams.
            Err(Stop::Cut) => return Ok(()),
            Err(Stop::Stall) => {
                // `onward` stays open (unread) while the client is held.
                self.hold_stalled().await;
                return Ok(());
            }
        };
        match relayed {
            Ok((to_target, to_client)) => {
                self.record(|r| {
                    r.bytes_to_target = to_target;
                    r.bytes_to_client = to_client;
                });
                Ok(())
            }
            Err(error) => Err(format!("relaying: {error}")),
        }
    }

    /// Holds a stalled tunnel: relays nothing, closes nothing, and reads and drops what the
    /// client sends (unrecorded: it is tunnel data, not handshake) until it closes.
    async fn hold_stalled(&mut self) {
        let mut sink = [0u8; 4096];
        while matches!(self.stream.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    match tokio::time::timeout(CONNECT_DEADLINE, TcpStream::connect(addr)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection within {CONNECT_DEADLINE:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_allowed() {
        let cases: &[(Target, Option<&str>)] = &[
            (
                Target::Ip("127.0.0.1".parse().expect("ip")),
                Some("127.0.0.1:80"),
            ),
            (
                Target::Ip("127.9.9.9".parse().expect("ip")),
                Some("127.9.9.9:80"),
            ),
            (Target::Ip("::1".parse().expect("ip")), Some("[::1]:80")),
            (Target::Domain(b"localhost".to_vec()), Some("127.0.0.1:80")),
            (Target::Domain(b"LocalHost".to_vec()), Some("127.0.0.1:80")),
            (Target::Ip("192.0.2.1".parse().expect("ip")), None),
            (Target::Ip("0.0.0.0".parse().expect("ip")), None),
            (Target::Ip("::".parse().expect("ip")), None),
            (Target::Ip("::ffff:127.0.0.1".parse().expect("ip")), None),
            (Target::Ip("2001:db8::1".parse().expect("ip")), None),
            (Target::Domain(b"localhost.".to_vec()), None),
            (Target::Domain(b"localhost.example.com".to_vec()), None),
            (Target::Domain(b"example.com".to_vec()), None),
            (Target::Domain(b"127.0.0.1".to_vec()), None),
        ];
        for (target, expected) in cases {
            let got = loopback_target(target, 80).ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), *expected, "{target:?}");
        }
    }

    #[test]
    fn replies_are_encoded_on_the_wire() {
        let v4: SocketAddr = "127.0.0.1:258".parse().expect("addr");
        let v6: SocketAddr = "[::1]:258".parse().expect("addr");
        assert_eq!(socks5_reply(0, Some(v4)), [5, 0, 0, 1, 127, 0, 0, 1, 1, 2]);
        assert_eq!(socks5_reply(2, None), [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
        let mut expected = vec![5, 0, 0, 4];
        expected.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        expected.extend_from_slice(&[1, 2]);
        assert_eq!(socks5_reply(0, Some(v6)), expected);
        assert_eq!(socks4_reply(0x5A, Some(v4)), [0, 0x5A, 1, 2, 127, 0, 0, 1]);
        assert_eq!(socks4_reply(0x5B, None), [0, 0x5B, 0, 0, 0, 0, 0, 0]);
    }
}
