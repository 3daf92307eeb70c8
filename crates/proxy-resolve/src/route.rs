//! The values a resolution produces: `Transport`, `Route`, `RouteReason` and `Resolution`.

use std::fmt;
use std::sync::Arc;

use proxy_config::{ProxyConfig, ProxyUrl};

/// The kind of connection a feed opens: each has its own proxy setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// REST requests (cryptofeed's `HTTPAsyncConn` and `HTTPPoll`).
    Http,
    /// WebSocket streams (cryptofeed's `WSAsyncConn`).
    WebSocket,
}

impl Transport {
    /// Both transports, in the order `feedproxy check` lists them.
    pub const ALL: [Transport; 2] = [Transport::Http, Transport::WebSocket];

    /// The transport as named in config keys: `http` or `websocket`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::WebSocket => "websocket",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a connection goes: straight to the exchange, or through a proxy.
///
/// The proxy is shared with the [`Resolver`](crate::Resolver) that chose it, so producing a
/// route clones an `Arc` and nothing else. `Debug` redacts credentials (it is `ProxyConfig`'s);
/// `Display` prints `direct` or `scheme://host:port (timeout 30s)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Connect to the exchange itself.
    Direct,
    /// Connect through this proxy. A proxy that fails yields an error, never a direct connection.
    Proxy(Arc<ProxyConfig>),
}

impl Route {
    /// True for [`Route::Direct`].
    pub fn is_direct(&self) -> bool {
        matches!(self, Route::Direct)
    }

    /// The proxy, if the route has one.
    pub fn proxy(&self) -> Option<&Arc<ProxyConfig>> {
        match self {
            Route::Direct => None,
            Route::Proxy(proxy) => Some(proxy),
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Direct => f.write_str("direct"),
            // ProxyUrl's Display is scheme://host:port, never the credentials.
            Route::Proxy(proxy) => write!(f, "{} (timeout {})", proxy.url, proxy.timeout_seconds),
        }
    }
}

/// Why a route was chosen: the step of the resolution order that decided it.
///
/// The order is: disabled -> exchange override -> default -> legacy per-connection proxy ->
/// direct (see [`Resolver`](crate::Resolver) for how the legacy proxy interacts with disabled
/// settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteReason {
    /// The settings have `enabled: false`, or no proxy system is installed (installing disabled
    /// settings clears it), and no legacy proxy was given.
    Disabled,
    /// The exchange has its own proxy for this transport (`exchanges.<id>.<transport>`).
    ExchangeOverride,
    /// The default proxy for this transport (`default.<transport>`).
    Default,
    /// The legacy per-connection proxy (cryptofeed's `proxy=` argument), used because the
    /// settings give none.
    Legacy,
    /// Enabled settings configure no proxy for this exchange and transport, and no legacy proxy
    /// was given.
    NoProxyConfigured,
}

impl RouteReason {
    /// A short lower-case description, as `feedproxy check` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Disabled => "proxy system disabled",
            RouteReason::ExchangeOverride => "exchange override",
            RouteReason::Default => "default proxy",
            RouteReason::Legacy => "legacy per-connection proxy",
            RouteReason::NoProxyConfigured => "no proxy configured",
        }
    }
}

impl fmt::Display for RouteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A route and the reason it was chosen. `Display`: `socks5h://gw:1080 (timeout 10s) [exchange
/// override]`, `direct [no proxy configured]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Where the connection goes.
    pub route: Route,
    /// Which step of the resolution order decided it.
    pub reason: RouteReason,
}

impl Resolution {
    pub(crate) fn direct(reason: RouteReason) -> Self {
        Self {
            route: Route::Direct,
            reason,
        }
    }

    pub(crate) fn proxy(proxy: &Arc<ProxyConfig>, reason: RouteReason) -> Self {
        Self {
            route: Route::Proxy(Arc::clone(proxy)),
            reason,
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.route, self.reason)
    }
}

/// `host:port` of a proxy (IPv6 bracketed), written without allocating: `ProxyUrl::authority`
/// builds a `String`, which the logging path must not do.
pub(crate) struct Authority<'a>(pub(crate) &'a ProxyUrl);

impl fmt::Display for Authority<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0.host(), self.0.port())
    }
}
