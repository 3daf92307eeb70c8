//! `FeedSetup`: what every feed in this crate is configured with (exchange id, requested
//! symbols, base URLs, the metadata path) and the errors built from it, written once.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use crate::error::{FeedError, ParseError};
use crate::feed::{Markets, RestRequest};
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

    /// The one metadata request of a single-request feed: `GET` the metadata URL.
    pub(crate) fn metadata_requests(&self) -> Vec<RestRequest> {
        vec![RestRequest {
            url: self.metadata_url(),
        }]
    }

    /// The metadata document of a single-request feed: symbols were requested, exactly one
    /// body came back, and it is JSON.
    pub(crate) fn metadata_document(&self, bodies: &[Bytes]) -> Result<Value, FeedError> {
        self.require_symbols()?;
        let body = json::single_body(&self.exchange, bodies)?;
        json::parse_metadata_body(&self.exchange, &self.metadata_url(), body)
    }

    /// The exchange's own symbol of every requested market, in the order the symbols were
    /// given; a symbol `markets` lacks is [`FeedError::UnknownSymbol`].
    pub(crate) fn exchange_symbols<'m>(
        &self,
        markets: &'m Markets,
    ) -> Result<Vec<&'m str>, FeedError> {
        self.require_symbols()?;
        self.symbols
            .iter()
            .map(|symbol| {
                markets
                    .by_symbol(symbol)
                    .map(|market| &*market.exchange_symbol)
                    .ok_or_else(|| self.unknown_symbol(symbol))
            })
            .collect()
    }
}
