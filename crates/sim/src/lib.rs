//! `rkube sim`: simulated nodes for tests and benchmarks (in the spirit of kwok). It registers
//! Nodes that say they are simulated, keeps their Leases in `kube-node-lease` fresh and their
//! status Ready, and carries pods bound to them through Pending → Running/Ready (with a pod IP
//! from the node's pod CIDR) → Succeeded/Failed. No container ever runs.
//!
//! Stages: a pod starts right away; a pod whose restartPolicy is not Always ends after
//! `run_duration` with exit code 0, or with the code in the annotation
//! [`EXIT_CODE_ANNOTATION`] (Never → Failed; OnFailure → the container restarts). A pod with a
//! deletionTimestamp is deleted promptly (grace period 0), as a kubelet whose containers stop
//! at once would.
//!
//! Efficiency: one pod watch (`spec.nodeName!=`, filtered to our nodes locally), one node
//! watch (label selector [`SIMULATOR_LABEL`]), Lease renewals in concurrent batches.

mod config;
mod ipam;
mod metrics_endpoint;
mod objects;
mod pods;
mod usage;

pub use config::{SimConfig, parse_labels, parse_taints};
pub use metrics_endpoint::METRICS_PATH_ANNOTATION;
pub use usage::{CPU_USAGE_ANNOTATION, MEMORY_USAGE_ANNOTATION, parse_cpu_millis, parse_memory_bytes};

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;

/// Label on every simulated node: the simulator's name prefix.
pub const SIMULATOR_LABEL: &str = "sim.rkube.io/simulator";
/// Annotation selecting a pod's exit code.
pub const EXIT_CODE_ANNOTATION: &str = "sim.rkube.io/exit-code";
/// Concurrent API requests when registering nodes and renewing leases.
const CONCURRENCY: usize = 32;

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An API call failed where the simulator cannot go on.
    #[error("{0}")]
    Api(String),
}

/// The simulator's shared view of its nodes.
pub(crate) struct Shared {
    pub(crate) client: kube::Client,
    pub(crate) config: SimConfig,
    pub(crate) names: HashSet<String>,
    /// The metrics endpoint every node advertises as its kubelet endpoint.
    pub(crate) endpoint: std::net::SocketAddr,
    pub(crate) usage: usage::UsageBook,
}

/// Runs the simulator until `shutdown` resolves; the nodes then stop heartbeating.
pub async fn run(client: kube::Client, config: SimConfig, shutdown: impl Future<Output = ()>) -> Result<(), SimError> {
    let names: Vec<String> = (0..config.nodes).map(|i| config.node_name(i)).collect();
    let listener = tokio::net::TcpListener::bind(config.metrics_listen)
        .await
        .map_err(|e| SimError::Api(format!("metrics endpoint {}: {e}", config.metrics_listen)))?;
    let endpoint = listener.local_addr().map_err(|e| SimError::Api(e.to_string()))?;
    let usage = usage::UsageBook::new(config.pod_cpu_usage_millis, config.pod_memory_usage_bytes);
    let shared = Arc::new(Shared { client: client.clone(), config: config.clone(), names: names.iter().cloned().collect(), endpoint, usage });
    let metrics = tokio::spawn(metrics_endpoint::serve(listener, shared.clone()));
    let started = std::time::Instant::now();
    let registered: Vec<Result<(), SimError>> =
        futures::stream::iter(0..config.nodes).map(|i| register(shared.clone(), i)).buffer_unordered(CONCURRENCY).collect().await;
    if let Some(Err(e)) = registered.into_iter().find(Result::is_err) {
        return Err(e);
    }
    tracing::info!(nodes = config.nodes, prefix = %config.name_prefix, elapsed = ?started.elapsed(), "simulated nodes registered");
    println!("rkube sim: {} nodes registered ({}-0 …)", config.nodes, config.name_prefix);

    let heartbeats = tokio::spawn(heartbeat_loop(shared.clone(), names));
    let status_keeper = tokio::spawn(keep_nodes_ready(shared.clone()));
    let pods = tokio::spawn(pods::run(shared.clone()));
    shutdown.await;
    heartbeats.abort();
    status_keeper.abort();
    pods.abort();
    metrics.abort();
    tracing::info!("simulator stopped; its nodes no longer heartbeat");
    Ok(())
}

async fn register(shared: Arc<Shared>, index: usize) -> Result<(), SimError> {
    let cfg = &shared.config;
    let name = cfg.node_name(index);
    let api: Api<Node> = Api::all(shared.client.clone());
    let node = objects::node(cfg, index);
    let uid = match api.create(&PostParams::default(), &node).await {
        Ok(n) => n.metadata.uid,
        Err(kube::Error::Api(e)) if e.code == 409 => {
            // A previous run registered it: take it over with this run's labels and taints.
            let patch = json!({"metadata": {"labels": node.metadata.labels, "annotations": node.metadata.annotations}, "spec": node.spec});
            let n = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map_err(|e| SimError::Api(format!("node {name}: {e}")))?;
            n.metadata.uid
        }
        Err(e) => return Err(SimError::Api(format!("creating node {name}: {e}"))),
    };
    post_status(&shared, index).await?;
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), "kube-node-lease");
    let lease = objects::lease(&name, uid.as_deref(), cfg.lease_duration_seconds());
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => renew(&leases, &name).await,
        Err(e) => Err(SimError::Api(format!("creating lease {name}: {e}"))),
    }
}

async fn post_status(shared: &Shared, index: usize) -> Result<(), SimError> {
    let name = shared.config.node_name(index);
    let api: Api<Node> = Api::all(shared.client.clone());
    let status = objects::node_status(&shared.config, index, shared.endpoint);
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(json!({"status": status})))
        .await
        .map(|_| ())
        .map_err(|e| SimError::Api(format!("node {name} status: {e}")))
}

async fn renew(leases: &Api<Lease>, name: &str) -> Result<(), SimError> {
    let patch = json!({"spec": {"holderIdentity": name, "renewTime": objects::micro_time_now()}});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
        .map_err(|e| SimError::Api(format!("lease {name}: {e}")))
}

/// Renews every node's Lease each heartbeat interval (the kubelet renews every 10 s, a
/// quarter of the 40 s lease), in concurrent batches.
async fn heartbeat_loop(shared: Arc<Shared>, names: Vec<String>) {
    let leases: Api<Lease> = Api::namespaced(shared.client.clone(), "kube-node-lease");
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let failures = futures::stream::iter(names.clone())
            .map(|n| {
                let leases = leases.clone();
                async move { renew(&leases, &n).await }
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|r| futures::future::ready(r.is_err()))
            .count()
            .await;
        if failures > 0 {
            tracing::warn!(failures, "lease renewals failed");
        }
    }
}

/// Re-posts a node's status when someone else (the node lifecycle controller) changed its
/// Ready condition, and refreshes every node's status heartbeat now and then.
async fn keep_nodes_ready(shared: Arc<Shared>) {
    let api: Api<Node> = Api::all(shared.client.clone());
    let selector = format!("{SIMULATOR_LABEL}={}", shared.config.name_prefix);
    let mut stream = watcher(api, watcher::Config::default().labels(&selector)).boxed();
    let mut refresh = tokio::time::interval(shared.config.status_refresh_interval);
    refresh.tick().await;
    loop {
        tokio::select! {
            ev = stream.next() => {
                let node = match ev {
                    Some(Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => n,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "node watch");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    None => return,
                };
                let ready = node.status.as_ref().and_then(|s| s.conditions.as_ref())
                    .and_then(|c| c.iter().find(|c| c.type_ == "Ready")).is_some_and(|c| c.status == "True");
                if !ready
                    && let Some(index) = shared.config.node_index(&node.name_any())
                        && let Err(e) = post_status(&shared, index).await {
                            tracing::debug!(error = %e, "re-posting node status");
                        }
            }
            _ = refresh.tick() => {
                futures::stream::iter(0..shared.config.nodes)
                    .map(|i| { let s = shared.clone(); async move { post_status(&s, i).await } })
                    .buffer_unordered(CONCURRENCY)
                    .for_each(|_| futures::future::ready(()))
                    .await;
            }
        }
    }
}
