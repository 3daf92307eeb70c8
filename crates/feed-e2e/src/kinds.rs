//! The proxy kinds of the matrix (its rows) and how each is reached.

use std::fmt;

/// Where a proxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// feed-sim's recording proxies, in this process.
    InProcess,
    /// A real proxy daemon from Debian, started by the harness.
    Real,
}

impl Origin {
    /// `in-process` or `real`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::InProcess => "in-process",
            Origin::Real => "real",
        }
    }
}

/// One row of the matrix: a proxy, its URL scheme and whether it needs credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// HTTP CONNECT over `http://`.
    Connect,
    /// HTTP CONNECT with Basic auth.
    ConnectAuth,
    /// HTTP CONNECT over TLS to the proxy (`https://`).
    Https,
    /// SOCKS4 (the client resolves the name).
    Socks4,
    /// SOCKS4a (the proxy resolves the name).
    Socks4a,
    /// SOCKS5 (the client resolves the name).
    Socks5,
    /// SOCKS5 with username/password.
    Socks5Auth,
    /// SOCKS5 with the name resolved by the proxy.
    Socks5h,
    /// squid, CONNECT.
    Squid,
    /// squid, CONNECT with Basic auth.
    SquidAuth,
    /// tinyproxy, CONNECT.
    Tinyproxy,
    /// microsocks, SOCKS5.
    Microsocks,
    /// microsocks, SOCKS5h with username/password.
    MicrosocksAuth,
    /// dante, SOCKS4 (never 4a: dante does not implement it).
    DanteSocks4,
    /// dante, SOCKS5.
    DanteSocks5,
}

impl ProxyKind {
    /// The in-process rows, in table order.
    pub const IN_PROCESS: [ProxyKind; 8] = [
        ProxyKind::Connect,
        ProxyKind::ConnectAuth,
        ProxyKind::Https,
        ProxyKind::Socks4,
        ProxyKind::Socks4a,
        ProxyKind::Socks5,
        ProxyKind::Socks5Auth,
        ProxyKind::Socks5h,
    ];

    /// The real-proxy rows, in table order.
    pub const REAL: [ProxyKind; 7] = [
        ProxyKind::Squid,
        ProxyKind::SquidAuth,
        ProxyKind::Tinyproxy,
        ProxyKind::Microsocks,
        ProxyKind::MicrosocksAuth,
        ProxyKind::DanteSocks4,
        ProxyKind::DanteSocks5,
    ];

    /// The id used in cell ids and filters (`socks5-auth`).
    pub fn id(self) -> &'static str {
        match self {
            ProxyKind::Connect => "connect",
            ProxyKind::ConnectAuth => "connect-auth",
            ProxyKind::Https => "https",
            ProxyKind::Socks4 => "socks4",
            ProxyKind::Socks4a => "socks4a",
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5Auth => "socks5-auth",
            ProxyKind::Socks5h => "socks5h",
            ProxyKind::Squid => "squid",
            ProxyKind::SquidAuth => "squid-auth",
            ProxyKind::Tinyproxy => "tinyproxy",
            ProxyKind::Microsocks => "microsocks",
            ProxyKind::MicrosocksAuth => "microsocks-auth",
            ProxyKind::DanteSocks4 => "dante-socks4",
            ProxyKind::DanteSocks5 => "dante-socks5",
        }
    }

    /// Where it runs.
    pub fn origin(self) -> Origin {
        if Self::IN_PROCESS.contains(&self) {
            Origin::InProcess
        } else {
            Origin::Real
        }
    }

    /// The URL scheme the settings name.
    pub fn scheme(self) -> &'static str {
        match self {
            ProxyKind::Connect
            | ProxyKind::ConnectAuth
            | ProxyKind::Squid
            | ProxyKind::SquidAuth
            | ProxyKind::Tinyproxy => "http",
            ProxyKind::Https => "https",
            ProxyKind::Socks4 | ProxyKind::DanteSocks4 => "socks4",
            ProxyKind::Socks4a => "socks4a",
            ProxyKind::Socks5
            | ProxyKind::Socks5Auth
            | ProxyKind::Microsocks
            | ProxyKind::DanteSocks5 => "socks5",
            ProxyKind::Socks5h | ProxyKind::MicrosocksAuth => "socks5h",
        }
    }

    /// Whether the URL needs the `socks` feature.
    pub fn is_socks(self) -> bool {
        self.scheme().starts_with("socks")
    }

    /// The credentials the proxy requires, if any. Each password is a canary the redaction
    /// check searches for; tinyproxy-safe characters only.
    pub fn credentials(self) -> Option<(&'static str, &'static str)> {
        match self {
            ProxyKind::ConnectAuth => Some(("matrix", "canary-connect-pw.7")),
            ProxyKind::Socks5Auth => Some(("matrix", "canary-socks5-pw.7")),
            ProxyKind::SquidAuth => Some(("matrix", "canary-squid-pw.7")),
            ProxyKind::MicrosocksAuth => Some(("matrix", "canary-microsocks-pw.7")),
            _ => None,
        }
    }

    /// Whether the proxy resolves the target's name (the record shows `localhost`, not an IP).
    pub fn proxy_resolves(self) -> bool {
        matches!(self.scheme(), "http" | "https" | "socks4a" | "socks5h")
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}
