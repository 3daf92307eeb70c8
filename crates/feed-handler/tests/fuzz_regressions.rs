//! Inputs the fuzzer (fuzz/, target bodies in feed-fuzz) found, kept as table tests: each broke
//! a parser contract before its fix.

use bytes::Bytes;
use feed_handler::{BinanceFeed, CoinbaseFeed, Feed, ccxt};
use serde_json::json;

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/exchanges/",
            $path
        ))
    };
}

fn feed(exchange: &str) -> (Box<dyn Feed>, &'static str) {
    match exchange {
        "binance" => (
            Box::new(BinanceFeed::new(&["BTC-USDT", "ETH-USDT"])),
            fixture!("binance/rest-response.json"),
        ),
        "coinbase" => (
            Box::new(CoinbaseFeed::new(&["BTC-USD", "ETH-USD"])),
            fixture!("coinbase/rest-response.json"),
        ),
        _ => (
            Box::new(ccxt::backpack(&["BTC-USDC", "ETH-USDC"])),
            fixture!("backpack/rest-response.json"),
        ),
    }
}

/// 100 characters that `Debug` escapes (`\u{7f}`, `\u{1}`, `\n`): a quoted field used to be cut
/// at 64 characters and then escaped, so an error quoting one grew to about 400 characters.
fn escaped_text() -> String {
    "\u{7f}\u{1}\n\u{200b}".repeat(25)
}

/// A Coinbase update carrying one trade with `field` replaced.
fn coinbase_trade(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut trade = json!({
        "trade_id": "1", "product_id": "ETH-USD", "price": "1", "size": "1", "side": "BUY",
        "time": "2025-08-07T21:17:57Z",
    });
    trade[field] = value;
    json!({"channel": "market_trades", "events": [{"type": "update", "trades": [trade]}]})
}

#[test]
fn quoted_fields_stay_short_once_escaped() {
    let text = escaped_text();
    let cases = [
        (
            "coinbase",
            coinbase_trade("product_id", json!(format!("ETH-{text}"))),
        ),
        ("coinbase", coinbase_trade("side", json!(text))),
        ("coinbase", json!({"channel": text})),
        ("binance", json!({"e": text})),
        ("binance", json!({"e": "aggTrade", "s": text})),
        (
            "binance",
            json!({"e": "aggTrade", "s": "BTCUSDT", "m": true, "q": text}),
        ),
        ("binance", json!({"error": {"msg": text}})),
        ("backpack", json!({"stream": text})),
        (
            "backpack",
            json!({"stream": "trade.X", "data": {
                "e": "trade", "s": text, "m": true, "q": "1", "p": "1", "t": 1, "T": 1,
            }}),
        ),
    ];
    for (exchange, message) in cases {
        let (feed, rest) = feed(exchange);
        let markets = feed
            .parse_metadata(&[Bytes::from_static(rest.as_bytes())])
            .expect("fixture metadata");
        let mut events = Vec::new();
        let error = feed
            .parse(&markets, message.to_string().as_bytes(), &mut events)
            .expect_err("rejected");
        let display = error.to_string();
        assert!(display.chars().count() < 200, "{exchange}: {display}");
        let debug = format!("{error:?}");
        assert!(debug.chars().count() < 250, "{exchange}: {debug}");
        assert!(events.is_empty());
    }
}
