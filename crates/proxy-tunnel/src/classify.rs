//! Why a proxy handshake failed, read from the bytes the proxy sent back.
//!
//! hyper-util's connectors drive the handshakes; their errors say little (a failed CONNECT is
//! "unsuccessful", without the status). The connector records what the proxy answered, and these
//! pure functions turn that answer into a precise verdict: auth required or rejected, target
//! refused with the proxy's status or reply code, or a protocol violation.

use crate::error::{ProtocolViolation, TargetRefusal};

/// The verdict on a failed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The proxy wants credentials and none were sent.
    AuthRequired,
    /// The proxy refused the credentials that were sent.
    AuthRejected,
    /// The proxy would not connect to the target.
    TargetRefused(TargetRefusal),
    /// The proxy broke the protocol.
    Protocol(ProtocolViolation),
    /// The answer looks like success: the failure was elsewhere (hyper-util's own message).
    Unexplained,
}

/// hyper-util's CONNECT reader gives up after this many bytes of response head.
pub(crate) const CONNECT_HEAD_LIMIT: usize = 8192;
const MAX_HEADERS: usize = 100;
const REASON_LIMIT: usize = 64;

/// A failed HTTP CONNECT: `answer` is everything the proxy sent.
pub(crate) fn connect_failure(answer: &[u8], sent_credentials: bool) -> Verdict {
    if answer.is_empty() {
        return Verdict::Protocol(ProtocolViolation::ClosedBeforeAnswer);
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(answer) {
        Ok(httparse::Status::Complete(_)) => {
            let status = response.code.unwrap_or(0);
            match status {
                200..=299 => Verdict::Unexplained,
                401 | 407 if sent_credentials => Verdict::AuthRejected,
                401 | 407 => Verdict::AuthRequired,
                // A proxy that was sent credentials may echo them (its own header, in the
                // reason): then only the standard phrase of the status is shown.
                _ if sent_credentials => Verdict::TargetRefused(TargetRefusal::HttpStatus {
                    status,
                    reason: http::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|code| code.canonical_reason())
                        .unwrap_or("")
                        .to_owned(),
                }),
                _ => Verdict::TargetRefused(TargetRefusal::HttpStatus {
                    status,
                    reason: sanitize_reason(response.reason.unwrap_or("")),
                }),
            }
        }
        Ok(httparse::Status::Partial) if answer.len() >= CONNECT_HEAD_LIMIT => {
            Verdict::Protocol(ProtocolViolation::OversizedHeaders)
        }
        Ok(httparse::Status::Partial) => Verdict::Protocol(ProtocolViolation::Truncated),
        Err(httparse::Error::TooManyHeaders) => {
            Verdict::Protocol(ProtocolViolation::OversizedHeaders)
        }
        Err(_) => Verdict::Protocol(ProtocolViolation::NotHttp),
    }
}

/// Printable ASCII only, capped: the reason phrase comes from the proxy and goes into logs.
fn sanitize_reason(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(REASON_LIMIT)
        .collect()
}

#[cfg(feature = "socks")]
/// A failed SOCKS5 handshake: `answer` is everything the proxy sent (method choice, then the
/// auth status when credentials were offered, then the connect reply).
pub(crate) fn socks5_failure(answer: &[u8], sent_credentials: bool) -> Verdict {
    let mut rest = answer;
    // Method selection: VER, METHOD.
    let Some((method_reply, after)) = split(rest, 2) else {
        return truncated_or_closed(answer);
    };
    if method_reply[0] != 0x05 {
        return Verdict::Protocol(ProtocolViolation::NotSocks);
    }
    match (method_reply[1], sent_credentials) {
        (0xFF, false) => return Verdict::AuthRequired,
        (0xFF, true) => return Verdict::AuthRejected,
        (0x02, false) => return Verdict::AuthRequired,
        // With credentials only user/password (0x02) is offered: "no auth" was not.
        (0x00, false) | (0x02, true) => {}
        _ => return Verdict::Protocol(ProtocolViolation::UnexpectedSocksMethod),
    }
    rest = after;
    if method_reply[1] == 0x02 {
        // RFC 1929 status: VER (0x01), STATUS.
        let Some((auth, after)) = split(rest, 2) else {
            return Verdict::Protocol(ProtocolViolation::Truncated);
        };
        if auth[1] != 0x00 {
            return Verdict::AuthRejected;
        }
        rest = after;
    }
    // Connect reply: VER, REP, RSV, ATYP, BND.ADDR, BND.PORT.
    let Some((reply, _)) = split(rest, 2) else {
        return Verdict::Protocol(ProtocolViolation::Truncated);
    };
    if reply[0] != 0x05 {
        return Verdict::Protocol(ProtocolViolation::NotSocks);
    }
    if reply[1] != 0x00 {
        return Verdict::TargetRefused(TargetRefusal::Socks5(reply[1]));
    }
    let complete = match rest.get(3) {
        Some(0x01) => rest.len() >= 4 + 4 + 2,
        Some(0x04) => rest.len() >= 4 + 16 + 2,
        Some(0x03) => rest
            .get(4)
            .is_some_and(|&n| rest.len() >= 5 + usize::from(n) + 2),
        Some(_) => return Verdict::Protocol(ProtocolViolation::NotSocks),
        None => false,
    };
    if complete {
        Verdict::Unexplained
    } else {
        Verdict::Protocol(ProtocolViolation::Truncated)
    }
}

#[cfg(feature = "socks")]
/// A failed SOCKS4/4a handshake: the reply is VN (0x00), CD, DSTPORT, DSTIP.
pub(crate) fn socks4_failure(answer: &[u8]) -> Verdict {
    let Some((reply, _)) = split(answer, 2) else {
        return truncated_or_closed(answer);
    };
    if reply[0] != 0x00 {
        return Verdict::Protocol(ProtocolViolation::NotSocks);
    }
    match reply[1] {
        0x5A if answer.len() < 8 => Verdict::Protocol(ProtocolViolation::Truncated),
        0x5A => Verdict::Unexplained,
        code @ 0x5B..=0x5D => Verdict::TargetRefused(TargetRefusal::Socks4(code)),
        _ => Verdict::Protocol(ProtocolViolation::NotSocks),
    }
}

#[cfg(feature = "socks")]
fn truncated_or_closed(answer: &[u8]) -> Verdict {
    if answer.is_empty() {
        Verdict::Protocol(ProtocolViolation::ClosedBeforeAnswer)
    } else {
        Verdict::Protocol(ProtocolViolation::Truncated)
    }
}

#[cfg(feature = "socks")]
fn split(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_answers() {
        let cases: &[(&[u8], bool, Verdict)] = &[
            (
                b"",
                false,
                Verdict::Protocol(ProtocolViolation::ClosedBeforeAnswer),
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                false,
                Verdict::AuthRequired,
            ),
            (
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                true,
                Verdict::AuthRejected,
            ),
            (
                b"HTTP/1.0 401 Unauthorized\r\n\r\n",
                true,
                Verdict::AuthRejected,
            ),
            (
                b"HTTP/1.1 403 Forbidden\r\nX: y\r\n\r\n",
                true,
                Verdict::TargetRefused(TargetRefusal::HttpStatus {
                    status: 403,
                    reason: "Forbidden".into(),
                }),
            ),
            (
                b"HTTP/1.1 502 Bad\x01Gateway\r\n\r\n",
                false,
                Verdict::Protocol(ProtocolViolation::NotHttp),
            ),
            (b"HTTP/1.1 200 OK\r\n\r\n", false, Verdict::Unexplained),
            (
                b"HTTP/1.1 200 Conn",
                false,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (
                b"\x05\x00garbage",
                false,
                Verdict::Protocol(ProtocolViolation::NotHttp),
            ),
            (
                b"SSH-2.0-OpenSSH\r\n",
                false,
                Verdict::Protocol(ProtocolViolation::NotHttp),
            ),
        ];
        for (answer, creds, expected) in cases {
            assert_eq!(
                &connect_failure(answer, *creds),
                expected,
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        while huge.len() < CONNECT_HEAD_LIMIT {
            huge.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(
            connect_failure(&huge, false),
            Verdict::Protocol(ProtocolViolation::OversizedHeaders)
        ));
        let long_reason = format!("HTTP/1.1 502 {}\r\n\r\n", "x".repeat(500));
        match connect_failure(long_reason.as_bytes(), false) {
            Verdict::TargetRefused(TargetRefusal::HttpStatus {
                status: 502,
                reason,
            }) => assert_eq!(reason.len(), 64),
            other => panic!("{other:?}"),
        }
        // With credentials sent, the proxy's own phrase (which may echo them) is replaced.
        let echo = b"HTTP/1.1 502 Basic dXNlcjpwYXNz\r\n\r\n";
        assert_eq!(
            connect_failure(echo, true),
            Verdict::TargetRefused(TargetRefusal::HttpStatus {
                status: 502,
                reason: "Bad Gateway".to_owned(),
            })
        );
        let odd = b"HTTP/1.1 599 user:pass\r\n\r\n";
        assert_eq!(
            connect_failure(odd, true),
            Verdict::TargetRefused(TargetRefusal::HttpStatus {
                status: 599,
                reason: String::new(),
            })
        );
    }

    #[cfg(feature = "socks")]
    #[test]
    fn socks5_answers() {
        let cases: &[(&[u8], bool, Verdict)] = &[
            (
                b"",
                false,
                Verdict::Protocol(ProtocolViolation::ClosedBeforeAnswer),
            ),
            (
                b"\x05",
                false,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (b"\x05\xff", false, Verdict::AuthRequired),
            (b"\x05\xff", true, Verdict::AuthRejected),
            (b"\x05\x02", false, Verdict::AuthRequired),
            (b"\x05\x02\x01\x01", true, Verdict::AuthRejected),
            (
                b"\x05\x02\x01",
                true,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (
                b"\x05\x00\x05\x05\x00\x01\0\0\0\0\0\0",
                false,
                Verdict::TargetRefused(TargetRefusal::Socks5(5)),
            ),
            (
                b"\x05\x02\x01\x00\x05\x02\x00\x01\0\0\0\0\0\0",
                true,
                Verdict::TargetRefused(TargetRefusal::Socks5(2)),
            ),
            (
                b"\x05\x00\x05",
                false,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (
                b"\x05\x00\x05\x00\x00\x01",
                false,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (
                b"\x05\x00\x05\x00\x00\x01\x7f\0\0\x01\x01\xbb",
                false,
                Verdict::Unexplained,
            ),
            (
                b"\x05\x00\x05\x00\x00\x03\x09localhost\x01",
                false,
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (
                b"\x05\x00\x05\x00\x00\x09",
                false,
                Verdict::Protocol(ProtocolViolation::NotSocks),
            ),
            (
                b"HTTP/1.1 400 Bad Request\r\n",
                false,
                Verdict::Protocol(ProtocolViolation::NotSocks),
            ),
            (
                b"\x05\x07",
                false,
                Verdict::Protocol(ProtocolViolation::UnexpectedSocksMethod),
            ),
            // Credentials offer user/password only: "no auth" is a method not offered.
            (
                b"\x05\x00",
                true,
                Verdict::Protocol(ProtocolViolation::UnexpectedSocksMethod),
            ),
            (
                b"\x05\x00\x05\x00\x00\x01\x7f\0\0\x01\x01\xbb",
                true,
                Verdict::Protocol(ProtocolViolation::UnexpectedSocksMethod),
            ),
        ];
        for (answer, creds, expected) in cases {
            assert_eq!(&socks5_failure(answer, *creds), expected, "{answer:?}");
        }
    }

    #[cfg(feature = "socks")]
    #[test]
    fn socks4_answers() {
        let cases: &[(&[u8], Verdict)] = &[
            (
                b"",
                Verdict::Protocol(ProtocolViolation::ClosedBeforeAnswer),
            ),
            (b"\x00", Verdict::Protocol(ProtocolViolation::Truncated)),
            (
                b"\x00\x5b\0\0\0\0\0\0",
                Verdict::TargetRefused(TargetRefusal::Socks4(0x5b)),
            ),
            (
                b"\x00\x5d",
                Verdict::TargetRefused(TargetRefusal::Socks4(0x5d)),
            ),
            (b"\x00\x5a\0\0\0\0\0\0", Verdict::Unexplained),
            (
                b"\x00\x5a\0\0",
                Verdict::Protocol(ProtocolViolation::Truncated),
            ),
            (b"HTTP", Verdict::Protocol(ProtocolViolation::NotSocks)),
            (b"\x00\x13", Verdict::Protocol(ProtocolViolation::NotSocks)),
        ];
        for (answer, expected) in cases {
            assert_eq!(&socks4_failure(answer), expected, "{answer:?}");
        }
    }
}
