//! The scheduler, simulated nodes and the node lifecycle controller: `rkube server` plus
//! `rkube sim` processes, driven with the real kubectl.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::Value;

/// A running `rkube sim`, killed on drop.
pub(crate) struct Sim(Child);

impl Sim {
    pub(crate) fn start(cluster: &TestCluster, args: &[&str]) -> Sim {
        let bin = rkube_testkit::rkube_binary().unwrap();
        let log = std::fs::File::create(cluster.data_dir().join(format!("sim-{}.log", args.join("_").replace(['/', '=', ':', ','], "-"))))
            .unwrap();
        let child = Command::new(bin)
            .arg("sim")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Sim(child)
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn start(args: &[&str]) -> TestCluster {
    TestCluster::start_with(args).unwrap_or_else(|e| panic!("starting rkube: {e:#}"))
}

/// Polls `f` until it returns Some or the deadline passes.
pub(crate) fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn wait_nodes_ready(k: &Kubectl, count: usize) {
    wait_for(&format!("{count} Ready nodes"), Duration::from_secs(30), || {
        let nodes = k.json(&["get", "nodes", "-o", "json"]).ok()?;
        let ready = nodes["items"]
            .as_array()?
            .iter()
            .filter(|n| {
                n["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
            })
            .count();
        (ready >= count).then_some(())
    });
}

fn pod(k: &Kubectl, name: &str) -> Value {
    k.json(&["get", "pod", name, "-o", "json"]).unwrap()
}

fn wait_scheduled(k: &Kubectl, name: &str) -> String {
    wait_for(&format!("pod {name} scheduled"), Duration::from_secs(30), || pod(k, name)["spec"]["nodeName"].as_str().map(str::to_string))
}

fn wait_phase(k: &Kubectl, name: &str, phase: &str) -> Value {
    wait_for(&format!("pod {name} {phase}"), Duration::from_secs(30), || {
        let p = pod(k, name);
        (p["status"]["phase"] == phase).then_some(p)
    })
}

/// The messages of events with `reason` about pod `name`.
fn events(k: &Kubectl, name: &str, reason: &str) -> Vec<String> {
    let ev = k.json(&["get", "events", "-o", "json"]).unwrap();
    ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn wait_event(k: &Kubectl, name: &str, reason: &str) -> String {
    wait_for(&format!("{reason} event for {name}"), Duration::from_secs(30), || events(k, name, reason).into_iter().last())
}

const AZ_AFFINITY_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: NAME
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: kubernetes.io/e2e-az-name
            operator: In
            values:
            - e2e-az1
            - e2e-az2
  containers:
  - name: with-node-affinity
    image: registry.k8s.io/pause:2.0
"#;

#[test]
fn node_affinity_places_pods_in_the_requested_zones() {
    let c = start(&[]);
    let k = c.kubectl();
    let _a = Sim::start(&c, &["--nodes", "1", "--name-prefix", "az1", "--labels", "kubernetes.io/e2e-az-name=e2e-az1"]);
    let _b = Sim::start(&c, &["--nodes", "1", "--name-prefix", "az2", "--labels", "kubernetes.io/e2e-az-name=e2e-az2"]);
    let _c = Sim::start(&c, &["--nodes", "2", "--name-prefix", "az3", "--labels", "kubernetes.io/e2e-az-name=e2e-az3"]);
    wait_nodes_ready(&k, 4);
    for i in 0..4 {
        let name = format!("with-node-affinity-{i}");
        k.ok_stdin(&["apply", "-f", "-"], &AZ_AFFINITY_POD.replace("NAME", &name)).unwrap();
    }
    for i in 0..4 {
        let name = format!("with-node-affinity-{i}");
        let node = wait_scheduled(&k, &name);
        assert!(node == "az1-0" || node == "az2-0", "{name} went to {node}");
        assert_eq!(wait_event(&k, &name, "Scheduled"), format!("Successfully assigned default/{name} to {node}"));
        let running = wait_phase(&k, &name, "Running");
        assert!(running["status"]["podIP"].as_str().is_some_and(|ip| ip.starts_with("10.")), "{running}");
    }
}

#[test]
fn pod_anti_affinity_on_a_zone_topology_key() {
    let c = start(&[]);
    let k = c.kubectl();
    let _a = Sim::start(&c, &["--nodes", "2", "--name-prefix", "zone-a", "--labels", "topology.kubernetes.io/zone=a"]);
    let _b = Sim::start(&c, &["--nodes", "2", "--name-prefix", "zone-b", "--labels", "topology.kubernetes.io/zone=b"]);
    wait_nodes_ready(&k, 4);
    let manifest = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: web\nspec:\n  affinity:\n    podAntiAffinity:\n      \
             requiredDuringSchedulingIgnoredDuringExecution:\n      - labelSelector:\n          matchLabels:\n            app: web\n        \
             topologyKey: topology.kubernetes.io/zone\n  containers:\n  - name: web\n    image: nginx\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &manifest("web-0")).unwrap();
    let first = wait_scheduled(&k, "web-0");
    k.ok_stdin(&["apply", "-f", "-"], &manifest("web-1")).unwrap();
    let second = wait_scheduled(&k, "web-1");
    let zone = |node: &str| node.split('-').nth(1).unwrap_or("").to_string();
    assert_ne!(zone(&first), zone(&second), "web-0 on {first}, web-1 on {second}");

    k.ok_stdin(&["apply", "-f", "-"], &manifest("web-2")).unwrap();
    let msg = wait_event(&k, "web-2", "FailedScheduling");
    assert_eq!(
        msg,
        "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules. preemption: 0/4 nodes are available: \
         4 No preemption victims found for incoming pod."
    );
    let p = pod(&k, "web-2");
    assert_eq!(p["status"]["phase"], "Pending");
    let cond = p["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").unwrap().clone();
    assert_eq!(cond["status"], "False");
    assert_eq!(cond["reason"], "Unschedulable");
}

#[test]
fn no_schedule_taint_with_and_without_toleration() {
    let c = start(&[]);
    let k = c.kubectl();
    let _s = Sim::start(&c, &["--nodes", "1", "--name-prefix", "infra", "--taints", "dedicated=infra:NoSchedule"]);
    wait_nodes_ready(&k, 1);
    k.ok(&["run", "plain", "--image=nginx"]).unwrap();
    let msg = wait_event(&k, "plain", "FailedScheduling");
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}. preemption: 0/1 nodes are available: \
         1 Preemption is not helpful for scheduling."
    );
    // kubectl get events shows the same text.
    let table = k.ok(&["get", "events", "-o", "custom-columns=REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message"]).unwrap();
    assert!(table.lines().any(|l| l.starts_with("FailedScheduling") && l.contains("plain") && l.contains(&msg)), "{table}");

    let tolerant = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tolerant\nspec:\n  tolerations:\n  - key: dedicated\n    operator: Equal\n    \
                    value: infra\n    effect: NoSchedule\n  containers:\n  - name: c\n    image: nginx\n";
    k.ok_stdin(&["apply", "-f", "-"], tolerant).unwrap();
    assert_eq!(wait_scheduled(&k, "tolerant"), "infra-0");
    wait_phase(&k, "tolerant", "Running");
    assert_eq!(pod(&k, "plain")["status"]["phase"], "Pending");
}

#[test]
fn high_priority_pod_preempts_a_lower_one() {
    let c = start(&[]);
    let k = c.kubectl();
    let _s = Sim::start(&c, &["--nodes", "1", "--name-prefix", "small", "--cpu", "1", "--memory", "2Gi"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\n")
        .unwrap();
    let manifest = |name: &str, class: &str| {
        let class = if class.is_empty() { String::new() } else { format!("  priorityClassName: {class}\n") };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{class}  containers:\n  - name: c\n    image: nginx\n    \
             resources:\n      requests:\n        cpu: 700m\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &manifest("low", "")).unwrap();
    wait_phase(&k, "low", "Running");
    let low_uid = pod(&k, "low")["metadata"]["uid"].as_str().unwrap().to_string();
    k.ok_stdin(&["apply", "-f", "-"], &manifest("important", "high")).unwrap();
    assert_eq!(wait_scheduled(&k, "important"), "small-0");
    wait_phase(&k, "important", "Running");
    // The victim is gone (the simulated kubelet deletes it at once) and was told why.
    wait_for("low deleted", Duration::from_secs(30), || {
        let out = k.run(&["get", "pod", "low", "-o", "json"]).ok()?;
        (!out.success || !out.stdout.contains(&low_uid)).then_some(())
    });
    let preempted = events(&k, "low", "Preempted");
    let important_uid = pod(&k, "important")["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(preempted, vec![format!("Preempted by pod {important_uid} on node small-0")]);
}

#[test]
fn pod_runs_then_succeeds_on_a_simulated_node() {
    let c = start(&[]);
    let k = c.kubectl();
    let _s = Sim::start(&c, &["--nodes", "2", "--name-prefix", "worker", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 2);
    let node = k.json(&["get", "node", "worker-0", "-o", "json"]).unwrap();
    assert_eq!(node["status"]["nodeInfo"]["osImage"], "rkube simulated node (no containers run)");
    assert_eq!(node["status"]["allocatable"]["cpu"], "4");
    assert!(k.json(&["get", "lease", "worker-0", "-n", "kube-node-lease", "-o", "json"]).unwrap()["spec"]["renewTime"].is_string());

    k.ok(&["run", "once", "--image=busybox", "--restart=Never"]).unwrap();
    let running = wait_phase(&k, "once", "Running");
    assert_eq!(running["status"]["containerStatuses"][0]["ready"], true);
    assert!(running["status"]["startTime"].is_string());
    let done = wait_phase(&k, "once", "Succeeded");
    assert_eq!(done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 0);
    assert_eq!(done["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");

    k.ok(&["run", "crash", "--image=busybox", "--restart=Never", "--annotations=sim.rkube.io/exit-code=3"]).unwrap();
    let failed = wait_phase(&k, "crash", "Failed");
    assert_eq!(failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 3);
    assert_eq!(failed["status"]["containerStatuses"][0]["state"]["terminated"]["reason"], "Error");

    // Graceful deletion: the simulated kubelet removes the pod promptly.
    k.ok(&["run", "server", "--image=nginx"]).unwrap();
    wait_phase(&k, "server", "Running");
    k.ok(&["delete", "pod", "server", "--wait=false"]).unwrap();
    wait_for("server pod gone", Duration::from_secs(20), || (!k.run(&["get", "pod", "server"]).ok()?.success).then_some(()));
}

#[test]
fn stopped_simulator_nodes_become_not_ready_and_pods_are_evicted() {
    let c = start(&["--node-monitor-grace-period", "3s"]);
    let k = c.kubectl();
    let mut doomed = Sim::start(&c, &["--nodes", "1", "--name-prefix", "doomed", "--heartbeat-interval", "500ms"]);
    let _healthy = Sim::start(&c, &["--nodes", "1", "--name-prefix", "healthy", "--heartbeat-interval", "500ms"]);
    wait_nodes_ready(&k, 2);
    let on_doomed = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  nodeSelector:\n    kubernetes.io/hostname: doomed-0\n  tolerations:\n  - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 0}}\n  - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 0}}\n  containers:\n  - name: c\n    image: nginx\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &on_doomed("victim")).unwrap();
    wait_phase(&k, "victim", "Running");
    doomed.stop();

    let ready = wait_for("doomed-0 Ready=Unknown", Duration::from_secs(30), || {
        let n = k.json(&["get", "node", "doomed-0", "-o", "json"]).ok()?;
        let c = n["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        (c["status"] == "Unknown").then_some(c)
    });
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    // The taints follow the condition in a separate write.
    let taints: Vec<(String, String)> = wait_for("doomed-0 unreachable taints", Duration::from_secs(30), || {
        let n = k.json(&["get", "node", "doomed-0", "-o", "json"]).ok()?;
        let taints: Vec<(String, String)> = n["spec"]["taints"]
            .as_array()?
            .iter()
            .map(|t| (t["key"].as_str().unwrap_or_default().to_string(), t["effect"].as_str().unwrap_or_default().to_string()))
            .collect();
        (taints.len() >= 2).then_some(taints)
    });
    assert!(taints.contains(&("node.kubernetes.io/unreachable".into(), "NoExecute".into())), "{taints:?}");
    assert!(taints.contains(&("node.kubernetes.io/unreachable".into(), "NoSchedule".into())), "{taints:?}");

    // The pod tolerates the taints for 0 s (instead of DefaultTolerationSeconds' 300 s): it is
    // evicted right away (it stays Terminating, as upstream, because no kubelet confirms it).
    wait_for("victim evicted", Duration::from_secs(30), || {
        let out = k.run(&["get", "pod", "victim", "-o", "json"]).ok()?;
        if !out.success {
            return Some(());
        }
        let p: Value = serde_json::from_str(&out.stdout).ok()?;
        p["metadata"]["deletionTimestamp"].is_string().then_some(())
    });
    assert_eq!(events(&k, "victim", "TaintManagerEviction"), vec!["Marking for deletion Pod default/victim".to_string()]);

    // The healthy node stays Ready and new pods go there.
    k.ok(&["run", "after", "--image=nginx"]).unwrap();
    assert_eq!(wait_scheduled(&k, "after"), "healthy-0");
}

#[test]
fn pressure_conditions_become_no_schedule_taints() {
    let c = start(&["--node-monitor-grace-period", "300s"]);
    let k = c.kubectl();
    k.ok_stdin(&["create", "-f", "-"], "apiVersion: v1\nkind: Node\nmetadata:\n  name: squeezed\n  labels:\n    kubernetes.io/hostname: squeezed\n").unwrap();
    let set_disk_pressure = |status: &str| {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let patch = serde_json::json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": status, "reason": "KubeletHasDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now}
        ], "allocatable": {"cpu": "2", "memory": "1Gi", "pods": "10"}, "capacity": {"cpu": "2", "memory": "1Gi", "pods": "10"}}});
        k.ok(&["patch", "node", "squeezed", "--subresource=status", "--type=strategic", "-p", &patch.to_string()]).unwrap();
    };
    let taints = || -> Vec<(String, String)> {
        k.json(&["get", "node", "squeezed", "-o", "json"]).ok().and_then(|n| {
            n["spec"]["taints"].as_array().map(|ts| {
                ts.iter()
                    .map(|t| (t["key"].as_str().unwrap_or_default().to_string(), t["effect"].as_str().unwrap_or_default().to_string()))
                    .collect()
            })
        })
        .unwrap_or_default()
    };
    set_disk_pressure("True");
    wait_for("the disk-pressure taint", Duration::from_secs(30), || {
        taints().contains(&("node.kubernetes.io/disk-pressure".into(), "NoSchedule".into())).then_some(())
    });
    // A pod that does not tolerate it stays Pending.
    k.ok(&["run", "plain", "--image=nginx"]).unwrap();
    let message = wait_for("plain unschedulable", Duration::from_secs(30), || {
        let p = k.json(&["get", "pod", "plain", "-o", "json"]).ok()?;
        let c = p["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "PodScheduled")?.clone();
        (c["reason"] == "Unschedulable").then(|| c["message"].as_str().unwrap_or_default().to_string())
    });
    assert!(message.contains("node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }"), "{message}");
    // Relieved, the taint goes and the pod is scheduled.
    set_disk_pressure("False");
    wait_for("the taint removed", Duration::from_secs(30), || {
        (!taints().iter().any(|(key, _)| key == "node.kubernetes.io/disk-pressure")).then_some(())
    });
    assert_eq!(wait_scheduled(&k, "plain"), "squeezed");
}
