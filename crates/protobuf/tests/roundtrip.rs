//! JSON → protobuf → JSON for realistic objects of many kinds. Every value below survives the
//! trip unchanged (no empty lists or zero-valued optional scalars, which protobuf cannot carry).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

use rkube_protobuf::{MAGIC, ProtoCodec, ProtoError};
use serde_json::{Value, json};

fn codec() -> ProtoCodec {
    ProtoCodec::new().expect("schema loads")
}

#[track_caller]
fn roundtrip(obj: Value) {
    let codec = codec();
    let bytes = codec.encode(&obj).unwrap_or_else(|e| panic!("encode: {e}"));
    assert!(bytes.starts_with(&MAGIC));
    let back = codec
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("decode: {e}"));
    assert_eq!(back, obj, "\nwant {obj:#}\ngot  {back:#}");
}

fn meta(name: &str) -> Value {
    json!({
        "name": name,
        "namespace": "default",
        "uid": "0c4b1bbd-0f2b-4b8e-9e0a-7a3d1c9f2b11",
        "resourceVersion": "42",
        "generation": 3,
        "creationTimestamp": "2024-01-02T03:04:05Z",
        "labels": {"app": name, "tier": "web"},
        "annotations": {"note": "hello"},
        "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1",
            "controller": true, "blockOwnerDeletion": true
        }],
        "finalizers": ["example.com/f"],
        "managedFields": [{
            "manager": "kubectl-create", "operation": "Update", "apiVersion": "v1",
            "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
        }]
    })
}

fn pod_spec() -> Value {
    json!({
        "volumes": [
            {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 420, "items": [{"key": "a", "path": "a.txt", "mode": 256}]}},
            {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "containers": [{
            "name": "web",
            "image": "registry.example/nginx:1.25",
            "args": ["--port", "8080"],
            "workingDir": "/srv",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090, "hostPort": 19090}],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "b", "optional": true}}},
                {"name": "C", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "D", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}
            ],
            "envFrom": [{"secretRef": {"name": "creds"}, "prefix": "X_"}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app", "readOnly": true}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 3, "periodSeconds": 10},
            "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 2},
            "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            "stdin": true,
            "tty": true
        }],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 0,
        "activeDeadlineSeconds": 600,
        "dnsPolicy": "ClusterFirst",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "serviceAccountName": "default",
        "automountServiceAccountToken": false,
        "nodeName": "node-1",
        "hostNetwork": true,
        "hostIPC": true,
        "securityContext": {"fsGroup": 2000, "runAsGroup": 3000, "seccompProfile": {"type": "RuntimeDefault"}},
        "imagePullSecrets": [{"name": "regcred"}],
        "hostname": "web-0",
        "subdomain": "web",
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}
        ]}}},
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        "priority": 0,
        "enableServiceLinks": true,
        "preemptionPolicy": "PreemptLowerPriority",
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]
    })
}

#[test]
fn pod() {
    roundtrip(json!({
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta("web-0"),
        "spec": pod_spec(),
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2024-01-02T03:04:06Z"}],
            "hostIP": "10.0.0.1",
            "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}],
            "startTime": "2024-01-02T03:04:05Z",
            "containerStatuses": [{
                "name": "web", "ready": false, "restartCount": 0, "image": "nginx", "imageID": "",
                "started": false,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2024-01-02T03:04:05Z", "finishedAt": null}},
                "lastState": {}
            }],
            "qosClass": "Burstable"
        }
    }));
}

#[test]
fn deployment_with_zero_replicas_and_int_or_string() {
    roundtrip(json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
            "revisionHistoryLimit": 0,
            "progressDeadlineSeconds": 600,
            "minReadySeconds": 5,
            "paused": true
        },
        "status": {"observedGeneration": 1, "replicas": 2, "conditions": [{
            "type": "Available", "status": "True", "lastUpdateTime": "2024-01-02T03:04:05Z",
            "lastTransitionTime": "2024-01-02T03:04:05Z", "reason": "MinimumReplicasAvailable", "message": "ok"
        }]}
    }));
}

#[test]
fn service_and_endpoints() {
    roundtrip(json!({
        "kind": "Service", "apiVersion": "v1", "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http", "nodePort": 30080},
                      {"name": "metrics", "port": 9090, "targetPort": 9091, "appProtocol": "http"}],
            "selector": {"app": "web"},
            "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::10"],
            "type": "NodePort", "externalIPs": ["1.2.3.4"], "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
            "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": false
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]}]}}
    }));
    roundtrip(json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "metadata": {"name": "web-abc"},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": false, "serving": true, "terminating": false}, "nodeName": "n1"}],
        "ports": [{"name": "", "port": 0, "protocol": "TCP"}]
    }));
}

#[test]
fn secret_with_binary_data_and_configmap() {
    roundtrip(json!({
        "kind": "Secret", "apiVersion": "v1", "metadata": {"name": "tls", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "AAECAwT/", "tls.key": "c2VjcmV0", "empty": ""},
        "immutable": false
    }));
    roundtrip(json!({
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"a": "1", "b.yaml": "x: y\n", "empty": ""},
        "binaryData": {"blob": "3q2+7w=="},
        "immutable": true
    }));
}

#[test]
fn rbac_namespace_and_lists() {
    roundtrip(json!({
        "kind": "Role", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "reader", "namespace": "default"},
        "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]},
                  {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["*"]}]
    }));
    roundtrip(json!({
        "kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1", "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kube-system"}]
    }));
    roundtrip(json!({
        "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
    }));
    roundtrip(json!({
        "kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "100", "continue": "abc", "remainingItemCount": 0},
        "items": [{"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
                  {"metadata": {"name": "b"}, "status": {"phase": "Pending"}}]
    }));
    roundtrip(json!({
        "kind": "List", "apiVersion": "v1", "metadata": {},
        "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}]
    }));
}

#[test]
fn status_and_delete_options() {
    roundtrip(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": "pods \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "message": "bad", "field": "spec"}]},
        "code": 404
    }));
    roundtrip(json!({
        "kind": "DeleteOptions", "apiVersion": "apps/v1",
        "gracePeriodSeconds": 0, "propagationPolicy": "Background", "dryRun": ["All"],
        "preconditions": {"uid": "u", "resourceVersion": "7"}
    }));
}

#[test]
fn auth_reviews_and_subresources() {
    roundtrip(json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "metadata": {"name": "default", "namespace": "default"},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                 "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}},
        "status": {"token": "eyJhbGciOi", "expirationTimestamp": "2024-01-02T04:04:05Z"}
    }));
    roundtrip(json!({
        "kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods"}},
        "status": {"allowed": false, "reason": "no RBAC policy matched"}
    }));
    roundtrip(json!({
        "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
        "spec": {"namespace": "default"},
        "status": {"resourceRules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}],
                   "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}], "incomplete": false}
    }));
    roundtrip(json!({
        "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
        "spec": {"user": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}, "uid": "1",
                 "nonResourceAttributes": {"path": "/api", "verb": "get"}},
        "status": {"allowed": true}
    }));
    roundtrip(json!({
        "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"], "extra": {"k": ["v"]}}}
    }));
    roundtrip(
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"},
                     "spec": {"replicas": 3}, "status": {"replicas": 0, "selector": "app=web"}}),
    );
    roundtrip(
        json!({"kind": "Eviction", "apiVersion": "policy/v1", "metadata": {"name": "p", "namespace": "default"},
                     "deleteOptions": {"gracePeriodSeconds": 30}}),
    );
    roundtrip(
        json!({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "p"},
                     "target": {"kind": "Node", "name": "node-1"}}),
    );
}

#[test]
fn times_durations_raw_extensions() {
    roundtrip(json!({
        "kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": {"name": "e"},
        "eventTime": "2024-01-02T03:04:05.123456Z", "reportingController": "c", "reportingInstance": "i",
        "action": "Scheduled", "reason": "Scheduled", "regarding": {"kind": "Pod", "name": "p"},
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000001Z"}, "type": "Normal"
    }));
    roundtrip(json!({
        "kind": "ControllerRevision", "apiVersion": "apps/v1", "metadata": {"name": "r"},
        "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 0
    }));
    roundtrip(json!({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": {"name": "l"},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 15, "acquireTime": "2024-01-02T03:04:05.000000Z",
                 "renewTime": "2024-01-02T03:04:05.500000Z", "leaseTransitions": 0}
    }));
    roundtrip(json!({
        "kind": "CronJob", "apiVersion": "batch/v1", "metadata": {"name": "c"},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "suspend": false, "successfulJobsHistoryLimit": 0,
                 "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                   "containers": [{"name": "c", "image": "busybox"}]}}}}}
    }));
}

#[test]
fn crd_schema_special_forms() {
    roundtrip(json!({
        "kind": "CustomResourceDefinition", "apiVersion": "apiextensions.k8s.io/v1",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"size": {"type": "integer", "minimum": 0, "maximum": 10, "default": 3},
                                                "mode": {"type": "string", "enum": ["a", "b"]},
                                                "tags": {"type": "array", "items": {"type": "string"}},
                                                "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
                                 "required": ["size"]},
                        "anything": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "closed": {"type": "object", "additionalProperties": false},
                        "legacy": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
                        "deps": {"type": "object", "dependencies": {"a": ["b", "c"], "d": {"required": ["e"]}}}
                    }
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.size", "statusReplicasPath": ".status.size"}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
            }]
        }
    }));
}

#[test]
fn volume_and_probe_inline_members() {
    // Volume embeds VolumeSource, Probe embeds ProbeHandler, ConfigMapVolumeSource embeds
    // LocalObjectReference: their fields sit in the parent JSON object.
    let codec = codec();
    let pod =
        json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}, "spec": pod_spec()});
    let bytes = codec.encode(&pod).expect("encode");
    let back = codec.decode(&bytes).expect("decode");
    assert_eq!(
        back["spec"]["volumes"][0]["configMap"]["name"],
        "app-config"
    );
    assert_eq!(
        back["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
        8080
    );
    assert_eq!(
        back["spec"]["containers"][0]["readinessProbe"]["tcpSocket"]["port"],
        "http"
    );
}

#[test]
fn absent_and_zero_optionals() {
    let codec = codec();
    let absent = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"}, "spec": {"template": {}}});
    let back = codec
        .decode(&codec.encode(&absent).expect("encode"))
        .expect("decode");
    assert_eq!(back, absent);
    assert!(back["spec"].get("replicas").is_none());
    let zero = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"}, "spec": {"replicas": 0}});
    let bytes = codec.encode(&zero).expect("encode");
    assert_eq!(codec.decode(&bytes).expect("decode")["spec"]["replicas"], 0);
    // A non-pointer Go field at zero is omitted by Go's JSON (omitempty) and here.
    let noisy = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d", "namespace": ""},
                       "spec": {"minReadySeconds": 0, "paused": false}});
    let back = codec
        .decode(&codec.encode(&noisy).expect("encode"))
        .expect("decode");
    assert_eq!(
        back,
        json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"}, "spec": {}})
    );
}

#[test]
fn errors_are_precise() {
    let codec = codec();
    let bad = json!({"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "d"},
                     "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}}}});
    let err = codec.encode(&bad).expect_err("string port").to_string();
    assert_eq!(
        err,
        "invalid value for Deployment at spec.template.spec.containers[0].ports[0].containerPort: expected an integer, got a string"
    );
    let big = json!({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 4_000_000_000u64}});
    assert!(
        codec
            .encode(&big)
            .expect_err("overflow")
            .to_string()
            .contains("does not fit in int32")
    );
    assert!(matches!(codec.decode(b"{}"), Err(ProtoError::MissingMagic)));
    assert!(matches!(codec.decode(b"k8s\0"), Err(ProtoError::EmptyBody)));
    let table = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1"});
    assert!(matches!(
        codec.encode(&table),
        Err(ProtoError::UnsupportedKind { .. })
    ));
    assert!(!codec.supports("meta.k8s.io/v1", "Table"));
    assert!(!codec.supports("example.com/v1", "Widget"));
    assert!(codec.supports("v1", "Status") && codec.supports("apps/v1", "DeploymentList"));
    assert!(codec.supports("meta.k8s.io/v1", "PartialObjectMetadataList"));
    // truncated body
    let bytes = codec
        .encode(&json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p"}}))
        .expect("encode");
    let err = codec
        .decode(&bytes[..bytes.len() - 6])
        .expect_err("truncated");
    assert!(matches!(err, ProtoError::Malformed { .. }), "{err}");
}

#[test]
fn watch_event_frames() {
    let codec = codec();
    let pod = json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "resourceVersion": "5"}});
    let frame = codec.encode_watch_event("ADDED", &pod).expect("frame");
    let len = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    assert_eq!(len, frame.len() - 4);
    // WatchEvent{type=1 "ADDED", object=2 RawExtension{raw=1 <envelope>}}
    assert_eq!(&frame[4..11], b"\x0a\x05ADDED");
    let envelope = codec.encode(&pod).expect("encode");
    assert!(
        frame
            .windows(envelope.len())
            .any(|w| w == envelope.as_slice())
    );
    assert_eq!(
        codec.decode_watch_event(&frame).expect("decode"),
        ("ADDED".to_owned(), pod)
    );
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version", "reason": "Expired", "code": 410});
    let frame = codec.encode_watch_event("ERROR", &status).expect("frame");
    assert_eq!(codec.decode_watch_event(&frame).expect("decode").1, status);
    assert!(codec.decode_watch_event(&frame[..frame.len() - 1]).is_err());
}
