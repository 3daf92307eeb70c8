//! The WebSocket upgrade answer check (proxy-ws's `check_upgrade_response`, the function
//! `connect` applies to the bytes the server sends back).

use proxy_ws::{HandshakeError, MAX_RESPONSE_HEAD, check_upgrade_response};

/// The RFC 6455 sample key and its accept value.
pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `base64(sha1(KEY + GUID))`, from RFC 6455 section 1.3.
pub(crate) const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
/// Another key, whose accept value differs.
const OTHER_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEA==";
/// Subprotocols the first input byte may offer (bit i offers the i-th).
const PROTOCOLS: [&str; 3] = ["json", "chat", "v1.feed"];

/// Fuzz target `ws_upgrade`: the first byte chooses the subprotocols offered, the rest is the
/// server's answer to an upgrade sent with the RFC 6455 sample key.
pub fn ws_upgrade(data: &[u8]) {
    let (offer, answer) = data.split_first().map_or((0, data), |(&b, rest)| (b, rest));
    let offered: Vec<String> = PROTOCOLS
        .iter()
        .enumerate()
        .filter(|(bit, _)| offer & (1 << bit) != 0)
        .map(|(_, protocol)| (*protocol).to_owned())
        .collect();
    let result = check_upgrade_response(answer, KEY, &offered);
    match &result {
        Ok(None) => assert!(
            answer.len() < MAX_RESPONSE_HEAD,
            "waits for more after {} bytes",
            answer.len()
        ),
        Ok(Some((chosen, head_len))) => {
            assert!(*head_len <= answer.len(), "head longer than the input");
            let head = &answer[..*head_len];
            assert!(head.ends_with(b"\n"), "head does not end with a line end");
            assert!(
                head.windows(ACCEPT.len()).any(|w| w == ACCEPT.as_bytes()),
                "accepted without the right Sec-WebSocket-Accept"
            );
            match chosen {
                None => assert!(offered.is_empty(), "subprotocol offered, none chosen"),
                Some(protocol) => assert!(offered.contains(protocol), "{protocol} not offered"),
            }
            // Frames after the head change nothing; a truncated head is not complete yet.
            assert_eq!(check_upgrade_response(head, KEY, &offered), result);
            if *head_len > 0 && head_len - 1 < MAX_RESPONSE_HEAD {
                assert_eq!(
                    check_upgrade_response(&head[..head_len - 1], KEY, &offered),
                    Ok(None),
                    "a truncated head is not incomplete"
                );
            }
            // The same answer for another key is refused.
            assert_eq!(
                check_upgrade_response(answer, OTHER_KEY, &offered),
                Err(HandshakeError::BadAccept)
            );
        }
        Err(HandshakeError::UnexpectedStatus { status, reason }) => {
            assert_ne!(*status, 101);
            assert!(
                reason.chars().count() <= 64,
                "reason not capped: {reason:?}"
            );
            assert!(
                reason.chars().all(|c| c.is_ascii_graphic() || c == ' '),
                "reason not sanitized: {reason:?}"
            );
        }
        Err(_) => {}
    }
    if let Err(error) = &result {
        let text = error.to_string();
        assert!(
            !text.contains(['\r', '\n']) && text.len() < 200,
            "message unfit for a log line: {text:?}"
        );
    }
}
