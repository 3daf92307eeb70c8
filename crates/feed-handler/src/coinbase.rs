//! The Coinbase Advanced Trade feed: `market_trades` over the public WebSocket, products from
//! the public REST market endpoint.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::error::{FeedError, ParseError};
use crate::feed::{Feed, Market, Markets, RestRequest, WsEndpoint};
use crate::json::{self, Object};
use crate::setup::FeedSetup;
use crate::trade::{Event, Side, Trade};

/// The exchange id, also the feed id.
const EXCHANGE: &str = "coinbase";
/// Default REST base URL.
pub const DEFAULT_REST_URL: &str = "https://api.coinbase.com";
/// Default WebSocket base URL.
pub const DEFAULT_WS_URL: &str = "wss://advanced-trade-ws.coinbase.com";
/// The metadata path under the REST base URL.
///
/// cryptofeed calls `/api/v3/brokerage/products`, which needs an API key (signed headers or a
/// JWT); the public `/api/v3/brokerage/market/products` returns the same
/// `{"products":[...],"num_products":N}` body without one, so a market-data feed needs no
/// credentials at all.
const PRODUCTS_PATH: &str = "/api/v3/brokerage/market/products";

/// Coinbase Advanced Trade trades (the `market_trades` channel, plus `heartbeats` so quiet
/// products do not get the connection closed after 60-90 s).
///
/// Trades of one `update` event are emitted oldest first: Coinbase lists a batch newest first
/// (descending `trade_id`, and descending `time` where the times differ), while every other
/// feed here delivers trades in the order they happened. cryptofeed emits them as listed.
/// `snapshot` events (recent trades sent right after subscribing) are ignored, as in cryptofeed.
#[derive(Debug, Clone)]
pub struct CoinbaseFeed {
    setup: FeedSetup,
}

impl CoinbaseFeed {
    /// A feed for `symbols` in normalized form (`BTC-USD`; case does not matter, duplicates are
    /// dropped), against the public Coinbase endpoints.
    pub fn new(symbols: &[&str]) -> Self {
        Self {
            setup: FeedSetup::new(
                EXCHANGE,
                symbols,
                DEFAULT_REST_URL,
                DEFAULT_WS_URL,
                PRODUCTS_PATH,
            ),
        }
    }

    /// Replaces the REST base URL (`https://host[:port]` or `http://`, no path); the feed
    /// appends `/api/v3/brokerage/market/products`.
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

    /// The symbols asked for, normalized, in the order given.
    pub fn symbols(&self) -> &[Arc<str>] {
        &self.setup.symbols
    }

    fn markets(&self, body: &Value) -> Result<Markets, FeedError> {
        let root = body.as_object().ok_or_else(|| {
            self.setup
                .metadata_error(ParseError::Malformed("not a JSON object".to_owned()))
        })?;
        let products =
            json::array(root, "products").map_err(|error| self.setup.metadata_error(error))?;
        let mut markets = Markets::new();
        for product in products {
            let product = json::element(product, "products")
                .map_err(|error| self.setup.metadata_error(error))?;
            if let Some(market) = self.market(product)? {
                json::insert_market(&mut markets, market)
                    .map_err(|error| self.setup.metadata_error(error))?;
            }
        }
        for symbol in &self.setup.symbols {
            if markets.by_symbol(symbol).is_none() {
                return Err(self.setup.unknown_symbol(symbol));
            }
        }
        Ok(markets)
    }

    /// One product: `None` if not requested, an error if requested but not online and enabled.
    fn market(&self, product: &Object) -> Result<Option<Market>, FeedError> {
        let metadata = |error| self.setup.metadata_error(error);
        // Futures and perpetuals share base and quote currencies with spot products
        // (`BTC-PERP-INTX` is BTC/USDC), so only spot products may match a normalized symbol.
        match product.get("product_type") {
            None => {}
            Some(_) if json::str(product, "product_type").map_err(metadata)? == "SPOT" => {}
            Some(_) => return Ok(None),
        }
        let base = json::str(product, "base_currency_id").map_err(metadata)?;
        let quote = json::str(product, "quote_currency_id").map_err(metadata)?;
        let normalized = format!("{base}-{quote}");
        let Some(symbol) = self
            .setup
            .symbols
            .iter()
            .find(|symbol| ***symbol == *normalized)
        else {
            return Ok(None);
        };
        let product_id = json::str(product, "product_id").map_err(metadata)?;
        let status = json::str(product, "status").map_err(metadata)?;
        let not_trading = if status != "online" {
            Some(ParseError::excerpt(status))
        } else if json::opt_bool(product, "trading_disabled").map_err(metadata)? {
            Some("online, trading_disabled".to_owned())
        } else if json::opt_bool(product, "is_disabled").map_err(metadata)? {
            Some("online, is_disabled".to_owned())
        } else {
            None
        };
        if let Some(status) = not_trading {
            return Err(FeedError::NotTrading {
                exchange: EXCHANGE.to_owned(),
                symbol: symbol.to_string(),
                status,
            });
        }
        Ok(Some(Market {
            exchange_symbol: Arc::from(product_id),
            symbol: Arc::clone(symbol),
            base: base.to_owned(),
            quote: quote.to_owned(),
            tick_size: json::opt_decimal(product, "quote_increment").map_err(metadata)?,
        }))
    }

    /// The trades of one `market_trades` event, appended oldest first.
    fn market_trades_event(
        &self,
        markets: &Markets,
        event: &Object,
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        match json::str(event, "type")? {
            "snapshot" => Ok(()),
            "update" => {
                // Listed newest first; see the type's doc.
                for trade in json::array(event, "trades")?.iter().rev() {
                    let trade = json::element(trade, "trades")?;
                    events.push(Event::Trade(self.trade(markets, trade)?));
                }
                Ok(())
            }
            other => Err(ParseError::UnknownEvent(format!(
                "market_trades/{}",
                ParseError::excerpt(other)
            ))),
        }
    }

    fn trade(&self, markets: &Markets, trade: &Object) -> Result<Trade, ParseError> {
        let product_id = json::str(trade, "product_id")?;
        let market = markets
            .by_exchange_symbol(product_id)
            .ok_or_else(|| ParseError::UnknownSymbol(ParseError::excerpt(product_id)))?;
        // Advanced Trade reports the taker's side (the legacy feed's `match.side` was the maker's).
        let side = match json::str(trade, "side")? {
            "BUY" => Side::Buy,
            "SELL" => Side::Sell,
            other => {
                return Err(ParseError::InvalidSide {
                    field: "side",
                    value: ParseError::excerpt(other),
                });
            }
        };
        Ok(Trade {
            exchange: Arc::clone(&self.setup.exchange),
            symbol: Arc::clone(&market.symbol),
            side,
            amount: json::decimal(trade, "size")?,
            price: json::decimal(trade, "price")?,
            id: json::str(trade, "trade_id")?.to_owned(),
            timestamp: json::rfc3339(trade, "time")?,
        })
    }

    fn parse_frame(
        &self,
        markets: &Markets,
        frame: &Object,
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        if frame.get("type").and_then(Value::as_str) == Some("error") {
            let message = match frame.get("message") {
                Some(Value::String(message)) => ParseError::excerpt(message),
                _ => ParseError::excerpt(&serde_json::to_string(frame).unwrap_or_default()),
            };
            return Err(ParseError::ExchangeError(message));
        }
        match json::str(frame, "channel")? {
            "subscriptions" | "heartbeats" => Ok(()),
            "market_trades" => {
                for event in json::array(frame, "events")? {
                    let event = json::element(event, "events")?;
                    self.market_trades_event(markets, event, events)?;
                }
                Ok(())
            }
            other => Err(ParseError::UnknownEvent(ParseError::excerpt(other))),
        }
    }
}

impl Feed for CoinbaseFeed {
    fn id(&self) -> &str {
        EXCHANGE
    }

    fn exchange(&self) -> &str {
        EXCHANGE
    }

    /// `GET {rest}/api/v3/brokerage/market/products` (public; see [`CoinbaseFeed`]).
    fn metadata_requests(&self) -> Vec<RestRequest> {
        self.setup.metadata_requests()
    }

    /// Markets for the requested symbols among the spot products (`product_type` `SPOT`),
    /// matched on `base_currency_id-quote_currency_id`; the
    /// exchange symbol is `product_id`, the tick size `quote_increment`. A requested product
    /// that is not `online`, or is `trading_disabled` or `is_disabled`, fails with
    /// [`FeedError::NotTrading`]. `-USDC` products that Coinbase serves as `-USD` data
    /// (`alias_to`) are not listed as products, so asking for them fails with
    /// [`FeedError::UnknownSymbol`].
    fn parse_metadata(&self, bodies: &[Bytes]) -> Result<Markets, FeedError> {
        self.markets(&self.setup.metadata_document(bodies)?)
    }

    /// One connection to the WebSocket base URL with one subscribe message per channel
    /// (`market_trades`, then `heartbeats`), as Coinbase requires within 5 s of connecting.
    fn ws_endpoints(&self, markets: &Markets) -> Result<Vec<WsEndpoint>, FeedError> {
        let product_ids = self.setup.exchange_symbols(markets)?;
        let subscribe = ["market_trades", "heartbeats"]
            .into_iter()
            .map(|channel| {
                json!({"type": "subscribe", "product_ids": product_ids, "channel": channel})
                    .to_string()
            })
            .collect();
        Ok(vec![WsEndpoint {
            url: self.setup.ws_url.clone(),
            subscribe,
        }])
    }

    /// `market_trades` `update` events yield trades (oldest first); `snapshot` events and the
    /// `subscriptions` and `heartbeats` channels yield nothing; `{"type":"error"}` frames are
    /// [`ParseError::ExchangeError`], other channels [`ParseError::UnknownEvent`]. On error
    /// nothing is appended, even if earlier trades of the message were valid.
    fn parse(
        &self,
        markets: &Markets,
        message: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        let frame = json::parse_object(message)?;
        let start = events.len();
        let parsed = self.parse_frame(markets, &frame, events);
        if parsed.is_err() {
            events.truncate(start);
        }
        parsed
    }
}
