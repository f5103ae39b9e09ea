//! CertificateSigningRequest validation (`pkg/apis/certificates/validation/validation.go`): the
//! request is a PEM `CERTIFICATE REQUEST`, usages are given and known, the signer name is
//! qualified, `expirationSeconds` is at least 600, conditions are consistent; updates may not
//! remove Approved/Denied/Failed conditions nor replace an issued certificate.
//!
//! The request's DER is not parsed here (the signing controllers parse it and fail the CSR when
//! it is not a valid, self-signed PKCS#10 request); the PEM framing is.

use std::collections::BTreeSet;

use base64::Engine;
use rkube_apimachinery::FieldError;
use serde_json::Value;

use crate::names::{is_dns1123_label, is_dns1123_subdomain};

const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";
const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// The bytes of a `[]byte` field (base64 on the wire).
fn bytes(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text(v)).unwrap_or_default()
}

/// Checks the PEM framing of `spec.request` (upstream `validateCSR` + `parseCSR`).
fn request_error(request: &[u8]) -> Option<&'static str> {
    let pem = String::from_utf8_lossy(request);
    let Some(begin) = pem.find("-----BEGIN ") else { return Some("PEM block type must be CERTIFICATE REQUEST") };
    if !pem[begin..].starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        return Some("PEM block type must be CERTIFICATE REQUEST");
    }
    let body = &pem[begin + "-----BEGIN CERTIFICATE REQUEST-----".len()..];
    let Some(end) = body.find("-----END CERTIFICATE REQUEST-----") else { return Some("PEM block type must be CERTIFICATE REQUEST") };
    let b64: String = body[..end].split_whitespace().collect();
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(der) if !der.is_empty() => None,
        _ => Some("asn1: syntax error: sequence truncated"),
    }
}

/// `ValidateCertificateSigningRequestSignerName`.
fn validate_signer_name(signer: &str, errs: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.signerName";
    if signer.is_empty() {
        errs.push(FieldError::required(FIELD, "signerName must be provided"));
        return;
    }
    let segments: Vec<&str> = signer.split('/').collect();
    let [domain, path] = segments[..] else {
        errs.push(FieldError::invalid(FIELD, signer, "must be a fully qualified domain and path of the form 'example.com/signer-name'"));
        return;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    if let Some((label, e)) = labels.iter().find_map(|l| is_dns1123_label(l).into_iter().next().map(|e| (l, e))) {
        errs.push(FieldError::invalid(FIELD, domain, format!("validating label {label:?}: {e}")));
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(FIELD, domain, "should be a domain with at least two segments separated by dots"));
    }
    if let Some((label, e)) = path.split('.').find_map(|l| is_dns1123_subdomain(l).into_iter().next().map(|e| (l, e))) {
        errs.push(FieldError::invalid(FIELD, path, format!("validating label {label:?}: {e}")));
    }
}

/// Spec and status rules shared by create and update.
pub fn validate(csr: &Value, errs: &mut Vec<FieldError>) {
    let spec = &csr["spec"];
    if let Some(e) = request_error(&bytes(&spec["request"])) {
        errs.push(FieldError::invalid("spec.request", spec["request"].clone(), e));
    }
    let usages: Vec<&str> = spec["usages"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    if usages.is_empty() {
        errs.push(FieldError::required("spec.usages", "usages must be provided"));
    }
    let mut seen = BTreeSet::new();
    for (i, u) in usages.iter().enumerate() {
        if !VALID_USAGES.contains(u) {
            errs.push(FieldError::not_supported(format!("spec.usages[{i}]"), *u, VALID_USAGES));
        }
        if !seen.insert(*u) {
            errs.push(FieldError::duplicate(format!("spec.usages[{i}]"), *u));
        }
    }
    let signer = text(&spec["signerName"]);
    if signer == LEGACY_UNKNOWN_SIGNER {
        errs.push(FieldError::invalid("spec.signerName", signer, "the legacy signerName is not allowed via this API version"));
    } else {
        validate_signer_name(signer, errs);
    }
    if let Some(exp) = spec["expirationSeconds"].as_i64().filter(|e| *e < 600) {
        errs.push(FieldError::invalid("spec.expirationSeconds", exp, "may not specify a duration less than 600 seconds (10 minutes)"));
    }
    validate_conditions(csr, errs);
}

fn validate_conditions(csr: &Value, errs: &mut Vec<FieldError>) {
    let (mut approved, mut denied) = (false, false);
    let mut seen = BTreeSet::new();
    for (i, c) in csr["status"]["conditions"].as_array().into_iter().flatten().enumerate() {
        let path = format!("status.conditions[{i}]");
        let kind = text(&c["type"]);
        if kind.is_empty() {
            errs.push(FieldError::required(format!("{path}.type"), ""));
        }
        let status = text(&c["status"]);
        let allowed: &[&str] = if matches!(kind, "Approved" | "Denied" | "Failed") { &["True"] } else { &["False", "True", "Unknown"] };
        if status.is_empty() {
            errs.push(FieldError::required(format!("{path}.status"), ""));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(format!("{path}.status"), status, allowed));
        }
        match kind {
            "Approved" => {
                approved = true;
                if denied {
                    errs.push(FieldError::invalid(format!("{path}.type"), kind, "Approved and Denied conditions are mutually exclusive"));
                }
            }
            "Denied" => {
                denied = true;
                if approved {
                    errs.push(FieldError::invalid(format!("{path}.type"), kind, "Approved and Denied conditions are mutually exclusive"));
                }
            }
            _ => {}
        }
        if !seen.insert(kind.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.type"), kind));
        }
    }
}

fn count(csr: &Value, kind: &str) -> usize {
    csr["status"]["conditions"].as_array().into_iter().flatten().filter(|c| c["type"] == kind).count()
}

/// Update rules on top of [`validate`] (the registry has already kept what each subresource may
/// not change: spec and status on the main resource, approval conditions on `status`).
pub fn validate_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    validate(new, errs);
    for kind in ["Approved", "Denied", "Failed"] {
        if count(new, kind) < count(old, kind) {
            errs.push(FieldError::forbidden("status.conditions", format!("updates may not remove a condition of type {kind:?}")));
        }
    }
    let (new_cert, old_cert) = (text(&new["status"]["certificate"]), text(&old["status"]["certificate"]));
    if new_cert != old_cert && !old_cert.is_empty() {
        errs.push(FieldError::forbidden("status.certificate", "updates may not modify existing certificate content"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(request: &str, signer: &str, usages: Value) -> Value {
        let request = base64::engine::general_purpose::STANDARD.encode(request);
        json!({"metadata": {"name": "c"}, "spec": {"request": request, "signerName": signer, "usages": usages}})
    }

    const PEM: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBCjCBsQIBADAPMQ0wCwYDVQQDDARhbGljZTBZMBMGByqGSM49AgEGCCqGSM49\n-----END CERTIFICATE REQUEST-----\n";

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| format!("{}: {}", e.field, e.body())).collect()
    }

    #[test]
    fn requests_usages_and_signers_follow_upstream() {
        let mut errs = Vec::new();
        validate(&csr(PEM, "kubernetes.io/kube-apiserver-client", json!(["client auth"])), &mut errs);
        assert!(errs.is_empty(), "{:?}", fields(&errs));
        let mut errs = Vec::new();
        validate(&csr("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "example", json!(["client auth", "client auth", "flying"])), &mut errs);
        let f = fields(&errs);
        assert!(f[0].starts_with("spec.request: Invalid value: ") && f[0].ends_with(": PEM block type must be CERTIFICATE REQUEST"), "{f:?}");
        assert_eq!(f[1], "spec.usages[1]: Duplicate value: \"client auth\"");
        assert!(f[2].starts_with("spec.usages[2]: Unsupported value: \"flying\": supported values: \"any\""), "{f:?}");
        assert_eq!(f[3], "spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'");
        let mut errs = Vec::new();
        let mut short = csr(PEM, "kubernetes.io/kube-apiserver-client", json!(["client auth"]));
        short["spec"]["expirationSeconds"] = json!(60);
        validate(&short, &mut errs);
        assert_eq!(fields(&errs), ["spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"]);
    }

    #[test]
    fn approval_conditions_are_exclusive_and_permanent_and_certificates_are_set_once() {
        let base = csr(PEM, "kubernetes.io/kube-apiserver-client", json!(["client auth"]));
        let mut both = base.clone();
        both["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]});
        let mut errs = Vec::new();
        validate(&both, &mut errs);
        assert_eq!(fields(&errs), ["status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"]);
        let mut approved = base.clone();
        approved["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "QQ=="});
        let mut errs = Vec::new();
        validate_update(&base, &approved, &mut errs);
        assert_eq!(
            fields(&errs),
            ["status.conditions: Forbidden: updates may not remove a condition of type \"Approved\"", "status.certificate: Forbidden: updates may not modify existing certificate content"]
        );
    }
}
