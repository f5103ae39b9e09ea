//! OpenAPI v3 discovery (`/openapi/v3` and `/openapi/v3/<gv>?hash=`), as kubectl reads it
//! (apiserver `pkg/endpoints/openapi`, kube-openapi `handler3`): the root index names every
//! group-version with a content hash; each document lists the resource paths with their
//! operations, `x-kubernetes-group-version-kind` and query parameters. kubectl uses this to learn
//! that the server does field validation (kubectl `resource/query_param_verifier_v3.go`).
//!
//! Component schemas (for `kubectl explain` and strategic merge metadata) come with the kubectl
//! compatibility work; documents are built once at start and served from memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use rkube_apimachinery::ResourceInfo;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

/// Pre-rendered documents.
pub struct OpenApiV3 {
    /// `/openapi/v2` (Swagger 2.0, JSON): the same paths in one document.
    pub v2: Vec<u8>,
    /// The root index body.
    pub root: Vec<u8>,
    /// Path (without the `/openapi/v3/` prefix, e.g. `apis/apps/v1`) → (hash, body).
    pub docs: BTreeMap<String, (String, Vec<u8>)>,
}

fn param(name: &str, description: &str, ty: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": ty, "uniqueItems": true}})
}

fn gvk_ext(r: &ResourceInfo) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn operation(r: &ResourceInfo, verb: &str, action: &str, params: Vec<Value>) -> Value {
    let op_id = format!("{verb}{}{}", r.kind, if r.namespaced() { "Namespaced" } else { "" });
    json!({
        "description": format!("{verb} the specified {}", r.kind),
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk_ext(r),
    })
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "When present, indicates that modifications should not be persisted.", "string"),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes.", "string"),
        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict", "string"),
    ]
}

fn gv_paths(resources: &[&Arc<ResourceInfo>], base: &str) -> Map<String, Value> {
    let mut paths = Map::new();
    for r in resources {
        let coll = if r.namespaced() { format!("{base}/namespaces/{{namespace}}/{}", r.plural) } else { format!("{base}/{}", r.plural) };
        let item = format!("{coll}/{{name}}");
        let mut coll_ops = Map::new();
        if r.allows("list") {
            coll_ops.insert("get".into(), operation(r, "list", "list", vec![]));
        }
        if r.allows("create") {
            coll_ops.insert("post".into(), operation(r, "create", "post", write_params()));
        }
        if r.allows("deletecollection") {
            coll_ops.insert("delete".into(), operation(r, "deletecollection", "deletecollection", vec![]));
        }
        if !coll_ops.is_empty() {
            paths.insert(coll, Value::Object(coll_ops));
        }
        let mut item_ops = Map::new();
        if r.allows("get") {
            item_ops.insert("get".into(), operation(r, "read", "get", vec![]));
        }
        if r.allows("update") {
            item_ops.insert("put".into(), operation(r, "replace", "put", write_params()));
        }
        if r.allows("patch") {
            let mut p = write_params();
            p.push(param("force", "Force is going to \"force\" Apply requests.", "boolean"));
            item_ops.insert("patch".into(), operation(r, "patch", "patch", p));
        }
        if r.allows("delete") {
            item_ops.insert("delete".into(), operation(r, "delete", "delete", vec![]));
        }
        if !item_ops.is_empty() {
            paths.insert(item, Value::Object(item_ops));
        }
    }
    paths
}

impl OpenApiV3 {
    /// Builds every document from the resource table.
    pub fn build(resources: &[Arc<ResourceInfo>], version: &str) -> Self {
        let mut by_gv: BTreeMap<String, Vec<&Arc<ResourceInfo>>> = BTreeMap::new();
        for r in resources {
            let key = if r.group.is_empty() { format!("api/{}", r.version) } else { format!("apis/{}/{}", r.group, r.version) };
            by_gv.entry(key).or_default().push(r);
        }
        let mut docs = BTreeMap::new();
        let mut index = Map::new();
        let mut all_paths = Map::new();
        for (key, rs) in by_gv {
            let paths = gv_paths(&rs, &format!("/{key}"));
            all_paths.extend(paths.clone());
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": version},
                "paths": Value::Object(paths),
                "components": {"schemas": {}},
            });
            let body = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = hex::encode_upper(Sha512::digest(&body));
            index.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}));
            docs.insert(key, (hash, body));
        }
        let root = serde_json::to_vec(&json!({"paths": Value::Object(index)})).unwrap_or_default();
        // Swagger 2.0 puts parameter types at the top level instead of under `schema`.
        let mut v2_paths = Value::Object(all_paths);
        for item in v2_paths.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
            for op in item.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                    if let Some(schema) = p.as_object_mut().and_then(|o| o.shift_remove("schema")) {
                        if let (Some(o), Some(ty)) = (p.as_object_mut(), schema.get("type")) {
                            o.insert("type".into(), ty.clone());
                            o.insert("uniqueItems".into(), Value::Bool(true));
                        }
                    }
                }
            }
        }
        let v2 = serde_json::to_vec(&json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": version},
            "paths": v2_paths,
            "definitions": {},
        }))
        .unwrap_or_default();
        Self { v2, root, docs }
    }
}
