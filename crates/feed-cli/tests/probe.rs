//! `feedproxy probe` run as a process against loopback servers and in-process proxies: the
//! stages it prints, the stage it names on failure, exit codes, and no credential in any output.

mod common;

use std::time::Duration;

use common::{Trust, feedproxy, feedproxy_async, row, text_without};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::{ConnectProxy, HttpsServer, ProxyOptions, Response, Routes};

const USER: &str = "probe";
const PASSWORD: &str = "Pw-canary/probe:7d2e";
const HTTP_URL_VAR: &str = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL";
const WS_URL_VAR: &str = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL";

/// The cells after the stage name: TIME, RESULT.
fn stage<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    row(stdout, &[name])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_through_a_connect_proxy_with_auth_prints_every_stage() {
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    let mut server = HttpsServer::start(
        &ca,
        Routes::new().route("/api/v3/ping", Response::json("{}")),
    )
    .await
    .expect("https server");
    let mut proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let url = format!("https://localhost:{}/api/v3/ping", server.port());
    let out = feedproxy_async(
        &[
            "probe",
            &url,
            "--exchange",
            "binance",
            "--ca-file",
            &ca_file,
        ],
        &[(HTTP_URL_VAR, &proxy.url_with_credentials())],
    )
    .await;
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains(&format!("route: {} (auth) (exchange override, from exchanges.binance.http (env {HTTP_URL_VAR}))", proxy.url())),
        "{stdout}"
    );
    let tcp = stage(&stdout, "tcp");
    assert!(tcp[1].ends_with(" ms"), "{tcp:?}");
    assert_eq!(
        tcp[2],
        format!("connected to proxy {}", proxy.addr()),
        "{stdout}"
    );
    assert_eq!(
        stage(&stdout, "proxy-handshake")[2],
        format!("http tunnel to localhost:{}", server.port())
    );
    assert_eq!(
        stage(&stdout, "tls")[2],
        "certificate verified for localhost"
    );
    assert_eq!(stage(&stdout, "http")[2], "200 OK");
    assert!(
        !stdout.contains("proxy-tls"),
        "no TLS to an http:// proxy: {stdout}"
    );

    // What the wire saw: one authenticated CONNECT to the server, one GET arriving from the proxy.
    let records = proxy.connections();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].target.as_deref(),
        Some(format!("localhost:{}", server.port()).as_str())
    );
    assert_eq!(records[0].auth_ok, Some(true));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].target, "/api/v3/ping");
    assert_eq!(Some(requests[0].peer), records[0].upstream_local);
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_a_connect_proxy_reaches_the_first_message() {
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let mut proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let url = format!("{}/stream?streams=btcusdt@aggTrade", fake.ws_base_url());
    let out = feedproxy_async(
        &[
            "probe",
            &url,
            "--exchange",
            "binance",
            "--ca-file",
            &ca_file,
        ],
        &[(WS_URL_VAR, &proxy.url())],
    )
    .await;
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for name in ["tcp", "proxy-handshake", "tls", "upgrade", "first-message"] {
        let cells = stage(&stdout, name);
        assert!(cells[1].ends_with(" ms"), "{name}: {cells:?}");
    }
    assert_eq!(stage(&stdout, "upgrade")[2], "101 Switching Protocols");
    assert!(
        stage(&stdout, "first-message")[2].ends_with("bytes of text"),
        "{stdout}"
    );
    let records = proxy.connections();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].upstream, Some(fake.ws_addr()));
    proxy.shutdown().await;
    fake.shutdown().await;
}

#[cfg(feature = "socks")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_through_socks5h_sends_the_name_to_the_proxy() {
    use feed_sim::{SocksOptions, SocksProxy};
    let Trust {
        ca,
        ca_file,
        dir: _dir,
    } = Trust::new();
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let mut socks = SocksProxy::start(SocksOptions::socks5().user_pass(USER, PASSWORD))
        .await
        .expect("socks proxy");
    let url = format!("{}/stream?streams=btcusdt@aggTrade", fake.ws_base_url());
    let out = feedproxy_async(
        &[
            "probe",
            &url,
            "--exchange",
            "binance",
            "--ca-file",
            &ca_file,
            "-vv",
        ],
        &[(WS_URL_VAR, &socks.url_with_credentials("socks5h"))],
    )
    .await;
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        stage(&stdout, "proxy-handshake")[2],
        format!("socks5h tunnel to localhost:{}", fake.ws_addr().port())
    );
    let records = socks.connections();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].target_host.as_deref(), Some("localhost"));
    assert_eq!(records[0].auth_ok, Some(true));
    socks.shutdown().await;
    fake.shutdown().await;
}

#[test]
fn a_closed_port_fails_at_tcp_with_exit_1() {
    let closed = feed_sim::ClosedPort::new().expect("closed port");
    let port = closed.port();
    let url = format!("https://127.0.0.1:{port}/");
    let out = feedproxy(&["probe", &url, "--exchange", "binance"], &[]);
    let (stdout, stderr) = text_without(&out, USER, PASSWORD);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("route: direct (no proxy configured)"),
        "{stdout}"
    );
    let tcp = stage(&stdout, "tcp");
    assert_eq!(tcp[1], "-");
    assert!(
        tcp[2].starts_with("FAILED: direct connection failed"),
        "{tcp:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: probe failed at tcp: direct connection failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("target 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_at_the_proxy_handshake_without_echoing_them() {
    let mut proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, "the-right-one"))
        .await
        .expect("proxy");
    let wrong = proxy.url_with_credentials().replace(
        "the-right-one",
        &PASSWORD.replace('/', "%2F").replace(':', "%3A"),
    );
    for json in [false, true] {
        let mut args = vec!["probe", "https://localhost:9/", "--exchange", "binance"];
        if json {
            args.push("--json");
        }
        let out = feedproxy_async(&args, &[(HTTP_URL_VAR, &wrong)]).await;
        let (stdout, stderr) = text_without(&out, USER, PASSWORD);
        assert_eq!(
            out.status.code(),
            Some(1),
            "stdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(
            stderr.starts_with(
                "error: probe failed at proxy-handshake: proxy rejected the credentials"
            ),
            "{stderr}"
        );
        if json {
            let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
            assert_eq!(report["transport"], "http");
            assert_eq!(report["route"], format!("{} (auth)", proxy.url()));
            assert_eq!(report["error"]["stage"], "proxy-handshake");
            let stages = report["stages"].as_array().expect("stages");
            assert_eq!(stages.len(), 2, "{stages:?}");
            assert_eq!(stages[0]["stage"], "tcp");
            assert_eq!(stages[0]["ok"], true);
            assert!(stages[0]["millis"].as_f64().is_some());
            assert_eq!(stages[1]["ok"], false);
            assert!(stages[1]["millis"].is_null());
        } else {
            assert!(
                stage(&stdout, "proxy-handshake")[2]
                    .starts_with("FAILED: proxy rejected the credentials"),
                "{stdout}"
            );
        }
    }
    // The proxy saw the attempts and refused them; nothing went further.
    let records = proxy
        .connections_when_closed(2, Duration::from_secs(2))
        .await;
    assert_eq!(records.len(), 2);
    assert!(
        records
            .iter()
            .all(|r| r.auth_ok == Some(false) && r.upstream.is_none())
    );
    proxy.shutdown().await;
}

#[test]
fn bad_arguments_exit_2_on_one_line() {
    // A proxy URL pasted as the target, and a URL whose password holds an unencoded `/`: the
    // error quotes neither password.
    let pasted = format!("{USER}:{PASSWORD}@127.0.0.1:9");
    let slash = format!("wss://{USER}:{PASSWORD}@127.0.0.1:9/ws");
    for (args, expected) in [
        (
            vec!["probe", pasted.as_str(), "--exchange", "binance"],
            "error: URL is not a valid absolute URL: 127.0.0.1:9",
        ),
        (
            vec!["probe", slash.as_str(), "--exchange", "binance"],
            "error: URL",
        ),
        (
            vec!["probe", "ftp://127.0.0.1/", "--exchange", "binance"],
            "error: URL must start with https://, http://, wss:// or ws://: ftp://127.0.0.1/",
        ),
        (
            vec!["probe", "https://127.0.0.1/", "--exchange", "bin ance"],
            "error: --exchange:",
        ),
        (
            vec!["probe", "https://127.0.0.1/"],
            "error: the following required arguments were not provided: --exchange <ID>",
        ),
        (
            vec!["probe", "https://127.0.0.1:99999/", "--exchange", "binance"],
            "error: URL port must be 1 to 65535: https://127.0.0.1:99999/",
        ),
        (
            vec!["probe", "wss://127.0.0.1:0/", "--exchange", "binance"],
            "error: URL port must be 1 to 65535: wss://127.0.0.1:0/",
        ),
        (
            vec![],
            "error: a command is required: demo, check, probe or stream",
        ),
    ] {
        let out = feedproxy(&args, &[]);
        let (_, stderr) = text_without(&out, USER, PASSWORD);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
    }
}
