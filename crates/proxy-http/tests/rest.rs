//! REST through every route kind against a local HTTPS server (rcgen CA), with feed-sim's
//! recording proxies: methods, headers, query and body; pooling; size cap; timeouts; TLS to the
//! exchange verified through the tunnel; no fallback to direct; no credential in errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use feed_sim::{ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa};
use proxy_config::{ProxyConfig, TimeoutSeconds};
use proxy_http::{ConnectError, HttpClient, HttpErrorKind, HttpOptions, StatusCode, TlsOptions};
use proxy_resolve::Route;
use proxy_tunnel::TunnelErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "feed";
const PASSWORD: &str = "s3cret-canary";

struct Exchange {
    ca: TestCa,
    server: HttpsServer,
}

async fn exchange() -> Exchange {
    let ca = TestCa::new();
    let routes = Routes::new()
        .route(
            "/api/v3/exchangeInfo",
            Response::json(r#"{"symbols":[]}"#).with_header("x-mbx-used-weight", "20"),
        )
        .route("/api/v3/order", Response::json(r#"{"ok":true}"#))
        .route("/big", Response::new(200, vec![b'x'; 4096]));
    let server = HttpsServer::start(&ca, routes).await.expect("https server");
    Exchange { ca, server }
}

fn options(ca: &TestCa) -> HttpOptions {
    HttpOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        ..HttpOptions::default()
    }
}

fn proxy_route(url: &str, timeout: u64) -> Route {
    let config = ProxyConfig::parse(url)
        .expect("proxy URL")
        .with_timeout(TimeoutSeconds::new(timeout).expect("timeout"));
    Route::Proxy(Arc::new(config))
}

fn base(e: &Exchange) -> String {
    format!("https://localhost:{}", e.server.port())
}

#[tokio::test]
async fn methods_headers_query_and_body_through_an_authenticated_connect_proxy() {
    let e = exchange().await;
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let client = HttpClient::new(
        proxy_route(&proxy.url_with_credentials(), 5),
        "binance",
        options(&e.ca),
    )
    .expect("client");

    let response = client
        .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
        .query(&[("symbol", "BTCUSDT"), ("note", "a b&c")])
        .header("x-feed", "binance")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.text(), r#"{"symbols":[]}"#);
    assert_eq!(
        response
            .headers
            .get("x-mbx-used-weight")
            .map(|v| v.as_bytes()),
        Some(&b"20"[..])
    );

    let posted = client
        .post(&format!("{}/api/v3/order", base(&e)))
        .body(r#"{"side":"BUY"}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(posted.status, StatusCode::OK);
    let deleted = client
        .delete(&format!("{}/api/v3/order?orderId=7", base(&e)))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status, StatusCode::OK);

    let requests = e.server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].target,
        "/api/v3/exchangeInfo?symbol=BTCUSDT&note=a%20b%26c"
    );
    assert_eq!(requests[0].header("x-feed"), Some("binance"));
    assert_eq!(
        requests[0].header("host"),
        Some(format!("localhost:{}", e.server.port()).as_str())
    );
    assert_eq!(requests[1].method, "POST");
    assert_eq!(requests[1].body, br#"{"side":"BUY"}"#);
    assert_eq!(
        (requests[2].method.as_str(), requests[2].target.as_str()),
        ("DELETE", "/api/v3/order?orderId=7")
    );
    // The exchange saw the connection come from the proxy, not from us directly.
    let record = &proxy.connections()[0];
    assert_eq!(
        requests[0].peer.ip(),
        record.upstream.expect("proxy dialled").ip()
    );
    assert_eq!(record.auth_ok, Some(true));
}

#[tokio::test]
async fn twenty_sequential_gets_use_one_proxy_connection() {
    let e = exchange().await;
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let client =
        HttpClient::new(proxy_route(&proxy.url(), 5), "binance", options(&e.ca)).expect("client");
    for _ in 0..20 {
        let r = client
            .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(e.server.requests().len(), 20);
    let connects = proxy.connections();
    assert_eq!(
        connects.len(),
        1,
        "one CONNECT for 20 requests: {connects:?}"
    );
    assert_eq!(e.server.connection_count(), 1);
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn every_proxy_kind_carries_rest() {
    use feed_sim::{SocksOptions, SocksProxy};
    let e = exchange().await;
    let https_proxy =
        ConnectProxy::start(ProxyOptions::new().tls(e.ca.server_config(&["localhost"])))
            .await
            .expect("https proxy");
    let https_url = format!("https://localhost:{}", https_proxy.addr().port());
    let socks = SocksProxy::start(SocksOptions::new()).await.expect("socks");
    let socks_auth = SocksProxy::start(SocksOptions::new().user_pass(USER, PASSWORD))
        .await
        .expect("socks auth");
    let urls = [
        https_url,
        socks.url("socks4"),
        socks.url("socks4a"),
        socks.url("socks5"),
        socks.url("socks5h"),
        socks_auth.url_with_credentials("socks5h"),
    ];
    for url in urls {
        let client =
            HttpClient::new(proxy_route(&url, 5), "binance", options(&e.ca)).expect("client");
        let r = client
            .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
            .send()
            .await
            .expect(&url);
        assert_eq!(r.status, StatusCode::OK, "{url}");
    }
    assert_eq!(https_proxy.connections().len(), 1);
    assert_eq!(socks.connections().len(), 4);
    assert_eq!(socks_auth.connections()[0].auth_ok, Some(true));
}

#[tokio::test]
async fn plain_http_target_goes_through_connect_too() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    });
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let client = HttpClient::new(
        proxy_route(&proxy.url(), 5),
        "kraken",
        HttpOptions::default(),
    )
    .expect("client");
    let r = client
        .get(&format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .expect("GET http://");
    assert_eq!(r.text(), "ok");
    assert_eq!(
        proxy.connections()[0].request_line.as_deref(),
        Some(format!("CONNECT 127.0.0.1:{port} HTTP/1.1").as_str())
    );
}

#[tokio::test]
async fn response_over_the_size_cap_fails_cleanly() {
    let e = exchange().await;
    let client = HttpClient::new(
        Route::Direct,
        "binance",
        HttpOptions {
            max_body_bytes: 1024,
            ..options(&e.ca)
        },
    )
    .expect("client");
    let err = client
        .get(&format!("{}/big", base(&e)))
        .send()
        .await
        .expect_err("over the cap");
    assert!(
        matches!(err.kind(), Some(HttpErrorKind::BodyTooLarge(1024))),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "GET {}/big: response body over 1024 bytes (exchange binance)",
            base(&e)
        )
    );
}

#[tokio::test]
async fn request_timeout_fires() {
    let port = silent_listener().await;
    let client = HttpClient::new(Route::Direct, "binance", HttpOptions::default()).expect("client");
    let started = Instant::now();
    let err = client
        .get(&format!("http://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect_err("no answer");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), Some(HttpErrorKind::Timeout(_))),
        "{err}"
    );
}

/// A listener that accepts and never answers; returns its port.
async fn silent_listener() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    port
}

/// A request timeout shorter than the route's own bound ends in the connect: the error says
/// so and names the proxy (or says direct), instead of a bare "request timed out".
#[tokio::test]
async fn a_request_timeout_in_the_connect_names_the_proxy() {
    // A silent proxy with timeout_seconds 5, a request timeout of 1 s.
    let port = silent_listener().await;
    let route = proxy_route(&format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}"), 5);
    let client = HttpClient::new(route, "binance", HttpOptions::default()).expect("client");
    let started = Instant::now();
    let err = client
        .get("https://localhost:9/api")
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect_err("silent proxy");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match err.kind() {
        Some(HttpErrorKind::ConnectTimeout { after, proxy }) => {
            assert_eq!(*after, Duration::from_secs(1));
            assert_eq!(
                proxy.as_deref(),
                Some(format!("http://127.0.0.1:{port}").as_str())
            );
        }
        other => panic!("{other:?}: {err}"),
    }
    assert_eq!(
        err.to_string(),
        format!(
            "GET https://localhost:9/api: request timed out after 1s while still connecting through proxy http://127.0.0.1:{port} (exchange binance)"
        )
    );
    assert!(!format!("{err} {err:?}").contains(PASSWORD));

    // Direct to a server that accepts TCP and never speaks TLS: the TLS handshake is part of
    // the connect.
    let port = silent_listener().await;
    let client = HttpClient::new(Route::Direct, "binance", HttpOptions::default()).expect("client");
    let err = client
        .get(&format!("https://127.0.0.1:{port}/"))
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .expect_err("silent server");
    assert!(
        matches!(
            err.kind(),
            Some(HttpErrorKind::ConnectTimeout { proxy: None, .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("while still connecting directly to the exchange"),
        "{err}"
    );
}

/// Reads from `socket` up to the end of one head (`\r\n\r\n`); false at EOF first.
async fn read_head(socket: &mut tokio::net::TcpStream) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match socket.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return false,
        }
    }
    true
}

/// hyper-util races a pool checkout against a new connect, and when the checkout wins it
/// finishes the connect in the background. A request that took the pooled connection that way
/// and then timed out waiting for its answer is a plain request timeout, not one "while still
/// connecting", though its own connect is still running.
#[tokio::test]
async fn a_request_served_by_a_pooled_connection_does_not_blame_its_background_connect() {
    // One listener plays the CONNECT proxy and, inside its first tunnel, the plain-HTTP
    // exchange. Tunnel 1 holds the answer to request 1 until tunnel 2 is asked for, then never
    // answers request 2; tunnel 2 never answers its CONNECT.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.expect("tunnel 1");
        assert!(read_head(&mut first).await, "CONNECT 1");
        first
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .expect("200");
        assert!(read_head(&mut first).await, "request 1");
        events.send("request 1").expect("send");
        let (mut second, _) = listener.accept().await.expect("tunnel 2");
        assert!(read_head(&mut second).await, "CONNECT 2");
        events.send("connect 2").expect("send");
        first
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .expect("answer 1");
        if read_head(&mut first).await {
            events.send("request 2 on tunnel 1").expect("send");
        }
        // Hold both connections open and silent until the client closes them.
        let (mut rest1, mut rest2) = (Vec::new(), Vec::new());
        let _ = tokio::join!(
            first.read_to_end(&mut rest1),
            second.read_to_end(&mut rest2)
        );
    });

    let client = HttpClient::new(
        proxy_route(&format!("http://127.0.0.1:{port}"), 5),
        "binance",
        HttpOptions::default(),
    )
    .expect("client");
    let url = "http://127.0.0.1:9/ping";
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get(url).timeout(Duration::from_secs(5)).send().await }
    });
    assert_eq!(seen.recv().await, Some("request 1"));
    // 3 s: loopback round trips on a loaded runner must fit before request 2 times out.
    let second = client.get(url).timeout(Duration::from_secs(3)).send().await;
    let response = first.await.expect("join").expect("request 1 is answered");
    assert_eq!(response.text(), "ok");
    assert_eq!(seen.recv().await, Some("connect 2"));
    assert_eq!(
        seen.recv().await,
        Some("request 2 on tunnel 1"),
        "request 2 must have taken the pooled connection"
    );
    let err = second.expect_err("request 2 is never answered");
    assert!(
        matches!(err.kind(), Some(HttpErrorKind::Timeout(after)) if *after == Duration::from_secs(3)),
        "{err:?}: {err}"
    );
}

/// A pool idle timeout past the clock's end keeps idle connections, and panics nowhere (hyper-util
/// adds it to an Instant in its idle-eviction task).
#[tokio::test]
async fn a_pool_idle_timeout_of_duration_max_is_forever() {
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&panicked);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .to_string()
            .contains("overflow when adding duration to instant")
        {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        previous(info);
    }));
    let e = exchange().await;
    let client = HttpClient::new(
        Route::Direct,
        "binance",
        HttpOptions {
            pool_idle_timeout: Duration::MAX,
            ..options(&e.ca)
        },
    )
    .expect("client");
    for _ in 0..2 {
        let response = client
            .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status, StatusCode::OK);
    }
    // The idle-eviction task runs on its own: give it its first turns.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !panicked.load(std::sync::atomic::Ordering::SeqCst),
        "a task panicked"
    );
    let connections: Vec<u64> = e.server.requests().iter().map(|r| r.connection).collect();
    assert_eq!(
        connections,
        [1, 1],
        "the second GET reused the pooled connection"
    );
}

#[tokio::test]
async fn untrusted_exchange_certificate_fails_without_fallback() {
    let e = exchange().await;
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let other = TestCa::new();
    let client =
        HttpClient::new(proxy_route(&proxy.url(), 5), "binance", options(&other)).expect("client");
    let err = client
        .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
        .send()
        .await
        .expect_err("untrusted");
    match err.kind() {
        Some(HttpErrorKind::Connect(c)) => {
            assert!(matches!(&**c, ConnectError::Tls { .. }), "{err}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert_eq!(
        proxy.connections().len(),
        1,
        "the request went to the proxy"
    );
    assert!(e.server.requests().is_empty(), "and nowhere else");
}

#[tokio::test]
async fn building_does_no_io_and_proxy_failures_are_typed() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}");
    // Building succeeds although nothing listens: no I/O until a request.
    let client =
        HttpClient::new(proxy_route(&url, 2), "binance", HttpOptions::default()).expect("client");
    let err = client
        .get("https://localhost:9/api")
        .send()
        .await
        .expect_err("proxy down");
    let tunnel = err.tunnel_error().expect("a route error");
    assert!(
        matches!(tunnel.kind(), TunnelErrorKind::ProxyUnreachable(_)),
        "{err}"
    );
    assert_eq!(
        tunnel.proxy(),
        Some(format!("http://127.0.0.1:{port}").as_str())
    );
    let text = format!("{err} {err:?}");
    assert!(!text.contains(PASSWORD), "{text}");

    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, "other"))
        .await
        .expect("proxy");
    let url = format!("http://{USER}:{PASSWORD}@{}", proxy.addr());
    let client =
        HttpClient::new(proxy_route(&url, 2), "binance", HttpOptions::default()).expect("client");
    let err = client
        .get("https://localhost:9/api?signature=abc")
        .send()
        .await
        .expect_err("407");
    assert!(
        matches!(
            err.tunnel_error().map(|t| t.kind()),
            Some(TunnelErrorKind::ProxyAuthRejected)
        ),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("signature"),
        "{text}"
    );
}

/// Without the `socks` feature, socks routes never reach this crate: settings reject them.
#[cfg(not(feature = "socks"))]
#[test]
fn socks_routes_are_rejected_at_load_time() {
    let err = proxy_config::Loader::new()
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL",
            "socks5h://gw:1080",
        )])
        .load()
        .expect_err("socks is off");
    assert!(
        err.to_string().starts_with(
            "exchanges.binance.http.url: proxy scheme \"socks5h\" needs the `socks` feature, which this build does not enable"
        ),
        "{err}"
    );
}

/// Everything at TRACE (ours, hyper's, hyper-util's, rustls') during successful and failing
/// requests with credentials: no credential in the output.
#[tokio::test]
async fn trace_output_has_no_credentials() {
    let capture = feed_sim::TraceCapture::start();

    let e = exchange().await;
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let good = HttpClient::new(
        proxy_route(&proxy.url_with_credentials(), 5),
        "binance",
        options(&e.ca),
    )
    .expect("client");
    good.get(&format!("{}/api/v3/exchangeInfo", base(&e)))
        .send()
        .await
        .expect("GET");
    let bad_url = format!("http://{USER}:{PASSWORD}x@{}", proxy.addr());
    let bad = HttpClient::new(proxy_route(&bad_url, 5), "binance", options(&e.ca)).expect("client");
    let err = bad
        .get(&format!("{}/api/v3/exchangeInfo", base(&e)))
        .send()
        .await
        .expect_err("rejected");
    tracing::error!(error = %err, debug = ?err, "as an application would log it");

    let output = capture.text();
    assert!(
        output.contains("tunnel established"),
        "the capture works: {output}"
    );
    for secret in [PASSWORD, &feed_sim::basic_auth_value(USER, PASSWORD)] {
        assert!(
            !output.contains(secret),
            "credential in trace output: {output}"
        );
    }
}

#[test]
fn request_debug_hides_values_query_and_body() {
    let client = HttpClient::new(Route::Direct, "binance", HttpOptions::default()).expect("client");
    let request = client
        .post("https://user:pw@api.example/order?signature=sig-canary")
        .header("x-mbx-apikey", "key-canary")
        .body("body-canary");
    let debug = format!("{request:?}");
    assert!(
        debug.contains("x-mbx-apikey") && debug.contains("https://api.example/order"),
        "{debug}"
    );
    for secret in ["sig-canary", "key-canary", "body-canary", "pw"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

/// A port that is empty or does not fit 1..=65535, or text after an IPv6 bracket, is an
/// invalid URL, refused before any connection. `http` parses `:70000` as no port at all, which
/// used to send the request to port 443 (or 80).
#[tokio::test]
async fn a_port_out_of_range_is_an_invalid_url_not_the_default_port() {
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let client = HttpClient::new(
        proxy_route(&proxy.url(), 2),
        "binance",
        HttpOptions::default(),
    )
    .expect("client");
    for url in [
        "https://127.0.0.1:70000/api",
        "https://localhost:65536/",
        "http://localhost:0/",
        "https://[::1]:99999/",
        "https://localhost:4294967739/",
        "https://localhost:/",
        "https://[::1]x/",
        "https://[::1]8443/",
        "https://[::1]:/",
    ] {
        let err = client.get(url).send().await.expect_err(url);
        assert!(
            matches!(err.kind(), Some(HttpErrorKind::InvalidUrl)),
            "{url}: {err}"
        );
    }
    assert!(proxy.connections().is_empty(), "nothing was dialled");

    // In range, with brackets or not, the port is the one dialled.
    let e = exchange().await;
    let client =
        HttpClient::new(proxy_route(&proxy.url(), 2), "binance", options(&e.ca)).expect("client");
    let response = client
        .get(&format!("{}/api/v3/order", base(&e)))
        .send()
        .await
        .expect("in range");
    assert_eq!(response.status, StatusCode::OK);
    let seen: Vec<String> = proxy
        .connections()
        .iter()
        .map(|c| c.target.clone().unwrap_or_default())
        .collect();
    assert_eq!(seen, [format!("localhost:{}", e.server.port())]);
}

/// A redirect is returned as it came, never followed: following one could leave the route (a
/// `Location` on another host) or repeat a signed request.
#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    let ca = TestCa::new();
    let routes = Routes::new().route(
        "/api/v3/moved",
        Response::new(302, Vec::new()).with_header("location", "https://127.0.0.2:9/elsewhere"),
    );
    let server = HttpsServer::start(&ca, routes).await.expect("https server");
    let e = Exchange { ca, server };
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let client =
        HttpClient::new(proxy_route(&proxy.url(), 2), "binance", options(&e.ca)).expect("client");
    let response = client
        .get(&format!("{}/api/v3/moved", base(&e)))
        .send()
        .await
        .expect("a 302 is a response");
    assert_eq!(response.status, StatusCode::FOUND);
    assert_eq!(
        response
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("https://127.0.0.2:9/elsewhere")
    );
    assert_eq!(e.server.requests().len(), 1);
    let targets: Vec<Option<String>> = proxy
        .connections()
        .iter()
        .map(|c| c.target.clone())
        .collect();
    assert_eq!(targets, [Some(format!("localhost:{}", e.server.port()))]);
}
