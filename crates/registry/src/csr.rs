//! What each write path may change on a CertificateSigningRequest
//! (`pkg/registry/certificates/certificates/strategy.go`): the main resource changes metadata
//! only, `status` changes everything in status but the Approved/Denied conditions (signers set
//! the certificate and Failed), `approval` changes the conditions only (approvers). Condition
//! timestamps the writer left empty are filled as upstream's `populateConditionTimestamps`.
//!
//! The requester's identity is written into `spec` on create by the API server, which knows
//! the request's user.

use rkube_apimachinery::{ResourceInfo, meta};
use serde_json::{Value, json};

/// Whether `res` is certificates.k8s.io CertificateSigningRequests.
pub fn is_csr(res: &ResourceInfo) -> bool {
    res.group == "certificates.k8s.io" && res.plural == "certificatesigningrequests"
}

fn is_approval(condition: &Value) -> bool {
    matches!(condition["type"].as_str(), Some("Approved" | "Denied"))
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj["status"]["conditions"].as_array().cloned().unwrap_or_default()
}

fn set_conditions(obj: &mut Value, conditions: Vec<Value>) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if conditions.is_empty() {
        if let Some(s) = obj["status"].as_object_mut() {
            s.shift_remove("conditions");
        }
    } else {
        obj["status"]["conditions"] = Value::Array(conditions);
    }
}

/// Applied after the generic preparation of an update through `subresource` ("" for the main
/// resource).
pub fn prepare_for_update(subresource: &str, new: &mut Value, old: &Value) {
    if let Some(o) = new.as_object_mut() {
        match old.get("spec") {
            Some(spec) => o.insert("spec".into(), spec.clone()),
            None => o.shift_remove("spec"),
        };
    }
    match subresource {
        "status" => {
            // Approval conditions come from the stored object, the rest from the writer.
            let mut kept: Vec<Value> = conditions(old).into_iter().filter(is_approval).collect();
            kept.extend(conditions(new).into_iter().filter(|c| !is_approval(c)));
            set_conditions(new, kept);
        }
        "approval" => {
            let wanted = conditions(new);
            new["status"] = old.get("status").cloned().unwrap_or_else(|| json!({}));
            set_conditions(new, wanted);
        }
        _ => {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.shift_remove("status");
                    }
                }
            }
            return;
        }
    }
    populate_condition_timestamps(new, old);
}

/// Empty `lastUpdateTime` becomes now; empty `lastTransitionTime` is the stored condition's of
/// the same type and status, else now.
fn populate_condition_timestamps(new: &mut Value, old: &Value) {
    let now = meta::now_rfc3339();
    let previous = conditions(old);
    let mut updated = conditions(new);
    for c in &mut updated {
        if c["lastUpdateTime"].as_str().is_none_or(str::is_empty) {
            c["lastUpdateTime"] = json!(now);
        }
        if c["lastTransitionTime"].as_str().is_none_or(str::is_empty) {
            let same = previous.iter().find(|p| p["type"] == c["type"] && p["status"] == c["status"]);
            c["lastTransitionTime"] = same.map(|p| p["lastTransitionTime"].clone()).filter(|t| t.is_string()).unwrap_or_else(|| json!(now));
        }
    }
    if !updated.is_empty() {
        set_conditions(new, updated);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(status: Value) -> Value {
        json!({"metadata": {"name": "c"}, "spec": {"signerName": "example.com/x", "username": "alice"}, "status": status})
    }

    #[test]
    fn each_path_changes_only_its_part() {
        let old = csr(json!({}));
        // Approval sets conditions only, with timestamps.
        let mut new = csr(json!({"conditions": [{"type": "Approved", "status": "True", "reason": "R"}], "certificate": "Zm9v"}));
        new["spec"]["username"] = json!("mallory");
        prepare_for_update("approval", &mut new, &old);
        assert_eq!(new["spec"]["username"], "alice");
        assert!(new["status"].get("certificate").is_none());
        assert_eq!(new["status"]["conditions"][0]["type"], "Approved");
        assert!(new["status"]["conditions"][0]["lastUpdateTime"].is_string());
        let approved = new.clone();
        // Status keeps the approval and takes the certificate and Failed.
        let mut signed = csr(json!({"conditions": [{"type": "Failed", "status": "True"}], "certificate": "Zm9v"}));
        prepare_for_update("status", &mut signed, &approved);
        let types: Vec<&str> = signed["status"]["conditions"].as_array().into_iter().flatten().filter_map(|c| c["type"].as_str()).collect();
        assert_eq!(types, ["Approved", "Failed"]);
        assert_eq!(signed["status"]["certificate"], "Zm9v");
        // The main resource changes neither.
        let mut plain = csr(json!({}));
        prepare_for_update("", &mut plain, &signed);
        assert_eq!(plain["status"], signed["status"]);
    }
}
