//! Launchers for real third-party proxies installed from Debian (squid, tinyproxy, microsocks,
//! dante), started on loopback with loopback-only destination rules, and readers for their logs.
//!
//! Where the in-process fakes ([`crate::ConnectProxy`], [`crate::SocksProxy`]) check that a client
//! speaks the protocols as we read them, these check it against implementations written by others.
//! [`RealProxy::start`] picks a free port on 127.0.0.1, writes the daemon's configuration into a
//! private temporary directory, runs the binary in the foreground as a child of the test process,
//! and waits until the port accepts TCP. [`RealProxy::connections`] parses the daemon's own log into
//! [`RealRecord`]s, so a test can prove which connections really went through the proxy. The daemon
//! is stopped by its PID on [`RealProxy::shutdown`] or when the handle is dropped, so a panicking
//! test stops it too: SIGTERM (sent with the `kill` utility, as the workspace denies `unsafe` and has
//! no libc binding), then, after a grace period or if `kill` is missing, SIGKILL through
//! [`std::process::Child::kill`]. No daemon is started in a mode that forks into the background, and
//! each runs in the test's process group, so an interrupted `cargo test` (Ctrl-C) stops them too; a
//! test binary killed with SIGKILL cannot stop its daemons, and leaves them running.
//!
//! # What each proxy allows, and what its log proves
//!
//! Every daemon listens on 127.0.0.1 only and serves clients from 127.0.0.0/8 only.
//!
//! - **squid** (`squid -N`, HTTP CONNECT only, optional Basic auth): destinations must be named
//!   `localhost`, an IPv4 literal in 127.0.0.0/8 or `[::1]` (a `dstdom_regex -n` rule, checked
//!   without any DNS lookup, so other names are refused without a query) and must resolve into
//!   127.0.0.0/8 or ::1 (`dst`); anything else is `403`. DNS goes to 127.0.0.1 only, outgoing TCP is
//!   bound to 127.0.0.1 / ::1 (the kernel refuses to connect such a socket anywhere else), nothing is
//!   cached, and every file it writes lives in the temporary directory (started as root, squid runs
//!   as its `cache_effective_user`, `proxy` on Debian, so that directory is then made
//!   world-writable). Basic credentials are checked
//!   by squid's own `basic_ncsa_auth` helper against a password file holding the MD5 hex digest of
//!   the password (one of the formats the helper accepts; computed here, see `md5`). Its access log
//!   (a custom `logformat`) gives, per request: the client address and port, the result code and
//!   status (`TCP_TUNNEL/200`, `TCP_DENIED/407`, `TCP_DENIED/403`), the requested `host:port`, the
//!   authenticated user, and the address squid connected to. Lines are written when a transaction
//!   ends, so a tunnel shows up once it is closed.
//! - **tinyproxy** (`tinyproxy -d`, HTTP CONNECT, optional Basic auth): tinyproxy has no destination
//!   ACL, so a host filter with `FilterDefaultDeny Yes` allows only `localhost` and IPv4 literals in
//!   127.0.0.0/8 (checked on the name as sent, before any lookup; anything else is `403 Filtered`),
//!   and `Bind 127.0.0.1` keeps outgoing connections on loopback (so `[::1]` targets are not
//!   reachable through it). Its `BasicAuth` directive accepts only `[-A-Za-z0-9._]` in user and
//!   password. Its log gives the client IP (no port), the request line, whether it connected or
//!   filtered the request, and when a tunnel closed. It logs nothing about a failed Basic
//!   authentication (and answers a wrong password with `401`, not `407`).
//! - **microsocks** (SOCKS5 only, optional RFC 1929 username/password): microsocks has **no
//!   destination ACL**. It is bound with `-i 127.0.0.1` and its outgoing sockets with
//!   `-b 127.0.0.1`, which makes the kernel refuse (EINVAL) connects to anything off loopback; but
//!   that is a side effect, not a rule, so tests must only ever ask it for loopback targets, and must
//!   never send it SOCKS4 or SOCKS4a (it answers SOCKS5 `05 FF` to them). Its log (stderr) has one
//!   line per successful connect: the client IP and the `host:port` it connected to. Failed
//!   authentication and closes are not logged.
//! - **dante** (`danted` without `-D`, SOCKS4 and SOCKS5, no authentication): `socks pass` rules
//!   allow only 127.0.0.0/8 (and ::1 for SOCKS5), a final `socks block` refuses everything else
//!   (SOCKS5 reply `02`, SOCKS4 `5B`), and `external: lo` keeps outgoing connections on loopback.
//!   Dante resolves SOCKS5 domain names with the system resolver *before* it applies its rules, so
//!   tests must send it IP literals or `localhost` only. Its log gives, per request: the client
//!   address and port, the target address, pass or block, the end of the session and why, and the
//!   protocol (SOCKS4 and SOCKS5 pass through different numbered rules). Username authentication is
//!   not offered: dante checks it against system accounts, and feed-sim does not create users.
//!
//! Connections that never sent a request (such as the launcher's own readiness probe) are not
//! records. Set [`KEEP_DIR_ENV`] to keep a proxy's directory (config and logs) when it fails to
//! start or when it is dropped during a panic.

use std::env;
use std::fmt;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use tempfile::TempDir;

/// When this environment variable is `1`, [`require_or_skip`] panics instead of skipping (CI sets
/// it, so a missing proxy fails the build rather than passing silently).
pub const REQUIRE_REAL_PROXIES_ENV: &str = "FEED_E2E_REQUIRE_REAL_PROXIES";

/// When this environment variable is `1`, a proxy's temporary directory (config and logs) is kept
/// if the proxy fails to start or is dropped while the thread panics; its path goes to stderr.
pub const KEEP_DIR_ENV: &str = "FEED_SIM_KEEP_PROXY_DIRS";

/// How long a daemon may take to accept TCP on its port unless the options say otherwise.
const DEFAULT_STARTUP_DEADLINE: Duration = Duration::from_secs(10);

/// How long a daemon gets to exit after SIGTERM before it is killed (squid needs about 1.5 s).
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How often start and stop look at the child and the port.
const POLL: Duration = Duration::from_millis(20);

/// How long one readiness probe may take to connect (loopback: a refusal is immediate).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Attempts to start on a fresh port when the daemon exits at once (e.g. another process took the
/// port between our probe bind and the daemon's).
const START_ATTEMPTS: usize = 3;

/// Lines of each file shown when a daemon fails to start.
const TAIL_LINES: usize = 25;

/// squid's NCSA password-file helper, shipped in Debian's `squid` package.
const SQUID_AUTH_HELPER: &str = "/usr/lib/squid/basic_ncsa_auth";

/// The dante rule numbers of `dante_config`: SOCKS4 and SOCKS5 pass through different rules,
/// which is how a log line tells the protocol.
const DANTE_SOCKS4_RULE: u32 = 1;

/// Percent-encode everything except RFC 3986 unreserved characters in URL userinfo.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Which real proxy to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RealProxyKind {
    /// squid: HTTP CONNECT, optional Basic auth.
    Squid,
    /// tinyproxy: HTTP CONNECT, optional Basic auth (restricted character set).
    Tinyproxy,
    /// microsocks: SOCKS5, optional username/password. No destination ACL: loopback targets only.
    Microsocks,
    /// dante (`danted`): SOCKS4 and SOCKS5 without authentication.
    Dante,
}

impl RealProxyKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 4] = [Self::Squid, Self::Tinyproxy, Self::Microsocks, Self::Dante];

    /// The executable's file name.
    pub fn binary_name(self) -> &'static str {
        match self {
            Self::Squid => "squid",
            Self::Tinyproxy => "tinyproxy",
            Self::Microsocks => "microsocks",
            Self::Dante => "danted",
        }
    }

    /// The Debian package that installs it (`tinyproxy-bin`: the binary without the service).
    pub fn debian_package(self) -> &'static str {
        match self {
            Self::Squid => "squid",
            Self::Tinyproxy => "tinyproxy-bin",
            Self::Microsocks => "microsocks",
            Self::Dante => "dante-server",
        }
    }

    /// The URL scheme [`RealProxy::url`] uses: `http` or `socks5`.
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Squid | Self::Tinyproxy => "http",
            Self::Microsocks | Self::Dante => "socks5",
        }
    }

    /// The executable's path, searched in `PATH` and the usual `sbin` directories (which a
    /// non-root `PATH` often lacks). For squid the Basic auth helper must be present too.
    ///
    /// # Errors
    /// A sentence saying what is missing, for a skip message.
    pub fn locate(self) -> Result<PathBuf, String> {
        let name = self.binary_name();
        let path_dirs = env::var_os("PATH")
            .map(|p| env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];
        let binary = path_dirs
            .into_iter()
            .chain(extra.iter().map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| {
                format!(
                    "{self}: `{name}` not found in PATH or the sbin directories (Debian package `{}`)",
                    self.debian_package()
                )
            })?;
        if self == Self::Squid && !is_executable(Path::new(SQUID_AUTH_HELPER)) {
            return Err(format!(
                "squid: its Basic auth helper {SQUID_AUTH_HELPER} is missing (Debian package `squid`)"
            ));
        }
        Ok(binary)
    }
}

impl fmt::Display for RealProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Squid => "squid",
            Self::Tinyproxy => "tinyproxy",
            Self::Microsocks => "microsocks",
            Self::Dante => "dante",
        })
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a test that needs `kind` should run: `true` when the binary is installed. Otherwise it
/// prints the reason to stderr and returns `false` (the test should return at once), or, when
/// [`REQUIRE_REAL_PROXIES_ENV`] is `1`, panics with the reason.
///
/// ```no_run
/// # use feed_sim::real::{RealProxyKind, require_or_skip};
/// if !require_or_skip(RealProxyKind::Squid) {
///     return;
/// }
/// ```
///
/// # Panics
/// When the binary is missing and [`REQUIRE_REAL_PROXIES_ENV`] is `1`.
pub fn require_or_skip(kind: RealProxyKind) -> bool {
    let required = env::var(REQUIRE_REAL_PROXIES_ENV).is_ok_and(|v| v == "1");
    match skip_decision(kind.locate().err(), required) {
        Ok(run) => run,
        Err(reason) => panic!("{reason}"),
    }
}

/// `Ok(true)` to run, `Ok(false)` after printing a skip message, `Err` to fail.
fn skip_decision(missing: Option<String>, required: bool) -> Result<bool, String> {
    match missing {
        None => Ok(true),
        Some(reason) if required => Err(format!(
            "{reason}; {REQUIRE_REAL_PROXIES_ENV}=1 requires every real proxy"
        )),
        Some(reason) => {
            eprintln!(
                "SKIPPED: {reason} (set {REQUIRE_REAL_PROXIES_ENV}=1 to make this a failure)"
            );
            Ok(false)
        }
    }
}

/// A username and password; Debug prints the password as `***`.
#[derive(Clone, PartialEq, Eq)]
struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// How to start a [`RealProxy`].
#[derive(Debug, Clone, Default)]
pub struct RealProxyOptions {
    credentials: Option<Credentials>,
    startup_deadline: Option<Duration>,
}

impl RealProxyOptions {
    /// No authentication, the default 10 s startup deadline.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires these credentials: Basic (`Proxy-Authorization`) for squid and tinyproxy, RFC 1929
    /// username/password for microsocks. Dante does not support it ([`RealProxy::start`] fails with
    /// [`io::ErrorKind::Unsupported`]); tinyproxy accepts only `[-A-Za-z0-9._]` in both.
    #[must_use]
    pub fn user_pass(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// How long the daemon may take to accept TCP on its port before start fails.
    #[must_use]
    pub fn startup_deadline(mut self, deadline: Duration) -> Self {
        self.startup_deadline = Some(deadline);
        self
    }
}

/// Checks that `kind` can be configured with `options`, before anything is written or spawned.
fn validate(kind: RealProxyKind, options: &RealProxyOptions) -> io::Result<()> {
    let Some(credentials) = &options.credentials else {
        return Ok(());
    };
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    let (user, password) = (&credentials.user, &credentials.password);
    let has_control = |s: &str| s.chars().any(char::is_control);
    match kind {
        RealProxyKind::Dante => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "dante: username authentication checks system accounts, which feed-sim does not create",
        )),
        RealProxyKind::Tinyproxy => {
            let allowed = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
            };
            if allowed(user) && allowed(password) {
                Ok(())
            } else {
                invalid("tinyproxy: BasicAuth user and password may only use [-A-Za-z0-9._]".into())
            }
        }
        RealProxyKind::Squid => {
            if user.is_empty() || user.contains(':') || has_control(user) {
                invalid(
                    "squid: the user must be non-empty, without ':' or control characters".into(),
                )
            } else if password.is_empty() || has_control(password) {
                invalid("squid: the password must be non-empty, without control characters".into())
            } else {
                Ok(())
            }
        }
        RealProxyKind::Microsocks => {
            let fits = |s: &str| (1..=255).contains(&s.len()) && !s.contains('\0');
            if fits(user) && fits(password) {
                Ok(())
            } else {
                invalid(
                    "microsocks: RFC 1929 user and password must be 1..=255 bytes, no NUL".into(),
                )
            }
        }
    }
}

/// One connection as the proxy's own log shows it. Which fields are known depends on the proxy
/// (see the module documentation); `None` means its log does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RealRecord {
    /// The client's IP address.
    pub client_ip: Option<IpAddr>,
    /// The client's port (squid, dante).
    pub client_port: Option<u16>,
    /// The destination as requested, `host:port` (`[v6]:port` for IPv6); dante logs addresses, so
    /// a name sent to it shows up resolved.
    pub target: Option<String>,
    /// The address the proxy connected to (squid, dante).
    pub upstream: Option<SocketAddr>,
    /// `Some(true)` if the proxy's rules let the request through (whether or not the target then
    /// answered), `Some(false)` if it refused it (destination rule or authentication).
    pub allowed: Option<bool>,
    /// The HTTP status squid answered.
    pub status: Option<u16>,
    /// The user squid authenticated (or tried to).
    pub user: Option<String>,
    /// 4 or 5: the SOCKS version of a request dante let through.
    pub socks_version: Option<u8>,
    /// What the log says about the outcome: squid's result code (`TCP_TUNNEL/200`), dante's
    /// session end or refusal reason, tinyproxy's refusal or connect error.
    pub detail: Option<String>,
    /// Whether the log holds everything it will say about this connection: the connection ended
    /// (squid, dante, tinyproxy tunnels and refusals), or, for microsocks, which logs one line per
    /// connection and nothing when it closes, as soon as that line is written.
    pub closed: bool,
    /// The log lines this record was built from.
    pub lines: Vec<String>,
}

impl RealRecord {
    /// The client's address, when the log gives both IP and port.
    pub fn client(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.client_ip?, self.client_port?))
    }

    /// The port of [`RealRecord::target`].
    pub fn target_port(&self) -> Option<u16> {
        self.target.as_deref()?.rsplit_once(':')?.1.parse().ok()
    }
}

/// A real proxy daemon on 127.0.0.1, stopped by its PID on [`RealProxy::shutdown`] or drop.
///
/// Dropping blocks the thread until the daemon has exited (squid takes about 1.5 s after SIGTERM);
/// async code that cares can `shutdown().await` first.
pub struct RealProxy {
    kind: RealProxyKind,
    addr: SocketAddr,
    credentials: Option<Credentials>,
    child: Option<Child>,
    pid: u32,
    dir_path: PathBuf,
    dir: Option<TempDir>,
}

impl fmt::Debug for RealProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealProxy")
            .field("kind", &self.kind)
            .field("url", &self.url())
            .field("pid", &self.pid)
            .field("dir", &self.dir_path)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// Why one start attempt failed.
enum Startup {
    /// The daemon exited before its port accepted: retry on a new port.
    Exited(String),
    /// The port did not accept within the deadline: give up.
    TimedOut(String),
}

impl RealProxy {
    /// Starts `kind` on a free port of 127.0.0.1 and waits until the port accepts TCP. Needs a
    /// tokio runtime (with the time driver).
    ///
    /// # Errors
    /// [`io::ErrorKind::InvalidInput`] or [`io::ErrorKind::Unsupported`] for credentials the proxy
    /// cannot take, [`io::ErrorKind::NotFound`] when the binary is missing (call
    /// [`require_or_skip`] first), [`io::ErrorKind::TimedOut`] when the port did not accept within
    /// the deadline, or any other error when the daemon exits at once three times; the message
    /// carries the tail of its logs.
    pub async fn start(kind: RealProxyKind, options: RealProxyOptions) -> io::Result<Self> {
        validate(kind, &options)?;
        let binary = kind
            .locate()
            .map_err(|why| io::Error::new(io::ErrorKind::NotFound, why))?;
        let deadline = options.startup_deadline.unwrap_or(DEFAULT_STARTUP_DEADLINE);
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let mut proxy = Self::spawn(kind, &binary, options.credentials.clone())?;
            match proxy.wait_ready(deadline).await {
                Ok(()) => return Ok(proxy),
                Err(Startup::Exited(why)) => {
                    proxy.keep_dir_if_asked();
                    failures.push(why);
                }
                Err(Startup::TimedOut(why)) => {
                    proxy.shutdown().await;
                    proxy.keep_dir_if_asked();
                    return Err(io::Error::new(io::ErrorKind::TimedOut, why));
                }
            }
        }
        Err(io::Error::other(format!(
            "{kind} did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n")
        )))
    }

    /// Writes the configuration for a fresh port into a fresh directory and spawns the daemon.
    fn spawn(
        kind: RealProxyKind,
        binary: &Path,
        credentials: Option<Credentials>,
    ) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("feed-sim-{kind}-"))
            .tempdir()?;
        let dir_path = dir.path().to_path_buf();
        if dir_path
            .to_str()
            .is_none_or(|p| p.chars().any(|c| c.is_whitespace() || c == '"'))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{kind}: temporary directory {} cannot be written into a config file (set TMPDIR)",
                    dir_path.display()
                ),
            ));
        }
        let port = free_port()?;
        let mut command = prepare(kind, binary, &dir_path, port, credentials.as_ref())?;
        let child = command
            .current_dir(&dir_path)
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir_path.join("stdout.log"))?)
            .stderr(fs::File::create(dir_path.join("stderr.log"))?)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("{kind}: spawning {}: {e}", binary.display()),
                )
            })?;
        Ok(Self {
            kind,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            credentials,
            pid: child.id(),
            child: Some(child),
            dir_path,
            dir: Some(dir),
        })
    }

    async fn wait_ready(&mut self, deadline: Duration) -> Result<(), Startup> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(Startup::Exited(format!(
                    "{} exited during startup ({status}) on {}:\n{}",
                    self.kind,
                    self.addr,
                    self.diagnostics()
                )));
            }
            let probe =
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(self.addr));
            if let Ok(Ok(stream)) = probe.await {
                drop(stream);
                // A daemon that lost its port to another process exits; ours must still run.
                if self.exit_status().is_none() {
                    return Ok(());
                }
                continue;
            }
            if Instant::now() >= until {
                return Err(Startup::TimedOut(format!(
                    "{} did not accept on {} within {deadline:?}:\n{}",
                    self.kind,
                    self.addr,
                    self.diagnostics()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit status if the child has exited (and is now reaped).
    fn exit_status(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    /// Which proxy this is.
    pub fn kind(&self) -> RealProxyKind {
        self.kind
    }

    /// The address it listens on (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The daemon's PID (the process the launcher started and stops).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The temporary directory holding its config and logs.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        self.url_with_scheme(self.kind.scheme())
    }

    /// The URL with another scheme, e.g. `socks4` or `socks5h` for dante.
    pub fn url_with_scheme(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.addr)
    }

    /// The URL with the configured credentials percent-encoded in its userinfo
    /// (`socks5://user:p%40ss@127.0.0.1:PORT`); the same as [`RealProxy::url`] without them.
    pub fn url_with_credentials(&self) -> String {
        match &self.credentials {
            None => self.url(),
            Some(c) => format!(
                "{}://{}:{}@{}",
                self.kind.scheme(),
                utf8_percent_encode(&c.user, USERINFO),
                utf8_percent_encode(&c.password, USERINFO),
                self.addr
            ),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir_path.join(match self.kind {
            RealProxyKind::Squid => "access.log",
            RealProxyKind::Tinyproxy => "tinyproxy.log",
            RealProxyKind::Microsocks => "stderr.log",
            RealProxyKind::Dante => "danted.log",
        })
    }

    /// The proxy's connection log as written so far (squid's access log, tinyproxy's log file,
    /// microsocks' stderr, dante's `logoutput`); empty if it does not exist yet.
    pub fn log_text(&self) -> String {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Every connection the log shows so far, in the order the log first mentions them.
    pub fn connections(&self) -> Vec<RealRecord> {
        parse_log(self.kind, &self.log_text())
    }

    /// Waits until the log shows at least `count` closed connections or `deadline` passes, then
    /// returns every record.
    pub async fn connections_when_closed(
        &self,
        count: usize,
        deadline: Duration,
    ) -> Vec<RealRecord> {
        let _ = tokio::time::timeout(deadline, async {
            while self.connections().iter().filter(|r| r.closed).count() < count {
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        self.connections()
    }

    /// The last lines of every file in the proxy's directory (logs, stdout, stderr), for failure
    /// messages.
    pub fn diagnostics(&self) -> String {
        let mut names: Vec<PathBuf> = fs::read_dir(&self.dir_path)
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.sort();
        let mut out = format!("{} directory {}\n", self.kind, self.dir_path.display());
        for path in names
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
        {
            let text = fs::read(path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            out.push_str(&format!("--- {name} (last {} lines)\n", tail.len()));
            for line in tail {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after a grace period) and reaps it; returns once it
    /// has exited and its port refuses connections (a process the daemon forked while it was
    /// stopping can hold the listening socket a moment longer; waited for up to the grace
    /// period). The logs stay readable until the handle is dropped.
    pub async fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) && send_sigterm(child.id()) {
            let until = Instant::now() + STOP_GRACE;
            while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                tokio::time::sleep(POLL).await;
            }
        }
        kill_and_reap(&mut child);
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until && port_accepts(self.addr) {
            tokio::time::sleep(POLL).await;
        }
    }

    /// As [`RealProxy::shutdown`], blocking the thread.
    fn stop_blocking(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) && send_sigterm(child.id()) {
            let until = Instant::now() + STOP_GRACE;
            while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(POLL);
            }
        }
        kill_and_reap(&mut child);
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until && port_accepts(self.addr) {
            std::thread::sleep(POLL);
        }
    }

    fn keep_dir_if_asked(&mut self) {
        if env::var(KEEP_DIR_ENV).is_ok_and(|v| v == "1")
            && let Some(dir) = self.dir.take()
        {
            let path = dir.keep();
            eprintln!("feed-sim: kept {} directory {}", self.kind, path.display());
        }
    }
}

impl Drop for RealProxy {
    fn drop(&mut self) {
        self.stop_blocking();
        if std::thread::panicking() {
            self.keep_dir_if_asked();
        }
    }
}

/// Sends SIGTERM to `pid` with the `kill` utility (no `unsafe` or libc needed); `false` if that
/// could not be done, and the caller goes straight to SIGKILL. Only called for a child that has not
/// been reaped, so the PID cannot belong to another process.
fn send_sigterm(pid: u32) -> bool {
    Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether something still listens on `addr` (a loopback connect, closed at once; refused in
/// microseconds once nothing listens).
fn port_accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, POLL).is_ok()
}

fn kill_and_reap(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        // Fails only if it exited meanwhile; `wait` below reaps it either way.
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// A port on 127.0.0.1 that was free a moment ago: bind port 0, read it, release it.
fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Writes the configuration files for `kind` into `dir` and returns the command to run.
fn prepare(
    kind: RealProxyKind,
    binary: &Path,
    dir: &Path,
    port: u16,
    credentials: Option<&Credentials>,
) -> io::Result<Command> {
    let mut command = Command::new(binary);
    match kind {
        RealProxyKind::Squid => {
            if let Some(c) = credentials {
                let line = format!("{}:{}\n", c.user, md5::hex(c.password.as_bytes()));
                write_readable(&dir.join("passwd"), &line)?;
            }
            let config = dir.join("squid.conf");
            write_readable(&config, &squid_config(dir, port, credentials.is_some()))?;
            // Started as root, squid drops to its `cache_effective_user` (`proxy` on Debian) before
            // it opens its logs: that user must be able to write here.
            if fs::metadata(dir)?.uid() == 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o777))?;
            }
            command.arg("-N").arg("-f").arg(config);
        }
        RealProxyKind::Tinyproxy => {
            write_readable(&dir.join("filter"), TINYPROXY_FILTER)?;
            let config = dir.join("tinyproxy.conf");
            write_readable(&config, &tinyproxy_config(dir, port, credentials))?;
            command.arg("-d").arg("-c").arg(config);
        }
        RealProxyKind::Microsocks => {
            command.args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-b",
                "127.0.0.1",
            ]);
            if let Some(c) = credentials {
                command.arg("-u").arg(&c.user).arg("-P").arg(&c.password);
            }
        }
        RealProxyKind::Dante => {
            let config = dir.join("danted.conf");
            write_readable(&config, &dante_config(dir, port))?;
            command
                .arg("-f")
                .arg(config)
                .arg("-p")
                .arg(dir.join("danted.pid"));
        }
    }
    Ok(command)
}

fn write_readable(path: &Path, text: &str) -> io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
}

/// squid's configuration: CONNECT from loopback to loopback only, nothing cached, every file in
/// `dir`, Basic auth through `basic_ncsa_auth` when `auth`.
fn squid_config(dir: &Path, port: u16, auth: bool) -> String {
    let dir = dir.display();
    let mut config = format!(
        "# feed-sim: squid on loopback, CONNECT to loopback destinations only.
http_port 127.0.0.1:{port}
visible_hostname feed-sim-squid
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
logformat feedsim %ts.%03tu %>a %>p %Ss/%03>Hs %rm %ru %[un %Sh %<a %<p
access_log stdio:{dir}/access.log logformat=feedsim
cache_store_log none
coredump_dir {dir}
netdb_filename none
pinger_enable off
cache deny all
shutdown_lifetime 0 seconds
connect_timeout 5 seconds
dns_nameservers 127.0.0.1
udp_incoming_address 127.0.0.1
udp_outgoing_address 127.0.0.1
tcp_outgoing_address 127.0.0.1
tcp_outgoing_address ::1
acl from_loopback src 127.0.0.0/8 ::1
acl loopback_name dstdom_regex -n ^(localhost|127\\.[0-9]+\\.[0-9]+\\.[0-9]+|\\[::1\\])$
acl to_loopback dst 127.0.0.0/8 ::1
acl CONNECT method CONNECT
http_access deny !from_loopback
http_access deny !loopback_name
http_access deny !to_loopback
http_access deny !CONNECT
"
    );
    if auth {
        config.push_str(&format!(
            "auth_param basic program {SQUID_AUTH_HELPER} {dir}/passwd
auth_param basic realm feed-sim-squid
auth_param basic children 2 startup=1 idle=1
acl authenticated proxy_auth REQUIRED
http_access allow authenticated
"
        ));
    } else {
        config.push_str("http_access allow CONNECT\n");
    }
    config.push_str("http_access deny all\n");
    config
}

/// tinyproxy's host filter: with `FilterDefaultDeny Yes` these are the only destinations allowed.
const TINYPROXY_FILTER: &str = "^127(\\.[0-9]{1,3}){3}$\n^localhost$\n";

/// tinyproxy's configuration: clients from 127.0.0.1, destinations through the host filter only,
/// outgoing connections bound to 127.0.0.1.
fn tinyproxy_config(dir: &Path, port: u16, credentials: Option<&Credentials>) -> String {
    let dir = dir.display();
    let mut config = format!(
        "# feed-sim: tinyproxy on loopback, loopback destinations only (host filter, default deny).
Port {port}
Listen 127.0.0.1
Bind 127.0.0.1
Timeout 30
LogFile \"{dir}/tinyproxy.log\"
LogLevel Info
PidFile \"{dir}/tinyproxy.pid\"
MaxClients 64
Allow 127.0.0.1
Filter \"{dir}/filter\"
FilterType ere
FilterURLs Off
FilterDefaultDeny Yes
"
    );
    if let Some(c) = credentials {
        config.push_str(&format!("BasicAuth {} {}\n", c.user, c.password));
    }
    config
}

/// dante's configuration: no authentication, SOCKS4 (rule 1) and SOCKS5 (rules 2, 3) from loopback
/// to loopback only, everything else blocked (rule 4), outgoing connections on `lo`.
fn dante_config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "# feed-sim: dante on loopback, loopback destinations only.
logoutput: {dir}/danted.log
internal: 127.0.0.1 port = {port}
external: lo
clientmethod: none
socksmethod: none
timeout.negotiate: 10
timeout.connect: 5
client pass {{
  from: 127.0.0.0/8 to: 0/0
  log: error
}}
client block {{
  from: 0/0 to: 0/0
  log: connect error
}}
socks pass {{
  from: 127.0.0.0/8 to: 127.0.0.0/8
  command: connect
  proxyprotocol: socks_v4
  log: connect disconnect error
}}
socks pass {{
  from: 127.0.0.0/8 to: 127.0.0.0/8
  command: connect
  proxyprotocol: socks_v5
  log: connect disconnect error
}}
socks pass {{
  from: 127.0.0.0/8 to: ::1/128
  command: connect
  proxyprotocol: socks_v5
  log: connect disconnect error
}}
socks block {{
  from: 0/0 to: 0/0
  log: connect error
}}
"
    )
}

/// Parses a proxy's log into records.
fn parse_log(kind: RealProxyKind, text: &str) -> Vec<RealRecord> {
    match kind {
        RealProxyKind::Squid => parse_squid(text),
        RealProxyKind::Tinyproxy => parse_tinyproxy(text),
        RealProxyKind::Microsocks => parse_microsocks(text),
        RealProxyKind::Dante => parse_dante(text),
    }
}

fn dash_none(field: &str) -> Option<&str> {
    (field != "-").then_some(field)
}

/// squid, `logformat feedsim`: `time client-ip client-port code/status method target user
/// hierarchy server-ip server-port`, one line per finished transaction.
fn parse_squid(text: &str) -> Vec<RealRecord> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let &[
                _,
                client_ip,
                client_port,
                result,
                method,
                target,
                user,
                hierarchy,
                server_ip,
                server_port,
            ] = fields.as_slice()
            else {
                return None;
            };
            // No request at all (e.g. the readiness probe): `error:transaction-end-before-headers`.
            dash_none(method)?;
            let (code, status) = result.split_once('/')?;
            let upstream = dash_none(server_ip)
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .zip(dash_none(server_port).and_then(|p| p.parse::<u16>().ok()))
                .map(|(ip, port)| SocketAddr::new(ip, port));
            let allowed = if code.starts_with("TCP_DENIED") {
                Some(false)
            } else if hierarchy.starts_with("HIER_DIRECT") || upstream.is_some() {
                Some(true)
            } else {
                None
            };
            Some(RealRecord {
                client_ip: client_ip.parse().ok(),
                client_port: client_port.parse().ok(),
                target: Some(target.to_owned()),
                upstream,
                allowed,
                status: status.parse().ok().filter(|s| *s != 0),
                user: dash_none(user)
                    .map(|u| percent_decode_str(u).decode_utf8_lossy().into_owned()),
                socks_version: None,
                detail: Some(result.to_owned()),
                closed: true,
                lines: vec![line.to_owned()],
            })
        })
        .collect()
}

/// The host of `host:port` or `[v6]:port`.
fn target_host(target: &str) -> Option<&str> {
    let (host, _) = target.rsplit_once(':')?;
    Some(host.trim_start_matches('[').trim_end_matches(']'))
}

/// tinyproxy at `LogLevel Info`: lines `LEVEL date [pid]: message`, interleaved across connections,
/// tied together by the client's file descriptor (and the destination host where it is not given).
fn parse_tinyproxy(text: &str) -> Vec<RealRecord> {
    let mut records: Vec<(Option<u32>, RealRecord)> = Vec::new();
    let open_for_fd = |records: &[(Option<u32>, RealRecord)], fd: u32| {
        records
            .iter()
            .rposition(|(f, r)| *f == Some(fd) && !r.closed)
    };
    // The latest record for `host` that has no verdict yet.
    let pending_for_host = |records: &[(Option<u32>, RealRecord)], host: &str| {
        records.iter().rposition(|(_, r)| {
            r.allowed.is_none()
                && r.target
                    .as_deref()
                    .and_then(target_host)
                    .is_some_and(|h| h.eq_ignore_ascii_case(host))
        })
    };
    for line in text.lines() {
        let Some((_, message)) = line.split_once("]: ") else {
            continue;
        };
        if let Some(rest) = message.strip_prefix("Connect (file descriptor ") {
            let Some((fd, ip)) = rest.split_once("): ") else {
                continue;
            };
            let Ok(fd) = fd.parse::<u32>() else { continue };
            // A new connection on this descriptor means the previous one on it is gone.
            if let Some(i) = open_for_fd(&records, fd) {
                records[i].1.closed = true;
            }
            records.push((
                Some(fd),
                RealRecord {
                    client_ip: ip.trim().parse().ok(),
                    lines: vec![line.to_owned()],
                    ..RealRecord::default()
                },
            ));
        } else if let Some(rest) = message.strip_prefix("Request (file descriptor ") {
            let Some((fd, request)) = rest.split_once("): ") else {
                continue;
            };
            let Ok(fd) = fd.parse::<u32>() else { continue };
            if let Some(i) = open_for_fd(&records, fd) {
                let record = &mut records[i].1;
                record.target = request.split_whitespace().nth(1).map(str::to_owned);
                record.lines.push(line.to_owned());
            }
        } else if let Some(rest) = message.strip_prefix("Established connection to host \"") {
            let Some((host, _)) = rest.split_once('"') else {
                continue;
            };
            if let Some(i) = pending_for_host(&records, host) {
                let record = &mut records[i].1;
                record.allowed = Some(true);
                record.lines.push(line.to_owned());
            }
        } else if let Some(rest) = message.strip_prefix("Proxying refused on filtered ") {
            let Some(host) = rest.split('"').nth(1) else {
                continue;
            };
            if let Some(i) = pending_for_host(&records, host) {
                let record = &mut records[i].1;
                record.allowed = Some(false);
                record.closed = true;
                record.detail = Some(message.to_owned());
                record.lines.push(line.to_owned());
            }
        } else if let Some(target) =
            message.strip_prefix("opensock: Could not establish a connection to ")
        {
            let target = target.trim();
            if let Some(i) = records
                .iter()
                .rposition(|(_, r)| r.allowed.is_none() && r.target.as_deref() == Some(target))
            {
                let record = &mut records[i].1;
                record.allowed = Some(true);
                record.closed = true;
                record.detail = Some(message.to_owned());
                record.lines.push(line.to_owned());
            }
        } else if let Some(rest) =
            message.strip_prefix("Closed connection between local client (fd:")
        {
            let Some(Ok(fd)) = rest.split(')').next().map(str::parse::<u32>) else {
                continue;
            };
            if let Some(i) = open_for_fd(&records, fd) {
                let record = &mut records[i].1;
                record.closed = true;
                record.lines.push(line.to_owned());
            }
        }
    }
    records
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.target.is_some())
        .collect()
}

/// microsocks (stderr): `client[FD] IP: connected to HOST:PORT`, one line per successful connect.
fn parse_microsocks(text: &str) -> Vec<RealRecord> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("client[")?;
            let (_, rest) = rest.split_once("] ")?;
            let (ip, target) = rest.split_once(": connected to ")?;
            Some(RealRecord {
                client_ip: ip.parse().ok(),
                target: Some(target.trim().to_owned()),
                allowed: Some(true),
                closed: true,
                lines: vec![line.to_owned()],
                ..RealRecord::default()
            })
        })
        .collect()
}

/// A dante address, `a.b.c.d.port` or `v6.port`.
fn dante_addr(token: &str) -> Option<SocketAddr> {
    let (ip, port) = token.rsplit_once('.')?;
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

/// The SOCKS version of a request dante passed by rule number `rule` (see `dante_config`).
fn dante_socks_version(rule: &str) -> u8 {
    if rule.parse::<u32>().ok() == Some(DANTE_SOCKS4_RULE) {
        4
    } else {
        5
    }
}

/// dante: `... info: pass(RULE): tcp/connect [: CLIENT PROXY -> EXTERNAL TARGET` when a session
/// starts, `... ]: 0 -> CLIENT PROXY -> 0, 0 -> EXTERNAL TARGET -> 0: REASON` when it ends (or
/// fails to connect), `block(RULE): tcp/connect ]: CLIENT PROXY -> 0.0.0.0.0 TARGET` when refused.
/// `tcp/accept` lines are about the client connection (e.g. the readiness probe) and are skipped.
fn parse_dante(text: &str) -> Vec<RealRecord> {
    let mut records: Vec<RealRecord> = Vec::new();
    for line in text.lines() {
        let Some((_, event)) = line.split_once(": info: ") else {
            continue;
        };
        let Some((verdict, rest)) = event.split_once("): tcp/connect ") else {
            continue;
        };
        let Some((verb, rule)) = verdict.split_once('(') else {
            continue;
        };
        let Some((mark, body)) = rest.split_once(": ") else {
            continue;
        };
        let (addresses, reason) = match body.split_once(": ") {
            Some((addresses, reason)) => (addresses, Some(reason.trim().to_owned())),
            None => (body, None),
        };
        let addrs: Vec<SocketAddr> = addresses
            .split_whitespace()
            .filter_map(dante_addr)
            .collect();
        let client = addrs.first().copied();
        let target = addrs.get(3).copied();
        match (verb, mark) {
            ("pass", "[") => records.push(RealRecord {
                client_ip: client.map(|a| a.ip()),
                client_port: client.map(|a| a.port()),
                target: target.map(|a| a.to_string()),
                upstream: target,
                allowed: Some(true),
                socks_version: Some(dante_socks_version(rule)),
                lines: vec![line.to_owned()],
                ..RealRecord::default()
            }),
            ("pass", "]") => {
                let open = records
                    .iter()
                    .rposition(|r| !r.closed && r.client().is_some() && r.client() == client);
                match open {
                    Some(i) => {
                        let record = &mut records[i];
                        record.closed = true;
                        record.detail = reason;
                        record.lines.push(line.to_owned());
                    }
                    // The connect to the target failed: the session never started.
                    None => records.push(RealRecord {
                        client_ip: client.map(|a| a.ip()),
                        client_port: client.map(|a| a.port()),
                        target: target.map(|a| a.to_string()),
                        upstream: target,
                        allowed: Some(true),
                        socks_version: Some(dante_socks_version(rule)),
                        detail: reason,
                        closed: true,
                        lines: vec![line.to_owned()],
                        ..RealRecord::default()
                    }),
                }
            }
            ("block", _) => records.push(RealRecord {
                client_ip: client.map(|a| a.ip()),
                client_port: client.map(|a| a.port()),
                target: target.map(|a| a.to_string()),
                allowed: Some(false),
                detail: Some(reason.unwrap_or_else(|| format!("blocked by socks rule #{rule}"))),
                closed: true,
                lines: vec![line.to_owned()],
                ..RealRecord::default()
            }),
            _ => {}
        }
    }
    records
}

/// MD5 (RFC 1321), only to write squid password files: `basic_ncsa_auth` accepts the plain hex
/// digest of the password (besides crypt(3) and APR1 hashes). Test credentials only; no crate in
/// the workspace offers MD5, and calling `openssl passwd` would add a tool dependency.
mod md5 {
    const SHIFTS: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];

    /// `floor(abs(sin(i + 1)) * 2^32)`, as tabulated in RFC 1321.
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];

    /// The MD5 digest of `input` as 32 lowercase hex digits.
    pub(super) fn hex(input: &[u8]) -> String {
        let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
        let mut message = input.to_vec();
        let bit_len = (input.len() as u64).wrapping_mul(8);
        message.push(0x80);
        while message.len() % 64 != 56 {
            message.push(0);
        }
        message.extend_from_slice(&bit_len.to_le_bytes());
        for block in message.chunks_exact(64) {
            let mut words = [0u32; 16];
            for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
                *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
            let [mut a, mut b, mut c, mut d] = state;
            for (i, (&k, &shift)) in K.iter().zip(&SHIFTS).enumerate() {
                let (f, g) = match i / 16 {
                    0 => ((b & c) | (!b & d), i),
                    1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                    2 => (b ^ c ^ d, (3 * i + 5) % 16),
                    _ => (c ^ (b | !d), (7 * i) % 16),
                };
                let f = f.wrapping_add(a).wrapping_add(k).wrapping_add(words[g]);
                a = d;
                d = c;
                c = b;
                b = b.wrapping_add(f.rotate_left(shift));
            }
            for (s, v) in state.iter_mut().zip([a, b, c, d]) {
                *s = s.wrapping_add(v);
            }
        }
        state
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, digest) in cases {
            assert_eq!(md5::hex(input.as_bytes()), digest, "input {input:?}");
        }
    }

    #[test]
    fn squid_log_lines_become_records() {
        let log = "\
1795345752.221 127.0.0.1 42624 NONE_NONE/000 - error:transaction-end-before-headers - HIER_NONE - -
1795345752.523 127.0.0.1 42628 TCP_TUNNEL/200 CONNECT 127.0.0.1:50033 feed%20user HIER_DIRECT 127.0.0.1 50033
1795345752.524 127.0.0.1 42644 TCP_DENIED/407 CONNECT 127.0.0.1:50033 - HIER_NONE - -
1795345752.524 127.0.0.1 42646 TCP_DENIED/403 CONNECT 192.0.2.1:443 - HIER_NONE - -
1795345752.525 127.0.0.1 42654 NONE_NONE/503 CONNECT [::1]:50033 feeduser HIER_DIRECT ::1 50033
";
        let records = parse_squid(log);
        assert_eq!(
            records.len(),
            4,
            "the probe line is not a record: {records:#?}"
        );
        let tunnel = &records[0];
        assert_eq!(
            tunnel.client(),
            Some("127.0.0.1:42628".parse().expect("addr"))
        );
        assert_eq!(tunnel.target.as_deref(), Some("127.0.0.1:50033"));
        assert_eq!(tunnel.target_port(), Some(50033));
        assert_eq!(
            tunnel.upstream,
            Some("127.0.0.1:50033".parse().expect("addr"))
        );
        assert_eq!(tunnel.allowed, Some(true));
        assert_eq!(tunnel.status, Some(200));
        assert_eq!(tunnel.user.as_deref(), Some("feed user"));
        assert_eq!(tunnel.detail.as_deref(), Some("TCP_TUNNEL/200"));
        assert!(tunnel.closed);
        assert_eq!(
            (records[1].allowed, records[1].status),
            (Some(false), Some(407))
        );
        assert_eq!(records[1].user, None);
        assert_eq!(
            (records[2].allowed, records[2].status),
            (Some(false), Some(403))
        );
        assert_eq!(records[2].upstream, None);
        assert_eq!(
            (records[3].allowed, records[3].status),
            (Some(true), Some(503))
        );
        assert_eq!(
            records[3].upstream,
            Some("[::1]:50033".parse().expect("addr"))
        );
    }

    #[test]
    fn tinyproxy_log_lines_become_records() {
        let log = "\
INFO      Nov 22 11:08:03.929 [29668]: Starting main loop. Accepting connections.
CONNECT   Nov 22 11:08:04.001 [29668]: Connect (file descriptor 5): 127.0.0.1
CONNECT   Nov 22 11:08:05.081 [29668]: Connect (file descriptor 5): 127.0.0.1
CONNECT   Nov 22 11:08:05.082 [29668]: Request (file descriptor 5): CONNECT 127.0.0.1:34877 HTTP/1.1
INFO      Nov 22 11:08:05.082 [29668]: opensock: opening connection to 127.0.0.1:34877
CONNECT   Nov 22 11:08:05.083 [29668]: Established connection to host \"127.0.0.1\" using file descriptor 6.
CONNECT   Nov 22 11:08:05.083 [29668]: Connect (file descriptor 7): 127.0.0.1
CONNECT   Nov 22 11:08:05.084 [29668]: Request (file descriptor 7): CONNECT 192.0.2.1:443 HTTP/1.1
NOTICE    Nov 22 11:08:05.085 [29668]: Proxying refused on filtered domain \"192.0.2.1\"
INFO      Nov 22 11:08:05.083 [29668]: Closed connection between local client (fd:5) and remote client (fd:6)
CONNECT   Nov 22 11:08:05.089 [29668]: Connect (file descriptor 5): 127.0.0.1
CONNECT   Nov 22 11:08:05.090 [29668]: Request (file descriptor 5): CONNECT 127.0.0.1:50723 HTTP/1.1
ERROR     Nov 22 11:08:05.091 [29668]: opensock: Could not establish a connection to 127.0.0.1:50723
CONNECT   Nov 22 11:08:05.092 [29668]: Connect (file descriptor 8): 127.0.0.1
CONNECT   Nov 22 11:08:05.093 [29668]: Request (file descriptor 8): CONNECT 127.0.0.1:34877 HTTP/1.1
";
        let records = parse_tinyproxy(log);
        assert_eq!(records.len(), 4, "{records:#?}");
        let summary: Vec<_> = records
            .iter()
            .map(|r| (r.target.as_deref(), r.allowed, r.closed))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("127.0.0.1:34877"), Some(true), true),
                (Some("192.0.2.1:443"), Some(false), true),
                (Some("127.0.0.1:50723"), Some(true), true),
                (Some("127.0.0.1:34877"), None, false),
            ]
        );
        assert_eq!(
            records[0].client_ip,
            Some(IpAddr::from(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(records[0].client_port, None);
        assert_eq!(records[0].lines.len(), 4);
    }

    #[test]
    fn microsocks_log_lines_become_records() {
        let records = parse_microsocks("client[4] 127.0.0.1: connected to 127.0.0.1:57207\n");
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].target.as_deref(), Some("127.0.0.1:57207"));
        assert_eq!(
            records[0].client_ip,
            Some(IpAddr::from(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(records[0].allowed, Some(true));
        assert!(records[0].closed);
    }

    #[test]
    fn dante_log_lines_become_records() {
        let log = "\
Nov 22 11:09:31 (1795345771.183550) danted[31528]: info: block(1): tcp/accept ]: 127.0.0.1.44844 127.0.0.1.31080: error after reading 0 bytes in 0 seconds: eof from local client
Nov 22 11:09:31 (1795345771.185909) danted[31545]: info: pass(2): tcp/connect [: 127.0.0.1.44854 127.0.0.1.31080 -> 127.0.0.1.42153 127.0.0.1.38611
Nov 22 11:09:31 (1795345771.186947) danted[31545]: info: pass(1): tcp/connect [: 127.0.0.1.44864 127.0.0.1.31080 -> 127.0.0.1.40293 127.0.0.1.38611
Nov 22 11:09:31 (1795345771.186238) danted[31545]: info: pass(2): tcp/connect ]: 0 -> 127.0.0.1.44854 127.0.0.1.31080 -> 0, 0 -> 127.0.0.1.42153 127.0.0.1.38611 -> 0: local client closed.  Session duration: 0s
Nov 22 11:09:31 (1795345771.187582) danted[31529]: info: block(4): tcp/connect ]: 127.0.0.1.44870 127.0.0.1.31080 -> 0.0.0.0.0 192.0.2.1.443
Nov 22 11:09:31 (1795345771.188827) danted[31545]: info: pass(2): tcp/connect ]: 0 -> 127.0.0.1.44888 127.0.0.1.31080 -> 0, 0 -> 127.0.0.1.45215 127.0.0.1.54905 -> 0: remote peer error (Connection refused).  Session duration: 0s
Nov 22 11:09:44 (1795345784.429483) danted[32264]: info: pass(3): tcp/connect [: 127.0.0.1.35232 127.0.0.1.31080 -> ::1.35232 ::1.39923
";
        let records = parse_dante(log);
        let summary: Vec<_> = records
            .iter()
            .map(|r| {
                (
                    r.client_port,
                    r.target.as_deref(),
                    r.allowed,
                    r.socks_version,
                    r.closed,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Some(44854),
                    Some("127.0.0.1:38611"),
                    Some(true),
                    Some(5),
                    true
                ),
                (
                    Some(44864),
                    Some("127.0.0.1:38611"),
                    Some(true),
                    Some(4),
                    false
                ),
                (Some(44870), Some("192.0.2.1:443"), Some(false), None, true),
                (
                    Some(44888),
                    Some("127.0.0.1:54905"),
                    Some(true),
                    Some(5),
                    true
                ),
                (Some(35232), Some("[::1]:39923"), Some(true), Some(5), false),
            ]
        );
        assert_eq!(
            records[0].detail.as_deref(),
            Some("local client closed.  Session duration: 0s")
        );
        assert_eq!(records[0].lines.len(), 2);
        assert_eq!(records[2].upstream, None);
        assert!(
            records[3]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("Connection refused"))
        );
    }

    #[test]
    fn configs_allow_only_loopback() {
        let dir = Path::new("/tmp/feed-sim-x");
        let squid = squid_config(dir, 3128, true);
        for line in [
            "http_port 127.0.0.1:3128",
            "acl to_loopback dst 127.0.0.0/8 ::1",
            "http_access deny !loopback_name",
            "http_access deny !to_loopback",
            "http_access deny all",
            "dns_nameservers 127.0.0.1",
            "tcp_outgoing_address 127.0.0.1",
        ] {
            assert!(squid.lines().any(|l| l == line), "squid lacks {line:?}");
        }
        let lines: Vec<&str> = squid.lines().collect();
        let first_allow = lines
            .iter()
            .position(|l| l.starts_with("http_access allow"));
        let last_deny = lines
            .iter()
            .rposition(|l| l.starts_with("http_access deny !"));
        assert!(last_deny < first_allow, "destination denies come first");

        let tinyproxy = tinyproxy_config(dir, 8888, None);
        for line in [
            "Listen 127.0.0.1",
            "Bind 127.0.0.1",
            "Allow 127.0.0.1",
            "FilterDefaultDeny Yes",
            "FilterURLs Off",
        ] {
            assert!(
                tinyproxy.lines().any(|l| l == line),
                "tinyproxy lacks {line:?}"
            );
        }
        assert!(!tinyproxy.contains("ConnectPort"), "any loopback port");

        let dante = dante_config(dir, 1080);
        assert!(dante.contains("internal: 127.0.0.1 port = 1080"));
        assert!(dante.contains("external: lo"));
        let pass_targets: Vec<&str> = dante
            .split("socks pass {")
            .skip(1)
            .filter_map(|rule| rule.lines().find(|l| l.contains("to:")))
            .collect();
        assert_eq!(pass_targets.len(), 3);
        assert!(
            pass_targets
                .iter()
                .all(|l| l.ends_with("to: 127.0.0.0/8") || l.ends_with("to: ::1/128")),
            "{pass_targets:?}"
        );
        assert!(
            dante
                .trim_end()
                .ends_with("socks block {\n  from: 0/0 to: 0/0\n  log: connect error\n}")
        );
    }

    #[test]
    fn credentials_each_proxy_cannot_take_are_refused() {
        let with = |u: &str, p: &str| RealProxyOptions::new().user_pass(u, p);
        let cases = [
            (
                RealProxyKind::Dante,
                with("u", "p"),
                Some(io::ErrorKind::Unsupported),
            ),
            (
                RealProxyKind::Tinyproxy,
                with("feed-user", "s3cret.pw_x"),
                None,
            ),
            (
                RealProxyKind::Tinyproxy,
                with("feed user", "x"),
                Some(io::ErrorKind::InvalidInput),
            ),
            (
                RealProxyKind::Tinyproxy,
                with("u", "p@ss"),
                Some(io::ErrorKind::InvalidInput),
            ),
            (RealProxyKind::Squid, with("feed user", "p@ss w:rd"), None),
            (
                RealProxyKind::Squid,
                with("a:b", "p"),
                Some(io::ErrorKind::InvalidInput),
            ),
            (
                RealProxyKind::Squid,
                with("u", "p\nq"),
                Some(io::ErrorKind::InvalidInput),
            ),
            (RealProxyKind::Microsocks, with("u", &"p".repeat(255)), None),
            (
                RealProxyKind::Microsocks,
                with("u", &"p".repeat(256)),
                Some(io::ErrorKind::InvalidInput),
            ),
            (
                RealProxyKind::Microsocks,
                with("", "p"),
                Some(io::ErrorKind::InvalidInput),
            ),
            (RealProxyKind::Dante, RealProxyOptions::new(), None),
        ];
        for (kind, options, expected) in cases {
            assert_eq!(
                validate(kind, &options).err().map(|e| e.kind()),
                expected,
                "{kind} {options:?}"
            );
        }
        assert!(!format!("{:?}", with("u", "hunter2")).contains("hunter2"));
    }

    #[test]
    fn missing_binaries_skip_or_fail() {
        assert_eq!(skip_decision(None, true), Ok(true));
        assert_eq!(skip_decision(None, false), Ok(true));
        assert_eq!(skip_decision(Some("gone".into()), false), Ok(false));
        let err = skip_decision(Some("squid: gone".into()), true).expect_err("required");
        assert!(err.starts_with("squid: gone;") && err.contains(REQUIRE_REAL_PROXIES_ENV));
    }
}
