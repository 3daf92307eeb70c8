//! `feedproxy demo`: the whole system offline on 127.0.0.1. Fake Binance, Coinbase and Backpack
//! exchanges (REST and WebSocket over TLS, from feed-sim), an HTTP CONNECT proxy with Basic auth
//! and a SOCKS5 proxy (in-process, recording what they relay); Binance is routed through the
//! CONNECT proxy, Coinbase through SOCKS5, Backpack directly, by proxy settings alone: the feeds
//! are the same code that talks to the real exchanges. Trades are printed as they arrive, then a
//! summary, and the demo fails (exit 1) if any connection did not take its route.
//!
//! The proxy password is random; `FEEDPROXY_DEMO_PASSWORD` sets it instead (tests use it to
//! search every output for it).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use feed_handler::feed_conn::TlsOptions;
use feed_handler::{Backoff, BinanceFeed, CoinbaseFeed, FeedHandler};
use feed_sim::TestCa;
use feed_sim::connect_proxy::{ConnectProxy, ProxyOptions};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::socks::{SocksOptions, SocksProxy};
use proxy_config::Loader;
use proxy_resolve::{Resolver, Transport};

use crate::output::{self, out};
use crate::stream::{new_handler, run_until, text_line};
use crate::{Failure, settings};

/// `feedproxy demo` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How long the feeds run.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
}

/// The environment variable that sets the demo proxy's password (default: random).
const PASSWORD_ENV: &str = "FEEDPROXY_DEMO_PASSWORD";
/// The pause between two trades of one stream.
const TRADE_INTERVAL: Duration = Duration::from_millis(200);
/// SOCKS5 with the name resolved by the proxy (`socks5h`), as for a geo-blocked exchange.
const SOCKS_SCHEME: &str = "socks5h";

/// Everything the demo runs on loopback.
struct Lab {
    fakes: Vec<FakeExchange>,
    connect: ConnectProxy,
    socks: SocksProxy,
    tls: TlsOptions,
}

impl Lab {
    async fn start(password: &str) -> Result<Self, Failure> {
        let started = |what: &str, e: std::io::Error| {
            Failure::failed(format!("cannot start the demo's {what} on 127.0.0.1: {e}"))
        };
        let ca = TestCa::new();
        let mut fakes = Vec::new();
        for kind in ExchangeKind::ALL {
            let options = FakeExchangeOptions::new()
                .trades_per_connection(usize::MAX)
                .interval(Some(TRADE_INTERVAL));
            let fake = FakeExchange::start(&ca, kind, options)
                .await
                .map_err(|e| started(&format!("fake {} exchange", kind.as_str()), e))?;
            fakes.push(fake);
        }
        let connect = ConnectProxy::start(ProxyOptions::new().basic_auth("demo", password))
            .await
            .map_err(|e| started("HTTP CONNECT proxy", e))?;
        let socks = SocksProxy::start(SocksOptions::socks5())
            .await
            .map_err(|e| started("SOCKS5 proxy", e))?;
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .map_err(|e| Failure::failed(format!("demo CA: {e}")))?;
        Ok(Self {
            fakes,
            connect,
            socks,
            tls,
        })
    }

    fn fake(&self, kind: ExchangeKind) -> Result<&FakeExchange, Failure> {
        self.fakes
            .iter()
            .find(|f| f.kind() == kind)
            .ok_or_else(|| Failure::failed(format!("no fake {} exchange", kind.as_str())))
    }

    /// The embedded settings, as YAML (the same text a user would put in a feed config).
    fn settings_yaml(&self) -> String {
        let connect = self.connect.url_with_credentials();
        let coinbase = if cfg!(feature = "socks") {
            self.socks.url(SOCKS_SCHEME)
        } else {
            connect.clone()
        };
        format!(
            "proxy:\n  exchanges:\n    binance:\n      http: {{ url: \"{connect}\" }}\n      \
             websocket: {{ url: \"{connect}\" }}\n    coinbase:\n      http: {{ url: \"{coinbase}\" }}\n      \
             websocket: {{ url: \"{coinbase}\" }}\n"
        )
    }

    async fn shutdown(&mut self) {
        for fake in &mut self.fakes {
            fake.shutdown().await;
        }
        self.connect.shutdown().await;
        self.socks.shutdown().await;
    }
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let password = std::env::var(PASSWORD_ENV).unwrap_or_else(|_| random_password());
    let mut lab = Lab::start(&password).await?;
    let result = demo(&lab, Duration::from_secs(args.seconds)).await;
    lab.shutdown().await;
    result
}

async fn demo(lab: &Lab, duration: Duration) -> Result<(), Failure> {
    // Not the environment: the demo shows its own embedded routes whatever the shell has set.
    let settings = Loader::new()
        .yaml_str("demo.yaml", lab.settings_yaml())
        .load()
        .map_err(|e| Failure::failed(format!("demo settings: {e}")))?;
    let resolver = Resolver::new(settings.clone());
    proxy_resolve::init_proxy_system(settings);

    out!(
        "feedproxy demo: fake Binance, Coinbase and Backpack exchanges (TLS) and two proxies on \
         127.0.0.1, for {} s",
        duration.as_secs()
    );
    out!(
        "  HTTP CONNECT proxy, Basic auth: {} (auth)",
        lab.connect.url()
    );
    out!(
        "  SOCKS5 proxy:                   {}",
        lab.socks.url(SOCKS_SCHEME)
    );
    if cfg!(feature = "socks") {
        out!("  routes: binance -> CONNECT proxy, coinbase -> SOCKS5 proxy, backpack -> direct");
    } else {
        out!(
            "  routes: binance and coinbase -> CONNECT proxy (this build has no `socks` feature), \
             backpack -> direct"
        );
    }
    out!("");

    let mut handler = new_handler(
        lab.tls.clone(),
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            max_failures: Some(5),
            ..Backoff::default()
        },
    );
    add_feeds(lab, &mut handler)?;
    let started = Instant::now();
    // Trades received per exchange, in `ExchangeKind::ALL` order (no lock on the trade path).
    let counters: Arc<[AtomicU64; ExchangeKind::ALL.len()]> = Arc::default();
    let counting = Arc::clone(&counters);
    let interrupted = run_until(handler, Some(duration), move |trade| {
        out!("{}", text_line(trade));
        if let Some(i) = ExchangeKind::ALL
            .iter()
            .position(|kind| kind.as_str() == &*trade.exchange)
        {
            counting[i].fetch_add(1, Ordering::Relaxed);
        }
        true
    })
    .await?;
    let received: BTreeMap<String, u64> = ExchangeKind::ALL
        .iter()
        .zip(counters.iter())
        .map(|(kind, n)| (kind.as_str().to_owned(), n.load(Ordering::Relaxed)))
        .collect();
    let ran = started.elapsed();
    if interrupted {
        out!("interrupted");
    }
    summary(lab, &resolver, &received, ran, interrupted).await
}

fn add_feeds(lab: &Lab, handler: &mut FeedHandler) -> Result<(), Failure> {
    let invalid = |e: feed_handler::FeedError| Failure::failed(format!("demo feed: {e}"));
    let fake = lab.fake(ExchangeKind::Binance)?;
    handler.add_feed(
        BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])
            .with_rest_url(&fake.rest_base_url())
            .and_then(|f| f.with_ws_url(&fake.ws_base_url()))
            .map_err(invalid)?,
    );
    let fake = lab.fake(ExchangeKind::Coinbase)?;
    handler.add_feed(
        CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])
            .with_rest_url(&fake.rest_base_url())
            .and_then(|f| f.with_ws_url(&fake.ws_base_url()))
            .map_err(invalid)?,
    );
    let fake = lab.fake(ExchangeKind::Backpack)?;
    handler.add_feed(
        feed_handler::ccxt::backpack(&["BTC-USDC", "ETH-USDC"])
            .with_rest_url(&fake.rest_base_url())
            .and_then(|f| f.with_ws_url(&fake.ws_base_url()))
            .map_err(invalid)?,
    );
    Ok(())
}

/// One proxy as the summary sees it: where it sent each connection, and from which address.
struct ProxySeen {
    label: String,
    addr: SocketAddr,
    /// (upstream the proxy connected to, the proxy's own address on that connection)
    tunnels: Vec<(SocketAddr, Option<SocketAddr>)>,
}

impl ProxySeen {
    fn to(&self, addr: SocketAddr) -> usize {
        self.tunnels.iter().filter(|(up, _)| *up == addr).count()
    }

    fn carried(&self, peer: SocketAddr) -> bool {
        self.tunnels.iter().any(|(_, local)| *local == Some(peer))
    }
}

async fn summary(
    lab: &Lab,
    resolver: &Resolver,
    received: &BTreeMap<String, u64>,
    ran: Duration,
    interrupted: bool,
) -> Result<(), Failure> {
    let wait = Duration::from_secs(2);
    let connect_records = lab.connect.connections();
    let connect_records = lab
        .connect
        .connections_when_closed(connect_records.len(), wait)
        .await;
    let socks_records = lab.socks.connections();
    let socks_records = lab
        .socks
        .connections_when_closed(socks_records.len(), wait)
        .await;
    let proxies = [
        ProxySeen {
            label: format!("{} (auth)", lab.connect.url()),
            addr: lab.connect.addr(),
            tunnels: connect_records
                .iter()
                .filter_map(|r| r.upstream.map(|up| (up, r.upstream_local)))
                .collect(),
        },
        ProxySeen {
            label: lab.socks.url(SOCKS_SCHEME),
            addr: lab.socks.addr(),
            tunnels: socks_records
                .iter()
                .filter_map(|r| r.upstream.map(|up| (up, r.upstream_local)))
                .collect(),
        },
    ];

    out!("");
    out!("summary after {:.1} s", ran.as_secs_f64());
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for kind in ExchangeKind::ALL {
        let fake = lab.fake(kind)?;
        let exchange = kind.as_str();
        for transport in Transport::ALL {
            let route = resolver.resolve(exchange, transport).route;
            let label = settings::route_label(&route);
            let (addr, peers, what): (SocketAddr, Vec<SocketAddr>, &str) = match transport {
                Transport::WebSocket => (
                    fake.ws_addr(),
                    fake.ws_connections()
                        .iter()
                        .filter_map(|c| c.peer)
                        .collect(),
                    "connection",
                ),
                _ => (
                    fake.rest_addr(),
                    fake.rest_requests().iter().map(|r| r.peer).collect(),
                    "request",
                ),
            };
            let proxy = proxies.iter().find(|p| {
                matches!(&route, proxy_resolve::Route::Proxy(cfg)
                    if cfg.url.port() == p.addr.port())
            });
            // Each peer the exchange saw: carried by the route's own proxy, by another proxy,
            // or by none (direct).
            let own = peers
                .iter()
                .filter(|peer| proxy.is_some_and(|p| p.carried(**peer)))
                .count();
            let any = peers
                .iter()
                .filter(|peer| proxies.iter().any(|p| p.carried(**peer)))
                .count();
            let (via_proxy, other_proxy, direct) = (own, any - own, peers.len() - any);
            let tunnels = proxy.map_or_else(|| "-".to_owned(), |p| p.to(addr).to_string());
            let saw = format!(
                "{} ({via_proxy} via proxy, {direct} direct)",
                counted(peers.len(), what)
            );
            let messages = match transport {
                Transport::WebSocket => format!(
                    "{} received, {} sent",
                    counted(
                        usize::try_from(received.get(exchange).copied().unwrap_or(0))
                            .unwrap_or(usize::MAX),
                        "trade"
                    ),
                    fake.trades_sent().len()
                ),
                _ => counted(peers.len(), "response"),
            };
            if other_proxy > 0 {
                problems.push(format!(
                    "{exchange} {transport}: {other_proxy} {what}(s) went through a proxy that is \
                     not on its route"
                ));
            }
            match proxy {
                Some(_) if direct > 0 => problems.push(format!(
                    "{exchange} {transport}: {direct} {what}(s) reached the exchange directly \
                     although a proxy is configured"
                )),
                _ => {}
            }
            if !interrupted && peers.is_empty() {
                problems.push(format!(
                    "{exchange} {transport}: the exchange saw no {what}"
                ));
            }
            rows.push([
                exchange.to_owned(),
                transport.as_str().to_owned(),
                label,
                tunnels,
                saw,
                messages,
            ]);
        }
        if !interrupted && received.get(exchange).copied().unwrap_or(0) == 0 {
            problems.push(format!("{exchange}: no trade received"));
        }
    }
    output::table(
        [
            "EXCHANGE",
            "TRANSPORT",
            "ROUTE",
            "PROXY TUNNELS",
            "EXCHANGE SAW",
            "MESSAGES",
        ],
        &rows,
    );
    out!("");
    let proxy_rows: Vec<[String; 3]> = proxies
        .iter()
        .map(|p| {
            let mut targets: Vec<String> = Vec::new();
            for kind in ExchangeKind::ALL {
                if let Ok(fake) = lab.fake(kind) {
                    for (name, addr) in [("REST", fake.rest_addr()), ("WS", fake.ws_addr())] {
                        let n = p.to(addr);
                        if n > 0 {
                            targets.push(format!("{} {name} x{n}", kind.as_str()));
                        }
                    }
                }
            }
            [
                p.label.clone(),
                p.tunnels.len().to_string(),
                if targets.is_empty() {
                    "-".to_owned()
                } else {
                    targets.join(", ")
                },
            ]
        })
        .collect();
    output::table(["PROXY", "CONNECTIONS", "TUNNELS TO"], &proxy_rows);
    if problems.is_empty() {
        out!("");
        out!("every connection took its configured route");
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "the demo found problems: {}",
            problems.join("; ")
        )))
    }
}

/// `1 request`, `2 requests`.
fn counted(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// 16 hex digits from the standard library's per-process random hash keys (enough for a demo
/// proxy that lives on loopback for a few seconds).
fn random_password() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}
