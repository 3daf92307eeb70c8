//! Settings from environment variables: `CRYPTOFEED_PROXY_` prefix, `__` between keys, e.g.
//! `CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL`. The prefix and the key names are
//! case-insensitive, as in cryptofeed (pydantic-settings), so `cryptofeed_proxy_default__http__url`
//! is read too rather than ignored.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::error::{ConfigError, ConfigErrorKind};
use crate::tree::{Entry, Origin, Table, Value};

/// The prefix of every variable this crate reads, in any case.
pub const ENV_PREFIX: &str = "CRYPTOFEED_PROXY_";

/// The proxy variables other tools read (curl, pip, Go, ...) and feedproxy does not.
const CONVENTIONAL_PROXY_VARS: [&str; 4] = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"];

/// The names, as spelled, of the conventional proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`,
/// `ALL_PROXY`, `NO_PROXY`, in any case) that the process environment sets to something
/// non-empty, sorted. feedproxy does not read them; `feedproxy check` names them so that a
/// user who expected them to apply is told. Names only: their values may hold credentials.
pub fn conventional_proxy_vars() -> Vec<String> {
    conventional_proxy_vars_in(std::env::vars_os())
}

/// [`conventional_proxy_vars`] over the given variables.
pub fn conventional_proxy_vars_in<I, K, V>(vars: I) -> Vec<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<OsString>,
    V: Into<OsString>,
{
    let mut names: Vec<String> = vars
        .into_iter()
        .map(|(name, value)| (name.into(), value.into()))
        .filter(|(_, value): &(OsString, OsString)| !value.is_empty())
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            CONVENTIONAL_PROXY_VARS
                .iter()
                .any(|known| known.eq_ignore_ascii_case(name))
        })
        .collect();
    names.sort();
    names
}

/// A variable as read from the process: name and value may not be UTF-8.
pub(crate) type RawVar = (OsString, OsString);

/// Builds the tree of the variables that start with [`ENV_PREFIX`] in any case; others are
/// ignored. Sorted by name first, so the outcome (and the first error) does not depend on the
/// environment's order.
pub(crate) fn env_tree(vars: Vec<RawVar>) -> Result<Table, ConfigError> {
    let mut ours: BTreeMap<String, OsString> = BTreeMap::new();
    for (name, value) in vars {
        // A name that is not UTF-8 cannot start with our prefix in any meaningful way.
        if let Ok(name) = name.into_string()
            && name
                .get(..ENV_PREFIX.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
        {
            ours.insert(name, value);
        }
    }

    let mut root = Table::new();
    // lower-case exchange id -> the variable that first spelled it
    let mut spellings: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, value) in ours {
        let origin = Origin::Env(name.clone());
        let fail = |key: String, kind| ConfigError::new(key, Some(origin.clone()), kind);
        let rest = &name[ENV_PREFIX.len()..];
        let raw_segments: Vec<&str> = rest.split("__").collect();
        let segments: Vec<String> = raw_segments
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if segments.iter().any(String::is_empty) {
            return Err(fail(segments.join("."), ConfigErrorKind::MalformedEnvName));
        }
        let key = segments.join(".");
        let Ok(value) = value.into_string() else {
            return Err(fail(key, ConfigErrorKind::NotUtf8));
        };
        if value.trim().is_empty() {
            return Err(fail(key, ConfigErrorKind::Empty));
        }
        if segments.len() >= 2 && segments[0] == "exchanges" {
            let spelled = raw_segments[1].to_owned();
            match spellings.get(&segments[1]) {
                Some((first, first_var)) if *first != spelled => {
                    return Err(fail(
                        format!("exchanges.{}", segments[1]),
                        ConfigErrorKind::DuplicateExchange {
                            first: crate::secret::without_userinfo(first.clone()),
                            second: crate::secret::without_userinfo(spelled),
                            other_source: Some(crate::tree::shown_name(first_var)),
                        },
                    ));
                }
                Some(_) => {}
                None => {
                    spellings.insert(segments[1].clone(), (spelled, name.clone()));
                }
            }
        }
        insert_leaf(&mut root, &segments, Value::Str(value), &origin)?;
    }
    Ok(root)
}

fn insert_leaf(
    root: &mut Table,
    segments: &[String],
    value: Value,
    origin: &Origin,
) -> Result<(), ConfigError> {
    let mut table = root;
    for (depth, segment) in segments.iter().enumerate() {
        let last = depth + 1 == segments.len();
        let key = segments[..=depth].join(".");
        if last {
            if let Some(existing) = table.get(segment) {
                return Err(conflict(key, origin, &existing.origin));
            }
            table.insert(
                segment.clone(),
                Entry {
                    value,
                    origin: origin.clone(),
                },
            );
            return Ok(());
        }
        let entry = table.entry(segment.clone()).or_insert_with(|| Entry {
            value: Value::Table(Table::new()),
            origin: origin.clone(),
        });
        match &mut entry.value {
            Value::Table(inner) => table = inner,
            _ => return Err(conflict(key, origin, &entry.origin)),
        }
    }
    Ok(())
}

fn conflict(key: String, origin: &Origin, other: &Origin) -> ConfigError {
    ConfigError::new(
        key,
        Some(origin.clone()),
        ConfigErrorKind::Conflict {
            other: other.to_string(),
        },
    )
}
