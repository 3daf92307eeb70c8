//! The fake Backpack: `GET /api/v1/markets`, and `trade.<SYMBOL>` streams on `/` after a
//! `SUBSCRIBE`, templated from the Backpack fixtures.

use std::sync::Arc;

use super::json::Json;
use super::num::Decimal;
use super::{
    ExchangeFixture, RestRoutes, SentTrade, Venue, amount_factor, field_decimal, field_i64,
    field_str, jsonl, price_steps, request_id, strings, taker_sells, taker_side,
};
use crate::wss::{Outbox, WssSession};

const REST_PATH: &str = "/api/v1/markets";
const REST_BODY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/backpack/rest-response.json"
));
const WS_MESSAGES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/backpack/ws-messages.jsonl"
));

const STREAM_PREFIX: &str = "trade.";

/// Microseconds of exchange time between trade `k` and `k + 1`.
const MICROS_PER_TRADE: i64 = 137_311;

/// How far apart the order ids `a` and `b` of consecutive trades are.
const SELL_ORDER_STEP: i64 = 7_919;
const BUY_ORDER_STEP: i64 = 104_729;

#[derive(Debug)]
pub(super) struct Fixture {
    /// Markets whose order book is `Open`, in REST order.
    markets: Vec<Market>,
    /// `t` and `T` (µs) of the first fixture trade: id and time of trade 0.
    first_id: i64,
    first_time_micros: i64,
}

#[derive(Debug)]
struct Market {
    symbol: String,
    stream: String,
    template: Json,
    price: Decimal,
    amount: Decimal,
    first_sell_order: i64,
    first_buy_order: i64,
    event_lag_micros: i64,
}

impl Market {
    fn new(symbol: &str, template: &Json) -> Result<Self, String> {
        let order = |key: &str| -> Result<i64, String> {
            let text = field_str(template, &["data", key])?;
            text.parse()
                .map_err(|_| format!("backpack: order id {key} {text:?} is not an integer"))
        };
        Ok(Self {
            symbol: symbol.to_owned(),
            stream: format!("{STREAM_PREFIX}{symbol}"),
            template: template.clone(),
            price: field_decimal(template, &["data", "p"])?.trimmed(),
            amount: field_decimal(template, &["data", "q"])?.trimmed(),
            first_sell_order: order("a")?,
            first_buy_order: order("b")?,
            event_lag_micros: field_i64(template, &["data", "E"])?
                - field_i64(template, &["data", "T"])?,
        })
    }
}

impl Fixture {
    fn market_of(&self, stream: &str) -> Option<usize> {
        self.markets.iter().position(|m| m.stream == stream)
    }

    /// The stream message of trade number `k` on `market`, and its record.
    fn trade(&self, market: &Market, k: i64, connection: usize) -> (String, SentTrade) {
        let id = self.first_id + k;
        let micros = self.first_time_micros + MICROS_PER_TRADE * k;
        let sells = taker_sells(k);
        let price = market.price.step(price_steps(k)).plain();
        let amount = market.amount.times(amount_factor(k)).plain();
        let mut message = market.template.clone();
        if let Some(data) = message.get_mut("data") {
            data.set("E", Json::int(micros + market.event_lag_micros));
            data.set("T", Json::int(micros));
            let sell_order = market.first_sell_order + SELL_ORDER_STEP * k;
            data.set("a", Json::str(sell_order.to_string()));
            let buy_order = market.first_buy_order + BUY_ORDER_STEP * k;
            data.set("b", Json::str(buy_order.to_string()));
            data.set("m", Json::Bool(sells));
            data.set("p", Json::str(&price));
            data.set("q", Json::str(&amount));
            data.set("s", Json::str(&market.symbol));
            data.set("t", Json::int(id));
        }
        message.set("stream", Json::str(&market.stream));
        let sent = SentTrade {
            connection,
            exchange_symbol: market.symbol.clone(),
            id: id.to_string(),
            price,
            amount,
            taker_side: taker_side(sells),
            timestamp_unix_nanos: micros * 1000,
        };
        (message.to_json(), sent)
    }
}

impl ExchangeFixture for Fixture {
    fn load() -> Result<Self, String> {
        let rest = Json::parse(REST_BODY).map_err(|e| format!("backpack rest-response: {e}"))?;
        let lines = jsonl(WS_MESSAGES)?;
        let first = &lines[0];
        let rows = rest
            .as_array()
            .ok_or("backpack: /api/v1/markets is not an array")?;
        let mut markets = Vec::new();
        for row in rows {
            if field_str(row, &["orderBookState"])? != "Open" {
                continue;
            }
            let symbol = field_str(row, &["symbol"])?;
            let template = lines
                .iter()
                .find(|l| field_str(l, &["data", "s"]).ok() == Some(symbol))
                .unwrap_or(first);
            markets.push(Market::new(symbol, template)?);
        }
        Ok(Self {
            markets,
            first_id: field_i64(first, &["data", "t"])?,
            first_time_micros: field_i64(first, &["data", "T"])?,
        })
    }

    fn rest(&self) -> RestRoutes {
        vec![(REST_PATH, REST_BODY)]
    }

    fn open(
        venue: &Arc<Venue<Self>>,
        connection: usize,
        _target: &str,
        _out: &mut Outbox,
    ) -> Box<dyn WssSession> {
        Box::new(Session {
            venue: Arc::clone(venue),
            connection,
            markets: Vec::new(),
            started: false,
            sent: 0,
        })
    }
}

/// One Backpack connection.
struct Session {
    venue: Arc<Venue<Fixture>>,
    connection: usize,
    /// Subscribed markets in subscription order.
    markets: Vec<usize>,
    started: bool,
    sent: usize,
}

impl Session {
    /// Applies one request; `Err` carries the error reply.
    fn request(&mut self, text: &str, out: &mut Outbox) -> Result<(), Json> {
        let request =
            Json::parse(text).map_err(|_| error("feed-sim backpack: not JSON", Json::Null))?;
        let id = request_id(&request);
        let method = request.get("method").and_then(Json::as_str);
        if !matches!(method, Some("SUBSCRIBE" | "UNSUBSCRIBE")) {
            let why = format!("feed-sim backpack: unsupported method {method:?}");
            return Err(error(&why, id));
        }
        let streams = strings(request.get("params"))
            .ok_or_else(|| error("feed-sim backpack: params must be stream names", id.clone()))?;
        let mut markets = Vec::new();
        for stream in &streams {
            match self.venue.fixture.market_of(stream) {
                Some(market) => markets.push(market),
                None => {
                    let why = format!("feed-sim backpack: unknown stream {stream:?}");
                    return Err(error(&why, id));
                }
            }
        }
        if method == Some("UNSUBSCRIBE") {
            self.markets.retain(|m| !markets.contains(m));
            return Ok(());
        }
        for market in markets {
            if !self.markets.contains(&market) {
                self.markets.push(market);
            }
        }
        if !self.started && !self.markets.is_empty() {
            self.started = true;
            out.start_ticks(self.venue.trades_per_connection, self.venue.interval);
        }
        Ok(())
    }
}

/// An error reply (the official client treats any frame with `error` as one).
fn error(message: &str, id: Json) -> Json {
    Json::object([
        (
            "error",
            Json::object([("code", Json::int(400)), ("message", Json::str(message))]),
        ),
        ("id", id),
    ])
}

impl WssSession for Session {
    fn on_text(&mut self, text: &str, out: &mut Outbox) {
        if let Err(reply) = self.request(text, out) {
            out.text(reply.to_json());
        }
    }

    fn on_tick(&mut self, _tick: usize, out: &mut Outbox) {
        let fixture = &self.venue.fixture;
        let Some(market) = self
            .markets
            .get(self.sent % self.markets.len().max(1))
            .and_then(|&m| fixture.markets.get(m))
        else {
            return;
        };
        self.sent += 1;
        let connection = self.connection;
        let message = self.venue.ledger.issue(1, |k| {
            let (message, sent) = fixture.trade(market, k, connection);
            (message, vec![sent])
        });
        out.text(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_one_varies_the_fixture_in_its_key_order() {
        let fixture = Fixture::load().expect("fixture");
        assert_eq!(
            fixture
                .markets
                .iter()
                .map(|m| m.symbol.as_str())
                .collect::<Vec<_>>(),
            ["BTC_USDC", "ETH_USDC", "SOL_USDC_PERP"]
        );
        let (message, sent) = fixture.trade(&fixture.markets[1], 2, 3);
        assert_eq!(
            message,
            r#"{"data":{"E":1754601478019545,"T":1754601478018622,"a":"114987301501959646","b":"114987301514736178","e":"trade","m":true,"p":"3870.22","q":"0.0024","s":"ETH_USDC","t":24361722},"stream":"trade.ETH_USDC"}"#
        );
        assert_eq!(sent.taker_side, "sell");
        assert_eq!(sent.timestamp_unix_nanos, 1_754_601_478_018_622_000);
    }
}
