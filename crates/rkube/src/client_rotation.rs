//! The node's client certificate rotation, as the kubelet's certificate manager does it
//! (`rotateCertificates: true`): when 70–90 % (jittered) of the certificate's lifetime has
//! passed, the agent sends a new CertificateSigningRequest for its own name with its current
//! identity (auto-approved as `selfnodeclient`), writes the signed certificate and new key into
//! its node kubeconfig, and every TLS connection opened from then on presents it. Connections
//! already open keep the identity they were authenticated with, as upstream's do until
//! they are closed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow};
use base64::Engine as _;
use kube::client::ConfigExt as _;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Where the kubelet's certificate manager retries a failed renewal from (it doubles up to
/// [`MAX_RETRY`]).
const FIRST_RETRY: Duration = Duration::from_secs(2);
const MAX_RETRY: Duration = Duration::from_secs(5 * 60);

/// The client certificate new TLS connections present; replaced on rotation.
#[derive(Debug)]
pub struct CurrentClientCert {
    key: RwLock<Arc<CertifiedKey>>,
    pem: RwLock<String>,
}

impl CurrentClientCert {
    fn new(cert_pem: &str, key_pem: &str) -> Result<Self> {
        Ok(Self {
            key: RwLock::new(Arc::new(certified_key(cert_pem, key_pem)?)),
            pem: RwLock::new(cert_pem.to_string()),
        })
    }

    fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<()> {
        let key = Arc::new(certified_key(cert_pem, key_pem)?);
        *self.key.write().map_err(|_| anyhow!("client certificate lock poisoned"))? = key;
        *self.pem.write().map_err(|_| anyhow!("client certificate lock poisoned"))? = cert_pem.to_string();
        Ok(())
    }

    fn cert_pem(&self) -> String {
        self.pem.read().map(|p| p.clone()).unwrap_or_default()
    }
}

impl ResolvesClientCert for CurrentClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.key.read().ok().map(|k| k.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn certified_key(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("client certificate: {e}"))?;
    anyhow::ensure!(!chain.is_empty(), "client certificate: no certificate in PEM");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| anyhow!("client key: {e}"))?;
    let signing_key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow!("client key: {e}"))?;
    Ok(CertifiedKey::new(chain, signing_key))
}

/// A client whose certificate can be rotated, and what rotating it needs.
pub struct RotatingClient {
    pub client: kube::Client,
    pub url: String,
    pub root_certs: Vec<Vec<u8>>,
    current: Arc<CurrentClientCert>,
    kubeconfig: PathBuf,
}

/// The client of a kubeconfig with embedded client certificate and key (the node kubeconfig
/// the agent writes), with `server` overriding its URL.
pub async fn client(kubeconfig: &Path, server: Option<&str>) -> Result<RotatingClient> {
    let yaml = std::fs::read_to_string(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let (cert_pem, key_pem) = embedded_identity(&yaml)
        .with_context(|| format!("client certificate of {}", kubeconfig.display()))?;
    let cfg = kube_config(&yaml, server).await?;
    let current = Arc::new(CurrentClientCert::new(&cert_pem, &key_pem)?);
    let mut tls = cfg.rustls_client_config()?;
    tls.client_auth_cert_resolver = current.clone();
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(cfg.connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let transport = hyper_util::client::legacy::Client::builder(
        hyper_util::rt::TokioExecutor::new(),
    )
    .build::<_, kube::client::Body>(https);
    // Boxed errors, so that the optional token layer composes with the transport.
    let transport = tower::ServiceExt::map_err(transport, |e| {
        Box::new(e) as Box<dyn std::error::Error + Send + Sync>
    });
    let service = tower::ServiceBuilder::new()
        .layer(cfg.base_uri_layer())
        .option_layer(cfg.auth_layer()?)
        .service(transport);
    Ok(RotatingClient {
        client: kube::Client::new(service, cfg.default_namespace.clone()),
        url: cfg.cluster_url.to_string(),
        root_certs: cfg.root_cert.clone().unwrap_or_default(),
        current,
        kubeconfig: kubeconfig.to_path_buf(),
    })
}

/// The client configuration of a kubeconfig's text, with `server` overriding its URL.
pub async fn kube_config(yaml: &str, server: Option<&str>) -> Result<kube::Config> {
    let kc: kube::config::Kubeconfig = serde_yaml_ng::from_str(yaml)?;
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    if let Some(s) = server {
        cfg.cluster_url = s.parse()?;
    }
    Ok(cfg)
}

/// The PEM certificate and key a kubeconfig's current user carries inline.
fn embedded_identity(yaml: &str) -> Result<(String, String)> {
    let doc: serde_json::Value = serde_yaml_ng::from_str(yaml)?;
    let user = current_user(&doc)?;
    let field = |name: &str| -> Result<String> {
        let data = user[name]
            .as_str()
            .ok_or_else(|| anyhow!("the current user has no {name}"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
        Ok(String::from_utf8(bytes)?)
    };
    Ok((field("client-certificate-data")?, field("client-key-data")?))
}

/// The `user` object of the kubeconfig's current context.
fn current_user(doc: &serde_json::Value) -> Result<&serde_json::Value> {
    let context = doc["current-context"].as_str().unwrap_or_default();
    let user_name = doc["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == context))
        .and_then(|c| c["context"]["user"].as_str())
        .ok_or_else(|| anyhow!("no current context {context:?}"))?;
    doc["users"]
        .as_array()
        .and_then(|us| us.iter().find(|u| u["name"] == user_name))
        .map(|u| &u["user"])
        .ok_or_else(|| anyhow!("no user {user_name:?}"))
}

/// The kubeconfig with the current user's certificate and key replaced.
fn with_identity(yaml: &str, cert_pem: &str, key_pem: &str) -> Result<String> {
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(yaml)?;
    let context = doc["current-context"].as_str().unwrap_or_default().to_string();
    let user_name = doc["contexts"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == context.as_str()))
        .and_then(|c| c["context"]["user"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no current context {context:?}"))?;
    let user = doc["users"]
        .as_array_mut()
        .and_then(|us| us.iter_mut().find(|u| u["name"] == user_name.as_str()))
        .and_then(|u| u["user"].as_object_mut())
        .ok_or_else(|| anyhow!("no user {user_name:?}"))?;
    let encode = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    user.insert("client-certificate-data".into(), encode(cert_pem).into());
    user.insert("client-key-data".into(), encode(key_pem).into());
    Ok(serde_yaml_ng::to_string(&doc)?)
}

/// When the kubelet renews a certificate valid from `not_before` to `not_after` (Unix
/// seconds): at a random point between 70 % and 90 % of its lifetime (upstream's
/// `nextRotationDeadline`), `fraction` in [0, 1) choosing the point.
pub fn rotation_deadline(not_before: i64, not_after: i64, fraction: f64) -> SystemTime {
    let total = (not_after - not_before).max(0) as f64;
    let offset = total * (0.7 + 0.2 * fraction.clamp(0.0, 1.0));
    let start = UNIX_EPOCH + Duration::from_secs(u64::try_from(not_before).unwrap_or(0));
    start + Duration::from_secs_f64(offset)
}

impl RotatingClient {
    /// Renews the certificate before it expires, for as long as the agent runs.
    pub async fn rotate_forever(self: Arc<Self>, node_name: String) {
        let user = format!("system:node:{node_name}");
        let mut retry = FIRST_RETRY;
        loop {
            let Some((not_before, not_after)) =
                rkube_pki::csr::certificate_validity(self.current.cert_pem().as_bytes())
            else {
                tracing::error!("node client certificate unreadable: not rotating it");
                return;
            };
            let deadline = rotation_deadline(not_before, not_after, rand::random::<f64>());
            let wait = deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            tracing::info!(
                seconds = wait.as_secs(),
                "node client certificate rotation scheduled"
            );
            tokio::time::sleep(wait).await;
            match self.rotate(&user).await {
                Ok(()) => retry = FIRST_RETRY,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), retry_seconds = retry.as_secs(), "node client certificate rotation failed");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    }

    async fn rotate(&self, user: &str) -> Result<()> {
        let (csr_pem, key_pem) =
            rkube_pki::join::client_certificate_request(user, &["system:nodes"])?;
        let cert_pem = crate::agent_join::request_certificate(&self.client, &csr_pem).await?;
        let yaml = std::fs::read_to_string(&self.kubeconfig)
            .with_context(|| format!("reading {}", self.kubeconfig.display()))?;
        let updated = with_identity(&yaml, &cert_pem, &key_pem)?;
        // The file first: a crash between the two leaves the new identity for the next start.
        rkube_pki::write_private_file(&self.kubeconfig, updated.as_bytes())?;
        self.current.replace(&cert_pem, &key_pem)?;
        let expiry = rkube_pki::csr::certificate_not_after(cert_pem.as_bytes()).unwrap_or(0);
        tracing::info!(
            kubeconfig = %self.kubeconfig.display(),
            not_after = expiry,
            "node client certificate rotated"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig(cert: &str, key: &str) -> String {
        rkube_pki::kubeconfig_yaml(
            "https://127.0.0.1:6443",
            "rkube",
            "system:node:n1",
            "ca",
            cert,
            key,
        )
        .expect("kubeconfig")
    }

    #[test]
    fn the_deadline_falls_between_70_and_90_percent_of_the_lifetime() {
        let at = |f| {
            rotation_deadline(1_000, 2_000, f)
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default()
        };
        assert_eq!(at(0.0), 1_700);
        assert_eq!(at(0.5), 1_800);
        assert_eq!(at(0.999_999), 1_899);
        assert_eq!(at(7.0), 1_900, "out-of-range randomness is clamped");
    }

    #[test]
    fn the_identity_is_read_and_replaced_in_the_kubeconfig() {
        let yaml = kubeconfig("CERT-1", "KEY-1");
        assert_eq!(
            embedded_identity(&yaml).expect("identity"),
            ("CERT-1".to_string(), "KEY-1".to_string())
        );
        let rotated = with_identity(&yaml, "CERT-2", "KEY-2").expect("replaced");
        assert_eq!(
            embedded_identity(&rotated).expect("identity"),
            ("CERT-2".to_string(), "KEY-2".to_string())
        );
        let doc: serde_json::Value = serde_yaml_ng::from_str(&rotated).expect("yaml");
        assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
        assert!(embedded_identity("current-context: nowhere").is_err());
    }

    #[test]
    fn a_certificate_and_key_load_and_can_be_replaced() {
        let (cert, key) = {
            let key = rcgen::KeyPair::generate().expect("key");
            let cert = rcgen::CertificateParams::new(vec!["n1".to_string()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
            (cert.pem(), key.serialize_pem())
        };
        let current = CurrentClientCert::new(&cert, &key).expect("loads");
        assert!(current.resolve(&[], &[]).is_some());
        assert!(current.replace("not a certificate", &key).is_err());
        assert_eq!(current.cert_pem(), cert, "a failed replacement keeps the old one");
    }
}
