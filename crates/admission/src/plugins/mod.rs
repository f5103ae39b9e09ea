//! Built-in admission plugins, one per module.

pub mod certificate_subject_restriction;
pub mod default_storage_class;
pub mod default_tolerations;
pub mod limit_ranger;
pub mod node_restriction;
pub mod pod_security;
pub mod priority;
pub mod resource_quota;
pub mod service_account;
pub mod storage_protection;

use serde_json::Value;

/// Marks a mirror pod: the API's view of a node's static pod (`kubernetes.io/config.mirror`).
pub(crate) const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Whether a pod object is a mirror pod.
pub(crate) fn is_mirror_pod(pod: &Value) -> bool {
    pod["metadata"]["annotations"].get(MIRROR_POD_ANNOTATION).is_some()
}

/// Whether a pod spec names any Secret (upstream `podutil.VisitPodSecretNames` over all
/// containers): pull secrets, env and envFrom, secret and projected volumes, and the secret
/// references of volume plugins.
pub(crate) fn references_secrets(spec: &Value) -> bool {
    let volumes = spec["volumes"].as_array().map(Vec::as_slice).unwrap_or_default();
    let volume_has = |kind: &str| volumes.iter().any(|v| v.get(kind).is_some_and(|r| !r.is_null()));
    let secret_plugins = ["cephfs", "cinder", "flexVolume", "iscsi", "rbd", "scaleIO", "storageos"];
    spec["imagePullSecrets"].as_array().is_some_and(|a| !a.is_empty())
        || env_references(spec, "secretRef", "secretKeyRef")
        || volume_has("secret")
        || volume_has("azureFile")
        || projects(spec, "secret")
        || volumes.iter().any(|v| v["csi"]["nodePublishSecretRef"].is_object() || secret_plugins.iter().any(|p| v[*p]["secretRef"].is_object()))
}

/// Whether any container's `envFrom` has `from_key` or any `env[].valueFrom` has `key_ref`.
pub(crate) fn env_references(spec: &Value, from_key: &str, key_ref: &str) -> bool {
    ["initContainers", "containers", "ephemeralContainers"].into_iter().flat_map(|k| spec[k].as_array().into_iter().flatten()).any(|c| {
        c["envFrom"].as_array().into_iter().flatten().any(|f| f.get(from_key).is_some_and(|r| !r.is_null()))
            || c["env"].as_array().into_iter().flatten().any(|e| e["valueFrom"].get(key_ref).is_some_and(|r| !r.is_null()))
    })
}

/// Whether a projected volume of the spec has a source of `kind`.
pub(crate) fn projects(spec: &Value, kind: &str) -> bool {
    let volumes = spec["volumes"].as_array().map(Vec::as_slice).unwrap_or_default();
    volumes.iter().any(|v| v["projected"]["sources"].as_array().into_iter().flatten().any(|s| s.get(kind).is_some_and(|r| !r.is_null())))
}

/// Every container of a pod spec: init containers, containers, ephemeral containers.
pub(crate) fn all_containers_mut(spec: &mut Value) -> impl Iterator<Item = &mut Value> {
    let mut out = Vec::new();
    if let Some(s) = spec.as_object_mut() {
        for (k, v) in s.iter_mut() {
            if matches!(k.as_str(), "initContainers" | "containers" | "ephemeralContainers")
                && let Some(a) = v.as_array_mut()
            {
                out.extend(a.iter_mut());
            }
        }
    }
    out.into_iter()
}

/// Containers and init containers (what resource rules look at).
pub(crate) fn regular_containers(spec: &Value) -> impl Iterator<Item = (&'static str, &Value)> {
    let init = spec["initContainers"].as_array().into_iter().flatten().map(|c| ("initContainers", c));
    let main = spec["containers"].as_array().into_iter().flatten().map(|c| ("containers", c));
    init.chain(main)
}
