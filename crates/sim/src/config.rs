//! The simulator's settings and the parsing of `--labels` / `--taints`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of nodes.
    pub nodes: usize,
    /// Node names are `<prefix>-<index>`.
    pub name_prefix: String,
    /// CPU capacity per node (`4`).
    pub cpu: String,
    /// Memory capacity per node (`16Gi`).
    pub memory: String,
    /// Pod capacity per node (`110`).
    pub pods: String,
    /// Extra node labels.
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    pub taints: Vec<Taint>,
    /// How long a pod whose restartPolicy is not Always runs before it ends.
    pub run_duration: Duration,
    /// Lease renewal period (the kubelet's is 10 s).
    pub heartbeat_interval: Duration,
    /// How often the full node status is re-posted even when nothing changed (the kubelet's
    /// nodeStatusReportFrequency is 5 minutes).
    pub status_refresh_interval: Duration,
    /// CPU each pod uses unless annotated, in millicores.
    pub pod_cpu_usage_millis: u64,
    /// Memory each pod uses unless annotated, in bytes.
    pub pod_memory_usage_bytes: u64,
    /// Where the metrics endpoint listens (all nodes advertise it); port 0 picks one.
    pub metrics_listen: std::net::SocketAddr,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 1,
            name_prefix: "sim".into(),
            cpu: "4".into(),
            memory: "16Gi".into(),
            pods: "110".into(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            run_duration: Duration::from_secs(2),
            heartbeat_interval: Duration::from_secs(10),
            status_refresh_interval: Duration::from_secs(300),
            pod_cpu_usage_millis: 100,
            pod_memory_usage_bytes: 64 * 1024 * 1024,
            metrics_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

impl SimConfig {
    /// The name of node `index`.
    pub fn node_name(&self, index: usize) -> String {
        format!("{}-{index}", self.name_prefix)
    }

    /// The index of one of our nodes.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        let index = name.strip_prefix(&self.name_prefix)?.strip_prefix('-')?.parse::<usize>().ok()?;
        (index < self.nodes).then_some(index)
    }

    /// The Lease duration: four heartbeats, as the kubelet's 40 s for 10 s renewals.
    pub fn lease_duration_seconds(&self) -> i32 {
        i32::try_from((self.heartbeat_interval.as_secs() * 4).max(1)).unwrap_or(40)
    }
}

/// Parses `k=v,k2=v2`.
pub fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("invalid label {part:?}: want key=value"))?;
        if k.is_empty() {
            return Err(format!("invalid label {part:?}: empty key"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Parses `k=v:Effect,k:Effect` (kubectl taint syntax).
pub fn parse_taints(s: &str) -> Result<Vec<Taint>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kv, effect) = part.rsplit_once(':').ok_or_else(|| format!("invalid taint {part:?}: want key[=value]:Effect"))?;
        if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            return Err(format!("invalid taint effect {effect:?}: want NoSchedule, PreferNoSchedule or NoExecute"));
        }
        let (key, value) = match kv.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (kv, None),
        };
        if key.is_empty() {
            return Err(format!("invalid taint {part:?}: empty key"));
        }
        out.push(Taint { key: key.into(), value, effect: effect.into(), time_added: None });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_taints() {
        let l = parse_labels("kubernetes.io/e2e-az-name=e2e-az1, zone=a").unwrap();
        assert_eq!(l["kubernetes.io/e2e-az-name"], "e2e-az1");
        assert_eq!(l["zone"], "a");
        assert!(parse_labels("novalue").is_err());
        let t = parse_taints("dedicated=gpu:NoSchedule,maintenance:NoExecute").unwrap();
        assert_eq!(t[0].key, "dedicated");
        assert_eq!(t[0].value.as_deref(), Some("gpu"));
        assert_eq!(t[0].effect, "NoSchedule");
        assert_eq!(t[1].key, "maintenance");
        assert_eq!(t[1].value, None);
        assert!(parse_taints("k=v:Sometimes").is_err());
    }

    #[test]
    fn node_names_round_trip() {
        let c = SimConfig { nodes: 3, name_prefix: "zone-a".into(), ..Default::default() };
        assert_eq!(c.node_name(2), "zone-a-2");
        assert_eq!(c.node_index("zone-a-2"), Some(2));
        assert_eq!(c.node_index("zone-a-3"), None);
        assert_eq!(c.node_index("zone-b-1"), None);
        assert_eq!(c.lease_duration_seconds(), 40);
    }
}
