//! The four configuration sources of the matrix, each producing the same settings the way an
//! operator would write them.

use proxy_config::{ConnectionProxies, ExchangeId, Loader, ProxyConfig, ProxySettings};

/// Where the settings of a cell come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// `ProxySettings` built in Rust and given to the loader as code defaults.
    Code,
    /// A YAML file's `proxy:` block.
    Yaml,
    /// A TOML file's `[proxy]` table.
    Toml,
    /// `CRYPTOFEED_PROXY_...` environment variables (given as a map, parsed exactly as the
    /// process environment is).
    Env,
}

impl ConfigSource {
    /// Every source, in column order.
    pub const ALL: [ConfigSource; 4] = [
        ConfigSource::Code,
        ConfigSource::Yaml,
        ConfigSource::Toml,
        ConfigSource::Env,
    ];

    /// `code`, `yaml`, `toml`, `env`.
    pub fn id(self) -> &'static str {
        match self {
            ConfigSource::Code => "code",
            ConfigSource::Yaml => "yaml",
            ConfigSource::Toml => "toml",
            ConfigSource::Env => "env",
        }
    }
}

/// Settings sending both transports of `exchange` through `proxy_url`, written in `source`, and
/// loaded by proxy-config's `Loader`; the error's Display (which never shows credentials) when
/// they do not load.
pub fn settings_for(
    source: ConfigSource,
    exchange: &str,
    proxy_url: &str,
) -> Result<ProxySettings, String> {
    let loader = Loader::new();
    let loader = match source {
        ConfigSource::Code => {
            // Code builds the URL with the same parser the loader uses; a SOCKS URL in a build
            // without `socks` fails here, with the same message.
            let proxy = ProxyConfig::parse(proxy_url).map_err(|e| e.to_string())?;
            let id = ExchangeId::new(exchange).map_err(|e| e.to_string())?;
            loader.code(ProxySettings::default().with_exchange(id, ConnectionProxies::both(proxy)))
        }
        ConfigSource::Yaml => loader.yaml_str(
            "matrix.yaml",
            format!(
                "proxy:\n  exchanges:\n    {exchange}:\n      http:\n        url: \"{proxy_url}\"\n      websocket:\n        url: \"{proxy_url}\"\n"
            ),
        ),
        ConfigSource::Toml => loader.toml_str(
            "matrix.toml",
            format!(
                "[proxy.exchanges.{exchange}.http]\nurl = \"{proxy_url}\"\n\n[proxy.exchanges.{exchange}.websocket]\nurl = \"{proxy_url}\"\n"
            ),
        ),
        ConfigSource::Env => {
            let upper = exchange.to_ascii_uppercase();
            loader.env_vars([
                (format!("CRYPTOFEED_PROXY_EXCHANGES__{upper}__HTTP__URL"), proxy_url.to_owned()),
                (format!("CRYPTOFEED_PROXY_EXCHANGES__{upper}__WEBSOCKET__URL"), proxy_url.to_owned()),
            ])
        }
    };
    loader.load().map_err(|e| e.to_string())
}
