//! `FeedSetup`: what every feed in this crate is configured with (exchange id, requested
//! symbols, base URLs, the metadata path) and the errors built from it, written once.

use std::sync::Arc;

use crate::error::{FeedError, ParseError};
use crate::json::{self, BaseUrlKind};

#[derive(Debug, Clone)]
pub(crate) struct FeedSetup {
    pub(crate) exchange: Arc<str>,
    /// Normalized, duplicates dropped, in the order given.
    pub(crate) symbols: Vec<Arc<str>>,
    pub(crate) rest_url: String,
    pub(crate) ws_url: String,
    metadata_path: &'static str,
}

impl FeedSetup {
    pub(crate) fn new(
        exchange: &'static str,
        symbols: &[&str],
        rest_url: &str,
        ws_url: &str,
        metadata_path: &'static str,
    ) -> Self {
        Self {
            exchange: Arc::from(exchange),
            symbols: json::normalize_symbols(symbols),
            rest_url: rest_url.to_owned(),
            ws_url: ws_url.to_owned(),
            metadata_path,
        }
    }

    pub(crate) fn set_rest_url(&mut self, base: &str) -> Result<(), FeedError> {
        self.rest_url = json::base_url(&self.exchange, BaseUrlKind::Rest, base)?;
        Ok(())
    }

    pub(crate) fn set_ws_url(&mut self, base: &str) -> Result<(), FeedError> {
        self.ws_url = json::base_url(&self.exchange, BaseUrlKind::WebSocket, base)?;
        Ok(())
    }

    pub(crate) fn metadata_url(&self) -> String {
        format!("{}{}", self.rest_url, self.metadata_path)
    }

    pub(crate) fn metadata_error(&self, error: ParseError) -> FeedError {
        FeedError::Metadata {
            exchange: self.exchange.to_string(),
            url: self.metadata_url(),
            error,
        }
    }

    pub(crate) fn require_symbols(&self) -> Result<(), FeedError> {
        if self.symbols.is_empty() {
            return Err(FeedError::NoSymbols {
                exchange: self.exchange.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) fn unknown_symbol(&self, symbol: &str) -> FeedError {
        FeedError::UnknownSymbol {
            exchange: self.exchange.to_string(),
            symbol: symbol.to_owned(),
        }
    }
}
