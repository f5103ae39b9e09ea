//! Rough per-operation cost; run with
//! `cargo test --release -p rkube-protobuf --test timing -- --ignored --nocapture`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

use std::time::Instant;

use rkube_protobuf::ProtoCodec;
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": "web-7d4b9c8f6d-x2x9k", "generateName": "web-7d4b9c8f6d-", "namespace": "default",
            "uid": "0c4b1bbd-0f2b-4b8e-9e0a-7a3d1c9f2b11", "resourceVersion": "123456",
            "creationTimestamp": "2024-01-02T03:04:05Z",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6d"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c8f6d",
                                 "uid": "u-1", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                               "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                               "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}}}}}]
        },
        "spec": {
            "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "containers": [{
                "name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
                "livenessProbe": {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
                                  "successThreshold": 1, "failureThreshold": 3},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "nodeName": "node-1", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:09Z"},
                           {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:05Z"}],
            "hostIP": "10.0.0.1", "podIP": "10.244.0.5", "podIPs": [{"ip": "10.244.0.5"}], "startTime": "2024-01-02T03:04:05Z",
            "containerStatuses": [{"name": "nginx", "state": {"running": {"startedAt": "2024-01-02T03:04:08Z"}}, "lastState": {},
                                   "ready": true, "restartCount": 0, "image": "nginx:1.25", "imageID": "docker.io/library/nginx@sha256:abc",
                                   "containerID": "containerd://abc", "started": true}],
            "qosClass": "Burstable"
        }
    })
}

#[test]
#[ignore = "timing; run explicitly in release mode"]
fn pod_encode_decode_timing() {
    let t = Instant::now();
    let codec = ProtoCodec::new().expect("schema");
    let init = t.elapsed();
    let pod = pod();
    let bytes = codec.encode(&pod).expect("encode");
    let json_len = serde_json::to_vec(&pod).expect("json").len();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(codec.encode(std::hint::black_box(&pod)).expect("encode"));
    }
    let enc = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(codec.decode(std::hint::black_box(&bytes)).expect("decode"));
    }
    let dec = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::to_vec(std::hint::black_box(&pod)).expect("json"));
    }
    let json_enc = t.elapsed() / n;
    println!(
        "ProtoCodec::new {init:?}; Pod ({} protobuf bytes, {json_len} JSON bytes): encode {enc:?}/op, decode {dec:?}/op (serde_json::to_vec of the same Value: {json_enc:?}/op)",
        bytes.len()
    );
}

#[test]
#[ignore = "timing"]
fn init_timing() {
    for _ in 0..3 {
        let t = Instant::now();
        let _codec = ProtoCodec::new().expect("schema");
        println!("ProtoCodec::new {:?}", t.elapsed());
    }
}
