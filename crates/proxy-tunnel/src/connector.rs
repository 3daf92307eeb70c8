//! `TunnelConnector`: opens a byte stream to `host:port` along one route, for one exchange and
//! transport. TCP (and TLS to an https:// proxy) is ours; the proxy protocol is hyper-util's
//! (`Tunnel`, `SocksV4`, `SocksV5`); a failure is explained from the proxy's recorded answer.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioIo;
use proxy_config::{ProxyConfig, ProxyHost, ProxyScheme, ProxyUrl};
use proxy_resolve::{Route, Transport};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tower_service::Service;

use crate::classify::{self, Verdict};
use crate::error::{TunnelError, TunnelErrorKind};
use crate::record::{Answer, Ready, Recorder};
use crate::stream::TunnelStream;
use crate::tls::TlsOptions;

/// Default bound on a direct TCP connect.
pub const DEFAULT_DIRECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long each stage of [`TunnelConnector::connect_timed`] took; `None` for a stage that was
/// not reached, did not finish, or does not exist on this route (no proxy stages when direct, no
/// `proxy_tls` for an `http://` proxy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectTimings {
    /// TCP to the proxy, or to the target when direct.
    pub tcp: Option<Duration>,
    /// TLS to an `https://` proxy.
    pub proxy_tls: Option<Duration>,
    /// The proxy protocol (CONNECT or SOCKS, including a socks4/socks5 local name lookup).
    pub proxy_handshake: Option<Duration>,
}

/// Opens connections along one route. Cheap to clone; building one does no I/O.
///
/// A configured proxy that fails gives an error: nothing here ever falls back to a direct
/// connection.
#[derive(Debug, Clone)]
pub struct TunnelConnector {
    inner: Arc<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    route: Route,
    exchange: String,
    transport: Transport,
    proxy_tls: Option<Arc<ClientConfig>>,
    direct_timeout: Duration,
    socks5_optimistic: bool,
}

impl TunnelConnector {
    /// A connector for `exchange`'s `transport` connections along `route`. An https:// proxy's
    /// certificate is verified against Mozilla's roots unless [`TunnelConnector::with_proxy_tls`]
    /// says otherwise.
    pub fn new(route: Route, exchange: &str, transport: Transport) -> Self {
        Self {
            inner: Arc::new(Inner {
                route,
                exchange: exchange.to_owned(),
                transport,
                proxy_tls: None,
                direct_timeout: DEFAULT_DIRECT_TIMEOUT,
                socks5_optimistic: false,
            }),
        }
    }

    /// The TLS client configuration for https:// proxies (e.g. from [`TlsOptions`] with a
    /// corporate CA).
    #[must_use]
    pub fn with_proxy_tls(self, config: Arc<ClientConfig>) -> Self {
        self.map(|inner| inner.proxy_tls = Some(config))
    }

    /// The bound on direct TCP connects (proxied handshakes use the proxy's `timeout_seconds`).
    #[must_use]
    pub fn with_direct_timeout(self, timeout: Duration) -> Self {
        self.map(|inner| inner.direct_timeout = timeout)
    }

    /// Optimistic SOCKS5 (off by default): the greeting, the username/password and the connect
    /// request leave in one write, without waiting for each answer, so the handshake takes one
    /// round trip to the proxy instead of two (three with a password). Only for proxies known to
    /// take it: RFC 1928 does not promise that a server reads ahead, and the credentials go out
    /// before the proxy has said which method it wants. Other schemes ignore it.
    #[must_use]
    pub fn with_socks5_optimistic(self, optimistic: bool) -> Self {
        self.map(|inner| inner.socks5_optimistic = optimistic)
    }

    fn map(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// The route this connector takes.
    pub fn route(&self) -> &Route {
        &self.inner.route
    }

    /// The exchange id errors name.
    pub fn exchange(&self) -> &str {
        &self.inner.exchange
    }

    /// The transport errors name.
    pub fn transport(&self) -> Transport {
        self.inner.transport
    }

    /// A connected stream to `host:port` (`host`: a DNS name or an IP address, IPv6 without
    /// brackets). The whole handshake is bounded: by the proxy's `timeout_seconds` (TCP to the
    /// proxy, TLS to an https:// proxy, the proxy protocol) or, direct, by the direct timeout.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TunnelStream, TunnelError> {
        self.connect_timed(host, port, &mut ConnectTimings::default())
            .await
    }

    /// [`TunnelConnector::connect`], recording into `timings` how long each stage took (also
    /// when a later stage fails: the stages before it are filled in, the failed one is `None`).
    pub async fn connect_timed(
        &self,
        host: &str,
        port: u16,
        timings: &mut ConnectTimings,
    ) -> Result<TunnelStream, TunnelError> {
        *timings = ConnectTimings::default();
        let inner = &self.inner;
        match &inner.route {
            Route::Direct => {
                let started = Instant::now();
                match tokio::time::timeout(inner.direct_timeout, connect_tcp_str(host, port)).await
                {
                    Ok(Ok(tcp)) => {
                        timings.tcp = Some(started.elapsed());
                        Ok(TunnelStream::Tcp(tcp))
                    }
                    Ok(Err(e)) => {
                        Err(self.error(TunnelErrorKind::DirectUnreachable(e), None, host, port))
                    }
                    Err(_) => Err(self.error(
                        TunnelErrorKind::DirectTimeout(inner.direct_timeout),
                        None,
                        host,
                        port,
                    )),
                }
            }
            Route::Proxy(proxy) => {
                let timeout = proxy.timeout_seconds.as_duration();
                let opening = self.via_proxy(proxy, host, port, timings);
                let result = match tokio::time::timeout(timeout, opening).await {
                    Ok(result) => result,
                    Err(_) => Err(TunnelErrorKind::ProxyTimeout(timeout)),
                };
                match result {
                    Ok(stream) => {
                        tracing::debug!(
                            target: "feedproxy::tunnel",
                            exchange = %inner.exchange,
                            transport = inner.transport.as_str(),
                            scheme = proxy.url.scheme().as_str(),
                            proxy = %proxy.url.authority(),
                            target = %target_label(host, port),
                            "tunnel established"
                        );
                        Ok(stream)
                    }
                    Err(kind) => Err(self.error(kind, Some(proxy), host, port)),
                }
            }
        }
    }

    fn error(
        &self,
        kind: TunnelErrorKind,
        proxy: Option<&ProxyConfig>,
        host: &str,
        port: u16,
    ) -> TunnelError {
        TunnelError {
            kind,
            exchange: self.inner.exchange.clone(),
            transport: self.inner.transport,
            proxy: proxy.map(|p| p.url.to_string()),
            target: target_label(host, port),
        }
    }

    async fn via_proxy(
        &self,
        proxy: &ProxyConfig,
        host: &str,
        port: u16,
        timings: &mut ConnectTimings,
    ) -> Result<TunnelStream, TunnelErrorKind> {
        let url = &proxy.url;
        refuse_before_connecting(url, host)?;
        let mut started = Instant::now();
        let tcp = connect_tcp(url.host(), url.port())
            .await
            .map_err(TunnelErrorKind::ProxyUnreachable)?;
        timings.tcp = Some(started.elapsed());
        started = Instant::now();
        let stream = if url.scheme() == ProxyScheme::Https {
            let config = match &self.inner.proxy_tls {
                Some(config) => Arc::clone(config),
                None => default_proxy_tls()
                    .map_err(|e| TunnelErrorKind::ProxyTls(io::Error::other(e.to_string())))?,
            };
            let name = server_name(url.host()).map_err(TunnelErrorKind::ProxyTls)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(TunnelErrorKind::ProxyTls)?;
            timings.proxy_tls = Some(started.elapsed());
            started = Instant::now();
            TunnelStream::ProxyTls(Box::new(tls))
        } else {
            TunnelStream::Tcp(tcp)
        };
        let proxy_uri: Uri = format!("http://{}", url.authority()).parse().map_err(|_| {
            TunnelErrorKind::ProxyHandshake("proxy address is not a valid URI".to_owned())
        })?;
        let (mut recorder, answer) = Recorder::new(stream);
        let optimistic = self.inner.socks5_optimistic
            && matches!(url.scheme(), ProxyScheme::Socks5 | ProxyScheme::Socks5h);
        if optimistic {
            recorder = recorder.coalesce_writes();
        }
        let io = TokioIo::new(recorder);
        let credentials = url.has_credentials();
        let result = match url.scheme() {
            ProxyScheme::Http | ProxyScheme::Https => {
                let target = target_uri(host, port)?;
                let mut tunnel = Tunnel::new(proxy_uri, Ready::new(io));
                if let Some(user) = url.username() {
                    let password = url.password().map_or("", |p| p.expose());
                    let token = base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{password}", user.expose()));
                    let mut value =
                        HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| {
                            TunnelErrorKind::ProxyHandshake(
                                "credentials cannot form a header".to_owned(),
                            )
                        })?;
                    value.set_sensitive(true);
                    tunnel = tunnel.with_auth(value);
                }
                let result = call(&mut tunnel, target).await;
                finish(result, &answer, |bytes| {
                    classify::connect_failure(bytes, credentials)
                })
            }
            ProxyScheme::Socks4
            | ProxyScheme::Socks4a
            | ProxyScheme::Socks5
            | ProxyScheme::Socks5h => {
                self.socks(url.scheme(), proxy, proxy_uri, io, answer, host, port)
                    .await
            }
            _ => Err(TunnelErrorKind::ProxyHandshake(format!(
                "unsupported proxy scheme {}",
                url.scheme()
            ))),
        };
        if result.is_ok() {
            timings.proxy_handshake = Some(started.elapsed());
        }
        result
    }

    #[cfg(feature = "socks")]
    #[allow(clippy::too_many_arguments)] // the pieces of one handshake, split off for the feature gate
    async fn socks(
        &self,
        scheme: ProxyScheme,
        proxy: &ProxyConfig,
        proxy_uri: Uri,
        io: TokioIo<Recorder<TunnelStream>>,
        answer: Answer,
        host: &str,
        port: u16,
    ) -> Result<TunnelStream, TunnelErrorKind> {
        use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5};
        let url = &proxy.url;
        let credentials = url.has_credentials();
        match scheme {
            ProxyScheme::Socks4 | ProxyScheme::Socks4a => {
                let target_host = if scheme == ProxyScheme::Socks4 {
                    // The client resolves; SOCKS4 carries IPv4 only.
                    match resolve(host, port)
                        .await?
                        .into_iter()
                        .find(SocketAddr::is_ipv4)
                    {
                        Some(addr) => addr.ip().to_string(),
                        None => {
                            return Err(TunnelErrorKind::TargetResolution(io::Error::new(
                                io::ErrorKind::NotFound,
                                "no IPv4 address for the target (socks4 carries IPv4 only)",
                            )));
                        }
                    }
                } else {
                    host.to_owned()
                };
                let mut socks = SocksV4::new(proxy_uri, Ready::new(io)).local_dns(false);
                let result = call(&mut socks, target_uri(&target_host, port)?).await;
                finish(result, &answer, classify::socks4_failure)
            }
            _ => {
                let target_host = if scheme == ProxyScheme::Socks5 {
                    let addr = resolve(host, port)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            TunnelErrorKind::TargetResolution(io::Error::new(
                                io::ErrorKind::NotFound,
                                "no address for the target",
                            ))
                        })?;
                    addr.ip().to_string()
                } else {
                    host.to_owned()
                };
                socks5_fits(url, socks5_address_len(&target_host))?;
                let mut socks = SocksV5::new(proxy_uri, Ready::new(io))
                    .local_dns(false)
                    .send_optimistically(self.inner.socks5_optimistic);
                if let Some(user) = url.username() {
                    let password = url.password().map_or("", |p| p.expose());
                    socks = socks.with_auth(user.expose().to_owned(), password.to_owned());
                }
                let result = call(&mut socks, target_uri(&target_host, port)?).await;
                finish(result, &answer, |bytes| {
                    classify::socks5_failure(bytes, credentials)
                })
            }
        }
    }

    #[cfg(not(feature = "socks"))]
    #[allow(clippy::too_many_arguments, clippy::unused_async)] // same signature as with the feature
    async fn socks(
        &self,
        _scheme: ProxyScheme,
        _proxy: &ProxyConfig,
        _proxy_uri: Uri,
        _io: TokioIo<Recorder<TunnelStream>>,
        _answer: Answer,
        _host: &str,
        _port: u16,
    ) -> Result<TunnelStream, TunnelErrorKind> {
        Err(TunnelErrorKind::SocksDisabled)
    }
}

/// The configuration errors that the scheme and the target show alone: raised before a
/// connection to the proxy is opened, so a proxy is never contacted for nothing (socks5's
/// address, known after its lookup, is checked again then).
fn refuse_before_connecting(url: &ProxyUrl, host: &str) -> Result<(), TunnelErrorKind> {
    let scheme = url.scheme();
    let socks4 = matches!(scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a);
    let socks5 = matches!(scheme, ProxyScheme::Socks5 | ProxyScheme::Socks5h);
    if (socks4 || socks5) && !cfg!(feature = "socks") {
        return Err(TunnelErrorKind::SocksDisabled);
    }
    if socks4 && host.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(TunnelErrorKind::Socks4Ipv6);
    }
    if scheme == ProxyScheme::Socks5h || (socks5 && host.parse::<IpAddr>().is_ok()) {
        socks5_fits(url, socks5_address_len(host))?;
    } else if socks5 {
        // socks5 sends the address it resolves, known after the lookup: here, the credentials
        // must fit with the shortest (IPv4); the lookup's address is checked again.
        socks5_fits(url, SOCKS5_IPV4_LEN)?;
    }
    Ok(())
}

/// hyper-util's SOCKS5 client writes the greeting (3 bytes), the RFC 1929 request (3 bytes, the
/// user name and the password) and the connect request (3 bytes and the address) into one
/// buffer of this size, and fails with a bare "serialize" error past it.
const SOCKS5_SEND_BUFFER: usize = 262;

/// An IPv4 address in a SOCKS5 request: type, 4 bytes, port.
const SOCKS5_IPV4_LEN: usize = 1 + 4 + 2;

/// The SOCKS5 request's address for `target_host`: an IP address as sent, or a name for the
/// proxy to resolve (type, length, name, port).
fn socks5_address_len(target_host: &str) -> usize {
    match target_host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => SOCKS5_IPV4_LEN,
        Ok(IpAddr::V6(_)) => 1 + 16 + 2,
        Err(_) => 1 + 1 + target_host.len() + 2,
    }
}

/// Whether the credentials of `url` and an address of `address` bytes fit one SOCKS5
/// handshake.
fn socks5_fits(url: &ProxyUrl, address: usize) -> Result<(), TunnelErrorKind> {
    let auth = url.username().map_or(0, |user| {
        3 + user.expose().len() + url.password().map_or(0, |p| p.expose().len())
    });
    if 3 + auth + 3 + address > SOCKS5_SEND_BUFFER {
        Err(TunnelErrorKind::Socks5RequestTooLong)
    } else {
        Ok(())
    }
}

/// Drives one of hyper-util's connectors (`poll_ready`, then `call`).
async fn call<S>(service: &mut S, target: Uri) -> Result<S::Response, S::Error>
where
    S: Service<Uri>,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(target).await
}

/// Unwraps the stream on success; on failure, explains it from the proxy's answer, or falls back
/// to hyper-util's message (which never contains credentials).
fn finish<E: std::fmt::Display>(
    result: Result<TokioIo<Recorder<TunnelStream>>, E>,
    answer: &Answer,
    classify: impl FnOnce(&[u8]) -> Verdict,
) -> Result<TunnelStream, TunnelErrorKind> {
    match result {
        Ok(io) => Ok(io.into_inner().into_inner()),
        Err(e) => Err(match classify(&answer.bytes()) {
            Verdict::AuthRequired => TunnelErrorKind::ProxyAuthRequired,
            Verdict::AuthRejected => TunnelErrorKind::ProxyAuthRejected,
            Verdict::TargetRefused(refusal) => TunnelErrorKind::TargetRefused(refusal),
            Verdict::Protocol(violation) => TunnelErrorKind::ProxyProtocol(violation),
            Verdict::Unexplained => TunnelErrorKind::ProxyHandshake(e.to_string()),
        }),
    }
}

fn target_uri(host: &str, port: u16) -> Result<Uri, TunnelErrorKind> {
    format!("http://{}/", target_label(host, port))
        .parse()
        .map_err(|_| {
            TunnelErrorKind::ProxyHandshake("target host is not a valid host name".to_owned())
        })
}

/// `host:port` with IPv6 bracketed.
fn target_label(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(feature = "socks")]
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, TunnelErrorKind> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(TunnelErrorKind::TargetResolution)
}

async fn connect_tcp(host: &ProxyHost, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match host {
        ProxyHost::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
        ProxyHost::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
        ProxyHost::Domain(name) => tokio::net::lookup_host((name.as_str(), port))
            .await?
            .collect(),
    };
    connect_any(addrs).await
}

async fn connect_tcp_str(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port)).await?.collect(),
    };
    connect_any(addrs).await
}

/// Tries each address in order; nodelay on the first that connects.
async fn connect_any(addrs: Vec<SocketAddr>) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn server_name(host: &ProxyHost) -> io::Result<ServerName<'static>> {
    match host {
        ProxyHost::Ipv4(ip) => Ok(ServerName::IpAddress(IpAddr::V4(*ip).into())),
        ProxyHost::Ipv6(ip) => Ok(ServerName::IpAddress(IpAddr::V6(*ip).into())),
        ProxyHost::Domain(name) => ServerName::try_from(name.clone()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "proxy host is not a valid TLS server name",
            )
        }),
    }
}

fn default_proxy_tls() -> Result<Arc<ClientConfig>, crate::tls::TlsOptionsError> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    if let Some(config) = DEFAULT.get() {
        return Ok(Arc::clone(config));
    }
    let config = TlsOptions::default().client_config(&[])?;
    Ok(Arc::clone(DEFAULT.get_or_init(|| config)))
}
