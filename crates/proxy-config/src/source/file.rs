//! Settings from a YAML file's `proxy:` block or a TOML file's `[proxy]` table, parsed by the
//! `config` crate (yaml-rust2, toml). The rest of the file is left alone, so the block can sit in
//! an existing feed configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{FileFormat, Source, ValueKind};

use crate::error::{ConfigError, ConfigErrorKind};
use crate::tree::{Entry, Origin, Table, Value};

/// The format of a settings file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Yaml,
    Toml,
}

impl Format {
    pub(crate) fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Toml => "TOML",
        }
    }
}

/// Reads and parses a file; the format comes from the extension.
pub(crate) fn file_tree(path: &Path) -> Result<Table, ConfigError> {
    let origin = Origin::File(path.to_path_buf());
    let format = Format::from_path(path).ok_or_else(|| {
        ConfigError::new(
            String::new(),
            Some(origin.clone()),
            ConfigErrorKind::UnknownFormat,
        )
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(String::new(), Some(origin), ConfigErrorKind::ReadFile(e)))?;
    text_tree(path.to_path_buf(), &text, format)
}

/// Parses settings text; `name` is what errors call the source.
pub(crate) fn text_tree(name: PathBuf, text: &str, format: Format) -> Result<Table, ConfigError> {
    let origin = Origin::File(name);
    let fail = |key: &str, kind| ConfigError::new(key.to_owned(), Some(origin.clone()), kind);
    let file_format = match format {
        Format::Yaml => {
            if let Some(line) = alias_overflow(text, ConfigErrorKind::ALIAS_BUDGET) {
                return Err(fail("", ConfigErrorKind::AliasExpansion { line }));
            }
            FileFormat::Yaml
        }
        Format::Toml => FileFormat::Toml,
    };
    let mut root = config::File::from_str(text, file_format)
        .collect()
        .map_err(|e| {
            fail(
                "",
                ConfigErrorKind::Parse {
                    format: format.name(),
                    message: sanitize_parse_error(&e),
                },
            )
        })?;
    let Some(proxy) = root.remove("proxy") else {
        // Keys are case-sensitive, so a `Proxy:` block would be ignored and every route go
        // direct: refuse it, naming the key to write.
        if let Some(key) = root.keys().find(|key| key.eq_ignore_ascii_case("proxy")) {
            return Err(fail(
                key,
                ConfigErrorKind::UnknownKey {
                    expected: &["proxy"],
                },
            ));
        }
        return Ok(Table::new());
    };
    match proxy.kind {
        ValueKind::Table(table) => convert_table(table, &[], &origin),
        ValueKind::Nil => Ok(Table::new()),
        other => Err(fail(
            "proxy",
            ConfigErrorKind::WrongType {
                expected: "a table of proxy settings",
                found: convert(other, &[], &origin)?.kind_name(),
            },
        )),
    }
}

/// What one value costs the loader, besides its text: about a yaml-rust2 node and a config
/// value.
const VALUE_COST: u64 = 64;

/// The line at which the bytes the YAML loader copies for anchors and aliases pass `limit`, or
/// `None`.
///
/// yaml-rust2's loader copies an anchored node whole when it is defined (into its anchor map)
/// and again at each alias, so nine lines of nested aliases make 10^9 values, and one alias of
/// a long string copies the string: either aborts the process on allocation. This walks the
/// parser's events once, keeping each anchor's expanded size in bytes (each value
/// [`VALUE_COST`] plus its text, saturating), and stops at the limit. Text the parser refuses
/// returns `None`: the load that follows reports it as usual.
fn alias_overflow(text: &str, limit: u64) -> Option<usize> {
    use yaml_rust2::parser::{Event, Parser};

    // Expanded size by anchor id (ids count up from 1 in the order anchors are defined; a
    // redefined name gets a new id, so an alias always refers to a finished node).
    let mut anchors: Vec<u64> = Vec::new();
    // Open sequences and mappings: their anchor id and their size so far.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut copied: u64 = 0;
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, marker) = parser.next_token().ok()?;
        // A finished node: its size and its anchor id (0 for none).
        let (size, anchor) = match event {
            Event::StreamEnd => return None,
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, VALUE_COST));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, size) = open.pop().unwrap_or((0, VALUE_COST));
                (size, anchor)
            }
            Event::Scalar(text, _, anchor, _) => (
                VALUE_COST.saturating_add(u64::try_from(text.len()).unwrap_or(u64::MAX)),
                anchor,
            ),
            Event::Alias(id) => {
                // An alias inside its own anchor's node has no size yet; the loader makes it a
                // single bad value.
                let size = id
                    .checked_sub(1)
                    .and_then(|index| anchors.get(index))
                    .copied()
                    .filter(|&size| size > 0)
                    .unwrap_or(VALUE_COST);
                copied = copied.saturating_add(size);
                if copied > limit {
                    return Some(marker.line());
                }
                (size, 0)
            }
            Event::Nothing | Event::StreamStart | Event::DocumentStart | Event::DocumentEnd => {
                continue;
            }
        };
        if anchor > 0 {
            // The loader keeps a copy of every anchored node.
            copied = copied.saturating_add(size);
            if copied > limit {
                return Some(marker.line());
            }
            if anchors.len() < anchor {
                anchors.resize(anchor, 0);
            }
            anchors[anchor - 1] = size;
        }
        if let Some((_, parent)) = open.last_mut() {
            *parent = parent.saturating_add(size);
        }
    }
}

fn convert_table(
    table: config::Map<String, config::Value>,
    path: &[&str],
    origin: &Origin,
) -> Result<Table, ConfigError> {
    // Under `exchanges`, keys are exchange ids: case-insensitive, one spelling per file.
    let ids = path == ["exchanges"];
    let mut spellings: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Table::new();
    for (raw_key, value) in table {
        let key = if ids {
            raw_key.to_ascii_lowercase()
        } else {
            raw_key.clone()
        };
        if ids && let Some(other) = spellings.insert(key.clone(), raw_key.clone()) {
            // The parser's map has no stable order: name the spellings sorted.
            let (first, second) = if other <= raw_key {
                (other, raw_key)
            } else {
                (raw_key, other)
            };
            return Err(ConfigError::new(
                format!("exchanges.{key}"),
                Some(origin.clone()),
                ConfigErrorKind::DuplicateExchange {
                    first: crate::secret::without_userinfo(first),
                    second: crate::secret::without_userinfo(second),
                    other_source: None,
                },
            ));
        }
        let mut child_path = path.to_vec();
        child_path.push(&key);
        let value = convert(value.kind, &child_path, origin)?;
        out.insert(
            key,
            Entry {
                value,
                origin: origin.clone(),
            },
        );
    }
    Ok(out)
}

fn convert(kind: ValueKind, path: &[&str], origin: &Origin) -> Result<Value, ConfigError> {
    Ok(match kind {
        ValueKind::Nil => Value::Null,
        ValueKind::Boolean(b) => Value::Bool(b),
        ValueKind::I64(n) => Value::Int(i128::from(n)),
        ValueKind::I128(n) => Value::Int(n),
        ValueKind::U64(n) => Value::Int(i128::from(n)),
        ValueKind::U128(n) => Value::Int(i128::try_from(n).unwrap_or(i128::MAX)),
        ValueKind::Float(_) => Value::Float,
        ValueKind::String(s) => Value::Str(s),
        ValueKind::Table(t) => Value::Table(convert_table(t, path, origin)?),
        ValueKind::Array(_) => Value::Array,
    })
}

/// Parser messages can quote the input, and the input may hold a password: toml quotes the
/// offending line (under a `|` gutter), yaml-rust2 quotes keys as Rust strings
/// (`String("..."): duplicated key`), and the config crate quotes a whole top-level scalar
/// (`invalid type: string "...", expected a map`), which is the entire file when it holds only
/// a URL. Keep what describes the problem and where it is, never the quoted text.
fn sanitize_parse_error(error: &config::ConfigError) -> String {
    let text = match error {
        config::ConfigError::FileParse { cause, .. } => {
            // config boxes this error twice (`Box<ConfigError>` inside the cause's box).
            let config_error = cause
                .downcast_ref::<Box<config::ConfigError>>()
                .map(|boxed| &**boxed)
                .or_else(|| cause.downcast_ref::<config::ConfigError>());
            if let Some(config::ConfigError::Type { unexpected, .. }) = config_error {
                // config's `Unexpected` cannot be named here; its Debug starts with the variant
                // name (`Str("...")`), which is all that is kept.
                let debug = format!("{unexpected:?}");
                let variant = debug.split('(').next().unwrap_or_default();
                return format!("the top level is {}, not a table", kind_name(variant));
            }
            cause.to_string()
        }
        other => other.to_string(),
    };
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|'))
        .collect();
    redact_quoted(&kept.join("; "))
}

/// What a type error calls a value of config's `Unexpected` variant.
fn kind_name(variant: &str) -> &'static str {
    match variant {
        "Bool" => "a boolean",
        "I64" | "I128" | "U64" | "U128" => "an integer",
        "Float" => "a floating-point number",
        "Str" => "a string",
        "Unit" => "nothing",
        "Seq" => "a list",
        "Map" => "a table",
        _ => "a value",
    }
}

/// Replaces every double-quoted string (Rust `Debug` form, `\` escapes) with `"***"`. A lone
/// `"` (toml writes ``expected `"`, `'` ``) is kept.
fn redact_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let mut escaped = false;
        let close = after.char_indices().find_map(|(at, c)| {
            let end = !escaped && c == '"';
            escaped = !escaped && c == '\\';
            end.then_some(at)
        });
        let Some(close) = close else { break };
        out.push_str(&rest[..open]);
        out.push_str("\"***\"");
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}
