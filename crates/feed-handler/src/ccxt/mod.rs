//! The ccxt-style adapter family: an exchange is described by an [`ExchangeDescriptor`] that
//! maps its wire formats to ccxt's unified shapes ([`UnifiedMarket`], [`UnifiedTrade`]), and one
//! generic [`CcxtFeed`] turns any descriptor into a [`Feed`].
//!
//! Adding an exchange means writing a descriptor (as ccxt subclasses `Exchange` with
//! `parseMarket` and `parseWsTrade`), not a feed: metadata checks, symbol normalization
//! (`BTC/USDC` -> `BTC-USDC`), endpoints and error handling are shared.

pub mod backpack;

use std::sync::Arc;

use bytes::Bytes;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::error::{FeedError, ParseError};
use crate::feed::{Feed, Market, Markets, RestRequest, WsEndpoint};
use crate::json;
use crate::setup::FeedSetup;
use crate::trade::{Event, Side, Timestamp, Trade};

pub use backpack::{Backpack, BackpackFeed, backpack};

/// A market in ccxt's unified shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedMarket {
    /// The exchange's market id (`BTC_USDC`), used on the wire.
    pub id: String,
    /// The unified symbol (`BTC/USDC`; ccxt writes derivatives `BASE/QUOTE:SETTLE`).
    pub symbol: String,
    /// Base currency (`BTC`).
    pub base: String,
    /// Quote currency (`USDC`).
    pub quote: String,
    /// Whether the market accepts orders now.
    pub active: bool,
    /// Whether it is a spot market.
    pub spot: bool,
    /// Price increment, when the exchange publishes one.
    pub tick_size: Option<Decimal>,
    /// The exchange's own state text (`Open`, `Closed`), quoted when a market is not active.
    pub status: String,
}

/// One trade in ccxt's unified shape, borrowing the market id from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedTrade<'a> {
    /// The exchange's market id (`BTC_USDC`), as in [`UnifiedMarket::id`].
    pub market_id: &'a str,
    /// The taker's side.
    pub side: Side,
    /// The traded quantity in the base currency, exact.
    pub amount: Decimal,
    /// The price in the quote currency, exact.
    pub price: Decimal,
    /// The exchange's trade id, as text.
    pub id: String,
    /// When the exchange says the trade happened.
    pub timestamp: Timestamp,
}

/// What an exchange of the ccxt family must describe. Implementations are pure: no I/O, no
/// panics on any input.
pub trait ExchangeDescriptor: Send + Sync + 'static {
    /// The exchange id, lower case (`backpack`); also the feed id.
    fn id(&self) -> &'static str;

    /// The default REST base URL (`https://api.backpack.exchange`).
    fn default_rest_url(&self) -> &'static str;

    /// The default WebSocket URL (`wss://ws.backpack.exchange`).
    fn default_ws_url(&self) -> &'static str;

    /// The path of the markets listing under the REST base URL (`/api/v1/markets`).
    fn markets_path(&self) -> &'static str;

    /// Every market of the markets listing body, spot or not, active or not.
    fn parse_markets(&self, body: &Value) -> Result<Vec<UnifiedMarket>, ParseError>;

    /// The messages that subscribe to the trades of `market_ids`, sent in order after
    /// connecting.
    fn subscribe_messages(&self, market_ids: &[&str]) -> Vec<String>;

    /// The trade a WebSocket message carries: `Ok(None)` for messages that carry none (acks,
    /// heartbeats), [`ParseError::ExchangeError`] for error replies,
    /// [`ParseError::UnknownEvent`] for streams the descriptor does not handle.
    fn parse_trade<'a>(
        &self,
        message: &'a Map<String, Value>,
    ) -> Result<Option<UnifiedTrade<'a>>, ParseError>;
}

/// A [`Feed`] for any [`ExchangeDescriptor`]: trades of the requested spot markets over one
/// WebSocket connection.
#[derive(Debug, Clone)]
pub struct CcxtFeed<D> {
    descriptor: D,
    setup: FeedSetup,
}

impl<D: ExchangeDescriptor> CcxtFeed<D> {
    /// A feed for `symbols` in normalized form (`BTC-USDC`; case does not matter, duplicates
    /// are dropped), against the descriptor's default endpoints.
    pub fn new(descriptor: D, symbols: &[&str]) -> Self {
        Self {
            setup: FeedSetup::new(
                descriptor.id(),
                symbols,
                descriptor.default_rest_url(),
                descriptor.default_ws_url(),
                descriptor.markets_path(),
            ),
            descriptor,
        }
    }

    /// Replaces the REST base URL (`https://host[:port]` or `http://`, no path); the feed
    /// appends the descriptor's markets path.
    pub fn with_rest_url(mut self, base: &str) -> Result<Self, FeedError> {
        self.setup.set_rest_url(base)?;
        Ok(self)
    }

    /// Replaces the WebSocket base URL (`wss://host[:port]`, no path); the feed connects to it
    /// as is (the connection requests `/`).
    pub fn with_ws_url(mut self, base: &str) -> Result<Self, FeedError> {
        self.setup.set_ws_url(base)?;
        Ok(self)
    }

    /// The exchange description.
    pub fn descriptor(&self) -> &D {
        &self.descriptor
    }

    /// The symbols asked for, normalized, in the order given.
    pub fn symbols(&self) -> &[Arc<str>] {
        &self.setup.symbols
    }

    fn parse_message(
        &self,
        markets: &Markets,
        message: &[u8],
    ) -> Result<Option<Trade>, ParseError> {
        let message = json::parse_object(message)?;
        let Some(trade) = self.descriptor.parse_trade(&message)? else {
            return Ok(None);
        };
        let market = markets
            .by_exchange_symbol(trade.market_id)
            .ok_or_else(|| ParseError::UnknownSymbol(ParseError::excerpt(trade.market_id)))?;
        Ok(Some(Trade {
            exchange: Arc::clone(&self.setup.exchange),
            symbol: Arc::clone(&market.symbol),
            side: trade.side,
            amount: trade.amount,
            price: trade.price,
            id: trade.id,
            timestamp: trade.timestamp,
        }))
    }
}

/// The normalized form of a unified symbol: `BTC/USDC` -> `BTC-USDC`.
fn normalize_unified(symbol: &str) -> String {
    symbol.replace('/', "-").to_ascii_uppercase()
}

impl<D: ExchangeDescriptor> Feed for CcxtFeed<D> {
    fn id(&self) -> &str {
        self.descriptor.id()
    }

    fn exchange(&self) -> &str {
        self.descriptor.id()
    }

    /// `GET {rest}{markets_path}`.
    fn metadata_requests(&self) -> Vec<RestRequest> {
        self.setup.metadata_requests()
    }

    /// Markets for the requested symbols among the spot markets the descriptor lists; a
    /// requested market that is not active fails with [`FeedError::NotTrading`], one that is
    /// not a listed spot market with [`FeedError::UnknownSymbol`].
    fn parse_metadata(&self, bodies: &[Bytes]) -> Result<Markets, FeedError> {
        let exchange = self.descriptor.id();
        let body = self.setup.metadata_document(bodies)?;
        let metadata = |error| self.setup.metadata_error(error);
        let unified = self.descriptor.parse_markets(&body).map_err(metadata)?;
        let mut markets = Markets::new();
        for market in unified.into_iter().filter(|market| market.spot) {
            let normalized = normalize_unified(&market.symbol);
            let Some(symbol) = self
                .setup
                .symbols
                .iter()
                .find(|symbol| ***symbol == *normalized)
            else {
                continue;
            };
            if !market.active {
                return Err(FeedError::NotTrading {
                    exchange: exchange.to_owned(),
                    symbol: symbol.to_string(),
                    status: ParseError::excerpt(&market.status),
                });
            }
            let market = Market {
                exchange_symbol: Arc::from(market.id),
                symbol: Arc::clone(symbol),
                base: market.base,
                quote: market.quote,
                tick_size: market.tick_size,
            };
            json::insert_market(&mut markets, market).map_err(metadata)?;
        }
        match self
            .setup
            .symbols
            .iter()
            .find(|symbol| markets.by_symbol(symbol).is_none())
        {
            Some(missing) => Err(self.setup.unknown_symbol(missing)),
            None => Ok(markets),
        }
    }

    /// One connection to the WebSocket base URL, with the descriptor's subscribe messages for
    /// the requested markets in the order the symbols were given.
    fn ws_endpoints(&self, markets: &Markets) -> Result<Vec<WsEndpoint>, FeedError> {
        let market_ids = self.setup.exchange_symbols(markets)?;
        Ok(vec![WsEndpoint {
            url: self.setup.ws_url.clone(),
            subscribe: self.descriptor.subscribe_messages(&market_ids),
        }])
    }

    /// At most one trade per message, through [`ExchangeDescriptor::parse_trade`]; a market id
    /// not in `markets` is [`ParseError::UnknownSymbol`].
    fn parse(
        &self,
        markets: &Markets,
        message: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        if let Some(trade) = self.parse_message(markets, message)? {
            events.push(Event::Trade(trade));
        }
        Ok(())
    }
}
