//! Fuzz target bodies for feedproxy: one function per cargo-fuzz target, each taking the raw
//! fuzz input, handing it to one parser and asserting that parser's contract. A panic is a
//! finding.
//!
//! The cargo-fuzz project in `fuzz/` (nightly, not a workspace member) only calls these
//! functions; `tests/corpora.rs` replays every file of `fuzz/corpus/<target>/` through them on
//! the stable toolchain, so CI keeps every input the fuzzer found interesting.
//!
//! Contracts checked, besides "never panics":
//! - proxy URLs: an accepted URL displays as `scheme://host:port` with no credentials, its
//!   `Debug` shows them only as `***`, and it parses back equal from its parts; a rejected one
//!   is a typed error with a hint whose text does not depend on the user-info part of the
//!   input (so it cannot carry the password); the settings-level parses agree with the URL
//!   parser;
//! - settings (YAML, TOML, environment): loaded settings name their origin, print no
//!   credential, and load back equal when written out in each source format; errors name their
//!   key and source and quote no value;
//! - the WebSocket upgrade check: only a complete 101 answer with the right
//!   Sec-WebSocket-Accept and an offered subprotocol passes, for that key only;
//! - exchange parsers: a failed parse appends nothing, a trade parses back equal from its
//!   parts in the exchange's own format, metadata yields exactly the requested markets.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod feeds;
mod settings;
mod url;
mod ws;

pub use feeds::{
    backpack_message, backpack_metadata, binance_message, binance_metadata, coinbase_message,
    coinbase_metadata,
};
pub use settings::{settings_env, settings_toml, settings_yaml};
pub use url::proxy_url;
pub use ws::ws_upgrade;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its cargo-fuzz binary and corpus directory
/// (`fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("proxy_url", proxy_url),
    ("settings_yaml", settings_yaml),
    ("settings_toml", settings_toml),
    ("settings_env", settings_env),
    ("ws_upgrade", ws_upgrade),
    ("binance_message", binance_message),
    ("binance_metadata", binance_metadata),
    ("coinbase_message", coinbase_message),
    ("coinbase_metadata", coinbase_metadata),
    ("backpack_message", backpack_message),
    ("backpack_metadata", backpack_metadata),
];

/// A password no fixed message text contains; corpus inputs carry it as `u:Zq9CanaryPw@` so the
/// fuzzer moves it around and the targets can look for it in every message.
pub const CANARY: &str = "Zq9CanaryPw";
