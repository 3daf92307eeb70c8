//! `FeedHandler`: runs feeds — the REST prefetch over an `HttpConn`, one `WsConn` per stream
//! with reconnects under exponential backoff — and delivers their events to callbacks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use feed_conn::{
    ConnError, ConnOptions, HttpConn, HttpConnOptions, HttpOptions, WsConn, WsConnOptions,
    WsOptions,
};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::error::FeedError;
use crate::feed::{Feed, Markets, WsEndpoint};
use crate::trade::{Event, Trade};

/// The tracing target of the handler's events (connects, drops, skipped messages).
pub const HANDLER_LOG_TARGET: &str = "feedproxy::feed";

/// How a dropped WebSocket is reconnected: waits of `initial`, doubling up to `max`, back to
/// `initial` once a connection has stayed up for `reset_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A connection that stayed up this long was healthy: the next wait is `initial` again and
    /// the failure count restarts.
    pub reset_after: Duration,
    /// Give up after this many failures in a row (failed opens, or connections that failed or
    /// were closed by the server before `reset_after`); `None`: never give up.
    pub max_failures: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
            max_failures: None,
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// Called with every trade, on the task reading the stream; keep it short.
pub type TradeCallback = Arc<dyn Fn(&Trade) + Send + Sync>;

/// Called with every connection error the handler recovers from (or gives up on).
pub type ErrorCallback = Arc<dyn Fn(&ConnError) + Send + Sync>;

/// How a [`FeedHandler`] connects. The default bounds each stream read with a 90 s idle
/// timeout (every supported exchange sends a ping or a heartbeat well within that), so a stalled
/// proxy or a vanished peer becomes a reconnect instead of silence.
#[derive(Debug, Clone)]
pub struct HandlerOptions {
    /// REST client options (TLS, timeouts).
    pub http: HttpOptions,
    /// WebSocket options (TLS, limits, idle timeout).
    pub ws: WsOptions,
    /// Route source (the process-wide proxy system by default), legacy proxy, raw-data
    /// callback; shared by every connection.
    pub conn: ConnOptions,
    /// Reconnect policy.
    pub backoff: Backoff,
}

/// The default idle timeout of a stream read.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

impl Default for HandlerOptions {
    fn default() -> Self {
        Self {
            http: HttpOptions::default(),
            ws: WsOptions {
                idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
                ..WsOptions::default()
            },
            conn: ConnOptions::default(),
            backoff: Backoff::default(),
        }
    }
}

/// Why a handler could not start or a stream stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The metadata prefetch failed.
    #[error("{feed}: metadata prefetch failed: {source}")]
    Prefetch {
        /// The feed id.
        feed: String,
        /// The connection error.
        #[source]
        source: ConnError,
    },
    /// The feed rejected its metadata or its symbols.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// A stream connection could not be created.
    #[error("{feed}: {source}")]
    Conn {
        /// The feed id.
        feed: String,
        /// The connection error.
        #[source]
        source: ConnError,
    },
    /// A stream failed `failures` times in a row and the backoff policy gave up.
    #[error(
        "{feed}: gave up after {failures} failures in a row{}",
        last.as_ref().map_or_else(|| ": the server kept closing the stream".to_owned(), |e| format!(": {e}"))
    )]
    GaveUp {
        /// The feed id.
        feed: String,
        /// Failures counted.
        failures: u32,
        /// The last error; `None` when the last connection was closed cleanly by the server.
        #[source]
        last: Option<ConnError>,
    },
    /// A stream task panicked (a callback panicked).
    #[error("{feed}: stream task panicked")]
    Panicked {
        /// The feed id.
        feed: String,
    },
}

/// Runs feeds concurrently: each feed's metadata prefetch, then its streams, reconnecting
/// dropped ones; trades go to the callbacks.
///
/// ```no_run
/// # async fn demo() -> Result<(), feed_handler::HandlerError> {
/// use feed_handler::{FeedHandler, HandlerOptions, binance::BinanceFeed};
///
/// let mut handler = FeedHandler::new(HandlerOptions::default());
/// handler.add_feed(BinanceFeed::new(&["BTC-USDT"]));
/// handler.on_trade(|trade| println!("{} {} {} @ {}", trade.symbol, trade.side, trade.amount, trade.price));
/// let running = handler.start().await?;
/// running.wait().await
/// # }
/// ```
pub struct FeedHandler {
    feeds: Vec<Arc<dyn Feed>>,
    options: HandlerOptions,
    trade_callbacks: Vec<TradeCallback>,
    error_callbacks: Vec<ErrorCallback>,
}

impl fmt::Debug for FeedHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.feeds.iter().map(|f| f.id()).collect();
        f.debug_struct("FeedHandler")
            .field("feeds", &ids)
            .field("options", &self.options)
            .field("trade_callbacks", &self.trade_callbacks.len())
            .finish_non_exhaustive()
    }
}

impl FeedHandler {
    /// A handler with no feeds.
    pub fn new(options: HandlerOptions) -> Self {
        Self {
            feeds: Vec::new(),
            options,
            trade_callbacks: Vec::new(),
            error_callbacks: Vec::new(),
        }
    }

    /// Adds a feed.
    pub fn add_feed(&mut self, feed: impl Feed) -> &mut Self {
        self.feeds.push(Arc::new(feed));
        self
    }

    /// Adds a trade callback.
    pub fn on_trade(&mut self, callback: impl Fn(&Trade) + Send + Sync + 'static) -> &mut Self {
        self.trade_callbacks.push(Arc::new(callback));
        self
    }

    /// Adds a callback for connection errors (each drop or failed reconnect).
    pub fn on_error(&mut self, callback: impl Fn(&ConnError) + Send + Sync + 'static) -> &mut Self {
        self.error_callbacks.push(Arc::new(callback));
        self
    }

    /// Runs every feed's prefetch (concurrently), then starts every stream. Fails if any
    /// prefetch fails or any feed rejects its metadata; nothing is left running then.
    pub async fn start(self) -> Result<RunningHandler, HandlerError> {
        let shared = Arc::new(Shared {
            options: self.options,
            trade_callbacks: self.trade_callbacks,
            error_callbacks: self.error_callbacks,
        });
        let mut prefetches = JoinSet::new();
        let mut prefetch_feeds = HashMap::new();
        for (index, feed) in self.feeds.iter().enumerate() {
            let id = feed.id().to_owned();
            let feed = Arc::clone(feed);
            let shared = Arc::clone(&shared);
            let task = prefetches.spawn(async move { (index, prefetch(&*feed, &shared).await) });
            prefetch_feeds.insert(task.id(), id);
        }
        let mut plans: Vec<Option<(Arc<Markets>, Vec<WsEndpoint>)>> =
            self.feeds.iter().map(|_| None).collect();
        while let Some(joined) = prefetches.join_next().await {
            match joined {
                Ok((index, result)) => plans[index] = Some(result?),
                Err(error) => {
                    return Err(HandlerError::Panicked {
                        feed: prefetch_feeds.remove(&error.id()).unwrap_or_default(),
                    });
                }
            }
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut stream_feeds = HashMap::new();
        for (feed, plan) in self.feeds.iter().zip(plans) {
            let Some((markets, endpoints)) = plan else {
                continue;
            };
            for endpoint in endpoints {
                let conn = WsConn::new(
                    feed.id(),
                    feed.exchange(),
                    &endpoint.url,
                    WsConnOptions {
                        ws: shared.options.ws.clone(),
                        conn: shared.options.conn.clone(),
                        subscription: endpoint.subscribe,
                        auth: None,
                    },
                )
                .map_err(|source| HandlerError::Conn {
                    feed: feed.id().to_owned(),
                    source,
                })?;
                let stream = Stream {
                    feed: Arc::clone(feed),
                    markets: Arc::clone(&markets),
                    shared: Arc::clone(&shared),
                    stopped: stopped.clone(),
                };
                let feed_id = feed.id().to_owned();
                let task = tasks.spawn(async move { stream.run(conn).await });
                stream_feeds.insert(task.id(), feed_id);
            }
        }
        Ok(RunningHandler {
            tasks,
            feeds: stream_feeds,
            stop,
        })
    }
}

/// Feeds running. Dropping it stops every stream abruptly; [`RunningHandler::stop`] closes
/// them cleanly.
#[derive(Debug)]
pub struct RunningHandler {
    tasks: JoinSet<Result<(), HandlerError>>,
    /// The feed id of each stream task, for a panic's report.
    feeds: HashMap<tokio::task::Id, String>,
    stop: watch::Sender<bool>,
}

impl RunningHandler {
    /// How many streams are still running.
    pub fn streams(&self) -> usize {
        self.tasks.len()
    }

    /// Waits until one more stream stops and returns how it ended (`Ok` when it was stopped, the
    /// error its backoff policy gave up on otherwise); `None` when no stream is running. Cancel
    /// safe: use it in `select!` beside other work, then [`RunningHandler::stop`] the rest.
    pub async fn next_stopped(&mut self) -> Option<Result<(), HandlerError>> {
        let joined = self.tasks.join_next_with_id().await?;
        Some(match joined {
            Ok((id, result)) => {
                self.feeds.remove(&id);
                result
            }
            Err(error) => Err(HandlerError::Panicked {
                feed: self.feeds.remove(&error.id()).unwrap_or_default(),
            }),
        })
    }

    /// Closes every stream (close frame, then the socket) and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Waits until every stream has stopped: `Ok` if none failed, else the first failure
    /// (streams stop only when their backoff policy gives up).
    pub async fn wait(mut self) -> Result<(), HandlerError> {
        let mut first = None;
        while let Some(result) = self.next_stopped().await {
            if let Err(error) = result {
                first.get_or_insert(error);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

struct Shared {
    options: HandlerOptions,
    trade_callbacks: Vec<TradeCallback>,
    error_callbacks: Vec<ErrorCallback>,
}

impl Shared {
    fn deliver(&self, event: &Event) {
        match event {
            Event::Trade(trade) => {
                for callback in &self.trade_callbacks {
                    callback(trade);
                }
            }
        }
    }

    fn report(&self, error: &ConnError) {
        for callback in &self.error_callbacks {
            callback(error);
        }
    }
}

async fn prefetch(
    feed: &dyn Feed,
    shared: &Shared,
) -> Result<(Arc<Markets>, Vec<WsEndpoint>), HandlerError> {
    let requests = feed.metadata_requests();
    let mut bodies: Vec<Bytes> = Vec::with_capacity(requests.len());
    if !requests.is_empty() {
        let conn = HttpConn::new(
            feed.id(),
            feed.exchange(),
            HttpConnOptions {
                http: shared.options.http.clone(),
                conn: shared.options.conn.clone(),
                ..HttpConnOptions::default()
            },
        );
        for request in &requests {
            let body = conn
                .read(&request.url)
                .await
                .map_err(|source| HandlerError::Prefetch {
                    feed: feed.id().to_owned(),
                    source,
                })?;
            bodies.push(body);
        }
        conn.close().await;
    }
    let markets = feed.parse_metadata(&bodies)?;
    let endpoints = feed.ws_endpoints(&markets)?;
    Ok((Arc::new(markets), endpoints))
}

struct Stream {
    feed: Arc<dyn Feed>,
    markets: Arc<Markets>,
    shared: Arc<Shared>,
    stopped: watch::Receiver<bool>,
}

impl Stream {
    async fn run(mut self, mut conn: WsConn) -> Result<(), HandlerError> {
        let backoff = self.shared.options.backoff;
        let mut failures = 0u32;
        let mut events = Vec::new();
        loop {
            let opened = tokio::select! {
                result = conn.open() => result,
                _ = self.stopped.wait_for(|stop| *stop) => return Ok(()),
            };
            let last_error = match opened {
                Ok(()) => {
                    tracing::info!(
                        target: HANDLER_LOG_TARGET,
                        feed = self.feed.id(),
                        conn_id = %conn.id(),
                        "stream connected"
                    );
                    let up_since = Instant::now();
                    let ended = self.read(&mut conn, &mut events).await;
                    if *self.stopped.borrow() {
                        conn.close().await;
                        return Ok(());
                    }
                    if up_since.elapsed() >= backoff.reset_after {
                        failures = 0;
                    }
                    ended
                }
                Err(error) => Some(error),
            };
            failures = failures.saturating_add(1);
            if let Some(error) = &last_error {
                self.shared.report(error);
            }
            if let Some(max) = backoff.max_failures
                && failures >= max
            {
                return Err(HandlerError::GaveUp {
                    feed: self.feed.id().to_owned(),
                    failures,
                    last: last_error,
                });
            }
            let wait = backoff.delay(failures);
            tracing::warn!(
                target: HANDLER_LOG_TARGET,
                feed = self.feed.id(),
                conn_id = %conn.id(),
                error = last_error.as_ref().map(tracing::field::display),
                failures,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "stream dropped; reconnecting"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = self.stopped.wait_for(|stop| *stop) => return Ok(()),
            }
        }
    }

    /// Reads until the connection ends or a stop is asked; the error, if it failed.
    async fn read(&mut self, conn: &mut WsConn, events: &mut Vec<Event>) -> Option<ConnError> {
        loop {
            let next = tokio::select! {
                next = conn.next() => next,
                _ = self.stopped.wait_for(|stop| *stop) => return None,
            };
            match next {
                Ok(Some(message)) => {
                    events.clear();
                    match self.feed.parse(&self.markets, &message, events) {
                        Ok(()) => {
                            for event in events.iter() {
                                self.shared.deliver(event);
                            }
                        }
                        Err(error) => tracing::warn!(
                            target: HANDLER_LOG_TARGET,
                            feed = self.feed.id(),
                            conn_id = %conn.id(),
                            %error,
                            "message skipped"
                        ),
                    }
                }
                Ok(None) => return None,
                Err(error) => return Some(error),
            }
        }
    }
}
