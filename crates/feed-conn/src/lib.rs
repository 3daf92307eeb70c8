//! The connections feeds use — the Rust counterparts of cryptofeed's `HTTPAsyncConn`,
//! `HTTPPoll` and `WSAsyncConn` — routed through the proxy system with no code in the feed.
//!
//! - [`HttpConn`]: REST requests over one pooled [`proxy_http::HttpClient`], with a bounded
//!   retry on `429 Too Many Requests`.
//! - [`HttpPoll`]: polls one or several addresses at an interval, as a `Stream`.
//! - [`WsConn`]: a `wss://` connection with an authentication hook, subscription messages and
//!   reads as a `Stream`.
//!
//! Every connection has a [`ConnId`] (`<feed id>.http.<n>` / `<feed id>.ws.<n>`), counters
//! ([`ConnStats`]) and an optional raw-data callback ([`RawCallback`]). Its route comes, when it
//! opens, from [`RouteSource`] (the process-wide proxy system by default, or an explicit
//! `Resolver`), then the legacy per-connection proxy, then direct. A connection that opens
//! through a proxy logs one event (target `feedproxy::conn`) naming the connection id,
//! exchange, transport, proxy scheme and proxy host:port — never credentials (WebSocket: after
//! the upgrade; HTTP: when its client is built with that route, before the first request dials).
//!
//! ```no_run
//! # async fn demo() -> Result<(), feed_conn::ConnError> {
//! use feed_conn::{HttpConn, HttpConnOptions, WsConn, WsConnOptions};
//!
//! // Each takes its route from the proxy system when it opens: no proxy code here.
//! let rest = HttpConn::new("binance", "binance", HttpConnOptions::default());
//! let info = rest.read("https://api.binance.com/api/v3/exchangeInfo").await?;
//! println!("{} bytes of exchange info", info.len());
//!
//! let url = "wss://stream.binance.com:9443/ws/btcusdt@trade";
//! let mut ws = WsConn::new("binance", "binance", url, WsConnOptions::default())?;
//! ws.open().await?;
//! while let Some(message) = ws.next().await? {
//!     println!("{}", String::from_utf8_lossy(&message));
//! }
//! # Ok(())
//! # }
//! ```

mod common;
mod error;
mod http;
mod poll;
mod ws;

pub use common::{ConnId, ConnOptions, ConnStats, RawCallback, RawData, RawKind, RouteSource};
pub use error::{AuthError, ConnError};
pub use http::{HttpConn, HttpConnOptions, ReadOptions, RetryPolicy};
pub use poll::{HttpPoll, PollItem};
pub use proxy_http::{HttpOptions, TlsOptions};
pub use proxy_ws::{Message, WsOptions};
pub use ws::{AuthFuture, AuthHook, WsConn, WsConnOptions, WsRequest};

/// The tracing target of the "opened through proxy" event.
pub const CONN_LOG_TARGET: &str = "feedproxy::conn";
