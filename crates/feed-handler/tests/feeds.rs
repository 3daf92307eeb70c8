//! The three feeds end to end against feed-sim's fake exchanges over TLS, directly and through
//! in-process proxies: every trade the exchange sent reaches the callback in order, the REST
//! prefetch takes the HTTP route and the stream the WebSocket route, a stream cut by the proxy
//! reconnects through the same proxy, counters and the raw-data callback see exactly what
//! flowed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_handler::binance::BinanceFeed;
use feed_handler::ccxt;
use feed_handler::coinbase::CoinbaseFeed;
use feed_handler::feed_conn::{ConnOptions, HttpOptions, RawKind, TlsOptions, WsOptions};
use feed_handler::{
    Backoff, Feed, FeedError, FeedHandler, HandlerError, HandlerOptions, Side, Trade,
};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions, SentTrade};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;
use rstest::rstest;

const DEADLINE: Duration = Duration::from_secs(20);

fn tls(ca: &TestCa) -> TlsOptions {
    TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .expect("CA")
}

fn options(ca: &TestCa, conn: ConnOptions) -> HandlerOptions {
    HandlerOptions {
        http: HttpOptions {
            tls: tls(ca),
            ..HttpOptions::default()
        },
        ws: WsOptions {
            tls: tls(ca),
            ..WsOptions::default()
        },
        conn,
        backoff: Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
            ..Backoff::default()
        },
    }
}

/// The feed for `kind` with its two usual symbols, pointed at `fake`.
fn feed_for(fake: &FakeExchange) -> Box<dyn FnOnce(&mut FeedHandler)> {
    let rest = fake.rest_base_url();
    let ws = fake.ws_base_url();
    match fake.kind() {
        ExchangeKind::Binance => Box::new(move |h: &mut FeedHandler| {
            h.add_feed(
                BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])
                    .with_rest_url(&rest)
                    .expect("rest url")
                    .with_ws_url(&ws)
                    .expect("ws url"),
            );
        }),
        ExchangeKind::Coinbase => Box::new(move |h: &mut FeedHandler| {
            h.add_feed(
                CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])
                    .with_rest_url(&rest)
                    .expect("rest url")
                    .with_ws_url(&ws)
                    .expect("ws url"),
            );
        }),
        ExchangeKind::Backpack => Box::new(move |h: &mut FeedHandler| {
            h.add_feed(
                ccxt::backpack(&["BTC-USDC", "ETH-USDC"])
                    .with_rest_url(&rest)
                    .expect("rest url")
                    .with_ws_url(&ws)
                    .expect("ws url"),
            );
        }),
    }
}

/// `BTCUSDT` / `BTC-USD` / `BTC_USDC` -> the normalized symbol.
fn normalized(kind: ExchangeKind, exchange_symbol: &str) -> String {
    match kind {
        ExchangeKind::Binance => {
            let base = exchange_symbol.trim_end_matches("USDT");
            format!("{base}-USDT")
        }
        ExchangeKind::Coinbase => exchange_symbol.to_owned(),
        _ => exchange_symbol.replace('_', "-"),
    }
}

fn numeric_id(id: &str) -> u64 {
    id.parse().expect("the fakes number trades")
}

/// Asserts `got` is exactly what the fake sent, field by field, oldest first (Coinbase lists
/// each batch newest first on the wire; the feed delivers it oldest first).
fn assert_same_trades(kind: ExchangeKind, got: &[Trade], sent: &[SentTrade]) {
    let mut sent = sent.to_vec();
    sent.sort_by_key(|s| numeric_id(&s.id));
    assert_eq!(got.len(), sent.len(), "trade count");
    for (trade, sent) in got.iter().zip(&sent) {
        assert_eq!(&*trade.exchange, kind.as_str());
        assert_eq!(*trade.symbol, normalized(kind, &sent.exchange_symbol));
        assert_eq!(trade.id, sent.id);
        assert_eq!(trade.price.to_string(), sent.price);
        assert_eq!(trade.amount.to_string(), sent.amount);
        let side = match sent.taker_side {
            "buy" => Side::Buy,
            _ => Side::Sell,
        };
        assert_eq!(trade.side, side);
        assert_eq!(trade.timestamp.unix_nanos(), sent.timestamp_unix_nanos);
    }
}

type Collected = Arc<Mutex<Vec<Trade>>>;

fn collect(handler: &mut FeedHandler) -> Collected {
    let trades = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&trades);
    handler.on_trade(move |trade| sink.lock().expect("lock").push(trade.clone()));
    trades
}

async fn wait_for(trades: &Collected, count: usize) -> Vec<Trade> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let now = trades.lock().expect("lock").clone();
        if now.len() >= count || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn all_kinds() -> [ExchangeKind; 3] {
    [
        ExchangeKind::Binance,
        ExchangeKind::Coinbase,
        ExchangeKind::Backpack,
    ]
}

#[derive(Debug, Clone, Copy)]
enum Via {
    Direct,
    /// REST through one CONNECT proxy, the stream through another (with auth).
    Connect,
    #[cfg(feature = "socks")]
    Socks5,
}

#[rstest]
#[case::direct(Via::Direct)]
#[case::connect(Via::Connect)]
#[cfg_attr(feature = "socks", case::socks5(Via::Socks5))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_feed_delivers_every_trade_in_order_along_its_routes(#[case] via: Via) {
    const TRADES: usize = 20;
    for kind in all_kinds() {
        let ca = TestCa::new();
        let fake = FakeExchange::start(
            &ca,
            kind,
            FakeExchangeOptions::new().trades_per_connection(TRADES),
        )
        .await
        .expect("fake exchange");
        let rest_proxy = ConnectProxy::start(ProxyOptions::new())
            .await
            .expect("proxy");
        let ws_proxy = ConnectProxy::start(ProxyOptions::new().basic_auth("feed", "pw-canary"))
            .await
            .expect("proxy");
        #[cfg(feature = "socks")]
        let socks = feed_sim::SocksProxy::start(feed_sim::SocksOptions::socks5())
            .await
            .expect("socks");
        let proxies = match via {
            Via::Direct => None,
            Via::Connect => Some(ConnectionProxies {
                http: Some(ProxyConfig::parse(&rest_proxy.url()).expect("url")),
                websocket: Some(ProxyConfig::parse(&ws_proxy.url_with_credentials()).expect("url")),
            }),
            #[cfg(feature = "socks")]
            Via::Socks5 => Some(ConnectionProxies::both(
                ProxyConfig::parse(&socks.url("socks5")).expect("url"),
            )),
        };
        let mut settings = ProxySettings::default();
        if let Some(proxies) = proxies {
            settings = settings.with_exchange(ExchangeId::new(kind.as_str()).expect("id"), proxies);
        }
        let conn = ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings)));
        let mut handler = FeedHandler::new(options(&ca, conn));
        feed_for(&fake)(&mut handler);
        let trades = collect(&mut handler);
        let running = handler.start().await.expect("start");
        let got = wait_for(&trades, TRADES).await;
        running.stop().await;

        assert_same_trades(kind, &got, &fake.trades_sent());
        let rest_target = format!("localhost:{}", fake.rest_addr().port());
        let ws_target = format!("localhost:{}", fake.ws_addr().port());
        let targets = |records: Vec<Option<String>>| -> Vec<String> {
            records.into_iter().map(|t| t.unwrap_or_default()).collect()
        };
        match via {
            Via::Direct => {
                assert!(rest_proxy.connections().is_empty());
                assert!(ws_proxy.connections().is_empty());
            }
            Via::Connect => {
                let rest_seen = targets(
                    rest_proxy
                        .connections()
                        .into_iter()
                        .map(|r| r.target)
                        .collect(),
                );
                let ws_seen = targets(
                    ws_proxy
                        .connections()
                        .into_iter()
                        .map(|r| r.target)
                        .collect(),
                );
                assert_eq!(
                    rest_seen,
                    [rest_target],
                    "{kind:?}: REST prefetch via the HTTP route"
                );
                assert_eq!(
                    ws_seen,
                    [ws_target],
                    "{kind:?}: stream via the WebSocket route"
                );
                assert!(
                    ws_proxy
                        .connections()
                        .iter()
                        .all(|r| r.auth_ok == Some(true))
                );
            }
            #[cfg(feature = "socks")]
            Via::Socks5 => {
                // Both transports through the one SOCKS5 proxy, to the fake's two ports only.
                let mut seen: Vec<u16> = socks
                    .connections()
                    .into_iter()
                    .map(|r| r.target_port.unwrap_or_default())
                    .collect();
                seen.sort_unstable();
                let mut want = vec![fake.rest_addr().port(), fake.ws_addr().port()];
                want.sort_unstable();
                assert_eq!(seen, want, "{kind:?}");
            }
        }
        assert_eq!(fake.rest_requests().len(), 1, "{kind:?}: one prefetch");
        assert_eq!(fake.ws_connections().len(), 1, "{kind:?}: one stream");
    }
}

#[rstest]
#[case::binance(ExchangeKind::Binance)]
#[case::coinbase(ExchangeKind::Coinbase)]
#[case::backpack(ExchangeKind::Backpack)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_the_proxy_reconnects_through_the_same_proxy(#[case] kind: ExchangeKind) {
    let ca = TestCa::new();
    let fake = FakeExchange::start(
        &ca,
        kind,
        FakeExchangeOptions::new()
            .trades_per_connection(10_000)
            .interval(Some(Duration::from_millis(2))),
    )
    .await
    .expect("fake exchange");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let settings = ProxySettings::default().with_exchange(
        ExchangeId::new(kind.as_str()).expect("id"),
        ConnectionProxies::both(ProxyConfig::parse(&proxy.url()).expect("url")),
    );
    let conn = ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings)));
    let mut handler = FeedHandler::new(options(&ca, conn));
    feed_for(&fake)(&mut handler);
    let errors = Arc::new(Mutex::new(0usize));
    let error_sink = Arc::clone(&errors);
    handler.on_error(move |_| *error_sink.lock().expect("lock") += 1);
    let trades = collect(&mut handler);
    let running = handler.start().await.expect("start");

    let before = wait_for(&trades, 10).await;
    assert!(before.len() >= 10, "{kind:?}: trades before the cut");
    assert!(proxy.cut_tunnels() >= 1, "a live tunnel to cut");
    let cut_at = trades.lock().expect("lock").len();
    let after = wait_for(&trades, cut_at + 10).await;
    running.stop().await;
    assert!(
        after.len() >= cut_at + 10,
        "{kind:?}: trades keep coming after the cut"
    );

    // The second stream went through the same proxy, and nothing reached the exchange directly:
    // every stream connection the fake saw is one the proxy opened.
    let ws_target = format!("localhost:{}", fake.ws_addr().port());
    let ws_tunnels = proxy
        .connections()
        .into_iter()
        .filter(|r| r.target.as_deref() == Some(ws_target.as_str()))
        .count();
    let ws_connections = fake.ws_connections().len();
    assert!(ws_connections >= 2, "{kind:?}: reconnected");
    assert_eq!(
        ws_tunnels, ws_connections,
        "{kind:?}: every stream through the proxy"
    );
    assert!(*errors.lock().expect("lock") <= 1);

    // Trades arrive in order and the ids keep increasing across the reconnect (the fake numbers
    // them per exchange), so none is delivered twice; each is one the fake sent.
    let ids: Vec<u64> = after.iter().map(|t| numeric_id(&t.id)).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "{kind:?}: in order, no duplicates"
    );
    let sent: std::collections::HashSet<String> =
        fake.trades_sent().into_iter().map(|s| s.id).collect();
    assert!(after.iter().all(|t| sent.contains(&t.id)), "{kind:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_the_raw_callback_see_exactly_what_flowed() {
    for kind in all_kinds() {
        let ca = TestCa::new();
        let fake = FakeExchange::start(
            &ca,
            kind,
            FakeExchangeOptions::new().trades_per_connection(12),
        )
        .await
        .expect("fake exchange");
        #[derive(Default)]
        struct Seen {
            connects: Vec<String>,
            sent: Vec<String>,
            received: Vec<Vec<u8>>,
            http_received: usize,
        }
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let conn = ConnOptions::default().with_raw_callback(move |raw| {
            let mut seen = sink.lock().expect("lock");
            let ws = raw.conn_id.as_str().contains(".ws.");
            match raw.kind {
                RawKind::Connect { url } => seen.connects.push(format!("{} {url}", raw.conn_id)),
                RawKind::Sent(data) if ws => {
                    seen.sent.push(String::from_utf8_lossy(data).into_owned())
                }
                RawKind::Received(data) if ws => seen.received.push(data.to_vec()),
                RawKind::Received(_) => seen.http_received += 1,
                _ => {}
            }
        });
        let mut handler = FeedHandler::new(options(&ca, conn));
        feed_for(&fake)(&mut handler);
        let trades = collect(&mut handler);
        let running = handler.start().await.expect("start");
        let got = wait_for(&trades, 12).await;
        assert_eq!(got.len(), 12, "{kind:?}");
        running.stop().await;
        let records = fake.ws_connections();
        assert_eq!(records.len(), 1);
        let record = &records[0];
        let seen = seen.lock().expect("lock");
        assert_eq!(
            seen.connects.len(),
            2,
            "{kind:?}: one REST and one stream connect: {:?}",
            seen.connects
        );
        assert_eq!(seen.http_received, 1, "{kind:?}: the prefetch response");
        // Everything the client sent is what the exchange received, in order.
        let server_got: Vec<String> = record
            .messages
            .iter()
            .map(|m| match m {
                feed_sim::WsMessage::Text(t) => t.clone(),
                feed_sim::WsMessage::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            })
            .collect();
        assert_eq!(seen.sent, server_got, "{kind:?}");
        // Everything the exchange sent (acks, snapshots, heartbeats, trades) was received.
        assert_eq!(seen.received.len(), record.messages_sent, "{kind:?}");
    }
}

#[tokio::test]
async fn a_failed_prefetch_or_an_unknown_symbol_stops_the_start() {
    let ca = TestCa::new();
    let fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake");

    // The REST base points at the WebSocket server's port: the prefetch fails, typed.
    let mut handler = FeedHandler::new(options(&ca, ConnOptions::default()));
    handler.add_feed(
        BinanceFeed::new(&["BTC-USDT"])
            .with_rest_url(&format!("https://localhost:{}", fake.ws_addr().port()))
            .expect("url")
            .with_ws_url(&fake.ws_base_url())
            .expect("url"),
    );
    let error = handler.start().await.expect_err("prefetch fails");
    assert!(matches!(error, HandlerError::Prefetch { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with("binance: metadata prefetch failed: binance.http."),
        "{error}"
    );

    let mut handler = FeedHandler::new(options(&ca, ConnOptions::default()));
    handler.add_feed(
        BinanceFeed::new(&["DOGE-EUR"])
            .with_rest_url(&fake.rest_base_url())
            .expect("url")
            .with_ws_url(&fake.ws_base_url())
            .expect("url"),
    );
    let error = handler.start().await.expect_err("unknown symbol");
    assert!(
        matches!(error, HandlerError::Feed(FeedError::UnknownSymbol { ref symbol, .. }) if symbol == "DOGE-EUR"),
        "{error:?}"
    );
    // The WSS port saw the failed prefetch's request, but no stream was ever opened.
    assert!(
        fake.ws_connections().iter().all(|r| !r.upgraded),
        "no stream opened"
    );
}

/// A feed with no metadata and one stream to a port nobody listens on.
struct Unreachable(String);

impl Feed for Unreachable {
    fn id(&self) -> &str {
        "unreachable"
    }
    fn exchange(&self) -> &str {
        "binance"
    }
    fn metadata_requests(&self) -> Vec<feed_handler::RestRequest> {
        Vec::new()
    }
    fn parse_metadata(&self, _: &[bytes::Bytes]) -> Result<feed_handler::Markets, FeedError> {
        Ok(feed_handler::Markets::new())
    }
    fn ws_endpoints(
        &self,
        _: &feed_handler::Markets,
    ) -> Result<Vec<feed_handler::WsEndpoint>, FeedError> {
        Ok(vec![feed_handler::WsEndpoint {
            url: self.0.clone(),
            subscribe: Vec::new(),
        }])
    }
    fn parse(
        &self,
        _: &feed_handler::Markets,
        _: &[u8],
        _: &mut Vec<feed_handler::Event>,
    ) -> Result<(), feed_handler::ParseError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_backoff_gives_up_after_the_configured_failures() {
    let ca = TestCa::new();
    // Bind and drop: a loopback port with no listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut options = options(&ca, ConnOptions::default());
    options.backoff.max_failures = Some(3);
    let mut handler = FeedHandler::new(options);
    handler.add_feed(Unreachable(format!("wss://127.0.0.1:{port}/")));
    let errors = Arc::new(Mutex::new(0usize));
    let sink = Arc::clone(&errors);
    handler.on_error(move |_| *sink.lock().expect("lock") += 1);
    let running = handler.start().await.expect("start");
    let result = tokio::time::timeout(DEADLINE, running.wait())
        .await
        .expect("gives up in time");
    match result {
        Err(HandlerError::GaveUp { failures, feed, .. }) => {
            assert_eq!((failures, feed.as_str()), (3, "unreachable"));
        }
        other => panic!("expected GaveUp, got {other:?}"),
    }
    assert_eq!(*errors.lock().expect("lock"), 3);
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        ..Backoff::default()
    };
    let delays: Vec<u64> = (1..=7)
        .map(|n| u64::try_from(backoff.delay(n).as_millis()).expect("small"))
        .collect();
    assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
    assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
}

#[tokio::test]
async fn malformed_messages_are_logged_and_skipped_and_the_stream_goes_on() {
    let capture = feed_sim::TraceCapture::start();
    let ca = TestCa::new();
    let fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake");
    let fixture = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/exchanges/binance/ws-messages.jsonl"
    ));
    let first_trade = fixture.lines().next().expect("a fixture line");
    let stream = feed_sim::WssServer::start(
        &ca,
        feed_sim::WssOptions::new().echo(false).messages(vec![
            feed_sim::ServerMessage::Text("not json".into()),
            feed_sim::ServerMessage::Text(
                r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate"}}"#.into(),
            ),
            feed_sim::ServerMessage::Text(first_trade.into()),
        ]),
    )
    .await
    .expect("wss");
    let mut handler = FeedHandler::new(options(&ca, ConnOptions::default()));
    handler.add_feed(
        BinanceFeed::new(&["BTC-USDT"])
            .with_rest_url(&fake.rest_base_url())
            .expect("url")
            .with_ws_url(stream.url("").trim_end_matches('/'))
            .expect("url"),
    );
    let trades = collect(&mut handler);
    let running = handler.start().await.expect("start");
    let got = wait_for(&trades, 1).await;
    running.stop().await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "3603125811");
    let logs = capture.text();
    let skipped: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("message skipped"))
        .collect();
    assert_eq!(skipped.len(), 2, "{logs}");
    assert!(skipped[0].contains("malformed message"), "{}", skipped[0]);
    assert!(skipped[1].contains("unknown event type"), "{}", skipped[1]);
    assert!(skipped.iter().all(|l| l.contains("binance.ws.")), "{logs}");
}

#[tokio::test]
async fn a_server_that_keeps_closing_the_stream_is_given_up_on_too() {
    let ca = TestCa::new();
    let server = feed_sim::WssServer::start(
        &ca,
        feed_sim::WssOptions::new().messages(vec![feed_sim::ServerMessage::Close {
            code: 1001,
            reason: "going away".into(),
        }]),
    )
    .await
    .expect("wss");
    let mut options = options(&ca, ConnOptions::default());
    options.backoff.max_failures = Some(2);
    let mut handler = FeedHandler::new(options);
    handler.add_feed(Unreachable(server.url("/")));
    let running = handler.start().await.expect("start");
    let result = tokio::time::timeout(DEADLINE, running.wait())
        .await
        .expect("gives up in time");
    match result {
        Err(
            error @ HandlerError::GaveUp {
                last: None,
                failures: 2,
                ..
            },
        ) => {
            assert!(
                error
                    .to_string()
                    .ends_with("the server kept closing the stream"),
                "{error}"
            );
        }
        other => panic!("expected GaveUp without an error, got {other:?}"),
    }
    assert_eq!(server.connections().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_callback_is_reported_with_its_feed() {
    let ca = TestCa::new();
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Coinbase, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let mut handler = FeedHandler::new(options(&ca, ConnOptions::default()));
    feed_for(&fake)(&mut handler);
    handler.on_trade(|_| panic!("a callback bug"));
    let running = handler.start().await.expect("start");
    let result = tokio::time::timeout(DEADLINE, running.wait())
        .await
        .expect("the stream ends in time");
    match result {
        Err(HandlerError::Panicked { feed }) => assert_eq!(feed, "coinbase"),
        other => panic!("expected Panicked, got {other:?}"),
    }
    fake.shutdown().await;
}
