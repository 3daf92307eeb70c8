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
