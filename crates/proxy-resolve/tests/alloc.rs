//! Choosing a route allocates nothing: counted by a global allocator that wraps `System` and
//! counts the allocations of the thread that asks. No tracing subscriber is installed here, as
//! in a program that does not log route events.

#![allow(unsafe_code)] // counting allocator: GlobalAlloc is an unsafe trait

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;

use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{
    Resolver, Transport, clear_proxy_system, init_proxy_system, proxy_system, route_for,
};

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct CountingAllocator;

impl CountingAllocator {
    fn record() {
        // `try_with`: the allocator also runs while thread-locals are torn down.
        let counting = COUNTING.try_with(Cell::get).unwrap_or(false);
        if counting {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    }
}

// SAFETY: every call is forwarded unchanged to `System`; counting touches only const-initialized
// thread-locals, which never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::record();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::record();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::record();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// How many allocations this thread made while running `f`.
fn allocations_in(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

fn proxy(url: &str) -> ProxyConfig {
    ProxyConfig::parse(url).expect("test proxy URL is valid")
}

fn settings() -> ProxySettings {
    ProxySettings::default()
        .with_default_http(proxy("http://corp:3128"))
        .with_exchange(
            ExchangeId::new("binance").expect("valid id"),
            ConnectionProxies::websocket(proxy("http://user:pw@egress:8080")),
        )
        .with_exchange(
            ExchangeId::new(&"x".repeat(64)).expect("valid id"),
            ConnectionProxies::websocket(proxy("http://long:8080")),
        )
}

/// (exchange, transport): override hit, default hit, miss -> direct, upper case, the longest
/// id, ids that cannot match.
fn lookups() -> Vec<(String, Transport)> {
    vec![
        ("binance".to_owned(), Transport::WebSocket),
        ("binance".to_owned(), Transport::Http),
        ("okx".to_owned(), Transport::WebSocket),
        ("BINANCE".to_owned(), Transport::WebSocket),
        ("Binance".to_owned(), Transport::Http),
        ("X".repeat(64), Transport::WebSocket),
        ("b".repeat(65), Transport::WebSocket),
        ("b\u{130}nance".to_owned(), Transport::WebSocket),
        (String::new(), Transport::Http),
    ]
}

#[test]
fn resolver_lookups_allocate_nothing() {
    let resolver = Resolver::new(settings());
    let legacy = Arc::new(proxy("http://legacy:1"));
    let lookups = lookups();
    // Warm-up: the route event's callsite registers itself on first use.
    for (exchange, transport) in &lookups {
        black_box(resolver.route_with_legacy(exchange, *transport, Some(&legacy)));
    }
    for (exchange, transport) in &lookups {
        let (exchange, transport) = (exchange.as_str(), *transport);
        let n = allocations_in(|| {
            for _ in 0..100 {
                black_box(resolver.route(black_box(exchange), black_box(transport)));
                black_box(resolver.route_with_legacy(
                    black_box(exchange),
                    transport,
                    Some(&legacy),
                ));
                black_box(resolver.resolve(black_box(exchange), black_box(transport)));
                black_box(resolver.resolve_with_legacy(
                    black_box(exchange),
                    transport,
                    Some(&legacy),
                ));
            }
        });
        assert_eq!(n, 0, "{exchange:?} {transport}: {n} allocations");
    }
}

#[test]
fn global_reads_allocate_nothing() {
    // The only test in this binary that touches the global.
    init_proxy_system(settings()).expect("installed");
    let lookups = lookups();
    // Warm-up: arc-swap registers this thread on its first load.
    black_box(proxy_system());
    for (exchange, transport) in &lookups {
        black_box(route_for(exchange, *transport));
    }
    let n = allocations_in(|| {
        for _ in 0..100 {
            black_box(proxy_system());
            for (exchange, transport) in &lookups {
                black_box(route_for(black_box(exchange), black_box(*transport)));
            }
        }
    });
    clear_proxy_system();
    assert_eq!(n, 0, "{n} allocations");

    // The counter itself works.
    assert!(allocations_in(|| drop(black_box(vec![1u8; 16]))) > 0);
}
