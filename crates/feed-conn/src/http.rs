//! `HttpConn`: REST requests for one feed over one pooled client, routed when it opens.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use proxy_http::{HttpClient, HttpOptions, Method, StatusCode};
use proxy_resolve::{Resolver, Route, Transport};
use proxy_tunnel::redact_url;
use std::sync::Mutex;

use crate::common::{ConnId, ConnOptions, ConnStats, RouteSource, Tap, log_open, received_now};
use crate::error::ConnError;

/// How a request answered `429 Too Many Requests` is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: none).
    pub max_retries: u32,
    /// Wait before each retry when the server sends no `Retry-After` (in seconds); a
    /// `Retry-After` is honoured up to `max_delay`.
    pub delay: Duration,
    /// The longest wait honoured from `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
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

/// Headers and query of one request. `Debug` shows names only (values may carry keys and
/// signatures).
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
        let query: Vec<&str> = self.query.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("ReadOptions")
            .field("headers", &names)
            .field("query", &query)
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
    client: Mutex<Option<Built>>,
}

/// The client of the current opening, and which process-wide resolver its route came from.
struct Built {
    client: HttpClient,
    /// The proxy system in force when the route was resolved (route source `System` only):
    /// when another system is installed, the connection reopens with it. A `Weak` keeps the
    /// allocation, so a later system can never reuse its address and pass for it.
    system: Option<Weak<Resolver>>,
}

/// Whether `built` was resolved from `current` (both none, or the same allocation).
fn same_system(built: Option<&Weak<Resolver>>, current: Option<&Arc<Resolver>>) -> bool {
    match (built, current) {
        (None, None) => true,
        (Some(built), Some(current)) => std::ptr::eq(built.as_ptr(), Arc::as_ptr(current)),
        _ => false,
    }
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
                client: Mutex::new(None),
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
    pub fn route(&self) -> Option<Route> {
        self.built().as_ref().map(|b| b.client.route().clone())
    }

    fn built(&self) -> std::sync::MutexGuard<'_, Option<Built>> {
        // A poisoned lock only means a panic elsewhere; the cached client is still valid.
        self.inner
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the connection: resolves the route and builds the client (no network I/O yet; the
    /// first request dials). Idempotent while open.
    pub async fn open(&self) -> Result<(), ConnError> {
        self.client("").map(|_| ())
    }

    /// The client for a request: the current one, or a new one with a freshly resolved route
    /// when the connection is not open or (route source `System`) another proxy system has
    /// been installed since it opened, so a long-lived connection never keeps a route the
    /// operator has replaced.
    fn client(&self, url: &str) -> Result<HttpClient, ConnError> {
        let inner = &self.inner;
        let system = match inner.options.conn.route_source {
            RouteSource::System => proxy_resolve::proxy_system(),
            RouteSource::Resolver(_) => None,
        };
        let mut built = self.built();
        if let Some(current) = built.as_ref()
            && same_system(current.system.as_ref(), system.as_ref())
        {
            return Ok(current.client.clone());
        }
        let route = inner.options.conn.route(&inner.exchange, Transport::Http);
        let client = HttpClient::new(route.clone(), &inner.exchange, inner.options.http.clone())
            .map_err(|source| ConnError::Http {
                conn_id: inner.tap.id.clone(),
                source: Box::new(source),
            })?;
        log_open(&inner.tap.id, &inner.exchange, Transport::Http, &route);
        inner.tap.opened(url);
        *built = Some(Built {
            client: client.clone(),
            system: system.as_ref().map(Arc::downgrade),
        });
        Ok(client)
    }

    /// Drops the client (and its pooled connections). The next request opens the connection
    /// again, with the route in force then.
    pub async fn close(&self) {
        *self.built() = None;
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
        let client = self.client(url)?;
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
            tap.received(&response.body, received_now());
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
            let wait =
                retry_after(&response.headers).map_or(retry.delay, |d| d.min(retry.max_delay));
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
