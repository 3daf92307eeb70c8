//! Properties of the exchange message parsers, the contract the `*_message` fuzz targets also
//! check: a trade written from valid parts in an exchange's own format parses back to exactly
//! those parts (decimal scale included, Coinbase batches oldest first), and a message with one
//! field missing, of the wrong type or of invalid content is the error naming that field.
//!
//! "Never panics" on arbitrary bytes, arbitrary JSON and mutated fixtures is in parsers.rs.

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use feed_handler::{
    BinanceFeed, CoinbaseFeed, Decimal, Event, Feed, Markets, ParseError, Side, Timestamp, Trade,
    ccxt,
};
use proptest::prelude::*;
use proptest::sample::select;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ex {
    Binance,
    Coinbase,
    Backpack,
}

impl Ex {
    fn id(self) -> &'static str {
        match self {
            Ex::Binance => "binance",
            Ex::Coinbase => "coinbase",
            Ex::Backpack => "backpack",
        }
    }

    /// (exchange symbol, normalized symbol) of the fixture markets.
    fn markets(self) -> [(&'static str, &'static str); 2] {
        match self {
            Ex::Binance => [("BTCUSDT", "BTC-USDT"), ("ETHUSDT", "ETH-USDT")],
            Ex::Coinbase => [("BTC-USD", "BTC-USD"), ("ETH-USD", "ETH-USD")],
            Ex::Backpack => [("BTC_USDC", "BTC-USDC"), ("ETH_USDC", "ETH-USDC")],
        }
    }

    fn loaded(self) -> &'static (Box<dyn Feed>, Markets) {
        static LOADED: LazyLock<Vec<(Box<dyn Feed>, Markets)>> = LazyLock::new(|| {
            [
                (
                    Box::new(BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])) as Box<dyn Feed>,
                    fixture!("binance/rest-response.json"),
                ),
                (
                    Box::new(CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])),
                    fixture!("coinbase/rest-response.json"),
                ),
                (
                    Box::new(ccxt::backpack(&["BTC-USDC", "ETH-USDC"])),
                    fixture!("backpack/rest-response.json"),
                ),
            ]
            .into_iter()
            .map(|(feed, rest)| {
                let markets = feed
                    .parse_metadata(&[Bytes::from_static(rest.as_bytes())])
                    .expect("fixture metadata");
                (feed, markets)
            })
            .collect()
        });
        &LOADED[self as usize]
    }

    fn parse(self, message: &Value) -> Result<Vec<Event>, ParseError> {
        let (feed, markets) = self.loaded();
        let mut events = Vec::new();
        feed.parse(markets, message.to_string().as_bytes(), &mut events)?;
        Ok(events)
    }
}

/// The parts of one trade, and how its time is written.
#[derive(Debug, Clone)]
struct Parts {
    market: usize,
    side: Side,
    amount: String,
    price: String,
    /// Binance and Backpack: an integer id; Coinbase: any text.
    id: String,
    /// Nanoseconds since the epoch, at the exchange's resolution.
    nanos: i64,
    /// Coinbase: fractional digits written (0..=9) and `Z` or `+00:00`; Backpack: the time as a
    /// string of digits instead of a number.
    digits: u32,
    offset: bool,
    as_string: bool,
}

fn decimal_text() -> impl Strategy<Value = String> {
    // No leading zeros, so the text is what `Decimal`'s Display writes back.
    "(0|[1-9][0-9]{0,14})(\\.[0-9]{1,12})?"
}

fn parts(ex: Ex) -> impl Strategy<Value = Parts> {
    let id = match ex {
        Ex::Coinbase => any::<String>().boxed(),
        Ex::Binance | Ex::Backpack => any::<u64>().prop_map(|id| id.to_string()).boxed(),
    };
    let nanos = match ex {
        Ex::Binance => (0..=i64::MAX / 1_000_000)
            .prop_map(|ms| ms * 1_000_000)
            .boxed(),
        Ex::Backpack => (0..=i64::MAX / 1_000).prop_map(|us| us * 1_000).boxed(),
        Ex::Coinbase => (i64::MIN + 1_000_000_000..=i64::MAX).boxed(),
    };
    (
        0..2usize,
        any::<bool>(),
        decimal_text(),
        decimal_text(),
        id,
        nanos,
        0..=9u32,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |(market, sell, amount, price, id, nanos, digits, offset, as_string)| {
                // Coinbase's time has `digits` fractional digits: drop the rest.
                let unit = 10_i64.pow(9 - digits);
                let nanos = if ex == Ex::Coinbase {
                    nanos - nanos.rem_euclid(unit)
                } else {
                    nanos
                };
                Parts {
                    market,
                    side: if sell { Side::Sell } else { Side::Buy },
                    amount,
                    price,
                    id,
                    nanos,
                    digits,
                    offset,
                    as_string,
                }
            },
        )
}

/// `YYYY-MM-DDTHH:MM:SS[.F]Z` by Howard Hinnant's `civil_from_days` (the parser uses the
/// inverse).
fn rfc3339(nanos: i64, digits: u32, offset: bool) -> String {
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if digits == 0 {
        String::new()
    } else {
        let text = format!("{fraction:09}");
        format!(".{}", &text[..digits as usize])
    };
    let zone = if offset { "+00:00" } else { "Z" };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}{zone}",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// The trade's own fields, as the exchange writes them.
fn trade_fields(ex: Ex, parts: &Parts) -> serde_json::Map<String, Value> {
    let (exchange_symbol, _) = ex.markets()[parts.market];
    let sold = parts.side == Side::Sell;
    let value = match ex {
        Ex::Binance => json!({
            "e": "aggTrade", "E": 1, "s": exchange_symbol,
            "a": parts.id.parse::<u64>().expect("u64"), "p": parts.price, "q": parts.amount,
            "f": 1, "l": 2, "T": parts.nanos / 1_000_000, "m": sold, "M": true,
        }),
        Ex::Coinbase => json!({
            "trade_id": parts.id, "product_id": exchange_symbol, "price": parts.price,
            "size": parts.amount, "side": if sold { "SELL" } else { "BUY" },
            "time": rfc3339(parts.nanos, parts.digits, parts.offset),
        }),
        Ex::Backpack => {
            let micros = parts.nanos / 1_000;
            let time = if parts.as_string {
                Value::from(micros.to_string())
            } else {
                Value::from(micros)
            };
            json!({
                "e": "trade", "E": 1, "s": exchange_symbol, "m": sold, "p": parts.price,
                "q": parts.amount, "t": parts.id.parse::<u64>().expect("u64"), "T": time,
            })
        }
    };
    match value {
        Value::Object(fields) => fields,
        _ => unreachable!("an object literal"),
    }
}

/// A message carrying trades with these fields (Coinbase lists them as given).
fn message(ex: Ex, trades: Vec<serde_json::Map<String, Value>>) -> Value {
    match ex {
        Ex::Binance => {
            let data = trades.into_iter().next().expect("one trade");
            let stream = data
                .get("s")
                .and_then(Value::as_str)
                .unwrap_or("x")
                .to_ascii_lowercase();
            json!({"stream": format!("{stream}@aggTrade"), "data": data})
        }
        Ex::Coinbase => json!({
            "channel": "market_trades", "client_id": "", "sequence_num": 7,
            "events": [{"type": "update", "trades": trades}],
        }),
        Ex::Backpack => {
            let data = trades.into_iter().next().expect("one trade");
            json!({"stream": "trade.BTC_USDC", "data": data})
        }
    }
}

fn expected(ex: Ex, parts: &Parts) -> Trade {
    let decimal = |text: &str| Decimal::from_str_exact(text).expect("generated decimal");
    Trade {
        exchange: Arc::from(ex.id()),
        symbol: Arc::from(ex.markets()[parts.market].1),
        side: parts.side,
        amount: decimal(&parts.amount),
        price: decimal(&parts.price),
        id: parts.id.clone(),
        timestamp: Timestamp::from_unix_nanos(parts.nanos),
    }
}

fn exchange() -> impl Strategy<Value = Ex> {
    select(vec![Ex::Binance, Ex::Coinbase, Ex::Backpack])
}

fn exchange_and_parts() -> impl Strategy<Value = (Ex, Parts)> {
    exchange().prop_flat_map(|ex| (Just(ex), parts(ex)))
}

/// What a field holds, which decides the faults that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    EventType,
    Symbol,
    Side,
    MakerFlag,
    Decimal,
    IntegerId,
    TextId,
    Millis,
    Micros,
    Rfc3339,
}

fn fields(ex: Ex) -> Vec<(&'static str, Kind)> {
    match ex {
        Ex::Binance => vec![
            ("e", Kind::EventType),
            ("s", Kind::Symbol),
            ("m", Kind::MakerFlag),
            ("q", Kind::Decimal),
            ("p", Kind::Decimal),
            ("a", Kind::IntegerId),
            ("T", Kind::Millis),
        ],
        Ex::Coinbase => vec![
            ("product_id", Kind::Symbol),
            ("side", Kind::Side),
            ("size", Kind::Decimal),
            ("price", Kind::Decimal),
            ("trade_id", Kind::TextId),
            ("time", Kind::Rfc3339),
        ],
        Ex::Backpack => vec![
            ("e", Kind::EventType),
            ("s", Kind::Symbol),
            ("m", Kind::MakerFlag),
            ("q", Kind::Decimal),
            ("p", Kind::Decimal),
            ("t", Kind::IntegerId),
            ("T", Kind::Micros),
        ],
    }
}

#[derive(Debug, Clone)]
enum Fault {
    Remove,
    WrongType(Value),
    BadContent(Value),
}

/// Values of the wrong JSON type for `kind`.
fn wrong_types(kind: Kind) -> Vec<Value> {
    let mut values = vec![Value::Null, json!([]), json!({"x": 1})];
    match kind {
        Kind::MakerFlag => values.extend([json!("true"), json!(1)]),
        Kind::IntegerId | Kind::Millis => {
            values.extend([json!("1"), json!(true), json!(-1), json!(1.5)]);
        }
        Kind::Micros => values.extend([json!("1x"), json!(""), json!(true), json!(-1), json!(1.5)]),
        _ => values.extend([json!(true), json!(1), json!(1.5)]),
    }
    values
}

/// Values of the right type and invalid content for `kind`, if it has any.
fn bad_contents(kind: Kind) -> Vec<Value> {
    match kind {
        Kind::EventType => vec![json!("depthUpdate"), json!(""), json!("TRADE")],
        Kind::Symbol => vec![json!("DOGEUSDT"), json!(""), json!("btcusdt")],
        Kind::Side => vec![json!("buy"), json!("HOLD"), json!("")],
        Kind::Decimal => vec![
            json!("1e5"),
            json!("1_000"),
            json!(" 1"),
            json!("+1"),
            json!("1."),
            json!(".5"),
            json!(""),
            json!("0x10"),
            json!("79228162514264337593543950336"),
        ],
        Kind::Millis => vec![json!(u64::MAX), json!(i64::MAX as u64 / 1_000_000 + 1)],
        Kind::Micros => vec![json!(u64::MAX), json!("99999999999999999999999")],
        Kind::Rfc3339 => vec![
            json!("2025-02-29T00:00:00Z"),
            json!("2025-08-07 21:17:57Z"),
            json!("2025-08-07T21:17:57+01:00"),
            json!("2025-08-07T21:17:57.1234567890Z"),
            json!("1677-01-01T00:00:00Z"),
            json!(""),
        ],
        Kind::MakerFlag | Kind::IntegerId | Kind::TextId => Vec::new(),
    }
}

fn fault_for(ex: Ex) -> impl Strategy<Value = (&'static str, Kind, Fault)> {
    select(fields(ex)).prop_flat_map(|(name, kind)| {
        let wrong = select(wrong_types(kind)).prop_map(Fault::WrongType);
        let fault = match bad_contents(kind) {
            bad if bad.is_empty() => prop_oneof![Just(Fault::Remove), wrong].boxed(),
            bad => prop_oneof![
                Just(Fault::Remove),
                wrong,
                select(bad).prop_map(Fault::BadContent),
            ]
            .boxed(),
        };
        (Just(name), Just(kind), fault)
    })
}

/// Whether `error` is the one a fault of `fault` in field `name` of kind `kind` must give.
fn names_the_field(error: &ParseError, name: &str, kind: Kind, fault: &Fault) -> bool {
    match (fault, kind) {
        (Fault::Remove, _) => matches!(error, ParseError::MissingField(f) if *f == name),
        (Fault::WrongType(_), _) => {
            matches!(error, ParseError::WrongType { field, .. } if *field == name)
        }
        (Fault::BadContent(_), Kind::EventType) => matches!(error, ParseError::UnknownEvent(_)),
        (Fault::BadContent(_), Kind::Symbol) => matches!(error, ParseError::UnknownSymbol(_)),
        (Fault::BadContent(_), Kind::Side) => {
            matches!(error, ParseError::InvalidSide { field, .. } if *field == name)
        }
        (Fault::BadContent(_), Kind::Decimal) => {
            matches!(error, ParseError::InvalidDecimal { field, .. } if *field == name)
        }
        (Fault::BadContent(_), Kind::Millis | Kind::Micros | Kind::Rfc3339) => {
            matches!(error, ParseError::InvalidTimestamp { field, .. } if *field == name)
        }
        (Fault::BadContent(_), Kind::MakerFlag | Kind::IntegerId | Kind::TextId) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_trade_from_valid_parts_parses_back_equal((ex, parts) in exchange_and_parts()) {
        let message = message(ex, vec![trade_fields(ex, &parts)]);
        let events = ex
            .parse(&message)
            .map_err(|e| TestCaseError::fail(format!("{message}: {e}")))?;
        let want = expected(ex, &parts);
        prop_assert_eq!(&events, &vec![Event::Trade(want)], "{}", message);
        let Event::Trade(trade) = &events[0] else { unreachable!("checked above") };
        // Exact decimals: the scale the exchange sent survives.
        prop_assert_eq!(trade.amount.to_string(), parts.amount);
        prop_assert_eq!(trade.price.to_string(), parts.price);
    }

    #[test]
    fn a_coinbase_batch_is_delivered_oldest_first(
        batch in prop::collection::vec(parts(Ex::Coinbase), 1..6),
    ) {
        // Coinbase lists a batch newest first.
        let listed: Vec<_> =
            batch.iter().rev().map(|parts| trade_fields(Ex::Coinbase, parts)).collect();
        let events = Ex::Coinbase.parse(&message(Ex::Coinbase, listed)).expect("valid batch");
        let want: Vec<Event> =
            batch.iter().map(|parts| Event::Trade(expected(Ex::Coinbase, parts))).collect();
        prop_assert_eq!(events, want);
    }

    #[test]
    fn one_bad_field_is_the_error_naming_it(
        (ex, parts, (name, kind, fault)) in
            exchange().prop_flat_map(|ex| (Just(ex), parts(ex), fault_for(ex))),
    ) {
        let mut fields = trade_fields(ex, &parts);
        match &fault {
            Fault::Remove => {
                fields.remove(name);
            }
            Fault::WrongType(value) | Fault::BadContent(value) => {
                fields.insert(name.to_owned(), value.clone());
            }
        }
        let message = message(ex, vec![fields]);
        match ex.parse(&message) {
            Ok(events) => prop_assert!(false, "{} accepted: {:?}", message, events),
            Err(error) => prop_assert!(
                names_the_field(&error, name, kind, &fault),
                "{}: {:?} for {:?} in `{}`", message, error, fault, name
            ),
        }
    }
}
