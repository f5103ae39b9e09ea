//! Admission webhooks served by the test over HTTPS with its own CA (`caBundle`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::api_only_cluster;

/// Answers AdmissionReviews by path: `/mutate` adds `data.mutated`, `/validate` denies names
/// starting with `bad` and warns otherwise, `/slow` answers after 5 s.
async fn answer(req: hyper::Request<hyper::body::Incoming>) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request = &review["request"];
    let uid = request["uid"].clone();
    let name = request["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
    let response = match path.as_str() {
        "/mutate" => {
            let patch = json!([{"op": "add", "path": "/data/mutated", "value": format!("by-webhook-dryRun-{}", request["dryRun"])}]);
            let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
            json!({"uid": uid, "allowed": true, "patchType": "JSONPatch", "patch": patch})
        }
        "/validate" if name.starts_with("bad") => {
            json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": format!("name {name} is not allowed")}})
        }
        "/validate" => json!({"uid": uid, "allowed": true, "warnings": [format!("{name} was checked")]}),
        _ => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            json!({"uid": uid, "allowed": true})
        }
    };
    let out = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
    Ok(hyper::Response::new(Full::new(Bytes::from(out.to_string()))))
}

/// Starts the webhook server on a free port; returns its address and the CA (PEM).
fn start_webhook_server() -> (SocketAddr, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    let certs = vec![cert.der().clone()];
    let private = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer)).await;
                });
            }
        });
    });
    (addr, ca_cert.pem())
}

fn hook(name: &str, url: &str, ca: &str, resource: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": base64::engine::general_purpose::STANDARD.encode(ca)},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": [resource]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    if let (Some(h), Some(extra)) = (h.as_object_mut(), extra.as_object()) {
        h.extend(extra.clone());
    }
    h
}

#[test]
fn webhooks_mutate_deny_warn_fail_and_time_out() {
    let (addr, ca) = start_webhook_server();
    let base = format!("https://localhost:{}", addr.port());
    let c = api_only_cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "hooked"]).unwrap();
    k.ok(&["label", "namespace", "hooked", "webhooks=on"]).unwrap();
    k.ok(&["create", "namespace", "plain"]).unwrap();
    let selector = json!({"namespaceSelector": {"matchLabels": {"webhooks": "on"}}});
    let mutating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "mutator"},
        "webhooks": [hook("mutate.example.com", &format!("{base}/mutate"), &ca, "configmaps", selector.clone())],
    });
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "validator"},
        "webhooks": [
            hook("validate.example.com", &format!("{base}/validate"), &ca, "configmaps", selector),
            hook("down-ignore.example.com", "https://localhost:1/down", &ca, "secrets", json!({"failurePolicy": "Ignore"})),
            hook("down-fail.example.com", "https://localhost:1/down", &ca, "serviceaccounts", json!({"failurePolicy": "Fail"})),
            hook("slow.example.com", &format!("{base}/slow"), &ca, "services", json!({"timeoutSeconds": 1, "failurePolicy": "Fail"})),
        ],
    });
    k.ok_stdin(&["create", "-f", "-"], &mutating.to_string()).unwrap();
    k.ok_stdin(&["create", "-f", "-"], &validating.to_string()).unwrap();

    // A JSON patch applied, and the validating webhook's warning printed by kubectl.
    let o = k.run(&["create", "configmap", "good", "-n", "hooked", "--from-literal=a=b"]).unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(o.stderr.contains("Warning: good was checked"), "{}", o.stderr);
    let cm = k.json(&["get", "configmap", "good", "-n", "hooked", "-o", "json"]).unwrap();
    assert_eq!(cm["data"]["mutated"], "by-webhook-dryRun-false", "{cm}");
    // Dry runs reach webhooks with dryRun=true (sideEffects None allows it).
    let dry = k.json(&["create", "configmap", "dry", "-n", "hooked", "--from-literal=a=b", "--dry-run=server", "-o", "json"]).unwrap();
    assert_eq!(dry["data"]["mutated"], "by-webhook-dryRun-true", "{dry}");

    // namespaceSelector: the unlabelled namespace is left alone.
    k.ok(&["create", "configmap", "bad-but-plain", "-n", "plain", "--from-literal=a=b"]).unwrap();
    let cm = k.json(&["get", "configmap", "bad-but-plain", "-n", "plain", "-o", "json"]).unwrap();
    assert!(cm["data"]["mutated"].is_null(), "{cm}");

    // A denial surfaced with the webhook's message.
    let err = k.fails(&["create", "configmap", "bad1", "-n", "hooked", "--from-literal=a=b"]).unwrap();
    assert!(err.contains("admission webhook \"validate.example.com\" denied the request: name bad1 is not allowed"), "{err}");

    // A webhook that is down: Ignore lets the write through, Fail refuses it.
    k.ok(&["create", "secret", "generic", "s", "--from-literal=a=b"]).unwrap();
    let err = k.fails(&["create", "serviceaccount", "robot"]).unwrap();
    assert!(err.contains("failed calling webhook \"down-fail.example.com\""), "{err}");

    // timeoutSeconds is respected.
    let started = Instant::now();
    let err = k.fails(&["create", "service", "clusterip", "slow", "--tcp=80"]).unwrap();
    assert!(err.contains("failed calling webhook \"slow.example.com\"") && err.contains("context deadline exceeded"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn webhook_match_conditions_select_the_requests_a_webhook_sees() {
    let (addr, ca) = start_webhook_server();
    let base = format!("https://localhost:{}", addr.port());
    let c = api_only_cluster();
    let k = c.kubectl();
    let skip_labelled = json!({"matchConditions": [
        {"name": "not-opted-out", "expression": "!has(object.metadata.labels) || !('skip-webhook' in object.metadata.labels)"},
        {"name": "creates-only", "expression": "request.operation == 'CREATE' && oldObject == null"},
    ]});
    let broken = |policy: &str| json!({"failurePolicy": policy, "matchConditions": [{"name": "broken", "expression": "object.data.missing == 'x'"}]});
    let validating = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "conditional"},
        "webhooks": [
            hook("validate.example.com", &format!("{base}/validate"), &ca, "configmaps", skip_labelled),
            hook("broken-fail.example.com", &format!("{base}/validate"), &ca, "secrets", broken("Fail")),
            hook("broken-ignore.example.com", &format!("{base}/validate"), &ca, "serviceaccounts", broken("Ignore")),
        ],
    });
    k.ok_stdin(&["create", "-f", "-"], &validating.to_string()).unwrap();

    // The webhook denies names starting with "bad"; a labelled object is excluded by the
    // condition, so the webhook is never called for it (no denial, no warning).
    let o = k
        .run_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad-but-excluded, labels: {skip-webhook: 'yes'}}\ndata: {a: b}\n")
        .unwrap();
    assert!(o.success, "{}", o.stderr);
    assert!(!o.stderr.contains("was checked"), "{}", o.stderr);
    let err = k.fails(&["create", "configmap", "bad-included", "--from-literal=a=b"]).unwrap();
    assert!(err.contains("admission webhook \"validate.example.com\" denied the request: name bad-included is not allowed"), "{err}");
    let o = k.run(&["create", "configmap", "fine", "--from-literal=a=b"]).unwrap();
    assert!(o.success && o.stderr.contains("Warning: fine was checked"), "{}", o.stderr);

    // A condition that fails to evaluate: failurePolicy Fail refuses, Ignore skips the webhook.
    let err = k.fails(&["create", "secret", "generic", "s", "--from-literal=a=b"]).unwrap();
    assert!(err.contains("secrets \"s\" is forbidden: expression 'object.data.missing == 'x'' resulted in error:"), "{err}");
    let o = k.run(&["create", "serviceaccount", "robot"]).unwrap();
    assert!(o.success && !o.stderr.contains("was checked"), "{}", o.stderr);

    // Expressions are compiled when the configuration is written.
    let invalid = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "invalid"},
        "webhooks": [hook("x.example.com", &format!("{base}/validate"), &ca, "pods", json!({"matchConditions": [{"name": "c", "expression": "object.x =="}]}))],
    });
    let o = k.run_stdin(&["create", "-f", "-"], &invalid.to_string()).unwrap();
    assert!(!o.success);
    assert!(
        o.stderr.contains(
            "The ValidatingWebhookConfiguration \"invalid\" is invalid: webhooks[0].matchConditions[0].expression: Invalid value: \"object.x ==\": compilation failed: ERROR: <input>:1:"
        ),
        "{}",
        o.stderr
    );
}
