//! Property: no generated password ever appears in the Display or Debug of loaded settings, or in
//! the Display or Debug of any error, whatever the source and whatever is wrong with the setting.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use proxy_config::Loader;

#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    UnsupportedScheme,
    NoScheme,
    NoPort,
    PortTooBig,
    BadHost,
    PathAfter,
    RawSlashInPassword,
    TimeoutOutOfRange,
    UnknownKey,
    SyntaxError,
    /// The URL written where a key belongs.
    UrlAsKey,
    /// A password over RFC 1929's 255 bytes: an error for socks5, loads for http.
    LongPassword,
}

#[derive(Debug, Clone, Copy)]
enum Source {
    Env,
    Yaml,
    Toml,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::None),
        Just(Fault::UnsupportedScheme),
        Just(Fault::NoScheme),
        Just(Fault::NoPort),
        Just(Fault::PortTooBig),
        Just(Fault::BadHost),
        Just(Fault::PathAfter),
        Just(Fault::RawSlashInPassword),
        Just(Fault::TimeoutOutOfRange),
        Just(Fault::UnknownKey),
        Just(Fault::SyntaxError),
        Just(Fault::UrlAsKey),
        Just(Fault::LongPassword),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Env), Just(Source::Yaml), Just(Source::Toml)]
}

fn scheme() -> impl Strategy<Value = &'static str> {
    if cfg!(feature = "socks") {
        prop_oneof![Just("http"), Just("https"), Just("socks5"), Just("socks5h")].boxed()
    } else {
        // Without the feature a socks URL is an error too: include it, its message must be clean.
        prop_oneof![Just("http"), Just("https"), Just("socks5")].boxed()
    }
}

/// A URL string for the case, and the forms of the password that must never appear.
fn url_for(scheme: &str, user: &str, password: &str, fault: Fault) -> String {
    let enc_user = utf8_percent_encode(user, NON_ALPHANUMERIC).to_string();
    let enc_pass = utf8_percent_encode(password, NON_ALPHANUMERIC).to_string();
    match fault {
        Fault::UnsupportedScheme => format!("gopher://{enc_user}:{enc_pass}@proxy.example:8080"),
        Fault::NoScheme => format!("{enc_user}:{enc_pass}@proxy.example:8080"),
        Fault::NoPort => format!("{scheme}://{enc_user}:{enc_pass}@proxy.example"),
        Fault::PortTooBig => format!("{scheme}://{enc_user}:{enc_pass}@proxy.example:70000"),
        Fault::BadHost => format!("{scheme}://{enc_user}:{enc_pass}@bad host:8080"),
        Fault::PathAfter => format!("{scheme}://{enc_user}:{enc_pass}@proxy.example:8080/x"),
        Fault::RawSlashInPassword => {
            format!("{scheme}://{enc_user}:{password}/x@proxy.example:8080")
        }
        Fault::LongPassword => {
            format!(
                "{scheme}://{enc_user}:{}@proxy.example:8080",
                enc_pass.repeat(30)
            )
        }
        _ => format!("{scheme}://{enc_user}:{enc_pass}@proxy.example:8080"),
    }
}

fn load(source: Source, exchange: &str, url: &str, fault: Fault) -> String {
    let timeout = if matches!(fault, Fault::TimeoutOutOfRange) {
        301
    } else {
        10
    };
    let key = match fault {
        Fault::UnknownKey => "adress".to_owned(),
        Fault::UrlAsKey => url.to_owned(),
        _ => "url".to_owned(),
    };
    let result = match source {
        Source::Env => {
            let prefix = format!(
                "CRYPTOFEED_PROXY_EXCHANGES__{}__WEBSOCKET__",
                exchange.to_uppercase()
            );
            let mut vars = vec![
                (format!("{prefix}{}", env_key(&key, fault)), url.to_owned()),
                (format!("{prefix}TIMEOUT_SECONDS"), timeout.to_string()),
            ];
            if matches!(fault, Fault::SyntaxError) {
                vars.push((format!("{prefix}URL__"), url.to_owned()));
            }
            Loader::new().env_vars(vars).load_explained()
        }
        Source::Yaml => {
            let broken = if matches!(fault, Fault::SyntaxError) {
                "  : ["
            } else {
                ""
            };
            let text = format!(
                "proxy:\n  exchanges:\n    {exchange}:\n      websocket:\n        '{key}': '{url}'\n        timeout_seconds: {timeout}\n{broken}\n"
            );
            Loader::new().yaml_str("feed.yaml", text).load_explained()
        }
        Source::Toml => {
            let broken = if matches!(fault, Fault::SyntaxError) {
                "= ["
            } else {
                ""
            };
            let text = format!(
                "[proxy.exchanges.{exchange}.websocket]\n'{key}' = '{url}' {broken}\ntimeout_seconds = {timeout}\n"
            );
            Loader::new().toml_str("feed.toml", text).load_explained()
        }
    };
    match result {
        Ok(loaded) => {
            format!(
                "{loaded:?}\n{:?}\n{}",
                loaded.settings,
                serde_json::to_string(&loaded.settings).unwrap_or_default()
            ) + &loaded
                .settings
                .exchanges
                .values()
                .flat_map(|p| [&p.http, &p.websocket])
                .flatten()
                .map(|p| format!("{}\n{:?}\n", p.url, p))
                .collect::<String>()
        }
        Err(err) => {
            let mut chain = format!("{err}\n{err:?}\n");
            let mut source = std::error::Error::source(&err);
            while let Some(inner) = source {
                chain.push_str(&format!("{inner}\n{inner:?}\n"));
                source = inner.source();
            }
            chain
        }
    }
}

/// The variable name's last part: the key in capitals, or the URL as written.
fn env_key(key: &str, fault: Fault) -> String {
    if matches!(fault, Fault::UrlAsKey) {
        key.to_owned()
    } else {
        key.to_uppercase()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_password_in_any_output(
        source in source(),
        fault in fault(),
        scheme in scheme(),
        exchange in "[a-z]{3,10}",
        // A digit in the name: a plain word could be part of a field name in the Debug output
        // ("nds" in "timeout_seconds: ...") and fail the search without a leak.
        user in "u[0-9][a-z]{2,7}",
        password in "pw[A-Za-z0-9]{8,16}[@:%#?]{0,2}[A-Za-z0-9]{0,4}",
    ) {
        let url = url_for(scheme, &user, &password, fault);
        let output = load(source, &exchange, &url, fault);
        let encoded = utf8_percent_encode(&password, NON_ALPHANUMERIC).to_string();
        // The alphanumeric core is what any leak would contain, however the rest was escaped.
        let core: String = password.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        // The case did what it says: a clean setting loads, a faulty one is an error naming its source.
        let socks_off = scheme.starts_with("socks") && !cfg!(feature = "socks");
        let loads = matches!(fault, Fault::None)
            || (matches!(fault, Fault::LongPassword) && scheme.starts_with("http"));
        if loads && !socks_off {
            prop_assert!(output.contains("proxy.example:8080"), "should load: {output}");
        } else {
            prop_assert!(output.contains("(from "), "should be an error: {output}");
        }
        prop_assert!(!output.contains(&password), "password leaked: {output}");
        prop_assert!(!output.contains(&encoded), "encoded password leaked: {output}");
        prop_assert!(!output.contains(&core), "password leaked: {output}");
        // Keys and variable names are read in lower case: a leak there is the core lowered.
        prop_assert!(
            !output.to_lowercase().contains(&core.to_lowercase()),
            "password leaked in lower case: {output}"
        );
        prop_assert!(!output.contains(&format!("{user}:")), "user name leaked: {output}");
    }
}
