//! Pruning and defaulting of custom objects by their structural schema (apiextensions-apiserver
//! `pkg/apiserver/schema/pruning/algorithm.go` and `pkg/apiserver/schema/defaulting/algorithm.go`,
//! `prunenulls.go`).
//!
//! Pruning drops every field the schema does not specify, except below
//! `x-kubernetes-preserve-unknown-fields: true`, and always keeps `apiVersion`, `kind` and
//! `metadata` at the root and of embedded resources. The dropped paths are returned so the
//! handler can honour `fieldValidation` (Strict rejects, Warn warns) with upstream's
//! `unknown field "spec.foo"`.
//!
//! Defaulting fills absent properties from `default:` (then defaults inside the filled value),
//! replaces a `null` of a non-nullable property by its default, and drops a `null` of a
//! non-nullable property without default.

use serde_json::{Map, Value};

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn preserves_unknown(s: &Map<String, Value>) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Prunes a whole custom object in place; returns the dropped field paths, sorted.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    prune_value(schema, obj, "", true, &mut dropped);
    dropped.sort();
    dropped
}

fn prune_value(
    schema: &Value,
    value: &mut Value,
    path: &str,
    is_resource: bool,
    dropped: &mut Vec<String>,
) {
    let Some(s) = schema.as_object() else { return };
    match value {
        Value::Object(fields) => {
            let props = s.get("properties").and_then(Value::as_object);
            let additional = s.get("additionalProperties");
            let embedded = is_resource
                || s.get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
            let keys: Vec<String> = fields.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = child(path, &k);
                if let Some(prop) = props.and_then(|m| m.get(&k)) {
                    if let Some(v) = fields.get_mut(&k) {
                        prune_value(prop, v, &p, false, dropped);
                    }
                } else if let Some(add) = additional.filter(|a| a.is_object()) {
                    if let Some(v) = fields.get_mut(&k) {
                        prune_value(add, v, &p, false, dropped);
                    }
                } else if !preserves_unknown(s) && additional.and_then(Value::as_bool) != Some(true)
                {
                    fields.shift_remove(&k);
                    dropped.push(p);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &format!("{path}[{i}]"), false, dropped);
                }
            }
        }
        _ => {}
    }
}

/// Applies schema defaults to a whole custom object in place.
pub fn default(schema: &Value, obj: &mut Value) {
    default_value(schema, obj);
}

fn default_value(schema: &Value, value: &mut Value) {
    let Some(s) = schema.as_object() else { return };
    match value {
        Value::Object(fields) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, prop) in props {
                    let nullable = prop.get("nullable").and_then(Value::as_bool) == Some(true);
                    let dflt = prop.get("default").filter(|d| !d.is_null());
                    match (fields.get(k), dflt) {
                        (None, Some(d)) => {
                            fields.insert(k.clone(), d.clone());
                        }
                        (Some(Value::Null), Some(d)) if !nullable => {
                            fields.insert(k.clone(), d.clone());
                        }
                        (Some(Value::Null), None) if !nullable => {
                            fields.shift_remove(k);
                        }
                        _ => {}
                    }
                    if let Some(v) = fields.get_mut(k) {
                        default_value(prop, v);
                    }
                }
            }
            if let Some(add) = s.get("additionalProperties").filter(|a| a.is_object()) {
                let known = s.get("properties").and_then(Value::as_object);
                for (k, v) in fields.iter_mut() {
                    if known.is_none_or(|p| !p.contains_key(k)) {
                        default_value(add, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items") {
                for item in items.iter_mut() {
                    default_value(item_schema, item);
                }
            }
        }
        _ => {}
    }
}
