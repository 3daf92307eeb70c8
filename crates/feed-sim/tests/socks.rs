//! Wire tests of the SOCKS test proxy: a hand-written raw client speaks SOCKS4, 4a and 5 to it over
//! loopback and checks both the bytes on the wire and what the proxy recorded.

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use feed_sim::socks::{
    AddrType, Fault, GARBAGE, SocksOptions, SocksProxy, SocksRecord, SocksVersion,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A functional deadline: nothing in these tests should take anywhere near this long.
const DEADLINE: Duration = Duration::from_secs(5);
/// How long a client waits to conclude that a proxy with `Fault::NeverAnswer` says nothing.
const SILENCE: Duration = Duration::from_millis(300);
const PAYLOAD: &[u8] = b"ping through the proxy";

/// An echo server on loopback; aborted when dropped by the test.
struct Echo {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo_on(addr: &str) -> io::Result<Echo> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
                let _ = write.shutdown().await;
            });
        }
    });
    Ok(Echo { addr, task })
}

async fn echo() -> Echo {
    echo_on("127.0.0.1:0")
        .await
        .expect("echo server on 127.0.0.1")
}

async fn connect(proxy: &SocksProxy) -> TcpStream {
    timeout(DEADLINE, TcpStream::connect(proxy.addr()))
        .await
        .expect("connect to proxy within deadline")
        .expect("connect to proxy")
}

async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(DEADLINE, stream.read_exact(&mut buf))
        .await
        .expect("reply within deadline")
        .expect("reply bytes");
    buf
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Eof,
    Reset,
}

/// Reads until the proxy closes; returns what arrived and how it ended.
async fn read_to_close(stream: &mut TcpStream) -> (Vec<u8>, End) {
    let mut received = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match timeout(DEADLINE, stream.read(&mut buf))
            .await
            .expect("proxy closes within deadline")
        {
            Ok(0) => return (received, End::Eof),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => return (received, End::Reset),
        }
    }
}

/// All records once `count` connections are closed; fails the test after [`DEADLINE`].
async fn finished(proxy: &SocksProxy, count: usize) -> Vec<SocksRecord> {
    let records = proxy.connections_when_closed(count, DEADLINE).await;
    let closed = records.iter().filter(|r| r.closed).count();
    assert!(
        closed >= count,
        "{closed} of {count} connections closed within {DEADLINE:?}"
    );
    records
}

fn port_bytes(addr: SocketAddr) -> [u8; 2] {
    addr.port().to_be_bytes()
}

fn socks4(target: [u8; 4], port: [u8; 2], user_id: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x04, 0x01];
    bytes.extend_from_slice(&port);
    bytes.extend_from_slice(&target);
    bytes.extend_from_slice(user_id);
    bytes.push(0);
    bytes
}

fn socks4a(host: &[u8], port: [u8; 2], user_id: &[u8]) -> Vec<u8> {
    let mut bytes = socks4([0, 0, 0, 1], port, user_id);
    bytes.extend_from_slice(host);
    bytes.push(0);
    bytes
}

fn socks5_ipv4(ip: [u8; 4], port: [u8; 2]) -> Vec<u8> {
    let mut bytes = vec![0x05, 0x01, 0x00, 0x01];
    bytes.extend_from_slice(&ip);
    bytes.extend_from_slice(&port);
    bytes
}

fn socks5_ipv6(ip: Ipv6Addr, port: [u8; 2]) -> Vec<u8> {
    let mut bytes = vec![0x05, 0x01, 0x00, 0x04];
    bytes.extend_from_slice(&ip.octets());
    bytes.extend_from_slice(&port);
    bytes
}

fn socks5_domain(host: &[u8], port: [u8; 2]) -> Vec<u8> {
    let mut bytes = vec![
        0x05,
        0x01,
        0x00,
        0x03,
        u8::try_from(host.len()).expect("short host"),
    ];
    bytes.extend_from_slice(host);
    bytes.extend_from_slice(&port);
    bytes
}

fn user_pass(user: &[u8], password: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x01, u8::try_from(user.len()).expect("short user")];
    bytes.extend_from_slice(user);
    bytes.push(u8::try_from(password.len()).expect("short password"));
    bytes.extend_from_slice(password);
    bytes
}

/// One client message and the reply the proxy must answer with: `reply` is the exact start of the
/// answer and `len` its full length (the bound address in a success reply varies).
struct Step {
    send: Vec<u8>,
    reply: Vec<u8>,
    len: usize,
}

fn step(send: Vec<u8>, reply: &[u8], len: usize) -> Step {
    Step {
        send,
        reply: reply.to_vec(),
        len,
    }
}

/// What the record of a finished connection must say.
#[derive(Debug, Default)]
struct Expect {
    version: Option<SocksVersion>,
    addr_type: Option<AddrType>,
    host: Option<&'static str>,
    port: Option<u16>,
    user_id: Option<&'static str>,
    methods: Vec<u8>,
    username: Option<&'static str>,
    password: Option<&'static str>,
    auth_ok: Option<bool>,
    reply: Option<u8>,
}

/// Runs the steps, then (when `tunnel`) echoes [`PAYLOAD`] through; checks the finished record.
async fn run(
    name: &str,
    proxy: &SocksProxy,
    steps: &[Step],
    tunnel: bool,
    expect: &Expect,
) -> SocksRecord {
    let before = proxy.connections().len();
    let mut client = connect(proxy).await;
    let mut sent = Vec::new();
    for step in steps {
        client.write_all(&step.send).await.expect("send step");
        sent.extend_from_slice(&step.send);
        let reply = read_n(&mut client, step.len).await;
        assert_eq!(&reply[..step.reply.len()], &step.reply[..], "{name}: reply");
    }
    if tunnel {
        client.write_all(PAYLOAD).await.expect("send payload");
        let echoed = read_n(&mut client, PAYLOAD.len()).await;
        assert_eq!(echoed, PAYLOAD, "{name}: echo through the proxy");
        client.shutdown().await.expect("shutdown write");
    }
    let (rest, _) = read_to_close(&mut client).await;
    assert!(
        rest.is_empty(),
        "{name}: nothing after the last reply, got {rest:02x?}"
    );
    drop(client);

    let records = finished(proxy, before + 1).await;
    let record = records[before].clone();
    assert_eq!(record.version, expect.version, "{name}: version");
    assert_eq!(record.addr_type, expect.addr_type, "{name}: address type");
    assert_eq!(record.target_host.as_deref(), expect.host, "{name}: host");
    assert_eq!(record.target_port, expect.port, "{name}: port");
    assert_eq!(
        record.socks4_user_id.as_deref(),
        expect.user_id,
        "{name}: user id"
    );
    assert_eq!(record.methods, expect.methods, "{name}: methods");
    assert_eq!(
        record.username.as_deref(),
        expect.username,
        "{name}: username"
    );
    assert_eq!(
        record.password.as_deref(),
        expect.password,
        "{name}: password"
    );
    assert_eq!(record.auth_ok, expect.auth_ok, "{name}: auth");
    assert_eq!(record.reply, expect.reply, "{name}: reply code");
    assert_eq!(record.request_bytes, sent, "{name}: raw request bytes");
    assert_eq!(record.peer.ip(), proxy.addr().ip(), "{name}: peer");
    if tunnel {
        assert!(record.upstream.is_some(), "{name}: connected onward");
        assert_eq!(
            record.bytes_to_target,
            PAYLOAD.len() as u64,
            "{name}: bytes to target"
        );
        assert_eq!(
            record.bytes_to_client,
            PAYLOAD.len() as u64,
            "{name}: bytes to client"
        );
        assert_eq!(record.error, None, "{name}: no error");
    } else {
        assert_eq!(record.upstream, None, "{name}: never connected onward");
        assert_eq!(record.bytes_to_target, 0, "{name}: nothing relayed");
    }
    assert!(record.closed, "{name}: closed");
    record
}

#[tokio::test]
async fn every_protocol_tunnels_to_a_loopback_echo_server() {
    let echo = echo().await;
    let port = port_bytes(echo.addr);
    let plain = SocksProxy::start(SocksOptions::new()).await.expect("proxy");
    let with_auth = SocksProxy::start(SocksOptions::socks5().user_pass("us er", "p@ss:wörd"))
        .await
        .expect("proxy with auth");
    let ok5 = [0x05, 0x00, 0x00, 0x01];

    let cases: Vec<(&str, &SocksProxy, Vec<Step>, Expect)> = vec![
        (
            "socks4 with an ipv4 address",
            &plain,
            vec![step(
                socks4([127, 0, 0, 1], port, b"alice"),
                &[0x00, 0x5A],
                8,
            )],
            Expect {
                version: Some(SocksVersion::Socks4),
                addr_type: Some(AddrType::Ipv4),
                host: Some("127.0.0.1"),
                port: Some(echo.addr.port()),
                user_id: Some("alice"),
                reply: Some(0x5A),
                ..Expect::default()
            },
        ),
        (
            "socks4a with localhost",
            &plain,
            vec![step(socks4a(b"localhost", port, b"bob"), &[0x00, 0x5A], 8)],
            Expect {
                version: Some(SocksVersion::Socks4a),
                addr_type: Some(AddrType::Domain),
                host: Some("localhost"),
                port: Some(echo.addr.port()),
                user_id: Some("bob"),
                reply: Some(0x5A),
                ..Expect::default()
            },
        ),
        (
            "socks4 with an empty user id",
            &plain,
            vec![step(socks4([127, 0, 0, 1], port, b""), &[0x00, 0x5A], 8)],
            Expect {
                version: Some(SocksVersion::Socks4),
                addr_type: Some(AddrType::Ipv4),
                host: Some("127.0.0.1"),
                port: Some(echo.addr.port()),
                user_id: Some(""),
                reply: Some(0x5A),
                ..Expect::default()
            },
        ),
        (
            "socks5 without auth, ipv4 address (socks5://)",
            &plain,
            vec![
                step(vec![0x05, 0x01, 0x00], &[0x05, 0x00], 2),
                step(socks5_ipv4([127, 0, 0, 1], port), &ok5, 10),
            ],
            Expect {
                version: Some(SocksVersion::Socks5),
                addr_type: Some(AddrType::Ipv4),
                host: Some("127.0.0.1"),
                port: Some(echo.addr.port()),
                methods: vec![0x00],
                reply: Some(0x00),
                ..Expect::default()
            },
        ),
        (
            "socks5 without auth, domain (socks5h://)",
            &plain,
            vec![
                step(vec![0x05, 0x01, 0x00], &[0x05, 0x00], 2),
                step(socks5_domain(b"localhost", port), &ok5, 10),
            ],
            Expect {
                version: Some(SocksVersion::Socks5),
                addr_type: Some(AddrType::Domain),
                host: Some("localhost"),
                port: Some(echo.addr.port()),
                methods: vec![0x00],
                reply: Some(0x00),
                ..Expect::default()
            },
        ),
        (
            "socks5 with username and password",
            &with_auth,
            vec![
                step(vec![0x05, 0x02, 0x00, 0x02], &[0x05, 0x02], 2),
                step(
                    user_pass(b"us er", "p@ss:wörd".as_bytes()),
                    &[0x01, 0x00],
                    2,
                ),
                step(socks5_domain(b"localhost", port), &ok5, 10),
            ],
            Expect {
                version: Some(SocksVersion::Socks5),
                addr_type: Some(AddrType::Domain),
                host: Some("localhost"),
                port: Some(echo.addr.port()),
                methods: vec![0x00, 0x02],
                username: Some("us er"),
                password: Some("p@ss:wörd"),
                auth_ok: Some(true),
                reply: Some(0x00),
                ..Expect::default()
            },
        ),
    ];
    for (name, proxy, steps, expect) in &cases {
        let record = run(name, proxy, steps, true, expect).await;
        assert_eq!(record.upstream, Some(echo.addr), "{name}: onward address");
    }
}

#[tokio::test]
async fn socks5_reaches_an_ipv6_loopback_target_through_a_proxy_on_ipv6() {
    let echo = match echo_on("[::1]:0").await {
        Ok(echo) => echo,
        Err(error) => {
            println!("skipped: cannot bind [::1]:0 on this machine ({error})");
            return;
        }
    };
    let proxy = SocksProxy::start(SocksOptions::socks5().bind("[::1]:0".parse().expect("addr")))
        .await
        .expect("proxy on ::1");
    assert!(proxy.addr().is_ipv6());
    let port = proxy.addr().port();
    assert_eq!(proxy.url("socks5"), format!("socks5://[::1]:{port}"));
    let steps = [
        step(vec![0x05, 0x01, 0x00], &[0x05, 0x00], 2),
        step(
            socks5_ipv6(Ipv6Addr::LOCALHOST, port_bytes(echo.addr)),
            &[0x05, 0x00, 0x00, 0x04],
            22,
        ),
    ];
    let expect = Expect {
        version: Some(SocksVersion::Socks5),
        addr_type: Some(AddrType::Ipv6),
        host: Some("::1"),
        port: Some(echo.addr.port()),
        methods: vec![0x00],
        reply: Some(0x00),
        ..Expect::default()
    };
    let record = run("socks5 to [::1]", &proxy, &steps, true, &expect).await;
    assert_eq!(record.upstream, Some(echo.addr));
}

#[tokio::test]
async fn refused_requests_never_connect_onward() {
    let echo = echo().await;
    let port = port_bytes(echo.addr);
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let plain = SocksProxy::start(SocksOptions::new()).await.expect("proxy");
    let no_4a = SocksProxy::start(SocksOptions::socks4().socks4a(false))
        .await
        .expect("proxy without 4a");
    let with_auth = SocksProxy::start(SocksOptions::socks5().user_pass("user", "right"))
        .await
        .expect("proxy with auth");
    let no_auth = [0x05, 0x01, 0x00];
    let refused5 = |code: u8| [0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    let rejected4 = [0x00, 0x5B, 0, 0, 0, 0, 0, 0];
    let socks5 = |addr_type, host, port, reply| Expect {
        version: Some(SocksVersion::Socks5),
        addr_type: Some(addr_type),
        host: Some(host),
        port: Some(port),
        methods: vec![0x00],
        reply: Some(reply),
        ..Expect::default()
    };

    let cases: Vec<(&str, &SocksProxy, Vec<Step>, Expect)> = vec![
        (
            "socks5 to TEST-NET 192.0.2.1",
            &plain,
            vec![
                step(no_auth.to_vec(), &[0x05, 0x00], 2),
                step(socks5_ipv4([192, 0, 2, 1], [0, 80]), &refused5(0x02), 10),
            ],
            socks5(AddrType::Ipv4, "192.0.2.1", 80, 0x02),
        ),
        (
            "socks5 to 2001:db8::1",
            &plain,
            vec![
                step(no_auth.to_vec(), &[0x05, 0x00], 2),
                step(
                    socks5_ipv6("2001:db8::1".parse().expect("ip"), [0, 80]),
                    &refused5(0x02),
                    10,
                ),
            ],
            socks5(AddrType::Ipv6, "2001:db8::1", 80, 0x02),
        ),
        (
            "socks5h to a name other than localhost",
            &plain,
            vec![
                step(no_auth.to_vec(), &[0x05, 0x00], 2),
                step(socks5_domain(b"example.com", [0, 80]), &refused5(0x02), 10),
            ],
            socks5(AddrType::Domain, "example.com", 80, 0x02),
        ),
        (
            "socks5 to a closed loopback port",
            &plain,
            vec![
                step(no_auth.to_vec(), &[0x05, 0x00], 2),
                step(
                    socks5_ipv4([127, 0, 0, 1], closed_port.to_be_bytes()),
                    &refused5(0x05),
                    10,
                ),
            ],
            socks5(AddrType::Ipv4, "127.0.0.1", closed_port, 0x05),
        ),
        (
            "socks5 with a wrong password",
            &with_auth,
            vec![
                step(vec![0x05, 0x01, 0x02], &[0x05, 0x02], 2),
                step(user_pass(b"user", b"wrong"), &[0x01, 0x01], 2),
            ],
            Expect {
                version: Some(SocksVersion::Socks5),
                methods: vec![0x02],
                username: Some("user"),
                password: Some("wrong"),
                auth_ok: Some(false),
                ..Expect::default()
            },
        ),
        (
            "socks4 to TEST-NET 192.0.2.1",
            &plain,
            vec![step(
                socks4([192, 0, 2, 1], [0, 80], b"alice"),
                &rejected4,
                8,
            )],
            Expect {
                version: Some(SocksVersion::Socks4),
                addr_type: Some(AddrType::Ipv4),
                host: Some("192.0.2.1"),
                port: Some(80),
                user_id: Some("alice"),
                reply: Some(0x5B),
                ..Expect::default()
            },
        ),
        (
            "socks4a to a name other than localhost",
            &plain,
            vec![step(socks4a(b"example.com", [0, 80], b""), &rejected4, 8)],
            Expect {
                version: Some(SocksVersion::Socks4a),
                addr_type: Some(AddrType::Domain),
                host: Some("example.com"),
                port: Some(80),
                user_id: Some(""),
                reply: Some(0x5B),
                ..Expect::default()
            },
        ),
        (
            "socks4a marker to a proxy without 4a",
            &no_4a,
            vec![step(socks4a(b"localhost", port, b"carol"), &rejected4, 8)],
            Expect {
                version: Some(SocksVersion::Socks4a),
                addr_type: Some(AddrType::Ipv4),
                host: Some("0.0.0.1"),
                port: Some(echo.addr.port()),
                user_id: Some("carol"),
                reply: Some(0x5B),
                ..Expect::default()
            },
        ),
    ];
    for (name, proxy, steps, expect) in &cases {
        run(name, proxy, steps, false, expect).await;
    }
    let record = &no_4a.connections()[0];
    let error = record.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("socks4a"),
        "4a refusal is explained: {error:?}"
    );
}

/// What a raw client sees from a faulty proxy.
#[derive(Debug)]
enum Seen {
    /// Exactly these bytes, then a clean close.
    Closed(Vec<u8>),
    /// A close (clean or reset) before any byte.
    Dropped,
    /// Nothing at all, and the connection stays open.
    Silent,
}

#[tokio::test]
async fn every_fault_is_observed_by_a_raw_client() {
    let echo = echo().await;
    let port = port_bytes(echo.addr);
    let greeting = [0x05, 0x01, 0x00];
    let mut socks5 = greeting.to_vec();
    socks5.extend_from_slice(&socks5_ipv4([127, 0, 0, 1], port));
    let socks4 = socks4([127, 0, 0, 1], port, b"alice");
    let concat = |parts: &[&[u8]]| parts.concat();

    let cases: Vec<(&str, Fault, &[u8], Seen)> = vec![
        (
            "socks5 close immediately",
            Fault::CloseImmediately,
            &socks5,
            Seen::Dropped,
        ),
        (
            "socks4 close immediately",
            Fault::CloseImmediately,
            &socks4,
            Seen::Dropped,
        ),
        (
            "socks5 never answer",
            Fault::NeverAnswer,
            &socks5,
            Seen::Silent,
        ),
        (
            "socks4 never answer",
            Fault::NeverAnswer,
            &socks4,
            Seen::Silent,
        ),
        (
            "socks5 garbage",
            Fault::Garbage,
            &greeting,
            Seen::Closed(GARBAGE.to_vec()),
        ),
        (
            "socks4 garbage",
            Fault::Garbage,
            &socks4,
            Seen::Closed(GARBAGE.to_vec()),
        ),
        (
            "socks5 close mid handshake",
            Fault::CloseMidHandshake,
            &socks5,
            Seen::Closed(vec![0x05, 0x00, 0x05, 0x00, 0x00, 0x01]),
        ),
        (
            "socks4 close mid handshake",
            Fault::CloseMidHandshake,
            &socks4,
            Seen::Closed(vec![0x00, 0x5A]),
        ),
        (
            "socks5 reply connection refused",
            Fault::Reply(0x05),
            &socks5,
            Seen::Closed(concat(&[
                &[0x05, 0x00],
                &[0x05, 0x05, 0x00, 0x01, 0, 0, 0, 0, 0, 0],
            ])),
        ),
        (
            "socks4 reply rejected",
            Fault::Reply(0x5B),
            &socks4,
            Seen::Closed(vec![0x00, 0x5B, 0, 0, 0, 0, 0, 0]),
        ),
    ];
    for (name, fault, send, seen) in cases {
        let proxy = SocksProxy::start(SocksOptions::new().fault(fault))
            .await
            .expect("proxy");
        let mut client = connect(&proxy).await;
        // The proxy may already have closed: a failed write is part of what the client sees.
        let _ = client.write_all(send).await;
        match &seen {
            Seen::Closed(expected) => {
                let (received, end) = read_to_close(&mut client).await;
                assert_eq!(&received, expected, "{name}: bytes before the close");
                assert_eq!(end, End::Eof, "{name}: clean close");
            }
            Seen::Dropped => {
                let (received, _) = read_to_close(&mut client).await;
                assert!(received.is_empty(), "{name}: no bytes, got {received:02x?}");
            }
            Seen::Silent => {
                let mut buf = [0u8; 16];
                let read = timeout(SILENCE, client.read(&mut buf)).await;
                assert!(read.is_err(), "{name}: proxy stays silent, got {read:?}");
                // The proxy has read (and recorded) everything while staying silent.
                timeout(DEADLINE, async {
                    while proxy.connections()[0].request_bytes.len() < send.len() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
                .await
                .expect("proxy records the request within deadline");
            }
        }
        drop(client);
        let record = finished(&proxy, 1).await.remove(0);
        assert_eq!(record.upstream, None, "{name}: never connected onward");
        match (fault, &seen) {
            (Fault::CloseImmediately, _) => {
                assert!(record.request_bytes.is_empty(), "{name}: nothing read");
                assert_eq!(record.version, None, "{name}: no version");
            }
            _ => assert_eq!(record.request_bytes, send, "{name}: request recorded"),
        }
        match fault {
            Fault::Reply(code) => assert_eq!(record.reply, Some(code), "{name}: reply code"),
            Fault::CloseMidHandshake => assert!(record.reply.is_some(), "{name}: reply begun"),
            _ => assert_eq!(record.reply, None, "{name}: no reply"),
        }
    }
}

/// A name, the proxy, what the client sends, the exact reply before the close, and a fragment of the
/// recorded error.
type GarbageCase<'a> = (&'a str, &'a SocksProxy, Vec<u8>, Vec<u8>, &'a str);

#[tokio::test]
async fn garbage_from_a_client_closes_it_and_the_proxy_keeps_serving() {
    let echo = echo().await;
    let port = port_bytes(echo.addr);
    let plain = SocksProxy::start(SocksOptions::new()).await.expect("proxy");
    let only5 = SocksProxy::start(SocksOptions::socks5())
        .await
        .expect("socks5-only proxy");
    let long_user_id = socks4([127, 0, 0, 1], port, &[b'a'; 300]);
    let refused5 = |code: u8| vec![0x05, 0x00, 0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0];

    let cases: Vec<GarbageCase<'_>> = vec![
        (
            "http request",
            &plain,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            vec![],
            "unknown version byte 0x47",
        ),
        (
            "version byte only",
            &plain,
            vec![0x05],
            vec![],
            "socks5 method count",
        ),
        (
            "truncated methods",
            &plain,
            vec![0x05, 0x03, 0x00],
            vec![],
            "socks5 methods (1 of 3 bytes)",
        ),
        (
            "no methods",
            &plain,
            vec![0x05, 0x00],
            vec![0x05, 0xFF],
            "no acceptable socks5 method",
        ),
        (
            "only user/pass offered to a proxy without credentials",
            &plain,
            vec![0x05, 0x01, 0x02],
            vec![0x05, 0xFF],
            "no acceptable socks5 method",
        ),
        (
            "request with a wrong version byte",
            &plain,
            [
                &[0x05, 0x01, 0x00][..],
                &[0x04, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0, 80],
            ]
            .concat(),
            vec![0x05, 0x00],
            "socks5 request with version byte 0x04",
        ),
        (
            "non-zero reserved byte",
            &plain,
            [
                &[0x05, 0x01, 0x00][..],
                &[0x05, 0x01, 0x01, 0x01, 127, 0, 0, 1, 0, 80],
            ]
            .concat(),
            refused5(0x01),
            "reserved byte",
        ),
        (
            "unknown address type",
            &plain,
            [
                &[0x05, 0x01, 0x00][..],
                &[0x05, 0x01, 0x00, 0x09, 127, 0, 0, 1, 0, 80],
            ]
            .concat(),
            refused5(0x08),
            "unknown socks5 address type 0x09",
        ),
        (
            "domain shorter than its length byte",
            &plain,
            [
                &[0x05, 0x01, 0x00][..],
                &[0x05, 0x01, 0x00, 0x03, 200],
                b"short",
            ]
            .concat(),
            vec![0x05, 0x00],
            "socks5 domain (5 of 200 bytes)",
        ),
        (
            "socks5 bind command",
            &plain,
            [
                &[0x05, 0x01, 0x00][..],
                &[0x05, 0x02, 0x00, 0x01, 127, 0, 0, 1],
                &port,
            ]
            .concat(),
            refused5(0x07),
            "unsupported socks5 command 0x02",
        ),
        (
            "socks4 user id without a NUL",
            &plain,
            long_user_id[..long_user_id.len() - 1].to_vec(),
            vec![],
            "socks4 user id longer than 255 bytes",
        ),
        (
            "socks4 bind command",
            &plain,
            [&[0x04, 0x02][..], &port, &[127, 0, 0, 1, 0]].concat(),
            vec![0x00, 0x5B, 0, 0, 0, 0, 0, 0],
            "unsupported socks4 command 0x02",
        ),
        (
            "socks4 to a socks5-only proxy",
            &only5,
            socks4([127, 0, 0, 1], port, b""),
            vec![],
            "socks4 is not accepted",
        ),
    ];
    for (name, proxy, send, reply, error) in &cases {
        let before = proxy.connections().len();
        let mut client = connect(proxy).await;
        client.write_all(send).await.expect("send garbage");
        client.shutdown().await.expect("shutdown write");
        let (received, end) = read_to_close(&mut client).await;
        assert_eq!(&received, reply, "{name}: reply before the close");
        assert_eq!(end, End::Eof, "{name}: clean close");
        drop(client);
        let record = finished(proxy, before + 1).await.remove(before);
        let recorded = record.error.as_deref().unwrap_or_default();
        assert!(
            recorded.contains(error),
            "{name}: error {recorded:?} mentions {error:?}"
        );
        assert_eq!(&record.request_bytes, send, "{name}: every byte recorded");
        assert_eq!(record.upstream, None, "{name}: never connected onward");
    }

    for proxy in [&plain, &only5] {
        let steps = [
            step(vec![0x05, 0x01, 0x00], &[0x05, 0x00], 2),
            step(
                socks5_domain(b"localhost", port),
                &[0x05, 0x00, 0x00, 0x01],
                10,
            ),
        ];
        let expect = Expect {
            version: Some(SocksVersion::Socks5),
            addr_type: Some(AddrType::Domain),
            host: Some("localhost"),
            port: Some(echo.addr.port()),
            methods: vec![0x00],
            reply: Some(0x00),
            ..Expect::default()
        };
        run(
            "a good client after the garbage",
            proxy,
            &steps,
            true,
            &expect,
        )
        .await;
    }
}

#[tokio::test]
async fn urls_name_the_listening_address_and_encode_credentials() {
    let plain = SocksProxy::start(SocksOptions::new()).await.expect("proxy");
    let port = plain.addr().port();
    assert!(plain.addr().ip().is_loopback());
    assert_eq!(plain.url("socks5h"), format!("socks5h://127.0.0.1:{port}"));
    assert_eq!(plain.url("socks4a"), format!("socks4a://127.0.0.1:{port}"));
    assert_eq!(plain.url_with_credentials("socks5"), plain.url("socks5"));

    let with_auth = SocksProxy::start(SocksOptions::socks5().user_pass("us er", "p@ss:w/rd%~"))
        .await
        .expect("proxy with auth");
    let port = with_auth.addr().port();
    assert_eq!(
        with_auth.url_with_credentials("socks5h"),
        format!("socks5h://us%20er:p%40ss%3Aw%2Frd%25~@127.0.0.1:{port}")
    );
    let debug = format!("{with_auth:?}");
    assert!(!debug.contains("p@ss"), "Debug hides the password: {debug}");

    let off_loopback = SocksOptions::new().bind("0.0.0.0:0".parse().expect("addr"));
    let error = SocksProxy::start(off_loopback)
        .await
        .expect_err("refuses 0.0.0.0");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

#[tokio::test]
async fn shutdown_and_drop_stop_the_listener_and_open_tunnels() {
    let echo = echo().await;
    let mut proxy = SocksProxy::start(SocksOptions::socks5())
        .await
        .expect("proxy");
    let addr = proxy.addr();
    let mut tunnel = connect(&proxy).await;
    tunnel
        .write_all(
            &[
                &[0x05, 0x01, 0x00][..],
                &socks5_domain(b"localhost", port_bytes(echo.addr)),
            ]
            .concat(),
        )
        .await
        .expect("handshake");
    let reply = read_n(&mut tunnel, 12).await;
    assert_eq!(reply[..4], [0x05, 0x00, 0x05, 0x00]);
    proxy.shutdown().await;
    // read_to_close fails the test unless the open tunnel is closed within the deadline.
    let (_, _) = read_to_close(&mut tunnel).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed by shutdown"
    );
    let records = proxy.connections();
    assert_eq!(records.len(), 1, "records stay readable after shutdown");
    assert_eq!(records[0].upstream, Some(echo.addr));

    let proxy = SocksProxy::start(SocksOptions::socks5())
        .await
        .expect("proxy");
    let addr = proxy.addr();
    drop(proxy);
    timeout(DEADLINE, async {
        while TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("listener closed after drop");
}
