//! Errors of feed descriptions (`FeedError`) and of message parsing (`ParseError`).

/// Why a message could not be turned into events. The handler logs it (with the feed id and
/// connection id) and skips the message; it never stops a feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Not JSON, or JSON of the wrong overall shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A field the format requires is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("field `{field}` is not {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be (`a string`, `a boolean`, ...).
        expected: &'static str,
    },
    /// A price or amount is not a decimal number.
    #[error("field `{field}` is not a decimal: {value:?}")]
    InvalidDecimal {
        /// The field.
        field: &'static str,
        /// The text found (at most 64 characters).
        value: String,
    },
    /// A time is out of range or not in the exchange's format.
    #[error("field `{field}` is not a valid time: {value:?}")]
    InvalidTimestamp {
        /// The field.
        field: &'static str,
        /// The text found (at most 64 characters).
        value: String,
    },
    /// A side the format does not define.
    #[error("field `{field}` is not a known side: {value:?}")]
    InvalidSide {
        /// The field.
        field: &'static str,
        /// The text found (at most 64 characters).
        value: String,
    },
    /// An event or channel type this feed does not know.
    #[error("unknown event type {0:?}")]
    UnknownEvent(String),
    /// A symbol that is not in the feed's market table.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// The exchange sent an error reply.
    #[error("exchange error: {0}")]
    ExchangeError(String),
}

impl ParseError {
    /// Shortens text quoted from a message so a huge field cannot flood a log line: at most 64
    /// characters, each counted as long as `Debug` escapes it (`\u{7f}` counts 6), so the quote
    /// stays short whether the error prints it plain or escaped.
    pub(crate) fn excerpt(text: &str) -> String {
        const LIMIT: usize = 64;
        let mut used = 0;
        for (at, c) in text.char_indices() {
            used += c.escape_debug().count();
            if used > LIMIT {
                return format!("{}...", &text[..at]);
            }
        }
        text.to_owned()
    }
}

/// Why a feed could not be set up from its metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// A metadata response could not be parsed.
    #[error("{exchange}: metadata response from {url} is malformed: {error}")]
    Metadata {
        /// The exchange.
        exchange: String,
        /// The request URL (no query).
        url: String,
        /// What was wrong.
        #[source]
        error: ParseError,
    },
    /// The prefetch returned a different number of bodies than requests.
    #[error("{exchange}: expected {expected} metadata responses, got {got}")]
    MetadataCount {
        /// The exchange.
        exchange: String,
        /// Requests made.
        expected: usize,
        /// Bodies given.
        got: usize,
    },
    /// A symbol the feed was asked for is not listed by the exchange.
    #[error(
        "{exchange}: symbol {symbol} is not listed; check the symbol (normalized form BASE-QUOTE, e.g. BTC-USDT)"
    )]
    UnknownSymbol {
        /// The exchange.
        exchange: String,
        /// The normalized symbol asked for.
        symbol: String,
    },
    /// A symbol is listed but not trading.
    #[error("{exchange}: symbol {symbol} is listed but not trading (status {status})")]
    NotTrading {
        /// The exchange.
        exchange: String,
        /// The normalized symbol.
        symbol: String,
        /// The exchange's status text.
        status: String,
    },
    /// The feed was built without symbols.
    #[error("{exchange}: no symbols to subscribe")]
    NoSymbols {
        /// The exchange.
        exchange: String,
    },
    /// A base URL given to the feed is not usable.
    #[error("{exchange}: invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The exchange.
        exchange: String,
        /// The URL as given, with any user-info, query and fragment replaced by `***`.
        url: String,
        /// What is wrong.
        reason: &'static str,
    },
}
