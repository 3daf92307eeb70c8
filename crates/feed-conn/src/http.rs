//! `HttpConn`: REST requests for one feed over one pooled client, routed when it opens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use proxy_http::{HttpClient, HttpOptions, Method, StatusCode};
use proxy_resolve::{Route, Transport};
use proxy_tunnel::redact_url;
use tokio::sync::OnceCell;

use crate::common::{ConnId, ConnOptions, ConnStats, Tap, log_open};
use crate::error::ConnError;

/// How a request answered `429 Too Many Requests` is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub max_retries: u32,
    /// Wait before each retry, unless the server sends a shorter `Retry-After` (in seconds).
    pub delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            delay: Duration::from_secs(1),
        }
    }
}

/// How an [`HttpConn`] is set up.
#[derive(Debug, Clone, Default)]
pub struct HttpConnOptions {
    /// The HTTP client's options (TLS, timeouts, body cap, pool).
    pub http: HttpOptions,
    /// Route source, legacy proxy, raw-data callback.
    pub conn: ConnOptions,
    /// Retry on 429.
    pub retry: RetryPolicy,
}

/// Headers and query of one request. `Debug` shows header names only.
#[derive(Clone, Default)]
pub struct ReadOptions {
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Query pairs, appended to the URL's own query.
    pub query: Vec<(String, String)>,
}

impl fmt::Debug for ReadOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ReadOptions")
            .field("headers", &names)
            .field("query", &self.query)
            .finish()
    }
}

impl ReadOptions {
    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a query pair.
    #[must_use]
    pub fn query(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.push((name.into(), value.into()));
        self
    }
}

/// A feed's REST connection (cryptofeed's `HTTPAsyncConn`): one pooled client, created with its
/// route when the connection opens (explicitly with [`HttpConn::open`], or on the first
/// request) and reused by every request until [`HttpConn::close`]. Cheap to clone; clones share
/// the client and counters.
#[derive(Clone)]
pub struct HttpConn {
    inner: Arc<Inner>,
}

struct Inner {
    tap: Tap,
    exchange: String,
    options: HttpConnOptions,
    client: tokio::sync::Mutex<Arc<OnceCell<HttpClient>>>,
}

impl fmt::Debug for HttpConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConn")
            .field("id", &self.inner.tap.id)
            .field("exchange", &self.inner.exchange)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl HttpConn {
    /// A connection for `feed` (the id prefix) to `exchange` (whose routes apply). Does no I/O.
    pub fn new(feed: &str, exchange: &str, options: HttpConnOptions) -> Self {
        let id = ConnId::next(feed, Transport::Http);
        let tap = Tap::new(id, options.conn.raw_callback.clone());
        Self {
            inner: Arc::new(Inner {
                tap,
                exchange: exchange.to_ascii_lowercase(),
                options,
                client: tokio::sync::Mutex::new(Arc::new(OnceCell::new())),
            }),
        }
    }

    /// `<feed>.http.<n>`.
    pub fn id(&self) -> &ConnId {
        &self.inner.tap.id
    }

    /// The exchange id.
    pub fn exchange(&self) -> &str {
        &self.inner.exchange
    }

    /// The counters now.
    pub fn stats(&self) -> ConnStats {
        self.inner.tap.stats()
    }

    /// Whether the connection is open (opened and not closed).
    pub fn is_open(&self) -> bool {
        self.inner.tap.is_open()
    }

    /// The route taken, once open.
    pub async fn route(&self) -> Option<Route> {
        let cell = Arc::clone(&*self.inner.client.lock().await);
        cell.get().map(|c| c.route().clone())
    }

    /// Opens the connection: resolves the route and builds the client (no network I/O yet; the
    /// first request dials). Idempotent while open.
    pub async fn open(&self) -> Result<(), ConnError> {
        self.client("").await.map(|_| ())
    }

    async fn client(&self, url: &str) -> Result<HttpClient, ConnError> {
        let cell = Arc::clone(&*self.inner.client.lock().await);
        cell.get_or_try_init(|| async {
            let inner = &self.inner;
            let route = inner.options.conn.route(&inner.exchange, Transport::Http);
            let client =
                HttpClient::new(route.clone(), &inner.exchange, inner.options.http.clone())
                    .map_err(|source| ConnError::Http {
                        conn_id: inner.tap.id.clone(),
                        source: Box::new(source),
                    })?;
            log_open(&inner.tap.id, &inner.exchange, Transport::Http, &route);
            inner.tap.opened(url);
            Ok(client)
        })
        .await
        .cloned()
    }

    /// Drops the client (and its pooled connections). The next request opens the connection
    /// again, with the route in force then.
    pub async fn close(&self) {
        *self.inner.client.lock().await = Arc::new(OnceCell::new());
        self.inner.tap.closed();
    }

    /// GET `url`; the body of a 2xx answer. Retries 429 as [`HttpConnOptions::retry`] says.
    pub async fn read(&self, url: &str) -> Result<Bytes, ConnError> {
        self.read_with(url, &ReadOptions::default()).await
    }

    /// GET `url` with headers and query.
    pub async fn read_with(&self, url: &str, options: &ReadOptions) -> Result<Bytes, ConnError> {
        self.send(Method::GET, url, options, Bytes::new()).await
    }

    /// POST `body` to `url`; the body of a 2xx answer.
    pub async fn write(
        &self,
        url: &str,
        body: impl Into<Bytes>,
        options: &ReadOptions,
    ) -> Result<Bytes, ConnError> {
        self.send(Method::POST, url, options, body.into()).await
    }

    /// DELETE `url`; the body of a 2xx answer.
    pub async fn delete(&self, url: &str, options: &ReadOptions) -> Result<Bytes, ConnError> {
        self.send(Method::DELETE, url, options, Bytes::new()).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        options: &ReadOptions,
        body: Bytes,
    ) -> Result<Bytes, ConnError> {
        let client = self.client(url).await?;
        let tap = &self.inner.tap;
        let retry = self.inner.options.retry;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut request = client.request(method.clone(), url).query(&options.query);
            for (name, value) in &options.headers {
                request = request.header(name, value);
            }
            if !body.is_empty() {
                request = request.body(body.clone());
            }
            tap.sent(&body);
            let response = request.send().await.map_err(|source| ConnError::Http {
                conn_id: tap.id.clone(),
                source: Box::new(source),
            })?;
            tap.received(&response.body);
            if response.status.is_success() {
                return Ok(response.body);
            }
            if response.status != StatusCode::TOO_MANY_REQUESTS {
                return Err(ConnError::Status {
                    conn_id: tap.id.clone(),
                    method: method_name(&method),
                    url: redact_url(url),
                    status: response.status.as_u16(),
                });
            }
            if attempts > retry.max_retries {
                return Err(ConnError::RateLimited {
                    conn_id: tap.id.clone(),
                    url: redact_url(url),
                    attempts,
                });
            }
            let wait = retry_after(&response.headers).map_or(retry.delay, |d| d.min(retry.delay));
            tracing::warn!(
                target: crate::CONN_LOG_TARGET,
                conn_id = %tap.id,
                url = %redact_url(url),
                attempt = attempts,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "429 Too Many Requests; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "request",
    }
}

/// `Retry-After` in seconds (the HTTP-date form is ignored: the policy's delay applies).
fn retry_after(headers: &proxy_http::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}
