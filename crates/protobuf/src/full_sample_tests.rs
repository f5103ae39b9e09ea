//! Every field of Pod, Service, Deployment (and everything they contain): a sample object with
//! all fields set is generated from the schema, must survive JSON → protobuf → JSON unchanged,
//! and must survive a trip through k8s-openapi's typed structs, which drop any JSON key
//! upstream does not define, so a misspelled JSON name fails here.

use serde_json::{Map, Value, json};

use crate::ProtoCodec;
use crate::schema::{Card, Schema, Special, ValueType};

fn sample(schema: &Schema, msg: usize, path: &mut Vec<usize>) -> Value {
    let plan = &schema.messages[msg];
    match plan.special {
        Special::Time => return json!("2024-01-02T03:04:05Z"),
        Special::MicroTime => return json!("2024-01-02T03:04:05.123456Z"),
        Special::Duration => return json!("1m30s"),
        Special::IntOrString => return json!(8080),
        Special::Quantity => return json!("100m"),
        Special::RawJson => return json!({"a": 1}),
        Special::Slice => return json!(["x"]),
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            return json!(true);
        }
        Special::None => {}
    }
    let mut out = Map::new();
    fill(schema, msg, path, &mut out);
    Value::Object(out)
}

fn fill(schema: &Schema, msg: usize, path: &mut Vec<usize>, out: &mut Map<String, Value>) {
    path.push(msg);
    for f in &schema.messages[msg].fields {
        let one = |path: &mut Vec<usize>| match f.ty {
            ValueType::Int32 | ValueType::Int64 => Some(json!(7)),
            ValueType::Bool => Some(json!(true)),
            ValueType::Double | ValueType::Float => Some(json!(1.5)),
            ValueType::String => Some(json!("s")),
            ValueType::Bytes => Some(json!("aGk=")),
            ValueType::Message(m) if path.contains(&m) => None,
            ValueType::Message(m) => Some(sample(schema, m, path)),
        };
        if f.inline {
            if let ValueType::Message(m) = f.ty {
                fill(schema, m, path, out);
            }
            continue;
        }
        let Some(v) = one(path) else { continue };
        let v = match f.card {
            Card::Single => v,
            Card::Repeated => json!([v]),
            Card::Map => json!({"k": v}),
        };
        out.insert(f.json_name.clone(), v);
    }
    path.pop();
}

/// JSON keys in `want` that are missing or different in `got`, as paths.
fn diff(want: &Value, got: &Value, path: String, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(wv, gv, format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff(wv, gv, format!("{path}[{i}]"), out);
            }
        }
        (w, g) if w != g => out.push(format!("{path}: {w} != {g}")),
        _ => {}
    }
}

fn check<T: k8s_openapi::serde::de::DeserializeOwned + k8s_openapi::serde::Serialize>(
    api_version: &str,
    kind: &str,
) {
    let codec = ProtoCodec::new().expect("schema");
    let msg = codec.schema.lookup(api_version, kind).expect("kind");
    let mut obj = Map::new();
    obj.insert("kind".into(), json!(kind));
    obj.insert("apiVersion".into(), json!(api_version));
    if let Value::Object(fields) = sample(&codec.schema, msg, &mut Vec::new()) {
        obj.extend(fields);
    }
    let obj = Value::Object(obj);
    let back = codec
        .decode(&codec.encode(&obj).expect("encode"))
        .expect("decode");
    let mut lost = Vec::new();
    diff(&obj, &back, String::new(), &mut lost);
    assert!(lost.is_empty(), "{kind} protobuf round trip lost {lost:#?}");

    let typed: T = serde_json::from_value(obj.clone()).expect("k8s-openapi accepts the sample");
    let openapi = serde_json::to_value(&typed).expect("serialize");
    let mut unknown = Vec::new();
    diff(&obj, &openapi, String::new(), &mut unknown);
    unknown.retain(|p| {
        let last = p.rsplit('.').next().unwrap_or_default();
        !NEWER_KEYS.contains(&last) && !NEWER_PATHS.contains(&p.as_str())
    });
    assert!(
        unknown.is_empty(),
        "{kind}: JSON keys k8s-openapi (1.33) does not know: {unknown:#?}"
    );
}

/// Fields added after Kubernetes 1.33 (the descriptor is generated from 1.35 protos), which
/// k8s-openapi's v1_33 types do not have: keys that are new wherever they appear, and paths
/// where an older key name is new (pod-level `status.resources`).
const NEWER_KEYS: &[&str] = &[
    "declaredFeatures",
    "serviceAccountTokenInSecrets",
    "podCertificate",
    "fileKeyRef",
    "restartPolicyRules",
    "hostnameOverride",
    "workloadRef",
    "extendedResourceClaimStatus",
];
const NEWER_PATHS: &[&str] = &[".status.allocatedResources", ".status.resources"];

#[test]
fn every_field_of_pod() {
    check::<k8s_openapi::api::core::v1::Pod>("v1", "Pod");
}

#[test]
fn every_field_of_service() {
    check::<k8s_openapi::api::core::v1::Service>("v1", "Service");
}

#[test]
fn every_field_of_deployment() {
    check::<k8s_openapi::api::apps::v1::Deployment>("apps/v1", "Deployment");
}

/// The same check for most other built-in kinds.
#[test]
fn every_field_of_other_kinds() {
    use k8s_openapi::api as a;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as agg;
    check::<a::core::v1::Node>("v1", "Node");
    check::<a::core::v1::PersistentVolume>("v1", "PersistentVolume");
    check::<a::core::v1::PersistentVolumeClaim>("v1", "PersistentVolumeClaim");
    check::<a::core::v1::Event>("v1", "Event");
    check::<a::core::v1::ResourceQuota>("v1", "ResourceQuota");
    check::<a::core::v1::LimitRange>("v1", "LimitRange");
    check::<a::core::v1::Endpoints>("v1", "Endpoints");
    check::<a::core::v1::ServiceAccount>("v1", "ServiceAccount");
    check::<a::apps::v1::StatefulSet>("apps/v1", "StatefulSet");
    check::<a::apps::v1::DaemonSet>("apps/v1", "DaemonSet");
    check::<a::apps::v1::ReplicaSet>("apps/v1", "ReplicaSet");
    check::<a::batch::v1::CronJob>("batch/v1", "CronJob");
    check::<a::autoscaling::v2::HorizontalPodAutoscaler>(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
    );
    check::<a::autoscaling::v1::HorizontalPodAutoscaler>(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
    );
    check::<a::autoscaling::v1::Scale>("autoscaling/v1", "Scale");
    check::<a::networking::v1::Ingress>("networking.k8s.io/v1", "Ingress");
    check::<a::networking::v1::NetworkPolicy>("networking.k8s.io/v1", "NetworkPolicy");
    check::<a::discovery::v1::EndpointSlice>("discovery.k8s.io/v1", "EndpointSlice");
    check::<a::events::v1::Event>("events.k8s.io/v1", "Event");
    check::<a::coordination::v1::Lease>("coordination.k8s.io/v1", "Lease");
    check::<a::storage::v1::StorageClass>("storage.k8s.io/v1", "StorageClass");
    check::<a::storage::v1::CSIDriver>("storage.k8s.io/v1", "CSIDriver");
    check::<a::storage::v1::VolumeAttachment>("storage.k8s.io/v1", "VolumeAttachment");
    check::<a::policy::v1::PodDisruptionBudget>("policy/v1", "PodDisruptionBudget");
    check::<a::policy::v1::Eviction>("policy/v1", "Eviction");
    check::<a::rbac::v1::ClusterRole>("rbac.authorization.k8s.io/v1", "ClusterRole");
    check::<a::rbac::v1::RoleBinding>("rbac.authorization.k8s.io/v1", "RoleBinding");
    check::<a::admissionregistration::v1::MutatingWebhookConfiguration>(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    );
    check::<a::admissionregistration::v1::ValidatingAdmissionPolicy>(
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
    );
    check::<a::certificates::v1::CertificateSigningRequest>(
        "certificates.k8s.io/v1",
        "CertificateSigningRequest",
    );
    check::<a::authentication::v1::TokenRequest>("authentication.k8s.io/v1", "TokenRequest");
    check::<a::authentication::v1::TokenReview>("authentication.k8s.io/v1", "TokenReview");
    check::<a::authorization::v1::SubjectAccessReview>(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
    );
    check::<a::authorization::v1::SelfSubjectRulesReview>(
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
    );
    check::<a::flowcontrol::v1::FlowSchema>("flowcontrol.apiserver.k8s.io/v1", "FlowSchema");
    check::<a::flowcontrol::v1::PriorityLevelConfiguration>(
        "flowcontrol.apiserver.k8s.io/v1",
        "PriorityLevelConfiguration",
    );
    check::<a::scheduling::v1::PriorityClass>("scheduling.k8s.io/v1", "PriorityClass");
    check::<a::node::v1::RuntimeClass>("node.k8s.io/v1", "RuntimeClass");
    check::<agg::APIService>("apiregistration.k8s.io/v1", "APIService");
}
