//! CertificateSigningRequests record who asked (`pkg/registry/certificates/certificates/
//! strategy.go` PrepareForCreate): whatever the client wrote in `spec.username`, `uid`,
//! `groups` and `extra` is replaced by the authenticated requester, which is what approvers
//! and signers trust.

use serde_json::{Map, Value, json};

/// Overwrites the requester fields of a CSR being created with the request's user.
pub fn record_requester(csr: &mut Value) {
    let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) else { return };
    for field in ["username", "uid", "groups", "extra"] {
        spec.shift_remove(field);
    }
    let Some(user) = rkube_auth::current_user() else { return };
    if !user.name.is_empty() {
        spec.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        spec.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        let extra: Map<String, Value> = user.extra.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        spec.insert("extra".into(), Value::Object(extra));
    }
}
