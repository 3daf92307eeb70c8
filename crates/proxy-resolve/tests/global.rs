//! The process-wide proxy system: install, replace, clear, and readers racing a writer.
//!
//! Every test here touches the one global, so each holds `GLOBAL` for its whole run and leaves
//! the system cleared.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{
    RouteReason, Transport, clear_proxy_system, init_proxy_system, proxy_system, route_for,
    route_for_with_legacy,
};

static GLOBAL: Mutex<()> = Mutex::new(());

/// Serializes the tests of this file and clears the system when dropped, even on panic.
struct Exclusive {
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        clear_proxy_system();
    }
}

fn exclusive() -> Exclusive {
    let guard = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    clear_proxy_system();
    Exclusive { _guard: guard }
}

fn proxy(url: &str) -> ProxyConfig {
    ProxyConfig::parse(url).expect("test proxy URL is valid")
}

/// Binance's two transports through `http://{tag}-rest:1` and `http://{tag}-ws:2`.
fn tagged(tag: &str) -> ProxySettings {
    let proxies = ConnectionProxies {
        http: Some(proxy(&format!("http://{tag}-rest:1"))),
        websocket: Some(proxy(&format!("http://{tag}-ws:2"))),
    };
    ProxySettings::default().with_exchange(ExchangeId::new("binance").expect("valid id"), proxies)
}

fn host_of(route: &proxy_resolve::Route) -> Option<String> {
    route.proxy().map(|p| p.url.host().to_string())
}

#[test]
fn init_installs_and_replaces() {
    let _x = exclusive();
    assert!(proxy_system().is_none());
    assert!(route_for("binance", Transport::Http).is_direct());

    let first = init_proxy_system(tagged("a")).expect("enabled settings install a resolver");
    let current = proxy_system().expect("installed");
    assert!(Arc::ptr_eq(&first, &current));
    assert_eq!(
        host_of(&route_for("BINANCE", Transport::Http)).as_deref(),
        Some("a-rest")
    );

    init_proxy_system(tagged("b")).expect("enabled settings install a resolver");
    assert_eq!(
        host_of(&route_for("binance", Transport::WebSocket)).as_deref(),
        Some("b-ws")
    );
    // A resolver already handed out keeps answering for its own settings.
    assert_eq!(
        host_of(&current.route("binance", Transport::WebSocket)).as_deref(),
        Some("a-ws")
    );
}

#[test]
fn disabled_settings_and_clear_remove_the_system() {
    let _x = exclusive();
    let legacy = Arc::new(proxy("http://legacy:3"));

    init_proxy_system(tagged("a")).expect("installed");
    assert!(
        init_proxy_system(ProxySettings {
            enabled: false,
            ..tagged("b")
        })
        .is_none()
    );
    assert!(proxy_system().is_none());
    assert!(route_for("binance", Transport::Http).is_direct());
    // The legacy per-connection proxy still applies with no system installed.
    assert_eq!(
        host_of(&route_for_with_legacy(
            "binance",
            Transport::Http,
            Some(&legacy)
        ))
        .as_deref(),
        Some("legacy")
    );

    init_proxy_system(tagged("c")).expect("installed");
    clear_proxy_system();
    assert!(proxy_system().is_none());
    assert!(route_for("binance", Transport::WebSocket).is_direct());

    // An installed system's override beats the legacy proxy.
    init_proxy_system(tagged("d")).expect("installed");
    let resolver = proxy_system().expect("installed");
    let resolution = resolver.resolve_with_legacy("binance", Transport::Http, Some(&legacy));
    assert_eq!(resolution.reason, RouteReason::ExchangeOverride);
    assert_eq!(
        host_of(&route_for_with_legacy(
            "binance",
            Transport::Http,
            Some(&legacy)
        ))
        .as_deref(),
        Some("d-rest")
    );
}

#[test]
fn readers_see_old_or_new_never_torn() {
    let _x = exclusive();
    let tags = ["a", "b", "c"];
    init_proxy_system(tagged(tags[0])).expect("installed");
    let done = AtomicBool::new(false);
    let reads = AtomicUsize::new(0);

    thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    // One snapshot answers both transports: they must come from one settings
                    // value, never one from the old and one from the new.
                    match proxy_system() {
                        None => {}
                        Some(resolver) => {
                            let rest = host_of(&resolver.resolve("binance", Transport::Http).route);
                            let ws =
                                host_of(&resolver.resolve("BINANCE", Transport::WebSocket).route);
                            let (rest, ws) = (
                                rest.expect("binance REST proxied"),
                                ws.expect("binance WS proxied"),
                            );
                            let tag = rest
                                .strip_suffix("-rest")
                                .expect("REST proxy host is {tag}-rest");
                            assert!(tags.contains(&tag), "unexpected proxy {rest}");
                            assert_eq!(ws, format!("{tag}-ws"), "torn read");
                        }
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for i in 0..2_000 {
            if i % 7 == 0 {
                clear_proxy_system();
            } else {
                init_proxy_system(tagged(tags[i % tags.len()]));
            }
        }
        // Let the readers run at least a little against the final state.
        let start = reads.load(Ordering::Relaxed);
        while reads.load(Ordering::Relaxed) < start + 100 {
            thread::yield_now();
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 0);
}
