//! The proxy-restart scenarios: a `FeedHandler` runs a Binance feed against feed-sim's fake
//! exchange, both its REST prefetch and its stream routed (by a `Resolver` built from
//! settings) through an in-process proxy, SOCKS5 or HTTP CONNECT. Every cycle the proxy is
//! stopped (cutting the stream), kept down a moment, and started again on the same port; the
//! handler reconnects through it with backoff, and the exchange sends each new connection a
//! burst of trades.
//!
//! Passes when: every trade the exchange sent arrived at the callback once and in order (the
//! burst of each connection before the next restart); the exchange saw one stream connection
//! per cycle and every connection it saw (REST and stream) came from one of the proxy's
//! outgoing sockets, never from the client directly; and the fd count and resident memory at
//! the end are those after the first cycle, within the scale's tolerance.

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use feed_conn::{ConnOptions, HttpOptions, WsOptions};
use feed_handler::{Backoff, BinanceFeed, FeedHandler, HandlerOptions};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;

use crate::scenario::{Outcome, Scale};
use crate::seq::SeqCheck;
use crate::sys::{FdSampler, fd_count, mib, peak_rss_kib, rss_kib};

/// How long a restarted proxy may take to get its port back.
const REBIND_FOR: Duration = Duration::from_secs(3);
/// How long past its scheduled restart a cycle may wait for its trades.
const GRACE: Duration = Duration::from_secs(5);

/// Which in-process proxy is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    #[cfg(feature = "socks")]
    Socks5,
    Connect,
}

/// One running instance of the proxy.
enum Proxy {
    #[cfg(feature = "socks")]
    Socks5(feed_sim::SocksProxy),
    Connect(ConnectProxy),
}

impl Proxy {
    async fn start(kind: Kind, bind: SocketAddr) -> io::Result<Self> {
        match kind {
            #[cfg(feature = "socks")]
            Kind::Socks5 => {
                let options = feed_sim::SocksOptions::socks5().bind(bind);
                Ok(Proxy::Socks5(feed_sim::SocksProxy::start(options).await?))
            }
            Kind::Connect => Ok(Proxy::Connect(
                ConnectProxy::start(ProxyOptions::new().bind(bind)).await?,
            )),
        }
    }

    /// Starts on `bind`'s port again, retrying while the old listener's port is released.
    async fn restart(kind: Kind, bind: SocketAddr) -> io::Result<Self> {
        let until = Instant::now() + REBIND_FOR;
        loop {
            match Self::start(kind, bind).await {
                Ok(proxy) => return Ok(proxy),
                Err(error)
                    if error.kind() == io::ErrorKind::AddrInUse && Instant::now() < until =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            #[cfg(feature = "socks")]
            Proxy::Socks5(proxy) => proxy.addr(),
            Proxy::Connect(proxy) => proxy.addr(),
        }
    }

    /// The URL the settings name: socks5h (the proxy resolves `localhost`) or http.
    fn url(&self) -> String {
        match self {
            #[cfg(feature = "socks")]
            Proxy::Socks5(proxy) => proxy.url("socks5h"),
            Proxy::Connect(proxy) => proxy.url(),
        }
    }

    /// The proxy's own addresses on its onward connections: the peers the exchange may see.
    fn outgoing(&self) -> Vec<SocketAddr> {
        match self {
            #[cfg(feature = "socks")]
            Proxy::Socks5(proxy) => proxy
                .connections()
                .iter()
                .filter_map(|r| r.upstream_local)
                .collect(),
            Proxy::Connect(proxy) => proxy
                .connections()
                .iter()
                .filter_map(|r| r.upstream_local)
                .collect(),
        }
    }

    async fn shutdown(&mut self) {
        match self {
            #[cfg(feature = "socks")]
            Proxy::Socks5(proxy) => proxy.shutdown().await,
            Proxy::Connect(proxy) => proxy.shutdown().await,
        }
    }
}

/// Runs the scenario on a two-worker runtime; never longer than `deadline`.
pub(crate) fn run(kind: Kind, scale: &Scale, deadline: Duration) -> Outcome {
    let mut outcome = Outcome::default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            outcome.fail(format!("runtime: {error}"));
            return outcome;
        }
    };
    let sampler = FdSampler::start();
    let started = Instant::now();
    let result = runtime
        .block_on(async { tokio::time::timeout(deadline, drive(kind, scale, &mut outcome)).await });
    if result.is_err() {
        outcome.timed_out = true;
        outcome.fail(format!("timed out after {}s", deadline.as_secs()));
    }
    outcome.wall_ms = started.elapsed().as_millis() as u64;
    outcome.peak_fds = sampler.peak();
    outcome.peak_rss_kib = peak_rss_kib();
    drop(runtime);
    outcome
}

/// What the callbacks collect.
#[derive(Debug, Default)]
struct Delivered {
    ids: Mutex<Vec<u64>>,
    unparsed: AtomicU64,
    errors: AtomicU64,
}

impl Delivered {
    fn count(&self) -> usize {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

async fn drive(kind: Kind, scale: &Scale, outcome: &mut Outcome) {
    let ca = TestCa::new();
    let options = FakeExchangeOptions::new()
        .trades_per_connection(scale.trades_per_connection)
        .interval(Some(scale.trade_interval));
    let mut fake = match FakeExchange::start(&ca, ExchangeKind::Binance, options).await {
        Ok(fake) => fake,
        Err(error) => return outcome.fail(format!("fake exchange: {error}")),
    };
    let any_port = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let mut proxy = match Proxy::start(kind, any_port).await {
        Ok(proxy) => proxy,
        Err(error) => return outcome.fail(format!("proxy: {error}")),
    };
    let bind = proxy.addr();
    let handler_options = match handler_options(&ca, &proxy.url(), scale) {
        Ok(options) => options,
        Err(error) => return outcome.fail(error),
    };
    let feed = match BinanceFeed::new(&["BTC-USDT"])
        .with_rest_url(&fake.rest_base_url())
        .and_then(|feed| feed.with_ws_url(&fake.ws_base_url()))
    {
        Ok(feed) => feed,
        Err(error) => return outcome.fail(format!("feed: {error}")),
    };
    let delivered = Arc::new(Delivered::default());
    let mut handler = FeedHandler::new(handler_options);
    handler.add_feed(feed);
    {
        let delivered = Arc::clone(&delivered);
        handler.on_trade(move |trade| match trade.id.parse::<u64>() {
            Ok(id) => delivered
                .ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(id),
            Err(_) => {
                delivered.unparsed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    {
        let delivered = Arc::clone(&delivered);
        handler.on_error(move |_| {
            delivered.errors.fetch_add(1, Ordering::Relaxed);
        });
    }
    let running = match handler.start().await {
        Ok(running) => running,
        Err(error) => return outcome.fail(format!("handler start: {error}")),
    };

    let cycles = (scale.restart_for.as_nanos() / scale.restart_every.as_nanos()) as usize;
    let per_connection = scale.trades_per_connection;
    let started = Instant::now();
    let mut outgoing: HashSet<SocketAddr> = HashSet::new();
    let mut first = None;
    let mut last = None;
    let mut late = Vec::new();
    for cycle in 0..cycles {
        let scheduled = started + scale.restart_every * (cycle as u32 + 1);
        let wanted = per_connection * (cycle + 1);
        // This cycle's burst must be delivered before its restart (or a grace after it).
        let complete = async {
            while delivered.count() < wanted || fake.ws_connections().len() < cycle + 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let in_time = tokio::time::timeout_at((scheduled + GRACE).into(), complete).await;
        if in_time.is_err() {
            outcome.fail(format!(
                "cycle {}: {} of {wanted} trades delivered by {:.1}s, {}s after the restart was due",
                cycle + 1,
                delivered.count(),
                started.elapsed().as_secs_f64(),
                GRACE.as_secs()
            ));
            break;
        }
        if Instant::now() > scheduled {
            late.push(cycle + 1);
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let sample = (fd_count(), rss_kib());
        if cycle == 0 {
            first = Some(sample);
        }
        last = Some(sample);
        if cycle + 1 == cycles {
            break;
        }
        proxy.shutdown().await;
        outgoing.extend(proxy.outgoing());
        tokio::time::sleep(scale.restart_down).await;
        proxy = match Proxy::restart(kind, bind).await {
            Ok(proxy) => proxy,
            Err(error) => {
                outcome.fail(format!("cycle {}: restart on {bind}: {error}", cycle + 1));
                break;
            }
        };
    }
    running.stop().await;
    proxy.shutdown().await;
    outgoing.extend(proxy.outgoing());

    // Every trade sent, delivered once and in order: ids are consecutive across connections.
    let sent = fake.trades_sent();
    let ids: Vec<u64> = delivered
        .ids
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let sent_ids: Vec<Option<u64>> = sent.iter().map(|t| t.id.parse().ok()).collect();
    let base = sent_ids.iter().flatten().min().copied().unwrap_or(0);
    let mut check = SeqCheck::new(sent.len() as u64);
    for id in &ids {
        match id.checked_sub(base) {
            Some(number) => check.push(number),
            None => check.push_stray(),
        }
    }
    for _ in 0..delivered.unparsed.load(Ordering::Relaxed) {
        check.push_stray();
    }
    outcome.counts = check.counts();
    if !outcome.counts.clean() || sent_ids.iter().any(Option::is_none) {
        outcome.fail(format!(
            "trades lost/duplicated/reordered/stray: {} ({} sent, {} delivered)",
            outcome.counts.ldr(),
            sent.len(),
            ids.len()
        ));
    }

    // The exchange never saw the client itself: only the proxy's outgoing sockets.
    let streams = fake.ws_connections();
    let requests = fake.rest_requests();
    outcome.connections = streams.len() as u64;
    let direct_streams = streams
        .iter()
        .filter(|r| r.peer.is_none_or(|peer| !outgoing.contains(&peer)))
        .count();
    let direct_rest = requests
        .iter()
        .filter(|r| !outgoing.contains(&r.peer))
        .count();
    if direct_streams + direct_rest > 0 {
        outcome.fail(format!(
            "the exchange saw {direct_streams} stream and {direct_rest} REST connections that \
             did not come from the proxy"
        ));
    }
    if streams.len() != cycles {
        outcome.fail(format!(
            "the exchange saw {} stream connections, expected one per cycle ({cycles})",
            streams.len()
        ));
    }
    outcome.note(format!(
        "{cycles} cycles, {} restarts, proxy down {}ms each: the exchange saw {} stream \
         connection(s) and {} REST request(s), {}; {} failed reconnects retried with backoff{}",
        cycles - 1,
        scale.restart_down.as_millis(),
        streams.len(),
        requests.len(),
        if direct_streams + direct_rest == 0 {
            "all from the proxy's outgoing sockets"
        } else {
            "NOT all from the proxy"
        },
        delivered.errors.load(Ordering::Relaxed),
        if late.is_empty() {
            String::new()
        } else {
            format!("; cycles {late:?} ran past their restart time")
        }
    ));

    if let (Some((fds_first, rss_first)), Some((fds_last, rss_last))) = (first, last) {
        outcome.note(format!(
            "after cycle 1: {fds_first} fds, RSS {}; at the end: {fds_last} fds, RSS {} \
             (tolerance +{} fds, +{})",
            mib(rss_first),
            mib(rss_last),
            scale.fd_tolerance,
            mib(scale.rss_tolerance_kib)
        ));
        if fds_last > fds_first + scale.fd_tolerance {
            outcome.fail(format!(
                "fd leak: {fds_first} fds after cycle 1, {fds_last} at the end"
            ));
        }
        if rss_last > rss_first + scale.rss_tolerance_kib {
            outcome.fail(format!(
                "memory leak: RSS {} after cycle 1, {} at the end",
                mib(rss_first),
                mib(rss_last)
            ));
        }
    }
    fake.shutdown().await;
}

/// Handler options trusting the test CA, routing binance's REST and stream through
/// `proxy_url`, reconnecting from 100 ms doubling up to 1 s.
fn handler_options(ca: &TestCa, proxy_url: &str, scale: &Scale) -> Result<HandlerOptions, String> {
    let proxy = ProxyConfig::parse(proxy_url).map_err(|e| format!("proxy url: {e}"))?;
    let exchange = ExchangeId::new("binance").map_err(|e| e.to_string())?;
    let settings = ProxySettings::default().with_exchange(exchange, ConnectionProxies::both(proxy));
    let tls = crate::client::tls(ca)?;
    let defaults = HandlerOptions::default();
    Ok(HandlerOptions {
        http: HttpOptions {
            tls: tls.clone(),
            ..HttpOptions::default()
        },
        ws: WsOptions { tls, ..defaults.ws },
        conn: ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings))),
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            // A connection that lived through half a cycle was healthy.
            reset_after: scale.restart_every / 2,
            max_failures: None,
        },
    })
}
