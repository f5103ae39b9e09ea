//! The Node this agent registers, its status (capacity from the host, addresses, nodeInfo
//! with the runtime version) and its Lease in `kube-node-lease`.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::AgentError;
use crate::runtime::RuntimeVersion;
use crate::eviction::EvictionHard;
use crate::stats::disk::{self, Capacity};

/// The kubelet version the agent reports (the API level it implements).
pub const KUBELET_VERSION: &str = "v1.33.5-rkube";
/// The kubelet renews its Lease every 10 s (a quarter of the 40 s duration).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
const LEASE_DURATION_SECONDS: i32 = 40;

/// Facts about the host the Node status is made of.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub cpus: usize,
    pub memory_kib: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl HostFacts {
    /// Reads /proc and /etc.
    pub fn of_this_host() -> Self {
        let memory_kib = read_trimmed("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let os_image = read_trimmed("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        Self {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_kib,
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            os_image,
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        }
    }
}

fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn micro_time_now() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// The Node object (metadata and spec) the agent creates; an explicit pod CIDR goes into its
/// spec.
pub fn node_object(name: &str, pod_cidr: Option<&str>) -> Value {
    let spec = match pod_cidr {
        Some(cidr) => json!({"podCIDR": cidr, "podCIDRs": [cidr]}),
        None => json!({}),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": spec,
    })
}

/// What the node has now: memory available and the filesystem of the agent's root directory
/// (the kubelet's nodefs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub memory_available_kib: u64,
    pub nodefs: Option<Capacity>,
}

impl Usage {
    /// Reads /proc/meminfo's `MemAvailable` and statvfs of `root_dir`.
    pub fn now(root_dir: &Path) -> Self {
        let memory_available_kib = read_trimmed("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(u64::MAX);
        Self { memory_available_kib, nodefs: disk::capacity(root_dir) }
    }

    fn memory_pressure(&self, host: &HostFacts, eviction: &EvictionHard) -> bool {
        eviction
            .memory_available
            .crossed(self.memory_available_kib.saturating_mul(1024), host.memory_kib.saturating_mul(1024))
    }

    fn disk_pressure(&self, eviction: &EvictionHard) -> bool {
        self.nodefs.is_some_and(|fs| {
            eviction.nodefs_available.crossed(fs.available_bytes, fs.capacity_bytes)
                || eviction.nodefs_inodes_free.crossed(fs.inodes_free, fs.inodes)
        })
    }
}

/// Memory capacity less the `memory.available` eviction threshold (the kubelet's allocatable
/// without system or kube reservations).
pub fn allocatable_memory_kib(host: &HostFacts, eviction: &EvictionHard) -> u64 {
    host.memory_kib
        .saturating_sub(eviction.memory_available.of(host.memory_kib.saturating_mul(1024)) / 1024)
}

/// When each condition last changed, kept between status posts: `lastTransitionTime` moves
/// only when a condition's status does, while `lastHeartbeatTime` moves on every post.
#[derive(Debug, Default)]
pub struct ConditionTimes(HashMap<&'static str, (bool, String)>);

impl ConditionTimes {
    fn transition(&mut self, type_: &'static str, status: bool, now: &str) -> String {
        let entry = self.0.entry(type_).or_insert_with(|| (status, now.to_string()));
        if entry.0 != status {
            *entry = (status, now.to_string());
        }
        entry.1.clone()
    }
}

/// The status a Ready kubelet posts: capacity from the host, allocatable less the default
/// hard eviction thresholds, and the pressure conditions those thresholds decide.
pub fn node_status(
    name: &str,
    node_ip: &str,
    port: u16,
    host: &HostFacts,
    runtime: &RuntimeVersion,
    usage: &Usage,
    eviction: &EvictionHard,
    times: &mut ConditionTimes,
) -> Value {
    let now = now_rfc3339();
    let nodefs_bytes = usage.nodefs.map(|fs| fs.capacity_bytes).unwrap_or(0);
    let capacity = json!({
        "cpu": host.cpus.to_string(),
        "memory": format!("{}Ki", host.memory_kib),
        "pods": "110",
        "ephemeral-storage": format!("{}Ki", nodefs_bytes / 1024),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let nodefs_bytes = nodefs_bytes / 1024 * 1024;
    let nodefs_reserved = eviction.nodefs_available.of(nodefs_bytes).min(nodefs_bytes);
    let allocatable = json!({
        "cpu": host.cpus.to_string(),
        "memory": format!("{}Ki", allocatable_memory_kib(host, eviction)),
        "pods": "110",
        "ephemeral-storage": (nodefs_bytes - nodefs_reserved).to_string(),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    });
    let mut condition = |type_: &'static str, status: bool, reason: &str, message: &str| {
        let since = times.transition(type_, status, &now);
        json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason, "message": message, "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    let memory = if usage.memory_pressure(host, eviction) {
        condition("MemoryPressure", true, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
    } else {
        condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available")
    };
    let disk = if usage.disk_pressure(eviction) {
        condition("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure")
    } else {
        condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure")
    };
    // The default thresholds have no `pid.available`: like the kubelet, no PID pressure.
    let pid = condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available");
    let ready = condition("Ready", true, "KubeletReady", "kubelet is posting ready status");
    json!({
        "capacity": capacity,
        "allocatable": allocatable,
        "conditions": [memory, disk, pid, ready],
        "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": host.machine_id,
            "systemUUID": host.machine_id,
            "bootID": host.boot_id,
            "kernelVersion": host.kernel_version,
            "osImage": host.os_image,
            "containerRuntimeVersion": format!("{}://{}", runtime.name, runtime.version),
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        }
    })
}

/// Creates the Node (or takes over an existing one), posts its status and creates its Lease.
/// `pod_cidr` is an explicit `--pod-cidr` the Node should carry.
pub async fn register(
    client: &kube::Client,
    name: &str,
    status: &Value,
    pod_cidr: Option<&str>,
) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    let object: Node = serde_json::from_value(node_object(name, pod_cidr))
        .map_err(|e| AgentError::Api(e.to_string()))?;
    let uid = match nodes.create(&PostParams::default(), &object).await {
        Ok(n) => n.metadata.uid,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let existing = nodes
                .get(name)
                .await
                .map_err(|e| AgentError::Api(format!("node {name}: {e}")))?;
            if let Some(cidr) = pod_cidr {
                crate::pod_cidr::record_explicit_pod_cidr(client, name, &existing, cidr).await?;
            }
            existing.metadata.uid
        }
        Err(e) => return Err(AgentError::Api(format!("creating node {name}: {e}"))),
    };
    post_status(client, name, status).await?;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": uid.unwrap_or_default()}]},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": micro_time_now()},
    });
    let lease: Lease = serde_json::from_value(lease).map_err(|e| AgentError::Api(e.to_string()))?;
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => renew_lease(client, name).await,
        Err(e) => Err(AgentError::Api(format!("creating lease {name}: {e}"))),
    }
}

/// Patches the Node's status.
pub async fn post_status(
    client: &kube::Client,
    name: &str,
    status: &Value,
) -> Result<(), AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .map(|_| ())
        .map_err(|e| AgentError::Api(format!("node {name} status: {e}")))
}

/// Renews the Lease.
pub async fn renew_lease(client: &kube::Client, name: &str) -> Result<(), AgentError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({"spec": {"holderIdentity": name, "renewTime": micro_time_now()}});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| AgentError::Api(format!("lease {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostFacts {
        HostFacts {
            cpus: 2,
            memory_kib: 1_048_576,
            kernel_version: "6.1".into(),
            os_image: "Debian".into(),
            machine_id: "m".into(),
            boot_id: "b".into(),
        }
    }

    fn runtime() -> RuntimeVersion {
        RuntimeVersion { name: "containerd".into(), version: "1.7".into() }
    }

    fn fs(capacity: u64, available: u64, inodes: u64, inodes_free: u64) -> Option<Capacity> {
        Some(Capacity { capacity_bytes: capacity, available_bytes: available, used_bytes: capacity - available, inodes, inodes_free })
    }

    fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
        status["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
    }

    #[test]
    fn allocatable_holds_back_the_default_eviction_thresholds() {
        let usage = Usage { memory_available_kib: 500_000, nodefs: fs(100 * 1024 * 1024 * 1024, 50 * 1024 * 1024 * 1024, 1000, 900) };
        let s = node_status("n", "10.0.0.1", 10250, &host(), &runtime(), &usage, &EvictionHard::default(), &mut ConditionTimes::default());
        assert_eq!(s["capacity"]["memory"], "1048576Ki");
        assert_eq!(s["allocatable"]["memory"], "946176Ki");
        assert_eq!(s["capacity"]["ephemeral-storage"], "104857600Ki");
        assert_eq!(s["allocatable"]["ephemeral-storage"], "96636764160");
        assert_eq!(condition(&s, "MemoryPressure")["status"], "False");
        assert_eq!(condition(&s, "DiskPressure")["status"], "False");
        assert_eq!(condition(&s, "Ready")["status"], "True");
    }

    #[test]
    fn crossing_a_threshold_is_pressure_and_moves_only_that_transition_time() {
        let mut times = ConditionTimes::default();
        assert_eq!(times.transition("DiskPressure", false, "t1"), "t1");
        assert_eq!(times.transition("DiskPressure", false, "t2"), "t1", "unchanged status keeps its time");
        assert_eq!(times.transition("DiskPressure", true, "t3"), "t3");

        let low_memory = Usage { memory_available_kib: 50_000, nodefs: fs(1000, 500, 100, 50) };
        let s = node_status("n", "10.0.0.1", 10250, &host(), &runtime(), &low_memory, &EvictionHard::default(), &mut ConditionTimes::default());
        assert_eq!(condition(&s, "MemoryPressure")["status"], "True");
        assert_eq!(condition(&s, "MemoryPressure")["reason"], "KubeletHasInsufficientMemory");
        let full_disk = Usage { memory_available_kib: 500_000, nodefs: fs(1000, 99, 100, 50) };
        let s = node_status("n", "10.0.0.1", 10250, &host(), &runtime(), &full_disk, &EvictionHard::default(), &mut ConditionTimes::default());
        assert_eq!(condition(&s, "DiskPressure")["reason"], "KubeletHasDiskPressure");
        let few_inodes = Usage { memory_available_kib: 500_000, nodefs: fs(1000, 500, 100, 4) };
        let s = node_status("n", "10.0.0.1", 10250, &host(), &runtime(), &few_inodes, &EvictionHard::default(), &mut ConditionTimes::default());
        assert_eq!(condition(&s, "DiskPressure")["status"], "True");
    }
}
