//! Server-side printing: `meta.k8s.io/v1` Table and PartialObjectMetadata
//! (apiserver `pkg/registry/rest/table.go` DefaultTableConvertor). Per-kind columns are added by
//! the kubectl compatibility work; every resource has at least upstream's default columns.

use serde_json::{Map, Value, json};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// What each row carries in `object` (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// From the query value.
    pub fn parse(v: Option<&str>) -> Self {
        match v {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

fn column_definitions() -> Value {
    json!([
        {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0},
        {"name": "Created At", "type": "date", "format": "", "description": CREATED_DESCRIPTION, "priority": 0},
    ])
}

/// PartialObjectMetadata of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new())),
    })
}

/// A PartialObjectMetadataList from a list object.
pub fn partial_metadata_list(list: &Value) -> Value {
    let items: Vec<Value> = list["items"].as_array().into_iter().flatten().map(partial_metadata).collect();
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list.get("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new())),
        "items": items,
    })
}

fn row(obj: &Value, include: IncludeObject, kind: &str, api_version: &str) -> Value {
    let name = obj["metadata"]["name"].clone();
    let created = obj["metadata"]["creationTimestamp"].clone();
    let mut r = json!({"cells": [name, created]});
    let object = match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(partial_metadata(obj)),
        IncludeObject::Object => {
            let mut o = obj.clone();
            if let Some(m) = o.as_object_mut() {
                m.insert("kind".into(), json!(kind));
                m.insert("apiVersion".into(), json!(api_version));
            }
            Some(o)
        }
    };
    if let (Some(o), Some(m)) = (object, r.as_object_mut()) {
        m.insert("object".into(), o);
    }
    r
}

/// A Table of one object or a list. `headers` false omits columnDefinitions (watch events after
/// the first, as upstream's watch handler does).
pub fn to_table(obj: &Value, is_list: bool, include: IncludeObject, headers: bool, kind: &str, api_version: &str) -> Value {
    let (rows, meta) = if is_list {
        let rows: Vec<Value> = obj["items"].as_array().into_iter().flatten().map(|o| row(o, include, kind, api_version)).collect();
        let mut m = Map::new();
        for k in ["resourceVersion", "continue", "remainingItemCount"] {
            if let Some(v) = obj["metadata"].get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        (rows, Value::Object(m))
    } else {
        let mut m = Map::new();
        if let Some(v) = obj["metadata"].get("resourceVersion") {
            m.insert("resourceVersion".into(), v.clone());
        }
        (vec![row(obj, include, kind, api_version)], Value::Object(m))
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if headers { column_definitions() } else { Value::Null },
        "rows": rows,
    })
}
