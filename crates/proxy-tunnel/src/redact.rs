//! `redact_url`: a URL as error messages show it, without user-info, query or fragment (the
//! query of an exchange URL can carry signatures and listen keys).

/// `scheme://host:port/path` of `url`, at most 256 characters, without user info, query or
/// fragment. A target URL with user info is invalid anyway, so any doubt cuts more:
/// - when what comes before the first `/`, `?` or `#` holds an `@`, or is no `host[:port]`
///   (a password holding an unencoded `@`, `/`, `?` or `#`), everything up to the last `@` is
///   cut, wherever it is (`wss://u:p@ss/w@h/ws/a@b` shows as `wss://b`);
/// - with no `scheme://` at the start, the text is read as an authority and path
///   (`user:pw@proxy:3128` shows as `proxy:3128`).
///
/// A valid URL keeps its path, `@`s included (`wss://stream.binance.com:9443/ws/btcusdt@trade`).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) if is_scheme(&url[..at]) => url.split_at(at + 3),
        _ => ("", url),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let rest = if authority.contains('@') || !is_host_port(authority) {
        rest.rfind('@').map_or(rest, |at| &rest[at + 1..])
    } else {
        rest
    };
    let rest = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    format!("{scheme}{rest}").chars().take(256).collect()
}

/// RFC 3986's `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `host`, `host:port` or `[v6]:port` (the port digits only, possibly empty), or nothing.
fn is_host_port(authority: &str) -> bool {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((inside, after))
                if inside
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') =>
            {
                match after.strip_prefix(':') {
                    Some(port) => ("", port),
                    None if after.is_empty() => ("", ""),
                    None => return false,
                }
            }
            _ => return false,
        }
    } else {
        authority.split_once(':').unwrap_or((authority, ""))
    };
    host.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'%'))
        && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn strips_user_info_query_and_fragment() {
        let cases = [
            (
                "https://api.binance.com/api/v3/order?signature=abc",
                "https://api.binance.com/api/v3/order",
            ),
            (
                "wss://user:p@ss@stream.example:9443/ws#frag",
                "wss://stream.example:9443/ws",
            ),
            // User info makes the URL invalid: cut to the last `@`, path included.
            ("wss://user:pw@host/a@b", "wss://b"),
            ("wss://user:pw@host/ws", "wss://host/ws"),
            ("WSS://user:pw@host/ws", "WSS://host/ws"),
            ("wss://user@host:1/ws", "wss://host:1/ws"),
            ("not a url?x", "not a url"),
            (
                "wss://stream.binance.com:9443/ws/btcusdt@trade?x=a@b",
                "wss://stream.binance.com:9443/ws/btcusdt@trade",
            ),
            ("wss://[::1]:9443/ws/a@b", "wss://[::1]:9443/ws/a@b"),
            ("https://h/path?sig=a@b", "https://h/path"),
            // Not URLs, or a password with an unencoded `/`, `?` or `#`: cut to the last `@`.
            ("alice:hunter2@proxy:3128", "proxy:3128"),
            ("alice:hunter2@proxy:3128/x", "proxy:3128/x"),
            ("wss://alice:hun/ter2@h/ws", "wss://h/ws"),
            ("wss://alice:hun?ter2@h/ws", "wss://h/ws"),
            ("https://alice:hun#ter2@h/", "https://h/"),
            ("wss://alice:hun/ter2@h/ws/a@b", "wss://b"),
            ("wss://[::1:hun/ter2@h/ws", "wss://h/ws"),
            // An `@` in the password and a `/`, `?` after it; an e-mail address as user name.
            ("http://alice:p@ss/word@proxy:3128", "http://proxy:3128"),
            ("wss://alice:p@ss?word@h/ws", "wss://h/ws"),
            ("wss://alice@corp.com:hun/ter2@h/ws", "wss://h/ws"),
            // `://` later in the text is no scheme.
            ("alice:hunter2@proxy:3128/?u=http://x", "proxy:3128/"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url(input), expected, "{input}");
        }
        assert_eq!(
            redact_url(&format!("https://h/{}", "x".repeat(500))).len(),
            256
        );
    }
}
