//! NodeRestriction: a kubelet (`system:node:<name>` in `system:nodes`) may only write its own
//! Node (without touching its taints or labels outside the kubelet's set), its own Lease and
//! CSINode, mirror pods bound to it, and the status of pods bound to it (upstream
//! `plugin/pkg/admission/noderestriction/admission.go`, messages as there).
//!
//! Token requests must be bound to a pod on the node, evictions must name one of its pods.

use std::collections::BTreeSet;

use rkube_apimachinery::ApiError;
use rkube_registry::admission::Operation;
use serde_json::{Map, Value};

use crate::context::{Context, Plugin};

const NODE_PREFIX: &str = "system:node:";
const NODES_GROUP: &str = "system:nodes";
use super::MIRROR_POD_ANNOTATION;
/// Labels under this namespace steer workloads and are for administrators only.
const NODE_RESTRICTION_LABEL_NAMESPACE: &str = "node-restriction.kubernetes.io";
/// Labels a kubelet sets about itself (upstream `kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The plugin.
pub struct NodeRestriction;

#[async_trait::async_trait]
impl Plugin for NodeRestriction {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(node) = node_identity(ctx) else { return Ok(()) };
        if node.is_empty() {
            return Err(ctx.forbidden(&format!("could not determine node from user {:?}", ctx.user.name)));
        }
        let new = obj.as_deref();
        let res = ctx.req.resource;
        match (res.group.as_str(), res.plural.as_str()) {
            ("", "pods") => match ctx.req.subresource {
                "" => admit_pod(ctx, node, new).await,
                "status" => admit_pod_status(ctx, node, new),
                "eviction" => admit_pod_eviction(ctx, node, new).await,
                other => Err(ctx.forbidden(&format!("unexpected pod subresource {other:?}, only 'status' and 'eviction' are allowed"))),
            },
            ("", "nodes") => admit_node(ctx, node, new),
            ("", "persistentvolumeclaims") => match ctx.req.subresource {
                "status" => admit_pvc_status(ctx, node, new),
                _ => Err(ctx.forbidden("may only update PVC status")),
            },
            ("", "serviceaccounts") if ctx.req.operation == Operation::Create && ctx.req.subresource == "token" => {
                admit_token_request(ctx, node, new.unwrap_or(&Value::Null)).await
            }
            ("coordination.k8s.io", "leases") => {
                if ctx.namespace() != "kube-node-lease" {
                    return Err(ctx.forbidden("can only access leases in the \"kube-node-lease\" system namespace"));
                }
                own_name(ctx, node, new, "can only access node lease with the same name as the requesting node")
            }
            ("storage.k8s.io", "csinodes") => own_name(ctx, node, new, "can only access CSINode with the same name as the requesting node"),
            _ => Ok(()),
        }
    }
}

/// The node a user acts for: `None` for non-nodes, `Some("")` when the name is missing.
fn node_identity<'c>(ctx: &'c Context<'_>) -> Option<&'c str> {
    let name = ctx.user.name.strip_prefix(NODE_PREFIX)?;
    ctx.user.in_group(NODES_GROUP).then_some(name)
}

fn name_of(obj: Option<&Value>) -> &str {
    obj.and_then(|o| o["metadata"]["name"].as_str()).unwrap_or("")
}

/// The object's name (from the object on create, where the request may not name it).
fn own_name(ctx: &Context<'_>, node: &str, new: Option<&Value>, why: &str) -> Result<(), ApiError> {
    let name = if ctx.req.operation == Operation::Create { name_of(new) } else { ctx.req.name };
    if name != node {
        return Err(ctx.forbidden(why));
    }
    Ok(())
}

fn bound_node(pod: Option<&Value>) -> &str {
    pod.and_then(|p| p["spec"]["nodeName"].as_str()).unwrap_or("")
}

async fn admit_pod(ctx: &Context<'_>, node: &str, new: Option<&Value>) -> Result<(), ApiError> {
    match ctx.req.operation {
        Operation::Create => admit_pod_create(ctx, node, new.unwrap_or(&Value::Null)).await,
        Operation::Delete => {
            if bound_node(ctx.req.old) != node {
                return Err(ctx.forbidden(&format!("node {node:?} can only delete pods with spec.nodeName set to itself")));
            }
            Ok(())
        }
        op => Err(ctx.forbidden(&format!("unexpected operation {:?}, node {node:?} can only create and delete mirror pods", op.as_str()))),
    }
}

async fn admit_pod_create(ctx: &Context<'_>, node: &str, pod: &Value) -> Result<(), ApiError> {
    let deny = |why: String| Err(ctx.forbidden(&why));
    if pod["metadata"]["annotations"].get(MIRROR_POD_ANNOTATION).is_none() {
        return deny(format!("pod does not have {MIRROR_POD_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"));
    }
    if bound_node(Some(pod)) != node {
        return deny(format!("node {node:?} can only create pods with spec.nodeName set to itself"));
    }
    let owners = pod["metadata"]["ownerReferences"].as_array().map(Vec::as_slice).unwrap_or_default();
    match owners {
        [] => return deny(format!("node {node:?} can only create pods with an owner reference set to itself")),
        [owner] => {
            if owner["apiVersion"] != "v1" || owner["kind"] != "Node" || owner["name"] != node {
                return deny(format!("node {node:?} can only create pods with an owner reference set to itself"));
            }
            if owner["controller"] != Value::Bool(true) {
                return deny(format!("node {node:?} can only create pods with a controller owner reference set to itself"));
            }
            if owner["blockOwnerDeletion"] == Value::Bool(true) {
                return deny(format!("node {node:?} must not set blockOwnerDeletion on an owner reference"));
            }
            let Some(registered) = ctx.get("", "v1", "nodes", None, node).await? else {
                return Err(ApiError::not_found("", "nodes", node));
            };
            let (owner_uid, node_uid) = (owner["uid"].as_str().unwrap_or_default(), registered["metadata"]["uid"].as_str().unwrap_or_default());
            if owner_uid != node_uid {
                // Upstream's wording, arguments in its order.
                return deny(format!("node {node} UID mismatch: expected {owner_uid} got {node_uid}"));
            }
        }
        _ => return deny(format!("node {node:?} can only create pods with a single owner reference set to itself")),
    }
    let spec = &pod["spec"];
    if spec["serviceAccountName"].as_str().is_some_and(|s| !s.is_empty()) {
        return deny(format!("node {node:?} can not create pods that reference a service account"));
    }
    let volumes = spec["volumes"].as_array().map(Vec::as_slice).unwrap_or_default();
    let volume_has = |kind: &str| volumes.iter().any(|v| v.get(kind).is_some_and(|r| !r.is_null()));
    if super::references_secrets(spec) {
        return deny(format!("node {node:?} can not create pods that reference secrets"));
    }
    if super::env_references(spec, "configMapRef", "configMapKeyRef") || volume_has("configMap") || super::projects(spec, "configMap") {
        return deny(format!("node {node:?} can not create pods that reference configmaps"));
    }
    if super::projects(spec, "clusterTrustBundle") {
        return deny(format!("node {node:?} can not create pods that reference clustertrustbundles"));
    }
    if volume_has("persistentVolumeClaim") {
        return deny(format!("node {node:?} can not create pods that reference persistentvolumeclaims"));
    }
    Ok(())
}

/// The pod an eviction names must be bound to this node.
async fn admit_pod_eviction(ctx: &Context<'_>, node: &str, eviction: Option<&Value>) -> Result<(), ApiError> {
    if ctx.req.operation != Operation::Create {
        return Err(ctx.forbidden(&format!("unexpected operation {}", ctx.req.operation.as_str())));
    }
    let pod_name = if ctx.req.name.is_empty() { name_of(eviction) } else { ctx.req.name };
    if pod_name.is_empty() {
        return Err(ctx.forbidden("could not determine pod from request data"));
    }
    let pod = ctx.get("", "v1", "pods", Some(ctx.namespace()), pod_name).await?;
    let Some(pod) = pod else { return Err(ApiError::not_found("", "pods", pod_name)) };
    if bound_node(Some(&pod)) != node {
        return Err(ctx.forbidden(&format!("node {node} can only evict pods with spec.nodeName set to itself")));
    }
    Ok(())
}

/// Tokens a node requests must be bound to a pod scheduled on it (the token then carries the
/// pod and node binding).
async fn admit_token_request(ctx: &Context<'_>, node: &str, request: &Value) -> Result<(), ApiError> {
    let bound = &request["spec"]["boundObjectRef"];
    let pod_name = bound["name"].as_str().unwrap_or_default();
    if bound["apiVersion"] != "v1" || bound["kind"] != "Pod" || pod_name.is_empty() {
        return Err(ctx.forbidden("node requested token not bound to a pod"));
    }
    let uid = bound["uid"].as_str().unwrap_or_default();
    if uid.is_empty() {
        return Err(ctx.forbidden("node requested token with a pod binding without a uid"));
    }
    let Some(pod) = ctx.get("", "v1", "pods", Some(ctx.namespace()), pod_name).await? else {
        return Err(ApiError::not_found("", "pods", pod_name));
    };
    if pod["metadata"]["uid"].as_str() != Some(uid) {
        return Err(ctx.forbidden(&format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    if bound_node(Some(&pod)) != node {
        return Err(ctx.forbidden("node requested token bound to a pod scheduled on a different node"));
    }
    Ok(())
}

fn admit_pod_status(ctx: &Context<'_>, node: &str, new: Option<&Value>) -> Result<(), ApiError> {
    if ctx.req.operation != Operation::Update {
        return Err(ctx.forbidden(&format!("unexpected operation {:?}", ctx.req.operation.as_str())));
    }
    let old = ctx.req.old;
    if bound_node(old) != node {
        return Err(ctx.forbidden(&format!("node {node:?} can only update pod status for pods with spec.nodeName set to itself")));
    }
    let labels = |p: Option<&Value>| p.and_then(|p| p["metadata"]["labels"].as_object().cloned()).unwrap_or_default();
    if labels(old) != labels(new) {
        return Err(ctx.forbidden(&format!("node {node:?} cannot update labels through pod status")));
    }
    let claims = |p: Option<&Value>| p.map(|p| p["status"]["resourceClaimStatuses"].clone()).filter(|v| !v.is_null()).unwrap_or(Value::Array(vec![]));
    if claims(old) != claims(new) {
        return Err(ctx.forbidden(&format!("node {node:?} cannot update resource claim statues")));
    }
    Ok(())
}

fn admit_pvc_status(ctx: &Context<'_>, node: &str, new: Option<&Value>) -> Result<(), ApiError> {
    if ctx.req.operation != Operation::Update {
        return Err(ctx.forbidden(&format!("unexpected operation {:?}", ctx.req.operation.as_str())));
    }
    // Only status.capacity, status.conditions and the allocated resources may change.
    let comparable = |pvc: Option<&Value>| {
        let mut v = pvc.cloned().unwrap_or(Value::Null);
        if let Some(meta) = v["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        if let Some(status) = v["status"].as_object_mut() {
            for f in ["capacity", "conditions", "allocatedResourceStatuses", "allocatedResources"] {
                status.remove(f);
            }
        }
        v
    };
    if comparable(ctx.req.old) != comparable(new) {
        return Err(ctx.forbidden(&format!("node {node:?} is not allowed to update fields other than status.capacity and status.conditions")));
    }
    Ok(())
}

fn admit_node(ctx: &Context<'_>, node: &str, new: Option<&Value>) -> Result<(), ApiError> {
    let requested = if ctx.req.operation == Operation::Create && ctx.req.name.is_empty() { name_of(new) } else { ctx.req.name };
    if requested != node {
        return Err(ctx.forbidden(&format!("node {node:?} is not allowed to modify node {requested:?}")));
    }
    let labels = |n: Option<&Value>| n.and_then(|n| n["metadata"]["labels"].as_object().cloned()).unwrap_or_default();
    match ctx.req.operation {
        Operation::Create => {
            if new.is_some_and(|n| n["spec"].get("configSource").is_some_and(|c| !c.is_null())) {
                return Err(ctx.forbidden(&format!("node {node:?} is not allowed to create pods with a non-nil configSource")));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(new), &Map::new()));
            if !forbidden.is_empty() {
                return Err(ctx.forbidden(&format!("node {node:?} is not allowed to set the following labels: {}", join(&forbidden))));
            }
        }
        Operation::Update => {
            let old = ctx.req.old;
            let config_source = |n: Option<&Value>| n.map(|n| n["spec"]["configSource"].clone()).unwrap_or(Value::Null);
            if !config_source(new).is_null() && config_source(new) != config_source(old) {
                return Err(ctx.forbidden(&format!("node {node:?} is not allowed to update configSource to a new non-nil configSource")));
            }
            let taints = |n: Option<&Value>| n.map(|n| n["spec"]["taints"].clone()).filter(|t| t.as_array().is_some_and(|a| !a.is_empty())).unwrap_or(Value::Null);
            if taints(new) != taints(old) {
                return Err(ctx.forbidden(&format!("node {node:?} is not allowed to modify taints")));
            }
            let forbidden = forbidden_labels(&modified_labels(&labels(new), &labels(old)));
            if !forbidden.is_empty() {
                // Upstream's message names no node here.
                return Err(ctx.forbidden(&format!("is not allowed to modify labels: {}", join(&forbidden))));
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(labels: &BTreeSet<String>) -> String {
    labels.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Keys added, removed or changed between `a` and `b`.
fn modified_labels(a: &Map<String, Value>, b: &Map<String, Value>) -> BTreeSet<String> {
    let changed = |x: &Map<String, Value>, y: &Map<String, Value>| x.iter().filter(|(k, v)| y.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect::<Vec<_>>();
    changed(a, b).into_iter().chain(changed(b, a)).collect()
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.strip_suffix(domain).is_some_and(|rest| rest.ends_with('.'))
}

fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key) || KUBELET_LABEL_NAMESPACES.iter().any(|ns| in_namespace(label_namespace(key), ns))
}

/// The labels a node may not add, remove or change (upstream `getForbiddenLabels`).
fn forbidden_labels(modified: &BTreeSet<String>) -> BTreeSet<String> {
    modified
        .iter()
        .filter(|key| {
            let ns = label_namespace(key);
            let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
            in_namespace(ns, NODE_RESTRICTION_LABEL_NAMESPACE) || (kubernetes && !is_kubelet_label(key))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelets_may_touch_their_own_labels_only() {
        let set = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
        let modified = set(&[
            "kubernetes.io/hostname",
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "topology.kubernetes.io/zone",
            "team",
            "example.com/x",
            "node-role.kubernetes.io/control-plane",
            "node-restriction.kubernetes.io/pool",
            "foo.k8s.io/bar",
        ]);
        assert_eq!(
            forbidden_labels(&modified),
            set(&["foo.k8s.io/bar", "node-restriction.kubernetes.io/pool", "node-role.kubernetes.io/control-plane"])
        );
    }
}
