//! The fake exchanges over real loopback sockets, read by a raw TLS + WebSocket client and
//! checked against the shared fixtures (not against any parser of ours); their fault knobs
//! (`rest_faults`, `end_streams_with`); and the proxies' `cut_tunnels`, which drops a WebSocket
//! stream mid-way, `stall_tunnels`, which silences one without closing it, and their `Stall`
//! fault, which opens a tunnel that relays nothing.

mod common;

use std::net::{Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use common::{exchange, read_response, tls, within};
use feed_sim::exchange::RestFault;
use feed_sim::{
    CloseFrame, ConnectProxy, ExchangeKind, FakeExchange, FakeExchangeOptions, ProxyOptions,
    SentTrade, SocksOptions, SocksProxy, TestCa, WsMessage, WssOptions, WssServer,
};
use rstest::rstest;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

type Client = TlsStream<TcpStream>;

// ---------------------------------------------------------------------------------------------
// Fixtures and a minimal client

fn fixture_path(kind: ExchangeKind, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/exchanges")
        .join(kind.as_str())
        .join(file)
}

fn fixture_bytes(kind: ExchangeKind, file: &str) -> Vec<u8> {
    std::fs::read(fixture_path(kind, file)).expect("fixture file")
}

/// The fixture's WebSocket messages as raw lines.
fn fixture_lines(kind: ExchangeKind) -> Vec<String> {
    String::from_utf8(fixture_bytes(kind, "ws-messages.jsonl"))
        .expect("UTF-8 fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

async fn start(kind: ExchangeKind, options: FakeExchangeOptions) -> (TestCa, FakeExchange) {
    let ca = TestCa::new();
    let fake = FakeExchange::start(&ca, kind, options)
        .await
        .expect("fake exchange starts");
    (ca, fake)
}

async fn send_raw<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    within("write", stream.write_all(bytes))
        .await
        .expect("write");
    within("flush", stream.flush()).await.expect("flush");
}

/// TLS for "localhost" over `tcp`, then the opening handshake for `target`; asserts the 101.
async fn upgrade_over<S: AsyncRead + AsyncWrite + Unpin>(
    tcp: S,
    ca: &TestCa,
    target: &str,
) -> TlsStream<S> {
    let mut stream = within("tls", tls(tcp, ca.client_config(), "localhost"))
        .await
        .expect("TLS handshake with the test CA");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    send_raw(&mut stream, request.as_bytes()).await;
    let response = within("upgrade answer", read_response(&mut stream, false)).await;
    assert_eq!(response.status(), 101, "{response:?}");
    stream
}

/// Connects to the fake's WebSocket port; returns the stream and its local address.
async fn ws_connect(fake: &FakeExchange, ca: &TestCa, target: &str) -> (Client, SocketAddr) {
    let tcp = within("connect", TcpStream::connect(fake.ws_addr()))
        .await
        .expect("connect");
    let local = tcp.local_addr().expect("local addr");
    (upgrade_over(tcp, ca, target).await, local)
}

async fn send_frame<S: AsyncWrite + Unpin>(stream: &mut S, opcode: u8, payload: &[u8]) {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    send_raw(stream, &out).await;
}

async fn send_text<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) {
    send_frame(stream, TEXT, text.as_bytes()).await;
}

/// Reads one unfragmented, unmasked server frame: opcode and payload.
async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> (u8, Vec<u8>) {
    within("read frame", async {
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.expect("frame header");
        assert_eq!(head[0] & 0x80, 0x80, "the fakes send unfragmented frames");
        assert_eq!(head[1] & 0x80, 0, "server frames are unmasked");
        let len = match head[1] & 0x7F {
            126 => u64::from(stream.read_u16().await.expect("16-bit length")),
            127 => stream.read_u64().await.expect("64-bit length"),
            len => u64::from(len),
        };
        let mut payload = vec![0u8; usize::try_from(len).expect("length fits")];
        stream.read_exact(&mut payload).await.expect("payload");
        (head[0] & 0x0F, payload)
    })
    .await
}

/// Reads one text frame as JSON, keeping the raw text for key-order checks.
async fn read_json<S: AsyncRead + Unpin>(stream: &mut S) -> (String, Value) {
    let (opcode, payload) = read_frame(stream).await;
    let text = String::from_utf8(payload).expect("UTF-8 text");
    assert_eq!(
        opcode, TEXT,
        "expected a text frame, got {opcode:#x}: {text}"
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (text, value)
}

/// Sends a ping and expects its pong as the very next frame: proof that nothing else was sent.
async fn expect_silence<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, what: &str) {
    send_frame(stream, PING, b"probe").await;
    let (opcode, payload) = read_frame(stream).await;
    assert_eq!(
        (opcode, payload.as_slice()),
        (PONG, &b"probe"[..]),
        "{what}: something came before the pong: {:?}",
        String::from_utf8_lossy(&payload)
    );
}

async fn close(mut stream: Client) {
    send_frame(&mut stream, CLOSE, &1000u16.to_be_bytes()).await;
    let (opcode, _) = read_frame(&mut stream).await;
    assert_eq!(opcode, CLOSE);
}

// ---------------------------------------------------------------------------------------------
// Reading trades off the wire, independently of the fakes' code

/// The object keys of a JSON text in the order they appear (every `"name":` outside strings).
fn keys_in_order(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut end = start + 1;
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                end = i;
                break;
            }
        }
        if matches!(chars.peek(), Some((_, ':'))) {
            keys.push(text[start + 1..end].to_owned());
        }
    }
    keys
}

/// The JSON type of every value, by key path: what two messages must share to look alike.
fn shape(value: &Value) -> Value {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer".into(),
        Value::Number(_) => "float".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let mut shapes: Vec<Value> = items.iter().map(shape).collect();
            shapes.dedup();
            assert!(shapes.len() <= 1, "mixed array {value}");
            Value::Array(shapes)
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Days since 1970-01-01 of a Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// `2025-08-07T21:17:57.998101Z` in Unix nanoseconds; panics on any other shape.
fn rfc3339_micros(text: &str) -> i64 {
    let b = text.as_bytes();
    assert!(
        b.len() == 27 && b[10] == b'T' && b[19] == b'.' && b[26] == b'Z',
        "not RFC 3339 with µs and Z: {text}"
    );
    let n = |range: std::ops::Range<usize>| -> i64 { text[range].parse().expect(text) };
    let days = days_from_civil(n(0..4), n(5..7), n(8..10));
    let secs = days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs * 1_000_000_000 + n(20..26) * 1000
}

fn text_of(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
        .to_owned()
}

fn int_of(value: &Value, key: &str) -> i64 {
    value[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is not an integer in {value}"))
}

/// A trade as the test reads it from the wire.
fn wire_trade(kind: ExchangeKind, trade: &Value, connection: usize) -> SentTrade {
    let (symbol, id, price, amount, sells, nanos) = match kind {
        ExchangeKind::Binance => (
            text_of(trade, "s"),
            int_of(trade, "a").to_string(),
            text_of(trade, "p"),
            text_of(trade, "q"),
            trade["m"].as_bool().expect("m is a bool"),
            int_of(trade, "T") * 1_000_000,
        ),
        ExchangeKind::Coinbase => (
            text_of(trade, "product_id"),
            text_of(trade, "trade_id"),
            text_of(trade, "price"),
            text_of(trade, "size"),
            match text_of(trade, "side").as_str() {
                "SELL" => true,
                "BUY" => false,
                other => panic!("side {other}"),
            },
            rfc3339_micros(&text_of(trade, "time")),
        ),
        ExchangeKind::Backpack => (
            text_of(trade, "s"),
            int_of(trade, "t").to_string(),
            text_of(trade, "p"),
            text_of(trade, "q"),
            trade["m"].as_bool().expect("m is a bool"),
            int_of(trade, "T") * 1000,
        ),
    };
    SentTrade {
        connection,
        exchange_symbol: symbol,
        id,
        price,
        amount,
        taker_side: if sells { "sell" } else { "buy" },
        timestamp_unix_nanos: nanos,
    }
}

/// How a test subscribes to two symbols on each exchange.
fn subscription(kind: ExchangeKind) -> (&'static str, Option<&'static str>, [&'static str; 2]) {
    match kind {
        ExchangeKind::Binance => (
            "/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade",
            None,
            ["BTCUSDT", "ETHUSDT"],
        ),
        ExchangeKind::Coinbase => (
            "/",
            Some(
                r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"market_trades"}"#,
            ),
            ["BTC-USD", "ETH-USD"],
        ),
        ExchangeKind::Backpack => (
            "/",
            Some(r#"{"method":"SUBSCRIBE","params":["trade.BTC_USDC","trade.ETH_USDC"]}"#),
            ["BTC_USDC", "ETH_USDC"],
        ),
    }
}

/// The fixture line whose message looks like `value`: the first trade line, or for Coinbase the
/// first line of the same channel and event type.
fn fixture_twin(kind: ExchangeKind, value: &Value) -> String {
    let lines = fixture_lines(kind);
    if kind != ExchangeKind::Coinbase {
        return lines[0].clone();
    }
    lines
        .into_iter()
        .find(|line| {
            let twin: Value = serde_json::from_str(line).expect("fixture JSON");
            twin["channel"] == value["channel"]
                && twin["events"][0]["type"] == value["events"][0]["type"]
        })
        .unwrap_or_else(|| panic!("no fixture line like {value}"))
}

/// The keys of a message in order, up to the end of its first Coinbase trade (later trades
/// repeat those keys, and a message may carry any number of them).
fn message_keys(text: &str) -> Vec<String> {
    let mut keys = keys_in_order(text);
    let trade_starts: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "trade_id")
        .map(|(i, _)| i)
        .collect();
    if let Some(&second) = trade_starts.get(1) {
        keys.truncate(second);
    }
    keys
}

/// Asserts `text` has the key order and value types of its fixture twin.
fn assert_like_fixture(kind: ExchangeKind, text: &str, value: &Value) {
    let twin = fixture_twin(kind, value);
    let twin_value: Value = serde_json::from_str(&twin).expect("fixture JSON");
    assert_eq!(
        message_keys(text),
        message_keys(&twin),
        "key order of {text}"
    );
    assert_eq!(shape(value), shape(&twin_value), "types of {text}");
}

/// Reads trade messages until `count` trades arrived; returns them in wire order, checking each
/// message against the fixture. Coinbase: also the `sequence_num` run from `*sequence`.
async fn read_trades(
    kind: ExchangeKind,
    stream: &mut Client,
    count: usize,
    connection: usize,
    sequence: &mut i64,
) -> Vec<SentTrade> {
    let mut trades = Vec::new();
    while trades.len() < count {
        let (text, value) = read_json(stream).await;
        assert_like_fixture(kind, &text, &value);
        match kind {
            ExchangeKind::Binance | ExchangeKind::Backpack => {
                let stream_name = text_of(&value, "stream");
                let trade = wire_trade(kind, &value["data"], connection);
                let expected = match kind {
                    ExchangeKind::Binance => {
                        format!("{}@aggTrade", trade.exchange_symbol.to_lowercase())
                    }
                    _ => format!("trade.{}", trade.exchange_symbol),
                };
                assert_eq!(stream_name, expected);
                trades.push(trade);
            }
            ExchangeKind::Coinbase => {
                assert_eq!(value["channel"], "market_trades", "{text}");
                assert_eq!(value["events"][0]["type"], "update", "{text}");
                assert_eq!(int_of(&value, "sequence_num"), *sequence, "{text}");
                *sequence += 1;
                let batch: Vec<SentTrade> = value["events"][0]["trades"]
                    .as_array()
                    .expect("trades")
                    .iter()
                    .map(|t| wire_trade(kind, t, connection))
                    .collect();
                assert!(matches!(batch.len(), 1 | 2), "{text}");
                trades.extend(batch);
            }
        }
    }
    assert_eq!(trades.len(), count, "no more trades than asked for");
    trades
}

/// Trade ids in trade order: Coinbase lists each message's trades newest first.
fn chronological_ids(kind: ExchangeKind, trades: &[SentTrade]) -> Vec<i64> {
    let ids = trades
        .iter()
        .map(|t| t.id.parse::<i64>().expect("numeric id"));
    if kind != ExchangeKind::Coinbase {
        return ids.collect();
    }
    // Messages carry 1, 2, 1, 2, ... trades.
    let ids: Vec<i64> = ids.collect();
    let mut out = Vec::new();
    let mut rest = ids.as_slice();
    let mut message = 0;
    while !rest.is_empty() {
        let size = rest.len().min(if message % 2 == 0 { 1 } else { 2 });
        out.extend(rest[..size].iter().rev());
        rest = &rest[size..];
        message += 1;
    }
    out
}

fn assert_consecutive(ids: &[i64], what: &str) {
    for pair in ids.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "{what}: ids {ids:?}");
    }
}

/// Coinbase's snapshot and ack after a market_trades subscribe: returns the snapshot's trade ids.
async fn read_coinbase_preamble(stream: &mut Client, sequence: &mut i64) -> Vec<i64> {
    let (text, snapshot) = read_json(stream).await;
    assert_like_fixture(ExchangeKind::Coinbase, &text, &snapshot);
    assert_eq!(snapshot["events"][0]["type"], "snapshot", "{text}");
    assert_eq!(int_of(&snapshot, "sequence_num"), *sequence);
    let ids = snapshot["events"][0]["trades"]
        .as_array()
        .expect("trades")
        .iter()
        .map(|t| text_of(t, "trade_id").parse::<i64>().expect("numeric id"))
        .collect();
    let (text, ack) = read_json(stream).await;
    assert_like_fixture(ExchangeKind::Coinbase, &text, &ack);
    assert_eq!(ack["channel"], "subscriptions", "{text}");
    assert_eq!(int_of(&ack, "sequence_num"), *sequence + 1);
    assert_eq!(
        ack["events"][0]["subscriptions"]["market_trades"],
        serde_json::json!(["BTC-USD", "ETH-USD"])
    );
    *sequence += 2;
    ids
}

// ---------------------------------------------------------------------------------------------
// REST

#[rstest]
#[case::binance(ExchangeKind::Binance, "/api/v3/exchangeInfo")]
#[case::coinbase(ExchangeKind::Coinbase, "/api/v3/brokerage/products")]
#[case::coinbase_public(ExchangeKind::Coinbase, "/api/v3/brokerage/market/products")]
#[case::backpack(ExchangeKind::Backpack, "/api/v1/markets")]
#[tokio::test]
async fn rest_serves_the_fixture_bytes_and_logs_each_request_with_its_peer(
    #[case] kind: ExchangeKind,
    #[case] path: &str,
) {
    let (ca, fake) = start(kind, FakeExchangeOptions::new()).await;
    assert_eq!(fake.kind(), kind);
    assert_eq!(
        fake.rest_base_url(),
        format!("https://localhost:{}", fake.rest_addr().port())
    );
    let tcp = within("connect", TcpStream::connect(fake.rest_addr()))
        .await
        .expect("connect");
    let local = tcp.local_addr().expect("local addr");
    let mut stream = within("tls", tls(tcp, ca.client_config(), "localhost"))
        .await
        .expect("TLS");

    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let response = within("GET", exchange(&mut stream, &request)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert!(
        response.body == fixture_bytes(kind, "rest-response.json"),
        "{kind}: body differs from the fixture"
    );
    // Keep-alive: an unknown path on the same connection is a 404.
    let request = "GET /api/v3/nope?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = within("GET unknown", exchange(&mut stream, request)).await;
    assert_eq!(response.status(), 404);

    let requests = fake.rest_requests();
    let targets: Vec<&str> = requests.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, [path, "/api/v3/nope?x=1"]);
    for request in &requests {
        assert_eq!(request.method, "GET");
        assert_eq!(request.peer, local);
        assert_eq!(request.connection, 1);
    }
    assert!(fake.ws_connections().is_empty());
}

// ---------------------------------------------------------------------------------------------
// WebSocket trades

#[rstest]
#[case::binance(ExchangeKind::Binance, 7, None)]
#[case::coinbase(ExchangeKind::Coinbase, 7, None)]
#[case::backpack(ExchangeKind::Backpack, 7, None)]
#[case::binance_paced(ExchangeKind::Binance, 4, Some(Duration::from_millis(3)))]
#[case::coinbase_paced(ExchangeKind::Coinbase, 4, Some(Duration::from_millis(3)))]
#[case::backpack_paced(ExchangeKind::Backpack, 4, Some(Duration::from_millis(3)))]
#[tokio::test]
async fn subscribed_connections_get_numbered_trades_in_the_fixture_format(
    #[case] kind: ExchangeKind,
    #[case] count: usize,
    #[case] interval: Option<Duration>,
) {
    let options = FakeExchangeOptions::new()
        .trades_per_connection(count)
        .interval(interval);
    let (ca, fake) = start(kind, options).await;
    assert_eq!(
        fake.ws_base_url(),
        format!("wss://localhost:{}", fake.ws_addr().port())
    );
    let (target, subscribe, symbols) = subscription(kind);
    let mut last_id = None;
    for connection in 0..2 {
        let (mut stream, local) = ws_connect(&fake, &ca, target).await;
        if let Some(subscribe) = subscribe {
            expect_silence(&mut stream, "before the subscribe").await;
            send_text(&mut stream, subscribe).await;
        }
        let mut sequence = 0;
        let mut snapshot_ids = Vec::new();
        if kind == ExchangeKind::Coinbase {
            snapshot_ids = read_coinbase_preamble(&mut stream, &mut sequence).await;
        }
        let trades = read_trades(kind, &mut stream, count, connection, &mut sequence).await;
        expect_silence(&mut stream, "after the last trade").await;

        let ids = chronological_ids(kind, &trades);
        assert_consecutive(&ids, &format!("{kind} connection {connection}"));
        if let Some(last) = last_id {
            assert_eq!(
                ids[0],
                last + 1,
                "{kind}: the second connection continues the ids"
            );
        }
        last_id = ids.last().copied();
        if kind == ExchangeKind::Coinbase {
            // Recent trades: two per product, newest first, all older than the updates.
            assert_eq!(snapshot_ids.len(), 4);
            assert!(
                snapshot_ids.windows(2).all(|w| w[0] > w[1]),
                "{snapshot_ids:?}"
            );
            assert!(snapshot_ids[0] < ids[0], "{snapshot_ids:?} {ids:?}");
        }
        let wire_symbols: Vec<&str> = trades.iter().map(|t| t.exchange_symbol.as_str()).collect();
        for symbol in symbols {
            assert!(
                wire_symbols.contains(&symbol),
                "{kind}: {symbol} in rotation"
            );
        }
        assert!(
            trades.iter().any(|t| t.taker_side == "sell")
                && trades.iter().any(|t| t.taker_side == "buy"),
            "{kind}: both sides"
        );
        let sent: Vec<SentTrade> = fake
            .trades_sent()
            .into_iter()
            .filter(|t| t.connection == connection)
            .collect();
        assert_eq!(
            trades, sent,
            "{kind}: what arrived is what trades_sent says"
        );

        let record = &fake.ws_connections()[connection];
        assert_eq!(record.peer, Some(local));
        assert_eq!(record.target.as_deref(), Some(target));
        let expected: Vec<WsMessage> = subscribe
            .iter()
            .map(|s| WsMessage::Text((*s).to_owned()))
            .collect();
        assert_eq!(record.messages, expected);
        close(stream).await;
    }
    assert_eq!(
        fake.trades_sent_when(2 * count, common::DEADLINE)
            .await
            .len(),
        2 * count
    );
}

#[rstest]
#[case::no_query("/stream")]
#[case::empty_streams("/stream?streams=")]
#[case::unknown_symbol("/stream?streams=btcusdt@aggTrade/dogeusdt@aggTrade")]
#[case::not_trading("/stream?streams=bccusdt@aggTrade")]
#[case::upper_case("/stream?streams=BTCUSDT@aggTrade")]
#[case::other_stream_kind("/stream?streams=btcusdt@trade")]
#[case::micro_seconds("/stream?streams=btcusdt@aggTrade&timeUnit=MICROSECOND")]
#[case::raw_stream_path("/ws/btcusdt@aggTrade")]
#[tokio::test]
async fn binance_closes_a_url_with_an_unknown_stream_with_1008(#[case] target: &str) {
    let (ca, fake) = start(ExchangeKind::Binance, FakeExchangeOptions::new()).await;
    let (mut stream, _) = ws_connect(&fake, &ca, target).await;
    let (opcode, payload) = read_frame(&mut stream).await;
    assert_eq!(
        opcode,
        CLOSE,
        "{target}: {}",
        String::from_utf8_lossy(&payload)
    );
    assert_eq!(payload[..2], 1008u16.to_be_bytes(), "{target}");
    let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
    assert!(
        reason.starts_with("feed-sim binance: "),
        "{target}: {reason}"
    );
    send_frame(&mut stream, CLOSE, &1000u16.to_be_bytes()).await;
    let rest = within("close", common::read_until_close(&mut stream, 1024)).await;
    assert!(rest.is_empty(), "{target}: more after the close: {rest:?}");
    assert!(fake.trades_sent().is_empty());
    let record = &fake.ws_connections()[0];
    assert_eq!(record.close_sent.as_ref().and_then(|c| c.code), Some(1008));
}

#[tokio::test]
async fn binance_answers_live_requests_and_adds_streams_to_the_rotation() {
    let options = FakeExchangeOptions::new().trades_per_connection(0);
    let (ca, fake) = start(ExchangeKind::Binance, options).await;
    let (mut stream, _) = ws_connect(&fake, &ca, "/stream?streams=btcusdt@aggTrade").await;
    let exchanges = [
        (
            r#"{"method":"SUBSCRIBE","params":["ethusdt@aggTrade"],"id":1}"#,
            r#"{"result":null,"id":1}"#,
        ),
        (
            r#"{"method":"LIST_SUBSCRIPTIONS","id":"two"}"#,
            r#"{"result":["btcusdt@aggTrade","ethusdt@aggTrade"],"id":"two"}"#,
        ),
        (
            r#"{"method":"UNSUBSCRIBE","params":["btcusdt@aggTrade"],"id":3}"#,
            r#"{"result":null,"id":3}"#,
        ),
        (
            r#"{"method":"LIST_SUBSCRIPTIONS","id":4}"#,
            r#"{"result":["ethusdt@aggTrade"],"id":4}"#,
        ),
        (
            r#"{"method":"SUBSCRIBE","params":["BTCUSDT@aggTrade"],"id":5}"#,
            r#"{"error":{"code":2,"msg":"Invalid request: unknown stream \"BTCUSDT@aggTrade\""},"id":5}"#,
        ),
        (
            r#"{"method":"SUBSCRIBE","params":"btcusdt@aggTrade","id":6}"#,
            r#"{"error":{"code":2,"msg":"Invalid request: params must be stream names"},"id":6}"#,
        ),
        (
            r#"{"method":"PING","id":7}"#,
            r#"{"error":{"code":2,"msg":"Invalid request: unknown or missing method"},"id":7}"#,
        ),
        (
            "not json",
            r#"{"error":{"code":3,"msg":"Invalid JSON: feed-sim could not parse the request"},"id":null}"#,
        ),
    ];
    for (request, reply) in exchanges {
        send_text(&mut stream, request).await;
        let (text, _) = read_json(&mut stream).await;
        assert_eq!(text, reply, "reply to {request}");
    }
    expect_silence(&mut stream, "after the replies").await;
    close(stream).await;
    assert!(fake.trades_sent().is_empty());
}

#[tokio::test]
async fn coinbase_interleaves_heartbeats_and_counts_every_message() {
    let options = FakeExchangeOptions::new().trades_per_connection(9);
    let (ca, fake) = start(ExchangeKind::Coinbase, options).await;
    let (mut stream, _) = ws_connect(&fake, &ca, "/").await;
    send_text(
        &mut stream,
        r#"{"type":"subscribe","product_ids":["BTC-USD","ETH-USD"],"channel":"heartbeats"}"#,
    )
    .await;
    // An alias is served as its product.
    send_text(
        &mut stream,
        r#"{"type":"subscribe","product_ids":["BTC-USDC","ETH-USD"],"channel":"market_trades","jwt":"ignored"}"#,
    )
    .await;

    let mut sequence = 0;
    let mut channels = Vec::new();
    let mut trades = 0;
    let mut counters = Vec::new();
    while trades < 9 {
        let (text, value) = read_json(&mut stream).await;
        assert_eq!(int_of(&value, "sequence_num"), sequence, "{text}");
        sequence += 1;
        let channel = text_of(&value, "channel");
        let event = &value["events"][0];
        match channel.as_str() {
            "heartbeats" => {
                assert_like_fixture(ExchangeKind::Coinbase, &text, &value);
                counters.push(int_of(event, "heartbeat_counter"));
                let current = text_of(event, "current_time");
                assert!(current.contains(" +0000 UTC m=+"), "{current}");
            }
            "subscriptions" => {
                // The channel lists differ from the fixture's; the envelope does not.
                let fixture_keys = message_keys(&fixture_lines(ExchangeKind::Coinbase)[1]);
                assert_eq!(keys_in_order(&text)[..6], fixture_keys[..6], "{text}");
                channels.push(event["subscriptions"].clone());
            }
            "market_trades" => {
                assert_like_fixture(ExchangeKind::Coinbase, &text, &value);
                if event["type"] == "update" {
                    trades += event["trades"].as_array().expect("trades").len();
                    for trade in event["trades"].as_array().expect("trades") {
                        assert!(
                            matches!(trade["product_id"].as_str(), Some("BTC-USD" | "ETH-USD")),
                            "{trade}"
                        );
                    }
                }
            }
            other => panic!("unexpected channel {other}: {text}"),
        }
        channels.push(Value::String(channel));
    }
    assert_eq!(trades, 9);
    // 9 trades take 6 updates; a heartbeat goes before the third and the sixth.
    assert_eq!(counters.len(), 2, "{channels:?}");
    assert_eq!(counters[1], counters[0] + 1);
    let order: Vec<&str> = channels.iter().filter_map(Value::as_str).collect();
    assert_eq!(
        order,
        [
            "subscriptions",
            "market_trades",
            "subscriptions",
            "market_trades",
            "market_trades",
            "heartbeats",
            "market_trades",
            "market_trades",
            "market_trades",
            "heartbeats",
            "market_trades",
        ]
    );
    assert_eq!(
        channels[0],
        serde_json::json!({"heartbeats": ["BTC-USD", "ETH-USD"]})
    );
    let both = channels
        .iter()
        .filter(|c| c.is_object())
        .nth(1)
        .expect("second ack");
    assert_eq!(
        *both,
        serde_json::json!({"heartbeats": ["BTC-USD", "ETH-USD"], "market_trades": ["BTC-USDC", "ETH-USD"]})
    );
    expect_silence(&mut stream, "after the last trade").await;
    close(stream).await;
}

#[rstest]
#[case::coinbase_not_json(ExchangeKind::Coinbase, "{", "type")]
#[case::coinbase_unknown_product(
    ExchangeKind::Coinbase,
    r#"{"type":"subscribe","product_ids":["BTC_USD"],"channel":"market_trades"}"#,
    "type"
)]
#[case::coinbase_no_products(
    ExchangeKind::Coinbase,
    r#"{"type":"subscribe","channel":"market_trades"}"#,
    "type"
)]
#[case::coinbase_cryptofeed_heartbeat_name(
    ExchangeKind::Coinbase,
    r#"{"type":"subscribe","product_ids":["BTC-USD"],"channel":"heartbeat"}"#,
    "type"
)]
#[case::coinbase_unsubscribe(
    ExchangeKind::Coinbase,
    r#"{"type":"unsubscribe","product_ids":["BTC-USD"],"channel":"market_trades"}"#,
    "type"
)]
#[case::backpack_not_json(ExchangeKind::Backpack, "[", "error")]
#[case::backpack_unknown_stream(
    ExchangeKind::Backpack,
    r#"{"method":"SUBSCRIBE","params":["trade.BTC-USDC"],"id":9}"#,
    "error"
)]
#[case::backpack_depth_stream(
    ExchangeKind::Backpack,
    r#"{"method":"SUBSCRIBE","params":["depth.BTC_USDC"]}"#,
    "error"
)]
#[case::backpack_lower_case_method(
    ExchangeKind::Backpack,
    r#"{"method":"subscribe","params":["trade.BTC_USDC"]}"#,
    "error"
)]
#[tokio::test]
async fn a_bad_subscribe_gets_one_error_reply_and_no_trades(
    #[case] kind: ExchangeKind,
    #[case] request: &str,
    #[case] error_key: &str,
) {
    let (ca, fake) = start(kind, FakeExchangeOptions::new()).await;
    let (mut stream, _) = ws_connect(&fake, &ca, "/").await;
    send_text(&mut stream, request).await;
    let (text, value) = read_json(&mut stream).await;
    match kind {
        ExchangeKind::Coinbase => {
            assert_eq!(value[error_key], "error", "{text}");
            assert!(value["message"].is_string(), "{text}");
        }
        _ => {
            assert!(value[error_key]["message"].is_string(), "{text}");
            assert!(value.get("id").is_some(), "{text}");
        }
    }
    expect_silence(&mut stream, "after the error").await;
    close(stream).await;
    assert!(fake.trades_sent().is_empty());
}

#[tokio::test]
async fn backpack_unsubscribe_takes_a_stream_out_of_the_rotation() {
    let options = FakeExchangeOptions::new()
        .trades_per_connection(6)
        .interval(Some(Duration::from_millis(20)));
    let (ca, fake) = start(ExchangeKind::Backpack, options).await;
    let (mut stream, _) = ws_connect(&fake, &ca, "/").await;
    send_text(
        &mut stream,
        r#"{"method":"SUBSCRIBE","params":["trade.BTC_USDC","trade.ETH_USDC"]}"#,
    )
    .await;
    let mut sequence = 0;
    let first = read_trades(ExchangeKind::Backpack, &mut stream, 1, 0, &mut sequence).await;
    assert_eq!(first[0].exchange_symbol, "BTC_USDC");
    send_text(
        &mut stream,
        r#"{"method":"UNSUBSCRIBE","params":["trade.ETH_USDC"]}"#,
    )
    .await;
    // At most one ETH trade can have been on its way before the UNSUBSCRIBE arrived.
    let rest = read_trades(ExchangeKind::Backpack, &mut stream, 5, 0, &mut sequence).await;
    let eth = rest
        .iter()
        .filter(|t| t.exchange_symbol == "ETH_USDC")
        .count();
    assert!(eth <= 1, "{rest:?}");
    assert!(
        rest[rest.len() - 3..]
            .iter()
            .all(|t| t.exchange_symbol == "BTC_USDC")
    );
    close(stream).await;
}

#[tokio::test]
async fn binds_loopback_only_and_serves_on_ipv6() {
    let ca = TestCa::new();
    let outside = FakeExchangeOptions::new().bind("192.0.2.1:0".parse().expect("addr"));
    let err = FakeExchange::start(&ca, ExchangeKind::Binance, outside)
        .await
        .expect_err("a non-loopback bind is refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let v6 = FakeExchangeOptions::new().bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Backpack, v6)
        .await
        .expect("starts on ::1");
    assert_eq!(
        fake.rest_base_url(),
        format!("https://[::1]:{}", fake.rest_addr().port())
    );
    assert_eq!(
        fake.ws_base_url(),
        format!("wss://[::1]:{}", fake.ws_addr().port())
    );
    let tcp = within("connect", TcpStream::connect(fake.rest_addr()))
        .await
        .expect("connect over IPv6");
    let mut stream = within("tls", tls(tcp, ca.client_config(), "::1"))
        .await
        .expect("the certificate covers ::1");
    let response = within(
        "GET",
        exchange(
            &mut stream,
            "GET /api/v1/markets HTTP/1.1\r\nHost: [::1]\r\nConnection: close\r\n\r\n",
        ),
    )
    .await;
    assert_eq!(response.status(), 200);

    let (rest, ws) = (fake.rest_addr(), fake.ws_addr());
    within("shutdown", fake.shutdown()).await;
    for addr in [rest, ws] {
        let after = within("connect after shutdown", TcpStream::connect(addr)).await;
        assert!(after.is_err(), "{addr} still accepting after shutdown");
    }
    assert_eq!(fake.rest_requests().len(), 1, "records outlive shutdown");
}

// ---------------------------------------------------------------------------------------------
// Cutting tunnels

/// A proxy of either kind, started fresh.
enum Proxy {
    Connect(ConnectProxy),
    Socks(SocksProxy),
}

impl Proxy {
    async fn start(kind: &str) -> Self {
        Self::start_stalling(kind, false).await
    }

    /// With `stall`, the proxy's `Stall` fault: every tunnel opens, then relays nothing.
    async fn start_stalling(kind: &str, stall: bool) -> Self {
        match kind {
            "connect" => {
                let fault = if stall {
                    feed_sim::connect_proxy::Fault::Stall
                } else {
                    feed_sim::connect_proxy::Fault::None
                };
                Self::Connect(
                    ConnectProxy::start(ProxyOptions::new().fault(fault))
                        .await
                        .expect("proxy starts"),
                )
            }
            _ => {
                let fault = if stall {
                    feed_sim::socks::Fault::Stall
                } else {
                    feed_sim::socks::Fault::None
                };
                Self::Socks(
                    SocksProxy::start(SocksOptions::socks5().fault(fault))
                        .await
                        .expect("proxy starts"),
                )
            }
        }
    }

    fn stall_tunnels(&self) -> usize {
        match self {
            Self::Connect(proxy) => proxy.stall_tunnels(),
            Self::Socks(proxy) => proxy.stall_tunnels(),
        }
    }

    /// `stalled` and `closed` of every connection so far, without waiting.
    fn stall_flags(&self) -> Vec<(bool, bool)> {
        match self {
            Self::Connect(proxy) => proxy
                .connections()
                .iter()
                .map(|r| (r.stalled, r.closed))
                .collect(),
            Self::Socks(proxy) => proxy
                .connections()
                .iter()
                .map(|r| (r.stalled, r.closed))
                .collect(),
        }
    }

    /// `stalled` and `closed` of every connection, once `count` are closed.
    async fn stall_flags_when_closed(&self, count: usize) -> Vec<(bool, bool)> {
        match self {
            Self::Connect(proxy) => {
                proxy.connections_when_closed(count, common::DEADLINE).await;
            }
            Self::Socks(proxy) => {
                proxy.connections_when_closed(count, common::DEADLINE).await;
            }
        }
        self.stall_flags()
    }

    /// A tunnel to `target` through the proxy, handshake done.
    async fn tunnel(&self, target: SocketAddr) -> TcpStream {
        match self {
            Self::Connect(proxy) => {
                let mut tcp = within("connect", TcpStream::connect(proxy.addr()))
                    .await
                    .expect("connect to the proxy");
                let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
                send_raw(&mut tcp, request.as_bytes()).await;
                let response = within("CONNECT answer", read_response(&mut tcp, false)).await;
                assert_eq!(response.status(), 200);
                tcp
            }
            Self::Socks(proxy) => {
                let mut tcp = within("connect", TcpStream::connect(proxy.addr()))
                    .await
                    .expect("connect to the proxy");
                send_raw(&mut tcp, &[5, 1, 0]).await;
                let mut choice = [0u8; 2];
                within("method", tcp.read_exact(&mut choice))
                    .await
                    .expect("method choice");
                assert_eq!(choice, [5, 0]);
                let SocketAddr::V4(v4) = target else {
                    panic!("an IPv4 target")
                };
                let mut request = vec![5, 1, 0, 1];
                request.extend_from_slice(&v4.ip().octets());
                request.extend_from_slice(&v4.port().to_be_bytes());
                send_raw(&mut tcp, &request).await;
                let mut reply = [0u8; 10];
                within("reply", tcp.read_exact(&mut reply))
                    .await
                    .expect("connect reply");
                assert_eq!(reply[..2], [5, 0]);
                tcp
            }
        }
    }

    fn cut_tunnels(&self) -> usize {
        match self {
            Self::Connect(proxy) => proxy.cut_tunnels(),
            Self::Socks(proxy) => proxy.cut_tunnels(),
        }
    }

    /// `cut` and `closed` of every connection, once `count` are closed.
    async fn cut_flags(&self, count: usize) -> Vec<(bool, bool)> {
        match self {
            Self::Connect(proxy) => proxy
                .connections_when_closed(count, common::DEADLINE)
                .await
                .iter()
                .map(|r| (r.cut, r.closed))
                .collect(),
            Self::Socks(proxy) => proxy
                .connections_when_closed(count, common::DEADLINE)
                .await
                .iter()
                .map(|r| (r.cut, r.closed))
                .collect(),
        }
    }
}

/// Sends `text` and expects the echo.
async fn echo<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, text: &str) {
    send_text(stream, text).await;
    let (opcode, payload) = read_frame(stream).await;
    assert_eq!((opcode, payload.as_slice()), (TEXT, text.as_bytes()));
}

#[rstest]
#[case::connect("connect")]
#[case::socks5("socks5")]
#[tokio::test]
async fn cut_tunnels_drops_a_live_websocket_and_later_tunnels_still_work(#[case] kind: &str) {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new())
        .await
        .expect("server starts");
    let proxy = Proxy::start(kind).await;
    assert_eq!(proxy.cut_tunnels(), 0, "nothing to cut yet");

    let tunnel = proxy.tunnel(server.addr()).await;
    let mut stream = upgrade_over(tunnel, &ca, "/live").await;
    echo(&mut stream, "before the cut").await;
    assert_eq!(proxy.cut_tunnels(), 1);
    let mut buf = [0u8; 64];
    let read = within("read after the cut", stream.read(&mut buf)).await;
    assert!(
        matches!(&read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{kind}: the client sees the stream end: {read:?}"
    );
    assert_eq!(proxy.cut_flags(1).await[0], (true, true));

    let tunnel = proxy.tunnel(server.addr()).await;
    let mut stream = upgrade_over(tunnel, &ca, "/after").await;
    echo(&mut stream, "after the cut").await;
    send_frame(&mut stream, CLOSE, &1000u16.to_be_bytes()).await;
    let (opcode, _) = read_frame(&mut stream).await;
    assert_eq!(opcode, CLOSE);
    drop(stream);
    assert_eq!(proxy.cut_flags(2).await, [(true, true), (false, true)]);
    assert_eq!(proxy.cut_tunnels(), 0, "a finished tunnel is not cut");

    let records = server.connections_when_closed(2, common::DEADLINE).await;
    let targets: Vec<Option<&str>> = records.iter().map(|r| r.target.as_deref()).collect();
    assert_eq!(targets, [Some("/live"), Some("/after")]);
}

/// How long a read must stay unanswered to count as silence: a functional bound, far above a
/// loopback round trip, far below the deadline.
const SILENCE: Duration = Duration::from_millis(300);

/// Asserts nothing arrives on `stream` within [`SILENCE`], and that it is not closed either.
async fn assert_silent<S: AsyncRead + Unpin>(stream: &mut S, what: &str) {
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(SILENCE, stream.read(&mut buf)).await;
    assert!(read.is_err(), "{what}: expected silence, got {read:?}");
}

#[rstest]
#[case::connect("connect")]
#[case::socks5("socks5")]
#[tokio::test]
async fn stall_tunnels_silences_a_live_websocket_without_closing_it(#[case] kind: &str) {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new())
        .await
        .expect("server starts");
    let proxy = Proxy::start(kind).await;
    assert_eq!(proxy.stall_tunnels(), 0, "nothing to stall yet");

    let tunnel = proxy.tunnel(server.addr()).await;
    let mut stream = upgrade_over(tunnel, &ca, "/live").await;
    echo(&mut stream, "before the stall").await;
    assert_eq!(proxy.stall_tunnels(), 1);
    // The echo server answers, but nothing comes back through the stalled tunnel, and the
    // connection stays open: a half-open path as the client sees it.
    send_text(&mut stream, "into the void").await;
    assert_silent(&mut stream, kind).await;
    assert_eq!(
        proxy.stall_flags(),
        [(true, false)],
        "{kind}: stalled, open"
    );
    assert!(
        server.connections().iter().all(|r| !r.closed),
        "{kind}: the target's side stays open too"
    );
    assert_eq!(
        proxy.cut_tunnels(),
        0,
        "{kind}: a stalled tunnel is not cut"
    );

    // The client giving up ends it: both sides close.
    drop(stream);
    assert_eq!(proxy.stall_flags_when_closed(1).await, [(true, true)]);
    assert!(
        server.connections_when_closed(1, common::DEADLINE).await[0].closed,
        "{kind}: the proxy closed its onward connection"
    );

    // Later tunnels relay as usual.
    let tunnel = proxy.tunnel(server.addr()).await;
    let mut stream = upgrade_over(tunnel, &ca, "/after").await;
    echo(&mut stream, "after the stall").await;
    assert_eq!(proxy.stall_flags(), [(true, true), (false, false)]);
}

#[rstest]
#[case::connect("connect")]
#[case::socks5("socks5")]
#[tokio::test]
async fn the_stall_fault_opens_tunnels_that_relay_nothing(#[case] kind: &str) {
    let ca = TestCa::new();
    let server = WssServer::start(&ca, WssOptions::new())
        .await
        .expect("server starts");
    let proxy = Proxy::start_stalling(kind, true).await;
    // The proxy handshake succeeds (the helper asserts the 200 / the success reply) ...
    let mut tunnel = proxy.tunnel(server.addr()).await;
    // ... and the proxy did connect onward, but the target never hears the ClientHello.
    send_raw(&mut tunnel, b"\x16\x03\x01 a ClientHello, or anything").await;
    assert_silent(&mut tunnel, kind).await;
    let records = server.connections();
    assert_eq!(records.len(), 1, "{kind}: the onward connection was made");
    assert_eq!(records[0].request_line, None, "{kind}: nothing reached it");
    assert_eq!(proxy.stall_flags(), [(true, false)]);
    drop(tunnel);
    assert_eq!(proxy.stall_flags_when_closed(1).await, [(true, true)]);
}

#[tokio::test]
async fn rest_faults_answer_in_turn_then_the_fixture_body() {
    let faults = vec![
        RestFault::Status {
            status: 429,
            retry_after: Some(0),
        },
        RestFault::Status {
            status: 503,
            retry_after: None,
        },
        RestFault::CloseMidBody,
        RestFault::StallMidBody,
    ];
    let (ca, fake) = start(
        ExchangeKind::Binance,
        FakeExchangeOptions::new().rest_faults(faults),
    )
    .await;
    let fixture = fixture_bytes(ExchangeKind::Binance, "rest-response.json");
    let get = "GET /api/v3/exchangeInfo HTTP/1.1\r\nHost: localhost\r\n\r\n";
    async fn connect(fake: &FakeExchange, ca: &TestCa) -> Client {
        let tcp = within("connect", TcpStream::connect(fake.rest_addr()))
            .await
            .expect("connect");
        within("tls", tls(tcp, ca.client_config(), "localhost"))
            .await
            .expect("TLS")
    }

    // A 429 with Retry-After, then a 503, on one kept-alive connection.
    let mut stream = connect(&fake, &ca).await;
    let response = within("429", exchange(&mut stream, get)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.header("Retry-After"), Some("0"));
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let response = within("503", exchange(&mut stream, get)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.header("Retry-After"), None);

    // The body announced in full, half sent, then the close.
    send_raw(&mut stream, get.as_bytes()).await;
    let head = within("truncated head", read_response(&mut stream, false)).await;
    assert_eq!(head.status(), 200);
    let announced: usize = head
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    assert_eq!(announced, fixture.len());
    let got = within(
        "truncated body",
        common::read_until_close(&mut stream, announced),
    )
    .await;
    assert_eq!(got, fixture[..fixture.len() / 2], "half the body, then EOF");

    // The same, but then silence with the connection open.
    let mut stream = connect(&fake, &ca).await;
    send_raw(&mut stream, get.as_bytes()).await;
    let head = within("stalled head", read_response(&mut stream, false)).await;
    assert_eq!(head.status(), 200);
    let mut half = vec![0u8; fixture.len() / 2];
    within("stalled body", stream.read_exact(&mut half))
        .await
        .expect("the first half");
    assert_eq!(half, fixture[..fixture.len() / 2]);
    assert_silent(&mut stream, "stalled body").await;
    drop(stream);

    // The script is used up: the fixture body again.
    let mut stream = connect(&fake, &ca).await;
    let response = within("after the script", exchange(&mut stream, get)).await;
    assert_eq!(response.status(), 200);
    assert!(response.body == fixture, "the fixture body");
    let connections: Vec<u64> = fake.rest_requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 1, 1, 2, 3], "every request is logged");
}

#[rstest]
#[case::binance(ExchangeKind::Binance)]
#[case::coinbase(ExchangeKind::Coinbase)]
#[case::backpack(ExchangeKind::Backpack)]
#[tokio::test]
async fn end_streams_with_closes_each_connection_after_its_trades(#[case] kind: ExchangeKind) {
    let (ca, fake) = start(
        kind,
        FakeExchangeOptions::new()
            .trades_per_connection(3)
            .end_streams_with(1011, "feed-sim: internal error"),
    )
    .await;
    let (target, subscribe, _) = subscription(kind);
    for connection in 0..2 {
        let (mut stream, _) = ws_connect(&fake, &ca, target).await;
        if let Some(subscribe) = subscribe {
            send_text(&mut stream, subscribe).await;
        }
        // Whatever comes first (acks, a snapshot), the frames end with the close, after the
        // connection's three trades.
        let mut frames = 0;
        let close = loop {
            let (opcode, payload) = read_frame(&mut stream).await;
            if opcode == CLOSE {
                break payload;
            }
            frames += 1;
            assert!(frames < 50, "{kind}: no close after {frames} frames");
        };
        assert_eq!(close[..2], 1011u16.to_be_bytes(), "{kind}");
        assert_eq!(&close[2..], b"feed-sim: internal error");
        let sent = fake.trades_sent();
        assert_eq!(
            sent.iter().filter(|t| t.connection == connection).count(),
            3,
            "{kind}: three trades on connection {connection}, then the close"
        );
        send_frame(&mut stream, CLOSE, &1011u16.to_be_bytes()).await;
    }
    let records = fake.ws_connections();
    let closes: Vec<Option<CloseFrame>> = records.iter().map(|r| r.close_sent.clone()).collect();
    let expected = Some(CloseFrame {
        code: Some(1011),
        reason: "feed-sim: internal error".into(),
    });
    assert_eq!(closes, [expected.clone(), expected], "{kind}");
}
