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
