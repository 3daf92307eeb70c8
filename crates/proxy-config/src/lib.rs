//! Proxy settings for feedproxy: what proxy each exchange and transport uses, from environment
//! variables, YAML or TOML files and code, merged field by field with precedence
//! environment > file > code.
//!
//! This crate is pure: apart from reading the process environment and the config file it is
//! asked to read, it does no I/O, and it never panics on input. Credentials are held in
//! [`Secret`], whose `Debug` and `Display` print `***`; no error or `Display` of this crate
//! contains a credential.
//!
//! ```
//! use proxy_config::{Loader, ProxyScheme};
//!
//! let yaml = "
//! log_level: info          # the rest of a feed config is left alone
//! proxy:
//!   default:
//!     http: { url: 'http://corp-proxy:3128' }
//!   exchanges:
//!     binance:
//!       websocket: { url: 'https://user:pa%40ss@tls-proxy:8443', timeout_seconds: 10 }
//! ";
//! let settings = Loader::new()
//!     .yaml_str("feed.yaml", yaml)
//!     .env_vars([("CRYPTOFEED_PROXY_EXCHANGES__BINANCE__HTTP__URL", "http://eu-proxy:8080")])
//!     .load()?;
//! let binance = settings.exchange("BINANCE").unwrap();
//! assert_eq!(binance.http.as_ref().unwrap().url.to_string(), "http://eu-proxy:8080");
//! let ws = binance.websocket.as_ref().unwrap();
//! assert_eq!(ws.url.scheme(), ProxyScheme::Https);
//! assert_eq!(ws.url.password().unwrap().expose(), "pa@ss");
//! # Ok::<(), proxy_config::ConfigError>(())
//! ```

mod error;
mod load;
mod secret;
mod settings;
mod source;
mod tree;
mod url;

pub use error::{ConfigError, ConfigErrorKind};
pub use load::{
    ENV_PREFIX, LoadedSettings, Loader, conventional_proxy_vars, conventional_proxy_vars_in,
};
pub use secret::Secret;
pub use settings::{
    ConnectionProxies, ExchangeId, InvalidExchangeId, ProxyConfig, ProxySettings,
    TimeoutOutOfRange, TimeoutSeconds,
};
pub use tree::Origin;
pub use url::{ProxyHost, ProxyScheme, ProxyUrl, UrlError};

impl ProxySettings {
    /// Loads settings as a feed does: `code` (the program's own defaults) < the file at
    /// `file`, if any (YAML `proxy:` block or TOML `[proxy]` table, by extension) < the process
    /// environment (`CRYPTOFEED_PROXY_...`). Field by field: a key set in a higher source replaces
    /// only that key.
    pub fn load(code: ProxySettings, file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut loader = Loader::new().code(code);
        if let Some(path) = file {
            loader = loader.file(path);
        }
        loader.process_env().load()
    }
}
