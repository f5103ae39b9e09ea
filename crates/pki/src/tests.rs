//! Tests for the PKI: persistence, SAN re-issue, TLS handshakes, kubeconfig.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
}

#[test]
fn create_then_reload_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let b = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
    assert_eq!(a.ca_key_pem, b.ca_key_pem);
    assert_eq!(a.serving_cert_pem, b.serving_cert_pem);
    assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
    for f in ["ca.key", "serving.key", "admin.key"] {
        assert_eq!(mode(&dir.path().join("tls").join(f)), 0o600, "{f}");
    }
    assert!(dir.path().join("tls/ca.crt").exists());
    // The CA is named like client-go's self-signed CAs.
    let (cn, _) = peer_identity(&a.ca_cert_der().unwrap()).unwrap();
    assert!(cn.starts_with("rkube-ca@"), "{cn}");
}

#[test]
fn default_sans_are_present() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let sans = pki.serving_sans().unwrap();
    for want in [
        "127.0.0.1",
        "::1",
        "10.43.0.1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ] {
        assert!(sans.iter().any(|s| s == want), "missing {want} in {sans:?}");
    }
}

#[test]
fn new_san_reissues_serving_cert_with_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let extra = PkiSans::from_values(&["api.example.com", "192.0.2.10"]);
    assert_eq!(extra.ips, vec!["192.0.2.10".parse::<IpAddr>().unwrap()]);
    let b = load_or_create(dir.path(), &extra).unwrap();
    assert_eq!(a.ca_cert_pem, b.ca_cert_pem);
    assert_eq!(a.admin_cert_pem, b.admin_cert_pem);
    assert_ne!(a.serving_cert_pem, b.serving_cert_pem);
    let sans = b.serving_sans().unwrap();
    assert!(sans.contains(&"api.example.com".to_string()));
    assert!(sans.contains(&"192.0.2.10".to_string()));
    // Asking again for the same names keeps the re-issued certificate.
    let c = load_or_create(dir.path(), &extra).unwrap();
    assert_eq!(b.serving_cert_pem, c.serving_cert_pem);
    // A subset of what the cert has is also fine.
    let d = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    assert_eq!(b.serving_cert_pem, d.serving_cert_pem);
}

#[test]
fn mismatched_ca_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let o = load_or_create(other.path(), &PkiSans::default()).unwrap();
    std::fs::write(dir.path().join("tls/ca.key"), &o.ca_key_pem).unwrap();
    assert!(load_or_create(dir.path(), &PkiSans::default()).is_err());
}

#[test]
fn leaf_signed_by_another_ca_is_reissued() {
    let dir = tempfile::tempdir().unwrap();
    let a = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let o = load_or_create(other.path(), &PkiSans::default()).unwrap();
    std::fs::write(dir.path().join("tls/admin.crt"), &o.admin_cert_pem).unwrap();
    std::fs::write(dir.path().join("tls/admin.key"), &o.admin_key_pem).unwrap();
    let b = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    assert_ne!(b.admin_cert_pem, o.admin_cert_pem);
    assert_ne!(b.admin_cert_pem, a.admin_cert_pem);
}

fn client_config(pki: &ClusterPki, client: Option<(&str, &str)>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(pki.ca_cert_der().unwrap())).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    cfg
}

/// Runs a handshake over a duplex pipe; returns the server's view of the peer identity and ALPN.
async fn handshake(
    pki: &ClusterPki,
    client: Option<(&str, &str)>,
) -> Result<(Option<(String, Vec<String>)>, Option<Vec<u8>>), String> {
    let server_cfg = Arc::new(server_tls_config(pki).unwrap());
    let acceptor = tokio_rustls::TlsAcceptor::from(server_cfg);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(pki, client)));
    let (c, s) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let mut tls = acceptor.accept(s).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        let (_, conn) = tls.get_ref();
        let id = conn.peer_certificates().and_then(|c| c.first()).map(|c| peer_identity(c.as_ref()).unwrap());
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((id, alpn))
    });
    let name = ServerName::try_from("localhost").unwrap();
    let client_side = async {
        let mut tls = connector.connect(name, c).await.map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let client_result = client_side.await;
    let server_result = server.await.map_err(|e| e.to_string())?;
    client_result?;
    server_result
}

#[tokio::test]
async fn admin_cert_handshake_yields_identity() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let (id, alpn) = handshake(&pki, Some((&pki.admin_cert_pem, &pki.admin_key_pem))).await.unwrap();
    assert_eq!(id, Some(("rkube-admin".to_string(), vec!["system:masters".to_string()])));
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn anonymous_handshake_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let (id, _) = handshake(&pki, None).await.unwrap();
    assert_eq!(id, None);
}

#[tokio::test]
async fn issued_client_cert_carries_groups() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let (cert, key) = pki.issue_client_cert("system:node:n1", &["system:nodes", "extra"]).unwrap();
    let (id, _) = handshake(&pki, Some((&cert, &key))).await.unwrap();
    assert_eq!(id, Some(("system:node:n1".to_string(), vec!["system:nodes".to_string(), "extra".to_string()])));
}

#[tokio::test]
async fn foreign_client_cert_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let other = tempfile::tempdir().unwrap();
    let o = load_or_create(other.path(), &PkiSans::default()).unwrap();
    assert!(handshake(&pki, Some((&o.admin_cert_pem, &o.admin_key_pem))).await.is_err());
}

#[test]
fn kubeconfig_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let path = dir.path().join("kubeconfig.yaml");
    write_kubeconfig(&path, "https://127.0.0.1:6443", &pki).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    use base64::Engine;
    let b64 = |v: &serde_yaml_ng::Value| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
    };
    assert_eq!(v["apiVersion"].as_str(), Some("v1"));
    assert_eq!(v["kind"].as_str(), Some("Config"));
    assert_eq!(v["current-context"].as_str(), Some("rkube"));
    assert_eq!(v["clusters"][0]["name"].as_str(), Some("rkube"));
    assert_eq!(v["clusters"][0]["cluster"]["server"].as_str(), Some("https://127.0.0.1:6443"));
    assert_eq!(b64(&v["clusters"][0]["cluster"]["certificate-authority-data"]), pki.ca_cert_pem);
    assert_eq!(v["contexts"][0]["name"].as_str(), Some("rkube"));
    assert_eq!(v["contexts"][0]["context"]["cluster"].as_str(), Some("rkube"));
    assert_eq!(v["contexts"][0]["context"]["user"].as_str(), Some("rkube-admin"));
    assert_eq!(v["users"][0]["name"].as_str(), Some("rkube-admin"));
    assert_eq!(b64(&v["users"][0]["user"]["client-certificate-data"]), pki.admin_cert_pem);
    assert_eq!(b64(&v["users"][0]["user"]["client-key-data"]), pki.admin_key_pem);
}

#[test]
fn debug_hides_keys() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let s = format!("{pki:?}");
    assert!(!s.contains("PRIVATE KEY"));
}

#[test]
fn many_groups_are_repeated_o_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = load_or_create(dir.path(), &PkiSans::default()).unwrap();
    let (cert, _) = pki.issue_client_cert("jane", &["a", "b", "c"]).unwrap();
    let der = certs::pem_to_der(&cert).unwrap();
    assert_eq!(peer_identity(&der).unwrap(), ("jane".to_string(), vec!["a".into(), "b".into(), "c".into()]));
    // The re-signed certificate still verifies against the CA.
    assert!(certs::still_good(&cert, &pki.ca_cert_pem).unwrap());
    if std::env::var_os("PKI_DUMP").is_some() {
        std::fs::write("/tmp/pki-many.crt", &cert).unwrap();
        std::fs::write("/tmp/pki-ca.crt", &pki.ca_cert_pem).unwrap();
        std::fs::write("/tmp/pki-serving.crt", &pki.serving_cert_pem).unwrap();
    }
}
