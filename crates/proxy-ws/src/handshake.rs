//! The HTTP/1.1 upgrade, written and checked here (fastwebsockets' own client handshake does not
//! verify Sec-WebSocket-Accept): pure functions over bytes, tested without sockets.

use base64::Engine;

/// RFC 6455 section 1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The longest upgrade response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
const REASON_LIMIT: usize = 64;

/// What the upgrade asks for.
#[derive(Debug, Clone)]
pub(crate) struct UpgradeRequest<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) default_port: u16,
    pub(crate) path_and_query: &'a str,
    pub(crate) key: &'a str,
    pub(crate) subprotocols: &'a [String],
    pub(crate) headers: &'a [(String, String)],
}

impl UpgradeRequest<'_> {
    /// The request bytes, written in one go.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_owned()
        };
        let host = if self.port == self.default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        };
        let mut out = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            self.path_and_query, self.key
        );
        if !self.subprotocols.is_empty() {
            out.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.subprotocols.join(", ")
            ));
        }
        for (name, value) in self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// The expected Sec-WebSocket-Accept for a key.
pub(crate) fn accept_for(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A fresh random Sec-WebSocket-Key.
pub(crate) fn new_key() -> Result<String, HandshakeError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| HandshakeError::NoRandomness)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Why an upgrade answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Any status but 101, with its (sanitized, capped) reason phrase.
    #[error("server answered {status} {reason} instead of 101 Switching Protocols")]
    UnexpectedStatus {
        /// The status.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// No `Upgrade: websocket`.
    #[error("server answer lacks `Upgrade: websocket`")]
    MissingUpgrade,
    /// No `upgrade` token in `Connection`.
    #[error("server answer lacks the `upgrade` token in `Connection`")]
    MissingConnectionUpgrade,
    /// No Sec-WebSocket-Accept.
    #[error("server answer lacks Sec-WebSocket-Accept")]
    MissingAccept,
    /// A Sec-WebSocket-Accept that does not match the key.
    #[error("server answered a wrong Sec-WebSocket-Accept")]
    BadAccept,
    /// A subprotocol was asked and the server chose none, or one not offered.
    #[error("server did not select an offered subprotocol")]
    SubprotocolMismatch,
    /// The answer head is larger than 16 KiB or has too many headers.
    #[error("server answer headers are oversized")]
    OversizedResponse,
    /// The server closed the connection before its answer was complete.
    #[error("server closed the connection during the handshake")]
    ClosedDuringHandshake,
    /// The answer is not HTTP.
    #[error("server answer is not HTTP")]
    NotHttp,
    /// The system's random source failed (no key could be made).
    #[error("no randomness for the WebSocket key")]
    NoRandomness,
}

/// A complete, accepted upgrade: the subprotocol chosen, and how many bytes of `buf` the answer
/// head took (bytes after it are the first frames).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) subprotocol: Option<String>,
    pub(crate) head_len: usize,
}

/// Checks an upgrade answer. `Ok(None)`: the head is not complete yet, read more.
pub(crate) fn check_response(
    buf: &[u8],
    key: &str,
    subprotocols: &[String],
) -> Result<Option<Accepted>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD => {
            return Err(HandshakeError::OversizedResponse);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::OversizedResponse),
        Err(_) => return Err(HandshakeError::NotHttp),
    };
    let status = response.code.unwrap_or(0);
    if status != 101 {
        let reason = response
            .reason
            .unwrap_or("")
            .chars()
            .filter(|c| c.is_ascii_graphic() || *c == ' ')
            .take(REASON_LIMIT)
            .collect();
        return Err(HandshakeError::UnexpectedStatus { status, reason });
    }
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError::MissingUpgrade);
    }
    let connection_has_upgrade = response
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection"))
        .filter_map(|h| std::str::from_utf8(h.value).ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_has_upgrade {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    match header("sec-websocket-accept") {
        None => return Err(HandshakeError::MissingAccept),
        Some(accept) if accept != accept_for(key) => return Err(HandshakeError::BadAccept),
        Some(_) => {}
    }
    let chosen = header("sec-websocket-protocol").map(str::to_owned);
    match (&chosen, subprotocols.is_empty()) {
        (None, true) => {}
        (Some(p), false) if subprotocols.iter().any(|s| s == p) => {}
        _ => return Err(HandshakeError::SubprotocolMismatch),
    }
    Ok(Some(Accepted {
        subprotocol: chosen,
        head_len,
    }))
}

/// Checks an upgrade answer exactly as `connect` does, for `key` and the offered
/// `subprotocols`: `Ok(None)` when the head is incomplete, `Ok(Some((subprotocol, head_len)))`
/// when accepted.
///
/// Exists for fuzzing (the feed-fuzz crate) and property tests, which need the check without a
/// socket; it is not part of the supported API.
#[doc(hidden)]
pub fn check_upgrade_response(
    buf: &[u8],
    key: &str,
    subprotocols: &[String],
) -> Result<Option<(Option<String>, usize)>, HandshakeError> {
    check_response(buf, key, subprotocols)
        .map(|accepted| accepted.map(|accepted| (accepted.subprotocol, accepted.head_len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    #[test]
    fn rfc_6455_sample_accept() {
        assert_eq!(accept_for(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let key = new_key().expect("random");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&key)
                .expect("base64")
                .len(),
            16
        );
    }

    #[test]
    fn request_bytes() {
        let headers = vec![("X-Api".to_owned(), "1".to_owned())];
        let protocols = vec!["json".to_owned()];
        let req = UpgradeRequest {
            host: "stream.binance.com",
            port: 9443,
            default_port: 443,
            path_and_query: "/stream?streams=a",
            key: KEY,
            subprotocols: &protocols,
            headers: &headers,
        };
        assert_eq!(
            String::from_utf8(req.to_bytes()).expect("utf8"),
            "GET /stream?streams=a HTTP/1.1\r\nHost: stream.binance.com:9443\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: json\r\nX-Api: 1\r\n\r\n"
        );
        let req = UpgradeRequest {
            host: "::1",
            port: 443,
            default_port: 443,
            path_and_query: "/",
            key: KEY,
            subprotocols: &[],
            headers: &[],
        };
        assert!(
            String::from_utf8(req.to_bytes())
                .expect("utf8")
                .contains("\r\nHost: [::1]\r\n")
        );
    }

    fn answer(lines: &[&str]) -> Vec<u8> {
        format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
    }

    #[test]
    fn responses() {
        let ok = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        let json = vec!["json".to_owned()];
        // (answer, subprotocols offered, expected: Ok(None) = incomplete, Ok(Some(chosen)) = accepted)
        type Case<'a> = (
            Vec<u8>,
            &'a [String],
            Result<Option<Option<&'a str>>, HandshakeError>,
        );
        let cases: Vec<Case> = vec![
            (
                answer(&[
                    "HTTP/1.1 101 Switching Protocols",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ok,
                ]),
                &[],
                Ok(Some(None)),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "upgrade: WebSocket",
                    "connection: keep-alive, Upgrade",
                    ok,
                ]),
                &[],
                Ok(Some(None)),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ok,
                    "Sec-WebSocket-Protocol: json",
                ]),
                &json,
                Ok(Some(Some("json"))),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ok,
                ]),
                &json,
                Err(HandshakeError::SubprotocolMismatch),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ok,
                    "Sec-WebSocket-Protocol: xml",
                ]),
                &json,
                Err(HandshakeError::SubprotocolMismatch),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    ok,
                    "Sec-WebSocket-Protocol: json",
                ]),
                &[],
                Err(HandshakeError::SubprotocolMismatch),
            ),
            (
                answer(&["HTTP/1.1 200 OK", "Content-Length: 0"]),
                &[],
                Err(HandshakeError::UnexpectedStatus {
                    status: 200,
                    reason: "OK".into(),
                }),
            ),
            (
                answer(&["HTTP/1.1 403 Forbidden"]),
                &[],
                Err(HandshakeError::UnexpectedStatus {
                    status: 403,
                    reason: "Forbidden".into(),
                }),
            ),
            (
                answer(&["HTTP/1.1 101 x", "Connection: Upgrade", ok]),
                &[],
                Err(HandshakeError::MissingUpgrade),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: keep-alive",
                    ok,
                ]),
                &[],
                Err(HandshakeError::MissingConnectionUpgrade),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                ]),
                &[],
                Err(HandshakeError::MissingAccept),
            ),
            (
                answer(&[
                    "HTTP/1.1 101 x",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    "Sec-WebSocket-Accept: AAAA",
                ]),
                &[],
                Err(HandshakeError::BadAccept),
            ),
            (b"HTTP/1.1 101 Switching".to_vec(), &[], Ok(None)),
            (
                b"\x16\x03\x01garbage\r\n\r\n".to_vec(),
                &[],
                Err(HandshakeError::NotHttp),
            ),
        ];
        for (bytes, protocols, expected) in cases {
            let got = check_response(&bytes, KEY, protocols).map(|a| a.map(|a| a.subprotocol));
            let expected = expected.map(|o| o.map(|p| p.map(str::to_owned)));
            assert_eq!(got, expected, "{}", String::from_utf8_lossy(&bytes));
        }
        let mut big = b"HTTP/1.1 101 x\r\n".to_vec();
        while big.len() < MAX_RESPONSE_HEAD {
            big.extend_from_slice(
                b"X: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n",
            );
        }
        assert_eq!(
            check_response(&big, KEY, &[]),
            Err(HandshakeError::OversizedResponse)
        );
        // Bytes after the head are frames, not part of the answer.
        let mut with_frame = answer(&[
            "HTTP/1.1 101 x",
            "Upgrade: websocket",
            "Connection: Upgrade",
            ok,
        ]);
        let head = with_frame.len();
        with_frame.extend_from_slice(b"\x81\x02hi");
        assert_eq!(
            check_response(&with_frame, KEY, &[])
                .expect("ok")
                .expect("complete")
                .head_len,
            head
        );
    }
}
