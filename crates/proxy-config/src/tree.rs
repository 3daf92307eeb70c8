//! The source-neutral settings tree: every source (code, file, environment) becomes a tree of
//! values tagged with their origin; trees merge leaf by leaf, higher precedence last.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::settings::TimeoutSeconds;
use crate::url::ProxyUrl;

/// Where a setting came from, as error messages and `feedproxy check` name it.
///
/// Display and Debug are safe to log: a proxy URL with credentials given as a file path
/// (`--config http://user:pw@host:1`) or inside a variable name shows without its user info
/// (`***@host:1`). The variants hold the path and name as given.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// Not set anywhere: the built-in default.
    Default,
    /// Set by the program (`Loader::code`).
    Code,
    /// Set in a YAML or TOML file (or text given as one).
    File(PathBuf),
    /// Set by this environment variable.
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::Code => f.write_str("code"),
            Origin::File(path) => write!(f, "file {}", shown_path(path)),
            Origin::Env(name) => f.write_str(&shown_name(name)),
        }
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("Default"),
            Origin::Code => f.write_str("Code"),
            Origin::File(path) => f.debug_tuple("File").field(&shown_path(path)).finish(),
            Origin::Env(name) => f.debug_tuple("Env").field(&shown_name(name)).finish(),
        }
    }
}

/// A file path as shown: cut like a key path when what comes before its last `@` holds a `:`
/// (`user:password@`); a path such as `configs/proxy@prod.yaml` is kept.
fn shown_path(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    match text.rfind('@') {
        Some(at) if text[..at].contains(':') => crate::secret::without_userinfo(text),
        _ => text,
    }
}

/// A variable name as shown: no name of ours holds an `@`, so everything up to the last one
/// is cut.
pub(crate) fn shown_name(name: &str) -> String {
    crate::secret::without_userinfo(name.to_owned())
}

/// A value in a source tree.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Table(Table),
    Str(String),
    Int(i128),
    Float,
    Bool(bool),
    Array,
    Null,
    /// Already validated, from code.
    Url(ProxyUrl),
    /// Already validated, from code.
    Timeout(TimeoutSeconds),
}

impl Value {
    /// What a type error calls this value.
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Value::Table(_) => "a table",
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float => "a floating-point number",
            Value::Bool(_) => "a boolean",
            Value::Array => "a list",
            Value::Null => "nothing",
            Value::Url(_) => "a proxy URL",
            Value::Timeout(_) => "a timeout",
        }
    }
}

/// A value and where it came from. A table's origin is that of its first leaf.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
}

pub(crate) type Table = BTreeMap<String, Entry>;

/// Merges `higher` into `lower`: tables merge key by key, anything else replaces. A null in the
/// higher source sets nothing: it leaves a key `lower` has as it is, and where `lower` has no
/// such key it stays as a marker, so that validation still checks its name and then skips it
/// (an empty `http:` in YAML is "not set", an empty `htpp:` an unknown key).
pub(crate) fn merge(lower: &mut Table, higher: Table) {
    for (key, entry) in higher {
        if matches!(entry.value, Value::Null) && lower.contains_key(&key) {
            continue;
        }
        match (lower.get_mut(&key), entry.value) {
            (
                Some(Entry {
                    value: Value::Table(low),
                    ..
                }),
                Value::Table(high),
            ) => merge(low, high),
            (_, value) => {
                lower.insert(
                    key,
                    Entry {
                        value,
                        origin: entry.origin,
                    },
                );
            }
        }
    }
}
