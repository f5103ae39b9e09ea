//! Server-side printing: `meta.k8s.io/v1` Table and PartialObjectMetadata. Built-in kinds with an
//! upstream printer get its columns and cells (`rkube-printers`); every other resource gets
//! upstream's default columns (apiserver `pkg/registry/rest/table.go` DefaultTableConvertor).

use chrono::{DateTime, Utc};
use rkube_printers::Printer;
use rkube_printers::descriptions::{CREATION_TIMESTAMP as CREATED_DESCRIPTION, NAME as NAME_DESCRIPTION};
use serde_json::{Map, Value, json};

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

fn default_column_definitions() -> Value {
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

fn row(obj: &Value, include: IncludeObject, kind: &str, api_version: &str, printer: Option<&Printer>, now: DateTime<Utc>) -> Value {
    let mut r = match printer {
        Some(p) => {
            let printed = p.row(obj, now);
            let mut r = json!({"cells": printed.cells});
            if !printed.conditions.is_empty() {
                r["conditions"] = Value::Array(printed.conditions);
            }
            r
        }
        None => json!({"cells": [obj["metadata"]["name"].clone(), obj["metadata"]["creationTimestamp"].clone()]}),
    };
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
    let printer = rkube_printers::printer_for(rkube_printers::group_of(api_version), kind);
    let now = Utc::now();
    let (rows, meta) = if is_list {
        let mut items: Vec<&Value> = obj["items"].as_array().into_iter().flatten().collect();
        if let Some(p) = printer {
            p.sort_items(&mut items);
        }
        let rows: Vec<Value> = items.into_iter().map(|o| row(o, include, kind, api_version, printer, now)).collect();
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
        (vec![row(obj, include, kind, api_version, printer, now)], Value::Object(m))
    };
    let columns = match (headers, printer) {
        (false, _) => Value::Null,
        (true, Some(p)) => Value::Array(p.columns().iter().map(|c| c.to_json()).collect()),
        (true, None) => default_column_definitions(),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_use_their_printer_columns() {
        let pod = json!({"metadata": {"name": "p", "resourceVersion": "7"}, "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded"}});
        let t = to_table(&pod, false, IncludeObject::None, true, "Pod", "v1");
        let names: Vec<&str> = t["columnDefinitions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]);
        assert_eq!(t["rows"][0]["cells"].as_array().unwrap()[0..3], [json!("p"), json!("0/1"), json!("Succeeded")]);
        assert_eq!(t["rows"][0]["conditions"][0]["type"], "Completed");
        assert!(t["rows"][0].get("object").is_none());
        assert_eq!(t["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn other_kinds_keep_name_and_created_at() {
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2025-01-01T00:00:00Z"}});
        let t = to_table(&role, false, IncludeObject::Metadata, true, "Role", "rbac.authorization.k8s.io/v1");
        assert_eq!(t["columnDefinitions"][1]["name"], "Created At");
        assert_eq!(t["rows"][0]["cells"], json!(["r", "2025-01-01T00:00:00Z"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn lists_follow_the_printer_order_and_watch_frames_omit_columns() {
        let fs = |name: &str, p: i64| json!({"metadata": {"name": name}, "spec": {"matchingPrecedence": p}});
        let list = json!({"metadata": {"resourceVersion": "9"}, "items": [fs("late", 9000), fs("early", 1)]});
        let t = to_table(&list, true, IncludeObject::None, true, "FlowSchema", "flowcontrol.apiserver.k8s.io/v1");
        assert_eq!(t["rows"][0]["cells"][0], "early");
        assert_eq!(t["rows"][1]["cells"][0], "late");
        let later = to_table(&fs("x", 1), false, IncludeObject::None, false, "FlowSchema", "flowcontrol.apiserver.k8s.io/v1");
        assert!(later["columnDefinitions"].is_null());
    }
}
