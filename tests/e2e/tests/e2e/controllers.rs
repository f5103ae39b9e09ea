//! The controller manager seen through kubectl: Deployments and ReplicaSets, rollouts,
//! garbage collection with each propagation policy, namespace deletion, the per-namespace
//! ServiceAccount and CA ConfigMap, Endpoints and EndpointSlices, and `--disable`.
//!
//! Nothing runs pods yet (no scheduler or node agent here), so tests that need Ready pods write
//! pod status through the status subresource, as a kubelet would.

use std::time::{Duration, Instant};

use rkube_testkit::{Kubectl, TestCluster};
use serde_json::Value;

use crate::cluster;

/// Polls `check` until it returns `Some`, or fails after 30 s with `what`.
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn items(k: &Kubectl, args: &[&str]) -> Vec<Value> {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-o", "json"]);
    k.json(&full).map(|v| v["items"].as_array().cloned().unwrap_or_default()).unwrap_or_default()
}

fn names(list: &[Value]) -> Vec<String> {
    list.iter().map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string()).collect()
}

/// Marks every pod in `ns` Running and Ready with an IP, as a kubelet would.
fn make_pods_ready(k: &Kubectl, ns: &str) {
    for (i, pod) in items(k, &["-n", ns, "get", "pods"]).iter().enumerate() {
        let ready = pod["status"]["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        if ready || pod["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let ip = format!("10.42.0.{}", 10 + i);
        let patch = serde_json::json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
        let _ = k.run(&["-n", ns, "patch", "pod", name, "--subresource=status", "--type=merge", "-p", &patch.to_string()]);
    }
}

fn controller_owner(obj: &Value) -> Value {
    obj["metadata"]["ownerReferences"].as_array().and_then(|refs| refs.iter().find(|r| r["controller"] == true).cloned()).unwrap_or(Value::Null)
}

fn event_messages(k: &Kubectl, ns: &str, reason: &str) -> Vec<String> {
    items(k, &["-n", ns, "get", "events"])
        .iter()
        .filter(|e| e["reason"] == reason)
        .map(|e| format!("{} {}", e["source"]["component"].as_str().unwrap_or_default(), e["message"].as_str().unwrap_or_default()))
        .collect()
}

#[test]
fn deployment_creates_a_replicaset_and_pods_like_upstream() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx:1.25", "--replicas=3"]).unwrap();
    let rs = wait_for("a ReplicaSet", || items(&k, &["get", "rs"]).into_iter().next());
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    let hash = rs["metadata"]["labels"]["pod-template-hash"].as_str().unwrap().to_string();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert!(hash.chars().all(|ch| "bcdfghjklmnpqrstvwxz2456789".contains(ch)), "safe-encoded hash {hash}");
    assert_eq!(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash.as_str());
    assert_eq!(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    let owner = controller_owner(&rs);
    assert_eq!((owner["kind"].as_str(), owner["name"].as_str(), owner["blockOwnerDeletion"].as_bool()), (Some("Deployment"), Some("web"), Some(true)));

    let pods = wait_for("3 pods", || Some(items(&k, &["get", "pods"])).filter(|p| p.len() == 3));
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6, "pod name {name}");
        assert_eq!(pod["metadata"]["labels"]["pod-template-hash"], hash.as_str());
        assert_eq!(controller_owner(pod)["name"], rs_name.as_str());
        assert_eq!(controller_owner(pod)["kind"], "ReplicaSet");
    }
    let scaled = wait_for("ScalingReplicaSet event", || Some(event_messages(&k, "default", "ScalingReplicaSet")).filter(|e| !e.is_empty()));
    assert_eq!(scaled, [format!("deployment-controller Scaled up replica set {rs_name} from 0 to 3")]);
    let created = wait_for("SuccessfulCreate events", || Some(event_messages(&k, "default", "SuccessfulCreate")).filter(|e| e.len() == 3));
    for pod in names(&pods) {
        assert!(created.contains(&format!("replicaset-controller Created pod: {pod}")), "{created:?}");
    }
    let d = wait_for("deployment status", || k.json(&["get", "deploy", "web", "-o", "json"]).ok().filter(|d| d["status"]["replicas"] == 3));
    assert_eq!(d["status"]["updatedReplicas"], 3);
    assert_eq!(d["status"]["unavailableReplicas"], 3);
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "1");
    assert_eq!(d["metadata"]["generation"], 1, "the revision annotation is written through /status, as upstream");
    let available = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Available").unwrap().clone();
    assert_eq!((available["status"].as_str(), available["reason"].as_str()), (Some("False"), Some("MinimumReplicasUnavailable")));

    // Ready pods make the Deployment available.
    make_pods_ready(&k, "default");
    let d = wait_for("available replicas", || k.json(&["get", "deploy", "web", "-o", "json"]).ok().filter(|d| d["status"]["availableReplicas"] == 3));
    let progressing = d["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Progressing").unwrap().clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    assert_eq!(progressing["message"], format!("ReplicaSet \"{rs_name}\" has successfully progressed."));
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=20s"]).unwrap();
    assert!(out.contains("successfully rolled out"), "{out}");

    // Scaling down deletes pods (kubectl scale needs the scale subresource; patch spec instead).
    k.ok(&["patch", "deployment", "web", "--type=merge", "-p", r#"{"spec":{"replicas":1}}"#]).unwrap();
    wait_for("1 pod left", || Some(items(&k, &["get", "pods"])).filter(|p| p.len() == 1));
    let deleted = wait_for("SuccessfulDelete events", || Some(event_messages(&k, "default", "SuccessfulDelete")).filter(|e| e.len() == 2));
    assert!(deleted.iter().all(|m| m.starts_with("replicaset-controller Deleted pod: web-")), "{deleted:?}");
}

#[test]
fn set_image_rolls_out_and_undo_goes_back() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx:1.25", "--replicas=2"]).unwrap();
    wait_for("2 pods", || Some(items(&k, &["get", "pods"])).filter(|p| p.len() == 2));
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]).unwrap();

    // Play kubelet until the rollout finishes: new pods become Ready, old ones go.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kubelet = {
        let k = c.kubectl();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                make_pods_ready(&k, "default");
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    let status = k.run(&["rollout", "status", "deployment/web", "--timeout=60s"]).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    kubelet.join().unwrap();
    assert!(status.success && status.stdout.contains("successfully rolled out"), "{}\n{}", status.stdout, status.stderr);

    let sets = items(&k, &["get", "rs"]);
    assert_eq!(sets.len(), 2);
    let revision = |rs: &Value| rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"].as_str().unwrap_or_default().to_string();
    let old = sets.iter().find(|rs| revision(rs) == "1").expect("revision 1");
    let new = sets.iter().find(|rs| revision(rs) == "2").expect("revision 2");
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(new["spec"]["replicas"], 2);
    let pods = items(&k, &["get", "pods"]);
    assert!(pods.iter().all(|p| p["spec"]["containers"][0]["image"] == "nginx:1.26"), "only new pods remain");

    let history = k.ok(&["rollout", "history", "deployment/web"]).unwrap();
    let revisions: Vec<&str> = history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["1", "2"], "{history}");

    k.ok(&["rollout", "undo", "deployment/web"]).unwrap();
    let back = wait_for("revision 3 on the first ReplicaSet", || {
        items(&k, &["get", "rs"]).into_iter().find(|rs| rs["metadata"]["name"] == old["metadata"]["name"] && revision(rs) == "3")
    });
    assert_eq!(back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"], "1");
    let d = k.json(&["get", "deploy", "web", "-o", "json"]).unwrap();
    assert_eq!(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.25");
    let history = k.ok(&["rollout", "history", "deployment/web"]).unwrap();
    let revisions: Vec<&str> = history.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| w.parse::<u32>().is_ok()).collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
}

#[test]
fn pause_and_resume_are_reported_in_the_progressing_condition() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx:1.25"]).unwrap();
    wait_for("a ReplicaSet", || items(&k, &["get", "rs"]).into_iter().next());
    k.ok(&["rollout", "pause", "deployment/web"]).unwrap();
    let reason = |k: &Kubectl| {
        k.json(&["get", "deploy", "web", "-o", "json"]).ok().and_then(|d| {
            d["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == "Progressing").map(|c| c["reason"].as_str().unwrap_or_default().to_string())
        })
    };
    wait_for("DeploymentPaused", || reason(&k).filter(|r| r == "DeploymentPaused"));
    k.ok(&["set", "image", "deployment/web", "nginx=nginx:1.26"]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(items(&k, &["get", "rs"]).len(), 1, "a paused Deployment does not roll out");
    k.ok(&["rollout", "resume", "deployment/web"]).unwrap();
    wait_for("a second ReplicaSet after resume", || Some(items(&k, &["get", "rs"])).filter(|s| s.len() == 2));
}

#[test]
fn deleting_a_deployment_cascades_by_policy() {
    let c = cluster();
    let k = c.kubectl();
    // Background (kubectl's default): ReplicaSet and pods go.
    k.ok(&["create", "deployment", "bg", "--image=nginx", "--replicas=2"]).unwrap();
    wait_for("bg pods", || Some(items(&k, &["get", "pods"])).filter(|p| p.len() == 2));
    k.ok(&["delete", "deployment", "bg"]).unwrap();
    wait_for("bg ReplicaSet and pods gone", || Some(()).filter(|()| items(&k, &["get", "rs"]).is_empty() && items(&k, &["get", "pods"]).is_empty()));

    // Orphan: dependents stay, without the owner reference.
    k.ok(&["create", "deployment", "orphan", "--image=nginx", "--replicas=2"]).unwrap();
    wait_for("orphan pods", || Some(items(&k, &["get", "pods"])).filter(|p| p.len() == 2));
    k.ok(&["delete", "deployment", "orphan", "--cascade=orphan"]).unwrap();
    wait_for("deployment gone", || Some(()).filter(|()| k.fails(&["get", "deployment", "orphan"]).is_ok()));
    let sets = items(&k, &["get", "rs"]);
    assert_eq!(sets.len(), 1);
    assert!(sets[0]["metadata"]["ownerReferences"].is_null(), "owner reference removed: {}", sets[0]["metadata"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(items(&k, &["get", "pods"]).len(), 2, "pods stay with their ReplicaSet");
    k.ok(&["delete", "rs", "--all"]).unwrap();
    wait_for("orphaned set's pods gone", || Some(()).filter(|()| items(&k, &["get", "pods"]).is_empty()));

    // Foreground: the owner waits, with foregroundDeletion, until its dependents are gone.
    k.ok(&["create", "deployment", "fg", "--image=nginx", "--replicas=1"]).unwrap();
    let rs = wait_for("fg ReplicaSet", || items(&k, &["get", "rs"]).into_iter().next());
    let rs_name = rs["metadata"]["name"].as_str().unwrap().to_string();
    k.ok(&["patch", "rs", &rs_name, "--type=merge", "-p", r#"{"metadata":{"finalizers":["example.com/hold"]}}"#]).unwrap();
    k.ok(&["delete", "deployment", "fg", "--cascade=foreground", "--wait=false"]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let held = k.json(&["get", "deployment", "fg", "-o", "json"]).unwrap();
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(held["metadata"]["finalizers"], serde_json::json!(["foregroundDeletion"]));
    let rs_now = k.json(&["get", "rs", &rs_name, "-o", "json"]).unwrap();
    assert!(rs_now["metadata"]["deletionTimestamp"].is_string(), "the dependent is being deleted");
    k.ok(&["patch", "rs", &rs_name, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).unwrap();
    wait_for("fg Deployment gone", || Some(()).filter(|()| k.fails(&["get", "deployment", "fg"]).is_ok()));
    assert!(items(&k, &["get", "pods"]).is_empty());
}

#[test]
fn namespaces_get_defaults_and_deleting_one_removes_its_content() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "namespace", "team"]).unwrap();
    wait_for("default ServiceAccount", || k.ok(&["-n", "team", "get", "serviceaccount", "default"]).ok());
    let cm = wait_for("kube-root-ca.crt", || k.json(&["-n", "team", "get", "configmap", "kube-root-ca.crt", "-o", "json"]).ok());
    assert!(cm["data"]["ca.crt"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    // Deleted, they come back.
    k.ok(&["-n", "team", "delete", "serviceaccount", "default"]).unwrap();
    wait_for("default ServiceAccount again", || k.ok(&["-n", "team", "get", "serviceaccount", "default"]).ok());

    k.ok(&["-n", "team", "create", "deployment", "web", "--image=nginx", "--replicas=2"]).unwrap();
    k.ok(&["-n", "team", "create", "configmap", "cfg", "--from-literal=a=b"]).unwrap();
    k.ok(&["-n", "team", "create", "service", "clusterip", "web", "--tcp=80:80"]).unwrap();
    wait_for("pods", || Some(items(&k, &["-n", "team", "get", "pods"])).filter(|p| p.len() == 2));
    k.ok(&["delete", "namespace", "team", "--timeout=30s"]).unwrap();
    wait_for("namespace gone", || Some(()).filter(|()| k.fails(&["get", "namespace", "team"]).is_ok()));
}

#[test]
fn service_endpoints_follow_pod_readiness() {
    let c = cluster();
    let k = c.kubectl();
    let manifest = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: web}}
spec:
  containers: [{name: web, image: nginx, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {tier: front}}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#;
    k.ok_stdin(&["apply", "-f", "-"], manifest).unwrap();
    let slice = wait_for("an EndpointSlice", || items(&k, &["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]).into_iter().next());
    assert_eq!(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], "endpointslice-controller.k8s.io");
    assert_eq!(slice["metadata"]["labels"]["tier"], "front");
    assert_eq!(controller_owner(&slice)["kind"], "Service");
    assert!(slice["endpoints"].as_array().is_none_or(Vec::is_empty), "no IP yet: {slice}");

    make_pods_ready(&k, "default");
    let ep = wait_for("a ready address", || k.json(&["get", "endpoints", "web", "-o", "json"]).ok().filter(|e| e["subsets"][0]["addresses"].is_array()));
    let subset = &ep["subsets"][0];
    assert_eq!(subset["addresses"][0]["ip"], "10.42.0.10");
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "web-0");
    assert_eq!(subset["ports"][0]["port"], 8080, "named targetPort resolved from the container");
    assert_eq!(subset["ports"][0]["name"], "http");
    let slice = wait_for("a ready endpoint", || {
        items(&k, &["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]).into_iter().find(|s| s["endpoints"][0]["conditions"]["ready"] == true)
    });
    assert_eq!(slice["endpoints"][0]["addresses"], serde_json::json!(["10.42.0.10"]));
    assert_eq!(slice["ports"][0]["port"], 8080);
    assert_eq!(slice["addressType"], "IPv4");

    // Not ready any more: the address moves to notReadyAddresses.
    let unready = r#"{"status":{"conditions":[{"type":"Ready","status":"False","lastTransitionTime":"2024-01-01T00:01:00Z"}]}}"#;
    k.ok(&["patch", "pod", "web-0", "--subresource=status", "--type=merge", "-p", unready]).unwrap();
    wait_for("a not-ready address", || k.json(&["get", "endpoints", "web", "-o", "json"]).ok().filter(|e| e["subsets"][0]["notReadyAddresses"].is_array()));

    k.ok(&["delete", "service", "web"]).unwrap();
    wait_for("Endpoints and slices gone with the Service", || {
        Some(()).filter(|()| k.fails(&["get", "endpoints", "web"]).is_ok() && items(&k, &["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]).is_empty())
    });
}

#[test]
fn disabled_controllers_do_not_act() {
    let c = TestCluster::start_with(&["--disable=deployment"]).expect("starting rkube");
    let k = c.kubectl();
    k.ok(&["create", "namespace", "x"]).unwrap();
    // Other controllers still run.
    wait_for("default ServiceAccount", || k.ok(&["-n", "x", "get", "serviceaccount", "default"]).ok());
    k.ok(&["create", "deployment", "web", "--image=nginx"]).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(items(&k, &["get", "rs"]).is_empty(), "no ReplicaSet without the deployment controller");
    let d = k.json(&["get", "deployment", "web", "-o", "json"]).unwrap();
    assert!(d["status"]["observedGeneration"].is_null(), "never observed: {}", d["status"]);
}

#[test]
fn controller_manager_runs_as_its_own_process() {
    let c = TestCluster::start_with(&["--disable=controller-manager"]).expect("starting rkube");
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=nginx"]).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(items(&k, &["get", "rs"]).is_empty(), "no controllers in the server");
    let mut manager = std::process::Command::new(rkube_testkit::rkube_binary().unwrap())
        .args(["controller-manager", "--kubeconfig"])
        .arg(&c.kubeconfig)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let found = std::panic::catch_unwind(|| wait_for("a ReplicaSet from the separate manager", || items(&k, &["get", "rs"]).into_iter().next()));
    let lease = k.json(&["-n", "kube-system", "get", "lease", "kube-controller-manager", "-o", "json"]);
    let _ = manager.kill();
    let _ = manager.wait();
    assert!(found.is_ok());
    let lease = lease.unwrap();
    assert!(lease["spec"]["holderIdentity"].as_str().is_some_and(|h| !h.is_empty()), "{lease}");
}
