//! Properties over arbitrary settings: the resolver agrees with a plain reading of the
//! resolution order, and no credential ever shows in `Debug` or `Display`.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proxy_config::{
    ConnectionProxies, ExchangeId, ProxyConfig, ProxyScheme, ProxySettings, TimeoutSeconds,
};
use proxy_resolve::{Resolution, Resolver, RouteReason, Transport};

/// A generated proxy and the credentials (decoded and as written in the URL) it carries.
#[derive(Debug, Clone)]
struct GenProxy {
    config: ProxyConfig,
    secrets: Vec<String>,
}

fn percent_encode_all(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn gen_proxy() -> impl Strategy<Value = GenProxy> {
    let schemes: Vec<ProxyScheme> = ProxyScheme::ALL
        .into_iter()
        .filter(|s| s.is_enabled())
        .collect();
    let host = prop_oneof![
        "[a-z]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z]{2,3})?",
        Just("127.0.0.1".to_owned()),
        Just("[::1]".to_owned()),
    ];
    let credentials =
        proptest::option::of(("us[a-zA-Z0-9]{8,16}", "pw[a-zA-Z0-9]{8,16}", any::<bool>()));
    (select(schemes), host, 1u16..=65535, 1u64..=300, credentials).prop_map(
        |(scheme, host, port, timeout, credentials)| {
            // SOCKS4 and 4a carry no password: generate none for them.
            let credentials = credentials
                .filter(|_| !matches!(scheme, ProxyScheme::Socks4 | ProxyScheme::Socks4a));
            let mut secrets = Vec::new();
            let userinfo = match credentials {
                None => String::new(),
                Some((user, password, encode)) => {
                    let written = if encode {
                        format!(
                            "{}:{}@",
                            percent_encode_all(&user),
                            percent_encode_all(&password)
                        )
                    } else {
                        format!("{user}:{password}@")
                    };
                    if encode {
                        secrets.push(percent_encode_all(&user));
                        secrets.push(percent_encode_all(&password));
                    }
                    secrets.push(user);
                    secrets.push(password);
                    written
                }
            };
            let url = format!("{scheme}://{userinfo}{host}:{port}");
            let config = ProxyConfig::parse(&url)
                .expect("generated proxy URL is valid")
                .with_timeout(TimeoutSeconds::new(timeout).expect("generated timeout in range"));
            GenProxy { config, secrets }
        },
    )
}

fn gen_proxies() -> impl Strategy<Value = (Option<GenProxy>, Option<GenProxy>)> {
    (
        proptest::option::of(gen_proxy()),
        proptest::option::of(gen_proxy()),
    )
}

fn gen_id() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "binance",
            "coinbase",
            "kraken",
            "backpack",
            "gate.io",
            "binance_us",
            "okx-v5"
        ])
        .prop_map(String::from),
        "[a-z0-9_.-]{1,64}",
    ]
}

/// Settings plus every secret in them.
#[derive(Debug, Clone)]
struct GenSettings {
    settings: ProxySettings,
    secrets: Vec<String>,
}

fn gen_settings() -> impl Strategy<Value = GenSettings> {
    (
        any::<bool>(),
        gen_proxies(),
        proptest::collection::vec((gen_id(), gen_proxies()), 0..6),
    )
        .prop_map(|(enabled, default, exchanges)| {
            let mut secrets = Vec::new();
            let mut take = |(http, websocket): (Option<GenProxy>, Option<GenProxy>)| {
                let mut proxies = ConnectionProxies::default();
                if let Some(p) = http {
                    secrets.extend(p.secrets);
                    proxies.http = Some(p.config);
                }
                if let Some(p) = websocket {
                    secrets.extend(p.secrets);
                    proxies.websocket = Some(p.config);
                }
                proxies
            };
            let default = take(default);
            let mut map = BTreeMap::new();
            for (id, proxies) in exchanges {
                map.insert(
                    ExchangeId::new(&id).expect("generated id is valid"),
                    take(proxies),
                );
            }
            GenSettings {
                settings: ProxySettings {
                    enabled,
                    default,
                    exchanges: map,
                },
                secrets,
            }
        })
}

/// One lookup: a configured id with its letters' case flipped by `case_mask`, or `other`.
#[derive(Debug, Clone)]
struct Lookup {
    configured: Option<(Index, u64)>,
    other: String,
    transport: Transport,
    with_legacy: bool,
}

fn gen_lookup() -> impl Strategy<Value = Lookup> {
    let other = prop_oneof![
        gen_id(),
        gen_id().prop_map(|id| id.to_ascii_uppercase()),
        "\\PC{0,80}"
    ];
    (
        proptest::option::of((any::<Index>(), any::<u64>())),
        other,
        select(Transport::ALL.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(configured, other, transport, with_legacy)| Lookup {
            configured,
            other,
            transport,
            with_legacy,
        })
}

impl Lookup {
    fn exchange(&self, settings: &ProxySettings) -> String {
        match self.configured {
            Some((index, case_mask)) if !settings.exchanges.is_empty() => {
                let ids: Vec<&ExchangeId> = settings.exchanges.keys().collect();
                let id = ids[index.index(ids.len())].as_str();
                id.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if case_mask >> (i % 64) & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect()
            }
            _ => self.other.clone(),
        }
    }
}

/// The resolution order, read straight off the settings.
fn reference<'a>(
    settings: &'a ProxySettings,
    exchange: &str,
    transport: Transport,
    legacy: Option<&'a ProxyConfig>,
) -> (Option<&'a ProxyConfig>, RouteReason) {
    let pick = |proxies: &'a ConnectionProxies| match transport {
        Transport::Http => proxies.http.as_ref(),
        Transport::WebSocket => proxies.websocket.as_ref(),
    };
    if !settings.enabled {
        return match legacy {
            Some(l) => (Some(l), RouteReason::Legacy),
            None => (None, RouteReason::Disabled),
        };
    }
    if let Some(p) = settings.exchange(exchange).and_then(pick) {
        return (Some(p), RouteReason::ExchangeOverride);
    }
    if let Some(p) = pick(&settings.default) {
        return (Some(p), RouteReason::Default);
    }
    match legacy {
        Some(l) => (Some(l), RouteReason::Legacy),
        None => (None, RouteReason::NoProxyConfigured),
    }
}

fn assert_no_secret(text: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        prop_assert!(
            !text.contains(secret.as_str()),
            "a credential leaked into: {}",
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resolution_follows_the_order(
        generated in gen_settings(),
        legacy in gen_proxy(),
        lookups in proptest::collection::vec(gen_lookup(), 1..16),
    ) {
        let settings = &generated.settings;
        let resolver = Resolver::new(settings.clone());
        let legacy_arc = Arc::new(legacy.config.clone());
        for lookup in &lookups {
            let exchange = lookup.exchange(settings);
            let legacy_ref = lookup.with_legacy.then_some(&legacy.config);
            let (expected, reason) = reference(settings, &exchange, lookup.transport, legacy_ref);

            let legacy_arg = lookup.with_legacy.then_some(&legacy_arc);
            let got = resolver.resolve_with_legacy(&exchange, lookup.transport, legacy_arg);
            let transport = lookup.transport;
            prop_assert_eq!(
                got.route.proxy().map(|p| &**p), expected, "{} {}", exchange, transport
            );
            prop_assert_eq!(got.reason, reason, "{} {}", exchange, transport);
            let route = resolver.route_with_legacy(&exchange, transport, legacy_arg);
            prop_assert_eq!(route, got.route);
        }
    }

    #[test]
    fn no_credential_in_debug_or_display(
        generated in gen_settings(),
        legacy in gen_proxy(),
        lookups in proptest::collection::vec(gen_lookup(), 1..8),
    ) {
        let mut secrets = generated.secrets.clone();
        secrets.extend(legacy.secrets.iter().cloned());
        let resolver = Resolver::new(generated.settings.clone());
        assert_no_secret(&format!("{resolver:?}"), &secrets)?;

        let legacy = Arc::new(legacy.config);
        for lookup in &lookups {
            let exchange = lookup.exchange(&generated.settings);
            let legacy_arg = lookup.with_legacy.then_some(&legacy);
            let resolution: Resolution =
                resolver.resolve_with_legacy(&exchange, lookup.transport, legacy_arg);
            let route = &resolution.route;
            for text in [
                format!("{resolution}"),
                format!("{resolution:?}"),
                format!("{resolution:#?}"),
                format!("{route}"),
                format!("{route:?}"),
            ] {
                assert_no_secret(&text, &secrets)?;
            }
        }
    }
}
