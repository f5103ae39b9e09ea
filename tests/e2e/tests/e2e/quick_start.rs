//! The README's quick start: `scripts/local-registry.sh` and then the README's kubectl lines,
//! exactly as written there (only the registry port differs), on a single-node cluster whose
//! agent runs its own containerd, as `scripts/start.sh` starts one: a Deployment of three
//! busybox httpd pods Running and Ready with pod IPs that answer HTTP.

use std::process::Command;

use rkube_testkit::TestCluster;

use crate::agent::{RuntimeExclusive, skip_without_runtime};

const README: &str = include_str!("../../../../README.md");
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const ENV_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-env.sh");
const README_REGISTRY: &str = "127.0.0.1:5000";
const BRIDGE: &str = "rkube0";

/// The commands of the README's quick-start pod block.
fn quick_start_lines() -> anyhow::Result<Vec<&'static str>> {
    let start = README
        .find("<!-- quick-start-pod")
        .ok_or_else(|| anyhow::anyhow!("README has no quick-start-pod block"))?;
    let end = README[start..]
        .find("<!-- /quick-start-pod -->")
        .ok_or_else(|| anyhow::anyhow!("README's quick-start-pod block is not closed"))?;
    Ok(README[start..start + end]
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("kubectl ") || l.starts_with("./scripts/"))
        .collect())
}

/// Stops the registry and the managed containerd (the cluster is killed with SIGKILL).
struct Cleanup {
    dir: tempfile::TempDir,
    _exclusive: RuntimeExclusive,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let managed = self.dir.path().join("agent/containerd");
        let registry = self.dir.path().join("registry");
        for dir in [managed.as_path(), registry.as_path()] {
            let _ = Command::new("bash")
                .arg(ENV_SCRIPT)
                .args(["down", &dir.to_string_lossy(), BRIDGE])
                .status();
        }
    }
}

#[test]
fn readme_quick_start_runs_a_real_pod() -> anyhow::Result<()> {
    let lines = quick_start_lines()?;
    assert_eq!(
        lines.first(),
        Some(&"./scripts/local-registry.sh"),
        "the block starts the registry: {lines:?}"
    );
    assert!(lines.len() >= 4, "{lines:?}");
    if skip_without_runtime("readme_quick_start_runs_a_real_pod")? {
        return Ok(());
    }
    let exclusive = RuntimeExclusive::acquire()?;
    let env = Cleanup {
        dir: tempfile::Builder::new()
            .prefix("rkube-quick-start-e2e-")
            .tempdir()?,
        _exclusive: exclusive,
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let registry = format!("127.0.0.1:{port}");

    let out = Command::new("bash")
        .arg(format!("{REPO}/scripts/local-registry.sh"))
        .env("RKUBE_REGISTRY_PORT", port.to_string())
        .env("RKUBE_REGISTRY_DIR", env.dir.path().join("registry"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "scripts/local-registry.sh: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{registry}/busybox:latest")),
        "the script tells which image to use: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let root = env.dir.path().join("agent");
    let cluster = TestCluster::start_with(&[
        "--agent-root-dir",
        &root.to_string_lossy(),
        "--pod-log-dir",
        &env.dir.path().join("pods").to_string_lossy(),
        "--registry-hosts-dir",
        &env.dir.path().join("certs.d").to_string_lossy(),
        "--agent-port",
        "0",
    ])?;
    let k = cluster.kubectl();
    let mut outputs = Vec::new();
    for line in &lines[1..] {
        let line = line.replace(README_REGISTRY, &registry);
        assert!(
            !line.contains(['"', '\'', '$', '|', '&']),
            "the test runs README lines without a shell: {line}"
        );
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = k.ok(&args).map_err(|e| {
            anyhow::anyhow!(
                "README line `{line}`: {e}\n{}\n{}",
                k.ok(&["get", "pods", "-o", "yaml"]).unwrap_or_default(),
                cluster.log()
            )
        })?;
        outputs.push((line, out));
    }
    let listing = outputs
        .iter()
        .find(|(line, _)| line.starts_with("kubectl get pods"))
        .map(|(_, out)| out.clone())
        .unwrap_or_default();
    // The Deployment's three replicas: Running, Ready, each with its own IP on the node's pod
    // network, serving HTTP there.
    let pods: Vec<Vec<&str>> = listing
        .lines()
        .filter(|l| l.starts_with("hello-"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(pods.len(), 3, "{listing}");
    let mut ips = std::collections::BTreeSet::new();
    for columns in &pods {
        // NAME READY STATUS RESTARTS AGE IP NODE ...
        assert_eq!(&columns[1..3], ["1/1", "Running"], "{listing}");
        let ip: std::net::Ipv4Addr = columns[5]
            .parse()
            .map_err(|e| anyhow::anyhow!("pod IP {:?}: {e}\n{listing}", columns[5]))?;
        ips.insert(ip);
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", &format!("http://{ip}:8080/")])
            .output()?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hello from busybox pod\n",
            "{ip}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(ips.len(), 3, "distinct pod IPs: {listing}");
    let (_, answer) = outputs
        .last()
        .ok_or_else(|| anyhow::anyhow!("no commands ran"))?;
    assert_eq!(answer, "hello from busybox pod\n");
    k.ok(&["delete", "deployment", "hello", "--wait=true"])?;
    Ok(())
}
