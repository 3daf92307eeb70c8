//! Feeds for feedproxy: the [`Feed`] trait (what an exchange integration describes), normalized
//! [`Trade`] events, native Binance and Coinbase feeds, and a ccxt-style adapter family with
//! Backpack as its first member.
//!
//! Feeds know nothing about proxies: their REST prefetch and WebSocket streams go through
//! feed-conn's connections, which take the route of the feed's exchange from the proxy system.
//!
//! ```no_run
//! # async fn demo() -> Result<(), feed_handler::HandlerError> {
//! use feed_handler::{FeedHandler, HandlerOptions, binance::BinanceFeed};
//!
//! let mut handler = FeedHandler::new(HandlerOptions::default());
//! handler.add_feed(BinanceFeed::new(&["BTC-USDT"]));
//! handler.on_trade(|trade| println!("{} {} {} @ {}", trade.symbol, trade.side, trade.amount, trade.price));
//! let running = handler.start().await?;
//! running.wait().await
//! # }
//! ```

pub mod binance;
pub mod ccxt;
pub mod coinbase;
mod error;
mod feed;
mod handler;
mod json;
mod scan;
mod setup;
mod trade;

pub use binance::BinanceFeed;
pub use ccxt::{BackpackFeed, CcxtFeed};
pub use coinbase::CoinbaseFeed;
pub use error::{FeedError, ParseError};
pub use feed::{Feed, Market, Markets, RestRequest, WsEndpoint};
pub use feed_conn;
pub use handler::{
    Backoff, DEFAULT_IDLE_TIMEOUT, ErrorCallback, FeedHandler, HANDLER_LOG_TARGET, HandlerError,
    HandlerOptions, RunningHandler, TradeCallback,
};
pub use json::parse_rfc3339;
pub use trade::{Decimal, Event, Side, Timestamp, Trade};
