//! Starting the proxy of a row and reading what it saw, in one shape for every kind.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use feed_sim::real::{RealProxy, RealProxyKind, RealProxyOptions};
use feed_sim::{ConnectProxy, ProxyOptions, SocksOptions, SocksProxy, TestCa};

use crate::kinds::ProxyKind;

/// One connection a proxy handled, from its own record or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The destination host as the client asked for it (`localhost` or `127.0.0.1`).
    pub host: String,
    /// The destination port.
    pub port: u16,
    /// The proxy's own address on its onward connection, when it records it (in-process
    /// proxies): the peer the exchange sees.
    pub outgoing: Option<SocketAddr>,
    /// Whether credentials were checked and matched (`None`: no auth, or not recorded).
    pub auth_ok: Option<bool>,
}

/// A running proxy of one [`ProxyKind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum StartedProxy {
    /// feed-sim's CONNECT proxy (plain or TLS).
    Connect(ConnectProxy),
    /// feed-sim's SOCKS proxy, reached with the kind's scheme (socks4 vs 4a, socks5 vs 5h).
    Socks(SocksProxy, ProxyKind),
    /// A real daemon, stopped by PID on shutdown or drop.
    Real(RealProxy, ProxyKind),
}

impl StartedProxy {
    /// Starts the proxy for `kind` on loopback. `Ok(None)`: a real proxy's binary is missing
    /// and `FEED_E2E_REQUIRE_REAL_PROXIES` is not `1` (the skip reason was printed).
    pub async fn start(kind: ProxyKind, ca: &TestCa) -> io::Result<Option<Self>> {
        let creds = kind.credentials();
        let started = match kind {
            ProxyKind::Connect => Self::Connect(ConnectProxy::start(ProxyOptions::new()).await?),
            ProxyKind::ConnectAuth => {
                let (user, password) = creds.unwrap_or_default();
                Self::Connect(
                    ConnectProxy::start(ProxyOptions::new().basic_auth(user, password)).await?,
                )
            }
            ProxyKind::Https => Self::Connect(
                ConnectProxy::start(
                    ProxyOptions::new().tls(ca.server_config(&["localhost", "127.0.0.1"])),
                )
                .await?,
            ),
            ProxyKind::Socks4 => {
                Self::Socks(SocksProxy::start(SocksOptions::socks4()).await?, kind)
            }
            ProxyKind::Socks4a => Self::Socks(
                SocksProxy::start(SocksOptions::socks4().socks4a(true)).await?,
                kind,
            ),
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                Self::Socks(SocksProxy::start(SocksOptions::socks5()).await?, kind)
            }
            ProxyKind::Socks5Auth => {
                let (user, password) = creds.unwrap_or_default();
                Self::Socks(
                    SocksProxy::start(SocksOptions::socks5().user_pass(user, password)).await?,
                    kind,
                )
            }
            real => {
                let daemon = match real {
                    ProxyKind::Squid | ProxyKind::SquidAuth => RealProxyKind::Squid,
                    ProxyKind::Tinyproxy => RealProxyKind::Tinyproxy,
                    ProxyKind::Microsocks | ProxyKind::MicrosocksAuth => RealProxyKind::Microsocks,
                    _ => RealProxyKind::Dante,
                };
                if !feed_sim::require_or_skip(daemon) {
                    return Ok(None);
                }
                let mut options = RealProxyOptions::new();
                if let Some((user, password)) = creds {
                    options = options.user_pass(user, password);
                }
                Self::Real(RealProxy::start(daemon, options).await?, real)
            }
        };
        Ok(Some(started))
    }

    /// The proxy URL for the settings, credentials included, with the kind's scheme.
    pub fn url(&self) -> String {
        match self {
            StartedProxy::Connect(p) => p.url_with_credentials(),
            StartedProxy::Socks(p, kind) => p.url_with_credentials(kind.scheme()),
            StartedProxy::Real(p, kind) => {
                let with_creds = p.url_with_credentials();
                match with_creds.split_once("://") {
                    Some((_, rest)) => format!("{}://{rest}", kind.scheme()),
                    None => with_creds,
                }
            }
        }
    }

    /// Every tunnel the proxy opened or refused so far (connections that never named a target,
    /// like a launcher's readiness probe, are left out). Real proxies write their logs when a
    /// connection ends: this waits (up to `deadline`) until `closed` tunnels are logged.
    pub async fn seen(&self, closed: usize, deadline: Duration) -> Vec<Seen> {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let seen = self.seen_now(closed).await;
            if seen.len() >= closed || tokio::time::Instant::now() >= until {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn seen_now(&self, closed: usize) -> Vec<Seen> {
        let all: Vec<Seen> = match self {
            StartedProxy::Connect(p) => p
                .connections_when_closed(closed, Duration::ZERO)
                .await
                .into_iter()
                .map(|r| {
                    let (host, port) = split_target(r.target.as_deref().unwrap_or_default());
                    Seen {
                        host,
                        port,
                        outgoing: r.upstream_local,
                        auth_ok: r.auth_ok,
                    }
                })
                .collect(),
            StartedProxy::Socks(p, _) => p
                .connections_when_closed(closed, Duration::ZERO)
                .await
                .into_iter()
                .map(|r| Seen {
                    host: r.target_host.unwrap_or_default(),
                    port: r.target_port.unwrap_or_default(),
                    outgoing: r.upstream_local,
                    auth_ok: r.auth_ok,
                })
                .collect(),
            StartedProxy::Real(p, _) => p
                .connections_when_closed(closed, Duration::ZERO)
                .await
                .into_iter()
                .map(|r| {
                    let (host, port) = split_target(r.target.as_deref().unwrap_or_default());
                    Seen {
                        host,
                        port,
                        outgoing: None,
                        auth_ok: r.allowed,
                    }
                })
                .collect(),
        };
        all.into_iter().filter(|s| s.port != 0).collect()
    }

    /// The proxy's log or record, for a failure message. In-process records are summarised
    /// (client, target, whether auth matched, outgoing address, bytes, error) because their
    /// Debug holds the credentials the client sent.
    pub fn diagnostics(&self) -> String {
        match self {
            StartedProxy::Real(p, _) => p.diagnostics(),
            StartedProxy::Connect(p) => p
                .connections()
                .iter()
                .map(|r| {
                    format!(
                        "client {:?} -> {:?} status {:?} auth_ok {:?} via {:?} bytes {}/{} error {:?}\n",
                        r.peer, r.target, r.status, r.auth_ok, r.upstream_local,
                        r.bytes_to_target, r.bytes_to_client, r.error
                    )
                })
                .collect(),
            StartedProxy::Socks(p, _) => p
                .connections()
                .iter()
                .map(|r| {
                    format!(
                        "client {} -> {:?}:{:?} reply {:?} auth_ok {:?} via {:?} bytes {}/{} error {:?}\n",
                        r.peer, r.target_host, r.target_port, r.reply, r.auth_ok,
                        r.upstream_local, r.bytes_to_target, r.bytes_to_client, r.error
                    )
                })
                .collect(),
        }
    }

    /// Stops the proxy (a real one by its PID) and waits until its port is released.
    pub async fn shutdown(&mut self) {
        match self {
            StartedProxy::Connect(p) => p.shutdown().await,
            StartedProxy::Socks(p, _) => p.shutdown().await,
            StartedProxy::Real(p, _) => p.shutdown().await,
        }
    }
}

/// `host:port` / `[v6]:port` -> (host, port); (whole, 0) when there is no port.
fn split_target(target: &str) -> (String, u16) {
    match target.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port.parse().unwrap_or(0),
        ),
        None => (target.to_owned(), 0),
    }
}
