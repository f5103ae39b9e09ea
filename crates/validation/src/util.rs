//! Small helpers over the JSON wire form: field paths (upstream `field.Path`), typed getters, and
//! the "unset" notion Go's zero values give (`""`, `0`, `nil`).

use rkube_apimachinery::FieldError;
use serde_json::{Map, Value};

/// A list of field errors (upstream `field.ErrorList`).
pub(crate) type Errs = Vec<FieldError>;

/// `fldPath.Child(name)`: `a.b`, or `b` at the root.
pub(crate) fn child(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// `fldPath.Index(i)`: `a[3]`.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `fldPath.Key(k)`: `a[k]` (upstream prints keys unquoted).
pub(crate) fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// The object map at `v[k]`, if it is one.
pub(crate) fn obj<'a>(v: &'a Value, k: &str) -> Option<&'a Map<String, Value>> {
    v.get(k).and_then(Value::as_object)
}

/// The array at `v[k]`, or an empty slice.
pub(crate) fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The string at `v[k]`, or `""` (Go's zero value).
pub(crate) fn st<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The string at `v[k]` when present and not null (a Go `*string`).
pub(crate) fn opt_st<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// The integer at `v[k]` when present (a Go `*int32` / `*int64`).
pub(crate) fn opt_int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(|x| x.as_i64().or_else(|| x.as_f64().map(|f| f as i64)))
}

/// The integer at `v[k]`, or 0.
pub(crate) fn int(v: &Value, k: &str) -> i64 {
    opt_int(v, k).unwrap_or(0)
}


/// True when `v[k]` is absent or null (a nil pointer / empty map in Go).
pub(crate) fn is_unset(v: &Value, k: &str) -> bool {
    matches!(v.get(k), None | Some(Value::Null))
}

/// True when `v[k]` is absent, null, or an empty string (Go `x == ""`).
pub(crate) fn is_empty_str(v: &Value, k: &str) -> bool {
    match v.get(k) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// The string→string map at `v[k]` as ordered pairs (labels, annotations, selectors).
pub(crate) fn string_map<'a>(v: &'a Value, k: &str) -> Vec<(&'a str, &'a str)> {
    obj(v, k).map(|m| m.iter().map(|(a, b)| (a.as_str(), b.as_str().unwrap_or(""))).collect()).unwrap_or_default()
}

/// `v[k]` as a mutable object, created (or replacing null) when missing.
pub(crate) fn ensure_obj<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let slot = m.entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Sets `v[k] = val` when `v[k]` is absent, null, or `""` (Go's "if x == \"\"" defaulting).
pub(crate) fn default_str(v: &mut Value, k: &str, val: &str) {
    if is_empty_str(v, k)
        && let Some(m) = v.as_object_mut() {
            m.insert(k.to_string(), Value::String(val.to_string()));
        }
}

/// Sets `v[k] = val` when `v[k]` is absent or null (Go's "if x == nil" defaulting).
pub(crate) fn default_val(v: &mut Value, k: &str, val: Value) {
    if is_unset(v, k)
        && let Some(m) = v.as_object_mut() {
            m.insert(k.to_string(), val);
        }
}

/// Sets an integer field when it is absent, null or 0 (Go's "if x == 0" defaulting).
pub(crate) fn default_nonzero(v: &mut Value, k: &str, val: i64) {
    if opt_int(v, k).unwrap_or(0) == 0
        && let Some(m) = v.as_object_mut() {
            m.insert(k.to_string(), Value::from(val));
        }
}

/// Mutable iteration over the objects of the array at `v[k]`.
pub(crate) fn each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(k).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter(|i| i.is_object()) {
            f(item);
        }
    }
}

/// Runs `f` on `v[k]` when it is an object.
pub(crate) fn with_obj(v: &mut Value, k: &str, f: impl FnOnce(&mut Value)) {
    if let Some(inner) = v.get_mut(k).filter(|x| x.is_object()) {
        f(inner);
    }
}

/// `ValidateNonnegativeField` (apimachinery `api/validation/generic.go`).
pub(crate) fn nonnegative(errs: &mut Errs, value: i64, path: &str) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, crate::names::IS_NEGATIVE_ERROR_MSG));
    }
}

/// `ValidateImmutableField`: `field is immutable` with the new value.
pub(crate) fn immutable(errs: &mut Errs, new: Option<&Value>, old: Option<&Value>, path: &str) {
    let norm = |v: Option<&Value>| match v {
        None | Some(Value::Null) => Value::Null,
        Some(x) => x.clone(),
    };
    let (n, o) = (norm(new), norm(old));
    if !semantic_eq(&n, &o) {
        errs.push(FieldError::invalid(path, n, crate::names::FIELD_IMMUTABLE));
    }
}

/// Equality that treats absent, null, empty maps and empty lists alike, as Go's
/// `apiequality.Semantic.DeepEqual` does for nil vs empty after decoding.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    fn empty(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| {
                let (l, r) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                semantic_eq(l, r)
            })
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(l, r)| semantic_eq(l, r)),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (l, r) if empty(l) && empty(r) => true,
        (l, r) => l == r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_render_like_field_path() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(index(&child("spec", "containers"), 0), "spec.containers[0]");
        assert_eq!(key("metadata.annotations", "a/b"), "metadata.annotations[a/b]");
    }

    #[test]
    fn semantic_equality_ignores_nil_vs_empty() {
        assert!(semantic_eq(&json!({"a": {}, "b": 1}), &json!({"b": 1})));
        assert!(semantic_eq(&json!({"a": [], "b": null}), &json!({})));
        assert!(!semantic_eq(&json!({"a": 1}), &json!({"a": 2})));
    }
}
