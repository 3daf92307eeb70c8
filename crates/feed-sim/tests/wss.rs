//! The WebSocket server over real loopback sockets, driven by a minimal hand-written client: the
//! opening handshake, numbered streams, echo, scripted frames, every handshake fault, and the
//! client's protocol errors.

mod common;

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use common::{RawResponse, read_response, read_until_close, tls, within};
use feed_sim::wss::big_payload;
use feed_sim::{
    CloseFrame, HandshakeFault, ServerMessage, TestCa, WsMessage, WssOptions, WssRecord, WssServer,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The sample key of RFC 6455 section 1.3 and the accept value it must produce.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of the RFC 6455 section 5.7 examples.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

type Client = TlsStream<TcpStream>;

async fn start(ca: &TestCa, options: WssOptions) -> WssServer {
    WssServer::start(ca, options).await.expect("server starts")
}

/// Connects over TLS for "localhost"; returns the stream and its local address.
async fn connect(server: &WssServer, ca: &TestCa) -> (Client, SocketAddr) {
    let tcp = within("connect", TcpStream::connect(server.addr()))
        .await
        .expect("connect");
    let local = tcp.local_addr().expect("local addr");
    let stream = within("tls", tls(tcp, ca.client_config(), "localhost"))
        .await
        .expect("TLS handshake with the test CA");
    (stream, local)
}

/// An upgrade request with the RFC sample key and `extra` header lines.
fn upgrade_request(server: &WssServer, target: &str, extra: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n",
        server.port()
    );
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

async fn send_raw<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    within("write", stream.write_all(bytes))
        .await
        .expect("write");
    within("flush", stream.flush()).await.expect("flush");
}

/// Connects, sends the upgrade request and reads the answer head.
async fn upgrade(
    server: &WssServer,
    ca: &TestCa,
    target: &str,
    extra: &[(&str, &str)],
) -> (Client, RawResponse, SocketAddr) {
    let (mut stream, local) = connect(server, ca).await;
    send_raw(
        &mut stream,
        upgrade_request(server, target, extra).as_bytes(),
    )
    .await;
    let response = within("upgrade answer", read_response(&mut stream, false)).await;
    assert_eq!(response.status(), 101, "{response:?}");
    (stream, response, local)
}

/// One frame as the client encodes or decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Frame {
    fin: bool,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

fn encode(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        len @ 0..=125 => out.push(mask_bit | len as u8),
        len @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

async fn send_frame<S: AsyncWrite + Unpin>(stream: &mut S, fin: bool, opcode: u8, payload: &[u8]) {
    send_raw(stream, &encode(fin, opcode, payload, true)).await;
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Frame {
    within("read frame", async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.expect("frame header");
        let len = match head[1] & 0x7F {
            126 => u64::from(stream.read_u16().await.expect("16-bit length")),
            127 => stream.read_u64().await.expect("64-bit length"),
            len => u64::from(len),
        };
        let masked = head[1] & 0x80 != 0;
        let mut mask = [0u8; 4];
        if masked {
            stream.read_exact(&mut mask).await.expect("mask");
        }
        let mut payload = vec![0u8; usize::try_from(len).expect("length fits")];
        stream.read_exact(&mut payload).await.expect("payload");
        if masked {
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i % 4];
            }
        }
        Frame {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0F,
            masked,
            payload,
        }
    })
    .await
}

fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

fn close_frame(code: u16, reason: &str) -> Option<CloseFrame> {
    Some(CloseFrame {
        code: Some(code),
        reason: reason.into(),
    })
}

/// Sends a close frame, expects the server's close with `code` back, then the end of the stream;
/// drops the connection.
async fn close_cleanly(mut stream: Client, code: u16) {
    let stream = &mut stream;
    send_frame(stream, true, CLOSE, &close_payload(code, "bye")).await;
    let reply = read_frame(stream).await;
    assert_eq!(reply.opcode, CLOSE);
    assert_eq!(reply.payload[..2], code.to_be_bytes());
    let rest = within("close", read_until_close(stream, 1024)).await;
    assert!(
        rest.is_empty(),
        "server sent more after its close: {rest:?}"
    );
}

async fn closed_records(server: &WssServer, count: usize) -> Vec<WssRecord> {
    let records = server
        .connections_when_closed(count, common::DEADLINE)
        .await;
    assert!(
        records.iter().filter(|r| r.closed).count() >= count,
        "server did not finish {count} connections: {records:#?}"
    );
    records
}

#[tokio::test]
async fn correct_handshake_answers_the_rfc_sample_accept_and_records_the_request() {
    let ca = TestCa::new();
    let server = start(&ca, WssOptions::new().subprotocol(Some("feed.v2"))).await;
    assert_eq!(
        server.url("ws"),
        format!("wss://localhost:{}/ws", server.port())
    );
    assert_eq!(server.url("/ws"), server.url("ws"));

    let offer = [
        ("Sec-WebSocket-Protocol", "feed.v1, feed.v2"),
        ("X-Feed-Client", "wss-test"),
    ];
    let (stream, response, local) = upgrade(&server, &ca, "/ws?symbols=btcusdt", &offer).await;
    assert_eq!(response.status_line, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(response.header("Upgrade"), Some("websocket"));
    assert_eq!(response.header("Connection"), Some("Upgrade"));
    assert_eq!(response.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
    assert_eq!(response.header("Sec-WebSocket-Protocol"), Some("feed.v2"));
    close_cleanly(stream, 1000).await;

    // Without an offer the configured subprotocol is not answered.
    let (stream, response, _) = upgrade(&server, &ca, "/plain", &[]).await;
    assert_eq!(response.header("Sec-WebSocket-Protocol"), None);
    drop(stream);

    let records = closed_records(&server, 2).await;
    let first = &records[0];
    assert_eq!(first.peer, Some(local));
    assert_eq!(
        first.request_line.as_deref(),
        Some("GET /ws?symbols=btcusdt HTTP/1.1")
    );
    assert_eq!(first.target.as_deref(), Some("/ws?symbols=btcusdt"));
    let host = format!("localhost:{}", server.port());
    assert_eq!(first.header("host"), Some(host.as_str()));
    assert_eq!(first.header("Sec-WebSocket-Key"), Some(SAMPLE_KEY));
    assert_eq!(
        first.header("Sec-WebSocket-Protocol"),
        Some("feed.v1, feed.v2")
    );
    assert_eq!(first.header("X-Feed-Client"), Some("wss-test"));
    assert_eq!(first.status, Some(101));
    assert_eq!(first.subprotocol.as_deref(), Some("feed.v2"));
    assert!(first.upgraded);
    assert_eq!(first.close_received, close_frame(1000, "bye"));
    assert_eq!(first.close_sent, close_frame(1000, ""));
    assert_eq!(first.error, None);

    let second = &records[1];
    assert_eq!(second.target.as_deref(), Some("/plain"));
    assert_eq!(second.subprotocol, None);
    assert!(
        second
            .error
            .as_deref()
            .is_some_and(|e| e.contains("without a close frame")),
        "{second:?}"
    );
}

#[tokio::test]
async fn numbered_stream_arrives_in_order_then_echo_and_pings_are_answered() {
    let ca = TestCa::new();
    for interval in [None, Some(Duration::from_millis(5))] {
        let server = start(&ca, WssOptions::new().stream(5, interval)).await;
        let (mut stream, _, _) = upgrade(&server, &ca, "/stream", &[]).await;
        for seq in 1..=5 {
            let frame = read_frame(&mut stream).await;
            let expected = format!(r#"{{"seq":{seq}}}"#);
            assert_eq!(
                (frame.fin, frame.opcode, frame.masked, frame.payload),
                (true, TEXT, false, expected.into_bytes()),
                "interval {interval:?}"
            );
        }

        send_frame(&mut stream, true, TEXT, b"hello").await;
        assert_eq!(read_frame(&mut stream).await.payload, b"hello");

        // A fragmented message, with a ping between its pieces, comes back whole.
        send_frame(&mut stream, false, TEXT, b"frag").await;
        send_frame(&mut stream, true, PING, b"p1").await;
        send_frame(&mut stream, true, CONTINUATION, b"mented").await;
        let pong = read_frame(&mut stream).await;
        assert_eq!((pong.opcode, pong.payload), (PONG, b"p1".to_vec()));
        let echo = read_frame(&mut stream).await;
        assert_eq!(
            (echo.fin, echo.opcode, echo.payload),
            (true, TEXT, b"fragmented".to_vec())
        );

        // Past 64 KiB both directions use the 64-bit length.
        let big = big_payload(100_000);
        send_frame(&mut stream, true, BINARY, &big).await;
        let echo = read_frame(&mut stream).await;
        assert_eq!((echo.fin, echo.opcode), (true, BINARY));
        assert!(echo.payload == big, "binary echo differs");

        close_cleanly(stream, 1000).await;
        let records = closed_records(&server, 1).await;
        let record = &records[0];
        assert_eq!(
            record.messages,
            [
                WsMessage::Text("hello".into()),
                WsMessage::Text("fragmented".into()),
                WsMessage::Binary(big),
            ]
        );
        assert_eq!(record.messages_sent, 5 + 3);
        assert_eq!(record.pings_received, [b"p1".to_vec()]);
        assert_eq!(record.error, None, "interval {interval:?}");
    }
}

#[tokio::test]
async fn scripted_frames_arrive_with_their_structure_and_the_server_closes() {
    let ca = TestCa::new();
    let text = "fragmented ✓ message";
    let raw = vec![0x81, 0x03, b'r', b'a', b'w'];
    let script = vec![
        ServerMessage::Text("first".into()),
        ServerMessage::Binary(vec![0, 1, 2]),
        ServerMessage::Fragmented {
            text: text.into(),
            pieces: 4,
        },
        ServerMessage::Big(70_000),
        ServerMessage::Raw(raw),
        ServerMessage::Ping(b"are you there".to_vec()),
        ServerMessage::Close {
            code: 1001,
            reason: "going away".into(),
        },
    ];
    let server = start(&ca, WssOptions::new().messages(script)).await;
    let (mut stream, _, _) = upgrade(&server, &ca, "/script", &[]).await;

    let first = read_frame(&mut stream).await;
    assert_eq!((first.opcode, first.payload), (TEXT, b"first".to_vec()));
    let binary = read_frame(&mut stream).await;
    assert_eq!((binary.opcode, binary.payload), (BINARY, vec![0, 1, 2]));

    let mut pieces = Vec::new();
    let mut joined = Vec::new();
    for _ in 0..4 {
        let frame = read_frame(&mut stream).await;
        pieces.push((frame.fin, frame.opcode));
        joined.extend_from_slice(&frame.payload);
    }
    assert_eq!(
        pieces,
        [
            (false, TEXT),
            (false, CONTINUATION),
            (false, CONTINUATION),
            (true, CONTINUATION)
        ]
    );
    assert_eq!(joined, text.as_bytes());

    let big = read_frame(&mut stream).await;
    assert_eq!((big.fin, big.opcode, big.masked), (true, BINARY, false));
    assert!(big.payload == big_payload(70_000), "big payload differs");
    let raw = read_frame(&mut stream).await;
    assert_eq!((raw.opcode, raw.payload), (TEXT, b"raw".to_vec()));

    let ping = read_frame(&mut stream).await;
    assert_eq!(
        (ping.opcode, ping.payload.as_slice()),
        (PING, &b"are you there"[..])
    );
    send_frame(&mut stream, true, PONG, &ping.payload).await;

    let close = read_frame(&mut stream).await;
    assert_eq!(
        (close.opcode, close.payload),
        (CLOSE, close_payload(1001, "going away"))
    );
    send_frame(&mut stream, true, CLOSE, &close_payload(1001, "")).await;
    let rest = within("close", read_until_close(&mut stream, 1024)).await;
    assert!(
        rest.is_empty(),
        "server sent more after its close: {rest:?}"
    );
    drop(stream);

    let records = closed_records(&server, 1).await;
    let record = &records[0];
    assert_eq!(record.pings_sent, [b"are you there".to_vec()]);
    assert!(record.pong_received(b"are you there"), "{record:?}");
    assert_eq!(record.close_sent, close_frame(1001, "going away"));
    assert_eq!(record.close_received, close_frame(1001, ""));
    assert_eq!(record.messages_sent, 4);
    assert_eq!(record.error, None);
}

#[tokio::test]
async fn unmasked_client_frame_is_recorded_as_an_error_and_closed_with_1002() {
    let ca = TestCa::new();
    let server = start(&ca, WssOptions::new()).await;
    let (mut stream, _, _) = upgrade(&server, &ca, "/ws", &[]).await;
    send_raw(&mut stream, &encode(true, TEXT, b"x", false)).await;
    let close = read_frame(&mut stream).await;
    assert_eq!(close.opcode, CLOSE);
    assert_eq!(close.payload[..2], 1002u16.to_be_bytes());
    let rest = within("close", read_until_close(&mut stream, 1024)).await;
    assert!(
        rest.is_empty(),
        "server sent more after its close: {rest:?}"
    );
    drop(stream);

    let records = closed_records(&server, 1).await;
    let record = &records[0];
    assert!(
        record
            .error
            .as_deref()
            .is_some_and(|e| e.contains("unmasked")),
        "{record:?}"
    );
    assert_eq!(record.close_sent.as_ref().and_then(|c| c.code), Some(1002));
    assert!(record.messages.is_empty());
}

/// What a client sees of a handshake answer.
struct Expect {
    status: Option<u16>,
    /// Whether the server closes the connection by itself.
    closed: bool,
    /// Header lines (or other text) that must appear verbatim.
    lines: &'static [&'static str],
    /// Header names that must not appear.
    absent: &'static [&'static str],
    /// `Some(true)`: the accept header is the RFC sample's; `Some(false)`: present but wrong.
    accept_ok: Option<bool>,
    /// The answer is at least this long.
    min_len: usize,
}

const EXPECT: Expect = Expect {
    status: Some(101),
    closed: false,
    lines: &[],
    absent: &[],
    accept_ok: Some(true),
    min_len: 0,
};

/// Reads until the answer head is complete, the server closes, or it sends nothing for a short
/// idle while (`NeverAnswer`); returns what arrived and whether the server closed.
async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_millis(300), stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            Err(_) => return (out, false),
        }
    }
    (out, false)
}

/// A row of the fault table: name, server options, extra request headers, what the client sees.
type FaultCase = (
    &'static str,
    WssOptions,
    &'static [(&'static str, &'static str)],
    Expect,
);

#[tokio::test]
async fn each_handshake_fault_and_valid_variation_is_observable() {
    let ca = TestCa::new();
    let offer_v1 = &[("Sec-WebSocket-Protocol", "feed.v1")][..];
    let cases: Vec<FaultCase> = vec![
        (
            "status 403",
            WssOptions::new().fault(HandshakeFault::Status(403)),
            &[],
            Expect {
                status: Some(403),
                closed: true,
                lines: &[
                    "HTTP/1.1 403 Forbidden\r\n",
                    "\r\n\r\nfeed-sim: handshake answered with 403",
                ],
                absent: &["Upgrade", "Sec-WebSocket-Accept"],
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "status 200",
            WssOptions::new().fault(HandshakeFault::Status(200)),
            &[],
            Expect {
                status: Some(200),
                closed: true,
                lines: &["HTTP/1.1 200 OK\r\n"],
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "status 500",
            WssOptions::new().fault(HandshakeFault::Status(500)),
            &[],
            Expect {
                status: Some(500),
                closed: true,
                lines: &["HTTP/1.1 500 Internal Server Error\r\n"],
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "bad accept",
            WssOptions::new().fault(HandshakeFault::BadAccept),
            &[],
            Expect {
                accept_ok: Some(false),
                ..EXPECT
            },
        ),
        (
            "missing accept",
            WssOptions::new().fault(HandshakeFault::MissingAccept),
            &[],
            Expect {
                absent: &["Sec-WebSocket-Accept"],
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "missing upgrade",
            WssOptions::new().fault(HandshakeFault::MissingUpgrade),
            &[],
            Expect {
                absent: &["Upgrade"],
                ..EXPECT
            },
        ),
        (
            "connection keep-alive",
            WssOptions::new().fault(HandshakeFault::ConnectionKeepAlive),
            &[],
            Expect {
                lines: &["\r\nConnection: keep-alive\r\n"],
                ..EXPECT
            },
        ),
        (
            "oversized headers",
            WssOptions::new().fault(HandshakeFault::OversizedHeaders),
            &[],
            Expect {
                closed: true,
                min_len: 64 * 1024 + 1,
                ..EXPECT
            },
        ),
        (
            "close during handshake",
            WssOptions::new().fault(HandshakeFault::CloseDuringHandshake),
            &[],
            Expect {
                status: None,
                closed: true,
                lines: &["HTTP/1.1 10"],
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "never answer",
            WssOptions::new().fault(HandshakeFault::NeverAnswer),
            &[],
            Expect {
                status: None,
                accept_ok: None,
                ..EXPECT
            },
        ),
        (
            "wrong subprotocol",
            WssOptions::new()
                .subprotocol(Some("feed.v1"))
                .fault(HandshakeFault::WrongSubprotocol),
            offer_v1,
            Expect {
                lines: &["\r\nSec-WebSocket-Protocol: feed-sim.unrequested\r\n"],
                ..EXPECT
            },
        ),
        (
            "valid: mixed-case upgrade, connection list",
            WssOptions::new()
                .connection_header("Upgrade, keep-alive")
                .upgrade_header("WebSocket"),
            &[],
            Expect {
                lines: &[
                    "\r\nUpgrade: WebSocket\r\n",
                    "\r\nConnection: Upgrade, keep-alive\r\n",
                ],
                absent: &["Sec-WebSocket-Protocol"],
                ..EXPECT
            },
        ),
        (
            "valid: subprotocol offered",
            WssOptions::new().subprotocol(Some("feed.v1")),
            offer_v1,
            Expect {
                lines: &["\r\nSec-WebSocket-Protocol: feed.v1\r\n"],
                ..EXPECT
            },
        ),
        (
            "valid: subprotocol not offered",
            WssOptions::new().subprotocol(Some("feed.v2")),
            offer_v1,
            Expect {
                absent: &["Sec-WebSocket-Protocol"],
                ..EXPECT
            },
        ),
    ];
    for (name, options, extra, expect) in cases {
        let server = start(&ca, options).await;
        let (mut stream, _) = connect(&server, &ca).await;
        send_raw(
            &mut stream,
            upgrade_request(&server, "/f", extra).as_bytes(),
        )
        .await;
        let (mut bytes, mut closed) = within("answer", read_answer(&mut stream)).await;
        if expect.closed && !closed {
            // The rest (a body) up to the server's close; the deadline fails a server that stays.
            bytes.extend(within("close", read_until_close(&mut stream, 1 << 20)).await);
            closed = true;
        } else if !closed && bytes.starts_with(b"HTTP/1.1 101 ") {
            // The server stayed open and speaks frames after its (maybe faulty) 101.
            send_frame(&mut stream, true, PING, b"open?").await;
            let pong = read_frame(&mut stream).await;
            assert_eq!(
                (pong.opcode, pong.payload),
                (PONG, b"open?".to_vec()),
                "{name}"
            );
        }
        let text = String::from_utf8_lossy(&bytes);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let status = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|code| code.parse::<u16>().ok())
            .filter(|_| text.contains("\r\n"));
        assert_eq!(status, expect.status, "{name}: {head}");
        assert_eq!(closed, expect.closed, "{name}: closed? {head}");
        assert!(
            bytes.len() >= expect.min_len,
            "{name}: {} bytes",
            bytes.len()
        );
        for line in expect.lines {
            assert!(text.contains(line), "{name}: no {line:?} in {head}");
        }
        let header = |wanted: &str| {
            head.split("\r\n")
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
                .map(|(_, v)| v.trim().to_owned())
        };
        for absent in expect.absent {
            assert_eq!(header(absent), None, "{name}: {absent} in {head}");
        }
        if let Some(ok) = expect.accept_ok {
            let accept = header("Sec-WebSocket-Accept");
            assert!(accept.is_some(), "{name}: no accept in {head}");
            assert_eq!(
                accept.as_deref() == Some(SAMPLE_ACCEPT),
                ok,
                "{name}: {head}"
            );
        }
        let record = &server.connections()[0];
        assert_eq!(record.target.as_deref(), Some("/f"), "{name}");
        assert_eq!(
            record.header("Sec-WebSocket-Key"),
            Some(SAMPLE_KEY),
            "{name}"
        );
    }
}

#[tokio::test]
async fn invalid_upgrade_request_is_refused_and_recorded() {
    let ca = TestCa::new();
    let server = start(&ca, WssOptions::new()).await;
    let (mut stream, _) = connect(&server, &ca).await;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\n\r\n",
        server.port()
    );
    send_raw(&mut stream, request.as_bytes()).await;
    let response = within("answer", read_response(&mut stream, true)).await;
    assert_eq!(response.status(), 426);
    assert_eq!(response.header("Sec-WebSocket-Version"), Some("13"));
    drop(stream);
    let records = closed_records(&server, 1).await;
    assert_eq!(records[0].status, Some(426));
    assert!(!records[0].upgraded);
    assert!(
        records[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Sec-WebSocket-Version")),
        "{:?}",
        records[0]
    );
}

#[tokio::test]
async fn binds_loopback_only_v4_or_v6_and_releases_the_port_on_shutdown() {
    let ca = TestCa::new();
    let error = WssServer::start(
        &ca,
        WssOptions::new().bind(SocketAddr::from(([0, 0, 0, 0], 0))),
    )
    .await
    .expect_err("a wildcard bind is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);

    let v6 = start(
        &ca,
        WssOptions::new().bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))),
    )
    .await;
    assert_eq!(v6.url("x"), format!("wss://[::1]:{}/x", v6.port()));
    let tcp = within("connect over IPv6", TcpStream::connect(v6.addr()))
        .await
        .expect("connect over IPv6");
    let mut stream = within("tls", tls(tcp, ca.client_config(), "::1"))
        .await
        .expect("the certificate covers ::1");
    send_raw(&mut stream, upgrade_request(&v6, "/v6", &[]).as_bytes()).await;
    let response = within("answer", read_response(&mut stream, false)).await;
    assert_eq!(response.status(), 101);

    let mut server = start(&ca, WssOptions::new()).await;
    let addr = server.addr();
    within("shutdown", server.shutdown()).await;
    let after = within("connect after shutdown", TcpStream::connect(addr)).await;
    assert!(after.is_err(), "port still accepting after shutdown");
}
