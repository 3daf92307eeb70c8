//! Searching test output for a proxy credential in every form it could leak in.

use base64::Engine;

/// `text` with every byte but RFC 3986 unreserved characters as `%XX` (upper- or lower-case
/// hex), as URL userinfo carries a credential.
pub fn percent_encode(text: &str, upper: bool) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// Every form in which a proxy user name and password could leak, each with a name for the
/// failure message: the password plain and percent-encoded (upper- and lower-case hex),
/// `user:password` plain and percent-encoded, the Basic auth base64 of `user:password` (without
/// its padding), the user name plain and percent-encoded, and the alphanumeric start of each
/// (which survives any escaping of the rest) when it is at least 6 characters long.
pub fn secret_forms(user: &str, password: &str) -> Vec<(&'static str, String)> {
    let pair = format!("{user}:{password}");
    let basic = base64::engine::general_purpose::STANDARD.encode(&pair);
    let start = |text: &str| -> String {
        text.chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect()
    };
    let mut forms = vec![
        ("the password", password.to_owned()),
        (
            "the password, percent-encoded",
            percent_encode(password, true),
        ),
        (
            "the password, percent-encoded in lower case",
            percent_encode(password, false),
        ),
        ("user:password", pair),
        (
            "user:password, percent-encoded",
            format!(
                "{}:{}",
                percent_encode(user, true),
                percent_encode(password, true)
            ),
        ),
        (
            "base64 of user:password (Basic auth)",
            basic.trim_end_matches('=').to_owned(),
        ),
        ("the user name", user.to_owned()),
        ("the user name, percent-encoded", percent_encode(user, true)),
    ];
    for (name, prefix) in [
        ("the start of the password", start(password)),
        ("the start of the user name", start(user)),
    ] {
        if prefix.len() >= 6 {
            forms.push((name, prefix));
        }
    }
    forms
}

/// The first of the [`secret_forms`] of `user` and `password` that `haystack` holds, with its
/// name.
pub fn find_secret(haystack: &str, user: &str, password: &str) -> Option<(&'static str, String)> {
    secret_forms(user, password)
        .into_iter()
        .find(|(_, needle)| haystack.contains(needle.as_str()))
}

/// Panics, naming `what` and the form found, when `haystack` holds `user` or `password` in any
/// of the [`secret_forms`].
///
/// # Panics
/// On a leak: that is its purpose.
pub fn assert_no_secret(what: &str, haystack: &str, user: &str, password: &str) {
    if let Some((form, needle)) = find_secret(haystack, user, password) {
        panic!("LEAK: {form} ({needle:?}) appears in {what}:\n{haystack}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_found() {
        let (user, password) = ("us@er_name", "p:ss/w%21");
        for (name, needle) in secret_forms(user, password) {
            let text = format!("before {needle} after");
            assert!(find_secret(&text, user, password).is_some(), "{name}");
        }
        assert_eq!(percent_encode("a@b:c/%", true), "a%40b%3Ac%2F%25");
        assert_eq!(percent_encode("a/b", false), "a%2fb");
        assert!(find_secret("nothing here", user, password).is_none());
    }
}
