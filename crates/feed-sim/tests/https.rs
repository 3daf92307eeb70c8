//! The test CA and the HTTPS server, reached over real loopback sockets with a rustls client.

mod common;

use std::net::{Ipv6Addr, SocketAddr};

use common::{exchange, tls, within};
use feed_sim::{HttpsServer, Response, Routes, TestCa};
use tokio::net::TcpStream;

fn routes() -> Routes {
    Routes::new()
        .route(
            "/api/v3/time",
            Response::json(r#"{"serverTime":1}"#).with_header("X-Fake", "binance"),
        )
        .route("/orders", Response::new(201, "created"))
}

#[tokio::test]
async fn trusted_client_gets_routed_responses_on_one_keep_alive_connection() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, routes())
        .await
        .expect("server starts");
    let tcp = within("connect", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    let local = tcp.local_addr().expect("local addr");
    let mut stream = within("tls", tls(tcp, ca.client_config(), "localhost"))
        .await
        .expect("handshake with a trusted CA succeeds");

    let cases: &[(&str, &str, u16, &[u8])] = &[
        (
            "GET /api/v3/time?symbol=BTCUSDT HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "/api/v3/time?symbol=BTCUSDT",
            200,
            br#"{"serverTime":1}"#,
        ),
        (
            "POST /orders HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
            "/orders",
            201,
            b"created",
        ),
        (
            "DELETE /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "/nowhere",
            404,
            b"feed-sim: no route",
        ),
        (
            "PUT /orders HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "/orders",
            405,
            b"feed-sim: method not allowed",
        ),
    ];
    for (request, _, status, body) in cases {
        let response = within("exchange", exchange(&mut stream, request)).await;
        assert_eq!(response.status(), *status, "request {request:?}");
        assert_eq!(&response.body, body, "request {request:?}");
    }
    let first = within("exchange", exchange(&mut stream, cases[0].0)).await;
    assert_eq!(first.header("X-Fake"), Some("binance"));
    assert_eq!(first.header("Content-Type"), Some("application/json"));

    let log = server.requests();
    assert_eq!(log.len(), cases.len() + 1);
    for (record, (_, target, _, _)) in log.iter().zip(cases) {
        assert_eq!(&record.target, target);
        assert_eq!(record.peer, local);
        assert_eq!(record.connection, 1);
        assert_eq!(record.header("host"), Some("localhost"));
    }
    assert_eq!(
        log.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["GET", "POST", "DELETE", "PUT", "GET"]
    );
    assert_eq!(log[1].body, b"hello");
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn connection_close_ends_the_connection_and_numbers_the_next() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, routes())
        .await
        .expect("server starts");
    for expected in 1..=2 {
        let tcp = within("connect", TcpStream::connect(server.addr()))
            .await
            .expect("connect");
        let mut stream = within("tls", tls(tcp, ca.client_config(), "127.0.0.1"))
            .await
            .expect("handshake by IP address succeeds");
        let request = "GET /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let response = within("exchange", exchange(&mut stream, request)).await;
        assert_eq!(response.header("Connection"), Some("close"));
        let rest = within("close", common::read_until_close(&mut stream, 1024)).await;
        assert!(rest.is_empty(), "server sent more after close: {rest:?}");
        assert_eq!(
            server.requests().last().map(|r| r.connection),
            Some(expected)
        );
    }
    assert_eq!(server.connection_count(), 2);
}

#[tokio::test]
async fn untrusted_client_fails_the_handshake_and_nothing_is_served() {
    let ca = TestCa::new();
    let other = TestCa::new();
    let server = HttpsServer::start(&ca, routes())
        .await
        .expect("server starts");
    let tcp = within("connect", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    let result = within("tls", tls(tcp, other.client_config(), "localhost")).await;
    let err = result.expect_err("a client trusting another CA must reject the server");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "unexpected error: {err}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn wrong_name_fails_the_handshake() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, routes())
        .await
        .expect("server starts");
    let tcp = within("connect", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    let result = within("tls", tls(tcp, ca.client_config(), "example.com")).await;
    assert!(
        result.is_err(),
        "certificate must not be valid for example.com"
    );
}

#[tokio::test]
async fn serves_on_ipv6_loopback() {
    let ca = TestCa::new();
    let bind = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
    let server = HttpsServer::start_on(bind, &ca, routes())
        .await
        .expect("server starts on [::1] (this machine has IPv6 loopback)");
    assert!(server.addr().is_ipv6());
    let tcp = within("connect", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    let mut stream = within("tls", tls(tcp, ca.client_config(), "::1"))
        .await
        .expect("handshake for ::1 succeeds");
    let request = "GET /orders HTTP/1.1\r\nHost: [::1]\r\n\r\n";
    let response = within("exchange", exchange(&mut stream, request)).await;
    assert_eq!(response.body, b"created");
}

#[tokio::test]
async fn refuses_to_bind_off_loopback() {
    let ca = TestCa::new();
    let bind: SocketAddr = "0.0.0.0:0".parse().expect("addr");
    let err = HttpsServer::start_on(bind, &ca, routes())
        .await
        .expect_err("0.0.0.0 is not loopback");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn dropping_the_server_closes_its_port() {
    let ca = TestCa::new();
    let server = HttpsServer::start(&ca, routes())
        .await
        .expect("server starts");
    let addr = server.addr();
    drop(server);
    within("port closes", async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[test]
fn root_certificate_is_exported_as_pem_and_der() {
    let ca = TestCa::new();
    let pem = ca.root_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert!(
        pem.trim_end().ends_with("-----END CERTIFICATE-----"),
        "{pem}"
    );
    assert!(!ca.root_der().is_empty());
    assert_ne!(ca.root_der(), TestCa::new().root_der());
    assert_eq!(format!("{ca:?}"), "TestCa { .. }");
}
