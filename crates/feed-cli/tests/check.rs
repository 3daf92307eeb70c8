//! `feedproxy check` run as a process: routes, sources, exit codes, and no credential in any
//! output.

mod common;

use std::path::Path;
use std::process::Output;

use common::{feedproxy, write};

const PASSWORD: &str = "Pw-canary-8c1f";

fn text(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    for stream in [&stdout, &stderr] {
        assert!(!stream.contains(PASSWORD), "password in output: {stream}");
        assert!(
            !stream.contains("Pw-canary"),
            "password in output: {stream}"
        );
    }
    (stdout, stderr)
}

fn row<'a>(stdout: &'a str, exchange: &str, transport: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() > 2 && cells[0] == exchange && cells[1] == transport)
        .unwrap_or_else(|| panic!("no row {exchange} {transport} in:\n{stdout}"))
}

#[test]
fn routes_and_sources_from_file_and_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "feed.yaml",
        &format!(
            "feed: {{x: 1}}\nproxy:\n  default:\n    http: {{url: 'http://corp:3128', timeout_seconds: 15}}\n  exchanges:\n    Binance:\n      websocket: {{url: 'https://user:{PASSWORD}@tls-proxy:8443'}}\n"
        ),
    );
    let env_var = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL";
    let out = feedproxy(
        &["check", "--config", &file, "--exchange", "KRAKEN"],
        &[(env_var, &format!("http://u:{PASSWORD}@eu:8080"))],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("proxy system: enabled (from default)"),
        "{stdout}"
    );
    let binance_http = row(&stdout, "binance", "http");
    assert_eq!(binance_http[2..4], ["http://eu:8080", "(auth)"], "{stdout}");
    assert!(binance_http.contains(&env_var), "{stdout}");
    let binance_ws = row(&stdout, "binance", "websocket");
    assert_eq!(
        binance_ws[2..5],
        ["https://tls-proxy:8443", "(auth)", "30s"],
        "{stdout}"
    );
    let kraken_http = row(&stdout, "kraken", "http");
    assert_eq!(
        kraken_http[2..6],
        ["http://corp:3128", "15s", "default", "proxy"],
        "{stdout}"
    );
    let kraken_ws = row(&stdout, "kraken", "websocket");
    assert_eq!(
        kraken_ws[2..7],
        ["direct", "-", "no", "proxy", "configured"],
        "{stdout}"
    );
    row(&stdout, "*", "http");
}

#[test]
fn json_output() {
    let out = feedproxy(
        &["check", "--json", "--exchange", "coinbase"],
        &[
            (
                "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
                &format!("http://u:{PASSWORD}@gw:1080"),
            ),
            ("CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__TIMEOUT_SECONDS", "7"),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(report["enabled"], true);
    let routes = report["routes"].as_array().expect("routes");
    let ws = routes
        .iter()
        .find(|r| r["exchange"] == "coinbase" && r["transport"] == "websocket")
        .expect("coinbase websocket row");
    assert_eq!(ws["route"], "http://gw:1080");
    assert_eq!(ws["scheme"], "http");
    assert_eq!(ws["proxy"], "gw:1080");
    assert_eq!(ws["timeout_seconds"], 7);
    assert_eq!(ws["authenticated"], true);
    assert_eq!(ws["reason"], "default proxy");
    assert_eq!(
        ws["url_source"],
        "env CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL"
    );
    assert_eq!(
        ws["timeout_source"],
        "env CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__TIMEOUT_SECONDS"
    );
    let http = routes
        .iter()
        .find(|r| r["exchange"] == "coinbase" && r["transport"] == "http")
        .expect("coinbase http row");
    assert_eq!(http["route"], "direct");
    assert_eq!(http["reason"], "no proxy configured");
    assert_eq!(report["ignored_env"], serde_json::json!([]));
}

/// HTTPS_PROXY and its kin are what curl and pip read; a user who set one is told feedproxy
/// does not, by name only (the value may hold a password).
#[test]
fn conventional_proxy_variables_are_named_as_ignored() {
    let proxy = format!("http://u:{PASSWORD}@corp:3128");
    let env = [
        ("HTTPS_PROXY", proxy.as_str()),
        ("no_proxy", "localhost"),
        ("ALL_PROXY", ""),
    ];
    let out = feedproxy(&["check"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stdout.lines().last(),
        Some(
            "note: HTTPS_PROXY, no_proxy are set here, and feedproxy does not read them: routes \
             come only from CRYPTOFEED_PROXY_* variables, the config file and code (e.g. \
             CRYPTOFEED_PROXY_DEFAULT__HTTP__URL and CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL)"
        ),
        "{stdout}"
    );
    assert_eq!(row(&stdout, "*", "http")[2], "direct", "{stdout}");

    let out = feedproxy(&["check", "--json"], &env);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(
        report["ignored_env"],
        serde_json::json!(["HTTPS_PROXY", "no_proxy"])
    );

    let out = feedproxy(&["check"], &[("Http_Proxy", proxy.as_str())]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.lines().last().is_some_and(
            |l| l.starts_with("note: Http_Proxy is set here, and feedproxy does not read it:")
        ),
        "{stdout}"
    );
    let out = feedproxy(&["check"], &[]);
    let (stdout, _) = text(&out);
    assert!(!stdout.contains("note:"), "{stdout}");
}

#[test]
fn disabled_settings_route_everything_direct() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "feed.toml",
        &format!("[proxy.exchanges.binance.http]\nurl = 'http://u:{PASSWORD}@p:1'\n"),
    );
    let out = feedproxy(
        &["check", "--config", &file],
        &[("CRYPTOFEED_PROXY_ENABLED", "false")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("proxy system: disabled (from env CRYPTOFEED_PROXY_ENABLED)"),
        "{stdout}"
    );
    assert_eq!(
        row(&stdout, "binance", "http")[2..5],
        ["direct", "-", "proxy"],
        "{stdout}"
    );
}

/// Invalid settings: exit 2, one line on stderr naming key path and source, nothing on stdout.
#[test]
fn invalid_settings_exit_2_with_key_and_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad_yaml = write(
        dir.path(),
        "bad.yaml",
        &format!(
            "proxy:\n  exchanges:\n    binance:\n      http: {{url: 'http://u:{PASSWORD}@p:1', timeout: 3}}\n"
        ),
    );
    // (arguments, environment, the exact stderr)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, String)>, String);
    let cases: Vec<Case> = vec![
        (
            vec!["check"],
            vec![("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", format!("ftp://u:{PASSWORD}@p:21"))],
            "error: exchanges.binance.http.url: unsupported proxy scheme \"ftp\" (from CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL); expected one of http, https, socks4, socks4a, socks5, socks5h".to_owned(),
        ),
        (
            vec!["check"],
            vec![("CRYPTOFEED_PROXY_DEFAULT__HTTP__URL", format!("http://u:{PASSWORD}@p"))],
            "error: default.http.url: missing port in proxy URL (from CRYPTOFEED_PROXY_DEFAULT__HTTP__URL); the port is required: a number from 1 to 65535 after the host, e.g. :8080".to_owned(),
        ),
        (
            vec!["check", "--config", &bad_yaml],
            vec![],
            format!("error: exchanges.binance.http.timeout: unknown key (from file {bad_yaml}); expected one of url, timeout_seconds"),
        ),
        (
            vec!["check", "--exchange", "bin ance"],
            vec![],
            "error: --exchange: invalid exchange id \"bin ance\"; expected 1 to 64 letters, digits, '_', '-' or '.'".to_owned(),
        ),
    ];
    for (args, env, expected) in cases {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = feedproxy(&args, &env);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let expected = if cfg!(feature = "socks") {
            expected
        } else {
            expected.replace(
                ", socks4, socks4a, socks5, socks5h",
                " (socks4, socks4a, socks5 and socks5h need the `socks` feature)",
            )
        };
        assert_eq!(stderr.trim_end(), expected, "{args:?}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn socks_url_without_the_feature() {
    let out = feedproxy(
        &["check"],
        &[(
            "CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL",
            &format!("socks5h://u:{PASSWORD}@gw:1080"),
        )],
    );
    let (stdout, stderr) = text(&out);
    if cfg!(feature = "socks") {
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            row(&stdout, "*", "websocket")[2..4],
            ["socks5h://gw:1080", "(auth)"]
        );
    } else {
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(
            stderr.trim_end(),
            "error: default.websocket.url: proxy scheme \"socks5h\" needs the `socks` feature, which this build does not enable (from CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL); rebuild with the `socks` feature (on by default) or use an http:// or https:// proxy"
        );
    }
}

#[test]
fn trace_logging_leaks_nothing() {
    let out = feedproxy(
        &["-vv", "check", "--exchange", "binance"],
        &[(
            "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL",
            &format!("http://u:{PASSWORD}@p:1"),
        )],
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn sample_config_in_the_repository_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut reports = Vec::new();
    for name in ["example.yaml", "example.toml"] {
        let path = root.join(name);
        let out = feedproxy(&["check", "--config", &path.to_string_lossy()], &[]);
        let (stdout, stderr) = text(&out);
        if cfg!(feature = "socks") {
            assert!(out.status.success(), "{name}: {stderr}");
            assert_eq!(
                row(&stdout, "binance", "websocket")[2],
                "socks5h://eu-socks.internal:1080"
            );
            assert_eq!(
                row(&stdout, "*", "websocket")[2],
                "http://ws-gw.internal:3128"
            );
            assert_eq!(row(&stdout, "binance", "http")[3], "20s");
            // The two files hold the same settings: the same report but for the file's name.
            reports.push(stdout.replace(&*path.to_string_lossy(), "FILE"));
        } else {
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name}: the sample uses socks5h"
            );
            assert!(stderr.contains("needs the `socks` feature"), "{stderr}");
        }
    }
    if let [yaml, toml] = reports.as_slice() {
        assert_eq!(yaml, toml);
    }
}
