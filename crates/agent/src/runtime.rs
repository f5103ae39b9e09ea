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
    /// The container's `stdin`, `stdinOnce` and `tty` (what `kubectl attach -i/-t` needs).
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
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
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PullAuth {
    pub username: String,
    pub password: String,
    /// The registry these credentials are for, as a URL (`https://host[:port]`; the runtime
    /// compares its host); empty sends them to every host the pull reaches (the image's
    /// registry and its mirrors), as the kubelet's do.
    pub server_address: String,
}

/// Never prints the password.
impl std::fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullAuth")
            .field("username", &self.username)
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// An image the runtime has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    pub id: String,
    pub size_bytes: u64,
}

/// The operations the agent needs from a container runtime.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    async fn version(&self) -> Result<RuntimeVersion>;
    /// The image when the runtime has it.
    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>>;
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
    /// Use of every running container (for `/stats/summary` and `/metrics/resource`).
    async fn list_container_stats(&self) -> Result<Vec<ContainerUsage>>;
    /// Pod-level use of every ready sandbox; empty when the runtime does not implement
    /// `ListPodSandboxStats` (pod totals are then the sum of their containers).
    async fn list_pod_sandbox_stats(&self) -> Result<Vec<SandboxUsage>>;
    /// The filesystems images are stored on.
    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>>;
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

/// Cumulative CPU use of a container or sandbox, as CRI `CpuUsage` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuUsage {
    /// When the runtime read it (nanoseconds since the epoch).
    pub timestamp: i64,
    pub usage_core_nano_seconds: Option<u64>,
}

/// Memory use, as CRI `MemoryUsage` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryUsage {
    pub timestamp: i64,
    pub working_set_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// Use of a filesystem (a container's writable layer, or the image filesystem).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilesystemUsage {
    pub timestamp: i64,
    /// Where the filesystem is mounted (empty when the runtime does not say).
    pub mountpoint: String,
    pub used_bytes: Option<u64>,
    pub inodes_used: Option<u64>,
}

/// Counters of one network interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InterfaceUsage {
    pub name: String,
    pub rx_bytes: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub tx_errors: Option<u64>,
}

/// Network use of a pod sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkUsage {
    pub timestamp: i64,
    pub default_interface: Option<InterfaceUsage>,
    /// The other interfaces.
    pub interfaces: Vec<InterfaceUsage>,
}

/// Resource use of one running container (CRI `ContainerStats`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerUsage {
    pub id: String,
    /// The container's name in its pod.
    pub name: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub cpu: Option<CpuUsage>,
    pub memory: Option<MemoryUsage>,
    pub writable_layer: Option<FilesystemUsage>,
}

/// Resource use of a pod sandbox as a whole (CRI `PodSandboxStats`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxUsage {
    pub sandbox_id: String,
    pub pod_uid: String,
    pub cpu: Option<CpuUsage>,
    pub memory: Option<MemoryUsage>,
    pub network: Option<NetworkUsage>,
    pub process_count: Option<u64>,
}
