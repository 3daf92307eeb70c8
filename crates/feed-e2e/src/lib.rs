//! The end-to-end proxy matrix: (config source) x (feed) x (transport) x (proxy kind), each cell
//! run through `FeedHandler` against feed-sim's fake exchanges and a recording proxy (in-process
//! or a real squid, tinyproxy, microsocks or dante), with the coverage report `cargo xtask
//! proxy-matrix` prints.
//!
//! A cell id is `<feed>/<proxy kind>/<source>`, e.g. `binance/socks5/env`; `FEED_E2E_FILTER`
//! (set by `cargo xtask proxy-matrix --filter binance/socks5`) selects cells by those segments.

mod cell;
mod coverage;
mod filter;
mod kinds;
mod proxies;
mod source;

pub use cell::{CellResult, Exchanges, NO_SOCKS_MESSAGE, TRADES_PER_CELL, run_cell, socks_refused};
pub use coverage::{Coverage, Status, TRANSPORTS, feature_set};
pub use filter::{CellFilter, FILTER_ENV};
pub use kinds::{Origin, ProxyKind};
pub use proxies::{Seen, StartedProxy};
pub use source::{ConfigSource, settings_for};

/// The feeds of the matrix, in column order.
pub use feed_sim::exchange::ExchangeKind as FeedKind;

/// Whether this build has SOCKS support.
pub const SOCKS_ENABLED: bool = cfg!(feature = "socks");

/// The Rust examples of README.md and the user documentation, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
#[cfg(doctest)]
#[doc = include_str!("../../../docs/proxy/user-guide.md")]
pub struct UserGuideDoctests;
#[cfg(doctest)]
#[doc = include_str!("../../../docs/proxy/technical-specification.md")]
pub struct TechnicalSpecificationDoctests;
