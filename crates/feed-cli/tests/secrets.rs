//! Secrets in the CLI: a canary user name and password, with characters that need
//! percent-encoding, given to `feedproxy check`, `probe` and `stream` through every source the
//! CLI reads (environment, YAML file, TOML file), for every proxy kind that carries a credential
//! and through every failure, with `-vv` and with `RUST_LOG=trace`. stdout and stderr never
//! hold the canary in any form (plain, percent-encoded, `user:password`, Basic auth base64),
//! while the proxies show they received it.

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::{Trust, feedproxy, feedproxy_async, text_without_secret, userinfo_encode, write};
use feed_sim::exchange::{ExchangeKind, FakeExchange, FakeExchangeOptions};
use feed_sim::wss::HandshakeFault;
use feed_sim::{
    ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa, WssOptions, WssServer,
};

/// The canary user name: an `@` to encode, an alphanumeric start a partial leak would show.
const USER: &str = "CanaryUsr9@ops";
/// The canary password: `@ : / # ?` and a literal `%21` to encode, and a non-ASCII letter.
const PASSWORD: &str = "CanaryPw7xQ@:/w%21#?é";

/// `user:password@`, percent-encoded.
fn userinfo() -> String {
    format!("{}:{}", userinfo_encode(USER), userinfo_encode(PASSWORD))
}

/// Where the CLI reads the settings from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Env,
    Yaml,
    Toml,
}

impl Source {
    const ALL: [Source; 3] = [Source::Env, Source::Yaml, Source::Toml];
}

/// How verbose the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logs {
    /// `-vv`: trace.
    Vv,
    /// `RUST_LOG=trace`.
    RustLog,
}

/// Arguments and environment for settings of `transport` (`http` / `websocket`) of binance:
/// `url` with `timeout` seconds, written in `source`, files in `dir`.
fn settings_args(
    source: Source,
    transport: &str,
    url: &str,
    timeout: u64,
    dir: &Path,
) -> (Vec<String>, Vec<(String, String)>) {
    match source {
        Source::Env => {
            let prefix = format!(
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__{}",
                transport.to_ascii_uppercase()
            );
            (
                Vec::new(),
                vec![
                    (format!("{prefix}__URL"), url.to_owned()),
                    (format!("{prefix}__TIMEOUT_SECONDS"), timeout.to_string()),
                ],
            )
        }
        Source::Yaml => {
            let text = format!(
                "proxy:\n  exchanges:\n    binance:\n      {transport}:\n        url: '{url}'\n        timeout_seconds: {timeout}\n"
            );
            let path = write(dir, &format!("{transport}-{timeout}.yaml"), &text);
            (vec!["--config".to_owned(), path], Vec::new())
        }
        Source::Toml => {
            let text = format!(
                "[proxy.exchanges.binance.{transport}]\nurl = '{url}'\ntimeout_seconds = {timeout}\n"
            );
            let path = write(dir, &format!("{transport}-{timeout}.toml"), &text);
            (vec!["--config".to_owned(), path], Vec::new())
        }
    }
}

/// Adds the logging of `logs` to `args` and `env`.
fn with_logs(logs: Logs, args: &mut Vec<String>, env: &mut Vec<(String, String)>) {
    match logs {
        Logs::Vv => args.insert(0, "-vv".to_owned()),
        Logs::RustLog => env.push(("RUST_LOG".to_owned(), "trace".to_owned())),
    }
}

/// Runs `feedproxy` with owned arguments.
fn run(args: &[String], env: &[(String, String)]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    feedproxy(&args, &env)
}

// ---------------------------------------------------------------------------------------------
// `feedproxy check`: every source, every scheme, settings right and wrong.

/// What is wrong with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// A user name alone: the SOCKS4 user id.
    UserOnly,
    MissingPort,
    PathAfter,
    /// The credentials not percent-encoded.
    RawCredentials,
    TimeoutText,
    TimeoutZero,
    /// A misspelt key, holding the URL too, next to `url`.
    UnknownKey,
    /// The URL where a table belongs.
    UrlInPlaceOfTable,
    /// The file (or variable name) broken on the URL's line.
    Syntax,
}

impl Fault {
    const ALL: [Fault; 10] = [
        Fault::None,
        Fault::UserOnly,
        Fault::MissingPort,
        Fault::PathAfter,
        Fault::RawCredentials,
        Fault::TimeoutText,
        Fault::TimeoutZero,
        Fault::UnknownKey,
        Fault::UrlInPlaceOfTable,
        Fault::Syntax,
    ];
}

/// Arguments and environment of one `check` case.
fn check_case(
    source: Source,
    scheme: &str,
    fault: Fault,
    dir: &Path,
) -> (Vec<String>, Vec<(String, String)>) {
    let user = userinfo_encode(USER);
    let url = match fault {
        Fault::UserOnly => format!("{scheme}://{user}@proxy.example:8080"),
        Fault::MissingPort => format!("{scheme}://{}@proxy.example", userinfo()),
        Fault::PathAfter => format!("{scheme}://{}@proxy.example:8080/p?q", userinfo()),
        Fault::RawCredentials => format!("{scheme}://{USER}:{PASSWORD}@proxy.example:8080"),
        _ => format!("{scheme}://{}@proxy.example:8080", userinfo()),
    };
    let timeout = match fault {
        Fault::TimeoutText => "abc",
        Fault::TimeoutZero => "0",
        _ => "9",
    };
    let file_name = format!("{scheme}-{fault:?}");
    match source {
        Source::Env => {
            let prefix = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP";
            let mut env = vec![(format!("{prefix}__TIMEOUT_SECONDS"), timeout.to_owned())];
            match fault {
                Fault::UrlInPlaceOfTable => env = vec![(prefix.to_owned(), url)],
                Fault::Syntax => env.push((format!("{prefix}__URL__"), url)),
                Fault::UnknownKey => {
                    env.push((format!("{prefix}__URL"), url.clone()));
                    env.push((format!("{prefix}__ADRESS"), url));
                }
                _ => env.push((format!("{prefix}__URL"), url)),
            }
            (vec!["check".to_owned()], env)
        }
        Source::Yaml => {
            let value = if fault == Fault::Syntax {
                format!("\"{url}")
            } else {
                format!("'{url}'")
            };
            let timeout = if fault == Fault::TimeoutText {
                "'abc'"
            } else {
                timeout
            };
            let text = match fault {
                Fault::UrlInPlaceOfTable => {
                    format!("proxy:\n  exchanges:\n    binance:\n      http: {value}\n")
                }
                Fault::UnknownKey => format!(
                    "proxy:\n  exchanges:\n    binance:\n      http:\n        url: {value}\n        adress: {value}\n"
                ),
                _ => format!(
                    "proxy:\n  exchanges:\n    binance:\n      http:\n        url: {value}\n        timeout_seconds: {timeout}\n"
                ),
            };
            let path = write(dir, &format!("{file_name}.yaml"), &text);
            (
                vec!["check".to_owned(), "--config".to_owned(), path],
                Vec::new(),
            )
        }
        Source::Toml => {
            let value = if fault == Fault::Syntax {
                format!("\"{url}")
            } else {
                format!("'{url}'")
            };
            let timeout = if fault == Fault::TimeoutText {
                "'abc'"
            } else {
                timeout
            };
            let text = match fault {
                Fault::UrlInPlaceOfTable => format!("[proxy.exchanges.binance]\nhttp = {value}\n"),
                Fault::UnknownKey => {
                    format!("[proxy.exchanges.binance.http]\nurl = {value}\nadress = {value}\n")
                }
                _ => format!(
                    "[proxy.exchanges.binance.http]\nurl = {value}\ntimeout_seconds = {timeout}\n"
                ),
            };
            let path = write(dir, &format!("{file_name}.toml"), &text);
            (
                vec!["check".to_owned(), "--config".to_owned(), path],
                Vec::new(),
            )
        }
    }
}

/// Whether an error line names the key and where it came from, as invalid settings must.
fn names_key_and_source(stderr: &str) -> bool {
    stderr.starts_with("error: ") && stderr.contains("(from ")
}

#[test]
fn check_prints_no_credential_from_any_source_valid_or_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut runs = Vec::new();
    for source in Source::ALL {
        for scheme in ["http", "https", "socks4", "socks4a", "socks5", "socks5h"] {
            for fault in Fault::ALL {
                let valid = matches!(fault, Fault::None | Fault::UserOnly)
                    && !scheme.starts_with("socks4")
                    && (cfg!(feature = "socks") || !scheme.starts_with("socks"));
                for logs in [Logs::Vv, Logs::RustLog] {
                    let (mut args, mut env) = check_case(source, scheme, fault, dir.path());
                    args.extend(["--exchange".to_owned(), "binance".to_owned()]);
                    if valid && logs == Logs::RustLog {
                        args.push("--json".to_owned());
                    }
                    with_logs(logs, &mut args, &mut env);
                    runs.push((
                        format!("{source:?} {scheme} {fault:?} {logs:?}"),
                        valid,
                        args,
                        env,
                    ));
                }
            }
        }
    }
    // A few processes at a time.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let chunks: Vec<_> = runs.chunks(runs.len().div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    let mut failures = Vec::new();
                    for (what, valid, args, env) in chunk {
                        let out = run(args, env);
                        let (stdout, stderr) = text_without_secret(&out, what, USER, PASSWORD);
                        let expected = if *valid { 0 } else { 2 };
                        if out.status.code() != Some(expected) {
                            failures.push(format!(
                                "{what}: exit {:?}, expected {expected}\n{stdout}\n{stderr}",
                                out.status.code()
                            ));
                        } else if *valid && !stdout.contains("proxy.example:8080") {
                            failures.push(format!("{what}: the route is not shown:\n{stdout}"));
                        } else if !*valid && !names_key_and_source(&stderr) {
                            failures.push(format!("{what}: no key and source:\n{stderr}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("runner"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// `feedproxy probe`: every credential-carrying kind, every failure, both transports.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Https,
    #[cfg(feature = "socks")]
    Socks5,
    #[cfg(feature = "socks")]
    Socks5h,
}

impl Kind {
    fn all() -> Vec<Kind> {
        vec![
            Kind::Http,
            Kind::Https,
            #[cfg(feature = "socks")]
            Kind::Socks5,
            #[cfg(feature = "socks")]
            Kind::Socks5h,
        ]
    }

    fn scheme(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Https => "https",
            #[cfg(feature = "socks")]
            Kind::Socks5 => "socks5",
            #[cfg(feature = "socks")]
            Kind::Socks5h => "socks5h",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    None,
    AuthRejected,
    Unreachable,
    Silent,
    Garbage,
    /// The https:// proxy's certificate from a CA nobody trusts.
    ProxyTls,
    /// The exchange's certificate, through the tunnel, from a CA nobody trusts.
    ExchangeTls,
    /// The exchange answers the upgrade with 403 (wss:// only).
    UpgradeRejected,
    /// The exchange answers the GET with 403 (https:// only; the probe reports it, exit 0).
    RestStatus,
}

impl Failure {
    const ALL: [Failure; 9] = [
        Failure::None,
        Failure::AuthRejected,
        Failure::Unreachable,
        Failure::Silent,
        Failure::Garbage,
        Failure::ProxyTls,
        Failure::ExchangeTls,
        Failure::UpgradeRejected,
        Failure::RestStatus,
    ];

    /// Exit code, and a phrase stderr (failures) or stdout (successes) must hold.
    fn expected(self) -> (i32, &'static str) {
        match self {
            Failure::None => (0, "certificate verified for localhost"),
            Failure::AuthRejected => (1, "proxy rejected the credentials"),
            Failure::Unreachable => (1, "proxy unreachable"),
            Failure::Silent => (1, "proxy handshake timed out after 1s"),
            Failure::Garbage => (1, "with something that is not"),
            Failure::ProxyTls => (1, "TLS to the proxy failed"),
            Failure::ExchangeTls => (1, "TLS to the exchange failed"),
            Failure::UpgradeRejected => (1, "WebSocket handshake failed"),
            Failure::RestStatus => (0, "403 Forbidden"),
        }
    }
}

/// The servers all probe cases share.
struct Exchange {
    ca: TestCa,
    untrusted_ca: TestCa,
    ca_file: String,
    dir: tempfile::TempDir,
    rest: HttpsServer,
    ws: WssServer,
    ws_rejecting: WssServer,
    untrusted: WssServer,
}

/// A proxy with its canary URL.
enum Proxy {
    Connect(ConnectProxy),
    #[cfg(feature = "socks")]
    Socks(feed_sim::SocksProxy),
    Closed(feed_sim::ClosedPort),
}

impl Proxy {
    /// The proxy of `kind` for `failure`; an https:// one certified by `ca`, or for
    /// [`Failure::ProxyTls`] by `untrusted_ca`.
    async fn start(ca: &TestCa, untrusted_ca: &TestCa, kind: Kind, failure: Failure) -> Self {
        if failure == Failure::Unreachable {
            return Proxy::Closed(feed_sim::ClosedPort::new().expect("closed port"));
        }
        let password = if failure == Failure::AuthRejected {
            "not-the-canary"
        } else {
            PASSWORD
        };
        match kind {
            Kind::Http | Kind::Https => {
                use feed_sim::connect_proxy::Fault;
                let mut options = ProxyOptions::new().basic_auth(USER, password);
                options = match failure {
                    Failure::Silent => options.fault(Fault::NeverAnswer),
                    Failure::Garbage => options.fault(Fault::Garbage),
                    _ => options,
                };
                if kind == Kind::Https {
                    let ca = if failure == Failure::ProxyTls {
                        untrusted_ca
                    } else {
                        ca
                    };
                    options = options.tls(ca.server_config(&["localhost"]));
                }
                Proxy::Connect(ConnectProxy::start(options).await.expect("proxy"))
            }
            #[cfg(feature = "socks")]
            Kind::Socks5 | Kind::Socks5h => {
                use feed_sim::socks::Fault;
                let mut options = feed_sim::SocksOptions::socks5().user_pass(USER, password);
                options = match failure {
                    Failure::Silent => options.fault(Fault::NeverAnswer),
                    Failure::Garbage => options.fault(Fault::Garbage),
                    _ => options,
                };
                Proxy::Socks(feed_sim::SocksProxy::start(options).await.expect("socks"))
            }
        }
    }

    fn url(&self, kind: Kind) -> String {
        let port = match self {
            Proxy::Connect(p) => p.addr().port(),
            #[cfg(feature = "socks")]
            Proxy::Socks(p) => p.addr().port(),
            Proxy::Closed(closed) => closed.port(),
        };
        let host = if kind == Kind::Https {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!("{}://{}@{host}:{port}", kind.scheme(), userinfo())
    }

    /// That the proxy received the canary (or, behind a failed TLS handshake, nothing).
    fn received(&self, failure: Failure) -> Result<(), String> {
        match self {
            Proxy::Closed(_) => Ok(()),
            Proxy::Connect(p) => {
                let records = p.connections();
                if records.is_empty() {
                    return Err("the proxy saw no connection".into());
                }
                if failure == Failure::ProxyTls {
                    return if records.iter().any(|r| r.proxy_authorization.is_some()) {
                        Err("the credential went to a proxy whose certificate failed".into())
                    } else {
                        Ok(())
                    };
                }
                let basic = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
                );
                if records
                    .iter()
                    .all(|r| r.proxy_authorization.as_deref() == Some(basic.as_str()))
                {
                    Ok(())
                } else {
                    Err("the proxy did not receive the canary".into())
                }
            }
            #[cfg(feature = "socks")]
            Proxy::Socks(p) => {
                let records = p.connections();
                if records.is_empty() {
                    return Err("the proxy saw no connection".into());
                }
                if matches!(failure, Failure::Silent | Failure::Garbage) {
                    return Ok(());
                }
                if records.iter().all(|r| {
                    r.username.as_deref() == Some(USER) && r.password.as_deref() == Some(PASSWORD)
                }) {
                    Ok(())
                } else {
                    Err("the proxy did not receive the canary".into())
                }
            }
        }
    }
}

async fn probe_case(
    exchange: Arc<Exchange>,
    n: usize,
    kind: Kind,
    failure: Failure,
    wss: bool,
) -> (Vec<String>, bool) {
    let source = Source::ALL[n % Source::ALL.len()];
    let logs = if n.is_multiple_of(2) {
        Logs::Vv
    } else {
        Logs::RustLog
    };
    let json = n % 4 == 1;
    let what = format!("probe {kind:?} {failure:?} wss={wss} {source:?} {logs:?} json={json}");
    let proxy = Proxy::start(&exchange.ca, &exchange.untrusted_ca, kind, failure).await;
    let timeout = if failure == Failure::Silent { 1 } else { 15 };
    let transport = if wss { "websocket" } else { "http" };
    let case_dir = exchange.dir.path().join(format!("probe-{n}"));
    std::fs::create_dir_all(&case_dir).expect("case dir");
    let (config, mut env) = settings_args(source, transport, &proxy.url(kind), timeout, &case_dir);
    let target = match (wss, failure) {
        (_, Failure::ExchangeTls) if wss => exchange.untrusted.url("/ws"),
        (_, Failure::ExchangeTls) => format!("https://localhost:{}/ok", exchange.untrusted.port()),
        (true, Failure::UpgradeRejected) => exchange.ws_rejecting.url("/ws"),
        (true, _) => exchange.ws.url("/ws"),
        (false, Failure::RestStatus) => {
            format!("https://localhost:{}/forbidden", exchange.rest.port())
        }
        (false, _) => format!("https://localhost:{}/ok", exchange.rest.port()),
    };
    let mut args: Vec<String> = vec![
        "probe".into(),
        target,
        "--exchange".into(),
        "binance".into(),
        "--ca-file".into(),
        exchange.ca_file.clone(),
    ];
    args.extend(config);
    if json {
        args.push("--json".into());
    }
    with_logs(logs, &mut args, &mut env);
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = feedproxy_async(&arg_refs, &env_refs).await;
    let (stdout, stderr) = text_without_secret(&out, &what, USER, PASSWORD);
    let mut problems = Vec::new();
    let (code, phrase) = failure.expected();
    let shown = if code == 0 { &stdout } else { &stderr };
    if out.status.code() != Some(code) || !shown.contains(phrase) {
        problems.push(format!(
            "{what}: exit {:?}, expected {code} with {phrase:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status.code()
        ));
    }
    if let Err(problem) = proxy.received(failure) {
        problems.push(format!("{what}: {problem}"));
    }
    // Whether the run logged the tunnel at debug level or below (a search of silence proves
    // nothing).
    (problems, stderr.contains("tunnel established"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_prints_no_credential_through_any_kind_or_failure() {
    let Trust { ca, ca_file, dir } = Trust::new();
    let untrusted_ca = TestCa::new();
    let rest = HttpsServer::start(
        &ca,
        Routes::new()
            .route("/ok", Response::json("{}"))
            .route("/forbidden", Response::new(403, "forbidden")),
    )
    .await
    .expect("https server");
    let ws = WssServer::start(&ca, WssOptions::new().stream(1, None).echo(false))
        .await
        .expect("wss server");
    let ws_rejecting = WssServer::start(&ca, WssOptions::new().fault(HandshakeFault::Status(403)))
        .await
        .expect("rejecting wss server");
    let untrusted = WssServer::start(&untrusted_ca, WssOptions::new())
        .await
        .expect("untrusted wss server");
    let exchange = Arc::new(Exchange {
        ca,
        untrusted_ca,
        ca_file,
        dir,
        rest,
        ws,
        ws_rejecting,
        untrusted,
    });
    let permits = Arc::new(tokio::sync::Semaphore::new(6));
    let mut running = tokio::task::JoinSet::new();
    let mut n = 0;
    for kind in Kind::all() {
        for failure in Failure::ALL {
            for wss in [false, true] {
                let applies = match failure {
                    Failure::ProxyTls => kind == Kind::Https,
                    Failure::UpgradeRejected => wss,
                    Failure::RestStatus => !wss,
                    _ => true,
                };
                if !applies {
                    continue;
                }
                n += 1;
                let exchange = Arc::clone(&exchange);
                let permits = Arc::clone(&permits);
                running.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    probe_case(exchange, n, kind, failure, wss).await
                });
            }
        }
    }
    let (mut problems, mut logged) = (Vec::new(), 0);
    while let Some(joined) = running.join_next().await {
        let (case_problems, case_logged) = joined.expect("case");
        problems.extend(case_problems);
        logged += usize::from(case_logged);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        logged >= Kind::all().len(),
        "the runs logged their tunnels: {logged}"
    );
    assert_eq!(n, Kind::all().len() * 14 + 2);
}

// ---------------------------------------------------------------------------------------------
// `feedproxy stream`: every kind, trades through it, and a refused credential.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_no_credential_through_any_kind() {
    let Trust { ca, ca_file, dir } = Trust::new();
    let mut fake = FakeExchange::start(&ca, ExchangeKind::Binance, FakeExchangeOptions::new())
        .await
        .expect("fake exchange");
    let mut n = 0;
    for kind in Kind::all() {
        for failure in [Failure::None, Failure::AuthRejected] {
            n += 1;
            let source = Source::ALL[n % Source::ALL.len()];
            let logs = if n.is_multiple_of(2) {
                Logs::Vv
            } else {
                Logs::RustLog
            };
            let what = format!("stream {kind:?} {failure:?} {source:?} {logs:?}");
            let proxy = Proxy::start(&ca, &ca, kind, failure).await;
            let url = proxy.url(kind);
            let case_dir = dir.path().join(format!("stream-{n}"));
            std::fs::create_dir_all(&case_dir).expect("case dir");
            // Both transports through the proxy: REST in the chosen source, the stream from
            // the environment (which overrides nothing here).
            let (config, mut env) = settings_args(source, "http", &url, 15, &case_dir);
            env.push((
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__WEBSOCKET__URL".into(),
                url.clone(),
            ));
            let mut args: Vec<String> = [
                "stream",
                "--exchange",
                "binance",
                "--symbol",
                "BTC-USDT",
                "--rest-url",
                &fake.rest_base_url(),
                "--ws-url",
                &fake.ws_base_url(),
                "--ca-file",
                &ca_file,
                "--count",
                "1",
            ]
            .iter()
            .map(|a| (*a).to_owned())
            .collect();
            args.extend(config);
            with_logs(logs, &mut args, &mut env);
            let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let env_refs: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let out = feedproxy_async(&arg_refs, &env_refs).await;
            let (stdout, stderr) = text_without_secret(&out, &what, USER, PASSWORD);
            match failure {
                Failure::None => {
                    assert_eq!(out.status.code(), Some(0), "{what}:\n{stdout}\n{stderr}");
                    assert!(stdout.starts_with("binance"), "{what}: {stdout}");
                    assert!(
                        stderr.contains("connection opened through proxy")
                            && stderr.contains("TRACE"),
                        "{what}: the run logged at trace level:\n{stderr}"
                    );
                }
                _ => {
                    assert_eq!(out.status.code(), Some(1), "{what}:\n{stdout}\n{stderr}");
                    assert!(
                        stderr.contains("proxy rejected the credentials"),
                        "{what}: {stderr}"
                    );
                }
            }
            // The REST prefetch at least went through the proxy, with the canary.
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(problem) = proxy.received(failure) {
                panic!("{what}: {problem}");
            }
        }
    }
    fake.shutdown().await;
}
