//! Faults end to end (issue 9): a proxy that stalls mid-stream, an exchange that freezes, a
//! tunnel whose far end never answers, REST answers 429, 5xx, a truncated or stalled body, streams
//! closed with 1011; and every proxy and handshake fault of the REST and WebSocket layers, 100
//! connections at once.
//!
//! Each ends in a typed error or a recovery inside a functional deadline (never a hang), and
//! never in a direct connection: every connection an exchange or target saw came from a proxy's
//! outgoing address, and there are exactly as many as the proxy opened. What is checked is what
//! docs/proxy/user-guide.md promises (section 10, Timeouts; section 14, the error tables and the
//! reconnect paragraph). Proxy restarts and load are the soak program's.
//!
//! Routes come from a `Resolver` handed to the connections (`ConnOptions::with_resolver`), not
//! from the process-wide system, so these tests run in parallel with each other.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use feed_handler::binance::BinanceFeed;
use feed_handler::ccxt;
use feed_handler::coinbase::CoinbaseFeed;
use feed_handler::feed_conn::{
    ConnError, ConnOptions, HttpConn, HttpConnOptions, HttpOptions, TlsOptions, WsConn,
    WsConnOptions, WsOptions,
};
use feed_handler::{Backoff, FeedHandler, HandlerError, HandlerOptions, Trade};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions, RestFault};
use feed_sim::{
    ConnectProxy, HandshakeFault, HttpsServer, ProxyOptions, Response, Routes, TestCa,
    TraceCapture, WssOptions, WssServer,
};
#[cfg(feature = "socks")]
use feed_sim::{SocksOptions, SocksProxy};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings, TimeoutSeconds};
use proxy_resolve::Resolver;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The functional deadline around each test's whole run: nothing may hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// How long a stream may stay silent before it is replaced, in the tests that stall it.
const IDLE: Duration = Duration::from_secs(1);

/// `timeout_seconds` of routes whose proxy is expected to work: generous, so only the faults
/// under test time out, even on a loaded machine.
const ROUTE_TIMEOUT: u64 = 5;

const USER: &str = "feeds";
const PASSWORD: &str = "pa@ss";

/// Runs `test` under [`DEADLINE`]: a fault that hangs fails here, named.
async fn within<T>(what: &str, test: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, test)
        .await
        .unwrap_or_else(|_| panic!("{what}: no outcome within {DEADLINE:?}: a hang"))
}

fn tls(ca: &TestCa) -> TlsOptions {
    TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .expect("test CA")
}

fn proxy(url: &str, timeout: u64) -> ProxyConfig {
    ProxyConfig::parse(url)
        .expect("proxy url")
        .with_timeout(TimeoutSeconds::new(timeout).expect("timeout"))
}

/// Connection options that send `exchange`'s REST through `http` and its streams through `ws`.
fn routed(exchange: &str, http: &str, ws: &str, timeout: u64) -> ConnOptions {
    let settings = ProxySettings::default().with_exchange(
        ExchangeId::new(exchange).expect("exchange id"),
        ConnectionProxies {
            http: Some(proxy(http, timeout)),
            websocket: Some(proxy(ws, timeout)),
        },
    );
    ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings)))
}

/// Handler options trusting `ca`, routed by `conn`, reconnecting quickly, streams replaced after
/// [`IDLE`] of silence.
fn handler_options(ca: &TestCa, conn: ConnOptions) -> HandlerOptions {
    HandlerOptions {
        http: HttpOptions {
            tls: tls(ca),
            timeout: Duration::from_secs(ROUTE_TIMEOUT),
            ..HttpOptions::default()
        },
        ws: WsOptions {
            tls: tls(ca),
            idle_timeout: Some(IDLE),
            ..WsOptions::default()
        },
        conn,
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            ..Backoff::default()
        },
    }
}

/// The feed of `fake`'s kind with its two usual symbols, pointed at `fake`; no proxy code.
fn add_feed(handler: &mut FeedHandler, fake: &FakeExchange) {
    let (rest, ws) = (fake.rest_base_url(), fake.ws_base_url());
    match fake.kind() {
        ExchangeKind::Binance => handler.add_feed(
            BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])
                .with_rest_url(&rest)
                .expect("rest url")
                .with_ws_url(&ws)
                .expect("ws url"),
        ),
        ExchangeKind::Coinbase => handler.add_feed(
            CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])
                .with_rest_url(&rest)
                .expect("rest url")
                .with_ws_url(&ws)
                .expect("ws url"),
        ),
        ExchangeKind::Backpack => handler.add_feed(
            ccxt::backpack(&["BTC-USDC", "ETH-USDC"])
                .with_rest_url(&rest)
                .expect("rest url")
                .with_ws_url(&ws)
                .expect("ws url"),
        ),
    };
}

/// The kind of a connection error as a path of variant names, e.g. `Tunnel/ProxyTimeout(1s)`,
/// `Ws/Handshake(BadAccept)`, `Http/Connect(Tls)`, `Status(503)`. It is read from the typed
/// error's `Debug` (feed-e2e does not depend on proxy-tunnel, proxy-http or proxy-ws, whose kind
/// enums it would otherwise match), keeping one level of payload and dropping what varies from
/// run to run (addresses, OS messages).
fn kind_of(error: &ConnError) -> String {
    if let Some(tunnel) = error.tunnel_error() {
        return format!("Tunnel/{}", variant(&format!("{:?}", tunnel.kind())));
    }
    match error {
        ConnError::Http { source, .. } => match source.kind() {
            Some(kind) => format!("Http/{}", variant(&format!("{kind:?}"))),
            None => format!("Http/{}", variant(&format!("{source:?}"))),
        },
        ConnError::Ws { source, .. } => format!("Ws/{}", variant(&format!("{:?}", source.kind()))),
        ConnError::Status { status, .. } => format!("Status({status})"),
        ConnError::RateLimited { attempts, .. } => format!("RateLimited({attempts})"),
        other => variant(&format!("{other:?}")),
    }
}

/// `Name(Inner ..)` -> `Name(Inner)`; `Name { .. }`, `Name("..")` and `Name` -> `Name`.
fn variant(debug: &str) -> String {
    let name_len = |s: &str| {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let (name, rest) = debug.split_at(name_len(debug));
    match rest
        .strip_prefix('(')
        .map(|inner| &inner[..name_len(inner)])
    {
        Some(inner) if !inner.is_empty() => format!("{name}({inner})"),
        _ => name.to_owned(),
    }
}

/// Who has to act on a route error (`Proxy`, `Target`, ...), when the route failed.
fn party_of(error: &ConnError) -> Option<String> {
    error.tunnel_error().map(|t| format!("{:?}", t.party()))
}

/// What a handler delivered: trades and errors, with a signal on each.
#[derive(Clone)]
struct Delivered {
    trades: Arc<Mutex<Vec<Trade>>>,
    /// (kind, Display) of each error given to `on_error`.
    errors: Arc<Mutex<Vec<(String, String)>>>,
    changed: watch::Sender<()>,
}

impl Delivered {
    fn attach(handler: &mut FeedHandler) -> Self {
        let delivered = Self {
            trades: Arc::default(),
            errors: Arc::default(),
            changed: watch::Sender::new(()),
        };
        let sink = delivered.clone();
        handler.on_trade(move |trade| {
            lock(&sink.trades).push(trade.clone());
            sink.changed.send_replace(());
        });
        let sink = delivered.clone();
        handler.on_error(move |error| {
            lock(&sink.errors).push((kind_of(error), error.to_string()));
            sink.changed.send_replace(());
        });
        delivered
    }

    fn trades(&self) -> Vec<Trade> {
        lock(&self.trades).clone()
    }

    fn errors(&self) -> Vec<(String, String)> {
        lock(&self.errors).clone()
    }

    /// Waits for the delivery after which `done` holds (the caller's deadline bounds it).
    async fn until(&self, mut done: impl FnMut(&[Trade]) -> bool) {
        let mut changed = self.changed.subscribe();
        while !done(&self.trades()) {
            // The sender lives in `self`: `changed` cannot fail while we wait.
            let _ = changed.changed().await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking callback must not hide what was delivered.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One tunnel a proxy opened to a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tunnel {
    to: SocketAddr,
    /// The proxy's own address on it: the peer the target sees.
    from: Option<SocketAddr>,
    stalled: bool,
}

/// A recording in-process proxy of either kind.
enum Relay {
    Connect(ConnectProxy),
    /// With the scheme clients use for it (`socks5h`, `socks4`, ...).
    #[cfg(feature = "socks")]
    Socks(SocksProxy, &'static str),
}

impl Relay {
    async fn connect(options: ProxyOptions) -> Self {
        Self::Connect(ConnectProxy::start(options).await.expect("connect proxy"))
    }

    #[cfg(feature = "socks")]
    async fn socks(options: SocksOptions, scheme: &'static str) -> Self {
        Self::Socks(
            SocksProxy::start(options).await.expect("socks proxy"),
            scheme,
        )
    }

    /// The proxy URL, with its credentials if it has any.
    fn url(&self) -> String {
        match self {
            Self::Connect(p) => p.url_with_credentials(),
            #[cfg(feature = "socks")]
            Self::Socks(p, scheme) => p.url_with_credentials(scheme),
        }
    }

    fn stall_tunnels(&self) -> usize {
        match self {
            Self::Connect(p) => p.stall_tunnels(),
            #[cfg(feature = "socks")]
            Self::Socks(p, _) => p.stall_tunnels(),
        }
    }

    /// Every tunnel it opened, in accept order.
    fn tunnels(&self) -> Vec<Tunnel> {
        match self {
            Self::Connect(p) => p
                .connections()
                .into_iter()
                .filter_map(|r| {
                    r.upstream.map(|to| Tunnel {
                        to,
                        from: r.upstream_local,
                        stalled: r.stalled,
                    })
                })
                .collect(),
            #[cfg(feature = "socks")]
            Self::Socks(p, _) => p
                .connections()
                .into_iter()
                .filter_map(|r| {
                    r.upstream.map(|to| Tunnel {
                        to,
                        from: r.upstream_local,
                        stalled: r.stalled,
                    })
                })
                .collect(),
        }
    }

    fn tunnels_to(&self, port: u16) -> Vec<Tunnel> {
        self.tunnels()
            .into_iter()
            .filter(|t| t.to.port() == port)
            .collect()
    }

    /// The addresses its onward connections came from.
    fn outgoing(&self) -> HashSet<SocketAddr> {
        self.tunnels().into_iter().filter_map(|t| t.from).collect()
    }
}

/// Nothing reached `fake` directly: every REST request and stream connection it saw came from
/// an outgoing address of `relays`, and each of its ports saw exactly as many connections as the
/// proxies opened to it.
fn assert_only_via(fake: &FakeExchange, relays: &[&Relay], what: &str) {
    let outgoing: HashSet<SocketAddr> = relays.iter().flat_map(|r| r.outgoing()).collect();
    for request in fake.rest_requests() {
        assert!(
            outgoing.contains(&request.peer),
            "{what}: a REST request from {} did not come through the proxy",
            request.peer
        );
    }
    let streams = fake.ws_connections();
    for record in &streams {
        let peer = record.peer.expect("the fake records every peer");
        assert!(
            outgoing.contains(&peer),
            "{what}: a stream from {peer} did not come through the proxy"
        );
    }
    let to_ws: usize = relays
        .iter()
        .map(|r| r.tunnels_to(fake.ws_addr().port()).len())
        .sum();
    assert_eq!(streams.len(), to_ws, "{what}: one stream per tunnel");
}

/// The trade ids `fake` sent on `connection`.
fn sent_on(fake: &FakeExchange, connection: usize) -> HashSet<String> {
    fake.trades_sent()
        .into_iter()
        .filter(|t| t.connection == connection)
        .map(|t| t.id)
        .collect()
}

fn numeric(id: &str) -> u64 {
    id.parse().expect("the fakes number their trades")
}

/// Delivered trades are ones the fake sent, in order, none twice (the fakes number trades
/// across connections, so ids only grow).
fn assert_in_order_from(fake: &FakeExchange, trades: &[Trade], what: &str) {
    let sent: HashSet<String> = fake.trades_sent().into_iter().map(|t| t.id).collect();
    assert!(
        trades.iter().all(|t| sent.contains(&t.id)),
        "{what}: a trade the exchange never sent"
    );
    let ids: Vec<u64> = trades.iter().map(|t| numeric(&t.id)).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{what}: out of order or twice: {ids:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// A proxy that stalls mid-stream, an exchange that freezes: the idle timeout replaces the stream

/// The proxy stops forwarding a live stream and keeps both sockets open. User guide, section 10:
/// the idle timeout is "the time a stream may stay silent (no data or control frame) before the
/// read fails and the handler reconnects"; section 14: `IdleTimeout`, "no message for {n}s (idle
/// timeout)", "the handler reconnects", each failure going to `on_error`. The new stream goes
/// through the same proxy, and trades flow again.
async fn a_stall_mid_stream_is_replaced(relay: Relay, kind: ExchangeKind) {
    let what = format!("{kind} via {}", relay.url());
    let ca = TestCa::new();
    let options = FakeExchangeOptions::new()
        .trades_per_connection(100_000)
        .interval(Some(Duration::from_millis(20)));
    let fake = FakeExchange::start(&ca, kind, options)
        .await
        .expect("fake exchange");
    let conn = routed(kind.as_str(), &relay.url(), &relay.url(), ROUTE_TIMEOUT);
    let mut handler = FeedHandler::new(handler_options(&ca, conn));
    add_feed(&mut handler, &fake);
    let delivered = Delivered::attach(&mut handler);

    let stalled = within(&what, async {
        let running = handler.start().await.expect("start");
        delivered.until(|trades| trades.len() >= 3).await;
        let stalled = relay.stall_tunnels();
        // Recovered once trades sent on a second stream arrive.
        delivered
            .until(|trades| {
                let second = sent_on(&fake, 1);
                trades.iter().filter(|t| second.contains(&t.id)).count() >= 3
            })
            .await;
        running.stop().await;
        stalled
    })
    .await;

    assert!(stalled >= 1, "{what}: a live tunnel to stall");
    // One failure, the stall (a machine paused for over a second could add another idle
    // timeout: each one is reported the same way).
    let errors = delivered.errors();
    assert!(!errors.is_empty(), "{what}: the stall was noticed");
    for (kind, shown) in &errors {
        assert_eq!(kind, "Ws/IdleTimeout(1s)", "{what}: {shown}");
        assert!(
            shown.contains("no message for 1s (idle timeout)"),
            "{what}: {shown}"
        );
    }
    let stream_tunnels: Vec<bool> = relay
        .tunnels_to(fake.ws_addr().port())
        .iter()
        .map(|t| t.stalled)
        .collect();
    assert!(
        stream_tunnels.len() >= 2 && stream_tunnels[0] && !stream_tunnels[1],
        "{what}: the stalled stream, then its replacement, both through the proxy: \
         {stream_tunnels:?}"
    );
    assert_only_via(&fake, &[&relay], &what);
    let trades = delivered.trades();
    assert_in_order_from(&fake, &trades, &what);
    let first = sent_on(&fake, 0);
    assert!(
        trades.iter().any(|t| first.contains(&t.id)),
        "{what}: trades before the stall"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_proxy_that_stalls_mid_stream_is_replaced_after_the_idle_timeout() {
    let relay = Relay::connect(ProxyOptions::new().basic_auth(USER, PASSWORD)).await;
    a_stall_mid_stream_is_replaced(relay, ExchangeKind::Binance).await;
}

#[cfg(feature = "socks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks_proxy_that_stalls_mid_stream_is_replaced_after_the_idle_timeout() {
    let relay = Relay::socks(SocksOptions::socks5().user_pass(USER, PASSWORD), "socks5h").await;
    a_stall_mid_stream_is_replaced(relay, ExchangeKind::Backpack).await;
}

/// The exchange side goes quiet mid-stream without closing (a frozen peer: it sends its trades,
/// then nothing, and never sends FIN or RST). The same documented path: `IdleTimeout`, then a
/// reconnect through the proxy; Coinbase's snapshot on the new stream repeats trades already
/// delivered, and none is delivered twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_that_freezes_mid_stream_is_replaced_after_the_idle_timeout() {
    let ca = TestCa::new();
    let fake = FakeExchange::start(
        &ca,
        ExchangeKind::Coinbase,
        FakeExchangeOptions::new().trades_per_connection(3),
    )
    .await
    .expect("fake exchange");
    let relay = Relay::connect(ProxyOptions::new()).await;
    let conn = routed("coinbase", &relay.url(), &relay.url(), ROUTE_TIMEOUT);
    let mut handler = FeedHandler::new(handler_options(&ca, conn));
    add_feed(&mut handler, &fake);
    let delivered = Delivered::attach(&mut handler);

    within("frozen exchange", async {
        let running = handler.start().await.expect("start");
        delivered.until(|trades| trades.len() >= 6).await;
        running.stop().await;
    })
    .await;

    let errors = delivered.errors();
    assert!(!errors.is_empty(), "the silence was noticed");
    assert!(
        errors.iter().all(|(kind, _)| kind == "Ws/IdleTimeout(1s)"),
        "{errors:?}"
    );
    let mut sent: Vec<u64> = fake.trades_sent().iter().map(|t| numeric(&t.id)).collect();
    sent.sort_unstable();
    let got: Vec<u64> = delivered.trades().iter().map(|t| numeric(&t.id)).collect();
    assert_eq!(
        got[..6],
        sent[..6],
        "every trade of both streams, oldest first, none twice"
    );
    assert!(fake.ws_connections().len() >= 2, "reconnected");
    assert_only_via(&fake, &[&relay], "frozen exchange");
}

// ---------------------------------------------------------------------------------------------
// Half-open from the start: the tunnel opens, its far end never answers

/// The stream's proxy completes CONNECT, then relays nothing and closes nothing (the exchange
/// side vanished without FIN or RST). User guide, section 14, `HandshakeTimeout`: "once the
/// tunnel was up, TLS to the exchange and the upgrade took longer than the proxy's
/// `timeout_seconds` ... a proxy that stopped relaying"; and it is not a `Tunnel` error. With
/// `Backoff::max_failures`, the handler gives up with the last error (`GaveUp`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_whose_far_end_never_answers_times_out_the_websocket_handshake() {
    let ca = TestCa::new();
    let fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let rest = Relay::connect(ProxyOptions::new()).await;
    let stalling =
        Relay::connect(ProxyOptions::new().fault(feed_sim::connect_proxy::Fault::Stall)).await;
    let conn = routed("binance", &rest.url(), &stalling.url(), 1);
    let mut options = handler_options(&ca, conn);
    options.backoff.max_failures = Some(2);
    let mut handler = FeedHandler::new(options);
    add_feed(&mut handler, &fake);
    let delivered = Delivered::attach(&mut handler);

    let result = within("stalled tunnel", async {
        handler
            .start()
            .await
            .expect("the REST route works")
            .wait()
            .await
    })
    .await;
    match result {
        Err(HandlerError::GaveUp {
            failures: 2,
            last: Some(last),
            ..
        }) => {
            assert_eq!(kind_of(&last), "Ws/HandshakeTimeout(1s)", "{last}");
            assert!(
                last.to_string()
                    .contains("WebSocket handshake timed out after 1s"),
                "{last}"
            );
            assert!(last.tunnel_error().is_none(), "the tunnel itself was up");
        }
        other => panic!("expected GaveUp after 2 handshake timeouts, got {other:?}"),
    }
    assert_eq!(delivered.errors().len(), 2, "each failure reported");
    assert!(delivered.trades().is_empty());
    let streams = fake.ws_connections();
    assert_eq!(streams.len(), 2, "each attempt reached the exchange's port");
    assert!(
        streams.iter().all(|r| r.request_line.is_none()),
        "through a tunnel that relayed nothing"
    );
    let stalled: Vec<bool> = stalling.tunnels().iter().map(|t| t.stalled).collect();
    assert_eq!(stalled, [true, true]);
    assert_only_via(&fake, &[&rest, &stalling], "stalled tunnel");
}

// ---------------------------------------------------------------------------------------------
// REST answers: 429 then 200, 429 for good, 5xx, a truncated body, a body that stalls

/// How a prefetch with scripted REST faults must end.
enum Prefetch {
    /// It succeeds and the stream delivers trades.
    Streams,
    /// It fails with this error kind and a Display containing this text.
    Fails(&'static str, &'static str),
}

/// One REST case: a fresh fake Binance with `faults`, a fresh CONNECT proxy, the feed's
/// handler. Returns a description of anything that differs from `expect`.
async fn rest_case(
    faults: Vec<RestFault>,
    request_timeout: Duration,
    expect: Prefetch,
    requests: usize,
) -> Result<(), String> {
    let what = format!("{faults:?}");
    let ca = TestCa::new();
    let options = FakeExchangeOptions::new().rest_faults(faults);
    let fake = FakeExchange::start(&ca, ExchangeKind::Binance, options)
        .await
        .map_err(|e| e.to_string())?;
    let relay = Relay::connect(ProxyOptions::new()).await;
    let conn = routed("binance", &relay.url(), &relay.url(), ROUTE_TIMEOUT);
    let mut options = handler_options(&ca, conn);
    options.http.timeout = request_timeout;
    let mut handler = FeedHandler::new(options);
    add_feed(&mut handler, &fake);
    let delivered = Delivered::attach(&mut handler);

    match (handler.start().await, expect) {
        (Ok(running), Prefetch::Streams) => {
            delivered.until(|trades| !trades.is_empty()).await;
            running.stop().await;
        }
        (Err(HandlerError::Prefetch { source, .. }), Prefetch::Fails(kind, text)) => {
            let (got, shown) = (kind_of(&source), source.to_string());
            if got != kind || !shown.contains(text) {
                return Err(format!(
                    "{what}: expected {kind} ({text}), got {got}: {shown}"
                ));
            }
            if !fake.ws_connections().is_empty() {
                return Err(format!("{what}: a stream opened after a failed prefetch"));
            }
        }
        (Ok(running), Prefetch::Fails(kind, _)) => {
            running.stop().await;
            return Err(format!("{what}: started, expected {kind}"));
        }
        (Err(error), _) => return Err(format!("{what}: {error}")),
    }

    let seen = fake.rest_requests();
    if seen.len() != requests {
        return Err(format!(
            "{what}: {} REST requests, expected {requests}",
            seen.len()
        ));
    }
    // Retries reuse the pooled connection, so one tunnel carried them all.
    let rest_tunnels = relay.tunnels_to(fake.rest_addr().port()).len();
    let connections: HashSet<u64> = seen.iter().map(|r| r.connection).collect();
    if rest_tunnels != 1 || connections.len() != 1 {
        return Err(format!(
            "{what}: {rest_tunnels} REST tunnels, {} connections at the exchange",
            connections.len()
        ));
    }
    assert_only_via(&fake, &[&relay], &what);
    Ok(())
}

/// User guide, section 14 and the technical specification (`HttpConn`, `RetryPolicy`): a 429 is
/// retried (3 retries, `Retry-After` in seconds honoured), so 429 then 200 streams and a 429 for
/// good is `RateLimited` after 4 requests; another status is `Status`, not retried; a body cut
/// short by a close is `Body` ("reading the response body failed"), and one that stalls is
/// `Timeout` (the request timeout bounds "reading the whole response"); a failed prefetch
/// starts nothing (`HandlerError::Prefetch`, "nothing is left running").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_faults_are_retried_or_typed_as_documented() {
    let limited = |n: usize| {
        vec![
            RestFault::Status {
                status: 429,
                retry_after: Some(0),
            };
            n
        ]
    };
    let status = |status| {
        vec![RestFault::Status {
            status,
            retry_after: None,
        }]
    };
    let normal = Duration::from_secs(ROUTE_TIMEOUT);
    let one_second = Duration::from_secs(1);
    let mut cases = JoinSet::new();
    cases.spawn(rest_case(limited(1), normal, Prefetch::Streams, 2));
    cases.spawn(rest_case(
        limited(4),
        normal,
        Prefetch::Fails(
            "RateLimited(4)",
            "answered 429 Too Many Requests 4 times; giving up",
        ),
        4,
    ));
    cases.spawn(rest_case(
        status(500),
        normal,
        Prefetch::Fails("Status(500)", "answered 500"),
        1,
    ));
    cases.spawn(rest_case(
        status(503),
        normal,
        Prefetch::Fails("Status(503)", "answered 503"),
        1,
    ));
    cases.spawn(rest_case(
        vec![RestFault::CloseMidBody],
        normal,
        Prefetch::Fails("Http/Body", "reading the response body failed: "),
        1,
    ));
    cases.spawn(rest_case(
        vec![RestFault::StallMidBody],
        one_second,
        Prefetch::Fails("Http/Timeout(1s)", "request timed out after 1s"),
        1,
    ));
    let failures = within("REST faults", async {
        let mut failures = Vec::new();
        while let Some(joined) = cases.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => failures.push(failure),
                Err(panicked) => failures.push(panicked.to_string()),
            }
        }
        failures
    })
    .await;
    assert!(failures.is_empty(), "{failures:#?}");
}

// ---------------------------------------------------------------------------------------------
// A stream closed with 1011

/// The exchange ends every stream with close code 1011 after its trades. User guide, section
/// 14: a dropped stream "is reconnected with backoff ... through the route"; with
/// `Backoff::max_failures`, `GaveUp` "...: the server kept closing the stream"; the Logging table:
/// `server closed the connection` at debug with the close code. Every trade of every stream is
/// delivered, and every stream went through the proxy.
#[tokio::test]
async fn streams_closed_with_1011_are_reconnected_through_the_proxy_until_the_backoff_gives_up() {
    // A current-thread runtime, so the capture sees the handler's own log lines.
    let capture = TraceCapture::start();
    let ca = TestCa::new();
    let fake = FakeExchange::start(
        &ca,
        ExchangeKind::Backpack,
        FakeExchangeOptions::new()
            .trades_per_connection(2)
            .end_streams_with(1011, "internal error"),
    )
    .await
    .expect("fake exchange");
    let relay = Relay::connect(ProxyOptions::new()).await;
    let conn = routed("backpack", &relay.url(), &relay.url(), ROUTE_TIMEOUT);
    let mut options = handler_options(&ca, conn);
    options.backoff.max_failures = Some(3);
    let mut handler = FeedHandler::new(options);
    add_feed(&mut handler, &fake);
    let delivered = Delivered::attach(&mut handler);

    let result = within("1011", async {
        handler.start().await.expect("start").wait().await
    })
    .await;
    match &result {
        Err(
            error @ HandlerError::GaveUp {
                failures: 3,
                last: None,
                ..
            },
        ) => assert!(
            error
                .to_string()
                .ends_with("gave up after 3 failures in a row: the server kept closing the stream"),
            "{error}"
        ),
        other => panic!("expected GaveUp after 3 closes, got {other:?}"),
    }
    // A close is not an error: nothing went to `on_error`.
    assert!(delivered.errors().is_empty(), "{:?}", delivered.errors());

    let streams = fake.ws_connections();
    assert_eq!(streams.len(), 3);
    assert!(
        streams
            .iter()
            .all(|r| r.close_sent.as_ref().and_then(|c| c.code) == Some(1011)),
        "{streams:?}"
    );
    assert_only_via(&fake, &[&relay], "1011");
    let mut sent: Vec<u64> = fake.trades_sent().iter().map(|t| numeric(&t.id)).collect();
    sent.sort_unstable();
    let got: Vec<u64> = delivered.trades().iter().map(|t| numeric(&t.id)).collect();
    assert_eq!(got, sent, "every trade of the three streams, in order");
    assert_eq!(got.len(), 6);
    let logs = capture.text();
    let closes = logs
        .lines()
        .filter(|l| l.contains("server closed the connection") && l.contains("1011"))
        .count();
    assert_eq!(closes, 3, "{logs}");
}

// ---------------------------------------------------------------------------------------------
// Every proxy and handshake fault, 100 connections at once

/// REST or WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    Rest,
    Ws,
}

/// The server a case's connections aim at.
enum Target {
    Rest(HttpsServer),
    Ws(WssServer),
}

impl Target {
    async fn start(over: Over, ca: &TestCa, fault: HandshakeFault, names: &[&str]) -> Self {
        match over {
            Over::Rest => Self::Rest(
                HttpsServer::start(ca, Routes::new().route("/api", Response::json("{}")))
                    .await
                    .expect("https target"),
            ),
            Over::Ws => Self::Ws(
                WssServer::start(ca, WssOptions::new().fault(fault).cert_names(names))
                    .await
                    .expect("wss target"),
            ),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Rest(s) => format!("https://localhost:{}/api?signature=s", s.port()),
            Self::Ws(s) => s.url("/ws"),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Self::Rest(s) => s.port(),
            Self::Ws(s) => s.port(),
        }
    }

    /// The TCP connections it accepted.
    fn accepted(&self) -> usize {
        match self {
            Self::Rest(s) => usize::try_from(s.connection_count()).unwrap_or(usize::MAX),
            Self::Ws(s) => s.connections().len(),
        }
    }

    /// The peers it recorded (the WebSocket server records each accepted connection's peer).
    fn peers(&self) -> Vec<SocketAddr> {
        match self {
            Self::Rest(s) => s.requests().into_iter().map(|r| r.peer).collect(),
            Self::Ws(s) => s.connections().into_iter().filter_map(|r| r.peer).collect(),
        }
    }
}

/// One fault: a connection over `over` along a route through `relay` (or to a port nothing
/// listens on) to `target`, and the error it must end in.
struct Case {
    name: String,
    over: Over,
    relay: Option<Relay>,
    /// The route's proxy URL, credentials included.
    url: String,
    timeout: u64,
    request_timeout: Duration,
    target: Target,
    /// The error kind, as [`kind_of`] names it (a prefix).
    kind: &'static str,
    /// The documented Display text it contains.
    text: &'static str,
    /// Who has to act, for route errors.
    party: Option<&'static str>,
    /// Whether the fault comes after the tunnel, so the target sees (proxied) connections.
    reaches_target: bool,
    /// A socket bound to the unreachable proxy's port and never listening, so nothing else in
    /// this test binary can take the port while the case lives (a connect to it is refused).
    reserved: Option<feed_sim::ClosedPort>,
}

/// The expected outcome of a case, before its proxy and target exist.
struct Expect {
    kind: &'static str,
    text: &'static str,
    party: Option<&'static str>,
}

const fn proxy_fault(kind: &'static str, text: &'static str) -> Expect {
    Expect {
        kind,
        text,
        party: Some("Proxy"),
    }
}

const fn target_refused(kind: &'static str, text: &'static str) -> Expect {
    Expect {
        kind,
        text,
        party: Some("Target"),
    }
}

const fn after_tunnel(kind: &'static str, text: &'static str) -> Expect {
    Expect {
        kind,
        text,
        party: None,
    }
}

/// How a case's route names its proxy.
#[derive(Clone, Copy)]
enum Credentials {
    /// The URL the proxy gives (with its credentials if it has any).
    AsGiven,
    /// No credentials although the proxy wants some.
    Missing,
    /// A wrong password.
    Wrong,
}

/// Builds the cases over both transports (and the transport-specific ones), each with a fresh
/// proxy and target.
async fn cases(ca: &TestCa) -> Vec<Case> {
    use feed_sim::connect_proxy::Fault as ConnectFault;

    let other_ca = TestCa::new();
    let mut cases = Vec::new();
    for over in [Over::Rest, Over::Ws] {
        let connect: Vec<(&str, ProxyOptions, Credentials, u64, Expect)> = vec![
            (
                "connect: no credentials",
                ProxyOptions::new().basic_auth(USER, PASSWORD),
                Credentials::Missing,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyAuthRequired",
                    "proxy requires authentication; add user:password to the proxy URL",
                ),
            ),
            (
                "connect: wrong credentials",
                ProxyOptions::new().basic_auth(USER, PASSWORD),
                Credentials::Wrong,
                ROUTE_TIMEOUT,
                proxy_fault("Tunnel/ProxyAuthRejected", "proxy rejected the credentials"),
            ),
            (
                "connect: proxy refuses the target",
                ProxyOptions::new().fault(ConnectFault::Status(403)),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                target_refused(
                    "Tunnel/TargetRefused(HttpStatus)",
                    "proxy refused the target: CONNECT answered 403",
                ),
            ),
            (
                "connect: proxy closes at once",
                ProxyOptions::new().fault(ConnectFault::CloseImmediately),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(ClosedBeforeAnswer)",
                    "proxy closed the connection without answering",
                ),
            ),
            (
                "connect: proxy closes mid-handshake",
                ProxyOptions::new().fault(ConnectFault::CloseMidHandshake),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(Truncated)",
                    "proxy closed the connection in the middle of its answer",
                ),
            ),
            (
                "connect: garbage answer",
                ProxyOptions::new().fault(ConnectFault::Garbage),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(NotHttp)",
                    "proxy answered CONNECT with something that is not HTTP",
                ),
            ),
            (
                "connect: oversized answer",
                ProxyOptions::new().fault(ConnectFault::OversizedHeaders),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(OversizedHeaders)",
                    "proxy answered CONNECT with oversized headers",
                ),
            ),
            (
                "connect: silent proxy",
                ProxyOptions::new().fault(ConnectFault::NeverAnswer),
                Credentials::AsGiven,
                1,
                proxy_fault(
                    "Tunnel/ProxyTimeout(1s)",
                    "proxy handshake timed out after 1s",
                ),
            ),
            (
                "https proxy: untrusted certificate",
                ProxyOptions::new().tls(other_ca.server_config(&["localhost"])),
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault("Tunnel/ProxyTls", "TLS to the proxy failed: "),
            ),
        ];
        for (name, options, credentials, timeout, expect) in connect {
            let proxy = ConnectProxy::start(options).await.expect("connect proxy");
            let url = match credentials {
                Credentials::AsGiven => proxy.url_with_credentials(),
                Credentials::Missing => proxy.url(),
                Credentials::Wrong => format!("http://{USER}:wrong@{}", proxy.addr()),
            };
            let relay = Relay::Connect(proxy);
            let target = Target::start(over, ca, HandshakeFault::None, &["localhost"]).await;
            cases.push(case(name, over, Some(relay), url, timeout, target, expect));
        }

        // Nothing listens at the proxy's address: the port is bound and kept, never listened on.
        let reserved = feed_sim::ClosedPort::new().expect("closed port");
        let port = reserved.port();
        let target = Target::start(over, ca, HandshakeFault::None, &["localhost"]).await;
        let mut unreachable = case(
            "unreachable proxy",
            over,
            None,
            format!("http://127.0.0.1:{port}"),
            ROUTE_TIMEOUT,
            target,
            proxy_fault("Tunnel/ProxyUnreachable", "proxy unreachable: "),
        );
        unreachable.reserved = Some(reserved);
        cases.push(unreachable);

        // After the tunnel: the exchange's certificate is not trusted / not for its name.
        let relay = Relay::connect(ProxyOptions::new()).await;
        let (target, expect) = match over {
            Over::Rest => (
                Target::start(over, &other_ca, HandshakeFault::None, &[]).await,
                after_tunnel("Http/Connect(Tls)", "TLS to localhost failed: "),
            ),
            Over::Ws => (
                Target::start(over, ca, HandshakeFault::None, &["stream.binance.com"]).await,
                after_tunnel("Ws/Tls", "TLS to the exchange failed: "),
            ),
        };
        let url = relay.url();
        let name = "exchange TLS failure";
        cases.push(case(
            name,
            over,
            Some(relay),
            url,
            ROUTE_TIMEOUT,
            target,
            expect,
        ));

        // After the tunnel: it opens, then relays nothing (the far end vanished).
        let relay = Relay::connect(ProxyOptions::new().fault(ConnectFault::Stall)).await;
        let url = relay.url();
        let target = Target::start(over, ca, HandshakeFault::None, &["localhost"]).await;
        // REST: the request timeout bounds it (section 10), and TLS to the exchange is part of
        // the connect, so it names the proxy; WebSocket: `timeout_seconds` bounds TLS and the
        // upgrade after the tunnel (section 14, `HandshakeTimeout`).
        let stalled = match over {
            Over::Rest => {
                let expect = after_tunnel(
                    "Http/ConnectTimeout",
                    "request timed out after 1s while still connecting through proxy http://127.0.0.1:",
                );
                let mut stalled = case(
                    "half-open tunnel",
                    over,
                    Some(relay),
                    url,
                    ROUTE_TIMEOUT,
                    target,
                    expect,
                );
                stalled.request_timeout = Duration::from_secs(1);
                stalled
            }
            Over::Ws => {
                let expect = after_tunnel(
                    "Ws/HandshakeTimeout(1s)",
                    "WebSocket handshake timed out after 1s",
                );
                case(
                    "half-open tunnel",
                    over,
                    Some(relay),
                    url,
                    1,
                    target,
                    expect,
                )
            }
        };
        cases.push(stalled);
    }

    // The WebSocket upgrade answered wrongly, or never.
    let upgrades: [(&str, HandshakeFault, u64, Expect); 3] = [
        (
            "upgrade: wrong accept key",
            HandshakeFault::BadAccept,
            ROUTE_TIMEOUT,
            after_tunnel(
                "Ws/Handshake(BadAccept)",
                "WebSocket handshake failed: server answered a wrong Sec-WebSocket-Accept",
            ),
        ),
        (
            "upgrade: refused",
            HandshakeFault::Status(403),
            ROUTE_TIMEOUT,
            after_tunnel(
                "Ws/Handshake(UnexpectedStatus)",
                "server answered 403 Forbidden instead of 101 Switching Protocols",
            ),
        ),
        (
            "upgrade: silent exchange",
            HandshakeFault::NeverAnswer,
            1,
            after_tunnel(
                "Ws/HandshakeTimeout(1s)",
                "WebSocket handshake timed out after 1s",
            ),
        ),
    ];
    for (name, fault, timeout, expect) in upgrades {
        let relay = Relay::connect(ProxyOptions::new()).await;
        let url = relay.url();
        let target = Target::start(Over::Ws, ca, fault, &["localhost"]).await;
        cases.push(case(
            name,
            Over::Ws,
            Some(relay),
            url,
            timeout,
            target,
            expect,
        ));
    }

    #[cfg(feature = "socks")]
    socks_cases(ca, &mut cases).await;
    cases
}

/// The SOCKS faults of proxy-tunnel's wire tests, over both transports.
#[cfg(feature = "socks")]
async fn socks_cases(ca: &TestCa, cases: &mut Vec<Case>) {
    use feed_sim::socks::Fault as SocksFault;

    for over in [Over::Rest, Over::Ws] {
        let socks: Vec<(&str, SocksOptions, &'static str, Credentials, u64, Expect)> = vec![
            (
                "socks5h: no credentials",
                SocksOptions::socks5().user_pass(USER, PASSWORD),
                "socks5h",
                Credentials::Missing,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyAuthRequired",
                    "proxy requires authentication; add user:password to the proxy URL",
                ),
            ),
            (
                "socks5h: wrong password",
                SocksOptions::socks5().user_pass(USER, PASSWORD),
                "socks5h",
                Credentials::Wrong,
                ROUTE_TIMEOUT,
                proxy_fault("Tunnel/ProxyAuthRejected", "proxy rejected the credentials"),
            ),
            (
                "socks5: connection refused",
                SocksOptions::new().fault(SocksFault::Reply(0x05)),
                "socks5",
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                target_refused(
                    "Tunnel/TargetRefused(Socks5)",
                    "proxy refused the target: SOCKS5 reply 0x05 (connection refused)",
                ),
            ),
            (
                "socks4: request rejected",
                SocksOptions::new().fault(SocksFault::Reply(0x5B)),
                "socks4",
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                target_refused(
                    "Tunnel/TargetRefused(Socks4)",
                    "proxy refused the target: SOCKS4 reply 0x5b (request rejected or failed)",
                ),
            ),
            (
                "socks5h: garbage answer",
                SocksOptions::new().fault(SocksFault::Garbage),
                "socks5h",
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(NotSocks)",
                    "proxy answered with something that is not SOCKS",
                ),
            ),
            (
                "socks5: closes at once",
                SocksOptions::new().fault(SocksFault::CloseImmediately),
                "socks5",
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(ClosedBeforeAnswer)",
                    "proxy closed the connection without answering",
                ),
            ),
            (
                "socks5h: closes mid-handshake",
                SocksOptions::new().fault(SocksFault::CloseMidHandshake),
                "socks5h",
                Credentials::AsGiven,
                ROUTE_TIMEOUT,
                proxy_fault(
                    "Tunnel/ProxyProtocol(Truncated)",
                    "proxy closed the connection in the middle of its answer",
                ),
            ),
            (
                "socks5h: silent proxy",
                SocksOptions::new().fault(SocksFault::NeverAnswer),
                "socks5h",
                Credentials::AsGiven,
                1,
                proxy_fault(
                    "Tunnel/ProxyTimeout(1s)",
                    "proxy handshake timed out after 1s",
                ),
            ),
        ];
        for (name, options, scheme, credentials, timeout, expect) in socks {
            let proxy = SocksProxy::start(options).await.expect("socks proxy");
            let url = match credentials {
                Credentials::AsGiven => proxy.url_with_credentials(scheme),
                Credentials::Missing => proxy.url(scheme),
                Credentials::Wrong => format!("{scheme}://{USER}:wrong@{}", proxy.addr()),
            };
            let relay = Relay::Socks(proxy, scheme);
            let target = Target::start(over, ca, HandshakeFault::None, &["localhost"]).await;
            cases.push(case(name, over, Some(relay), url, timeout, target, expect));
        }
    }
}

fn case(
    name: &str,
    over: Over,
    relay: Option<Relay>,
    url: String,
    timeout: u64,
    target: Target,
    expect: Expect,
) -> Case {
    Case {
        name: format!("{name} ({over:?})"),
        over,
        reaches_target: expect.party.is_none(),
        relay,
        url,
        timeout,
        request_timeout: Duration::from_secs(ROUTE_TIMEOUT),
        target,
        kind: expect.kind,
        text: expect.text,
        party: expect.party,
        reserved: None,
    }
}

/// One connection attempt of `case`, as a feed makes it: an `HttpConn` read or a `WsConn` open.
/// `Ok` is the error it ended in; `Err` says why that is wrong.
async fn attempt(case: &Case, tls: &TlsOptions) -> Result<ConnError, String> {
    let conn = routed("binance", &case.url, &case.url, case.timeout);
    let result = match case.over {
        Over::Rest => {
            let options = HttpConnOptions {
                http: HttpOptions {
                    tls: tls.clone(),
                    timeout: case.request_timeout,
                    ..HttpOptions::default()
                },
                conn,
                ..HttpConnOptions::default()
            };
            HttpConn::new("faults", "binance", options)
                .read(&case.target.url())
                .await
                .map(|_| ())
        }
        Over::Ws => {
            let options = WsConnOptions {
                ws: WsOptions {
                    tls: tls.clone(),
                    ..WsOptions::default()
                },
                conn,
                ..WsConnOptions::default()
            };
            let mut ws = WsConn::new("faults", "binance", &case.target.url(), options)
                .map_err(|e| e.to_string())?;
            ws.open().await
        }
    };
    match result {
        Ok(()) => Err(format!("{}: connected", case.name)),
        Err(error) => Ok(error),
    }
}

/// Checks an error against its case; returns its kind.
fn check(case: &Case, error: &ConnError) -> Result<String, String> {
    let (kind, shown, party) = (kind_of(error), error.to_string(), party_of(error));
    let party = party.as_deref();
    if !kind.starts_with(case.kind) || !shown.contains(case.text) || party != case.party {
        return Err(format!(
            "{}: expected {} ({:?}, party {:?}), got {kind} (party {party:?}): {shown}",
            case.name, case.kind, case.text, case.party
        ));
    }
    if shown.contains(PASSWORD) || shown.contains("pa%40ss") || shown.contains("wrong@") {
        return Err(format!("{}: credentials in the error: {shown}", case.name));
    }
    Ok(kind)
}

/// Attempts in all.
const AT_ONCE: usize = 100;

/// How long one attempt may take: longer than any timeout a case uses (1 s, or
/// [`ROUTE_TIMEOUT`] for those that must not time out), shorter than [`DEADLINE`].
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(10);

/// Every proxy and handshake fault the REST and WebSocket layers test one at a time (wrong or
/// missing credentials, a refusing proxy, one that closes at once or mid-handshake, answers
/// garbage or oversized headers or nothing, an unreachable proxy, an https:// proxy with an
/// untrusted certificate, an untrusted exchange certificate, a wrong or refused upgrade, a silent
/// exchange, a tunnel that relays nothing; the SOCKS ones with the `socks` feature). Each case
/// runs once alone, then [`AT_ONCE`] attempts over all cases run at once: each attempt ends in
/// its case's documented error (user guide, section 14), the same kind as alone, inside its
/// deadline; and no target saw a connection the proxy did not open (none at all when the fault
/// is before the tunnel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proxy_and_handshake_fault_at_once_ends_in_its_own_typed_error() {
    let ca = TestCa::new();
    let tls = tls(&ca);
    let cases = Arc::new(cases(&ca).await);
    assert!(cases.len() < AT_ONCE, "every case runs more than once");

    let alone: Vec<String> = within("alone", async {
        let mut kinds = Vec::new();
        for case in cases.iter() {
            let error = tokio::time::timeout(ATTEMPT_DEADLINE, attempt(case, &tls))
                .await
                .unwrap_or_else(|_| panic!("{}: hangs alone", case.name))
                .unwrap_or_else(|why| panic!("{why}"));
            kinds.push(check(case, &error).unwrap_or_else(|why| panic!("alone: {why}")));
        }
        kinds
    })
    .await;

    let mut attempts = JoinSet::new();
    for n in 0..AT_ONCE {
        let (cases, tls) = (Arc::clone(&cases), tls.clone());
        attempts.spawn(async move {
            let index = n % cases.len();
            let outcome = tokio::time::timeout(ATTEMPT_DEADLINE, attempt(&cases[index], &tls))
                .await
                .unwrap_or_else(|_| Err(format!("{}: hangs under load", cases[index].name)));
            (index, outcome)
        });
    }
    let outcomes = within("100 at once", async {
        let mut outcomes = Vec::new();
        while let Some(joined) = attempts.join_next().await {
            outcomes.push(joined.expect("an attempt panicked"));
        }
        outcomes
    })
    .await;
    assert_eq!(outcomes.len(), AT_ONCE);
    let mut failures = Vec::new();
    for (index, outcome) in outcomes {
        let case = &cases[index];
        match outcome.and_then(|error| check(case, &error)) {
            Ok(kind) if kind == alone[index] => {}
            Ok(kind) => failures.push(format!(
                "{}: {kind} at once, {} alone",
                case.name, alone[index]
            )),
            Err(why) => failures.push(why),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // No direct connection: a target accepted exactly the connections its case's proxy opened
    // to it, each from the proxy's own address; none when the fault is before the tunnel.
    for case in cases.iter() {
        let onward = case
            .relay
            .as_ref()
            .map_or(0, |r| r.tunnels_to(case.target.port()).len());
        let outgoing = case.relay.as_ref().map(Relay::outgoing).unwrap_or_default();
        assert_eq!(
            case.target.accepted(),
            onward,
            "{}: the target saw connections the proxy did not open",
            case.name
        );
        assert!(
            case.target.peers().iter().all(|p| outgoing.contains(p)),
            "{}: a peer that is not the proxy",
            case.name
        );
        if !case.reaches_target {
            assert_eq!(onward, 0, "{}: the proxy connected onward", case.name);
        }
    }
}
