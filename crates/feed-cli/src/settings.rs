//! Settings and trust as every command loads them: code defaults < FILE < environment, exactly
//! as a feed does; an optional PEM CA file added to the trusted roots.

use std::path::Path;

use proxy_config::{LoadedSettings, Loader, Origin};
use proxy_resolve::{Resolution, Route, RouteReason, Transport};
use proxy_tunnel::TlsOptions;

use crate::Failure;

/// Loads the proxy settings from FILE (if given) and the process environment. The error names
/// the first invalid setting's key path and source (exit 2).
pub(crate) fn load(config: Option<&Path>) -> Result<LoadedSettings, Failure> {
    let mut loader = Loader::new();
    if let Some(path) = config {
        loader = loader.file(path);
    }
    loader
        .process_env()
        .load_explained()
        .map_err(|e| Failure::invalid(e.to_string()))
}

/// Mozilla's roots, plus the CA in `ca_file` when given (for exchanges and https:// proxies).
pub(crate) fn tls(ca_file: Option<&Path>) -> Result<TlsOptions, Failure> {
    let options = TlsOptions::new();
    match ca_file {
        None => Ok(options),
        Some(path) => options
            .with_ca_file(path)
            .map_err(|e| Failure::invalid(format!("--ca-file: {e}"))),
    }
}

/// Where a value came from, for people: `env CRYPTOFEED_PROXY_...`, `file feed.yaml`, `default`.
pub(crate) fn describe(origin: &Origin) -> String {
    match origin {
        Origin::Env(name) => format!("env {name}"),
        other => other.to_string(),
    }
}

/// The settings key a resolution took its proxy from (`exchanges.binance.http`,
/// `default.websocket`), if it took one.
pub(crate) fn key(resolution: &Resolution, exchange: &str, transport: Transport) -> Option<String> {
    match resolution.reason {
        RouteReason::ExchangeOverride => Some(format!("exchanges.{exchange}.{transport}")),
        RouteReason::Default => Some(format!("default.{transport}")),
        _ => None,
    }
}

/// `direct`, or `scheme://host:port`, with ` (auth)` when the URL carries credentials (which
/// are never shown).
pub(crate) fn route_label(route: &Route) -> String {
    match route {
        Route::Direct => "direct".to_owned(),
        Route::Proxy(proxy) if proxy.url.has_credentials() => format!("{} (auth)", proxy.url),
        Route::Proxy(proxy) => proxy.url.to_string(),
    }
}
