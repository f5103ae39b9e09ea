//! Tables of custom objects from a CRD version's `additionalPrinterColumns`
//! (apiextensions-apiserver `pkg/registry/customresource/tableconvertor/tableconvertor.go`):
//! a Name column, then each declared column evaluated with its JSONPath (first result) and
//! formatted by its type; a version without columns gets upstream's default Age column.

use chrono::{DateTime, Utc};
use rkube_registry::crd::{PrinterColumn, jsonpath};
use serde_json::{Map, Value, json};

use crate::table::{self, IncludeObject};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Upstream's `serveDefaultColumnsIfEmpty`: no declared column means one Age column.
pub fn effective_columns(declared: &[PrinterColumn]) -> Vec<PrinterColumn> {
    if !declared.is_empty() {
        return declared.to_vec();
    }
    vec![PrinterColumn {
        name: "Age".into(),
        column_type: "date".into(),
        format: String::new(),
        description: CREATED_DESCRIPTION.into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }]
}

fn column_definitions(columns: &[PrinterColumn]) -> Value {
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0}),
    ];
    for c in columns {
        defs.push(json!({"name": c.name, "type": c.column_type, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    Value::Array(defs)
}

/// `duration.HumanDuration` (apimachinery `pkg/util/duration`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `cellForJSONValue` and the string case (jsonpath text output: scalars bare, maps and lists
/// as compact JSON).
fn cell(column: &PrinterColumn, obj: &Value) -> Value {
    let Some(v) = jsonpath::find_first(obj, &column.json_path).filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match column.column_type.as_str() {
        "string" => match v {
            Value::String(s) => Value::String(s.clone()),
            Value::Object(_) | Value::Array(_) => Value::String(v.to_string()),
            other => Value::String(other.to_string()),
        },
        "integer" => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        "number" => v.as_f64().map_or(Value::Null, Value::from),
        "boolean" => v.as_bool().map_or(Value::Null, Value::Bool),
        "date" => match v.as_str() {
            Some(s) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Value::String(human_duration(
                    (Utc::now() - t.with_timezone(&Utc)).num_seconds(),
                )),
                Err(_) => Value::String("<invalid>".into()),
            },
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

fn row(
    obj: &Value,
    columns: &[PrinterColumn],
    include: IncludeObject,
    kind: &str,
    api_version: &str,
) -> Value {
    let mut cells = vec![obj["metadata"]["name"].clone()];
    cells.extend(columns.iter().map(|c| cell(c, obj)));
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r.insert("object".into(), table::partial_metadata(obj));
        }
        IncludeObject::Object => {
            let mut o = obj.clone();
            if let Some(m) = o.as_object_mut() {
                m.insert("kind".into(), json!(kind));
                m.insert("apiVersion".into(), json!(api_version));
            }
            r.insert("object".into(), o);
        }
    }
    Value::Object(r)
}

/// A Table of one custom object or a list of them; `headers` false omits the column
/// definitions (watch events after the first).
pub fn to_table(
    obj: &Value,
    is_list: bool,
    declared: &[PrinterColumn],
    include: IncludeObject,
    headers: bool,
    kind: &str,
    api_version: &str,
) -> Value {
    let columns = effective_columns(declared);
    let mut meta = Map::new();
    let rows: Vec<Value> = if is_list {
        for k in ["resourceVersion", "continue", "remainingItemCount"] {
            if let Some(v) = obj["metadata"].get(k) {
                meta.insert(k.into(), v.clone());
            }
        }
        obj["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| row(o, &columns, include, kind, api_version))
            .collect()
    } else {
        if let Some(v) = obj["metadata"].get("resourceVersion") {
            meta.insert("resourceVersion".into(), v.clone());
        }
        vec![row(obj, &columns, include, kind, api_version)]
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": if headers { column_definitions(&columns) } else { Value::Null },
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: &str, path: &str) -> PrinterColumn {
        PrinterColumn {
            name: name.into(),
            column_type: t.into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            json_path: path.into(),
        }
    }

    #[test]
    fn human_durations_match_upstream() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(125), "2m5s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(400 * 86400), "400d");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn cells_follow_column_types_and_missing_values_are_null() {
        let obj = json!({"metadata": {"name": "a"}, "spec": {"n": 3, "flag": true, "tags": ["x"]}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let cols = vec![
            col("N", "integer", ".spec.n"),
            col("Flag", "boolean", ".spec.flag"),
            col("Tags", "string", ".spec.tags"),
            col(
                "Ready",
                "string",
                ".status.conditions[?(@.type==\"Ready\")].status",
            ),
            col("Missing", "string", ".status.nothing"),
        ];
        let t = to_table(&obj, false, &cols, IncludeObject::None, true, "X", "g/v1");
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["a", 3, true, "[\"x\"]", "True", null])
        );
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["columnDefinitions"][4]["name"], "Ready");
    }

    #[test]
    fn no_declared_columns_means_an_age_column() {
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2000-01-01T00:00:00Z"}});
        let t = to_table(&obj, false, &[], IncludeObject::None, true, "X", "g/v1");
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["columnDefinitions"][1]["type"], "date");
        assert!(
            t["rows"][0]["cells"][1]
                .as_str()
                .is_some_and(|s| s.ends_with('y')),
            "{t}"
        );
    }
}
