//! `rkube agent`: the node agent. It registers this host as a Node, renews its Lease, and runs
//! the pods bound to it as real containers through a CRI runtime (containerd), reporting their
//! status like the kubelet. Its HTTPS endpoint serves container logs to the API server.
//!
//! Modules: [`runtime`] (the runtime trait), [`cri`] (CRI v1 client), [`fake`] (in-memory
//! runtime for tests), [`sync`] (one pod towards its spec), [`status`] (pod status from what the
//! runtime reports), [`node`] (Node, status, Lease), [`logs`] and [`server`] (log endpoint),
//! `streaming` (exec, attach and port-forward proxied to the runtime's streaming server),
//! [`static_pods`] (pods from manifest files, shown in the API as mirror pods).

pub mod atomic_writer;
pub mod cri;
pub mod endpoint_auth;
pub mod env;
pub mod eviction;
pub mod fake;
pub mod hooks;
pub mod images;
pub mod keyring;
pub mod logs;
pub mod managed_runtime;
pub mod node;
pub mod objects;
pub mod pod_cidr;
pub mod probes;
pub mod registries;
pub mod resources;
pub mod runtime;
pub mod security;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod status;
mod streaming;
pub mod sync;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::runtime::Runtime;
use crate::sync::{NodeContext, PodSyncer};

/// How often each pod is synced even without changes (container exits are seen this way).
const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How often the Node status is re-posted.
const NODE_STATUS_INTERVAL: Duration = Duration::from_secs(60);

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Api(String),
    #[error("{0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("{0}")]
    Config(String),
}

/// Settings of one agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub node_name: String,
    pub node_ip: IpAddr,
    /// Address of the HTTPS endpoint (port 10250 by default; 0 picks one).
    pub listen: std::net::SocketAddr,
    pub containerd_socket: PathBuf,
    /// Root of pod log directories.
    pub log_root: PathBuf,
    /// The agent's state: pod volumes (`pods/<uid>/volumes/…`).
    pub root_dir: PathBuf,
    /// The cluster CA (DER) client certificates of the endpoint are verified against (the
    /// kubelet's `--client-ca-file`; from the agent's kubeconfig). Empty: tokens only.
    pub client_ca: Vec<Vec<u8>>,
    /// The registries file, already read and checked.
    pub registries: Option<registries::RegistriesConfig>,
    /// Where containerd reads registry hosts configuration (its CRI `config_path`).
    pub registry_hosts_dir: PathBuf,
    /// The static pod manifest directory (the kubelet's `staticPodPath`); `None` disables
    /// static pods.
    pub pod_manifest_path: Option<PathBuf>,
    /// The hard eviction thresholds (`--eviction-hard`).
    pub eviction_hard: eviction::EvictionHard,
    /// The pod CIDR given with `--pod-cidr` to the managed runtime, recorded on the Node.
    pub pod_cidr: Option<String>,
}

/// The host's name, as the kubelet's default node name (lower-case).
pub fn default_node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_else(|_| "localhost".into())
}

/// The local address used to reach `server` (the node's InternalIP).
pub fn local_ip_towards(server: std::net::SocketAddr) -> std::io::Result<IpAddr> {
    let socket = std::net::UdpSocket::bind(if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    socket.connect(server)?;
    Ok(socket.local_addr()?.ip())
}

/// Connects to the CRI socket and checks that the runtime answers.
pub async fn connect_runtime(socket: PathBuf) -> Result<Arc<dyn Runtime>, AgentError> {
    if !socket.exists() {
        return Err(AgentError::Config(format!(
            "container runtime socket {} does not exist",
            socket.display()
        )));
    }
    let runtime = tokio::time::timeout(
        Duration::from_secs(5),
        cri::CriRuntime::connect(socket.clone()),
    )
    .await
    .map_err(|_| {
        AgentError::Config(format!(
            "container runtime at {} does not answer",
            socket.display()
        ))
    })??;
    runtime.version().await?;
    Ok(Arc::new(runtime))
}

/// Runs the agent until `shutdown` resolves. Pods keep running after it stops (their
/// containers belong to the runtime); a new agent adopts them.
pub async fn run(
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: AgentConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let version = runtime.version().await?;
    let node_credentials = match &config.registries {
        Some(registries) => {
            let written = registries
                .write_hosts(&config.registry_hosts_dir)
                .map_err(|e| {
                    AgentError::Config(format!(
                        "writing registry hosts under {}: {e}",
                        config.registry_hosts_dir.display()
                    ))
                })?;
            for path in written {
                tracing::info!(path = %path.display(), "registry hosts configuration written");
            }
            registries.credentials()
        }
        None => Default::default(),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| AgentError::Config(format!("binding {}: {e}", config.listen)))?;
    let port = listener
        .local_addr()
        .map_err(|e| AgentError::Config(e.to_string()))?
        .port();
    let node_ip = config.node_ip.to_string();
    let host = node::HostFacts::of_this_host();
    let allocatable = env::NodeAllocatable {
        cpu_milli: host.cpus as i64 * 1000,
        memory_bytes: node::allocatable_memory_kib(&host, &config.eviction_hard) as i64 * 1024,
    };
    let context = NodeContext {
        node_name: config.node_name.clone(),
        node_ip: node_ip.clone(),
        log_root: config.log_root.clone(),
        runtime_name: version.name.clone(),
        root_dir: config.root_dir.clone(),
        allocatable,
    };
    let objects = Arc::new(objects::ApiObjects::new(
        client.clone(),
        config.node_name.clone(),
    ));
    let syncer = Arc::new(PodSyncer::with_credentials(
        runtime.clone(),
        objects,
        Arc::new(node_credentials),
        context,
    ));
    // Static pods start first, before the API server is reached (it may be down, or run as
    // one of them): the first read of the manifests happens before the pod watch's first
    // list, so their sandboxes are never taken for orphans.
    let static_state = Arc::new(static_pods::StaticPodState::default());
    let mut static_manager = static_pods::StaticPodManager::new(
        config.pod_manifest_path.clone(),
        config.node_name.clone(),
        syncer.clone(),
        client.clone(),
        static_state.clone(),
    );
    static_manager.poll().await;
    let static_pods = tokio::spawn(static_manager.run());
    let names = vec![
        config.node_name.clone(),
        node_ip.clone(),
        "localhost".into(),
    ];
    let stats = Arc::new(stats::StatsProvider::new(
        runtime.clone(),
        config.node_name.clone(),
        config.log_root.clone(),
        config.root_dir.clone(),
    ));
    let auth = Arc::new(endpoint_auth::EndpointAuth::new(
        client.clone(),
        config.node_name.clone(),
    ));
    let endpoint = tokio::spawn(server::serve(
        listener,
        config.log_root.clone(),
        runtime.clone(),
        names,
        stats,
        auth,
        config.client_ca.clone(),
    ));
    let mut condition_times = node::ConditionTimes::default();
    let status = node::node_status(&config.node_name, &node_ip, port, &host, &version, &node::Usage::now(&config.root_dir), &config.eviction_hard, &mut condition_times);
    tokio::pin!(shutdown);
    tokio::select! {
        () = register_until_done(&client, &config.node_name, &status, config.pod_cidr.as_deref()) => {}
        () = &mut shutdown => {
            endpoint.abort();
            static_pods.abort();
            return Ok(());
        }
    }
    tracing::info!(node = %config.node_name, %node_ip, port, runtime = %format!("{}://{}", version.name, version.version), "node registered");
    let heartbeat = tokio::spawn(heartbeat(
        client.clone(),
        config.node_name.clone(),
        node_ip.clone(),
        port,
        host,
        version.clone(),
        config.root_dir.clone(),
        config.eviction_hard,
        condition_times,
    ));
    let pods = tokio::spawn(watch_pods(client, syncer, config.node_name, static_state));
    shutdown.await;
    endpoint.abort();
    heartbeat.abort();
    pods.abort();
    static_pods.abort();
    Ok(())
}

/// How long the agent waits between attempts to register its Node.
const REGISTER_RETRY: Duration = Duration::from_secs(2);

/// Registers the Node, retrying until the API server accepts it (as the kubelet does: static
/// pods run meanwhile).
async fn register_until_done(client: &kube::Client, name: &str, status: &Value, pod_cidr: Option<&str>) {
    let mut last_error = None;
    loop {
        match node::register(client, name, status, pod_cidr).await {
            Ok(()) => return,
            Err(e) => {
                let message = e.to_string();
                if last_error.as_ref() != Some(&message) {
                    tracing::warn!(node = name, error = %message, "registering the node with the API server; retrying");
                    last_error = Some(message);
                }
            }
        }
        tokio::time::sleep(REGISTER_RETRY).await;
    }
}

async fn heartbeat(
    client: kube::Client,
    name: String,
    node_ip: String,
    port: u16,
    host: node::HostFacts,
    version: runtime::RuntimeVersion,
    root_dir: std::path::PathBuf,
    eviction_hard: eviction::EvictionHard,
    mut condition_times: node::ConditionTimes,
) {
    let mut lease = tokio::time::interval(node::LEASE_RENEW_INTERVAL);
    let mut status = tokio::time::interval(NODE_STATUS_INTERVAL);
    status.tick().await;
    loop {
        tokio::select! {
            _ = lease.tick() => {
                if let Err(e) = node::renew_lease(&client, &name).await {
                    tracing::warn!(error = %e, "renewing the node lease");
                }
            }
            _ = status.tick() => {
                let s = node::node_status(&name, &node_ip, port, &host, &version, &node::Usage::now(&root_dir), &eviction_hard, &mut condition_times);
                if let Err(e) = node::post_status(&client, &name, &s).await {
                    tracing::warn!(error = %e, "posting node status");
                }
            }
        }
    }
}

/// Watches the pods bound to this node and keeps one worker per pod. Mirror pods are not run
/// (their static pod is): they are handed to the static pod manager.
async fn watch_pods(
    client: kube::Client,
    syncer: Arc<PodSyncer>,
    node_name: String,
    static_state: Arc<static_pods::StaticPodState>,
) {
    let api: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher(
        api,
        watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
    )
    .boxed();
    let mirrors = &static_state.mirrors;
    let mut workers: HashMap<String, watch::Sender<Pod>> = HashMap::new();
    let mut initial: Option<HashSet<String>> = None;
    let mut initial_mirrors: HashSet<String> = HashSet::new();
    let mut listed = false;
    while let Some(event) = stream.next().await {
        match event {
            Ok(watcher::Event::Init) => {
                initial = Some(HashSet::new());
                initial_mirrors.clear();
            }
            Ok(watcher::Event::InitApply(pod)) if static_pods::is_mirror_pod(&pod) => {
                initial_mirrors.insert(static_pods::manifest::full_name(&pod));
                mirrors.seen(pod);
            }
            Ok(watcher::Event::InitApply(pod)) => {
                if let Some(seen) = initial.as_mut() {
                    seen.insert(pod.uid().unwrap_or_default());
                }
                deliver(&mut workers, &client, &syncer, pod);
            }
            Ok(watcher::Event::InitDone) => {
                mirrors.relisted(&initial_mirrors);
                let seen = initial.take().unwrap_or_default();
                workers.retain(|uid, _| seen.contains(uid));
                if !listed {
                    listed = true;
                    // Sandboxes of pods deleted while no agent ran (static pods are not).
                    let mut known = seen;
                    known.extend(static_state.uids());
                    if let Err(e) = syncer.remove_orphans(&known).await {
                        tracing::warn!(error = %e, "removing orphaned sandboxes");
                    }
                }
            }
            Ok(watcher::Event::Apply(pod)) if static_pods::is_mirror_pod(&pod) => mirrors.seen(pod),
            Ok(watcher::Event::Apply(pod)) => deliver(&mut workers, &client, &syncer, pod),
            Ok(watcher::Event::Delete(pod)) if static_pods::is_mirror_pod(&pod) => {
                mirrors.gone(&pod)
            }
            Ok(watcher::Event::Delete(pod)) => {
                workers.remove(&pod.uid().unwrap_or_default());
            }
            Err(e) => {
                tracing::debug!(error = %e, "pod watch");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        workers.retain(|_, tx| !tx.is_closed());
    }
}

fn deliver(
    workers: &mut HashMap<String, watch::Sender<Pod>>,
    client: &kube::Client,
    syncer: &Arc<PodSyncer>,
    pod: Pod,
) {
    let uid = pod.uid().unwrap_or_default();
    if let Some(tx) = workers.get(&uid)
        && tx.send(pod.clone()).is_ok()
    {
        return;
    }
    let (tx, rx) = watch::channel(pod);
    workers.insert(uid, tx);
    tokio::spawn(pod_worker(client.clone(), syncer.clone(), rx));
}

/// The grace period of a pod being deleted.
pub(crate) fn grace_period(pod: &Pod) -> i64 {
    pod.metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30)
}

/// Syncs one pod on every change and every second; terminates it once it is being deleted.
async fn pod_worker(client: kube::Client, syncer: Arc<PodSyncer>, mut rx: watch::Receiver<Pod>) {
    let mut reported: Option<Value> = None;
    loop {
        let pod = rx.borrow_and_update().clone();
        let key = format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any());
        if pod.metadata.deletion_timestamp.is_some() {
            let grace = grace_period(&pod);
            tracing::info!(pod = %key, grace, "stopping pod");
            if let Err(e) = syncer.terminate(&pod, grace).await {
                tracing::warn!(pod = %key, error = %e, "stopping pod");
                tokio::time::sleep(RESYNC_INTERVAL).await;
                continue;
            }
            delete_object(&client, &pod).await;
            return;
        }
        match syncer.sync(&pod).await {
            Ok(Some(status)) => {
                let comparable = status::without_transition_times(&status);
                if reported.as_ref() != Some(&comparable)
                    && patch_status(&client, &pod, &status).await
                {
                    reported = Some(comparable);
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(pod = %key, error = %e, "syncing pod"),
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RESYNC_INTERVAL) => {}
        }
    }
}

pub(crate) async fn patch_status(client: &kube::Client, pod: &Pod, status: &Value) -> bool {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    match api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(json!({"status": status})),
        )
        .await
    {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(pod = %pod.name_any(), error = %e, "updating pod status");
            false
        }
    }
}

/// Removes the pod object once its containers are gone (grace period 0, this pod's UID only).
async fn delete_object(client: &kube::Client, pod: &Pod) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api.delete(&pod.name_any(), &params).await {
        tracing::debug!(pod = %pod.name_any(), error = %e, "deleting pod");
    }
}
