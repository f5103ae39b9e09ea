//! ConfigMap, Secret, Namespace and PersistentVolumeClaim validation (upstream
//! `ValidateConfigMap`, `ValidateSecret`, their `*Update` forms, `ValidateNamespace` and the
//! common parts of `ValidatePersistentVolumeClaim` in `pkg/apis/core/validation/validation.go`).

use base64::Engine;
use rkube_apimachinery::FieldError;
use serde_json::{Map, Value};

use crate::names;
use crate::util::{Errs, arr, key, obj, semantic_eq, st};

/// `MaxSecretSize` (1 MiB), also the ConfigMap limit.
const MAX_SECRET_SIZE: usize = 1024 * 1024;

fn config_keys(errs: &mut Errs, data: Option<&Map<String, Value>>, path: &str) {
    for k in data.map(|m| m.keys().collect::<Vec<_>>()).unwrap_or_default() {
        for msg in names::is_config_map_key(k) {
            errs.push(FieldError::invalid(key(path, k), k.as_str(), msg));
        }
    }
}

/// `ValidateConfigMap` (without metadata).
pub(crate) fn validate_config_map(errs: &mut Errs, cm: &Value) {
    let data = obj(cm, "data");
    let binary = obj(cm, "binaryData");
    config_keys(errs, data, "data");
    let mut total = 0usize;
    for (k, v) in data.into_iter().flatten() {
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(key("data", k), k.as_str(), "duplicate of key present in binaryData"));
        }
        total += v.as_str().map(str::len).unwrap_or(0);
    }
    config_keys(errs, binary, "binaryData");
    for v in binary.into_iter().flat_map(|b| b.values()) {
        total += decoded_len(v);
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
}

fn decoded_len(v: &Value) -> usize {
    let s = v.as_str().unwrap_or("");
    base64::engine::general_purpose::STANDARD.decode(s).map(|b| b.len()).unwrap_or(s.len())
}

/// The keys of `data` merged with `stringData` (the v1→internal conversion folds stringData into
/// data before validation upstream).
fn secret_keys(secret: &Value) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for (k, v) in obj(secret, "data").into_iter().flatten() {
        out.push((k.clone(), decoded_len(v)));
    }
    for (k, v) in obj(secret, "stringData").into_iter().flatten() {
        let len = v.as_str().map(str::len).unwrap_or(0);
        match out.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = len,
            None => out.push((k.clone(), len)),
        }
    }
    out
}

fn secret_value(secret: &Value, k: &str) -> Option<Vec<u8>> {
    if let Some(s) = obj(secret, "stringData").and_then(|m| m.get(k)).and_then(Value::as_str) {
        return Some(s.as_bytes().to_vec());
    }
    let s = obj(secret, "data").and_then(|m| m.get(k)).and_then(Value::as_str)?;
    Some(base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default())
}

/// `ValidateSecret` (without metadata).
pub(crate) fn validate_secret(errs: &mut Errs, secret: &Value) {
    let keys = secret_keys(secret);
    let mut total = 0usize;
    for (k, len) in &keys {
        for msg in names::is_config_map_key(k) {
            errs.push(FieldError::invalid(key("data", k), k.as_str(), msg));
        }
        total += len;
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| keys.iter().any(|(ek, _)| ek == k);
    let json_ok = |k: &str| {
        secret_value(secret, k).is_some_and(|b| serde_json::from_slice::<Map<String, Value>>(&b).is_ok())
    };
    match st(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let sa = obj(secret, "metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if sa.is_empty() {
                errs.push(FieldError::required("metadata.annotations[kubernetes.io/service-account.name]", ""));
            }
        }
        "kubernetes.io/dockercfg" => {
            if !has(".dockercfg") {
                errs.push(FieldError::required("data[.dockercfg]", ""));
            } else if !json_ok(".dockercfg") {
                errs.push(FieldError::invalid("data[.dockercfg]", "<secret contents redacted>", "invalid character in JSON"));
            }
        }
        "kubernetes.io/dockerconfigjson" => {
            if !has(".dockerconfigjson") {
                errs.push(FieldError::required("data[.dockerconfigjson]", ""));
            } else if !json_ok(".dockerconfigjson") {
                errs.push(FieldError::invalid(
                    "data[.dockerconfigjson]",
                    "<secret contents redacted>",
                    "invalid character in JSON",
                ));
            }
        }
        "kubernetes.io/basic-auth"
            if !has("username") && !has("password") => {
                errs.push(FieldError::required("data[username]", ""));
                errs.push(FieldError::required("data[password]", ""));
            }
        "kubernetes.io/ssh-auth"
            if secret_value(secret, "ssh-privatekey").is_none_or(|v| v.is_empty()) => {
                errs.push(FieldError::required("data[ssh-privatekey]", ""));
            }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(FieldError::required("data[tls.crt]", ""));
            }
            if !has("tls.key") {
                errs.push(FieldError::required("data[tls.key]", ""));
            }
        }
        _ => {}
    }
}

fn is_immutable(v: &Value) -> bool {
    v.get("immutable").and_then(Value::as_bool) == Some(true)
}

/// The `immutable: true` rules of `ValidateConfigMapUpdate` / `ValidateSecretUpdate`.
pub(crate) fn validate_immutable_data(errs: &mut Errs, new: &Value, old: &Value, fields: &[&str]) {
    if !is_immutable(old) {
        return;
    }
    if !is_immutable(new) {
        errs.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
    }
    for f in fields {
        let n = new.get(*f).cloned().unwrap_or(Value::Null);
        let o = old.get(*f).cloned().unwrap_or(Value::Null);
        if !semantic_eq(&n, &o) {
            errs.push(FieldError::forbidden(*f, "field is immutable when `immutable` is set"));
        }
    }
}

/// `ValidateSecretUpdate` (without metadata).
pub(crate) fn validate_secret_update(errs: &mut Errs, new: &Value, old: &Value) {
    let (nt, ot) = (st(new, "type"), st(old, "type"));
    if nt != ot {
        errs.push(FieldError::invalid("type", nt, names::FIELD_IMMUTABLE));
    }
    validate_immutable_data(errs, new, old, &["data"]);
    validate_secret(errs, new);
}

/// `ValidateNamespace` spec part: finalizer names.
pub(crate) fn validate_namespace(errs: &mut Errs, ns: &Value) {
    let empty = Value::Object(Map::new());
    let spec = ns.get("spec").unwrap_or(&empty);
    for (i, f) in arr(spec, "finalizers").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        let p = format!("spec.finalizers[{i}]");
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(p.clone(), f, msg));
        }
        if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(FieldError::invalid(p, f, "name is neither a standard finalizer name nor is it fully qualified"));
        }
    }
}

/// The common `ValidatePersistentVolumeClaimSpec` checks: access modes and a positive storage request.
pub(crate) fn validate_pvc(errs: &mut Errs, pvc: &Value) {
    let empty = Value::Object(Map::new());
    let spec = pvc.get("spec").unwrap_or(&empty);
    let modes = arr(spec, "accessModes");
    if modes.is_empty() {
        errs.push(FieldError::required("spec.accessModes", "at least 1 access mode is required"));
    }
    let supported = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"];
    for m in modes {
        let m = m.as_str().unwrap_or("");
        if !supported.contains(&m) {
            errs.push(FieldError::not_supported("spec.accessModes", m, &supported));
        }
    }
    let storage = obj(spec, "resources").and_then(|r| r.get("requests")).and_then(|r| r.get("storage"));
    match storage {
        None => errs.push(FieldError::required("spec.resources[storage]", "")),
        Some(q) => match crate::core::quantity::parse_value(q) {
            Some(v) if v > 0.0 => {}
            Some(_) => errs.push(FieldError::invalid(
                "spec.resources[storage]",
                crate::core::quantity::text(q),
                "must be greater than zero",
            )),
            None => errs.push(FieldError::invalid("spec.resources[storage]", q.clone(), crate::core::quantity::FORMAT_ERROR)),
        },
    }
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str)
        && !matches!(mode, "Block" | "Filesystem") {
            errs.push(FieldError::not_supported("spec.volumeMode", mode, &["Block", "Filesystem"]));
        }
}
