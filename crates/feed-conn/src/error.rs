//! `ConnError`: what went wrong on a feed connection, with the connection id in every message.

use proxy_http::HttpError;
use proxy_tunnel::TunnelError;
use proxy_ws::WsError;

use crate::common::ConnId;

/// An error from an authentication hook. Its Display is the hook's message: a hook must not put
/// secrets in it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

impl AuthError {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self(message.into().into())
    }
}

/// A feed connection failed. Display starts with the connection id; URLs are shown without
/// user-info (and HTTP URLs without their query), proxies as `scheme://host:port`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The address cannot be used by this kind of connection.
    #[error("{conn_id}: invalid address {url}: {reason}")]
    InvalidAddress {
        /// The connection.
        conn_id: ConnId,
        /// The address, without user-info.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The authentication hook failed; nothing was sent.
    #[error("{conn_id}: authentication hook failed: {source}")]
    Auth {
        /// The connection.
        conn_id: ConnId,
        /// The hook's error.
        #[source]
        source: AuthError,
    },
    /// An HTTP request failed (route, TLS, transport, timeout, body).
    #[error("{conn_id}: {source}")]
    Http {
        /// The connection.
        conn_id: ConnId,
        /// The client's error.
        #[source]
        source: Box<HttpError>,
    },
    /// The server answered with an unsuccessful status.
    #[error("{conn_id}: {method} {url} answered {status}")]
    Status {
        /// The connection.
        conn_id: ConnId,
        /// The method.
        method: &'static str,
        /// The URL without query.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The server kept answering 429 Too Many Requests.
    #[error("{conn_id}: {url} answered 429 Too Many Requests {attempts} times; giving up")]
    RateLimited {
        /// The connection.
        conn_id: ConnId,
        /// The URL without query.
        url: String,
        /// Requests made.
        attempts: u32,
    },
    /// A WebSocket failed (route, TLS, upgrade, protocol, idle timeout).
    #[error("{conn_id}: {source}")]
    Ws {
        /// The connection.
        conn_id: ConnId,
        /// The client's error.
        #[source]
        source: Box<WsError>,
    },
    /// The connection is not open (never opened, or closed).
    #[error("{conn_id}: connection is not open")]
    NotOpen {
        /// The connection.
        conn_id: ConnId,
    },
}

impl ConnError {
    /// The connection the error is about.
    pub fn conn_id(&self) -> &ConnId {
        match self {
            ConnError::InvalidAddress { conn_id, .. }
            | ConnError::Auth { conn_id, .. }
            | ConnError::Http { conn_id, .. }
            | ConnError::Status { conn_id, .. }
            | ConnError::RateLimited { conn_id, .. }
            | ConnError::Ws { conn_id, .. }
            | ConnError::NotOpen { conn_id } => conn_id,
        }
    }

    /// The route's error when the connection could not be opened along its route: which party
    /// failed (proxy, target, configuration) and which proxy.
    pub fn tunnel_error(&self) -> Option<&TunnelError> {
        match self {
            ConnError::Http { source, .. } => source.tunnel_error(),
            ConnError::Ws { source, .. } => source.tunnel_error(),
            _ => None,
        }
    }
}
