//! A throwaway certificate authority for loopback TLS: leaf certificates for servers and proxies,
//! and rustls configs that trust only this CA.

use std::fmt;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::ring;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority generated in memory (ECDSA P-256), for tests only.
///
/// Every config built here uses the ring provider explicitly, so no process-wide default crypto
/// provider needs to be installed.
pub struct TestCa {
    root: rcgen::Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The issuer holds the private key: never print it.
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl TestCa {
    /// Generates a new CA.
    ///
    /// # Panics
    /// If key generation or self-signing fails, which only a broken crypto backend would cause.
    pub fn new() -> Self {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "feed-sim test CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "feedproxy tests");
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let key = KeyPair::generate().expect("feed-sim: generating the test CA key failed");
        let root = params
            .self_signed(&key)
            .expect("feed-sim: self-signing the test CA failed");
        Self {
            root,
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate in DER.
    pub fn root_der(&self) -> CertificateDer<'static> {
        self.root.der().clone()
    }

    /// The CA certificate in PEM, e.g. to write an extra-CA file for the code under test.
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// Issues a leaf certificate for `names` (DNS names or IP literals such as "localhost",
    /// "127.0.0.1", "::1") and returns the chain (leaf, then this CA) with the leaf's private key.
    ///
    /// # Panics
    /// If a name is neither a valid DNS name nor an IP address, or signing fails.
    pub fn issue(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans)
            .unwrap_or_else(|e| panic!("feed-sim: invalid certificate name in {names:?}: {e}"));
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("feed-sim: generating a leaf key failed");
        let leaf = params
            .signed_by(&key, &self.issuer)
            .expect("feed-sim: signing a leaf certificate failed");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (vec![leaf.der().clone(), self.root_der()], key_der)
    }

    /// A rustls server config presenting a fresh leaf certificate for `names`, offering ALPN
    /// `http/1.1`.
    ///
    /// # Panics
    /// As [`TestCa::issue`], or if rustls rejects the generated certificate.
    pub fn server_config(&self, names: &[&str]) -> Arc<ServerConfig> {
        let (chain, key) = self.issue(names);
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("feed-sim: ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("feed-sim: rustls rejected the generated leaf certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// A rustls client config that trusts this CA and nothing else.
    ///
    /// # Panics
    /// If rustls rejects the CA certificate.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.root_der())
            .expect("feed-sim: rustls rejected the test CA certificate");
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("feed-sim: ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}
