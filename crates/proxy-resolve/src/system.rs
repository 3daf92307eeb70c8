//! The process-wide proxy system: one `Resolver`, swapped atomically, read without a lock.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use proxy_config::{ProxyConfig, ProxySettings};

use crate::resolver::{ROUTE_LOG_TARGET, Resolver, log_route};
use crate::route::{Resolution, Route, RouteReason, Transport};

static SYSTEM: ArcSwapOption<Resolver> = ArcSwapOption::const_empty();

/// Installs a resolver for `settings` as the process-wide proxy system, replacing any earlier
/// one, and returns it. Disabled settings clear the system instead (and return `None`), so
/// [`proxy_system`] then returns `None` and [`route_for`] routes direct.
///
/// Connections already open keep the route they were opened with; the next new connection
/// sees the new settings.
///
/// Disabled settings that still name proxies log one warning (target [`ROUTE_LOG_TARGET`]) with
/// how many and the first few keys, never a URL: a layer with `enabled: false` (often the
/// program's own code) otherwise turns off the proxies an operator set in the environment or
/// a file without a word.
pub fn init_proxy_system(settings: ProxySettings) -> Option<Arc<Resolver>> {
    if !settings.enabled {
        let configured = configured_keys(&settings);
        if !configured.is_empty() {
            const SHOWN: usize = 4;
            let mut keys = configured
                .iter()
                .take(SHOWN)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if configured.len() > SHOWN {
                keys.push_str(", ...");
            }
            tracing::warn!(
                target: ROUTE_LOG_TARGET,
                proxies = configured.len(),
                keys = %keys,
                "proxy system disabled although the settings name proxies: every connection \
                 goes direct (or through its legacy proxy); set enabled to true to use them"
            );
        }
        SYSTEM.store(None);
        return None;
    }
    let resolver = Arc::new(Resolver::new(settings));
    SYSTEM.store(Some(Arc::clone(&resolver)));
    Some(resolver)
}

/// The key of every proxy the settings name, `default.http` first, exchanges in id order.
fn configured_keys(settings: &ProxySettings) -> Vec<String> {
    let mut keys = Vec::new();
    let mut push = |prefix: &str, proxies: &proxy_config::ConnectionProxies| {
        if proxies.http.is_some() {
            keys.push(format!("{prefix}.http"));
        }
        if proxies.websocket.is_some() {
            keys.push(format!("{prefix}.websocket"));
        }
    };
    push("default", &settings.default);
    for (id, proxies) in &settings.exchanges {
        push(&format!("exchanges.{id}"), proxies);
    }
    keys
}

/// Removes the process-wide proxy system: new connections go direct (or through their legacy
/// proxy).
pub fn clear_proxy_system() {
    SYSTEM.store(None);
}

/// The installed proxy system, if any. Lock-free: an atomic load and a reference-count
/// increment.
pub fn proxy_system() -> Option<Arc<Resolver>> {
    SYSTEM.load_full()
}

/// The route for a new connection from the process-wide proxy system; direct when none is
/// installed. Emits the route event, like [`Resolver::route`].
pub fn route_for(exchange: &str, transport: Transport) -> Route {
    route_for_with_legacy(exchange, transport, None)
}

/// [`route_for`] with the feed's legacy per-connection proxy, which applies when the proxy
/// system gives none (including when no system is installed). Emits the route event.
pub fn route_for_with_legacy(
    exchange: &str,
    transport: Transport,
    legacy: Option<&Arc<ProxyConfig>>,
) -> Route {
    // `load` borrows the current resolver without touching its reference count.
    let guard = SYSTEM.load();
    match guard.as_ref() {
        Some(resolver) => resolver.route_with_legacy(exchange, transport, legacy),
        None => {
            let resolution = match legacy {
                Some(proxy) => Resolution::proxy(proxy, RouteReason::Legacy),
                None => Resolution::direct(RouteReason::Disabled),
            };
            log_route(exchange, transport, &resolution);
            resolution.route
        }
    }
}
