//! Loopback stand-ins for feedproxy tests: a test CA, an HTTPS server, in-process proxies that
//! record what they saw, and fake exchanges.
//!
//! Depends on no workspace crate, so any crate may use it as a dev-dependency. Its fake
//! exchanges compile in the workspace's `tests/fixtures/exchanges/`, so it builds inside this
//! repository only. Everything here binds to 127.0.0.1 or ::1 only, and the proxies refuse every
//! destination that is not loopback (127.0.0.0/8, `::1`, `localhost`), without a name lookup:
//! tests never reach the network.
//!
//! - [`ca::TestCa`]: an rcgen CA issuing leaf certificates, with rustls server and client configs.
//! - [`https::HttpsServer`]: a keep-alive HTTP/1.1 server over TLS with fixed responses per path.
//! - [`connect_proxy::ConnectProxy`]: an HTTP CONNECT proxy (plain or over TLS, optional Basic auth,
//!   selectable faults).
//! - [`socks::SocksProxy`]: a SOCKS4/4a/5/5h proxy (optional user/password, selectable faults).
//! - [`real::RealProxy`]: launchers for real proxies installed from Debian (squid, tinyproxy,
//!   microsocks, dante) with loopback-only destination rules, and parsers for their logs;
//!   [`real::require_or_skip`] decides whether a test that needs one runs, skips or fails.
//! - [`trace::TraceCapture`]: everything logged on the test's thread, for redaction checks.
//! - [`wss::WssServer`]: a WebSocket server over TLS (numbered streams, echo, scripted frames,
//!   selectable handshake faults, a [`wss::WssHandler`] hook for code that plays the server's
//!   side) that records every handshake and frame.
//! - [`exchange::FakeExchange`]: fake Binance, Coinbase and Backpack (REST and WSS over TLS),
//!   templated from the shared fixtures, numbering every trade they send.
//!
//! Both proxies can cut every tunnel they relay at once (`cut_tunnels`), for tests of a stream
//! that drops mid-way.
//!
//! Each proxy module has its own `Fault` enum; they are not re-exported here, so call sites name
//! which one they mean (`connect_proxy::Fault`, `socks::Fault`). The WebSocket server's faults
//! are `wss::HandshakeFault`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use feed_sim::connect_proxy::{ConnectProxy, ProxyOptions};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! let proxy = ConnectProxy::start(ProxyOptions::new()).await.expect("proxy");
//! let mut tcp = tokio::net::TcpStream::connect(proxy.addr()).await.expect("connect");
//! // A destination that is not loopback is refused: tests never reach the network.
//! tcp.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
//!     .await
//!     .expect("write");
//! let mut answer = [0u8; 12];
//! tcp.read_exact(&mut answer).await.expect("answer");
//! assert_eq!(&answer[..9], b"HTTP/1.1 ");
//! assert_ne!(&answer[9..12], b"200");
//! assert_eq!(proxy.connections().len(), 1, "the proxy recorded the attempt");
//! # }
//! ```

pub mod ca;
mod closed;
pub mod connect_proxy;
pub mod exchange;
pub mod https;
pub mod real;
pub mod secrets;
mod server;
pub mod socks;
pub mod trace;
mod wire;
pub mod wss;

pub use ca::TestCa;
pub use closed::ClosedPort;
pub use connect_proxy::{ConnectProxy, ConnectRecord, ProxyOptions};
pub use exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions, SentTrade};
pub use https::{HttpsServer, Request, Response, Routes};
pub use real::{RealProxy, RealProxyKind, RealProxyOptions, RealRecord, require_or_skip};
pub use socks::{SocksOptions, SocksProxy, SocksRecord};
pub use trace::TraceCapture;
pub use wire::basic_auth_value;
pub use wss::{
    CloseFrame, HandshakeFault, Outbox, ServerMessage, WsMessage, WssHandler, WssOptions,
    WssRecord, WssServer, WssSession,
};
