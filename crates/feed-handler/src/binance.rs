//! The Binance spot feed: aggregate trades from combined streams, markets from `exchangeInfo`.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{FeedError, ParseError};
use crate::feed::{Feed, Market, Markets, RestRequest, WsEndpoint};
use crate::json::{self, Object};
use crate::scan::{self, Scanner};
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

impl BinanceFeed {
    /// The common case, a combined-stream `aggTrade` frame with plain (unescaped, ASCII)
    /// strings, read by [`Scanner`] into borrowed fields: no `serde_json::Value` (which cost
    /// about 10 times a bare read of the same message) and no serde derive (whose key matching
    /// and skipping was 36% of the FeedHandler arm's client samples, `cargo xtask bench --only
    /// feed`; docs/performance.md). `None` for anything else, and for any frame this path would
    /// read differently from the general one (an `error`, `code` or `msg` beside `data`, a
    /// repeated field, an escaped string, an unknown symbol, a value out of range, a nested
    /// value among the fields it skips): [`Feed::parse`] then reads it the general way, with its
    /// exact error.
    fn fast_trade(&self, markets: &Markets, message: &[u8]) -> Option<Trade> {
        let mut scan = Scanner::new(message)?;
        let mut data = None;
        scan.object(|key, scan| match key {
            "data" => scan::once(&mut data, FastAggTrade::scan(scan)),
            // An error reply: the general path's to read. (`code` alone would not be one; it
            // is left to the general path too, which reads the trade.)
            "error" | "code" | "msg" => None,
            _ => scan.skip_value(),
        })?;
        scan.end()?;
        let data = data?;
        if data.e != "aggTrade" {
            return None;
        }
        let market = markets.by_exchange_symbol(data.s)?;
        let timestamp = i64::try_from(data.t)
            .ok()
            .and_then(crate::trade::Timestamp::from_unix_millis)?;
        Some(Trade {
            exchange: Arc::clone(&self.setup.exchange),
            symbol: Arc::clone(&market.symbol),
            // `m`: the buyer was the maker, so the taker sold.
            side: if data.m { Side::Sell } else { Side::Buy },
            amount: json::parse_decimal(data.q)?,
            price: json::parse_decimal(data.p)?,
            id: json::id_text(data.a),
            timestamp,
        })
    }
}

/// The `aggTrade` fields a trade is made of, borrowed from the message.
struct FastAggTrade<'a> {
    e: &'a str,
    s: &'a str,
    m: bool,
    q: &'a str,
    p: &'a str,
    a: u64,
    t: u64,
}

impl<'a> FastAggTrade<'a> {
    /// The `data` object: every field above once, any other field skipped.
    fn scan(scan: &mut Scanner<'a>) -> Option<Self> {
        let (mut e, mut s, mut m, mut q, mut p, mut a, mut t) = Default::default();
        scan.object(|key, scan| match key {
            "e" => scan::once(&mut e, scan.string()),
            "s" => scan::once(&mut s, scan.string()),
            "m" => scan::once(&mut m, scan.boolean()),
            "q" => scan::once(&mut q, scan.string()),
            "p" => scan::once(&mut p, scan.string()),
            "a" => scan::once(&mut a, scan.uint()),
            "T" => scan::once(&mut t, scan.uint()),
            _ => scan.skip_value(),
        })?;
        Some(Self {
            e: e?,
            s: s?,
            m: m?,
            q: q?,
            p: p?,
            a: a?,
            t: t?,
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
        if let Some(trade) = self.fast_trade(markets, message) {
            events.push(Event::Trade(trade));
            return Ok(());
        }
        self.parse_general(markets, message, events)
    }
}

impl BinanceFeed {
    /// [`Feed::parse`] through a `serde_json::Value`: every frame form, every error.
    fn parse_general(
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    const METADATA: &str =
        include_str!("../../../tests/fixtures/exchanges/binance/rest-response.json");
    const MESSAGES: &str =
        include_str!("../../../tests/fixtures/exchanges/binance/ws-messages.jsonl");

    fn loaded() -> (BinanceFeed, Markets) {
        let feed = BinanceFeed::new(&["BTC-USDT", "ETH-USDT"]);
        let markets = feed
            .parse_metadata(&[Bytes::from_static(METADATA.as_bytes())])
            .expect("fixture metadata");
        (feed, markets)
    }

    /// The fast path's answer must be the general path's: a trade it reads is the one trade the
    /// general path reads; anything else it leaves to the general path.
    fn agree(feed: &BinanceFeed, markets: &Markets, message: &[u8]) -> Result<(), TestCaseError> {
        if let Some(trade) = feed.fast_trade(markets, message) {
            let mut events = Vec::new();
            let general = feed.parse_general(markets, message, &mut events);
            prop_assert_eq!(general, Ok(()), "{}", String::from_utf8_lossy(message));
            prop_assert_eq!(events, vec![Event::Trade(trade)]);
        }
        Ok(())
    }

    #[test]
    fn every_fixture_trade_takes_the_fast_path_and_agrees() {
        let (feed, markets) = loaded();
        let mut fast = 0;
        for line in MESSAGES.lines().filter(|line| line.contains("aggTrade")) {
            assert!(
                feed.fast_trade(&markets, line.as_bytes()).is_some(),
                "{line}"
            );
            agree(&feed, &markets, line.as_bytes()).expect("agree");
            fast += 1;
        }
        assert!(fast >= 3, "fixture trades: {fast}");
    }

    #[test]
    fn frames_the_general_path_reads_differently_are_left_to_it() {
        let (feed, markets) = loaded();
        let line = MESSAGES.lines().next().expect("a fixture line");
        let frame: Value = serde_json::from_str(line).expect("json");
        let data = frame["data"].clone();
        let positional: Vec<Value> = ["e", "s", "m", "q", "p", "a", "T"]
            .iter()
            .map(|key| data[key].clone())
            .collect();
        let cases = [
            json!({"data": data, "error": null}),
            json!({"data": data, "code": 1, "msg": "x"}),
            json!({"data": positional}),
            json!([data]),
        ];
        for case in cases {
            let text = case.to_string();
            assert!(
                feed.fast_trade(&markets, text.as_bytes()).is_none(),
                "{text}"
            );
        }
        let escaped = line.replace("\"BTCUSDT\"", "\"BTC\\u0055SDT\"");
        assert!(feed.fast_trade(&markets, escaped.as_bytes()).is_none());
        let repeated = line.replace("\"m\":true", "\"m\":true,\"m\":false");
        assert!(feed.fast_trade(&markets, repeated.as_bytes()).is_none());
        let mut events = Vec::new();
        feed.parse(&markets, repeated.as_bytes(), &mut events)
            .expect("general");
        assert!(matches!(&events[..], [Event::Trade(trade)] if trade.side == Side::Buy));
    }

    fn any_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e20f64..1e20).prop_map(Value::from),
            "[0-9.\\-eE+_ a-zA-Z\\\\\"]{0,12}".prop_map(Value::String),
            Just(Value::String("BTCUSDT".into())),
            Just(Value::String("aggTrade".into())),
            Just(json!([1, "x"])),
            Just(json!({"k": 1})),
        ]
    }

    proptest! {
        /// Fixture trades with one to three fields replaced, removed or added, at the top level
        /// or in `data`: the two paths never disagree.
        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            line in 0usize..4,
            edits in proptest::collection::vec(
                (any::<bool>(), prop_oneof![
                    Just("e"), Just("s"), Just("m"), Just("q"), Just("p"), Just("a"), Just("T"),
                    Just("data"), Just("error"), Just("code"), Just("msg"), Just("result"),
                ], proptest::option::of(any_value())),
                1..4,
            ),
        ) {
            let (feed, markets) = loaded();
            let lines: Vec<&str> = MESSAGES.lines().collect();
            let mut frame: Value = serde_json::from_str(lines[line % lines.len()]).expect("json");
            for (top, key, value) in edits {
                let target = if top { &mut frame } else { &mut frame["data"] };
                if let Value::Object(object) = target {
                    match value {
                        Some(value) => { object.insert(key.to_owned(), value); }
                        None => { object.remove(key); }
                    }
                }
            }
            agree(&feed, &markets, frame.to_string().as_bytes())?;
        }

        /// Fixture lines with bytes inserted, removed or replaced anywhere (JSON tokens,
        /// whitespace, escapes, non-ASCII): the two paths never disagree, whatever the fast path
        /// makes of the text.
        #[test]
        fn byte_edits_never_make_the_paths_disagree(
            line in 0usize..4,
            edits in proptest::collection::vec(
                (any::<prop::sample::Index>(), 0usize..3, prop_oneof![
                    Just(" "), Just("\n"), Just(","), Just(":"), Just("{"), Just("}"), Just("\""),
                    Just("0"), Just("9"), Just("-"), Just("."), Just("e"), Just("\\"), Just("[]"),
                    Just("\"m\":true,"), Just("\"x\":1,"), Just("\u{e9}"), Just("null"),
                ]),
                1..4,
            ),
        ) {
            let (feed, markets) = loaded();
            let lines: Vec<&str> = MESSAGES.lines().collect();
            let mut text = lines[line % lines.len()].as_bytes().to_vec();
            for (at, removed, inserted) in edits {
                let at = at.index(text.len() + 1);
                let end = (at + removed).min(text.len());
                text.splice(at..end, inserted.bytes());
            }
            agree(&feed, &markets, &text)?;
        }
    }
}
