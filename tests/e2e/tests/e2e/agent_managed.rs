//! `rkube server` without a runtime socket runs a containerd of its own (configuration from
//! `containerd config default`, a CNI bridge on the pod CIDR, the sandbox image built by rkube
//! and imported): a busybox pod from the local registry runs on it.

use std::process::Command;
use std::time::{Duration, Instant};

use rkube_testkit::TestCluster;

use crate::agent::{RuntimeExclusive, skip_without_runtime, wait_for};

const ENV_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-env.sh");
const BRIDGE: &str = "rkube0";

/// The registry for the test; on drop it and the managed containerd (the test cluster is
/// killed with SIGKILL, so the agent cannot stop it) are stopped.
struct RegistryOnly {
    dir: tempfile::TempDir,
    registry: String,
    _exclusive: RuntimeExclusive,
}

impl Drop for RegistryOnly {
    fn drop(&mut self) {
        let managed = self.dir.path().join("agent/containerd");
        for dir in [managed.as_path(), self.dir.path()] {
            let _ = Command::new("bash")
                .arg(ENV_SCRIPT)
                .args(["down", &dir.to_string_lossy(), BRIDGE])
                .status();
        }
    }
}

#[test]
fn server_runs_pods_on_a_containerd_it_manages() -> anyhow::Result<()> {
    if skip_without_runtime("server_runs_pods_on_a_containerd_it_manages")? {
        return Ok(());
    }
    let exclusive = RuntimeExclusive::acquire()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let env = RegistryOnly {
        dir: tempfile::Builder::new()
            .prefix("rkube-managed-e2e-")
            .tempdir()?,
        registry: format!("127.0.0.1:{port}"),
        _exclusive: exclusive,
    };
    let out = Command::new("bash")
        .arg(ENV_SCRIPT)
        .args([
            "up-registry",
            &env.dir.path().to_string_lossy(),
            &port.to_string(),
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "agent-env.sh up-registry: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = env.dir.path().join("agent");
    let logs = env.dir.path().join("pods");
    let hosts = env.dir.path().join("certs.d");
    let mut cluster = TestCluster::start_with(&[
        "--agent-root-dir",
        &root.to_string_lossy(),
        "--pod-log-dir",
        &logs.to_string_lossy(),
        "--registry-hosts-dir",
        &hosts.to_string_lossy(),
        "--pod-cidr",
        "10.89.0.0/24",
        "--agent-port",
        "0",
        "--node-name",
        "agent-e2e",
    ])?;
    let k = cluster.kubectl();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut runtime = String::new();
    while Instant::now() < deadline && !runtime.starts_with("containerd://") {
        runtime = k
            .ok(&[
                "get",
                "node",
                "agent-e2e",
                "-o",
                "jsonpath={.status.nodeInfo.containerRuntimeVersion}",
            ])
            .unwrap_or_default();
        std::thread::sleep(Duration::from_millis(250));
    }
    anyhow::ensure!(
        runtime.starts_with("containerd://"),
        "the node did not register with the managed containerd ({runtime:?})\n{}",
        cluster.log()
    );
    // The explicit --pod-cidr is the Node's (outside the cluster CIDR, so the allocator
    // leaves it alone).
    assert_eq!(
        k.ok(&["get", "node", "agent-e2e", "-o", "jsonpath={.spec.podCIDR}"])?,
        "10.89.0.0/24"
    );
    let config = std::fs::read_to_string(root.join("containerd/config.toml"))?;
    assert!(config.contains("restrict_oom_score_adj = true"), "{config}");

    k.ok(&[
        "run",
        "web",
        &format!("--image={}/busybox:latest", env.registry),
        "--restart=Never",
        "--",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ])?;
    wait_for(
        &k,
        "web",
        "{.status.phase}",
        "Running",
        Duration::from_secs(90),
    )?;
    let ip = k.ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"])?;
    assert!(
        ip.starts_with("10.89.0."),
        "pod IP {ip} outside the pod CIDR"
    );
    // The pod network works: its server answers from the host over the bridge.
    // (httpd may need a moment after the container started).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answer = String::new();
    while Instant::now() < deadline && answer != "hello from busybox pod\n" {
        let out = Command::new("busybox")
            .args(["wget", "-qO-", &format!("http://{ip}:8080/")])
            .output()?;
        answer = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let diag = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    assert!(
        answer.starts_with("hello from busybox pod"),
        "{answer}\n{}\n{}\n{}",
        diag(&["ip", "addr", "show", BRIDGE]),
        diag(&["ip", "route"]),
        k.ok(&["logs", "web"]).unwrap_or_default()
    );

    // The server killed while the pod runs leaves its containerd behind: the next start stops
    // that one, runs a fresh one on the same state and adopts the running container.
    let status = "jsonpath={.status.phase} {.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount}";
    let before = k.ok(&["get", "pod", "web", "-o", status])?;
    let stale = std::fs::read_to_string(root.join("containerd/containerd.pid"))?;
    cluster.restart()?;
    let k = cluster.kubectl();
    // The agent starts after the server is ready.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut fresh = stale.clone();
    while Instant::now() < deadline && fresh == stale {
        std::thread::sleep(Duration::from_millis(250));
        fresh = std::fs::read_to_string(root.join("containerd/containerd.pid")).unwrap_or_default();
    }
    assert_ne!(stale.trim(), fresh.trim(), "a new containerd runs");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", stale.trim())).exists(),
        "the stale containerd {} was stopped",
        stale.trim()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(k.ok(&["get", "pod", "web", "-o", status])?, before);
    let out = Command::new("busybox")
        .args(["wget", "-qO-", &format!("http://{ip}:8080/")])
        .output()?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from busybox pod\n"
    );
    k.ok(&["delete", "pod", "web", "--wait=true", "--timeout=60s"])?;
    Ok(())
}
