//! `rkube bench pod-start`: pod start latency on a real node — an in-process server (with its
//! scheduler and controllers) and `rkube agent` as its own process on a given CRI socket; 50
//! pods of an image already on the node are created at once and each one's time from its create
//! request to its Ready condition is measured (p50/p99), with the agent's resident memory
//! (VmRSS) idle and with the pods running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

const NODE: &str = "bench-agent";
const NAMESPACE: &str = "default";

/// What to run.
pub struct PodStartBench {
    pub containerd_socket: PathBuf,
    pub image: String,
    pub pods: usize,
}

fn pod(name: &str, image: &str) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench-pod-start"}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]
        }
    }))?)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The agent as a child process of this binary; killed when dropped.
struct AgentProcess(std::process::Child);

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(kubeconfig: &Path, socket: &Path, dir: &Path) -> Result<AgentProcess> {
    let log = std::fs::File::create(dir.join("agent.log"))?;
    let child = std::process::Command::new(std::env::current_exe()?)
        .arg("agent")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--containerd-socket")
        .arg(socket)
        .args(["--node-name", NODE, "--agent-port", "0"])
        // Start latency is measured, not eviction: a nearly full disk must not taint the node.
        .args(["--eviction-hard", "memory.available<100Mi,nodefs.available<0%,nodefs.inodesFree<0%"])
        .arg("--pod-log-dir")
        .arg(dir.join("pods"))
        .arg("--agent-root-dir")
        .arg(dir.join("agent"))
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting rkube agent")?;
    Ok(AgentProcess(child))
}

async fn wait_node_ready(nodes: &Api<Node>, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(n) = nodes.get(NODE).await {
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(anyhow!("node {NODE} not Ready after {timeout:?}"))
}

/// Creates `names` at once and returns each pod's create → Ready time.
async fn start_pods(pods: &Api<Pod>, names: &[String], image: &str) -> Result<Vec<Duration>> {
    let version = pods
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut events = pods
        .watch(
            &WatchParams::default()
                .labels("app=bench-pod-start")
                .timeout(290),
            &version,
        )
        .await?
        .boxed();
    let created: HashMap<String, Instant> = futures::stream::iter(names.iter().cloned())
        .map(|name| async move {
            let at = Instant::now();
            pods.create(&PostParams::default(), &pod(&name, image)?)
                .await?;
            Ok::<_, anyhow::Error>((name, at))
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    let mut ready: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready.len() < names.len() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(remaining, events.try_next())
            .await
            .map_err(|_| {
                anyhow!(
                    "only {}/{} pods Ready after 300 s",
                    ready.len(),
                    names.len()
                )
            })??
            .ok_or_else(|| anyhow!("pod watch ended"))?;
        if let WatchEvent::Added(p) | WatchEvent::Modified(p) = event
            && is_ready(&p)
            && let Some(name) = p.metadata.name
            && let Some(at) = created.get(&name)
        {
            ready.entry(name).or_insert_with(|| at.elapsed());
        }
    }
    let mut latencies: Vec<Duration> = ready.into_values().collect();
    latencies.sort();
    Ok(latencies)
}

async fn delete_pods(pods: &Api<Pod>) -> Result<()> {
    let params = ListParams::default().labels("app=bench-pod-start");
    pods.delete_collection(&DeleteParams::default(), &params)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if pods.list(&params).await?.items.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(anyhow!("bench pods still present after 120 s"))
}

/// Runs the benchmark and prints its numbers.
pub async fn run(bench: PodStartBench) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("rkube-bench-pod-start-")
        .tempdir()?;
    let mut cfg = rkube_cluster::ServerConfig::loopback(dir.path().join("server"));
    cfg.metric_resolution = Duration::from_secs(24 * 3600);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        rkube_cluster::run_server(
            cfg,
            async {
                let _ = stop_rx.await;
            },
            move |_, kubeconfig| {
                let _ = ready_tx.send(kubeconfig);
            },
        )
        .await
    });
    let kubeconfig = ready_rx
        .await
        .map_err(|_| anyhow!("server did not start"))?;
    let client = rkube_scheduler::client_from_kubeconfig(&kubeconfig).await?;
    let agent = start_agent(&kubeconfig, &bench.containerd_socket, dir.path())?;
    let agent_pid = agent.0.id();
    let nodes: Api<Node> = Api::all(client.clone());
    wait_node_ready(&nodes, Duration::from_secs(60))
        .await
        .with_context(|| format!("agent log: {}", dir.path().join("agent.log").display()))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_rss = rss_kib(agent_pid)?;

    // One pod first, not measured: the sandbox image is imported and the image checked once.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let warm = start_pods(&pods, &["bench-warmup".to_string()], &bench.image).await?;
    delete_pods(&pods).await?;

    let names: Vec<String> = (0..bench.pods).map(|i| format!("bench-{i:03}")).collect();
    let started = Instant::now();
    let latencies = start_pods(&pods, &names, &bench.image).await?;
    let all_ready = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let busy_rss = rss_kib(agent_pid)?;
    delete_pods(&pods).await?;
    drop(agent);
    let _ = stop_tx.send(());
    let _ = server.await;

    println!(
        "rkube bench pod-start ({} pods of {}, one node agent on {})",
        bench.pods,
        bench.image,
        bench.containerd_socket.display()
    );
    println!(
        "  {:<40} {:>10}",
        "warm-up pod create → Ready",
        format!(
            "{:.0} ms",
            warm.first().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
        )
    );
    println!(
        "  {:<40} {:>10}",
        "create → Ready p50",
        format!("{:.0} ms", percentile(&latencies, 0.50).as_secs_f64() * 1e3)
    );
    println!(
        "  {:<40} {:>10}",
        "create → Ready p99",
        format!("{:.0} ms", percentile(&latencies, 0.99).as_secs_f64() * 1e3)
    );
    println!(
        "  {:<40} {:>10}",
        "all pods Ready",
        format!("{:.1} s", all_ready.as_secs_f64())
    );
    println!(
        "  {:<40} {:>10}",
        "agent VmRSS idle (no pods)",
        format!("{:.1} MiB", idle_rss as f64 / 1024.0)
    );
    println!(
        "  {:<40} {:>10}",
        format!("agent VmRSS with {} pods", bench.pods),
        format!("{:.1} MiB", busy_rss as f64 / 1024.0)
    );
    Ok(())
}
