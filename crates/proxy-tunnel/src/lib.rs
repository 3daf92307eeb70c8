//! A connected byte stream to `host:port` along a feedproxy [`Route`](proxy_resolve::Route):
//! direct TCP, HTTP CONNECT through an `http://` or `https://` proxy, or SOCKS4/4a/5/5h (with the
//! `socks` feature).
//!
//! This is the only crate that speaks proxy protocols. The handshakes themselves are hyper-util's
//! connectors (`Tunnel`, `SocksV4`, `SocksV5`); this crate dials the proxy under the route's
//! timeout, names the exchange, transport, proxy and target in every error, says who is at fault,
//! and never falls back to a direct connection when a proxy is configured.
//!
//! socks4 and socks5 resolve the target name here (asynchronously, with tokio); socks4a and
//! socks5h send the name to the proxy, as curl does.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//!
//! use proxy_config::ProxyConfig;
//! use proxy_resolve::{Route, Transport};
//! use proxy_tunnel::TunnelConnector;
//!
//! // A route usually comes from the proxy system (`proxy_resolve::route_for`); here it is built.
//! let proxy = ProxyConfig::parse("socks5h://feeds:pa%40ss@eu-socks.internal:1080")?;
//! let connector = TunnelConnector::new(
//!     Route::Proxy(Arc::new(proxy)),
//!     "binance",
//!     Transport::WebSocket,
//! );
//! // TCP to the proxy and the SOCKS5 handshake (the proxy resolves the name), under the proxy's
//! // timeout_seconds; any failure is a TunnelError naming the proxy, never a direct connection.
//! let stream = connector.connect("stream.binance.com", 9443).await?;
//! # drop(stream);
//! # Ok(())
//! # }
//! ```

mod classify;
mod connector;
mod error;
mod io_enum;
mod record;
mod redact;
mod stream;
mod target;
mod tls;

pub use connector::{ConnectTimings, DEFAULT_DIRECT_TIMEOUT, TunnelConnector};
pub use error::{
    Party, ProtocolViolation, TargetRefusal, TunnelError, TunnelErrorKind, socks4_reply_name,
    socks5_reply_name,
};
pub use redact::redact_url;
pub use stream::TunnelStream;
pub use target::{TargetStream, tls_to_target, tls_to_target_sending};
pub use tls::{TlsOptions, TlsOptionsError};
