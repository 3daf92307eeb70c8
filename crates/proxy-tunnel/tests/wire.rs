//! Wire tests: TunnelConnector against feed-sim's in-process proxies, which record the exact
//! bytes they received, with a local HTTPS server (rcgen CA) as the target. Every tunnel is used
//! for a real TLS handshake and GET to the target, so "connected" means "works".

use std::sync::Arc;
use std::time::{Duration, Instant};

use feed_sim::connect_proxy::Fault as ConnectFault;
#[cfg(feature = "socks")]
use feed_sim::socks::{AddrType, Fault as SocksFault, SocksVersion};
use feed_sim::{ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa};
#[cfg(feature = "socks")]
use feed_sim::{SocksOptions, SocksProxy};
use proxy_config::ProxyConfig;
use proxy_resolve::{Route, Transport};
use proxy_tunnel::{
    Party, ProtocolViolation, TargetRefusal, TlsOptions, TunnelConnector, TunnelError,
    TunnelErrorKind,
};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "p:ss@w0rd-canary";
const USER: &str = "us@er";
const DEADLINE: Duration = Duration::from_secs(10);

/// Does an error kind match what a case expects?
type Check = fn(&TunnelErrorKind) -> bool;

struct Target {
    ca: TestCa,
    server: HttpsServer,
}

async fn target() -> Target {
    let ca = TestCa::new();
    let routes = Routes::new().route("/api/v3/ping", Response::json("{}"));
    let server = HttpsServer::start(&ca, routes).await.expect("https server");
    Target { ca, server }
}

fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('@', "%40")
        .replace(':', "%3A")
}

fn route(url: &str, timeout: u64) -> Route {
    let config = ProxyConfig::parse(url)
        .expect("valid proxy URL")
        .with_timeout(proxy_config::TimeoutSeconds::new(timeout).expect("valid timeout"));
    Route::Proxy(Arc::new(config))
}

fn connector(route: Route, ca: &TestCa) -> TunnelConnector {
    let proxy_tls = TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .expect("CA PEM")
        .client_config(&[])
        .expect("client config");
    TunnelConnector::new(route, "binance", Transport::Http).with_proxy_tls(proxy_tls)
}

/// TLS to the target over the tunnel and one GET; returns the status line.
async fn get_through(
    connector: &TunnelConnector,
    t: &Target,
    host: &str,
) -> Result<String, TunnelError> {
    let stream = tokio::time::timeout(DEADLINE, connector.connect(host, t.server.port()))
        .await
        .expect("connect must not hang")?;
    let tls = tokio_rustls::TlsConnector::from(t.ca.client_config());
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    let mut tls = tls
        .connect(name, stream)
        .await
        .expect("TLS to the target through the tunnel");
    tls.write_all(
        format!("GET /api/v3/ping HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(DEADLINE, tls.read_to_end(&mut response))
        .await
        .expect("response must not hang")
        .expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn assert_clean(err: &TunnelError) {
    let text = format!("{err} {err:?}");
    let mut source = std::error::Error::source(err);
    let mut chain = text.clone();
    while let Some(inner) = source {
        chain.push_str(&format!(" {inner} {inner:?}"));
        source = inner.source();
    }
    for secret in [PASSWORD, &enc(PASSWORD), "w0rd-canary", USER, &enc(USER)] {
        assert!(!chain.contains(secret), "credential in error: {chain}");
    }
}

#[tokio::test]
async fn direct_route_reaches_the_target() {
    let t = target().await;
    let connector = TunnelConnector::new(Route::Direct, "binance", Transport::Http);
    let status = get_through(&connector, &t, "localhost")
        .await
        .expect("direct");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(t.server.requests().len(), 1);
}

#[tokio::test]
async fn http_connect_without_and_with_basic_auth() {
    let t = target().await;
    let port = t.server.port();
    for auth in [false, true] {
        let options = if auth {
            ProxyOptions::new().basic_auth(USER, PASSWORD)
        } else {
            ProxyOptions::new()
        };
        let proxy = ConnectProxy::start(options).await.expect("proxy");
        let url = if auth {
            format!("http://{}:{}@{}", enc(USER), enc(PASSWORD), proxy.addr())
        } else {
            proxy.url()
        };
        let status = get_through(&connector(route(&url, 5), &t.ca), &t, "localhost")
            .await
            .expect("tunnel");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let records = proxy.connections();
        assert_eq!(records.len(), 1, "{records:?}");
        let record = &records[0];
        assert_eq!(
            record.request_line.as_deref(),
            Some(format!("CONNECT localhost:{port} HTTP/1.1").as_str())
        );
        assert_eq!(
            record.host.as_deref(),
            Some(format!("localhost:{port}").as_str())
        );
        if auth {
            // Percent-decoded credentials, Basic-encoded: base64("us@er:p:ss@w0rd-canary").
            assert_eq!(
                record.proxy_authorization.as_deref(),
                Some(feed_sim::basic_auth_value(USER, PASSWORD).as_str())
            );
            assert_eq!(record.auth_ok, Some(true));
        } else {
            assert_eq!(record.proxy_authorization, None);
        }
    }
}

#[tokio::test]
async fn https_proxy_tls_then_connect() {
    let t = target().await;
    let proxy = ConnectProxy::start(
        ProxyOptions::new()
            .tls(t.ca.server_config(&["localhost"]))
            .basic_auth(USER, PASSWORD),
    )
    .await
    .expect("https proxy");
    let url = format!(
        "https://{}:{}@localhost:{}",
        enc(USER),
        enc(PASSWORD),
        proxy.addr().port()
    );
    let status = get_through(&connector(route(&url, 5), &t.ca), &t, "localhost")
        .await
        .expect("tunnel");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let records = proxy.connections();
    assert!(records[0].tls, "{records:?}");
    assert_eq!(records[0].auth_ok, Some(true));

    // The proxy's certificate is verified: a client that does not trust the CA fails, no fallback.
    let untrusting = TunnelConnector::new(route(&url, 5), "binance", Transport::Http);
    let err = get_through(&untrusting, &t, "localhost")
        .await
        .expect_err("untrusted proxy certificate");
    assert!(matches!(err.kind(), TunnelErrorKind::ProxyTls(_)), "{err}");
    assert_eq!(err.party(), Party::Proxy);
    assert_eq!(
        t.server.requests().len(),
        1,
        "nothing reached the target directly"
    );
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn socks_variants_send_the_right_address_type() {
    let t = target().await;
    let port = t.server.port();
    // (scheme, credentials, expected version, expected address type)
    let cases = [
        ("socks4", false, SocksVersion::Socks4, AddrType::Ipv4),
        ("socks4a", false, SocksVersion::Socks4a, AddrType::Domain),
        ("socks5", false, SocksVersion::Socks5, AddrType::Ipv4),
        ("socks5h", false, SocksVersion::Socks5, AddrType::Domain),
        ("socks5", true, SocksVersion::Socks5, AddrType::Ipv4),
        ("socks5h", true, SocksVersion::Socks5, AddrType::Domain),
    ];
    for (scheme, creds, version, addr_type) in cases {
        let options = if creds {
            SocksOptions::new().user_pass(USER, PASSWORD)
        } else {
            SocksOptions::new()
        };
        let proxy = SocksProxy::start(options).await.expect("socks proxy");
        let url = if creds {
            format!(
                "{scheme}://{}:{}@{}",
                enc(USER),
                enc(PASSWORD),
                proxy.addr()
            )
        } else {
            proxy.url(scheme)
        };
        let status = get_through(&connector(route(&url, 5), &t.ca), &t, "localhost")
            .await
            .expect(scheme);
        assert_eq!(status, "HTTP/1.1 200 OK", "{scheme}");
        let records = proxy.connections();
        assert_eq!(records.len(), 1, "{scheme}: {records:?}");
        let r = &records[0];
        assert_eq!(r.version, Some(version), "{scheme}");
        assert_eq!(r.addr_type, Some(addr_type), "{scheme}");
        assert_eq!(r.target_port, Some(port), "{scheme}");
        let expected_host = if addr_type == AddrType::Domain {
            "localhost"
        } else {
            "127.0.0.1"
        };
        assert_eq!(r.target_host.as_deref(), Some(expected_host), "{scheme}");
        if creds {
            assert_eq!(
                (r.username.as_deref(), r.password.as_deref()),
                (Some(USER), Some(PASSWORD)),
                "{scheme}"
            );
            assert_eq!(r.methods, vec![0x02], "{scheme}: only user/pass offered");
        } else if version == SocksVersion::Socks5 {
            assert_eq!(r.methods, vec![0x00], "{scheme}: only no-auth offered");
        }
    }
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn ipv6_proxy_and_ipv6_target() {
    let ca = TestCa::new();
    let Ok(server) = HttpsServer::start_on(
        "[::1]:0".parse().expect("addr"),
        &ca,
        Routes::new().route("/api/v3/ping", Response::json("{}")),
    )
    .await
    else {
        eprintln!("skipped: cannot bind [::1] on this machine");
        return;
    };
    let t = Target { ca, server };
    let proxy = SocksProxy::start(SocksOptions::new().bind("[::1]:0".parse().expect("addr")))
        .await
        .expect("proxy on ::1");
    let url = proxy.url("socks5");
    assert!(url.starts_with("socks5://[::1]:"), "{url}");
    let c = connector(route(&url, 5), &t.ca);
    let stream = c
        .connect("::1", t.server.port())
        .await
        .expect("tunnel to [::1]");
    drop(stream);
    let records = proxy.connections();
    assert_eq!(records[0].addr_type, Some(AddrType::Ipv6));
    assert_eq!(records[0].target_host.as_deref(), Some("::1"));

    let connect = ConnectProxy::start(ProxyOptions::new().bind("[::1]:0".parse().expect("addr")))
        .await
        .expect("connect proxy on ::1");
    let c = connector(route(&connect.url(), 5), &t.ca);
    drop(
        c.connect("::1", t.server.port())
            .await
            .expect("CONNECT to [::1]"),
    );
    let line = connect.connections()[0].request_line.clone();
    assert_eq!(
        line,
        Some(format!("CONNECT [::1]:{} HTTP/1.1", t.server.port()))
    );
}

/// socks4 and socks4a cannot carry IPv6: a configuration error found before the proxy is even
/// connected to, whose advice is right for both schemes.
#[cfg(feature = "socks")]
#[tokio::test]
async fn socks4_refuses_an_ipv6_target_before_connecting() {
    let ca = TestCa::new();
    // The "proxy" is a bare listener that is never accepted from: a TCP connect that had
    // succeeded would wait in its backlog.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    for scheme in ["socks4", "socks4a"] {
        let err = connector(route(&format!("{scheme}://127.0.0.1:{port}"), 5), &ca)
            .connect("::1", 443)
            .await
            .expect_err("socks4 + IPv6");
        assert!(
            matches!(err.kind(), TunnelErrorKind::Socks4Ipv6),
            "{scheme}: {err}"
        );
        assert_eq!(err.party(), Party::Configuration);
        assert!(err.to_string().contains("use socks5"), "{scheme}: {err}");
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("{scheme}: the connector connected to the proxy: {other:?}"),
        }
    }
}

/// hyper-util's SOCKS5 client writes the whole handshake into one 262-byte buffer: user name,
/// password and address take at most 253 bytes together. At the limit the tunnel works (normal
/// and optimistic); one byte past it is a configuration error before anything is sent, instead
/// of a proxy "closed in the middle of its answer".
#[cfg(feature = "socks")]
#[tokio::test]
async fn socks5_credentials_at_and_past_the_handshake_limit() {
    let t = target().await;
    // An IPv4 target takes 7 bytes: 1 + 245 + 7 = 253.
    for (password_len, fits) in [(245, true), (246, false)] {
        let password = "p".repeat(password_len);
        let mut proxy = SocksProxy::start(SocksOptions::new().user_pass("u", &password))
            .await
            .expect("socks proxy");
        for scheme in ["socks5", "socks5h"] {
            for optimistic in [false, true] {
                let c = connector(route(&proxy.url_with_credentials(scheme), 5), &t.ca)
                    .with_socks5_optimistic(optimistic);
                let result = get_through(&c, &t, "127.0.0.1").await;
                let case = format!("{scheme} optimistic {optimistic}, password {password_len}");
                match (result, fits) {
                    (Ok(status), true) => assert!(status.contains("200"), "{case}: {status}"),
                    (Err(err), false) => {
                        assert!(
                            matches!(err.kind(), TunnelErrorKind::Socks5RequestTooLong),
                            "{case}: {err}"
                        );
                        assert_eq!(err.party(), Party::Configuration, "{case}");
                        assert!(!err.to_string().contains("ppp"), "{case}: {err}");
                    }
                    (result, _) => panic!("{case}: {result:?}"),
                }
            }
        }
        if !fits {
            assert!(
                proxy.connections().is_empty(),
                "a connection too long to send was opened: {:?}",
                proxy.connections()
            );
        }
        proxy.shutdown().await;
    }

    // Found before the proxy is connected to (a bare listener whose backlog stays empty):
    // socks5h without credentials and a 253-byte target name, one byte too long; socks5 with
    // credentials too long even for the shortest address, before the name is looked up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let name = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(name.len(), 253);
    let long = format!("socks5://u:{}@127.0.0.1:{port}", "p".repeat(246));
    for (url, target) in [
        (format!("socks5h://127.0.0.1:{port}"), name.as_str()),
        (long, "localhost"),
    ] {
        let err = connector(route(&url, 5), &t.ca)
            .connect(target, 443)
            .await
            .expect_err("too long");
        assert!(
            matches!(err.kind(), TunnelErrorKind::Socks5RequestTooLong),
            "{err}"
        );
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("the connector connected to the proxy: {other:?}"),
        }
    }
}

/// Each fault gives its own typed error, naming exchange, transport, proxy and target.
#[tokio::test]
async fn connect_proxy_faults() {
    let t = target().await;
    let cases: Vec<(ConnectFault, Check, &str)> = vec![
        (
            ConnectFault::CloseImmediately,
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::ClosedBeforeAnswer)
                )
            },
            "proxy closed the connection without answering",
        ),
        (
            ConnectFault::Garbage,
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::NotHttp)
                )
            },
            "proxy answered CONNECT with something that is not HTTP",
        ),
        (
            ConnectFault::CloseMidHandshake,
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::Truncated)
                )
            },
            "proxy closed the connection in the middle of its answer",
        ),
        (
            ConnectFault::OversizedHeaders,
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::OversizedHeaders)
                )
            },
            "proxy answered CONNECT with oversized headers",
        ),
        (
            ConnectFault::Status(502),
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::TargetRefused(TargetRefusal::HttpStatus { status: 502, .. })
                )
            },
            "proxy refused the target: CONNECT answered 502",
        ),
    ];
    for (fault, check, message) in cases {
        let proxy = ConnectProxy::start(ProxyOptions::new().fault(fault))
            .await
            .expect("proxy");
        let url = format!("http://{}:{}@{}", enc(USER), enc(PASSWORD), proxy.addr());
        let err = connector(route(&url, 5), &t.ca)
            .connect("localhost", t.server.port())
            .await
            .expect_err("fault");
        assert!(check(err.kind()), "{fault:?}: {err}");
        let text = err.to_string();
        assert!(text.starts_with(message), "{fault:?}: {text}");
        assert!(
            text.ends_with(&format!(
                "(exchange binance, transport http, proxy http://{}, target localhost:{})",
                proxy.addr(),
                t.server.port()
            )),
            "{text}"
        );
        assert_clean(&err);
    }
    assert!(
        t.server.requests().is_empty(),
        "no fault may fall back to a direct connection"
    );
}

#[tokio::test]
async fn auth_required_and_rejected() {
    let t = target().await;
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let err = connector(route(&proxy.url(), 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("407");
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyAuthRequired),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("proxy requires authentication; add user:password to the proxy URL")
    );
    let wrong = format!("http://{}:{}@{}", enc(USER), "wrong-secret", proxy.addr());
    let err = connector(route(&wrong, 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("407 after credentials");
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyAuthRejected),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-secret"));
    assert_eq!(err.party(), Party::Proxy);
    assert_clean(&err);
}

#[cfg(feature = "socks")]
#[tokio::test]
async fn socks_faults() {
    let t = target().await;
    let wrong_password = SocksProxy::start(SocksOptions::new().user_pass(USER, "right-one"))
        .await
        .expect("proxy");
    let url = format!(
        "socks5h://{}:{}@{}",
        enc(USER),
        enc(PASSWORD),
        wrong_password.addr()
    );
    let err = connector(route(&url, 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("wrong password");
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyAuthRejected),
        "{err}"
    );
    assert_clean(&err);
    // No credentials for a proxy that requires them.
    let err = connector(route(&wrong_password.url("socks5h"), 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("auth required");
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyAuthRequired),
        "{err}"
    );

    let cases: Vec<(SocksFault, &str, Check, &str)> = vec![
        (
            SocksFault::Reply(0x05),
            "socks5h",
            |k| matches!(k, TunnelErrorKind::TargetRefused(TargetRefusal::Socks5(5))),
            "proxy refused the target: SOCKS5 reply 0x05 (connection refused)",
        ),
        (
            SocksFault::Reply(0x02),
            "socks5",
            |k| matches!(k, TunnelErrorKind::TargetRefused(TargetRefusal::Socks5(2))),
            "proxy refused the target: SOCKS5 reply 0x02 (connection not allowed by ruleset)",
        ),
        (
            SocksFault::Reply(0x5B),
            "socks4",
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::TargetRefused(TargetRefusal::Socks4(0x5b))
                )
            },
            "proxy refused the target: SOCKS4 reply 0x5b (request rejected or failed)",
        ),
        (
            SocksFault::Garbage,
            "socks5h",
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::NotSocks)
                )
            },
            "proxy answered with something that is not SOCKS",
        ),
        (
            SocksFault::CloseImmediately,
            "socks5",
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::ClosedBeforeAnswer)
                )
            },
            "proxy closed the connection without answering",
        ),
        (
            SocksFault::CloseMidHandshake,
            "socks5h",
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::Truncated)
                )
            },
            "proxy closed the connection in the middle of its answer",
        ),
        (
            SocksFault::CloseMidHandshake,
            "socks4a",
            |k| {
                matches!(
                    k,
                    TunnelErrorKind::ProxyProtocol(ProtocolViolation::Truncated)
                )
            },
            "proxy closed the connection in the middle of its answer",
        ),
    ];
    for (fault, scheme, check, message) in cases {
        let proxy = SocksProxy::start(SocksOptions::new().fault(fault))
            .await
            .expect("proxy");
        let err = connector(route(&proxy.url(scheme), 5), &t.ca)
            .connect("localhost", t.server.port())
            .await
            .expect_err("fault");
        assert!(check(err.kind()), "{fault:?} {scheme}: {err}");
        assert!(
            err.to_string().starts_with(message),
            "{fault:?} {scheme}: {err}"
        );
        assert_eq!(err.proxy(), Some(proxy.url(scheme).as_str()));
    }
    assert!(
        t.server.requests().is_empty(),
        "no fault may fall back to a direct connection"
    );
}

#[tokio::test]
async fn proxy_port_closed_is_unreachable() {
    let t = target().await;
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://{}:{}@127.0.0.1:{port}", enc(USER), enc(PASSWORD));
    let err = connector(route(&url, 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("closed port");
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyUnreachable(_)),
        "{err}"
    );
    assert!(err.to_string().starts_with("proxy unreachable: "), "{err}");
    assert_eq!(err.party(), Party::Proxy);
    assert_clean(&err);
    assert!(t.server.requests().is_empty(), "no fallback to direct");
}

/// A proxy that accepts and never answers: timeout_seconds = 1 fires before 3 s.
#[tokio::test]
async fn silent_proxy_times_out() {
    let t = target().await;
    let proxy = ConnectProxy::start(ProxyOptions::new().fault(ConnectFault::NeverAnswer))
        .await
        .expect("proxy");
    let started = Instant::now();
    let err = connector(route(&proxy.url(), 1), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err.kind(), TunnelErrorKind::ProxyTimeout(d) if *d == Duration::from_secs(1)),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("proxy handshake timed out after 1s"),
        "{err}"
    );
    assert!(t.server.requests().is_empty(), "no fallback to direct");
}

/// The exchange's certificate is verified through the tunnel: an untrusted one fails.
#[tokio::test]
async fn untrusted_exchange_certificate_through_the_tunnel() {
    let t = target().await;
    let proxy = ConnectProxy::start(ProxyOptions::new())
        .await
        .expect("proxy");
    let stream = connector(route(&proxy.url(), 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect("tunnel");
    let other_ca = TestCa::new();
    let tls = tokio_rustls::TlsConnector::from(other_ca.client_config());
    let err = tls
        .connect(ServerName::try_from("localhost").expect("name"), stream)
        .await
        .expect_err("certificate from an untrusted CA");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    assert!(t.server.requests().is_empty());
}

/// Everything at TRACE (ours and hyper-util's) while tunnels are opened with credentials, also
/// failing ones: no credential in the output.
#[tokio::test]
async fn trace_output_has_no_credentials() {
    let capture = feed_sim::TraceCapture::start();

    let t = target().await;
    let proxy = ConnectProxy::start(ProxyOptions::new().basic_auth(USER, PASSWORD))
        .await
        .expect("proxy");
    let good = format!("http://{}:{}@{}", enc(USER), enc(PASSWORD), proxy.addr());
    get_through(&connector(route(&good, 5), &t.ca), &t, "localhost")
        .await
        .expect("tunnel");
    let bad = format!("http://{}:{}x@{}", enc(USER), enc(PASSWORD), proxy.addr());
    let err = connector(route(&bad, 5), &t.ca)
        .connect("localhost", t.server.port())
        .await
        .expect_err("rejected");
    tracing::error!(error = %err, "as an application would log it");

    let output = capture.text();
    assert!(
        output.contains("tunnel established"),
        "the capture works: {output}"
    );
    for secret in [
        PASSWORD,
        &enc(PASSWORD),
        "w0rd-canary",
        &feed_sim::basic_auth_value(USER, PASSWORD),
    ] {
        assert!(
            !output.contains(secret),
            "credential in trace output: {output}"
        );
    }
}

/// Without the `socks` feature a socks route cannot even be configured: the settings reject it
/// at load time, naming the feature.
#[cfg(not(feature = "socks"))]
#[test]
fn socks_routes_are_rejected_at_load_time() {
    for scheme in ["socks4", "socks4a", "socks5", "socks5h"] {
        let err =
            ProxyConfig::parse(&format!("{scheme}://127.0.0.1:1080")).expect_err("socks is off");
        assert_eq!(
            err.to_string(),
            format!(
                "proxy scheme \"{scheme}\" needs the `socks` feature, which this build does not enable"
            )
        );
    }
}

#[test]
fn tls_options_load_ca_files_and_reject_bad_input() {
    let ca = TestCa::new();
    let dir = std::env::temp_dir().join(format!("proxy-tunnel-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let good = dir.join("ca.pem");
    std::fs::write(&good, ca.root_pem()).expect("write");
    TlsOptions::new()
        .with_ca_file(&good)
        .expect("PEM file")
        .client_config(&[])
        .expect("config");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a certificate").expect("write");
    let err = TlsOptions::new()
        .with_ca_file(&empty)
        .expect_err("no certificate");
    assert_eq!(
        err.to_string(),
        format!("no valid CA certificate in {}", empty.display())
    );
    let missing = dir.join("missing.pem");
    let err = TlsOptions::new()
        .with_ca_file(&missing)
        .expect_err("missing");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot read CA file {}: ", missing.display())),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
    // The system store of a Debian machine (ca-certificates) loads; where there is none, the
    // error says so instead of silently trusting nothing.
    match TlsOptions::new()
        .without_webpki_roots()
        .with_native_roots()
        .client_config(&[])
    {
        Ok(_) => {}
        Err(err) => assert_eq!(
            err.to_string(),
            "no valid CA certificate in the operating system's certificate store"
        ),
    }
}

/// A SOCKS5 proxy written out step by step: it answers user/pass and connect without checking
/// them, relays to `target`, and reports the bytes of its first read from the client.
#[cfg(feature = "socks")]
async fn scripted_socks5(
    target: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Receiver<Vec<u8>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (first_read, report) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let mut buf = vec![0u8; 1024];
        let Ok(n) = client.read(&mut buf).await else {
            return;
        };
        let mut seen = buf[..n].to_vec();
        let _ = first_read.send(seen.clone());
        // Greeting (3) + auth (3 + user + password) + request (10 for IPv4): read the rest, if
        // the client waited for answers, as it goes.
        let auth_len = 3 + USER.len() + PASSWORD.len();
        let mut answered = 0;
        loop {
            let needed = [3, 3 + auth_len, 3 + auth_len + 10];
            while answered < 3 && seen.len() >= needed[answered] {
                let reply: &[u8] = match answered {
                    0 => &[0x05, 0x02],
                    1 => &[0x01, 0x00],
                    _ => &[0x05, 0x00, 0x00, 0x01, 127, 0, 0, 1, 0, 0],
                };
                if client.write_all(reply).await.is_err() {
                    return;
                }
                answered += 1;
            }
            if answered == 3 {
                break;
            }
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
            return;
        };
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    });
    (addr, report)
}

/// Optimistic SOCKS5 sends greeting, user/pass and the connect request in one write (the
/// proxy's first read holds all three), and the tunnel then works; the default mode sends the
/// greeting alone and waits for the answer.
#[cfg(feature = "socks")]
#[tokio::test]
async fn optimistic_socks5_sends_the_whole_handshake_in_one_write() {
    let t = target().await;
    let port = t.server.port();
    let mut request = vec![0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1];
    request.extend_from_slice(&port.to_be_bytes());
    let mut auth = vec![0x01, USER.len() as u8];
    auth.extend_from_slice(USER.as_bytes());
    auth.push(PASSWORD.len() as u8);
    auth.extend_from_slice(PASSWORD.as_bytes());
    let greeting = vec![0x05, 0x01, 0x02];

    for optimistic in [true, false] {
        let (proxy, first_read) = scripted_socks5(t.server.addr()).await;
        let url = format!("socks5://{}:{}@{proxy}", enc(USER), enc(PASSWORD));
        let connector = connector(route(&url, 5), &t.ca).with_socks5_optimistic(optimistic);
        let status = get_through(&connector, &t, "127.0.0.1")
            .await
            .expect("tunnel");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let first = tokio::time::timeout(DEADLINE, first_read)
            .await
            .expect("in time")
            .expect("the proxy read something");
        let expected = if optimistic {
            [greeting.clone(), auth.clone(), request.clone()].concat()
        } else {
            greeting.clone()
        };
        assert_eq!(first, expected, "optimistic {optimistic}");
    }
}
