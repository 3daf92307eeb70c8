//! `ProxyUrl`: parsing and validation of `scheme://[user[:password]@]host:port` proxy addresses.
//!
//! Parsing is a plain function over a string. Error messages never echo the user-info part of the
//! input (it may hold a password): only the scheme, the host and the port are ever quoted back.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use crate::secret::Secret;

/// The proxy protocol, taken from the URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ProxyScheme {
    /// `http://`: HTTP CONNECT over plain TCP.
    Http,
    /// `https://`: HTTP CONNECT inside TLS to the proxy.
    Https,
    /// `socks4://`: SOCKS4, the client resolves the target name.
    Socks4,
    /// `socks4a://`: SOCKS4a, the proxy resolves the target name.
    Socks4a,
    /// `socks5://`: SOCKS5, the client resolves the target name.
    Socks5,
    /// `socks5h://`: SOCKS5, the proxy resolves the target name.
    Socks5h,
}

impl ProxyScheme {
    /// Every scheme, in the order error messages list them.
    pub const ALL: [ProxyScheme; 6] = [
        ProxyScheme::Http,
        ProxyScheme::Https,
        ProxyScheme::Socks4,
        ProxyScheme::Socks4a,
        ProxyScheme::Socks5,
        ProxyScheme::Socks5h,
    ];

    /// The scheme as written in a URL, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks4 => "socks4",
            ProxyScheme::Socks4a => "socks4a",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }

    /// True for the four SOCKS schemes, which need the `socks` feature.
    pub fn is_socks(self) -> bool {
        !matches!(self, ProxyScheme::Http | ProxyScheme::Https)
    }

    /// True when the proxy, not the client, resolves the target host name (`socks4a`, `socks5h`,
    /// and HTTP CONNECT, which always sends the name).
    pub fn proxy_resolves_names(self) -> bool {
        !matches!(self, ProxyScheme::Socks4 | ProxyScheme::Socks5)
    }

    /// Whether this build accepts the scheme (SOCKS needs the `socks` feature).
    pub fn is_enabled(self) -> bool {
        cfg!(feature = "socks") || !self.is_socks()
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for ProxyScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The proxy host: a DNS name (stored lower case), an IPv4 address or an IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProxyHost {
    /// A DNS name, lower case.
    Domain(String),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address (written in brackets in URLs).
    Ipv6(Ipv6Addr),
}

impl fmt::Display for ProxyHost {
    /// IPv6 addresses are bracketed, so `format!("{host}:{port}")` is always a valid authority.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHost::Domain(name) => f.write_str(name),
            ProxyHost::Ipv4(ip) => write!(f, "{ip}"),
            ProxyHost::Ipv6(ip) => write!(f, "[{ip}]"),
        }
    }
}

/// A validated proxy address: scheme, host, explicit port and optional credentials.
///
/// `Display` prints `scheme://host:port` with the credentials left out; `Debug` prints them as
/// `***`. The credentials are percent-decoded (`us%40er` is the user `us@er`).
///
/// ```
/// use proxy_config::{ProxyScheme, ProxyUrl};
/// let url: ProxyUrl = "https://alice:s%3Acret@[::1]:8443".parse().unwrap();
/// assert_eq!(url.scheme(), ProxyScheme::Https);
/// assert_eq!(url.password().unwrap().expose(), "s:cret");
/// assert_eq!(url.to_string(), "https://[::1]:8443");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ProxyUrl {
    scheme: ProxyScheme,
    host: ProxyHost,
    port: u16,
    username: Option<Secret>,
    password: Option<Secret>,
}

impl ProxyUrl {
    /// Parses and validates a proxy URL. Same as `str::parse`.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        parse(input)
    }

    /// The proxy protocol.
    pub fn scheme(&self) -> ProxyScheme {
        self.scheme
    }

    /// The proxy host.
    pub fn host(&self) -> &ProxyHost {
        &self.host
    }

    /// The proxy port (always given explicitly in the URL).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, percent-decoded, if the URL has credentials.
    pub fn username(&self) -> Option<&Secret> {
        self.username.as_ref()
    }

    /// The password, percent-decoded, if the URL has one.
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }

    /// True when the URL carries a user name (and maybe a password).
    pub fn has_credentials(&self) -> bool {
        self.username.is_some()
    }

    /// `host:port`, with IPv6 hosts bracketed: what a connector dials.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyUrl")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

impl FromStr for ProxyUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl serde::Serialize for ProxyUrl {
    /// Serializes the redacted form (`scheme://host:port`), so settings can be printed as JSON or
    /// YAML without leaking credentials. Deserializing that form gives a URL without credentials.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ProxyUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ProxyUrl;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a proxy URL string such as \"http://proxy.example:8080\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ProxyUrl, E> {
                parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Why a proxy URL was rejected. Never carries the user-info part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The value is empty.
    #[error("empty proxy URL")]
    Empty,
    /// No `scheme://` prefix.
    #[error("missing scheme in proxy URL")]
    MissingScheme,
    /// The text before `://` is not a scheme name.
    #[error("malformed scheme in proxy URL")]
    MalformedScheme,
    /// A scheme this library does not speak.
    #[error("unsupported proxy scheme \"{0}\"")]
    UnsupportedScheme(String),
    /// A SOCKS scheme in a build without the `socks` feature.
    #[error("proxy scheme \"{0}\" needs the `socks` feature, which this build does not enable")]
    SocksDisabled(ProxyScheme),
    /// No host between `://` (or `@`) and `:port`.
    #[error("missing host in proxy URL")]
    MissingHost,
    /// The host is not a DNS name, an IPv4 address or a bracketed IPv6 address.
    #[error("invalid proxy host \"{0}\"")]
    InvalidHost(String),
    /// An IPv6 address without brackets.
    #[error("IPv6 proxy host must be in brackets")]
    UnbracketedIpv6,
    /// No `:port` after the host.
    #[error("missing port in proxy URL")]
    MissingPort,
    /// The port is not a number.
    #[error("invalid port in proxy URL: not a number")]
    InvalidPort,
    /// The port is 0 or above 65535: `0`, else `of N digits`, never the digits themselves (a
    /// number where the port belongs may be a password whose `@host:port` is missing, as in
    /// `http://user:654321`).
    #[error("port {0} out of range")]
    PortOutOfRange(String),
    /// A path, query or fragment after the address.
    #[error("unexpected path, query or fragment in proxy URL")]
    UnexpectedPath,
    /// Something that looks like credentials appears after a `/`, `?` or `#`.
    #[error("credentials in proxy URL contain a reserved character")]
    ReservedCharInCredentials,
    /// The user name or password does not percent-decode to UTF-8.
    #[error("credentials in proxy URL are not valid UTF-8 after percent-decoding")]
    CredentialsNotUtf8,
    /// `@` with an empty user name.
    #[error("empty user name in proxy URL")]
    EmptyUsername,
    /// SOCKS4 carries no password.
    #[error("{0} proxies do not support credentials")]
    Socks4Credentials(ProxyScheme),
    /// A SOCKS5 user name or password longer than RFC 1929's 255 bytes (after
    /// percent-decoding); `.0` says which.
    #[error("socks5 {0} is longer than 255 bytes")]
    Socks5CredentialTooLong(&'static str),
}

impl UrlError {
    /// What the operator should do, appended to messages after `; `.
    pub fn hint(&self) -> Option<String> {
        match self {
            UrlError::Empty | UrlError::MissingScheme | UrlError::MalformedScheme => {
                Some(format!("expected scheme://host:port with scheme one of {}", scheme_list()))
            }
            UrlError::UnsupportedScheme(_) => Some(format!("expected one of {}", scheme_list())),
            UrlError::SocksDisabled(_) => Some(
                "rebuild with the `socks` feature (on by default) or use an http:// or https:// proxy"
                    .to_owned(),
            ),
            UrlError::MissingHost | UrlError::InvalidHost(_) => Some(
                "expected a DNS name, an IPv4 address or a bracketed IPv6 address such as [::1]"
                    .to_owned(),
            ),
            UrlError::UnbracketedIpv6 => Some("write it as scheme://[2001:db8::1]:PORT".to_owned()),
            UrlError::MissingPort | UrlError::InvalidPort | UrlError::PortOutOfRange(_) => {
                Some("the port is required: a number from 1 to 65535 after the host, e.g. :8080".to_owned())
            }
            UrlError::UnexpectedPath => Some("a proxy URL is only scheme://[user:password@]host:port".to_owned()),
            UrlError::ReservedCharInCredentials | UrlError::CredentialsNotUtf8 => Some(
                "percent-encode '@', ':', '/', '?', '#' and '%' in the user name and password (e.g. %40 for '@')"
                    .to_owned(),
            ),
            UrlError::EmptyUsername => Some("write user:password@ before the host, or no @ at all".to_owned()),
            UrlError::Socks4Credentials(_) => {
                Some("use socks5:// or socks5h:// for user name and password authentication".to_owned())
            }
            UrlError::Socks5CredentialTooLong(_) => Some(
                "SOCKS5 authentication (RFC 1929) carries at most 255 bytes each of user name and password"
                    .to_owned(),
            ),
        }
    }
}

/// The schemes this build accepts, for messages: `http, https, socks4, ...`.
pub(crate) fn scheme_list() -> String {
    let enabled: Vec<&str> = ProxyScheme::ALL
        .iter()
        .filter(|s| s.is_enabled())
        .map(|s| s.as_str())
        .collect();
    let mut list = enabled.join(", ");
    if !cfg!(feature = "socks") {
        list.push_str(" (socks4, socks4a, socks5 and socks5h need the `socks` feature)");
    }
    list
}

fn parse(input: &str) -> Result<ProxyUrl, UrlError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(UrlError::Empty);
    }
    let Some((scheme_text, rest)) = input.split_once("://") else {
        return Err(UrlError::MissingScheme);
    };
    let scheme = parse_scheme(scheme_text)?;

    // The authority ends at the first '/', '?' or '#'. Only a bare trailing '/' may follow.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if !tail.is_empty() && tail != "/" {
        if tail.contains('@') {
            return Err(UrlError::ReservedCharInCredentials);
        }
        return Err(UrlError::UnexpectedPath);
    }

    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (host, port) = parse_host_port(host_port)?;

    let (username, password) = match userinfo {
        None => (None, None),
        Some(userinfo) => {
            let (user, pass) = match userinfo.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (userinfo, None),
            };
            if user.is_empty() {
                return Err(UrlError::EmptyUsername);
            }
            if matches!(scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a) {
                return Err(UrlError::Socks4Credentials(scheme));
            }
            let (user, pass) = (decode(user)?, pass.map(decode).transpose()?);
            if matches!(scheme, ProxyScheme::Socks5 | ProxyScheme::Socks5h) {
                if user.expose().len() > 255 {
                    return Err(UrlError::Socks5CredentialTooLong("user name"));
                }
                if pass.as_ref().is_some_and(|p| p.expose().len() > 255) {
                    return Err(UrlError::Socks5CredentialTooLong("password"));
                }
            }
            (Some(user), pass)
        }
    };

    Ok(ProxyUrl {
        scheme,
        host,
        port,
        username,
        password,
    })
}

fn parse_scheme(text: &str) -> Result<ProxyScheme, UrlError> {
    let mut chars = text.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return Err(UrlError::MalformedScheme);
    }
    let lower = text.to_ascii_lowercase();
    let scheme = ProxyScheme::from_name(&lower).ok_or(UrlError::UnsupportedScheme(lower))?;
    if !scheme.is_enabled() {
        return Err(UrlError::SocksDisabled(scheme));
    }
    Ok(scheme)
}

fn parse_host_port(text: &str) -> Result<(ProxyHost, u16), UrlError> {
    if let Some(bracketed) = text.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(UrlError::InvalidHost(format!("[{bracketed}")));
        };
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| UrlError::InvalidHost(format!("[{inside}]")))?;
        let port = match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None if after.is_empty() => return Err(UrlError::MissingPort),
            None => return Err(UrlError::InvalidHost(format!("[{inside}]{after}"))),
        };
        return Ok((ProxyHost::Ipv6(ip), port));
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => return Err(UrlError::UnbracketedIpv6),
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let host = parse_host(host)?;
    let port = parse_port(port.ok_or(UrlError::MissingPort)?)?;
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<ProxyHost, UrlError> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ProxyHost::Ipv4(ip));
    }
    let invalid = || UrlError::InvalidHost(host.to_owned());
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Err(invalid());
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(invalid());
        }
    }
    // A name whose last label is numeric would be read as an IPv4 address by other tools
    // (WHATWG URL rules); "999.1.1.1" is a mistake, not a host name.
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(invalid());
    }
    Ok(ProxyHost::Domain(name.to_ascii_lowercase()))
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    if text.is_empty() {
        return Err(UrlError::MissingPort);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort);
    }
    let out_of_range = || {
        let shown = if text == "0" {
            text.to_owned()
        } else {
            format!("of {} digits", text.len())
        };
        UrlError::PortOutOfRange(shown)
    };
    // Digits only, so parsing fails only on overflow, which is out of range too.
    match text.parse::<u32>().ok().and_then(|p| u16::try_from(p).ok()) {
        Some(port) if port >= 1 => Ok(port),
        _ => Err(out_of_range()),
    }
}

fn decode(text: &str) -> Result<Secret, UrlError> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| Secret::new(s.into_owned()))
        .map_err(|_| UrlError::CredentialsNotUtf8)
}
