//! The `Feed` trait: what an exchange integration describes (metadata requests, WebSocket
//! endpoints and subscriptions, message parsing), with no I/O; `FeedHandler` does the I/O.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;

use crate::error::{FeedError, ParseError};
use crate::trade::Event;

/// One GET request of the metadata prefetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestRequest {
    /// Absolute `https://` (or `http://`) URL, query included.
    pub url: String,
}

/// One WebSocket connection a feed opens, and what it sends right after connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsEndpoint {
    /// The `wss://` address, path and query included.
    pub url: String,
    /// Text messages sent in order once connected (and again after every reconnect).
    pub subscribe: Vec<String>,
}

/// A market as the prefetch found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    /// The exchange's own symbol (`BTCUSDT`, `BTC-USD`, `BTC_USDC`).
    pub exchange_symbol: Arc<str>,
    /// The normalized symbol (`BTC-USDT`).
    pub symbol: Arc<str>,
    /// Base currency (`BTC`).
    pub base: String,
    /// Quote currency (`USDT`).
    pub quote: String,
    /// Price increment, when the exchange publishes one.
    pub tick_size: Option<Decimal>,
}

/// The markets a feed trades, by exchange symbol and by normalized symbol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markets {
    by_exchange: HashMap<Arc<str>, Market>,
    by_symbol: HashMap<Arc<str>, Arc<str>>,
}

impl Markets {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `market` (a later one with the same symbols replaces an earlier one).
    pub fn insert(&mut self, market: Market) {
        self.by_symbol.insert(
            Arc::clone(&market.symbol),
            Arc::clone(&market.exchange_symbol),
        );
        self.by_exchange
            .insert(Arc::clone(&market.exchange_symbol), market);
    }

    /// The market with this exchange symbol.
    pub fn by_exchange_symbol(&self, exchange_symbol: &str) -> Option<&Market> {
        self.by_exchange.get(exchange_symbol)
    }

    /// The market with this normalized symbol (`BTC-USDT`).
    pub fn by_symbol(&self, symbol: &str) -> Option<&Market> {
        self.by_symbol
            .get(symbol)
            .and_then(|exchange_symbol| self.by_exchange.get(&**exchange_symbol))
    }

    /// How many markets.
    pub fn len(&self) -> usize {
        self.by_exchange.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_exchange.is_empty()
    }

    /// Every market, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Market> + '_ {
        self.by_exchange.values()
    }
}

/// An exchange integration: pure description and parsing. [`crate::FeedHandler`] runs it: GETs
/// [`Feed::metadata_requests`] over an `HttpConn`, hands the bodies to [`Feed::parse_metadata`],
/// opens a `WsConn` per [`Feed::ws_endpoints`] entry, sends its subscribe messages, and passes
/// every message received to [`Feed::parse`]. Routing happens in the connections, so a feed
/// never mentions proxies.
pub trait Feed: Send + Sync + 'static {
    /// The feed id, the prefix of its connection ids (`binance` -> `binance.ws.0`).
    fn id(&self) -> &str;

    /// The exchange id whose proxy routes apply (lower case).
    fn exchange(&self) -> &str;

    /// The metadata prefetch: GET requests run in order before streaming.
    fn metadata_requests(&self) -> Vec<RestRequest>;

    /// Builds the market table from the prefetch bodies (same order as the requests). Fails
    /// when a body is malformed or a symbol the feed was asked for is not listed (or not
    /// trading).
    fn parse_metadata(&self, bodies: &[Bytes]) -> Result<Markets, FeedError>;

    /// The WebSocket connections to open for the subscribed symbols.
    fn ws_endpoints(&self, markets: &Markets) -> Result<Vec<WsEndpoint>, FeedError>;

    /// Parses one text message, appending the events it carries to `events`. Acks, heartbeats
    /// and snapshots the feed ignores append nothing and return `Ok`.
    fn parse(
        &self,
        markets: &Markets,
        message: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError>;
}
