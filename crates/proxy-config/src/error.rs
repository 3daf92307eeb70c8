//! `ConfigError`: a rejected setting, naming its key path and its source, never its value when
//! the value could hold a credential.

use std::fmt;

use crate::settings::{InvalidExchangeId, TimeoutOutOfRange};
use crate::tree::Origin;
use crate::url::UrlError;

/// A setting that could not be loaded.
///
/// `Display` reads `KEY: PROBLEM (from SOURCE); WHAT TO DO`, e.g.
/// `exchanges.binance.http.url: unsupported proxy scheme "ftp" (from
/// CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL); expected one of http, https, socks4, socks4a,
/// socks5, socks5h`. Key paths are relative to the proxy settings (the `proxy:` block of a file).
pub struct ConfigError(Box<Inner>);

// Boxed: errors are rare and a small `Result` keeps the happy path cheap.
#[derive(Debug)]
struct Inner {
    key: String,
    origin: Option<Origin>,
    kind: ConfigErrorKind,
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigError")
            .field("key", &self.0.key)
            .field("origin", &self.0.origin)
            .field("kind", &self.0.kind)
            .finish()
    }
}

/// What was wrong with a setting.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// The proxy URL is invalid.
    Url(UrlError),
    /// `timeout_seconds` outside 1..=300.
    Timeout(TimeoutOutOfRange),
    /// An exchange id that is empty, longer than 64 characters, or has characters outside
    /// `[A-Za-z0-9_.-]`.
    ExchangeId(InvalidExchangeId),
    /// A key this schema does not have.
    UnknownKey {
        /// The keys allowed at this level.
        expected: &'static [&'static str],
    },
    /// A value of the wrong type (a string where a table belongs, ...).
    WrongType {
        /// What the key takes.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A string that is not one of the accepted spellings (`true`/`false`, a number).
    InvalidValue {
        /// What the key takes.
        expected: &'static str,
    },
    /// A proxy with a timeout but no `url`.
    MissingUrl,
    /// An empty value.
    Empty,
    /// One exchange id spelled two ways in one source (ids are case-insensitive).
    DuplicateExchange {
        /// The first spelling seen.
        first: String,
        /// The second spelling.
        second: String,
        /// The variable that used the first spelling, for the environment.
        other_source: Option<String>,
    },
    /// A key set both as a value and as a table, or twice.
    Conflict {
        /// The other source of the same key.
        other: String,
    },
    /// An environment variable name with an empty key: four underscores in a row, a trailing
    /// `__`, or nothing after the prefix.
    MalformedEnvName,
    /// An environment variable whose value is not UTF-8.
    NotUtf8,
    /// The file extension is not `.yaml`, `.yml` or `.toml`.
    UnknownFormat,
    /// The file could not be read.
    ReadFile(std::io::Error),
    /// The file is not valid YAML or TOML.
    Parse {
        /// `YAML` or `TOML`.
        format: &'static str,
        /// The parser's message, without quoted file content.
        message: String,
    },
    /// YAML anchors and aliases (`&name`, `*name`) that make the loader copy more than
    /// [`ConfigErrorKind::ALIAS_BUDGET`] bytes: a small file that would expand to more than
    /// memory holds ("billion laughs"). Checked before the file is loaded.
    AliasExpansion {
        /// The line of the alias (or the end of the anchored node) that went over the budget,
        /// counted from 1.
        line: usize,
    },
}

impl ConfigErrorKind {
    /// How much the YAML loader may copy for the anchors and aliases of one file, in bytes,
    /// counting each value as 64 bytes plus its text. yaml-rust2 copies an anchored node once
    /// when it is defined and once at every alias. Values written out are not counted: a file
    /// of any size that uses no anchor loads as before.
    pub const ALIAS_BUDGET: u64 = 16 * 1024 * 1024;
}

impl ConfigError {
    /// Any user info in `key` (a proxy URL written where a key belongs) is cut first.
    pub(crate) fn new(key: String, origin: Option<Origin>, kind: ConfigErrorKind) -> Self {
        let key = crate::secret::without_userinfo(key);
        Self(Box::new(Inner { key, origin, kind }))
    }

    /// The key path of the setting, e.g. `exchanges.binance.http.url`; empty for whole-file
    /// errors.
    pub fn key(&self) -> &str {
        &self.0.key
    }

    /// Where the setting came from.
    pub fn origin(&self) -> Option<&Origin> {
        self.0.origin.as_ref()
    }

    /// What was wrong.
    pub fn kind(&self) -> &ConfigErrorKind {
        &self.0.kind
    }

    fn problem(&self) -> String {
        match &self.0.kind {
            ConfigErrorKind::Url(e) => e.to_string(),
            ConfigErrorKind::Timeout(e) => format!("timeout {} out of range", e.0),
            ConfigErrorKind::ExchangeId(_) => "invalid exchange id".to_owned(),
            ConfigErrorKind::UnknownKey { .. } => "unknown key".to_owned(),
            ConfigErrorKind::WrongType { expected, found } => {
                format!("expected {expected}, found {found}")
            }
            ConfigErrorKind::InvalidValue { .. } => "invalid value".to_owned(),
            ConfigErrorKind::MissingUrl => "missing proxy url".to_owned(),
            ConfigErrorKind::Empty => "empty value".to_owned(),
            ConfigErrorKind::DuplicateExchange { first, second, .. } => {
                format!("exchange id given twice, as \"{first}\" and \"{second}\"")
            }
            ConfigErrorKind::Conflict { other } => format!("set more than once (also by {other})"),
            ConfigErrorKind::MalformedEnvName => "malformed environment variable name".to_owned(),
            ConfigErrorKind::NotUtf8 => "value is not valid UTF-8".to_owned(),
            ConfigErrorKind::UnknownFormat => "unknown config file type".to_owned(),
            ConfigErrorKind::ReadFile(e) => format!("cannot read config file: {e}"),
            ConfigErrorKind::Parse { format, message } => format!("invalid {format}: {message}"),
            ConfigErrorKind::AliasExpansion { line } => format!(
                "YAML anchors and aliases copy more than {} MiB (limit reached at line {line})",
                ConfigErrorKind::ALIAS_BUDGET >> 20
            ),
        }
    }

    fn hint(&self) -> Option<String> {
        match &self.0.kind {
            ConfigErrorKind::Url(e) => e.hint(),
            ConfigErrorKind::Timeout(_) => Some("expected 1 to 300 seconds".to_owned()),
            ConfigErrorKind::ExchangeId(_) => {
                Some("exchange ids are 1 to 64 letters, digits, '_', '-' and '.'".to_owned())
            }
            ConfigErrorKind::UnknownKey { expected } => {
                Some(format!("expected one of {}", expected.join(", ")))
            }
            ConfigErrorKind::InvalidValue { expected } => Some(format!("expected {expected}")),
            ConfigErrorKind::MissingUrl => {
                Some("every proxy needs a url such as http://proxy.example:8080".to_owned())
            }
            ConfigErrorKind::Empty => Some("remove the setting instead of leaving it empty".to_owned()),
            ConfigErrorKind::DuplicateExchange { other_source, .. } => Some(match other_source {
                Some(var) => format!("exchange ids are case-insensitive; keep one spelling (see {var})"),
                None => "exchange ids are case-insensitive; keep one spelling".to_owned(),
            }),
            ConfigErrorKind::MalformedEnvName => Some(
                "separate keys with a double underscore, e.g. CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL"
                    .to_owned(),
            ),
            ConfigErrorKind::UnknownFormat => Some("use a .yaml, .yml or .toml file".to_owned()),
            ConfigErrorKind::AliasExpansion { .. } => {
                Some("write the repeated settings out, or nest fewer aliases".to_owned())
            }
            ConfigErrorKind::WrongType { .. }
            | ConfigErrorKind::Conflict { .. }
            | ConfigErrorKind::NotUtf8
            | ConfigErrorKind::ReadFile(_)
            | ConfigErrorKind::Parse { .. } => None,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.0.key.is_empty() {
            write!(f, "{}: ", self.0.key)?;
        }
        f.write_str(&self.problem())?;
        if let Some(origin) = &self.0.origin {
            write!(f, " (from {origin})")?;
        }
        if let Some(hint) = self.hint() {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.kind {
            ConfigErrorKind::Url(e) => Some(e),
            ConfigErrorKind::Timeout(e) => Some(e),
            ConfigErrorKind::ExchangeId(e) => Some(e),
            ConfigErrorKind::ReadFile(e) => Some(e),
            _ => None,
        }
    }
}
