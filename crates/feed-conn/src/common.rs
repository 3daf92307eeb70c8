//! What every connection shares: its id, counters, the raw-data callback, and where its route
//! comes from.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proxy_config::ProxyConfig;
use proxy_resolve::{Resolver, Route, Transport};

/// A connection's id: `<feed id>.http.<n>` or `<feed id>.ws.<n>`, with `n` counting from 0 per
/// feed id and transport in this process.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnId(Arc<str>);

impl ConnId {
    /// The next id for `feed` and `transport`.
    pub(crate) fn next(feed: &str, transport: Transport) -> Self {
        static COUNTERS: Mutex<Option<HashMap<(String, Transport), u64>>> = Mutex::new(None);
        // A poisoned lock only means another thread panicked while counting; the map is still
        // a valid map of counters.
        let mut guard = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
        let counter = guard
            .get_or_insert_with(HashMap::new)
            .entry((feed.to_owned(), transport))
            .or_insert(0);
        let n = *counter;
        *counter += 1;
        let kind = match transport {
            Transport::Http => "http",
            Transport::WebSocket => "ws",
        };
        Self(format!("{feed}.{kind}.{n}").into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// What a raw-data callback is told.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RawKind<'a> {
    /// The connection opened (WebSocket: after the upgrade; HTTP: when its client was built).
    Connect {
        /// The address opened, as given (HTTP: the URL of the request that opened the
        /// connection; empty after an explicit `HttpConn::open`).
        url: &'a str,
    },
    /// A message received (WebSocket data message, or an HTTP response body).
    Received(&'a [u8]),
    /// A message sent (WebSocket data message, or an HTTP request body, empty for GET).
    Sent(&'a [u8]),
}

/// One raw-data callback invocation.
#[derive(Debug, Clone, Copy)]
pub struct RawData<'a> {
    /// The connection.
    pub conn_id: &'a ConnId,
    /// When it happened (wall clock). WebSocket messages that arrived in one socket read share
    /// one reading, taken when the first of them was handed out (the clock is read once per
    /// read, not per message).
    pub timestamp: SystemTime,
    /// What happened.
    pub kind: RawKind<'a>,
}

/// Called on connect and on every message sent and received, on the task doing the I/O; keep
/// it short (hand data to a channel for heavy work).
pub type RawCallback = Arc<dyn Fn(&RawData<'_>) + Send + Sync>;

/// Where a connection takes its route from when it opens.
#[derive(Clone, Default)]
pub enum RouteSource {
    /// The process-wide proxy system (`proxy_resolve::init_proxy_system`); direct when none is
    /// installed.
    #[default]
    System,
    /// This resolver.
    Resolver(Arc<Resolver>),
}

impl fmt::Debug for RouteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteSource::System => f.write_str("System"),
            RouteSource::Resolver(_) => f.write_str("Resolver(..)"),
        }
    }
}

/// What HTTP and WebSocket connections have in common.
#[derive(Clone, Default)]
pub struct ConnOptions {
    /// Where the route comes from.
    pub route_source: RouteSource,
    /// The legacy per-connection proxy (cryptofeed's per-feed `proxy=` argument), used when the
    /// route source names none.
    pub legacy_proxy: Option<Arc<ProxyConfig>>,
    /// Called on connect and on every message.
    pub raw_callback: Option<RawCallback>,
}

impl fmt::Debug for ConnOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnOptions")
            .field("route_source", &self.route_source)
            // ProxyConfig's Debug redacts credentials.
            .field("legacy_proxy", &self.legacy_proxy)
            .field("raw_callback", &self.raw_callback.as_ref().map(|_| ".."))
            .finish()
    }
}

impl ConnOptions {
    /// Routes from `resolver` instead of the process-wide proxy system.
    #[must_use]
    pub fn with_resolver(mut self, resolver: Arc<Resolver>) -> Self {
        self.route_source = RouteSource::Resolver(resolver);
        self
    }

    /// Uses `proxy` when the route source gives none.
    #[must_use]
    pub fn with_legacy_proxy(mut self, proxy: ProxyConfig) -> Self {
        self.legacy_proxy = Some(Arc::new(proxy));
        self
    }

    /// Calls `callback` on connect and on every message.
    #[must_use]
    pub fn with_raw_callback(
        mut self,
        callback: impl Fn(&RawData<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.raw_callback = Some(Arc::new(callback));
        self
    }

    /// The route for a connection opening now (emits the route event).
    pub(crate) fn route(&self, exchange: &str, transport: Transport) -> Route {
        let legacy = self.legacy_proxy.as_ref();
        match &self.route_source {
            RouteSource::System => {
                proxy_resolve::route_for_with_legacy(exchange, transport, legacy)
            }
            RouteSource::Resolver(resolver) => {
                resolver.route_with_legacy(exchange, transport, legacy)
            }
        }
    }
}

/// A snapshot of a connection's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnStats {
    /// Messages sent (WebSocket data messages; HTTP requests).
    pub sent: u64,
    /// Messages received (WebSocket data messages; HTTP responses).
    pub received: u64,
    /// When the last message was received, if any (for WebSocket: the clock reading of the
    /// socket read that brought it, see [`RawData::timestamp`]).
    pub last_message: Option<SystemTime>,
    /// How many times the connection opened (a reopened WebSocket counts again).
    pub opens: u64,
}

/// The live counters and callback of one connection; shared so the handle stays cheap.
pub(crate) struct Tap {
    pub(crate) id: ConnId,
    sent: AtomicU64,
    received: AtomicU64,
    /// Nanoseconds since the epoch of the last message received; 0 = none yet.
    last_message: AtomicU64,
    opens: AtomicU64,
    open: AtomicBool,
    callback: Option<RawCallback>,
}

impl Tap {
    pub(crate) fn new(id: ConnId, callback: Option<RawCallback>) -> Self {
        Self {
            id,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            last_message: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            open: AtomicBool::new(false),
            callback,
        }
    }

    pub(crate) fn opened(&self, url: &str) {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.open.store(true, Ordering::Release);
        self.call(RawKind::Connect { url }, SystemTime::now());
    }

    pub(crate) fn closed(&self) {
        self.open.store(false, Ordering::Release);
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    pub(crate) fn sent(&self, data: &[u8]) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if self.callback.is_some() {
            self.call(RawKind::Sent(data), SystemTime::now());
        }
    }

    /// A message received at `now` (the caller's clock reading, see [`received_now`]), by a
    /// connection whose calls may overlap (`HttpConn` takes `&self`).
    pub(crate) fn received(&self, data: &[u8], now: ReceivedAt) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.received_rest(data, now);
    }

    /// [`Tap::received`] for the one writer of this counter: `WsConn::next` takes `&mut self`,
    /// so no other call adds to `received` at the same time, and a plain load and store (no
    /// locked read-modify-write, a few ns per message at 64 B) counts exactly. Readers of
    /// [`Tap::stats`] on other threads see every count, in order. Marked `#[inline]`, with
    /// the callback call, so `WsConn::next` need not call it (callgrind, 64 B messages: 18
    /// instructions per message less).
    #[inline]
    pub(crate) fn received_by_owner(&self, data: &[u8], now: ReceivedAt) {
        let count = self.received.load(Ordering::Relaxed);
        self.received.store(count + 1, Ordering::Relaxed);
        self.received_rest(data, now);
    }

    #[inline]
    fn received_rest(&self, data: &[u8], now: ReceivedAt) {
        if now.fresh {
            let nanos = now.time.duration_since(UNIX_EPOCH).map_or(1, |d| {
                u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
            });
            self.last_message.store(nanos, Ordering::Relaxed);
        }
        self.call(RawKind::Received(data), now.time);
    }

    #[inline]
    fn call(&self, kind: RawKind<'_>, timestamp: SystemTime) {
        if let Some(callback) = &self.callback {
            callback(&RawData {
                conn_id: &self.id,
                timestamp,
                kind,
            });
        }
    }

    pub(crate) fn stats(&self) -> ConnStats {
        let last = self.last_message.load(Ordering::Relaxed);
        ConnStats {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            last_message: (last != 0).then(|| UNIX_EPOCH + Duration::from_nanos(last)),
            opens: self.opens.load(Ordering::Relaxed),
        }
    }
}

/// When a message arrived, and whether that clock reading is new (`last_message` is stored only
/// when it is).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceivedAt {
    pub(crate) time: SystemTime,
    pub(crate) fresh: bool,
}

/// A message received now: reads the clock.
pub(crate) fn received_now() -> ReceivedAt {
    ReceivedAt {
        time: SystemTime::now(),
        fresh: true,
    }
}

/// Logs the one "opened through proxy" event for a proxied route; nothing for direct.
pub(crate) fn log_open(id: &ConnId, exchange: &str, transport: Transport, route: &Route) {
    if let Route::Proxy(proxy) = route {
        tracing::info!(
            target: crate::CONN_LOG_TARGET,
            conn_id = %id,
            exchange,
            transport = transport.as_str(),
            scheme = proxy.url.scheme().as_str(),
            proxy = %proxy.url.authority(),
            "connection opened through proxy"
        );
    }
}
