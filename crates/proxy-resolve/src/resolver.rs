//! `Resolver`: (exchange id, transport) -> `Route`, in O(1) and without allocating.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashMap;
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};

use crate::key::{IdKey, IdQuery};
use crate::route::{Authority, Resolution, Route, RouteReason, Transport};

/// The `tracing` target of the event [`Resolver::route`] emits once per new connection.
pub const ROUTE_LOG_TARGET: &str = "feedproxy::route";

type BuildIdHasher = foldhash::fast::RandomState;

/// Answers "which route does this exchange's connection of this transport take?" for one
/// [`ProxySettings`].
///
/// Resolution order, first match wins:
///
/// 1. settings disabled (`enabled: false`): the legacy proxy if one is given, else direct;
/// 2. the exchange's own proxy for the transport (`exchanges.<id>.<transport>`);
/// 3. the default proxy for the transport (`default.<transport>`);
/// 4. the legacy per-connection proxy (cryptofeed's `proxy=` argument), if given;
/// 5. direct.
///
/// A legacy proxy still applies when the settings are disabled because it predates the proxy
/// system: disabling the system turns off what the system configures, not a proxy the feed
/// passed for its own connection. This matches cryptofeed, where a connection's own `proxy=`
/// is used whenever the proxy system supplies none.
///
/// Exchange ids are matched case-insensitively (`BINANCE`, `Binance` and `binance` are one
/// exchange, as cryptofeed's upper-case exchange constants expect). A lookup hashes the id as
/// given, lower-casing on the fly: O(1), no allocation, no lock.
///
/// Two families of methods:
/// - [`route`](Self::route) and [`route_with_legacy`](Self::route_with_legacy) are meant to be
///   called once per new connection: they emit one `debug` event (target [`ROUTE_LOG_TARGET`])
///   naming the exchange, the transport, the route and, for a proxy, its scheme and
///   `host:port`, never its credentials. The event's fields are only formatted when a
///   subscriber wants it.
/// - [`resolve`](Self::resolve) and [`resolve_with_legacy`](Self::resolve_with_legacy) return
///   the route with the [`RouteReason`] and log nothing: for `feedproxy check`, benches, and
///   callers that log themselves.
///
/// `Debug` prints the settings with credentials redacted.
pub struct Resolver {
    settings: ProxySettings,
    default: Routes,
    /// Lower-case id -> the exchange's own proxies.
    exchanges: HashMap<IdKey, Routes, BuildIdHasher>,
    /// The longest configured id: a longer id cannot match, whatever its case.
    max_id_len: usize,
}

/// The proxies of one level (an exchange, or the default), shared with the routes handed out.
#[derive(Default)]
struct Routes {
    http: Option<Arc<ProxyConfig>>,
    websocket: Option<Arc<ProxyConfig>>,
}

impl Routes {
    fn new(proxies: &ConnectionProxies) -> Self {
        Self {
            http: proxies.http.clone().map(Arc::new),
            websocket: proxies.websocket.clone().map(Arc::new),
        }
    }

    fn get(&self, transport: Transport) -> Option<&Arc<ProxyConfig>> {
        match transport {
            Transport::Http => self.http.as_ref(),
            Transport::WebSocket => self.websocket.as_ref(),
        }
    }
}

impl Resolver {
    /// Builds a resolver for these settings. Disabled settings give a resolver that routes
    /// everything direct (or through the legacy proxy).
    pub fn new(settings: ProxySettings) -> Self {
        let default = Routes::new(&settings.default);
        let mut exchanges =
            HashMap::with_capacity_and_hasher(settings.exchanges.len(), BuildIdHasher::default());
        let mut max_id_len = 0;
        for (id, proxies) in &settings.exchanges {
            let key = IdKey::new(id.as_str());
            max_id_len = max_id_len.max(key.len());
            exchanges.insert(key, Routes::new(proxies));
        }
        Self {
            settings,
            default,
            exchanges,
            max_id_len,
        }
    }

    /// The settings this resolver answers for.
    pub fn settings(&self) -> &ProxySettings {
        &self.settings
    }

    /// False when the settings have `enabled: false`.
    pub fn is_enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The exchanges that have settings of their own, in id order.
    pub fn exchanges(&self) -> impl ExactSizeIterator<Item = &ExchangeId> + '_ {
        self.settings.exchanges.keys()
    }

    /// The route for a new connection, and why; logs nothing. No legacy proxy.
    pub fn resolve(&self, exchange: &str, transport: Transport) -> Resolution {
        self.resolve_with_legacy(exchange, transport, None)
    }

    /// The route for a new connection given the feed's legacy per-connection proxy, and why;
    /// logs nothing. See the type's documentation for the order.
    pub fn resolve_with_legacy(
        &self,
        exchange: &str,
        transport: Transport,
        legacy: Option<&Arc<ProxyConfig>>,
    ) -> Resolution {
        if !self.settings.enabled {
            return match legacy {
                Some(proxy) => Resolution::proxy(proxy, RouteReason::Legacy),
                None => Resolution::direct(RouteReason::Disabled),
            };
        }
        if let Some(proxy) = self
            .exchange_routes(exchange)
            .and_then(|r| r.get(transport))
        {
            return Resolution::proxy(proxy, RouteReason::ExchangeOverride);
        }
        if let Some(proxy) = self.default.get(transport) {
            return Resolution::proxy(proxy, RouteReason::Default);
        }
        match legacy {
            Some(proxy) => Resolution::proxy(proxy, RouteReason::Legacy),
            None => Resolution::direct(RouteReason::NoProxyConfigured),
        }
    }

    /// The route for a new connection. Call once per connection: emits the route event (see
    /// the type's documentation).
    pub fn route(&self, exchange: &str, transport: Transport) -> Route {
        self.route_with_legacy(exchange, transport, None)
    }

    /// The route for a new connection given the feed's legacy per-connection proxy. Call once
    /// per connection: emits the route event.
    pub fn route_with_legacy(
        &self,
        exchange: &str,
        transport: Transport,
        legacy: Option<&Arc<ProxyConfig>>,
    ) -> Route {
        let resolution = self.resolve_with_legacy(exchange, transport, legacy);
        log_route(exchange, transport, &resolution);
        resolution.route
    }

    fn exchange_routes(&self, exchange: &str) -> Option<&Routes> {
        let id = exchange.as_bytes();
        // Lower-casing keeps the length, so a longer id matches nothing (this also skips the
        // hash when no exchange is configured).
        if id.len() > self.max_id_len {
            return None;
        }
        self.exchanges.get(&IdQuery(id))
    }
}

impl From<ProxySettings> for Resolver {
    fn from(settings: ProxySettings) -> Self {
        Self::new(settings)
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // ProxySettings' Debug prints credentials as `***`.
        f.debug_struct("Resolver")
            .field("enabled", &self.settings.enabled)
            .field("default", &self.settings.default)
            .field("exchanges", &self.settings.exchanges)
            .finish()
    }
}

/// The per-connection route event. The field values are only evaluated when a subscriber is
/// interested, so with none (or with `debug` filtered out) this is a cached level check.
pub(crate) fn log_route(exchange: &str, transport: Transport, resolution: &Resolution) {
    match &resolution.route {
        Route::Direct => tracing::debug!(
            target: ROUTE_LOG_TARGET,
            exchange,
            transport = transport.as_str(),
            route = "direct",
            reason = resolution.reason.as_str(),
            "route chosen"
        ),
        Route::Proxy(proxy) => tracing::debug!(
            target: ROUTE_LOG_TARGET,
            exchange,
            transport = transport.as_str(),
            route = "proxy",
            scheme = proxy.url.scheme().as_str(),
            proxy = %Authority(&proxy.url),
            timeout_seconds = proxy.timeout_seconds.get(),
            reason = resolution.reason.as_str(),
            "route chosen"
        ),
    }
}
