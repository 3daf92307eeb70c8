//! `HttpPoll`: one or several addresses polled at an interval, as a `Stream`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ConnError;
use crate::http::{HttpConn, ReadOptions};

/// One poll result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollItem {
    /// The address polled (index into the addresses given to [`HttpPoll::new`]).
    pub index: usize,
    /// The body of the 2xx answer.
    pub body: Bytes,
}

/// Polls addresses over one [`HttpConn`] (cryptofeed's `HTTPPoll`): each round GETs every
/// address in order, then waits until `interval` after the round started. A failed request
/// yields its error and polling goes on with the next address; drop the stream to stop.
#[derive(Debug, Clone)]
pub struct HttpPoll {
    conn: HttpConn,
    urls: Arc<[String]>,
    interval: Duration,
    options: ReadOptions,
}

impl HttpPoll {
    /// Polls `urls` every `interval` over `conn`.
    pub fn new(conn: HttpConn, urls: Vec<String>, interval: Duration) -> Self {
        Self {
            conn,
            urls: urls.into(),
            interval,
            options: ReadOptions::default(),
        }
    }

    /// Sends these headers and query with every request.
    #[must_use]
    pub fn with_options(mut self, options: ReadOptions) -> Self {
        self.options = options;
        self
    }

    /// The connection polled over.
    pub fn conn(&self) -> &HttpConn {
        &self.conn
    }

    /// The results, forever (empty if there are no addresses).
    pub fn read(&self) -> impl Stream<Item = Result<PollItem, ConnError>> + Send + 'static {
        let poll = self.clone();
        let mut ticker =
            tokio::time::interval_at(Instant::now(), self.interval.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        futures_util::stream::unfold(
            (poll, ticker, 0usize),
            |(poll, mut ticker, next)| async move {
                if poll.urls.is_empty() {
                    return None;
                }
                if next == 0 {
                    ticker.tick().await;
                }
                let result = poll
                    .conn
                    .read_with(&poll.urls[next], &poll.options)
                    .await
                    .map(|body| PollItem { index: next, body });
                let following = (next + 1) % poll.urls.len();
                Some((result, (poll, ticker, following)))
            },
        )
    }
}
