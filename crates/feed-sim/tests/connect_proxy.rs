//! The HTTP CONNECT proxy over real loopback sockets: tunnels to the HTTPS server, Basic auth,
//! the loopback-only target policy, every fault, and the https:// proxy variant.

mod common;

use std::time::Duration;

use common::{exchange, read_response, read_until_close, tls, within};
use feed_sim::connect_proxy::Fault;
use feed_sim::{
    ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa, basic_auth_value,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const USER: &str = "feed user";
const PASSWORD: &str = "p@ss:w/rd";

async fn server(ca: &TestCa) -> HttpsServer {
    let routes = Routes::new().route("/ping", Response::new(200, "pong"));
    HttpsServer::start(ca, routes).await.expect("server starts")
}

async fn proxy(options: ProxyOptions) -> ConnectProxy {
    ConnectProxy::start(options).await.expect("proxy starts")
}

async fn connect(proxy: &ConnectProxy) -> TcpStream {
    within("connect to proxy", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect to proxy")
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &str) {
    within("write", stream.write_all(bytes.as_bytes()))
        .await
        .expect("write to proxy");
    within("flush", stream.flush()).await.expect("flush");
}

/// Through an established tunnel: TLS to the HTTPS server, one GET, then close.
async fn get_ping_through<S: AsyncRead + AsyncWrite + Unpin>(tunnel: S, ca: &TestCa) {
    let mut inner = within(
        "tls through tunnel",
        tls(tunnel, ca.client_config(), "localhost"),
    )
    .await
    .expect("TLS to the server through the tunnel");
    let request = "GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = within("exchange", exchange(&mut inner, request)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body, b"pong");
    let _ = within("close", inner.shutdown()).await;
}

async fn closed_records(proxy: &ConnectProxy, count: usize) -> Vec<feed_sim::ConnectRecord> {
    let records = proxy.connections_when_closed(count, common::DEADLINE).await;
    assert!(
        records.iter().filter(|r| r.closed).count() >= count,
        "proxy did not finish {count} connections: {records:#?}"
    );
    records
}

#[tokio::test]
async fn authenticated_connect_tunnels_tls_and_records_the_exact_request() {
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = proxy(ProxyOptions::new().basic_auth(USER, PASSWORD)).await;
    let mut client = connect(&proxy).await;
    let local = client.local_addr().expect("local addr");
    let target = format!("127.0.0.1:{}", server.port());
    let auth = basic_auth_value(USER, PASSWORD);
    send(
        &mut client,
        &format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {auth}\r\nUser-Agent: feed-sim-test\r\n\r\n"
        ),
    )
    .await;
    let response = within("CONNECT answer", read_response(&mut client, false)).await;
    assert_eq!(response.status_line, "HTTP/1.1 200 Connection established");
    get_ping_through(client, &ca).await;

    let records = closed_records(&proxy, 1).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.peer, Some(local));
    assert!(!record.tls);
    assert_eq!(
        record.request_line.as_deref(),
        Some(format!("CONNECT {target} HTTP/1.1").as_str())
    );
    assert_eq!(record.host.as_deref(), Some(target.as_str()));
    assert_eq!(record.proxy_authorization.as_deref(), Some(auth.as_str()));
    assert_eq!(
        record.header_lines,
        [
            format!("Host: {target}"),
            format!("Proxy-Authorization: {auth}"),
            "User-Agent: feed-sim-test".to_owned(),
        ]
    );
    assert_eq!(record.target.as_deref(), Some(target.as_str()));
    assert_eq!(record.auth_ok, Some(true));
    assert_eq!(record.status, Some(200));
    assert_eq!(record.upstream, Some(server.addr()));
    assert!(
        record.bytes_to_target > 0 && record.bytes_to_client > 0,
        "{record:#?}"
    );
    assert_eq!(record.error, None);
    assert_eq!(server.requests().len(), 1, "the GET reached the server");
}

#[tokio::test]
async fn localhost_target_is_resolved_to_loopback_only() {
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = proxy(ProxyOptions::new()).await;
    let mut client = connect(&proxy).await;
    let target = format!("localhost:{}", server.port());
    send(
        &mut client,
        &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    let response = within("CONNECT answer", read_response(&mut client, false)).await;
    assert_eq!(response.status(), 200);
    get_ping_through(client, &ca).await;
    let records = closed_records(&proxy, 1).await;
    assert_eq!(records[0].upstream, Some(server.addr()));
    assert_eq!(records[0].auth_ok, None, "no auth configured");
    assert_eq!(records[0].proxy_authorization, None);
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_407_with_a_challenge() {
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = proxy(ProxyOptions::new().basic_auth(USER, PASSWORD)).await;
    let target = format!("127.0.0.1:{}", server.port());
    let cases: &[(&str, Option<String>)] = &[
        ("missing", None),
        ("wrong password", Some(basic_auth_value(USER, "nope"))),
        ("wrong user", Some(basic_auth_value("someone", PASSWORD))),
        (
            "lowercase scheme",
            Some(basic_auth_value(USER, PASSWORD).replace("Basic", "basic")),
        ),
        ("bearer", Some("Bearer abc".to_owned())),
    ];
    for (case, auth) in cases {
        let mut client = connect(&proxy).await;
        let auth_line = auth
            .as_ref()
            .map(|a| format!("Proxy-Authorization: {a}\r\n"))
            .unwrap_or_default();
        send(
            &mut client,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth_line}\r\n"),
        )
        .await;
        let response = within("CONNECT answer", read_response(&mut client, true)).await;
        assert_eq!(response.status(), 407, "case {case}");
        assert_eq!(
            response.header("Proxy-Authenticate"),
            Some("Basic realm=\"feed-sim\""),
            "case {case}"
        );
        let rest = within("close", read_until_close(&mut client, 1024)).await;
        assert!(rest.is_empty(), "case {case}: proxy sent more after 407");
    }
    let records = closed_records(&proxy, cases.len()).await;
    for ((case, auth), record) in cases.iter().zip(&records) {
        assert_eq!(record.auth_ok, Some(false), "case {case}");
        assert_eq!(record.status, Some(407), "case {case}");
        assert_eq!(&record.proxy_authorization, auth, "case {case}");
        assert_eq!(record.upstream, None, "case {case}: must not connect");
    }
    assert_eq!(server.connection_count(), 0, "nothing reached the server");
}

#[tokio::test]
async fn non_loopback_targets_are_refused_without_connecting() {
    let proxy = proxy(ProxyOptions::new()).await;
    let targets = [
        "192.0.2.1:443",
        "[2001:db8::1]:443",
        "10.0.0.1:80",
        "0.0.0.0:443",
        "example.com:443",
        "localhost.example.com:443",
    ];
    for target in targets {
        let mut client = connect(&proxy).await;
        send(
            &mut client,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        )
        .await;
        // Well inside the proxy's 5 s connect timeout: a refusal, not a failed attempt.
        let response =
            tokio::time::timeout(Duration::from_secs(2), read_response(&mut client, true))
                .await
                .unwrap_or_else(|_| panic!("{target}: no prompt refusal"));
        assert_eq!(response.status(), 403, "target {target}");
    }
    let records = closed_records(&proxy, targets.len()).await;
    for (target, record) in targets.iter().zip(&records) {
        assert_eq!(record.target.as_deref(), Some(*target));
        assert_eq!(record.status, Some(403), "target {target}");
        assert_eq!(record.upstream, None, "target {target}: must not connect");
    }
}

#[tokio::test]
async fn other_methods_and_malformed_requests_are_rejected() {
    let proxy = proxy(ProxyOptions::new()).await;
    let cases = [
        (
            "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n".to_owned(),
            405,
        ),
        ("CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n".to_owned(), 400),
        ("NOT HTTP AT ALL\r\n\r\n".to_owned(), 400),
        (
            format!(
                "CONNECT 127.0.0.1:1 HTTP/1.1\r\nX: {}\r\n\r\n",
                "a".repeat(70_000)
            ),
            431,
        ),
    ];
    for (request, status) in &cases {
        let mut client = connect(&proxy).await;
        send(&mut client, request).await;
        let response = within("answer", read_response(&mut client, true)).await;
        assert_eq!(response.status(), *status, "request {:.60}", request);
    }
}

#[tokio::test]
async fn unreachable_loopback_target_gets_502() {
    // Bind and drop to find a loopback port with nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let proxy = proxy(ProxyOptions::new()).await;
    let mut client = connect(&proxy).await;
    send(
        &mut client,
        &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"),
    )
    .await;
    let response = within("answer", read_response(&mut client, true)).await;
    assert_eq!(response.status(), 502);
}

#[tokio::test]
async fn each_fault_is_seen_by_a_raw_client() {
    let request = "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n";
    for fault in [
        Fault::CloseImmediately,
        Fault::NeverAnswer,
        Fault::Garbage,
        Fault::CloseMidHandshake,
        Fault::Status(502),
        Fault::OversizedHeaders,
    ] {
        let proxy = proxy(ProxyOptions::new().fault(fault)).await;
        let mut client = connect(&proxy).await;
        // A proxy that already closed may reset the write: what was read is what counts.
        let _ = client.write_all(request.as_bytes()).await;
        // Only NeverAnswer may run into the deadline, so it gets a short one.
        let deadline = if fault == Fault::NeverAnswer {
            Duration::from_millis(300)
        } else {
            common::DEADLINE
        };
        let read = tokio::time::timeout(deadline, read_until_close(&mut client, 512 * 1024)).await;
        // Closing lets the proxy finish the connection (it drains input after its last reply).
        drop(client);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match (fault, read) {
            (Fault::NeverAnswer, Err(_)) => {
                let records = proxy.connections();
                assert_eq!(
                    records[0].request_line.as_deref(),
                    Some(request.lines().next().unwrap_or_default())
                );
                assert_eq!(records[0].status, None);
            }
            (Fault::CloseImmediately, Ok(bytes)) => {
                assert!(bytes.is_empty(), "{fault:?}: got {:?}", text(&bytes));
                let records = closed_records(&proxy, 1).await;
                assert_eq!(records[0].request_line, None, "closed before reading");
            }
            (Fault::Garbage, Ok(bytes)) => {
                assert!(
                    !bytes.is_empty() && !bytes.starts_with(b"HTTP/"),
                    "{fault:?}: {:?}",
                    text(&bytes)
                );
            }
            (Fault::CloseMidHandshake, Ok(bytes)) => {
                assert_eq!(bytes, b"HTTP/1.1 20", "{fault:?}");
            }
            (Fault::Status(code), Ok(bytes)) => {
                let expected = format!("HTTP/1.1 {code} ");
                assert!(
                    text(&bytes).starts_with(&expected),
                    "{fault:?}: {:?}",
                    text(&bytes)
                );
                assert_eq!(closed_records(&proxy, 1).await[0].status, Some(code));
            }
            (Fault::OversizedHeaders, Ok(bytes)) => {
                assert!(bytes.starts_with(b"HTTP/1.1 200 "), "{fault:?}");
                let end = bytes.windows(4).position(|w| w == b"\r\n\r\n");
                assert!(
                    end.is_some_and(|e| e > 64 * 1024),
                    "{fault:?}: head ends at {end:?} of {} bytes",
                    bytes.len()
                );
            }
            (fault, read) => panic!("{fault:?}: unexpected outcome {:?}", read.map(|b| text(&b))),
        }
    }
}

#[tokio::test]
async fn https_proxy_tunnels_tls_inside_tls() {
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = proxy(
        ProxyOptions::new()
            .tls(ca.server_config(&["localhost", "127.0.0.1"]))
            .basic_auth(USER, PASSWORD),
    )
    .await;
    assert_eq!(
        proxy.url(),
        format!("https://localhost:{}", proxy.addr().port())
    );
    let tcp = connect(&proxy).await;
    let mut client = within("tls to proxy", tls(tcp, ca.client_config(), "localhost"))
        .await
        .expect("TLS to the proxy");
    let target = format!("127.0.0.1:{}", server.port());
    let auth = basic_auth_value(USER, PASSWORD);
    send(
        &mut client,
        &format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {auth}\r\n\r\n"
        ),
    )
    .await;
    let response = within("CONNECT answer", read_response(&mut client, false)).await;
    assert_eq!(response.status(), 200);
    get_ping_through(client, &ca).await;

    let records = closed_records(&proxy, 1).await;
    assert!(records[0].tls);
    assert_eq!(
        records[0].request_line.as_deref(),
        Some(format!("CONNECT {target} HTTP/1.1").as_str())
    );
    assert_eq!(
        records[0].proxy_authorization.as_deref(),
        Some(auth.as_str())
    );
    assert_eq!(records[0].auth_ok, Some(true));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn https_proxy_rejects_a_plaintext_client() {
    let ca = TestCa::new();
    let proxy = proxy(ProxyOptions::new().tls(ca.server_config(&["localhost"]))).await;
    let mut client = connect(&proxy).await;
    send(&mut client, "CONNECT 127.0.0.1:9 HTTP/1.1\r\n\r\n").await;
    let bytes = within("close", read_until_close(&mut client, 4096)).await;
    assert!(
        !bytes.starts_with(b"HTTP/"),
        "a TLS proxy must not answer in plaintext"
    );
    let records = closed_records(&proxy, 1).await;
    assert!(
        records[0]
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("tls handshake")),
        "{records:#?}"
    );
    assert_eq!(records[0].request_line, None);
}

#[tokio::test]
async fn urls_name_scheme_host_port_and_encoded_credentials() {
    let plain = proxy(ProxyOptions::new()).await;
    let port = plain.addr().port();
    assert_eq!(plain.url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(plain.url_with_credentials(), plain.url());

    let auth = proxy(ProxyOptions::new().basic_auth(USER, PASSWORD)).await;
    let port = auth.addr().port();
    assert_eq!(auth.url(), format!("http://127.0.0.1:{port}"));
    assert_eq!(
        auth.url_with_credentials(),
        format!("http://feed%20user:p%40ss%3Aw%2Frd@127.0.0.1:{port}")
    );
    assert!(
        !format!("{auth:?}").contains(PASSWORD),
        "Debug must not print the password"
    );

    let v6 = proxy(ProxyOptions::new().bind("[::1]:0".parse().expect("addr"))).await;
    assert_eq!(v6.url(), format!("http://[::1]:{}", v6.addr().port()));

    let off =
        ConnectProxy::start(ProxyOptions::new().bind("0.0.0.0:0".parse().expect("addr"))).await;
    assert!(off.is_err(), "binding off loopback must fail");
}

#[tokio::test]
async fn shutdown_closes_the_port_and_keeps_the_records() {
    let mut proxy = proxy(ProxyOptions::new()).await;
    let addr = proxy.addr();
    let mut client = connect(&proxy).await;
    send(&mut client, "CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n").await;
    let _ = within("answer", read_response(&mut client, true)).await;
    within("shutdown", proxy.shutdown()).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "port still open after shutdown"
    );
    assert_eq!(proxy.connections().len(), 1);
}

#[tokio::test]
async fn bytes_sent_right_behind_the_request_reach_the_target() {
    // A plain loopback listener as the target, to see the exact bytes that arrive.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let port = target.local_addr().expect("addr").port();
    let proxy = proxy(ProxyOptions::new()).await;
    let mut client = connect(&proxy).await;
    send(
        &mut client,
        &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\nearly bytes"),
    )
    .await;
    let (mut upstream, _) = within("target accepts", target.accept())
        .await
        .expect("accept");
    let response = within("CONNECT answer", read_response(&mut client, false)).await;
    assert_eq!(response.status(), 200);
    send(&mut client, " and late ones").await;
    client.shutdown().await.expect("half-close");
    let received = within("target reads", read_until_close(&mut upstream, 1024)).await;
    assert_eq!(received, b"early bytes and late ones");
    send(&mut upstream, "reply").await;
    drop(upstream);
    let back = within("client reads", read_until_close(&mut client, 1024)).await;
    assert_eq!(back, b"reply");
    let records = closed_records(&proxy, 1).await;
    assert_eq!(records[0].bytes_to_target, 25);
    assert_eq!(records[0].bytes_to_client, 5);
}

#[tokio::test]
async fn ipv6_proxy_tunnels_to_an_ipv6_target() {
    let ca = TestCa::new();
    let routes = Routes::new().route("/ping", Response::new(200, "pong"));
    let server = HttpsServer::start_on("[::1]:0".parse().expect("addr"), &ca, routes)
        .await
        .expect("server starts on [::1]");
    let proxy = proxy(ProxyOptions::new().bind("[::1]:0".parse().expect("addr"))).await;
    let mut client = connect(&proxy).await;
    let target = format!("[::1]:{}", server.port());
    send(
        &mut client,
        &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    let response = within("CONNECT answer", read_response(&mut client, false)).await;
    assert_eq!(response.status(), 200);
    get_ping_through(client, &ca).await;
    let records = closed_records(&proxy, 1).await;
    assert_eq!(records[0].upstream, Some(server.addr()));
}
