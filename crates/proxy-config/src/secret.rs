//! `Secret`: the one type that holds a proxy credential; it never prints its contents.

use std::fmt;

/// A credential (proxy user name or password).
///
/// `Debug` and `Display` print `***`, so a `Secret` is safe inside any struct that derives `Debug`
/// and inside any log line or error. The value is reachable only through [`Secret::expose`], which
/// the proxy handshake code calls when it writes the credential to the proxy.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential itself. Call this only to hand it to the proxy, never to format it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `path` (a key path, an exchange id) with any user info in it cut: a key that is really a
/// proxy URL with credentials (`exchanges.http://user:pass@host:1`) shows as
/// `exchanges.***@host:1`. The leading segments made of letters, digits, `_` and `-` are kept;
/// from the first other segment (at the latest, the one that ends at the last `@`) up to that
/// `@` becomes `***`. A path without `@` is
/// returned as it is.
pub(crate) fn without_userinfo(path: String) -> String {
    let Some(at) = path.rfind('@') else {
        return path;
    };
    let plain = |segment: &str| {
        segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    // The segment that runs into the `@` is user info whatever it looks like.
    let mut keep = 0;
    let mut segments = path[..at].split('.');
    segments.next_back();
    for segment in segments {
        if !plain(segment) {
            break;
        }
        keep += segment.len() + 1;
    }
    format!("{}***{}", &path[..keep], &path[at..])
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn user_info_is_cut_from_key_paths() {
        for (path, shown) in [
            ("exchanges.binance.http.url", "exchanges.binance.http.url"),
            ("http://user:hunter2@h:1", "***@h:1"),
            ("default.http://user:hunter2@h:1", "default.***@h:1"),
            (
                "exchanges.http://user:p.w@proxy.example.com:8080",
                "exchanges.***@proxy.example.com:8080",
            ),
            ("exchanges.a@b", "exchanges.***@b"),
            ("@", "***@"),
        ] {
            assert_eq!(without_userinfo(path.to_owned()), shown, "{path}");
        }
    }
}
