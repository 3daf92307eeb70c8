//! Pooled HTTPS/HTTP client for feedproxy: hyper and hyper-util's legacy `Client` over a
//! proxy-tunnel stream, rustls (ring) to the exchange.
//!
//! One [`HttpClient`] serves one exchange's REST connections along one route (direct or a
//! proxy). It never speaks a proxy protocol itself: proxy-tunnel hands it a connected stream.

mod client;
mod connector;

pub use client::{HttpClient, HttpError, HttpErrorKind, HttpOptions, HttpResponse, RequestBuilder};
pub use connector::{ConnectError, ExchangeConnector, ExchangeStream, SharedConnectError};
pub use http::{HeaderMap, Method, StatusCode};
pub use proxy_tunnel::{TlsOptions, TlsOptionsError};
