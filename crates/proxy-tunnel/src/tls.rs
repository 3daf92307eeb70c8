//! `TlsOptions`: which certificate authorities a client trusts, for TLS to https:// proxies here
//! and to exchanges in proxy-http and proxy-ws. rustls with the ring provider; verification is
//! always on.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Trust anchors for TLS clients: Mozilla's roots (webpki-roots) by default, optionally the
/// operating system's store, plus extra CA certificates from PEM files or bytes (a corporate CA,
/// a test CA).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    webpki_roots: bool,
    native_roots: bool,
    extra: Vec<CertificateDer<'static>>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            webpki_roots: true,
            native_roots: false,
            extra: Vec::new(),
        }
    }
}

/// A CA certificate that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsOptionsError {
    /// The PEM file could not be read.
    #[error("cannot read CA file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No certificate in the PEM input, or a malformed one.
    #[error("no valid CA certificate in {0}")]
    NoCertificate(String),
    /// rustls refused a certificate as a trust anchor.
    #[error("CA certificate in {0} rejected: {1}")]
    Rejected(String, rustls::Error),
}

impl TlsOptions {
    /// Mozilla's roots only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trust only the extra certificates (tests, private deployments).
    #[must_use]
    pub fn without_webpki_roots(mut self) -> Self {
        self.webpki_roots = false;
        self
    }

    /// Also trust the operating system's certificate store (read when the client configuration
    /// is built; unreadable entries are skipped, an empty store is an error).
    #[must_use]
    pub fn with_native_roots(mut self) -> Self {
        self.native_roots = true;
        self
    }

    /// Also trust the CA certificates in this PEM text.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, TlsOptionsError> {
        let certs = parse_pem(pem, "PEM input")?;
        self.extra.extend(certs);
        Ok(self)
    }

    /// Also trust the CA certificates in this PEM file.
    pub fn with_ca_file(self, path: &Path) -> Result<Self, TlsOptionsError> {
        let pem = std::fs::read(path).map_err(|source| TlsOptionsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let certs = parse_pem(&pem, &path.display().to_string())?;
        let mut options = self;
        options.extra.extend(certs);
        Ok(options)
    }

    /// A rustls client configuration with these roots and the given ALPN protocols.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsOptionsError> {
        let mut roots = RootCertStore::empty();
        if self.webpki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if self.native_roots {
            let native = rustls_native_certs::load_native_certs();
            if native.certs.is_empty() {
                return Err(TlsOptionsError::NoCertificate(
                    "the operating system's certificate store".to_owned(),
                ));
            }
            // Some system stores hold certificates rustls cannot use as anchors; skip those.
            roots.add_parsable_certificates(native.certs);
        }
        for cert in &self.extra {
            roots
                .add(cert.clone())
                .map_err(|e| TlsOptionsError::Rejected("extra CA".to_owned(), e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsOptionsError::Rejected("protocol versions".to_owned(), e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

fn parse_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsOptionsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsOptionsError::NoCertificate(what.to_owned()))?;
    if certs.is_empty() {
        return Err(TlsOptionsError::NoCertificate(what.to_owned()));
    }
    Ok(certs)
}
