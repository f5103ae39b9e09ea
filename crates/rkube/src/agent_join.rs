//! `rkube agent --server URL --token TOKEN`: a node's TLS bootstrap, as `kubeadm join` with
//! token discovery and the kubelet's `--bootstrap-kubeconfig` do it together.
//!
//! 1. Read `kube-public/cluster-info` without trusting the server yet, and accept it only if it
//!    carries a valid `jws-kubeconfig-<token-id>` signature made with the token's secret (and,
//!    with `--ca-cert-hash`, if its CA has that public-key pin).
//! 2. With the CA from it and the bootstrap token, send a CertificateSigningRequest for
//!    `system:node:<name>` in `system:nodes` (signer
//!    `kubernetes.io/kube-apiserver-client-kubelet`), which the CSR approver and signer of the
//!    server auto-approve and sign for bootstrappers.
//! 3. Write the node's kubeconfig (certificate and key embedded, 0600) under the agent's root
//!    directory; later starts use it without the token.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use rkube_pki::join;

/// Signer of kubelet client certificates.
const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// How long to wait for the certificate (the kubelet waits up to an hour; a join that takes more
/// than this has a server without an approver or signer).
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(300);

/// What `--token` joining needs.
pub struct JoinRequest<'a> {
    pub server: &'a str,
    pub token: &'a str,
    pub ca_cert_hash: Option<&'a str>,
    pub node_name: &'a str,
}

/// The node kubeconfig an agent keeps under its root directory.
pub fn node_kubeconfig_path(root_dir: &Path) -> PathBuf {
    root_dir.join("kubelet.kubeconfig")
}

/// The command that joins another machine to the server whose data directory is `data_dir`
/// (`None` without a node token).
pub fn join_command_hint(data_dir: &Path, server: std::net::SocketAddr) -> Option<String> {
    let token_file = rkube_cluster::node_join::node_token_path(data_dir);
    if !token_file.exists() {
        return None;
    }
    let ca = std::fs::read_to_string(data_dir.join("tls").join("ca.crt")).ok()?;
    let pin = join::ca_cert_hash(&ca).ok()?;
    // A server listening on every address advertises loopback; other machines need its own.
    let host = if server.ip().is_loopback() {
        "<this host's address>".to_string()
    } else {
        server.ip().to_string()
    };
    Some(format!(
        "rkube agent --server https://{host}:{} --token $(cat {}) --ca-cert-hash {pin}",
        server.port(),
        token_file.display()
    ))
}

/// Joins and writes the node kubeconfig to `path`.
pub async fn join(request: &JoinRequest<'_>, path: &Path) -> Result<()> {
    let (token_id, token_secret) = join::parse_bootstrap_token(request.token)?;
    let ca_pem = discover_ca(request.server, token_id, token_secret, request.ca_cert_hash).await?;
    let client = bootstrap_client(request.server, &ca_pem, request.token).await?;
    let user = format!("system:node:{}", request.node_name);
    let (csr_pem, key_pem) = join::client_certificate_request(&user, &["system:nodes"])?;
    let cert_pem = request_certificate(&client, &csr_pem).await?;
    let yaml = rkube_pki::kubeconfig_yaml(
        request.server,
        rkube_pki::KUBECONFIG_NAME,
        &user,
        &ca_pem,
        &cert_pem,
        &key_pem,
    )?;
    rkube_pki::write_private_file(path, yaml.as_bytes())?;
    println!(
        "rkube: joined as {user}; node kubeconfig written to {}",
        path.display()
    );
    Ok(())
}

/// Token discovery: the cluster CA, once `cluster-info` proves it knows the token.
async fn discover_ca(
    server: &str,
    token_id: &str,
    token_secret: &str,
    pin: Option<&str>,
) -> Result<String> {
    let mut config = kube::Config::new(
        server
            .parse()
            .with_context(|| format!("server URL {server:?}"))?,
    );
    // Nothing is trusted yet: what is read is checked against the token's signature below.
    config.accept_invalid_certs = true;
    let client = kube::Client::try_from(config)?;
    let cm = Api::<ConfigMap>::namespaced(client, "kube-public")
        .get(join::CLUSTER_INFO)
        .await
        .with_context(|| format!("reading kube-public/{} from {server}", join::CLUSTER_INFO))?;
    let data = cm.data.unwrap_or_default();
    let kubeconfig = data.get(join::KUBECONFIG_KEY).ok_or_else(|| {
        anyhow!(
            "kube-public/{} has no {} key",
            join::CLUSTER_INFO,
            join::KUBECONFIG_KEY
        )
    })?;
    let Some(signature) = data.get(&format!("{}{token_id}", join::JWS_KEY_PREFIX)) else {
        // kubeadm's message.
        bail!(
            "there is no JWS signed token in the cluster-info ConfigMap. This token id {token_id:?} is invalid for this cluster, or if this token was deleted or expired, re-run with a valid one"
        );
    };
    if !join::verify_detached_signature(signature, kubeconfig, token_id, token_secret) {
        bail!(
            "failed to verify JWS signature of received cluster info object, can't trust this API Server"
        );
    }
    let (ca_pem, _) = join::cluster_info_contents(kubeconfig)?;
    if let Some(pin) = pin {
        let actual = join::ca_cert_hash(&ca_pem)?;
        if !actual.eq_ignore_ascii_case(pin.trim()) {
            bail!(
                "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{actual}\" are pinned"
            );
        }
    }
    Ok(ca_pem)
}

async fn bootstrap_client(server: &str, ca_pem: &str, token: &str) -> Result<kube::Client> {
    use base64::Engine;
    let yaml = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bootstrap", "cluster": {
            "server": server,
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(ca_pem),
        }}],
        "users": [{"name": "bootstrap", "user": {"token": token}}],
        "contexts": [{"name": "bootstrap", "context": {"cluster": "bootstrap", "user": "bootstrap"}}],
        "current-context": "bootstrap",
    });
    let kubeconfig: kube::config::Kubeconfig = serde_json::from_value(yaml)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// Creates the request and waits until it is signed; a denial or failure ends the join.
pub(crate) async fn request_certificate(client: &kube::Client, csr_pem: &str) -> Result<String> {
    let api = Api::<CertificateSigningRequest>::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(csr_pem.as_bytes().to_vec()),
            signer_name: KUBELET_CLIENT_SIGNER.into(),
            usages: Some(vec!["digital signature".into(), "client auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .context("creating the node's certificate signing request")?;
    let name = created.metadata.name.unwrap_or_default();
    println!(
        "rkube: certificate signing request {name} sent; waiting for it to be approved and signed"
    );
    let deadline = Instant::now() + CERTIFICATE_TIMEOUT;
    loop {
        let current = api
            .get(&name)
            .await
            .with_context(|| format!("reading certificate signing request {name}"))?;
        let status = current.status.unwrap_or_default();
        if let Some(c) = status
            .conditions
            .unwrap_or_default()
            .iter()
            .find(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True")
        {
            bail!(
                "certificate signing request {name} is {}: {} {}",
                c.type_.to_lowercase(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default()
            );
        }
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            return String::from_utf8(cert.0).map_err(|e| anyhow!("certificate of {name}: {e}"));
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {CERTIFICATE_TIMEOUT:?} waiting for certificate signing request {name} to be signed"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
