//! Simulated resource usage and the kubelet's `/metrics/resource` text for it.
//!
//! A pod uses `--pod-cpu-usage` / `--pod-memory-usage` unless it carries the annotations
//! [`CPU_USAGE_ANNOTATION`] / [`MEMORY_USAGE_ANNOTATION`]; the pod's usage is split evenly over
//! its containers. A node uses the sum of its pods plus a small base (the system's own share).
//! CPU is exposed as a cumulative counter in core-seconds, integrated at the rate in force, so
//! a rate read by a scraper from two samples (as metrics-server does) is exactly the configured
//! usage, and a changed annotation takes effect from the moment the pod update is seen.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;

/// Annotation overriding a pod's CPU usage (a quantity: `250m`, `1`).
pub const CPU_USAGE_ANNOTATION: &str = "sim.rkube.io/cpu-usage";
/// Annotation overriding a pod's memory usage (a quantity: `64Mi`).
pub const MEMORY_USAGE_ANNOTATION: &str = "sim.rkube.io/memory-usage";
/// CPU a simulated node uses besides its pods, in millicores.
pub const NODE_BASE_CPU_MILLIS: u64 = 50;
/// Memory a simulated node uses besides its pods, in bytes (128 MiB).
pub const NODE_BASE_MEMORY_BYTES: u64 = 128 * 1024 * 1024;

/// A cumulative CPU counter that integrates a piecewise-constant rate.
#[derive(Debug, Clone)]
struct CpuCounter {
    core_seconds: f64,
    rate_millis: u64,
    /// Milliseconds since the epoch; kept integral so elapsed times carry no rounding error.
    since: u64,
}

impl CpuCounter {
    fn new(rate_millis: u64, now: u64) -> Self {
        Self { core_seconds: 0.0, rate_millis, since: now }
    }

    fn advance(&mut self, now: u64) {
        if now > self.since {
            self.core_seconds += (now - self.since) as f64 * self.rate_millis as f64 / 1_000_000.0;
            self.since = now;
        }
    }

    fn set_rate(&mut self, rate_millis: u64, now: u64) {
        self.advance(now);
        self.rate_millis = rate_millis;
    }
}

#[derive(Debug)]
struct PodUsage {
    namespace: String,
    name: String,
    start_ms: u64,
    memory_bytes: u64,
    /// Per container, in spec order.
    containers: Vec<(String, CpuCounter)>,
}

#[derive(Debug)]
struct NodeUsage {
    cpu: CpuCounter,
    /// Running pods by `namespace/name`.
    pods: BTreeMap<String, PodUsage>,
}

impl NodeUsage {
    fn new(rate_millis: u64, now: u64) -> Self {
        Self { cpu: CpuCounter::new(rate_millis, now), pods: BTreeMap::new() }
    }

    /// Sets the node's CPU rate to the sum of its pods' plus the base.
    fn retotal(&mut self, now: u64) {
        let pods: u64 = self.pods.values().flat_map(|p| p.containers.iter().map(|(_, c)| c.rate_millis)).sum();
        self.cpu.set_rate(NODE_BASE_CPU_MILLIS + pods, now);
    }
}

/// Usage of every pod on the simulator's nodes, shared by the pod task and the metrics endpoint.
#[derive(Debug)]
pub struct UsageBook {
    default_cpu_millis: u64,
    default_memory_bytes: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The node of each running pod, by `namespace/name`.
    node_of: HashMap<String, usize>,
    nodes: HashMap<usize, NodeUsage>,
}

/// Now in whole milliseconds: samples are stamped in milliseconds, so counters integrated on
/// the same grid give a scraper exactly the configured rate.
fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or_default()
}

/// Millicores of a CPU quantity (`250m`, `1`, `0.5`).
pub fn parse_cpu_millis(q: &str) -> Option<u64> {
    rkube_apimachinery::quantity::milli_value(q.trim()).and_then(|v| u64::try_from(v).ok())
}

/// Bytes of a memory quantity (`64Mi`, `1G`).
pub fn parse_memory_bytes(q: &str) -> Option<u64> {
    rkube_apimachinery::quantity::value(q.trim()).and_then(|v| u64::try_from(v).ok())
}

impl UsageBook {
    /// A book with the default per-pod usage.
    pub fn new(default_cpu_millis: u64, default_memory_bytes: u64) -> Self {
        Self { default_cpu_millis, default_memory_bytes, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The usage a pod asks for: its annotations, else the defaults.
    fn wanted(&self, pod: &Pod) -> (u64, u64) {
        let a = pod.annotations();
        let cpu = a.get(CPU_USAGE_ANNOTATION).and_then(|v| parse_cpu_millis(v)).unwrap_or(self.default_cpu_millis);
        let mem = a.get(MEMORY_USAGE_ANNOTATION).and_then(|v| parse_memory_bytes(v)).unwrap_or(self.default_memory_bytes);
        (cpu, mem)
    }

    /// Records a running pod on node `node_index`, or its changed usage annotations.
    pub fn running(&self, node_index: usize, pod: &Pod) {
        let now = now_ms();
        let (cpu, mem) = self.wanted(pod);
        let names: Vec<String> = pod.spec.as_ref().map(|s| s.containers.iter().map(|c| c.name.clone()).collect()).unwrap_or_default();
        let per_container = if names.is_empty() { 0 } else { cpu / names.len() as u64 };
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        let mut inner = self.lock();
        // A pod seen on another node (rebound after a restart of the simulator) moves.
        if let Some(previous) = inner.node_of.insert(key.clone(), node_index).filter(|n| *n != node_index)
            && let Some(node) = inner.nodes.get_mut(&previous)
        {
            node.pods.remove(&key);
            node.retotal(now);
        }
        let node = inner.nodes.entry(node_index).or_insert_with(|| NodeUsage::new(NODE_BASE_CPU_MILLIS, now));
        match node.pods.get_mut(&key) {
            Some(p) => {
                p.memory_bytes = mem;
                for (_, counter) in &mut p.containers {
                    counter.set_rate(per_container, now);
                }
            }
            None => {
                let containers = names.into_iter().map(|n| (n, CpuCounter::new(per_container, now))).collect();
                let usage = PodUsage { namespace: pod.namespace().unwrap_or_default(), name: pod.name_any(), start_ms: now, memory_bytes: mem, containers };
                node.pods.insert(key, usage);
            }
        }
        node.retotal(now);
    }

    /// Forgets a pod that stopped running or is gone.
    pub fn stopped(&self, namespace: &str, name: &str) {
        let now = now_ms();
        let key = format!("{namespace}/{name}");
        let mut inner = self.lock();
        if let Some(index) = inner.node_of.remove(&key)
            && let Some(node) = inner.nodes.get_mut(&index)
        {
            node.pods.remove(&key);
            node.retotal(now);
        }
    }

    /// The kubelet's `/metrics/resource` (Prometheus text format 0.0.4) for node `node_index`.
    pub fn render(&self, node_index: usize) -> String {
        let now = now_ms();
        let ts = now;
        let mut inner = self.lock();
        let node = inner.nodes.entry(node_index).or_insert_with(|| NodeUsage::new(NODE_BASE_CPU_MILLIS, now));
        node.cpu.advance(now);
        let node_cpu = node.cpu.core_seconds;
        let node_memory: u64 = NODE_BASE_MEMORY_BYTES + node.pods.values().map(|p| p.memory_bytes).sum::<u64>();
        for p in node.pods.values_mut() {
            for (_, c) in &mut p.containers {
                c.advance(now);
            }
        }
        let pods = &node.pods;
        let mut out = String::new();
        let _ = writeln!(out, "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter");
        for p in pods.values() {
            for (c, counter) in &p.containers {
                let _ = writeln!(out, "container_cpu_usage_seconds_total{{container=\"{c}\",namespace=\"{}\",pod=\"{}\"}} {} {ts}", p.namespace, p.name, counter.core_seconds);
            }
        }
        let _ = writeln!(out, "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge");
        for p in pods.values() {
            let per = if p.containers.is_empty() { 0 } else { p.memory_bytes / p.containers.len() as u64 };
            for (c, _) in &p.containers {
                let _ = writeln!(out, "container_memory_working_set_bytes{{container=\"{c}\",namespace=\"{}\",pod=\"{}\"}} {per} {ts}", p.namespace, p.name);
            }
        }
        let _ = writeln!(out, "# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds\n# TYPE container_start_time_seconds gauge");
        for p in pods.values() {
            for (c, _) in &p.containers {
                let _ = writeln!(out, "container_start_time_seconds{{container=\"{c}\",namespace=\"{}\",pod=\"{}\"}} {} {ts}", p.namespace, p.name, p.start_ms as f64 / 1000.0);
            }
        }
        let _ = writeln!(out, "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter");
        let _ = writeln!(out, "node_cpu_usage_seconds_total {node_cpu} {ts}");
        let _ = writeln!(out, "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge");
        let _ = writeln!(out, "node_memory_working_set_bytes {node_memory} {ts}");
        let _ = writeln!(out, "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter");
        for p in pods.values() {
            let total: f64 = p.containers.iter().map(|(_, c)| c.core_seconds).sum();
            let _ = writeln!(out, "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {total} {ts}", p.namespace, p.name);
        }
        let _ = writeln!(out, "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge");
        for p in pods.values() {
            let _ = writeln!(out, "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {ts}", p.namespace, p.name, p.memory_bytes);
        }
        let _ = writeln!(out, "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE resource_scrape_error gauge\nresource_scrape_error 0");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, annotations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "annotations": annotations},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}
        }))
        .unwrap()
    }

    #[test]
    fn counter_integrates_the_rate_in_force() {
        let mut c = CpuCounter::new(500, 100_000);
        c.advance(102_000);
        assert!((c.core_seconds - 1.0).abs() < 1e-9);
        c.set_rate(2000, 103_000);
        c.advance(104_000);
        assert!((c.core_seconds - 3.5).abs() < 1e-9);
    }

    #[test]
    fn annotations_override_defaults_and_split_over_containers() {
        let book = UsageBook::new(100, 64 << 20);
        book.running(0, &pod("p", json!({CPU_USAGE_ANNOTATION: "300m", MEMORY_USAGE_ANNOTATION: "10Mi"})));
        book.running(0, &pod("q", json!({})));
        let text = book.render(0);
        assert!(text.contains("container_memory_working_set_bytes{container=\"a\",namespace=\"ns\",pod=\"p\"} 5242880 "), "{text}");
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"ns\",pod=\"q\"} 67108864 "), "{text}");
        let inner = book.lock();
        assert_eq!(inner.nodes[&0].pods["ns/p"].containers[0].1.rate_millis, 150);
        assert_eq!(inner.nodes[&0].cpu.rate_millis, NODE_BASE_CPU_MILLIS + 300 + 100);
        drop(inner);
        book.stopped("ns", "p");
        assert_eq!(book.lock().nodes[&0].cpu.rate_millis, NODE_BASE_CPU_MILLIS + 100);
    }
}
