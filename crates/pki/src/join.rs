//! What a node needs to join with a bootstrap token, as kubeadm's token discovery works
//! (`cmd/kubeadm/app/discovery/token`, `k8s.io/cluster-bootstrap/token/jws`):
//!
//! - the `kube-public/cluster-info` ConfigMap holds a kubeconfig with the cluster's CA and
//!   server, readable anonymously;
//! - the bootstrap signer adds `jws-kubeconfig-<token-id>`: a detached HS256 JWS of that
//!   kubeconfig keyed by the token's secret, so a joining node that knows the token can tell
//!   the ConfigMap came from this cluster before it trusts the CA in it;
//! - `--ca-cert-hash sha256:<hex>` optionally pins the CA: the SHA-256 of its DER
//!   SubjectPublicKeyInfo (kubeadm's `pubkeypin`).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

use crate::PkiError;

/// Name of the ConfigMap in `kube-public`.
pub const CLUSTER_INFO: &str = "cluster-info";
/// Key of the kubeconfig in it.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// Prefix of the signature keys in it.
pub const JWS_KEY_PREFIX: &str = "jws-kubeconfig-";

/// The kubeconfig published in `cluster-info` (kubeadm's shape: one unnamed cluster, no users).
pub fn cluster_info_kubeconfig(server_url: &str, ca_cert_pem: &str) -> Result<String, PkiError> {
    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct ClusterBody<'a> {
        certificate_authority_data: String,
        server: &'a str,
    }
    #[derive(Serialize)]
    struct NamedCluster<'a> {
        cluster: ClusterBody<'a>,
        name: &'a str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "kebab-case")]
    struct Config<'a> {
        #[serde(rename = "apiVersion")]
        api_version: &'a str,
        clusters: Vec<NamedCluster<'a>>,
        contexts: Option<()>,
        current_context: &'a str,
        kind: &'a str,
        preferences: std::collections::BTreeMap<String, String>,
        users: Option<()>,
    }
    let config = Config {
        api_version: "v1",
        clusters: vec![NamedCluster {
            cluster: ClusterBody {
                certificate_authority_data: STANDARD.encode(ca_cert_pem),
                server: server_url,
            },
            name: "",
        }],
        contexts: None,
        current_context: "",
        kind: "Config",
        preferences: Default::default(),
        users: None,
    };
    Ok(serde_yaml_ng::to_string(&config)?)
}

/// The detached JWS (`header..signature`) of `payload` for token `<token_id>.<token_secret>`.
pub fn detached_signature(payload: &str, token_id: &str, token_secret: &str) -> String {
    let header = serde_json::json!({"alg": "HS256", "kid": token_id}).to_string();
    let header = URL_SAFE_NO_PAD.encode(header);
    let signature = sign(&header, payload, token_secret);
    format!("{header}..{signature}")
}

fn sign(encoded_header: &str, payload: &str, token_secret: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    let input = format!("{encoded_header}.{}", URL_SAFE_NO_PAD.encode(payload));
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(&key, input.as_bytes()).as_ref())
}

/// Whether `jws` (detached) signs `payload` with the secret of token `token_id`.
pub fn verify_detached_signature(
    jws: &str,
    payload: &str,
    token_id: &str,
    token_secret: &str,
) -> bool {
    let mut parts = jws.trim().split('.');
    let (Some(header), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let header_ok = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h["alg"] == "HS256" && h["kid"] == token_id);
    let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    header_ok && ring::hmac::verify(&key, input.as_bytes(), &given).is_ok()
}

/// kubeadm's CA pin of a PEM certificate: `sha256:<hex of SHA-256 of its SubjectPublicKeyInfo>`.
pub fn ca_cert_hash(ca_cert_pem: &str) -> Result<String, PkiError> {
    let der = crate::certs::pem_to_der(ca_cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::Parse(format!("CA certificate: {e}")))?;
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    Ok(format!(
        "sha256:{}",
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// A bootstrap token split into id and secret, checked for upstream's format
/// (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn parse_bootstrap_token(token: &str) -> Result<(&str, &str), PkiError> {
    let valid = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.trim().split_once('.') {
        Some((id, secret)) if valid(id, 6) && valid(secret, 16) => Ok((id, secret)),
        _ => Err(PkiError::Parse(
            "the bootstrap token does not match the pattern [a-z0-9]{6}.[a-z0-9]{16}".into(),
        )),
    }
}

/// A new random bootstrap token `<id>.<secret>`.
pub fn generate_bootstrap_token() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut pick = |n: usize| {
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect::<String>()
    };
    let id = pick(6);
    let secret = pick(16);
    format!("{id}.{secret}")
}

/// The CA (PEM) and server URL of a `cluster-info` kubeconfig.
pub fn cluster_info_contents(kubeconfig: &str) -> Result<(String, String), PkiError> {
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(kubeconfig)?;
    let cluster = &v["clusters"][0]["cluster"];
    let server = cluster["server"]
        .as_str()
        .ok_or_else(|| PkiError::Parse("cluster-info: the kubeconfig has no server".into()))?;
    let ca = cluster["certificate-authority-data"]
        .as_str()
        .ok_or_else(|| {
            PkiError::Parse("cluster-info: the kubeconfig has no certificate-authority-data".into())
        })?;
    let ca = STANDARD
        .decode(ca.trim())
        .map_err(|e| PkiError::Parse(format!("cluster-info: certificate-authority-data: {e}")))?;
    let ca = String::from_utf8(ca)
        .map_err(|e| PkiError::Parse(format!("cluster-info: certificate-authority-data: {e}")))?;
    crate::certs::pem_to_der(&ca)?;
    Ok((ca, server.to_string()))
}

/// A new private key and a certificate request for it with CN `cn` and one O per group
/// (PEM request, PKCS#8 PEM key): what a kubelet sends for its client certificate.
pub fn client_certificate_request(cn: &str, groups: &[&str]) -> Result<(String, String), PkiError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    let mut dn = rcgen::DistinguishedName::new();
    for g in groups {
        dn.push(rcgen::DnType::OrganizationName, *g);
    }
    dn.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name = dn;
    let request = params.serialize_request(&key)?;
    Ok((request.pem()?, key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_verifies_only_with_the_same_token_and_payload() {
        let jws = detached_signature("kubeconfig body", "abcdef", "0123456789abcdef");
        assert!(jws.contains(".."), "detached: {jws}");
        assert!(verify_detached_signature(
            &jws,
            "kubeconfig body",
            "abcdef",
            "0123456789abcdef"
        ));
        assert!(!verify_detached_signature(
            &jws,
            "kubeconfig body!",
            "abcdef",
            "0123456789abcdef"
        ));
        assert!(!verify_detached_signature(
            &jws,
            "kubeconfig body",
            "abcdef",
            "0123456789abcdeX"
        ));
        assert!(!verify_detached_signature(
            &jws,
            "kubeconfig body",
            "zzzzzz",
            "0123456789abcdef"
        ));
        assert!(!verify_detached_signature(
            "garbage",
            "kubeconfig body",
            "abcdef",
            "0123456789abcdef"
        ));
    }

    /// The "signed" case of k8s.io/cluster-bootstrap/token/jws's tests (computed by go-jose).
    #[test]
    fn signature_matches_upstreams_test_vector() {
        let content = "Hello from the other side. I must have called a thousand times.";
        let jws = detached_signature(content, "joshua", "my voice is my passcode");
        assert_eq!(
            jws,
            "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8"
        );
    }

    #[test]
    fn tokens_are_generated_and_parsed_in_upstreams_format() {
        let token = generate_bootstrap_token();
        let (id, secret) = parse_bootstrap_token(&token).expect("valid");
        assert_eq!((id.len(), secret.len()), (6, 16));
        assert!(parse_bootstrap_token("ABCDEF.0123456789abcdef").is_err());
        assert!(parse_bootstrap_token("abcdef0123456789abcdef").is_err());
    }

    #[test]
    fn a_request_carries_the_node_identity() {
        let (request, key) =
            client_certificate_request("system:node:n1", &["system:nodes"]).expect("request");
        assert!(key.contains("PRIVATE KEY"));
        let parsed = crate::csr::parse_certificate_request(request.as_bytes()).expect("parses");
        assert_eq!(parsed.common_name, "system:node:n1");
        assert_eq!(parsed.organizations, vec!["system:nodes".to_string()]);
    }

    #[test]
    fn cluster_info_kubeconfig_has_the_ca_and_server() {
        let yaml = cluster_info_kubeconfig("https://10.0.0.1:6443", "PEM").expect("yaml");
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).expect("parses");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"].as_str(),
            Some("https://10.0.0.1:6443")
        );
        assert_eq!(
            v["clusters"][0]["cluster"]["certificate-authority-data"].as_str(),
            Some(STANDARD.encode("PEM").as_str())
        );
    }
}
