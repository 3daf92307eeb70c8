//! Pooled HTTPS/HTTP client for feedproxy: hyper and hyper-util's legacy `Client` over a
//! proxy-tunnel stream, rustls (ring) to the exchange.
//!
//! One [`HttpClient`] serves one exchange's REST connections along one route (direct or a
//! proxy). It never speaks a proxy protocol itself: proxy-tunnel hands it a connected stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use proxy_http::{HttpClient, HttpOptions};
//! use proxy_resolve::{Transport, route_for};
//!
//! // Binance's REST route from the proxy system (direct when none is installed).
//! let route = route_for("binance", Transport::Http);
//! let client = HttpClient::new(route, "binance", HttpOptions::default())?;
//! let response = client
//!     .get("https://api.binance.com/api/v3/depth")
//!     .query(&[("symbol", "BTCUSDT"), ("limit", "5")])
//!     .send()
//!     .await?;
//! println!("{} {}", response.status, response.text());
//! # Ok(())
//! # }
//! ```

mod client;
mod connector;

pub use client::{HttpClient, HttpError, HttpErrorKind, HttpOptions, HttpResponse, RequestBuilder};
pub use connector::{ConnectError, ExchangeConnector, ExchangeStream, SharedConnectError};
pub use http::{HeaderMap, Method, StatusCode};
pub use proxy_tunnel::{TlsOptions, TlsOptionsError};
