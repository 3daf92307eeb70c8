//! Secrets: a canary user name and password, with characters that need percent-encoding, go
//! through every config source (environment map, YAML, TOML, code, and the legacy
//! per-connection proxy), every proxy kind that carries a credential (http:// and https://
//! CONNECT with Basic auth, socks5 and socks5h user/password; socks4 and socks4a user ids, which
//! the settings refuse) and every failure: settings invalid in ways that echo values, a proxy
//! that refuses the credentials, is unreachable, stays silent or answers garbage, TLS to an
//! https:// proxy or to the exchange through the tunnel failing, an upgrade rejected, a REST
//! error status. Searched for the canary in every form a credential takes (plain,
//! percent-encoded, `user:password`, Basic auth base64): the Display, Debug and source chain of
//! every error, the Debug and Display of every settings and connection type, and everything
//! traced at TRACE. Zero hits, while the proxies show they did receive the credential.

use std::error::Error;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use feed_e2e::{Exchanges, FeedKind};
use feed_handler::feed_conn::{
    ConnError, ConnOptions, HttpConn, HttpConnOptions, HttpOptions, TlsOptions, WsConn,
    WsConnOptions, WsOptions,
};
use feed_handler::{Backoff, FeedHandler};
use feed_sim::wss::HandshakeFault;
use feed_sim::{
    ConnectProxy, HttpsServer, ProxyOptions, Response, Routes, TestCa, TraceCapture, WssOptions,
    WssServer,
};
use proxy_config::{
    ConnectionProxies, ExchangeId, LoadedSettings, Loader, ProxyConfig, ProxySettings,
    TimeoutSeconds,
};
use proxy_resolve::{Resolver, Transport};

/// The canary user name: an `@` to encode, an alphanumeric start a partial leak would show.
const USER: &str = "CanaryUsr9@ops";
/// The canary password: `@ : / # ?` and a literal `%21` to encode, and a non-ASCII letter.
const PASSWORD: &str = "CanaryPw7xQ@:/w%21#?é";
/// The exchange every setting is for.
const EXCHANGE: &str = "binance";
/// No case of this file may take longer (a hang is a failure, not a stuck suite).
const CASE_DEADLINE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The search.

use feed_sim::secrets::{assert_no_secret, find_secret, percent_encode};

/// Display, Debug and the whole `source()` chain (each link's Display and Debug) of `error`.
fn error_text(error: &(dyn Error + 'static)) -> String {
    let mut text = format!("{error}\n{error:?}\n");
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(&format!("{inner}\n{inner:?}\n"));
        source = inner.source();
    }
    text
}

/// Display and Debug of `value`.
fn both<T: std::fmt::Display + Debug + ?Sized>(value: &T) -> String {
    format!("{value}\n{value:?}\n")
}

/// Everything loaded settings print: Debug of the whole, JSON, every proxy's URL (Display,
/// Debug, credentials' Display and Debug) and timeout, every origin, the resolver and its routes.
fn settings_text(loaded: &LoadedSettings) -> String {
    let settings = &loaded.settings;
    let mut text = format!(
        "{loaded:?}\n{settings:?}\n{}\n",
        serde_json::to_string(settings).unwrap_or_default()
    );
    let proxies = settings
        .exchanges
        .iter()
        .map(|(id, p)| (both(id), p))
        .chain(std::iter::once((String::new(), &settings.default)));
    for (id, proxies) in proxies {
        text.push_str(&format!("{id}{proxies:?}\n"));
        for proxy in [&proxies.http, &proxies.websocket].into_iter().flatten() {
            text.push_str(&format!("{proxy:?}\n{}", both(&proxy.url)));
            text.push_str(&both(&proxy.timeout_seconds));
            text.push_str(&format!("{}\n", proxy.url.authority()));
            for secret in [proxy.url.username(), proxy.url.password()]
                .into_iter()
                .flatten()
            {
                text.push_str(&both(secret));
            }
        }
    }
    for (key, origin) in loaded.origins() {
        text.push_str(&format!("{key} {}", both(origin)));
    }
    let resolver = Resolver::new(settings.clone());
    text.push_str(&format!("{resolver:?}\n"));
    for transport in [Transport::Http, Transport::WebSocket] {
        let resolution = resolver.resolve(EXCHANGE, transport);
        text.push_str(&both(&resolution));
        text.push_str(&both(&resolution.route));
    }
    text
}

#[test]
fn the_search_finds_every_form() {
    // The search itself: each form of a credential, as an outside formatter would write it,
    // is found.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for leaked in [
        format!("x {PASSWORD} y"),
        format!("Proxy-Authorization: Basic {basic}"),
        format!(
            "http://{}@h:1",
            percent_encode(&format!("{USER}:{PASSWORD}"), true)
        ),
        format!(
            "http://{}:{}@h:1",
            percent_encode(USER, false),
            percent_encode(PASSWORD, false)
        ),
        format!("{PASSWORD:?}"),
        format!("{:?}", PASSWORD.escape_default().to_string()),
        format!("user {USER}"),
    ] {
        assert!(
            find_secret(&leaked, USER, PASSWORD).is_some(),
            "not found in {leaked:?}"
        );
    }
    assert_no_secret(
        "a clean string",
        "http://proxy.example:8080 (auth)",
        USER,
        PASSWORD,
    );
}

// ---------------------------------------------------------------------------------------------
// Settings: every source, every scheme, every way a setting can be wrong.

/// Where a setting is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Env,
    Yaml,
    Toml,
    /// Built in Rust (`ProxyConfig::parse`, `TimeoutSeconds::new`) or deserialized with serde
    /// (`ProxySettings: Deserialize`), then given to the loader.
    Code,
}

impl Source {
    const ALL: [Source; 4] = [Source::Env, Source::Yaml, Source::Toml, Source::Code];
}

/// What is wrong with the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Nothing: `scheme://user:password@proxy.example:8080`.
    None,
    /// `scheme://user@proxy.example:8080`: a user name alone (the SOCKS4 user id).
    UserOnly,
    MissingPort,
    UnsupportedScheme,
    PathAfter,
    BadHost,
    PortOutOfRange,
    /// The credentials written without percent-encoding.
    RawCredentials,
    TimeoutText,
    TimeoutZero,
    TimeoutTooLarge,
    TimeoutNegative,
    TimeoutFraction,
    /// A misspelt key, holding the URL too, next to `url`.
    UnknownKey,
    /// The URL where a table belongs (`http: <url>`).
    UrlInPlaceOfTable,
    /// The file (or JSON, or variable name) is broken on the URL's line.
    Syntax,
    /// The URL without quotes (YAML takes it, TOML does not).
    Unquoted,
}

impl Fault {
    const ALL: [Fault; 17] = [
        Fault::None,
        Fault::UserOnly,
        Fault::MissingPort,
        Fault::UnsupportedScheme,
        Fault::PathAfter,
        Fault::BadHost,
        Fault::PortOutOfRange,
        Fault::RawCredentials,
        Fault::TimeoutText,
        Fault::TimeoutZero,
        Fault::TimeoutTooLarge,
        Fault::TimeoutNegative,
        Fault::TimeoutFraction,
        Fault::UnknownKey,
        Fault::UrlInPlaceOfTable,
        Fault::Syntax,
        Fault::Unquoted,
    ];

    /// Whether the setting is valid for `scheme` in this build.
    fn valid_for(self, source: Source, scheme: &str) -> bool {
        let socks4 = scheme.starts_with("socks4");
        let disabled = scheme.starts_with("socks") && !cfg!(feature = "socks");
        let valid_fault = match self {
            Fault::None | Fault::UserOnly => true,
            // Unquoted URLs are plain YAML scalars; the environment and code have no quotes.
            Fault::Unquoted => matches!(source, Source::Yaml | Source::Env | Source::Code),
            _ => false,
        };
        // SOCKS4 carries no password, and the settings refuse any credential for it: the user
        // id is as secret as a password.
        valid_fault && !socks4 && !disabled
    }
}

/// The URL text of a case.
fn fault_url(scheme: &str, fault: Fault) -> String {
    let user = percent_encode(USER, true);
    let creds = format!("{user}:{}", percent_encode(PASSWORD, true));
    match fault {
        Fault::UserOnly => format!("{scheme}://{user}@proxy.example:8080"),
        Fault::MissingPort => format!("{scheme}://{creds}@proxy.example"),
        Fault::UnsupportedScheme => format!("gopher://{creds}@proxy.example:8080"),
        Fault::PathAfter => format!("{scheme}://{creds}@proxy.example:8080/path?q=1"),
        Fault::BadHost => format!("{scheme}://{creds}@bad_host!:8080"),
        Fault::PortOutOfRange => format!("{scheme}://{creds}@proxy.example:99999"),
        Fault::RawCredentials => format!("{scheme}://{USER}:{PASSWORD}@proxy.example:8080"),
        _ => format!("{scheme}://{creds}@proxy.example:8080"),
    }
}

/// The timeout as written in a file.
fn fault_timeout(fault: Fault) -> &'static str {
    match fault {
        Fault::TimeoutText => "'abc'",
        Fault::TimeoutZero => "0",
        Fault::TimeoutTooLarge => "301",
        Fault::TimeoutNegative => "-5",
        Fault::TimeoutFraction => "1.5",
        _ => "7",
    }
}

/// Loads the case; whether it loaded and the text of the outcome (settings or error). `None`:
/// the fault cannot be written in that source.
fn load_case(source: Source, scheme: &str, fault: Fault) -> Option<(bool, String)> {
    let url = fault_url(scheme, fault);
    let timeout = fault_timeout(fault);
    let loader = match source {
        Source::Env => {
            let prefix = "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP";
            let mut vars = vec![(
                format!("{prefix}__TIMEOUT_SECONDS"),
                timeout.trim_matches('\'').to_owned(),
            )];
            match fault {
                Fault::UrlInPlaceOfTable => vars = vec![(prefix.to_owned(), url.clone())],
                // A variable name with a trailing separator: malformed.
                Fault::Syntax => vars.push((format!("{prefix}__URL__"), url.clone())),
                Fault::UnknownKey => {
                    vars.push((format!("{prefix}__URL"), url.clone()));
                    vars.push((format!("{prefix}__ADRESS"), url.clone()));
                }
                _ => vars.push((format!("{prefix}__URL"), url.clone())),
            }
            Loader::new().env_vars(vars)
        }
        Source::Yaml => {
            let value = match fault {
                Fault::Syntax => format!("\"{url}"),
                Fault::Unquoted => url.clone(),
                _ => format!("'{url}'"),
            };
            let text = match fault {
                Fault::UrlInPlaceOfTable => {
                    format!("proxy:\n  exchanges:\n    binance:\n      http: {value}\n")
                }
                Fault::UnknownKey => format!(
                    "proxy:\n  exchanges:\n    binance:\n      http:\n        url: {value}\n        adress: {value}\n        timeout_seconds: {timeout}\n"
                ),
                _ => format!(
                    "proxy:\n  exchanges:\n    binance:\n      http:\n        url: {value}\n        timeout_seconds: {timeout}\n"
                ),
            };
            Loader::new().yaml_str("secrets.yaml", text)
        }
        Source::Toml => {
            let value = match fault {
                Fault::Syntax => format!("\"{url}"),
                Fault::Unquoted => url.clone(),
                _ => format!("'{url}'"),
            };
            let text = match fault {
                Fault::UrlInPlaceOfTable => {
                    format!("[proxy.exchanges.binance]\nhttp = {value}\n")
                }
                Fault::UnknownKey => format!(
                    "[proxy.exchanges.binance.http]\nurl = {value}\nadress = {value}\ntimeout_seconds = {timeout}\n"
                ),
                _ => format!(
                    "[proxy.exchanges.binance.http]\nurl = {value}\ntimeout_seconds = {timeout}\n"
                ),
            };
            Loader::new().toml_str("secrets.toml", text)
        }
        Source::Code => match code_settings(&url, fault) {
            None => return None,
            Some(Ok(settings)) => Loader::new().code(settings),
            Some(Err(text)) => return Some((false, text)),
        },
    };
    match loader.load_explained() {
        Ok(loaded) => {
            let mut text = settings_text(&loaded);
            // It loaded: the credential went in whole (percent-decoded exactly once).
            let proxy = loaded
                .settings
                .exchange(EXCHANGE)
                .and_then(|p| p.http.clone());
            let carried = proxy.as_ref().is_some_and(|p| {
                p.url.username().map(|u| u.expose()) == Some(USER)
                    && (fault == Fault::UserOnly
                        || p.url.password().map(|s| s.expose()) == Some(PASSWORD))
            });
            if !carried {
                text.push_str("CREDENTIALS NOT CARRIED");
            }
            Some((carried, text))
        }
        Err(error) => {
            let mut text = error_text(&error);
            text.push_str(&format!("{:?}\n{:?}\n", error.kind(), error.origin()));
            Some((false, text))
        }
    }
}

/// The settings of a case written in Rust; the error text when the code itself refuses them.
/// `None` for faults Rust's types rule out in code (a text or negative timeout, an unknown key,
/// a value of the wrong type, a syntax error): those are [`serde_errors_hold_no_credential`]'s.
fn code_settings(url: &str, fault: Fault) -> Option<Result<ProxySettings, String>> {
    let seconds = match fault {
        Fault::TimeoutText
        | Fault::TimeoutNegative
        | Fault::TimeoutFraction
        | Fault::UnknownKey
        | Fault::UrlInPlaceOfTable
        | Fault::Syntax => return None,
        Fault::TimeoutZero => 0,
        Fault::TimeoutTooLarge => 301,
        _ => 7,
    };
    let build = || -> Result<ProxySettings, String> {
        let timeout = TimeoutSeconds::new(seconds).map_err(|e| error_text(&e))?;
        let proxy = ProxyConfig::parse(url).map_err(|e| error_text(&e))?;
        // The same URL through `FromStr` too.
        url.parse::<proxy_config::ProxyUrl>()
            .map_err(|e| error_text(&e))?;
        let id = ExchangeId::new(EXCHANGE).map_err(|e| error_text(&e))?;
        Ok(ProxySettings::default()
            .with_exchange(id, ConnectionProxies::http(proxy.with_timeout(timeout))))
    };
    Some(build())
}

#[test]
fn settings_in_every_source_and_every_fault_print_no_credential() {
    let capture = TraceCapture::start();
    let (mut cases, mut loaded) = (0, 0);
    let mut problems = Vec::new();
    for source in Source::ALL {
        for scheme in ["http", "https", "socks4", "socks4a", "socks5", "socks5h"] {
            for fault in Fault::ALL {
                let Some((ok, text)) = load_case(source, scheme, fault) else {
                    continue;
                };
                let what = format!("{source:?} {scheme} {fault:?}");
                if let Some((form, needle)) = find_secret(&text, USER, PASSWORD) {
                    problems.push(format!("LEAK: {form} ({needle:?}) in {what}:\n{text}"));
                }
                if ok != fault.valid_for(source, scheme) {
                    problems.push(format!("{what}: loaded {ok}, expected otherwise:\n{text}"));
                }
                cases += 1;
                loaded += usize::from(ok);
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_no_secret(
        "the trace output of loading",
        &capture.text(),
        USER,
        PASSWORD,
    );
    // Env, YAML and TOML write every fault; code all but the six its types rule out.
    assert_eq!(cases, 6 * (3 * Fault::ALL.len() + Fault::ALL.len() - 6));
    assert!(loaded > 0, "some cases load");
}

/// A value of the wrong type makes serde's `invalid type` error quote it (e.g. serde_json's
/// `invalid type: string "http://user:password@host:8080", expected struct ProxyConfig`); the
/// `Deserialize` impls of `ProxySettings`, `ConnectionProxies` and `ProxyConfig` cut quoted
/// strings from every error (this test failed before that). The loader (environment, YAML,
/// TOML) checks types itself.
#[test]
fn serde_errors_hold_no_credential() {
    let url = fault_url("http", Fault::None);
    // (what is wrong, the JSON a program would deserialize)
    let cases = [
        (
            "the URL where a proxy table belongs",
            format!(r#"{{"exchanges":{{"binance":{{"http":"{url}"}}}}}}"#),
        ),
        (
            "the URL where the exchanges table belongs",
            format!(r#"{{"exchanges":"{url}"}}"#),
        ),
        (
            "the URL as the timeout",
            format!(
                r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}","timeout_seconds":"{url}"}}}}}}}}"#
            ),
        ),
        ("the URL as `enabled`", format!(r#"{{"enabled":"{url}"}}"#)),
        (
            "a misspelt key holding the URL",
            format!(
                r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}","adress":"{url}"}}}}}}}}"#
            ),
        ),
        (
            "a text timeout",
            format!(
                r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}","timeout_seconds":"abc"}}}}}}}}"#
            ),
        ),
        (
            "a negative timeout",
            format!(
                r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}","timeout_seconds":-5}}}}}}}}"#
            ),
        ),
        (
            "a JSON syntax error on the URL",
            format!(r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}"#),
        ),
        (
            "an invalid URL",
            format!(r#"{{"exchanges":{{"binance":{{"http":{{"url":"{url}/path"}}}}}}}}"#),
        ),
    ];
    let mut leaks = Vec::new();
    let count = cases.len();
    for (what, json) in cases {
        let text = match serde_json::from_str::<ProxySettings>(&json) {
            Ok(settings) => format!("LOADED {settings:?}"),
            Err(error) => error_text(&error),
        };
        assert!(!text.starts_with("LOADED"), "{what}: {text}");
        if let Some((form, needle)) = find_secret(&text, USER, PASSWORD) {
            leaks.push(format!("{what}: {form} ({needle:?}) in:\n{text}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} serde errors quote the credential:\n{}",
        leaks.len(),
        count,
        leaks.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The wire: every credential-carrying proxy kind, every failure, both transports.

/// Where a wire case's settings come from: the four sources, or the legacy per-connection proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Source(Source),
    Legacy,
}

impl Origin {
    const ALL: [Origin; 5] = [
        Origin::Source(Source::Env),
        Origin::Source(Source::Yaml),
        Origin::Source(Source::Toml),
        Origin::Source(Source::Code),
        Origin::Legacy,
    ];
}

/// A proxy kind that carries a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// HTTP CONNECT, Basic auth.
    Http,
    /// HTTP CONNECT inside TLS, Basic auth.
    Https,
    /// SOCKS5 user/password, the client resolves.
    #[cfg(feature = "socks")]
    Socks5,
    /// SOCKS5 user/password, the proxy resolves.
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

    fn is_connect(self) -> bool {
        matches!(self, Kind::Http | Kind::Https)
    }
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Nothing: the data arrives.
    None,
    /// The proxy wants another password (407 / SOCKS5 auth status 0x01).
    AuthRejected,
    /// Nothing listens at the proxy's address.
    Unreachable,
    /// The proxy reads and never answers: the handshake times out (1 s).
    Silent,
    /// The proxy answers bytes that are neither HTTP nor SOCKS.
    Garbage,
    /// An https:// proxy's certificate is from a CA nobody trusts.
    ProxyTls,
    /// The exchange's certificate, through the tunnel, is from a CA nobody trusts.
    ExchangeTls,
    /// The exchange answers the WebSocket upgrade with 403.
    UpgradeRejected,
    /// The exchange answers the REST request with 403.
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

    fn applies(self, kind: Kind, via: Via) -> bool {
        match self {
            Failure::ProxyTls => kind == Kind::Https,
            Failure::UpgradeRejected => via == Via::Ws,
            Failure::RestStatus => via == Via::Rest,
            _ => true,
        }
    }
}

/// The connection a case opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `HttpConn::read` (the REST transport).
    Rest,
    /// `WsConn::open` and one message (the WebSocket transport).
    Ws,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    origin: Origin,
    kind: Kind,
    failure: Failure,
    via: Via,
}

/// The servers every case shares, and the trust of the client.
struct Targets {
    ca: TestCa,
    untrusted_ca: TestCa,
    tls: TlsOptions,
    rest: HttpsServer,
    ws: WssServer,
    ws_rejecting: WssServer,
    untrusted: WssServer,
}

impl Targets {
    async fn start() -> Self {
        let ca = TestCa::new();
        let untrusted_ca = TestCa::new();
        let tls = TlsOptions::new()
            .without_webpki_roots()
            .with_ca_pem(ca.root_pem().as_bytes())
            .expect("test CA");
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
        let ws_rejecting =
            WssServer::start(&ca, WssOptions::new().fault(HandshakeFault::Status(403)))
                .await
                .expect("rejecting wss server");
        let untrusted = WssServer::start(&untrusted_ca, WssOptions::new())
            .await
            .expect("untrusted wss server");
        Self {
            ca,
            untrusted_ca,
            tls,
            rest,
            ws,
            ws_rejecting,
            untrusted,
        }
    }
}

/// The proxy of one case.
enum TestProxy {
    Connect(ConnectProxy),
    #[cfg(feature = "socks")]
    Socks(feed_sim::SocksProxy),
    /// A port nothing listens on.
    Closed(feed_sim::ClosedPort),
}

impl TestProxy {
    /// The proxy of `kind` for `failure`; an https:// one certified by `ca`, or for
    /// [`Failure::ProxyTls`] by `untrusted_ca`.
    async fn start(ca: &TestCa, untrusted_ca: &TestCa, kind: Kind, failure: Failure) -> Self {
        if failure == Failure::Unreachable {
            return TestProxy::Closed(feed_sim::ClosedPort::new().expect("closed port"));
        }
        let password = if failure == Failure::AuthRejected {
            "not-the-canary"
        } else {
            PASSWORD
        };
        if kind.is_connect() {
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
            return TestProxy::Connect(ConnectProxy::start(options).await.expect("proxy"));
        }
        #[cfg(feature = "socks")]
        {
            use feed_sim::socks::Fault;
            let mut options = feed_sim::SocksOptions::socks5().user_pass(USER, password);
            options = match failure {
                Failure::Silent => options.fault(Fault::NeverAnswer),
                Failure::Garbage => options.fault(Fault::Garbage),
                _ => options,
            };
            TestProxy::Socks(feed_sim::SocksProxy::start(options).await.expect("socks"))
        }
        #[cfg(not(feature = "socks"))]
        unreachable!("{kind:?} is a CONNECT kind")
    }

    /// The proxy URL with the canary credentials, percent-encoded.
    fn url(&self, kind: Kind) -> String {
        let port = match self {
            TestProxy::Connect(p) => p.addr().port(),
            #[cfg(feature = "socks")]
            TestProxy::Socks(p) => p.addr().port(),
            TestProxy::Closed(closed) => closed.port(),
        };
        let host = if kind == Kind::Https {
            "localhost"
        } else {
            "127.0.0.1"
        };
        format!(
            "{}://{}:{}@{host}:{port}",
            kind.scheme(),
            percent_encode(USER, true),
            percent_encode(PASSWORD, true)
        )
    }

    /// What the proxy received, against what the case requires: the canary itself (so a clean
    /// search does not come from a credential never sent), or nothing at all after a failed
    /// TLS handshake with it.
    fn received(&self, failure: Failure) -> Result<(), String> {
        match self {
            TestProxy::Closed(_) => Ok(()),
            TestProxy::Connect(proxy) => {
                let records = proxy.connections();
                if records.is_empty() {
                    return Err("the proxy saw no connection".into());
                }
                if failure == Failure::ProxyTls {
                    return match records
                        .iter()
                        .find(|r| r.request_line.is_some() || r.proxy_authorization.is_some())
                    {
                        Some(_) => Err("a request reached a proxy whose certificate failed".into()),
                        None => Ok(()),
                    };
                }
                let expected = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
                );
                let sent: Vec<Option<&str>> = records
                    .iter()
                    .filter(|r| r.request_line.is_some())
                    .map(|r| r.proxy_authorization.as_deref())
                    .collect();
                if !sent.is_empty() && sent.iter().all(|a| *a == Some(expected.as_str())) {
                    Ok(())
                } else {
                    Err(format!(
                        "the proxy did not receive the canary in every request ({} requests)",
                        sent.len()
                    ))
                }
            }
            #[cfg(feature = "socks")]
            TestProxy::Socks(proxy) => {
                let records = proxy.connections();
                if records.is_empty() {
                    return Err("the proxy saw no connection".into());
                }
                if matches!(failure, Failure::Silent | Failure::Garbage) {
                    // The proxy never got as far as asking for the credential.
                    return Ok(());
                }
                let ok = records.iter().all(|r| {
                    r.username.as_deref() == Some(USER) && r.password.as_deref() == Some(PASSWORD)
                });
                if ok {
                    Ok(())
                } else {
                    Err("the proxy did not receive the canary on every connection".into())
                }
            }
        }
    }
}

/// How a case ended.
enum Outcome {
    /// The response body or the first message arrived.
    Delivered,
    /// The typed error.
    Failed(ConnError),
    /// Something else (a stream that closed without a message).
    Other(String),
}

/// The connection options routing the transports of `vias` through `url` (the others direct),
/// written in `origin`, and the text of the settings they came from. The legacy proxy serves
/// both transports.
fn route_through(
    origin: Origin,
    vias: &[Via],
    url: &str,
    timeout: u64,
) -> Result<(ConnOptions, String), String> {
    let transports: Vec<&str> = vias
        .iter()
        .map(|via| match via {
            Via::Rest => "http",
            Via::Ws => "websocket",
        })
        .collect();
    let proxy = || -> Result<ProxyConfig, String> {
        let timeout = TimeoutSeconds::new(timeout).map_err(|e| e.to_string())?;
        Ok(ProxyConfig::parse(url)
            .map_err(|e| e.to_string())?
            .with_timeout(timeout))
    };
    let loader = match origin {
        Origin::Legacy => {
            let proxy = proxy()?;
            let text = format!("{proxy:?}\n{}", both(&proxy.url));
            let options = ConnOptions::default()
                .with_resolver(Arc::new(Resolver::new(ProxySettings::default())))
                .with_legacy_proxy(proxy);
            return Ok((options, text));
        }
        Origin::Source(Source::Env) => Loader::new().env_vars(transports.iter().flat_map(|t| {
            let prefix = format!(
                "CRYPTOFEED_PROXY_EXCHANGES__BINANCE__{}",
                t.to_ascii_uppercase()
            );
            [
                (format!("{prefix}__URL"), url.to_owned()),
                (format!("{prefix}__TIMEOUT_SECONDS"), timeout.to_string()),
            ]
        })),
        Origin::Source(Source::Yaml) => {
            let mut text = "proxy:\n  exchanges:\n    binance:\n".to_owned();
            for t in &transports {
                text.push_str(&format!(
                    "      {t}:\n        url: '{url}'\n        timeout_seconds: {timeout}\n"
                ));
            }
            Loader::new().yaml_str("wire.yaml", text)
        }
        Origin::Source(Source::Toml) => {
            let text: String = transports
                .iter()
                .map(|t| {
                    format!(
                        "[proxy.exchanges.binance.{t}]\nurl = '{url}'\ntimeout_seconds = {timeout}\n"
                    )
                })
                .collect();
            Loader::new().toml_str("wire.toml", text)
        }
        Origin::Source(Source::Code) => {
            let id = ExchangeId::new(EXCHANGE).map_err(|e| e.to_string())?;
            let mut proxies = ConnectionProxies::default();
            for via in vias {
                match via {
                    Via::Rest => proxies.http = Some(proxy()?),
                    Via::Ws => proxies.websocket = Some(proxy()?),
                }
            }
            Loader::new().code(ProxySettings::default().with_exchange(id, proxies))
        }
    };
    let loaded = loader.load_explained().map_err(|e| e.to_string())?;
    let text = settings_text(&loaded);
    let resolver = Arc::new(Resolver::new(loaded.settings));
    Ok((ConnOptions::default().with_resolver(resolver), text))
}

/// Runs one case: its proxy, its settings, its connection. The text everything printed, and
/// what did not go as the case says.
async fn run_case(targets: Arc<Targets>, case: Case) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let proxy = TestProxy::start(&targets.ca, &targets.untrusted_ca, case.kind, case.failure).await;
    let url = proxy.url(case.kind);
    let timeout = if case.failure == Failure::Silent {
        1
    } else {
        15
    };
    let (options, mut text) = match route_through(case.origin, &[case.via], &url, timeout) {
        Ok(routed) => routed,
        Err(error) => return (error.clone(), vec![format!("settings: {error}")]),
    };
    text.push_str(&format!("{options:?}\n"));
    let outcome = match case.via {
        Via::Rest => {
            let target = match case.failure {
                Failure::ExchangeTls => {
                    format!("https://localhost:{}/ok", targets.untrusted.port())
                }
                Failure::RestStatus => {
                    format!("https://localhost:{}/forbidden", targets.rest.port())
                }
                _ => format!("https://localhost:{}/ok", targets.rest.port()),
            };
            let conn = HttpConn::new(
                "secrets",
                EXCHANGE,
                HttpConnOptions {
                    http: HttpOptions {
                        tls: targets.tls.clone(),
                        timeout: CASE_DEADLINE / 2,
                        ..HttpOptions::default()
                    },
                    conn: options,
                    ..HttpConnOptions::default()
                },
            );
            let result = conn.read(&target).await;
            text.push_str(&format!("{conn:?}\n{:?}\n", conn.route()));
            if let Some(route) = conn.route() {
                text.push_str(&both(&route));
            }
            conn.close().await;
            match result {
                Ok(_) => Outcome::Delivered,
                Err(error) => Outcome::Failed(error),
            }
        }
        Via::Ws => {
            let target = match case.failure {
                Failure::ExchangeTls => targets.untrusted.url("/ws"),
                Failure::UpgradeRejected => targets.ws_rejecting.url("/ws"),
                _ => targets.ws.url("/ws"),
            };
            let options = WsConnOptions {
                ws: WsOptions {
                    tls: targets.tls.clone(),
                    // Two of the five origins send the SOCKS5 greeting, credentials and
                    // request in one flight (the optimistic handshake), the others in turns.
                    socks5_optimistic: matches!(
                        case.origin,
                        Origin::Source(Source::Toml) | Origin::Legacy
                    ),
                    ..WsOptions::default()
                },
                conn: options,
                ..WsConnOptions::default()
            };
            text.push_str(&format!("{options:?}\n"));
            match WsConn::new("secrets", EXCHANGE, &target, options) {
                Err(error) => Outcome::Failed(error),
                Ok(mut conn) => {
                    let outcome = match conn.open().await {
                        Err(error) => Outcome::Failed(error),
                        Ok(()) => match conn.next().await {
                            Ok(Some(_)) => Outcome::Delivered,
                            Ok(None) => Outcome::Other("closed before a message".into()),
                            Err(error) => Outcome::Failed(error),
                        },
                    };
                    text.push_str(&format!("{conn:?}\n{:?}\n", conn.route()));
                    if let Some(route) = conn.route() {
                        text.push_str(&both(route));
                    }
                    conn.close().await;
                    outcome
                }
            }
        }
    };
    if let Outcome::Failed(error) = &outcome {
        text.push_str(&error_text(error));
        text.push_str(&format!("{}\n", error.conn_id()));
        if let Some(tunnel) = error.tunnel_error() {
            text.push_str(&error_text(tunnel));
            text.push_str(&format!(
                "{:?} {:?} {:?} {} {}\n",
                tunnel.kind(),
                tunnel.party(),
                tunnel.proxy(),
                tunnel.target(),
                tunnel.exchange()
            ));
        }
    }
    if let Err(problem) = expected_outcome(case, &outcome) {
        problems.push(problem);
    }
    if let Err(problem) = proxy.received(case.failure) {
        problems.push(problem);
    }
    (text, problems)
}

/// Whether the case ended the way its failure says (so the search covered that failure's
/// error, not some other one).
fn expected_outcome(case: Case, outcome: &Outcome) -> Result<(), String> {
    let error = match (case.failure, outcome) {
        (Failure::None, Outcome::Delivered) => return Ok(()),
        (_, Outcome::Failed(error)) => error,
        (_, Outcome::Delivered) => return Err("delivered, expected a failure".into()),
        (_, Outcome::Other(what)) => return Err(what.clone()),
    };
    let tunnel = error.tunnel_error().map(|t| format!("{:?}", t.kind()));
    let debug = format!("{error:?}");
    let ok = match case.failure {
        Failure::None => false,
        Failure::AuthRejected => tunnel.as_deref() == Some("ProxyAuthRejected"),
        Failure::Unreachable => tunnel.is_some_and(|k| k.starts_with("ProxyUnreachable")),
        Failure::Silent => tunnel.is_some_and(|k| k.starts_with("ProxyTimeout")),
        Failure::Garbage => tunnel.is_some_and(|k| k.starts_with("ProxyProtocol")),
        Failure::ProxyTls => tunnel.is_some_and(|k| k.starts_with("ProxyTls")),
        // The untrusted CA has the same name as the trusted one: webpki finds the trusted
        // anchor by name, then the signature does not verify (BadSignature), where a CA of
        // another name gives UnknownIssuer. Either way a rejected certificate.
        Failure::ExchangeTls => {
            tunnel.is_none()
                && (debug.contains("InvalidCertificate(BadSignature)")
                    || debug.contains("InvalidCertificate(UnknownIssuer)"))
        }
        Failure::UpgradeRejected => {
            matches!(error, ConnError::Ws { .. }) && debug.contains("Handshake(")
        }
        Failure::RestStatus => matches!(error, ConnError::Status { status: 403, .. }),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("not the expected error: {debug}"))
    }
}

#[tokio::test]
async fn every_kind_and_failure_from_every_source_prints_no_credential() {
    let capture = TraceCapture::start();
    let targets = Arc::new(Targets::start().await);
    let mut cases = Vec::new();
    for origin in Origin::ALL {
        for kind in Kind::all() {
            for failure in Failure::ALL {
                for via in [Via::Rest, Via::Ws] {
                    if failure.applies(kind, via) {
                        cases.push(Case {
                            origin,
                            kind,
                            failure,
                            via,
                        });
                    }
                }
            }
        }
    }
    // All at once on this thread (the capture is per thread), a few at a time so the deadlines
    // are the cases', not the queue's.
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let mut running = tokio::task::JoinSet::new();
    for case in cases.iter().copied() {
        let targets = Arc::clone(&targets);
        let permits = Arc::clone(&permits);
        running.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let result = tokio::time::timeout(CASE_DEADLINE, run_case(targets, case)).await;
            let (text, problems) = result.unwrap_or_else(|_| {
                (
                    String::new(),
                    vec![format!("no end within {CASE_DEADLINE:?}")],
                )
            });
            (case, text, problems)
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = running.join_next().await {
        let (case, text, problems) = joined.expect("case task");
        assert_no_secret(&format!("{case:?}"), &text, USER, PASSWORD);
        failures.extend(problems.into_iter().map(|p| format!("{case:?}: {p}")));
    }
    let trace = capture.text();
    assert_no_secret("the TRACE output of every case", &trace, USER, PASSWORD);
    // A clean search of an empty capture would prove nothing.
    assert!(
        trace.contains("connection opened through proxy") && trace.contains("route chosen"),
        "the capture saw the cases"
    );
    assert!(
        failures.is_empty(),
        "{} cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        cases.len(),
        Origin::ALL.len() * Kind::all().len() * 14 + 2 * 5
    );
}

// ---------------------------------------------------------------------------------------------
// FeedHandler: its start error, its give-up error, its error callback and its log lines.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandlerCase {
    /// Both transports through the proxy; trades arrive.
    Streams,
    /// REST through a proxy refusing the credential: `start` fails.
    PrefetchRefused,
    /// REST direct, the stream through a proxy refusing the credential: the stream gives up.
    StreamRefused,
}

#[tokio::test]
async fn feed_handler_errors_callbacks_and_logs_hold_no_credential() {
    let capture = TraceCapture::start();
    let mut exchanges = Exchanges::start().await.expect("fake exchanges");
    let mut round = 0usize;
    for kind in Kind::all() {
        for case in [
            HandlerCase::Streams,
            HandlerCase::PrefetchRefused,
            HandlerCase::StreamRefused,
        ] {
            // The legacy proxy would route both transports: the sources only.
            let origin = Origin::Source(Source::ALL[round % Source::ALL.len()]);
            round += 1;
            let label = format!("{kind:?} {case:?} {origin:?}");
            let failure = if case == HandlerCase::Streams {
                Failure::None
            } else {
                Failure::AuthRejected
            };
            // An https:// proxy certified by the CA the handler trusts (the exchanges').
            let proxy = TestProxy::start(exchanges.ca(), exchanges.ca(), kind, failure).await;
            let vias: &[Via] = match case {
                HandlerCase::Streams => &[Via::Rest, Via::Ws],
                HandlerCase::PrefetchRefused => &[Via::Rest],
                HandlerCase::StreamRefused => &[Via::Ws],
            };
            let (conn, mut text) =
                route_through(origin, vias, &proxy.url(kind), 15).expect("settings");
            let mut options = exchanges.handler_options();
            options.conn = conn;
            options.backoff = Backoff {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(20),
                max_failures: Some(2),
                ..Backoff::default()
            };
            let mut handler = FeedHandler::new(options);
            exchanges
                .add_feed(&mut handler, FeedKind::Binance)
                .expect("feed");
            let seen: Arc<Mutex<String>> = Arc::default();
            let sink = Arc::clone(&seen);
            handler.on_error(move |error| {
                if let Ok(mut seen) = sink.lock() {
                    seen.push_str(&error_text(error));
                }
            });
            let trades = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = Arc::clone(&trades);
            handler.on_trade(move |_| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            text.push_str(&format!("{handler:?}\n"));
            let started = tokio::time::timeout(CASE_DEADLINE, handler.start())
                .await
                .unwrap_or_else(|_| panic!("{label}: start did not end"));
            match (case, started) {
                (HandlerCase::PrefetchRefused, Err(error)) => {
                    text.push_str(&error_text(&error));
                    assert!(
                        error.to_string().contains("proxy rejected the credentials"),
                        "{label}: {error}"
                    );
                }
                (HandlerCase::Streams, Ok(running)) => {
                    let deadline = tokio::time::Instant::now() + CASE_DEADLINE;
                    while trades.load(std::sync::atomic::Ordering::Relaxed) == 0
                        && tokio::time::Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    running.stop().await;
                    assert!(
                        trades.load(std::sync::atomic::Ordering::Relaxed) > 0,
                        "{label}: no trade"
                    );
                }
                (HandlerCase::StreamRefused, Ok(mut running)) => {
                    let stopped = tokio::time::timeout(CASE_DEADLINE, running.next_stopped())
                        .await
                        .unwrap_or_else(|_| panic!("{label}: the stream did not give up"));
                    running.stop().await;
                    match stopped {
                        Some(Err(error)) => {
                            text.push_str(&error_text(&error));
                            assert!(
                                error.to_string().contains("proxy rejected the credentials"),
                                "{label}: {error}"
                            );
                        }
                        other => panic!("{label}: expected a give-up error, got {other:?}"),
                    }
                }
                (_, Ok(running)) => {
                    running.stop().await;
                    panic!("{label}: started");
                }
                (_, Err(error)) => panic!("{label}: {error}"),
            }
            text.push_str(&seen.lock().map(|s| s.clone()).unwrap_or_default());
            if let Err(problem) = proxy.received(failure) {
                panic!("{label}: {problem}");
            }
            assert_no_secret(&label, &text, USER, PASSWORD);
        }
    }
    exchanges.shutdown().await;
    let trace = capture.text();
    assert_no_secret("the handler's TRACE output", &trace, USER, PASSWORD);
    assert!(
        trace.contains("stream dropped; reconnecting") && trace.contains("stream connected"),
        "the capture saw the handler's events"
    );
}

/// A CONNECT proxy that answers every request `502` with the request's own
/// `Proxy-Authorization` value as its reason phrase, as a proxy echoing request headers into
/// its error answers does. Stops when the returned task is aborted.
async fn echoing_proxy() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let echoed = text
                    .lines()
                    .find_map(|line| {
                        let (name, value) = line.split_once(':')?;
                        name.eq_ignore_ascii_case("proxy-authorization")
                            .then(|| value.trim().to_owned())
                    })
                    .unwrap_or_default();
                let answer = format!("HTTP/1.1 502 {echoed}\r\nContent-Length: 0\r\n\r\n");
                let _ = client.write_all(answer.as_bytes()).await;
                let _ = client.shutdown().await;
            });
        }
    });
    (addr, task)
}

/// A proxy that echoes the request's `Proxy-Authorization` into its reason phrase: with
/// credentials sent, the error shows the standard phrase of the status, not the proxy's (this
/// test failed before that: `CONNECT answered 502 Basic <base64 of user:password>`).
#[tokio::test]
async fn a_proxy_echoing_the_credential_does_not_put_it_in_the_error() {
    let capture = TraceCapture::start();
    let targets = Targets::start().await;
    let (addr, proxy) = echoing_proxy().await;
    let url = format!(
        "http://{}:{}@{addr}",
        percent_encode(USER, true),
        percent_encode(PASSWORD, true)
    );
    let mut leaks = Vec::new();
    for via in [Via::Rest, Via::Ws] {
        let (options, mut text) =
            route_through(Origin::Source(Source::Env), &[via], &url, 5).expect("settings");
        let error = match via {
            Via::Rest => {
                let conn = HttpConn::new(
                    "secrets",
                    EXCHANGE,
                    HttpConnOptions {
                        http: HttpOptions {
                            tls: targets.tls.clone(),
                            ..HttpOptions::default()
                        },
                        conn: options,
                        ..HttpConnOptions::default()
                    },
                );
                let url = format!("https://localhost:{}/ok", targets.rest.port());
                tokio::time::timeout(CASE_DEADLINE, conn.read(&url))
                    .await
                    .expect("deadline")
                    .expect_err("the proxy refuses")
            }
            Via::Ws => {
                let options = WsConnOptions {
                    ws: WsOptions {
                        tls: targets.tls.clone(),
                        ..WsOptions::default()
                    },
                    conn: options,
                    ..WsConnOptions::default()
                };
                let mut conn = WsConn::new("secrets", EXCHANGE, &targets.ws.url("/ws"), options)
                    .expect("conn");
                tokio::time::timeout(CASE_DEADLINE, conn.open())
                    .await
                    .expect("deadline")
                    .expect_err("the proxy refuses")
            }
        };
        assert!(
            error.to_string().contains("CONNECT answered 502"),
            "{via:?}: {error}"
        );
        text.push_str(&error_text(&error));
        if let Some((form, needle)) = find_secret(&text, USER, PASSWORD) {
            leaks.push(format!(
                "{via:?}: {form} ({needle:?}) in:\n{}",
                error_text(&error)
            ));
        }
    }
    proxy.abort();
    if let Some((form, _)) = find_secret(&capture.text(), USER, PASSWORD) {
        leaks.push(format!("the TRACE output holds {form}"));
    }
    assert!(
        leaks.is_empty(),
        "the proxy's reason phrase carried the credential:\n{}",
        leaks.join("\n")
    );
}

/// SOCKS4 has a user id and no password; the settings refuse any credential in a socks4 or
/// socks4a URL (see the settings test), and on the wire the client sends an empty user id, so
/// nothing of the operator's reaches a SOCKS4 proxy.
#[cfg(feature = "socks")]
#[tokio::test]
async fn socks4_tunnels_send_an_empty_user_id() {
    use feed_sim::{SocksOptions, SocksProxy};
    let targets = Targets::start().await;
    for (scheme, options) in [
        ("socks4", SocksOptions::socks4().socks4a(false)),
        ("socks4a", SocksOptions::socks4().socks4a(true)),
    ] {
        let proxy = SocksProxy::start(options).await.expect("socks4 proxy");
        let settings = ProxySettings::default().with_exchange(
            ExchangeId::new(EXCHANGE).expect("id"),
            ConnectionProxies::http(ProxyConfig::parse(&proxy.url(scheme)).expect("url")),
        );
        let conn = HttpConn::new(
            "secrets",
            EXCHANGE,
            HttpConnOptions {
                http: HttpOptions {
                    tls: targets.tls.clone(),
                    ..HttpOptions::default()
                },
                conn: ConnOptions::default().with_resolver(Arc::new(Resolver::new(settings))),
                ..HttpConnOptions::default()
            },
        );
        let url = format!("https://localhost:{}/ok", targets.rest.port());
        tokio::time::timeout(CASE_DEADLINE, conn.read(&url))
            .await
            .expect("deadline")
            .expect("read through socks4");
        conn.close().await;
        let records = proxy.connections();
        assert_eq!(records.len(), 1, "{scheme}");
        assert_eq!(records[0].socks4_user_id.as_deref(), Some(""), "{scheme}");
    }
}
