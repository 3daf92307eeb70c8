//! The fake Binance spot: `GET /api/v3/exchangeInfo`, and combined `aggTrade` streams subscribed
//! in the URL (`/stream?streams=btcusdt@aggTrade/...`), templated from the Binance fixtures.

use std::sync::Arc;

use percent_encoding::percent_decode_str;

use super::json::Json;
use super::num::Decimal;
use super::{
    ExchangeFixture, RestRoutes, SentTrade, Venue, amount_factor, field, field_decimal, field_i64,
    field_str, jsonl, price_steps, request_id, strings, taker_sells, taker_side,
};
use crate::wss::{Outbox, WssSession};

const REST_PATH: &str = "/api/v3/exchangeInfo";
const REST_BODY: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/binance/rest-response.json"
));
const WS_MESSAGES: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/exchanges/binance/ws-messages.jsonl"
));

/// The only stream kind served (cryptofeed's choice): `<symbol>@aggTrade`.
const STREAM_SUFFIX: &str = "@aggTrade";

/// Milliseconds of exchange time between trade `k` and `k + 1`.
const MS_PER_TRADE: i64 = 137;

/// The close code for a subscription the fake refuses in the URL.
const POLICY_VIOLATION: u16 = 1008;

#[derive(Debug)]
pub(super) struct Fixture {
    /// Symbols with status `TRADING`, in exchangeInfo order.
    markets: Vec<Market>,
    /// `a` of the first fixture trade: the id of trade 0.
    first_id: i64,
    /// `T` of the first fixture trade: the time of trade 0.
    first_time_ms: i64,
}

/// A symbol and the fixture message its trades are templated from.
#[derive(Debug)]
struct Market {
    symbol: String,
    stream: String,
    template: Json,
    price: Decimal,
    price_decimals: u32,
    amount: Decimal,
    amount_decimals: u32,
    first_raw_id: i64,
    event_lag_ms: i64,
}

impl Market {
    fn new(symbol: &str, template: &Json) -> Result<Self, String> {
        let price = field_decimal(template, &["data", "p"])?;
        let amount = field_decimal(template, &["data", "q"])?;
        Ok(Self {
            symbol: symbol.to_owned(),
            stream: format!("{}{STREAM_SUFFIX}", symbol.to_ascii_lowercase()),
            template: template.clone(),
            price: price.trimmed(),
            price_decimals: price.scale(),
            amount: amount.trimmed(),
            amount_decimals: amount.scale(),
            first_raw_id: field_i64(template, &["data", "f"])?,
            event_lag_ms: field_i64(template, &["data", "E"])?
                - field_i64(template, &["data", "T"])?,
        })
    }
}

impl Fixture {
    /// The market of stream `name`, if it is served.
    fn market_of(&self, name: &str) -> Option<usize> {
        self.markets.iter().position(|m| m.stream == name)
    }

    /// The market indices a URL subscribes to, or why the URL is refused.
    fn streams_in_target(&self, target: &str) -> Result<Vec<usize>, String> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/stream" {
            return Err(format!(
                "feed-sim binance: unknown path {path}, use /stream?streams=..."
            ));
        }
        let mut streams = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("streams", value) => streams = Some(value),
                (other, _) => {
                    return Err(format!(
                        "feed-sim binance: unsupported query parameter {other}"
                    ));
                }
            }
        }
        let streams = streams.ok_or("feed-sim binance: no streams in the URL")?;
        let streams = percent_decode_str(streams)
            .decode_utf8()
            .map_err(|_| "feed-sim binance: streams are not UTF-8")?;
        let mut markets = Vec::new();
        for name in streams.split('/') {
            let market = self
                .market_of(name)
                .ok_or_else(|| format!("feed-sim binance: unknown stream {name:?}"))?;
            if !markets.contains(&market) {
                markets.push(market);
            }
        }
        Ok(markets)
    }

    /// The combined-stream message of trade number `k` on `market`, and its record.
    fn trade(&self, market: &Market, k: i64, connection: usize) -> (String, SentTrade) {
        let id = self.first_id + k;
        let time_ms = self.first_time_ms + MS_PER_TRADE * k;
        let sells = taker_sells(k);
        let price = market
            .price
            .step(price_steps(k))
            .fixed(market.price_decimals);
        let amount = market
            .amount
            .times(amount_factor(k))
            .fixed(market.amount_decimals);
        let first_raw = market.first_raw_id + 3 * k;
        let mut message = market.template.clone();
        message.set("stream", Json::str(&market.stream));
        if let Some(data) = message.get_mut("data") {
            data.set("E", Json::int(time_ms + market.event_lag_ms));
            data.set("s", Json::str(&market.symbol));
            data.set("a", Json::int(id));
            data.set("p", Json::str(&price));
            data.set("q", Json::str(&amount));
            data.set("f", Json::int(first_raw));
            data.set("l", Json::int(first_raw + k.rem_euclid(3)));
            data.set("T", Json::int(time_ms));
            data.set("m", Json::Bool(sells));
        }
        let sent = SentTrade {
            connection,
            exchange_symbol: market.symbol.clone(),
            id: id.to_string(),
            price,
            amount,
            taker_side: taker_side(sells),
            timestamp_unix_nanos: time_ms * 1_000_000,
        };
        (message.to_json(), sent)
    }
}

impl ExchangeFixture for Fixture {
    fn load() -> Result<Self, String> {
        let info = Json::parse(REST_BODY).map_err(|e| format!("binance rest-response: {e}"))?;
        let lines = jsonl(WS_MESSAGES)?;
        let first = &lines[0];
        let symbols = field(&info, &["symbols"])?
            .as_array()
            .ok_or("binance: `symbols` is not an array")?;
        let mut markets = Vec::new();
        for row in symbols {
            if field_str(row, &["status"])? != "TRADING" {
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
            first_id: field_i64(first, &["data", "a"])?,
            first_time_ms: field_i64(first, &["data", "T"])?,
        })
    }

    fn rest(&self) -> RestRoutes {
        vec![(REST_PATH, REST_BODY)]
    }

    fn open(
        venue: &Arc<Venue<Self>>,
        connection: usize,
        target: &str,
        out: &mut Outbox,
    ) -> Box<dyn WssSession> {
        let markets = match venue.fixture.streams_in_target(target) {
            Ok(markets) => {
                out.start_ticks(venue.trades_per_connection, venue.interval);
                markets
            }
            Err(why) => {
                out.close(POLICY_VIOLATION, why);
                Vec::new()
            }
        };
        Box::new(Session {
            venue: Arc::clone(venue),
            connection,
            markets,
            sent: 0,
        })
    }
}

/// One Binance connection.
struct Session {
    venue: Arc<Venue<Fixture>>,
    connection: usize,
    /// Subscribed markets in subscription order.
    markets: Vec<usize>,
    /// Trades sent on this connection, for the rotation.
    sent: usize,
}

impl Session {
    /// Answers one live request (`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`).
    fn request(&mut self, text: &str) -> Json {
        let Ok(request) = Json::parse(text) else {
            return error(
                3,
                "Invalid JSON: feed-sim could not parse the request",
                Json::Null,
            );
        };
        let id = request_id(&request);
        let fixture = &self.venue.fixture;
        match request.get("method").and_then(Json::as_str) {
            Some(method @ ("SUBSCRIBE" | "UNSUBSCRIBE")) => {
                let Some(names) = strings(request.get("params")) else {
                    return error(2, "Invalid request: params must be stream names", id);
                };
                let mut markets = Vec::new();
                for name in &names {
                    match fixture.market_of(name) {
                        Some(market) => markets.push(market),
                        None => {
                            return error(
                                2,
                                &format!("Invalid request: unknown stream {name:?}"),
                                id,
                            );
                        }
                    }
                }
                if method == "SUBSCRIBE" {
                    for market in markets {
                        if !self.markets.contains(&market) {
                            self.markets.push(market);
                        }
                    }
                } else {
                    self.markets.retain(|m| !markets.contains(m));
                }
                Json::object([("result", Json::Null), ("id", id)])
            }
            Some("LIST_SUBSCRIPTIONS") => {
                let names = self
                    .markets
                    .iter()
                    .filter_map(|&m| fixture.markets.get(m))
                    .map(|m| Json::str(&m.stream))
                    .collect();
                Json::object([("result", Json::Array(names)), ("id", id)])
            }
            _ => error(2, "Invalid request: unknown or missing method", id),
        }
    }
}

/// Binance's error reply to a live request.
fn error(code: i64, msg: &str, id: Json) -> Json {
    Json::object([
        (
            "error",
            Json::object([("code", Json::int(code)), ("msg", Json::str(msg))]),
        ),
        ("id", id),
    ])
}

impl WssSession for Session {
    fn on_text(&mut self, text: &str, out: &mut Outbox) {
        out.text(self.request(text).to_json());
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
    fn url_subscriptions_are_checked() {
        let fixture = Fixture::load().expect("fixture");
        let ok: &[(&str, &[&str])] = &[
            ("/stream?streams=btcusdt@aggTrade", &["BTCUSDT"]),
            (
                "/stream?streams=ethusdt@aggTrade/btcusdt@aggTrade/ethusdt@aggTrade",
                &["ETHUSDT", "BTCUSDT"],
            ),
            ("/stream?streams=btcusdt%40aggTrade", &["BTCUSDT"]),
        ];
        for (target, symbols) in ok {
            let markets = fixture.streams_in_target(target).expect(target);
            let got: Vec<&str> = markets
                .iter()
                .map(|&m| fixture.markets[m].symbol.as_str())
                .collect();
            assert_eq!(got, *symbols, "{target}");
        }
        for target in [
            "/stream",
            "/stream?streams=",
            "/stream?streams=BTCUSDT@aggTrade",
            "/stream?streams=btcusdt@trade",
            "/stream?streams=bccusdt@aggTrade",
            "/stream?streams=btcusdt@aggTrade/",
            "/stream?streams=btcusdt@aggTrade&timeUnit=MICROSECOND",
            "/ws/btcusdt@aggTrade",
            "/",
        ] {
            assert!(fixture.streams_in_target(target).is_err(), "{target}");
        }
    }

    #[test]
    fn trade_zero_is_the_fixture_trade_with_its_variation() {
        let fixture = Fixture::load().expect("fixture");
        let (message, sent) = fixture.trade(&fixture.markets[0], 0, 7);
        assert_eq!(
            message,
            r#"{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1754601477746,"s":"BTCUSDT","a":3603125811,"p":"116871.94000000","q":"0.00120000","f":5150441211,"l":5150441211,"T":1754601477745,"m":false,"M":true}}"#
        );
        assert_eq!(
            sent,
            SentTrade {
                connection: 7,
                exchange_symbol: "BTCUSDT".into(),
                id: "3603125811".into(),
                price: "116871.94000000".into(),
                amount: "0.00120000".into(),
                taker_side: "buy",
                timestamp_unix_nanos: 1_754_601_477_745_000_000,
            }
        );
    }
}
