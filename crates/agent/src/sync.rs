//! Drives one pod towards its spec through the runtime, like the kubelet's pod workers: a
//! sandbox, then each container (pulling its image per imagePullPolicy), restarts under the
//! restart policy with exponential back-off, and graceful termination. Everything is read back
//! from the runtime on each sync, so an agent restarted while pods run adopts them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use parking_lot::Mutex;
use serde_json::Value;

use crate::env::{self, NodeAllocatable, expand};
use crate::hooks;
use crate::images::{ImageManager, NodeCredentials};
use crate::keyring::Keyring;
use crate::objects::{EventKind, NoObjects, PodObjects};
use crate::probes::ProbeManager;
use crate::resources;
use crate::runtime::{
    CONTAINER_NAME_LABEL, ContainerInfo, ContainerSpec, ContainerState, POD_NAME_LABEL,
    POD_NAMESPACE_LABEL, POD_UID_LABEL, Result, Runtime, SandboxInfo, SandboxSpec,
};
use crate::security;
use crate::status::{self, ObservedContainer, Waiting};
use crate::volumes::{self, Prepared, VolumeManager};

/// First restart delay and its cap (the kubelet's 10 s doubling to 5 min).
const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the syncer needs to know about its node.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub node_name: String,
    pub node_ip: String,
    /// Root of pod log directories (`/var/log/pods`).
    pub log_root: PathBuf,
    /// Prefix of container IDs (`containerd`).
    pub runtime_name: String,
    /// The agent's own state (pod volumes under `pods/<uid>`).
    pub root_dir: PathBuf,
    pub allocatable: NodeAllocatable,
}

/// Runs pods through a [`Runtime`].
pub struct PodSyncer {
    runtime: Arc<dyn Runtime>,
    objects: Arc<dyn PodObjects>,
    volumes: VolumeManager,
    probes: ProbeManager,
    images: ImageManager,
    node: NodeContext,
    /// Why a container could not be started, by `<uid>/<container>`.
    waiting: Mutex<HashMap<String, Waiting>>,
    /// The last warning recorded as an Event per `<uid>/<what>`, so a condition that persists
    /// across syncs is reported once rather than every second.
    warned: Mutex<HashMap<String, String>>,
}

/// The back-off before restart number `restart` (1-based), as the kubelet's flowcontrol
/// back-off plays out: the first restart is immediate, then 10 s doubling up to 5 min.
pub fn restart_backoff(restart: u32) -> Duration {
    if restart <= 1 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(restart - 2).unwrap_or(u32::MAX);
    BACKOFF_INITIAL
        .checked_mul(factor)
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

/// A container that ran this long before exiting starts its back-off afresh (upstream forgets
/// a back-off entry after twice the maximum delay).
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

/// The back-off before restarting the exited container `c`.
fn backoff_after(c: &ContainerInfo) -> Duration {
    let ran = Duration::from_nanos(c.finished_at.saturating_sub(c.started_at).max(0) as u64);
    if ran >= BACKOFF_RESET_AFTER {
        Duration::ZERO
    } else {
        restart_backoff(c.attempt + 1)
    }
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The log directory of a pod (`<root>/<ns>_<name>_<uid>`), where the runtime writes
/// `<container>/<attempt>.log`.
pub fn pod_log_dir(root: &std::path::Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    root.join(format!("{namespace}_{name}_{uid}"))
}

impl PodSyncer {
    /// A syncer without an API server behind it (unit tests): API objects are all missing.
    pub fn new(runtime: Arc<dyn Runtime>, node: NodeContext) -> Self {
        Self::with_objects(runtime, Arc::new(NoObjects), node)
    }

    pub fn with_objects(
        runtime: Arc<dyn Runtime>,
        objects: Arc<dyn PodObjects>,
        node: NodeContext,
    ) -> Self {
        Self::with_credentials(runtime, objects, Arc::new(Keyring::default()), node)
    }

    /// As [`Self::with_objects`], with the node's own registry credentials.
    pub fn with_credentials(
        runtime: Arc<dyn Runtime>,
        objects: Arc<dyn PodObjects>,
        node_credentials: Arc<dyn NodeCredentials>,
        node: NodeContext,
    ) -> Self {
        Self {
            images: ImageManager::new(runtime.clone(), objects.clone(), node_credentials),
            volumes: VolumeManager::new(node.root_dir.clone(), objects.clone(), node.allocatable),
            probes: ProbeManager::new(runtime.clone(), objects.clone()),
            runtime,
            objects,
            node,
            waiting: Mutex::new(HashMap::new()),
            warned: Mutex::new(HashMap::new()),
        }
    }

    /// Records a warning Event unless the same one was the last recorded for `key`.
    async fn warn_once(
        &self,
        pod: &Pod,
        key: String,
        field_path: Option<String>,
        reason: &str,
        message: String,
    ) {
        let fresh = self
            .warned
            .lock()
            .insert(key, format!("{reason}: {message}"))
            != Some(format!("{reason}: {message}"));
        if fresh {
            self.objects
                .record(pod, field_path, EventKind::Warning, reason, message)
                .await;
        }
    }

    async fn normal_event(&self, pod: &Pod, container: &str, reason: &str, message: String) {
        self.objects
            .record(
                pod,
                Some(container_field_path(pod, container)),
                EventKind::Normal,
                reason,
                message,
            )
            .await;
    }

    fn sandbox_spec(&self, pod: &Pod, attempt: u32) -> SandboxSpec {
        let (name, namespace, uid) = (
            pod.name_any(),
            pod.namespace().unwrap_or_default(),
            pod.uid().unwrap_or_default(),
        );
        let spec = pod.spec.as_ref();
        let labels = BTreeMap::from([
            (POD_NAME_LABEL.to_string(), name.clone()),
            (POD_NAMESPACE_LABEL.to_string(), namespace.clone()),
            (POD_UID_LABEL.to_string(), uid.clone()),
        ]);
        SandboxSpec {
            hostname: spec
                .and_then(|s| s.hostname.clone())
                .unwrap_or_else(|| name.clone()),
            log_directory: pod_log_dir(&self.node.log_root, &namespace, &name, &uid)
                .to_string_lossy()
                .into_owned(),
            host_network: spec.and_then(|s| s.host_network).unwrap_or(false),
            privileged: security::any_privileged(pod),
            name,
            namespace,
            uid,
            attempt,
            labels,
        }
    }

    async fn sandboxes_of(&self, uid: &str) -> Result<Vec<SandboxInfo>> {
        let mut all: Vec<SandboxInfo> = self
            .runtime
            .list_sandboxes()
            .await?
            .into_iter()
            .filter(|s| s.pod_uid == uid)
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(all)
    }

    fn set_waiting(&self, key: &str, reason: &str, message: String) {
        tracing::info!(container = key, reason, %message, "container cannot start");
        self.waiting.lock().insert(
            key.to_string(),
            Waiting {
                reason: reason.into(),
                message,
            },
        );
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &self,
        pod: &Pod,
        sandbox_id: &str,
        sandbox: &SandboxSpec,
        container: &Container,
        attempt: u32,
        pod_ip: &str,
        volumes: &Prepared,
    ) {
        let key = format!("{}/{}", sandbox.uid, container.name);
        let field_path = container_field_path(pod, &container.name);
        let image = match self.images.ensure(pod, container, &field_path).await {
            Ok(image) => image,
            Err(w) => return self.set_waiting(&key, &w.reason, w.message),
        };
        let config = match env::container_env(
            self.objects.as_ref(),
            pod,
            container,
            pod_ip,
            &self.node.node_ip,
            self.node.allocatable,
        )
        .await
        {
            Ok(env) => volumes::container_mounts(container, volumes, &env).map(|m| (env, m)),
            Err(message) => Err(message),
        };
        let settings = security::effective(pod, container);
        let config = match config {
            Ok(config) => match self.runtime.image_user(&image).await {
                Ok(user) => security::verify_run_as_non_root(pod, container, &settings, &user)
                    .map(|_| config),
                Err(e) => Err(e.to_string()),
            },
            Err(message) => Err(message),
        };
        let (env, mounts) = match config {
            Ok(config) => config,
            Err(message) => {
                self.warn_once(
                    pod,
                    key.clone(),
                    Some(container_field_path(pod, &container.name)),
                    "Failed",
                    format!("Error: {message}"),
                )
                .await;
                return self.set_waiting(&key, "CreateContainerConfigError", message);
            }
        };
        let expand_all = |v: &Option<Vec<String>>| {
            v.as_deref()
                .unwrap_or_default()
                .iter()
                .map(|a| expand(a, &env))
                .collect::<Vec<_>>()
        };
        let spec = ContainerSpec {
            name: container.name.clone(),
            attempt,
            image,
            command: expand_all(&container.command),
            args: expand_all(&container.args),
            working_dir: container.working_dir.clone().unwrap_or_default(),
            log_path: format!("{}/{attempt}.log", container.name),
            labels: BTreeMap::from([
                (CONTAINER_NAME_LABEL.to_string(), container.name.clone()),
                (POD_NAME_LABEL.to_string(), sandbox.name.clone()),
                (POD_NAMESPACE_LABEL.to_string(), sandbox.namespace.clone()),
                (POD_UID_LABEL.to_string(), sandbox.uid.clone()),
            ]),
            env,
            mounts,
            resources: resources::linux_resources(
                pod,
                container,
                self.node.allocatable.memory_bytes,
            ),
            security: settings,
            stdin: container.stdin.unwrap_or(false),
            stdin_once: container.stdin_once.unwrap_or(false),
            tty: container.tty.unwrap_or(false),
        };
        let id = match self
            .runtime
            .create_container(sandbox_id, sandbox, &spec)
            .await
        {
            Ok(id) => id,
            Err(e) => return self.set_waiting(&key, "CreateContainerError", e.to_string()),
        };
        self.normal_event(
            pod,
            &container.name,
            "Created",
            format!("Created container: {}", container.name),
        )
        .await;
        if let Err(e) = self.runtime.start_container(&id).await {
            return self.set_waiting(&key, "RunContainerError", e.to_string());
        }
        self.normal_event(
            pod,
            &container.name,
            "Started",
            format!("Started container {}", container.name),
        )
        .await;
        if let Some(hook) = container
            .lifecycle
            .as_ref()
            .and_then(|l| l.post_start.as_ref())
        {
            let grace = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30);
            let timeout = Duration::from_secs(grace.max(1) as u64);
            if let Err(message) =
                hooks::run(&self.runtime, hook, pod, container, &id, pod_ip, timeout).await
            {
                // As the kubelet: the container is killed and restarted under its policy.
                self.objects
                    .record(
                        pod,
                        Some(container_field_path(pod, &container.name)),
                        EventKind::Warning,
                        "FailedPostStartHook",
                        message,
                    )
                    .await;
                if let Err(e) = self.runtime.stop_container(&id, grace).await {
                    tracing::warn!(container = %id, error = %e, "stopping a container whose postStart hook failed");
                }
            }
        }
        self.waiting.lock().remove(&key);
        self.warned.lock().remove(&key);
    }

    /// Moves one container towards running: creates/starts it, or restarts an exited one under
    /// `policy` once its back-off has passed.
    #[allow(clippy::too_many_arguments)]
    async fn advance(
        &self,
        pod: &Pod,
        sandbox_id: &str,
        sandbox_spec: &SandboxSpec,
        container: &Container,
        policy: &str,
        existing: &[ContainerInfo],
        pod_ip: &str,
        volumes: &Prepared,
    ) {
        let uid = &sandbox_spec.uid;
        let (latest, previous) = latest_two(existing, &container.name);
        let Some(c) = latest else {
            return self
                .start_container(pod, sandbox_id, sandbox_spec, container, 0, pod_ip, volumes)
                .await;
        };
        match c.state {
            ContainerState::Created => {
                if let Err(e) = self.runtime.start_container(&c.id).await {
                    self.set_waiting(
                        &format!("{uid}/{}", container.name),
                        "RunContainerError",
                        e.to_string(),
                    );
                }
            }
            ContainerState::Exited => {
                if !status::should_restart(policy, c.exit_code) {
                    return;
                }
                let backoff = backoff_after(c);
                let due = c.finished_at.saturating_add(backoff.as_nanos() as i64);
                if now_nanos() < due {
                    let message = format!(
                        "back-off {}s restarting failed container={} pod={}_{}({uid})",
                        backoff.as_secs(),
                        container.name,
                        pod.name_any(),
                        pod.namespace().unwrap_or_default()
                    );
                    let key = format!("{uid}/{}", container.name);
                    let fresh = self.waiting.lock().get(&key).map(|w| w.message.as_str())
                        != Some(message.as_str());
                    if fresh {
                        self.objects
                            .record(
                                pod,
                                Some(container_field_path(pod, &container.name)),
                                EventKind::Warning,
                                "BackOff",
                                format!(
                                    "Back-off restarting failed container {} in pod {}",
                                    container.name,
                                    pod_ref(pod)
                                ),
                            )
                            .await;
                    }
                    self.waiting.lock().insert(
                        key,
                        Waiting {
                            reason: "CrashLoopBackOff".into(),
                            message,
                        },
                    );
                    return;
                }
                // The kubelet keeps one dead container per name (for `logs --previous`).
                if let Some(old) = previous
                    && let Err(e) = self.runtime.remove_container(&old.id).await
                {
                    tracing::debug!(container = %old.id, error = %e, "removing an old container");
                }
                self.start_container(
                    pod,
                    sandbox_id,
                    sandbox_spec,
                    container,
                    c.attempt + 1,
                    pod_ip,
                    volumes,
                )
                .await;
            }
            ContainerState::Running | ContainerState::Unknown => {}
        }
    }

    /// Brings the pod one step closer to its spec and returns the status to report, or `None`
    /// when the pod has already ended (its status is final).
    pub async fn sync(&self, pod: &Pod) -> Result<Option<Value>> {
        let uid = pod.uid().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        let sandboxes = self.sandboxes_of(&uid).await?;
        if phase == "Succeeded" || phase == "Failed" {
            for s in sandboxes.iter().filter(|s| s.ready) {
                self.runtime.stop_sandbox(&s.id).await?;
            }
            return Ok(None);
        }
        let policy = status::restart_policy(pod).to_string();
        let specs = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let inits = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        if let Some(newest) = sandboxes.first()
            && !newest.ready
        {
            // A stopped sandbox whose containers all ended for good is a finished pod whose
            // final status may not have reached the API yet: report it again, start nothing.
            let containers = self.runtime.list_containers(&newest.id).await?;
            if finished(&containers, &specs, &policy) || init_failed(pod, &containers) {
                return Ok(Some(self.report(pod, &uid, &containers, false, None)));
            }
        }
        let volumes = match self.volumes.prepare(pod, &self.node.node_ip).await {
            Ok(v) => v,
            Err(e) => {
                // As the kubelet: no sandbox until the volumes are there; the pod waits in
                // ContainerCreating with a FailedMount event.
                tracing::info!(pod = %pod.name_any(), error = %e, "volume set-up failed");
                self.warn_once(
                    pod,
                    format!("{uid}/volumes"),
                    None,
                    "FailedMount",
                    e.to_string(),
                )
                .await;
                let ready = sandboxes.first().is_some_and(|s| s.ready);
                let containers = match sandboxes.iter().find(|s| s.ready) {
                    Some(s) => self.runtime.list_containers(&s.id).await?,
                    None => Vec::new(),
                };
                return Ok(Some(self.report(pod, &uid, &containers, ready, None)));
            }
        };
        self.warned.lock().remove(&format!("{uid}/volumes"));
        let sandbox_spec;
        let sandbox_id = match sandboxes.iter().find(|s| s.ready) {
            Some(s) => {
                sandbox_spec = self.sandbox_spec(pod, s.attempt);
                s.id.clone()
            }
            None => {
                sandbox_spec = self.sandbox_spec(pod, sandboxes.len() as u32);
                if let Err(e) = std::fs::create_dir_all(&sandbox_spec.log_directory) {
                    tracing::warn!(dir = %sandbox_spec.log_directory, error = %e, "creating the pod log directory");
                }
                self.runtime.run_sandbox(&sandbox_spec).await?
            }
        };
        let pod_ip = if sandbox_spec.host_network {
            Some(self.node.node_ip.clone())
        } else {
            self.runtime.sandbox_ip(&sandbox_id).await?
        };
        let ip = pod_ip.as_deref().unwrap_or("");
        let existing = self.runtime.list_containers(&sandbox_id).await?;
        // Init containers run one at a time, in order, each to completion (sidecars — init
        // containers with restartPolicy Always — only to running) before any app container;
        // once an app container exists the pod is initialized for good.
        let app_started = specs
            .iter()
            .any(|c| latest_two(&existing, &c.name).0.is_some());
        let mut initialized = true;
        for init in &inits {
            let init_policy = init_restart_policy(init, &policy);
            let sidecar = is_sidecar(init);
            if app_started && !sidecar {
                continue;
            }
            let latest = latest_two(&existing, &init.name).0;
            let done = match latest {
                Some(c) if sidecar => c.state == ContainerState::Running,
                Some(c) => c.state == ContainerState::Exited && c.exit_code == 0,
                None => false,
            };
            if done {
                continue;
            }
            self.advance(
                pod,
                &sandbox_id,
                &sandbox_spec,
                init,
                init_policy,
                &existing,
                ip,
                &volumes,
            )
            .await;
            if !app_started {
                initialized = false;
                break;
            }
        }
        if initialized {
            for container in &specs {
                self.advance(
                    pod,
                    &sandbox_id,
                    &sandbox_spec,
                    container,
                    &policy,
                    &existing,
                    ip,
                    &volumes,
                )
                .await;
            }
        }
        let current = self.runtime.list_containers(&sandbox_id).await?;
        let mut running = std::collections::HashSet::new();
        for container in inits.iter().filter(|c| is_sidecar(c)).chain(&specs) {
            if let (Some(c), _) = latest_two(&current, &container.name)
                && c.state == ContainerState::Running
            {
                self.probes.ensure(pod, container, &c.id, c.started_at, ip);
                running.insert(c.id.clone());
            }
        }
        self.probes.retain(&uid, &running);
        let report = self.report(pod, &uid, &current, true, pod_ip);
        let terminal = matches!(
            report.get("phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if terminal {
            // The pod is done: its network goes, its containers (and logs) stay until deletion.
            for c in current
                .iter()
                .filter(|c| c.state == ContainerState::Running)
            {
                // Sidecars outlive the app containers; they are stopped with the pod.
                self.runtime.stop_container(&c.id, 2).await?;
            }
            self.runtime.stop_sandbox(&sandbox_id).await?;
        }
        Ok(Some(report))
    }

    fn report(
        &self,
        pod: &Pod,
        uid: &str,
        current: &[ContainerInfo],
        sandbox_ready: bool,
        pod_ip: Option<String>,
    ) -> Value {
        let policy = status::restart_policy(pod);
        let spec = pod.spec.as_ref();
        let inits = spec
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default()
            .iter()
            .map(|c| (c, init_restart_policy(c, policy)));
        let apps = spec
            .map(|s| s.containers.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|c| (c, policy));
        let mut observed = HashMap::new();
        for (container, policy) in inits.chain(apps) {
            let (latest, previous) = latest_two(current, &container.name);
            let key = format!("{uid}/{}", container.name);
            let will_restart = latest.is_some_and(|c| {
                c.state == ContainerState::Exited && status::should_restart(policy, c.exit_code)
            });
            let waiting = match latest.map(|c| c.state) {
                Some(ContainerState::Running) => {
                    self.waiting.lock().remove(&key);
                    None
                }
                _ => self.waiting.lock().get(&key).cloned(),
            };
            observed.insert(
                container.name.clone(),
                ObservedContainer {
                    probes: latest.and_then(|c| self.probes.state(&c.id)),
                    latest: latest.cloned(),
                    previous: previous.cloned(),
                    waiting,
                    will_restart,
                },
            );
        }
        status::pod_status(&status::Observed {
            pod,
            sandbox_ready,
            pod_ip,
            host_ip: &self.node.node_ip,
            runtime_name: &self.node.runtime_name,
            containers: observed,
        })
    }

    /// Runs the container's preStop hook within the grace period, then stops it with what is
    /// left of the grace period (at least 2 s, as the kubelet gives).
    async fn stop_with_pre_stop(
        &self,
        pod: &Pod,
        c: &ContainerInfo,
        grace_seconds: i64,
        pod_ip: Option<&str>,
    ) -> Result<()> {
        let spec = pod.spec.as_ref();
        let container = spec
            .map(|s| s.containers.iter())
            .into_iter()
            .flatten()
            .chain(
                spec.and_then(|s| s.init_containers.as_deref())
                    .unwrap_or_default(),
            )
            .find(|s| s.name == c.name);
        let mut remaining = grace_seconds;
        if let Some(container) = container {
            self.normal_event(
                pod,
                &container.name,
                "Killing",
                format!("Stopping container {}", container.name),
            )
            .await;
            if let Some(hook) = container
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_stop.as_ref())
            {
                let started = std::time::Instant::now();
                let budget = Duration::from_secs(grace_seconds.max(0) as u64);
                let outcome = tokio::time::timeout(
                    budget,
                    hooks::run(
                        &self.runtime,
                        hook,
                        pod,
                        container,
                        &c.id,
                        pod_ip.unwrap_or(""),
                        budget,
                    ),
                )
                .await;
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(message)) => {
                        self.objects
                            .record(
                                pod,
                                Some(container_field_path(pod, &container.name)),
                                EventKind::Warning,
                                "FailedPreStopHook",
                                message,
                            )
                            .await
                    }
                    Err(_) => {
                        tracing::info!(container = %container.name, "preStop hook did not finish within the grace period")
                    }
                }
                remaining = (grace_seconds - started.elapsed().as_secs() as i64).max(2);
            }
        }
        self.runtime.stop_container(&c.id, remaining).await
    }

    /// Stops the pod's containers (SIGTERM, SIGKILL after `grace_seconds`), then its sandboxes,
    /// and removes them and the pod's logs.
    pub async fn terminate(&self, pod: &Pod, grace_seconds: i64) -> Result<()> {
        let uid = pod.uid().unwrap_or_default();
        let sandboxes = self.sandboxes_of(&uid).await?;
        for sandbox in &sandboxes {
            let containers = self.runtime.list_containers(&sandbox.id).await?;
            let pod_ip = if sandbox.ready {
                self.runtime.sandbox_ip(&sandbox.id).await.ok().flatten()
            } else {
                None
            };
            let stops = containers
                .iter()
                .filter(|c| c.state == ContainerState::Running)
                .map(|c| self.stop_with_pre_stop(pod, c, grace_seconds.max(0), pod_ip.as_deref()));
            for result in futures::future::join_all(stops).await {
                result?;
            }
            self.runtime.stop_sandbox(&sandbox.id).await?;
            self.runtime.remove_sandbox(&sandbox.id).await?;
        }
        let dir = pod_log_dir(
            &self.node.log_root,
            &pod.namespace().unwrap_or_default(),
            &pod.name_any(),
            &uid,
        );
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::debug!(dir = %dir.display(), error = %e, "removing pod logs");
        }
        self.probes.retain(&uid, &Default::default());
        self.images.forget(&uid);
        self.volumes.cleanup(&uid);
        self.waiting
            .lock()
            .retain(|k, _| !k.starts_with(&format!("{uid}/")));
        self.warned
            .lock()
            .retain(|k, _| !k.starts_with(&format!("{uid}/")));
        Ok(())
    }

    /// Stops and removes sandboxes of pods that are no longer bound to this node.
    pub async fn remove_orphans(
        &self,
        known_uids: &std::collections::HashSet<String>,
    ) -> Result<()> {
        for sandbox in self.runtime.list_sandboxes().await? {
            if known_uids.contains(&sandbox.pod_uid) {
                continue;
            }
            tracing::info!(sandbox = %sandbox.id, pod_uid = %sandbox.pod_uid, "removing the sandbox of a pod that is gone");
            self.runtime.stop_sandbox(&sandbox.id).await?;
            self.runtime.remove_sandbox(&sandbox.id).await?;
        }
        for uid in self.volumes.pods_on_disk() {
            if !known_uids.contains(&uid) {
                self.volumes.cleanup(&uid);
            }
        }
        Ok(())
    }
}

/// Whether an init container is a sidecar (restartPolicy Always): started, then kept running.
pub fn is_sidecar(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// The restart policy an init container runs under: sidecars always restart; others are
/// retried on failure unless the pod never restarts (upstream).
pub fn init_restart_policy<'a>(container: &Container, pod_policy: &'a str) -> &'a str {
    if is_sidecar(container) {
        "Always"
    } else if pod_policy == "Never" {
        "Never"
    } else {
        "OnFailure"
    }
}

/// Whether an init container failed for good (restartPolicy Never): the pod has failed.
fn init_failed(pod: &Pod, containers: &[ContainerInfo]) -> bool {
    status::restart_policy(pod) == "Never"
        && pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|c| !is_sidecar(c))
            .any(|c| {
                latest_two(containers, &c.name)
                    .0
                    .is_some_and(|c| c.state == ContainerState::Exited && c.exit_code != 0)
            })
}

/// `spec.containers{name}` or `spec.initContainers{name}`: the event field path of a container.
fn container_field_path(pod: &Pod, name: &str) -> String {
    let init = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.name == name);
    if init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

/// `<namespace>/<name>(<uid>)`, how the kubelet names a pod in messages.
fn pod_ref(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.name_any(),
        pod.namespace().unwrap_or_default(),
        pod.uid().unwrap_or_default()
    )
}

/// Whether every container ended and none is restarted.
fn finished(containers: &[ContainerInfo], specs: &[Container], policy: &str) -> bool {
    specs.iter().all(|spec| {
        latest_two(containers, &spec.name).0.is_some_and(|c| {
            c.state == ContainerState::Exited && !status::should_restart(policy, c.exit_code)
        })
    })
}

/// The newest and the one before it of the runtime containers for `name`.
fn latest_two<'a>(
    all: &'a [ContainerInfo],
    name: &str,
) -> (Option<&'a ContainerInfo>, Option<&'a ContainerInfo>) {
    let mut mine: Vec<&ContainerInfo> = all.iter().filter(|c| c.name == name).collect();
    mine.sort_by_key(|c| std::cmp::Reverse(c.attempt));
    (mine.first().copied(), mine.get(1).copied())
}
