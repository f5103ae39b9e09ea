//! Objects every cluster has (apiserver `pkg/controlplane/controller/...`): the system namespaces
//! and the `kubernetes` Service in `default`.

use std::sync::Arc;

use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use serde_json::{Value, json};

/// Namespaces created at start.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure(registry: &Registry, group: &str, version: &str, plural: &str, ns: Option<&str>, obj: Value) -> Result<(), ApiError> {
    let res = registry
        .lookup(group, version, plural)
        .ok_or_else(|| ApiError::internal(format!("resource {plural} is not served")))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    // Look first: creating an existing object would also re-run allocation checks (Services).
    if registry.get(&res, ns, &name, "").await.is_ok() {
        return Ok(());
    }
    match registry.create(&res, ns, obj, false).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates what is missing; existing objects are left as they are.
pub async fn ensure_bootstrap_objects(registry: &Arc<Registry>, kubernetes_service_ip: &str, secure_port: u16) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        ensure(registry, "", "v1", "namespaces", None, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})).await?;
    }
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": kubernetes_service_ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}],
            "sessionAffinity": "None",
        },
    });
    ensure(registry, "", "v1", "services", Some("default"), svc).await?;
    for obj in crate::bootstrap_data::flowcontrol_objects() {
        let plural = if obj["kind"] == "FlowSchema" { "flowschemas" } else { "prioritylevelconfigurations" };
        ensure(registry, "flowcontrol.apiserver.k8s.io", "v1", plural, None, obj).await?;
    }
    // One local APIService per served group-version, as the aggregator's autoregistration does.
    let mut seen = std::collections::BTreeSet::new();
    for r in registry.resources() {
        if seen.insert((r.group.clone(), r.version.clone())) {
            let api = crate::bootstrap_data::apiservice_for(&r.group, &r.version);
            if !api.is_null() {
                ensure(registry, "apiregistration.k8s.io", "v1", "apiservices", None, api).await?;
            }
        }
    }
    Ok(())
}
