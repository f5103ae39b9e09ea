//! [`SchemaNode`] over OpenAPI schemas in JSON (a CRD's `openAPIV3Schema`, or the definitions of
//! the built-in kinds reached through `$ref`).
//!
//! A property's merge extensions (`x-kubernetes-list-type` on `PodSpec.containers`) sit on the
//! property itself, while its type and fields come from the definition it references; a node keeps
//! both, the *site* and the resolved *target*.

use std::sync::Arc;

use serde_json::Value;

use crate::schema::{DynSchema, DynSchemaNode, ListType, Shape};

/// Finds a definition by name (`io.k8s.api.core.v1.Container`).
pub type DefinitionLookup = Arc<dyn Fn(&str) -> Option<Arc<Value>> + Send + Sync>;

#[derive(Clone)]
struct Place {
    doc: Arc<Value>,
    pointer: String,
}

impl Place {
    fn value(&self) -> &Value {
        self.doc.pointer(&self.pointer).unwrap_or(&Value::Null)
    }

    fn child(&self, segments: &[&str]) -> Option<Place> {
        let mut pointer = self.pointer.clone();
        for s in segments {
            pointer.push('/');
            pointer.push_str(&s.replace('~', "~0").replace('/', "~1"));
        }
        let p = Place { doc: self.doc.clone(), pointer };
        (!p.value().is_null()).then_some(p)
    }
}

/// A node of an OpenAPI schema.
#[derive(Clone)]
pub struct JsonSchemaNode {
    definitions: Option<DefinitionLookup>,
    site: Place,
    target: Place,
}

fn reference(v: &Value) -> Option<&str> {
    let direct = v.get("$ref").and_then(Value::as_str);
    let all_of = || v.get("allOf")?.as_array()?.first()?.get("$ref")?.as_str();
    let r = direct.or_else(all_of)?;
    Some(r.strip_prefix("#/definitions/").or_else(|| r.strip_prefix("#/components/schemas/")).unwrap_or(r))
}

impl JsonSchemaNode {
    /// The root of a self-contained schema (no `$ref`s), e.g. a CRD version's `openAPIV3Schema`.
    pub fn inline(schema: Arc<Value>) -> DynSchema {
        DynSchema(Arc::new(Self::at(None, Place { doc: schema, pointer: String::new() })))
    }

    /// The root of a definition found through `definitions`.
    pub fn definition(definitions: DefinitionLookup, name: &str) -> Option<DynSchema> {
        let doc = definitions(name)?;
        Some(DynSchema(Arc::new(Self::at(Some(definitions), Place { doc, pointer: String::new() }))))
    }

    fn at(definitions: Option<DefinitionLookup>, site: Place) -> Self {
        let mut target = site.clone();
        // A few hops at most; the bound guards against reference cycles.
        for _ in 0..8 {
            let Some(name) = reference(target.value()) else { break };
            let Some(doc) = definitions.as_ref().and_then(|d| d(name)) else { break };
            target = Place { doc, pointer: String::new() };
        }
        Self { definitions, site, target }
    }

    fn ext<'a>(&'a self, key: &str) -> Option<&'a Value> {
        self.site.value().get(key).or_else(|| self.target.value().get(key))
    }

    fn wrap(&self, p: Place) -> DynSchema {
        DynSchema(Arc::new(Self::at(self.definitions.clone(), p)))
    }
}

impl DynSchemaNode for JsonSchemaNode {
    fn shape(&self) -> Shape {
        let t = self.target.value();
        if self.ext("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
            return Shape::Scalar;
        }
        let typ = t.get("type").or_else(|| self.site.value().get("type")).and_then(Value::as_str);
        match typ {
            Some("array") => {
                let list_type = match self.ext("x-kubernetes-list-type").and_then(Value::as_str) {
                    Some("map") => {
                        let keys = self.ext("x-kubernetes-list-map-keys").and_then(Value::as_array).map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect()).unwrap_or_default();
                        ListType::Map(keys)
                    }
                    Some("set") => ListType::Set,
                    Some(_) => ListType::Atomic,
                    // Older schemas only carry the strategic-merge markers; upstream derives the
                    // list type from them (kube-openapi schemaconv).
                    None => {
                        let merge = self.ext("x-kubernetes-patch-strategy").and_then(Value::as_str).is_some_and(|s| s.split(',').any(|p| p == "merge"));
                        match (merge, self.ext("x-kubernetes-patch-merge-key").and_then(Value::as_str)) {
                            (true, Some(k)) => ListType::Map(vec![k.to_string()]),
                            (true, None) => ListType::Set,
                            _ => ListType::Atomic,
                        }
                    }
                };
                Shape::List(list_type)
            }
            Some("object") | None => {
                let atomic = self.ext("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic");
                if t.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty()) {
                    Shape::Struct { atomic }
                } else if t.get("additionalProperties").is_some_and(Value::is_object) {
                    Shape::Map { atomic }
                } else if typ.is_none() && t.get("format").is_some() {
                    Shape::Scalar
                } else {
                    Shape::Untyped
                }
            }
            Some(_) => Shape::Scalar,
        }
    }

    fn field(&self, name: &str) -> Option<DynSchema> {
        self.target.child(&["properties", name]).map(|p| self.wrap(p))
    }

    fn element(&self) -> Option<DynSchema> {
        let t = self.target.value();
        if t.get("items").is_some() {
            return self.target.child(&["items"]).map(|p| self.wrap(p));
        }
        self.target.child(&["additionalProperties"]).filter(|p| p.value().is_object()).map(|p| self.wrap(p))
    }

    fn key_default(&self, key: &str) -> Option<Value> {
        let field = self.target.child(&["properties", key])?;
        let node = Self::at(self.definitions.clone(), field);
        node.ext("default").cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SchemaNode;
    use serde_json::json;

    #[test]
    fn reads_list_types_through_references_and_inline_schemas() {
        let defs: DefinitionLookup = Arc::new(|name: &str| match name {
            "PodSpec" => Some(Arc::new(json!({"type": "object", "properties": {
                "containers": {"type": "array", "items": {"$ref": "#/definitions/Container"}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
                "selector": {"$ref": "#/definitions/LabelSelector"},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"},
                "old": {"type": "array", "items": {"type": "object", "properties": {"ip": {"type": "string"}}}, "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "ip"}
            }}))),
            "Container" => Some(Arc::new(json!({"type": "object", "properties": {"name": {"type": "string"}, "ports": {"type": "array", "items": {"$ref": "#/definitions/ContainerPort"}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"]}}}))),
            "ContainerPort" => Some(Arc::new(json!({"type": "object", "properties": {"containerPort": {"type": "integer"}, "protocol": {"type": "string", "default": "TCP"}}}))),
            "LabelSelector" => Some(Arc::new(json!({"type": "object", "properties": {"matchLabels": {"type": "object"}}, "x-kubernetes-map-type": "atomic"}))),
            _ => None,
        });
        let spec = JsonSchemaNode::definition(defs, "PodSpec").unwrap();
        let containers = spec.field("containers").unwrap();
        assert_eq!(containers.shape(), Shape::List(ListType::Map(vec!["name".into()])));
        let ports = containers.element().unwrap().field("ports").unwrap();
        assert_eq!(ports.element().unwrap().key_default("protocol"), Some(json!("TCP")));
        assert_eq!(spec.field("selector").unwrap().shape(), Shape::Struct { atomic: true });
        assert_eq!(spec.field("nodeSelector").unwrap().shape(), Shape::Map { atomic: true });
        assert_eq!(spec.field("old").unwrap().shape(), Shape::List(ListType::Map(vec!["ip".into()])));

        let cr = JsonSchemaNode::inline(Arc::new(json!({"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}, "data": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}}})));
        assert_eq!(cr.field("spec").unwrap().shape(), Shape::Untyped);
        assert_eq!(cr.field("data").unwrap().shape(), Shape::List(ListType::Set));
    }
}
