//! REST through real third-party proxies (squid, tinyproxy, microsocks, dante) started on
//! loopback by feed-sim: a GET through each succeeds and the proxy's own log shows the connection
//! to the target; a wrong password fails with the typed auth error. A missing binary skips with
//! a printed reason, or fails under FEED_E2E_REQUIRE_REAL_PROXIES=1 (set by .ci/run).

use std::sync::Arc;
use std::time::Duration;

use feed_sim::real::RealProxyKind;
use feed_sim::{
    HttpsServer, RealProxy, RealProxyOptions, Response, Routes, TestCa, require_or_skip,
};
use proxy_config::{ProxyConfig, TimeoutSeconds};
use proxy_http::{HttpClient, HttpOptions, StatusCode, TlsOptions};
use proxy_resolve::Route;
use proxy_tunnel::TunnelErrorKind;

const USER: &str = "feed-user";
const PASSWORD: &str = "s3cret.pw_x";
const LOG_DEADLINE: Duration = Duration::from_secs(10);

struct Exchange {
    ca: TestCa,
    server: HttpsServer,
}

async fn exchange() -> Exchange {
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca,
        Routes::new().route("/api/v3/ping", Response::json("{}")),
    )
    .await
    .expect("https server");
    Exchange { ca, server }
}

fn client(e: &Exchange, url: &str) -> HttpClient {
    let config = ProxyConfig::parse(url)
        .expect("proxy URL")
        .with_timeout(TimeoutSeconds::new(10).expect("timeout"));
    let options = HttpOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(e.ca.root_pem().as_bytes())
            .expect("CA"),
        ..HttpOptions::default()
    };
    HttpClient::new(Route::Proxy(Arc::new(config)), "binance", options).expect("client")
}

/// GETs through `url`, closes the pooled connection, and returns the proxy's records.
async fn get_and_log(
    e: &Exchange,
    proxy: &RealProxy,
    url: &str,
    target_host: &str,
) -> Vec<feed_sim::RealRecord> {
    let http = client(e, url);
    let response = http
        .get(&format!(
            "https://{target_host}:{}/api/v3/ping",
            e.server.port()
        ))
        .send()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "GET through {:?}: {err}\n{}",
                proxy.kind(),
                proxy.diagnostics()
            )
        });
    assert_eq!(response.status, StatusCode::OK);
    // Some proxies log a tunnel only when it ends: close the pooled connection.
    drop(http);
    let records = proxy.connections_when_closed(1, LOG_DEADLINE).await;
    let port = e.server.port();
    assert!(
        records
            .iter()
            .any(|r| r.allowed == Some(true) && r.target_port() == Some(port)),
        "{:?} log shows no connection to port {port}: {records:?}\n{}",
        proxy.kind(),
        proxy.log_text()
    );
    records
}

#[tokio::test]
async fn squid_connect_with_basic_auth() {
    if !require_or_skip(RealProxyKind::Squid) {
        return;
    }
    let e = exchange().await;
    let mut proxy = RealProxy::start(
        RealProxyKind::Squid,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
    )
    .await
    .expect("squid");
    let records = get_and_log(&e, &proxy, &proxy.url_with_credentials(), "localhost").await;
    assert!(
        records.iter().any(|r| r.user.as_deref() == Some(USER)),
        "{records:?}"
    );

    let wrong = format!("http://{USER}:wrong@{}", proxy.addr());
    let err = client(&e, &wrong)
        .get(&format!(
            "https://localhost:{}/api/v3/ping",
            e.server.port()
        ))
        .send()
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err.tunnel_error().map(|t| t.kind()),
            Some(TunnelErrorKind::ProxyAuthRejected)
        ),
        "{err}"
    );
    let err = client(&e, &proxy.url())
        .get(&format!(
            "https://localhost:{}/api/v3/ping",
            e.server.port()
        ))
        .send()
        .await
        .expect_err("no credentials");
    assert!(
        matches!(
            err.tunnel_error().map(|t| t.kind()),
            Some(TunnelErrorKind::ProxyAuthRequired)
        ),
        "{err}"
    );
    assert!(!err.to_string().contains(PASSWORD));
    assert_eq!(
        e.server.requests().len(),
        1,
        "only the authenticated GET reached the exchange"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn tinyproxy_connect() {
    if !require_or_skip(RealProxyKind::Tinyproxy) {
        return;
    }
    let e = exchange().await;
    let mut proxy = RealProxy::start(RealProxyKind::Tinyproxy, RealProxyOptions::new())
        .await
        .expect("tinyproxy");
    get_and_log(&e, &proxy, &proxy.url(), "localhost").await;
    proxy.shutdown().await;
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn microsocks_socks5_with_user_and_password() {
    if !require_or_skip(RealProxyKind::Microsocks) {
        return;
    }
    let e = exchange().await;
    let mut proxy = RealProxy::start(
        RealProxyKind::Microsocks,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
    )
    .await
    .expect("microsocks");
    // socks5h: the proxy resolves `localhost` (microsocks is SOCKS5 only: never send it 4a).
    get_and_log(&e, &proxy, &proxy.url_with_credentials(), "localhost").await;
    let wrong = format!("socks5h://{USER}:wrong@{}", proxy.addr());
    let err = client(&e, &wrong)
        .get(&format!(
            "https://localhost:{}/api/v3/ping",
            e.server.port()
        ))
        .send()
        .await
        .expect_err("wrong password");
    assert!(
        matches!(
            err.tunnel_error().map(|t| t.kind()),
            Some(TunnelErrorKind::ProxyAuthRejected)
        ),
        "{err}"
    );
    proxy.shutdown().await;
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn dante_socks5_and_socks4() {
    if !require_or_skip(RealProxyKind::Dante) {
        return;
    }
    let e = exchange().await;
    let mut proxy = RealProxy::start(RealProxyKind::Dante, RealProxyOptions::new())
        .await
        .expect("dante");
    // socks5 and socks4 resolve `localhost` here and send 127.0.0.1: dante sees only IP literals.
    let records = get_and_log(&e, &proxy, &proxy.url_with_scheme("socks5"), "localhost").await;
    assert!(
        records.iter().any(|r| r.socks_version == Some(5)),
        "{records:?}"
    );
    let http = client(&e, &proxy.url_with_scheme("socks4"));
    let response = http
        .get(&format!(
            "https://localhost:{}/api/v3/ping",
            e.server.port()
        ))
        .send()
        .await
        .expect("socks4 GET");
    assert_eq!(response.status, StatusCode::OK);
    drop(http);
    let records = proxy.connections_when_closed(2, LOG_DEADLINE).await;
    assert!(
        records
            .iter()
            .any(|r| r.socks_version == Some(4) && r.allowed == Some(true)),
        "{records:?}\n{}",
        proxy.log_text()
    );
    proxy.shutdown().await;
}
