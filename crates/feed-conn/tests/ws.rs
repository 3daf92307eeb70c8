//! `WsConn` against feed-sim's WSS server, directly and through in-process CONNECT and SOCKS5
//! proxies: wss:// only, the authentication hook, subscription, reads as a Stream, counters and
//! raw-data callback, reopen under the same id, no fallback to direct.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_conn::{
    AuthError, ConnError, ConnOptions, RawKind, TlsOptions, WsConn, WsConnOptions, WsOptions,
};
use feed_sim::wss::{WsMessage, WssOptions, WssServer};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use futures_util::StreamExt;
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;
use rstest::rstest;

const DEADLINE: Duration = Duration::from_secs(10);
const PASSWORD: &str = "ws-c0nn-canary";

fn ws_options(ca: &TestCa) -> WsOptions {
    WsOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        ..WsOptions::default()
    }
}

fn resolver_via(exchange: &str, proxy_url: &str) -> Arc<Resolver> {
    let settings = ProxySettings::default().with_exchange(
        ExchangeId::new(exchange).expect("id"),
        ConnectionProxies::websocket(ProxyConfig::parse(proxy_url).expect("proxy url")),
    );
    Arc::new(Resolver::new(settings))
}

/// A connection for `feed` to `exchange` at `url` trusting `ca`, with these connection options.
fn ws_conn(feed: &str, exchange: &str, url: &str, ca: &TestCa, conn: ConnOptions) -> WsConn {
    WsConn::new(
        feed,
        exchange,
        url,
        WsConnOptions {
            ws: ws_options(ca),
            conn,
            ..WsConnOptions::default()
        },
    )
    .expect("conn")
}

fn numbered(n: usize) -> String {
    format!(r#"{{"seq":{n}}}"#)
}

#[rstest]
#[case::plain_ws("ws://localhost:1/x", "plain ws:// is not supported; use wss://")]
#[case::https(
    "https://localhost:1/x",
    "a WebSocket connection needs a wss:// address"
)]
#[case::empty("", "a WebSocket connection needs a wss:// address")]
#[case::no_host("wss:///path", "no host")]
#[case::bare("wss://", "no host")]
fn only_wss_addresses_are_accepted(#[case] url: &str, #[case] reason: &str) {
    let error =
        WsConn::new("addrfeed", "binance", url, WsConnOptions::default()).expect_err("rejected");
    match &error {
        ConnError::InvalidAddress { reason: got, .. } => assert_eq!(*got, reason),
        other => panic!("expected InvalidAddress, got {other:?}"),
    }
    assert!(error.to_string().starts_with("addrfeed.ws."), "{error}");
}

#[test]
fn user_info_never_shows_in_an_address_error() {
    let error = WsConn::new(
        "addrfeed",
        "binance",
        "ws://user:hunter2@localhost:1/x",
        WsConnOptions::default(),
    )
    .expect_err("rejected");
    assert!(!error.to_string().contains("hunter2"), "{error}");
    assert!(!format!("{error:?}").contains("hunter2"), "{error:?}");
}

#[derive(Debug, Clone, Copy)]
enum Via {
    Direct,
    Connect,
    #[cfg(feature = "socks")]
    Socks5,
}

#[rstest]
#[case::direct(Via::Direct)]
#[case::connect(Via::Connect)]
#[cfg_attr(feature = "socks", case::socks5(Via::Socks5))]
#[tokio::test]
async fn subscribes_reads_in_order_and_counts(#[case] via: Via) {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().stream(5, None).echo(false))
        .await
        .expect("wss");
    let connect = ConnectProxy::start(ProxyOptions::new().basic_auth("u", PASSWORD))
        .await
        .expect("connect proxy");
    #[cfg(feature = "socks")]
    let socks =
        feed_sim::SocksProxy::start(feed_sim::SocksOptions::socks5().user_pass("u", PASSWORD))
            .await
            .expect("socks proxy");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let mut conn_options = ConnOptions::default().with_raw_callback(move |raw| {
        let what = match raw.kind {
            RawKind::Connect { url } => format!("connect {url}"),
            RawKind::Sent(d) => format!("sent {}", String::from_utf8_lossy(d)),
            RawKind::Received(d) => format!("received {}", String::from_utf8_lossy(d)),
            _ => return,
        };
        sink.lock()
            .expect("lock")
            .push(format!("{} {what}", raw.conn_id));
    });
    conn_options = match via {
        Via::Direct => conn_options,
        Via::Connect => {
            conn_options.with_resolver(resolver_via("binance", &connect.url_with_credentials()))
        }
        #[cfg(feature = "socks")]
        Via::Socks5 => conn_options.with_resolver(resolver_via(
            "binance",
            &socks.url_with_credentials("socks5h"),
        )),
    };
    let url = server.url("/stream?streams=btcusdt@aggTrade");
    let mut conn = WsConn::new(
        "wsfeed",
        "binance",
        &url,
        WsConnOptions {
            ws: ws_options(&ca),
            conn: conn_options,
            ..WsConnOptions::default()
        }
        .with_subscription(vec!["sub-1".into(), "sub-2".into()]),
    )
    .expect("conn");
    tokio::time::timeout(DEADLINE, conn.open())
        .await
        .expect("in time")
        .expect("open");
    assert!(conn.is_open());

    let got: Vec<String> = tokio::time::timeout(
        DEADLINE,
        conn.read()
            .take(5)
            .map(|m| String::from_utf8(m.expect("message").to_vec()).expect("utf8"))
            .collect::<Vec<_>>(),
    )
    .await
    .expect("five messages in time");
    let expected: Vec<String> = (1..=5).map(numbered).collect();
    assert_eq!(got, expected);

    let stats = conn.stats();
    assert_eq!((stats.sent, stats.received, stats.opens), (2, 5, 1));

    let id = conn.id().to_string();
    let mut want = vec![
        format!("{id} connect {url}"),
        format!("{id} sent sub-1"),
        format!("{id} sent sub-2"),
    ];
    want.extend((1..=5).map(|n| format!("{id} received {}", numbered(n))));
    assert_eq!(*seen.lock().expect("lock"), want);

    conn.close().await;
    assert!(!conn.is_open());
    let records = server.connections_when_closed(1, DEADLINE).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].target.as_deref(),
        Some("/stream?streams=btcusdt@aggTrade")
    );
    assert_eq!(
        records[0].messages,
        [
            WsMessage::Text("sub-1".into()),
            WsMessage::Text("sub-2".into())
        ]
    );
    #[cfg(feature = "socks")]
    let socks_tunnels = socks.connections().len();
    #[cfg(not(feature = "socks"))]
    let socks_tunnels = 0;
    let expected = match via {
        Via::Direct => (0, 0),
        Via::Connect => (1, 0),
        #[cfg(feature = "socks")]
        Via::Socks5 => (0, 1),
    };
    assert_eq!((connect.connections().len(), socks_tunnels), expected);
    assert_eq!(
        conn.route().expect("route").is_direct(),
        matches!(via, Via::Direct)
    );
}

#[tokio::test]
async fn the_auth_hook_rewrites_address_and_headers_before_every_connect() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().echo(false))
        .await
        .expect("wss");
    let calls = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&calls);
    let mut conn = WsConn::new(
        "authfeed",
        "coinbase",
        &server.url("/"),
        WsConnOptions {
            ws: ws_options(&ca),
            ..WsConnOptions::default()
        }
        .with_auth(move |mut request| {
            let counter = Arc::clone(&counter);
            async move {
                let n = {
                    let mut calls = counter.lock().expect("lock");
                    *calls += 1;
                    *calls
                };
                request.url.push_str(&format!("?listenKey=k{n}"));
                request.headers.push(("X-Token".into(), format!("t{n}")));
                Ok(request)
            }
        }),
    )
    .expect("conn");
    conn.open().await.expect("first open");
    conn.open().await.expect("reopen");
    assert_eq!(conn.stats().opens, 2);
    conn.close().await;
    let records = server.connections_when_closed(2, DEADLINE).await;
    let seen: Vec<(Option<&str>, Option<&str>)> = records
        .iter()
        .map(|r| (r.target.as_deref(), r.header("x-token")))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("/?listenKey=k1"), Some("t1")),
            (Some("/?listenKey=k2"), Some("t2"))
        ]
    );
}

#[tokio::test]
async fn a_failing_auth_hook_stops_the_connect_before_any_byte() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let mut conn = WsConn::new(
        "authfail",
        "coinbase",
        &server.url("/"),
        WsConnOptions {
            ws: ws_options(&ca),
            conn: ConnOptions::default().with_resolver(resolver_via("coinbase", &proxy.url())),
            ..WsConnOptions::default()
        }
        .with_auth(|_| async { Err(AuthError::msg("token service unavailable")) }),
    )
    .expect("conn");
    let error = conn.open().await.expect_err("hook fails");
    assert!(matches!(error, ConnError::Auth { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "authfail.ws.0: authentication hook failed: token service unavailable"
    );
    assert!(!conn.is_open());
    assert!(proxy.connections().is_empty());
    assert!(server.connections().is_empty());
}

#[tokio::test]
async fn a_hook_may_not_turn_the_address_into_a_non_wss_one() {
    let ca = TestCa::new();
    let mut conn = WsConn::new(
        "authaddr",
        "coinbase",
        "wss://localhost:1/",
        WsConnOptions {
            ws: ws_options(&ca),
            ..WsConnOptions::default()
        }
        .with_auth(|mut request| async move {
            request.url = "ws://localhost:1/".into();
            Ok(request)
        }),
    )
    .expect("conn");
    assert!(matches!(
        conn.open().await,
        Err(ConnError::InvalidAddress { .. })
    ));
}

#[tokio::test]
async fn server_close_ends_the_stream_and_open_reconnects_under_the_same_id() {
    let ca = TestCa::new();
    let server = WssServer::start(
        &ca,
        WssOptions::new().echo(false).messages(vec![
            feed_sim::ServerMessage::Text("a".into()),
            feed_sim::ServerMessage::Close {
                code: 1001,
                reason: "going away".into(),
            },
        ]),
    )
    .await
    .expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let mut conn = ws_conn(
        "closefeed",
        "binance",
        &server.url("/"),
        &ca,
        ConnOptions::default().with_resolver(resolver_via("binance", &proxy.url())),
    );
    for round in 1..=2u64 {
        conn.open().await.expect("open");
        let got: Vec<_> = tokio::time::timeout(DEADLINE, conn.read().collect::<Vec<_>>())
            .await
            .expect("stream ends in time");
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].as_ref().expect("message")[..], b"a");
        assert!(!conn.is_open());
        assert_eq!(conn.stats().opens, round);
        assert_eq!(conn.id().as_str(), "closefeed.ws.0");
        assert_eq!(conn.next().await.expect("closed"), None);
    }
    assert_eq!(
        proxy.connections().len(),
        2,
        "each open went through the proxy"
    );
    let error = conn.write("x").await.expect_err("closed");
    assert!(matches!(error, ConnError::NotOpen { .. }));
}

#[tokio::test]
async fn a_failing_proxy_is_an_error_never_a_direct_connection() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let proxy = ConnectProxy::start(
        ProxyOptions::new().fault(feed_sim::connect_proxy::Fault::CloseImmediately),
    )
    .await
    .expect("proxy");
    let mut conn = ws_conn(
        "wsfail",
        "binance",
        &server.url("/"),
        &ca,
        ConnOptions::default().with_resolver(resolver_via("binance", &proxy.url())),
    );
    let error = tokio::time::timeout(DEADLINE, conn.open())
        .await
        .expect("in time")
        .expect_err("proxy closes");
    assert!(error.tunnel_error().is_some(), "{error:?}");
    assert!(server.connections().is_empty(), "nothing went direct");
    assert_eq!(conn.stats().opens, 0);
}

/// Received timestamps come from the clock once per socket read: messages sent apart get
/// readings of their own, a burst shares readings, every reading lies between the open and the
/// last read, and `last_message` is the last message's reading.
#[tokio::test]
async fn received_timestamps_are_read_once_per_socket_read() {
    for (count, interval) in [(4, Some(Duration::from_millis(50))), (200, None)] {
        let ca = TestCa::new();
        let server = WssServer::start(&ca, WssOptions::new().stream(count, interval).echo(false))
            .await
            .expect("wss");
        let stamps = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stamps);
        let conn_options = ConnOptions::default().with_raw_callback(move |raw| {
            if let RawKind::Received(_) = raw.kind {
                sink.lock().expect("lock").push(raw.timestamp);
            }
        });
        let before = std::time::SystemTime::now();
        let mut conn = ws_conn("clock", "binance", &server.url("/"), &ca, conn_options);
        tokio::time::timeout(DEADLINE, conn.open())
            .await
            .expect("in time")
            .expect("open");
        for n in 1..=count {
            let message = tokio::time::timeout(DEADLINE, conn.next())
                .await
                .expect("in time")
                .expect("read")
                .expect("a message");
            assert_eq!(message, numbered(n).as_bytes());
        }
        let after = std::time::SystemTime::now();
        let stamps = stamps.lock().expect("lock").clone();
        assert_eq!(stamps.len(), count);
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "in order: {stamps:?}"
        );
        assert!(stamps.iter().all(|t| before <= *t && *t <= after));
        assert_eq!(conn.stats().last_message, stamps.last().copied());
        if interval.is_some() {
            // Each message came in a read of its own while the client waited for it.
            assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
        }
    }
}
