//! `WsConn`: a feed's `wss://` connection: authentication hook, route, subscription, reads as
//! a `Stream`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use proxy_resolve::{Route, Transport};
use proxy_tunnel::redact_url;
use proxy_ws::{Message, WsOptions, WsStream};

use crate::common::{ConnId, ConnOptions, ConnStats, ReceivedAt, Tap, log_open, received_now};
use crate::error::{AuthError, ConnError};

/// How long [`WsConn::close`] waits to send its close frame.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The address and headers a WebSocket opens with; an [`AuthHook`] may rewrite both. `Debug`
/// shows header names only.
#[derive(Clone, PartialEq, Eq)]
pub struct WsRequest {
    /// The `wss://` address.
    pub url: String,
    /// Upgrade request headers (added to [`WsOptions::headers`]).
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("WsRequest")
            .field("url", &redact_url(&self.url))
            .field("headers", &names)
            .finish()
    }
}

/// What an [`AuthHook`] returns.
pub type AuthFuture = Pin<Box<dyn Future<Output = Result<WsRequest, AuthError>> + Send>>;

/// Runs right before every connect (also reconnects) and may rewrite the address and headers,
/// e.g. to add a signed token or a listen key. An error stops the connect: nothing is sent.
pub type AuthHook = Arc<dyn Fn(WsRequest) -> AuthFuture + Send + Sync>;

/// How a [`WsConn`] is set up.
#[derive(Clone, Default)]
pub struct WsConnOptions {
    /// The WebSocket client's options (TLS, headers, subprotocols, limits, idle timeout).
    pub ws: WsOptions,
    /// Route source, legacy proxy, raw-data callback.
    pub conn: ConnOptions,
    /// Text messages sent right after every connect, in order.
    pub subscription: Vec<String>,
    /// The authentication hook.
    pub auth: Option<AuthHook>,
}

impl fmt::Debug for WsConnOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConnOptions")
            .field("ws", &self.ws)
            .field("conn", &self.conn)
            .field("subscription", &self.subscription.len())
            .field("auth", &self.auth.as_ref().map(|_| ".."))
            .finish()
    }
}

impl WsConnOptions {
    /// Sends these messages after every connect.
    #[must_use]
    pub fn with_subscription(mut self, messages: Vec<String>) -> Self {
        self.subscription = messages;
        self
    }

    /// Runs `hook` before every connect.
    #[must_use]
    pub fn with_auth<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(WsRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<WsRequest, AuthError>> + Send + 'static,
    {
        self.auth = Some(Arc::new(move |request| Box::pin(hook(request))));
        self
    }
}

/// A feed's WebSocket connection (cryptofeed's `WSAsyncConn`). The route is resolved each time
/// the connection opens; [`WsConn::open`] after a close or a failure reconnects under the same
/// id, and the counters keep counting.
pub struct WsConn {
    tap: Arc<Tap>,
    exchange: String,
    url: String,
    options: WsConnOptions,
    stream: Option<WsStream>,
    route: Option<Route>,
    /// The stream's socket-read count when the clock was last read, and that reading: messages
    /// that came in the same read share it, so the clock is read once per read, not per message.
    clock: Option<(u64, std::time::SystemTime)>,
}

impl fmt::Debug for WsConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsConn")
            .field("id", &self.tap.id)
            .field("exchange", &self.exchange)
            .field("url", &redact_url(&self.url))
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl WsConn {
    /// A connection for `feed` (the id prefix) to `exchange` at `url`, which must be `wss://`.
    /// Does no I/O.
    pub fn new(
        feed: &str,
        exchange: &str,
        url: &str,
        options: WsConnOptions,
    ) -> Result<Self, ConnError> {
        let id = ConnId::next(feed, Transport::WebSocket);
        check_address(&id, url)?;
        let tap = Arc::new(Tap::new(id, options.conn.raw_callback.clone()));
        Ok(Self {
            tap,
            exchange: exchange.to_ascii_lowercase(),
            url: url.to_owned(),
            options,
            stream: None,
            route: None,
            clock: None,
        })
    }

    /// `<feed>.ws.<n>`.
    pub fn id(&self) -> &ConnId {
        &self.tap.id
    }

    /// The exchange id.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The address given to [`WsConn::new`] (before any authentication hook rewrite).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The route of the current (or last) opening.
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    /// The counters now.
    pub fn stats(&self) -> ConnStats {
        self.tap.stats()
    }

    /// Whether the connection is open.
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Opens (or reopens) the connection: runs the authentication hook, resolves the route,
    /// connects along it, then sends the subscription. An open connection is closed first.
    pub async fn open(&mut self) -> Result<(), ConnError> {
        self.close().await;
        let mut request = WsRequest {
            url: self.url.clone(),
            headers: Vec::new(),
        };
        if let Some(hook) = &self.options.auth {
            request = hook(request).await.map_err(|source| ConnError::Auth {
                conn_id: self.tap.id.clone(),
                source,
            })?;
            check_address(&self.tap.id, &request.url)?;
        }
        let route = self
            .options
            .conn
            .route(&self.exchange, Transport::WebSocket);
        self.route = Some(route.clone());
        let mut options = self.options.ws.clone();
        options.headers.extend(request.headers);
        let stream = proxy_ws::connect(&request.url, route.clone(), &self.exchange, &options)
            .await
            .map_err(|source| ConnError::Ws {
                conn_id: self.tap.id.clone(),
                source: Box::new(source),
            })?;
        log_open(&self.tap.id, &self.exchange, Transport::WebSocket, &route);
        self.tap.opened(&request.url);
        self.stream = Some(stream);
        // A new stream counts its reads from zero.
        self.clock = None;
        for index in 0..self.options.subscription.len() {
            let message = self.options.subscription[index].clone();
            self.write(&message).await?;
        }
        Ok(())
    }

    /// Sends a text message.
    pub async fn write(&mut self, text: &str) -> Result<(), ConnError> {
        let stream = self.stream.as_mut().ok_or_else(|| ConnError::NotOpen {
            conn_id: self.tap.id.clone(),
        })?;
        match stream.send_text(text).await {
            Ok(()) => {
                self.tap.sent(text.as_bytes());
                Ok(())
            }
            Err(source) => {
                self.drop_stream();
                Err(ConnError::Ws {
                    conn_id: self.tap.id.clone(),
                    source: Box::new(source),
                })
            }
        }
    }

    /// The next data message: `Ok(Some(bytes))` for text or binary, `Ok(None)` once the server
    /// closed the connection (or it was never opened), an error if the connection failed. After
    /// `None` or an error the connection is closed; [`WsConn::open`] reconnects.
    pub async fn next(&mut self) -> Result<Option<Bytes>, ConnError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(None);
        };
        match stream.next_message().await {
            Ok(Some(Message::Text(bytes) | Message::Binary(bytes))) => {
                let reads = stream.socket_reads();
                let at = match self.clock {
                    Some((seen, time)) if seen == reads => ReceivedAt { time, fresh: false },
                    _ => {
                        let now = received_now();
                        self.clock = Some((reads, now.time));
                        now
                    }
                };
                self.tap.received_by_owner(&bytes, at);
                Ok(Some(bytes))
            }
            Ok(Some(Message::Close { code, reason })) => {
                tracing::debug!(
                    target: crate::CONN_LOG_TARGET,
                    conn_id = %self.tap.id,
                    code,
                    reason,
                    "server closed the connection"
                );
                self.drop_stream();
                Ok(None)
            }
            Ok(None) => {
                self.drop_stream();
                Ok(None)
            }
            Err(source) => {
                self.drop_stream();
                Err(ConnError::Ws {
                    conn_id: self.tap.id.clone(),
                    source: Box::new(source),
                })
            }
        }
    }

    /// The messages as a `Stream`, ending when the connection closes (after an error item if
    /// it failed).
    pub fn read(&mut self) -> impl Stream<Item = Result<Bytes, ConnError>> + Send + '_ {
        futures_util::stream::unfold((self, false), |(conn, done)| async move {
            if done {
                return None;
            }
            match conn.next().await {
                Ok(Some(bytes)) => Some((Ok(bytes), (conn, false))),
                Ok(None) => None,
                Err(error) => Some((Err(error), (conn, true))),
            }
        })
    }

    /// Closes the connection (close frame 1000, then the socket). Does nothing if not open.
    pub async fn close(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            // The peer may already be gone, or may have stopped reading: the close frame gets a
            // short bound, and the socket is dropped either way.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, stream.close(1000, "")).await;
        }
        self.tap.closed();
    }

    fn drop_stream(&mut self) {
        self.stream = None;
        self.tap.closed();
    }
}

fn check_address(id: &ConnId, url: &str) -> Result<(), ConnError> {
    let reason = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("wss") => {
            if rest.is_empty() || rest.starts_with('/') {
                Some("no host")
            } else {
                None
            }
        }
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("ws") => {
            Some("plain ws:// is not supported; use wss://")
        }
        _ => Some("a WebSocket connection needs a wss:// address"),
    };
    match reason {
        Some(reason) => Err(ConnError::InvalidAddress {
            conn_id: id.clone(),
            url: redact_url(url),
            reason,
        }),
        None => Ok(()),
    }
}
