//! `metadata.managedFields` entries: decoding, identity and upstream's encoding order.

use serde_json::{Map, Value, json};

use crate::set::Set;

/// How a manager wrote its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields are expressed in.
    pub api_version: String,
    /// When the manager last changed its fields (RFC 3339).
    pub time: Option<String>,
    /// The subresource the writes went to (`""` for the main resource).
    pub subresource: String,
    /// The owned fields.
    pub fields: Set,
}

impl ManagerEntry {
    /// This manager's entry for updates through `subresource` in `api_version`. Update entries
    /// are per apiVersion; apply entries are not (upstream's manager identifier).
    pub fn is_update_by(&self, manager: &str, api_version: &str, subresource: &str) -> bool {
        self.operation == Operation::Update && self.manager == manager && self.api_version == api_version && self.subresource == subresource
    }

    /// This manager's apply entry for `subresource`.
    pub fn is_apply_by(&self, manager: &str, subresource: &str) -> bool {
        self.operation == Operation::Apply && self.manager == manager && self.subresource == subresource
    }

    /// How upstream names the manager in conflict messages (`printManager`).
    pub fn display_name(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        match self.operation {
            Operation::Update => format!("{s} using {}", self.api_version),
            Operation::Apply => s,
        }
    }
}

/// The entries of `obj.metadata.managedFields`. A single empty entry (`[{}]`) is how clients
/// ask to reset ownership: it decodes to one entry owning nothing.
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagerEntry>, String> {
    let Some(list) = obj.get("metadata").and_then(|m| m.get("managedFields")) else { return Ok(Vec::new()) };
    let list = match list {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err("managedFields must be a list".into()),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let Value::Object(m) = e else { return Err(format!("managed fields entry {i} must be an object")) };
        if m.is_empty() {
            out.push(ManagerEntry { manager: String::new(), operation: Operation::Update, api_version: String::new(), time: None, subresource: String::new(), fields: Set::new() });
            continue;
        }
        let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return Err("operation must be `Apply` or `Update`".into()),
        };
        let api_version = s("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match s("fieldsType").as_str() {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => return Err(format!("invalid fieldsType {other:?} in managed fields entry {i}")),
        }
        let fields = match m.get("fieldsV1") {
            Some(v) => Set::from_fields_v1(v)?,
            None => Set::new(),
        };
        out.push(ManagerEntry { manager: s("manager"), operation, api_version, time: m.get("time").and_then(Value::as_str).map(str::to_string), subresource: s("subresource"), fields });
    }
    Ok(out)
}

/// The `managedFields` list in upstream's order: Apply before Update, then by time, manager,
/// apiVersion and subresource.
pub fn encode_managed_fields(entries: &[ManagerEntry]) -> Value {
    let mut sorted: Vec<&ManagerEntry> = entries.iter().collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.time.as_deref().unwrap_or("").cmp(q.time.as_deref().unwrap_or("")))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_like_upstream() {
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "kubectl-edit", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-02T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}, "subresource": "status"},
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2026-01-03T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}}}
        ]}});
        let entries = decode_managed_fields(&obj).unwrap();
        let enc = encode_managed_fields(&entries);
        let names: Vec<&str> = enc.as_array().unwrap().iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(names, ["kubectl", "kube-controller-manager", "kubectl-edit"]);
        assert_eq!(enc[1]["subresource"], "status");
        assert!(enc[0].get("subresource").is_none());
        assert_eq!(entries[1].display_name(), "\"kube-controller-manager\" with subresource \"status\" using apps/v1");
        assert_eq!(entries[2].display_name(), "\"kubectl\"");
    }

    #[test]
    fn rejects_entries_upstream_rejects() {
        let bad_op = json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}]}});
        assert_eq!(decode_managed_fields(&bad_op).unwrap_err(), "operation must be `Apply` or `Update`");
        let bad_type = json!({"metadata": {"managedFields": [{"manager": "a", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"}]}});
        assert_eq!(decode_managed_fields(&bad_type).unwrap_err(), "invalid fieldsType \"FieldsV2\" in managed fields entry 0");
    }
}
