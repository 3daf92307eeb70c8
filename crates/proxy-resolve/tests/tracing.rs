//! The per-connection route event: what it names, and that it never names a credential.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use proxy_config::{ConnectionProxies, ExchangeId, ProxyConfig, ProxySettings};
use proxy_resolve::{ROUTE_LOG_TARGET, Resolver, Transport};
use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// A `MakeWriter` appending every line to one shared buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Runs `f` under a TRACE-level subscriber and returns what it logged.
fn captured(f: impl FnOnce()) -> String {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    capture.text()
}

fn resolver() -> Resolver {
    let proxy = ProxyConfig::parse("https://alice:s3cr%40t-pw@egress.example:8443")
        .expect("valid proxy URL");
    Resolver::new(ProxySettings::default().with_exchange(
        ExchangeId::new("binance").expect("valid id"),
        ConnectionProxies::websocket(proxy),
    ))
}

#[test]
fn proxy_route_event_names_the_proxy_but_not_its_credentials() {
    let resolver = resolver();
    let log = captured(|| {
        resolver.route("BINANCE", Transport::WebSocket);
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one event per route: {log}");
    let line = lines[0];
    for expected in [
        "DEBUG",
        ROUTE_LOG_TARGET,
        "route chosen",
        "exchange=\"BINANCE\"",
        "transport=\"websocket\"",
        "route=\"proxy\"",
        "scheme=\"https\"",
        "proxy=egress.example:8443",
        "timeout_seconds=30",
        "reason=\"exchange override\"",
    ] {
        assert!(line.contains(expected), "missing {expected:?} in {line}");
    }
    for secret in ["alice", "s3cr", "@t-pw", "%40"] {
        assert!(!line.contains(secret), "credential {secret:?} in {line}");
    }
}

#[test]
fn direct_route_event() {
    let resolver = resolver();
    let log = captured(|| {
        resolver.route("coinbase", Transport::Http);
    });
    let line = log.trim_end();
    assert!(!line.contains('\n'), "one event: {log}");
    for expected in [
        "exchange=\"coinbase\"",
        "transport=\"http\"",
        "route=\"direct\"",
        "reason=\"no proxy configured\"",
    ] {
        assert!(line.contains(expected), "missing {expected:?} in {line}");
    }
    assert!(!line.contains("scheme="), "{line}");
}

#[test]
fn resolve_logs_nothing() {
    let resolver = resolver();
    let log = captured(|| {
        resolver.resolve("binance", Transport::WebSocket);
        resolver.resolve("coinbase", Transport::Http);
    });
    assert_eq!(log, "");
}

/// Settings that name proxies and are disabled (a code layer's `enabled: false` under an
/// operator's environment) warn once, naming the keys and never a URL; disabled settings with no
/// proxy, and enabled ones, stay quiet.
#[test]
fn disabled_settings_that_name_proxies_warn_without_urls() {
    let proxy = ProxyConfig::parse("http://alice:s3cr%40t-pw@corp.example:3128").expect("valid");
    let mut settings = ProxySettings::default().with_default_http(proxy.clone());
    for id in ["okx", "binance", "bybit", "kraken"] {
        settings = settings.with_exchange(
            ExchangeId::new(id).expect("valid id"),
            ConnectionProxies::websocket(proxy.clone()),
        );
    }
    let disabled = ProxySettings {
        enabled: false,
        ..settings.clone()
    };
    let log = captured(|| {
        assert!(proxy_resolve::init_proxy_system(disabled).is_none());
    });
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    for expected in [
        "WARN",
        ROUTE_LOG_TARGET,
        "proxy system disabled although the settings name proxies",
        "proxies=5",
        "keys=default.http, exchanges.binance.websocket, exchanges.bybit.websocket, exchanges.kraken.websocket, ...",
    ] {
        assert!(lines[0].contains(expected), "{expected:?} missing in {log}");
    }
    for secret in ["alice", "s3cr", "corp.example"] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }

    let quiet = captured(|| {
        assert!(proxy_resolve::init_proxy_system(ProxySettings::disabled()).is_none());
        assert!(proxy_resolve::init_proxy_system(settings).is_some());
        proxy_resolve::clear_proxy_system();
    });
    assert_eq!(quiet, "", "only disabled settings with proxies warn");
}
