//! What happens to an object on its way into storage, per resource: the generic parts of
//! upstream's `rest.BeforeCreate`/`BeforeUpdate` (apiserver `pkg/registry/rest/{create,update}.go`)
//! and the per-kind `PrepareForCreate`/`PrepareForUpdate` captured in [`crate::policy`].

use rkube_apimachinery::{ApiError, FieldError, ResourceInfo, meta};
use serde_json::{Map, Value};

use crate::policy::{GenerationRule, policy};

/// Resets what a client may not set on create: identity, timestamps, generation, status.
pub fn prepare_for_create(res: &ResourceInfo, obj: &mut Value) {
    let p = policy(&res.group, &res.plural);
    if let Some(m) = meta::metadata_mut(obj) {
        m.insert("uid".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        m.insert("creationTimestamp".into(), Value::String(meta::now_rfc3339()));
        m.shift_remove("resourceVersion");
        m.shift_remove("deletionTimestamp");
        m.shift_remove("deletionGracePeriodSeconds");
        m.shift_remove("selfLink");
        // Untracked kinds keep whatever generation the client sent, as upstream's BeforeCreate.
        if p.tracks_generation {
            m.insert("generation".into(), Value::from(1));
        }
    }
    if let (Some(status), Some(o)) = (p.status_on_create, obj.as_object_mut()) {
        let v: Value = serde_json::from_str(status).unwrap_or_else(|_| Value::Object(Map::new()));
        o.insert("status".into(), v);
    }
    kind_specific_create(res, obj);
}

/// Per-kind create tweaks that are not plain data (upstream strategies' `PrepareForCreate`).
fn kind_specific_create(res: &ResourceInfo, obj: &mut Value) {
    match (res.group.as_str(), res.plural.as_str()) {
        ("", "namespaces") => {
            // Namespace strategy: the `kubernetes` finalizer holds deletion until content is gone.
            if let Some(spec) = obj.as_object_mut().map(|o| o.entry("spec").or_insert_with(|| Value::Object(Map::new()))) {
                if let Some(s) = spec.as_object_mut() {
                    let fins = s.entry("finalizers").or_insert_with(|| Value::Array(vec![]));
                    if let Some(a) = fins.as_array_mut() {
                        if !a.iter().any(|f| f == "kubernetes") {
                            a.push(Value::String("kubernetes".into()));
                        }
                    }
                }
            }
            // Namespace strategy also labels every namespace with its own name.
            let name = meta::name(obj).to_string();
            if let Some(m) = meta::metadata_mut(obj) {
                let labels = m.entry("labels").or_insert_with(|| Value::Object(Map::new()));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
                }
            }
        }
        ("batch", "jobs") => {
            // The Job strategy labels the template with the job's uid and selects on it
            // (pkg/registry/batch/job/strategy.go generateSelector); needs the uid set above.
            rkube_validation::generate_job_selector(obj);
        }
        ("", "pods") => {
            let qos = pod_qos_class(obj);
            if let Some(st) = obj.get_mut("status").and_then(Value::as_object_mut) {
                st.insert("qosClass".into(), Value::String(qos.into()));
            }
        }
        _ => {}
    }
}

/// Upstream `qos.GetPodQOS` (pkg/apis/core/helper/qos): Guaranteed when every container has equal
/// cpu and memory requests and limits, BestEffort when none has any, Burstable otherwise.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let spec = &pod["spec"];
    let mut any = false;
    let mut guaranteed = true;
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let req = &c["resources"]["requests"];
            let lim = &c["resources"]["limits"];
            for r in ["cpu", "memory"] {
                let (q, l) = (&req[r], &lim[r]);
                if !q.is_null() || !l.is_null() {
                    any = true;
                }
                // Requests default to limits, so a missing request with a limit still counts as equal.
                let effective_req = if q.is_null() { l } else { q };
                if l.is_null() || effective_req != l {
                    guaranteed = false;
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Carries over what a client may not change on update and applies the status/spec split.
/// `status_only` is true for a write to the `status` subresource.
pub fn prepare_for_update(res: &ResourceInfo, new: &mut Value, old: &Value, status_only: bool) {
    let p = policy(&res.group, &res.plural);
    if status_only {
        *new = status_update(res, new, old);
        return;
    }
    // Immutable system metadata (apiserver `rest.BeforeUpdate` / `FillObjectMetaSystemFields`).
    let old_meta = meta::metadata(old).cloned().unwrap_or_default();
    if let Some(m) = meta::metadata_mut(new) {
        for k in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace"] {
            match old_meta.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.shift_remove(k),
            };
        }
        m.shift_remove("selfLink");
    }
    if p.update_keeps_status {
        if let Some(o) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => o.insert("status".into(), s.clone()),
                None => o.shift_remove("status"),
            };
        }
    }
    let bump = match crate::policy::generation_rule(&res.group, &res.plural) {
        GenerationRule::Untracked | GenerationRule::CreateOnly => false,
        GenerationRule::SpecChange => spec_changed(new, old),
        GenerationRule::SpecOrAnnotations => spec_changed(new, old) || meta_field(new, "annotations") != meta_field(old, "annotations"),
        GenerationRule::SpecOrLabels => spec_changed(new, old) || meta_field(new, "labels") != meta_field(old, "labels"),
    };
    if bump {
        let g = old_meta.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
        meta::set_meta(new, "generation", Value::from(g));
    }
}

fn meta_field<'a>(obj: &'a Value, k: &str) -> Option<&'a Value> {
    meta::metadata(obj).and_then(|m| m.get(k))
}

/// What a PUT to `/status` stores: the request's object with what the resource's status strategy
/// protects copied from the stored object (see [`crate::policy::status_update_rule`]).
fn status_update(res: &ResourceInfo, new: &Value, old: &Value) -> Value {
    let rule = crate::policy::status_update_rule(&res.group, &res.plural);
    let keep_top: &[&str] = rule.map_or(&["spec"], |r| r.keep_from_stored);
    let keep_meta: &[&str] = rule.map_or(&[], |r| r.keep_metadata);
    let mut out = new.clone();
    let Some(o) = out.as_object_mut() else { return old.clone() };
    for k in keep_top {
        match old.get(*k) {
            Some(v) => o.insert((*k).to_string(), v.clone()),
            None => o.shift_remove(*k),
        };
    }
    let request_rv = meta::meta_str(new, "resourceVersion").map(str::to_string);
    let old_meta = meta::metadata(old).cloned().unwrap_or_default();
    if keep_meta == ["*"] {
        o.insert("metadata".into(), Value::Object(old_meta.clone()));
    }
    if let Some(m) = meta::metadata_mut(&mut out) {
        let protected = ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"];
        for k in protected.iter().chain(keep_meta.iter()).filter(|k| **k != "*") {
            match old_meta.get(*k) {
                Some(v) => m.insert((*k).to_string(), v.clone()),
                None => m.shift_remove(*k),
            };
        }
        // The request's resourceVersion precondition still applies.
        match request_rv {
            Some(rv) => m.insert("resourceVersion".into(), Value::String(rv)),
            None => m.shift_remove("resourceVersion"),
        };
    }
    out
}

/// Whether anything outside metadata and status differs.
fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.shift_remove(k);
        }
        m
    };
    strip(new) != strip(old)
}

/// Reads a field label's value from an object as upstream's `GetAttrs` renders it.
pub fn field_label_value(res: &ResourceInfo, obj: &Value, label: &str) -> Option<String> {
    crate::policy::field_label_value(&res.group, &res.plural, obj, label)
}

/// The namespace/name consistency rules every request obeys (apiserver `rest.BeforeCreate`,
/// `handlers/create.go`): a namespaced object takes the request's namespace, and a body naming a
/// different one is rejected.
pub fn reconcile_namespace(res: &ResourceInfo, obj: &mut Value, request_ns: Option<&str>) -> Result<(), ApiError> {
    if res.namespaced() {
        let ns = request_ns.unwrap_or("");
        let body_ns = meta::namespace(obj).to_string();
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta::set_meta(obj, "namespace", Value::String(ns.to_string()));
    } else {
        meta::remove_meta(obj, "namespace");
    }
    Ok(())
}

/// `name or generateName is required` and generateName expansion.
pub fn resolve_name(res: &ResourceInfo, obj: &mut Value) -> Result<String, ApiError> {
    let name = meta::name(obj).to_string();
    if !name.is_empty() {
        return Ok(name);
    }
    let base = meta::meta_str(obj, "generateName").unwrap_or("").to_string();
    if base.is_empty() {
        return Err(ApiError::invalid(
            &res.group,
            &res.kind,
            "",
            &[FieldError::required("metadata.name", "name or generateName is required")],
        ));
    }
    let generated = meta::generate_name(&base);
    meta::set_meta(obj, "name", Value::String(generated.clone()));
    Ok(generated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn qos_classes() {
        assert_eq!(pod_qos_class(&json!({"spec":{"containers":[{"name":"a"}]}})), "BestEffort");
        let g = json!({"spec":{"containers":[{"resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]}});
        assert_eq!(pod_qos_class(&g), "Guaranteed");
        let b = json!({"spec":{"containers":[{"resources":{"requests":{"cpu":"1"}}}]}});
        assert_eq!(pod_qos_class(&b), "Burstable");
    }

    #[test]
    fn spec_change_detection_ignores_metadata_and_status() {
        let a = json!({"metadata":{"labels":{"a":"b"}},"spec":{"replicas":1},"status":{"x":1}});
        let b = json!({"metadata":{},"spec":{"replicas":1},"status":{"x":2}});
        assert!(!spec_changed(&a, &b));
        let c = json!({"spec":{"replicas":2}});
        assert!(spec_changed(&a, &c));
    }
}
