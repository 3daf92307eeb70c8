//! Proxy URL parsing: `ProxyUrl::parse`, the settings-level `ProxyConfig::parse`, and a URL
//! given as a setting (an environment variable through `Loader::env_vars`).

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proxy_config::{
    ConfigErrorKind, Loader, Origin, ProxyConfig, ProxyScheme, ProxyUrl, TimeoutSeconds, UrlError,
};

use crate::CANARY;

/// The variable the settings-level check sets.
const URL_VAR: &str = "CRYPTOFEED_PROXY_DEFAULT__HTTP__URL";

/// Fuzz target `proxy_url`: the input (lossy UTF-8) as a proxy URL.
pub fn proxy_url(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    let parsed = ProxyUrl::parse(&input);
    check_outcome(&parsed);
    check_scheme_gate(&input, &parsed);
    check_settings_level(&input, &parsed);
    check_user_info_independence(&input, &parsed);
}

/// An accepted URL re-displays redacted and parses back equal from its parts; a rejected one
/// says what to do.
fn check_outcome(parsed: &Result<ProxyUrl, UrlError>) {
    match parsed {
        Ok(url) => check_accepted(url),
        Err(error) => {
            assert!(!error.to_string().is_empty(), "{error:?} has no message");
            assert!(error.hint().is_some(), "{error:?} has no hint");
        }
    }
}

pub(crate) fn check_accepted(url: &ProxyUrl) {
    let display = url.to_string();
    assert_eq!(
        display,
        format!("{}://{}:{}", url.scheme(), url.host(), url.port()),
        "Display is scheme://host:port only"
    );
    assert!(url.scheme().is_enabled(), "{display}: scheme not enabled");
    assert_ne!(url.port(), 0, "{display}: port 0 accepted");
    if let Some(user) = url.username() {
        assert!(!user.expose().is_empty(), "{display}: empty user name");
        assert!(
            !matches!(url.scheme(), ProxyScheme::Socks4 | ProxyScheme::Socks4a),
            "{display}: socks4 with credentials"
        );
    } else {
        assert!(url.password().is_none(), "{display}: password without user");
    }

    // The display form is a valid URL: the same address, no credentials.
    let bare = ProxyUrl::parse(&display)
        .unwrap_or_else(|error| panic!("display form {display:?} rejected: {error}"));
    assert!(!bare.has_credentials());
    assert_eq!(
        (bare.scheme(), bare.host(), bare.port()),
        (url.scheme(), url.host(), url.port())
    );
    assert_eq!(bare.to_string(), display);

    // Debug differs from the bare URL's only by `***` where the credentials are.
    let debug = format!("{url:?}");
    assert_eq!(
        debug.replace("Some(***)", "None"),
        format!("{bare:?}"),
        "Debug shows more than `***` for credentials"
    );

    // Built again from its parts, credentials percent-encoded, it parses back equal.
    let rebuilt = full_text(url);
    assert_eq!(
        ProxyUrl::parse(&rebuilt).as_ref(),
        Ok(url),
        "URL built from parts does not round-trip"
    );
}

/// The URL with its credentials, every non-alphanumeric byte percent-encoded: the form settings
/// written out by the targets use.
pub(crate) fn full_text(url: &ProxyUrl) -> String {
    let user_info = match (url.username(), url.password()) {
        (None, _) => String::new(),
        (Some(user), None) => format!("{}@", encode(user.expose())),
        (Some(user), Some(password)) => {
            format!("{}:{}@", encode(user.expose()), encode(password.expose()))
        }
    };
    format!(
        "{}://{user_info}{}:{}",
        url.scheme(),
        url.host(),
        url.port()
    )
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// A SOCKS scheme is accepted exactly when this build enables it, and rejected naming the
/// feature otherwise.
fn check_scheme_gate(input: &str, parsed: &Result<ProxyUrl, UrlError>) {
    let Some((scheme, _)) = input.trim().split_once("://") else {
        return;
    };
    let Some(scheme) = ProxyScheme::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(scheme))
    else {
        return;
    };
    if scheme.is_enabled() {
        assert!(
            !matches!(parsed, Err(UrlError::SocksDisabled(_))),
            "{scheme} is enabled but rejected as disabled"
        );
    } else {
        assert_eq!(parsed, &Err(UrlError::SocksDisabled(scheme)));
        let Err(error) = parsed else { return };
        assert!(error.to_string().contains("`socks` feature"), "{error}");
    }
}

/// `ProxyConfig::parse` and a URL set through the environment source agree with the URL parser.
fn check_settings_level(input: &str, parsed: &Result<ProxyUrl, UrlError>) {
    match (ProxyConfig::parse(input), parsed) {
        (Ok(config), Ok(url)) => {
            assert_eq!(&config.url, url);
            assert_eq!(config.timeout_seconds, TimeoutSeconds::DEFAULT);
        }
        (Err(a), Err(b)) => assert_eq!(&a, b),
        (a, b) => panic!("ProxyConfig::parse {a:?} disagrees with ProxyUrl::parse {b:?}"),
    }

    let loaded = Loader::new().env_vars([(URL_VAR, input)]).load();
    match (loaded, parsed) {
        (Ok(settings), Ok(url)) => {
            assert_eq!(
                settings.default.http,
                Some(ProxyConfig::new(url.clone())),
                "the setting is not the parsed URL"
            );
        }
        (Err(error), _) if input.trim().is_empty() => {
            assert!(matches!(error.kind(), ConfigErrorKind::Empty), "{error:?}");
        }
        (Err(error), Err(url_error)) => {
            assert_eq!(error.key(), "default.http.url");
            assert_eq!(error.origin(), Some(&Origin::Env(URL_VAR.to_owned())));
            match error.kind() {
                ConfigErrorKind::Url(e) => assert_eq!(e, url_error),
                other => panic!("a bad URL setting is {other:?}, not a URL error"),
            }
            let display = error.to_string();
            assert!(
                display.contains(&url_error.to_string()) && display.contains(URL_VAR),
                "{display}"
            );
            assert!(std::error::Error::source(&error).is_some(), "{display}");
        }
        (Ok(_), Err(e)) => panic!("the setting accepts a URL the parser rejects ({e})"),
        (Err(e), Ok(_)) => panic!("the setting rejects a URL the parser accepts: {e}"),
    }
}

/// A canary password that does not occur in `input` (in any case), so finding it in a message
/// means the message quotes the password.
fn canary_for(input: &str) -> String {
    let input = input.to_ascii_lowercase();
    (0u32..)
        .map(|n| format!("{CANARY}{n}"))
        .find(|canary| !input.contains(&canary.to_ascii_lowercase()))
        .unwrap_or_else(|| CANARY.to_owned())
}

/// The input with its user-info replaced by `u:CANARY` (or given one if it has none), cut
/// where the parser cuts: after the first `://`, before the last `@` of the authority. Errors
/// about anything but the user-info must not change (so they cannot depend on the password),
/// and nothing printed may contain the canary.
fn check_user_info_independence(input: &str, parsed: &Result<ProxyUrl, UrlError>) {
    let trimmed = input.trim();
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let canary = canary_for(trimmed);
    let variant = format!("{scheme}://u:{canary}@{host_port}{tail}");
    let with_canary = ProxyUrl::parse(&variant);

    let user_info_stage = matches!(
        parsed,
        Ok(_)
            | Err(UrlError::EmptyUsername
                | UrlError::Socks4Credentials(_)
                | UrlError::Socks5CredentialTooLong(_)
                | UrlError::CredentialsNotUtf8)
    );
    if user_info_stage {
        // Everything before the user-info passed, so only the credentials can decide now.
        match &with_canary {
            Ok(url) => {
                assert_eq!(url.username().map(|u| u.expose()), Some("u"));
                assert_eq!(url.password().map(|p| p.expose()), Some(canary.as_str()));
                if let Ok(original) = parsed {
                    assert_eq!(
                        (url.scheme(), url.host(), url.port()),
                        (original.scheme(), original.host(), original.port())
                    );
                }
                check_accepted(url);
            }
            Err(UrlError::Socks4Credentials(scheme)) => {
                assert!(matches!(scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a));
            }
            Err(other) => panic!("{variant:?}: credentials u:CANARY rejected: {other:?}"),
        }
    } else {
        assert_eq!(
            &with_canary, parsed,
            "the error depends on the user-info part of the input"
        );
    }

    let mut printed = vec![format!("{with_canary:?}")];
    match &with_canary {
        Ok(url) => printed.push(url.to_string()),
        Err(error) => {
            printed.push(error.to_string());
            printed.extend(error.hint());
        }
    }
    if let Err(error) = Loader::new().env_vars([(URL_VAR, variant.as_str())]).load() {
        printed.push(error.to_string());
        printed.push(format!("{error:?}"));
    }
    for text in printed {
        assert!(!text.contains(&canary), "password printed: {text}");
    }
}
