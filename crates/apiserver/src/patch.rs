//! PATCH bodies: JSON merge patch (RFC 7386), JSON patch (RFC 6902, via `json-patch`), and
//! strategic merge patch with the merge keys of the built-in types
//! (apimachinery `pkg/util/strategicpatch/patch.go`).
//!
//! The strategic merge here knows merge keys by field name (the keys upstream's Go struct tags
//! declare for the fields users patch); schema-driven keys from OpenAPI come with the kubectl
//! compatibility issue.

use rkube_apimachinery::ApiError;
use serde_json::{Map, Value};

/// The patch types upstream accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`
    Apply,
}

impl PatchType {
    /// From a Content-Type.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// The error upstream returns for an unsupported patch Content-Type.
pub fn unsupported(ct: &str) -> ApiError {
    ApiError {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {ct:?}"),
        details: None,
    }
}

/// `old` with a merge, JSON or strategic patch applied (apply patches are handled by field
/// management, not here). The result carries a `resourceVersion` only when the patch set one
/// itself, which then acts as a precondition.
pub fn patched(old: &Value, pt: PatchType, doc: &Value) -> Result<Value, ApiError> {
    if pt == PatchType::Json {
        let mut with_rv = old.clone();
        json_patch(&mut with_rv, doc)?;
        if rkube_apimachinery::meta::meta_str(&with_rv, "resourceVersion") == rkube_apimachinery::meta::meta_str(old, "resourceVersion") {
            rkube_apimachinery::meta::remove_meta(&mut with_rv, "resourceVersion");
        }
        return Ok(with_rv);
    }
    let mut new = old.clone();
    rkube_apimachinery::meta::remove_meta(&mut new, "resourceVersion");
    match pt {
        PatchType::Merge => merge_patch(&mut new, doc),
        _ => strategic_merge(&mut new, doc)?,
    }
    Ok(new)
}

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.shift_remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("the server rejected our request due to an error in our request: {e}")))?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError { code: 422, reason: "Invalid", message: format!("the server rejected our request due to an error in our request: {e}"), details: None }
    })
}

/// Merge key of a list field, by field name and the shape of its elements.
fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    let has = |k: &str| sample.and_then(|s| s.get(k)).is_some();
    Some(match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" | "resourceClaims"
        | "containerStatuses" | "initContainerStatuses" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" if has("containerPort") => "containerPort",
        "ports" => "port",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "addresses" => "type",
        "podIPs" | "hostIPs" => "ip",
        _ => return None,
    })
}

/// Primitive lists upstream merges (patchStrategy "merge" on a list of strings).
fn merges_primitive_list(field: &str) -> bool {
    matches!(field, "finalizers")
}

/// Applies a strategic merge patch.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let Value::Object(p) = patch else {
        return Err(ApiError::bad_request("strategic merge patch must be a JSON object"));
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    // `$patch: replace` on a map replaces it entirely; `$patch: delete` removes it.
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut clean = p.clone();
            clean.shift_remove("$patch");
            *target = Value::Object(clean);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        _ => {}
    }
    let Some(t) = target.as_object_mut() else { return Ok(()) };
    let retain: Option<Vec<String>> = p
        .get("$retainKeys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect());
    for (k, v) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(del), Some(Value::Array(cur))) = (v.as_array(), t.get_mut(field)) {
                cur.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            t.shift_remove(k);
            continue;
        }
        match (t.get_mut(k), v) {
            (Some(cur @ Value::Object(_)), Value::Object(_)) => {
                strategic_merge(cur, v)?;
                if cur.is_null() {
                    t.shift_remove(k);
                }
            }
            (Some(Value::Array(cur)), Value::Array(items)) => {
                let key = merge_key(k, items.iter().chain(cur.iter()).find(|x| x.is_object()));
                if let Some(key) = key {
                    merge_list(cur, items, key)?;
                } else if merges_primitive_list(k) {
                    for it in items {
                        if !cur.contains(it) {
                            cur.push(it.clone());
                        }
                    }
                } else {
                    *cur = strip_directives(items);
                }
            }
            _ => {
                let fresh = if v.is_object() {
                    let mut fresh = Value::Object(Map::new());
                    strategic_merge(&mut fresh, v)?;
                    fresh
                } else if let Value::Array(items) = v {
                    // A list the object did not have is taken as patched, without the nulls its
                    // items carry (upstream's `IgnoreUnmatchedNulls`).
                    Value::Array(strip_directives(items).into_iter().map(discard_nulls).collect())
                } else {
                    v.clone()
                };
                t.insert(k.clone(), fresh);
            }
        }
    }
    if let Some(keep) = retain {
        t.retain(|k, _| keep.iter().any(|x| x == k));
    }
    Ok(())
}

/// `value` without null map entries, at any depth (upstream's `discardNullValuesFromPatch`).
fn discard_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, discard_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(discard_nulls).collect()),
        other => other,
    }
}

fn strip_directives(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .filter(|it| it.get("$patch").and_then(Value::as_str) != Some("delete"))
        .map(|it| {
            let mut c = it.clone();
            if let Some(o) = c.as_object_mut() {
                o.shift_remove("$patch");
            }
            c
        })
        .collect()
}

fn merge_list(cur: &mut Vec<Value>, items: &[Value], key: &str) -> Result<(), ApiError> {
    if items.len() == 1 && items[0].get("$patch").and_then(Value::as_str) == Some("replace") {
        cur.clear();
        return Ok(());
    }
    for it in items {
        let Some(kv) = it.get(key).cloned() else {
            return Err(ApiError::bad_request(format!("map: {it} does not contain declared merge key: {key}")));
        };
        let pos = cur.iter().position(|c| c.get(key) == Some(&kv));
        if it.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                cur.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut cur[i], it)?,
            None => {
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, it)?;
                cur.push(fresh);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_new_list_loses_the_nulls_of_its_items() {
        let mut t = json!({"status": {"phase": "Pending"}});
        let patch = json!({"status": {"containerStatuses": [
            {"name": "web", "state": {"running": {"startedAt": "now"}, "waiting": null, "terminated": null}}
        ]}});
        strategic_merge(&mut t, &patch).expect("patched");
        assert_eq!(
            t["status"]["containerStatuses"],
            json!([{"name": "web", "state": {"running": {"startedAt": "now"}}}])
        );
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let mut t = json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut t, &json!({"a": null, "b": {"c": 5}}));
        assert_eq!(t, json!({"b": {"c": 5, "d": 3}}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let p = json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "b", "image": "z"}]}});
        strategic_merge(&mut t, &p).unwrap();
        assert_eq!(t["spec"]["containers"][1]["image"], "z");
        assert_eq!(t["spec"]["containers"][0]["image"], "x");
    }

    #[test]
    fn strategic_delete_directive() {
        let mut t = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        strategic_merge(&mut t, &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})).unwrap();
        assert_eq!(t["spec"]["containers"], json!([{"name": "b"}]));
    }

    #[test]
    fn json_patch_replace() {
        let mut t = json!({"spec": {"replicas": 1}});
        json_patch(&mut t, &json!([{"op": "replace", "path": "/spec/replicas", "value": 3}])).unwrap();
        assert_eq!(t["spec"]["replicas"], 3);
        assert_eq!(json_patch(&mut t, &json!([{"op": "test", "path": "/spec/replicas", "value": 9}])).unwrap_err().code, 422);
    }
}
