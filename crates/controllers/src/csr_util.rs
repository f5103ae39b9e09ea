//! What the CSR controllers share: condition and certificate checks, parsing the request, and
//! upstream's per-signer request rules (`pkg/apis/certificates/v1/helpers.go`
//! `ValidateKubeletClientCSR`, `ValidateKubeletServingCSR`; `signer.go`
//! `validAPIServerClientUsages`), with their error texts, which become Failed messages.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rkube_pki::csr::CertificateRequest;

/// Client certificates for kubelets.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Client certificates for anyone, approved by hand.
pub const API_SERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// Serving certificates for kubelets.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// A True condition of `kind`.
pub fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// Whether a certificate was issued.
pub fn has_certificate(csr: &CertificateSigningRequest) -> bool {
    csr.status.as_ref().and_then(|s| s.certificate.as_ref()).is_some_and(|c| !c.0.is_empty())
}

/// The parsed `spec.request`.
pub fn parse(csr: &CertificateSigningRequest) -> Result<CertificateRequest, String> {
    rkube_pki::csr::parse_certificate_request(&csr.spec.request.0).map_err(|e| e.to_string())
}

fn usage_set(usages: &Option<Vec<String>>) -> BTreeSet<&str> {
    usages.iter().flatten().map(String::as_str).collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

/// Go's `%v` of a sorted string list.
fn go_list(items: &[&str]) -> String {
    format!("[{}]", items.join(" "))
}

/// `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(req: &CertificateRequest, usages: &Option<Vec<String>>) -> Result<(), String> {
    if req.organizations != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err("subject common name does not begin with system:node:".into());
    }
    let got = usage_set(usages);
    let required = ["client auth", "digital signature", "key encipherment"];
    if got != set(&required) && got != set(&["client auth", "digital signature"]) {
        return Err(format!("usages did not match {}", go_list(&required)));
    }
    Ok(())
}

/// `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(req: &CertificateRequest, usages: &Option<Vec<String>>) -> Result<(), String> {
    if req.organizations != [NODES_GROUP] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let got = usage_set(usages);
    let required = ["digital signature", "key encipherment", "server auth"];
    if got != set(&required) && got != set(&["digital signature", "server auth"]) {
        return Err(format!("usages did not match {}", go_list(&required)));
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// `validAPIServerClientUsages`.
pub fn validate_api_server_client(usages: &Option<Vec<String>>) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages.iter().flatten() {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_request() -> CertificateRequest {
        let mut req = CertificateRequest::default();
        req.common_name = "system:node:n3".into();
        req.organizations = vec!["system:nodes".into()];
        req
    }

    fn usages(u: &[&str]) -> Option<Vec<String>> {
        Some(u.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn signer_rules_match_upstream() {
        let req = node_request();
        assert!(validate_kubelet_client(&req, &usages(&["digital signature", "client auth"])).is_ok());
        assert!(validate_kubelet_client(&req, &usages(&["key encipherment", "digital signature", "client auth"])).is_ok());
        assert_eq!(
            validate_kubelet_client(&req, &usages(&["client auth"])),
            Err("usages did not match [client auth digital signature key encipherment]".into())
        );
        let mut other = req.clone();
        other.organizations = vec!["devs".into()];
        assert_eq!(validate_kubelet_client(&other, &usages(&["client auth"])), Err("subject organization is not system:nodes".into()));
        assert_eq!(validate_kubelet_serving(&req, &usages(&["server auth"])), Err("DNS or IP subjectAltName is required".into()));
        assert!(validate_api_server_client(&usages(&["client auth", "digital signature"])).is_ok());
        assert_eq!(validate_api_server_client(&usages(&["server auth"])), Err("invalid usage for client certificate: server auth".into()));
        assert_eq!(validate_api_server_client(&usages(&[])), Err("missing required usage for client certificate: client auth".into()));
    }
}
