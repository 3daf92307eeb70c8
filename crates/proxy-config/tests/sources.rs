//! Table tests of loading settings from each source (environment, YAML, TOML, serde), with the
//! exact text of every rejection: key path, problem, source and what to do.

use proxy_config::{ConfigError, ExchangeId, Loader, ProxySettings, TimeoutSeconds};
use rstest::rstest;

fn env(pairs: &[(&str, &str)]) -> Result<ProxySettings, ConfigError> {
    Loader::new()
        .env_vars(pairs.iter().map(|(k, v)| (*k, *v)))
        .load()
}

fn yaml(text: &str) -> Result<ProxySettings, ConfigError> {
    Loader::new().yaml_str("feed.yaml", text).load()
}

fn toml(text: &str) -> Result<ProxySettings, ConfigError> {
    Loader::new().toml_str("feed.toml", text).load()
}

#[cfg(feature = "socks")]
const SCHEME_LIST: &str = "http, https, socks4, socks4a, socks5, socks5h";
#[cfg(not(feature = "socks"))]
const SCHEME_LIST: &str =
    "http, https (socks4, socks4a, socks5 and socks5h need the `socks` feature)";

fn schemes(text: &str) -> String {
    text.replace("{SCHEMES}", &format!("expected one of {SCHEME_LIST}"))
        .replace("http, https, socks4, socks4a, socks5, socks5h", SCHEME_LIST)
}

#[test]
fn every_source_gives_the_same_settings() {
    let from_env = env(&[
        ("CRYPTOFEED_PROXY_ENABLED", "true"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://corp:3128"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "15"),
        (
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
            "https://u:p%40ss@eu:443",
        ),
        ("UNRELATED_VARIABLE", "ignored"),
    ])
    .expect("env loads");
    let from_yaml = yaml(
        "feed: {symbols: [BTC-USDT]}\nproxy:\n  enabled: true\n  default:\n    http:\n      url: http://corp:3128\n      timeout_seconds: 15\n  exchanges:\n    BINANCE:\n      websocket:\n        url: 'https://u:p%40ss@eu:443'\n",
    )
    .expect("yaml loads");
    let from_toml = toml(
        "[feed]\nsymbols = ['BTC-USDT']\n[proxy]\nenabled = true\n[proxy.default.http]\nurl = 'http://corp:3128'\ntimeout_seconds = 15\n[proxy.exchanges.binance.websocket]\nurl = 'https://u:p%40ss@eu:443'\n",
    )
    .expect("toml loads");
    let from_serde: ProxySettings = serde_json::from_str(
        r#"{"enabled":true,"default":{"http":{"url":"http://corp:3128","timeout_seconds":15}},
            "exchanges":{"Binance":{"websocket":{"url":"https://u:p%40ss@eu:443"}}}}"#,
    )
    .expect("serde loads");
    assert_eq!(from_env, from_yaml);
    assert_eq!(from_env, from_toml);
    assert_eq!(from_env, from_serde);

    let binance = from_env.exchange("Binance").expect("binance configured");
    let ws = binance.websocket.as_ref().expect("websocket proxy");
    assert_eq!(ws.url.password().map(|p| p.expose()), Some("p@ss"));
    assert_eq!(ws.timeout_seconds, TimeoutSeconds::DEFAULT);
    assert!(binance.http.is_none());
    let http = from_env.default.http.as_ref().expect("default http");
    assert_eq!(http.timeout_seconds.get(), 15);
}

#[rstest]
#[case::nothing(&[], true)]
#[case::enabled_false(&[("CRYPTOFEED_PROXY_ENABLED", "false")], false)]
#[case::enabled_zero(&[("CRYPTOFEED_PROXY_ENABLED", "0")], false)]
#[case::enabled_upper(&[("CRYPTOFEED_PROXY_ENABLED", "TRUE")], true)]
#[case::lower_case_keys(&[("CRYPTOFEED_PROXY_enabled", "off")], false)]
fn enabled_flag(#[case] vars: &[(&str, &str)], #[case] expected: bool) {
    assert_eq!(env(vars).expect("loads").enabled, expected);
}

#[rstest]
#[case::timeout_1("1", Some(1))]
#[case::timeout_300("300", Some(300))]
#[case::timeout_0("0", None)]
#[case::timeout_301("301", None)]
fn timeout_bounds_from_env(#[case] value: &str, #[case] expected: Option<u16>) {
    let result = env(&[
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://h:1"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", value),
    ]);
    match expected {
        Some(seconds) => {
            let settings = result.expect("in range");
            let http = settings.default.http.expect("set");
            assert_eq!(http.timeout_seconds.get(), seconds);
        }
        None => assert_eq!(
            result.expect_err("out of range").to_string(),
            format!(
                "default.http.timeout_seconds: timeout {value} out of range (from CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS); expected 1 to 300 seconds"
            )
        ),
    }
}

#[rstest]
#[case::timeout_1(1, true)]
#[case::timeout_300(300, true)]
#[case::timeout_0(0, false)]
#[case::timeout_301(301, false)]
#[case::negative(-5, false)]
fn timeout_bounds_from_files(#[case] seconds: i64, #[case] ok: bool) {
    let y = yaml(&format!(
        "proxy:\n  exchanges:\n    kraken:\n      http: {{url: 'http://h:1', timeout_seconds: {seconds}}}\n"
    ));
    let t = toml(&format!(
        "[proxy.exchanges.kraken.http]\nurl = 'http://h:1'\ntimeout_seconds = {seconds}\n"
    ));
    for (result, file) in [(y, "feed.yaml"), (t, "feed.toml")] {
        if ok {
            let settings = result.expect("in range");
            let http = settings
                .exchange("kraken")
                .and_then(|p| p.http.clone())
                .expect("set");
            assert_eq!(i64::from(http.timeout_seconds.get()), seconds);
        } else {
            assert_eq!(
                result.expect_err("out of range").to_string(),
                format!(
                    "exchanges.kraken.http.timeout_seconds: timeout {seconds} out of range (from file {file}); expected 1 to 300 seconds"
                )
            );
        }
    }
}

/// Invalid settings from the environment: (variables, exact message).
#[rstest]
#[case::ftp(
    &[("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "ftp://u:secret@proxy:21")],
    "exchanges.binance.http.url: unsupported proxy scheme \"ftp\" (from CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL); {SCHEMES}"
)]
#[case::invalid_url(
    &[("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL", "invalid-url")],
    "default.websocket.url: missing scheme in proxy URL (from CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL); expected scheme://host:port with scheme one of http, https, socks4, socks4a, socks5, socks5h"
)]
#[case::missing_port(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://u:secret@proxy.example")],
    "default.http.url: missing port in proxy URL (from CRYPTOFEED_PROXY_DEFAULT__HTTP__URL); the port is required: a number from 1 to 65535 after the host, e.g. :8080"
)]
#[case::unknown_root_key(
    &[("CRYPTOFEED_PROXY_ENABLE", "true")],
    "enable: unknown key (from CRYPTOFEED_PROXY_ENABLE); expected one of enabled, default, exchanges"
)]
#[case::unknown_transport(
    &[("CRYPTOFEED_PROXY_DEFAULT__WS__URL", "http://h:1")],
    "default.ws: unknown key (from CRYPTOFEED_PROXY_DEFAULT__WS__URL); expected one of http, websocket"
)]
#[case::unknown_exchange_transport(
    &[("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__REST__URL", "http://h:1")],
    "exchanges.binance.rest: unknown key (from CRYPTOFEED_PROXY_EXCHANGES__BINANCE__REST__URL); expected one of http, websocket"
)]
#[case::unknown_proxy_key(
    &[("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__ADDRESS", "http://h:1")],
    "exchanges.binance.http.address: unknown key (from CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__ADDRESS); expected one of url, timeout_seconds"
)]
#[case::value_instead_of_table(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP", "http://h:1")],
    "default.http: expected a table with keys url, timeout_seconds, found a string (from CRYPTOFEED_PROXY_DEFAULT__HTTP)"
)]
#[case::exchanges_as_value(
    &[("CRYPTOFEED_PROXY_EXCHANGES", "binance")],
    "exchanges: expected a table of exchange ids, found a string (from CRYPTOFEED_PROXY_EXCHANGES)"
)]
#[case::value_and_table(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP", "x"), ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://h:1")],
    "default.http: set more than once (also by CRYPTOFEED_PROXY_DEFAULT__HTTP) (from CRYPTOFEED_PROXY_DEFAULT__HTTP__URL)"
)]
#[case::timeout_not_a_number(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://h:1"), ("CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS", "30s")],
    "default.http.timeout_seconds: invalid value (from CRYPTOFEED_PROXY_DEFAULT__HTTP__TIMEOUT_SECONDS); expected a whole number of seconds from 1 to 300"
)]
#[case::timeout_without_url(
    &[("CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__TIMEOUT_SECONDS", "5")],
    "exchanges.okx.websocket.url: missing proxy url (from CRYPTOFEED_PROXY_EXCHANGES__OKX__WEBSOCKET__TIMEOUT_SECONDS); every proxy needs a url such as http://proxy.example:8080"
)]
#[case::enabled_garbage(
    &[("CRYPTOFEED_PROXY_ENABLED", "maybe")],
    "enabled: invalid value (from CRYPTOFEED_PROXY_ENABLED); expected true or false"
)]
#[case::empty_value(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "")],
    "default.http.url: empty value (from CRYPTOFEED_PROXY_DEFAULT__HTTP__URL); remove the setting instead of leaving it empty"
)]
#[case::malformed_name(
    &[("CRYPTOFEED_PROXY_DEFAULT___HTTP__URL", "http://h:1")],
    "default._http: unknown key (from CRYPTOFEED_PROXY_DEFAULT___HTTP__URL); expected one of http, websocket"
)]
#[case::trailing_separator(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__", "http://h:1")],
    "default.http.: malformed environment variable name (from CRYPTOFEED_PROXY_DEFAULT__HTTP__); separate keys with a double underscore, e.g. CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL"
)]
#[case::two_spellings(
    &[("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "http://h:1"), ("CRYPTOFEED_PROXY_EXCHANGES__Binance__WEBSOCKET__URL", "http://h:2")],
    "exchanges.binance: exchange id given twice, as \"BINANCE\" and \"Binance\" (from CRYPTOFEED_PROXY_EXCHANGES__Binance__WEBSOCKET__URL); exchange ids are case-insensitive; keep one spelling (see CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL)"
)]
#[case::one_key_under_two_prefix_spellings(
    &[("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://h:1"), ("cryptofeed_proxy_default__http__url", "http://h:2")],
    "default.http.url: set more than once (also by CRYPTOFEED_PROXY_DEFAULT__HTTP__URL) (from cryptofeed_proxy_default__http__url)"
)]
#[case::bad_exchange_id(
    &[("CRYPTOFEED_PROXY_EXCHANGES__BIN$NCE__HTTP__URL", "http://h:1")],
    "exchanges.bin$nce: invalid exchange id (from CRYPTOFEED_PROXY_EXCHANGES__BIN$NCE__HTTP__URL); exchange ids are 1 to 64 letters, digits, '_', '-' and '.'"
)]
fn invalid_env(#[case] vars: &[(&str, &str)], #[case] expected: &str) {
    let err = env(vars).expect_err("must be rejected");
    assert_eq!(err.to_string(), schemes(expected));
}

/// Invalid settings from YAML (first) and the same from TOML (second), with exact messages.
#[rstest]
#[case::unknown_root_key(
    "proxy:\n  enable: true\n",
    "[proxy]\nenable = true\n",
    "enable: unknown key (from file {F}); expected one of enabled, default, exchanges"
)]
#[case::unknown_default_key(
    "proxy:\n  default:\n    rest: {url: 'http://h:1'}\n",
    "[proxy.default.rest]\nurl = 'http://h:1'\n",
    "default.rest: unknown key (from file {F}); expected one of http, websocket"
)]
#[case::unknown_exchange_key(
    "proxy:\n  exchanges:\n    binance:\n      ws: {url: 'http://h:1'}\n",
    "[proxy.exchanges.binance.ws]\nurl = 'http://h:1'\n",
    "exchanges.binance.ws: unknown key (from file {F}); expected one of http, websocket"
)]
#[case::unknown_proxy_key(
    "proxy:\n  default:\n    http: {url: 'http://h:1', timeout: 5}\n",
    "[proxy.default.http]\nurl = 'http://h:1'\ntimeout = 5\n",
    "default.http.timeout: unknown key (from file {F}); expected one of url, timeout_seconds"
)]
#[case::wrong_type_enabled(
    "proxy:\n  enabled: 'yes'\n",
    "[proxy]\nenabled = 'yes'\n",
    "enabled: expected true or false, found a string (from file {F})"
)]
#[case::wrong_type_timeout(
    "proxy:\n  default:\n    http: {url: 'http://h:1', timeout_seconds: '30'}\n",
    "[proxy.default.http]\nurl = 'http://h:1'\ntimeout_seconds = '30'\n",
    "default.http.timeout_seconds: expected a whole number of seconds from 1 to 300, found a string (from file {F})"
)]
#[case::float_timeout(
    "proxy:\n  default:\n    http: {url: 'http://h:1', timeout_seconds: 2.5}\n",
    "[proxy.default.http]\nurl = 'http://h:1'\ntimeout_seconds = 2.5\n",
    "default.http.timeout_seconds: expected a whole number of seconds from 1 to 300, found a floating-point number (from file {F})"
)]
#[case::url_not_a_string(
    "proxy:\n  default:\n    http: {url: 8080}\n",
    "[proxy.default.http]\nurl = 8080\n",
    "default.http.url: expected a proxy URL string, found an integer (from file {F})"
)]
#[case::list_for_table(
    "proxy:\n  exchanges: [binance]\n",
    "[proxy]\nexchanges = ['binance']\n",
    "exchanges: expected a table of exchange ids, found a list (from file {F})"
)]
#[case::proxy_not_a_table(
    "proxy: http://h:1\n",
    "proxy = 'http://h:1'\n",
    "proxy: expected a table of proxy settings, found a string (from file {F})"
)]
#[case::missing_url(
    "proxy:\n  default:\n    websocket: {timeout_seconds: 5}\n",
    "[proxy.default.websocket]\ntimeout_seconds = 5\n",
    "default.websocket.url: missing proxy url (from file {F}); every proxy needs a url such as http://proxy.example:8080"
)]
#[case::bad_scheme(
    "proxy:\n  exchanges:\n    binance:\n      http: {url: 'ftp://u:secret@h:21'}\n",
    "[proxy.exchanges.binance.http]\nurl = 'ftp://u:secret@h:21'\n",
    "exchanges.binance.http.url: unsupported proxy scheme \"ftp\" (from file {F}); {SCHEMES}"
)]
#[case::two_spellings(
    "proxy:\n  exchanges:\n    Binance: {http: {url: 'http://h:1'}}\n    binance: {websocket: {url: 'http://h:1'}}\n",
    "[proxy.exchanges.Binance.http]\nurl = 'http://h:1'\n[proxy.exchanges.binance.websocket]\nurl = 'http://h:1'\n",
    "exchanges.binance: exchange id given twice, as \"Binance\" and \"binance\" (from file {F}); exchange ids are case-insensitive; keep one spelling"
)]
fn invalid_files(#[case] yaml_text: &str, #[case] toml_text: &str, #[case] expected: &str) {
    let expected = schemes(expected);
    let err = yaml(yaml_text).expect_err("yaml must be rejected");
    assert_eq!(err.to_string(), expected.replace("{F}", "feed.yaml"));
    let err = toml(toml_text).expect_err("toml must be rejected");
    assert_eq!(err.to_string(), expected.replace("{F}", "feed.toml"));
}

#[test]
fn file_without_proxy_block_gives_defaults() {
    assert_eq!(
        yaml("feed:\n  exchanges: [binance]\n").expect("loads"),
        ProxySettings::default()
    );
    assert_eq!(
        toml("[feed]\nx = 1\n").expect("loads"),
        ProxySettings::default()
    );
    assert_eq!(yaml("").expect("loads"), ProxySettings::default());
}

#[test]
fn syntax_errors_do_not_quote_the_file() {
    let err = toml("[proxy.default.http]\nurl = http://user:hunter2@h:1\n").expect_err("bad toml");
    let text = err.to_string();
    assert!(
        text.starts_with("invalid TOML: TOML parse error at line 2, column 7"),
        "{text}"
    );
    assert!(text.ends_with("(from file feed.toml)"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");

    let err = yaml("proxy:\n  default:\n    http: {url: 'http://user:hunter2@h:1'\n")
        .expect_err("bad yaml");
    let text = err.to_string();
    assert!(text.starts_with("invalid YAML: "), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn file_errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.yaml");
    let err = Loader::new()
        .file(&missing)
        .load()
        .expect_err("missing file");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read config file: No such file or directory (os error 2) (from file {})",
            missing.display()
        )
    );
    let ini = dir.path().join("proxy.ini");
    std::fs::write(&ini, "x").expect("write");
    let err = Loader::new().file(&ini).load().expect_err("unknown type");
    assert_eq!(
        err.to_string(),
        format!(
            "unknown config file type (from file {}); use a .yaml, .yml or .toml file",
            ini.display()
        )
    );
    let yml = dir.path().join("feed.yml");
    std::fs::write(
        &yml,
        "proxy:\n  exchanges:\n    kraken:\n      http: {url: 'http://h:9'}\n",
    )
    .expect("write");
    let settings = Loader::new().file(&yml).load().expect("loads .yml");
    assert!(settings.exchange("KRAKEN").is_some());
}

#[test]
fn serde_rejects_unknown_keys_and_duplicate_ids() {
    for (json, needle) in [
        (r#"{"enable":true}"#, "unknown field `enable`"),
        (r#"{"default":{"rest":{}}}"#, "unknown field `rest`"),
        (
            r#"{"default":{"http":{"url":"http://h:1","timeout":3}}}"#,
            "unknown field `timeout`",
        ),
        (r#"{"exchanges":{"x":{"ws":{}}}}"#, "unknown field `ws`"),
        (
            r#"{"exchanges":{"A":{},"a":{}}}"#,
            "exchange id \"a\" given twice",
        ),
        (
            r#"{"default":{"http":{"url":"http://h:1","timeout_seconds":0}}}"#,
            "timeout 0 out of range",
        ),
        (
            r#"{"default":{"http":{"url":"ftp://u:secret@h:1"}}}"#,
            "unsupported proxy scheme \"ftp\"",
        ),
    ] {
        let err = serde_json::from_str::<ProxySettings>(json)
            .expect_err(json)
            .to_string();
        assert!(err.contains(needle), "{json}: {err}");
        assert!(!err.contains("secret"), "{err}");
    }
}

/// A proxy URL written where serde expects a field name: the unknown-field error names the key
/// without its user info, at every level of the settings.
#[test]
fn serde_unknown_field_hides_credentials() {
    for (json, shown) in [
        (
            r#"{"http://alice:hunter2@h:1":true}"#,
            "unknown field `***@h:1`",
        ),
        (
            r#"{"default":{"http://alice:hunter2@h:1":{}}}"#,
            "unknown field `***@h:1`",
        ),
        (
            r#"{"default":{"http":{"http://alice:hunter2@h:1":1}}}"#,
            "unknown field `***@h:1`",
        ),
        (
            r#"{"exchanges":{"binance":{"socks5://alice:hunter2@h:1":{}}}}"#,
            "unknown field `***@h:1`",
        ),
    ] {
        let err = serde_json::from_str::<ProxySettings>(json).expect_err(json);
        let text = format!("{err} {err:?}");
        assert!(text.contains(shown), "{json}: {text}");
        assert!(
            !text.contains("hunter2") && !text.contains("alice"),
            "{json}: {text}"
        );
    }
}

/// A proxy URL with credentials in a variable name or given as the config file's path: the
/// error's origin, the other variable it names and the spellings it quotes show no user info.
#[test]
fn origins_and_spellings_hide_credentials() {
    let env_cases: [Vec<(&str, &str)>; 3] = [
        vec![("CRYPTOFEED_PROXY_http://alice:hunter2@h:1", "x")],
        vec![
            (
                "CRYPTOFEED_PROXY_EXCHANGES__A:HUNTER2@X__HTTP__URL",
                "http://h:1",
            ),
            (
                "CRYPTOFEED_PROXY_EXCHANGES__a:hunter2@x__WEBSOCKET__URL",
                "http://h:1",
            ),
        ],
        vec![
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP", "x"),
            ("CRYPTOFEED_PROXY_DEFAULT__HTTP__alice:hunter2@h:1", "x"),
        ],
    ];
    for vars in env_cases {
        let err = Loader::new()
            .env_vars(vars.clone())
            .load()
            .expect_err("invalid");
        let text = format!("{err} {err:?} {:?}", err.origin()).to_lowercase();
        assert!(
            !text.contains("hunter2") && !text.contains("alice"),
            "{vars:?}: {text}"
        );
    }
    let err = Loader::new()
        .file("http://alice:hunter2@h:1")
        .load()
        .expect_err("no such file type");
    let text = format!("{err} {err:?}");
    assert!(text.contains("(from file ***@h:1)"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("alice"),
        "{text}"
    );
    // A path whose `@` follows no `:` is no credential: shown as given.
    let err = Loader::new()
        .yaml_str("configs/proxy@prod.yaml", "proxy:\n  enabeld: true\n")
        .load()
        .expect_err("misspelt key");
    assert!(
        err.to_string()
            .contains("(from file configs/proxy@prod.yaml)"),
        "{err}"
    );
}

#[test]
fn exchange_ids_are_case_insensitive() {
    let id = ExchangeId::new("Binance_Futures").expect("valid");
    assert_eq!(id.as_str(), "binance_futures");
    assert!(ExchangeId::new("").is_err());
    assert!(ExchangeId::new("bin ance").is_err());
}

/// A YAML key left empty (`http:` with nothing under it, a null) sets nothing, wherever it
/// sits and whether or not a lower source has the table around it: the same settings as
/// leaving the key out (an exchange whose keys are all empty: as `{}`).
#[rstest]
#[case::default_http("proxy:\n  default:\n    http:\n", "proxy: {}\n")]
#[case::exchange_http(
    "proxy:\n  exchanges:\n    binance:\n      http:\n      websocket:\n        url: http://127.0.0.1:3128\n",
    "proxy:\n  exchanges:\n    binance:\n      websocket:\n        url: http://127.0.0.1:3128\n"
)]
#[case::exchange_itself(
    "proxy:\n  default:\n    websocket:\n      url: http://corp:3128\n  exchanges:\n    binance:\n",
    "proxy:\n  default:\n    websocket:\n      url: http://corp:3128\n"
)]
#[case::exchange_of_empty_keys(
    "proxy:\n  exchanges:\n    binance:\n      http:\n      websocket:\n",
    "proxy:\n  exchanges:\n    binance: {}\n"
)]
#[case::proxy_timeout(
    "proxy:\n  default:\n    http:\n      url: http://corp:3128\n      timeout_seconds:\n",
    "proxy:\n  default:\n    http:\n      url: http://corp:3128\n"
)]
fn an_empty_yaml_key_sets_nothing(#[case] empty: &str, #[case] without: &str) {
    let expected = yaml(without).expect("the settings without the key load");
    assert_eq!(
        yaml(empty).expect("an empty key loads"),
        expected,
        "{empty}"
    );
    // The same with a code layer under the file (which always has a `default` table).
    let layered = Loader::new()
        .code(ProxySettings::default())
        .yaml_str("feed.yaml", empty)
        .load()
        .expect("an empty key over code loads");
    assert_eq!(layered, expected, "over code: {empty}");
}

/// An empty key is still a key: a misspelt or invalid one is an error, empty or not, and whether
/// or not a lower source has the table around it.
#[rstest]
#[case::root("proxy:\n  enabeld:\n", "enabeld: unknown key")]
#[case::transport("proxy:\n  default:\n    websockt:\n", "default.websockt: unknown key")]
#[case::proxy_key(
    "proxy:\n  exchanges:\n    binance:\n      http:\n        URL:\n",
    "exchanges.binance.http.URL: unknown key"
)]
#[case::exchange_id(
    "proxy:\n  exchanges:\n    \"bin ance\":\n",
    "exchanges.bin ance: invalid exchange id"
)]
fn an_empty_misspelt_key_is_still_an_error(#[case] text: &str, #[case] expected: &str) {
    for loader in [
        Loader::new(),
        Loader::new().code(ProxySettings::default().with_exchange(
            ExchangeId::new("binance").expect("id"),
            proxy_config::ConnectionProxies::default(),
        )),
    ] {
        let error = loader
            .yaml_str("feed.yaml", text)
            .load()
            .expect_err("a misspelt key");
        assert!(error.to_string().starts_with(expected), "{text}: {error}");
    }
}

/// An empty key, with a value or without, is an unknown key whose path shows it as `""`.
#[rstest]
#[case::root_value("proxy:\n  \"\": 1\n", "\"\": unknown key (from file feed.yaml)")]
#[case::root_null("proxy:\n  \"\":\n", "\"\": unknown key (from file feed.yaml)")]
#[case::transport("proxy:\n  default:\n    \"\": 1\n", "default.\"\": unknown key")]
#[case::proxy_key(
    "proxy:\n  default:\n    http:\n      \"\":\n",
    "default.http.\"\": unknown key"
)]
fn an_empty_key_is_named(#[case] text: &str, #[case] expected: &str) {
    let error = yaml(text).expect_err("an empty key");
    assert!(error.to_string().starts_with(expected), "{text}: {error}");
    assert_eq!(error.key(), expected.split(": ").next().expect("a key"));
}

/// A proxy URL with credentials written where a key belongs (a misplaced line) is an error that
/// shows the host, never the user info: in `Display`, `Debug` and `key()`, whatever the value
/// under it, at every level, in an exchange id given twice, and past the id's 64-character cut.
#[rstest]
#[case::root("proxy:\n  http://user:hunter2@h:1: 1\n", "***@h:1: unknown key")]
#[case::root_empty("proxy:\n  http://user:hunter2@h:1:\n", "***@h:1: unknown key")]
#[case::transport(
    "proxy:\n  default:\n    http://user:hunter2@h.example:1:\n",
    "default.***@h.example:1: unknown key"
)]
#[case::exchange_empty(
    "proxy:\n  exchanges:\n    http://user:hunter2@h:1:\n",
    "exchanges.***@h:1: invalid exchange id"
)]
#[case::exchange_table(
    "proxy:\n  exchanges:\n    http://user:hunt.er2@h:1: {}\n",
    "exchanges.***@h:1: invalid exchange id"
)]
#[case::long_password(
    "proxy:\n  exchanges:\n    http://user:hunter2hunter2hunter2hunter2hunter2hunter2hunter2hunter2@h:1: {}\n",
    "exchanges.***@h:1: invalid exchange id"
)]
#[case::spelled_twice(
    "proxy:\n  exchanges:\n    USER:hunter2@h: {}\n    user:hunter2@h: {}\n",
    "exchanges."
)]
fn a_credential_written_as_a_key_is_not_shown(#[case] text: &str, #[case] expected: &str) {
    let error = yaml(text).expect_err("not a key");
    let shown = format!("{error}\n{error:?}\n{}", error.key());
    assert!(error.to_string().starts_with(expected), "{shown}");
    assert!(!shown.to_lowercase().contains("hunt"), "{shown}");
    assert!(!shown.to_lowercase().contains("user:"), "{shown}");
}

/// Nine lines of nested aliases, each copying the one above ten times: 10^9 values once loaded.
fn alias_bomb(levels: usize) -> String {
    let mut text = String::from("  l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..levels {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{refs}]\n"));
    }
    text
}

fn alias_error(text: &str) -> (usize, String) {
    let err = yaml(text).expect_err("over the alias budget");
    match err.kind() {
        proxy_config::ConfigErrorKind::AliasExpansion { line } => (*line, err.to_string()),
        other => panic!("{other:?}: {err}"),
    }
}

#[rstest]
// Each value costs 64 bytes plus its text, and the loader copies an anchored node at its anchor
// and at every alias: by the end of l4 that is 16,023,490 bytes, and l5 (line 7) goes over.
#[case::inside_the_proxy_block("proxy:\n{BOMB}", 7)]
#[case::elsewhere_in_the_file("feed:\n{BOMB}proxy:\n  enabled: true\n", 7)]
// An alias inside its own anchor has no size yet; the count goes on past it.
#[case::after_a_self_alias("feed:\n  me: &me [*me]\n{BOMB}", 8)]
fn yaml_alias_bombs_are_refused_before_loading(#[case] template: &str, #[case] line: usize) {
    let text = template.replace("{BOMB}", &alias_bomb(9));
    assert_eq!(
        alias_error(&text),
        (
            line,
            format!(
                "YAML anchors and aliases copy more than 16 MiB (limit reached at line {line}) \
                 (from file feed.yaml); write the repeated settings out, or nest fewer aliases"
            )
        )
    );
}

/// The budget is in bytes: a few aliases of a long string, and anchors nested around a copied
/// list (the loader keeps a copy of every anchored node), are counted too.
#[test]
fn yaml_alias_budget_counts_text_and_anchor_copies() {
    // 1 MiB of text plus 64 bytes, copied at its anchor and at n aliases: 15 copies fit in
    // 16 MiB, 16 do not.
    let long = "A".repeat(1 << 20);
    let copies = |n: usize| vec!["*s"; n].join(", ");
    let fits = format!("feed:\n  s: &s \"{long}\"\n  l: [{}]\n", copies(14));
    assert_eq!(
        yaml(&fits).expect("15 copies load"),
        ProxySettings::default()
    );
    let over = format!("feed:\n  s: &s \"{long}\"\n  l: [{}]\n", copies(15));
    assert_eq!(alias_error(&over).0, 3);

    // The review's case: 64 KiB strings copied 81,110 times in five short lines.
    let string = "A".repeat(1 << 16);
    let mut text = format!("feed:\n  s: &s \"{string}\"\n  l1: &l1 [{}]\n", copies(10));
    for level in 2..=4 {
        let refs = vec![format!("*l{}", level - 1); 10].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{refs}]\n"));
    }
    assert_eq!(alias_error(&text).0, 5, "l3 goes over");

    // 255 anchors nested around 100 copies of a list: each anchor keeps a copy of all inside.
    let list = vec!["1"; 999].join(", ");
    let mut nested = format!("feed:\n  big: &big [{list}]\n  x: ");
    for level in 0..255 {
        nested.push_str(&format!("&a{level} ["));
    }
    nested.push_str(&copies(100).replace("*s", "*big"));
    nested.push_str(&"]".repeat(255));
    nested.push('\n');
    assert_eq!(alias_error(&nested).0, 3);

    // A redefined anchor: aliases after it copy the new node.
    let redefined = format!(
        "feed:\n  s: &s x\n  s2: &s \"{long}\"\n  l: [{}]\n",
        copies(15)
    );
    assert_eq!(alias_error(&redefined).0, 4);
}

#[test]
fn yaml_aliases_share_proxy_settings() {
    let shared = yaml(
        "proxy:\n  enabled: true\n  exchanges:\n    binance: &eu\n      http: {url: 'http://eu:3128', timeout_seconds: 5}\n      websocket: {url: 'socks5h://eu:1080'}\n    bybit: *eu\n    okx: *eu\n",
    );
    let written = yaml(
        "proxy:\n  enabled: true\n  exchanges:\n    binance:\n      http: {url: 'http://eu:3128', timeout_seconds: 5}\n      websocket: {url: 'socks5h://eu:1080'}\n    bybit:\n      http: {url: 'http://eu:3128', timeout_seconds: 5}\n      websocket: {url: 'socks5h://eu:1080'}\n    okx:\n      http: {url: 'http://eu:3128', timeout_seconds: 5}\n      websocket: {url: 'socks5h://eu:1080'}\n",
    );
    #[cfg(feature = "socks")]
    assert_eq!(shared.expect("aliases load"), written.expect("loads"));
    #[cfg(not(feature = "socks"))]
    assert_eq!(
        shared.expect_err("socks5h needs the feature").to_string(),
        written.expect_err("socks5h needs the feature").to_string()
    );
}

/// The prefix is read in any case, as cryptofeed's pydantic-settings does: a lower-case
/// variable is obeyed, not silently ignored.
#[test]
fn the_env_prefix_is_case_insensitive() {
    let lower = Loader::new()
        .env_vars([
            ("cryptofeed_proxy_default__http__url", "http://corp:3128"),
            (
                "Cryptofeed_Proxy_Exchanges__Binance__WebSocket__Url",
                "http://eu:1080",
            ),
            ("CRYPTOFEED_PROXYDEFAULT__HTTP__URL", "http://not-ours:1"),
        ])
        .load_explained()
        .expect("loads");
    assert_eq!(
        lower
            .settings
            .default
            .http
            .as_ref()
            .map(|p| p.url.to_string()),
        Some("http://corp:3128".to_owned())
    );
    let binance = ExchangeId::new("binance").expect("id");
    assert_eq!(
        lower.settings.exchanges[&binance]
            .websocket
            .as_ref()
            .map(|p| p.url.to_string()),
        Some("http://eu:1080".to_owned())
    );
    assert_eq!(
        lower.origin("default.http.url").to_string(),
        "cryptofeed_proxy_default__http__url"
    );
}

/// Settings under a `Proxy:` or `[PROXY]` key would be ignored, sending everything direct: the
/// file is refused, naming the key to write.
#[test]
fn a_proxy_block_in_the_wrong_case_is_an_error() {
    for (text, key) in [
        (
            "Proxy:\n  default:\n    http: {url: 'http://h:1'}\n",
            "Proxy",
        ),
        ("PROXY: {}\n", "PROXY"),
    ] {
        let err = yaml(text).expect_err("wrong case");
        assert_eq!(
            err.to_string(),
            format!("{key}: unknown key (from file feed.yaml); expected one of proxy")
        );
    }
    let err = toml("[Proxy.default.http]\nurl = 'http://h:1'\n").expect_err("wrong case");
    assert_eq!(
        err.to_string(),
        "Proxy: unknown key (from file feed.toml); expected one of proxy"
    );
    // Next to a real `proxy` block another spelling is the feed's own business.
    assert!(yaml("proxy: {}\nPROXY: 1\n").is_ok());
}

/// The variables curl and pip read are named (as spelled, sorted) when set and not empty, so
/// that `feedproxy check` can say feedproxy ignores them; never their values.
#[test]
fn conventional_proxy_variables_are_found_in_any_case() {
    let names = proxy_config::conventional_proxy_vars_in([
        ("no_proxy", "localhost"),
        ("Https_Proxy", "http://u:pw@corp:3128"),
        ("HTTP_PROXY", ""),
        ("ALL_PROXY", "socks5://gw:1080"),
        ("HTTPS_PROXY_EXTRA", "x"),
        ("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", "http://corp:3128"),
    ]);
    assert_eq!(names, ["ALL_PROXY", "Https_Proxy", "no_proxy"]);
}
