//! `HttpConn` and `HttpPoll` against feed-sim's HTTPS server, directly and through in-process
//! proxies: one pooled client per connection, counters and raw-data callback, 429 retries,
//! errors with the connection id, the one "opened through proxy" event.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_conn::{
    ConnError, ConnOptions, HttpConn, HttpConnOptions, HttpOptions, HttpPoll, RawKind, ReadOptions,
    RetryPolicy, TlsOptions,
};
use feed_sim::{ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa};
use futures_util::StreamExt;
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;

const USER: &str = "conn";
const PASSWORD: &str = "http-c0nn-canary";

fn http_options(ca: &TestCa) -> HttpOptions {
    HttpOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        ..HttpOptions::default()
    }
}

/// A connection for `feed` to `exchange` trusting `ca`, with these connection options.
fn http_conn(feed: &str, exchange: &str, ca: &TestCa, conn: ConnOptions) -> HttpConn {
    HttpConn::new(
        feed,
        exchange,
        HttpConnOptions {
            http: http_options(ca),
            conn,
            ..HttpConnOptions::default()
        },
    )
}

/// A resolver sending `exchange`'s REST traffic through `proxy_url`.
fn resolver_via(exchange: &str, proxy_url: &str) -> Arc<Resolver> {
    let settings = ProxySettings::default().with_exchange(
        ExchangeId::new(exchange).expect("id"),
        ConnectionProxies::http(ProxyConfig::parse(proxy_url).expect("proxy url")),
    );
    Arc::new(Resolver::new(settings))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Connect(String),
    Sent(Vec<u8>),
    Received(Vec<u8>),
}

/// What the raw-data callback saw: (connection id, event).
type SeenLog = Arc<Mutex<Vec<(String, Seen)>>>;

fn recorder() -> (SeenLog, ConnOptions) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let options = ConnOptions::default().with_raw_callback(move |raw| {
        let what = match raw.kind {
            RawKind::Connect { url } => Seen::Connect(url.to_owned()),
            RawKind::Sent(data) => Seen::Sent(data.to_vec()),
            RawKind::Received(data) => Seen::Received(data.to_vec()),
            _ => return,
        };
        sink.lock()
            .expect("lock")
            .push((raw.conn_id.to_string(), what));
    });
    (seen, options)
}

#[test]
fn ids_count_per_feed_and_transport() {
    let a = HttpConn::new("idfeed", "binance", HttpConnOptions::default());
    let b = HttpConn::new("idfeed", "binance", HttpConnOptions::default());
    let other = HttpConn::new("otherfeed", "binance", HttpConnOptions::default());
    assert_eq!(a.id().as_str(), "idfeed.http.0");
    assert_eq!(b.id().as_str(), "idfeed.http.1");
    assert_eq!(other.id().as_str(), "otherfeed.http.0");
    assert!(!a.is_open());
}

#[tokio::test]
async fn requests_share_one_client_through_the_proxy_and_are_counted() {
    let capture = feed_sim::TraceCapture::start();
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca,
        Routes::new()
            .route("/info", Response::json(r#"{"ok":1}"#))
            .route("/post", Response::json(r#"{"posted":true}"#)),
    )
    .await
    .expect("server");
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let (seen, conn) = recorder();
    let conn = http_conn(
        "restfeed",
        "Binance",
        &ca,
        conn.with_resolver(resolver_via("binance", &proxy.url_with_credentials())),
    );
    let base = format!("https://localhost:{}", server.port());

    let first = conn.read(&format!("{base}/info")).await.expect("read");
    let second = conn
        .read_with(
            &format!("{base}/info"),
            &ReadOptions::default()
                .header("X-Test", "1")
                .query("symbol", "BTCUSDT"),
        )
        .await
        .expect("read with");
    let posted = conn
        .write(&format!("{base}/post"), "body=1", &ReadOptions::default())
        .await
        .expect("write");
    assert_eq!(&first[..], br#"{"ok":1}"#);
    assert_eq!(&second[..], br#"{"ok":1}"#);
    assert_eq!(&posted[..], br#"{"posted":true}"#);
    assert!(conn.is_open());
    assert!(conn.route().expect("route").proxy().is_some());

    // One proxy tunnel carried all three requests, to the server's port.
    let tunnels = proxy.connections();
    assert_eq!(tunnels.len(), 1, "tunnels: {}", tunnels.len());
    assert_eq!(
        tunnels[0].target.as_deref(),
        Some(format!("localhost:{}", server.port()).as_str())
    );
    let requests = server.requests();
    let targets: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.target.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("GET", "/info"),
            ("GET", "/info?symbol=BTCUSDT"),
            ("POST", "/post")
        ]
    );
    assert_eq!(requests[1].header("x-test"), Some("1"));
    assert_eq!(requests[2].body, b"body=1");

    let stats = conn.stats();
    assert_eq!((stats.sent, stats.received, stats.opens), (3, 3, 1));
    assert!(stats.last_message.is_some());

    let id = conn.id().to_string();
    let seen = seen.lock().expect("lock").clone();
    let expected = vec![
        (id.clone(), Seen::Connect(format!("{base}/info"))),
        (id.clone(), Seen::Sent(Vec::new())),
        (id.clone(), Seen::Received(br#"{"ok":1}"#.to_vec())),
        (id.clone(), Seen::Sent(Vec::new())),
        (id.clone(), Seen::Received(br#"{"ok":1}"#.to_vec())),
        (id.clone(), Seen::Sent(b"body=1".to_vec())),
        (id.clone(), Seen::Received(br#"{"posted":true}"#.to_vec())),
    ];
    assert_eq!(seen, expected);

    // Exactly one "opened through proxy" event, naming what an operator needs, no password.
    let logs = capture.text();
    let opened: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("connection opened through proxy"))
        .collect();
    assert_eq!(opened.len(), 1, "{logs}");
    for part in [
        format!("conn_id={id}"),
        "exchange=\"binance\"".to_owned(),
        "transport=\"http\"".to_owned(),
        "scheme=\"http\"".to_owned(),
        format!("proxy={}", proxy.addr()),
    ] {
        assert!(opened[0].contains(&part), "{part} missing in {}", opened[0]);
    }
    let basic = feed_sim::basic_auth_value(USER, PASSWORD);
    for needle in [PASSWORD, basic.trim_start_matches("Basic ")] {
        assert!(!logs.contains(needle), "a credential in the logs");
    }
}

#[tokio::test]
async fn close_drops_the_client_and_the_next_request_reopens() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, Routes::new().route("/a", Response::json("{}")))
        .await
        .expect("server");
    let conn = http_conn("reopenfeed", "binance", &ca, ConnOptions::default());
    let url = format!("https://localhost:{}/a", server.port());
    conn.read(&url).await.expect("first");
    conn.close().await;
    assert!(!conn.is_open());
    conn.read(&url).await.expect("after close");
    assert_eq!(conn.stats().opens, 2);
    // The pool was dropped with the client, so the second request needed a new connection.
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn too_many_requests_is_retried_a_bounded_number_of_times() {
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca,
        Routes::new().route(
            "/limited",
            Response::new(429, "slow down").with_header("Retry-After", "0"),
        ),
    )
    .await
    .expect("server");
    let conn = HttpConn::new(
        "retryfeed",
        "binance",
        HttpConnOptions {
            http: http_options(&ca),
            retry: RetryPolicy {
                max_retries: 2,
                delay: Duration::from_secs(30),
                max_delay: Duration::from_secs(30),
            },
            ..HttpConnOptions::default()
        },
    );
    let url = format!("https://localhost:{}/limited?signature=abc", server.port());
    // Retry-After: 0 replaces the policy's 30 s, so the retries come at once; a missed
    // Retry-After would blow this deadline.
    let error = tokio::time::timeout(Duration::from_secs(10), conn.read(&url))
        .await
        .expect("retries honour Retry-After")
        .expect_err("rate limited");
    match &error {
        ConnError::RateLimited { attempts, url, .. } => {
            assert_eq!(*attempts, 3);
            assert!(!url.contains("signature"), "{url}");
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(server.requests().len(), 3);
    let shown = error.to_string();
    assert!(shown.starts_with("retryfeed.http.0: "), "{shown}");
    assert!(shown.contains("429"), "{shown}");
}

#[tokio::test]
async fn unsuccessful_status_is_a_typed_error_without_the_query() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, Routes::new())
        .await
        .expect("server");
    let conn = http_conn("statusfeed", "binance", &ca, ConnOptions::default());
    let url = format!("https://localhost:{}/missing?apiKey=k", server.port());
    match conn.read(&url).await {
        Err(ConnError::Status {
            status,
            url,
            method,
            ..
        }) => {
            assert_eq!((status, method), (404, "GET"));
            assert_eq!(url, format!("https://localhost:{}/missing", server.port()));
        }
        other => panic!("expected Status, got {other:?}"),
    }
    // A 404 is not retried.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_failing_proxy_is_an_error_never_a_direct_request() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, Routes::new().route("/a", Response::json("{}")))
        .await
        .expect("server");
    let proxy =
        ConnectProxy::start(ProxyOptions::new().fault(feed_sim::connect_proxy::Fault::Status(502)))
            .await
            .expect("proxy");
    let conn = http_conn(
        "failfeed",
        "binance",
        &ca,
        ConnOptions::default().with_resolver(resolver_via("binance", &proxy.url())),
    );
    let error = conn
        .read(&format!("https://localhost:{}/a", server.port()))
        .await
        .expect_err("proxy refuses");
    assert!(error.tunnel_error().is_some(), "{error:?}");
    assert_eq!(error.conn_id().as_str(), "failfeed.http.0");
    assert_eq!(server.connection_count(), 0, "nothing went direct");
}

#[tokio::test]
async fn legacy_proxy_applies_when_the_resolver_names_none() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, Routes::new().route("/a", Response::json("{}")))
        .await
        .expect("server");
    let legacy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let configured = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let url = format!("https://localhost:{}/a", server.port());

    // The resolver configures another exchange only: this one falls to the legacy proxy.
    let conn = http_conn(
        "legacyfeed",
        "coinbase",
        &ca,
        ConnOptions::default()
            .with_resolver(resolver_via("binance", &configured.url()))
            .with_legacy_proxy(ProxyConfig::parse(&legacy.url()).expect("url")),
    );
    conn.read(&url).await.expect("via legacy");
    assert_eq!(legacy.connections().len(), 1);
    assert_eq!(configured.connections().len(), 0);

    // A configured route wins over the legacy proxy.
    let conn = http_conn(
        "legacyfeed",
        "binance",
        &ca,
        ConnOptions::default()
            .with_resolver(resolver_via("binance", &configured.url()))
            .with_legacy_proxy(ProxyConfig::parse(&legacy.url()).expect("url")),
    );
    conn.read(&url).await.expect("via configured");
    assert_eq!(legacy.connections().len(), 1);
    assert_eq!(configured.connections().len(), 1);
}

#[tokio::test]
async fn poll_reads_every_address_in_turn_over_one_connection() {
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca,
        Routes::new()
            .route("/one", Response::json("1"))
            .route("/two", Response::json("2")),
    )
    .await
    .expect("server");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let conn = http_conn(
        "pollfeed",
        "binance",
        &ca,
        ConnOptions::default().with_resolver(resolver_via("binance", &proxy.url())),
    );
    let base = format!("https://localhost:{}", server.port());
    let poll = HttpPoll::new(
        conn,
        vec![format!("{base}/one"), format!("{base}/two")],
        Duration::from_millis(20),
    );
    let items: Vec<_> = tokio::time::timeout(
        Duration::from_secs(10),
        poll.read().take(5).collect::<Vec<_>>(),
    )
    .await
    .expect("five polls in time");
    let got: Vec<(usize, Vec<u8>)> = items
        .into_iter()
        .map(|item| {
            let item = item.expect("poll ok");
            (item.index, item.body.to_vec())
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, b"1".to_vec()),
            (1, b"2".to_vec()),
            (0, b"1".to_vec()),
            (1, b"2".to_vec()),
            (0, b"1".to_vec())
        ]
    );
    assert_eq!(proxy.connections().len(), 1);
    assert_eq!(poll.conn().stats().received, 5);

    let empty = HttpPoll::new(
        HttpConn::new("pollfeed", "binance", HttpConnOptions::default()),
        Vec::new(),
        Duration::from_millis(1),
    );
    assert_eq!(empty.read().count().await, 0);
}

#[tokio::test]
async fn a_429_then_200_returns_the_200_body_after_one_retry() {
    let ca = TestCa::new();
    let server = HttpsServer::start(
        &ca,
        Routes::new().sequence(
            "/info",
            vec![
                Response::new(429, "slow down").with_header("Retry-After", "0"),
                Response::json(r#"{"ok":2}"#),
            ],
        ),
    )
    .await
    .expect("server");
    let conn = http_conn("retryok", "binance", &ca, ConnOptions::default());
    let body = conn
        .read(&format!("https://localhost:{}/info", server.port()))
        .await
        .expect("second attempt succeeds");
    assert_eq!(&body[..], br#"{"ok":2}"#);
    assert_eq!(server.requests().len(), 2);
    let stats = conn.stats();
    assert_eq!((stats.sent, stats.received), (2, 2));
}
