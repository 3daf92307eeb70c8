//! Properties of the WebSocket upgrade answer check, the contract the `ws_upgrade` fuzz target
//! also checks: a valid 101 answer for the key passes (whatever the header case, order, extra
//! headers and line ends), and so does nothing else: a wrong status, a missing `Upgrade`, a
//! `Connection` without the `upgrade` token, a missing or wrong Sec-WebSocket-Accept and a
//! subprotocol not offered are each their own error; a truncated answer waits for more; no
//! input panics.
//!
//! The accept value is computed here from RFC 6455 (SHA-1 and base64), apart from the crate's.

use base64::Engine;
use proptest::prelude::*;
use proptest::sample::select;
use proxy_ws::{HandshakeError, MAX_RESPONSE_HEAD, check_upgrade_response};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

fn accept_for(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A header name or token in random letter case.
fn any_case(text: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), text.len()).prop_map(move |upper| {
        text.chars()
            .zip(upper)
            .map(|(c, up)| {
                if up {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// Optional blanks around a header value (httparse keeps inner ones, the check trims).
fn padded(value: String, before: bool, after: bool) -> String {
    format!(
        "{}{value}{}",
        if before { " " } else { "" },
        if after { "\t" } else { "" }
    )
}

/// One way an answer can be wrong.
#[derive(Debug, Clone)]
enum Fault {
    None,
    Status(u16),
    NoUpgradeHeader,
    UpgradeNotWebSocket,
    NoConnectionHeader,
    ConnectionWithoutUpgrade,
    NoAccept,
    AcceptOfAnotherKey,
    AcceptAltered(usize),
    NoSubprotocolChosen,
    SubprotocolNotOffered,
    SubprotocolUnasked,
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        4 => Just(Fault::None),
        1 => (100u16..600).prop_filter("not 101", |s| *s != 101).prop_map(Fault::Status),
        1 => Just(Fault::NoUpgradeHeader),
        1 => Just(Fault::UpgradeNotWebSocket),
        1 => Just(Fault::NoConnectionHeader),
        1 => Just(Fault::ConnectionWithoutUpgrade),
        1 => Just(Fault::NoAccept),
        1 => Just(Fault::AcceptOfAnotherKey),
        1 => (0usize..28).prop_map(Fault::AcceptAltered),
        1 => Just(Fault::NoSubprotocolChosen),
        1 => Just(Fault::SubprotocolNotOffered),
        1 => Just(Fault::SubprotocolUnasked),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    key: String,
    other_key: String,
    offered: Vec<String>,
    fault: Fault,
    answer: Vec<u8>,
    /// The error the fault must give; `None` for a valid answer.
    expected: Option<HandshakeError>,
    /// The subprotocol a valid answer selects.
    selects: Option<String>,
}

#[allow(clippy::too_many_arguments)] // one generated value per argument
fn build(
    key: [u8; 16],
    other_key: [u8; 16],
    offered: Vec<String>,
    chosen: usize,
    fault: Fault,
    names: (String, String, String, String),
    tokens: (String, String, Vec<String>),
    extras: Vec<(String, String)>,
    order: Vec<usize>,
    lf_only: bool,
    pads: (bool, bool),
) -> Case {
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.encode(key);
    let other_key = engine.encode(other_key);
    let (upgrade_name, connection_name, accept_name, protocol_name) = names;
    let (websocket, upgrade_token, other_tokens) = tokens;

    let status = match fault {
        Fault::Status(status) => status,
        _ => 101,
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    match fault {
        Fault::NoUpgradeHeader => {}
        Fault::UpgradeNotWebSocket => headers.push((upgrade_name, "h2c".to_owned())),
        _ => headers.push((upgrade_name, padded(websocket, pads.0, pads.1))),
    }
    let mut connection = other_tokens.clone();
    match fault {
        Fault::NoConnectionHeader => connection.clear(),
        Fault::ConnectionWithoutUpgrade => connection.push("keep-alive".to_owned()),
        _ => connection.insert(chosen % (connection.len() + 1), upgrade_token),
    }
    if !connection.is_empty() {
        headers.push((
            connection_name,
            padded(connection.join(", "), pads.1, pads.0),
        ));
    }
    let accept = match fault {
        Fault::NoAccept => None,
        Fault::AcceptOfAnotherKey => Some(accept_for(&other_key)),
        Fault::AcceptAltered(at) => {
            let mut bytes = accept_for(&key).into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            Some(String::from_utf8(bytes).expect("ASCII"))
        }
        _ => Some(accept_for(&key)),
    };
    if let Some(accept) = accept {
        headers.push((accept_name, padded(accept, pads.0, pads.1)));
    }
    let mut offered = offered;
    let selects = match fault {
        Fault::NoSubprotocolChosen | Fault::SubprotocolNotOffered if offered.is_empty() => {
            offered.push("json".to_owned());
            None
        }
        Fault::SubprotocolUnasked => {
            offered.clear();
            Some("json".to_owned())
        }
        Fault::NoSubprotocolChosen => None,
        Fault::SubprotocolNotOffered => Some("not-offered".to_owned()),
        _ if offered.is_empty() => None,
        _ => Some(offered[chosen % offered.len()].clone()),
    };
    if let Some(protocol) = &selects {
        headers.push((protocol_name, protocol.clone()));
    }
    headers.extend(extras);
    // Shuffle by the generated order.
    let mut keyed: Vec<(usize, (String, String))> = headers
        .into_iter()
        .enumerate()
        .map(|(i, h)| (order.get(i).copied().unwrap_or(i), h))
        .collect();
    keyed.sort_by_key(|(k, _)| *k);

    let end = if lf_only { "\n" } else { "\r\n" };
    let mut answer = format!("HTTP/1.1 {status} Switching Protocols{end}");
    for (_, (name, value)) in keyed {
        answer.push_str(&format!("{name}:{value}{end}"));
    }
    answer.push_str(end);

    let expected = match fault {
        Fault::None => None,
        Fault::Status(status) => Some(HandshakeError::UnexpectedStatus {
            status,
            reason: "Switching Protocols".to_owned(),
        }),
        Fault::NoUpgradeHeader | Fault::UpgradeNotWebSocket => Some(HandshakeError::MissingUpgrade),
        Fault::NoConnectionHeader | Fault::ConnectionWithoutUpgrade => {
            Some(HandshakeError::MissingConnectionUpgrade)
        }
        Fault::NoAccept => Some(HandshakeError::MissingAccept),
        Fault::AcceptOfAnotherKey | Fault::AcceptAltered(_) => Some(HandshakeError::BadAccept),
        Fault::NoSubprotocolChosen | Fault::SubprotocolNotOffered | Fault::SubprotocolUnasked => {
            Some(HandshakeError::SubprotocolMismatch)
        }
    };
    Case {
        key,
        other_key,
        offered,
        fault,
        answer: answer.into_bytes(),
        expected,
        selects,
    }
}

fn case() -> impl Strategy<Value = Case> {
    let names = (
        any_case("upgrade"),
        any_case("connection"),
        any_case("sec-websocket-accept"),
        any_case("sec-websocket-protocol"),
    );
    let tokens = (
        any_case("websocket"),
        any_case("upgrade"),
        prop::collection::vec(select(vec!["keep-alive", "close", "x-token"]), 0..3)
            .prop_map(|t| t.into_iter().map(str::to_owned).collect::<Vec<_>>()),
    );
    let extras = prop::collection::vec(("X-[a-z]{1,8}", "[ -~]{0,20}"), 0..4).prop_map(|headers| {
        headers
            .into_iter()
            .map(|(name, value)| (name, value.trim().to_owned()))
            .collect::<Vec<_>>()
    });
    (
        (any::<[u8; 16]>(), any::<[u8; 16]>()),
        prop::collection::vec("[a-z][a-z0-9.]{0,7}", 0..3),
        any::<usize>(),
        fault(),
        names,
        tokens,
        extras,
        prop::collection::vec(any::<usize>(), 12),
        any::<bool>(),
        (any::<bool>(), any::<bool>()),
    )
        .prop_filter("distinct keys", |((a, b), ..)| a != b)
        .prop_map(
            |((key, other), offered, chosen, fault, names, tokens, extras, order, lf, pads)| {
                build(
                    key, other, offered, chosen, fault, names, tokens, extras, order, lf, pads,
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn only_the_valid_answer_passes(
        case in case(),
        frames in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let result = check_upgrade_response(&case.answer, &case.key, &case.offered);
        match &case.expected {
            None => {
                prop_assert_eq!(
                    &result,
                    &Ok(Some((case.selects.clone(), case.answer.len()))),
                    "{}", String::from_utf8_lossy(&case.answer)
                );
                // Frames after the head are not part of it.
                let mut with_frames = case.answer.clone();
                with_frames.extend_from_slice(&frames);
                prop_assert_eq!(
                    check_upgrade_response(&with_frames, &case.key, &case.offered),
                    result
                );
                // The same answer for another key is refused.
                prop_assert_eq!(
                    check_upgrade_response(&case.answer, &case.other_key, &case.offered),
                    Err(HandshakeError::BadAccept)
                );
            }
            Some(expected) => prop_assert_eq!(
                &result,
                &Err(expected.clone()),
                "{:?}: {}", case.fault, String::from_utf8_lossy(&case.answer)
            ),
        }
    }

    #[test]
    fn a_truncated_answer_waits_for_more(case in case(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(case.answer.len());
        prop_assert_eq!(
            check_upgrade_response(&case.answer[..cut], &case.key, &case.offered),
            Ok(None)
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        offered in prop::collection::vec("[a-z]{1,4}", 0..3),
    ) {
        match check_upgrade_response(&bytes, "dGhlIHNhbXBsZSBub25jZQ==", &offered) {
            Ok(None) => prop_assert!(bytes.len() < MAX_RESPONSE_HEAD),
            Ok(Some((_, head_len))) => prop_assert!(head_len <= bytes.len()),
            Err(HandshakeError::UnexpectedStatus { status, reason }) => {
                prop_assert_ne!(status, 101);
                prop_assert!(reason.chars().all(|c| c.is_ascii_graphic() || c == ' '));
            }
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_status_line_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut answer = b"HTTP/1.1 101 Switching Protocols\r\n".to_vec();
        answer.extend_from_slice(&bytes);
        let _ = check_upgrade_response(&answer, "dGhlIHNhbXBsZSBub25jZQ==", &[]);
    }
}
