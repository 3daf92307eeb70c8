//! `HttpClient`: GET/POST/DELETE with headers, query and body over one route, pooled, with a
//! per-request timeout and a response size cap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use proxy_resolve::{Route, Transport};
use proxy_tunnel::{TlsOptions, TlsOptionsError, TunnelConnector, TunnelError, redact_url};

use crate::connector::{ConnectError, ExchangeConnector, SharedConnectError, with_connect_flag};

/// How an [`HttpClient`] behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Trust anchors for exchanges (and for https:// proxies).
    pub tls: TlsOptions,
    /// Bound on one request: connecting (if needed), sending, and reading the whole response.
    pub timeout: Duration,
    /// The largest response body accepted.
    pub max_body_bytes: usize,
    /// How long an idle pooled connection is kept (more than a century: forever).
    pub pool_idle_timeout: Duration,
    /// Bound on direct TCP connects.
    pub direct_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            tls: TlsOptions::default(),
            timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            pool_idle_timeout: Duration::from_secs(90),
            direct_timeout: proxy_tunnel::DEFAULT_DIRECT_TIMEOUT,
        }
    }
}

/// The longest pool idle timeout taken as given; a longer one keeps idle connections forever.
const LONGEST_POOL_IDLE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// A pooled HTTP/1.1 client for one exchange's REST connections along one route.
///
/// `https://` URLs get TLS to the exchange inside the tunnel, verified against
/// [`HttpOptions::tls`] with the URL's host as SNI. `http://` URLs through an HTTP proxy also use
/// CONNECT (not absolute-form forwarding), so every scheme and every proxy kind takes the same
/// path and the proxy sees only the target's host and port. Sequential requests to one host reuse
/// one connection (and so one proxy handshake). Building a client does no I/O.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client<ExchangeConnector, Full<Bytes>>,
    route: Route,
    exchange: String,
    timeout: Duration,
    max_body_bytes: usize,
}

impl HttpClient {
    /// A client for `exchange` along `route` (REST transport).
    pub fn new(route: Route, exchange: &str, options: HttpOptions) -> Result<Self, HttpError> {
        let tls = options
            .tls
            .client_config(&[b"http/1.1"])
            .map_err(HttpError::Tls)?;
        let proxy_tls = options.tls.client_config(&[]).map_err(HttpError::Tls)?;
        let tunnel = TunnelConnector::new(route.clone(), exchange, Transport::Http)
            .with_proxy_tls(proxy_tls)
            .with_direct_timeout(options.direct_timeout);
        // Longer than a century is never: hyper-util adds the timeout to an Instant, which
        // panics past the clock's end (`Duration::MAX`).
        let idle =
            (options.pool_idle_timeout <= LONGEST_POOL_IDLE).then_some(options.pool_idle_timeout);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(idle)
            .pool_timer(TokioTimer::new())
            .build(ExchangeConnector::new(tunnel, tls));
        Ok(Self {
            client,
            route,
            exchange: exchange.to_owned(),
            timeout: options.timeout,
            max_body_bytes: options.max_body_bytes,
        })
    }

    /// The route this client takes.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The proxy as errors name it (`scheme://host:port`, no credentials), or `None` when direct.
    fn proxy_label(&self) -> Option<String> {
        match &self.route {
            Route::Proxy(proxy) => Some(proxy.url.to_string()),
            Route::Direct => None,
        }
    }

    /// A GET request.
    pub fn get(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, url)
    }

    /// A POST request.
    pub fn post(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, url)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            url: url.to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: self.timeout,
            error: None,
        }
    }
}

/// A request being built; [`RequestBuilder::send`] sends it. `Debug` shows the method, the URL
/// without its query and the header names: values, query and body may carry keys and signatures.
pub struct RequestBuilder<'a> {
    client: &'a HttpClient,
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    timeout: Duration,
    error: Option<HttpErrorKind>,
}

impl std::fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &redact_url(&self.url))
            .field("headers", &header_names)
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RequestBuilder<'_> {
    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.append(name, value);
            }
            _ => {
                self.error = Some(HttpErrorKind::InvalidHeader(
                    name.chars().take(64).collect(),
                ))
            }
        }
        self
    }

    /// Appends query parameters (percent-encoded here).
    #[must_use]
    pub fn query<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        self.query.extend(
            pairs
                .iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Replaces the client's per-request timeout for this request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and reads the whole response (up to the size cap).
    pub async fn send(self) -> Result<HttpResponse, HttpError> {
        let client = self.client;
        let uri = build_uri(&self.url, &self.query);
        let context = |kind| HttpError::Request {
            kind,
            method: self.method.clone(),
            url: redact_url(&self.url),
            exchange: client.exchange.clone(),
        };
        if let Some(kind) = self.error {
            return Err(context(kind));
        }
        let uri = uri.map_err(&context)?;
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(uri);
        if let Some(headers) = request.headers_mut() {
            *headers = self.headers;
            if !headers.contains_key(http::header::USER_AGENT) {
                headers.insert(
                    http::header::USER_AGENT,
                    HeaderValue::from_static(concat!("feedproxy/", env!("CARGO_PKG_VERSION"))),
                );
            }
        }
        let request = request
            .body(Full::new(self.body))
            .map_err(|_| context(HttpErrorKind::InvalidUrl))?;
        let max = client.max_body_bytes;
        let exchange = async {
            let response = client
                .client
                .request(request)
                .await
                .map_err(HttpErrorKind::from_client)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max).collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    HttpErrorKind::BodyTooLarge(max)
                } else {
                    HttpErrorKind::Body(e.to_string())
                }
            })?;
            Ok(HttpResponse {
                status: parts.status,
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        let connecting = Arc::new(AtomicBool::new(false));
        let request = with_connect_flag(Arc::clone(&connecting), exchange);
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result.map_err(context),
            // The request's time ran out while its connection was still being opened: the
            // route's own bound (the proxy's timeout_seconds, or the direct timeout) was longer.
            Err(_) if connecting.load(Ordering::Relaxed) => {
                Err(context(HttpErrorKind::ConnectTimeout {
                    after: self.timeout,
                    proxy: client.proxy_label(),
                }))
            }
            Err(_) => Err(context(HttpErrorKind::Timeout(self.timeout))),
        }
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl HttpResponse {
    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The TLS options could not be turned into a client configuration.
    #[error("invalid TLS options: {0}")]
    Tls(#[source] TlsOptionsError),
    /// A request failed; `url` is shown without its query.
    #[error("{method} {url}: {kind} (exchange {exchange})")]
    Request {
        /// What went wrong.
        #[source]
        kind: HttpErrorKind,
        /// The method.
        method: Method,
        /// `scheme://host:port/path`, without the query (it may carry signatures).
        url: String,
        /// The exchange the client is for.
        exchange: String,
    },
}

impl HttpError {
    /// What went wrong, for request errors.
    pub fn kind(&self) -> Option<&HttpErrorKind> {
        match self {
            HttpError::Request { kind, .. } => Some(kind),
            HttpError::Tls(_) => None,
        }
    }

    /// The route's error, when the connection could not be opened (who is at fault, which
    /// proxy).
    pub fn tunnel_error(&self) -> Option<&TunnelError> {
        match self.kind()? {
            HttpErrorKind::Connect(e) => match &**e {
                ConnectError::Tunnel(e) => Some(e),
                _ => None,
            },
            _ => None,
        }
    }
}

/// What went wrong with a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("invalid URL")]
    InvalidUrl,
    /// A header name or value is not valid.
    #[error("invalid header {0}")]
    InvalidHeader(String),
    /// The connection could not be opened (route, or TLS to the exchange).
    #[error("cannot connect: {0}")]
    Connect(#[source] Arc<ConnectError>),
    /// The connection failed during the request or response.
    #[error("request failed: {0}")]
    Transport(String),
    /// Reading the body failed.
    #[error("reading the response body failed: {0}")]
    Body(String),
    /// The body is larger than the cap.
    #[error("response body over {0} bytes")]
    BodyTooLarge(usize),
    /// The request did not complete in time.
    #[error("request timed out after {}s", .0.as_secs_f64())]
    Timeout(Duration),
    /// The request's timeout ran out while its connection was still being opened (TCP, the
    /// proxy handshake, or TLS to the exchange): the request timeout is shorter than the
    /// route's own bound (the proxy's `timeout_seconds`, or the direct timeout).
    #[error(
        "request timed out after {}s while still connecting {}",
        .after.as_secs_f64(),
        .proxy.as_ref().map_or_else(|| "directly to the exchange".to_owned(), |p| format!("through proxy {p}"))
    )]
    ConnectTimeout {
        /// The request timeout.
        after: Duration,
        /// The proxy (`scheme://host:port`, no credentials), or `None` when direct.
        proxy: Option<String>,
    },
}

impl HttpErrorKind {
    fn from_client(error: hyper_util::client::legacy::Error) -> Self {
        // A connect error's source is our ConnectError; take it back out for a typed error.
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            if let Some(shared) = inner.downcast_ref::<SharedConnectError>() {
                return HttpErrorKind::Connect(Arc::clone(&shared.0));
            }
            source = inner.source();
        }
        let detail = std::error::Error::source(&error)
            .map_or_else(|| error.to_string(), ToString::to_string);
        HttpErrorKind::Transport(detail)
    }
}

fn build_uri(url: &str, query: &[(String, String)]) -> Result<Uri, HttpErrorKind> {
    let mut text = url.to_owned();
    if !query.is_empty() {
        text.push(if url.contains('?') { '&' } else { '?' });
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        text.push_str(&encoded.join("&"));
    }
    let uri: Uri = text.parse().map_err(|_| HttpErrorKind::InvalidUrl)?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_))
            if uri
                .authority()
                .is_some_and(|a| !a.as_str().contains('@') && port_fits(a)) =>
        {
            Ok(uri)
        }
        _ => Err(HttpErrorKind::InvalidUrl),
    }
}

/// Whether the authority is a host alone or `host:port` with a port of 1 to 65535. `http`
/// parses `:70000`, an empty `:`, or `[::1]8443` (text after the bracket) and then reports no
/// port at all, which would connect to the scheme's default port instead.
fn port_fits(authority: &http::uri::Authority) -> bool {
    match authority.as_str().strip_prefix(authority.host()) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|port| port.parse::<u16>().ok())
            .is_some_and(|port| port != 0),
        None => false,
    }
}

/// RFC 3986 unreserved characters stay, everything else is percent-encoded.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
