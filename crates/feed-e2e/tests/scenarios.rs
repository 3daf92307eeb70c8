//! Whole-system scenarios over the three feeds: mixed per-exchange and per-transport settings,
//! disabled settings after proxied runs (no residue), and precedence of environment over file
//! over code, field by field. They share the process-wide proxy system, so they hold one lock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_e2e::{Exchanges, FeedKind, TRADES_PER_CELL};
use feed_handler::{FeedHandler, Trade};
use feed_sim::{ConnectProxy, ProxyOptions};
use proxy_config::{
    ConnectionProxies, ExchangeId, Loader, Origin, ProxyConfig, ProxySettings, TimeoutSeconds,
};
use proxy_resolve::{clear_proxy_system, init_proxy_system};

static SYSTEM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const DEADLINE: Duration = Duration::from_secs(15);

/// Runs all three feeds until each delivered its trades; the trades by exchange.
async fn run_all(exchanges: &Exchanges) -> Vec<Trade> {
    let mut handler = FeedHandler::new(exchanges.handler_options());
    for kind in FeedKind::ALL {
        exchanges.add_feed(&mut handler, kind).expect("feed");
    }
    let trades: Arc<Mutex<Vec<Trade>>> = Arc::default();
    let sink = Arc::clone(&trades);
    handler.on_trade(move |t| sink.lock().expect("lock").push(t.clone()));
    let running = handler.start().await.expect("start");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while trades.lock().expect("lock").len() < 3 * TRADES_PER_CELL
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.stop().await;
    let trades = trades.lock().expect("lock").clone();
    for kind in FeedKind::ALL {
        let count = trades
            .iter()
            .filter(|t| &*t.exchange == kind.as_str())
            .count();
        assert_eq!(count, TRADES_PER_CELL, "{kind:?} trades");
    }
    trades
}

async fn proxy() -> ConnectProxy {
    ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy")
}

/// The ports a proxy tunnelled to, sorted.
fn ports(proxy: &ConnectProxy) -> Vec<u16> {
    let mut ports: Vec<u16> = proxy
        .connections()
        .into_iter()
        .filter_map(|r| r.upstream.map(|u| u.port()))
        .collect();
    ports.sort_unstable();
    ports
}

fn sorted(mut ports: Vec<u16>) -> Vec<u16> {
    ports.sort_unstable();
    ports
}

fn parse(url: String) -> ProxyConfig {
    ProxyConfig::parse(&url).expect("proxy url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_settings_send_each_exchange_and_transport_its_own_way() {
    let _system = SYSTEM.lock().await;
    let exchanges = Exchanges::start().await.expect("exchanges");
    let (a, b, c) = (proxy().await, proxy().await, proxy().await);
    // Binance: override A for both. Coinbase: override B for the websocket only, so its REST
    // stays on the default. Backpack: the default C for both.
    let settings = ProxySettings::default()
        .with_default_http(parse(c.url()))
        .with_default_websocket(parse(c.url()))
        .with_exchange(
            ExchangeId::new("binance").expect("id"),
            ConnectionProxies::both(parse(a.url())),
        )
        .with_exchange(
            ExchangeId::new("coinbase").expect("id"),
            ConnectionProxies::websocket(parse(b.url())),
        );
    init_proxy_system(settings);
    run_all(&exchanges).await;
    clear_proxy_system();

    let port = |kind: FeedKind, rest: bool| {
        let fake = exchanges.fake(kind);
        if rest {
            fake.rest_addr().port()
        } else {
            fake.ws_addr().port()
        }
    };
    assert_eq!(
        ports(&a),
        sorted(vec![
            port(FeedKind::Binance, true),
            port(FeedKind::Binance, false)
        ]),
        "A: binance"
    );
    assert_eq!(
        ports(&b),
        [port(FeedKind::Coinbase, false)],
        "B: coinbase websocket only"
    );
    assert_eq!(
        ports(&c),
        sorted(vec![
            port(FeedKind::Coinbase, true),
            port(FeedKind::Backpack, true),
            port(FeedKind::Backpack, false)
        ]),
        "C: coinbase REST and all of backpack"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_settings_send_everything_direct_after_proxied_runs() {
    let _system = SYSTEM.lock().await;
    let exchanges = Exchanges::start().await.expect("exchanges");
    let p = proxy().await;
    let everything_via_p = |enabled: bool| {
        let mut settings = ProxySettings::default()
            .with_default_http(parse(p.url()))
            .with_default_websocket(parse(p.url()));
        settings.enabled = enabled;
        settings
    };
    init_proxy_system(everything_via_p(true));
    run_all(&exchanges).await;
    let proxied = p.connections().len();
    assert_eq!(
        proxied, 6,
        "first run: three prefetches and three streams through the proxy"
    );

    // The same proxies named, but `enabled: false` (from YAML, as an operator would write it).
    let disabled = Loader::new()
        .code(everything_via_p(true))
        .yaml_str("off.yaml", "proxy:\n  enabled: false\n")
        .load()
        .expect("settings");
    assert!(!disabled.enabled);
    assert!(
        init_proxy_system(disabled).is_none(),
        "disabled settings install no system"
    );
    let rest_before: usize = FeedKind::ALL
        .iter()
        .map(|k| exchanges.fake(*k).rest_requests().len())
        .sum();
    run_all(&exchanges).await;
    clear_proxy_system();
    assert_eq!(
        p.connections().len(),
        proxied,
        "no proxy saw a byte of the disabled run"
    );
    let rest_after: usize = FeedKind::ALL
        .iter()
        .map(|k| exchanges.fake(*k).rest_requests().len())
        .sum();
    assert_eq!(
        rest_after - rest_before,
        3,
        "the exchanges were reached directly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins_over_file_and_code_field_by_field() {
    let _system = SYSTEM.lock().await;
    let exchanges = Exchanges::start().await.expect("exchanges");
    let (in_code, in_file, in_env) = (proxy().await, proxy().await, proxy().await);
    let code = ProxySettings::default().with_exchange(
        ExchangeId::new("binance").expect("id"),
        ConnectionProxies::both(
            parse(in_code.url()).with_timeout(TimeoutSeconds::new(5).expect("5")),
        ),
    );
    let yaml = format!(
        "proxy:\n  exchanges:\n    binance:\n      http:\n        url: {}\n      websocket:\n        url: {}\n        timeout_seconds: 7\n",
        in_file.url(),
        in_file.url()
    );
    let env = [
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL".to_owned(),
            in_env.url(),
        ),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL".to_owned(),
            in_env.url(),
        ),
    ];
    let loaded = Loader::new()
        .code(code)
        .yaml_str("feed.yaml", yaml)
        .env_vars(env)
        .load_explained()
        .expect("settings");
    let origin = |key: &str| loaded.origin(key).clone();
    assert!(
        matches!(origin("exchanges.binance.http.url"), Origin::Env(ref v) if v == "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL")
    );
    assert!(matches!(
        origin("exchanges.binance.http.timeout_seconds"),
        Origin::Code
    ));
    assert!(matches!(
        origin("exchanges.binance.websocket.timeout_seconds"),
        Origin::File(_)
    ));
    let binance = loaded
        .settings
        .exchange("binance")
        .expect("binance")
        .clone();
    assert_eq!(
        binance.http.as_ref().map(|p| p.timeout_seconds.get()),
        Some(5),
        "timeout from code"
    );
    assert_eq!(
        binance.websocket.as_ref().map(|p| p.timeout_seconds.get()),
        Some(7),
        "timeout from the file"
    );

    init_proxy_system(loaded.settings);
    run_all(&exchanges).await;
    clear_proxy_system();
    let binance_fake = exchanges.fake(FeedKind::Binance);
    assert_eq!(
        ports(&in_env),
        sorted(vec![
            binance_fake.rest_addr().port(),
            binance_fake.ws_addr().port()
        ]),
        "both transports took the environment's proxy"
    );
    assert!(in_code.connections().is_empty(), "code's proxy unused");
    assert!(in_file.connections().is_empty(), "file's proxy unused");
}
