//! Item 1: ns per `Resolver::route` and per `proxy_system()` read, and allocations per lookup
//! (counted by the global allocator in `alloc.rs`). The settings match
//! `crates/proxy-resolve/benches/route.rs` (the criterion version of the same measurement).

use std::hint::black_box;
use std::time::Instant;

use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{Resolver, Transport, clear_proxy_system, init_proxy_system, proxy_system};

use crate::Options;
use crate::alloc::allocations;
use crate::stats::median;
use crate::table::{Row, Table, verdict};

const BAR_NS: f64 = 50.0;

fn proxy(url: &str) -> ProxyConfig {
    ProxyConfig::parse(url).expect("bench proxy URL is valid")
}

/// A default REST proxy and ten exchanges with WebSocket proxies of their own.
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

/// ns per call and allocations per call of `f`, median over batches.
fn measure(options: &Options, mut f: impl FnMut()) -> (f64, f64) {
    let (batches, per_batch) = if options.quick {
        (5, 200_000)
    } else {
        (15, 1_000_000)
    };
    for _ in 0..per_batch / 10 {
        f();
    }
    let mut ns = Vec::with_capacity(batches);
    let mut allocs = Vec::with_capacity(batches);
    for _ in 0..batches {
        let before = allocations();
        let started = Instant::now();
        for _ in 0..per_batch {
            f();
        }
        let elapsed = started.elapsed();
        let after = allocations();
        ns.push(elapsed.as_nanos() as f64 / per_batch as f64);
        allocs.push((after - before) as f64 / per_batch as f64);
    }
    (median(&ns), median(&allocs))
}

pub(crate) fn run(options: &Options, table: &mut Table) {
    let resolver = Resolver::new(settings());
    let cases = [
        ("override", "binance", Transport::WebSocket),
        ("default", "okx", Transport::Http),
        ("miss -> direct", "okx", Transport::WebSocket),
        (
            "upper-case override",
            "BINANCE_FUTURES",
            Transport::WebSocket,
        ),
    ];
    for (name, exchange, transport) in cases {
        let (ns, allocs) = measure(options, || {
            black_box(resolver.route(black_box(exchange), black_box(transport)));
        });
        push(
            table,
            "route lookup",
            &format!("Resolver::route, {name}"),
            ns,
            allocs,
        );
    }
    init_proxy_system(settings());
    let (ns, allocs) = measure(options, || {
        black_box(proxy_system());
    });
    push(table, "route lookup", "proxy_system() read", ns, allocs);
    clear_proxy_system();
}

fn push(table: &mut Table, bench: &str, arm: &str, ns: f64, allocs: f64) {
    table.push(Row {
        bench: bench.to_owned(),
        arms: arm.to_owned(),
        figure: format!("{ns:.1} ns, {allocs:.2} allocs/lookup"),
        ratio: None,
        bar: "< 50 ns, 0 allocs".to_owned(),
        verdict: verdict(ns < BAR_NS && allocs == 0.0),
    });
}
