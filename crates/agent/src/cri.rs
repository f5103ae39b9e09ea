//! [`Runtime`] over CRI v1 (gRPC on a unix socket), as containerd and CRI-O serve it. Bindings
//! come from the `k8s-cri` crate (generated from k8s.io/cri-api's v1 `api.proto`).

use std::collections::HashMap;
use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::runtime::{
    CONTAINER_NAME_LABEL, ContainerInfo, ContainerSecurity, ContainerSpec, ContainerState,
    ContainerUsage, CpuUsage, ExecResult, FilesystemUsage, ImageInfo, ImageUser, InterfaceUsage,
    MemoryUsage, NetworkUsage, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL, PullAuth,
    Result, Runtime, RuntimeError, RuntimeVersion, SandboxInfo, SandboxSpec, SandboxUsage,
    StreamFlags,
};

/// CRI's `NamespaceMode::NODE`: share the host's namespace.
const NAMESPACE_MODE_NODE: i32 = 2;

/// A CRI runtime reached over its unix socket.
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

fn rpc_error(call: &str, status: tonic::Status) -> RuntimeError {
    RuntimeError(format!("{call}: {}", status.message()))
}

/// A gRPC error as Go's `status.Error` prints it (`rpc error: code = Unknown desc = …`), which
/// is how the kubelet shows runtime errors such as a failed pull in container statuses.
fn go_grpc_error(status: &tonic::Status) -> String {
    let code = match status.code() {
        tonic::Code::Ok => "OK".to_string(),
        tonic::Code::Cancelled => "Canceled".to_string(),
        other => format!("{other:?}"),
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

impl CriRuntime {
    /// CRI `ImageStatus` of `image` (what pulls and the run-as-user check both read).
    async fn image_status_response(&self, image: &str) -> Result<cri::ImageStatusResponse> {
        let request = cri::ImageStatusRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(request)
            .await
            .map_err(|e| rpc_error("ImageStatus", e))?
            .into_inner())
    }
    /// Connects to the socket (the channel reconnects by itself when the runtime restarts).
    pub async fn connect(socket: PathBuf) -> Result<Self> {
        let endpoint =
            Endpoint::try_from("http://[::]:50051").map_err(|e| RuntimeError(e.to_string()))?;
        let channel =
            endpoint
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let socket = socket.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?))
                    }
                }))
                .await
                .map_err(|e| RuntimeError(format!("connecting to the container runtime: {e}")))?;
        Ok(Self {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let response = self
            .runtime
            .clone()
            .container_status(cri::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            })
            .await
            .map_err(|e| rpc_error("ContainerStatus", e))?;
        response
            .into_inner()
            .status
            .ok_or_else(|| RuntimeError(format!("ContainerStatus {id}: no status")))
    }
}

fn container_state(state: i32) -> ContainerState {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(cri::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(cri::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn to_map(labels: &std::collections::BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn sandbox_config(spec: &SandboxSpec) -> cri::PodSandboxConfig {
    let network = if spec.host_network {
        NAMESPACE_MODE_NODE
    } else {
        0
    };
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: spec.name.clone(),
            uid: spec.uid.clone(),
            namespace: spec.namespace.clone(),
            attempt: spec.attempt,
        }),
        hostname: spec.hostname.clone(),
        log_directory: spec.log_directory.clone(),
        labels: to_map(&spec.labels),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network,
                    ..Default::default()
                }),
                privileged: spec.privileged,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_security(s: &ContainerSecurity) -> cri::LinuxContainerSecurityContext {
    cri::LinuxContainerSecurityContext {
        capabilities: Some(cri::Capability {
            add_capabilities: s.add_capabilities.clone(),
            drop_capabilities: s.drop_capabilities.clone(),
            ..Default::default()
        }),
        privileged: s.privileged,
        run_as_user: s.run_as_user.map(|value| cri::Int64Value { value }),
        run_as_group: s.run_as_group.map(|value| cri::Int64Value { value }),
        readonly_rootfs: s.read_only_root_filesystem,
        supplemental_groups: s.supplemental_groups.clone(),
        no_new_privs: s.no_new_privileges,
        ..Default::default()
    }
}

fn cpu_usage(c: cri::CpuUsage) -> CpuUsage {
    CpuUsage {
        timestamp: c.timestamp,
        usage_core_nano_seconds: c.usage_core_nano_seconds.map(|v| v.value),
    }
}

fn memory_usage(m: cri::MemoryUsage) -> MemoryUsage {
    MemoryUsage {
        timestamp: m.timestamp,
        working_set_bytes: m.working_set_bytes.map(|v| v.value),
        available_bytes: m.available_bytes.map(|v| v.value),
        usage_bytes: m.usage_bytes.map(|v| v.value),
        rss_bytes: m.rss_bytes.map(|v| v.value),
        page_faults: m.page_faults.map(|v| v.value),
        major_page_faults: m.major_page_faults.map(|v| v.value),
    }
}

fn filesystem_usage(f: cri::FilesystemUsage) -> FilesystemUsage {
    FilesystemUsage {
        timestamp: f.timestamp,
        mountpoint: f.fs_id.map(|id| id.mountpoint).unwrap_or_default(),
        used_bytes: f.used_bytes.map(|v| v.value),
        inodes_used: f.inodes_used.map(|v| v.value),
    }
}

fn interface_usage(i: cri::NetworkInterfaceUsage) -> InterfaceUsage {
    InterfaceUsage {
        name: i.name,
        rx_bytes: i.rx_bytes.map(|v| v.value),
        rx_errors: i.rx_errors.map(|v| v.value),
        tx_bytes: i.tx_bytes.map(|v| v.value),
        tx_errors: i.tx_errors.map(|v| v.value),
    }
}

#[async_trait::async_trait]
impl Runtime for CriRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        let v = self
            .runtime
            .clone()
            .version(cri::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(|e| rpc_error("Version", e))?
            .into_inner();
        Ok(RuntimeVersion {
            name: v.runtime_name,
            version: v.runtime_version,
        })
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>> {
        let response = self.image_status_response(image).await?;
        Ok(response.image.map(|i| ImageInfo {
            id: i.id,
            size_bytes: i.size,
        }))
    }

    async fn image_user(&self, image: &str) -> Result<ImageUser> {
        let response = self.image_status_response(image).await?;
        Ok(response
            .image
            .map(|i| ImageUser {
                uid: i.uid.map(|u| u.value),
                username: i.username,
            })
            .unwrap_or_default())
    }

    async fn pull_image(&self, image: &str, auth: Option<PullAuth>) -> Result<String> {
        let request = cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth: auth.map(|a| cri::AuthConfig {
                username: a.username,
                password: a.password,
                server_address: a.server_address,
                ..Default::default()
            }),
            sandbox_config: None,
        };
        let response = self
            .images
            .clone()
            .pull_image(request)
            .await
            .map_err(|e| RuntimeError(go_grpc_error(&e)))?;
        Ok(response.into_inner().image_ref)
    }

    async fn run_sandbox(&self, spec: &SandboxSpec) -> Result<String> {
        let request = cri::RunPodSandboxRequest {
            config: Some(sandbox_config(spec)),
            runtime_handler: String::new(),
        };
        let response = self
            .runtime
            .clone()
            .run_pod_sandbox(request)
            .await
            .map_err(|e| rpc_error("RunPodSandbox", e))?;
        Ok(response.into_inner().pod_sandbox_id)
    }

    async fn sandbox_ip(&self, id: &str) -> Result<Option<String>> {
        let request = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        let response = self
            .runtime
            .clone()
            .pod_sandbox_status(request)
            .await
            .map_err(|e| rpc_error("PodSandboxStatus", e))?;
        let ip = response
            .into_inner()
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .filter(|ip| !ip.is_empty());
        Ok(ip)
    }

    async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let request = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(request)
            .await
            .map_err(|e| rpc_error("StopPodSandbox", e))?;
        Ok(())
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let request = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(request)
            .await
            .map_err(|e| rpc_error("RemovePodSandbox", e))?;
        Ok(())
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>> {
        let response = self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(|e| rpc_error("ListPodSandbox", e))?;
        Ok(response
            .into_inner()
            .items
            .into_iter()
            .filter_map(|s| {
                let pod_uid = s
                    .labels
                    .get(POD_UID_LABEL)
                    .cloned()
                    .or_else(|| s.metadata.as_ref().map(|m| m.uid.clone()))?;
                let metadata = s.metadata.unwrap_or_default();
                Some(SandboxInfo {
                    id: s.id,
                    pod_uid,
                    pod_name: metadata.name,
                    pod_namespace: metadata.namespace,
                    attempt: metadata.attempt,
                    ready: s.state == cri::PodSandboxState::SandboxReady as i32,
                    created_at: s.created_at,
                })
            })
            .collect())
    }

    async fn list_container_stats(&self) -> Result<Vec<ContainerUsage>> {
        // Running containers only, as the kubelet's CRI stats provider keeps them: stats of
        // exited containers would count usage that is no longer there.
        let running = cri::ContainerFilter {
            state: Some(cri::ContainerStateValue {
                state: cri::ContainerState::ContainerRunning as i32,
            }),
            ..Default::default()
        };
        let containers = self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(running),
            })
            .await
            .map_err(|e| rpc_error("ListContainers", e))?
            .into_inner()
            .containers;
        let mut stats: HashMap<String, cri::ContainerStats> = self
            .runtime
            .clone()
            .list_container_stats(cri::ListContainerStatsRequest { filter: None })
            .await
            .map_err(|e| rpc_error("ListContainerStats", e))?
            .into_inner()
            .stats
            .into_iter()
            .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
            .collect();
        Ok(containers
            .into_iter()
            .map(|c| {
                let label = |key: &str| c.labels.get(key).cloned().unwrap_or_default();
                let name = c
                    .labels
                    .get(CONTAINER_NAME_LABEL)
                    .cloned()
                    .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
                    .unwrap_or_default();
                let s = stats.remove(&c.id).unwrap_or_default();
                ContainerUsage {
                    name,
                    pod_name: label(POD_NAME_LABEL),
                    pod_namespace: label(POD_NAMESPACE_LABEL),
                    pod_uid: label(POD_UID_LABEL),
                    created_at: c.created_at,
                    cpu: s.cpu.map(cpu_usage),
                    memory: s.memory.map(memory_usage),
                    writable_layer: s.writable_layer.map(filesystem_usage),
                    id: c.id,
                }
            })
            .collect())
    }

    async fn list_pod_sandbox_stats(&self) -> Result<Vec<SandboxUsage>> {
        let response = self
            .runtime
            .clone()
            .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
            .await;
        let stats = match response {
            Ok(r) => r.into_inner().stats,
            // Runtimes without pod-level stats (containerd before 1.6, some CRI-O versions).
            Err(status) if status.code() == tonic::Code::Unimplemented => return Ok(Vec::new()),
            Err(status) => return Err(rpc_error("ListPodSandboxStats", status)),
        };
        Ok(stats
            .into_iter()
            .filter_map(|s| {
                let attributes = s.attributes?;
                let pod_uid = attributes
                    .labels
                    .get(POD_UID_LABEL)
                    .cloned()
                    .or_else(|| attributes.metadata.map(|m| m.uid))?;
                let linux = s.linux.unwrap_or_default();
                Some(SandboxUsage {
                    sandbox_id: attributes.id,
                    pod_uid,
                    cpu: linux.cpu.map(cpu_usage),
                    memory: linux.memory.map(memory_usage),
                    network: linux.network.map(|n| NetworkUsage {
                        timestamp: n.timestamp,
                        default_interface: n.default_interface.map(interface_usage),
                        interfaces: n.interfaces.into_iter().map(interface_usage).collect(),
                    }),
                    process_count: linux.process.and_then(|p| p.process_count).map(|v| v.value),
                })
            })
            .collect())
    }

    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>> {
        let response = self
            .images
            .clone()
            .image_fs_info(cri::ImageFsInfoRequest {})
            .await
            .map_err(|e| rpc_error("ImageFsInfo", e))?
            .into_inner();
        Ok(response
            .image_filesystems
            .into_iter()
            .map(filesystem_usage)
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        sandbox: &SandboxSpec,
        spec: &ContainerSpec,
    ) -> Result<String> {
        let config = cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: spec.name.clone(),
                attempt: spec.attempt,
            }),
            image: Some(cri::ImageSpec {
                image: spec.image.clone(),
                ..Default::default()
            }),
            command: spec.command.clone(),
            args: spec.args.clone(),
            working_dir: spec.working_dir.clone(),
            envs: spec
                .env
                .iter()
                .map(|(key, value)| cri::KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            labels: to_map(&spec.labels),
            log_path: spec.log_path.clone(),
            stdin: spec.stdin,
            stdin_once: spec.stdin_once,
            tty: spec.tty,
            mounts: spec
                .mounts
                .iter()
                .map(|m| cri::Mount {
                    container_path: m.container_path.clone(),
                    host_path: m.host_path.clone(),
                    readonly: m.read_only,
                    ..Default::default()
                })
                .collect(),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    cpu_period: spec.resources.cpu_period,
                    cpu_quota: spec.resources.cpu_quota,
                    cpu_shares: spec.resources.cpu_shares,
                    memory_limit_in_bytes: spec.resources.memory_limit_bytes,
                    // No swap beyond the memory limit, as the kubelet without swap support.
                    memory_swap_limit_in_bytes: spec.resources.memory_limit_bytes,
                    oom_score_adj: spec.resources.oom_score_adj,
                    ..Default::default()
                }),
                security_context: Some(container_security(&spec.security)),
            }),
            ..Default::default()
        };
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config(sandbox)),
        };
        let response = self
            .runtime
            .clone()
            .create_container(request)
            .await
            .map_err(|e| rpc_error("CreateContainer", e))?;
        Ok(response.into_inner().container_id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let request = cri::StartContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .start_container(request)
            .await
            .map_err(|e| rpc_error("StartContainer", e))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        let request = cri::StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_seconds,
        };
        self.runtime
            .clone()
            .stop_container(request)
            .await
            .map_err(|e| rpc_error("StopContainer", e))?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let request = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_container(request)
            .await
            .map_err(|e| rpc_error("RemoveContainer", e))?;
        Ok(())
    }

    async fn list_containers(&self, sandbox_id: &str) -> Result<Vec<ContainerInfo>> {
        let filter = cri::ContainerFilter {
            pod_sandbox_id: sandbox_id.into(),
            ..Default::default()
        };
        let response = self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .map_err(|e| rpc_error("ListContainers", e))?;
        let mut out = Vec::new();
        for c in response.into_inner().containers {
            let status = self.container_status(&c.id).await?;
            let metadata = status.metadata.clone().unwrap_or_default();
            let name = status
                .labels
                .get(CONTAINER_NAME_LABEL)
                .cloned()
                .unwrap_or(metadata.name);
            out.push(ContainerInfo {
                id: status.id,
                name,
                attempt: metadata.attempt,
                state: container_state(status.state),
                created_at: status.created_at,
                started_at: status.started_at,
                finished_at: status.finished_at,
                exit_code: status.exit_code,
                reason: status.reason,
                message: status.message,
                image: status.image.map(|i| i.image).unwrap_or_default(),
                image_ref: status.image_ref,
            });
        }
        Ok(out)
    }

    async fn exec_sync(
        &self,
        container_id: &str,
        command: &[String],
        timeout_seconds: i64,
    ) -> Result<ExecResult> {
        let request = cri::ExecSyncRequest {
            container_id: container_id.into(),
            cmd: command.to_vec(),
            timeout: timeout_seconds,
        };
        let response = self
            .runtime
            .clone()
            .exec_sync(request)
            .await
            .map_err(|e| rpc_error("ExecSync", e))?
            .into_inner();
        let mut output = String::from_utf8_lossy(&response.stdout).into_owned();
        output.push_str(&String::from_utf8_lossy(&response.stderr));
        Ok(ExecResult {
            exit_code: response.exit_code,
            output,
        })
    }

    async fn exec_url(
        &self,
        container_id: &str,
        command: &[String],
        streams: StreamFlags,
    ) -> Result<String> {
        let request = cri::ExecRequest {
            container_id: container_id.into(),
            cmd: command.to_vec(),
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let response = self
            .runtime
            .clone()
            .exec(request)
            .await
            .map_err(|e| rpc_error("Exec", e))?;
        Ok(response.into_inner().url)
    }

    async fn attach_url(&self, container_id: &str, streams: StreamFlags) -> Result<String> {
        let request = cri::AttachRequest {
            container_id: container_id.into(),
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let response = self
            .runtime
            .clone()
            .attach(request)
            .await
            .map_err(|e| rpc_error("Attach", e))?;
        Ok(response.into_inner().url)
    }

    async fn port_forward_url(&self, sandbox_id: &str, ports: &[i32]) -> Result<String> {
        let request = cri::PortForwardRequest {
            pod_sandbox_id: sandbox_id.into(),
            port: ports.to_vec(),
        };
        let response = self
            .runtime
            .clone()
            .port_forward(request)
            .await
            .map_err(|e| rpc_error("PortForward", e))?;
        Ok(response.into_inner().url)
    }
}
