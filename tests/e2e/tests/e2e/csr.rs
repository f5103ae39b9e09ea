//! CertificateSigningRequests with the real kubectl: a kubelet bootstrapping with a bootstrap
//! token gets its client certificate approved (csrapproving) and signed (csrsigning) by the
//! cluster, and that certificate is a node identity limited by the Node authorizer; requests for
//! the generic client signer wait for `kubectl certificate approve`; signer rules fail bad ones.

use std::time::Duration;

use base64::Engine;
use rkube_testkit::{Kubectl, TestCluster};
use serde_json::{Value, json};

use crate::cluster;
use crate::scheduling::wait_for;

/// A fresh P-256 key and a PEM CSR for `cn` in `orgs`.
fn request(cn: &str, orgs: &[&str]) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    for o in orgs {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
    }
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let csr = params.serialize_request(&key).expect("csr").pem().expect("pem");
    (key, csr)
}

fn csr_object(name: &str, pem: &str, signer: &str, usages: &[&str], expiration: Option<i64>) -> String {
    let mut spec = json!({"request": base64::engine::general_purpose::STANDARD.encode(pem), "signerName": signer, "usages": usages});
    if let Some(e) = expiration {
        spec["expirationSeconds"] = json!(e);
    }
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name}, "spec": spec}).to_string()
}

/// A kubeconfig for the cluster with the given user credentials.
fn kubectl_with(c: &TestCluster, label: &str, user: Value) -> Kubectl {
    let admin = c.kubectl();
    let raw = admin.json(&["config", "view", "--raw", "--minify", "-o", "json"]).expect("admin kubeconfig");
    let cluster = &raw["clusters"][0]["cluster"];
    let config = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {"server": cluster["server"], "certificate-authority-data": cluster["certificate-authority-data"]}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "u"}}],
    });
    let dir = c.data_dir().join("csr-users").join(label);
    std::fs::create_dir_all(&dir).expect("kubeconfig dir");
    let path = dir.join("kubeconfig");
    std::fs::write(&path, config.to_string()).expect("writing kubeconfig");
    Kubectl { bin: admin.bin.clone(), kubeconfig: path }
}

/// The issued certificate (PEM), once there.
fn wait_for_certificate(admin: &Kubectl, name: &str) -> String {
    wait_for(&format!("a certificate for {name}"), Duration::from_secs(20), || {
        let b64 = admin.ok(&["get", "csr", name, "-o", "jsonpath={.status.certificate}"]).ok()?;
        let pem = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
        (!pem.is_empty()).then(|| String::from_utf8_lossy(&pem).into_owned())
    })
}

fn condition_column(admin: &Kubectl, name: &str) -> String {
    let out = admin.ok(&["get", "csr", name, "--no-headers"]).expect("get csr");
    out.split_whitespace().last().unwrap_or_default().to_string()
}

#[test]
fn a_bootstrapping_kubelet_gets_an_auto_approved_node_certificate_limited_by_the_node_authorizer() {
    let c = cluster();
    let admin = c.kubectl();
    // A bootstrap token; rkube's default policy, like a kubeadm cluster's, lets its group create
    // CSRs and have node client certificates auto-approved.
    let token = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef", "usage-bootstrap-authentication": "true"},
    });
    admin.ok_stdin(&["create", "-f", "-"], &token.to_string()).expect("bootstrap token");
    let boot = kubectl_with(&c, "boot", json!({"token": "abcdef.0123456789abcdef"}));

    let (key, pem) = request("system:node:n3", &["system:nodes"]);
    let csr = csr_object("node-csr-n3", &pem, "kubernetes.io/kube-apiserver-client-kubelet", &["digital signature", "client auth"], None);
    boot.ok_stdin(&["create", "-f", "-"], &csr).expect("kubelet creates its CSR");
    let cert = wait_for_certificate(&admin, "node-csr-n3");

    let stored = admin.json(&["get", "csr", "node-csr-n3", "-o", "json"]).expect("csr");
    assert_eq!(stored["spec"]["username"], "system:bootstrap:abcdef", "{stored}");
    let approved = &stored["status"]["conditions"][0];
    assert_eq!((approved["type"].as_str(), approved["reason"].as_str()), (Some("Approved"), Some("AutoApproved")), "{stored}");
    assert_eq!(approved["message"], "Auto approving kubelet client certificate after SubjectAccessReview.");
    let table = admin.ok(&["get", "csr", "node-csr-n3"]).expect("get csr");
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], "{table}");
    assert!(table.contains("kubernetes.io/kube-apiserver-client-kubelet   system:bootstrap:abcdef   <none>              Approved,Issued"), "{table}");

    // The certificate is the node's identity, and the Node authorizer limits it.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let node = kubectl_with(&c, "n3", json!({"client-certificate-data": b64(&cert), "client-key-data": b64(&key.serialize_pem())}));
    let who = node.json(&["auth", "whoami", "-o", "json"]).expect("whoami");
    assert_eq!(who["status"]["userInfo"]["username"], "system:node:n3", "{who}");
    assert_eq!(who["status"]["userInfo"]["groups"], json!(["system:nodes", "system:authenticated"]), "{who}");
    admin.ok_stdin(&["create", "-f", "-"], &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}).to_string()).expect("node n1");
    let err = node.fails(&["get", "node", "n1"]).expect("other node");
    assert!(err.contains("node 'n3' cannot read 'n1', only its own Node object"), "{err}");
    admin.ok(&["create", "secret", "generic", "s", "--from-literal=k=v"]).expect("secret");
    let err = node.fails(&["get", "secret", "s"]).expect("unrelated secret");
    assert!(err.contains("no relationship found between node 'n3' and this object"), "{err}");
}

#[test]
fn client_certificates_wait_for_kubectl_certificate_approve_and_signer_rules_fail_bad_requests() {
    let c = cluster();
    let admin = c.kubectl();

    let (_, pem) = request("jane", &["devs"]);
    let out = admin.run_stdin(&["create", "-f", "-"], &csr_object("jane", &pem, "kubernetes.io/kube-apiserver-client", &["client auth"], Some(60))).expect("short");
    assert!(
        out.stderr.contains("The CertificateSigningRequest \"jane\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"),
        "{}",
        out.stderr
    );
    admin.ok_stdin(&["create", "-f", "-"], &csr_object("jane", &pem, "kubernetes.io/kube-apiserver-client", &["client auth"], Some(3600))).expect("jane's CSR");
    // Nobody gets a system:masters client certificate through the API.
    let (_, root) = request("root", &["system:masters"]);
    let out = admin.run_stdin(&["create", "-f", "-"], &csr_object("root", &root, "kubernetes.io/kube-apiserver-client", &["client auth"], None)).expect("root CSR");
    assert!(
        out.stderr.contains("certificatesigningrequests.certificates.k8s.io \"root\" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"),
        "{}",
        out.stderr
    );
    // Generic client certificates are never approved automatically.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(condition_column(&admin, "jane"), "Pending");
    let table = admin.ok(&["get", "csr", "jane"]).expect("get csr");
    assert!(table.contains("kubernetes.io/kube-apiserver-client   rkube-admin   60m                 Pending"), "{table}");

    let out = admin.ok(&["certificate", "approve", "jane"]).expect("approve");
    assert_eq!(out.trim(), "certificatesigningrequest.certificates.k8s.io/jane approved");
    let cert = wait_for_certificate(&admin, "jane");
    assert_eq!(condition_column(&admin, "jane"), "Approved,Issued");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("jane.crt");
    std::fs::write(&path, &cert).expect("write cert");
    let path_str = path.to_string_lossy().to_string();
    let openssl = std::process::Command::new("openssl").args(["x509", "-noout", "-subject", "-startdate", "-enddate", "-in", &path_str]).output().expect("openssl");
    let text = String::from_utf8_lossy(&openssl.stdout).to_string();
    assert!(text.contains("subject=O=devs, CN=jane") || text.contains("subject=O = devs, CN = jane"), "{text}");
    let date = |prefix: &str| {
        let line = text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_default().to_string();
        chrono::NaiveDateTime::parse_from_str(line.trim(), "%b %e %H:%M:%S %Y GMT").expect("date")
    };
    // Upstream's signing policy: valid from five minutes ago (clock skew) until the requested
    // hour from now; a lifetime under 8 hours keeps its end where it was asked for.
    assert_eq!((date("notAfter=") - date("notBefore=")).num_seconds(), 3600 + 300, "{text}");
    let issued_at = chrono::Utc::now().naive_utc();
    assert!((date("notAfter=") - issued_at).num_seconds().abs() <= 3600 + 60, "{text}");

    // Approving does not make a bad request good: the signer fails it with its reason.
    let (_, pem) = request("bob", &[]);
    admin.ok_stdin(&["create", "-f", "-"], &csr_object("bob", &pem, "kubernetes.io/kube-apiserver-client", &["client auth", "server auth"], None)).expect("bob's CSR");
    admin.ok(&["certificate", "approve", "bob"]).expect("approve bob");
    let failed = wait_for("bob's CSR to fail", Duration::from_secs(20), || {
        let v = admin.json(&["get", "csr", "bob", "-o", "json"]).ok()?;
        v["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Failed").cloned()
    });
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(failed["message"], "invalid usage for client certificate: server auth");
    assert_eq!(condition_column(&admin, "bob"), "Approved,Failed");

    // Denied requests stay without a certificate, and approval conditions cannot be taken back.
    let (_, pem) = request("eve", &[]);
    admin.ok_stdin(&["create", "-f", "-"], &csr_object("eve", &pem, "kubernetes.io/kube-apiserver-client", &["client auth"], None)).expect("eve's CSR");
    admin.ok(&["certificate", "deny", "eve"]).expect("deny");
    let err = admin.fails(&["certificate", "approve", "eve"]).expect("approve denied");
    assert!(err.contains("certificate signing request \"eve\" is already Denied"), "{err}");
    // kubectl checks that itself; the server refuses it too.
    let mut eve = admin.json(&["get", "csr", "eve", "-o", "json"]).expect("eve");
    if let Some(conditions) = eve["status"]["conditions"].as_array_mut() {
        conditions.push(json!({"type": "Approved", "status": "True", "reason": "Sneaky"}));
    }
    let file = c.data_dir().join("eve.json");
    std::fs::write(&file, eve.to_string()).expect("write eve");
    let file = file.to_string_lossy().to_string();
    let err = admin.fails(&["replace", "--raw", "/apis/certificates.k8s.io/v1/certificatesigningrequests/eve/approval", "-f", &file]).expect("raw approval");
    assert!(err.contains("status.conditions[1].type: Invalid value: \"Approved\": Approved and Denied conditions are mutually exclusive"), "{err}");
    assert_eq!(condition_column(&admin, "eve"), "Denied");

    // The approval subresource also takes patches (client-go's Patch with "approval"), and
    // changes nothing but the conditions.
    let (_, pem) = request("mallory", &[]);
    admin.ok_stdin(&["create", "-f", "-"], &csr_object("mallory", &pem, "kubernetes.io/kube-apiserver-client", &["client auth"], None)).expect("mallory's CSR");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
        let client = crate::kube_client::client(&admin.kubeconfig).await;
        let api = kube::Api::<CertificateSigningRequest>::all(client);
        let patch = json!({"spec": {"username": "system:admin"}, "status": {"conditions": [{"type": "Denied", "status": "True", "reason": "Suspicious"}]}});
        api.patch_subresource("approval", "mallory", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await.expect("patch approval");
    });
    let stored = admin.json(&["get", "csr", "mallory", "-o", "json"]).expect("mallory");
    assert_eq!(stored["spec"]["username"], "rkube-admin", "{stored}");
    assert_eq!(stored["status"]["conditions"][0]["reason"], "Suspicious", "{stored}");
    assert_eq!(condition_column(&admin, "mallory"), "Denied");
}
