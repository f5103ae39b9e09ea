//! The documents served: `/openapi/v2` (JSON and gnostic protobuf, each with its ETag) and
//! `/openapi/v3` (a root index naming each group-version document with the SHA-512 of its body,
//! kube-openapi `handler3`). Built on first request, not at start, and rebuilt only when the
//! served resources or the custom definitions change.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use rkube_apimachinery::ResourceInfo;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use crate::catalog::{Catalog, Gvk};
use crate::{gnostic, paths, v3};

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";

/// Meta types every document carries: request and response bodies of the generic operations.
const META_TYPES: [&str; 8] =
    ["DeleteOptions", "Status", "WatchEvent", "Patch", "APIResourceList", "APIGroup", "APIGroupList", "APIVersions"];

/// `/openapi/v2` in both encodings.
pub struct V2Document {
    /// Swagger 2.0 JSON.
    pub json: Vec<u8>,
    /// gnostic `openapi.v2.Document` protobuf.
    pub protobuf: Vec<u8>,
    /// Quoted upper-case hex SHA-512 of `json`, the ETag of both forms (kube-openapi
    /// `handler.go` computes one ETag from the JSON).
    pub etag: String,
}

/// One `/openapi/v3/<key>` document.
pub struct V3Document {
    /// Upper-case hex SHA-512 of `body`, the `?hash=` of its URL.
    pub hash: String,
    /// OpenAPI 3.0 JSON.
    pub body: Vec<u8>,
}

/// `/openapi/v3` and the documents it names.
pub struct V3Documents {
    /// The root index body.
    pub root: Vec<u8>,
    /// Key (`api/v1`, `apis/apps/v1`) → document.
    pub docs: BTreeMap<String, V3Document>,
}

/// A document built for one (resources, custom definitions) generation.
type Cached<T> = Mutex<Option<((u64, u64), Arc<T>)>>;

/// Builds and caches the documents of one API server.
pub struct OpenApiDocuments {
    catalog: Arc<Catalog>,
    version: String,
    resources: RwLock<(u64, Vec<Arc<ResourceInfo>>)>,
    v2: Cached<V2Document>,
    v3: Cached<V3Documents>,
}

fn hash_hex(body: &[u8]) -> String {
    hex::encode_upper(Sha512::digest(body))
}

impl OpenApiDocuments {
    /// Documents for `resources`, reporting `version` (e.g. `v1.33.5+rkube`) in `info`.
    pub fn new(catalog: Arc<Catalog>, resources: Vec<Arc<ResourceInfo>>, version: &str) -> Self {
        Self { catalog, version: version.to_string(), resources: RwLock::new((0, resources)), v2: Mutex::new(None), v3: Mutex::new(None) }
    }

    /// The definitions behind the documents (for schema lookups and custom resources).
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Replaces the served resources (custom resources come and go); documents are rebuilt on
    /// the next request.
    pub fn set_resources(&self, resources: Vec<Arc<ResourceInfo>>) {
        let mut current = self.resources.write();
        current.0 += 1;
        current.1 = resources;
    }

    fn key(&self) -> (u64, u64) {
        (self.resources.read().0, self.catalog.generation())
    }

    /// `/openapi/v2`, built on first use.
    pub fn v2(&self) -> Arc<V2Document> {
        let key = self.key();
        let mut cache = self.v2.lock();
        if let Some((k, doc)) = cache.as_ref()
            && *k == key
        {
            return doc.clone();
        }
        let doc = Arc::new(self.build_v2());
        *cache = Some((key, doc.clone()));
        doc
    }

    /// `/openapi/v3` and its documents, built on first use.
    pub fn v3(&self) -> Arc<V3Documents> {
        let key = self.key();
        let mut cache = self.v3.lock();
        if let Some((k, doc)) = cache.as_ref()
            && *k == key
        {
            return doc.clone();
        }
        let doc = Arc::new(self.build_v3());
        *cache = Some((key, doc.clone()));
        doc
    }

    /// Definition names the operations of `resources` use: kinds, lists, subresource kinds.
    fn root_definitions(&self, resources: &[&ResourceInfo]) -> Vec<String> {
        let mut roots: Vec<String> = META_TYPES.iter().map(|t| format!("{META}.{t}")).collect();
        for r in resources {
            let mut kinds = vec![Gvk::new(&r.group, &r.version, &r.kind), Gvk::new(&r.group, &r.version, &format!("{}List", r.kind))];
            for s in &r.subresources {
                let group = if s.group.is_empty() { &r.group } else { &s.group };
                let version = if s.version.is_empty() { &r.version } else { &s.version };
                kinds.push(Gvk::new(group, version, &s.kind));
            }
            roots.extend(kinds.iter().filter_map(|g| self.catalog.name_for_gvk(g)));
        }
        roots
    }

    fn build_v2(&self) -> V2Document {
        let resources = self.resources.read().1.clone();
        let served: Vec<&ResourceInfo> = resources.iter().map(Arc::as_ref).collect();
        let mut all_paths = Map::new();
        for (_, p) in paths::paths_by_group_version(&served, &self.catalog) {
            all_paths.extend(p);
        }
        let roots = self.root_definitions(&served);
        let definitions: Map<String, Value> =
            self.catalog.closure(roots.iter().map(String::as_str)).into_iter().map(|(n, d)| (n, d.as_ref().clone())).collect();
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self.version},
            "paths": Value::Object(all_paths),
            "definitions": Value::Object(definitions),
        });
        let json = serde_json::to_vec(&doc).unwrap_or_default();
        let protobuf = gnostic::encode(&doc);
        V2Document { etag: format!("\"{}\"", hash_hex(&json)), json, protobuf }
    }

    fn build_v3(&self) -> V3Documents {
        let resources = self.resources.read().1.clone();
        let mut by_gv: BTreeMap<String, Vec<&ResourceInfo>> = BTreeMap::new();
        for r in &resources {
            by_gv.entry(paths::group_version_key(&r.group, &r.version)).or_default().push(r);
        }
        let mut docs = BTreeMap::new();
        let mut index = Map::new();
        for (key, served) in by_gv {
            let v2_paths = paths::paths_by_group_version(&served, &self.catalog).remove(&key).unwrap_or_default();
            let roots = self.root_definitions(&served);
            let schemas: Map<String, Value> = self
                .catalog
                .closure(roots.iter().map(String::as_str))
                .into_iter()
                .map(|(n, d)| (n.clone(), v3::definition(&n, &d)))
                .collect();
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": self.version},
                "paths": Value::Object(v3::paths(&v2_paths)),
                "components": {"schemas": Value::Object(schemas)},
            });
            let body = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = hash_hex(&body);
            index.insert(key.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}));
            docs.insert(key, V3Document { hash, body });
        }
        let root = serde_json::to_vec(&json!({"paths": Value::Object(index)})).unwrap_or_default();
        V3Documents { root, docs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use rkube_apimachinery::resources::builtin::builtin_resources;

    fn documents() -> OpenApiDocuments {
        let resources = builtin_resources().into_iter().map(Arc::new).collect();
        OpenApiDocuments::new(Arc::new(Catalog::new()), resources, "v1.33.5+rkube")
    }

    #[test]
    fn every_served_kind_and_subresource_kind_has_a_definition() {
        let catalog = Catalog::new();
        let mut missing = Vec::new();
        for r in builtin_resources() {
            let mut kinds = vec![Gvk::new(&r.group, &r.version, &r.kind)];
            if r.allows("list") {
                kinds.push(Gvk::new(&r.group, &r.version, &format!("{}List", r.kind)));
            }
            // Connect subresources stream bytes and have no schema, as upstream.
            let connect = ["log", "exec", "attach", "portforward", "proxy"];
            for s in r.subresources.iter().filter(|s| !connect.contains(&s.name.as_str())) {
                let group = if s.group.is_empty() { &r.group } else { &s.group };
                let version = if s.version.is_empty() { &r.version } else { &s.version };
                kinds.push(Gvk::new(group, version, &s.kind));
            }
            missing.extend(kinds.into_iter().filter(|g| catalog.name_for_gvk(g).is_none()));
        }
        assert!(missing.is_empty(), "no definition for {missing:?}");
    }

    #[test]
    fn v3_apps_document_has_paths_and_schemas() {
        let docs = documents();
        let v3 = docs.v3();
        let root: Value = serde_json::from_slice(&v3.root).unwrap();
        let apps = &v3.docs["apis/apps/v1"];
        assert_eq!(root["paths"]["apis/apps/v1"]["serverRelativeURL"], format!("/openapi/v3/apis/apps/v1?hash={}", apps.hash));
        let doc: Value = serde_json::from_slice(&apps.body).unwrap();
        let schemas = &doc["components"]["schemas"];
        let deployment = &schemas["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(deployment["x-kubernetes-group-version-kind"], json!([{"group": "apps", "kind": "Deployment", "version": "v1"}]));
        assert!(schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]["x-kubernetes-list-map-keys"].is_array());
        assert!(schemas.get("io.k8s.api.batch.v1.Job").is_none(), "batch types do not belong in apps/v1");
        let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(patch["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "fieldValidation"));
        // Every reference in the document resolves inside it.
        let text = String::from_utf8(apps.body.clone()).unwrap();
        for piece in text.split("\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(schemas.get(name).is_some(), "{name} referenced but missing");
        }
    }

    #[test]
    fn documents_follow_custom_definitions() {
        let docs = documents();
        let before = docs.v3().docs["api/v1"].hash.clone();
        assert_eq!(docs.v3().docs["api/v1"].hash, before, "stable while nothing changes");
        docs.catalog()
            .register(&Gvk::new("example.com", "v1", "Widget"), vec![("com.example.v1.Widget".into(), json!({"type": "object"}))]);
        let mut widget = builtin_resources().into_iter().find(|r| r.kind == "ConfigMap").unwrap();
        widget.group = "example.com".into();
        widget.kind = "Widget".into();
        widget.plural = "widgets".into();
        let mut resources: Vec<Arc<ResourceInfo>> = builtin_resources().into_iter().map(Arc::new).collect();
        resources.push(Arc::new(widget));
        docs.set_resources(resources);
        let v3 = docs.v3();
        let doc: Value = serde_json::from_slice(&v3.docs["apis/example.com/v1"].body).unwrap();
        assert!(doc["components"]["schemas"]["com.example.v1.Widget"].is_object());
        assert!(doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets"]["post"].is_object());
    }

    #[test]
    fn v2_protobuf_carries_definitions_and_patch_parameters() {
        let docs = documents();
        let v2 = docs.v2();
        let decoded = gnostic::Document::decode(v2.protobuf.as_slice()).unwrap();
        assert_eq!(decoded.swagger, "2.0");
        let defs = decoded.definitions.unwrap().additional_properties;
        let pod_spec = defs.iter().find(|d| d.name == "io.k8s.api.core.v1.PodSpec").and_then(|d| d.value.clone()).unwrap();
        let containers = pod_spec.properties.unwrap().additional_properties.into_iter().find(|p| p.name == "containers").unwrap();
        let ext: BTreeMap<String, String> =
            containers.value.unwrap().vendor_extension.into_iter().map(|e| (e.name, e.value.unwrap().yaml)).collect();
        assert_eq!(ext["x-kubernetes-patch-merge-key"], "\"name\"");
        assert_eq!(ext["x-kubernetes-patch-strategy"], "\"merge\"");
        assert_eq!(v2.etag.len(), 130, "quoted SHA-512 hex");
    }
}
