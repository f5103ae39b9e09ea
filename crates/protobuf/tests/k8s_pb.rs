//! Interoperability with an independent protobuf implementation: the prost structs of the
//! k8s-pb crate. Bytes produced by k8s-pb are decoded by us and vice versa.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)] // test code

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use rkube_protobuf::ProtoCodec;
use serde_json::json;
use std::collections::BTreeMap;

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), "x".to_owned())])
}

fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn unwrap_envelope(body: &[u8]) -> (TypeMeta, Vec<u8>) {
    let unknown = Unknown::decode(&body[4..]).expect("Unknown");
    (
        unknown.type_meta.expect("typeMeta"),
        unknown.raw.expect("raw"),
    )
}

/// What `kubectl create deployment x --image=nginx` builds, written the way Go's generated
/// marshallers write it: non-pointer fields are always present, even when zero.
fn kubectl_style_deployment() -> apps::Deployment {
    let empty_meta = |labels: BTreeMap<String, String>, name: &str| meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels,
        ..Default::default()
    };
    apps::Deployment {
        metadata: Some(empty_meta(labels(), "x")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(1),
            selector: Some(meta::LabelSelector {
                match_labels: labels(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(empty_meta(labels(), "")),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: s("nginx"),
                        image: s("nginx"),
                        working_dir: s(""),
                        resources: Some(core::ResourceRequirements::default()),
                        termination_message_path: s(""),
                        image_pull_policy: s(""),
                        stdin: Some(false),
                        stdin_once: Some(false),
                        tty: Some(false),
                        ..Default::default()
                    }],
                    restart_policy: s(""),
                    dns_policy: s(""),
                    service_account_name: s(""),
                    host_network: Some(false),
                    scheduler_name: s(""),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    }
}

#[test]
fn decodes_a_kubectl_style_deployment_from_k8s_pb() {
    let codec = ProtoCodec::new().expect("schema");
    let body = envelope(
        "apps/v1",
        "Deployment",
        kubectl_style_deployment().encode_to_vec(),
    );
    let got = codec.decode(&body).expect("decode");
    // The JSON Go's encoding/json would print for the same object.
    let want = json!({
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "x", "creationTimestamp": null, "labels": {"app": "x"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "x"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "x"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
            },
            "strategy": {}
        },
        "status": {}
    });
    assert_eq!(got, want, "\n{got:#}");
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(got["spec"]["selector"]["matchLabels"]["app"], "x");
}

#[test]
fn our_bytes_decode_into_k8s_pb_structs() {
    let codec = ProtoCodec::new().expect("schema");
    let obj = json!({
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "creationTimestamp": "2024-01-02T03:04:05Z", "generation": 2},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                                "resources": {"limits": {"cpu": "500m"}},
                                "readinessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
                "volumes": [{"name": "v", "secret": {"secretName": "s", "defaultMode": 0}}],
                "terminationGracePeriodSeconds": 0
            }},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
        }
    });
    let (type_meta, raw) = unwrap_envelope(&codec.encode(&obj).expect("encode"));
    assert_eq!(
        (type_meta.api_version.as_deref(), type_meta.kind.as_deref()),
        (Some("apps/v1"), Some("Deployment"))
    );
    let d = apps::Deployment::decode(raw.as_slice()).expect("k8s-pb decodes our bytes");
    let m = d.metadata.expect("metadata");
    assert_eq!(m.name.as_deref(), Some("web"));
    assert_eq!(m.generation, Some(2));
    assert_eq!(
        m.creation_timestamp.and_then(|t| t.seconds),
        Some(1_704_164_645)
    );
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(0), "explicit zero survives");
    assert_eq!(spec.min_ready_seconds, None, "absent stays absent");
    let strategy = spec.strategy.expect("strategy");
    let ru = strategy.rolling_update.expect("rollingUpdate");
    assert_eq!(
        ru.max_surge,
        Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: s("25%")
        })
    );
    assert_eq!(
        ru.max_unavailable,
        Some(IntOrString {
            r#type: Some(0),
            int_val: Some(0),
            str_val: s("")
        })
    );
    let pod = spec.template.expect("template").spec.expect("pod spec");
    assert_eq!(pod.termination_grace_period_seconds, Some(0));
    let c = &pod.containers[0];
    assert_eq!(c.ports[0].container_port, Some(80));
    assert_eq!(
        c.resources
            .as_ref()
            .and_then(|r| r.limits.get("cpu"))
            .cloned(),
        Some(Quantity { string: s("500m") })
    );
    let probe = c.readiness_probe.as_ref().expect("probe");
    let http = probe
        .handler
        .as_ref()
        .and_then(|h| h.http_get.as_ref())
        .expect("inline ProbeHandler");
    assert_eq!(
        http.port.as_ref().and_then(|p| p.str_val.as_deref()),
        Some("http")
    );
    let vol = &pod.volumes[0];
    let secret = vol
        .volume_source
        .as_ref()
        .and_then(|v| v.secret.as_ref())
        .expect("inline VolumeSource");
    assert_eq!(
        (secret.secret_name.as_deref(), secret.default_mode),
        (Some("s"), Some(0))
    );
}

#[test]
fn secret_bytes_both_ways() {
    let codec = ProtoCodec::new().expect("schema");
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: s("tls"),
            ..Default::default()
        }),
        data: BTreeMap::from([
            ("bin".to_owned(), vec![0u8, 1, 2, 255]),
            ("txt".to_owned(), b"hi".to_vec()),
        ]),
        r#type: s("Opaque"),
        ..Default::default()
    };
    let got = codec
        .decode(&envelope("v1", "Secret", secret.encode_to_vec()))
        .expect("decode");
    assert_eq!(got["data"], json!({"bin": "AAEC/w==", "txt": "aGk="}));
    let (_, raw) = unwrap_envelope(&codec.encode(&got).expect("encode"));
    assert_eq!(
        core::Secret::decode(raw.as_slice()).expect("decode"),
        secret
    );
}

#[test]
fn int_or_string_from_k8s_pb() {
    let codec = ProtoCodec::new().expect("schema");
    let svc = core::Service {
        metadata: Some(meta::ObjectMeta {
            name: s("s"),
            ..Default::default()
        }),
        spec: Some(core::ServiceSpec {
            ports: vec![
                core::ServicePort {
                    port: Some(80),
                    target_port: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: s(""),
                    }),
                    node_port: Some(0),
                    ..Default::default()
                },
                core::ServicePort {
                    port: Some(443),
                    target_port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: s("https"),
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }),
        status: None,
    };
    let got = codec
        .decode(&envelope("v1", "Service", svc.encode_to_vec()))
        .expect("decode");
    assert_eq!(
        got["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": "https"}])
    );
}
