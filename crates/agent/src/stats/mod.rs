//! The agent's resource statistics: the kubelet's `/stats/summary` (statsapi Summary JSON) and
//! `/metrics/resource` (Prometheus text), from the runtime's CRI stats (`ListContainerStats`,
//! `ListPodSandboxStats`, `ImageFsInfo`) and the host (root cgroup, /proc, statvfs), as the
//! kubelet's CRI stats provider builds them (`pkg/kubelet/stats/cri_stats_provider.go`,
//! `summary.go`).
//!
//! Where the kubelet would ask cAdvisor, rkube reads the host itself: node CPU and memory from
//! the root cgroup ([`host`]). Pod CPU and memory are the sum of the pod's containers (there
//! are no pod-level cgroups yet, so the sandbox's cgroup holds only its pause process); the
//! pod's network comes from `ListPodSandboxStats` when the runtime implements it. CPU rates
//! (`usageNanoCores`) are derived from the previous reading, as the kubelet does on Linux.

pub mod disk;
pub mod host;
pub mod resource_metrics;
pub mod types;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::runtime::{
    ContainerUsage, CpuUsage, FilesystemUsage, MemoryUsage, Runtime, RuntimeError, SandboxInfo,
    SandboxUsage,
};
use types::{
    ContainerStats, CpuStats, FsStats, InterfaceStats, MemoryStats, NetworkStats, NodeStats,
    PodReference, PodStats, RlimitStats, RuntimeStats, Summary, Time, VolumeStats,
};

/// Volume plugins whose data lives in the pod's volume directory and counts as the pod's
/// ephemeral storage (the kubelet's `IsLocalEphemeralVolume`: emptyDir, configMap, gitRepo).
const EPHEMERAL_VOLUME_PLUGINS: [&str; 2] = ["empty-dir", "configmap"];

/// A cumulative CPU reading: when (ns), core-nanoseconds, and the rate derived at it.
type CpuReading = (i64, u64, Option<u64>);

/// How much a summary holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// CPU and memory only (`only_cpu_and_memory=true`, and what `/metrics/resource` needs).
    CpuAndMemory,
    /// Also network, filesystems, volumes and processes.
    Full,
}

/// Builds summaries for one node.
pub struct StatsProvider {
    runtime: Arc<dyn Runtime>,
    node_name: String,
    log_root: PathBuf,
    root_dir: PathBuf,
    host: host::Host,
    /// Last cumulative CPU reading per container id, and `/` for the node.
    cpu_readings: Mutex<HashMap<String, CpuReading>>,
}

fn time_or(timestamp: i64, now: Time) -> Time {
    if timestamp > 0 { Time(timestamp) } else { now }
}

fn memory_stats(m: &MemoryUsage, now: Time) -> MemoryStats {
    MemoryStats {
        time: time_or(m.timestamp, now),
        // Runtimes answer 0 for a container without a memory limit, where the kubelet (through
        // cAdvisor) leaves the field out.
        available_bytes: m.available_bytes.filter(|b| *b > 0),
        usage_bytes: m.usage_bytes,
        working_set_bytes: m.working_set_bytes,
        rss_bytes: m.rss_bytes,
        page_faults: m.page_faults,
        major_page_faults: m.major_page_faults,
    }
}

fn interface_stats(i: &crate::runtime::InterfaceUsage) -> InterfaceStats {
    InterfaceStats {
        name: i.name.clone(),
        rx_bytes: i.rx_bytes,
        rx_errors: i.rx_errors,
        tx_bytes: i.tx_bytes,
        tx_errors: i.tx_errors,
    }
}

fn add(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.saturating_add(b)),
        (a, b) => a.or(b),
    }
}

/// FsStats of a filesystem's own numbers (capacity, free space and inodes).
fn filesystem(capacity: disk::Capacity, time: Time) -> FsStats {
    FsStats {
        time,
        available_bytes: Some(capacity.available_bytes),
        capacity_bytes: Some(capacity.capacity_bytes),
        used_bytes: Some(capacity.used_bytes),
        inodes_free: Some(capacity.inodes_free),
        inodes: Some(capacity.inodes),
        inodes_used: Some(capacity.inodes.saturating_sub(capacity.inodes_free)),
    }
}

/// Use reported by the runtime, on a filesystem whose capacity is `fs`.
fn runtime_fs(usage: &FilesystemUsage, fs: Option<disk::Capacity>, now: Time) -> FsStats {
    FsStats {
        time: time_or(usage.timestamp, now),
        available_bytes: fs.map(|f| f.available_bytes),
        capacity_bytes: fs.map(|f| f.capacity_bytes),
        used_bytes: usage.used_bytes,
        inodes_free: fs.map(|f| f.inodes_free),
        inodes: fs.map(|f| f.inodes),
        inodes_used: usage.inodes_used,
    }
}

impl StatsProvider {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        node_name: String,
        log_root: PathBuf,
        root_dir: PathBuf,
    ) -> Self {
        Self::with_host(
            runtime,
            node_name,
            log_root,
            root_dir,
            host::Host::default(),
        )
    }

    /// A provider reading the host from other directories (tests).
    pub fn with_host(
        runtime: Arc<dyn Runtime>,
        node_name: String,
        log_root: PathBuf,
        root_dir: PathBuf,
        host: host::Host,
    ) -> Self {
        Self {
            runtime,
            node_name,
            log_root,
            root_dir,
            host,
            cpu_readings: Mutex::new(HashMap::new()),
        }
    }

    /// CpuStats with `usageNanoCores` from the previous reading of `key`.
    fn cpu_stats(
        &self,
        key: &str,
        cpu: &CpuUsage,
        now: Time,
        seen: &mut HashSet<String>,
    ) -> CpuStats {
        let time = time_or(cpu.timestamp, now);
        seen.insert(key.to_string());
        // As the kubelet on Linux (`getAndUpdateContainerUsageNanoCores`), the rate is derived
        // from the agent's own previous reading; what runtimes report for it varies (containerd
        // 1.6 answers 0 for a container it has sampled once).
        let rate = cpu.usage_core_nano_seconds.and_then(|usage| {
            let mut readings = self.cpu_readings.lock();
            let rate = match readings.get(key) {
                Some((t, u, _)) if time.0 > *t && usage >= *u => {
                    let elapsed = (time.0 - t) as u128;
                    u64::try_from(u128::from(usage - u) * 1_000_000_000 / elapsed).ok()
                }
                // The same reading again: keep the rate computed for it.
                Some((t, _, last)) if time.0 == *t => *last,
                _ => None,
            };
            readings.insert(key.to_string(), (time.0, usage, rate));
            rate
        });
        CpuStats {
            time,
            usage_nano_cores: rate,
            usage_core_nano_seconds: cpu.usage_core_nano_seconds,
        }
    }

    /// The node's and its pods' statistics now.
    pub async fn summary(&self, detail: Detail) -> Result<Summary, RuntimeError> {
        let now = Time::now();
        let mut seen = HashSet::new();
        let sandboxes = self.runtime.list_sandboxes().await?;
        let containers = self.runtime.list_container_stats().await?;
        let sandbox_usage = match self.runtime.list_pod_sandbox_stats().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "pod sandbox stats");
                Vec::new()
            }
        };
        let full = detail == Detail::Full;
        let image_fs = if full {
            match self.runtime.image_fs_info().await {
                Ok(fs) => fs.into_iter().next(),
                Err(e) => {
                    tracing::debug!(error = %e, "image filesystem stats");
                    None
                }
            }
        } else {
            None
        };
        let image_fs_capacity = image_fs
            .as_ref()
            .filter(|fs| !fs.mountpoint.is_empty())
            .and_then(|fs| disk::capacity(std::path::Path::new(&fs.mountpoint)));
        let node_fs = full.then(|| disk::capacity(&self.root_dir)).flatten();

        let mut node = NodeStats {
            node_name: self.node_name.clone(),
            start_time: self.host.boot_time().unwrap_or_default(),
            cpu: self.host.cpu_usage_nanos().map(|usage| {
                let reading = CpuUsage {
                    timestamp: now.0,
                    usage_core_nano_seconds: Some(usage),
                };
                self.cpu_stats("/", &reading, now, &mut seen)
            }),
            memory: self.host.memory().map(|m| m.stats(now)),
            ..Default::default()
        };
        if full {
            node.network = self.host.network(now);
            node.fs = node_fs.map(|fs| filesystem(fs, now));
            let image = image_fs
                .as_ref()
                .map(|usage| runtime_fs(usage, image_fs_capacity, now));
            node.runtime = image.map(|image| RuntimeStats {
                image_fs: Some(image),
                container_fs: Some(image),
            });
            let (max_pid, running_processes) = self.host.pids();
            node.rlimit = Some(RlimitStats {
                time: now,
                max_pid,
                running_processes,
            });
        }

        let usage_by_pod: HashMap<&str, &SandboxUsage> = sandbox_usage
            .iter()
            .map(|s| (s.pod_uid.as_str(), s))
            .collect();
        let mut pods = Vec::new();
        for sandbox in current_sandboxes(&sandboxes) {
            let mut pod_containers: Vec<&ContainerUsage> = containers
                .iter()
                .filter(|c| c.pod_uid == sandbox.pod_uid)
                .collect();
            pod_containers.sort_by(|a, b| a.name.cmp(&b.name));
            let pod_log_dir = crate::sync::pod_log_dir(
                &self.log_root,
                &sandbox.pod_namespace,
                &sandbox.pod_name,
                &sandbox.pod_uid,
            );
            let mut stats = Vec::new();
            for c in &pod_containers {
                let mut s = ContainerStats {
                    name: c.name.clone(),
                    start_time: Time(c.created_at),
                    cpu: c
                        .cpu
                        .as_ref()
                        .map(|cpu| self.cpu_stats(&c.id, cpu, now, &mut seen)),
                    memory: c.memory.as_ref().map(|m| memory_stats(m, now)),
                    ..Default::default()
                };
                if full {
                    s.rootfs = c.writable_layer.as_ref().map(|layer| {
                        let fs = if layer.mountpoint.is_empty() {
                            image_fs_capacity
                        } else {
                            disk::capacity(std::path::Path::new(&layer.mountpoint))
                        };
                        runtime_fs(layer, fs, now)
                    });
                    s.logs = disk::tree_stats(&pod_log_dir.join(&c.name), now);
                }
                stats.push(s);
            }
            let usage = usage_by_pod.get(sandbox.pod_uid.as_str()).copied();
            let mut pod = PodStats {
                pod_ref: PodReference {
                    name: sandbox.pod_name.clone(),
                    namespace: sandbox.pod_namespace.clone(),
                    uid: sandbox.pod_uid.clone(),
                },
                start_time: Time(sandbox.created_at),
                cpu: Self::pod_cpu(&stats, now),
                memory: pod_memory(&stats, now),
                containers: stats,
                ..Default::default()
            };
            if full {
                pod.network = usage
                    .and_then(|u| u.network.as_ref())
                    .map(|n| NetworkStats {
                        time: time_or(n.timestamp, now),
                        default_interface: n
                            .default_interface
                            .as_ref()
                            .map(interface_stats)
                            .unwrap_or_default(),
                        interfaces: n
                            .default_interface
                            .iter()
                            .chain(&n.interfaces)
                            .map(interface_stats)
                            .collect(),
                    });
                let (volumes, ephemeral_volumes) = self.volume_stats(&sandbox.pod_uid, now);
                pod.ephemeral_storage = Some(ephemeral_storage(
                    &pod.containers,
                    &ephemeral_volumes,
                    node_fs,
                    now,
                ));
                pod.volume_stats = volumes;
            }
            pods.push(pod);
        }
        self.cpu_readings.lock().retain(|k, _| seen.contains(k));
        Ok(Summary { node, pods })
    }

    /// The pod's CPU: the sum of its containers. (The sandbox's own figures from
    /// `ListPodSandboxStats` come from the sandbox cgroup, which holds only the pause process
    /// while the agent creates no pod-level cgroups.)
    fn pod_cpu(containers: &[ContainerStats], now: Time) -> Option<CpuStats> {
        let cpus: Vec<&CpuStats> = containers.iter().filter_map(|c| c.cpu.as_ref()).collect();
        (!cpus.is_empty()).then(|| CpuStats {
            time: cpus.iter().map(|c| c.time).max().unwrap_or(now),
            usage_nano_cores: cpus
                .iter()
                .try_fold(0u64, |sum, c| Some(sum.saturating_add(c.usage_nano_cores?))),
            usage_core_nano_seconds: cpus
                .iter()
                .fold(None, |sum, c| add(sum, c.usage_core_nano_seconds)),
        })
    }

    /// Stats of the pod's volumes under `<root>/pods/<uid>/volumes/<plugin>/<name>`, and the
    /// ephemeral ones among them.
    fn volume_stats(&self, uid: &str, now: Time) -> (Vec<VolumeStats>, Vec<FsStats>) {
        let mut volumes = Vec::new();
        let mut ephemeral = Vec::new();
        let dir = self.root_dir.join("pods").join(uid).join("volumes");
        let Ok(plugins) = std::fs::read_dir(&dir) else {
            return (volumes, ephemeral);
        };
        for plugin in plugins.filter_map(|e| e.ok()) {
            let plugin_name = plugin.file_name().to_string_lossy().into_owned();
            let is_ephemeral = EPHEMERAL_VOLUME_PLUGINS
                .iter()
                .any(|p| plugin_name == format!("kubernetes.io~{p}"));
            let Ok(entries) = std::fs::read_dir(plugin.path()) else {
                continue;
            };
            for volume in entries.filter_map(|e| e.ok()) {
                let Some(fs) = disk::tree_stats(&volume.path(), now) else {
                    continue;
                };
                if is_ephemeral {
                    ephemeral.push(fs);
                }
                volumes.push(VolumeStats {
                    fs,
                    name: volume.file_name().to_string_lossy().into_owned(),
                });
            }
        }
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        (volumes, ephemeral)
    }
}

/// The pod's memory: the sum of its containers (see [`StatsProvider::pod_cpu`]).
fn pod_memory(containers: &[ContainerStats], now: Time) -> Option<MemoryStats> {
    let memories: Vec<&MemoryStats> = containers
        .iter()
        .filter_map(|c| c.memory.as_ref())
        .collect();
    (!memories.is_empty()).then(|| MemoryStats {
        time: memories.iter().map(|m| m.time).max().unwrap_or(now),
        available_bytes: None,
        usage_bytes: memories.iter().fold(None, |s, m| add(s, m.usage_bytes)),
        working_set_bytes: memories
            .iter()
            .fold(None, |s, m| add(s, m.working_set_bytes)),
        rss_bytes: memories.iter().fold(None, |s, m| add(s, m.rss_bytes)),
        page_faults: memories.iter().fold(None, |s, m| add(s, m.page_faults)),
        major_page_faults: memories
            .iter()
            .fold(None, |s, m| add(s, m.major_page_faults)),
    })
}

/// The pod's ephemeral storage: its containers' writable layers and logs plus its local
/// ephemeral volumes, on the node's filesystem (the kubelet's `calcEphemeralStorage`).
fn ephemeral_storage(
    containers: &[ContainerStats],
    volumes: &[FsStats],
    node_fs: Option<disk::Capacity>,
    now: Time,
) -> FsStats {
    let parts = containers
        .iter()
        .flat_map(|c| [c.rootfs.as_ref(), c.logs.as_ref()])
        .flatten()
        .chain(volumes);
    let (mut used, mut inodes_used) = (0u64, 0u64);
    for p in parts {
        used = used.saturating_add(p.used_bytes.unwrap_or(0));
        inodes_used = inodes_used.saturating_add(p.inodes_used.unwrap_or(0));
    }
    FsStats {
        time: now,
        available_bytes: node_fs.map(|f| f.available_bytes),
        capacity_bytes: node_fs.map(|f| f.capacity_bytes),
        used_bytes: Some(used),
        inodes_free: node_fs.map(|f| f.inodes_free),
        inodes: node_fs.map(|f| f.inodes),
        inodes_used: Some(inodes_used),
    }
}

/// The sandbox of each pod stats are reported for: its newest ready one (the kubelet leaves
/// out terminated sandboxes).
fn current_sandboxes(sandboxes: &[SandboxInfo]) -> Vec<&SandboxInfo> {
    let mut newest: HashMap<&str, &SandboxInfo> = HashMap::new();
    for s in sandboxes.iter().filter(|s| s.ready) {
        match newest.get(s.pod_uid.as_str()) {
            Some(current) if current.created_at >= s.created_at => {}
            _ => {
                newest.insert(&s.pod_uid, s);
            }
        }
    }
    let mut out: Vec<&SandboxInfo> = newest.into_values().collect();
    out.sort_by(|a, b| (&a.pod_namespace, &a.pod_name).cmp(&(&b.pod_namespace, &b.pod_name)));
    out
}

/// An answer of the stats endpoints: status, content type and body.
pub struct Reply {
    pub status: http::StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

/// Serves `GET /stats/summary[?only_cpu_and_memory=true]` and `GET /metrics/resource`; `None`
/// for other paths.
pub async fn serve(provider: &StatsProvider, path: &str, query: Option<&str>) -> Option<Reply> {
    match path.trim_end_matches('/') {
        "/stats/summary" => {
            let only_cpu_and_memory = form_urlencoded::parse(query.unwrap_or("").as_bytes())
                .any(|(k, v)| k == "only_cpu_and_memory" && v == "true");
            let detail = if only_cpu_and_memory {
                Detail::CpuAndMemory
            } else {
                Detail::Full
            };
            Some(match provider.summary(detail).await {
                Ok(summary) => match serde_json::to_string(&summary) {
                    Ok(body) => Reply {
                        status: http::StatusCode::OK,
                        content_type: "application/json",
                        body,
                    },
                    Err(e) => internal_error(e.to_string()),
                },
                Err(e) => internal_error(format!("failed to get stats summary: {e}")),
            })
        }
        "/metrics/resource" => {
            let body = match provider.summary(Detail::CpuAndMemory).await {
                Ok(summary) => resource_metrics::render(&summary),
                Err(e) => {
                    tracing::warn!(error = %e, "resource metrics");
                    resource_metrics::render_error()
                }
            };
            Some(Reply {
                status: http::StatusCode::OK,
                content_type: resource_metrics::CONTENT_TYPE,
                body,
            })
        }
        _ => None,
    }
}

fn internal_error(message: String) -> Reply {
    Reply {
        status: http::StatusCode::INTERNAL_SERVER_ERROR,
        content_type: "text/plain; charset=utf-8",
        body: format!("Internal Error: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeRuntime;
    use crate::runtime::{ContainerSpec, SandboxSpec};

    fn sandbox(name: &str, uid: &str) -> SandboxSpec {
        crate::fake::sandbox_spec(name, uid)
    }

    fn container(name: &str) -> ContainerSpec {
        crate::fake::container_spec(name)
    }

    async fn run_pod(
        rt: &FakeRuntime,
        name: &str,
        uid: &str,
        containers: &[&str],
    ) -> anyhow::Result<()> {
        let spec = sandbox(name, uid);
        let id = rt.run_sandbox(&spec).await?;
        for c in containers {
            let cid = rt.create_container(&id, &spec, &container(c)).await?;
            rt.start_container(&cid).await?;
        }
        Ok(())
    }

    #[tokio::test]
    async fn pods_sum_their_running_containers_and_rates_come_from_readings() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let rt = Arc::new(FakeRuntime::default());
        run_pod(&rt, "web", "uid-web", &["app", "sidecar"]).await?;
        run_pod(&rt, "db", "uid-db", &["db"]).await?;
        rt.exit_container("db", 0);
        rt.set_usage("app", 1_000_000_000, 10 << 20);
        rt.set_usage("sidecar", 500_000_000, 2 << 20);
        let log_dir = dir.path().join("logs/default_web_uid-web/app");
        std::fs::create_dir_all(&log_dir)?;
        std::fs::write(log_dir.join("0.log"), "x".repeat(5000))?;
        let volume = dir
            .path()
            .join("root/pods/uid-web/volumes/kubernetes.io~empty-dir/cache");
        std::fs::create_dir_all(&volume)?;
        std::fs::write(volume.join("data"), "y".repeat(9000))?;
        let provider = StatsProvider::new(
            rt.clone(),
            "n1".into(),
            dir.path().join("logs"),
            dir.path().join("root"),
        );

        let first = provider.summary(Detail::Full).await?;
        assert_eq!(first.node.node_name, "n1");
        let names: Vec<&str> = first.pods.iter().map(|p| p.pod_ref.name.as_str()).collect();
        assert_eq!(names, ["db", "web"]);
        // The db container exited: its pod is listed without containers or usage.
        assert!(first.pods[0].containers.is_empty() && first.pods[0].cpu.is_none());
        let web = &first.pods[1];
        assert_eq!(web.pod_ref.uid, "uid-web");
        let containers: Vec<&str> = web.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(containers, ["app", "sidecar"]);
        let cpu = web.cpu.ok_or_else(|| anyhow::anyhow!("no pod cpu"))?;
        assert_eq!(cpu.usage_core_nano_seconds, Some(1_500_000_000));
        // One reading is not a rate yet.
        assert_eq!(web.containers[0].cpu.and_then(|c| c.usage_nano_cores), None);
        let memory = web.memory.ok_or_else(|| anyhow::anyhow!("no pod memory"))?;
        assert_eq!(memory.working_set_bytes, Some(12 << 20));
        let logs = web.containers[0]
            .logs
            .ok_or_else(|| anyhow::anyhow!("no logs"))?;
        assert!(logs.used_bytes.unwrap_or(0) >= 5000, "{logs:?}");
        assert_eq!(web.volume_stats.len(), 1);
        assert_eq!(web.volume_stats[0].name, "cache");
        let ephemeral = web
            .ephemeral_storage
            .ok_or_else(|| anyhow::anyhow!("no ephemeral storage"))?;
        // Logs + the emptyDir + both writable layers (the fake reports 4 KiB each).
        assert!(
            ephemeral.used_bytes.unwrap_or(0) >= 5000 + 9000 + 8192,
            "{ephemeral:?}"
        );

        // 0.25 s of CPU more in the app container, measured a moment later: a positive rate.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        rt.set_usage("app", 1_250_000_000, 10 << 20);
        let second = provider.summary(Detail::CpuAndMemory).await?;
        let app = &second.pods[1].containers[0];
        let rate = app.cpu.and_then(|c| c.usage_nano_cores).unwrap_or(0);
        assert!(rate > 0 && rate < 250_000_000 * 20, "{rate}");
        assert_eq!(
            second.pods[1].cpu.and_then(|c| c.usage_nano_cores),
            Some(rate),
            "the sidecar used nothing more"
        );
        // CPU-and-memory summaries leave out filesystems.
        assert!(app.logs.is_none() && second.node.fs.is_none());
        Ok(())
    }

    #[tokio::test]
    async fn endpoints_answer_json_and_prometheus_text() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let rt = Arc::new(FakeRuntime::default());
        run_pod(&rt, "web", "uid-web", &["app"]).await?;
        rt.set_usage("app", 2_000_000_000, 1 << 20);
        let provider = StatsProvider::new(rt, "n1".into(), dir.path().into(), dir.path().into());
        let summary = serve(&provider, "/stats/summary", None)
            .await
            .ok_or_else(|| anyhow::anyhow!("no reply"))?;
        assert_eq!(summary.status, http::StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&summary.body)?;
        assert_eq!(json["pods"][0]["podRef"]["name"], "web");
        assert_eq!(
            json["pods"][0]["containers"][0]["cpu"]["usageCoreNanoSeconds"],
            2_000_000_000u64
        );
        assert!(
            json["pods"][0]["startTime"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        let metrics = serve(&provider, "/metrics/resource", None)
            .await
            .ok_or_else(|| anyhow::anyhow!("no reply"))?;
        assert_eq!(metrics.content_type, resource_metrics::CONTENT_TYPE);
        assert!(
            metrics.body.contains(
                "container_cpu_usage_seconds_total{container=\"app\",namespace=\"default\",pod=\"web\"} 2 "
            ),
            "{}",
            metrics.body
        );
        assert!(serve(&provider, "/stats/other", None).await.is_none());
        Ok(())
    }
}
