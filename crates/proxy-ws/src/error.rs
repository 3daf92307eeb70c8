//! `WsError`: a WebSocket that could not be opened or broke, naming the exchange and the URL
//! (without its query), and, for route failures, the proxy and who is at fault.

use std::fmt;
use std::time::Duration;

use proxy_tunnel::TunnelError;

use crate::handshake::HandshakeError;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WsErrorKind {
    /// Not a `ws://` or `wss://` URL with a host.
    #[error("invalid WebSocket URL")]
    InvalidUrl,
    /// The route (direct or proxy) failed.
    #[error("cannot connect: {0}")]
    Tunnel(#[source] TunnelError),
    /// TLS to the exchange, through the tunnel, failed: the exchange's certificate, or the
    /// connection breaking during the handshake. The upgrade request is written as part of the
    /// handshake's last flight, so a connection that breaks while it is sent is reported here too.
    #[error("TLS to the exchange failed: {0}")]
    Tls(#[source] std::io::Error),
    /// The upgrade answer was refused.
    #[error("WebSocket handshake failed: {0}")]
    Handshake(#[source] HandshakeError),
    /// TLS to the exchange and the upgrade did not finish in time (the proxy's `timeout_seconds`,
    /// or the direct timeout), once the tunnel was up; a tunnel that does not come up in time is
    /// [`WsErrorKind::Tunnel`] with the tunnel's own timeout error.
    #[error("WebSocket handshake timed out after {}s", .0.as_secs_f64())]
    HandshakeTimeout(Duration),
    /// No frame arrived within the idle timeout.
    #[error("no message for {}s (idle timeout)", .0.as_secs_f64())]
    IdleTimeout(Duration),
    /// A message over the size limit.
    #[error("message over the {0}-byte limit")]
    MessageTooLarge(usize),
    /// The server broke the WebSocket protocol, or the connection failed.
    #[error("WebSocket protocol error: {0}")]
    Protocol(String),
    /// Reading or writing the socket failed.
    #[error("connection error: {0}")]
    Io(#[source] std::io::Error),
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
}

/// A WebSocket error with its context.
///
/// The error is one pointer wide (its parts are boxed), so the `Result` of every read,
/// `Result<Option<Message>, WsError>`, is at most a word bigger than the message it carries and
/// a read that succeeds does not move an error-sized value around (160 bytes unboxed).
pub struct WsError(Box<Parts>);

struct Parts {
    kind: WsErrorKind,
    exchange: String,
    url: String,
}

impl WsError {
    /// `kind` at `exchange`'s `url` (already without its query).
    pub(crate) fn new(kind: WsErrorKind, exchange: String, url: String) -> Self {
        Self(Box::new(Parts {
            kind,
            exchange,
            url,
        }))
    }

    /// What went wrong.
    pub fn kind(&self) -> &WsErrorKind {
        &self.0.kind
    }

    /// The route's error, when the connection could not be opened.
    pub fn tunnel_error(&self) -> Option<&TunnelError> {
        match &self.0.kind {
            WsErrorKind::Tunnel(e) => Some(e),
            _ => None,
        }
    }

    /// The exchange.
    pub fn exchange(&self) -> &str {
        &self.0.exchange
    }

    /// The URL, without its query.
    pub fn url(&self) -> &str {
        &self.0.url
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Parts {
            kind,
            exchange,
            url,
        } = &*self.0;
        write!(f, "{kind} (exchange {exchange}, {url})")
    }
}

// The same fields, in the same form, as the derived Debug of the unboxed struct had.
impl fmt::Debug for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsError")
            .field("kind", &self.0.kind)
            .field("exchange", &self.0.exchange)
            .field("url", &self.0.url)
            .finish()
    }
}

impl std::error::Error for WsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0.kind)
    }
}
