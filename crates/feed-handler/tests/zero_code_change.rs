//! Zero code change: feeds built with no proxy knowledge (default handler options: the
//! process-wide proxy system), started after `init_proxy_system`, send their REST prefetch
//! through the HTTP route and their stream through the WebSocket route of their exchange.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_handler::binance::BinanceFeed;
use feed_handler::ccxt;
use feed_handler::coinbase::CoinbaseFeed;
use feed_handler::feed_conn::{HttpOptions, TlsOptions, WsOptions};
use feed_handler::{FeedHandler, HandlerOptions, Trade};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{clear_proxy_system, init_proxy_system};

const TRADES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_follow_the_proxy_system_without_a_line_of_proxy_code() {
    let ca = TestCa::new();
    let mut fakes = Vec::new();
    for kind in [
        ExchangeKind::Binance,
        ExchangeKind::Coinbase,
        ExchangeKind::Backpack,
    ] {
        fakes.push(
            FakeExchange::start(
                &ca,
                kind,
                FakeExchangeOptions::new().trades_per_connection(TRADES),
            )
            .await
            .expect("fake"),
        );
    }
    let proxy = |auth: bool| async move {
        let options = if auth {
            ProxyOptions::new().basic_auth("ops", "zero-code-canary")
        } else {
            ProxyOptions::new()
        };
        ConnectProxy::start(options).await.expect("proxy")
    };
    // Binance: REST via A, stream via B. Coinbase: its websocket override C, REST via the
    // default D. Backpack: both transports via the default D (REST) and E (websocket).
    let (a, b, c, d, e) = (
        proxy(false).await,
        proxy(true).await,
        proxy(false).await,
        proxy(false).await,
        proxy(false).await,
    );
    let parse = |url: String| ProxyConfig::parse(&url).expect("proxy url");
    let settings = ProxySettings::default()
        .with_default_http(parse(d.url()))
        .with_default_websocket(parse(e.url()))
        .with_exchange(
            ExchangeId::new("binance").expect("id"),
            ConnectionProxies {
                http: Some(parse(a.url())),
                websocket: Some(parse(b.url_with_credentials())),
            },
        )
        .with_exchange(
            ExchangeId::new("coinbase").expect("id"),
            ConnectionProxies::websocket(parse(c.url())),
        );
    init_proxy_system(settings);

    let tls = TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .expect("CA");
    let mut handler = FeedHandler::new(HandlerOptions {
        http: HttpOptions {
            tls: tls.clone(),
            ..HttpOptions::default()
        },
        ws: WsOptions {
            tls,
            ..WsOptions::default()
        },
        ..HandlerOptions::default()
    });
    let (binance, coinbase, backpack) = (&fakes[0], &fakes[1], &fakes[2]);
    handler.add_feed(
        BinanceFeed::new(&["BTC-USDT"])
            .with_rest_url(&binance.rest_base_url())
            .expect("url")
            .with_ws_url(&binance.ws_base_url())
            .expect("url"),
    );
    handler.add_feed(
        CoinbaseFeed::new(&["BTC-USD"])
            .with_rest_url(&coinbase.rest_base_url())
            .expect("url")
            .with_ws_url(&coinbase.ws_base_url())
            .expect("url"),
    );
    handler.add_feed(
        ccxt::backpack(&["BTC-USDC"])
            .with_rest_url(&backpack.rest_base_url())
            .expect("url")
            .with_ws_url(&backpack.ws_base_url())
            .expect("url"),
    );
    let trades: Arc<Mutex<Vec<Trade>>> = Arc::default();
    let sink = Arc::clone(&trades);
    handler.on_trade(move |t| sink.lock().expect("lock").push(t.clone()));
    let running = handler.start().await.expect("start");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while trades.lock().expect("lock").len() < 3 * TRADES && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await;
    clear_proxy_system();
    let trades = trades.lock().expect("lock").clone();
    for exchange in ["binance", "coinbase", "backpack"] {
        let count = trades.iter().filter(|t| &*t.exchange == exchange).count();
        assert_eq!(count, TRADES, "{exchange}");
    }

    let port = |addr: std::net::SocketAddr| format!("localhost:{}", addr.port());
    let targets = |p: &ConnectProxy| -> Vec<String> {
        let mut t: Vec<String> = p
            .connections()
            .into_iter()
            .filter_map(|r| r.target)
            .collect();
        t.sort();
        t
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(targets(&a), [port(binance.rest_addr())], "binance REST");
    assert_eq!(targets(&b), [port(binance.ws_addr())], "binance stream");
    assert_eq!(
        targets(&c),
        [port(coinbase.ws_addr())],
        "coinbase stream (override)"
    );
    assert_eq!(
        targets(&d),
        sorted(vec![port(coinbase.rest_addr()), port(backpack.rest_addr())]),
        "default HTTP route: coinbase and backpack REST"
    );
    assert_eq!(
        targets(&e),
        [port(backpack.ws_addr())],
        "default websocket route: backpack stream"
    );
}
