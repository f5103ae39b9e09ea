//! The container runtime as the agent sees it: pod sandboxes, containers and images, in the
//! agent's own types so the pod logic can be tested against [`crate::fake::FakeRuntime`]. The
//! production implementation speaks CRI v1 ([`crate::cri::CriRuntime`]).

use std::collections::BTreeMap;

/// Labels the agent puts on sandboxes and containers (the kubelet's names, so tools that know
/// kubelet-created containers recognise ours).
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// A runtime call failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// Name and version of the runtime (`containerd`, `1.6.20~ds1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeVersion {
    pub name: String,
    pub version: String,
}

/// What a pod sandbox is created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub hostname: String,
    /// Directory the runtime writes container logs under (`<ns>_<name>_<uid>`).
    pub log_directory: String,
    pub host_network: bool,
    /// Some container is privileged (the runtime requires the sandbox to be too).
    pub privileged: bool,
    pub labels: BTreeMap<String, String>,
}

/// What a container is created from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    pub name: String,
    pub attempt: u32,
    /// The image reference as resolved by the pull (or the spec's image when present).
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    /// Log file relative to the sandbox's log directory (`<container>/<attempt>.log`).
    pub log_path: String,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<Mount>,
    pub resources: LinuxResources,
    pub security: ContainerSecurity,
}

/// The Linux security settings of a container (the effective pod + container securityContext).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSecurity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub supplemental_groups: Vec<i64>,
    pub read_only_root_filesystem: bool,
    pub privileged: bool,
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub no_new_privileges: bool,
}

/// The user an image runs as, from its config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageUser {
    pub uid: Option<i64>,
    pub username: String,
}

/// cgroup settings of a container (0 = unset).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinuxResources {
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub memory_limit_bytes: i64,
    pub oom_score_adj: i64,
}

/// A bind mount of a host path into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

/// A sandbox the runtime knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxInfo {
    pub id: String,
    pub pod_uid: String,
    /// The pod's name and namespace (the sandbox metadata), to find a pod's sandbox by name.
    pub pod_name: String,
    pub pod_namespace: String,
    pub attempt: u32,
    pub ready: bool,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
}

/// Container states as CRI reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container the runtime knows, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub attempt: u32,
    pub state: ContainerState,
    /// Nanoseconds since the epoch (0 when not yet).
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    /// The runtime's reason for an exit (`OOMKilled`, `Completed`, `Error`).
    pub reason: String,
    pub message: String,
    pub image: String,
    /// Digest reference of the image the container runs.
    pub image_ref: String,
}

/// Registry credentials for a pull.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullAuth {
    pub username: String,
    pub password: String,
}

/// The operations the agent needs from a container runtime.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    async fn version(&self) -> Result<RuntimeVersion>;
    /// The image's id when the runtime has it.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;
    /// The user the (present) image runs as.
    async fn image_user(&self, image: &str) -> Result<ImageUser>;
    /// Pulls the image; returns its reference.
    async fn pull_image(&self, image: &str, auth: Option<PullAuth>) -> Result<String>;
    async fn run_sandbox(&self, spec: &SandboxSpec) -> Result<String>;
    /// The sandbox's IP (none for host-network sandboxes).
    async fn sandbox_ip(&self, id: &str) -> Result<Option<String>>;
    async fn stop_sandbox(&self, id: &str) -> Result<()>;
    async fn remove_sandbox(&self, id: &str) -> Result<()>;
    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>>;
    async fn create_container(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxSpec,
        spec: &ContainerSpec,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Stops the container: SIGTERM, then SIGKILL after `timeout_seconds`.
    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()>;
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn list_containers(&self, sandbox_id: &str) -> Result<Vec<ContainerInfo>>;
    /// Runs `command` in the container and waits up to `timeout_seconds` for it.
    async fn exec_sync(
        &self,
        container_id: &str,
        command: &[String],
        timeout_seconds: i64,
    ) -> Result<ExecResult>;
    /// Prepares a streaming exec and returns the URL of the runtime's streaming server that
    /// serves it (CRI `Exec`); the caller proxies the client's upgraded connection there.
    async fn exec_url(
        &self,
        container_id: &str,
        command: &[String],
        streams: StreamFlags,
    ) -> Result<String>;
    /// Like [`Runtime::exec_url`] for attaching to the container's main process (CRI `Attach`).
    async fn attach_url(&self, container_id: &str, streams: StreamFlags) -> Result<String>;
    /// The streaming URL that forwards connections into the sandbox's network namespace (CRI
    /// `PortForward`); ports may be empty when the client names them per stream (SPDY).
    async fn port_forward_url(&self, sandbox_id: &str, ports: &[i32]) -> Result<String>;
}

/// Which standard streams a streaming exec or attach carries, and whether it has a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamFlags {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// What a command run in a container produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    pub exit_code: i32,
    /// stdout followed by stderr.
    pub output: String,
}
