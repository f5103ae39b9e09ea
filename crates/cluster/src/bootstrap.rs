//! Objects every cluster has (apiserver `pkg/controlplane/controller/...`): the system namespaces,
//! the `kubernetes` Service in `default`, and the default RBAC policy
//! (pkg/registry/rbac/rest/storage_rbac.go `PostStartHook`: reconciled at every start).

use std::sync::Arc;

use rkube_apimachinery::ApiError;
use rkube_registry::Registry;
use serde_json::{Value, json};

/// Namespaces created at start.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

pub(crate) async fn ensure(registry: &Registry, group: &str, version: &str, plural: &str, ns: Option<&str>, obj: Value) -> Result<(), ApiError> {
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
    // The built-in PriorityClasses (upstream `pkg/apis/scheduling/types.go` SystemPriorityClasses).
    for (name, value, description) in [
        ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ] {
        let pc = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
            "preemptionPolicy": "PreemptLowerPriority",
        });
        ensure(registry, "scheduling.k8s.io", "v1", "priorityclasses", None, pc).await?;
    }
    ensure_rbac_policy(registry).await?;
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

/// Creates the default roles and bindings that are missing and adds what upstream's newer
/// defaults grant to existing ones (unless annotated `autoupdate: "false"`), then lets the
/// aggregated roles (admin, edit, view) collect their rules before the server is ready.
async fn ensure_rbac_policy(registry: &Arc<Registry>) -> Result<(), ApiError> {
    let objects = rkube_auth::bootstrap_policy::default_objects().map_err(ApiError::internal)?;
    for d in objects {
        let res = registry
            .lookup("rbac.authorization.k8s.io", "v1", d.plural)
            .ok_or_else(|| ApiError::internal(format!("resource {} is not served", d.plural)))?;
        let ns = d.namespace.as_deref();
        let name = d.object["metadata"]["name"].as_str().unwrap_or("").to_string();
        match registry.get(&res, ns, &name, "").await {
            Ok(existing) => {
                if rkube_auth::bootstrap_policy::reconcile(&existing, &d.object).is_some() {
                    let expected = d.object.clone();
                    registry
                        .modify(&res, ns, &name, false, false, move |old| {
                            let mut new = rkube_auth::bootstrap_policy::reconcile(old, &expected).unwrap_or_else(|| old.clone());
                            rkube_apimachinery::meta::remove_meta(&mut new, "resourceVersion");
                            Ok(new)
                        })
                        .await?;
                    tracing::info!(kind = d.plural, %name, "reconciled default RBAC object");
                }
            }
            Err(e) if e.code == 404 => match registry.create(&res, ns, d.object, false).await {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    for _ in 0..8 {
        if !rkube_auth::aggregation::reconcile_once(registry).await? {
            break;
        }
    }
    Ok(())
}
