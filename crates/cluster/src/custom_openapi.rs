//! Publishes the schemas of served custom resources in `/openapi/v2` and `/openapi/v3`, so
//! `kubectl explain` and client-side validation know them (upstream's apiextensions OpenAPI
//! controller). Definitions are named `<reversed group>.<version>.<Kind>` as upstream names them.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;
use rkube_openapi::{Catalog, Gvk, OpenApiDocuments};
use rkube_registry::Registry;
use rkube_registry::crd::{CustomResource, CustomVersion};
use serde_json::{Map, Value, json};

const OBJECT_META: &str = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA_DOC: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#lists-and-slices";

/// `stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`.
fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn gvk_extension(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// The object and list definitions of one served version.
fn definitions(cr: &CustomResource, version: &CustomVersion) -> Vec<(String, Value)> {
    let name = definition_name(&cr.group, &version.name, &cr.kind);
    let schema = version.schema.as_deref().cloned().unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    let mut object = match schema {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut properties = object.remove("properties").and_then(|p| p.as_object().cloned()).unwrap_or_default();
    properties.insert("apiVersion".into(), json!({"description": API_VERSION_DOC, "type": "string"}));
    properties.insert("kind".into(), json!({"description": KIND_DOC, "type": "string"}));
    properties.insert("metadata".into(), json!({"$ref": OBJECT_META, "description": METADATA_DOC}));
    object.insert("type".into(), json!("object"));
    object.insert("properties".into(), Value::Object(properties));
    object.insert("x-kubernetes-group-version-kind".into(), gvk_extension(&cr.group, &version.name, &cr.kind));
    let list_name = definition_name(&cr.group, &version.name, &cr.list_kind);
    let list = json!({
        "description": format!("{} is a list of {}", cr.list_kind, cr.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {"description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/api-conventions.md", cr.plural), "type": "array", "items": {"$ref": format!("#/definitions/{name}")}},
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": {"$ref": LIST_META, "description": LIST_METADATA_DOC},
        },
        "x-kubernetes-group-version-kind": gvk_extension(&cr.group, &version.name, &cr.list_kind),
    });
    vec![(name, Value::Object(object)), (list_name, list)]
}

/// Keeps the OpenAPI catalog and documents in step with the served custom resources.
pub fn install(registry: &Arc<Registry>, catalog: Arc<Catalog>, documents: Arc<OpenApiDocuments>) {
    let published: Arc<Mutex<HashSet<Gvk>>> = Arc::default();
    let weak = Arc::downgrade(registry);
    registry.on_custom_resources_changed(Arc::new(move |custom: &[Arc<CustomResource>]| {
        let mut now = HashSet::new();
        for cr in custom {
            for version in cr.versions.iter().filter(|v| v.served) {
                let defs = definitions(cr, version);
                let gvk = Gvk::new(&cr.group, &version.name, &cr.kind);
                let list_gvk = Gvk::new(&cr.group, &version.name, &cr.list_kind);
                let (object, list) = (defs[0].clone(), defs[1].clone());
                catalog.register(&gvk, vec![object]);
                catalog.register(&list_gvk, vec![list]);
                now.insert(gvk);
                now.insert(list_gvk);
            }
        }
        let mut published = published.lock();
        for gone in published.difference(&now) {
            catalog.unregister(gone);
        }
        *published = now;
        if let Some(registry) = weak.upgrade() {
            documents.set_resources(registry.resources());
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reverse_the_group_like_upstream() {
        assert_eq!(definition_name("kubernetes-client.io", "v1", "ExternalSecret"), "io.kubernetes-client.v1.ExternalSecret");
        assert_eq!(definition_name("stable.example.com", "v1", "CronTab"), "com.example.stable.v1.CronTab");
    }
}
