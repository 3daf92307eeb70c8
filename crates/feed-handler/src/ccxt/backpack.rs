//! Backpack as a ccxt-family descriptor: markets from `GET /api/v1/markets`, trades from the
//! `trade.<SYMBOL>` streams.

use serde_json::{Map, Value, json};

use super::{CcxtFeed, ExchangeDescriptor, UnifiedMarket, UnifiedTrade};
use crate::error::ParseError;
use crate::json;
use crate::trade::Side;

/// Default REST base URL.
pub const DEFAULT_REST_URL: &str = "https://api.backpack.exchange";
/// Default WebSocket URL.
pub const DEFAULT_WS_URL: &str = "wss://ws.backpack.exchange";

/// The Backpack feed.
pub type BackpackFeed = CcxtFeed<Backpack>;

/// A Backpack feed for `symbols` in normalized form (`BTC-USDC`), against the public endpoints.
pub fn backpack(symbols: &[&str]) -> BackpackFeed {
    CcxtFeed::new(Backpack, symbols)
}

/// The Backpack exchange description.
///
/// Markets are the spot markets (`marketType` `SPOT`) of the top-level array, active when
/// `orderBookState` is `Open`; the tick size is `filters.price.tickSize`. Trades follow ccxt's
/// `parseWsTrade`, except that the time is `T` (the engine's trade time) rather than `E` (the
/// event time); both are microseconds, sent as integers or, in ccxt's samples, as strings.
/// Backpack documents no subscription ack, so every frame is either data or an error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backpack;

impl ExchangeDescriptor for Backpack {
    fn id(&self) -> &'static str {
        "backpack"
    }

    fn default_rest_url(&self) -> &'static str {
        DEFAULT_REST_URL
    }

    fn default_ws_url(&self) -> &'static str {
        DEFAULT_WS_URL
    }

    fn markets_path(&self) -> &'static str {
        "/api/v1/markets"
    }

    fn parse_markets(&self, body: &Value) -> Result<Vec<UnifiedMarket>, ParseError> {
        let rows = body
            .as_array()
            .ok_or_else(|| ParseError::Malformed("markets: not a JSON array".to_owned()))?;
        rows.iter()
            .map(|row| market(json::element(row, "markets")?))
            .collect()
    }

    fn subscribe_messages(&self, market_ids: &[&str]) -> Vec<String> {
        let params: Vec<String> = market_ids.iter().map(|id| format!("trade.{id}")).collect();
        vec![json!({"method": "SUBSCRIBE", "params": params}).to_string()]
    }

    fn parse_trade<'a>(
        &self,
        message: &'a Map<String, Value>,
    ) -> Result<Option<UnifiedTrade<'a>>, ParseError> {
        if let Some(error) = message.get("error") {
            return Err(ParseError::ExchangeError(error_text(error)));
        }
        let stream = json::str(message, "stream")?;
        if !stream.starts_with("trade.") {
            return Err(ParseError::UnknownEvent(ParseError::excerpt(stream)));
        }
        let data = json::object(message, "data")?;
        let event_type = json::str(data, "e")?;
        if event_type != "trade" {
            return Err(ParseError::UnknownEvent(ParseError::excerpt(event_type)));
        }
        // `m`: the buyer was the maker, so the taker sold.
        let side = if json::bool(data, "m")? {
            Side::Sell
        } else {
            Side::Buy
        };
        Ok(Some(UnifiedTrade {
            market_id: json::str(data, "s")?,
            side,
            amount: json::decimal(data, "q")?,
            price: json::decimal(data, "p")?,
            id: json::integer_id(data, "t")?,
            timestamp: json::micros_or_string(data, "T")?,
        }))
    }
}

/// One row of the markets listing.
fn market(row: &Map<String, Value>) -> Result<UnifiedMarket, ParseError> {
    let id = json::str(row, "symbol")?;
    let base = json::str(row, "baseSymbol")?;
    let quote = json::str(row, "quoteSymbol")?;
    let spot = json::str(row, "marketType")? == "SPOT";
    let status = json::str(row, "orderBookState")?;
    let symbol = if spot {
        format!("{base}/{quote}")
    } else {
        // ccxt's derivative form; Backpack's perpetuals settle in the quote currency.
        format!("{base}/{quote}:{quote}")
    };
    Ok(UnifiedMarket {
        id: id.to_owned(),
        symbol,
        base: base.to_owned(),
        quote: quote.to_owned(),
        active: status == "Open",
        spot,
        tick_size: tick_size(row)?,
        status: status.to_owned(),
    })
}

/// `filters.price.tickSize`; `None` when any level is absent or `null`.
fn tick_size(row: &Map<String, Value>) -> Result<Option<rust_decimal::Decimal>, ParseError> {
    let price = match row.get("filters") {
        None | Some(Value::Null) => return Ok(None),
        Some(_) => match json::object(row, "filters")?.get("price") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(price)) => price,
            Some(_) => {
                return Err(ParseError::WrongType {
                    field: "price",
                    expected: "an object",
                });
            }
        },
    };
    json::opt_decimal(price, "tickSize")
}

/// The text of an error frame: its `message` if it has one, else the error as JSON.
fn error_text(error: &Value) -> String {
    let text = match error {
        Value::String(text) => text.clone(),
        Value::Object(object) => match object.get("message") {
            Some(Value::String(text)) => text.clone(),
            _ => error.to_string(),
        },
        _ => error.to_string(),
    };
    ParseError::excerpt(&text)
}
