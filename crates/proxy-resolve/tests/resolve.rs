//! Resolution order, case-insensitive ids and the printed forms, as tables over one set of
//! settings (http/https proxies only, so the table runs with and without the `socks` feature).

use std::sync::Arc;

use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings, TimeoutSeconds};
use proxy_resolve::{Resolution, Resolver, Route, RouteReason, Transport};
use rstest::rstest;

const DEFAULT_HTTP: &str = "http://default-proxy:3128";
const BINANCE_WS: &str = "https://binance-ws:8443";
const COINBASE_HTTP: &str = "http://coinbase-http:8080";
const COINBASE_WS: &str = "http://coinbase-ws:8081";
const LEGACY: &str = "http://legacy:9999";

fn proxy(url: &str) -> ProxyConfig {
    ProxyConfig::parse(url).expect("test proxy URL is valid")
}

fn id(id: &str) -> ExchangeId {
    ExchangeId::new(id).expect("test exchange id is valid")
}

/// default: REST only; binance: WebSocket only; coinbase: both; kraken: listed, nothing set.
fn settings(enabled: bool) -> ProxySettings {
    ProxySettings {
        enabled,
        ..ProxySettings::default()
            .with_default_http(proxy(DEFAULT_HTTP))
            .with_exchange(
                id("binance"),
                ConnectionProxies::websocket(proxy(BINANCE_WS)),
            )
            .with_exchange(
                id("coinbase"),
                ConnectionProxies {
                    http: Some(proxy(COINBASE_HTTP)),
                    websocket: Some(proxy(COINBASE_WS)),
                },
            )
            .with_exchange(id("kraken"), ConnectionProxies::default())
    }
}

#[rstest]
// disabled: everything direct, unless the connection brings its legacy proxy
#[case::disabled(
    false,
    "binance",
    Transport::WebSocket,
    false,
    None,
    RouteReason::Disabled
)]
#[case::disabled_default(false, "okx", Transport::Http, false, None, RouteReason::Disabled)]
#[case::disabled_legacy(
    false,
    "binance",
    Transport::WebSocket,
    true,
    Some(LEGACY),
    RouteReason::Legacy
)]
// an override for one transport only: the other falls through to the default
#[case::override_ws(
    true,
    "binance",
    Transport::WebSocket,
    false,
    Some(BINANCE_WS),
    RouteReason::ExchangeOverride
)]
#[case::override_other_transport(
    true,
    "binance",
    Transport::Http,
    false,
    Some(DEFAULT_HTTP),
    RouteReason::Default
)]
#[case::override_both_http(
    true,
    "coinbase",
    Transport::Http,
    false,
    Some(COINBASE_HTTP),
    RouteReason::ExchangeOverride
)]
#[case::override_both_ws(
    true,
    "coinbase",
    Transport::WebSocket,
    false,
    Some(COINBASE_WS),
    RouteReason::ExchangeOverride
)]
#[case::override_beats_legacy(
    true,
    "coinbase",
    Transport::Http,
    true,
    Some(COINBASE_HTTP),
    RouteReason::ExchangeOverride
)]
// the default, for listed and unlisted exchanges
#[case::default_listed_empty(
    true,
    "kraken",
    Transport::Http,
    false,
    Some(DEFAULT_HTTP),
    RouteReason::Default
)]
#[case::default_unlisted(
    true,
    "okx",
    Transport::Http,
    false,
    Some(DEFAULT_HTTP),
    RouteReason::Default
)]
#[case::default_beats_legacy(
    true,
    "okx",
    Transport::Http,
    true,
    Some(DEFAULT_HTTP),
    RouteReason::Default
)]
// legacy, then direct
#[case::legacy_listed(
    true,
    "kraken",
    Transport::WebSocket,
    true,
    Some(LEGACY),
    RouteReason::Legacy
)]
#[case::legacy_unlisted(
    true,
    "okx",
    Transport::WebSocket,
    true,
    Some(LEGACY),
    RouteReason::Legacy
)]
#[case::direct_listed(
    true,
    "kraken",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
#[case::direct_unlisted(
    true,
    "okx",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
// case-insensitive ids
#[case::upper(
    true,
    "BINANCE",
    Transport::WebSocket,
    false,
    Some(BINANCE_WS),
    RouteReason::ExchangeOverride
)]
#[case::title(
    true,
    "Binance",
    Transport::WebSocket,
    false,
    Some(BINANCE_WS),
    RouteReason::ExchangeOverride
)]
#[case::mixed(
    true,
    "cOiNbAsE",
    Transport::Http,
    false,
    Some(COINBASE_HTTP),
    RouteReason::ExchangeOverride
)]
#[case::upper_falls_through(
    true,
    "BINANCE",
    Transport::Http,
    false,
    Some(DEFAULT_HTTP),
    RouteReason::Default
)]
// ids that match nothing: no trimming, no Unicode case folding, no length surprises
#[case::padded(
    true,
    " binance",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
#[case::non_ascii(
    true,
    "b\u{130}nance",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
#[case::empty(
    true,
    "",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
#[case::long(
    true,
    &"binance".repeat(20),
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
#[case::invalid_chars(
    true,
    "binance/",
    Transport::WebSocket,
    false,
    None,
    RouteReason::NoProxyConfigured
)]
fn resolution_order(
    #[case] enabled: bool,
    #[case] exchange: &str,
    #[case] transport: Transport,
    #[case] with_legacy: bool,
    #[case] expected: Option<&str>,
    #[case] reason: RouteReason,
) {
    let resolver = Resolver::new(settings(enabled));
    let legacy = Arc::new(proxy(LEGACY));
    let legacy = with_legacy.then_some(&legacy);

    let resolution = resolver.resolve_with_legacy(exchange, transport, legacy);
    let url = resolution.route.proxy().map(|p| p.url.to_string());
    assert_eq!(url.as_deref(), expected, "{exchange} {transport}");
    assert_eq!(resolution.reason, reason, "{exchange} {transport}");

    // The logging form and the legacy-free forms agree with the explained one.
    assert_eq!(
        resolver.route_with_legacy(exchange, transport, legacy),
        resolution.route
    );
    if !with_legacy {
        assert_eq!(resolver.resolve(exchange, transport), resolution);
        assert_eq!(resolver.route(exchange, transport), resolution.route);
    }
}

#[rstest]
#[case::direct(Route::Direct, "direct")]
#[case::proxy(
    Route::Proxy(Arc::new(proxy("https://user:pw@gw:8443"))),
    "https://gw:8443 (timeout 30s)"
)]
#[case::timeout(
    Route::Proxy(Arc::new(
        proxy("http://[::1]:3128").with_timeout(TimeoutSeconds::new(5).expect("in range"))
    )),
    "http://[::1]:3128 (timeout 5s)"
)]
fn route_display(#[case] route: Route, #[case] expected: &str) {
    assert_eq!(route.to_string(), expected);
    assert_eq!(route.is_direct(), expected == "direct");
}

#[rstest]
#[case::disabled(RouteReason::Disabled, "direct [proxy system disabled]")]
#[case::override_(RouteReason::ExchangeOverride, "direct [exchange override]")]
#[case::default(RouteReason::Default, "direct [default proxy]")]
#[case::legacy(RouteReason::Legacy, "direct [legacy per-connection proxy]")]
#[case::none(RouteReason::NoProxyConfigured, "direct [no proxy configured]")]
fn resolution_display(#[case] reason: RouteReason, #[case] expected: &str) {
    let resolution = Resolution {
        route: Route::Direct,
        reason,
    };
    assert_eq!(resolution.to_string(), expected);
}

#[test]
fn transports() {
    let names: Vec<String> = Transport::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["http", "websocket"]);
}

#[test]
fn lists_configured_exchanges_in_order() {
    for enabled in [true, false] {
        let resolver = Resolver::new(settings(enabled));
        assert_eq!(resolver.is_enabled(), enabled);
        let ids: Vec<&str> = resolver.exchanges().map(ExchangeId::as_str).collect();
        assert_eq!(ids, ["binance", "coinbase", "kraken"]);
        assert_eq!(resolver.settings(), &settings(enabled));
    }
}

#[test]
fn routes_share_the_resolvers_proxy() {
    let resolver = Resolver::new(settings(true));
    let first = resolver.route("binance", Transport::WebSocket);
    let second = resolver.route("BINANCE", Transport::WebSocket);
    let (Some(a), Some(b)) = (first.proxy(), second.proxy()) else {
        panic!("binance websocket goes through its proxy");
    };
    assert!(
        Arc::ptr_eq(a, b),
        "route() hands out the resolver's Arc, not a copy"
    );
}

#[test]
fn resolver_is_send_sync_and_debug_redacts() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Resolver>();
    assert_send_sync::<Route>();

    let settings = ProxySettings::default().with_exchange(
        id("binance"),
        ConnectionProxies::both(proxy("http://alice:hunter2secret@gw:3128")),
    );
    let resolver = Resolver::new(settings);
    let debug = format!("{resolver:?}");
    assert!(debug.contains("binance") && debug.contains("gw"), "{debug}");
    assert!(
        !debug.contains("hunter2secret") && !debug.contains("alice"),
        "{debug}"
    );
}
