//! WebSocket through every route kind against feed-sim's WSS server (rcgen CA): numbered
//! messages in order; the strict upgrade check (each fault its own typed error); the data path
//! (fragments, size limit, ping, close, echo); TLS verified through the tunnel; no credential
//! in errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use feed_sim::wss::{HandshakeFault, ServerMessage, WssOptions, WssServer};
use feed_sim::{ConnectProxy, ProxyOptions, TestCa};
use proxy_config::{ProxyConfig, TimeoutSeconds};
use proxy_resolve::Route;
use proxy_tunnel::{TlsOptions, TunnelErrorKind};
use proxy_ws::{HandshakeError, Message, WsErrorKind, WsOptions, WsStream, connect};

const USER: &str = "feed";
const PASSWORD: &str = "ws-s3cret-canary";
const DEADLINE: Duration = Duration::from_secs(10);

fn options(ca: &TestCa) -> WsOptions {
    WsOptions {
        tls: TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        ..WsOptions::default()
    }
}

fn proxy_route(url: &str, timeout: u64) -> Route {
    let config = ProxyConfig::parse(url)
        .expect("proxy URL")
        .with_timeout(TimeoutSeconds::new(timeout).expect("timeout"));
    Route::Proxy(Arc::new(config))
}

async fn next(ws: &mut WsStream) -> Message {
    tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("a message in time")
        .expect("no error")
        .expect("not closed")
}

/// Reads `count` numbered messages and checks they are 1..=count in order.
async fn expect_numbered(ws: &mut WsStream, count: usize) {
    for n in 1..=count {
        let message = next(ws).await;
        assert_eq!(
            message.as_text(),
            Some(format!("{{\"seq\":{n}}}").as_str()),
            "message {n}"
        );
    }
}

#[tokio::test]
async fn direct_and_through_in_process_proxies() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().stream(50, None))
        .await
        .expect("wss");
    let url = server.url("/stream?streams=btcusdt@aggTrade");

    let mut ws = connect(&url, Route::Direct, "binance", &options(&ca))
        .await
        .expect("direct");
    expect_numbered(&mut ws, 50).await;

    let plain = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let auth = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let tls = ConnectProxy::start(
        ProxyOptions::new()
            .tls(ca.server_config(&["localhost"]))
            .basic_auth(USER, PASSWORD),
    )
    .await
    .expect("https proxy");
    let tls_url = format!("https://{USER}:{PASSWORD}@localhost:{}", tls.addr().port());
    for (proxy, url) in [
        (&plain, plain.url()),
        (&auth, auth.url_with_credentials()),
        (&tls, tls_url),
    ] {
        let mut ws = connect(
            &server.url("/stream"),
            proxy_route(&url, 5),
            "binance",
            &options(&ca),
        )
        .await
        .expect("through proxy");
        expect_numbered(&mut ws, 50).await;
        let records = proxy.connections();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].request_line.as_deref(),
            Some(format!("CONNECT localhost:{} HTTP/1.1", server.port()).as_str())
        );
    }
    // The server saw the upgrade as written: Host with port, our key, the path and query.
    let first = &server.connections()[0];
    assert_eq!(
        first.target.as_deref(),
        Some("/stream?streams=btcusdt@aggTrade")
    );
    assert_eq!(
        first.header("host"),
        Some(format!("localhost:{}", server.port()).as_str())
    );
    assert_eq!(first.header("sec-websocket-version"), Some("13"));
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn through_every_socks_kind() {
    use feed_sim::socks::AddrType;
    use feed_sim::{SocksOptions, SocksProxy};
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().stream(20, None))
        .await
        .expect("wss");
    let socks = SocksProxy::start(SocksOptions::new()).await.expect("socks");
    let socks_auth = SocksProxy::start(SocksOptions::new().user_pass(USER, PASSWORD))
        .await
        .expect("socks");
    let cases = [
        (socks.url("socks4"), AddrType::Ipv4),
        (socks.url("socks4a"), AddrType::Domain),
        (socks.url("socks5"), AddrType::Ipv4),
        (socks.url("socks5h"), AddrType::Domain),
        (socks_auth.url_with_credentials("socks5h"), AddrType::Domain),
    ];
    for (url, _) in &cases {
        let mut ws = connect(
            &server.url("/"),
            proxy_route(url, 5),
            "coinbase",
            &options(&ca),
        )
        .await
        .expect(url);
        expect_numbered(&mut ws, 20).await;
    }
    let types: Vec<_> = socks.connections().iter().map(|r| r.addr_type).collect();
    assert_eq!(
        types,
        cases[..4].iter().map(|(_, t)| Some(*t)).collect::<Vec<_>>()
    );
    assert_eq!(socks_auth.connections()[0].auth_ok, Some(true));
}

/// Each bad upgrade answer is its own typed error; the valid variations are accepted.
#[tokio::test]
async fn handshake_checks() {
    let ca = TestCa::new();
    let cases: Vec<(WssOptions, Vec<String>, Option<HandshakeError>)> = vec![
        (
            WssOptions::new().fault(HandshakeFault::Status(200)),
            vec![],
            Some(HandshakeError::UnexpectedStatus {
                status: 200,
                reason: "OK".into(),
            }),
        ),
        (
            WssOptions::new().fault(HandshakeFault::Status(403)),
            vec![],
            Some(HandshakeError::UnexpectedStatus {
                status: 403,
                reason: "Forbidden".into(),
            }),
        ),
        (
            WssOptions::new().fault(HandshakeFault::Status(500)),
            vec![],
            Some(HandshakeError::UnexpectedStatus {
                status: 500,
                reason: "Internal Server Error".into(),
            }),
        ),
        (
            WssOptions::new().fault(HandshakeFault::BadAccept),
            vec![],
            Some(HandshakeError::BadAccept),
        ),
        (
            WssOptions::new().fault(HandshakeFault::MissingAccept),
            vec![],
            Some(HandshakeError::MissingAccept),
        ),
        (
            WssOptions::new().fault(HandshakeFault::MissingUpgrade),
            vec![],
            Some(HandshakeError::MissingUpgrade),
        ),
        (
            WssOptions::new().fault(HandshakeFault::ConnectionKeepAlive),
            vec![],
            Some(HandshakeError::MissingConnectionUpgrade),
        ),
        (
            WssOptions::new().fault(HandshakeFault::OversizedHeaders),
            vec![],
            Some(HandshakeError::OversizedResponse),
        ),
        (
            WssOptions::new().fault(HandshakeFault::CloseDuringHandshake),
            vec![],
            Some(HandshakeError::ClosedDuringHandshake),
        ),
        (
            WssOptions::new().fault(HandshakeFault::WrongSubprotocol),
            vec!["json".into()],
            Some(HandshakeError::SubprotocolMismatch),
        ),
        (
            WssOptions::new().connection_header("Upgrade, keep-alive"),
            vec![],
            None,
        ),
        (
            WssOptions::new()
                .connection_header("keep-alive, upgrade")
                .upgrade_header("WebSocket"),
            vec![],
            None,
        ),
        (
            WssOptions::new().subprotocol(Some("json")),
            vec!["xml".into(), "json".into()],
            None,
        ),
    ];
    for (server_options, subprotocols, expected) in cases {
        let server = WssServer::start(&ca, server_options).await.expect("wss");
        let client = WsOptions {
            subprotocols: subprotocols.clone(),
            ..options(&ca)
        };
        let result = connect(&server.url("/"), Route::Direct, "backpack", &client).await;
        match (result, expected) {
            (Ok(ws), None) => {
                if !subprotocols.is_empty() {
                    assert_eq!(ws.subprotocol(), Some("json"));
                }
            }
            (Err(err), Some(expected)) => {
                match err.kind() {
                    WsErrorKind::Handshake(got) => assert_eq!(got, &expected, "{err}"),
                    other => panic!("expected {expected:?}, got {other:?}"),
                }
                assert!(
                    err.to_string()
                        .starts_with(&format!("WebSocket handshake failed: {expected}")),
                    "{err}"
                );
                assert!(
                    err.to_string()
                        .ends_with(&format!("(exchange backpack, {})", server.url("/"))),
                    "{err}"
                );
            }
            (Ok(_), Some(expected)) => panic!("expected {expected:?}"),
            (Err(err), None) => panic!("unexpected {err}"),
        }
    }
}

/// A server that never answers the upgrade: the route's timeout (1 s) fires before 3 s.
#[tokio::test]
async fn silent_server_times_out() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().fault(HandshakeFault::NeverAnswer))
        .await
        .expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let started = Instant::now();
    let err = connect(
        &server.url("/"),
        proxy_route(&proxy.url(), 1),
        "binance",
        &options(&ca),
    )
    .await
    .expect_err("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), WsErrorKind::HandshakeTimeout(d) if *d == Duration::from_secs(1)),
        "{err}"
    );
}

/// A proxy that reads CONNECT and never answers: the tunnel's own typed timeout (1 s) fires
/// before 3 s, naming the proxy as the party at fault (not a bare handshake timeout).
#[tokio::test]
async fn silent_proxy_times_out_as_a_tunnel_error() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let proxy =
        ConnectProxy::start(ProxyOptions::new().fault(feed_sim::connect_proxy::Fault::NeverAnswer))
            .await
            .expect("proxy");
    let err = tokio::time::timeout(
        Duration::from_secs(3),
        connect(
            &server.url("/"),
            proxy_route(&proxy.url(), 1),
            "binance",
            &options(&ca),
        ),
    )
    .await
    .expect("fails before 3 s")
    .expect_err("timeout");
    let tunnel = err
        .tunnel_error()
        .unwrap_or_else(|| panic!("not a tunnel error: {err}"));
    assert!(
        matches!(tunnel.kind(), TunnelErrorKind::ProxyTimeout(d) if *d == Duration::from_secs(1)),
        "{err}"
    );
    assert_eq!(tunnel.party(), proxy_tunnel::Party::Proxy);
    assert!(
        server.connections().is_empty(),
        "nothing reached the server"
    );
}

#[tokio::test]
async fn data_path() {
    let ca = TestCa::new();
    let script = vec![
        ServerMessage::Fragmented {
            text: "fragmented message in pieces".into(),
            pieces: 4,
        },
        ServerMessage::Ping(b"are you there".to_vec()),
        ServerMessage::Binary(vec![1, 2, 3]),
        ServerMessage::Close {
            code: 1001,
            reason: "going away".into(),
        },
    ];
    let server = WssServer::start(&ca, WssOptions::new().messages(script))
        .await
        .expect("wss");
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &options(&ca))
        .await
        .expect("connect");
    assert_eq!(
        next(&mut ws).await.as_text(),
        Some("fragmented message in pieces")
    );
    assert_eq!(next(&mut ws).await, Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(
        next(&mut ws).await,
        Message::Close {
            code: Some(1001),
            reason: "going away".into()
        }
    );
    assert!(ws.next_message().await.expect("closed cleanly").is_none());
    let records = server.connections_when_closed(1, DEADLINE).await;
    assert!(
        records[0].pong_received(b"are you there"),
        "automatic pong: {records:?}"
    );
    assert_eq!(
        records[0].close_received.as_ref().map(|c| c.code),
        Some(Some(1001)),
        "close echoed"
    );

    // Echo: what we send comes back; our frames are masked (the server would refuse them).
    let echo = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let mut ws = connect(&echo.url("/"), Route::Direct, "binance", &options(&ca))
        .await
        .expect("connect");
    ws.send_text(r#"{"method":"SUBSCRIBE","params":["trade.BTC_USDC"]}"#)
        .await
        .expect("send");
    assert_eq!(
        next(&mut ws).await.as_text(),
        Some(r#"{"method":"SUBSCRIBE","params":["trade.BTC_USDC"]}"#)
    );
    ws.ping(b"p").await.expect("ping");
    ws.send_binary(&[9, 9]).await.expect("send");
    assert_eq!(next(&mut ws).await, Message::Binary(vec![9, 9].into()));
    ws.close(1000, "bye").await.expect("close");
    let records = echo.connections_when_closed(1, DEADLINE).await;
    assert_eq!(records[0].error, None, "{records:?}");
    assert_eq!(
        records[0]
            .close_received
            .as_ref()
            .map(|c| (c.code, c.reason.as_str())),
        Some((Some(1000), "bye"))
    );
}

#[tokio::test]
async fn message_over_the_limit_fails_cleanly() {
    let ca = TestCa::new();
    let server = WssServer::start(
        &ca,
        WssOptions::new().messages(vec![ServerMessage::Big(70_000)]),
    )
    .await
    .expect("wss");
    let client = WsOptions {
        max_message_size: 64 * 1024,
        ..options(&ca)
    };
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    let err = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect_err("too large");
    assert!(
        matches!(err.kind(), WsErrorKind::MessageTooLarge(65536)),
        "{err}"
    );
}

/// An unmasked server frame: FIN bit, opcode, payload (length up to 65535).
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut bytes = vec![if fin { 0x80 } else { 0 } | opcode];
    match u16::try_from(payload.len()) {
        Ok(len) if len < 126 => bytes.push(len as u8),
        Ok(len) => {
            bytes.push(126);
            bytes.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => panic!("test frames stay under 64 KiB"),
    }
    bytes.extend_from_slice(payload);
    bytes
}

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;

/// Connects to a server that sends `frames` verbatim and returns the first read's result.
async fn first_read(
    frames: Vec<Vec<u8>>,
    max_message_size: Option<usize>,
) -> Result<Message, String> {
    let ca = TestCa::new();
    let script = frames.into_iter().map(ServerMessage::Raw).collect();
    let server = WssServer::start(&ca, WssOptions::new().messages(script))
        .await
        .expect("wss");
    let mut client = options(&ca);
    if let Some(limit) = max_message_size {
        client.max_message_size = limit;
    }
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    match tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
    {
        Ok(Some(message)) => Ok(message),
        Ok(None) => Err("closed".to_owned()),
        Err(err) => Err(format!("{:?}: {err}", err.kind())),
    }
}

/// Fragments are reassembled with control frames between them; a UTF-8 character split across
/// fragments is fine; a binary message in fragments stays binary.
#[tokio::test]
async fn fragments_are_reassembled_around_control_frames() {
    let euro = "price \u{20ac}42".as_bytes();
    let message = first_read(
        vec![
            frame(false, TEXT, &euro[..7]),
            frame(true, PING, b"mid-message"),
            frame(false, CONTINUATION, &euro[7..8]),
            frame(true, CONTINUATION, &euro[8..]),
        ],
        None,
    )
    .await;
    assert_eq!(message, Ok(Message::Text(euro.to_vec().into())));

    let message = first_read(
        vec![
            frame(false, BINARY, &[0xff, 0x00]),
            frame(true, CONTINUATION, &[0xfe]),
        ],
        None,
    )
    .await;
    assert_eq!(message, Ok(Message::Binary(vec![0xff, 0x00, 0xfe].into())));
}

/// Broken fragment sequences and invalid text in fragments are protocol errors, and a
/// reassembled message over the limit is `MessageTooLarge` although each frame is under it.
#[tokio::test]
async fn broken_fragments_are_typed_errors() {
    /// Name, frames, size limit, the error kind's Debug prefix.
    type Case = (&'static str, Vec<Vec<u8>>, Option<usize>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "continuation without a first frame",
            vec![frame(true, CONTINUATION, b"x")],
            None,
            "Protocol",
        ),
        (
            "a new message inside a fragmented one",
            vec![frame(false, TEXT, b"a"), frame(true, TEXT, b"b")],
            None,
            "Protocol",
        ),
        (
            "invalid UTF-8 across fragments",
            vec![
                frame(false, TEXT, &[0xe2, 0x82]),
                frame(true, CONTINUATION, b"x"),
            ],
            None,
            "Protocol",
        ),
        (
            "fragments over the limit",
            vec![
                frame(false, BINARY, &[1; 600]),
                frame(false, CONTINUATION, &[2; 600]),
                frame(true, CONTINUATION, &[3; 600]),
            ],
            Some(1024),
            "MessageTooLarge(1024)",
        ),
    ];
    for (name, frames, limit, kind) in cases {
        let result = first_read(frames, limit).await;
        let err = result.expect_err(name);
        assert!(err.starts_with(kind), "{name}: {err}");
    }
}

/// Frame headers no server may send, and bad close frames, are typed errors on the first read
/// (never a hang, never a message); a frame split over several writes is put together.
#[tokio::test]
async fn bad_frames_are_typed_errors() {
    const CLOSE: u8 = 0x8;
    /// Name, raw frames, size limit, the error kind's Debug prefix.
    type Case = (&'static str, Vec<Vec<u8>>, Option<usize>, &'static str);
    let cases: Vec<Case> = vec![
        ("reserved bits set", vec![vec![0xc1, 0]], None, "Protocol"),
        ("unknown opcode", vec![vec![0x83, 0]], None, "Protocol"),
        (
            "a masked server frame",
            vec![vec![0x81, 0x81, 1, 2, 3, 4, b'a' ^ 1]],
            None,
            "Protocol",
        ),
        ("a fragmented ping", vec![vec![0x09, 0]], None, "Protocol"),
        (
            "a ping over 125 bytes",
            vec![frame(true, PING, &[0; 126])],
            None,
            "Protocol",
        ),
        (
            "a close of 1 byte",
            vec![frame(true, CLOSE, &[3])],
            None,
            "Protocol",
        ),
        (
            "a close with a code no peer may send",
            vec![frame(true, CLOSE, &1005u16.to_be_bytes())],
            None,
            "Protocol",
        ),
        (
            "a close reason that is not UTF-8",
            vec![frame(true, CLOSE, &[0x03, 0xe8, 0xff])],
            None,
            "Protocol",
        ),
        (
            "text that is not UTF-8",
            vec![frame(true, TEXT, &[0xff])],
            None,
            "Protocol",
        ),
        (
            "a frame header over the limit",
            vec![vec![0x82, 126, 0x08, 0x00]],
            Some(1024),
            "MessageTooLarge(1024)",
        ),
    ];
    for (name, frames, limit, kind) in cases {
        let result = first_read(frames, limit).await;
        let err = result.expect_err(name);
        assert!(err.starts_with(kind), "{name}: {err}");
    }
}

/// A frame whose header and payload arrive in separate reads (50 ms apart) is put together, and
/// each read is counted; after a protocol error the connection is failed: the next read is
/// `Ok(None)`, not the same error again.
#[tokio::test]
async fn frames_split_over_reads_and_a_failed_connection() {
    let ca = TestCa::new();
    let gap = Duration::from_millis(50);
    let script = vec![
        ServerMessage::RawAfter(gap, vec![0x81]),
        ServerMessage::RawAfter(gap, vec![126, 0x01]),
        ServerMessage::RawAfter(gap, {
            let mut rest = vec![0x2c];
            rest.extend_from_slice(&[b'a'; 100]);
            rest
        }),
        ServerMessage::RawAfter(gap, vec![b'b'; 200]),
        ServerMessage::RawAfter(gap, vec![0xc1, 0]),
    ];
    let server = WssServer::start(&ca, WssOptions::new().messages(script))
        .await
        .expect("wss");
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &options(&ca))
        .await
        .expect("connect");
    let message = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect("a message");
    let mut expected = vec![b'a'; 100];
    expected.extend_from_slice(&[b'b'; 200]);
    assert_eq!(message, Some(Message::Text(expected.into())));
    assert!(ws.socket_reads() >= 4, "reads: {}", ws.socket_reads());
    let err = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect_err("reserved bits");
    assert!(matches!(err.kind(), WsErrorKind::Protocol(_)), "{err}");
    assert_eq!(
        ws.next_message().await.expect("failed, not erroring again"),
        None
    );
}

/// After an idle timeout the next read gets a whole limit again (the first deadline is not
/// left behind): a message 750 ms after the upgrade arrives on the second read of a 500 ms limit.
#[tokio::test]
async fn a_read_after_an_idle_timeout_waits_a_whole_limit() {
    let ca = TestCa::new();
    let script = vec![ServerMessage::RawAfter(
        Duration::from_millis(750),
        frame(true, TEXT, b"late"),
    )];
    let server = WssServer::start(&ca, WssOptions::new().messages(script))
        .await
        .expect("wss");
    let client = WsOptions {
        idle_timeout: Some(Duration::from_millis(500)),
        ..options(&ca)
    };
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    let err = ws.next_message().await.expect_err("idle");
    assert!(matches!(err.kind(), WsErrorKind::IdleTimeout(_)), "{err}");
    let message = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect("the late message");
    assert_eq!(message, Some(Message::Text("late".into())));
}

/// Limits too large to mean anything are no limit, not a panic: an idle timeout of
/// `Duration::MAX` (past the clock's end) reads the message (and `WSS://` connects); with no message size limit, a
/// header announcing 2^62 bytes reserves what the bytes would cost, not what the header says
/// (it waits for them, here until a 1 s idle timeout).
#[tokio::test]
async fn huge_limits_are_no_limit_not_a_panic() {
    let ca = TestCa::new();
    let script = vec![ServerMessage::Raw(frame(true, TEXT, b"hello"))];
    let server = WssServer::start(&ca, WssOptions::new().messages(script))
        .await
        .expect("wss");
    let client = WsOptions {
        idle_timeout: Some(Duration::MAX),
        ..options(&ca)
    };
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    let message = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect("the message");
    assert_eq!(message, Some(Message::Text("hello".into())));
    // The scheme is case-insensitive.
    let upper = server.url("/").replacen("wss://", "WSS://", 1);
    connect(&upper, Route::Direct, "binance", &client)
        .await
        .expect("WSS:// connects");

    let header = vec![0x82, 127, 0x40, 0, 0, 0, 0, 0, 0, 0];
    let server = WssServer::start(
        &ca,
        WssOptions::new().messages(vec![ServerMessage::Raw(header)]),
    )
    .await
    .expect("wss");
    let client = WsOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        max_message_size: usize::MAX,
        ..options(&ca)
    };
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    let err = tokio::time::timeout(DEADLINE, ws.next_message())
        .await
        .expect("in time")
        .expect_err("idle");
    assert!(matches!(err.kind(), WsErrorKind::IdleTimeout(_)), "{err}");
}

#[tokio::test]
async fn idle_timeout_fires() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let client = WsOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        ..options(&ca)
    };
    let mut ws = connect(&server.url("/"), Route::Direct, "binance", &client)
        .await
        .expect("connect");
    let started = Instant::now();
    let err = ws.next_message().await.expect_err("idle");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(err.kind(), WsErrorKind::IdleTimeout(_)), "{err}");
}

/// The exchange's certificate is checked through the tunnel: a name it does not carry fails,
/// and nothing falls back to a direct connection.
#[tokio::test]
async fn tls_name_mismatch_through_the_tunnel() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().cert_names(&["stream.binance.com"]))
        .await
        .expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let err = connect(
        &server.url("/"),
        proxy_route(&proxy.url(), 5),
        "binance",
        &options(&ca),
    )
    .await
    .expect_err("mismatch");
    assert!(matches!(err.kind(), WsErrorKind::Tls(_)), "{err}");
    assert!(
        err.to_string()
            .contains("certificate not valid for name \"localhost\""),
        "{err}"
    );
    assert_eq!(
        proxy.connections().len(),
        1,
        "the attempt went through the proxy"
    );
    assert!(
        server
            .connections_when_closed(1, DEADLINE)
            .await
            .iter()
            .all(|r| !r.upgraded)
    );
}

#[tokio::test]
async fn route_errors_are_typed_and_clean() {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new()).await.expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, "other"))
        .await
        .expect("proxy");
    let url = format!("http://{USER}:{PASSWORD}@{}", proxy.addr());
    let err = connect(
        &server.url("/x?listenKey=secret-key"),
        proxy_route(&url, 5),
        "binance",
        &options(&ca),
    )
    .await
    .expect_err("rejected");
    assert!(
        matches!(
            err.tunnel_error().map(|t| t.kind()),
            Some(TunnelErrorKind::ProxyAuthRejected)
        ),
        "{err}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(PASSWORD) && !text.contains("secret-key"),
        "{text}"
    );
    assert!(server.connections().is_empty(), "no fallback to direct");

    for bad in [
        "https://localhost:1/",
        "wss://user:pw@localhost:1/",
        "wss://:1/",
        "wss://localhost:0/",
        "wss://localhost:70000/",
        "wss://[::1]x/",
        "wss://[::1]:/",
        "wss://[::1]:65536/",
    ] {
        let err = connect(bad, Route::Direct, "binance", &options(&ca))
            .await
            .expect_err(bad);
        assert!(
            matches!(err.kind(), WsErrorKind::InvalidUrl),
            "{bad}: {err}"
        );
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}

/// TRACE output of a streamed connection and of a rejected one, both with credentials: none
/// of them in the output.
#[tokio::test]
async fn trace_output_has_no_credentials() {
    let capture = feed_sim::TraceCapture::start();

    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new().stream(3, None))
        .await
        .expect("wss");
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let mut ws = connect(
        &server.url("/"),
        proxy_route(&proxy.url_with_credentials(), 5),
        "binance",
        &options(&ca),
    )
    .await
    .expect("connect");
    expect_numbered(&mut ws, 3).await;
    let bad = format!("http://{USER}:{PASSWORD}x@{}", proxy.addr());
    let err = connect(
        &server.url("/"),
        proxy_route(&bad, 5),
        "binance",
        &options(&ca),
    )
    .await
    .expect_err("rejected");
    tracing::error!(error = %err, debug = ?err, "as an application would log it");
    let output = capture.text();
    assert!(
        output.contains("tunnel established"),
        "the capture works: {output}"
    );
    assert!(
        !output.contains(PASSWORD),
        "credential in trace output: {output}"
    );
    assert!(
        !output.contains(&feed_sim::basic_auth_value(USER, PASSWORD)),
        "{output}"
    );
}

/// Without the `socks` feature, socks routes never reach this crate: settings reject them.
#[cfg(not(feature = "socks"))]
#[test]
fn socks_routes_are_rejected_at_load_time() {
    let err = proxy_config::Loader::new()
        .env_vars([(
            "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL",
            "socks5://gw:1080",
        )])
        .load()
        .expect_err("socks is off");
    assert!(
        err.to_string().starts_with(
            "exchanges.binance.websocket.url: proxy scheme \"socks5\" needs the `socks` feature, which this build does not enable"
        ),
        "{err}"
    );
}

#[test]
fn options_debug_hides_header_values() {
    let options = WsOptions {
        headers: vec![("X-Api-Key".into(), "key-canary".into())],
        ..WsOptions::default()
    };
    let debug = format!("{options:?}");
    assert!(
        debug.contains("X-Api-Key") && !debug.contains("key-canary"),
        "{debug}"
    );
}
