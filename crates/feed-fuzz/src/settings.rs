//! Settings loading from YAML text, TOML text and a map of environment variables, through
//! proxy-config's `Loader` (`yaml_str`, `toml_str`, `env_vars`): the process environment is
//! never read.

use std::ffi::OsString;
use std::path::PathBuf;

use proxy_config::{
    ConfigError, ConfigErrorKind, ConnectionProxies, ENV_PREFIX, ExchangeId, LoadedSettings,
    Loader, Origin, ProxyConfig, ProxySettings, ProxyUrl,
};

use crate::CANARY;
use crate::url::{check_accepted, full_text};

/// The name the YAML text is loaded as.
const YAML_NAME: &str = "fuzz.yaml";
/// The name the TOML text is loaded as.
const TOML_NAME: &str = "fuzz.toml";

/// Which source a target loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Yaml,
    Toml,
    Env,
}

/// Fuzz target `settings_yaml`: the input (lossy UTF-8) as a YAML settings file.
pub fn settings_yaml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = Loader::new()
        .yaml_str(YAML_NAME, text.as_ref())
        .load_explained();
    check(Source::Yaml, loaded);
}

/// Fuzz target `settings_toml`: the input (lossy UTF-8) as a TOML settings file.
pub fn settings_toml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let loaded = Loader::new()
        .toml_str(TOML_NAME, text.as_ref())
        .load_explained();
    check(Source::Toml, loaded);
}

/// Fuzz target `settings_env`: the input as environment variables, one `NAME=VALUE` per line
/// (bytes, so names and values may be invalid UTF-8). `CRYPTOFEED_PROXY_` is put before each
/// name, except on lines starting with `!`, whose name is taken as written.
pub fn settings_env(data: &[u8]) {
    let vars: Vec<(OsString, OsString)> = data
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = match line.iter().position(|&b| b == b'=') {
                Some(at) => (&line[..at], &line[at + 1..]),
                None => (line, &line[line.len()..]),
            };
            let name = match name.strip_prefix(b"!") {
                Some(verbatim) => verbatim.to_vec(),
                None => [ENV_PREFIX.as_bytes(), name].concat(),
            };
            (os_string(name), os_string(value.to_vec()))
        })
        .collect();
    let loaded = Loader::new().env_vars(vars).load_explained();
    check(Source::Env, loaded);
}

#[cfg(unix)]
fn os_string(bytes: Vec<u8>) -> OsString {
    std::os::unix::ffi::OsStringExt::from_vec(bytes)
}

#[cfg(not(unix))]
fn os_string(bytes: Vec<u8>) -> OsString {
    OsString::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// `name` after [`ENV_PREFIX`], which is read in any case.
fn strip_env_prefix(name: &str) -> Option<&str> {
    name.get(..ENV_PREFIX.len())
        .filter(|prefix| prefix.eq_ignore_ascii_case(ENV_PREFIX))
        .map(|_| &name[ENV_PREFIX.len()..])
}

fn check(source: Source, loaded: Result<LoadedSettings, ConfigError>) {
    match loaded {
        Ok(loaded) => check_loaded(source, &loaded),
        Err(error) => check_error(source, &error),
    }
}

fn check_loaded(source: Source, loaded: &LoadedSettings) {
    let settings = &loaded.settings;
    for (key, origin) in loaded.origins() {
        match (source, origin) {
            (Source::Yaml, Origin::File(path)) => assert_eq!(path, &PathBuf::from(YAML_NAME)),
            (Source::Toml, Origin::File(path)) => assert_eq!(path, &PathBuf::from(TOML_NAME)),
            (Source::Env, Origin::Env(name)) => {
                let rest = strip_env_prefix(name)
                    .unwrap_or_else(|| panic!("{name} set {key} without the prefix"));
                let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
                assert_eq!(path.join("."), key, "{name} is not the variable for {key}");
            }
            _ => panic!("{key} comes from {origin:?}, not from the {source:?} source"),
        }
    }

    for url in urls(settings) {
        check_accepted(url);
    }
    let bare = without_credentials(settings);
    assert_eq!(
        format!("{settings:?}").replace("Some(***)", "None"),
        format!("{bare:?}"),
        "Debug of settings shows more than `***` for credentials"
    );
    assert_eq!(
        serde_json::to_value(settings).ok(),
        serde_json::to_value(&bare).ok(),
        "serialized settings carry credentials"
    );

    // Written out in each source format, the settings load back equal.
    let yaml = Loader::new().yaml_str(YAML_NAME, to_yaml(settings)).load();
    assert_eq!(
        yaml.as_ref().ok(),
        Some(settings),
        "YAML round trip: {yaml:?}"
    );
    let toml = Loader::new().toml_str(TOML_NAME, to_toml(settings)).load();
    assert_eq!(
        toml.as_ref().ok(),
        Some(settings),
        "TOML round trip: {toml:?}"
    );
    if let Some(vars) = to_env(settings) {
        let env = Loader::new().env_vars(vars).load();
        assert_eq!(env.as_ref().ok(), Some(settings), "env round trip: {env:?}");
    } else {
        assert_ne!(
            source,
            Source::Env,
            "settings from the environment cannot be written back"
        );
    }
}

fn check_error(source: Source, error: &ConfigError) {
    let display = error.to_string();
    let origin = error
        .origin()
        .unwrap_or_else(|| panic!("{display}: no origin"));
    match (source, origin) {
        (Source::Yaml, Origin::File(path)) => assert_eq!(path, &PathBuf::from(YAML_NAME)),
        (Source::Toml, Origin::File(path)) => assert_eq!(path, &PathBuf::from(TOML_NAME)),
        (Source::Env, Origin::Env(name)) => {
            assert!(strip_env_prefix(name).is_some(), "{display}");
        }
        _ => panic!("{display}: origin {origin:?} is not the {source:?} source"),
    }
    assert!(
        display.contains(&format!("(from {origin})")),
        "{display}: source not named"
    );
    if error.key().is_empty() {
        // Only a whole-file error, or a variable named just the prefix, has no key.
        assert!(
            matches!(
                error.kind(),
                ConfigErrorKind::Parse { .. }
                    | ConfigErrorKind::AliasExpansion { .. }
                    | ConfigErrorKind::MalformedEnvName
            ),
            "{display}: no key"
        );
    } else {
        assert!(
            display.starts_with(&format!("{}: ", error.key())),
            "{display}"
        );
    }

    // Only the kinds a text or variable source can produce.
    let file_kind = matches!(
        error.kind(),
        ConfigErrorKind::Parse { .. } | ConfigErrorKind::AliasExpansion { .. }
    );
    let env_kind = matches!(
        error.kind(),
        ConfigErrorKind::MalformedEnvName | ConfigErrorKind::NotUtf8 | ConfigErrorKind::Empty
    );
    let io_kind = matches!(
        error.kind(),
        ConfigErrorKind::ReadFile(_) | ConfigErrorKind::UnknownFormat
    );
    assert!(!io_kind, "{display}: a file error without a file");
    // Only YAML has aliases.
    assert!(
        matches!(source, Source::Yaml)
            || !matches!(error.kind(), ConfigErrorKind::AliasExpansion { .. }),
        "{display}: alias error from {source:?}"
    );
    match source {
        Source::Yaml | Source::Toml => assert!(!env_kind, "{display}: env error from a file"),
        Source::Env => assert!(!file_kind, "{display}: file error from the environment"),
    }
    let wrapped = matches!(
        error.kind(),
        ConfigErrorKind::Url(_) | ConfigErrorKind::Timeout(_) | ConfigErrorKind::ExchangeId(_)
    );
    assert_eq!(
        std::error::Error::source(error).is_some(),
        wrapped,
        "{display}: source() not chained"
    );

    check_no_value_quoted(error, origin);
}

/// Keys, the source's name and exchange ids are quoted by design; URL errors are checked by
/// the `proxy_url` target. What remains of a message must not hold the canary password.
fn check_no_value_quoted(error: &ConfigError, origin: &Origin) {
    let mut allowed = vec![error.key().to_owned(), origin.to_string()];
    if let Origin::Env(name) = origin {
        allowed.push(name.clone());
    }
    match error.kind() {
        ConfigErrorKind::Url(url_error) => {
            allowed.extend([url_error.to_string(), format!("{url_error:?}")]);
        }
        ConfigErrorKind::ExchangeId(id_error) => {
            allowed.extend([id_error.to_string(), format!("{id_error:?}")]);
        }
        ConfigErrorKind::DuplicateExchange {
            first,
            second,
            other_source,
        } => {
            allowed.extend([first.clone(), second.clone()]);
            allowed.extend(other_source.clone());
        }
        ConfigErrorKind::Conflict { other } => allowed.push(other.clone()),
        _ => {}
    }
    // Longest first: a key is often part of a variable's name.
    allowed.sort_by_key(|quoted| std::cmp::Reverse(quoted.len()));
    for text in [error.to_string(), format!("{:?}", error.kind())] {
        let mut rest = text.clone();
        for quoted in &allowed {
            if !quoted.is_empty() {
                rest = rest.replace(quoted.as_str(), "");
                rest = rest.replace(format!("{quoted:?}").trim_matches('"'), "");
            }
        }
        assert!(
            !rest.contains(CANARY) && !rest.contains(&CANARY.to_ascii_lowercase()),
            "a value is quoted: {text}"
        );
    }
}

/// Every URL in the settings.
fn urls(settings: &ProxySettings) -> Vec<&ProxyUrl> {
    std::iter::once(&settings.default)
        .chain(settings.exchanges.values())
        .flat_map(|proxies| [&proxies.http, &proxies.websocket])
        .flatten()
        .map(|proxy| &proxy.url)
        .collect()
}

/// The settings with every URL replaced by its credential-free display form.
fn without_credentials(settings: &ProxySettings) -> ProxySettings {
    let strip = |proxy: &Option<ProxyConfig>| {
        proxy.as_ref().map(|proxy| ProxyConfig {
            url: ProxyUrl::parse(&proxy.url.to_string())
                .unwrap_or_else(|error| panic!("display form of {} rejected: {error}", proxy.url)),
            timeout_seconds: proxy.timeout_seconds,
        })
    };
    let strip_all = |proxies: &ConnectionProxies| ConnectionProxies {
        http: strip(&proxies.http),
        websocket: strip(&proxies.websocket),
    };
    ProxySettings {
        enabled: settings.enabled,
        default: strip_all(&settings.default),
        exchanges: settings
            .exchanges
            .iter()
            .map(|(id, proxies)| (id.clone(), strip_all(proxies)))
            .collect(),
    }
}

fn transports(proxies: &ConnectionProxies) -> [(&'static str, &Option<ProxyConfig>); 2] {
    [("http", &proxies.http), ("websocket", &proxies.websocket)]
}

/// The settings as a YAML file's `proxy:` block (flow style, keys quoted).
fn to_yaml(settings: &ProxySettings) -> String {
    let proxies_yaml = |proxies: &ConnectionProxies| {
        let entries: Vec<String> = transports(proxies)
            .into_iter()
            .filter_map(|(name, proxy)| {
                proxy.as_ref().map(|proxy| {
                    format!(
                        "{name}: {{url: '{}', timeout_seconds: {}}}",
                        full_text(&proxy.url),
                        proxy.timeout_seconds.get()
                    )
                })
            })
            .collect();
        format!("{{{}}}", entries.join(", "))
    };
    let mut out = format!(
        "proxy:\n  enabled: {}\n  default: {}\n  exchanges:\n",
        settings.enabled,
        proxies_yaml(&settings.default)
    );
    if settings.exchanges.is_empty() {
        out.push_str("    {}\n");
    }
    for (id, proxies) in &settings.exchanges {
        out.push_str(&format!("    '{id}': {}\n", proxies_yaml(proxies)));
    }
    out
}

/// The settings as a TOML file's `[proxy]` table.
fn to_toml(settings: &ProxySettings) -> String {
    let proxies_toml = |header: String, proxies: &ConnectionProxies| {
        let mut out = format!("{header}\n");
        for (name, proxy) in transports(proxies) {
            if let Some(proxy) = proxy {
                out.push_str(&format!(
                    "{name} = {{ url = \"{}\", timeout_seconds = {} }}\n",
                    full_text(&proxy.url),
                    proxy.timeout_seconds.get()
                ));
            }
        }
        out
    };
    let mut out = format!("[proxy]\nenabled = {}\n", settings.enabled);
    out.push_str(&proxies_toml(
        "[proxy.default]".to_owned(),
        &settings.default,
    ));
    for (id, proxies) in &settings.exchanges {
        out.push_str(&proxies_toml(
            format!("[proxy.exchanges.\"{id}\"]"),
            proxies,
        ));
    }
    out
}

/// The settings as environment variables, or `None` when they cannot be written so: an
/// exchange with no proxy has no variable, and an id holding `__` or ending in `_` would split
/// into other keys.
fn to_env(settings: &ProxySettings) -> Option<Vec<(String, String)>> {
    let mut vars = vec![(format!("{ENV_PREFIX}ENABLED"), settings.enabled.to_string())];
    let mut push = |path: String, proxies: &ConnectionProxies| {
        for (name, proxy) in transports(proxies) {
            if let Some(proxy) = proxy {
                let var = format!("{ENV_PREFIX}{path}__{}", name.to_ascii_uppercase());
                vars.push((format!("{var}__URL"), full_text(&proxy.url)));
                vars.push((
                    format!("{var}__TIMEOUT_SECONDS"),
                    proxy.timeout_seconds.get().to_string(),
                ));
            }
        }
    };
    push("DEFAULT".to_owned(), &settings.default);
    for (id, proxies) in &settings.exchanges {
        if !env_writable(id) || proxies.is_empty() {
            return None;
        }
        push(
            format!("EXCHANGES__{}", id.as_str().to_ascii_uppercase()),
            proxies,
        );
    }
    Some(vars)
}

fn env_writable(id: &ExchangeId) -> bool {
    !id.as_str().contains("__") && !id.as_str().ends_with('_')
}
