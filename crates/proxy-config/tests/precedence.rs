//! Precedence: the same key set in code, a file and the environment, in every combination; the
//! highest source wins key by key, and the loader reports where each value came from.

use std::sync::Mutex;

use proxy_config::{
    ConnectionProxies, ExchangeId, Loader, Origin, ProxyConfig, ProxySettings, TimeoutSeconds,
};

const URL_KEY: &str = "exchanges.binance.http.url";
const TIMEOUT_KEY: &str = "exchanges.binance.http.timeout_seconds";
const ENV_URL: &str = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL";
const ENV_TIMEOUT: &str = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__TIMEOUT_SECONDS";

fn code_settings(url: &str, timeout: u64) -> ProxySettings {
    let proxy = ProxyConfig::parse(url)
        .expect("valid")
        .with_timeout(TimeoutSeconds::new(timeout).expect("valid"));
    ProxySettings::default().with_exchange(
        ExchangeId::new("binance").expect("valid"),
        ConnectionProxies::http(proxy),
    )
}

/// Every subset of {code, file, env} setting the URL: the highest present source wins.
#[test]
fn url_set_in_every_combination_of_sources() {
    for mask in 0u8..8 {
        let (in_code, in_file, in_env) = (mask & 1 != 0, mask & 2 != 0, mask & 4 != 0);
        let mut loader = Loader::new();
        if in_code {
            loader = loader.code(code_settings("http://code-proxy:1001", 11));
        }
        if in_file {
            loader = loader.yaml_str(
                "feed.yaml",
                "proxy:\n  exchanges:\n    binance:\n      http: {url: 'http://file-proxy:1002'}\n",
            );
        }
        let env: Vec<(&str, &str)> = if in_env {
            vec![(ENV_URL, "http://env-proxy:1003")]
        } else {
            vec![]
        };
        let loaded = loader.env_vars(env).load_explained().expect("loads");
        let http = loaded
            .settings
            .exchange("binance")
            .and_then(|p| p.http.clone());
        let (expected_url, expected_origin) = if in_env {
            (
                Some("http://env-proxy:1003"),
                Origin::Env(ENV_URL.to_owned()),
            )
        } else if in_file {
            (
                Some("http://file-proxy:1002"),
                Origin::File("feed.yaml".into()),
            )
        } else if in_code {
            (Some("http://code-proxy:1001"), Origin::Code)
        } else {
            (None, Origin::Default)
        };
        assert_eq!(
            http.as_ref().map(|p| p.url.to_string()).as_deref(),
            expected_url,
            "mask {mask:03b}"
        );
        assert_eq!(loaded.origin(URL_KEY), &expected_origin, "mask {mask:03b}");
        // The timeout is set only by code; a higher source that sets only the URL keeps it.
        if let Some(http) = http {
            let (timeout, origin) = if in_code {
                (11, Origin::Code)
            } else {
                (30, Origin::Default)
            };
            assert_eq!(http.timeout_seconds.get(), timeout, "mask {mask:03b}");
            assert_eq!(loaded.origin(TIMEOUT_KEY), &origin, "mask {mask:03b}");
        }
    }
}

/// Both fields in all three sources, each field winning from a different source.
#[test]
fn merge_is_field_by_field() {
    let loaded = Loader::new()
        .code(
            code_settings("http://code-proxy:1001", 11).with_default_websocket(ProxyConfig::parse("http://code-ws:1").expect("valid")),
        )
        .toml_str(
            "feed.toml",
            "[proxy.exchanges.binance.http]\ntimeout_seconds = 22\n[proxy.exchanges.binance.websocket]\nurl = 'socks5h://file-ws:1080'\n",
        )
        .env_vars([(ENV_URL, "http://env-proxy:1003")])
        .load_explained();
    #[cfg(not(feature = "socks"))]
    {
        let err = loaded.expect_err("socks is off").to_string();
        assert!(err.starts_with("exchanges.binance.websocket.url: proxy scheme \"socks5h\" needs the `socks` feature"), "{err}");
    }
    #[cfg(feature = "socks")]
    {
        let loaded = loaded.expect("loads");
        let binance = loaded.settings.exchange("binance").expect("binance");
        let http = binance.http.as_ref().expect("http");
        assert_eq!(http.url.to_string(), "http://env-proxy:1003");
        assert_eq!(http.timeout_seconds.get(), 22);
        assert_eq!(
            binance.websocket.as_ref().expect("ws").url.to_string(),
            "socks5h://file-ws:1080"
        );
        assert_eq!(
            loaded
                .settings
                .default
                .websocket
                .as_ref()
                .expect("default ws")
                .url
                .to_string(),
            "http://code-ws:1"
        );
        assert_eq!(loaded.origin(URL_KEY), &Origin::Env(ENV_URL.to_owned()));
        assert_eq!(
            loaded.origin(TIMEOUT_KEY),
            &Origin::File("feed.toml".into())
        );
        assert_eq!(
            loaded.origin("exchanges.binance.websocket.url"),
            &Origin::File("feed.toml".into())
        );
        assert_eq!(loaded.origin("default.websocket.url"), &Origin::Code);
        assert_eq!(loaded.origin("enabled"), &Origin::Code);
    }
}

#[test]
fn environment_can_disable_what_code_and_file_enable() {
    let settings = Loader::new()
        .code(code_settings("http://code-proxy:1001", 11))
        .yaml_str("feed.yaml", "proxy:\n  enabled: true\n")
        .env_vars([("CRYPTOFEED_PROXY_ENABLED", "false")])
        .load()
        .expect("loads");
    assert!(!settings.enabled);
    // The proxies stay in the settings; the resolver ignores them while disabled.
    assert!(settings.exchange("binance").is_some());
}

#[test]
fn later_files_override_earlier_ones() {
    let settings = Loader::new()
        .yaml_str(
            "base.yaml",
            "proxy:\n  default:\n    http: {url: 'http://base:1', timeout_seconds: 7}\n",
        )
        .yaml_str(
            "site.yaml",
            "proxy:\n  default:\n    http: {url: 'http://site:2'}\n",
        )
        .load()
        .expect("loads");
    let http = settings.default.http.expect("set");
    assert_eq!(
        (http.url.to_string().as_str(), http.timeout_seconds.get()),
        ("http://site:2", 7)
    );
}

/// Tests that touch the process environment hold this lock and restore what they set.
static ENV_LOCK: Mutex<()> = Mutex::new(());

struct EnvGuard(Vec<(String, Option<std::ffi::OsString>)>);

impl EnvGuard {
    fn set(vars: &[(&str, &str)]) -> Self {
        let saved = vars
            .iter()
            .map(|(k, _)| (k.to_string(), std::env::var_os(k)))
            .collect();
        for (k, v) in vars {
            // SAFETY: ENV_LOCK serializes every test in this binary that touches the environment,
            // and no other thread of this test reads it concurrently.
            #[allow(unsafe_code)] // set_var is unsafe since edition 2024; serialized by ENV_LOCK
            unsafe {
                std::env::set_var(k, v)
            };
        }
        EnvGuard(saved)
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (k, v) in &self.0 {
            #[allow(unsafe_code)] // see EnvGuard::set
            unsafe {
                match v {
                    Some(v) => std::env::set_var(k, v),
                    None => std::env::remove_var(k),
                }
            }
        }
    }
}

#[test]
fn process_environment_overrides_file_and_code() {
    let _lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("feed.toml");
    std::fs::write(
        &file,
        "[proxy.exchanges.binance.http]\nurl = 'http://file-proxy:1002'\ntimeout_seconds = 9\n[proxy.exchanges.binance.websocket]\nurl = 'http://file-ws:1004'\n",
    )
    .expect("write");
    {
        let _env = EnvGuard::set(&[(ENV_URL, "http://env-proxy:1003")]);
        let settings =
            ProxySettings::load(code_settings("http://code-proxy:1001", 11), Some(&file))
                .expect("loads");
        let binance = settings.exchange("binance").expect("binance");
        let http = binance.http.as_ref().expect("http");
        assert_eq!(http.url.to_string(), "http://env-proxy:1003");
        assert_eq!(http.timeout_seconds.get(), 9);
        assert_eq!(
            binance.websocket.as_ref().expect("ws").url.to_string(),
            "http://file-ws:1004"
        );
    }
    assert!(
        std::env::var_os(ENV_URL).is_none(),
        "the guard restores the environment"
    );
}

#[test]
fn process_environment_errors_name_the_variable() {
    let _lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let _env = EnvGuard::set(&[(ENV_TIMEOUT, "301"), (ENV_URL, "http://h:1")]);
    let err = ProxySettings::load(ProxySettings::default(), None).expect_err("out of range");
    assert_eq!(
        err.to_string(),
        format!(
            "{TIMEOUT_KEY}: timeout 301 out of range (from {ENV_TIMEOUT}); expected 1 to 300 seconds"
        )
    );
}
