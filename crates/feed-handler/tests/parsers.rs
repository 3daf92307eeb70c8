//! The pure parts of the Binance, Coinbase and Backpack feeds against the shared exchange
//! fixtures: trades, metadata, endpoints, malformed input, base URLs, and properties (no panic
//! on any input, RFC 3339 against an independent calendar).

use std::sync::LazyLock;

use bytes::Bytes;
use feed_handler::{
    BinanceFeed, CoinbaseFeed, Event, Feed, FeedError, Markets, ParseError, Side, ccxt,
    parse_rfc3339,
};
use proptest::prelude::*;
use rstest::rstest;
use serde_json::{Value, json};

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/exchanges/",
            $path
        ))
    };
}

const BINANCE_REST: &str = fixture!("binance/rest-response.json");
const BINANCE_WS: &str = fixture!("binance/ws-endpoint.json");
const BINANCE_MESSAGES: &str = fixture!("binance/ws-messages.jsonl");
const COINBASE_REST: &str = fixture!("coinbase/rest-response.json");
const COINBASE_WS: &str = fixture!("coinbase/ws-endpoint.json");
const COINBASE_MESSAGES: &str = fixture!("coinbase/ws-messages.jsonl");
const BACKPACK_REST: &str = fixture!("backpack/rest-response.json");
const BACKPACK_WS: &str = fixture!("backpack/ws-endpoint.json");
const BACKPACK_MESSAGES: &str = fixture!("backpack/ws-messages.jsonl");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ex {
    Binance,
    Coinbase,
    Backpack,
}

const ALL: [Ex; 3] = [Ex::Binance, Ex::Coinbase, Ex::Backpack];

impl Ex {
    fn feed(self, symbols: &[&str]) -> Box<dyn Feed> {
        match self {
            Ex::Binance => Box::new(BinanceFeed::new(symbols)),
            Ex::Coinbase => Box::new(CoinbaseFeed::new(symbols)),
            Ex::Backpack => Box::new(ccxt::backpack(symbols)),
        }
    }

    /// The symbols the fixture messages trade.
    fn symbols(self) -> &'static [&'static str] {
        match self {
            Ex::Binance => &["BTC-USDT", "ETH-USDT"],
            Ex::Coinbase => &["BTC-USD", "ETH-USD"],
            Ex::Backpack => &["BTC-USDC", "ETH-USDC"],
        }
    }

    fn rest(self) -> &'static str {
        match self {
            Ex::Binance => BINANCE_REST,
            Ex::Coinbase => COINBASE_REST,
            Ex::Backpack => BACKPACK_REST,
        }
    }

    fn messages(self) -> &'static str {
        match self {
            Ex::Binance => BINANCE_MESSAGES,
            Ex::Coinbase => COINBASE_MESSAGES,
            Ex::Backpack => BACKPACK_MESSAGES,
        }
    }

    fn line(self, index: usize) -> &'static str {
        self.messages()
            .lines()
            .nth(index)
            .unwrap_or_else(|| panic!("{self:?} fixture has no line {index}"))
    }

    fn loaded(self) -> &'static Loaded {
        &LOADED[self as usize]
    }
}

/// A feed for the fixture symbols and the markets it built from the fixture REST body.
struct Loaded {
    feed: Box<dyn Feed>,
    markets: Markets,
}

static LOADED: LazyLock<Vec<Loaded>> = LazyLock::new(|| {
    ALL.iter()
        .map(|&ex| {
            let feed = ex.feed(ex.symbols());
            let markets = feed
                .parse_metadata(&[Bytes::from_static(ex.rest().as_bytes())])
                .unwrap_or_else(|error| panic!("{ex:?} fixture metadata: {error}"));
            Loaded { feed, markets }
        })
        .collect()
});

fn parse(ex: Ex, message: &str) -> Result<Vec<Event>, ParseError> {
    let loaded = ex.loaded();
    let mut events = Vec::new();
    loaded
        .feed
        .parse(&loaded.markets, message.as_bytes(), &mut events)?;
    Ok(events)
}

/// `text` (JSON) with the value at `pointer` replaced, or removed when `value` is `None`.
fn patch(text: &str, pointer: &str, value: Option<Value>) -> String {
    let mut root: Value = serde_json::from_str(text).expect("fixture is JSON");
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a `/`");
    let parent = root
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the fixture"));
    match (parent, value) {
        (Value::Object(object), Some(value)) => {
            object.insert(key.to_owned(), value);
        }
        (Value::Object(object), None) => {
            assert!(object.remove(key).is_some(), "no {pointer} in the fixture");
        }
        (Value::Array(items), Some(value)) => {
            items[key.parse::<usize>().expect("index")] = value;
        }
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().expect("index"));
        }
        _ => panic!("{pointer} is not inside an object or array"),
    }
    root.to_string()
}

// ---------------------------------------------------------------------------------------------
// Fixture messages

/// symbol, side, amount, price, id, timestamp (ns), written out from the fixture values.
type Want = (
    &'static str,
    Side,
    &'static str,
    &'static str,
    &'static str,
    i64,
);

fn assert_trades(ex: Ex, events: &[Event], want: &[Want]) {
    let exchange = match ex {
        Ex::Binance => "binance",
        Ex::Coinbase => "coinbase",
        Ex::Backpack => "backpack",
    };
    let got: Vec<_> = events
        .iter()
        .map(|event| match event {
            Event::Trade(trade) => {
                assert_eq!(&*trade.exchange, exchange);
                (
                    trade.symbol.to_string(),
                    trade.side,
                    trade.amount.to_string(),
                    trade.price.to_string(),
                    trade.id.clone(),
                    trade.timestamp.unix_nanos(),
                )
            }
            other => panic!("not a trade: {other:?}"),
        })
        .collect();
    let want: Vec<_> = want
        .iter()
        .map(|&(symbol, side, amount, price, id, nanos)| {
            (
                symbol.to_owned(),
                side,
                amount.to_owned(),
                price.to_owned(),
                id.to_owned(),
                nanos,
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[rstest]
#[case::binance_btc_sell(Ex::Binance, 0, &[
    ("BTC-USDT", Side::Sell, "0.00120000", "116871.99000000", "3603125811", 1_754_601_477_745_000_000),
])]
#[case::binance_btc_buy(Ex::Binance, 1, &[
    ("BTC-USDT", Side::Buy, "0.04311000", "116872.00000000", "3603125812", 1_754_601_477_901_000_000),
])]
#[case::binance_eth_buy(Ex::Binance, 2, &[
    ("ETH-USDT", Side::Buy, "0.25810000", "3870.25000000", "2297760432", 1_754_601_478_012_000_000),
])]
#[case::binance_eth_sell(Ex::Binance, 3, &[
    ("ETH-USDT", Side::Sell, "1.02000000", "3870.24000000", "2297760433", 1_754_601_478_249_000_000),
])]
#[case::coinbase_snapshot_ignored(Ex::Coinbase, 0, &[])]
#[case::coinbase_subscriptions_ack(Ex::Coinbase, 1, &[])]
// Listed 852512457 then 852512456 (newest first); emitted oldest first.
#[case::coinbase_update_two_trades(Ex::Coinbase, 2, &[
    ("BTC-USD", Side::Buy, "0.00021", "116890.02", "852512456", 1_754_601_477_998_101_000),
    ("BTC-USD", Side::Buy, "0.0015", "116890.02", "852512457", 1_754_601_477_998_101_000),
])]
#[case::coinbase_update_eth_sell(Ex::Coinbase, 3, &[
    ("ETH-USD", Side::Sell, "0.1523", "3870.78", "652033981", 1_754_601_478_250_366_000),
])]
#[case::coinbase_heartbeats(Ex::Coinbase, 4, &[])]
#[case::backpack_btc_buy(Ex::Backpack, 0, &[
    ("BTC-USDC", Side::Buy, "0.00215", "116880.1", "24361720", 1_754_601_477_744_000_000),
])]
#[case::backpack_btc_sell(Ex::Backpack, 1, &[
    ("BTC-USDC", Side::Sell, "0.0402", "116879.9", "24361721", 1_754_601_477_812_117_000),
])]
#[case::backpack_eth_buy(Ex::Backpack, 2, &[
    ("ETH-USDC", Side::Buy, "0.0008", "3870.25", "10782547", 1_754_601_478_011_630_000),
])]
#[case::backpack_eth_sell(Ex::Backpack, 3, &[
    ("ETH-USDC", Side::Sell, "1.2513", "3870.11", "10782548", 1_754_601_478_249_402_000),
])]
fn fixture_messages(#[case] ex: Ex, #[case] line: usize, #[case] want: &[Want]) {
    let events = parse(ex, ex.line(line)).expect("fixture message parses");
    assert_trades(ex, &events, want);
}

/// Every fixture line has a case above: a line added to a fixture fails here until it gets one.
#[rstest]
#[case(Ex::Binance, 4)]
#[case(Ex::Coinbase, 5)]
#[case(Ex::Backpack, 4)]
fn every_fixture_line_has_a_case(#[case] ex: Ex, #[case] lines: usize) {
    assert_eq!(ex.messages().lines().count(), lines);
}

/// Messages that are not in the fixtures but are valid.
#[rstest]
#[case::binance_subscribe_reply(Ex::Binance, r#"{"result":null,"id":1}"#.to_owned(), &[])]
#[case::binance_list_reply(Ex::Binance, r#"{"result":["btcusdt@aggTrade"],"id":3}"#.to_owned(), &[])]
#[case::binance_raw_stream(
    Ex::Binance,
    serde_json::from_str::<Value>(Ex::Binance.line(0)).expect("fixture")["data"].to_string(),
    &[("BTC-USDT", Side::Sell, "0.00120000", "116871.99000000", "3603125811", 1_754_601_477_745_000_000)],
)]
#[case::coinbase_heartbeat_counter_string(
    Ex::Coinbase,
    patch(Ex::Coinbase.line(4), "/events/0/heartbeat_counter", Some(json!("3049"))),
    &[],
)]
#[case::coinbase_offset_zone(
    Ex::Coinbase,
    patch(Ex::Coinbase.line(3), "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.250366+00:00"))),
    &[("ETH-USD", Side::Sell, "0.1523", "3870.78", "652033981", 1_754_601_478_250_366_000)],
)]
#[case::coinbase_nanosecond_time(
    Ex::Coinbase,
    patch(Ex::Coinbase.line(3), "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.250366123Z"))),
    &[("ETH-USD", Side::Sell, "0.1523", "3870.78", "652033981", 1_754_601_478_250_366_123)],
)]
#[case::coinbase_whole_second_time(
    Ex::Coinbase,
    patch(Ex::Coinbase.line(3), "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58Z"))),
    &[("ETH-USD", Side::Sell, "0.1523", "3870.78", "652033981", 1_754_601_478_000_000_000)],
)]
#[case::coinbase_empty_update(
    Ex::Coinbase,
    patch(Ex::Coinbase.line(3), "/events/0/trades", Some(json!([]))),
    &[],
)]
#[case::backpack_time_as_string(
    Ex::Backpack,
    patch(Ex::Backpack.line(1), "/data/T", Some(json!("1754601477812117"))),
    &[("BTC-USDC", Side::Sell, "0.0402", "116879.9", "24361721", 1_754_601_477_812_117_000)],
)]
fn other_valid_messages(#[case] ex: Ex, #[case] message: String, #[case] want: &[Want]) {
    let events = parse(ex, &message).expect("message parses");
    assert_trades(ex, &events, want);
}

// ---------------------------------------------------------------------------------------------
// Malformed messages

/// How a malformed case is built from a fixture line, or given whole.
enum Input {
    Raw(&'static str),
    Patched(usize, &'static str, Option<Value>),
}

use Input::{Patched, Raw};

fn missing(field: &'static str) -> ParseError {
    ParseError::MissingField(field)
}

fn wrong(field: &'static str, expected: &'static str) -> ParseError {
    ParseError::WrongType { field, expected }
}

fn decimal(field: &'static str, value: &str) -> ParseError {
    ParseError::InvalidDecimal {
        field,
        value: value.to_owned(),
    }
}

fn time(field: &'static str, value: &str) -> ParseError {
    ParseError::InvalidTimestamp {
        field,
        value: value.to_owned(),
    }
}

fn side(value: &str) -> ParseError {
    ParseError::InvalidSide {
        field: "side",
        value: value.to_owned(),
    }
}

fn unknown_event(name: &str) -> ParseError {
    ParseError::UnknownEvent(name.to_owned())
}

fn unknown_symbol(name: &str) -> ParseError {
    ParseError::UnknownSymbol(name.to_owned())
}

fn exchange_error(text: &str) -> ParseError {
    ParseError::ExchangeError(text.to_owned())
}

/// The Display of serde_json's error is not ours to pin; `Malformed` is compared by variant.
fn malformed() -> ParseError {
    ParseError::Malformed(String::new())
}

#[rstest]
// Binance (fixture line 0 unless raw)
#[case::binance_not_json(Ex::Binance, Raw("not json"), malformed())]
#[case::binance_empty(Ex::Binance, Raw(""), malformed())]
#[case::binance_truncated(
    Ex::Binance,
    Raw(r#"{"stream":"btcusdt@aggTrade","data":{"e""#),
    malformed()
)]
#[case::binance_array(Ex::Binance, Raw("[]"), malformed())]
#[case::binance_string(Ex::Binance, Raw(r#""aggTrade""#), malformed())]
#[case::binance_no_data(Ex::Binance, Patched(0, "/data", None), missing("data"))]
#[case::binance_data_not_object(Ex::Binance, Patched(0, "/data", Some(json!([]))), wrong("data", "an object"))]
#[case::binance_no_e(Ex::Binance, Patched(0, "/data/e", None), missing("e"))]
#[case::binance_no_s(Ex::Binance, Patched(0, "/data/s", None), missing("s"))]
#[case::binance_no_m(Ex::Binance, Patched(0, "/data/m", None), missing("m"))]
#[case::binance_no_q(Ex::Binance, Patched(0, "/data/q", None), missing("q"))]
#[case::binance_no_p(Ex::Binance, Patched(0, "/data/p", None), missing("p"))]
#[case::binance_no_a(Ex::Binance, Patched(0, "/data/a", None), missing("a"))]
#[case::binance_no_t(Ex::Binance, Patched(0, "/data/T", None), missing("T"))]
#[case::binance_e_number(Ex::Binance, Patched(0, "/data/e", Some(json!(1))), wrong("e", "a string"))]
#[case::binance_s_null(Ex::Binance, Patched(0, "/data/s", Some(json!(null))), wrong("s", "a string"))]
#[case::binance_m_string(Ex::Binance, Patched(0, "/data/m", Some(json!("true"))), wrong("m", "a boolean"))]
#[case::binance_p_number(Ex::Binance, Patched(0, "/data/p", Some(json!(116871.99))), wrong("p", "a decimal string"))]
#[case::binance_q_null(Ex::Binance, Patched(0, "/data/q", Some(json!(null))), wrong("q", "a decimal string"))]
#[case::binance_a_string(Ex::Binance, Patched(0, "/data/a", Some(json!("3603125811"))), wrong("a", "a non-negative integer"))]
#[case::binance_a_negative(Ex::Binance, Patched(0, "/data/a", Some(json!(-1))), wrong("a", "a non-negative integer"))]
#[case::binance_a_fraction(Ex::Binance, Patched(0, "/data/a", Some(json!(1.5))), wrong("a", "a non-negative integer"))]
#[case::binance_t_string(Ex::Binance, Patched(0, "/data/T", Some(json!("1754601477745"))), wrong("T", "a non-negative integer"))]
#[case::binance_t_overflow(Ex::Binance, Patched(0, "/data/T", Some(json!(9_223_372_036_855_u64))), time("T", "9223372036855"))]
#[case::binance_t_past_i64(Ex::Binance, Patched(0, "/data/T", Some(json!(u64::MAX))), time("T", "18446744073709551615"))]
#[case::binance_p_exponent(Ex::Binance, Patched(0, "/data/p", Some(json!("1e5"))), decimal("p", "1e5"))]
#[case::binance_p_letters(Ex::Binance, Patched(0, "/data/p", Some(json!("abc"))), decimal("p", "abc"))]
#[case::binance_p_empty(Ex::Binance, Patched(0, "/data/p", Some(json!(""))), decimal("p", ""))]
#[case::binance_p_underscore(Ex::Binance, Patched(0, "/data/p", Some(json!("1_000.5"))), decimal("p", "1_000.5"))]
#[case::binance_p_plus(Ex::Binance, Patched(0, "/data/p", Some(json!("+1.5"))), decimal("p", "+1.5"))]
#[case::binance_p_blank(Ex::Binance, Patched(0, "/data/p", Some(json!(" 1.5"))), decimal("p", " 1.5"))]
#[case::binance_p_leading_point(Ex::Binance, Patched(0, "/data/p", Some(json!(".5"))), decimal("p", ".5"))]
#[case::binance_p_trailing_point(Ex::Binance, Patched(0, "/data/p", Some(json!("5."))), decimal("p", "5."))]
#[case::binance_p_two_points(Ex::Binance, Patched(0, "/data/p", Some(json!("1.2.3"))), decimal("p", "1.2.3"))]
#[case::binance_p_nan(Ex::Binance, Patched(0, "/data/p", Some(json!("NaN"))), decimal("p", "NaN"))]
#[case::binance_q_too_big(Ex::Binance, Patched(0, "/data/q", Some(json!("123456789012345678901234567890"))), decimal("q", "123456789012345678901234567890"))]
#[case::binance_q_too_fine(Ex::Binance, Patched(0, "/data/q", Some(json!("0.00000000000000000000000000001"))), decimal("q", "0.00000000000000000000000000001"))]
#[case::binance_q_huge_text(
    Ex::Binance,
    Patched(0, "/data/q", Some(json!("9".repeat(100)))),
    decimal("q", &format!("{}...", "9".repeat(64))),
)]
#[case::binance_trade_event(Ex::Binance, Patched(0, "/data/e", Some(json!("trade"))), unknown_event("trade"))]
#[case::binance_shutdown_event(
    Ex::Binance,
    Raw(r#"{"e":"serverShutdown","E":1754601477746}"#),
    unknown_event("serverShutdown")
)]
#[case::binance_unknown_symbol(Ex::Binance, Patched(0, "/data/s", Some(json!("DOGEUSDT"))), unknown_symbol("DOGEUSDT"))]
#[case::binance_not_trading_symbol(Ex::Binance, Patched(0, "/data/s", Some(json!("BCCUSDT"))), unknown_symbol("BCCUSDT"))]
#[case::binance_error_code_msg(
    Ex::Binance,
    Raw(r#"{"code":2,"msg":"Invalid request: property name must be a string","id":1}"#),
    exchange_error("Invalid request: property name must be a string (code 2)")
)]
#[case::binance_error_object(
    Ex::Binance,
    Raw(r#"{"error":{"code":-1121,"msg":"Invalid symbol."},"id":4}"#),
    exchange_error("Invalid symbol.")
)]
// Coinbase (fixture line 3 unless raw)
#[case::coinbase_not_json(Ex::Coinbase, Raw("{"), malformed())]
#[case::coinbase_number(Ex::Coinbase, Raw("42"), malformed())]
#[case::coinbase_no_channel(Ex::Coinbase, Patched(3, "/channel", None), missing("channel"))]
#[case::coinbase_channel_number(Ex::Coinbase, Patched(3, "/channel", Some(json!(7))), wrong("channel", "a string"))]
#[case::coinbase_unknown_channel(Ex::Coinbase, Patched(3, "/channel", Some(json!("level2"))), unknown_event("level2"))]
#[case::coinbase_heartbeat_singular(Ex::Coinbase, Patched(4, "/channel", Some(json!("heartbeat"))), unknown_event("heartbeat"))]
#[case::coinbase_no_events(Ex::Coinbase, Patched(3, "/events", None), missing("events"))]
#[case::coinbase_events_object(Ex::Coinbase, Patched(3, "/events", Some(json!({}))), wrong("events", "an array"))]
#[case::coinbase_event_not_object(Ex::Coinbase, Patched(3, "/events/0", Some(json!("update"))), wrong("events", "an array of objects"))]
#[case::coinbase_event_no_type(Ex::Coinbase, Patched(3, "/events/0/type", None), missing("type"))]
#[case::coinbase_event_unknown_type(Ex::Coinbase, Patched(3, "/events/0/type", Some(json!("delta"))), unknown_event("market_trades/delta"))]
#[case::coinbase_no_trades(Ex::Coinbase, Patched(3, "/events/0/trades", None), missing("trades"))]
#[case::coinbase_trades_null(Ex::Coinbase, Patched(3, "/events/0/trades", Some(json!(null))), wrong("trades", "an array"))]
#[case::coinbase_trade_not_object(Ex::Coinbase, Patched(3, "/events/0/trades/0", Some(json!(1))), wrong("trades", "an array of objects"))]
#[case::coinbase_no_trade_id(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/trade_id", None),
    missing("trade_id")
)]
#[case::coinbase_no_product_id(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/product_id", None),
    missing("product_id")
)]
#[case::coinbase_no_price(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/price", None),
    missing("price")
)]
#[case::coinbase_no_size(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/size", None),
    missing("size")
)]
#[case::coinbase_no_side(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/side", None),
    missing("side")
)]
#[case::coinbase_no_time(
    Ex::Coinbase,
    Patched(3, "/events/0/trades/0/time", None),
    missing("time")
)]
#[case::coinbase_trade_id_number(Ex::Coinbase, Patched(3, "/events/0/trades/0/trade_id", Some(json!(652033981))), wrong("trade_id", "a string"))]
#[case::coinbase_time_number(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!(1754601478))), wrong("time", "a string"))]
#[case::coinbase_side_bool(Ex::Coinbase, Patched(3, "/events/0/trades/0/side", Some(json!(true))), wrong("side", "a string"))]
#[case::coinbase_side_lower(Ex::Coinbase, Patched(3, "/events/0/trades/0/side", Some(json!("sell"))), side("sell"))]
#[case::coinbase_side_unknown(Ex::Coinbase, Patched(3, "/events/0/trades/0/side", Some(json!("UNKNOWN_ORDER_SIDE"))), side("UNKNOWN_ORDER_SIDE"))]
#[case::coinbase_side_empty(Ex::Coinbase, Patched(3, "/events/0/trades/0/side", Some(json!(""))), side(""))]
#[case::coinbase_price_exponent(Ex::Coinbase, Patched(3, "/events/0/trades/0/price", Some(json!("3.87078E3"))), decimal("price", "3.87078E3"))]
#[case::coinbase_size_empty(Ex::Coinbase, Patched(3, "/events/0/trades/0/size", Some(json!(""))), decimal("size", ""))]
#[case::coinbase_month_13(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-13-07T21:17:58.250366Z"))), time("time", "2025-13-07T21:17:58.250366Z"))]
#[case::coinbase_month_0(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-00-07T21:17:58Z"))), time("time", "2025-00-07T21:17:58Z"))]
#[case::coinbase_day_32(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-32T21:17:58.250366Z"))), time("time", "2025-08-32T21:17:58.250366Z"))]
#[case::coinbase_day_0(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-00T21:17:58Z"))), time("time", "2025-08-00T21:17:58Z"))]
#[case::coinbase_feb_30(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2024-02-30T00:00:00Z"))), time("time", "2024-02-30T00:00:00Z"))]
#[case::coinbase_feb_29_common_year(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-02-29T00:00:00Z"))), time("time", "2025-02-29T00:00:00Z"))]
#[case::coinbase_feb_29_1900(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("1900-02-29T00:00:00Z"))), time("time", "1900-02-29T00:00:00Z"))]
#[case::coinbase_april_31(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-04-31T00:00:00Z"))), time("time", "2025-04-31T00:00:00Z"))]
#[case::coinbase_hour_24(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T24:00:00Z"))), time("time", "2025-08-07T24:00:00Z"))]
#[case::coinbase_minute_60(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:60:00Z"))), time("time", "2025-08-07T21:60:00Z"))]
#[case::coinbase_leap_second(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2016-12-31T23:59:60Z"))), time("time", "2016-12-31T23:59:60Z"))]
#[case::coinbase_space_separator(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07 21:17:58.250366Z"))), time("time", "2025-08-07 21:17:58.250366Z"))]
#[case::coinbase_lowercase_z(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.250366z"))), time("time", "2025-08-07T21:17:58.250366z"))]
#[case::coinbase_no_zone(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.250366"))), time("time", "2025-08-07T21:17:58.250366"))]
#[case::coinbase_other_offset(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.250366+01:00"))), time("time", "2025-08-07T21:17:58.250366+01:00"))]
#[case::coinbase_ten_fraction_digits(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.2503661234Z"))), time("time", "2025-08-07T21:17:58.2503661234Z"))]
#[case::coinbase_empty_fraction(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58.Z"))), time("time", "2025-08-07T21:17:58.Z"))]
#[case::coinbase_trailing_text(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:58ZZ"))), time("time", "2025-08-07T21:17:58ZZ"))]
#[case::coinbase_short_year(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("225-08-07T21:17:58Z"))), time("time", "225-08-07T21:17:58Z"))]
#[case::coinbase_signed_field(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:+7:58Z"))), time("time", "2025-08-07T21:+7:58Z"))]
#[case::coinbase_multibyte(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("2025-08-07T21:17:5é"))), time("time", "2025-08-07T21:17:5é"))]
#[case::coinbase_time_empty(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!(""))), time("time", ""))]
#[case::coinbase_year_9999(Ex::Coinbase, Patched(3, "/events/0/trades/0/time", Some(json!("9999-12-31T23:59:59Z"))), time("time", "9999-12-31T23:59:59Z"))]
#[case::coinbase_unknown_symbol(Ex::Coinbase, Patched(3, "/events/0/trades/0/product_id", Some(json!("DOGE-USD"))), unknown_symbol("DOGE-USD"))]
#[case::coinbase_unrequested_symbol(Ex::Coinbase, Patched(3, "/events/0/trades/0/product_id", Some(json!("BTC-USDT"))), unknown_symbol("BTC-USDT"))]
#[case::coinbase_error(
    Ex::Coinbase,
    Raw(r#"{"type":"error","message":"failure to subscribe"}"#),
    exchange_error("failure to subscribe")
)]
#[case::coinbase_error_without_message(
    Ex::Coinbase,
    Raw(r#"{"type":"error"}"#),
    exchange_error(r#"{"type":"error"}"#)
)]
// Backpack (fixture line 0 unless raw)
#[case::backpack_not_json(Ex::Backpack, Raw("\u{0}"), malformed())]
#[case::backpack_null(Ex::Backpack, Raw("null"), malformed())]
#[case::backpack_no_stream(Ex::Backpack, Patched(0, "/stream", None), missing("stream"))]
#[case::backpack_stream_number(Ex::Backpack, Patched(0, "/stream", Some(json!(1))), wrong("stream", "a string"))]
#[case::backpack_depth_stream(Ex::Backpack, Patched(0, "/stream", Some(json!("depth.BTC_USDC"))), unknown_event("depth.BTC_USDC"))]
#[case::backpack_no_data(Ex::Backpack, Patched(0, "/data", None), missing("data"))]
#[case::backpack_data_string(Ex::Backpack, Patched(0, "/data", Some(json!("x"))), wrong("data", "an object"))]
#[case::backpack_no_e(Ex::Backpack, Patched(0, "/data/e", None), missing("e"))]
#[case::backpack_other_event(Ex::Backpack, Patched(0, "/data/e", Some(json!("depth"))), unknown_event("depth"))]
#[case::backpack_no_m(Ex::Backpack, Patched(0, "/data/m", None), missing("m"))]
#[case::backpack_no_s(Ex::Backpack, Patched(0, "/data/s", None), missing("s"))]
#[case::backpack_no_q(Ex::Backpack, Patched(0, "/data/q", None), missing("q"))]
#[case::backpack_no_p(Ex::Backpack, Patched(0, "/data/p", None), missing("p"))]
#[case::backpack_no_t(Ex::Backpack, Patched(0, "/data/t", None), missing("t"))]
#[case::backpack_no_big_t(Ex::Backpack, Patched(0, "/data/T", None), missing("T"))]
#[case::backpack_m_number(Ex::Backpack, Patched(0, "/data/m", Some(json!(0))), wrong("m", "a boolean"))]
#[case::backpack_t_string(Ex::Backpack, Patched(0, "/data/t", Some(json!("24361720"))), wrong("t", "a non-negative integer"))]
#[case::backpack_time_letters(Ex::Backpack, Patched(0, "/data/T", Some(json!("17546x"))), wrong("T", "a non-negative integer or a string of digits"))]
#[case::backpack_time_empty(Ex::Backpack, Patched(0, "/data/T", Some(json!(""))), wrong("T", "a non-negative integer or a string of digits"))]
#[case::backpack_time_signed(Ex::Backpack, Patched(0, "/data/T", Some(json!("+1754601477744000"))), wrong("T", "a non-negative integer or a string of digits"))]
#[case::backpack_time_negative(Ex::Backpack, Patched(0, "/data/T", Some(json!(-1))), wrong("T", "a non-negative integer or a string of digits"))]
#[case::backpack_time_float(Ex::Backpack, Patched(0, "/data/T", Some(json!(1.754601477744e15))), wrong("T", "a non-negative integer or a string of digits"))]
#[case::backpack_time_overflow(Ex::Backpack, Patched(0, "/data/T", Some(json!(9_223_372_036_854_776_u64))), time("T", "9223372036854776"))]
#[case::backpack_time_string_overflow(Ex::Backpack, Patched(0, "/data/T", Some(json!("99999999999999999999"))), time("T", "99999999999999999999"))]
#[case::backpack_q_letters(Ex::Backpack, Patched(0, "/data/q", Some(json!("abc"))), decimal("q", "abc"))]
#[case::backpack_p_exponent(Ex::Backpack, Patched(0, "/data/p", Some(json!("1e5"))), decimal("p", "1e5"))]
#[case::backpack_unknown_symbol(Ex::Backpack, Patched(0, "/data/s", Some(json!("SOL_USDC_PERP"))), unknown_symbol("SOL_USDC_PERP"))]
#[case::backpack_error_object(
    Ex::Backpack,
    Raw(r#"{"error":{"code":"INVALID_CLIENT_REQUEST","message":"Invalid market"},"id":null}"#),
    exchange_error("Invalid market")
)]
#[case::backpack_error_string(
    Ex::Backpack,
    Raw(r#"{"error":"Rate limit exceeded"}"#),
    exchange_error("Rate limit exceeded")
)]
fn malformed_messages(#[case] ex: Ex, #[case] input: Input, #[case] want: ParseError) {
    let message = match input {
        Raw(text) => text.to_owned(),
        Patched(line, pointer, value) => patch(ex.line(line), pointer, value),
    };
    let got = parse(ex, &message).expect_err("message is rejected");
    match (&got, &want) {
        (ParseError::Malformed(_), ParseError::Malformed(_)) => {}
        _ => assert_eq!(got, want, "message: {message}"),
    }
}

/// A message that fails appends nothing, even after valid trades of the same message.
#[rstest]
#[case::coinbase_bad_second_trade(Ex::Coinbase, patch(Ex::Coinbase.line(2), "/events/0/trades/0/side", Some(json!("?"))))]
#[case::coinbase_bad_first_trade(Ex::Coinbase, patch(Ex::Coinbase.line(2), "/events/0/trades/1/price", Some(json!("x"))))]
#[case::binance_bad_time(Ex::Binance, patch(Ex::Binance.line(0), "/data/T", Some(json!("x"))))]
#[case::backpack_bad_time(Ex::Backpack, patch(Ex::Backpack.line(0), "/data/T", Some(json!("x"))))]
fn failed_messages_append_nothing(#[case] ex: Ex, #[case] message: String) {
    let loaded = ex.loaded();
    let mut events = Vec::new();
    loaded
        .feed
        .parse(
            &loaded.markets,
            ex.line(ex.messages().lines().count() - 2).as_bytes(),
            &mut events,
        )
        .expect("fixture message parses");
    let before = events.clone();
    assert!(
        loaded
            .feed
            .parse(&loaded.markets, message.as_bytes(), &mut events)
            .is_err()
    );
    assert_eq!(events, before);
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// symbol, exchange symbol, base, quote, tick size.
type WantMarket = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

fn not_trading(exchange: &str, symbol: &str, status: &str) -> FeedError {
    FeedError::NotTrading {
        exchange: exchange.to_owned(),
        symbol: symbol.to_owned(),
        status: status.to_owned(),
    }
}

fn not_listed(exchange: &str, symbol: &str) -> FeedError {
    FeedError::UnknownSymbol {
        exchange: exchange.to_owned(),
        symbol: symbol.to_owned(),
    }
}

#[rstest]
#[case::binance(Ex::Binance, &["BTC-USDT", "ETH-USDT"], vec![], Ok(&[
    ("BTC-USDT", "BTCUSDT", "BTC", "USDT", Some("0.01000000")),
    ("ETH-USDT", "ETHUSDT", "ETH", "USDT", Some("0.01000000")),
][..]))]
#[case::binance_lower_case_and_duplicates(Ex::Binance, &["eth-usdt", "ETH-USDT"], vec![], Ok(&[
    ("ETH-USDT", "ETHUSDT", "ETH", "USDT", Some("0.01000000")),
][..]))]
#[case::binance_price_filter_not_first(
    Ex::Binance,
    &["BTC-USDT"],
    vec![
        ("/symbols/0/filters/0", json!({"filterType": "LOT_SIZE", "stepSize": "0.00001000"})),
        ("/symbols/0/filters/1", json!({"filterType": "PRICE_FILTER", "tickSize": "0.00100000"})),
    ],
    Ok(&[("BTC-USDT", "BTCUSDT", "BTC", "USDT", Some("0.00100000"))][..]),
)]
#[case::binance_no_price_filter(
    Ex::Binance,
    &["BTC-USDT"],
    vec![("/symbols/0/filters/0", json!({"filterType": "LOT_SIZE", "stepSize": "0.00001000"}))],
    Ok(&[("BTC-USDT", "BTCUSDT", "BTC", "USDT", None)][..]),
)]
#[case::binance_bad_tick(
    Ex::Binance,
    &["BTC-USDT"],
    vec![("/symbols/0/filters/0/tickSize", json!("0,01"))],
    Err(FeedError::Metadata {
        exchange: "binance".to_owned(),
        url: "https://api.binance.com/api/v3/exchangeInfo".to_owned(),
        error: ParseError::InvalidDecimal { field: "tickSize", value: "0,01".to_owned() },
    }),
)]
#[case::binance_duplicate_market(
    Ex::Binance,
    &["BTC-USDT", "ETH-USDT"],
    vec![("/symbols/1/symbol", json!("BTCUSDT"))],
    Err(FeedError::Metadata {
        exchange: "binance".to_owned(),
        url: "https://api.binance.com/api/v3/exchangeInfo".to_owned(),
        error: ParseError::Malformed("more than one market for ETH-USDT (BTCUSDT)".to_owned()),
    }),
)]
#[case::coinbase_perp_shares_currencies(
    Ex::Coinbase,
    &["BTC-USDT"],
    vec![("/products/0/product_type", json!("FUTURE")), ("/products/0/quote_currency_id", json!("USDT"))],
    Ok(&[("BTC-USDT", "BTC-USDT", "BTC", "USDT", Some("0.01"))][..]),
)]
#[case::binance_break(Ex::Binance, &["BTC-USDT", "BCC-USDT"], vec![], Err(not_trading("binance", "BCC-USDT", "BREAK")))]
#[case::binance_unknown(Ex::Binance, &["BTC-USDT", "DOGE-USDT"], vec![], Err(not_listed("binance", "DOGE-USDT")))]
#[case::binance_unnormalized(Ex::Binance, &["BTCUSDT"], vec![], Err(not_listed("binance", "BTCUSDT")))]
#[case::coinbase(Ex::Coinbase, &["BTC-USD", "ETH-USD", "BTC-USDT"], vec![], Ok(&[
    ("BTC-USD", "BTC-USD", "BTC", "USD", Some("0.01")),
    ("ETH-USD", "ETH-USD", "ETH", "USD", Some("0.01")),
    ("BTC-USDT", "BTC-USDT", "BTC", "USDT", Some("0.01")),
][..]))]
#[case::coinbase_usdc_alias(Ex::Coinbase, &["BTC-USDC"], vec![], Err(not_listed("coinbase", "BTC-USDC")))]
#[case::coinbase_offline(
    Ex::Coinbase,
    &["BTC-USD"],
    vec![("/products/0/status", json!("delisted"))],
    Err(not_trading("coinbase", "BTC-USD", "delisted")),
)]
#[case::coinbase_trading_disabled(
    Ex::Coinbase,
    &["BTC-USD"],
    vec![("/products/0/trading_disabled", json!(true))],
    Err(not_trading("coinbase", "BTC-USD", "online, trading_disabled")),
)]
#[case::coinbase_is_disabled(
    Ex::Coinbase,
    &["BTC-USD"],
    vec![("/products/0/is_disabled", json!(true))],
    Err(not_trading("coinbase", "BTC-USD", "online, is_disabled")),
)]
#[case::coinbase_other_row_offline(
    Ex::Coinbase,
    &["ETH-USD"],
    vec![("/products/0/status", json!("delisted"))],
    Ok(&[("ETH-USD", "ETH-USD", "ETH", "USD", Some("0.01"))][..]),
)]
#[case::backpack(Ex::Backpack, &["BTC-USDC", "ETH-USDC"], vec![], Ok(&[
    ("BTC-USDC", "BTC_USDC", "BTC", "USDC", Some("0.1")),
    ("ETH-USDC", "ETH_USDC", "ETH", "USDC", Some("0.01")),
][..]))]
#[case::backpack_perp_is_not_spot(Ex::Backpack, &["SOL-USDC"], vec![], Err(not_listed("backpack", "SOL-USDC")))]
#[case::backpack_closed(
    Ex::Backpack,
    &["ETH-USDC"],
    vec![("/1/orderBookState", json!("Closed"))],
    Err(not_trading("backpack", "ETH-USDC", "Closed")),
)]
#[case::backpack_no_tick(
    Ex::Backpack,
    &["BTC-USDC"],
    vec![("/0/filters/price/tickSize", json!(null))],
    Ok(&[("BTC-USDC", "BTC_USDC", "BTC", "USDC", None)][..]),
)]
fn metadata(
    #[case] ex: Ex,
    #[case] symbols: &[&str],
    #[case] body_patches: Vec<(&str, Value)>,
    #[case] want: Result<&[WantMarket], FeedError>,
) {
    let mut body = ex.rest().to_owned();
    for (pointer, value) in body_patches {
        body = patch(&body, pointer, Some(value));
    }
    let got = ex.feed(symbols).parse_metadata(&[Bytes::from(body)]);
    let want = match want {
        Ok(markets) => markets,
        Err(error) => {
            assert_eq!(got, Err(error));
            return;
        }
    };
    let markets = got.expect("metadata parses");
    assert_eq!(markets.len(), want.len());
    for &(symbol, exchange_symbol, base, quote, tick) in want {
        let market = markets.by_symbol(symbol).expect("market present");
        assert_eq!(
            (
                &*market.exchange_symbol,
                &*market.symbol,
                market.base.as_str(),
                market.quote.as_str(),
                market.tick_size.map(|tick| tick.to_string()).as_deref(),
            ),
            (exchange_symbol, symbol, base, quote, tick),
        );
        assert_eq!(
            markets
                .by_exchange_symbol(exchange_symbol)
                .map(|m| &*m.symbol),
            Some(symbol)
        );
    }
}

fn metadata_url(ex: Ex) -> &'static str {
    match ex {
        Ex::Binance => "https://api.binance.com/api/v3/exchangeInfo",
        Ex::Coinbase => "https://api.coinbase.com/api/v3/brokerage/market/products",
        Ex::Backpack => "https://api.backpack.exchange/api/v1/markets",
    }
}

fn exchange_id(ex: Ex) -> &'static str {
    match ex {
        Ex::Binance => "binance",
        Ex::Coinbase => "coinbase",
        Ex::Backpack => "backpack",
    }
}

#[rstest]
fn metadata_failures(#[values(Ex::Binance, Ex::Coinbase, Ex::Backpack)] ex: Ex) {
    let feed = ex.feed(ex.symbols());
    let exchange = exchange_id(ex);
    let rest = Bytes::from_static(ex.rest().as_bytes());
    assert_eq!(
        feed.parse_metadata(&[]),
        Err(FeedError::MetadataCount {
            exchange: exchange.to_owned(),
            expected: 1,
            got: 0
        })
    );
    assert_eq!(
        feed.parse_metadata(&[rest.clone(), rest.clone()]),
        Err(FeedError::MetadataCount {
            exchange: exchange.to_owned(),
            expected: 1,
            got: 2
        })
    );
    for body in [
        "<html>blocked</html>",
        "",
        "{\"code\":0}",
        "[1]",
        "{\"symbols\":{}}",
    ] {
        match feed.parse_metadata(&[Bytes::from_static(body.as_bytes())]) {
            Err(FeedError::Metadata {
                exchange: got,
                url,
                error: _,
            }) => {
                assert_eq!(got, exchange);
                assert_eq!(url, metadata_url(ex));
            }
            other => panic!("{body}: {other:?}"),
        }
    }
    let no_symbols = FeedError::NoSymbols {
        exchange: exchange.to_owned(),
    };
    let empty = ex.feed(&[]);
    assert_eq!(empty.parse_metadata(&[rest]), Err(no_symbols.clone()));
    assert_eq!(empty.ws_endpoints(&Markets::new()), Err(no_symbols));
    assert_eq!(
        feed.ws_endpoints(&Markets::new()),
        Err(not_listed(exchange, ex.symbols()[0]))
    );
}

#[rstest]
fn feed_ids_and_metadata_requests(#[values(Ex::Binance, Ex::Coinbase, Ex::Backpack)] ex: Ex) {
    let feed = ex.feed(ex.symbols());
    assert_eq!(feed.id(), exchange_id(ex));
    assert_eq!(feed.exchange(), exchange_id(ex));
    let urls: Vec<_> = feed
        .metadata_requests()
        .into_iter()
        .map(|request| request.url)
        .collect();
    assert_eq!(urls, [metadata_url(ex)]);
}

#[test]
fn binance_metadata_url_matches_the_fixture_endpoint() {
    let endpoint: Value =
        serde_json::from_str(fixture!("binance/rest-endpoint.json")).expect("fixture");
    let url = format!(
        "{}{}",
        endpoint["base_url"].as_str().expect("base_url"),
        endpoint["path"].as_str().expect("path")
    );
    assert_eq!(url, metadata_url(Ex::Binance));
}

#[test]
fn coinbase_metadata_url_is_the_public_alternative() {
    let endpoint: Value =
        serde_json::from_str(fixture!("coinbase/rest-endpoint.json")).expect("fixture");
    let url = format!(
        "{}{}",
        endpoint["base_url"].as_str().expect("base_url"),
        endpoint["public_alternative_path"].as_str().expect("path")
    );
    assert_eq!(url, metadata_url(Ex::Coinbase));
}

#[test]
fn backpack_metadata_url_matches_the_fixture_endpoint() {
    let endpoint: Value =
        serde_json::from_str(fixture!("backpack/rest-endpoint.json")).expect("fixture");
    let url = format!(
        "{}{}",
        endpoint["base_url"].as_str().expect("base_url"),
        endpoint["path"].as_str().expect("path")
    );
    assert_eq!(url, metadata_url(Ex::Backpack));
}

// ---------------------------------------------------------------------------------------------
// WebSocket endpoints

fn fixture_value(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn as_values(messages: &[String]) -> Vec<Value> {
    messages
        .iter()
        .map(|message| serde_json::from_str(message).expect("subscribe message is JSON"))
        .collect()
}

#[test]
fn binance_endpoint_is_the_fixture_url() {
    let loaded = Ex::Binance.loaded();
    let fixture = fixture_value(BINANCE_WS);
    let endpoints = loaded
        .feed
        .ws_endpoints(&loaded.markets)
        .expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].url, fixture["url"].as_str().expect("url"));
    assert_eq!(fixture["subscribe"], Value::Null);
    assert!(endpoints[0].subscribe.is_empty());

    let local = BinanceFeed::new(Ex::Binance.symbols())
        .with_ws_url("wss://127.0.0.1:1234/")
        .expect("valid base");
    let endpoints = local.ws_endpoints(&loaded.markets).expect("endpoints");
    assert_eq!(
        endpoints[0].url,
        fixture["url"]
            .as_str()
            .expect("url")
            .replace("wss://stream.binance.com:9443", "wss://127.0.0.1:1234")
    );
}

#[test]
fn binance_streams_follow_the_order_given() {
    let feed = BinanceFeed::new(&["ETH-USDT", "BTC-USDT"]);
    let endpoints = feed
        .ws_endpoints(&Ex::Binance.loaded().markets)
        .expect("endpoints");
    assert_eq!(
        endpoints[0].url,
        "wss://stream.binance.com:9443/stream?streams=ethusdt@aggTrade/btcusdt@aggTrade"
    );
}

#[test]
fn binance_splits_at_200_streams() {
    let assets: Vec<String> = (0..450).map(|n| format!("C{n}")).collect();
    let rows: Vec<Value> = assets
        .iter()
        .map(|asset| {
            json!({"symbol": format!("{asset}USDT"), "status": "TRADING", "baseAsset": asset,
                   "quoteAsset": "USDT", "filters": []})
        })
        .collect();
    let body = json!({ "symbols": rows }).to_string();
    let symbols: Vec<String> = assets.iter().map(|asset| format!("{asset}-USDT")).collect();
    let symbols: Vec<&str> = symbols.iter().map(String::as_str).collect();
    let feed = BinanceFeed::new(&symbols);
    let markets = feed.parse_metadata(&[Bytes::from(body)]).expect("metadata");
    let endpoints = feed.ws_endpoints(&markets).expect("endpoints");
    let streams: Vec<Vec<String>> = endpoints
        .iter()
        .map(|endpoint| {
            let query = endpoint
                .url
                .strip_prefix("wss://stream.binance.com:9443/stream?streams=")
                .expect("combined stream URL");
            query.split('/').map(str::to_owned).collect()
        })
        .collect();
    assert_eq!(
        streams.iter().map(Vec::len).collect::<Vec<_>>(),
        [200, 200, 50]
    );
    let all: Vec<String> = streams.concat();
    let want: Vec<String> = assets
        .iter()
        .map(|asset| format!("{}usdt@aggTrade", asset.to_ascii_lowercase()))
        .collect();
    assert_eq!(all, want);
}

#[test]
fn coinbase_endpoint_and_subscriptions_are_the_fixture_ones() {
    let loaded = Ex::Coinbase.loaded();
    let fixture = fixture_value(COINBASE_WS);
    let endpoints = loaded
        .feed
        .ws_endpoints(&loaded.markets)
        .expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].url, fixture["url"].as_str().expect("url"));
    assert_eq!(
        as_values(&endpoints[0].subscribe),
        [
            fixture["subscribe"].clone(),
            fixture["subscribe_heartbeats"].clone()
        ]
    );
}

#[test]
fn backpack_endpoint_and_subscription_are_the_fixture_ones() {
    let loaded = Ex::Backpack.loaded();
    let fixture = fixture_value(BACKPACK_WS);
    let endpoints = loaded
        .feed
        .ws_endpoints(&loaded.markets)
        .expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].url, fixture["url"].as_str().expect("url"));
    assert_eq!(
        as_values(&endpoints[0].subscribe),
        [fixture["subscribe"].clone()]
    );
}

// ---------------------------------------------------------------------------------------------
// Base URLs

fn rest_override(ex: Ex, base: &str) -> Result<Box<dyn Feed>, FeedError> {
    let symbols = ex.symbols();
    Ok(match ex {
        Ex::Binance => Box::new(BinanceFeed::new(symbols).with_rest_url(base)?),
        Ex::Coinbase => Box::new(CoinbaseFeed::new(symbols).with_rest_url(base)?),
        Ex::Backpack => Box::new(ccxt::backpack(symbols).with_rest_url(base)?),
    })
}

fn ws_override(ex: Ex, base: &str) -> Result<Box<dyn Feed>, FeedError> {
    let symbols = ex.symbols();
    Ok(match ex {
        Ex::Binance => Box::new(BinanceFeed::new(symbols).with_ws_url(base)?),
        Ex::Coinbase => Box::new(CoinbaseFeed::new(symbols).with_ws_url(base)?),
        Ex::Backpack => Box::new(ccxt::backpack(symbols).with_ws_url(base)?),
    })
}

fn metadata_path(ex: Ex) -> &'static str {
    match ex {
        Ex::Binance => "/api/v3/exchangeInfo",
        Ex::Coinbase => "/api/v3/brokerage/market/products",
        Ex::Backpack => "/api/v1/markets",
    }
}

#[rstest]
#[case("https://localhost:1234", "https://localhost:1234")]
#[case("https://localhost:1234/", "https://localhost:1234")]
#[case("http://127.0.0.1:8080", "http://127.0.0.1:8080")]
#[case("HTTPS://127.0.0.1:8443", "https://127.0.0.1:8443")]
#[case("https://[::1]:8443", "https://[::1]:8443")]
#[case("https://api.example.test", "https://api.example.test")]
fn rest_base_urls(
    #[values(Ex::Binance, Ex::Coinbase, Ex::Backpack)] ex: Ex,
    #[case] base: &str,
    #[case] normalized: &str,
) {
    let feed = rest_override(ex, base).expect("valid base URL");
    let urls: Vec<_> = feed
        .metadata_requests()
        .into_iter()
        .map(|request| request.url)
        .collect();
    assert_eq!(urls, [format!("{normalized}{}", metadata_path(ex))]);
}

#[rstest]
#[case("wss://127.0.0.1:9443", "wss://127.0.0.1:9443")]
#[case("wss://localhost:9443/", "wss://localhost:9443")]
#[case("WSS://[::1]:9443", "wss://[::1]:9443")]
fn ws_base_urls(
    #[values(Ex::Binance, Ex::Coinbase, Ex::Backpack)] ex: Ex,
    #[case] base: &str,
    #[case] normalized: &str,
) {
    let feed = ws_override(ex, base).expect("valid base URL");
    let endpoints = feed.ws_endpoints(&ex.loaded().markets).expect("endpoints");
    let want = match ex {
        Ex::Binance => {
            format!("{normalized}/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade")
        }
        Ex::Coinbase | Ex::Backpack => normalized.to_owned(),
    };
    assert_eq!(endpoints[0].url, want);
}

#[rstest]
#[case::rest_ftp(true, "ftp://localhost:21", "ftp://localhost:21")]
#[case::rest_wss(true, "wss://localhost:1234", "wss://localhost:1234")]
#[case::rest_no_scheme(true, "localhost:1234", "localhost:1234")]
#[case::rest_path(true, "https://localhost:1234/api", "https://localhost:1234/api")]
#[case::rest_query(
    true,
    "https://localhost:1234?token=secret",
    "https://localhost:1234?***"
)]
#[case::rest_fragment(true, "https://localhost:1234#x", "https://localhost:1234#***")]
#[case::rest_empty_host(true, "https://", "https://")]
#[case::rest_empty_host_port(true, "https://:1234", "https://:1234")]
#[case::rest_port_zero(true, "https://localhost:0", "https://localhost:0")]
#[case::rest_port_too_big(true, "https://localhost:65536", "https://localhost:65536")]
#[case::rest_port_empty(true, "https://localhost:", "https://localhost:")]
#[case::rest_port_letters(true, "https://localhost:12a", "https://localhost:12a")]
#[case::rest_space(true, "https://local host", "https://local host")]
#[case::rest_unclosed_v6(true, "https://[::1:8443", "https://[::1:8443")]
#[case::rest_credentials(
    true,
    "https://user:hunter2@localhost:1234",
    "https://***@localhost:1234"
)]
#[case::rest_credentials_slash(
    true,
    "https://user:hun/ter2@localhost:1234",
    "https://***@localhost:1234"
)]
#[case::rest_credentials_no_scheme(true, "user:hunter2@localhost", "***@localhost")]
#[case::ws_https(false, "https://localhost:1234", "https://localhost:1234")]
#[case::ws_plain(false, "ws://localhost:1234", "ws://localhost:1234")]
#[case::ws_path(false, "wss://localhost:1234/ws", "wss://localhost:1234/ws")]
#[case::ws_credentials(false, "wss://user:hunter2@localhost:1234", "wss://***@localhost:1234")]
fn invalid_base_urls(
    #[values(Ex::Binance, Ex::Coinbase, Ex::Backpack)] ex: Ex,
    #[case] rest: bool,
    #[case] base: &str,
    #[case] shown: &str,
) {
    let error = match if rest {
        rest_override(ex, base)
    } else {
        ws_override(ex, base)
    } {
        Ok(_) => panic!("{base} accepted"),
        Err(error) => error,
    };
    match &error {
        FeedError::InvalidBaseUrl { exchange, url, .. } => {
            assert_eq!(exchange, exchange_id(ex));
            assert_eq!(url, shown);
        }
        other => panic!("{base}: {other:?}"),
    }
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("user"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 3339

#[rstest]
#[case("1970-01-01T00:00:00Z", Some(0))]
#[case("1970-01-01T00:00:00.000000001Z", Some(1))]
#[case("1969-12-31T23:59:59.999999999Z", Some(-1))]
#[case("2000-02-29T00:00:00Z", Some(951_782_400_000_000_000))]
#[case("2000-03-01T00:00:00+00:00", Some(951_868_800_000_000_000))]
#[case("1900-03-01T00:00:00Z", Some(-2_203_891_200_000_000_000))]
#[case("2100-02-28T23:59:59Z", Some(4_107_542_399_000_000_000))]
#[case("2025-08-07T21:17:57.998101Z", Some(1_754_601_477_998_101_000))]
#[case("2025-08-07T21:17:57.9Z", Some(1_754_601_477_900_000_000))]
#[case("2262-04-11T23:47:16.854775807Z", Some(i64::MAX))]
#[case("2262-04-11T23:47:16.854775808Z", None)]
#[case("1677-09-21T00:12:43.145224192Z", Some(i64::MIN))]
#[case("1677-09-21T00:12:43.145224191Z", None)]
#[case("0000-01-01T00:00:00Z", None)]
#[case("2100-02-29T00:00:00Z", None)]
#[case("2025-08-07T21:17:57.998101-00:00", None)]
#[case("2025-08-07t21:17:57Z", None)]
#[case("2025-08-07T21:17:57Z ", None)]
#[case(" 2025-08-07T21:17:57Z", None)]
fn rfc3339_anchors(#[case] text: &str, #[case] nanos: Option<i64>) {
    assert_eq!(parse_rfc3339(text).map(|time| time.unix_nanos()), nanos);
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn month_lengths(year: i64) -> [i64; 12] {
    let february = if is_leap(year) { 29 } else { 28 };
    [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
}

/// Days since 1970-01-01 by counting whole years and months, independent of the parser's
/// era arithmetic.
fn reference_days(year: i64, month: i64, day: i64) -> i64 {
    let year_length = |y| if is_leap(y) { 366 } else { 365 };
    let mut days: i64 = if year >= 1970 {
        (1970..year).map(year_length).sum()
    } else {
        -(year..1970).map(year_length).sum::<i64>()
    };
    days += month_lengths(year)[..(month - 1) as usize]
        .iter()
        .sum::<i64>();
    days + day - 1
}

#[test]
fn reference_calendar_agrees_with_known_dates() {
    assert_eq!(reference_days(1970, 1, 1), 0);
    assert_eq!(reference_days(2000, 3, 1), 11_017);
    assert_eq!(reference_days(1969, 12, 31), -1);
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Strings the parsers branch on, so mutations reach deep paths rather than stopping at the
/// first type check.
const INTERESTING: &[&str] = &[
    "aggTrade",
    "trade",
    "update",
    "snapshot",
    "market_trades",
    "heartbeats",
    "subscriptions",
    "error",
    "BUY",
    "SELL",
    "BTCUSDT",
    "BTC-USD",
    "BTC_USDC",
    "trade.BTC_USDC",
    "0",
    "-0",
    "0.1",
    "1e5",
    "",
    "9999999999999999999999999999",
    "2025-08-07T21:17:57.998101Z",
    "2024-02-29T23:59:59.999999999Z",
    "2025-02-29T00:00:00Z",
    "1754601477744000",
    "é",
    "\u{0}",
];

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(INTERESTING).prop_map(Value::from),
        "[-+.0-9eE_ ]{0,30}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_]{0,3}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(Value),
    Remove,
    Rename(String),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => arb_json().prop_map(Mutation::Replace),
        1 => Just(Mutation::Remove),
        1 => "[a-zA-Z]{0,2}".prop_map(Mutation::Rename),
    ]
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Segment>, out: &mut Vec<Vec<Segment>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                prefix.push(Segment::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(Segment::Index(index));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn mutate(root: &mut Value, path: &[Segment], mutation: Mutation) {
    let Some((last, parent_path)) = path.split_last() else {
        if let Mutation::Replace(value) = mutation {
            *root = value;
        }
        return;
    };
    let mut parent = root;
    for segment in parent_path {
        parent = match (parent, segment) {
            (Value::Object(object), Segment::Key(key)) => object.get_mut(key).expect("path"),
            (Value::Array(items), Segment::Index(index)) => &mut items[*index],
            _ => unreachable!("paths come from this value"),
        };
    }
    match (parent, last, mutation) {
        (Value::Object(object), Segment::Key(key), Mutation::Replace(value)) => {
            object.insert(key.clone(), value);
        }
        (Value::Object(object), Segment::Key(key), Mutation::Remove) => {
            object.remove(key);
        }
        (Value::Object(object), Segment::Key(key), Mutation::Rename(name)) => {
            if let Some(value) = object.remove(key) {
                object.insert(name, value);
            }
        }
        (Value::Array(items), Segment::Index(index), Mutation::Replace(value)) => {
            items[*index] = value;
        }
        (Value::Array(items), Segment::Index(index), Mutation::Remove) => {
            items.remove(*index);
        }
        _ => {}
    }
}

/// Parses with a sentinel event already in the vector; checks what a parse may do to it.
fn parse_checked(ex: Ex, message: &[u8]) {
    let loaded = ex.loaded();
    let mut events = Vec::new();
    loaded
        .feed
        .parse(
            &loaded.markets,
            ex.line(ex.messages().lines().count() - 2).as_bytes(),
            &mut events,
        )
        .expect("fixture message parses");
    let before = events.clone();
    match loaded.feed.parse(&loaded.markets, message, &mut events) {
        Ok(()) => {
            assert_eq!(events[..before.len()], before[..]);
            for event in &events[before.len()..] {
                let Event::Trade(trade) = event else {
                    panic!("not a trade: {event:?}");
                };
                assert_eq!(&*trade.exchange, exchange_id(ex));
                assert!(loaded.markets.by_symbol(&trade.symbol).is_some());
            }
        }
        Err(error) => {
            assert_eq!(events, before, "a failed parse appended events");
            // Errors quote at most 64 characters of the message, plus the field and framing.
            assert!(error.to_string().chars().count() < 200, "{error}");
        }
    }
}

fn arb_exchange() -> impl Strategy<Value = Ex> {
    prop::sample::select(ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(ex in arb_exchange(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        parse_checked(ex, &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(ex in arb_exchange(), value in arb_json()) {
        parse_checked(ex, value.to_string().as_bytes());
    }

    #[test]
    fn mutated_fixture_messages_never_panic(
        ex in arb_exchange(),
        line in any::<prop::sample::Index>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), arb_mutation()), 1..4),
    ) {
        let lines: Vec<&str> = ex.messages().lines().collect();
        let line = lines[line.index(lines.len())];
        let mut value: Value = serde_json::from_str(line).expect("fixture is JSON");
        for (at, mutation) in mutations {
            let mut all = Vec::new();
            paths(&value, &mut Vec::new(), &mut all);
            let path = at.get(&all).clone();
            mutate(&mut value, &path, mutation);
        }
        parse_checked(ex, value.to_string().as_bytes());
    }

    #[test]
    fn byte_edited_fixture_messages_never_panic(
        ex in arb_exchange(),
        line in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..6),
    ) {
        let lines: Vec<&str> = ex.messages().lines().collect();
        let line = lines[line.index(lines.len())];
        let mut bytes = line.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let index = at.index(bytes.len());
            match kind {
                0 => bytes[index] = byte,
                1 => bytes.insert(index, byte),
                _ => {
                    bytes.remove(index);
                }
            }
        }
        parse_checked(ex, &bytes);
    }

    #[test]
    fn metadata_of_mutated_bodies_never_panics(
        ex in arb_exchange(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), arb_mutation()), 1..4),
    ) {
        let mut value: Value = serde_json::from_str(ex.rest()).expect("fixture is JSON");
        for (at, mutation) in mutations {
            let mut all = Vec::new();
            paths(&value, &mut Vec::new(), &mut all);
            let path = at.get(&all).clone();
            mutate(&mut value, &path, mutation);
        }
        let feed = ex.feed(ex.symbols());
        if let Ok(markets) = feed.parse_metadata(&[Bytes::from(value.to_string())]) {
            prop_assert_eq!(markets.len(), ex.symbols().len());
            let endpoints = feed.ws_endpoints(&markets);
            prop_assert!(endpoints.is_ok());
        }
    }

    #[test]
    fn base_urls_never_panic(ex in arb_exchange(), base in any::<String>()) {
        for result in [rest_override(ex, &base).map(drop), ws_override(ex, &base).map(drop)] {
            if let Err(error) = result {
                prop_assert!(error.to_string().chars().count() < 300);
            }
        }
    }

    #[test]
    fn rfc3339_matches_a_reference_calendar(
        year in 1678_i64..=2261,
        month in 1_i64..=12,
        day_seed in 0_i64..31,
        hour in 0_i64..24,
        minute in 0_i64..60,
        second in 0_i64..60,
        digits in 0_u32..=9,
        fraction_seed in any::<u32>(),
        offset in any::<bool>(),
    ) {
        let day = 1 + day_seed % month_lengths(year)[(month - 1) as usize];
        let scale = 10_i64.pow(digits);
        let fraction = i64::from(fraction_seed) % scale;
        let fraction_text = if digits == 0 {
            String::new()
        } else {
            format!(".{fraction:0width$}", width = digits as usize)
        };
        let zone = if offset { "+00:00" } else { "Z" };
        let text = format!(
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction_text}{zone}"
        );
        let seconds = reference_days(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
        let nanos = seconds * 1_000_000_000 + fraction * (1_000_000_000 / scale);
        prop_assert_eq!(parse_rfc3339(&text).map(|time| time.unix_nanos()), Some(nanos), "{}", text);
    }

    #[test]
    fn rfc3339_rejects_dates_that_do_not_exist(
        year in 1678_i64..=2261,
        month in 1_i64..=12,
        excess in 1_i64..=60,
    ) {
        let day = month_lengths(year)[(month - 1) as usize] + excess;
        let text = format!("{year:04}-{month:02}-{day:02}T00:00:00Z");
        prop_assert_eq!(parse_rfc3339(&text), None, "{}", text);
        let text = format!("{year:04}-{:02}-01T00:00:00Z", 12 + excess);
        prop_assert_eq!(parse_rfc3339(&text), None, "{}", text);
    }

    #[test]
    fn rfc3339_never_panics(text in any::<String>()) {
        let _ = parse_rfc3339(&text);
    }

    #[test]
    fn rfc3339_never_panics_near_the_format(text in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:[0-9]{2}|é)?") {
        let _ = parse_rfc3339(&text);
    }
}
