//! ServiceAccount: every pod runs as a ServiceAccount that exists (`default` unless named), and
//! gets its API credentials as the projected `kube-api-access-<rand>` volume
//! (upstream `plugin/pkg/admission/serviceaccount/admission.go`). Mirror pods are left as the
//! node sent them (their spec is the static pod's) and may reference no credentials at all.

use std::time::Duration;

use rand::Rng;
use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

use crate::context::{Context, Plugin};

/// Where containers find the token, CA and namespace.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// How long a create waits for a ServiceAccount the serviceaccount controller is about to
/// create (a namespace made a moment ago); upstream falls back to one live lookup instead.
const SERVICE_ACCOUNT_WAIT: Duration = Duration::from_secs(2);
/// `utilrand.String`'s alphabet (no vowels, no confusable characters).
const RAND_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The plugin.
pub struct ServiceAccount;

#[async_trait::async_trait]
impl Plugin for ServiceAccount {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(pod) = obj else { return Ok(()) };
        if !ctx.is_pod_create() {
            return Ok(());
        }
        // Upstream validates mirror pods already here, before the pod strategy's validation.
        if super::is_mirror_pod(pod) {
            return validate_mirror_pod(pod).map_err(|why| ctx.forbidden(why));
        }
        let spec = &mut pod["spec"];
        let name = match spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()) {
            Some(n) => n.to_string(),
            None => {
                spec["serviceAccountName"] = json!(DEFAULT_SERVICE_ACCOUNT);
                DEFAULT_SERVICE_ACCOUNT.to_string()
            }
        };
        let sa = lookup(ctx, &name).await?;
        let automount = spec["automountServiceAccountToken"].as_bool().or_else(|| sa["automountServiceAccountToken"].as_bool()).unwrap_or(true);
        if automount {
            mount_api_access(spec);
        }
        let pod_pull_secrets = spec["imagePullSecrets"].as_array().is_some_and(|a| !a.is_empty());
        if let Some(secrets) = sa["imagePullSecrets"].as_array().filter(|a| !a.is_empty() && !pod_pull_secrets) {
            spec["imagePullSecrets"] = Value::Array(secrets.iter().map(|s| json!({"name": s["name"]})).collect());
        }
        Ok(())
    }

    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        match obj {
            Some(pod) if ctx.is_pod_create() && super::is_mirror_pod(pod) => validate_mirror_pod(pod).map_err(|why| ctx.forbidden(why)),
            _ => Ok(()),
        }
    }
}

/// What a mirror pod may not reference: it runs on its node without the API's credentials.
fn validate_mirror_pod(pod: &Value) -> Result<(), &'static str> {
    let spec = &pod["spec"];
    if spec["serviceAccountName"].as_str().is_some_and(|s| !s.is_empty()) {
        return Err("a mirror pod may not reference service accounts");
    }
    if super::references_secrets(spec) {
        return Err("a mirror pod may not reference secrets");
    }
    if super::projects(spec, "serviceAccountToken") {
        return Err("a mirror pod may not use ServiceAccountToken volume projections");
    }
    Ok(())
}

async fn lookup(ctx: &Context<'_>, name: &str) -> Result<Value, ApiError> {
    let ns = ctx.namespace();
    let deadline = tokio::time::Instant::now() + SERVICE_ACCOUNT_WAIT;
    loop {
        if let Some(sa) = ctx.get("", "v1", "serviceaccounts", Some(ns), name).await? {
            return Ok(sa);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ctx.forbidden(&format!("error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds the projected volume and a read-only mount in every container that has none at
/// [`MOUNT_PATH`]; a pod that mounts something there already is left alone.
fn mount_api_access(spec: &mut Value) {
    let mounted = |c: &Value| c["volumeMounts"].as_array().is_some_and(|m| m.iter().any(|m| m["mountPath"] == MOUNT_PATH));
    let mut containers: Vec<&mut Value> = super::all_containers_mut(spec).collect();
    if containers.iter().all(|c| mounted(c)) {
        return;
    }
    let volume_name = format!("kube-api-access-{}", random_suffix());
    for c in containers.iter_mut().filter(|c| !mounted(c)) {
        let mount = json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT_PATH});
        match c["volumeMounts"].as_array_mut() {
            Some(a) => a.push(mount),
            None => c["volumeMounts"] = json!([mount]),
        }
    }
    let volume = json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    });
    match spec["volumes"].as_array_mut() {
        Some(a) => a.push(volume),
        None => spec["volumes"] = json!([volume]),
    }
}

fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5).map(|_| char::from(RAND_ALPHABET[rng.random_range(0..RAND_ALPHABET.len())])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_the_projected_volume_read_only() {
        let mut spec = json!({"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]});
        mount_api_access(&mut spec);
        let volume = spec["volumes"][0]["name"].as_str().unwrap_or_default().to_string();
        assert!(volume.starts_with("kube-api-access-") && volume.len() == "kube-api-access-".len() + 5);
        for c in ["containers", "initContainers"] {
            assert_eq!(spec[c][0]["volumeMounts"][0], json!({"name": volume, "readOnly": true, "mountPath": MOUNT_PATH}));
        }
    }

    #[test]
    fn mirror_pods_may_not_reference_credentials() {
        let mirror = |spec: Value| json!({"metadata": {"annotations": {MIRROR: "h"}}, "spec": spec});
        assert_eq!(validate_mirror_pod(&mirror(json!({"containers": [{"name": "a"}]}))), Ok(()));
        assert_eq!(validate_mirror_pod(&mirror(json!({"serviceAccountName": "x"}))), Err("a mirror pod may not reference service accounts"));
        assert_eq!(
            validate_mirror_pod(&mirror(json!({"containers": [{"env": [{"name": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}))),
            Err("a mirror pod may not reference secrets")
        );
        assert_eq!(validate_mirror_pod(&mirror(json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}))), Err("a mirror pod may not reference secrets"));
        assert_eq!(
            validate_mirror_pod(&mirror(json!({"volumes": [{"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}]}))),
            Err("a mirror pod may not use ServiceAccountToken volume projections")
        );
    }

    const MIRROR: &str = super::super::MIRROR_POD_ANNOTATION;

    #[test]
    fn a_pod_mounting_the_path_itself_gets_no_volume() {
        let mut spec = json!({"containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": MOUNT_PATH}]}]});
        mount_api_access(&mut spec);
        assert!(spec["volumes"].is_null());
    }
}
