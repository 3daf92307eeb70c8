//! `Loader`: collects the sources, merges them (code < files < environment, field by field) and
//! validates the result into `ProxySettings`, remembering where each value came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, ConfigErrorKind};
use crate::settings::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings, TimeoutSeconds};
use crate::source::code::code_tree;
use crate::source::env::{RawVar, env_tree};
use crate::source::file::{Format, file_tree, text_tree};
use crate::tree::{Entry, Origin, Table, Value, merge};

pub use crate::source::env::{ENV_PREFIX, conventional_proxy_vars, conventional_proxy_vars_in};

const ROOT_KEYS: &[&str] = &["enabled", "default", "exchanges"];
const TRANSPORT_KEYS: &[&str] = &["http", "websocket"];
const PROXY_KEYS: &[&str] = &["url", "timeout_seconds"];

enum FileSource {
    Path(PathBuf),
    Text {
        name: PathBuf,
        text: String,
        format: Format,
    },
}

/// Collects settings sources and loads them.
///
/// Precedence, lowest first: [`Loader::code`], the files in the order given, then the
/// environment. Every key is merged on its own: a file that sets only
/// `exchanges.binance.http.url` keeps the code's `timeout_seconds` for that proxy.
#[derive(Default)]
pub struct Loader {
    code: Option<ProxySettings>,
    files: Vec<FileSource>,
    env: Option<Vec<RawVar>>,
}

impl Loader {
    /// A loader with no sources: loading it gives `ProxySettings::default()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// The program's own settings, the lowest precedence.
    #[must_use]
    pub fn code(mut self, settings: ProxySettings) -> Self {
        self.code = Some(settings);
        self
    }

    /// A YAML (`.yaml`, `.yml`) or TOML (`.toml`) file, read when loading. YAML settings sit under
    /// a top-level `proxy:` key, TOML ones in a `[proxy]` table; everything else is ignored.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>) -> Self {
        self.files
            .push(FileSource::Path(path.as_ref().to_path_buf()));
        self
    }

    /// YAML text, as if read from a file called `name`.
    #[must_use]
    pub fn yaml_str(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.files.push(FileSource::Text {
            name: name.into(),
            text: text.into(),
            format: Format::Yaml,
        });
        self
    }

    /// TOML text, as if read from a file called `name`.
    #[must_use]
    pub fn toml_str(mut self, name: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        self.files.push(FileSource::Text {
            name: name.into(),
            text: text.into(),
            format: Format::Toml,
        });
        self
    }

    /// The process environment as it is now (variables starting with `CRYPTOFEED_PROXY_`).
    #[must_use]
    pub fn process_env(mut self) -> Self {
        self.env = Some(std::env::vars_os().collect());
        self
    }

    /// These variables instead of the process environment (for tests and embedding). Names
    /// without the `CRYPTOFEED_PROXY_` prefix are ignored.
    #[must_use]
    pub fn env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        self.env = Some(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Merges and validates the sources.
    pub fn load(self) -> Result<ProxySettings, ConfigError> {
        self.load_explained().map(|loaded| loaded.settings)
    }

    /// Like [`Loader::load`], and also tells where each value came from.
    pub fn load_explained(self) -> Result<LoadedSettings, ConfigError> {
        let mut root = Table::new();
        if let Some(code) = &self.code {
            merge(&mut root, code_tree(code));
        }
        for file in self.files {
            let tree = match file {
                FileSource::Path(path) => file_tree(&path)?,
                FileSource::Text { name, text, format } => text_tree(name, &text, format)?,
            };
            merge(&mut root, tree);
        }
        if let Some(vars) = self.env {
            merge(&mut root, env_tree(vars)?);
        }
        let mut origins = BTreeMap::new();
        let settings = settings_from(root, &mut origins)?;
        Ok(LoadedSettings { settings, origins })
    }
}

/// Loaded settings and the source of each value.
#[derive(Debug, Clone)]
pub struct LoadedSettings {
    /// The merged, validated settings.
    pub settings: ProxySettings,
    origins: BTreeMap<String, Origin>,
}

impl LoadedSettings {
    /// Where the value at a key path came from (`enabled`,
    /// `exchanges.binance.websocket.timeout_seconds`, ...); [`Origin::Default`] when no source set
    /// it.
    pub fn origin(&self, key: &str) -> &Origin {
        self.origins.get(key).unwrap_or(&Origin::Default)
    }

    /// Every key path some source set, with its origin.
    pub fn origins(&self) -> impl Iterator<Item = (&str, &Origin)> {
        self.origins.iter().map(|(k, o)| (k.as_str(), o))
    }
}

/// The walk that validates a merged tree. Every error names the key path and the origin.
fn settings_from(
    root: Table,
    origins: &mut BTreeMap<String, Origin>,
) -> Result<ProxySettings, ConfigError> {
    let mut settings = ProxySettings::default();
    for (key, entry) in root {
        if is_null(&entry) && ROOT_KEYS.contains(&key.as_str()) {
            continue;
        }
        match key.as_str() {
            "enabled" => {
                settings.enabled = bool_value(&key, &entry)?;
                origins.insert(key, entry.origin);
            }
            "default" => {
                let table = table_value(&key, entry, "a table with keys http, websocket")?;
                settings.default = proxies_from(&key, table, origins)?;
            }
            "exchanges" => {
                let table = table_value(&key, entry, "a table of exchange ids")?;
                for (raw_id, entry) in table {
                    let path = format!("exchanges.{raw_id}");
                    let id = ExchangeId::new(&raw_id).map_err(|e| {
                        ConfigError::new(
                            path.clone(),
                            Some(entry.origin.clone()),
                            ConfigErrorKind::ExchangeId(e),
                        )
                    })?;
                    if is_null(&entry) {
                        continue;
                    }
                    let path = format!("exchanges.{id}");
                    let table = table_value(&path, entry, "a table with keys http, websocket")?;
                    let proxies = proxies_from(&path, table, origins)?;
                    settings.exchanges.insert(id, proxies);
                }
            }
            _ => return Err(unknown(&key, "", entry, ROOT_KEYS)),
        }
    }
    Ok(settings)
}

fn proxies_from(
    path: &str,
    table: Table,
    origins: &mut BTreeMap<String, Origin>,
) -> Result<ConnectionProxies, ConfigError> {
    let mut proxies = ConnectionProxies::default();
    for (key, entry) in table {
        let slot = match key.as_str() {
            "http" => &mut proxies.http,
            "websocket" => &mut proxies.websocket,
            _ => return Err(unknown(&key, path, entry, TRANSPORT_KEYS)),
        };
        if is_null(&entry) {
            continue;
        }
        let key_path = format!("{path}.{key}");
        let proxy_origin = entry.origin.clone();
        let table = table_value(&key_path, entry, "a table with keys url, timeout_seconds")?;
        *slot = proxy_from(&key_path, table, proxy_origin, origins)?;
    }
    Ok(proxies)
}

/// `None` for an empty table (e.g. a YAML `http:` with nothing under it).
fn proxy_from(
    path: &str,
    table: Table,
    table_origin: Origin,
    origins: &mut BTreeMap<String, Origin>,
) -> Result<Option<ProxyConfig>, ConfigError> {
    let mut url = None;
    let mut timeout = None;
    for (key, entry) in table {
        if is_null(&entry) && PROXY_KEYS.contains(&key.as_str()) {
            continue;
        }
        let key_path = format!("{path}.{key}");
        match key.as_str() {
            "url" => {
                let parsed = match &entry.value {
                    Value::Url(url) => url.clone(),
                    Value::Str(text) => text.parse().map_err(|e| {
                        ConfigError::new(
                            key_path.clone(),
                            Some(entry.origin.clone()),
                            ConfigErrorKind::Url(e),
                        )
                    })?,
                    other => {
                        return Err(wrong_type(&key_path, &entry, "a proxy URL string", other));
                    }
                };
                url = Some(parsed);
                origins.insert(key_path, entry.origin);
            }
            "timeout_seconds" => {
                timeout = Some(timeout_value(&key_path, &entry)?);
                origins.insert(key_path, entry.origin);
            }
            _ => return Err(unknown(&key, path, entry, PROXY_KEYS)),
        }
    }
    match (url, timeout) {
        (Some(url), timeout) => Ok(Some(ProxyConfig {
            url,
            timeout_seconds: timeout.unwrap_or_default(),
        })),
        (None, None) => Ok(None),
        (None, Some(_)) => {
            let origin = origins
                .get(&format!("{path}.timeout_seconds"))
                .cloned()
                .unwrap_or(table_origin);
            Err(ConfigError::new(
                format!("{path}.url"),
                Some(origin),
                ConfigErrorKind::MissingUrl,
            ))
        }
    }
}

fn bool_value(key: &str, entry: &Entry) -> Result<bool, ConfigError> {
    match &entry.value {
        Value::Bool(b) => Ok(*b),
        Value::Str(text) if matches!(entry.origin, Origin::Env(_)) => {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    key.to_owned(),
                    Some(entry.origin.clone()),
                    ConfigErrorKind::InvalidValue {
                        expected: "true or false",
                    },
                )),
            }
        }
        other => Err(wrong_type(key, entry, "true or false", other)),
    }
}

fn timeout_value(key: &str, entry: &Entry) -> Result<TimeoutSeconds, ConfigError> {
    let out_of_range = |e| {
        ConfigError::new(
            key.to_owned(),
            Some(entry.origin.clone()),
            ConfigErrorKind::Timeout(e),
        )
    };
    match &entry.value {
        Value::Timeout(t) => Ok(*t),
        Value::Int(n) => {
            let seconds = u64::try_from(*n).unwrap_or(u64::MAX);
            TimeoutSeconds::new(seconds)
                .map_err(|_| out_of_range(crate::settings::TimeoutOutOfRange(n.to_string())))
        }
        Value::Str(text) if matches!(entry.origin, Origin::Env(_)) => {
            let text = text.trim();
            let digits = text.strip_prefix('-').unwrap_or(text);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::new(
                    key.to_owned(),
                    Some(entry.origin.clone()),
                    ConfigErrorKind::InvalidValue {
                        expected: "a whole number of seconds from 1 to 300",
                    },
                ));
            }
            let shown: String = text.chars().take(12).collect();
            let seconds = if text.starts_with('-') {
                u64::MAX
            } else {
                text.parse().unwrap_or(u64::MAX)
            };
            TimeoutSeconds::new(seconds)
                .map_err(|_| out_of_range(crate::settings::TimeoutOutOfRange(shown)))
        }
        other => Err(wrong_type(
            key,
            entry,
            "a whole number of seconds from 1 to 300",
            other,
        )),
    }
}

/// A null (an empty key in YAML): sets nothing, once its name has been checked.
fn is_null(entry: &Entry) -> bool {
    matches!(entry.value, Value::Null)
}

fn table_value(key: &str, entry: Entry, expected: &'static str) -> Result<Table, ConfigError> {
    match entry.value {
        Value::Table(table) => Ok(table),
        ref other => Err(wrong_type(key, &entry, expected, other)),
    }
}

fn wrong_type(key: &str, entry: &Entry, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::new(
        key.to_owned(),
        Some(entry.origin.clone()),
        ConfigErrorKind::WrongType {
            expected,
            found: found.kind_name(),
        },
    )
}

fn unknown(
    key: &str,
    parent: &str,
    entry: Entry,
    expected: &'static [&'static str],
) -> ConfigError {
    // An empty key is shown as `""`, so the path still names it.
    let key = if key.is_empty() { "\"\"" } else { key };
    let path = if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    };
    ConfigError::new(
        path,
        Some(entry.origin),
        ConfigErrorKind::UnknownKey { expected },
    )
}
