//! TLS verification through every tunnel: an exchange certificate from a CA the client does not
//! trust, and one for another host name, each end the connection with a typed TLS error and
//! nothing delivered, for REST (`HttpConn`) and WebSocket (`WsConn`), directly and through HTTP
//! CONNECT over http:// and https://, SOCKS4, SOCKS4a (feed-sim's proxy, which implements it),
//! SOCKS5 and SOCKS5h. An https:// proxy's own certificate is verified the same way. And no
//! option turns verification off: the options' fields are pinned, the client configuration's
//! verifier is rustls' WebPki one, and no source file builds another.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use feed_handler::HandlerOptions;
use feed_handler::feed_conn::{
    ConnError, ConnOptions, HttpConn, HttpConnOptions, HttpOptions, TlsOptions, WsConn,
    WsConnOptions, WsOptions,
};
use feed_sim::{
    ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa, WssOptions, WssServer,
};
use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::Resolver;

/// No case may take longer (a hang is a failure, not a stuck suite).
const CASE_DEADLINE: Duration = Duration::from_secs(20);

/// How the connection reaches the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tunnel {
    Direct,
    /// HTTP CONNECT over http://.
    Connect,
    /// HTTP CONNECT inside TLS to the proxy (https://), the proxy's certificate trusted.
    ConnectTls,
    #[cfg(feature = "socks")]
    Socks4,
    /// Only to feed-sim's proxy, which implements 4a (never to one that does not).
    #[cfg(feature = "socks")]
    Socks4a,
    #[cfg(feature = "socks")]
    Socks5,
    #[cfg(feature = "socks")]
    Socks5h,
}

impl Tunnel {
    fn all() -> Vec<Tunnel> {
        vec![
            Tunnel::Direct,
            Tunnel::Connect,
            Tunnel::ConnectTls,
            #[cfg(feature = "socks")]
            Tunnel::Socks4,
            #[cfg(feature = "socks")]
            Tunnel::Socks4a,
            #[cfg(feature = "socks")]
            Tunnel::Socks5,
            #[cfg(feature = "socks")]
            Tunnel::Socks5h,
        ]
    }
}

/// The exchange's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cert {
    /// From the trusted CA, for `localhost`: the control, which must deliver.
    Good,
    /// From another CA (with the same name as the trusted one: an impostor).
    UntrustedCa,
    /// From the trusted CA, for `wrong.example` only.
    WrongName,
}

/// The connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Rest,
    Ws,
}

/// A running proxy of a tunnel.
enum Proxy {
    None,
    Connect(ConnectProxy),
    #[cfg(feature = "socks")]
    Socks(feed_sim::SocksProxy, &'static str),
}

impl Proxy {
    /// The proxy of `tunnel`; an https:// one presents `proxy_cert` names from `proxy_ca`.
    async fn start(tunnel: Tunnel, proxy_ca: &TestCa, proxy_names: &[&str]) -> Self {
        match tunnel {
            Tunnel::Direct => Proxy::None,
            Tunnel::Connect => Proxy::Connect(
                ConnectProxy::start(ProxyOptions::new())
                    .await
                    .expect("proxy"),
            ),
            Tunnel::ConnectTls => Proxy::Connect(
                ConnectProxy::start(ProxyOptions::new().tls(proxy_ca.server_config(proxy_names)))
                    .await
                    .expect("https proxy"),
            ),
            #[cfg(feature = "socks")]
            other => {
                use feed_sim::{SocksOptions, SocksProxy};
                let (options, scheme) = match other {
                    Tunnel::Socks4 => (SocksOptions::socks4().socks4a(false), "socks4"),
                    Tunnel::Socks4a => (SocksOptions::socks4().socks4a(true), "socks4a"),
                    Tunnel::Socks5 => (SocksOptions::socks5(), "socks5"),
                    _ => (SocksOptions::socks5(), "socks5h"),
                };
                Proxy::Socks(SocksProxy::start(options).await.expect("socks"), scheme)
            }
        }
    }

    /// The proxy URL (`host` for an https:// proxy: the name or address the client verifies).
    fn url(&self, tls_host: &str) -> Option<String> {
        match self {
            Proxy::None => None,
            Proxy::Connect(p) if p.url().starts_with("https") => {
                Some(format!("https://{tls_host}:{}", p.addr().port()))
            }
            Proxy::Connect(p) => Some(p.url()),
            #[cfg(feature = "socks")]
            Proxy::Socks(p, scheme) => Some(p.url(scheme)),
        }
    }

    /// The target ports the proxy opened tunnels to, and whether any client request reached
    /// it at all.
    fn tunnelled_ports(&self) -> (Vec<u16>, bool) {
        match self {
            Proxy::None => (Vec::new(), false),
            Proxy::Connect(p) => {
                let records = p.connections();
                let requested = records.iter().any(|r| r.request_line.is_some());
                let ports = records
                    .iter()
                    .filter_map(|r| r.upstream.map(|u| u.port()))
                    .collect();
                (ports, requested)
            }
            #[cfg(feature = "socks")]
            Proxy::Socks(p, _) => {
                let records = p.connections();
                let requested = records.iter().any(|r| r.target_port.is_some());
                let ports = records
                    .iter()
                    .filter_map(|r| r.upstream.map(|u| u.port()))
                    .collect();
                (ports, requested)
            }
        }
    }
}

/// Connection options routing both transports of the exchange through `url` (direct: `None`).
fn route(url: Option<&str>) -> ConnOptions {
    let mut settings = ProxySettings::default();
    if let Some(url) = url {
        let proxy = ProxyConfig::parse(url).expect("proxy url");
        settings = settings.with_exchange(
            ExchangeId::new("binance").expect("id"),
            ConnectionProxies::both(proxy),
        );
    }
    ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings)))
}

/// Trusts `ca` only.
fn trust(ca: &TestCa) -> TlsOptions {
    TlsOptions::new()
        .without_webpki_roots()
        .with_ca_pem(ca.root_pem().as_bytes())
        .expect("CA")
}

/// How a connection ended.
enum Outcome {
    Delivered,
    Failed(ConnError),
    Other(String),
}

/// Opens one connection to `url` along `conn`, trusting `tls`: REST reads it, WebSocket opens it
/// and reads one message.
async fn connect(via: Via, url: &str, conn: ConnOptions, tls: &TlsOptions) -> Outcome {
    match via {
        Via::Rest => {
            let http = HttpConn::new(
                "tls",
                "binance",
                HttpConnOptions {
                    http: HttpOptions {
                        tls: tls.clone(),
                        timeout: CASE_DEADLINE / 2,
                        ..HttpOptions::default()
                    },
                    conn,
                    ..HttpConnOptions::default()
                },
            );
            let result = http.read(url).await;
            http.close().await;
            match result {
                Ok(_) => Outcome::Delivered,
                Err(error) => Outcome::Failed(error),
            }
        }
        Via::Ws => {
            let options = WsConnOptions {
                ws: WsOptions {
                    tls: tls.clone(),
                    ..WsOptions::default()
                },
                conn,
                ..WsConnOptions::default()
            };
            let mut ws = match WsConn::new("tls", "binance", url, options) {
                Ok(ws) => ws,
                Err(error) => return Outcome::Failed(error),
            };
            let outcome = match ws.open().await {
                Err(error) => Outcome::Failed(error),
                Ok(()) => match ws.next().await {
                    Ok(Some(_)) => Outcome::Delivered,
                    Ok(None) => Outcome::Other("closed before a message".into()),
                    Err(error) => Outcome::Failed(error),
                },
            };
            ws.close().await;
            outcome
        }
    }
}

/// The certificate error rustls gave (its Debug name), if the error is the typed TLS error of
/// the exchange (`who` = "exchange") or of an https:// proxy (`who` = "proxy").
fn certificate_error(error: &ConnError, via: Via, who: &str) -> Option<String> {
    let debug = format!("{error:?}");
    let typed = match (who, via, error) {
        // proxy-http's `ConnectError::Tls` inside `HttpErrorKind::Connect`.
        ("exchange", Via::Rest, ConnError::Http { .. }) => {
            error.tunnel_error().is_none() && debug.contains("kind: Connect(Tls {")
        }
        // proxy-ws's `WsErrorKind::Tls`.
        ("exchange", Via::Ws, ConnError::Ws { .. }) => {
            error.tunnel_error().is_none() && debug.contains("kind: Tls(")
        }
        // proxy-tunnel's `TunnelErrorKind::ProxyTls`, the proxy at fault.
        ("proxy", _, _) => error.tunnel_error().is_some_and(|t| {
            format!("{:?}", t.kind()).starts_with("ProxyTls(")
                && format!("{:?}", t.party()) == "Proxy"
        }),
        _ => false,
    };
    let start = debug.find("InvalidCertificate(")?;
    let name: String = debug[start + "InvalidCertificate(".len()..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    typed.then_some(name)
}

/// The rustls certificate errors each failure may give. An impostor CA with the trusted CA's
/// name is found as the trusted anchor, then fails its signature check (`BadSignature`); a CA
/// of another name is `UnknownIssuer`.
fn expected_errors(cert: Cert) -> &'static [&'static str] {
    match cert {
        Cert::Good => &[],
        Cert::UntrustedCa => &["BadSignature", "UnknownIssuer"],
        Cert::WrongName => &["NotValidForNameContext", "NotValidForName"],
    }
}

/// One exchange-certificate case: a fresh server and proxy, the connection, the checks.
async fn exchange_case(ca: Arc<TestCa>, tunnel: Tunnel, cert: Cert, via: Via) -> Vec<String> {
    let mut problems = Vec::new();
    let other_ca = TestCa::new();
    let (server_ca, names): (&TestCa, &[&str]) = match cert {
        Cert::Good => (&ca, &["localhost", "127.0.0.1"]),
        Cert::UntrustedCa => (&other_ca, &["localhost", "127.0.0.1"]),
        Cert::WrongName => (&ca, &["wrong.example"]),
    };
    // The control serves what each transport asks for; the failing servers only need TLS
    // (nothing may get past it), a WebSocket server records whatever arrives either way.
    let rest = if cert == Cert::Good && via == Via::Rest {
        Some(
            HttpsServer::start(&ca, Routes::new().route("/ok", Response::json("{}")))
                .await
                .expect("https server"),
        )
    } else {
        None
    };
    let wss = WssServer::start(
        server_ca,
        WssOptions::new()
            .cert_names(names)
            .stream(1, None)
            .echo(false),
    )
    .await
    .expect("wss server");
    let port = rest.as_ref().map_or_else(|| wss.port(), HttpsServer::port);
    let url = match via {
        Via::Rest => format!("https://localhost:{port}/ok"),
        Via::Ws => format!("wss://localhost:{port}/ws"),
    };
    let proxy = Proxy::start(tunnel, &ca, &["localhost"]).await;
    let outcome = connect(
        via,
        &url,
        route(proxy.url("localhost").as_deref()),
        &trust(&ca),
    )
    .await;

    match (&outcome, cert) {
        (Outcome::Delivered, Cert::Good) => {}
        (Outcome::Delivered, _) => problems.push("delivered through a bad certificate".into()),
        (Outcome::Failed(error), Cert::Good) => problems.push(format!("control failed: {error}")),
        (Outcome::Failed(error), _) => match certificate_error(error, via, "exchange") {
            Some(name) if expected_errors(cert).contains(&name.as_str()) => {}
            _ => problems.push(format!("not the typed TLS error expected: {error:?}")),
        },
        (Outcome::Other(what), _) => problems.push(what.clone()),
    }
    if cert != Cert::Good {
        let records = wss.connections();
        if records.is_empty() {
            problems.push("the server saw no connection".into());
        }
        if records.iter().any(|r| r.request_line.is_some()) {
            problems.push("a request reached the server past a failed TLS handshake".into());
        }
    }
    // The connection took its tunnel: the proxy opened one to the server's port.
    let (ports, _) = proxy.tunnelled_ports();
    if tunnel != Tunnel::Direct && !ports.contains(&port) {
        problems.push(format!("the proxy did not tunnel to {port}: {ports:?}"));
    }
    problems
}

#[tokio::test]
async fn exchange_certificates_are_verified_through_every_tunnel() {
    let ca = Arc::new(TestCa::new());
    let mut running = tokio::task::JoinSet::new();
    let mut count = 0;
    for tunnel in Tunnel::all() {
        for cert in [Cert::Good, Cert::UntrustedCa, Cert::WrongName] {
            for via in [Via::Rest, Via::Ws] {
                let ca = Arc::clone(&ca);
                count += 1;
                running.spawn(async move {
                    let problems =
                        tokio::time::timeout(CASE_DEADLINE, exchange_case(ca, tunnel, cert, via))
                            .await
                            .unwrap_or_else(|_| vec![format!("no end within {CASE_DEADLINE:?}")]);
                    (tunnel, cert, via, problems)
                });
            }
        }
    }
    let mut failures = Vec::new();
    while let Some(joined) = running.join_next().await {
        let (tunnel, cert, via, problems) = joined.expect("case");
        failures.extend(
            problems
                .into_iter()
                .map(|p| format!("{tunnel:?} {cert:?} {via:?}: {p}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(count, Tunnel::all().len() * 6);
}

/// An https:// proxy's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyCert {
    /// From a CA the client does not trust (same name as the trusted one).
    UntrustedCa,
    /// From the trusted CA, for `wrong.example` only.
    WrongName,
    /// From the trusted CA for `localhost`, the proxy addressed as `127.0.0.1`.
    NameButAddressed,
}

async fn proxy_case(ca: Arc<TestCa>, cert: ProxyCert, via: Via) -> Vec<String> {
    let mut problems = Vec::new();
    let other_ca = TestCa::new();
    let (proxy_ca, names, host): (&TestCa, &[&str], &str) = match cert {
        ProxyCert::UntrustedCa => (&other_ca, &["localhost"], "localhost"),
        ProxyCert::WrongName => (&ca, &["wrong.example"], "localhost"),
        ProxyCert::NameButAddressed => (&ca, &["localhost"], "127.0.0.1"),
    };
    let rest = HttpsServer::start(&ca, Routes::new().route("/ok", Response::json("{}")))
        .await
        .expect("https server");
    let wss = WssServer::start(&ca, WssOptions::new().stream(1, None).echo(false))
        .await
        .expect("wss server");
    let url = match via {
        Via::Rest => format!("https://localhost:{}/ok", rest.port()),
        Via::Ws => wss.url("/ws"),
    };
    let proxy = Proxy::start(Tunnel::ConnectTls, proxy_ca, names).await;
    let outcome = connect(via, &url, route(proxy.url(host).as_deref()), &trust(&ca)).await;
    let expected: &[&str] = match cert {
        ProxyCert::UntrustedCa => expected_errors(Cert::UntrustedCa),
        _ => expected_errors(Cert::WrongName),
    };
    match &outcome {
        Outcome::Failed(error) => match certificate_error(error, via, "proxy") {
            Some(name) if expected.contains(&name.as_str()) => {}
            _ => problems.push(format!("not the typed proxy TLS error expected: {error:?}")),
        },
        Outcome::Delivered => problems.push("delivered through a bad proxy certificate".into()),
        Outcome::Other(what) => problems.push(what.clone()),
    }
    // Nothing went past the proxy's TLS handshake: no CONNECT, no tunnel, nothing at the
    // exchange.
    let (ports, requested) = proxy.tunnelled_ports();
    if requested || !ports.is_empty() {
        problems.push(format!("a request reached the proxy: tunnels to {ports:?}"));
    }
    if !rest.requests().is_empty() || !wss.connections().is_empty() {
        problems.push("the exchange was reached".into());
    }
    problems
}

#[tokio::test]
async fn an_https_proxy_certificate_is_verified() {
    let ca = Arc::new(TestCa::new());
    let mut failures = Vec::new();
    for cert in [
        ProxyCert::UntrustedCa,
        ProxyCert::WrongName,
        ProxyCert::NameButAddressed,
    ] {
        for via in [Via::Rest, Via::Ws] {
            let problems =
                tokio::time::timeout(CASE_DEADLINE, proxy_case(Arc::clone(&ca), cert, via))
                    .await
                    .unwrap_or_else(|_| vec![format!("no end within {CASE_DEADLINE:?}")]);
            failures.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{cert:?} {via:?}: {p}")),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The field names of a `Debug` print's outer struct.
fn debug_fields(debug: &str) -> Vec<String> {
    let Some(open) = debug.find('{') else {
        return Vec::new();
    };
    let mut fields = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expecting_name = true;
    let mut name = String::new();
    for c in debug[open..].chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' | '(' => {
                depth += 1;
                if depth == 1 {
                    expecting_name = true;
                }
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting_name = true,
            ':' if depth == 1 && expecting_name => {
                fields.push(name.trim().to_owned());
                name.clear();
                expecting_name = false;
            }
            _ if depth == 1 && expecting_name => name.push(c),
            _ => {}
        }
    }
    fields
}

#[test]
fn no_option_turns_verification_off() {
    // Every option a client of this workspace can set, by name. A field that could disable
    // certificate verification must carry `insecure` in its name and log a warning when used:
    // a new field here is reviewed against that rule before this list is updated.
    let http = HttpOptions::default();
    let ws = WsOptions::default();
    let pins: [(&str, String, &[&str]); 7] = [
        (
            "TlsOptions",
            format!("{:?}", TlsOptions::default()),
            &["webpki_roots", "native_roots", "extra"],
        ),
        (
            "HttpOptions",
            format!("{http:?}"),
            &[
                "tls",
                "timeout",
                "max_body_bytes",
                "pool_idle_timeout",
                "direct_timeout",
            ],
        ),
        (
            "WsOptions",
            format!("{ws:?}"),
            &[
                "tls",
                "headers",
                "subprotocols",
                "max_message_size",
                "idle_timeout",
                "direct_timeout",
                // SOCKS5 handshake in one flight: no effect on TLS (reviewed).
                "socks5_optimistic",
            ],
        ),
        (
            "HttpConnOptions",
            format!("{:?}", HttpConnOptions::default()),
            &["http", "conn", "retry"],
        ),
        (
            "WsConnOptions",
            format!("{:?}", WsConnOptions::default()),
            &["ws", "conn", "subscription", "auth"],
        ),
        (
            "ConnOptions",
            format!("{:?}", ConnOptions::default()),
            &["route_source", "legacy_proxy", "raw_callback"],
        ),
        (
            "HandlerOptions",
            format!("{:?}", HandlerOptions::default()),
            &["http", "ws", "conn", "backoff"],
        ),
    ];
    for (name, debug, expected) in pins {
        assert_eq!(debug_fields(&debug), expected, "{name}: {debug}");
        assert!(!debug.to_ascii_lowercase().contains("insecure"), "{name}");
    }

    // What the options build: rustls' WebPki verifier, with whatever roots, never another.
    let ca = TestCa::new();
    let configs = [
        TlsOptions::new(),
        TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
        TlsOptions::new()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("CA"),
    ];
    for options in configs {
        for alpn in [&[][..], &[&b"http/1.1"[..]][..]] {
            let config = options.client_config(alpn).expect("client config");
            let debug = format!("{config:?}");
            assert!(
                debug.contains("verifier: WebPkiServerVerifier {"),
                "a client configuration without rustls' WebPki verifier: {options:?}"
            );
        }
    }
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_replaces_the_certificate_verifier() {
    // The ways rustls (and hyper-rustls, tokio-rustls, reqwest-style builders) let code skip
    // or replace server certificate verification. None may appear in the workspace's
    // library and binary sources; a deliberate one must be named `insecure`, log a warning,
    // and be listed here with the test that shows the warning.
    const NEEDLES: [&str; 9] = [
        ".dangerous()",
        "DangerousClientConfig",
        "ServerCertVerifier",
        "with_custom_certificate_verifier",
        "set_certificate_verifier",
        "NoCertificateVerification",
        "danger_accept_invalid",
        "accept_invalid_certs",
        "insecure",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "xtask"] {
        rust_files(&root.join(dir), &mut files);
    }
    // Sources only: tests may say what they look for (this file does).
    files.retain(|f| f.components().any(|c| c.as_os_str() == "src"));
    assert!(
        files.iter().any(|f| f.ends_with("proxy-tunnel/src/tls.rs")),
        "the scan found the sources under {}",
        root.display()
    );
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            for needle in NEEDLES {
                if lower.contains(&needle.to_ascii_lowercase()) {
                    hits.push(format!(
                        "{}:{}: {}",
                        file.display(),
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "verification bypasses:\n{}",
        hits.join("\n")
    );
}
