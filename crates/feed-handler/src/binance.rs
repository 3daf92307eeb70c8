//! The Binance spot feed: aggregate trades from combined streams, markets from `exchangeInfo`.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{FeedError, ParseError};
use crate::feed::{Feed, Market, Markets, RestRequest, WsEndpoint};
use crate::json::{self, Object};
use crate::setup::FeedSetup;
use crate::trade::{Event, Side, Trade};

/// The exchange id, also the feed id.
const EXCHANGE: &str = "binance";
/// Default REST base URL.
pub const DEFAULT_REST_URL: &str = "https://api.binance.com";
/// Default WebSocket base URL.
pub const DEFAULT_WS_URL: &str = "wss://stream.binance.com:9443";
/// The metadata path under the REST base URL.
const EXCHANGE_INFO_PATH: &str = "/api/v3/exchangeInfo";
/// Streams per combined-stream URL. Binance accepts up to 1024 per connection; cryptofeed
/// splits at 200, and so does this feed, which bounds each URL's length and each connection's
/// message rate.
pub const MAX_STREAMS_PER_URL: usize = 200;

/// Binance spot trades (`aggTrade` streams, as cryptofeed subscribes them).
///
/// The subscription is in the URL (`/stream?streams=btcusdt@aggTrade/...`), so no subscribe
/// message is sent. Binance pings every 20 s; answering is the connection's job, not the feed's.
#[derive(Debug, Clone)]
pub struct BinanceFeed {
    setup: FeedSetup,
}

impl BinanceFeed {
    /// A feed for `symbols` in normalized form (`BTC-USDT`; case does not matter, duplicates are
    /// dropped), against the public Binance endpoints.
    pub fn new(symbols: &[&str]) -> Self {
        Self {
            setup: FeedSetup::new(
                EXCHANGE,
                symbols,
                DEFAULT_REST_URL,
                DEFAULT_WS_URL,
                EXCHANGE_INFO_PATH,
            ),
        }
    }

    /// Replaces the REST base URL (`https://host[:port]` or `http://`, no path); the feed
    /// appends `/api/v3/exchangeInfo`.
    pub fn with_rest_url(mut self, base: &str) -> Result<Self, FeedError> {
        self.setup.set_rest_url(base)?;
        Ok(self)
    }

    /// Replaces the WebSocket base URL (`wss://host[:port]`, no path); the feed appends
    /// `/stream?streams=...`.
    pub fn with_ws_url(mut self, base: &str) -> Result<Self, FeedError> {
        self.setup.set_ws_url(base)?;
        Ok(self)
    }

    /// The symbols asked for, normalized, in the order given.
    pub fn symbols(&self) -> &[Arc<str>] {
        &self.setup.symbols
    }

    /// Reads the `symbols` rows of `exchangeInfo`, keeping the requested ones.
    fn markets(&self, body: &serde_json::Value) -> Result<Markets, FeedError> {
        let root = body.as_object().ok_or_else(|| {
            self.setup
                .metadata_error(ParseError::Malformed("not a JSON object".to_owned()))
        })?;
        let rows =
            json::array(root, "symbols").map_err(|error| self.setup.metadata_error(error))?;
        let mut markets = Markets::new();
        for row in rows {
            let row =
                json::element(row, "symbols").map_err(|error| self.setup.metadata_error(error))?;
            if let Some(market) = self.market(row)? {
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

    /// One `symbols` row: `None` if not requested, an error if requested but not trading.
    fn market(&self, row: &Object) -> Result<Option<Market>, FeedError> {
        let metadata = |error| self.setup.metadata_error(error);
        let base = json::str(row, "baseAsset").map_err(metadata)?;
        let quote = json::str(row, "quoteAsset").map_err(metadata)?;
        let normalized = format!("{base}-{quote}");
        let Some(symbol) = self
            .setup
            .symbols
            .iter()
            .find(|symbol| ***symbol == *normalized)
        else {
            return Ok(None);
        };
        let exchange_symbol = json::str(row, "symbol").map_err(metadata)?;
        let status = json::str(row, "status").map_err(metadata)?;
        if status != "TRADING" {
            return Err(FeedError::NotTrading {
                exchange: EXCHANGE.to_owned(),
                symbol: symbol.to_string(),
                status: ParseError::excerpt(status),
            });
        }
        Ok(Some(Market {
            exchange_symbol: Arc::from(exchange_symbol),
            symbol: Arc::clone(symbol),
            base: base.to_owned(),
            quote: quote.to_owned(),
            tick_size: tick_size(row).map_err(metadata)?,
        }))
    }

    fn trade(&self, markets: &Markets, data: &Object) -> Result<Trade, ParseError> {
        let exchange_symbol = json::str(data, "s")?;
        let market = markets
            .by_exchange_symbol(exchange_symbol)
            .ok_or_else(|| ParseError::UnknownSymbol(ParseError::excerpt(exchange_symbol)))?;
        // `m`: the buyer was the maker, so the taker sold.
        let side = if json::bool(data, "m")? {
            Side::Sell
        } else {
            Side::Buy
        };
        Ok(Trade {
            exchange: Arc::clone(&self.setup.exchange),
            symbol: Arc::clone(&market.symbol),
            side,
            amount: json::decimal(data, "q")?,
            price: json::decimal(data, "p")?,
            id: json::integer_id(data, "a")?,
            timestamp: json::millis(data, "T")?,
        })
    }
}

/// `tickSize` of the `PRICE_FILTER` filter, wherever it sits in `filters` (cryptofeed reads
/// `filters[0]`); `None` when the row has no price filter.
fn tick_size(row: &Object) -> Result<Option<rust_decimal::Decimal>, ParseError> {
    let Some(filters) = row.get("filters") else {
        return Ok(None);
    };
    let filters = filters.as_array().ok_or(ParseError::WrongType {
        field: "filters",
        expected: "an array",
    })?;
    for filter in filters {
        let filter = json::element(filter, "filters")?;
        if filter.get("filterType").and_then(|kind| kind.as_str()) == Some("PRICE_FILTER") {
            return json::decimal(filter, "tickSize").map(Some);
        }
    }
    Ok(None)
}

impl Feed for BinanceFeed {
    fn id(&self) -> &str {
        EXCHANGE
    }

    fn exchange(&self) -> &str {
        EXCHANGE
    }

    /// `GET {rest}/api/v3/exchangeInfo` (all symbols, weight 20).
    fn metadata_requests(&self) -> Vec<RestRequest> {
        self.setup.metadata_requests()
    }

    /// Markets for the requested symbols, matched on `baseAsset-quoteAsset`; a requested
    /// symbol whose `status` is not `TRADING` fails with [`FeedError::NotTrading`]. Rows that
    /// were not requested are not checked beyond their assets.
    fn parse_metadata(&self, bodies: &[Bytes]) -> Result<Markets, FeedError> {
        self.markets(&self.setup.metadata_document(bodies)?)
    }

    /// One combined-stream URL per [`MAX_STREAMS_PER_URL`] symbols, streams in the order the
    /// symbols were given, no subscribe message.
    fn ws_endpoints(&self, markets: &Markets) -> Result<Vec<WsEndpoint>, FeedError> {
        let streams: Vec<String> = self
            .setup
            .exchange_symbols(markets)?
            .into_iter()
            .map(|symbol| format!("{}@aggTrade", symbol.to_ascii_lowercase()))
            .collect();
        Ok(streams
            .chunks(MAX_STREAMS_PER_URL)
            .map(|chunk| WsEndpoint {
                url: format!("{}/stream?streams={}", self.setup.ws_url, chunk.join("/")),
                subscribe: Vec::new(),
            })
            .collect())
    }

    /// Accepts combined-stream frames (`{"stream":..,"data":{..}}`) and raw event frames; an
    /// `aggTrade` event yields one trade (the symbol comes from `data.s`), a `SUBSCRIBE` reply
    /// (`{"result":null,"id":1}`) yields nothing, an error reply is
    /// [`ParseError::ExchangeError`], any other event type is [`ParseError::UnknownEvent`].
    fn parse(
        &self,
        markets: &Markets,
        message: &[u8],
        events: &mut Vec<Event>,
    ) -> Result<(), ParseError> {
        let frame = json::parse_object(message)?;
        if let Some(error) = frame.get("error") {
            return Err(ParseError::ExchangeError(error_text(error)));
        }
        if let (Some(code), Some(text)) = (frame.get("code"), frame.get("msg")) {
            return Err(ParseError::ExchangeError(format!(
                "{} (code {})",
                error_text(text),
                ParseError::excerpt(&code.to_string())
            )));
        }
        let data = match frame.get("data") {
            Some(_) => json::object(&frame, "data")?,
            None if frame.contains_key("result") => return Ok(()),
            None if frame.contains_key("e") => &frame,
            None => return Err(ParseError::MissingField("data")),
        };
        let event_type = json::str(data, "e")?;
        if event_type != "aggTrade" {
            return Err(ParseError::UnknownEvent(ParseError::excerpt(event_type)));
        }
        events.push(Event::Trade(self.trade(markets, data)?));
        Ok(())
    }
}

/// The text of an error reply: `msg` of an object, a string as is, anything else as JSON.
fn error_text(error: &serde_json::Value) -> String {
    let text = match error {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Object(object) => match object.get("msg") {
            Some(serde_json::Value::String(text)) => text.clone(),
            _ => error.to_string(),
        },
        _ => error.to_string(),
    };
    ParseError::excerpt(&text)
}
