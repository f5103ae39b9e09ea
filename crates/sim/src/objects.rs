//! The Node, NodeStatus and Lease a simulated node publishes, shaped as a kubelet's.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Node, NodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::config::SimConfig;
use crate::metrics_endpoint::{METRICS_PATH_ANNOTATION, metrics_path};
use crate::{SIMULATOR_LABEL, ipam};

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.33.5-rkube-sim";

/// Now as RFC 3339 with whole seconds.
pub fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as a `MicroTime` string (Lease renewTime).
pub fn micro_time_now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The Node object (metadata and spec) of node `index`.
pub fn node(cfg: &SimConfig, index: usize) -> Node {
    let name = cfg.node_name(index);
    let mut labels = cfg.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), "amd64".into());
    labels.insert("beta.kubernetes.io/os".into(), "linux".into());
    labels.insert("beta.kubernetes.io/arch".into(), "amd64".into());
    labels.insert("type".into(), "rkube-sim".into());
    labels.insert(SIMULATOR_LABEL.into(), cfg.name_prefix.clone());
    let cidr = ipam::pod_cidr(&cfg.name_prefix, index);
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            annotations: Some(
                [("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string()), (METRICS_PATH_ANNOTATION.to_string(), metrics_path(&name))]
                    .into(),
            ),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            provider_id: Some(format!("rkube-sim://{name}")),
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The status a Ready kubelet posts. Every node's address and kubelet port are the simulator's
/// metrics endpoint (see `metrics_endpoint`).
pub fn node_status(cfg: &SimConfig, index: usize, endpoint: std::net::SocketAddr) -> Value {
    let name = cfg.node_name(index);
    let now = now_rfc3339();
    let resources = json!({"cpu": cfg.cpu, "memory": cfg.memory, "pods": cfg.pods, "ephemeral-storage": "100Gi", "hugepages-2Mi": "0"});
    let condition = |type_: &str, status: &str, reason: &str, message: &str| json!({"type": type_, "status": status, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": now});
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "kubelet is posting ready status (simulated node)"),
        ],
        "addresses": [{"type": "InternalIP", "address": endpoint.ip().to_string()}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": endpoint.port()}},
        "nodeInfo": {
            "machineID": format!("rkube-sim-{name}"),
            "systemUUID": format!("rkube-sim-{name}"),
            "bootID": format!("rkube-sim-{name}"),
            "kernelVersion": "simulated",
            "osImage": "rkube simulated node (no containers run)",
            "containerRuntimeVersion": "rkube-sim://0.1.0",
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64"
        }
    })
}

/// The node's Lease in `kube-node-lease`, owned by the Node as the kubelet's.
pub fn lease(name: &str, node_uid: Option<&str>, duration_seconds: i32) -> Lease {
    let owner = node_uid.map(|uid| {
        vec![OwnerReference { api_version: "v1".into(), kind: "Node".into(), name: name.into(), uid: uid.into(), ..Default::default() }]
    });
    let renew: Option<MicroTime> = serde_json::from_value(json!(micro_time_now())).ok();
    Lease {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-node-lease".into()),
            owner_references: owner,
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: renew,
            ..Default::default()
        }),
    }
}
