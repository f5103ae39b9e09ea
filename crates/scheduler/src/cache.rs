//! The scheduler's in-memory view of the cluster, kept from watches (upstream
//! `pkg/scheduler/backend/cache`): nodes with the pods assigned to them and what they use,
//! pods assumed on a node while their binding is in flight, PVCs, StorageClasses and namespace
//! labels. Nothing here talks to the API server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::resources::{self, Resource};

/// `namespace/name` of a pod.
pub fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or(""))
}

/// A host port a pod uses: (protocol, host IP, port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The host IP, `0.0.0.0` when unset.
    pub ip: String,
    /// The host port.
    pub port: i32,
}

impl HostPort {
    /// Upstream's conflict rule: same protocol and port, and either IP is the wildcard or equal.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.protocol == other.protocol && self.port == other.port && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// The host ports a pod asks for.
pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else { return Vec::new() };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always")))
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.filter(|h| *h > 0)?;
            let ip = p.host_ip.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
            Some(HostPort { protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()), ip, port })
        })
        .collect()
}

/// A pod with what the scheduler derives from it once.
#[derive(Debug)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    /// Requests as used by the fit check.
    pub requests: Resource,
    /// Requests with defaults for unset CPU/memory, as used by scoring.
    pub non_zero_requests: Resource,
    /// Host ports.
    pub ports: Vec<HostPort>,
    /// `spec.priority` (0 when unset).
    pub priority: i32,
}

impl PodInfo {
    /// Derives the scheduling facts of a pod.
    pub fn new(pod: Arc<Pod>) -> Self {
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        Self {
            key: pod_key(&pod),
            requests: resources::pod_requests(&pod, false),
            non_zero_requests: resources::pod_requests(&pod, true),
            ports: host_ports(&pod),
            priority,
            pod,
        }
    }

    /// The pod's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    /// True for pods with inter-pod (anti-)affinity of any kind.
    pub fn has_affinity(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.affinity.as_ref()).is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
    }
}

/// A node and the pods on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The node.
    pub node: Arc<Node>,
    /// Pods assigned (or assumed) to the node.
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the pods' requests.
    pub requested: Resource,
    /// Sum of the pods' requests with scoring defaults.
    pub non_zero_requested: Resource,
    /// What the node offers.
    pub allocatable: Resource,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
}

impl NodeInfo {
    fn new(node: Arc<Node>) -> Self {
        let allocatable = resources::node_allocatable(&node);
        Self {
            node,
            pods: Vec::new(),
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
            used_ports: Vec::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// The node's labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// Accounts a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.ports.iter().cloned());
        self.pods.push(pod);
    }

    /// Removes a pod's accounting; false when it was not on the node.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.key == key) else { return false };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for port in &pod.ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        true
    }
}

/// Whether a pod counts against its node: assigned and not finished (the scheduler's informer
/// excludes Succeeded and Failed pods, upstream `scheduler.go` `addAllEventHandlers`).
pub fn occupies_node(pod: &Pod) -> Option<&str> {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty())?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    (!matches!(phase, Some("Succeeded" | "Failed"))).then_some(node)
}

/// The cluster as the scheduler sees it.
#[derive(Debug, Default)]
pub struct Cache {
    /// Nodes by name, in name order (iteration order is stable across cycles).
    pub nodes: BTreeMap<String, NodeInfo>,
    /// Node of each accounted pod by `namespace/name`.
    pod_nodes: HashMap<String, String>,
    /// Pods assumed by this scheduler whose binding is not yet seen in a watch event.
    assumed: HashMap<String, String>,
    /// Assigned pods whose node is not (yet) known, by `namespace/name`.
    orphans: HashMap<String, Arc<PodInfo>>,
    /// PVCs by `namespace/name`.
    pub pvcs: HashMap<String, Arc<PersistentVolumeClaim>>,
    /// PersistentVolumes by name (with the scheduler's own pre-bindings applied while in flight).
    pub pvs: HashMap<String, Arc<PersistentVolume>>,
    /// StorageClasses by name.
    pub storage_classes: HashMap<String, Arc<StorageClass>>,
    /// Namespace labels by namespace name.
    pub namespace_labels: HashMap<String, BTreeMap<String, String>>,
    /// Bumped on every change, so plugins can tell stale precomputations.
    pub generation: u64,
}

impl Cache {
    /// Adds or replaces a node (its pods stay).
    pub fn upsert_node(&mut self, node: Node) {
        self.generation += 1;
        let name = node.metadata.name.clone().unwrap_or_default();
        let node = Arc::new(node);
        match self.nodes.get_mut(&name) {
            Some(info) => {
                info.allocatable = resources::node_allocatable(&node);
                info.node = node;
            }
            None => {
                let mut info = NodeInfo::new(node);
                let waiting: Vec<String> =
                    self.orphans.iter().filter(|(_, p)| occupies_node(&p.pod) == Some(name.as_str())).map(|(k, _)| k.clone()).collect();
                for key in waiting {
                    if let Some(p) = self.orphans.remove(&key) {
                        self.pod_nodes.insert(key, name.clone());
                        info.add_pod(p);
                    }
                }
                self.nodes.insert(name, info);
            }
        }
    }

    /// Removes a node and forgets the pods it held.
    pub fn remove_node(&mut self, name: &str) {
        self.generation += 1;
        if let Some(info) = self.nodes.remove(name) {
            for p in info.pods {
                self.pod_nodes.remove(&p.key);
                self.assumed.remove(&p.key);
            }
        }
    }

    /// Applies a pod from a watch event: accounts it on its node when it occupies one.
    pub fn upsert_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let target = occupies_node(&pod).map(str::to_string);
        self.assumed.remove(&key);
        self.remove_pod(&key);
        if let Some(node) = target {
            self.generation += 1;
            let info = Arc::new(PodInfo::new(pod));
            // A pod may arrive before its node; account it once the node exists.
            match self.nodes.get_mut(&node) {
                Some(n) => {
                    n.add_pod(info);
                    self.pod_nodes.insert(key, node);
                }
                None => {
                    self.orphans.insert(key, info);
                }
            }
        }
    }

    /// Forgets a pod's accounting.
    pub fn remove_pod(&mut self, key: &str) {
        self.orphans.remove(key);
        if let Some(node) = self.pod_nodes.remove(key) {
            self.generation += 1;
            if let Some(n) = self.nodes.get_mut(&node) {
                n.remove_pod(key);
            }
        }
    }

    /// Accounts a pod on `node` before the API confirms the binding (`AssumePod`).
    pub fn assume(&mut self, pod: &PodInfo, node: &str) {
        let mut assumed = (*pod.pod).clone();
        if let Some(spec) = assumed.spec.as_mut() {
            spec.node_name = Some(node.to_string());
        }
        self.remove_pod(&pod.key);
        if let Some(n) = self.nodes.get_mut(node) {
            self.generation += 1;
            n.add_pod(Arc::new(PodInfo::new(Arc::new(assumed))));
            self.pod_nodes.insert(pod.key.clone(), node.to_string());
            self.assumed.insert(pod.key.clone(), node.to_string());
        }
    }

    /// Drops an assumed pod whose binding failed (`ForgetPod`).
    pub fn forget(&mut self, key: &str) {
        if self.assumed.remove(key).is_some() {
            self.remove_pod(key);
        }
    }

    /// Whether the pod is assumed (binding in flight).
    pub fn is_assumed(&self, key: &str) -> bool {
        self.assumed.contains_key(key)
    }

    /// Drops accounted pods (other than assumed ones) for which `keep` is false (after a relist).
    pub fn retain_pods(&mut self, keep: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self.pod_nodes.keys().filter(|k| !keep(k) && !self.assumed.contains_key(*k)).cloned().collect();
        for key in gone {
            self.remove_pod(&key);
        }
        self.orphans.retain(|k, _| keep(k));
    }

    /// The node a pod is accounted on.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.pod_nodes.get(key).map(String::as_str)
    }

    /// Every accounted pod with its node.
    pub fn all_pods(&self) -> impl Iterator<Item = (&NodeInfo, &Arc<PodInfo>)> {
        self.nodes.values().flat_map(|n| n.pods.iter().map(move |p| (n, p)))
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A NodeInfo from JSON.
    pub fn node(v: serde_json::Value) -> NodeInfo {
        NodeInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
    }

    /// A PodInfo from JSON.
    pub fn pod(v: serde_json::Value) -> PodInfo {
        PodInfo::new(Arc::new(serde_json::from_value(v).unwrap()))
    }

    /// A node with allocatable cpu/memory/pods and labels.
    pub fn sized_node(name: &str, cpu: &str, memory: &str, labels: serde_json::Value) -> NodeInfo {
        node(serde_json::json!({"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": "110"}}}))
    }

    /// A pod requesting cpu/memory with labels.
    pub fn sized_pod(name: &str, cpu: &str, memory: &str, labels: serde_json::Value) -> PodInfo {
        pod(serde_json::json!({"metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}))
    }
}
