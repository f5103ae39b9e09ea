//! An in-memory [`Runtime`] for unit tests: it records every call and lets the test decide
//! when containers exit.

use std::collections::{BTreeMap, HashSet};

use parking_lot::Mutex;

use crate::runtime::{
    ContainerInfo, ContainerSpec, ContainerState, ContainerUsage, CpuUsage, ExecResult,
    FilesystemUsage, ImageInfo, ImageUser, MemoryUsage, PullAuth, Result, Runtime, RuntimeError,
    RuntimeVersion, SandboxInfo, SandboxSpec, SandboxUsage, StreamFlags,
};

#[derive(Default)]
struct State {
    next_id: u64,
    images: HashSet<String>,
    /// Images whose pull fails, with the runtime's message.
    broken_images: BTreeMap<String, String>,
    /// Images whose pull needs these credentials (`user:password`).
    private_images: BTreeMap<String, String>,
    sandboxes: BTreeMap<String, (SandboxSpec, SandboxInfo)>,
    containers: BTreeMap<String, (String, ContainerSpec, ContainerInfo)>,
    calls: Vec<String>,
    clock: i64,
    /// Cumulative CPU nanoseconds and working set of running containers, by container name.
    usage: BTreeMap<String, (u64, u64)>,
    /// Base URL of the streaming server streaming calls point to (a test server).
    streaming_base: String,
}

impl State {
    /// Wall-clock nanoseconds, strictly increasing between calls (ordering of creations).
    fn tick(&mut self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        self.clock = wall.max(self.clock + 1);
        self.clock
    }
}

/// The fake runtime.
#[derive(Default)]
pub struct FakeRuntime {
    state: Mutex<State>,
}

impl FakeRuntime {
    /// Every call so far, as `verb argument` strings.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().calls.clone()
    }

    /// Points the URLs of streaming calls (exec, attach, port-forward) at `base`
    /// (`http://127.0.0.1:PORT`), where a test serves what the runtime's streaming server would.
    pub fn set_streaming_base(&self, base: &str) {
        self.state.lock().streaming_base = base.to_string();
    }

    /// Makes the image present, as if pulled before.
    pub fn add_image(&self, image: &str) {
        self.state.lock().images.insert(image.to_string());
    }

    /// Makes pulls of `image` fail with `message`.
    pub fn break_image(&self, image: &str, message: &str) {
        self.state
            .lock()
            .broken_images
            .insert(image.to_string(), message.to_string());
    }

    /// Makes pulls of `image` succeed only with `username`/`password`.
    pub fn require_credentials(&self, image: &str, username: &str, password: &str) {
        self.state
            .lock()
            .private_images
            .insert(image.to_string(), format!("{username}:{password}"));
    }

    /// Ends a running container (by container name) with `exit_code`.
    pub fn exit_container(&self, name: &str, exit_code: i32) {
        let mut s = self.state.lock();
        let now = s.tick();
        for (_, _, info) in s.containers.values_mut() {
            if info.name == name && info.state == ContainerState::Running {
                info.state = ContainerState::Exited;
                info.exit_code = exit_code;
                info.finished_at = now;
                info.reason = if exit_code == 0 { "Completed" } else { "Error" }.into();
            }
        }
    }

    /// Specs of containers created so far, oldest first.
    pub fn created_containers(&self) -> Vec<ContainerSpec> {
        let s = self.state.lock();
        let mut all: Vec<_> = s
            .containers
            .values()
            .map(|(_, spec, info)| (info.created_at, spec.clone()))
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all.into_iter().map(|(_, spec)| spec).collect()
    }

    /// Sets what the runtime reports as the use of the running container `name`: cumulative
    /// CPU time and working set.
    pub fn set_usage(&self, name: &str, cpu_core_nano_seconds: u64, working_set_bytes: u64) {
        self.state
            .lock()
            .usage
            .insert(name.to_string(), (cpu_core_nano_seconds, working_set_bytes));
    }

    /// Sandboxes that exist (ready or not).
    pub fn sandbox_count(&self) -> usize {
        self.state.lock().sandboxes.len()
    }

    fn record(&self, call: String) {
        self.state.lock().calls.push(call);
    }
}

fn not_found(what: &str, id: &str) -> RuntimeError {
    RuntimeError(format!("{what} {id} not found"))
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion {
            name: "fake".into(),
            version: "0.0.1".into(),
        })
    }

    async fn image_status(&self, image: &str) -> Result<Option<ImageInfo>> {
        Ok(self.state.lock().images.contains(image).then(|| ImageInfo {
            id: format!("sha256:{image}"),
            size_bytes: 1024,
        }))
    }

    async fn image_user(&self, _image: &str) -> Result<ImageUser> {
        Ok(ImageUser::default())
    }

    async fn pull_image(&self, image: &str, auth: Option<PullAuth>) -> Result<String> {
        let credentials = auth.map(|a| format!("{}:{}", a.username, a.password));
        match &credentials {
            Some(c) => self.record(format!("pull {image} as {c}")),
            None => self.record(format!("pull {image}")),
        }
        let mut s = self.state.lock();
        if let Some(message) = s.broken_images.get(image) {
            return Err(RuntimeError(message.clone()));
        }
        if let Some(needed) = s.private_images.get(image)
            && credentials.as_ref() != Some(needed)
        {
            return Err(RuntimeError(format!(
                "rpc error: code = Unknown desc = failed to pull and unpack image \"{image}\": 401 Unauthorized"
            )));
        }
        s.images.insert(image.to_string());
        Ok(format!("sha256:{image}"))
    }

    async fn run_sandbox(&self, spec: &SandboxSpec) -> Result<String> {
        self.record(format!("run_sandbox {}", spec.name));
        let mut s = self.state.lock();
        s.next_id += 1;
        s.tick();
        let id = format!("sandbox-{}", s.next_id);
        let info = SandboxInfo {
            id: id.clone(),
            pod_uid: spec.uid.clone(),
            pod_name: spec.name.clone(),
            pod_namespace: spec.namespace.clone(),
            attempt: spec.attempt,
            ready: true,
            created_at: s.clock,
        };
        s.sandboxes.insert(id.clone(), (spec.clone(), info));
        Ok(id)
    }

    async fn sandbox_ip(&self, id: &str) -> Result<Option<String>> {
        let s = self.state.lock();
        let (spec, _) = s
            .sandboxes
            .get(id)
            .ok_or_else(|| not_found("sandbox", id))?;
        Ok((!spec.host_network).then(|| "10.88.0.7".to_string()))
    }

    async fn stop_sandbox(&self, id: &str) -> Result<()> {
        self.record(format!("stop_sandbox {id}"));
        let mut s = self.state.lock();
        let now = s.tick();
        for (sandbox, _, info) in s.containers.values_mut() {
            if sandbox == id && info.state == ContainerState::Running {
                info.state = ContainerState::Exited;
                info.exit_code = 137;
                info.finished_at = now;
            }
        }
        if let Some((_, info)) = s.sandboxes.get_mut(id) {
            info.ready = false;
        }
        Ok(())
    }

    async fn remove_sandbox(&self, id: &str) -> Result<()> {
        self.record(format!("remove_sandbox {id}"));
        let mut s = self.state.lock();
        s.sandboxes.remove(id);
        s.containers.retain(|_, (sandbox, _, _)| sandbox != id);
        Ok(())
    }

    async fn list_sandboxes(&self) -> Result<Vec<SandboxInfo>> {
        Ok(self
            .state
            .lock()
            .sandboxes
            .values()
            .map(|(_, info)| info.clone())
            .collect())
    }

    async fn list_container_stats(&self) -> Result<Vec<ContainerUsage>> {
        let mut s = self.state.lock();
        let now = s.tick();
        let mut out = Vec::new();
        for (sandbox_id, spec, info) in s.containers.values() {
            if info.state != ContainerState::Running {
                continue;
            }
            let Some((sandbox, _)) = s.sandboxes.get(sandbox_id) else {
                continue;
            };
            let (cpu, memory) = s.usage.get(&info.name).copied().unwrap_or_default();
            out.push(ContainerUsage {
                id: info.id.clone(),
                name: spec.name.clone(),
                pod_name: sandbox.name.clone(),
                pod_namespace: sandbox.namespace.clone(),
                pod_uid: sandbox.uid.clone(),
                created_at: info.created_at,
                cpu: Some(CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: Some(cpu),
                }),
                memory: Some(MemoryUsage {
                    timestamp: now,
                    working_set_bytes: Some(memory),
                    usage_bytes: Some(memory),
                    ..Default::default()
                }),
                writable_layer: Some(FilesystemUsage {
                    timestamp: now,
                    mountpoint: String::new(),
                    used_bytes: Some(4096),
                    inodes_used: Some(1),
                }),
            });
        }
        Ok(out)
    }

    async fn list_pod_sandbox_stats(&self) -> Result<Vec<SandboxUsage>> {
        // As a runtime without ListPodSandboxStats: pod totals come from the containers.
        Ok(Vec::new())
    }

    async fn image_fs_info(&self) -> Result<Vec<FilesystemUsage>> {
        Ok(Vec::new())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        _sandbox: &SandboxSpec,
        spec: &ContainerSpec,
    ) -> Result<String> {
        self.record(format!(
            "create_container {} attempt {}",
            spec.name, spec.attempt
        ));
        let mut s = self.state.lock();
        if !s.sandboxes.contains_key(sandbox_id) {
            return Err(not_found("sandbox", sandbox_id));
        }
        s.next_id += 1;
        s.tick();
        let id = format!("container-{}", s.next_id);
        let info = ContainerInfo {
            id: id.clone(),
            name: spec.name.clone(),
            attempt: spec.attempt,
            state: ContainerState::Created,
            created_at: s.clock,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image: spec.image.clone(),
            image_ref: format!("sha256:{}", spec.image),
        };
        s.containers
            .insert(id.clone(), (sandbox_id.to_string(), spec.clone(), info));
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.record(format!("start_container {id}"));
        let mut s = self.state.lock();
        let now = s.tick();
        let (_, _, info) = s
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        info.state = ContainerState::Running;
        info.started_at = now;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout_seconds: i64) -> Result<()> {
        self.record(format!("stop_container {id} timeout {timeout_seconds}"));
        let mut s = self.state.lock();
        let now = s.tick();
        let (_, _, info) = s
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        if info.state == ContainerState::Running {
            info.state = ContainerState::Exited;
            info.exit_code = 137;
            info.finished_at = now;
            info.reason = "Error".into();
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.record(format!("remove_container {id}"));
        self.state.lock().containers.remove(id);
        Ok(())
    }

    async fn list_containers(&self, sandbox_id: &str) -> Result<Vec<ContainerInfo>> {
        let s = self.state.lock();
        Ok(s.containers
            .values()
            .filter(|(sandbox, _, _)| sandbox == sandbox_id)
            .map(|(_, _, info)| info.clone())
            .collect())
    }

    async fn exec_sync(
        &self,
        container_id: &str,
        command: &[String],
        _timeout_seconds: i64,
    ) -> Result<ExecResult> {
        self.record(format!("exec {container_id} {}", command.join(" ")));
        Ok(ExecResult::default())
    }

    async fn exec_url(
        &self,
        container_id: &str,
        command: &[String],
        streams: StreamFlags,
    ) -> Result<String> {
        self.record(format!(
            "exec_url {container_id} {} {streams:?}",
            command.join(" ")
        ));
        let s = self.state.lock();
        if !s.containers.contains_key(container_id) {
            return Err(not_found("container", container_id));
        }
        Ok(format!("{}/exec/{container_id}", s.streaming_base))
    }

    async fn attach_url(&self, container_id: &str, streams: StreamFlags) -> Result<String> {
        self.record(format!("attach_url {container_id} {streams:?}"));
        let s = self.state.lock();
        if !s.containers.contains_key(container_id) {
            return Err(not_found("container", container_id));
        }
        Ok(format!("{}/attach/{container_id}", s.streaming_base))
    }

    async fn port_forward_url(&self, sandbox_id: &str, ports: &[i32]) -> Result<String> {
        self.record(format!("port_forward_url {sandbox_id} {ports:?}"));
        let s = self.state.lock();
        if !s.sandboxes.contains_key(sandbox_id) {
            return Err(not_found("sandbox", sandbox_id));
        }
        Ok(format!("{}/portforward/{sandbox_id}", s.streaming_base))
    }
}

/// A sandbox spec for tests: pod `name` in `default` with UID `uid`.
pub fn sandbox_spec(name: &str, uid: &str) -> crate::runtime::SandboxSpec {
    crate::runtime::SandboxSpec {
        name: name.into(),
        namespace: "default".into(),
        uid: uid.into(),
        attempt: 0,
        hostname: name.into(),
        log_directory: String::new(),
        host_network: false,
        privileged: false,
        labels: Default::default(),
    }
}

/// A busybox container spec for tests, logging to `<name>/0.log`.
pub fn container_spec(name: &str) -> crate::runtime::ContainerSpec {
    crate::runtime::ContainerSpec {
        name: name.into(),
        attempt: 0,
        image: "busybox".into(),
        command: vec![],
        args: vec![],
        env: vec![],
        working_dir: String::new(),
        log_path: format!("{name}/0.log"),
        labels: Default::default(),
        mounts: vec![],
        resources: Default::default(),
        security: Default::default(),
        stdin: false,
        stdin_once: false,
        tty: false,
    }
}
