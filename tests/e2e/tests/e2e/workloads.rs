//! Workload controllers against `rkube server` + `rkube sim`: StatefulSets, Jobs and the rest,
//! driven with the real kubectl and checked through what kubectl shows.

use std::time::Duration;

use rkube_testkit::Kubectl;
use serde_json::Value;

use crate::scheduling::{Sim, start, wait_for, wait_nodes_ready};

const WEB_STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.8
"#;

fn items(k: &Kubectl, args: &[&str]) -> Vec<Value> {
    let mut full: Vec<&str> = args.to_vec();
    full.extend(["-o", "json"]);
    k.json(&full).map(|v| v["items"].as_array().cloned().unwrap_or_default()).unwrap_or_default()
}

fn pod_names(k: &Kubectl, selector: &str) -> Vec<String> {
    let mut names: Vec<String> =
        items(k, &["get", "pods", "-l", selector]).iter().filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string)).collect();
    names.sort();
    names
}

/// Messages of events about `object` with one of `reasons`, oldest first (event names end in
/// the hex nanoseconds of their creation).
fn event_messages(k: &Kubectl, object: &str, reasons: &[&str]) -> Vec<String> {
    let mut events: Vec<Value> = items(k, &["get", "events"])
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == object && reasons.iter().any(|r| e["reason"] == *r))
        .collect();
    events.sort_by_key(|e| e["metadata"]["name"].as_str().unwrap_or_default().to_string());
    events.iter().filter_map(|e| e["message"].as_str().map(str::to_string)).collect()
}

fn ready_since(pod: &Value) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
}

#[test]
fn statefulset_is_created_in_order_rolled_and_scaled_down_in_reverse() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], WEB_STATEFULSET).unwrap();

    let out = k.ok(&["rollout", "status", "statefulset/web", "--timeout=60s"]).unwrap();
    let sts = k.json(&["get", "statefulset", "web", "-o", "json"]).unwrap();
    let revision = sts["status"]["updateRevision"].as_str().unwrap().to_string();
    assert!(revision.starts_with("web-"), "{sts}");
    // The API defaults `rollingUpdate.partition: 0`, so kubectl reports a partitioned roll-out.
    assert_eq!(out.trim(), "partitioned roll out complete: 3 new pods have been updated...");
    assert_eq!(sts["status"]["currentRevision"], revision.as_str());
    for field in ["replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"] {
        assert_eq!(sts["status"][field], 3, "{field}: {}", sts["status"]);
    }
    assert_eq!(pod_names(&k, "app=nginx"), ["web-0", "web-1", "web-2"]);

    // OrderedReady: each pod was created only after the previous one was Ready.
    assert_eq!(
        event_messages(&k, "web", &["SuccessfulCreate"]),
        [
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful"
        ]
    );
    let pods = items(&k, &["get", "pods", "-l", "app=nginx"]);
    let by_name = |n: &str| pods.iter().find(|p| p["metadata"]["name"] == n).unwrap().clone();
    for (prev, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let ready = ready_since(&by_name(prev)).unwrap();
        let created = by_name(next)["metadata"]["creationTimestamp"].as_str().unwrap().to_string();
        assert!(created >= ready, "{next} created at {created}, before {prev} was Ready at {ready}");
    }
    let web1 = by_name("web-1");
    assert_eq!(web1["spec"]["hostname"], "web-1");
    assert_eq!(web1["spec"]["subdomain"], "nginx");
    assert_eq!(web1["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"], "web-1");
    assert_eq!(web1["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(web1["metadata"]["labels"]["controller-revision-hash"], revision.as_str());
    let revisions = items(&k, &["get", "controllerrevisions"]);
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0]["metadata"]["name"], revision.as_str());
    assert_eq!(revisions[0]["revision"], 1);

    // A rolling update replaces pods from the highest ordinal down and ends at a new revision.
    k.ok(&["set", "image", "statefulset/web", "nginx=registry.k8s.io/nginx-slim:0.9"]).unwrap();
    k.ok(&["rollout", "status", "statefulset/web", "--timeout=90s"]).unwrap();
    let updated = wait_for("the update revision to become current", Duration::from_secs(30), || {
        let s = k.json(&["get", "statefulset", "web", "-o", "json"]).ok()?;
        let update = s["status"]["updateRevision"].as_str()?.to_string();
        (update != revision && s["status"]["currentRevision"] == update.as_str() && s["status"]["readyReplicas"] == 3).then_some(update)
    });
    for pod in items(&k, &["get", "pods", "-l", "app=nginx"]) {
        assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], updated.as_str());
        assert_eq!(pod["spec"]["containers"][0]["image"], "registry.k8s.io/nginx-slim:0.9");
    }
    let deletes = event_messages(&k, "web", &["SuccessfulDelete"]);
    assert_eq!(
        deletes,
        [
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful",
            "delete Pod web-0 in StatefulSet web successful"
        ]
    );
    let history = k.ok(&["rollout", "history", "statefulset/web"]).unwrap();
    assert!(history.lines().any(|l| l.trim_start().starts_with('1')) && history.lines().any(|l| l.trim_start().starts_with('2')), "{history}");

    // Scale-down removes the highest ordinals one at a time.
    k.ok(&["scale", "statefulset", "web", "--replicas=1"]).unwrap();
    wait_for("web scaled to 1", Duration::from_secs(60), || (pod_names(&k, "app=nginx") == ["web-0"]).then_some(()));
    let deletes = event_messages(&k, "web", &["SuccessfulDelete"]);
    assert_eq!(
        deletes[3..],
        ["delete Pod web-2 in StatefulSet web successful", "delete Pod web-1 in StatefulSet web successful"]
    );
    wait_for("status replicas 1", Duration::from_secs(30), || {
        let s = k.json(&["get", "statefulset", "web", "-o", "json"]).ok()?;
        (s["status"]["replicas"] == 1 && s["status"]["readyReplicas"] == 1).then_some(())
    });
}

const PARALLEL_WITH_CLAIMS: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
      - name: db
        image: postgres
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: ["ReadWriteOnce"]
      resources:
        requests:
          storage: 1Gi
"#;

#[test]
fn parallel_statefulset_creates_claims_that_outlive_it() {
    let c = crate::cluster();
    let k = c.kubectl();
    k.ok_stdin(&["apply", "-f", "-"], PARALLEL_WITH_CLAIMS).unwrap();
    // Parallel: both pods are created at once, without waiting for readiness (no nodes here).
    wait_for("db pods", Duration::from_secs(30), || (pod_names(&k, "app=db") == ["db-0", "db-1"]).then_some(()));
    let claims = items(&k, &["get", "pvc"]);
    let mut names: Vec<&str> = claims.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["data-db-0", "data-db-1"]);
    assert_eq!(claims[0]["metadata"]["labels"]["app"], "db");
    let pod = k.json(&["get", "pod", "db-1", "-o", "json"]).unwrap();
    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["name"] == "data" && v["persistentVolumeClaim"]["claimName"] == "data-db-1"), "{volumes:?}");
    let created = event_messages(&k, "db", &["SuccessfulCreate"]);
    assert!(created.contains(&"create Claim data-db-0 Pod db-0 in StatefulSet db success".to_string()), "{created:?}");

    // Default retention (Retain): the claims stay after the set and its pods are gone.
    k.ok(&["delete", "statefulset", "db", "--wait=true"]).unwrap();
    wait_for("db pods gone", Duration::from_secs(30), || pod_names(&k, "app=db").is_empty().then_some(()));
    assert_eq!(items(&k, &["get", "pvc"]).len(), 2);
}
