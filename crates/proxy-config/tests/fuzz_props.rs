//! Properties of proxy URL parsing, the contract the `proxy_url` fuzz target also checks: no
//! input panics; every URL built from valid parts (any credentials, percent-encoded) parses back
//! to those parts; every URL with one invalid part is the error naming that part; no error
//! depends on the password, and no output of a file holding just a URL quotes it.
//!
//! Table tests of single URLs are in url.rs; substring checks of every output for a password
//! across sources and faults are in redaction.rs.

use std::net::{Ipv4Addr, Ipv6Addr};

use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proptest::sample::select;
use proxy_config::{Loader, ProxyConfig, ProxyHost, ProxyScheme, ProxyUrl, UrlError};

/// What must be escaped in user-info for the parser: `%` (escapes), `:` (user/password), `@`,
/// and the characters that end the authority.
const USER_INFO: &AsciiSet = &CONTROLS
    .add(b'%')
    .add(b':')
    .add(b'@')
    .add(b'/')
    .add(b'?')
    .add(b'#');

/// Text shaped like a proxy URL: scheme-ish, separators, up to two user-info parts, a host that
/// may be bracketed or dotted digits, a port-ish tail, maybe a path.
const NEAR_THE_GRAMMAR: &str = concat!(
    "[ \t]?(https?|HTTP|socks[45]a?h?|[a-z+.-]{0,5}|)(:|://|:/)?",
    "([^@/?#]{0,8}(:[^@/?#]{0,8})?@){0,2}",
    "(\\[[0-9a-fA-F:.]{0,24}\\]?|[a-zA-Z0-9._ -]{0,16}|[0-9]{1,3}(\\.[0-9]{1,4}){0,4})",
    "(:[0-9a-z]{0,7})?([/?#].{0,4})?",
);

fn enabled_schemes() -> Vec<ProxyScheme> {
    ProxyScheme::ALL
        .into_iter()
        .filter(|s| s.is_enabled())
        .collect()
}

/// A host as written (case and trailing dot vary) and as parsed.
fn host() -> impl Strategy<Value = (String, ProxyHost)> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9])?";
    // The last label starts with a letter: an all-digit last label is refused as a bad IPv4.
    let last = "[a-zA-Z]([a-zA-Z0-9_-]{0,10}[a-zA-Z0-9])?";
    let domain = (prop::collection::vec(label, 0..3), last, any::<bool>()).prop_map(
        |(mut labels, last, trailing_dot)| {
            labels.push(last);
            let name = labels.join(".");
            let written = if trailing_dot {
                format!("{name}.")
            } else {
                name.clone()
            };
            (written, ProxyHost::Domain(name.to_ascii_lowercase()))
        },
    );
    prop_oneof![
        2 => domain,
        1 => any::<[u8; 4]>().prop_map(|octets| {
            let ip = Ipv4Addr::from(octets);
            (ip.to_string(), ProxyHost::Ipv4(ip))
        }),
        1 => any::<u128>().prop_map(|bits| {
            let ip = Ipv6Addr::from(bits);
            (format!("[{ip}]"), ProxyHost::Ipv6(ip))
        }),
    ]
}

/// Credentials: a non-empty user name and maybe a password, any characters.
fn credentials() -> impl Strategy<Value = Option<(String, Option<String>)>> {
    proptest::option::of((
        any::<String>().prop_filter("user name is not empty", |u| !u.is_empty()),
        proptest::option::of(any::<String>()),
    ))
}

#[derive(Debug, Clone)]
struct Parts {
    scheme: ProxyScheme,
    scheme_written: String,
    host_written: String,
    host: ProxyHost,
    port: u16,
    zeros: usize,
    credentials: Option<(String, Option<String>)>,
    encode_all: bool,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        select(enabled_schemes()),
        any::<bool>(),
        host(),
        1u16..=65535,
        0usize..3,
        credentials(),
        any::<bool>(),
    )
        .prop_map(
            |(scheme, upper, (host_written, host), port, zeros, credentials, encode_all)| {
                // SOCKS4 carries no credentials.
                let credentials = credentials
                    .filter(|_| !matches!(scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a));
                let scheme_written = if upper {
                    scheme.as_str().to_ascii_uppercase()
                } else {
                    scheme.as_str().to_owned()
                };
                Parts {
                    scheme,
                    scheme_written,
                    host_written,
                    host,
                    port,
                    zeros,
                    credentials,
                    encode_all,
                }
            },
        )
}

impl Parts {
    fn encode(&self, text: &str) -> String {
        let set = if self.encode_all {
            NON_ALPHANUMERIC
        } else {
            USER_INFO
        };
        utf8_percent_encode(text, set).to_string()
    }

    fn user_info(&self) -> String {
        match &self.credentials {
            None => String::new(),
            Some((user, None)) => format!("{}@", self.encode(user)),
            Some((user, Some(password))) => {
                format!("{}:{}@", self.encode(user), self.encode(password))
            }
        }
    }

    fn port_text(&self) -> String {
        format!("{}{}", "0".repeat(self.zeros), self.port)
    }

    fn text(&self) -> String {
        format!(
            "{}://{}{}:{}",
            self.scheme_written,
            self.user_info(),
            self.host_written,
            self.port_text()
        )
    }

    fn password(&self) -> Option<&str> {
        self.credentials.as_ref()?.1.as_deref()
    }
}

/// One part made invalid, and the error it must give.
#[derive(Debug, Clone, Copy)]
enum Fault {
    PortZero,
    PortTooBig,
    PortNotANumber,
    NoPort,
    EmptyPort,
    UnknownScheme,
    NoScheme,
    BadHost,
    UnbracketedIpv6,
    Path,
    EmptyUser,
    CredentialsNotUtf8,
    SocksCredentials,
    /// A SOCKS scheme in a build without the `socks` feature.
    SocksDisabled,
}

fn fault() -> impl Strategy<Value = Fault> {
    select(vec![
        Fault::PortZero,
        Fault::PortTooBig,
        Fault::PortNotANumber,
        Fault::NoPort,
        Fault::EmptyPort,
        Fault::UnknownScheme,
        Fault::NoScheme,
        Fault::BadHost,
        Fault::UnbracketedIpv6,
        Fault::Path,
        Fault::EmptyUser,
        Fault::CredentialsNotUtf8,
        Fault::SocksCredentials,
        Fault::SocksDisabled,
    ])
}

/// The URL with `fault`, and the error expected, or `None` when the fault does not apply to
/// these parts (SOCKS4 credentials in a build without SOCKS, a disabled SOCKS scheme in one
/// with it).
fn faulty(parts: &Parts, fault: Fault, big_port: u64, word: &str) -> Option<(String, UrlError)> {
    let scheme = &parts.scheme_written;
    let user_info = parts.user_info();
    let host = &parts.host_written;
    let port = parts.port_text();
    let url = |scheme: &str, user_info: &str, host: &str, port: &str| {
        format!("{scheme}://{user_info}{host}{port}")
    };
    Some(match fault {
        Fault::PortZero => (
            url(scheme, &user_info, host, ":0"),
            UrlError::PortOutOfRange("0".to_owned()),
        ),
        Fault::PortTooBig => {
            let digits = big_port.to_string();
            let shown = format!("of {} digits", digits.len());
            (
                url(scheme, &user_info, host, &format!(":{digits}")),
                UrlError::PortOutOfRange(shown),
            )
        }
        Fault::PortNotANumber => (
            url(scheme, &user_info, host, &format!(":{port}{word}")),
            UrlError::InvalidPort,
        ),
        Fault::NoPort => (url(scheme, &user_info, host, ""), UrlError::MissingPort),
        Fault::EmptyPort => (url(scheme, &user_info, host, ":"), UrlError::MissingPort),
        Fault::UnknownScheme => {
            let name = format!("x{word}").to_ascii_lowercase();
            (
                url(&name, &user_info, host, &format!(":{port}")),
                UrlError::UnsupportedScheme(name),
            )
        }
        Fault::NoScheme => (format!("{user_info}{host}:{port}"), UrlError::MissingScheme),
        Fault::BadHost => {
            let bad = format!("{word}!{word}.example");
            (
                url(scheme, &user_info, &bad, &format!(":{port}")),
                UrlError::InvalidHost(bad),
            )
        }
        Fault::UnbracketedIpv6 => (
            url(scheme, &user_info, "2001:db8::1", &format!(":{port}")),
            UrlError::UnbracketedIpv6,
        ),
        Fault::Path => (
            url(scheme, &user_info, host, &format!(":{port}/{word}")),
            UrlError::UnexpectedPath,
        ),
        Fault::EmptyUser => (
            url(
                scheme,
                &format!(":{}@", parts.encode(word)),
                host,
                &format!(":{port}"),
            ),
            UrlError::EmptyUsername,
        ),
        Fault::CredentialsNotUtf8 if parts.scheme_supports_credentials() => (
            url(
                scheme,
                &format!("{word}:%FF{word}@"),
                host,
                &format!(":{port}"),
            ),
            UrlError::CredentialsNotUtf8,
        ),
        Fault::SocksDisabled => {
            let socks = select_disabled(parts.port)?;
            (
                url(socks.as_str(), &user_info, host, &format!(":{port}")),
                UrlError::SocksDisabled(socks),
            )
        }
        Fault::CredentialsNotUtf8 | Fault::SocksCredentials => {
            let socks4 = [ProxyScheme::Socks4, ProxyScheme::Socks4a]
                .into_iter()
                .find(|s| s.is_enabled())?;
            (
                url(
                    socks4.as_str(),
                    &format!("{word}:{word}@"),
                    host,
                    &format!(":{port}"),
                ),
                UrlError::Socks4Credentials(socks4),
            )
        }
    })
}

/// A SOCKS scheme this build disables (varied by `seed`), if any.
fn select_disabled(seed: u16) -> Option<ProxyScheme> {
    let disabled: Vec<ProxyScheme> = ProxyScheme::ALL
        .into_iter()
        .filter(|s| !s.is_enabled())
        .collect();
    disabled
        .get(usize::from(seed) % disabled.len().max(1))
        .copied()
}

impl Parts {
    fn scheme_supports_credentials(&self) -> bool {
        !matches!(self.scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn any_text_parses_or_fails_without_panic(text in any::<String>()) {
        if let Ok(url) = ProxyUrl::parse(&text) {
            let again = ProxyUrl::parse(&url.to_string());
            prop_assert!(again.is_ok(), "{} does not reparse", url);
        }
    }

    #[test]
    fn text_near_the_grammar_parses_or_fails_without_panic(
        text in NEAR_THE_GRAMMAR
    ) {
        match ProxyUrl::parse(&text) {
            Ok(url) => {
                let again = ProxyUrl::parse(&url.to_string()).expect("display form parses");
                prop_assert_eq!(
                    (again.scheme(), again.host(), again.port()),
                    (url.scheme(), url.host(), url.port())
                );
            }
            Err(error) => prop_assert!(error.hint().is_some(), "{:?} has no hint", error),
        }
    }

    #[test]
    fn a_url_built_from_valid_parts_parses_back_to_them(parts in parts()) {
        let text = parts.text();
        let url = ProxyUrl::parse(&text)
            .map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        prop_assert_eq!(url.scheme(), parts.scheme);
        prop_assert_eq!(url.host(), &parts.host);
        prop_assert_eq!(url.port(), parts.port);
        let (user, password) = match &parts.credentials {
            None => (None, None),
            Some((user, password)) => (Some(user.as_str()), password.as_deref()),
        };
        prop_assert_eq!(url.username().map(|s| s.expose()), user);
        prop_assert_eq!(url.password().map(|s| s.expose()), password);
        // Redacted forms: the address only, credentials as `***`.
        let display = format!("{}://{}:{}", parts.scheme, parts.host, parts.port);
        prop_assert_eq!(url.to_string(), display.clone());
        let config = ProxyConfig::parse(&text).expect("same parser");
        prop_assert_eq!(&config.url, &url);
        if let Some(password) = password.filter(|p| p.len() >= 4) {
            for shown in [url.to_string(), format!("{url:?}"), format!("{config:?}")] {
                prop_assert!(!shown.contains(password), "{}", shown);
            }
        }
        // The display form is the same address without credentials.
        let bare = ProxyUrl::parse(&display).expect("display form parses");
        prop_assert!(!bare.has_credentials());
        prop_assert_eq!(
            (bare.scheme(), bare.host(), bare.port()),
            (url.scheme(), url.host(), url.port())
        );
    }

    #[test]
    fn a_url_with_one_invalid_part_is_the_error_naming_it(
        parts in parts(),
        fault in fault(),
        big_port in 65_536u64..,
        word in "[a-z]{1,8}",
    ) {
        let Some((text, expected)) = faulty(&parts, fault, big_port, &word) else {
            return Ok(());
        };
        let error = ProxyUrl::parse(&text).expect_err("invalid");
        prop_assert_eq!(&error, &expected, "{:?}", text);
        prop_assert!(error.hint().is_some());
        prop_assert_eq!(ProxyConfig::parse(&text).expect_err("invalid"), expected);
    }

    #[test]
    fn no_error_depends_on_the_password(
        parts in parts(),
        fault in fault(),
        big_port in 65_536u64..,
        word in "[a-z]{1,8}",
        other in any::<String>(),
    ) {
        // The same faulty URL with the password swapped gives the same error, so the error
        // cannot quote the password.
        if parts.password().is_none() {
            return Ok(());
        }
        let Some((text, _)) = faulty(&parts, fault, big_port, &word) else {
            return Ok(());
        };
        let mut swapped = parts.clone();
        if let Some((_, slot)) = swapped.credentials.as_mut() {
            *slot = Some(other);
        }
        let Some((swapped_text, _)) = faulty(&swapped, fault, big_port, &word) else {
            return Ok(());
        };
        prop_assert_eq!(ProxyUrl::parse(&text), ProxyUrl::parse(&swapped_text));
    }

    #[test]
    fn a_file_holding_just_a_url_never_quotes_it(
        parts in parts(),
        password in "[a-zA-Z0-9]{12}",
        quote in select(vec!["", "'", "\""]),
    ) {
        let mut parts = parts;
        if !parts.scheme_supports_credentials() {
            return Ok(());
        }
        parts.credentials = Some(("user".to_owned(), Some(password.clone())));
        let text = format!("{quote}{}{quote}\n", parts.text());
        let yaml = Loader::new().yaml_str("feed.yaml", text.as_str()).load();
        let toml = Loader::new().toml_str("feed.toml", text.as_str()).load();
        for error in [yaml.expect_err("not a table"), toml.expect_err("not TOML")] {
            let shown = format!("{error}\n{error:?}");
            prop_assert!(!shown.contains(&password), "{}", shown);
        }
    }
}
