//! What lets other machines join as nodes with `rkube agent --server URL --token TOKEN`, set up
//! as `kubeadm init` sets it up for `kubeadm join`:
//!
//! - the `kube-public/cluster-info` ConfigMap (CA and server URL, readable anonymously through
//!   the `rkube:bootstrap-signer-clusterinfo` Role of the default policy); the bootstrap signer
//!   controller adds a signature per token;
//! - a node token: a bootstrap token Secret made on first start, usable for authentication
//!   (group `system:bootstrappers:rkube:default-node-token`) and for signing `cluster-info`,
//!   with no expiry (like k3s' node token); it is written to `<data-dir>/node-token` (0600).
//!   Deleting the Secret revokes it; it is not made again while the file exists.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use serde_json::json;

/// File under the data directory holding the node token.
pub const NODE_TOKEN_FILE: &str = "node-token";
/// Extra group of the node token's user.
pub const NODE_TOKEN_GROUP: &str = "system:bootstrappers:rkube:default-node-token";

/// Creates `cluster-info`, or brings its kubeconfig up to date (the server URL or CA changed);
/// signatures already in it are left to the bootstrap signer.
pub async fn ensure_cluster_info(
    registry: &Arc<Registry>,
    server_url: &str,
    ca_cert_pem: &str,
) -> Result<(), ApiError> {
    let kubeconfig = rkube_pki::join::cluster_info_kubeconfig(server_url, ca_cert_pem)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let res = registry
        .lookup("", "v1", "configmaps")
        .ok_or_else(|| ApiError::internal("resource configmaps is not served"))?;
    let name = rkube_pki::join::CLUSTER_INFO;
    match registry.get(&res, Some("kube-public"), name, "").await {
        Ok(existing)
            if existing["data"][rkube_pki::join::KUBECONFIG_KEY] == kubeconfig.as_str() =>
        {
            Ok(())
        }
        Ok(_) => {
            registry
                .modify(&res, Some("kube-public"), name, false, false, move |old| {
                    let mut new = old.clone();
                    new["data"][rkube_pki::join::KUBECONFIG_KEY] = json!(kubeconfig);
                    rkube_apimachinery::meta::remove_meta(&mut new, "resourceVersion");
                    Ok(new)
                })
                .await?;
            Ok(())
        }
        Err(e) if e.code == 404 => {
            let cm = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": "kube-public"},
                "data": {rkube_pki::join::KUBECONFIG_KEY: kubeconfig},
            });
            crate::bootstrap::ensure(registry, "", "v1", "configmaps", Some("kube-public"), cm)
                .await
        }
        Err(e) => Err(e),
    }
}

/// The node token file of a data directory.
pub fn node_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_TOKEN_FILE)
}

/// Makes the node token on first start: its Secret, then its file. Returns the token.
pub async fn ensure_node_token(
    registry: &Arc<Registry>,
    data_dir: &Path,
) -> Result<String, ApiError> {
    let path = node_token_path(data_dir);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_string());
    }
    let token = rkube_pki::join::generate_bootstrap_token();
    let (id, secret) = rkube_pki::join::parse_bootstrap_token(&token)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let description = format!(
        "rkube node token (also in {}); delete this Secret to revoke it",
        path.display()
    );
    // Written as `data`: `stringData` is folded in when the API decodes a request, which a
    // write from inside the server does not go through.
    let data: serde_json::Map<String, serde_json::Value> = [
        ("description", description.as_str()),
        ("token-id", id),
        ("token-secret", secret),
        ("usage-bootstrap-authentication", "true"),
        ("usage-bootstrap-signing", "true"),
        ("auth-extra-groups", NODE_TOKEN_GROUP),
    ]
    .into_iter()
    .map(|(k, v)| {
        (
            k.to_string(),
            json!(base64::engine::general_purpose::STANDARD.encode(v)),
        )
    })
    .collect();
    let obj = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": format!("bootstrap-token-{id}"), "namespace": "kube-system"},
        "data": data,
    });
    crate::bootstrap::ensure(registry, "", "v1", "secrets", Some("kube-system"), obj).await?;
    rkube_pki::write_private_file(&path, format!("{token}\n").as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(token)
}
