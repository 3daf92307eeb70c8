//! WebSocket streams through real squid, microsocks and dante on loopback: every numbered
//! message arrives in order and the proxy's own log shows the connection to the WSS server.
//! Missing binaries skip with a reason, or fail under FEED_E2E_REQUIRE_REAL_PROXIES=1.

use std::sync::Arc;
use std::time::Duration;

use feed_sim::real::RealProxyKind;
use feed_sim::wss::{WssOptions, WssServer};
use feed_sim::{RealProxy, RealProxyOptions, TestCa, require_or_skip};
use proxy_config::{ProxyConfig, TimeoutSeconds};
use proxy_resolve::Route;
use proxy_tunnel::TlsOptions;
use proxy_ws::{WsOptions, connect};

const USER: &str = "feed-user";
const PASSWORD: &str = "s3cret.pw_x";

async fn stream_through(kind: RealProxyKind, options: RealProxyOptions, scheme: Option<&str>) {
    if !require_or_skip(kind) {
        return;
    }
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().stream(100, None))
        .await
        .expect("wss");
    let mut proxy = RealProxy::start(kind, options).await.expect("proxy starts");
    let url = match scheme {
        Some(scheme) => proxy.url_with_scheme(scheme),
        None => proxy.url_with_credentials(),
    };
    let config = ProxyConfig::parse(&url)
        .expect("url")
        .with_timeout(TimeoutSeconds::new(10).expect("timeout"));
    let client = WsOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        ..WsOptions::default()
    };
    let mut ws = connect(
        &server.url("/stream"),
        Route::Proxy(Arc::new(config)),
        "binance",
        &client,
    )
    .await
    .unwrap_or_else(|e| panic!("{kind}: {e}\n{}", proxy.diagnostics()));
    for n in 1..=100 {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next_message())
            .await
            .expect("in time")
            .expect("no error")
            .expect("open");
        assert_eq!(
            message.as_text(),
            Some(format!("{{\"seq\":{n}}}").as_str()),
            "{kind}"
        );
    }
    ws.close(1000, "done").await.expect("close");
    while let Ok(Ok(Some(_))) =
        tokio::time::timeout(Duration::from_secs(5), ws.next_message()).await
    {}
    drop(ws);
    let records = proxy
        .connections_when_closed(1, Duration::from_secs(10))
        .await;
    assert!(
        records
            .iter()
            .any(|r| r.allowed == Some(true) && r.target_port() == Some(server.port())),
        "{kind} log shows no connection to the WSS port: {records:?}\n{}",
        proxy.log_text()
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn squid_with_basic_auth() {
    stream_through(
        RealProxyKind::Squid,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
        None,
    )
    .await;
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn microsocks_socks5h_with_auth() {
    stream_through(
        RealProxyKind::Microsocks,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
        None,
    )
    .await;
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn dante_socks5() {
    stream_through(
        RealProxyKind::Dante,
        RealProxyOptions::new(),
        Some("socks5"),
    )
    .await;
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn dante_socks4() {
    stream_through(
        RealProxyKind::Dante,
        RealProxyOptions::new(),
        Some("socks4"),
    )
    .await;
}
