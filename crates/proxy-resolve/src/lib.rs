//! Route resolution for feedproxy: which route, direct or through which proxy, a feed's
//! connection to an exchange takes, and the process-wide proxy system that holds the answer.
//!
//! A [`Resolver`] is built once from [`ProxySettings`](proxy_config::ProxySettings) and answers
//! `(exchange id, transport) -> Route` in O(1), without allocating or locking. The order is
//! disabled -> exchange override -> default -> legacy per-connection proxy -> direct; see
//! [`Resolver`] for the details. A resolver can be passed explicitly, or installed
//! process-wide with [`init_proxy_system`] and read with [`proxy_system`] or [`route_for`]
//! (lock-free reads; installing new settings swaps the resolver atomically).
//!
//! This crate is pure: no I/O, no panics on input. No `Debug` or `Display` of its types, and no
//! log event it emits, contains a proxy credential.
//!
//! ```
//! use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
//! use proxy_resolve::{Resolver, Route, RouteReason, Transport};
//!
//! let settings = ProxySettings::default()
//!     .with_default_http(ProxyConfig::parse("http://corp-proxy:3128")?)
//!     .with_exchange(
//!         ExchangeId::new("binance")?,
//!         ConnectionProxies::websocket(ProxyConfig::parse("https://user:secret@gw:8443")?),
//!     );
//! let resolver = Resolver::new(settings);
//!
//! // Exchange ids are case-insensitive: cryptofeed's constants are upper case.
//! let ws = resolver.route("BINANCE", Transport::WebSocket);
//! assert_eq!(ws.to_string(), "https://gw:8443 (timeout 30s)");
//!
//! // Binance has no REST override, so the default applies; `resolve` also says why.
//! let rest = resolver.resolve("binance", Transport::Http);
//! assert_eq!(rest.reason, RouteReason::Default);
//! assert_eq!(rest.to_string(), "http://corp-proxy:3128 (timeout 30s) [default proxy]");
//!
//! // Nothing configured for Coinbase websockets: direct.
//! assert_eq!(resolver.route("COINBASE", Transport::WebSocket), Route::Direct);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// A library reports through return values and `tracing`, never by printing.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod key;
mod resolver;
mod route;
mod system;

pub use resolver::{ROUTE_LOG_TARGET, Resolver};
pub use route::{Resolution, Route, RouteReason, Transport};
pub use system::{
    clear_proxy_system, init_proxy_system, proxy_system, route_for, route_for_with_legacy,
};
