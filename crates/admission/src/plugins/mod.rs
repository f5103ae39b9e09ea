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
