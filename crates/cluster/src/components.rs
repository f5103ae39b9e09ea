//! In-process control-plane components (`rkube server` without `--disable=<name>`): each is an
//! ordinary API client with its own identity, a client certificate signed by the cluster CA, as
//! upstream's kube-scheduler (`system:kube-scheduler`) and kube-controller-manager
//! (`system:kube-controller-manager`) use.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::ClusterError;

/// The component names `--disable` accepts that this module starts.
pub const SCHEDULER: &str = "scheduler";
/// The node lifecycle controller.
pub const NODE_LIFECYCLE: &str = "node-lifecycle";

/// A kube client for `user`, talking to the server at `url` over HTTPS.
async fn client_for(pki: &rkube_pki::ClusterPki, url: &str, user: &str) -> Result<kube::Client, ClusterError> {
    let (cert, key) = pki.issue_client_cert(user, &[]).map_err(|e| ClusterError::Pki(e.to_string()))?;
    let yaml = rkube_pki::kubeconfig_yaml(url, rkube_pki::KUBECONFIG_NAME, user, &pki.ca_cert_pem, &cert, &key)
        .map_err(|e| ClusterError::Pki(e.to_string()))?;
    rkube_scheduler::client_from_kubeconfig_yaml(&yaml).await.map_err(|e| ClusterError::Config(e.to_string()))
}

/// Starts the components not disabled; the handles are aborted at shutdown.
pub async fn start(
    pki: &rkube_pki::ClusterPki,
    url: &str,
    disabled: &[String],
    node_monitor_grace_period: Duration,
) -> Result<Vec<JoinHandle<()>>, ClusterError> {
    let mut tasks = Vec::new();
    let enabled = |name: &str| !disabled.iter().any(|d| d == name);
    if enabled(SCHEDULER) {
        let client = client_for(pki, url, "system:kube-scheduler").await?;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = rkube_scheduler::run_scheduler(client, Default::default()).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        }));
    }
    if enabled(NODE_LIFECYCLE) {
        let client = client_for(pki, url, "system:kube-controller-manager").await?;
        let config = rkube_scheduler::node_lifecycle::NodeLifecycleConfig::with_grace_period(node_monitor_grace_period);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = rkube_scheduler::run_node_lifecycle(client, config).await {
                tracing::error!(error = %e, "node lifecycle controller stopped");
            }
        }));
    }
    Ok(tasks)
}
