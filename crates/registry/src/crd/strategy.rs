//! What happens to custom objects and to CRDs on their way into storage
//! (apiextensions-apiserver `pkg/registry/customresource/strategy.go`, `status_strategy.go`,
//! `pkg/registry/customresourcedefinition/strategy.go`).

use rkube_apimachinery::{FieldError, meta};
use rkube_validation::NameRule;
use serde_json::{Map, Value, json};

use super::{CustomResource, CustomVersion, schema, structural};

/// Prunes unknown fields and applies schema defaults (decode and write paths).
pub fn prune_and_default(version: &CustomVersion, obj: &mut Value) -> Vec<String> {
    let Some(s) = version.schema.as_deref() else {
        return Vec::new();
    };
    let dropped = structural::prune(s, obj);
    structural::default(s, obj);
    dropped
}

/// The fields a request body carries that the schema does not know (for `fieldValidation`).
pub fn unknown_fields(version: &CustomVersion, obj: &Value) -> Vec<String> {
    let Some(s) = version.schema.as_deref() else {
        return Vec::new();
    };
    let mut copy = obj.clone();
    structural::prune(s, &mut copy)
}

/// `PrepareForCreate`: generation 1; with a status subresource the status is dropped.
pub fn prepare_create(version: &CustomVersion, obj: &mut Value) {
    if version.status
        && let Some(o) = obj.as_object_mut()
    {
        o.shift_remove("status");
    }
    prune_and_default(version, obj);
    meta::set_meta(obj, "generation", json!(1));
}

/// `PrepareForUpdate` of the main resource: with a status subresource the stored status is kept;
/// the generation moves when anything but metadata (and status, with the subresource) changed.
pub fn prepare_update(version: &CustomVersion, new: &mut Value, old: &Value) {
    if version.status
        && let Some(o) = new.as_object_mut()
    {
        match old.get("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.shift_remove("status"),
        };
    }
    prune_and_default(version, new);
    let strip = |v: &Value| -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.shift_remove("metadata");
        if version.status {
            m.shift_remove("status");
        }
        m
    };
    let generation = meta::metadata(old)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let next = if strip(new) != strip(old) {
        generation + 1
    } else {
        generation
    };
    meta::set_meta(new, "generation", json!(next));
}

/// `statusStrategy.PrepareForUpdate`: the stored object with the request's status (metadata
/// changes sent to `/status` are ignored, except the resourceVersion precondition).
pub fn prepare_status_update(version: &CustomVersion, new: &Value, old: &Value) -> Value {
    let mut out = old.clone();
    if let Some(o) = out.as_object_mut() {
        match new.get("status") {
            Some(s) => o.insert("status".into(), s.clone()),
            None => o.shift_remove("status"),
        };
    }
    match meta::meta_str(new, "resourceVersion") {
        Some(rv) => meta::set_meta(&mut out, "resourceVersion", Value::String(rv.to_string())),
        None => {
            meta::remove_meta(&mut out, "resourceVersion");
        }
    }
    prune_and_default(version, &mut out);
    out
}

/// Metadata and schema validation of a custom object.
pub fn validate(
    cr: &CustomResource,
    version: &CustomVersion,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut errs = match old {
        None => {
            rkube_validation::meta::validate_object_meta_with(obj, NameRule::DnsSubdomain, false)
        }
        Some(old) => rkube_validation::meta::validate_object_meta_update_with(obj, old, false),
    };
    if cr.scope == rkube_apimachinery::Scope::Namespaced && meta::namespace(obj).is_empty() {
        errs.push(FieldError::required("metadata.namespace", ""));
    }
    if let Some(s) = version.schema.as_deref() {
        errs.extend(schema::validate(s, obj));
    }
    errs
}

// ---- the CRD object itself -----------------------------------------------------------------

fn storage_version_name(crd: &Value) -> Option<String> {
    crd["spec"]["versions"]
        .as_array()?
        .iter()
        .find(|v| v["storage"].as_bool() == Some(true))
        .and_then(|v| v["name"].as_str())
        .map(str::to_string)
}

/// The CRD strategy's create/update addition: the storage version is recorded in
/// `status.storedVersions`.
pub fn record_stored_version(crd: &mut Value) {
    let Some(version) = storage_version_name(crd) else {
        return;
    };
    let Some(o) = crd.as_object_mut() else { return };
    let status = o.entry("status").or_insert_with(|| json!({}));
    let Some(st) = status.as_object_mut() else {
        return;
    };
    let stored = st.entry("storedVersions").or_insert_with(|| json!([]));
    if !stored.is_array() {
        *stored = json!([]);
    }
    if let Some(list) = stored.as_array_mut()
        && !list.iter().any(|v| v.as_str() == Some(version.as_str()))
    {
        list.push(Value::String(version));
    }
}

/// Sets (or replaces) a condition of a CRD's status, keeping `lastTransitionTime` when the status
/// did not change (apiextensions `SetCRDCondition`).
pub fn set_condition(crd: &mut Value, ctype: &str, status: &str, reason: &str, message: &str) {
    let Some(o) = crd.as_object_mut() else { return };
    let st = o.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else { return };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    if !conds.is_array() {
        *conds = json!([]);
    }
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    let now = meta::now_rfc3339();
    match list.iter_mut().find(|c| c["type"] == ctype) {
        Some(c) => {
            let time = if c["status"] == status { c["lastTransitionTime"].clone() } else { Value::String(now) };
            *c = json!({"type": ctype, "status": status, "lastTransitionTime": time, "reason": reason, "message": message});
        }
        None => list.push(json!({"type": ctype, "status": status, "lastTransitionTime": now, "reason": reason, "message": message})),
    }
}

/// Whether a CRD condition is `True`.
pub fn condition_true(crd: &Value, ctype: &str) -> bool {
    crd["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ctype && c["status"] == "True")
}
