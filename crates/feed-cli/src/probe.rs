//! `feedproxy probe`: connect to one URL along the route its exchange and transport resolve to,
//! stage by stage, timing each, and name the stage that failed with its typed error.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use proxy_config::{ExchangeId, ProxyScheme};
use proxy_resolve::{Resolver, Route, Transport};
use proxy_tunnel::{
    ConnectTimings, DEFAULT_DIRECT_TIMEOUT, TargetStream, TunnelConnector, redact_url,
    tls_to_target,
};
use proxy_ws::{Message, WsErrorKind, WsOptions, WsTimings};
use serde::Serialize;

use crate::Failure;
use crate::output::{self, out};
use crate::settings::{self, describe};

/// `feedproxy probe` options.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to connect to: https:// or http:// (the http transport), wss:// or ws://
    /// (the websocket transport).
    #[arg(value_name = "URL")]
    url: String,
    /// The exchange whose route is taken.
    #[arg(long, value_name = "ID")]
    exchange: String,
    /// A YAML (proxy: block) or TOML ([proxy] table) file; the environment overrides it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Also trust the CA certificates in this PEM file (the exchange and https:// proxies).
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// How long `first-message` waits; silence is reported, not a failure (many endpoints send
/// nothing before a subscription).
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(5);

/// The URL, taken apart.
struct Target {
    secure: bool,
    transport: Transport,
    host: String,
    port: u16,
    /// `host[:port]` as the Host header carries it.
    authority: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|_| "URL is not a valid absolute URL".to_owned())?;
        let (secure, transport) = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => (true, Transport::Http),
            Some("http") => (false, Transport::Http),
            Some("wss") => (true, Transport::WebSocket),
            Some("ws") => (false, Transport::WebSocket),
            _ => {
                return Err("URL must start with https://, http://, wss:// or ws://".to_owned());
            }
        };
        let authority = uri.authority().ok_or("URL has no host")?;
        let host = authority.host();
        if host.is_empty() {
            return Err("URL has no host".to_owned());
        }
        // `port_u16` gives `None` for a port that does not fit, as for no port: read it here.
        let host_port = authority.as_str().rsplit('@').next().unwrap_or_default();
        let port = match host_port
            .strip_prefix(host)
            .and_then(|r| r.strip_prefix(':'))
        {
            None => {
                if secure {
                    443
                } else {
                    80
                }
            }
            Some(text) => text
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or("URL port must be 1 to 65535")?,
        };
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let authority = match authority.port_u16() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            secure,
            transport,
            host: bare,
            port,
            authority,
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }

    fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One row of the report.
#[derive(Debug, Serialize)]
struct Stage {
    stage: &'static str,
    ok: bool,
    millis: Option<f64>,
    detail: String,
}

#[derive(Debug, Serialize)]
struct StageError {
    stage: &'static str,
    message: String,
}

#[derive(Debug, Serialize)]
struct Report {
    url: String,
    exchange: String,
    transport: &'static str,
    route: String,
    route_reason: &'static str,
    route_from: Option<String>,
    stages: Vec<Stage>,
    error: Option<StageError>,
}

impl Report {
    fn passed(&mut self, stage: &'static str, took: Duration, detail: impl Into<String>) {
        self.stages.push(Stage {
            stage,
            ok: true,
            millis: Some(took.as_secs_f64() * 1000.0),
            detail: detail.into(),
        });
    }

    /// A failed stage: `reason` in its row (after `FAILED: `), `message` (the whole error) for
    /// the error line.
    fn failed(&mut self, stage: &'static str, reason: impl std::fmt::Display, message: String) {
        self.stages.push(Stage {
            stage,
            ok: false,
            millis: None,
            detail: format!("FAILED: {reason}"),
        });
        self.error = Some(StageError { stage, message });
    }

    /// A failed stage whose row and error line say the same.
    fn failed_with(&mut self, stage: &'static str, message: String) {
        self.failed(stage, &message, message.clone());
    }
}

pub(crate) async fn run(args: Args) -> Result<(), Failure> {
    let shown = redact_url(&args.url);
    let target = Target::parse(&args.url).map_err(|e| Failure::invalid(format!("{e}: {shown}")))?;
    let exchange = ExchangeId::new(&args.exchange)
        .map_err(|e| Failure::invalid(format!("--exchange: {e}")))?;
    let loaded = settings::load(args.config.as_deref())?;
    let tls = settings::tls(args.ca_file.as_deref())?;
    let resolution =
        Resolver::new(loaded.settings.clone()).resolve(exchange.as_str(), target.transport);
    let route_from = settings::key(&resolution, exchange.as_str(), target.transport)
        .map(|key| format!("{key} ({})", describe(loaded.origin(&format!("{key}.url")))));
    let mut report = Report {
        url: shown,
        exchange: exchange.as_str().to_owned(),
        transport: target.transport.as_str(),
        route: settings::route_label(&resolution.route),
        route_reason: resolution.reason.as_str(),
        route_from,
        stages: Vec::new(),
        error: None,
    };
    let route = resolution.route;
    match target.transport {
        Transport::WebSocket => {
            probe_ws(&args.url, &target, route, &exchange, tls, &mut report).await?;
        }
        _ => probe_http(&target, route, &exchange, &tls, &mut report).await,
    }
    print(&report, args.json)?;
    match report.error {
        None => Ok(()),
        Some(error) => Err(Failure::failed(format!(
            "probe failed at {}: {}",
            error.stage, error.message
        ))),
    }
}

/// The tunnel stages of `route`, in order.
fn tunnel_stages(route: &Route) -> Vec<&'static str> {
    match route {
        Route::Direct => vec!["tcp"],
        Route::Proxy(proxy) if proxy.url.scheme() == ProxyScheme::Https => {
            vec!["tcp", "proxy-tls", "proxy-handshake"]
        }
        Route::Proxy(_) => vec!["tcp", "proxy-handshake"],
    }
}

/// Reports the tunnel stages that finished; returns the first that did not.
fn report_tunnel(
    report: &mut Report,
    route: &Route,
    timings: &ConnectTimings,
    target: &Target,
) -> Option<&'static str> {
    for stage in tunnel_stages(route) {
        let took = match stage {
            "tcp" => timings.tcp,
            "proxy-tls" => timings.proxy_tls,
            _ => timings.proxy_handshake,
        };
        let Some(took) = took else {
            return Some(stage);
        };
        let detail = match (stage, route) {
            ("tcp", Route::Direct) => format!("connected to {}", target.label()),
            ("tcp", Route::Proxy(proxy)) => format!("connected to proxy {}", proxy.url.authority()),
            ("proxy-tls", _) => "proxy certificate verified".to_owned(),
            (_, Route::Proxy(proxy)) => format!(
                "{} tunnel to {}",
                proxy.url.scheme().as_str(),
                target.label()
            ),
            _ => String::new(),
        };
        report.passed(stage, took, detail);
    }
    None
}

/// The bound on the stages after the tunnel: the proxy's timeout, or the direct one.
fn stage_limit(route: &Route) -> Duration {
    match route {
        Route::Proxy(proxy) => proxy.timeout_seconds.as_duration(),
        Route::Direct => DEFAULT_DIRECT_TIMEOUT,
    }
}

async fn probe_http(
    target: &Target,
    route: Route,
    exchange: &ExchangeId,
    tls: &proxy_tunnel::TlsOptions,
    report: &mut Report,
) {
    let config = |alpn: &[&[u8]]| tls.client_config(alpn).map_err(|e| e.to_string());
    let (proxy_tls, exchange_tls) = match (config(&[]), config(&[b"http/1.1"])) {
        (Ok(proxy), Ok(exchange)) => (proxy, exchange),
        (Err(e), _) | (_, Err(e)) => {
            report.failed_with("tls", e);
            return;
        }
    };
    let limit = stage_limit(&route);
    let connector = TunnelConnector::new(route.clone(), exchange.as_str(), Transport::Http)
        .with_proxy_tls(proxy_tls);
    let mut timings = ConnectTimings::default();
    let tunnel = connector
        .connect_timed(&target.host, target.port, &mut timings)
        .await;
    let failed_at = report_tunnel(report, &route, &timings, target);
    let stream = match (tunnel, failed_at) {
        (Ok(stream), None) => stream,
        (Err(error), stage) => {
            let stage = stage.unwrap_or(if matches!(route, Route::Direct) {
                "tcp"
            } else {
                "proxy-handshake"
            });
            report.failed(stage, error.kind(), error.to_string());
            return;
        }
        (Ok(_), Some(stage)) => {
            report.failed(stage, "not timed", "stage not timed".to_owned());
            return;
        }
    };
    let stream = if target.secure {
        let started = Instant::now();
        match tokio::time::timeout(limit, tls_to_target(stream, &target.host, exchange_tls)).await {
            Ok(Ok(stream)) => {
                report.passed(
                    "tls",
                    started.elapsed(),
                    format!("certificate verified for {}", target.host),
                );
                stream
            }
            Ok(Err(e)) => {
                let message = format!("TLS to the exchange failed: {e}");
                report.failed_with("tls", message);
                return;
            }
            Err(_) => {
                let message = format!("TLS to the exchange timed out after {}s", limit.as_secs());
                report.failed_with("tls", message);
                return;
            }
        }
    } else {
        TargetStream::Plain(stream)
    };
    let started = Instant::now();
    match tokio::time::timeout(limit, get(stream, target)).await {
        Ok(Ok(status)) => report.passed(
            "http",
            started.elapsed(),
            format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_owned(),
        ),
        Ok(Err(message)) => report.failed_with("http", message),
        Err(_) => {
            let message = format!("no HTTP response within {}s", limit.as_secs());
            report.failed_with("http", message);
        }
    }
}

/// One GET over `stream`; the response status.
async fn get(stream: TargetStream, target: &Target) -> Result<http::StatusCode, String> {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get(target.path_and_query.as_str())
        .header(http::header::HOST, target.authority.as_str())
        .header(
            http::header::USER_AGENT,
            concat!("feedproxy-probe/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let result = sender
        .send_request(request)
        .await
        .map(|response| response.status())
        .map_err(|e| format!("HTTP request failed: {e}"));
    driver.abort();
    result
}

async fn probe_ws(
    url: &str,
    target: &Target,
    route: Route,
    exchange: &ExchangeId,
    tls: proxy_tunnel::TlsOptions,
    report: &mut Report,
) -> Result<(), Failure> {
    let options = WsOptions {
        tls,
        ..WsOptions::default()
    };
    let mut timings = WsTimings::default();
    let opened = proxy_ws::connect_timed(
        url,
        route.clone(),
        exchange.as_str(),
        &options,
        &mut timings,
    )
    .await;
    let mut failed_at = report_tunnel(report, &route, &timings.tunnel, target);
    if failed_at.is_none() && target.secure {
        match timings.tls {
            Some(took) => report.passed(
                "tls",
                took,
                format!("certificate verified for {}", target.host),
            ),
            None => failed_at = Some("tls"),
        }
    }
    if failed_at.is_none() {
        match timings.upgrade {
            Some(took) => report.passed("upgrade", took, "101 Switching Protocols"),
            None => failed_at = Some("upgrade"),
        }
    }
    let mut ws = match opened {
        Ok(ws) => ws,
        Err(error) if matches!(error.kind(), WsErrorKind::InvalidUrl) => {
            return Err(Failure::invalid(error.to_string()));
        }
        Err(error) => {
            let stage = failed_at.unwrap_or("upgrade");
            let detail = match error.tunnel_error() {
                Some(tunnel) => tunnel.kind().to_string(),
                None => error.kind().to_string(),
            };
            report.failed(stage, &detail, error.to_string());
            return Ok(());
        }
    };
    let started = Instant::now();
    match tokio::time::timeout(FIRST_MESSAGE_WAIT, ws.next_message()).await {
        Ok(Ok(Some(Message::Text(text)))) => report.passed(
            "first-message",
            started.elapsed(),
            format!("{} bytes of text", text.len()),
        ),
        Ok(Ok(Some(Message::Binary(bytes)))) => report.passed(
            "first-message",
            started.elapsed(),
            format!("{} bytes of binary", bytes.len()),
        ),
        Ok(Ok(Some(Message::Close { code, .. }))) => {
            let code = code.map_or_else(|| "no code".to_owned(), |c| c.to_string());
            let message = format!("the server closed the stream ({code}) before any message");
            report.failed_with("first-message", message);
        }
        Ok(Ok(None)) => {
            let message = "the server closed the stream before any message".to_owned();
            report.failed_with("first-message", message);
        }
        Ok(Err(error)) => {
            report.failed("first-message", error.kind(), error.to_string());
        }
        Err(_) => report.passed(
            "first-message",
            started.elapsed(),
            format!(
                "none within {}s (the endpoint may wait for a subscription)",
                FIRST_MESSAGE_WAIT.as_secs()
            ),
        ),
    }
    // Best effort: the probe is done either way.
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(1000, "probe done")).await;
    Ok(())
}

fn print(report: &Report, json: bool) -> Result<(), Failure> {
    if json {
        let text = serde_json::to_string_pretty(report)
            .map_err(|e| Failure::failed(format!("cannot encode JSON: {e}")))?;
        out!("{text}");
        return Ok(());
    }
    out!(
        "probe {} (exchange {}, transport {})",
        report.url,
        report.exchange,
        report.transport
    );
    let from = report
        .route_from
        .as_ref()
        .map_or_else(String::new, |from| format!(", from {from}"));
    out!("route: {} ({}{from})", report.route, report.route_reason);
    let rows: Vec<[String; 3]> = report
        .stages
        .iter()
        .map(|stage| {
            [
                stage.stage.to_owned(),
                stage
                    .millis
                    .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms")),
                stage.detail.clone(),
            ]
        })
        .collect();
    output::table(["STAGE", "TIME", "RESULT"], &rows);
    Ok(())
}
