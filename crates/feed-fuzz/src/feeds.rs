//! The exchange parsers of feed-handler, through the public `Feed` trait: WebSocket messages
//! (`Feed::parse`) against the markets of the shared fixtures, and metadata bodies
//! (`Feed::parse_metadata`).

use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use feed_handler::{
    BinanceFeed, CoinbaseFeed, Decimal, Event, Feed, FeedError, Markets, Side, Timestamp, Trade,
    ccxt,
};
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
enum Exchange {
    Binance,
    Coinbase,
    Backpack,
}

impl Exchange {
    fn feed(self) -> Box<dyn Feed> {
        match self {
            Exchange::Binance => Box::new(BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])),
            Exchange::Coinbase => Box::new(CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])),
            Exchange::Backpack => Box::new(ccxt::backpack(&["BTC-USDC", "ETH-USDC"])),
        }
    }

    fn symbol_count(self) -> usize {
        2
    }

    fn rest_fixture(self) -> &'static str {
        match self {
            Exchange::Binance => fixture!("binance/rest-response.json"),
            Exchange::Coinbase => fixture!("coinbase/rest-response.json"),
            Exchange::Backpack => fixture!("backpack/rest-response.json"),
        }
    }

    fn loaded(self) -> &'static Loaded {
        static LOADED: LazyLock<[Loaded; 3]> = LazyLock::new(|| {
            [Exchange::Binance, Exchange::Coinbase, Exchange::Backpack].map(Loaded::new)
        });
        &LOADED[self as usize]
    }

    /// The one message, in this exchange's wire format, that carries exactly `trade`.
    fn message_for(self, markets: &Markets, trade: &Trade) -> Vec<u8> {
        let market = markets
            .by_symbol(&trade.symbol)
            .unwrap_or_else(|| panic!("trade of {} outside the markets", trade.symbol));
        let exchange_symbol = &*market.exchange_symbol;
        let nanos = trade.timestamp.unix_nanos();
        let taker_sold = trade.side == Side::Sell;
        let message = match self {
            Exchange::Binance => {
                assert!(
                    nanos >= 0 && nanos % 1_000_000 == 0,
                    "not whole ms: {nanos}"
                );
                json!({
                    "stream": format!("{}@aggTrade", exchange_symbol.to_ascii_lowercase()),
                    "data": {
                        "e": "aggTrade",
                        "s": exchange_symbol,
                        "m": taker_sold,
                        "q": trade.amount.to_string(),
                        "p": trade.price.to_string(),
                        "a": integer_id(&trade.id),
                        "T": nanos / 1_000_000,
                    }
                })
            }
            Exchange::Coinbase => json!({
                "channel": "market_trades",
                "events": [{
                    "type": "update",
                    "trades": [{
                        "trade_id": trade.id,
                        "product_id": exchange_symbol,
                        "price": trade.price.to_string(),
                        "size": trade.amount.to_string(),
                        "side": if taker_sold { "SELL" } else { "BUY" },
                        "time": rfc3339(trade.timestamp),
                    }]
                }]
            }),
            Exchange::Backpack => {
                assert!(nanos >= 0 && nanos % 1_000 == 0, "not whole µs: {nanos}");
                json!({
                    "stream": format!("trade.{exchange_symbol}"),
                    "data": {
                        "e": "trade",
                        "s": exchange_symbol,
                        "m": taker_sold,
                        "q": trade.amount.to_string(),
                        "p": trade.price.to_string(),
                        "t": integer_id(&trade.id),
                        "T": nanos / 1_000,
                    }
                })
            }
        };
        message.to_string().into_bytes()
    }
}

/// A feed and the markets it built from its fixture metadata.
struct Loaded {
    feed: Box<dyn Feed>,
    markets: Markets,
}

impl Loaded {
    fn new(exchange: Exchange) -> Self {
        let feed = exchange.feed();
        let markets = feed
            .parse_metadata(&[Bytes::from_static(exchange.rest_fixture().as_bytes())])
            .unwrap_or_else(|error| panic!("{exchange:?} fixture metadata: {error}"));
        Self { feed, markets }
    }
}

fn integer_id(id: &str) -> u64 {
    id.parse()
        .unwrap_or_else(|_| panic!("integer trade id expected, got {id:?}"))
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffffZ`, by Howard Hinnant's `civil_from_days` (the parser uses
/// the inverse, `days_from_civil`, so each checks the other).
fn rfc3339(time: Timestamp) -> String {
    let nanos = time.unix_nanos();
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = nanos.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:09}Z",
        second_of_day / 3_600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// A trade no parse produces, put in the event vector first so a parse can be seen to leave it
/// alone.
fn sentinel() -> Event {
    Event::Trade(Trade {
        exchange: Arc::from("sentinel"),
        symbol: Arc::from("SENTINEL-X"),
        side: Side::Buy,
        amount: Decimal::ONE,
        price: Decimal::ONE,
        id: "sentinel".to_owned(),
        timestamp: Timestamp::from_unix_nanos(0),
    })
}

fn message(exchange: Exchange, data: &[u8]) {
    let Loaded { feed, markets } = exchange.loaded();
    let mut events = vec![sentinel()];
    let result = feed.parse(markets, data, &mut events);
    assert_eq!(events[0], sentinel(), "a parse changed earlier events");
    match result {
        Ok(()) => {
            let trades: Vec<&Trade> = events[1..]
                .iter()
                .map(|event| match event {
                    Event::Trade(trade) => trade,
                    other => panic!("not a trade: {other:?}"),
                })
                .collect();
            for trade in &trades {
                assert_eq!(&*trade.exchange, feed.exchange());
                assert!(
                    markets.by_symbol(&trade.symbol).is_some(),
                    "trade of {} outside the markets",
                    trade.symbol
                );
                // The trade alone, written in the exchange's format, parses back equal.
                let alone = exchange.message_for(markets, trade);
                let mut again = Vec::new();
                feed.parse(markets, &alone, &mut again)
                    .unwrap_or_else(|error| {
                        panic!("{} rejected: {error}", String::from_utf8_lossy(&alone))
                    });
                assert_eq!(again, [Event::Trade((*trade).clone())], "round trip");
                assert_eq!(
                    again_amounts(&again),
                    (trade.amount.scale(), trade.price.scale()),
                    "scale lost"
                );
            }
            // JSON that means the same parses the same.
            if let Ok(value) = serde_json::from_slice::<Value>(data) {
                let mut same = vec![sentinel()];
                let reparsed = feed.parse(markets, value.to_string().as_bytes(), &mut same);
                assert!(
                    reparsed.is_ok() && same == events,
                    "re-serialized JSON differs"
                );
            }
        }
        Err(error) => {
            assert_eq!(events.len(), 1, "a failed parse appended events: {error}");
            let text = error.to_string();
            assert!(text.chars().count() < 200, "message not bounded: {text}");
        }
    }
}

fn again_amounts(events: &[Event]) -> (u32, u32) {
    match events {
        [Event::Trade(trade)] => (trade.amount.scale(), trade.price.scale()),
        _ => (u32::MAX, u32::MAX),
    }
}

fn metadata(exchange: Exchange, data: &[u8]) {
    let feed = exchange.feed();
    match feed.parse_metadata(&[Bytes::copy_from_slice(data)]) {
        Ok(markets) => {
            assert_eq!(
                markets.len(),
                exchange.symbol_count(),
                "not the requested markets"
            );
            for market in markets.iter() {
                assert_eq!(
                    markets.by_exchange_symbol(&market.exchange_symbol),
                    Some(market)
                );
                assert_eq!(markets.by_symbol(&market.symbol), Some(market));
            }
            let endpoints = feed
                .ws_endpoints(&markets)
                .unwrap_or_else(|error| panic!("endpoints of parsed markets: {error}"));
            assert!(!endpoints.is_empty());
        }
        Err(error) => {
            assert!(
                matches!(
                    error,
                    FeedError::Metadata { .. }
                        | FeedError::UnknownSymbol { .. }
                        | FeedError::NotTrading { .. }
                ),
                "unexpected kind: {error:?}"
            );
            let text = error.to_string();
            assert!(text.chars().count() < 400, "message not bounded: {text}");
        }
    }
}

/// Fuzz target `binance_message`: one WebSocket message to the Binance feed.
pub fn binance_message(data: &[u8]) {
    message(Exchange::Binance, data);
}

/// Fuzz target `coinbase_message`: one WebSocket message to the Coinbase feed.
pub fn coinbase_message(data: &[u8]) {
    message(Exchange::Coinbase, data);
}

/// Fuzz target `backpack_message`: one WebSocket message to the ccxt-style Backpack feed.
pub fn backpack_message(data: &[u8]) {
    message(Exchange::Backpack, data);
}

/// Fuzz target `binance_metadata`: an `exchangeInfo` body for a Binance feed of BTC-USDT and
/// ETH-USDT.
pub fn binance_metadata(data: &[u8]) {
    metadata(Exchange::Binance, data);
}

/// Fuzz target `coinbase_metadata`: a products body for a Coinbase feed of BTC-USD and
/// ETH-USD.
pub fn coinbase_metadata(data: &[u8]) {
    metadata(Exchange::Coinbase, data);
}

/// Fuzz target `backpack_metadata`: a markets body for a Backpack feed of BTC-USDC and
/// ETH-USDC.
pub fn backpack_metadata(data: &[u8]) {
    metadata(Exchange::Backpack, data);
}
