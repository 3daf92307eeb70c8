//! `TunnelError`: why a connection could not be opened along its route, who is at fault, and the
//! exchange, transport, proxy (`scheme://host:port`, never credentials) and target it was for.

use std::fmt;
use std::time::Duration;

use proxy_resolve::Transport;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Party {
    /// The proxy: down, slow, misconfigured, or refusing us.
    Proxy,
    /// The target host, or the proxy's path to it (the proxy reported it).
    Target,
    /// Our own settings (a route this build cannot take, a target the scheme cannot carry).
    Configuration,
    /// The network between us and the first hop (direct connections).
    Network,
}

/// Why a proxy would not connect to the target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TargetRefusal {
    /// The CONNECT answer's status (not 2xx, 401 or 407) and its reason phrase (printable ASCII,
    /// at most 64 characters). When credentials were sent, the standard phrase of the status
    /// instead of the proxy's (which could echo them).
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The reason phrase, sanitized.
        reason: String,
    },
    /// A SOCKS5 reply code other than 0x00.
    Socks5(u8),
    /// A SOCKS4 reply code other than 0x5A.
    Socks4(u8),
}

impl fmt::Display for TargetRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetRefusal::HttpStatus { status, reason } if reason.is_empty() => {
                write!(f, "CONNECT answered {status}")
            }
            TargetRefusal::HttpStatus { status, reason } => {
                write!(f, "CONNECT answered {status} {reason}")
            }
            TargetRefusal::Socks5(code) => {
                write!(f, "SOCKS5 reply {code:#04x} ({})", socks5_reply_name(*code))
            }
            TargetRefusal::Socks4(code) => {
                write!(f, "SOCKS4 reply {code:#04x} ({})", socks4_reply_name(*code))
            }
        }
    }
}

/// RFC 1928 reply names.
pub fn socks5_reply_name(code: u8) -> &'static str {
    match code {
        0x00 => "succeeded",
        0x01 => "general SOCKS server failure",
        0x02 => "connection not allowed by ruleset",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x05 => "connection refused",
        0x06 => "TTL expired",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// SOCKS4 reply names.
pub fn socks4_reply_name(code: u8) -> &'static str {
    match code {
        0x5A => "request granted",
        0x5B => "request rejected or failed",
        0x5C => "rejected: proxy cannot reach the client's identd",
        0x5D => "rejected: identd user id mismatch",
        _ => "unassigned reply code",
    }
}

/// How a proxy broke its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// It closed the connection without answering.
    ClosedBeforeAnswer,
    /// It closed the connection in the middle of its answer.
    Truncated,
    /// Its answer to CONNECT is not HTTP.
    NotHttp,
    /// Its answer's header block is larger than 8 KiB (or has more than 100 headers).
    OversizedHeaders,
    /// Its answer is not SOCKS.
    NotSocks,
    /// It chose a SOCKS5 authentication method that was not offered.
    UnexpectedSocksMethod,
}

impl fmt::Display for ProtocolViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolViolation::ClosedBeforeAnswer => {
                "proxy closed the connection without answering"
            }
            ProtocolViolation::Truncated => {
                "proxy closed the connection in the middle of its answer"
            }
            ProtocolViolation::NotHttp => "proxy answered CONNECT with something that is not HTTP",
            ProtocolViolation::OversizedHeaders => "proxy answered CONNECT with oversized headers",
            ProtocolViolation::NotSocks => "proxy answered with something that is not SOCKS",
            ProtocolViolation::UnexpectedSocksMethod => {
                "proxy chose a SOCKS5 authentication method that was not offered"
            }
        })
    }
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelErrorKind {
    /// TCP to the proxy failed (refused, unreachable, name not resolved).
    #[error("proxy unreachable: {0}")]
    ProxyUnreachable(#[source] std::io::Error),
    /// TCP to the proxy, TLS to an https:// proxy and the proxy protocol did not finish in time.
    #[error("proxy handshake timed out after {}s", .0.as_secs())]
    ProxyTimeout(Duration),
    /// The proxy asks for credentials and the URL has none.
    #[error("proxy requires authentication; add user:password to the proxy URL")]
    ProxyAuthRequired,
    /// The proxy refused the credentials in the URL.
    #[error("proxy rejected the credentials")]
    ProxyAuthRejected,
    /// The proxy would not (or could not) connect to the target.
    #[error("proxy refused the target: {0}")]
    TargetRefused(TargetRefusal),
    /// The proxy broke its protocol.
    #[error("{0}")]
    ProxyProtocol(ProtocolViolation),
    /// The handshake failed in a way the proxy's answer does not explain (hyper-util's message).
    #[error("proxy handshake failed: {0}")]
    ProxyHandshake(String),
    /// TLS to an https:// proxy failed (certificate not trusted, name mismatch, ...).
    #[error("TLS to the proxy failed: {0}")]
    ProxyTls(#[source] std::io::Error),
    /// The client could not resolve the target name (socks4 and socks5 resolve locally).
    #[error("cannot resolve the target name locally: {0}")]
    TargetResolution(#[source] std::io::Error),
    /// SOCKS4 and SOCKS4a carry no IPv6 address (SOCKS4a sends a host name, not an address).
    /// Raised for an IPv6 literal target before the proxy is connected to.
    #[error(
        "socks4 and socks4a cannot carry an IPv6 address; use socks5, or with socks4a a host name the proxy resolves"
    )]
    Socks4Ipv6,
    /// The SOCKS5 user name, password and target address do not fit one handshake: together
    /// more than 253 bytes (the SOCKS client writes all three into one 262-byte buffer; RFC 1929
    /// alone allows 255 bytes each of user name and password). Raised before any byte is sent.
    #[error(
        "the socks5 user name, password and target address are too long together (more than 253 bytes); shorten the credentials, or with socks5h a long target name"
    )]
    Socks5RequestTooLong,
    /// A SOCKS route in a build without the `socks` feature.
    #[error("socks proxies need the `socks` feature, which this build does not enable")]
    SocksDisabled,
    /// A direct connection failed.
    #[error("direct connection failed: {0}")]
    DirectUnreachable(#[source] std::io::Error),
    /// A direct connection did not complete in time.
    #[error("direct connection timed out after {}s", .0.as_secs())]
    DirectTimeout(Duration),
}

impl TunnelErrorKind {
    /// Who has to act.
    pub fn party(&self) -> Party {
        match self {
            TunnelErrorKind::TargetRefused(_) => Party::Target,
            TunnelErrorKind::TargetResolution(_)
            | TunnelErrorKind::DirectUnreachable(_)
            | TunnelErrorKind::DirectTimeout(_) => Party::Network,
            TunnelErrorKind::Socks4Ipv6
            | TunnelErrorKind::Socks5RequestTooLong
            | TunnelErrorKind::SocksDisabled => Party::Configuration,
            _ => Party::Proxy,
        }
    }
}

/// A connection that could not be opened along its route.
///
/// `Display`: `PROBLEM (exchange E, transport T, proxy scheme://host:port, target host:port)`.
#[derive(Debug)]
pub struct TunnelError {
    pub(crate) kind: TunnelErrorKind,
    pub(crate) exchange: String,
    pub(crate) transport: Transport,
    /// `scheme://host:port`, or `None` for a direct connection.
    pub(crate) proxy: Option<String>,
    pub(crate) target: String,
}

impl TunnelError {
    /// What went wrong.
    pub fn kind(&self) -> &TunnelErrorKind {
        &self.kind
    }

    /// Who has to act.
    pub fn party(&self) -> Party {
        self.kind.party()
    }

    /// The exchange the connection was for.
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The transport the connection was for.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The proxy, as `scheme://host:port`; `None` for direct connections.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    /// The target, as `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }
}

impl fmt::Display for TunnelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (exchange {}, transport {}",
            self.kind, self.exchange, self.transport
        )?;
        if let Some(proxy) = &self.proxy {
            write!(f, ", proxy {proxy}")?;
        }
        write!(f, ", target {})", self.target)
    }
}

impl std::error::Error for TunnelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}
