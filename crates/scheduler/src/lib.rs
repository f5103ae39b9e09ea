//! rkube's kube-scheduler and node lifecycle controller, both ordinary API clients (kube-rs).
//!
//! - [`scheduler::run`]: watches → [`cache::Cache`] + [`queue::SchedulingQueue`] →
//!   [`framework::Framework`] (the default profile's [`plugins`]) → `pods/binding`, with
//!   [`preemption`] and upstream's FailedScheduling text.
//! - [`node_lifecycle::run`]: heartbeats → Ready=Unknown, taints, NoExecute eviction.
//! - [`leader::run_as_leader`]: both run under a Lease (`kube-system/kube-scheduler`,
//!   `kube-system/kube-controller-manager`) so several copies can run.
//! - [`client_from_kubeconfig`]: a client from a kubeconfig file or text.

pub mod cache;
pub mod events;
pub mod framework;
pub mod leader;
pub mod node_lifecycle;
pub mod plugins;
pub mod preemption;
pub mod quantity;
pub mod queue;
pub mod resources;
pub mod scheduler;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// Aborts spawned tasks (watches) when the component's future is dropped.
pub(crate) struct AbortOnDrop(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Why a component could not start.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// Leader election failed.
    #[error("leader election: {0}")]
    LeaderElection(String),
}

/// A kube client from kubeconfig YAML.
pub async fn client_from_kubeconfig_yaml(yaml: &str) -> Result<kube::Client, ComponentError> {
    let kc = Kubeconfig::from_yaml(yaml).map_err(|e| ComponentError::Kubeconfig(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| ComponentError::Kubeconfig(e.to_string()))?;
    kube::Client::try_from(cfg).map_err(|e| ComponentError::Kubeconfig(e.to_string()))
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &std::path::Path) -> Result<kube::Client, ComponentError> {
    let yaml = std::fs::read_to_string(path).map_err(|e| ComponentError::Kubeconfig(format!("{}: {e}", path.display())))?;
    client_from_kubeconfig_yaml(&yaml).await
}

/// Runs the scheduler under leader election (Lease `kube-system/kube-scheduler`) until the
/// returned future is dropped.
pub async fn run_scheduler(client: kube::Client, config: scheduler::SchedulerConfig) -> Result<(), ComponentError> {
    let identity = config.identity.clone();
    let work_client = client.clone();
    leader::run_as_leader(client, "kube-system", "kube-scheduler", &identity, move || scheduler::run(work_client.clone(), config.clone()))
        .await
        .map_err(ComponentError::LeaderElection)
}

/// Runs the node lifecycle controller under leader election (Lease
/// `kube-system/rkube-node-lifecycle-controller`: it runs apart from the controller manager, so
/// it has its own lock).
pub async fn run_node_lifecycle(client: kube::Client, config: node_lifecycle::NodeLifecycleConfig) -> Result<(), ComponentError> {
    let identity = leader::identity();
    let work_client = client.clone();
    leader::run_as_leader(client, "kube-system", "rkube-node-lifecycle-controller", &identity, move || {
        node_lifecycle::run(work_client.clone(), config.clone())
    })
    .await
    .map_err(ComponentError::LeaderElection)
}
