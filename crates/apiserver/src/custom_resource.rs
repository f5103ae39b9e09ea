//! Request handling that only custom resources have (apiextensions-apiserver
//! `pkg/apiserver/customresource_handler.go`): `fieldValidation` against the structural schema
//! (unknown fields are rejected with Strict, reported as warnings with Warn), the patch types
//! CRs accept, the `scale` subresource, and deprecation warnings.

use axum::response::Response;
use http::HeaderValue;
use rkube_apimachinery::{ApiError, ResourceInfo, meta};
use rkube_registry::Registry;
use rkube_registry::crd::{CustomResource, CustomVersion, ScalePaths, jsonpath, strategy};
use serde_json::{Value, json};

use crate::handler::Query;
use crate::patch::{self, PatchType};

/// `fieldValidation` query parameter (apiserver `handlers/rest.go` fieldValidation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (the server's default).
    Warn,
    /// Reject the request (kubectl's default).
    Strict,
}

impl FieldValidation {
    /// From the query; absent means Warn, as upstream.
    pub fn parse(q: &Query) -> Result<Self, ApiError> {
        match q.get("fieldValidation") {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got: {other}"
            ))),
        }
    }
}

/// The unknown-field check of a create/update body: an error for Strict, warnings for Warn.
pub fn check_body(
    version: &CustomVersion,
    res: &ResourceInfo,
    obj: &Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = strategy::unknown_fields(version, obj);
    check_unknown(unknown, mode, |joined| {
        format!(
            "{} in version {:?} cannot be handled as a {}: strict decoding error: {joined}",
            res.kind, res.version, res.kind
        )
    })
}

/// The same for a patched object (upstream reports the strict error without the decode prefix).
pub fn check_patched(
    version: &CustomVersion,
    obj: &Value,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let unknown = strategy::unknown_fields(version, obj);
    check_unknown(unknown, mode, |joined| {
        format!("strict decoding error: {joined}")
    })
}

fn check_unknown(
    unknown: Vec<String>,
    mode: FieldValidation,
    message: impl Fn(&str) -> String,
) -> Result<Vec<String>, ApiError> {
    let texts: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(texts),
        FieldValidation::Strict if texts.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(ApiError::bad_request(message(&texts.join(", ")))),
    }
}

/// Warnings of a served version marked deprecated (upstream's default text when none is given).
pub fn deprecation_warnings(cr: &CustomResource, version: &CustomVersion) -> Vec<String> {
    if !version.deprecated {
        return Vec::new();
    }
    vec![
        version
            .deprecation_warning
            .clone()
            .unwrap_or_else(|| format!("{}/{} {} is deprecated", cr.group, version.name, cr.kind)),
    ]
}

/// Adds `Warning: 299 - "<text>"` headers (RFC 7234 warn-code 299, as upstream's warning recorder).
pub fn add_warnings(resp: &mut Response, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append("Warning", v);
        }
    }
}

/// The patch types custom resources accept: no strategic merge patch, which needs Go types.
pub fn check_patch_type(pt: PatchType, content_type: &str) -> Result<(), ApiError> {
    if pt == PatchType::Strategic {
        let _ = content_type;
        return Err(ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
            details: None,
        });
    }
    Ok(())
}

/// The autoscaling/v1 Scale of a custom object (apiextensions `scaleFromCustomResource`).
fn scale_of(obj: &Value, paths: &ScalePaths) -> Value {
    let int_at = |p: &str| {
        jsonpath::find_first(obj, p)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut metadata = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta::metadata(obj).and_then(|m| m.get(k)) {
            metadata.insert(k.into(), v.clone());
        }
    }
    let mut spec = serde_json::Map::new();
    let replicas = int_at(&paths.spec_replicas);
    if replicas != 0 {
        spec.insert("replicas".into(), json!(replicas));
    }
    let mut status = serde_json::Map::new();
    status.insert("replicas".into(), json!(int_at(&paths.status_replicas)));
    if let Some(sel) = paths
        .label_selector
        .as_deref()
        .and_then(|p| jsonpath::find_first(obj, p))
        .and_then(Value::as_str)
    {
        status.insert("selector".into(), json!(sel));
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": metadata, "spec": spec, "status": status})
}

/// GET `.../scale`.
pub async fn get_scale(
    reg: &Registry,
    res: &ResourceInfo,
    paths: &ScalePaths,
    ns: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let obj = reg.get(res, ns, name, "").await?;
    Ok(scale_of(&obj, paths))
}

/// How a scale write describes the new Scale.
pub enum ScaleChange<'a> {
    /// PUT with a whole Scale.
    Replace(Value),
    /// PATCH of the current Scale.
    Patch(PatchType, &'a Value),
}

/// PUT or PATCH `.../scale`: the new `spec.replicas` goes to `specReplicasPath`.
pub async fn write_scale(
    reg: &Registry,
    res: &ResourceInfo,
    paths: &ScalePaths,
    ns: Option<&str>,
    name: &str,
    change: ScaleChange<'_>,
    dry: bool,
) -> Result<Value, ApiError> {
    let updated = reg
        .modify(res, ns, name, false, dry, |old| {
            let current = scale_of(old, paths);
            let wanted = match &change {
                ScaleChange::Replace(v) => v.clone(),
                ScaleChange::Patch(PatchType::Json, doc) => {
                    let mut s = current.clone();
                    patch::json_patch(&mut s, doc)?;
                    s
                }
                ScaleChange::Patch(_, doc) => {
                    let mut s = current.clone();
                    patch::merge_patch(&mut s, doc);
                    s
                }
            };
            if let Some(rv) = meta::meta_str(&wanted, "resourceVersion")
                .filter(|rv| Some(*rv) != meta::meta_str(old, "resourceVersion"))
                && !rv.is_empty()
            {
                return Err(ApiError::stale_conflict(&res.group, &res.plural, name));
            }
            let replicas = wanted["spec"]["replicas"].as_i64().unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    &[rkube_apimachinery::FieldError::invalid(
                        "spec.replicas",
                        replicas,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let mut new = old.clone();
            jsonpath::set(&mut new, &paths.spec_replicas, json!(replicas))
                .map_err(|e| ApiError::internal(e.0))?;
            meta::remove_meta(&mut new, "resourceVersion");
            Ok(new)
        })
        .await?;
    Ok(scale_of(&updated, paths))
}
