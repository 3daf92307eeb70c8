//! Cost of choosing a route: `Resolver::resolve` (no logging) and `Resolver::route` (with the
//! route event, no subscriber installed) for an override hit, a default hit (for an unlisted
//! exchange, and for a listed one without its own proxy for the transport), a miss that goes
//! direct and an upper-case id; and the cost of reading the process-wide proxy system.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{Resolver, Transport, init_proxy_system, proxy_system, route_for};

fn proxy(url: &str) -> ProxyConfig {
    ProxyConfig::parse(url).expect("bench proxy URL is valid")
}

/// A default REST proxy and ten exchanges with proxies of their own; no default WebSocket
/// proxy, so an unlisted exchange's WebSocket goes direct.
fn settings() -> ProxySettings {
    let mut settings = ProxySettings::default().with_default_http(proxy("http://corp:3128"));
    let ids = [
        "binance",
        "binance_futures",
        "coinbase",
        "kraken",
        "bybit",
        "bitfinex",
        "gateio",
        "huobi",
        "kucoin",
        "backpack",
    ];
    for (i, name) in ids.into_iter().enumerate() {
        let id = ExchangeId::new(name).expect("bench exchange id is valid");
        let egress = proxy(&format!("http://user:pass@egress-{i}:8080"));
        settings = settings.with_exchange(id, ConnectionProxies::websocket(egress));
    }
    settings
}

fn bench_resolver(c: &mut Criterion) {
    let resolver = Resolver::new(settings());
    let cases = [
        ("override", "binance", Transport::WebSocket),
        ("default", "okx", Transport::Http),
        ("listed_default", "binance", Transport::Http),
        ("miss_direct", "okx", Transport::WebSocket),
        (
            "upper_case_override",
            "BINANCE_FUTURES",
            Transport::WebSocket,
        ),
    ];
    let mut group = c.benchmark_group("resolve");
    for (name, exchange, transport) in cases {
        group.bench_function(name, |b| {
            b.iter(|| resolver.resolve(black_box(exchange), black_box(transport)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("route");
    for (name, exchange, transport) in cases {
        group.bench_function(name, |b| {
            b.iter(|| resolver.route(black_box(exchange), black_box(transport)));
        });
    }
    group.finish();

    // Only defaults configured: the exchange table is empty and the hash is skipped.
    let defaults_only =
        Resolver::new(ProxySettings::default().with_default_websocket(proxy("http://corp:3128")));
    c.bench_function("resolve/defaults_only", |b| {
        b.iter(|| defaults_only.resolve(black_box("BINANCE"), black_box(Transport::WebSocket)));
    });
}

fn bench_system(c: &mut Criterion) {
    init_proxy_system(settings());
    c.bench_function("system/proxy_system", |b| b.iter(proxy_system));
    c.bench_function("system/route_for", |b| {
        b.iter(|| route_for(black_box("BINANCE"), black_box(Transport::WebSocket)));
    });
}

criterion_group!(benches, bench_resolver, bench_system);
criterion_main!(benches);
