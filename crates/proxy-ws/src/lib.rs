//! WebSocket client for feedproxy: a proxy-tunnel stream, TLS to the exchange, an upgrade
//! handshake written and checked here (status 101, `Upgrade: websocket`, the `upgrade` token in
//! `Connection`, the exact Sec-WebSocket-Accept, the subprotocol), then frames read here
//! (reassembled fragments, automatic pongs, close handshake, message size limit, typed errors for
//! frames no server may send) and encoded by fastwebsockets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use proxy_resolve::{Transport, route_for};
//! use proxy_ws::{Message, WsOptions, connect};
//!
//! let route = route_for("binance", Transport::WebSocket);
//! let url = "wss://stream.binance.com:9443/ws/btcusdt@trade";
//! let mut ws = connect(url, route, "binance", &WsOptions::default()).await?;
//! while let Some(message) = ws.next_message().await? {
//!     if let Message::Text(text) = message {
//!         println!("{}", String::from_utf8_lossy(&text));
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod frames;
mod handshake;

pub use client::{Message, WsOptions, WsStream, WsTimings, connect, connect_timed};
pub use error::{WsError, WsErrorKind};
#[doc(hidden)]
pub use handshake::check_upgrade_response;
pub use handshake::{HandshakeError, MAX_RESPONSE_HEAD};
