//! The settings model: `ProxySettings` > `ConnectionProxies` > `ProxyConfig` > `ProxyUrl`.
//!
//! These are plain values: every one that exists is valid (URLs parsed, timeouts in range,
//! exchange ids normalized), whether it came from a file, the environment, serde or code.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::url::{ProxyUrl, UrlError};

/// The proxy handshake timeout, 1 to 300 seconds, default 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TimeoutSeconds(u16);

impl TimeoutSeconds {
    /// The smallest accepted timeout.
    pub const MIN: u16 = 1;
    /// The largest accepted timeout.
    pub const MAX: u16 = 300;
    /// The timeout used when none is given.
    pub const DEFAULT: TimeoutSeconds = TimeoutSeconds(30);

    /// Validates a timeout in seconds.
    pub fn new(seconds: u64) -> Result<Self, TimeoutOutOfRange> {
        match u16::try_from(seconds) {
            Ok(s) if (Self::MIN..=Self::MAX).contains(&s) => Ok(Self(s)),
            _ => Err(TimeoutOutOfRange(seconds.to_string())),
        }
    }

    /// The timeout in whole seconds.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The timeout as a `Duration`.
    pub fn as_duration(self) -> Duration {
        Duration::from_secs(u64::from(self.0))
    }
}

impl Default for TimeoutSeconds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for TimeoutSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

impl<'de> Deserialize<'de> for TimeoutSeconds {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        let seconds = u64::try_from(value)
            .map_err(|_| serde::de::Error::custom(TimeoutOutOfRange(value.to_string())))?;
        TimeoutSeconds::new(seconds).map_err(serde::de::Error::custom)
    }
}

/// A timeout outside 1..=300 seconds (the value as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timeout {0} out of range; expected 1 to 300 seconds")]
pub struct TimeoutOutOfRange(pub(crate) String);

/// One proxy: where it is and how long its handshake may take.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ProxyConfig {
    /// The proxy address, with optional credentials.
    pub url: ProxyUrl,
    /// Bound on the whole proxy handshake (TCP to the proxy and the proxy protocol).
    #[serde(default)]
    pub timeout_seconds: TimeoutSeconds,
}

impl ProxyConfig {
    /// A proxy with the default timeout.
    pub fn new(url: ProxyUrl) -> Self {
        Self {
            url,
            timeout_seconds: TimeoutSeconds::DEFAULT,
        }
    }

    /// Parses the URL; the timeout is the default.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        Ok(Self::new(url.parse()?))
    }

    /// Replaces the timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: TimeoutSeconds) -> Self {
        self.timeout_seconds = timeout;
        self
    }
}

/// The proxies of one exchange (or of the default), one per transport; `None` means "not set
/// here", so resolution falls through to the next level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ConnectionProxies {
    /// The proxy for REST (HTTP) connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<ProxyConfig>,
    /// The proxy for WebSocket connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<ProxyConfig>,
}

impl ConnectionProxies {
    /// The same proxy for both transports.
    pub fn both(proxy: ProxyConfig) -> Self {
        Self {
            http: Some(proxy.clone()),
            websocket: Some(proxy),
        }
    }

    /// A proxy for REST only.
    pub fn http(proxy: ProxyConfig) -> Self {
        Self {
            http: Some(proxy),
            websocket: None,
        }
    }

    /// A proxy for WebSocket only.
    pub fn websocket(proxy: ProxyConfig) -> Self {
        Self {
            http: None,
            websocket: Some(proxy),
        }
    }

    /// True when neither transport has a proxy.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.websocket.is_none()
    }
}

/// An exchange id, stored lower case (`Binance`, `BINANCE` and `binance` are one id).
///
/// Accepted: 1 to 64 ASCII letters, digits, `_`, `-` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExchangeId(String);

impl ExchangeId {
    /// Validates and lower-cases an exchange id.
    pub fn new(id: &str) -> Result<Self, InvalidExchangeId> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Self(id.to_ascii_lowercase()))
        } else {
            // User info cut before the id is shortened, so no part of it survives the cut.
            Err(InvalidExchangeId(
                crate::secret::without_userinfo(id.to_owned())
                    .chars()
                    .take(64)
                    .collect(),
            ))
        }
    }

    /// The id, lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExchangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ExchangeId {
    type Err = InvalidExchangeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for ExchangeId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ExchangeId::new(&text).map_err(serde::de::Error::custom)
    }
}

/// An exchange id that is empty, longer than 64 characters, or has characters outside
/// `[A-Za-z0-9_.-]` (the id as given, user info cut, at most 64 characters of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid exchange id \"{0}\"; expected 1 to 64 letters, digits, '_', '-' or '.'")]
pub struct InvalidExchangeId(String);

/// All proxy settings of a process.
///
/// Resolution (in proxy-resolve): `enabled == false` -> direct everywhere; else the exchange's own
/// proxy for the transport, else the default for the transport, else direct.
///
/// `enabled` defaults to `true`: a settings source that names a proxy is obeyed without a
/// separate switch, so a forgotten `enabled: true` can never send traffic around a proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, remote = "Self")]
pub struct ProxySettings {
    /// Master switch; `false` sends every connection direct.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Proxies used by exchanges that have none of their own for a transport.
    #[serde(default)]
    pub default: ConnectionProxies,
    /// Per-exchange proxies, by lower-case exchange id.
    #[serde(default, deserialize_with = "deserialize_exchanges")]
    pub exchanges: BTreeMap<ExchangeId, ConnectionProxies>,
}

fn enabled_by_default() -> bool {
    true
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            default: ConnectionProxies::default(),
            exchanges: BTreeMap::new(),
        }
    }
}

impl ProxySettings {
    /// Settings that send everything direct.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Sets the default proxy for REST connections.
    #[must_use]
    pub fn with_default_http(mut self, proxy: ProxyConfig) -> Self {
        self.default.http = Some(proxy);
        self
    }

    /// Sets the default proxy for WebSocket connections.
    #[must_use]
    pub fn with_default_websocket(mut self, proxy: ProxyConfig) -> Self {
        self.default.websocket = Some(proxy);
        self
    }

    /// Sets the proxies of one exchange, replacing any it had.
    #[must_use]
    pub fn with_exchange(mut self, id: ExchangeId, proxies: ConnectionProxies) -> Self {
        self.exchanges.insert(id, proxies);
        self
    }

    /// The proxies of one exchange, by id in any case.
    pub fn exchange(&self, id: &str) -> Option<&ConnectionProxies> {
        let id = ExchangeId::new(id).ok()?;
        self.exchanges.get(&id)
    }
}

// serde's own errors quote a string found where another type belongs (`invalid type: string
// "http://user:pass@..."`), and a proxy URL in the wrong place is a common mistake: the derived
// impls (`remote = "Self"` makes them inherent functions) are wrapped so that every error loses
// the quoted strings before it leaves.
macro_rules! redacted_serde {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                <$ty>::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$ty>::deserialize(deserializer).map_err(redact_error)
            }
        }
    )*};
}

redacted_serde!(ProxyConfig, ConnectionProxies, ProxySettings);

/// The error with every quoted string (`string "..."`, as serde's `Unexpected::Str` writes it)
/// cut to `string`, and the user info cut from an unknown field's name (a proxy URL written
/// where a key belongs: ``unknown field `***@host:1` ``).
fn redact_error<E: serde::de::Error>(error: E) -> E {
    let text = error.to_string();
    if text.contains("string \"") || text.contains(UNKNOWN_FIELD) {
        E::custom(redact_unknown_field(&redact_quoted_strings(&text)))
    } else {
        error
    }
}

/// How serde's `unknown_field` error starts; the name follows as written, unescaped, and ends
/// at the last "`, expected" or "`, there are no fields".
const UNKNOWN_FIELD: &str = "unknown field `";

fn redact_unknown_field(text: &str) -> String {
    let Some(start) = text.find(UNKNOWN_FIELD).map(|at| at + UNKNOWN_FIELD.len()) else {
        return text.to_owned();
    };
    let rest = &text[start..];
    let end = ["`, expected", "`, there are no fields"]
        .iter()
        .filter_map(|tail| rest.rfind(tail))
        .max()
        .unwrap_or(rest.len());
    format!(
        "{}{}{}",
        &text[..start],
        crate::secret::without_userinfo(rest[..end].to_owned()),
        &rest[end..]
    )
}

fn redact_quoted_strings(text: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at + MARK.len() - 2]);
        let quoted = &rest[at + MARK.len()..];
        // The string is written with `{:?}`: it ends at the first quote not escaped.
        let mut escaped = false;
        let mut end = quoted.len();
        for (index, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = index + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

fn deserialize_exchanges<'de, D>(
    deserializer: D,
) -> Result<BTreeMap<ExchangeId, ConnectionProxies>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor;
    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = BTreeMap<ExchangeId, ConnectionProxies>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map from exchange id to its proxies")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(raw) = map.next_key::<String>()? {
                let id = ExchangeId::new(&raw).map_err(serde::de::Error::custom)?;
                let proxies: ConnectionProxies = map.next_value()?;
                if out.insert(id.clone(), proxies).is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "exchange id \"{id}\" given twice (ids are case-insensitive)"
                    )));
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Visitor)
}

#[cfg(test)]
mod tests {
    use super::{redact_quoted_strings, redact_unknown_field};

    #[test]
    fn user_info_is_cut_from_unknown_field_names() {
        let cases = [
            (
                "unknown field `http://alice:hunter2@h:1`, expected `http` or `websocket`",
                "unknown field `***@h:1`, expected `http` or `websocket`",
            ),
            (
                "unknown field `a`, expected x@y`, expected one of `url`",
                "unknown field `***@y`, expected one of `url`",
            ),
            (
                "unknown field `u:p@h`, there are no fields",
                "unknown field `***@h`, there are no fields",
            ),
            ("unknown field `u:p@h", "unknown field `***@h"),
            (
                "unknown field `urls`, expected `url`",
                "unknown field `urls`, expected `url`",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_unknown_field(text), expected, "{text}");
        }
    }

    #[test]
    fn quoted_strings_are_cut_from_serde_messages() {
        let cases = [
            (
                r#"invalid type: string "http://u:p@h:1", expected struct ProxyConfig"#,
                "invalid type: string, expected struct ProxyConfig",
            ),
            (
                r#"invalid type: string "a\"b\\", expected a boolean at line 2"#,
                "invalid type: string, expected a boolean at line 2",
            ),
            (r#"x string "one" y string "two""#, "x string y string"),
            (r#"cut string "never closed"#, "cut string"),
            ("unknown field `urls`", "unknown field `urls`"),
        ];
        for (text, expected) in cases {
            assert_eq!(redact_quoted_strings(text), expected, "{text}");
        }
    }
}
