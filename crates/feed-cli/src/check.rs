//! `feedproxy check`: load settings exactly as a feed does and explain every route.

use std::path::Path;

use proxy_config::{ExchangeId, LoadedSettings};
use proxy_resolve::{Resolver, Route, Transport};
use serde::Serialize;

use crate::Failure;
use crate::output::{self, out};
use crate::settings::{self, describe};

/// One exchange x transport line of the report.
#[derive(Debug, Serialize)]
struct RouteRow {
    /// Exchange id, or `*` for exchanges without settings of their own.
    exchange: String,
    transport: &'static str,
    /// `direct` or `scheme://host:port` (never credentials).
    route: String,
    scheme: Option<&'static str>,
    proxy: Option<String>,
    timeout_seconds: Option<u16>,
    authenticated: bool,
    reason: &'static str,
    url_source: Option<String>,
    timeout_source: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    enabled: bool,
    enabled_source: String,
    routes: Vec<RouteRow>,
    /// The conventional proxy variables (curl's, pip's) set in this environment, which
    /// feedproxy does not read: names only, their values may hold credentials.
    ignored_env: Vec<String>,
}

pub(crate) fn run(config: Option<&Path>, extra: &[String], json: bool) -> Result<(), Failure> {
    let loaded = settings::load(config)?;
    let mut ids: Vec<ExchangeId> = loaded.settings.exchanges.keys().cloned().collect();
    for raw in extra {
        let id = ExchangeId::new(raw).map_err(|e| Failure::invalid(format!("--exchange: {e}")))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let report = report(&loaded, &ids);
    if json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::failed(format!("cannot encode JSON: {e}")))?;
        out!("{text}");
    } else {
        print_table(&report);
    }
    Ok(())
}

fn report(loaded: &LoadedSettings, ids: &[ExchangeId]) -> Report {
    let resolver = Resolver::new(loaded.settings.clone());
    let mut routes = Vec::new();
    // `*` shows what an exchange without settings of its own gets.
    let names = ids.iter().map(|id| id.as_str()).chain(std::iter::once("*"));
    for name in names {
        for transport in Transport::ALL {
            let resolution = resolver.resolve(name, transport);
            let key = settings::key(&resolution, name, transport);
            let source = |field: &str| {
                key.as_ref()
                    .map(|k| describe(loaded.origin(&format!("{k}.{field}"))))
            };
            let (route, scheme, proxy, timeout, authenticated) = match &resolution.route {
                Route::Direct => ("direct".to_owned(), None, None, None, false),
                Route::Proxy(p) => (
                    p.url.to_string(),
                    Some(p.url.scheme().as_str()),
                    Some(p.url.authority()),
                    Some(p.timeout_seconds.get()),
                    p.url.has_credentials(),
                ),
            };
            routes.push(RouteRow {
                exchange: name.to_owned(),
                transport: transport.as_str(),
                route,
                scheme,
                proxy,
                timeout_seconds: timeout,
                authenticated,
                reason: resolution.reason.as_str(),
                url_source: source("url"),
                timeout_source: source("timeout_seconds"),
            });
        }
    }
    Report {
        enabled: loaded.settings.enabled,
        enabled_source: describe(loaded.origin("enabled")),
        routes,
        // A user who set one expecting it to apply is told, rather than finding the routes direct.
        ignored_env: proxy_config::conventional_proxy_vars(),
    }
}

fn print_table(report: &Report) {
    let state = if report.enabled {
        "enabled"
    } else {
        "disabled"
    };
    out!("proxy system: {state} (from {})", report.enabled_source);
    let header = [
        "EXCHANGE",
        "TRANSPORT",
        "ROUTE",
        "TIMEOUT",
        "WHY",
        "URL FROM",
        "TIMEOUT FROM",
    ];
    let rows: Vec<[String; 7]> = report
        .routes
        .iter()
        .map(|r| {
            let route = if r.authenticated {
                format!("{} (auth)", r.route)
            } else {
                r.route.clone()
            };
            [
                r.exchange.clone(),
                r.transport.to_owned(),
                route,
                r.timeout_seconds
                    .map_or("-".to_owned(), |t| format!("{t}s")),
                r.reason.to_owned(),
                r.url_source.clone().unwrap_or_else(|| "-".to_owned()),
                r.timeout_source.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    output::table(header, &rows);
    out!("(* = any exchange without settings of its own)");
    if !report.ignored_env.is_empty() {
        let (verb, pronoun) = match report.ignored_env.len() {
            1 => ("is", "it"),
            _ => ("are", "them"),
        };
        out!(
            "note: {} {verb} set here, and feedproxy does not read {pronoun}: routes come only \
             from CRYPTOFEED_PROXY_* variables, the config file and code (e.g. \
             CRYPTOFEED_PROXY_DEFAULT__HTTP__URL and CRYPTOFEED_PROXY_DEFAULT__WEBSOCKET__URL)",
            report.ignored_env.join(", ")
        );
    }
}
