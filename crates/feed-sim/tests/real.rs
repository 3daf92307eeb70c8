//! Real proxies from Debian (squid, tinyproxy, microsocks, dante) over loopback sockets: a raw
//! client tunnels TLS to the feed-sim HTTPS server through each, authentication is accepted and
//! refused as configured, destinations off loopback are refused at once, each proxy's own log shows
//! the connections, and every daemon is gone after the test.
//!
//! Each test skips (with a message on stderr) when its binary is missing, and fails instead under
//! `FEED_E2E_REQUIRE_REAL_PROXIES=1`. Safety: targets are the HTTPS server on 127.0.0.1, and the
//! one non-loopback destination, 192.0.2.1 (TEST-NET-1), goes only to proxies whose rules refuse it
//! before connecting (squid, tinyproxy, dante), never to microsocks, which has no destination rules.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{DEADLINE, RawResponse, exchange, read_response, tls, within};
use feed_sim::real::RealProxyKind;
use feed_sim::{
    HttpsServer, RealProxy, RealProxyOptions, RealRecord, Response, Routes, TestCa,
    basic_auth_value, require_or_skip,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const USER: &str = "feed-user";
/// Needs percent-encoding in a URL, and survives squid's helper protocol and RFC 1929.
const PASSWORD: &str = "p@ss w:rd/%";
/// tinyproxy's `BasicAuth` takes only `[-A-Za-z0-9._]`.
const TINYPROXY_PASSWORD: &str = "s3cret.pw_x";
/// TEST-NET-1: documentation addresses, never a real destination. Only for proxies that refuse it.
const OFF_LOOPBACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// A refusal by rule must come well before any connect timeout (squid's and dante's are 5 s).
const PROMPT: Duration = Duration::from_secs(2);

async fn server(ca: &TestCa) -> HttpsServer {
    let routes = Routes::new().route("/ping", Response::new(200, "pong"));
    HttpsServer::start(ca, routes).await.expect("server starts")
}

async fn start(kind: RealProxyKind, options: RealProxyOptions) -> RealProxy {
    RealProxy::start(kind, options)
        .await
        .unwrap_or_else(|e| panic!("{kind} starts: {e}"))
}

/// Sends `CONNECT target` (with a `Proxy-Authorization` value if given) and reads the answer head.
async fn http_connect(
    proxy: &RealProxy,
    target: &str,
    authorization: Option<&str>,
) -> (TcpStream, RawResponse) {
    let mut stream = within("connect to the proxy", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect to the proxy");
    let auth_line = authorization
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth_line}\r\n");
    within("write CONNECT", stream.write_all(request.as_bytes()))
        .await
        .expect("write CONNECT");
    let response = tokio::time::timeout(PROMPT, read_response(&mut stream, false))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{}: no answer to CONNECT {target} within {PROMPT:?}\n{}",
                proxy.kind(),
                proxy.diagnostics()
            )
        });
    (stream, response)
}

/// Through an established tunnel: TLS to the HTTPS server, one GET, then close.
async fn get_ping_through<S: AsyncRead + AsyncWrite + Unpin>(tunnel: S, ca: &TestCa) {
    let mut inner = within(
        "tls through the tunnel",
        tls(tunnel, ca.client_config(), "localhost"),
    )
    .await
    .expect("TLS to the server through the tunnel");
    let request = "GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = within("GET through the tunnel", exchange(&mut inner, request)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body, b"pong");
    let _ = within("close", inner.shutdown()).await;
}

fn local_port(stream: &TcpStream) -> u16 {
    stream.local_addr().expect("local address").port()
}

/// The record of the connection from local port `port`.
fn by_client_port(records: &[RealRecord], port: u16) -> &RealRecord {
    records
        .iter()
        .find(|r| r.client_port == Some(port))
        .unwrap_or_else(|| panic!("no record for client port {port}: {records:#?}"))
}

/// How a raw SOCKS5 handshake ended.
#[derive(Debug)]
enum Socks5 {
    /// Reply 00: the stream is a tunnel to the target.
    Connected(TcpStream),
    /// The proxy selected another method than the one offered (FF: none acceptable).
    Method(u8),
    /// RFC 1929 status other than 00.
    AuthFailed(u8),
    /// A connect reply other than 00.
    Reply(u8),
}

async fn read_bytes(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream
        .read_exact(&mut buf)
        .await
        .expect("SOCKS reply bytes");
    buf
}

/// A SOCKS5 CONNECT to an IP `target`, offering only user/password when `credentials` are given,
/// only "no authentication" otherwise.
async fn socks5(
    proxy: SocketAddr,
    credentials: Option<(&str, &str)>,
    target: SocketAddr,
) -> Socks5 {
    let mut stream = TcpStream::connect(proxy)
        .await
        .expect("connect to the proxy");
    let method = if credentials.is_some() { 0x02 } else { 0x00 };
    stream
        .write_all(&[0x05, 0x01, method])
        .await
        .expect("write greeting");
    let selected = read_bytes(&mut stream, 2).await;
    assert_eq!(selected[0], 0x05, "SOCKS5 version in the method selection");
    if selected[1] != method {
        return Socks5::Method(selected[1]);
    }
    if let Some((user, password)) = credentials {
        let mut auth = vec![0x01, user.len() as u8];
        auth.extend_from_slice(user.as_bytes());
        auth.push(password.len() as u8);
        auth.extend_from_slice(password.as_bytes());
        stream.write_all(&auth).await.expect("write credentials");
        let status = read_bytes(&mut stream, 2).await;
        assert_eq!(status[0], 0x01, "RFC 1929 version");
        if status[1] != 0x00 {
            return Socks5::AuthFailed(status[1]);
        }
    }
    let mut request = vec![0x05, 0x01, 0x00];
    match target.ip() {
        IpAddr::V4(ip) => {
            request.push(0x01);
            request.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            request.push(0x04);
            request.extend_from_slice(&ip.octets());
        }
    }
    request.extend_from_slice(&target.port().to_be_bytes());
    stream.write_all(&request).await.expect("write request");
    let head = read_bytes(&mut stream, 4).await;
    assert_eq!(head[0], 0x05, "SOCKS5 version in the reply");
    let addr_len = match head[3] {
        0x01 => 4,
        0x04 => 16,
        0x03 => usize::from(read_bytes(&mut stream, 1).await[0]),
        other => panic!("reply address type {other:#04x}"),
    };
    read_bytes(&mut stream, addr_len + 2).await;
    if head[1] == 0x00 {
        Socks5::Connected(stream)
    } else {
        Socks5::Reply(head[1])
    }
}

/// A SOCKS4 (not 4a) CONNECT to an IPv4 `target`; returns the stream and the reply code.
async fn socks4(proxy: SocketAddr, target: SocketAddrV4) -> (TcpStream, u8) {
    let mut stream = TcpStream::connect(proxy)
        .await
        .expect("connect to the proxy");
    let mut request = vec![0x04, 0x01];
    request.extend_from_slice(&target.port().to_be_bytes());
    request.extend_from_slice(&target.ip().octets());
    request.extend_from_slice(b"feed-sim\0");
    stream.write_all(&request).await.expect("write request");
    let reply = read_bytes(&mut stream, 8).await;
    assert_eq!(reply[0], 0x00, "SOCKS4 reply version");
    (stream, reply[1])
}

/// One process, from /proc.
#[derive(Debug)]
struct Process {
    pid: u32,
    state: char,
    ppid: u32,
    cmdline: String,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
            let mut fields = stat.get(stat.rfind(')')? + 2..)?.split(' ');
            let state = fields.next()?.chars().next()?;
            let ppid = fields.next()?.parse().ok()?;
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            Some(Process {
                pid,
                state,
                ppid,
                cmdline,
            })
        })
        .collect()
}

/// Stops `proxy` (by `shutdown`, or by dropping it) and checks that nothing of it keeps running:
/// its port is closed, and neither the daemon, nor its children (squid's auth helper, dante's
/// workers), nor any process naming its directory is alive. Exited children that the daemon left
/// to init count as gone: they are zombies, waiting to be reaped.
async fn assert_stops(mut proxy: RealProxy, drop_it: bool) {
    let (kind, pid, addr) = (proxy.kind(), proxy.pid(), proxy.addr());
    let dir = proxy.dir().display().to_string();
    let children: Vec<u32> = processes()
        .iter()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect();
    if drop_it {
        drop(proxy);
    } else {
        within("shutdown", proxy.shutdown()).await;
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "{kind}: port {addr} still accepts after stopping"
    );
    let alive = |p: &Process| {
        p.state != 'Z' && (p.pid == pid || children.contains(&p.pid) || p.cmdline.contains(&dir))
    };
    let deadline = Instant::now() + DEADLINE;
    let leftovers = loop {
        let left: Vec<Process> = processes().into_iter().filter(alive).collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        leftovers.is_empty(),
        "{kind}: still running {DEADLINE:?} after stopping: {leftovers:#?}"
    );
}

#[tokio::test]
async fn squid_basic_auth_tunnels_with_the_right_credentials_only() {
    if !require_or_skip(RealProxyKind::Squid) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(
        RealProxyKind::Squid,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
    )
    .await;
    assert_eq!(
        proxy.url_with_credentials(),
        format!("http://feed-user:p%40ss%20w%3Ard%2F%25@{}", proxy.addr())
    );
    let target = format!("127.0.0.1:{}", server.port());

    let right = basic_auth_value(USER, PASSWORD);
    let (tunnel, response) = http_connect(&proxy, &target, Some(&right)).await;
    assert_eq!(response.status(), 200, "{}", proxy.diagnostics());
    let tunnel_port = local_port(&tunnel);
    get_ping_through(tunnel, &ca).await;

    let refused = [
        ("missing", None),
        ("wrong password", Some(basic_auth_value(USER, "wrong"))),
        ("unknown user", Some(basic_auth_value("someone", PASSWORD))),
    ];
    let mut refused_ports = Vec::new();
    for (case, authorization) in &refused {
        let (stream, response) = http_connect(&proxy, &target, authorization.as_deref()).await;
        assert_eq!(response.status(), 407, "case {case}");
        assert_eq!(
            response.header("Proxy-Authenticate"),
            Some("Basic realm=\"feed-sim-squid\""),
            "case {case}"
        );
        refused_ports.push(local_port(&stream));
    }

    let records = proxy.connections_when_closed(4, DEADLINE).await;
    assert_eq!(records.len(), 4, "{records:#?}\n{}", proxy.diagnostics());
    let tunnel = by_client_port(&records, tunnel_port);
    assert_eq!(tunnel.client_ip, Some(IpAddr::from(Ipv4Addr::LOCALHOST)));
    assert_eq!(tunnel.target.as_deref(), Some(target.as_str()));
    assert_eq!(tunnel.status, Some(200));
    assert_eq!(tunnel.allowed, Some(true));
    assert_eq!(tunnel.user.as_deref(), Some(USER));
    assert_eq!(tunnel.upstream, Some(server.addr()));
    assert_eq!(tunnel.detail.as_deref(), Some("TCP_TUNNEL/200"));
    for ((case, _), port) in refused.iter().zip(refused_ports) {
        let record = by_client_port(&records, port);
        assert_eq!(record.status, Some(407), "case {case}");
        assert_eq!(record.allowed, Some(false), "case {case}");
        assert_eq!(record.upstream, None, "case {case}: squid must not connect");
    }
    assert_eq!(
        server.connection_count(),
        1,
        "only the tunnel reached the server"
    );
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn squid_tunnels_without_auth_and_refuses_other_destinations_at_once() {
    if !require_or_skip(RealProxyKind::Squid) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(RealProxyKind::Squid, RealProxyOptions::new()).await;
    assert_eq!(proxy.url(), format!("http://{}", proxy.addr()));
    assert_eq!(proxy.url_with_credentials(), proxy.url());

    let target = format!("127.0.0.1:{}", server.port());
    let (tunnel, response) = http_connect(&proxy, &target, None).await;
    assert_eq!(response.status(), 200, "{}", proxy.diagnostics());
    let tunnel_port = local_port(&tunnel);
    get_ping_through(tunnel, &ca).await;

    // A name other than localhost is refused by its spelling, without a DNS lookup.
    let refused = [
        format!("{OFF_LOOPBACK}:443"),
        "example.invalid:443".to_owned(),
    ];
    let mut refused_ports = Vec::new();
    for target in &refused {
        let (stream, response) = http_connect(&proxy, target, None).await;
        assert_eq!(response.status(), 403, "target {target}");
        refused_ports.push(local_port(&stream));
    }

    let records = proxy.connections_when_closed(3, DEADLINE).await;
    let tunnel = by_client_port(&records, tunnel_port);
    assert_eq!(
        (tunnel.status, tunnel.allowed, tunnel.user.as_deref()),
        (Some(200), Some(true), None)
    );
    assert_eq!(tunnel.upstream, Some(server.addr()));
    for (target, port) in refused.iter().zip(refused_ports) {
        let record = by_client_port(&records, port);
        assert_eq!(record.target.as_deref(), Some(target.as_str()));
        assert_eq!(record.detail.as_deref(), Some("TCP_DENIED/403"));
        assert_eq!(record.allowed, Some(false), "target {target}");
        assert_eq!(
            record.upstream, None,
            "target {target}: squid must not connect"
        );
    }
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn tinyproxy_tunnels_and_filters_other_destinations_at_once() {
    if !require_or_skip(RealProxyKind::Tinyproxy) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(RealProxyKind::Tinyproxy, RealProxyOptions::new()).await;
    let target = format!("127.0.0.1:{}", server.port());
    let (tunnel, response) = http_connect(&proxy, &target, None).await;
    assert_eq!(response.status(), 200, "{}", proxy.diagnostics());
    get_ping_through(tunnel, &ca).await;

    let refused = [
        format!("{OFF_LOOPBACK}:443"),
        "127.0.0.1.example.invalid:443".to_owned(),
    ];
    for target in &refused {
        let (_, response) = http_connect(&proxy, target, None).await;
        assert_eq!(response.status(), 403, "target {target}");
        assert!(
            response.status_line.contains("Filtered"),
            "{}",
            response.status_line
        );
    }

    let records = proxy.connections_when_closed(3, DEADLINE).await;
    assert_eq!(records.len(), 3, "{records:#?}\n{}", proxy.diagnostics());
    let tunnel = &records[0];
    assert_eq!(tunnel.target.as_deref(), Some(target.as_str()));
    assert_eq!(tunnel.client_ip, Some(IpAddr::from(Ipv4Addr::LOCALHOST)));
    assert_eq!(tunnel.allowed, Some(true));
    assert!(tunnel.closed, "{tunnel:#?}");
    for (target, record) in refused.iter().zip(&records[1..]) {
        assert_eq!(record.target.as_deref(), Some(target.as_str()));
        assert_eq!(record.allowed, Some(false), "target {target}");
        assert!(
            record
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("filtered")),
            "{record:#?}"
        );
    }
    assert_eq!(server.connection_count(), 1);
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn tinyproxy_basic_auth_tunnels_with_the_right_credentials_only() {
    if !require_or_skip(RealProxyKind::Tinyproxy) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(
        RealProxyKind::Tinyproxy,
        RealProxyOptions::new().user_pass(USER, TINYPROXY_PASSWORD),
    )
    .await;
    let target = format!("127.0.0.1:{}", server.port());
    let right = basic_auth_value(USER, TINYPROXY_PASSWORD);
    let (tunnel, response) = http_connect(&proxy, &target, Some(&right)).await;
    assert_eq!(response.status(), 200, "{}", proxy.diagnostics());
    get_ping_through(tunnel, &ca).await;

    // tinyproxy answers missing credentials with 407 but wrong ones with 401.
    let wrong = basic_auth_value(USER, "wrong");
    for (authorization, status) in [(None, 407), (Some(wrong.as_str()), 401)] {
        let (_, response) = http_connect(&proxy, &target, authorization).await;
        assert_eq!(response.status(), status, "authorization {authorization:?}");
    }

    let records = proxy.connections_when_closed(1, DEADLINE).await;
    let for_target: Vec<&RealRecord> = records
        .iter()
        .filter(|r| r.target.as_deref() == Some(target.as_str()))
        .collect();
    assert_eq!(for_target.len(), 3, "{records:#?}");
    // Only the tunnel has a verdict: tinyproxy does not log failed authentication.
    assert_eq!(
        for_target.iter().map(|r| r.allowed).collect::<Vec<_>>(),
        [Some(true), None, None]
    );
    assert_eq!(server.connection_count(), 1);
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn microsocks_user_pass_tunnels_and_rejects_a_wrong_password() {
    if !require_or_skip(RealProxyKind::Microsocks) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(
        RealProxyKind::Microsocks,
        RealProxyOptions::new().user_pass(USER, PASSWORD),
    )
    .await;
    assert_eq!(proxy.url(), format!("socks5://{}", proxy.addr()));
    assert_eq!(
        proxy.url_with_credentials(),
        format!("socks5://feed-user:p%40ss%20w%3Ard%2F%25@{}", proxy.addr())
    );
    assert!(
        !format!("{proxy:?}").contains(PASSWORD),
        "Debug shows the password"
    );

    // Only loopback targets: microsocks has no destination rules.
    let outcome = within(
        "SOCKS5 handshake",
        socks5(proxy.addr(), Some((USER, PASSWORD)), server.addr()),
    )
    .await;
    let Socks5::Connected(tunnel) = outcome else {
        panic!(
            "expected a tunnel, got {outcome:?}\n{}",
            proxy.diagnostics()
        );
    };
    get_ping_through(tunnel, &ca).await;

    let wrong = within(
        "SOCKS5 wrong password",
        socks5(proxy.addr(), Some((USER, "wrong")), server.addr()),
    )
    .await;
    assert!(
        matches!(wrong, Socks5::AuthFailed(status) if status != 0),
        "{wrong:?}"
    );
    let no_auth = within(
        "SOCKS5 without auth",
        socks5(proxy.addr(), None, server.addr()),
    )
    .await;
    assert!(matches!(no_auth, Socks5::Method(0xFF)), "{no_auth:?}");

    // microsocks logs one line per successful connect, nothing for refused clients.
    let records = proxy.connections_when_closed(1, DEADLINE).await;
    assert_eq!(records.len(), 1, "{records:#?}\n{}", proxy.log_text());
    assert_eq!(
        records[0].target.as_deref(),
        Some(server.addr().to_string().as_str())
    );
    assert_eq!(
        records[0].client_ip,
        Some(IpAddr::from(Ipv4Addr::LOCALHOST))
    );
    assert_eq!(records[0].allowed, Some(true));
    assert_eq!(server.connection_count(), 1);
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn dante_tunnels_socks5_and_socks4_to_loopback() {
    if !require_or_skip(RealProxyKind::Dante) {
        return;
    }
    let ca = TestCa::new();
    let server = server(&ca).await;
    let proxy = start(RealProxyKind::Dante, RealProxyOptions::new()).await;
    assert_eq!(proxy.url(), format!("socks5://{}", proxy.addr()));
    assert_eq!(
        proxy.url_with_scheme("socks4"),
        format!("socks4://{}", proxy.addr())
    );

    let outcome = within(
        "SOCKS5 handshake",
        socks5(proxy.addr(), None, server.addr()),
    )
    .await;
    let Socks5::Connected(tunnel) = outcome else {
        panic!(
            "expected a tunnel, got {outcome:?}\n{}",
            proxy.diagnostics()
        );
    };
    let socks5_port = local_port(&tunnel);
    get_ping_through(tunnel, &ca).await;

    let target = SocketAddrV4::new(Ipv4Addr::LOCALHOST, server.port());
    let (tunnel, reply) = within("SOCKS4 handshake", socks4(proxy.addr(), target)).await;
    assert_eq!(
        reply,
        0x5A,
        "SOCKS4 request granted\n{}",
        proxy.diagnostics()
    );
    let socks4_port = local_port(&tunnel);
    get_ping_through(tunnel, &ca).await;

    let records = proxy.connections_when_closed(2, DEADLINE).await;
    for (port, version) in [(socks5_port, 5), (socks4_port, 4)] {
        let record = by_client_port(&records, port);
        assert_eq!(record.socks_version, Some(version), "{record:#?}");
        assert_eq!(record.target, Some(server.addr().to_string()));
        assert_eq!(record.upstream, Some(server.addr()));
        assert_eq!(record.allowed, Some(true));
        assert!(record.closed, "{record:#?}");
    }
    assert_eq!(server.connection_count(), 2);
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn dante_blocks_other_destinations_at_once() {
    if !require_or_skip(RealProxyKind::Dante) {
        return;
    }
    let proxy = start(RealProxyKind::Dante, RealProxyOptions::new()).await;
    let target = SocketAddrV4::new(OFF_LOOPBACK, 443);

    let outcome = tokio::time::timeout(PROMPT, socks5(proxy.addr(), None, target.into()))
        .await
        .expect("SOCKS5 refusal within the prompt deadline");
    assert!(
        matches!(outcome, Socks5::Reply(0x02)),
        "not allowed by ruleset: {outcome:?}"
    );
    let (_, reply) = tokio::time::timeout(PROMPT, socks4(proxy.addr(), target))
        .await
        .expect("SOCKS4 refusal within the prompt deadline");
    assert_eq!(reply, 0x5B, "SOCKS4 request rejected");

    let records = proxy.connections_when_closed(2, DEADLINE).await;
    assert_eq!(records.len(), 2, "{records:#?}");
    for record in &records {
        assert_eq!(record.target, Some(target.to_string()));
        assert_eq!(record.allowed, Some(false));
        assert_eq!(record.upstream, None);
    }
    assert_stops(proxy, false).await;
}

#[tokio::test]
async fn options_a_proxy_cannot_take_fail_before_anything_starts() {
    let cases = [
        (
            RealProxyKind::Dante,
            RealProxyOptions::new().user_pass("u", "p"),
            std::io::ErrorKind::Unsupported,
        ),
        (
            RealProxyKind::Tinyproxy,
            RealProxyOptions::new().user_pass(USER, PASSWORD),
            std::io::ErrorKind::InvalidInput,
        ),
    ];
    for (kind, options, expected) in cases {
        let error = RealProxy::start(kind, options)
            .await
            .expect_err("unsupported options");
        assert_eq!(error.kind(), expected, "{kind}: {error}");
    }
}

#[tokio::test]
async fn dropping_a_proxy_stops_it_and_everything_it_started() {
    let ca = TestCa::new();
    let server = server(&ca).await;
    for kind in RealProxyKind::ALL {
        if !require_or_skip(kind) {
            continue;
        }
        let options = match kind {
            // Authentication makes squid start its helper, which must go too.
            RealProxyKind::Squid => RealProxyOptions::new().user_pass(USER, PASSWORD),
            _ => RealProxyOptions::new(),
        };
        let proxy = start(kind, options).await;
        let dir = proxy.dir().to_path_buf();
        if kind == RealProxyKind::Squid {
            // Leave a tunnel open: stopping must not wait for clients.
            let authorization = basic_auth_value(USER, PASSWORD);
            let target = format!("127.0.0.1:{}", server.port());
            let (open_tunnel, response) = http_connect(&proxy, &target, Some(&authorization)).await;
            assert_eq!(response.status(), 200);
            assert_stops(proxy, true).await;
            drop(open_tunnel);
        } else {
            assert_stops(proxy, true).await;
        }
        assert!(
            !Path::new(&dir).exists(),
            "{kind}: directory {dir:?} left behind"
        );
    }
}
