//! `redact_url`: a URL as error messages show it, without user-info, query or fragment (the
//! query of an exchange URL can carry signatures and listen keys).

/// `scheme://host:port/path` of `url`, at most 256 characters. The user-info ends at the last
/// `@` before the path, as in [`ProxyUrl`](proxy_config::ProxyUrl) parsing.
pub fn redact_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let base = &url[..end];
    let shown = match base.find("://") {
        Some(scheme_end) => {
            let rest = &base[scheme_end + 3..];
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{}{}", &base[..scheme_end + 3], &rest[at + 1..]),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    shown.chars().take(256).collect()
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
            ("wss://user:pw@host/a@b", "wss://host/a@b"),
            ("not a url?x", "not a url"),
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
