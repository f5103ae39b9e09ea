//! The real kubectl decodes our protobuf responses: a throwaway HTTP listener answers
//! `kubectl create ... -o json` / `auth whoami -o json` with our encoding of a canned object,
//! and kubectl's printed JSON must equal that object. Skipped when no kubectl 1.33 binary is
//! found (`KUBECTL` overrides the search).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use rkube_protobuf::{CONTENT_TYPE, ProtoCodec};
use serde_json::{Value, json};

fn kubectl() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push("/usr/lib/google-cloud-sdk/bin".into());
    dirs.into_iter()
        .map(|d| d.join("kubectl.1.33"))
        .find(|p| p.is_file())
}

/// Serves every POST with `reply` encoded as protobuf, until the listener is dropped.
fn serve(codec: Arc<ProtoCodec>, reply: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let (status, content_type, payload) = if request_line.starts_with("POST") {
                (
                    "201 Created",
                    CONTENT_TYPE,
                    codec.encode(&reply).expect("encode reply"),
                )
            } else {
                (
                    "404 Not Found",
                    "application/json",
                    br#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}"#
                        .to_vec(),
                )
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&payload));
        }
    });
    format!("http://{addr}")
}

fn run(kubectl: &PathBuf, server: &str, args: &[&str]) -> Value {
    let cache = std::env::temp_dir().join(format!(
        "rkube-protobuf-kubectl-cache-{}",
        std::process::id()
    ));
    let out = std::process::Command::new(kubectl)
        .arg(format!("--server={server}"))
        .arg(format!("--cache-dir={}", cache.display()))
        .args(["-n", "default"])
        .args(args)
        .env("KUBECONFIG", "/dev/null")
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl printed JSON")
}

#[test]
fn kubectl_prints_what_we_encoded() {
    let Some(kubectl) = kubectl() else {
        eprintln!("skipped: kubectl.1.33 not found");
        return;
    };
    let codec = Arc::new(ProtoCodec::new().expect("schema"));
    // Written in the form Go prints (required zero fields present, optional zeros absent).
    let deployment = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {
            "name": "web", "namespace": "default", "uid": "6a1f", "resourceVersion": "17", "generation": 1,
            "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "web"},
            "managedFields": [{"manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
                               "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
        },
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {
                    "volumes": [{"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}}],
                    "containers": [{
                        "name": "nginx", "image": "nginx",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                        "resources": {"limits": {"cpu": "500m"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http", "scheme": "HTTP"},
                                          "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                        "imagePullPolicy": "Always",
                        "securityContext": {"runAsUser": 0}
                    }],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
        },
        "status": {"observedGeneration": 1, "replicas": 2, "conditions": [{
            "type": "Progressing", "status": "True", "lastUpdateTime": "2024-01-02T03:04:05Z",
            "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "NewReplicaSetAvailable", "message": "ok"}]}
    });
    let server = serve(codec.clone(), deployment.clone());
    let printed = run(
        &kubectl,
        &server,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    );
    assert_eq!(printed, deployment, "\n{printed:#}");

    let review = json!({
        "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": "2024-01-02T03:04:05Z"},
        "status": {"userInfo": {"username": "kubernetes-admin", "uid": "1",
                                "groups": ["system:masters", "system:authenticated"], "extra": {"scope": ["a", "b"]}}}
    });
    let server = serve(codec.clone(), review.clone());
    assert_eq!(
        run(&kubectl, &server, &["auth", "whoami", "-o", "json"]),
        review
    );

    let secret = json!({
        "kind": "Secret", "apiVersion": "v1",
        "metadata": {"name": "s", "namespace": "default", "creationTimestamp": "2024-01-02T03:04:05Z"},
        "data": {"bin": "AAEC/w==", "empty": ""}, "type": "Opaque"
    });
    let server = serve(codec, secret.clone());
    assert_eq!(
        run(
            &kubectl,
            &server,
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=x=y",
                "-o",
                "json"
            ]
        ),
        secret
    );
}
