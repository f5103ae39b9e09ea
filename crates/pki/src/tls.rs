//! rustls server configuration for the API server, and reading identities from client
//! certificates.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::{ClusterPki, PkiError, certs};

/// A rustls server configuration serving the cluster's serving certificate, offering ALPN
/// `h2` and `http/1.1`.
///
/// Client certificates are optional, as with kube-apiserver (`tls.VerifyClientCertIfGiven`):
/// a connection without one is accepted (anonymous or bearer-token requests), a presented one
/// must chain to the cluster CA. The verified leaf is available from the connection's
/// `peer_certificates()`; read the user from it with [`peer_identity`].
pub fn server_tls_config(pki: &ClusterPki) -> Result<rustls::ServerConfig, PkiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_cert_pem.as_bytes()) {
        let cert = cert.map_err(|e| PkiError::Parse(format!("CA certificate: {e}")))?;
        roots.add(cert)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Parse(format!("client verifier: {e}")))?;

    let chain = CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Parse(format!("serving certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())
        .map_err(|e| PkiError::Parse(format!("serving key: {e}")))?;

    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The user name (subject CN) and groups (subject O values) of a client certificate, as
/// kube-apiserver's x509 authenticator maps them (`pkg/authentication/request/x509/x509.go`,
/// `CommonNameUserConversion`). Call it only on a certificate rustls has verified.
pub fn peer_identity(cert_der: &[u8]) -> Result<(String, Vec<String>), PkiError> {
    certs::subject_identity(cert_der)
}
