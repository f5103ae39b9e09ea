//! Node pod CIDRs from the server (controller `nodeipam`, `--cluster-cidr`): Nodes get the next
//! free block in order, Nodes with CIDRs keep them, a deleted Node's block is reused, an
//! exhausted range leaves the Node without one and records `CIDRNotAvailable`, and existing
//! CIDRs are counted again after a restart. With the managed runtime and no `--pod-cidr` the
//! agent's pod network uses the CIDR the server assigned, and pods reach addresses outside it
//! masqueraded behind the node's address.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};

use crate::agent::{RuntimeExclusive, skip_without_runtime, wait_for};

fn pod_cidr(k: &Kubectl, node: &str) -> String {
    k.ok(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR} {.spec.podCIDRs}"])
        .unwrap_or_default()
}

/// Waits until `node` has a pod CIDR and returns `<podCIDR> <podCIDRs>`.
fn wait_for_cidr(k: &Kubectl, node: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = pod_cidr(k, node);
        if !got.trim().is_empty() {
            return Ok(got);
        }
        anyhow::ensure!(Instant::now() < deadline, "node {node} got no pod CIDR");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn create_node(k: &Kubectl, name: &str, cidr: Option<&str>) -> anyhow::Result<()> {
    let spec = cidr
        .map(|c| format!("spec: {{podCIDR: {c}, podCIDRs: [{c}]}}"))
        .unwrap_or_default();
    k.ok_stdin(
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n{spec}\n"),
    )?;
    Ok(())
}

/// The messages of `CIDRNotAvailable` events about `node`.
fn cidr_events(k: &Kubectl, node: &str) -> String {
    k.ok(&[
        "get",
        "events",
        "-n",
        "default",
        "--field-selector",
        &format!("involvedObject.name={node},reason=CIDRNotAvailable"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.source.component}: {.message}{end}",
    ])
    .unwrap_or_default()
}

#[test]
fn nodes_get_cidrs_in_order_reused_after_deletion_and_an_event_when_exhausted() -> anyhow::Result<()> {
    // Four /24 blocks.
    let mut cluster = TestCluster::start_with(&["--cluster-cidr", "10.99.0.0/22"])?;
    let k = cluster.kubectl();
    // A Node with its own CIDR inside the range keeps it and takes that block; one outside
    // (as simulated nodes have) is left alone.
    create_node(&k, "own", Some("10.99.1.0/24"))?;
    create_node(&k, "sim", Some("10.64.0.0/24"))?;
    for (node, want) in [("n0", "10.99.0.0/24"), ("n1", "10.99.2.0/24"), ("n2", "10.99.3.0/24")] {
        create_node(&k, node, None)?;
        assert_eq!(wait_for_cidr(&k, node)?, format!("{want} [\"{want}\"]"), "{node}\n{}", cluster.log());
    }
    assert_eq!(pod_cidr(&k, "own"), "10.99.1.0/24 [\"10.99.1.0/24\"]");
    assert_eq!(pod_cidr(&k, "sim"), "10.64.0.0/24 [\"10.64.0.0/24\"]");

    // Assigned CIDRs cannot be changed (upstream's ValidateNodeUpdate).
    let refused = k.fails(&[
        "patch",
        "node",
        "n0",
        "-p",
        r#"{"spec":{"podCIDR":"10.99.9.0/24","podCIDRs":["10.99.9.0/24"]}}"#,
    ])?;
    assert!(
        refused.contains("spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid"),
        "{refused}"
    );

    // The deleted Node's block goes to the next Node.
    k.ok(&["delete", "node", "n1"])?;
    create_node(&k, "n3", None)?;
    assert_eq!(wait_for_cidr(&k, "n3")?, "10.99.2.0/24 [\"10.99.2.0/24\"]");

    // Nothing left: the Node stays without a CIDR and gets upstream's event.
    create_node(&k, "n4", None)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events = String::new();
    while Instant::now() < deadline && events.is_empty() {
        std::thread::sleep(Duration::from_millis(250));
        events = cidr_events(&k, "n4");
    }
    assert_eq!(
        events,
        "Warning cidrAllocator: Node n4 status is now: CIDRNotAvailable",
        "{}",
        cluster.log()
    );
    assert_eq!(pod_cidr(&k, "n4").trim(), "");
    // A Node going away frees its block for the waiting one.
    k.ok(&["delete", "node", "own"])?;
    assert_eq!(wait_for_cidr(&k, "n4")?, "10.99.1.0/24 [\"10.99.1.0/24\"]");

    // After a restart the existing CIDRs are counted again: the range is still full.
    cluster.restart()?;
    let k = cluster.kubectl();
    create_node(&k, "n5", None)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && cidr_events(&k, "n5").is_empty() {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(!cidr_events(&k, "n5").is_empty(), "no CIDRNotAvailable for n5\n{}", cluster.log());
    assert_eq!(pod_cidr(&k, "n5").trim(), "");
    for (node, want) in [("n0", "10.99.0.0/24"), ("n2", "10.99.3.0/24"), ("n3", "10.99.2.0/24"), ("n4", "10.99.1.0/24")] {
        assert_eq!(pod_cidr(&k, node), format!("{want} [\"{want}\"]"), "{node}");
    }
    Ok(())
}

#[test]
fn bad_node_cidr_flags_stop_the_server_with_a_reason() -> anyhow::Result<()> {
    for (args, want) in [
        (&["--cluster-cidr", "10.99.0.0/16", "--node-cidr-mask-size", "12"][..], "must be less than or equal to --node-cidr-mask-size"),
        (&["--cluster-cidr", "10.99.0.0"][..], "is not a CIDR"),
        (&["--cluster-cidr", "10.1.0.0/16,10.2.0.0/16"][..], "dual-stack"),
    ] {
        let err = match TestCluster::start_with(args) {
            Ok(_) => anyhow::bail!("the server started with {args:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(want), "{args:?}: {err}");
    }
    Ok(())
}

const ENV_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/agent-env.sh");
const BRIDGE: &str = "rkube0";
/// A network namespace standing for "outside the node", joined to the host by a veth pair.
const OUTSIDE_NETNS: &str = "rkube-ipam-e2e";
const HOST_VETH: &str = "rkipam0";
const OUTSIDE_VETH: &str = "rkipam1";
const HOST_SIDE_IP: &str = "10.253.77.1";
/// The test cluster's CIDR; its node gets the first /24.
const CLUSTER_CIDR: &str = "10.98.0.0/16";
const OUTSIDE_IP: &str = "10.253.77.2";

/// The registry, the outside namespace and its HTTP server; all stopped on drop, with the
/// managed containerd (the test cluster is killed with SIGKILL, so the agent cannot stop it).
struct ManagedEnv {
    dir: tempfile::TempDir,
    registry: String,
    echo_server: Option<Child>,
    _exclusive: RuntimeExclusive,
}

impl Drop for ManagedEnv {
    fn drop(&mut self) {
        if let Some(mut child) = self.echo_server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_masquerade_rules(CLUSTER_CIDR);
        // Deleting the namespace removes the veth pair too.
        let _ = Command::new("ip").args(["netns", "del", OUTSIDE_NETNS]).status();
        let _ = Command::new("ip").args(["link", "del", HOST_VETH]).status();
        let managed = self.dir.path().join("agent/containerd");
        for dir in [managed.as_path(), self.dir.path()] {
            let _ = Command::new("bash")
                .arg(ENV_SCRIPT)
                .args(["down", &dir.to_string_lossy(), BRIDGE])
                .status();
        }
    }
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Removes the bridge plugin's `nat` rules (and their `CNI-…` chains) for pod addresses in
/// `cidr`: pods whose CNI DEL never ran (their runtime was killed with the test) leave them.
fn remove_masquerade_rules(cidr: &str) {
    let prefix = cidr.split('.').take(2).collect::<Vec<_>>().join(".") + ".";
    let rules = Command::new("iptables")
        .args(["-t", "nat", "-S", "POSTROUTING"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for rule in rules.lines() {
        let Some(chain) = rule.rsplit_once("-j ").map(|(_, c)| c.trim().to_string()) else {
            continue;
        };
        if !rule.starts_with(&format!("-A POSTROUTING -s {prefix}")) || !chain.starts_with("CNI-") {
            continue;
        }
        // The rule's comment is quoted as a shell would: let one parse it.
        let _ = Command::new("bash")
            .args(["-c", &format!("iptables -t nat {}", rule.replacen("-A ", "-D ", 1))])
            .status();
        let _ = Command::new("iptables").args(["-t", "nat", "-F", &chain]).status();
        let _ = Command::new("iptables").args(["-t", "nat", "-X", &chain]).status();
    }
}

/// Answers every GET with the client's address as the server saw it.
const ECHO_SERVER: &str = r#"
import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("source=" + self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], 8080), Echo).serve_forever()
"#;

impl ManagedEnv {
    fn start() -> anyhow::Result<Self> {
        let exclusive = RuntimeExclusive::acquire()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut env = Self {
            dir: tempfile::Builder::new().prefix("rkube-ipam-e2e-").tempdir()?,
            registry: format!("127.0.0.1:{port}"),
            echo_server: None,
            _exclusive: exclusive,
        };
        let out = Command::new("bash")
            .arg(ENV_SCRIPT)
            .args(["up-registry", &env.dir.path().to_string_lossy(), &port.to_string()])
            .output()?;
        anyhow::ensure!(out.status.success(), "agent-env.sh up-registry: {}", String::from_utf8_lossy(&out.stderr));
        // Leftovers of an interrupted run. A masquerade rule left for a pod address (its
        // containerd killed before CNI DEL) would masquerade this run's pod too.
        remove_masquerade_rules(CLUSTER_CIDR);
        let _ = Command::new("ip").args(["netns", "del", OUTSIDE_NETNS]).status();
        let _ = Command::new("ip").args(["link", "del", HOST_VETH]).status();
        run(&["ip", "netns", "add", OUTSIDE_NETNS])?;
        run(&["ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", OUTSIDE_VETH])?;
        run(&["ip", "link", "set", OUTSIDE_VETH, "netns", OUTSIDE_NETNS])?;
        run(&["ip", "addr", "add", &format!("{HOST_SIDE_IP}/30"), "dev", HOST_VETH])?;
        run(&["ip", "link", "set", HOST_VETH, "up"])?;
        let in_ns = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", OUTSIDE_NETNS];
            all.extend_from_slice(args);
            run(&all)
        };
        in_ns(&["ip", "link", "set", "lo", "up"])?;
        in_ns(&["ip", "addr", "add", &format!("{OUTSIDE_IP}/30"), "dev", OUTSIDE_VETH])?;
        in_ns(&["ip", "link", "set", OUTSIDE_VETH, "up"])?;
        // A way back to any source, so that an unmasqueraded request is answered too and the
        // test sees the pod's own address rather than a timeout.
        in_ns(&["ip", "route", "add", "default", "via", HOST_SIDE_IP])?;
        env.echo_server = Some(
            Command::new("ip")
                .args(["netns", "exec", OUTSIDE_NETNS, "python3", "-c", ECHO_SERVER, OUTSIDE_IP])
                .spawn()?,
        );
        Ok(env)
    }
}

#[test]
fn the_agent_uses_the_pod_cidr_the_server_assigned_and_pods_are_masqueraded() -> anyhow::Result<()> {
    if skip_without_runtime("the_agent_uses_the_pod_cidr_the_server_assigned_and_pods_are_masqueraded")? {
        return Ok(());
    }
    let env = ManagedEnv::start()?;
    let root = env.dir.path().join("agent");
    let logs = env.dir.path().join("pods");
    let hosts = env.dir.path().join("certs.d");
    // No --pod-cidr: the node's block of the cluster CIDR is the pod network.
    let cluster = TestCluster::start_with(&[
        "--agent-root-dir",
        &root.to_string_lossy(),
        "--pod-log-dir",
        &logs.to_string_lossy(),
        "--registry-hosts-dir",
        &hosts.to_string_lossy(),
        "--cluster-cidr",
        CLUSTER_CIDR,
        "--agent-port",
        "0",
        "--node-name",
        "ipam-e2e",
    ])?;
    let k = cluster.kubectl();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut ready = String::new();
    while Instant::now() < deadline && ready != "True" {
        std::thread::sleep(Duration::from_millis(250));
        ready = k
            .ok(&["get", "node", "ipam-e2e", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
            .unwrap_or_default();
    }
    anyhow::ensure!(ready == "True", "node ipam-e2e not Ready\n{}", cluster.log());
    assert_eq!(pod_cidr(&k, "ipam-e2e"), "10.98.0.0/24 [\"10.98.0.0/24\"]");
    let cni = std::fs::read_to_string(root.join("containerd/cni/net.d/10-rkube.conflist"))?;
    let cni: serde_json::Value = serde_json::from_str(&cni)?;
    assert_eq!(cni["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.98.0.0/24", "{cni}");
    assert_eq!(cni["plugins"][0]["ipMasq"], true, "{cni}");

    // The pod asks the outside server who it is; the answer is the node's address on the way
    // out, not the pod's. (busybox-static's wget crashes in the bare image; nc does not.)
    let script = format!(
        "i=0; while [ $i -lt 60 ]; do out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {OUTSIDE_IP} 8080); if [ -n \"$out\" ]; then echo \"$out\"; break; fi; i=$((i+1)); sleep 1; done; sleep 3600"
    );
    k.ok(&[
        "run",
        "probe",
        &format!("--image={}/busybox:latest", env.registry),
        "--restart=Never",
        "--",
        "sh",
        "-c",
        &script,
    ])?;
    wait_for(&k, "probe", "{.status.phase}", "Running", Duration::from_secs(90))?;
    let ip = k.ok(&["get", "pod", "probe", "-o", "jsonpath={.status.podIP}"])?;
    assert!(ip.starts_with("10.98.0."), "pod IP {ip} outside the node's pod CIDR");
    let deadline = Instant::now() + Duration::from_secs(75);
    let mut seen = String::new();
    while Instant::now() < deadline && seen.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
        let logs = k.ok(&["logs", "probe"]).unwrap_or_default();
        seen = logs.lines().find_map(|l| l.trim().strip_prefix("source=")).unwrap_or_default().to_string();
    }
    let nat = Command::new("iptables").args(["-t", "nat", "-S"]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    assert_eq!(seen, HOST_SIDE_IP, "the outside server saw {seen:?} (pod {ip})\n{nat}");
    k.ok(&["delete", "pod", "probe", "--wait=true", "--timeout=60s"])?;
    Ok(())
}

#[test]
fn a_managed_agent_without_pod_cidr_stops_at_once_when_the_server_allocates_none() -> anyhow::Result<()> {
    if skip_without_runtime("a_managed_agent_without_pod_cidr_stops_at_once_when_the_server_allocates_none")? {
        return Ok(());
    }
    // Only containerd's configuration is written (no containerd runs), but the directory is
    // the agent tests' kind of state: keep to their lock anyway.
    let _exclusive = RuntimeExclusive::acquire()?;
    let dir = tempfile::Builder::new().prefix("rkube-ipam-off-e2e-").tempdir()?;
    let root = dir.path().join("agent");
    let cluster = TestCluster::start_with(&[
        "--agent-root-dir",
        &root.to_string_lossy(),
        "--registry-hosts-dir",
        &dir.path().join("certs.d").to_string_lossy(),
        "--allocate-node-cidrs=false",
        "--agent-port",
        "0",
        "--node-name",
        "ipam-off-e2e",
    ])?;
    let want = "needs a pod CIDR, but the server does not assign them (--allocate-node-cidrs=false or --disable=nodeipam): give --pod-cidr";
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !cluster.log().contains(want) {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(cluster.log().contains(want), "{}", cluster.log());
    // No Node was registered and no containerd started.
    let k = cluster.kubectl();
    assert_eq!(k.ok(&["get", "nodes", "-o", "name"])?, "");
    assert!(!root.join("containerd/containerd.pid").exists());
    Ok(())
}
