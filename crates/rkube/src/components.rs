//! `rkube scheduler` and `rkube sim`: components run on their own against a kubeconfig.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

/// Parses `40s`, `500ms`, `2m`, `1h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("invalid duration {s:?}: want e.g. 40s, 500ms, 2m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// `rkube scheduler`.
#[derive(clap::Args)]
pub struct SchedulerArgs {
    /// kubeconfig of the cluster (its user should be system:kube-scheduler).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
}

/// `rkube sim`.
#[derive(clap::Args)]
pub struct SimArgs {
    /// kubeconfig of the cluster.
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Nodes are named <prefix>-0, <prefix>-1, ...
    #[arg(long, default_value = "sim")]
    name_prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "16Gi")]
    memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value = "110")]
    pods: String,
    /// Node labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    labels: String,
    /// Node taints: k=v:Effect,k2:Effect.
    #[arg(long, default_value = "")]
    taints: String,
    /// How long pods whose restartPolicy is not Always run before they end.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    run_duration: Duration,
    /// How often node Leases are renewed (the kubelet's 10 s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// CPU each pod uses unless annotated sim.rkube.io/cpu-usage (a quantity).
    #[arg(long, default_value = "100m")]
    pod_cpu_usage: String,
    /// Memory each pod uses unless annotated sim.rkube.io/memory-usage (a quantity).
    #[arg(long, default_value = "64Mi")]
    pod_memory_usage: String,
    /// Address of the HTTPS endpoint serving every node's /metrics/resource (all nodes
    /// advertise it as their InternalIP and kubelet port).
    #[arg(long, default_value = "127.0.0.1:0")]
    metrics_address: std::net::SocketAddr,
}

/// Runs the scheduler until the signal.
pub async fn run_scheduler(args: SchedulerArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let client = rkube_scheduler::client_from_kubeconfig(&args.kubeconfig).await?;
    println!("rkube: scheduler started");
    tokio::select! {
        r = rkube_scheduler::run_scheduler(client, Default::default()) => r.map_err(|e| anyhow!(e)),
        _ = shutdown => Ok(()),
    }
}

/// Runs simulated nodes until the signal.
pub async fn run_sim(args: SimArgs, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let client = rkube_scheduler::client_from_kubeconfig(&args.kubeconfig).await?;
    let config = rkube_sim::SimConfig {
        nodes: args.nodes,
        name_prefix: args.name_prefix,
        cpu: args.cpu,
        memory: args.memory,
        pods: args.pods,
        labels: rkube_sim::parse_labels(&args.labels).map_err(|e| anyhow!(e)).context("--labels")?,
        taints: rkube_sim::parse_taints(&args.taints).map_err(|e| anyhow!(e)).context("--taints")?,
        run_duration: args.run_duration,
        heartbeat_interval: args.heartbeat_interval,
        pod_cpu_usage_millis: rkube_sim::parse_cpu_millis(&args.pod_cpu_usage)
            .ok_or_else(|| anyhow!("--pod-cpu-usage: invalid quantity {:?}", args.pod_cpu_usage))?,
        pod_memory_usage_bytes: rkube_sim::parse_memory_bytes(&args.pod_memory_usage)
            .ok_or_else(|| anyhow!("--pod-memory-usage: invalid quantity {:?}", args.pod_memory_usage))?,
        metrics_listen: args.metrics_address,
        ..Default::default()
    };
    rkube_sim::run(client, config, shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("3 days").is_err());
    }
}
