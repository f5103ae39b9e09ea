//! The controller manager: upstream kube-controller-manager's core controllers as ordinary API
//! clients of the server (kube-rs), elected through the Lease
//! `kube-system/kube-controller-manager` so several managers can run and only one acts.
//!
//! `rkube server` runs it in-process over HTTPS to its own address with the identity
//! `system:kube-controller-manager`; `rkube controller-manager --kubeconfig FILE` runs it alone.
//! Each controller has upstream's name and can be disabled by it.

pub mod bootstrap_tokens;
pub mod cidrset;
pub mod context;
pub mod cronjob;
pub mod cronjob_util;
pub mod csr_approving;
pub mod csr_cleaner;
pub mod csr_signing;
pub mod csr_util;
pub mod daemonset;
pub mod daemonset_util;
pub mod deployment;
pub mod deployment_util;
pub mod discovery;
pub mod disruption;
pub mod endpoints;
pub mod endpoints_util;
pub mod error;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod job;
pub mod job_util;
pub mod leader;
pub mod local_path;
pub mod namespace;
pub mod nodeipam;
pub mod persistentvolume;
pub mod pod_util;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod serviceaccount;
pub mod statefulset;
pub mod statefulset_util;
pub mod ttl_after_finished;
pub mod volume_protection;
pub mod volume_util;

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::ReplicationController;
use tokio::task::JoinSet;

pub use context::Context;
pub use error::{Error, Result};

/// Upstream's controller names, in start order.
pub const CONTROLLERS: &[&str] = &[
    "serviceaccount",
    "root-ca-cert-publisher",
    "namespace",
    "garbage-collector",
    "deployment",
    "replicaset",
    "replicationcontroller",
    "statefulset",
    "job",
    "cronjob",
    "daemonset",
    "disruption",
    "endpoint",
    "endpointslice",
    "pod-garbage-collector",
    "ttl-after-finished",
    "persistentvolume-binder",
    "pvc-protection",
    "pv-protection",
    // k3s's name for its bundled local-path provisioner (and default StorageClass).
    "local-storage",
    "horizontalpodautoscaling",
    "csrapproving",
    "csrsigning",
    "csrcleaner",
    // Off by default in kube-controller-manager, on in kubeadm clusters: rkube's node join
    // (`rkube agent --token`) relies on them as kubeadm join does.
    "bootstrapsigner",
    "tokencleaner",
    // Upstream's `nodeipam` (alias of `node-ipam-controller`); runs when
    // `--allocate-node-cidrs` is on.
    "nodeipam",
];

/// The user the manager authenticates as (bound by upstream's default RBAC).
pub const USER_NAME: &str = "system:kube-controller-manager";

/// User-Agent of the manager's requests (upstream's shape: `<command>/<version> (<os>/<arch>) …`).
const USER_AGENT: &str = "kube-controller-manager/v1.33.5+rkube (linux/amd64) rkube";

/// How the manager runs.
#[derive(Clone)]
pub struct ManagerConfig {
    /// Controller names not to run.
    pub disabled: BTreeSet<String>,
    /// PEM of the cluster CA, published as `kube-root-ca.crt`.
    pub root_ca_pem: String,
    /// Directory on the nodes for `local-path` volumes (empty: `local_path::DEFAULT_STORAGE_DIR`).
    pub local_storage_dir: std::path::PathBuf,
    /// How often every HPA is synced (`--horizontal-pod-autoscaler-sync-period`).
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// The CA `csrsigning` issues certificates with (none: it stays idle).
    pub csr_signing: Option<std::sync::Arc<csr_signing::CsrSigning>>,
    /// Where `nodeipam` takes Node pod CIDRs from; `None` (`--allocate-node-cidrs=false`)
    /// leaves it off, as upstream.
    pub node_ipam: Option<std::sync::Arc<nodeipam::NodeIpamConfig>>,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            disabled: BTreeSet::new(),
            root_ca_pem: String::new(),
            horizontal_pod_autoscaler_sync_period: Duration::from_secs(15),
            local_storage_dir: std::path::PathBuf::new(),
            csr_signing: None,
            node_ipam: None,
        }
    }
}

impl ManagerConfig {
    /// Rejects names that are not controllers, as kube-controller-manager's `--controllers` does.
    pub fn check(&self) -> Result<()> {
        for name in &self.disabled {
            if !CONTROLLERS.contains(&name.as_str()) {
                return Err(Error::Config(format!(
                    "{name:?} is not a known controller (known: {})",
                    CONTROLLERS.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn enabled(&self, name: &str) -> bool {
        !self.disabled.contains(name)
    }
}

/// Builds a client from kubeconfig YAML (its current context).
pub async fn client_from_kubeconfig(yaml: &str) -> Result<kube::Client> {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Config(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .map_err(|e| Error::Config(e.to_string()))?;
    // The server names field managers after the User-Agent's first word, so writes show up in
    // managedFields as `kube-controller-manager`, as upstream's do.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(config).map_err(Error::Kube)
}

/// The CA bundle (PEM) of the kubeconfig's current cluster, embedded or as a file.
pub fn kubeconfig_ca_pem(yaml: &str) -> Result<String> {
    use base64::Engine;
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Config(e.to_string()))?;
    let context_name = kubeconfig.current_context.clone().unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| Error::Config(format!("current context {context_name:?} not found")))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .ok_or_else(|| Error::Config(format!("cluster {cluster_name:?} not found")))?;
    if let Some(data) = &cluster.certificate_authority_data {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| Error::Config(format!("certificate-authority-data: {e}")))?;
        return String::from_utf8(bytes)
            .map_err(|e| Error::Config(format!("certificate-authority-data: {e}")));
    }
    if let Some(file) = &cluster.certificate_authority {
        return std::fs::read_to_string(file)
            .map_err(|e| Error::Config(format!("reading {file}: {e}")));
    }
    Err(Error::Config(format!(
        "cluster {cluster_name:?} has no certificate authority"
    )))
}

/// Runs the manager until `shutdown` resolves: waits for leadership, runs the enabled
/// controllers while leading, stops them when leadership is lost.
pub async fn run(
    client: kube::Client,
    config: ManagerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    config.check()?;
    let identity = leader::identity();
    let ctx = Context {
        client: client.clone(),
        identity: identity.clone(),
        root_ca_pem: config.root_ca_pem.clone(),
        csr_signing: config.csr_signing.clone(),
    };
    tokio::pin!(shutdown);
    let mut leading = tokio::select! {
        r = leader::elect(client, &identity) => r?,
        () = &mut shutdown => return Ok(()),
    };
    loop {
        tokio::select! {
            () = leading.acquired() => {}
            () = &mut shutdown => return Ok(()),
        }
        tracing::info!(%identity, "became leader of kube-system/kube-controller-manager; starting controllers");
        let mut running = start_controllers(&ctx, &config);
        tokio::select! {
            () = leading.lost() => {
                tracing::warn!(%identity, "lost leadership; stopping controllers");
                running.shutdown().await;
            }
            () = &mut shutdown => {
                running.shutdown().await;
                leading.release().await;
                return Ok(());
            }
        }
    }
}

fn start_controllers(ctx: &Context, config: &ManagerConfig) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for &name in CONTROLLERS {
        if !config.enabled(name) {
            tracing::info!(controller = name, "controller disabled");
            continue;
        }
        if name == "nodeipam" && config.node_ipam.is_none() {
            tracing::info!(controller = name, "not allocating node pod CIDRs (--allocate-node-cidrs=false)");
            continue;
        }
        let ctx = ctx.clone();
        set.spawn(supervise(name, ctx, config.clone()));
    }
    set
}

/// Runs one controller, restarting it after a pause whenever it stops.
async fn supervise(name: &'static str, ctx: Context, config: ManagerConfig) {
    loop {
        tracing::info!(controller = name, "starting controller");
        let result = match name {
            "serviceaccount" => serviceaccount::run_serviceaccounts(ctx.clone()).await,
            "root-ca-cert-publisher" => serviceaccount::run_root_ca_publisher(ctx.clone()).await,
            "namespace" => namespace::run(ctx.clone()).await,
            "endpoint" => endpoints::run_endpoints(ctx.clone()).await,
            "endpointslice" => endpoints::run_slices(ctx.clone()).await,
            "pod-garbage-collector" => podgc::run(ctx.clone()).await,
            "ttl-after-finished" => ttl_after_finished::run(ctx.clone()).await,
            "garbage-collector" => garbage_collector::run(ctx.clone()).await,
            "deployment" => deployment::run(ctx.clone()).await,
            "replicaset" => replicaset::run::<ReplicaSet>(ctx.clone()).await,
            "replicationcontroller" => replicaset::run::<ReplicationController>(ctx.clone()).await,
            "statefulset" => statefulset::run(ctx.clone()).await,
            "job" => job::run(ctx.clone()).await,
            "cronjob" => cronjob::run(ctx.clone()).await,
            "daemonset" => daemonset::run(ctx.clone()).await,
            "disruption" => disruption::run(ctx.clone()).await,
            "persistentvolume-binder" => persistentvolume::run(ctx.clone()).await,
            "pvc-protection" => volume_protection::run_pvc_protection(ctx.clone()).await,
            "pv-protection" => volume_protection::run_pv_protection(ctx.clone()).await,
            "local-storage" => local_path::run(ctx.clone(), config.local_storage_dir.clone()).await,
            "horizontalpodautoscaling" => podautoscaler::run(ctx.clone(), config.horizontal_pod_autoscaler_sync_period).await,
            "csrapproving" => csr_approving::run(ctx.clone()).await,
            "csrsigning" => csr_signing::run(ctx.clone()).await,
            "csrcleaner" => csr_cleaner::run(ctx.clone()).await,
            "bootstrapsigner" => bootstrap_tokens::run_signer(ctx.clone()).await,
            "tokencleaner" => bootstrap_tokens::run_cleaner(ctx.clone()).await,
            "nodeipam" => match config.node_ipam.clone() {
                Some(ipam) => nodeipam::run(ctx.clone(), ipam).await,
                None => Ok(()),
            },
            _ => Ok(()),
        };
        match result {
            Ok(()) => tracing::warn!(controller = name, "controller stopped; restarting"),
            Err(e) => {
                tracing::error!(controller = name, error = %e, "controller failed; restarting")
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Now as RFC 3339 with second precision, as metav1.Time serialises.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A list for a merge patch: `null` when empty, so the field disappears as it does upstream
/// (Go omits empty lists) instead of staying as `[]`.
pub fn list_or_null<T: serde::Serialize>(items: &[T]) -> serde_json::Value {
    if items.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::to_value(items).unwrap_or(serde_json::Value::Null)
    }
}
