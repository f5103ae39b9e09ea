//! The node agent with a real containerd: `rkube server` runs the agent for its host, pods run
//! as containers from an image built here (Debian's busybox-static) and served by a local
//! registry, `kubectl logs` reads their output through the API server, and deletion is graceful.
//!
//! Needs root, containerd, runc, the CNI plugins, docker-registry and busybox-static
//! (scripts/install.sh installs them). Without them the test says it is skipped; under CI
//! (`CI` set) it fails instead, since CI installs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};

const ENV_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-env.sh");

/// What is missing on this machine to run containers, if anything.
pub(crate) fn missing_prerequisites() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")
                    .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            })
        });
    if uid.as_deref() != Some("0") {
        return Some("not running as root".into());
    }
    let needed = [
        "/usr/bin/containerd",
        "/usr/sbin/runc",
        "/usr/lib/cni/bridge",
        "/usr/lib/cni/host-local",
        "/usr/bin/docker-registry",
        "/bin/busybox",
    ];
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|p| !Path::new(p).exists())
        .collect();
    (!missing.is_empty())
        .then(|| format!("missing {} (run scripts/install.sh)", missing.join(", ")))
}

/// True (after a SKIPPED line) when this machine cannot run node agent tests; under CI that
/// is an error instead, so that a CI machine without the runtime fails rather than passes.
pub(crate) fn skip_without_runtime(test: &str) -> anyhow::Result<bool> {
    if let Some(why) = missing_prerequisites() {
        if std::env::var_os("CI").is_some() {
            anyhow::bail!("node agent e2e cannot run under CI: {why}");
        }
        eprintln!("SKIPPED {test}: {why}");
        return Ok(true);
    }
    Ok(false)
}

/// Node agent tests share the bridge name and pod subnet of agent-env.sh, and an agent removes
/// sandboxes it does not know: one such test at a time.
static RUNTIME_ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held while a test uses the bridge and subnet of agent-env.sh, by any process on the machine.
const MACHINE_LOCK: &str = "/tmp/rkube-agent-e2e.lock";

/// Exclusive use of the runtime environment: in this test binary and machine-wide (two test
/// runs on one machine share the bridge).
pub(crate) struct RuntimeExclusive {
    _in_process: std::sync::MutexGuard<'static, ()>,
    _machine_wide: std::fs::File,
}

impl RuntimeExclusive {
    pub(crate) fn acquire() -> anyhow::Result<Self> {
        let in_process = RUNTIME_ENV_LOCK
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let machine_wide = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(MACHINE_LOCK)?;
        machine_wide.lock()?;
        Ok(Self { _in_process: in_process, _machine_wide: machine_wide })
    }
}

/// A separately started `rkube agent` on a test environment's containerd (state under
/// `<env>/<state>-agent`, pod logs under `<env>/<state>-pods`, output in `<env>/<log>`),
/// killed on drop.
pub(crate) struct StandaloneAgent {
    child: std::process::Child,
    log: PathBuf,
}

impl StandaloneAgent {
    /// The `rkube agent` command line for node `node` of the server at `server`.
    pub(crate) fn command(env: &RuntimeEnv, node: &str, server: &str, state: &str, extra: &[&str]) -> anyhow::Result<Command> {
        let mut cmd = Command::new(rkube_testkit::rkube_binary()?);
        cmd.arg("agent")
            .args(["--server", server])
            .args(["--containerd-socket", &env.socket().to_string_lossy()])
            .args(["--agent-port", "0", "--node-name", node])
            .args(["--eviction-hard", rkube_testkit::TEST_EVICTION_HARD])
            .args(["--pod-log-dir", &env.dir.path().join(format!("{state}-pods")).to_string_lossy()])
            .args(["--agent-root-dir", &env.dir.path().join(format!("{state}-agent")).to_string_lossy()])
            .args(extra)
            .env_remove("KUBECONFIG")
            .env("RKUBE_LOG", "info");
        Ok(cmd)
    }

    pub(crate) fn start(env: &RuntimeEnv, node: &str, server: &str, state: &str, extra: &[&str], log_name: &str) -> anyhow::Result<Self> {
        let log = env.dir.path().join(log_name);
        let file = std::fs::File::create(&log)?;
        let child = Self::command(env, node, server, state, extra)?
            .stdout(std::process::Stdio::from(file.try_clone()?))
            .stderr(std::process::Stdio::from(file))
            .spawn()?;
        Ok(Self { child, log })
    }

    /// What the agent printed so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for StandaloneAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// containerd and the registry for one test; stopped on drop.
pub(crate) struct RuntimeEnv {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) registry: String,
    _exclusive: RuntimeExclusive,
}

impl RuntimeEnv {
    pub(crate) fn start() -> anyhow::Result<Self> {
        let exclusive = RuntimeExclusive::acquire()?;
        let dir = tempfile::Builder::new()
            .prefix("rkube-agent-e2e-")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let out = Command::new("bash")
            .arg(ENV_SCRIPT)
            .arg("up")
            .arg(dir.path())
            .arg(port.to_string())
            .output()?;
        let env = Self {
            dir,
            registry: format!("127.0.0.1:{port}"),
            _exclusive: exclusive,
        };
        anyhow::ensure!(
            out.status.success(),
            "agent-env.sh up failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(env)
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    /// The busybox image in the local registry.
    pub(crate) fn image(&self) -> String {
        format!("{}/busybox:latest", self.registry)
    }

    /// A cluster whose `rkube server` runs an agent on this runtime as node `agent-e2e`, with
    /// its logs and state under the environment's directory; waits for the node to be Ready.
    pub(crate) fn cluster(&self) -> anyhow::Result<TestCluster> {
        self.cluster_with(&[])
    }

    /// containerd's registry hosts directory (its CRI `config_path`).
    pub(crate) fn hosts_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// As [`Self::cluster`], with more `rkube server` flags.
    pub(crate) fn cluster_with(&self, extra: &[&str]) -> anyhow::Result<TestCluster> {
        let socket = self.socket();
        let log_dir = self.dir.path().join("pods");
        let root_dir = self.dir.path().join("agent");
        let (socket, log_dir, root_dir) = (
            socket.to_string_lossy(),
            log_dir.to_string_lossy(),
            root_dir.to_string_lossy(),
        );
        let mut args = vec![
            "--containerd-socket",
            &socket,
            "--agent-port",
            "0",
            "--pod-log-dir",
            &log_dir,
            "--agent-root-dir",
            &root_dir,
            "--node-name",
            "agent-e2e",
        ];
        args.extend_from_slice(extra);
        let cluster = TestCluster::start_with(&args)?;
        let k = cluster.kubectl();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ready = k
                .ok(&[
                    "get",
                    "node",
                    "agent-e2e",
                    "-o",
                    "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
                ])
                .unwrap_or_default();
            if ready == "True" {
                return Ok(cluster);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        anyhow::bail!("node agent-e2e not Ready\n{}", cluster.log())
    }
}

impl Drop for RuntimeEnv {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(ENV_SCRIPT)
            .arg("down")
            .arg(self.dir.path())
            .status();
    }
}

pub(crate) fn wait_for(
    kubectl: &Kubectl,
    pod: &str,
    jsonpath: &str,
    want: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        last = kubectl.ok(&["get", "pod", pod, "-o", &format!("jsonpath={jsonpath}")])?;
        if last == want {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let dump = kubectl
        .ok(&["get", "pod", pod, "-o", "yaml"])
        .unwrap_or_default();
    anyhow::bail!("pod {pod}: {jsonpath} is {last:?}, want {want:?}\n{dump}")
}

#[test]
fn pods_run_as_containers_with_logs_adoption_and_graceful_deletion() -> anyhow::Result<()> {
    if skip_without_runtime("pods_run_as_containers_with_logs_adoption_and_graceful_deletion")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let socket = env.socket();
    let log_dir = env.dir.path().join("pods");
    let root_dir = env.dir.path().join("agent");
    let mut cluster = TestCluster::start_with(&[
        "--containerd-socket",
        &socket.to_string_lossy(),
        "--agent-port",
        "0",
        "--pod-log-dir",
        &log_dir.to_string_lossy(),
        "--agent-root-dir",
        &root_dir.to_string_lossy(),
        "--node-name",
        "agent-e2e",
    ])?;
    let k = cluster.kubectl();
    let image = format!("{}/busybox:latest", env.registry);

    // The host registers as a Ready node with its runtime.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut nodes = String::new();
    while Instant::now() < deadline && !nodes.contains("Ready") {
        nodes = k.ok(&["get", "nodes", "-o", "wide"]).unwrap_or_default();
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        nodes.contains("agent-e2e") && nodes.contains(" Ready ") && nodes.contains("containerd://"),
        "{nodes}\n{}",
        cluster.log()
    );

    // A pod that echoes and exits: Succeeded, and its output through `kubectl logs`.
    k.ok(&[
        "run",
        "echo",
        "--image",
        &image,
        "--restart=Never",
        "--env=WHO=rkube",
        "--",
        "/bin/sh",
        "-c",
        "echo hello from $WHO; echo second line",
    ])?;
    wait_for(
        &k,
        "echo",
        "{.status.phase}",
        "Succeeded",
        Duration::from_secs(60),
    )?;
    assert_eq!(k.ok(&["logs", "echo"])?, "hello from rkube\nsecond line\n");
    assert_eq!(k.ok(&["logs", "echo", "--tail=1"])?, "second line\n");
    let stamped = k.ok(&["logs", "echo", "--timestamps"])?;
    for (line, text) in stamped.lines().zip(["hello from rkube", "second line"]) {
        let (stamp, rest) = line.split_once(' ').unwrap_or_default();
        assert_eq!(rest, text, "{stamped}");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "RFC 3339 timestamp: {stamped}"
        );
    }
    assert_eq!(k.ok(&["logs", "echo", "--since=1h"])?, "hello from rkube\nsecond line\n");

    // `logs -f` streams while the container runs and ends when it exits, as the kubelet's does.
    k.ok(&[
        "run",
        "counter",
        "--image",
        &image,
        "--restart=Never",
        "--",
        "/bin/sh",
        "-c",
        "echo first; sleep 3; echo second; sleep 1",
    ])?;
    wait_for(&k, "counter", "{.status.phase}", "Running", Duration::from_secs(60))?;
    let mut follow = k
        .command(&["logs", "-f", "counter"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while follow.try_wait()?.is_none() {
        if Instant::now() > deadline {
            follow.kill()?;
            let out = follow.wait_with_output()?;
            anyhow::bail!(
                "logs -f did not end after the container exited: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = follow.wait_with_output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\n");

    let terminated = k.ok(&["get", "pod", "echo", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}"])?;
    assert_eq!(terminated, "0 Completed");
    let image_id = k.ok(&[
        "get",
        "pod",
        "echo",
        "-o",
        "jsonpath={.status.containerStatuses[0].imageID}",
    ])?;
    assert!(image_id.contains("@sha256:"), "imageID {image_id}");

    // A failing pod under restartPolicy Never: Failed with its exit code.
    k.ok(&[
        "run",
        "fails",
        "--image",
        &image,
        "--restart=Never",
        "--",
        "/bin/sh",
        "-c",
        "exit 3",
    ])?;
    wait_for(
        &k,
        "fails",
        "{.status.phase}",
        "Failed",
        Duration::from_secs(60),
    )?;
    wait_for(
        &k,
        "fails",
        "{.status.containerStatuses[0].state.terminated.exitCode}",
        "3",
        Duration::from_secs(5),
    )?;

    // A long-running pod: Running, Ready, with a pod IP from the bridge network that serves HTTP.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"terminationGracePeriodSeconds":3,
        "containers":[{"name":"web","image":"IMAGE","command":["/bin/sh","-c","trap '' TERM; httpd -p 8080 -h /www; while true; do sleep 1; done"]}]}}"#
        .replace("IMAGE", &image);
    k.ok_stdin(&["apply", "-f", "-"], &pod)?;
    wait_for(
        &k,
        "web",
        "{.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}",
        "Running True",
        Duration::from_secs(60),
    )?;
    let ip = k.ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"])?;
    assert!(ip.starts_with("10.88.0."), "pod IP {ip:?}");
    let page = Command::new("busybox")
        .args(["wget", "-qO-", &format!("http://{ip}:8080/")])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&page.stdout),
        "hello from busybox pod\n"
    );

    // The server (and its agent) restarted while the pod runs: the new agent adopts the
    // container instead of starting another one.
    let status = "jsonpath={.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}";
    let before = k.ok(&["get", "pod", "web", "-o", status])?;
    cluster.restart()?;
    let k = cluster.kubectl();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(k.ok(&["get", "pod", "web", "-o", status])?, before);
    assert!(
        before.starts_with("Running containerd://") && before.ends_with(" 0"),
        "{before}"
    );

    // Graceful deletion: the container ignores SIGTERM, so it is killed after the 3 s grace
    // period; then the pod object goes away.
    let started = Instant::now();
    k.ok(&["delete", "pod", "web", "--wait=true", "--timeout=60s"])?;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(30),
        "deletion took {took:?}"
    );
    let gone = k.run(&["get", "pod", "web"])?;
    assert!(
        gone.stderr.contains("pods \"web\" not found"),
        "{}",
        gone.stderr
    );

    k.ok(&[
        "delete",
        "pod",
        "echo",
        "fails",
        "--wait=true",
        "--timeout=60s",
    ])?;
    drop(cluster);
    Ok(())
}
