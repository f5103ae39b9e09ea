//! Resource amounts of nodes and pods, computed as upstream's scheduler does
//! (`pkg/scheduler/framework/types.go` `Resource`, component-helpers `resource.PodRequests`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// The CPU request assumed for scoring when a container sets none (`DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory request assumed for scoring when a container sets none (`DefaultMemoryRequest`).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Number of pods (only meaningful for node allocatable).
    pub allowed_pods: i64,
    /// Extended and other scalar resources (hugepages, `example.com/gpu`), as integers.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// Reads a `ResourceList`.
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Self {
        let mut r = Self::default();
        for (name, q) in list.into_iter().flatten() {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu = quantity::milli_value(q).unwrap_or(0),
            "memory" => self.memory = quantity::value(q).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::value(q).unwrap_or(0),
            "pods" => self.allowed_pods = quantity::value(q).unwrap_or(0),
            other => {
                self.scalar.insert(other.to_string(), quantity::value(q).unwrap_or(0));
            }
        }
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pods += other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    /// Subtracts `other` from `self`.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pods -= other.allowed_pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Raises each amount of `self` to at least the one in `other`.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// True when nothing is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0 && self.memory == 0 && self.ephemeral_storage == 0 && self.scalar.values().all(|v| *v == 0)
    }
}

/// A node's allocatable resources (capacity when allocatable is not reported).
pub fn node_allocatable(node: &Node) -> Resource {
    let status = node.status.as_ref();
    let list = status.and_then(|s| s.allocatable.as_ref()).or_else(|| status.and_then(|s| s.capacity.as_ref()));
    Resource::from_list(list)
}

/// One container's requests; a limit stands in for a missing request (API defaulting does the
/// same). With `non_missing`, an unset CPU or memory request counts as the scheduler's default.
fn container_requests(c: &Container, non_missing: bool) -> Resource {
    let resources = c.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    let mut r = Resource::from_list(limits);
    for (name, q) in requests.into_iter().flatten() {
        r.set(name, &q.0);
    }
    r.allowed_pods = 0;
    if non_missing {
        let has = |name: &str| requests.is_some_and(|m| m.contains_key(name)) || limits.is_some_and(|m| m.contains_key(name));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// What a pod requests: the sum of its containers and sidecars, or the largest init phase if
/// that is more, plus the pod overhead (component-helpers `resource.PodRequests`).
pub fn pod_requests(pod: &Pod, non_missing: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else { return Resource::default() };
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_missing));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let req = container_requests(c, non_missing);
        let phase = if c.restart_policy.as_deref() == Some("Always") {
            // A sidecar keeps running next to everything started after it.
            total.add(&req);
            sidecars.add(&req);
            sidecars.clone()
        } else {
            let mut phase = req;
            phase.add(&sidecars);
            phase
        };
        init_peak.max_with(&phase);
    }
    total.max_with(&init_peak);
    if let Some(overhead) = spec.overhead.as_ref() {
        let mut o = Resource::from_list(Some(overhead));
        o.allowed_pods = 0;
        total.add(&o);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn init_containers_and_overhead_as_upstream() {
        // Upstream's PodRequests example: containers 1 cpu, an init container 2 cpu → 2 cpu; the
        // overhead is added on top.
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                           {"name": "b", "resources": {"requests": {"cpu": "500m"}}}],
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "512Mi"}}}],
            "overhead": {"cpu": "250m", "memory": "10Mi"}
        }));
        let r = pod_requests(&p, false);
        assert_eq!(r.milli_cpu, 2250);
        assert_eq!(r.memory, (1 << 30) + 10 * 1024 * 1024);
    }

    #[test]
    fn sidecars_add_to_containers_and_later_init_phases() {
        let p = pod(json!({
            "containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}],
            "initContainers": [
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1"}}},
                {"name": "init", "resources": {"requests": {"cpu": "2"}}}
            ]
        }));
        // Containers + sidecar = 2; init phase = init 2 + sidecar 1 = 3.
        assert_eq!(pod_requests(&p, false).milli_cpu, 3000);
    }

    #[test]
    fn missing_requests_count_as_defaults_only_for_scoring() {
        let p = pod(json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"limits": {"cpu": "2"}}}]}));
        assert_eq!(pod_requests(&p, false), Resource { milli_cpu: 2000, ..Default::default() });
        let nz = pod_requests(&p, true);
        assert_eq!(nz.milli_cpu, 2100);
        assert_eq!(nz.memory, 2 * DEFAULT_MEMORY_REQUEST);
    }
}
