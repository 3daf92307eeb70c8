//! Routes from the process-wide proxy system: resolved when a connection opens (not when it is
//! built), per transport, disabled settings route direct while a legacy proxy still applies.
//! The tests share the global system, so they hold one lock.

use std::time::Duration;

use feed_conn::{
    ConnOptions, HttpConn, HttpConnOptions, HttpOptions, TlsOptions, WsConn, WsConnOptions,
    WsOptions,
};
use feed_sim::wss::{WssOptions, WssServer};
use feed_sim::{ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa};
use proxy_config::{ProxyConfig, ProxySettings};
use proxy_resolve::{clear_proxy_system, init_proxy_system};
use tokio::sync::Mutex;

static SYSTEM_LOCK: Mutex<()> = Mutex::const_new(());
const DEADLINE: Duration = Duration::from_secs(10);

struct Fixture {
    ca: TestCa,
    rest: HttpsServer,
    ws: WssServer,
    http_proxy: ConnectProxy,
    ws_proxy: ConnectProxy,
}

impl Fixture {
    async fn start() -> Self {
        let ca = TestCa::new();
        let rest = HttpsServer::start(&ca, Routes::new().route("/a", Response::json("{}")))
            .await
            .expect("rest");
        let ws = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
        Self {
            rest,
            ws,
            ca,
            http_proxy: ConnectProxy::start(ProxyOptions::new())
                .await
                .expect("proxy"),
            ws_proxy: ConnectProxy::start(ProxyOptions::new())
                .await
                .expect("proxy"),
        }
    }

    fn tls(&self) -> TlsOptions {
        TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(self.ca.root_pem().as_bytes())
            .expect("CA")
    }

    fn settings(&self) -> ProxySettings {
        ProxySettings::default()
            .with_default_http(ProxyConfig::parse(&self.http_proxy.url()).expect("url"))
            .with_default_websocket(ProxyConfig::parse(&self.ws_proxy.url()).expect("url"))
    }

    fn http(&self, conn: ConnOptions) -> HttpConn {
        HttpConn::new(
            "sysfeed",
            "binance",
            HttpConnOptions {
                http: HttpOptions {
                    tls: self.tls(),
                    ..HttpOptions::default()
                },
                conn,
                ..HttpConnOptions::default()
            },
        )
    }

    fn ws(&self, conn: ConnOptions) -> WsConn {
        WsConn::new(
            "sysfeed",
            "binance",
            &self.ws.url("/"),
            WsConnOptions {
                ws: WsOptions {
                    tls: self.tls(),
                    ..WsOptions::default()
                },
                conn,
                ..WsConnOptions::default()
            },
        )
        .expect("ws conn")
    }

    async fn use_both(&self, http: &HttpConn, ws: &mut WsConn) {
        http.read(&format!("https://localhost:{}/a", self.rest.port()))
            .await
            .expect("rest");
        tokio::time::timeout(DEADLINE, ws.open())
            .await
            .expect("in time")
            .expect("ws");
        ws.close().await;
    }

    /// (tunnels seen by the HTTP proxy, tunnels seen by the WebSocket proxy)
    fn proxied(&self) -> (usize, usize) {
        (
            self.http_proxy.connections().len(),
            self.ws_proxy.connections().len(),
        )
    }
}

#[tokio::test]
async fn routes_come_from_the_system_when_the_connection_opens() {
    let _lock = SYSTEM_LOCK.lock().await;
    let f = Fixture::start().await;
    clear_proxy_system();
    // Built before the system exists; opened after: the route in force at open applies.
    let http = f.http(ConnOptions::default());
    let mut ws = f.ws(ConnOptions::default());
    init_proxy_system(f.settings());
    f.use_both(&http, &mut ws).await;
    clear_proxy_system();
    assert_eq!(f.proxied(), (1, 1), "each transport took its own proxy");
    assert!(http.route().expect("route").proxy().is_some());
}

#[tokio::test]
async fn no_system_routes_direct() {
    let _lock = SYSTEM_LOCK.lock().await;
    let f = Fixture::start().await;
    clear_proxy_system();
    let http = f.http(ConnOptions::default());
    let mut ws = f.ws(ConnOptions::default());
    f.use_both(&http, &mut ws).await;
    assert_eq!(f.proxied(), (0, 0));
    assert!(http.route().expect("route").is_direct());
    assert!(ws.route().expect("route").is_direct());
}

#[tokio::test]
async fn disabled_settings_route_direct_but_a_legacy_proxy_still_applies() {
    let _lock = SYSTEM_LOCK.lock().await;
    let f = Fixture::start().await;
    let mut disabled = f.settings();
    disabled.enabled = false;
    init_proxy_system(disabled);

    let http = f.http(ConnOptions::default());
    let mut ws = f.ws(ConnOptions::default());
    f.use_both(&http, &mut ws).await;
    assert_eq!(f.proxied(), (0, 0), "disabled: no proxy sees a byte");

    let legacy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("legacy");
    let with_legacy =
        ConnOptions::default().with_legacy_proxy(ProxyConfig::parse(&legacy.url()).expect("url"));
    let http = f.http(with_legacy.clone());
    let mut ws = f.ws(with_legacy);
    f.use_both(&http, &mut ws).await;
    clear_proxy_system();
    assert_eq!(f.proxied(), (0, 0));
    assert_eq!(legacy.connections().len(), 2);
}

#[tokio::test]
async fn an_open_http_connection_follows_a_newly_installed_system() {
    let _lock = SYSTEM_LOCK.lock().await;
    let f = Fixture::start().await;
    let url = format!("https://localhost:{}/a", f.rest.port());
    clear_proxy_system();
    let http = f.http(ConnOptions::default());
    http.read(&url).await.expect("direct while no system");
    assert_eq!(f.proxied(), (0, 0));
    // Installed while the connection is open: its next request takes the new route.
    init_proxy_system(f.settings());
    http.read(&url).await.expect("through the proxy now");
    clear_proxy_system();
    assert_eq!(f.proxied(), (1, 0));
    assert_eq!(http.stats().opens, 2);
}

#[tokio::test]
async fn a_replaced_system_is_noticed_even_when_the_old_one_was_freed() {
    let _lock = SYSTEM_LOCK.lock().await;
    let f = Fixture::start().await;
    let other = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("second proxy");
    let url = format!("https://localhost:{}/a", f.rest.port());
    let http = f.http(ConnOptions::default());
    // Opened under system A, which is then removed and freed (nothing else holds it) ...
    drop(init_proxy_system(f.settings()));
    http.read(&url).await.expect("through A's proxy");
    clear_proxy_system();
    // ... and system B, the same size, may be allocated where A was: it must still count as new.
    let through_other =
        ProxySettings::default().with_default_http(ProxyConfig::parse(&other.url()).expect("url"));
    drop(init_proxy_system(through_other));
    http.read(&url).await.expect("through B's proxy");
    clear_proxy_system();
    assert_eq!(f.proxied(), (1, 0));
    assert_eq!(other.connections().len(), 1, "B's route was not taken");
    assert_eq!(http.stats().opens, 2);
}
