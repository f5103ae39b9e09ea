//! Static pods: manifests in the agent's `--pod-manifest-path` (default
//! `<agent-root-dir>/pod-manifests`) run as containers without the API server and appear in
//! it as mirror pods `<name>-<node>`; deleting a mirror only recreates it, editing the file
//! replaces the pod, removing it stops the pod. Real containerd, as the other agent tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::json;

use crate::agent::{RuntimeEnv, StandaloneAgent, skip_without_runtime};

const NODE: &str = "agent-e2e";
const READY: &str = "{.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}";
/// What shows that a container is the same one: its ID, start time and restarts.
const CONTAINER_IDENTITY: &str = "{.status.containerStatuses[0].containerID} {.status.containerStatuses[0].state.running.startedAt} {.status.containerStatuses[0].restartCount}";

/// A static pod whose container writes a heartbeat (nanoseconds) to `<beats>/<version>` on
/// the host, so the test sees whether it runs without asking the API or the runtime.
fn manifest(image: &str, name: &str, version: &str, beats: &Path) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [{
                "name": "app", "image": image,
                "env": [{"name": "VERSION", "value": version}],
                "command": ["sh", "-c", "trap 'exit 0' TERM; echo started $VERSION; while true; do date +%s%N > /beats/$VERSION; sleep 0.2; done"],
                "volumeMounts": [{"name": "beats", "mountPath": "/beats"}],
            }],
            "volumes": [{"name": "beats", "hostPath": {"path": beats, "type": "DirectoryOrCreate"}}],
        },
    })
    .to_string()
}

/// Writes a manifest at once (through a dotfile the agent skips, then a rename), so the agent
/// never reads half of it.
fn write_manifest(dir: &Path, file: &str, text: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{file}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, dir.join(file))?;
    Ok(())
}

/// Whether the heartbeat file changes within two seconds.
fn beating(file: &Path) -> bool {
    let first = std::fs::read_to_string(file).unwrap_or_default();
    std::thread::sleep(Duration::from_secs(2));
    let second = std::fs::read_to_string(file).unwrap_or_default();
    !second.is_empty() && first != second
}

/// `jsonpath` of the pod, or `None` while it does not exist.
fn get(k: &Kubectl, pod: &str, jsonpath: &str) -> anyhow::Result<Option<String>> {
    let out = k.run(&["get", "pod", pod, "-o", &format!("jsonpath={jsonpath}")])?;
    if out.success {
        return Ok(Some(out.stdout));
    }
    anyhow::ensure!(
        out.stderr.contains("not found"),
        "kubectl get pod {pod}: {}",
        out.stderr
    );
    Ok(None)
}

/// Waits until `check` holds for the pod's `jsonpath` (`None`: the pod does not exist).
fn wait_until(
    k: &Kubectl,
    pod: &str,
    jsonpath: &str,
    what: &str,
    check: impl Fn(Option<&str>) -> bool,
    log: impl Fn() -> String,
) -> anyhow::Result<Option<String>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let value = get(k, pod, jsonpath)?;
        if check(value.as_deref()) {
            return Ok(value);
        }
        if Instant::now() > deadline {
            let dump = k.ok(&["get", "pods", "-o", "yaml"]).unwrap_or_default();
            anyhow::bail!(
                "pod {pod}: {jsonpath} is {value:?}, waiting for {what}\n{dump}\n{}",
                log()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn static_pods_run_from_manifests_with_mirror_pods_in_the_api() -> anyhow::Result<()> {
    if skip_without_runtime("static_pods_run_from_manifests_with_mirror_pods_in_the_api")? {
        return Ok(());
    }
    let env = RuntimeEnv::start()?;
    let mut cluster = env.cluster()?;
    let k = cluster.kubectl();
    let image = env.image();
    let manifests = env.dir.path().join("agent/pod-manifests");
    let beats = env.dir.path().join("beats");
    let web = format!("web-{NODE}");

    // A manifest becomes a running static pod, seen in the API as its mirror pod.
    write_manifest(
        &manifests,
        "web.yaml",
        &manifest(&image, "web", "one", &beats),
    )?;
    wait_until(
        &k,
        &web,
        READY,
        "Running True",
        |v| v == Some("Running True"),
        || cluster.log(),
    )?;
    let pod = k.json(&["get", "pod", &web, "-o", "json"])?;
    let annotations = &pod["metadata"]["annotations"];
    let hash = annotations["kubernetes.io/config.hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(hash.len(), 32, "{pod:#}");
    assert_eq!(
        annotations["kubernetes.io/config.mirror"],
        hash.as_str(),
        "{pod:#}"
    );
    assert_eq!(
        annotations["kubernetes.io/config.source"], "file",
        "{pod:#}"
    );
    assert!(
        annotations["kubernetes.io/config.seen"].is_string(),
        "{pod:#}"
    );
    // The API server gave the mirror a UID of its own.
    assert_ne!(pod["metadata"]["uid"], hash.as_str());
    let node_uid = k.ok(&["get", "node", NODE, "-o", "jsonpath={.metadata.uid}"])?;
    assert_eq!(
        pod["metadata"]["ownerReferences"],
        json!([{"apiVersion": "v1", "kind": "Node", "name": NODE, "uid": node_uid, "controller": true}])
    );
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert_eq!(pod["spec"]["nodeName"], NODE);
    assert!(
        pod["spec"]["tolerations"]
            .as_array()
            .is_some_and(|t| t.contains(&json!({"operator": "Exists", "effect": "NoExecute"}))),
        "{pod:#}"
    );
    // No service account or API token for a mirror pod.
    assert!(pod["spec"]["serviceAccountName"].is_null(), "{pod:#}");
    assert_eq!(
        pod["spec"]["volumes"].as_array().map(Vec::len),
        Some(1),
        "{pod:#}"
    );
    assert!(
        beating(&beats.join("one")),
        "the static pod's container is not running"
    );

    // The mirror pod is not run a second time: the only pod log directory of that name is
    // the static pod's (its UID is the config hash).
    let runs: Vec<String> = std::fs::read_dir(env.dir.path().join("pods"))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("default_{web}_")))
        .collect();
    assert_eq!(runs, [format!("default_{web}_{hash}")]);

    // kubectl logs and exec reach the static pod's container through its mirror.
    assert_eq!(k.ok(&["logs", &web])?.trim(), "started one");
    assert_eq!(
        k.ok(&["exec", &web, "--", "sh", "-c", "echo $VERSION"])?
            .trim(),
        "one"
    );

    // Nobody changes what a pod mirrors.
    let refused = k.fails(&[
        "annotate",
        "pod",
        &web,
        "kubernetes.io/config.mirror=tampered",
        "--overwrite",
    ])?;
    assert!(
        refused.contains("metadata.annotations[kubernetes.io/config.mirror]: Forbidden: may not remove or update mirror pod annotation"),
        "{refused}"
    );

    // Deleting the mirror pod deletes only the mirror: it comes back (a new object) and the
    // container was not restarted.
    let first_uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let before = k.ok(&[
        "get",
        "pod",
        &web,
        "-o",
        &format!("jsonpath={CONTAINER_IDENTITY}"),
    ])?;
    assert!(
        before.starts_with("containerd://") && before.ends_with(" 0"),
        "{before}"
    );
    k.ok(&["delete", "pod", &web, "--wait=true", "--timeout=60s"])?;
    wait_until(
        &k,
        &web,
        "{.metadata.uid}",
        "a new mirror pod",
        |v| v.is_some_and(|uid| !uid.is_empty() && uid != first_uid),
        || cluster.log(),
    )?;
    let after = wait_until(
        &k,
        &web,
        CONTAINER_IDENTITY,
        "the container's status",
        |v| v.is_some_and(|s| s.starts_with("containerd://")),
        || cluster.log(),
    )?;
    assert_eq!(
        after.as_deref(),
        Some(before.as_str()),
        "the container was restarted"
    );
    assert_eq!(get(&k, &web, READY)?.as_deref(), Some("Running True"));

    // A malformed manifest is reported and skipped; the other static pods are unaffected.
    write_manifest(
        &manifests,
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: [oops\n",
    )?;
    write_manifest(
        &manifests,
        "other.json",
        &manifest(&image, "other", "other", &beats),
    )?;
    let other = format!("other-{NODE}");
    wait_until(
        &k,
        &other,
        READY,
        "Running True",
        |v| v == Some("Running True"),
        || cluster.log(),
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.log().contains("could not process manifest file") {
        anyhow::ensure!(
            Instant::now() < deadline,
            "no error about broken.yaml\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(cluster.log().contains("broken.yaml"));
    assert_eq!(
        get(&k, &web, CONTAINER_IDENTITY)?.as_deref(),
        Some(before.as_str())
    );

    // The server and its agent restarted: the new agent adopts the running static pods and
    // keeps their mirrors.
    let mirror_uid = get(&k, &web, "{.metadata.uid}")?.unwrap_or_default();
    cluster.restart()?;
    let k = cluster.kubectl();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        get(&k, &web, CONTAINER_IDENTITY)?.as_deref(),
        Some(before.as_str()),
        "{}",
        cluster.log()
    );
    assert_eq!(
        get(&k, &web, "{.metadata.uid}")?.as_deref(),
        Some(mirror_uid.as_str())
    );
    assert!(
        beating(&beats.join("one")),
        "the static pod stopped with the agent"
    );

    // A changed manifest is a new pod: the old container stops, one with the new spec starts,
    // and the mirror is replaced.
    write_manifest(
        &manifests,
        "web.yaml",
        &manifest(&image, "web", "two", &beats),
    )?;
    wait_until(
        &k,
        &web,
        "{.spec.containers[0].env[0].value} {.status.phase} {.status.conditions[?(@.type==\"Ready\")].status}",
        "the new version running",
        |v| v == Some("two Running True"),
        || cluster.log(),
    )?;
    let replaced = k.json(&["get", "pod", &web, "-o", "json"])?;
    let new_hash = replaced["metadata"]["annotations"]["kubernetes.io/config.hash"]
        .as_str()
        .unwrap_or_default();
    assert_ne!(new_hash, hash);
    assert_eq!(
        replaced["metadata"]["annotations"]["kubernetes.io/config.mirror"],
        new_hash
    );
    let new_container = replaced["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !new_container.is_empty() && !before.starts_with(new_container),
        "{replaced:#}"
    );
    assert_eq!(
        k.ok(&["exec", &web, "--", "sh", "-c", "echo $VERSION"])?
            .trim(),
        "two"
    );
    assert!(!beating(&beats.join("one")), "the old version still runs");
    assert!(beating(&beats.join("two")), "the new version does not run");

    // A removed manifest: the pod stops and its mirror goes.
    std::fs::remove_file(manifests.join("web.yaml"))?;
    wait_until(
        &k,
        &web,
        "{.metadata.name}",
        "the mirror pod gone",
        |v| v.is_none(),
        || cluster.log(),
    )?;
    assert!(
        !beating(&beats.join("two")),
        "the removed static pod still runs"
    );
    assert_eq!(get(&k, &other, READY)?.as_deref(), Some("Running True"));
    assert!(beating(&beats.join("other")));

    std::fs::remove_file(manifests.join("other.json"))?;
    wait_until(
        &k,
        &other,
        "{.metadata.name}",
        "the mirror pod gone",
        |v| v.is_none(),
        || cluster.log(),
    )?;
    drop(cluster);
    Ok(())
}

/// Forwards connections to `listen` on to `target` from now on (the API server coming back).
fn forward(listen: SocketAddr, target: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)?;
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(target) else {
                continue;
            };
            let (Ok(mut client_reader), Ok(mut server_reader)) =
                (client.try_clone(), server.try_clone())
            else {
                continue;
            };
            let (mut client_writer, mut server_writer) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_reader, &mut server_writer);
                let _ = server_writer.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_reader, &mut client_writer);
                let _ = client_writer.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    Ok(())
}

#[test]
fn a_static_pod_starts_while_the_api_server_is_unreachable() -> anyhow::Result<()> {
    if skip_without_runtime("a_static_pod_starts_while_the_api_server_is_unreachable")? {
        return Ok(());
    }
    const OFFLINE_NODE: &str = "offline-e2e";
    let env = RuntimeEnv::start()?;
    let cluster = TestCluster::start()?;
    let k = cluster.kubectl();
    let token = std::fs::read_to_string(cluster.data_dir().join("node-token"))?
        .trim()
        .to_string();
    let node_ready = || {
        k.ok(&[
            "get",
            "node",
            OFFLINE_NODE,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ])
        .is_ok_and(|s| s == "True")
    };

    // The agent joins once (a node identity in its root directory), then stops; joining
    // needs cluster-info signed with the token first.
    let token_id = token.split('.').next().unwrap_or_default();
    crate::agent_join::wait_for_signed_cluster_info(&cluster, token_id)?;
    let joined = StandaloneAgent::start(&env, OFFLINE_NODE, &cluster.url, "offline", &["--token", &token], "offline-join.log")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !node_ready() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "node {OFFLINE_NODE} not Ready\n{}",
            joined.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(joined);

    // Started again towards an address where no API server answers yet, with a manifest.
    let unreachable: SocketAddr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let beats = env.dir.path().join("offline-beats");
    let manifests = env.dir.path().join("offline-agent/pod-manifests");
    write_manifest(
        &manifests,
        "web.yaml",
        &manifest(&env.image(), "web", "offline", &beats),
    )?;
    let agent = StandaloneAgent::start(&env, OFFLINE_NODE, &format!("https://{unreachable}"), "offline", &[], "offline-agent.log")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !beating(&beats.join("offline")) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the static pod did not start without the API server\n{}",
            agent.log()
        );
    }
    assert!(
        agent
            .log()
            .contains("registering the node with the API server; retrying"),
        "{}",
        agent.log()
    );

    // The API server becomes reachable: the node creates the mirror pod as itself (through
    // NodeRestriction) and reports the pod's status on it.
    let server: SocketAddr = cluster.url.trim_start_matches("https://").parse()?;
    forward(unreachable, server)?;
    let mirror = format!("web-{OFFLINE_NODE}");
    wait_until(
        &k,
        &mirror,
        READY,
        "Running True",
        |v| v == Some("Running True"),
        || agent.log(),
    )?;
    let node_uid = k.ok(&[
        "get",
        "node",
        OFFLINE_NODE,
        "-o",
        "jsonpath={.metadata.uid}",
    ])?;
    let owner = k.ok(&[
        "get",
        "pod",
        &mirror,
        "-o",
        "jsonpath={.metadata.ownerReferences[0].uid}",
    ])?;
    assert_eq!(owner, node_uid);
    assert_eq!(k.ok(&["logs", &mirror])?.trim(), "started offline");

    // The node deletes the mirror of a removed manifest itself.
    std::fs::remove_file(manifests.join("web.yaml"))?;
    wait_until(
        &k,
        &mirror,
        "{.metadata.name}",
        "the mirror pod gone",
        |v| v.is_none(),
        || agent.log(),
    )?;
    assert!(
        !beating(&beats.join("offline")),
        "the removed static pod still runs"
    );
    Ok(())
}
