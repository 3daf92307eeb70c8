//! The normalized events feeds deliver: `Trade`, its `Side`, and `Timestamp`.

use std::fmt;
use std::sync::Arc;

pub use rust_decimal::Decimal;

/// The taker's side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The taker bought.
    Buy,
    /// The taker sold.
    Sell,
}

impl Side {
    /// `"buy"` or `"sell"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time as nanoseconds since the Unix epoch (UTC), exact for every exchange's
/// resolution (milliseconds, microseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From nanoseconds since the epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// From milliseconds since the epoch; `None` if out of range (past the year 2262).
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        millis.checked_mul(1_000_000).map(Self)
    }

    /// From microseconds since the epoch; `None` if out of range.
    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        micros.checked_mul(1_000).map(Self)
    }

    /// Nanoseconds since the epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// Seconds since the epoch as a floating-point number (for display and JSON, as cryptofeed
    /// reports timestamps); microsecond precision survives.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

/// One trade, normalized across exchanges.
///
/// `amount` and `price` are exact decimals with the scale the exchange sent
/// (`"0.00120000"` stays `0.00120000`); no binary floating point touches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    /// The exchange id, lower case (`binance`).
    pub exchange: Arc<str>,
    /// The normalized symbol, `BASE-QUOTE` in upper case (`BTC-USDT`).
    pub symbol: Arc<str>,
    /// The taker's side.
    pub side: Side,
    /// The traded quantity in the base currency.
    pub amount: Decimal,
    /// The price in the quote currency.
    pub price: Decimal,
    /// The exchange's trade id, as text.
    pub id: String,
    /// When the exchange says the trade happened.
    pub timestamp: Timestamp,
}

/// What a feed delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A trade.
    Trade(Trade),
}
