//! WebSocket client for feedproxy: a proxy-tunnel stream, TLS to the exchange, an upgrade
//! handshake written and checked here (status 101, `Upgrade: websocket`, the `upgrade` token in
//! `Connection`, the exact Sec-WebSocket-Accept, the subprotocol), then frames read here
//! (reassembled fragments, automatic pongs, close handshake, message size limit, typed errors for
//! frames no server may send) and encoded by fastwebsockets.

mod client;
mod error;
mod frames;
mod handshake;

pub use client::{Message, WsOptions, WsStream, WsTimings, connect, connect_timed};
pub use error::{WsError, WsErrorKind};
#[doc(hidden)]
pub use handshake::check_upgrade_response;
pub use handshake::{HandshakeError, MAX_RESPONSE_HEAD};
