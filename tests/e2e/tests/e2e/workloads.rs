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
    // kubectl prints progress lines ("Waiting for 1 pods to be ready...") until the roll-out ends.
    assert_eq!(out.trim().lines().last(), Some("partitioned roll out complete: 3 new pods have been updated..."), "{out}");
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
    // The same messages again: like client-go's correlator, the recorder raises the count of
    // the first event rather than writing another.
    wait_for("the repeated deletions counted on their first events", Duration::from_secs(15), || {
        let counts: Vec<(String, i64)> = items(&k, &["get", "events"])
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == "web" && e["reason"] == "SuccessfulDelete")
            .map(|e| (e["message"].as_str().unwrap_or_default().to_string(), e["count"].as_i64().unwrap_or(0)))
            .collect();
        let count_of = |pod: &str| {
            counts.iter().filter(|(m, _)| m == &format!("delete Pod {pod} in StatefulSet web successful")).map(|(_, c)| *c).collect::<Vec<_>>()
        };
        (count_of("web-2") == [2] && count_of("web-1") == [2] && count_of("web-0") == [1]).then_some(())
    });
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

const PI_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: pi
        image: perl:5.34.0
        command: ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]
---
apiVersion: batch/v1
kind: Job
metadata:
  name: indexed
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
"#;

fn conditions(job: &Value) -> Vec<(String, String, String)> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let s = |f: &str| c[f].as_str().unwrap_or_default().to_string();
            (s("type"), s("reason"), s("message"))
        })
        .collect()
}

#[test]
fn jobs_reach_their_completions_nonindexed_and_indexed() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], PI_JOB).unwrap();
    let out = k
        .ok(&["wait", "--for=condition=complete", "job/pi", "job/indexed", "--timeout=60s"])
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", k.ok(&["get", "jobs", "-o", "yaml"]).unwrap_or_default(), k.ok(&["get", "pods", "-o", "wide"]).unwrap_or_default()));
    assert_eq!(out.trim(), "job.batch/pi condition met\njob.batch/indexed condition met");

    let job = k.json(&["get", "job", "pi", "-o", "json"]).unwrap();
    assert_eq!(job["status"]["succeeded"], 3, "{}", job["status"]);
    assert_eq!(job["status"]["ready"], 0);
    assert_eq!(job["status"]["terminating"], 0);
    assert!(job["status"]["active"].is_null());
    assert_eq!(job["status"]["uncountedTerminatedPods"], serde_json::json!({}));
    assert!(job["status"]["completionTime"].is_string() && job["status"]["startTime"].is_string());
    let done = "Reached expected number of succeeded pods".to_string();
    assert_eq!(
        conditions(&job),
        [
            ("SuccessCriteriaMet".into(), "CompletionsReached".into(), done.clone()),
            ("Complete".into(), "CompletionsReached".into(), done)
        ]
    );
    let table = k.ok(&["get", "job", "pi"]).unwrap();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["pi", "Complete", "3/3"], "{table}");
    let pods = items(&k, &["get", "pods", "-l", "batch.kubernetes.io/job-name=pi"]);
    assert_eq!(pods.len(), 3);
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Succeeded");
        assert!(pod["metadata"]["finalizers"].is_null(), "tracking finalizer left on {pod}");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    }
    let created = event_messages(&k, "pi", &["SuccessfulCreate"]);
    assert_eq!(created.len(), 3, "{created:?}");
    assert!(created.iter().all(|m| m.starts_with("Created pod: pi-")), "{created:?}");
    assert_eq!(event_messages(&k, "pi", &["Completed"]), ["Job completed"]);

    let job = k.json(&["get", "job", "indexed", "-o", "json"]).unwrap();
    assert_eq!(job["status"]["completedIndexes"], "0-2");
    assert_eq!(job["status"]["succeeded"], 3);
    let mut indexes: Vec<String> = items(&k, &["get", "pods", "-l", "batch.kubernetes.io/job-name=indexed"])
        .iter()
        .map(|p| {
            let index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].as_str().unwrap().to_string();
            assert_eq!(p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], index.as_str());
            assert_eq!(p["spec"]["hostname"], format!("indexed-{index}"));
            assert!(p["metadata"]["name"].as_str().unwrap().starts_with(&format!("indexed-{index}-")));
            index
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
}

const FAILING_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: fails
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations:
        sim.rkube.io/exit-code: "3"
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
"#;

#[test]
fn job_fails_after_backoff_limit_with_growing_delay() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], FAILING_JOB).unwrap();
    let out = k
        .ok(&["wait", "--for=condition=failed", "job/fails", "--timeout=60s"])
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", k.ok(&["get", "job", "fails", "-o", "yaml"]).unwrap_or_default(), k.ok(&["get", "pods", "-o", "wide"]).unwrap_or_default()));
    assert_eq!(out.trim(), "job.batch/fails condition met");
    let job = k.json(&["get", "job", "fails", "-o", "json"]).unwrap();
    assert_eq!(job["status"]["failed"], 2, "{}", job["status"]);
    assert!(job["status"]["succeeded"].is_null());
    let message = "Job has reached the specified backoff limit".to_string();
    assert_eq!(
        conditions(&job),
        [
            ("FailureTarget".into(), "BackoffLimitExceeded".into(), message.clone()),
            ("Failed".into(), "BackoffLimitExceeded".into(), message.clone())
        ]
    );
    assert_eq!(event_messages(&k, "fails", &["BackoffLimitExceeded"]), [message]);
    // The second pod waited out the 10 s back-off after the first one failed.
    let mut pods = items(&k, &["get", "pods", "-l", "batch.kubernetes.io/job-name=fails"]);
    assert_eq!(pods.len(), 2);
    pods.sort_by_key(|p| p["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string());
    let ts = |s: &Value| s.as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let first_failed = ts(&pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]);
    let second_created = ts(&pods[1]["metadata"]["creationTimestamp"]);
    assert!((second_created - first_failed).num_seconds() >= 9, "{first_failed} → {second_created}");
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Failed");
        assert!(pod["metadata"]["finalizers"].is_null());
    }
}

const EVERY_MINUTE: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: hello
            image: busybox:1.28
            command: ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]
"#;

#[test]
fn cronjob_fires_on_schedule_and_records_the_run() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], EVERY_MINUTE).unwrap();
    let job = wait_for("the first scheduled Job", Duration::from_secs(75), || items(&k, &["get", "jobs"]).into_iter().next());
    let name = job["metadata"]["name"].as_str().unwrap().to_string();
    let minutes: i64 = name.strip_prefix("hello-").unwrap().parse().unwrap();
    let scheduled = job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].as_str().unwrap().to_string();
    let scheduled_at = scheduled.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(scheduled_at.timestamp(), minutes * 60, "{scheduled}");
    assert_eq!(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
    assert_eq!(event_messages(&k, "hello", &["SuccessfulCreate"]), [format!("Created job {name}")]);

    k.ok(&["wait", "--for=condition=complete", &format!("job/{name}"), "--timeout=30s"]).unwrap();
    let cj = wait_for("lastSuccessfulTime", Duration::from_secs(30), || {
        let cj = k.json(&["get", "cronjob", "hello", "-o", "json"]).ok()?;
        cj["status"]["lastSuccessfulTime"].is_string().then_some(cj)
    });
    assert_eq!(cj["status"]["lastScheduleTime"], scheduled.as_str());
    assert!(cj["status"]["active"].is_null(), "{}", cj["status"]);
    assert_eq!(
        event_messages(&k, "hello", &["SawCompletedJob"]),
        [format!("Saw completed job: {name}, condition: Complete")]
    );
    let table = k.ok(&["get", "cronjob", "hello"]).unwrap();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..7], ["hello", "*", "*", "*", "*", "*", "<none>"], "{table}");
}

const FLUENTD: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd
spec:
  selector:
    matchLabels:
      name: fluentd
  template:
    metadata:
      labels:
        name: fluentd
    spec:
      tolerations:
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd
        image: quay.io/fluentd_elasticsearch/fluentd:v2.5.2
"#;

/// `(pod, node)` of the DaemonSet's pods that are Running.
fn daemon_pods(k: &Kubectl) -> Vec<(String, String)> {
    let mut pods: Vec<(String, String)> = items(k, &["get", "pods", "-l", "name=fluentd"])
        .iter()
        .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| (p["metadata"]["name"].as_str().unwrap_or_default().to_string(), p["spec"]["nodeName"].as_str().unwrap_or_default().to_string()))
        .collect();
    pods.sort_by(|a, b| a.1.cmp(&b.1));
    pods
}

#[test]
fn daemonset_follows_new_nodes_skips_tainted_ones_and_rolls() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "base"]);
    let _tainted = Sim::start(&c, &["--nodes", "1", "--name-prefix", "infra", "--taints", "dedicated=infra:NoSchedule"]);
    wait_nodes_ready(&k, 3);
    k.ok_stdin(&["apply", "-f", "-"], FLUENTD).unwrap();
    k.ok(&["rollout", "status", "daemonset/fluentd", "--timeout=60s"]).unwrap();
    let nodes: Vec<String> = daemon_pods(&k).into_iter().map(|(_, n)| n).collect();
    assert_eq!(nodes, ["base-0", "base-1"], "no pod on the tainted node");
    let pod = &items(&k, &["get", "pods", "-l", "name=fluentd"])[0];
    let tolerations = pod["spec"]["tolerations"].as_array().unwrap();
    assert!(tolerations.iter().any(|t| t["key"] == "node.kubernetes.io/unschedulable" && t["effect"] == "NoSchedule"), "{tolerations:?}");

    let _more = Sim::start(&c, &["--nodes", "1", "--name-prefix", "late"]);
    wait_for("a daemon pod on the new node", Duration::from_secs(30), || {
        let nodes: Vec<String> = daemon_pods(&k).into_iter().map(|(_, n)| n).collect();
        (nodes == ["base-0", "base-1", "late-0"]).then_some(())
    });
    let ds = wait_for("status for 3 nodes", Duration::from_secs(30), || {
        let ds = k.json(&["get", "daemonset", "fluentd", "-o", "json"]).ok()?;
        (ds["status"]["numberAvailable"] == 3).then_some(ds)
    });
    for (field, want) in [
        ("desiredNumberScheduled", 3),
        ("currentNumberScheduled", 3),
        ("numberReady", 3),
        ("updatedNumberScheduled", 3),
        ("numberMisscheduled", 0),
    ] {
        assert_eq!(ds["status"][field].as_i64().unwrap_or(0), want, "{field}: {}", ds["status"]);
    }
    let table = k.ok(&["get", "daemonset", "fluentd"]).unwrap();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..6], ["fluentd", "3", "3", "3", "3", "3"], "{table}");

    // Rolling update: every pod is replaced, one node at a time.
    let before: Vec<String> = daemon_pods(&k).into_iter().map(|(p, _)| p).collect();
    k.ok(&["set", "image", "daemonset/fluentd", "fluentd=quay.io/fluentd_elasticsearch/fluentd:v2.6.0"]).unwrap();
    k.ok(&["rollout", "status", "daemonset/fluentd", "--timeout=90s"]).unwrap();
    let after = daemon_pods(&k);
    assert_eq!(after.len(), 3);
    for (pod, _) in &after {
        assert!(!before.contains(pod), "{pod} was not replaced");
    }
    for pod in items(&k, &["get", "pods", "-l", "name=fluentd"]) {
        if pod["metadata"]["deletionTimestamp"].is_null() {
            assert_eq!(pod["spec"]["containers"][0]["image"], "quay.io/fluentd_elasticsearch/fluentd:v2.6.0");
        }
    }
}

const ZK_PDB: &str = r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: zk-pdb
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: zk
"#;

#[test]
fn drain_is_blocked_by_a_pdb_until_the_budget_allows() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "pool"]);
    wait_nodes_ready(&k, 2);
    k.ok(&["create", "deployment", "zk", "--image=registry.k8s.io/kubernetes-zookeeper:1.0-3.4.10", "--replicas=2"]).unwrap();
    k.ok(&["rollout", "status", "deployment/zk", "--timeout=60s"]).unwrap();
    k.ok_stdin(&["apply", "-f", "-"], ZK_PDB).unwrap();
    let pdb = wait_for("PDB status", Duration::from_secs(30), || {
        let p = k.json(&["get", "pdb", "zk-pdb", "-o", "json"]).ok()?;
        (p["status"]["expectedPods"] == 2).then_some(p)
    });
    assert_eq!(pdb["status"]["currentHealthy"], 2);
    assert_eq!(pdb["status"]["desiredHealthy"], 2);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    let cond = &pdb["status"]["conditions"][0];
    assert_eq!((cond["type"].as_str(), cond["status"].as_str(), cond["reason"].as_str()), (Some("DisruptionAllowed"), Some("False"), Some("InsufficientPods")));
    let table = k.ok(&["get", "pdb", "zk-pdb"]).unwrap();
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..4], ["zk-pdb", "2", "N/A", "0"], "{table}");

    let node = items(&k, &["get", "pods", "-l", "app=zk"])[0]["spec"]["nodeName"].as_str().unwrap().to_string();
    let blocked = k.run(&["drain", &node, "--ignore-daemonsets", "--timeout=8s"]).unwrap();
    assert!(!blocked.success, "{}\n{}", blocked.stdout, blocked.stderr);
    assert!(
        blocked.stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        blocked.stderr
    );
    // drain cordoned the node before it tried to evict.
    let n = k.json(&["get", "node", &node, "-o", "json"]).unwrap();
    assert_eq!(n["spec"]["unschedulable"], true);
    assert_eq!(items(&k, &["get", "pods", "-l", "app=zk"]).len(), 2, "nothing was evicted");

    k.ok(&["patch", "pdb", "zk-pdb", "--type=merge", "-p", r#"{"spec":{"minAvailable":1}}"#]).unwrap();
    wait_for("the budget to allow one disruption", Duration::from_secs(30), || {
        let p = k.json(&["get", "pdb", "zk-pdb", "-o", "json"]).ok()?;
        (p["status"]["disruptionsAllowed"] == 1).then_some(())
    });
    let out = k.ok(&["drain", &node, "--ignore-daemonsets", "--timeout=60s"]).unwrap();
    assert!(out.contains(&format!("node/{node} drained")), "{out}");
    assert!(out.contains("evicted"), "{out}");
    // The Deployment replaced the evicted pods on the other node.
    k.ok(&["rollout", "status", "deployment/zk", "--timeout=60s"]).unwrap();
    wait_for("both zk pods off the drained node", Duration::from_secs(30), || {
        let pods = items(&k, &["get", "pods", "-l", "app=zk"]);
        let running: Vec<&Value> = pods.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
        (running.len() == 2 && running.iter().all(|p| p["spec"]["nodeName"] != node.as_str())).then_some(())
    });
    k.ok(&["uncordon", &node]).unwrap();
    let n = k.json(&["get", "node", &node, "-o", "json"]).unwrap();
    assert!(n["spec"]["unschedulable"].is_null(), "{}", n["spec"]);
}

const AGENT_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  revisionHistoryLimit: 1
  selector:
    matchLabels:
      name: agent
  template:
    metadata:
      labels:
        name: agent
    spec:
      containers:
      - name: agent
        image: registry.k8s.io/agent:v1
"#;

/// `(revision, hash label)` of the ControllerRevisions named `agent-*`, by revision.
fn agent_revisions(k: &Kubectl) -> Vec<(i64, String)> {
    let mut revs: Vec<(i64, String)> = items(k, &["get", "controllerrevisions"])
        .iter()
        .filter(|r| r["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("agent-")))
        .map(|r| {
            let hash = r["metadata"]["labels"]["controller-revision-hash"].as_str().unwrap_or_default().to_string();
            assert_eq!(r["metadata"]["name"], format!("agent-{hash}"), "{r}");
            (r["revision"].as_i64().unwrap_or(0), hash)
        })
        .collect();
    revs.sort();
    revs
}

/// Images of the agent's live pods.
fn agent_images(k: &Kubectl) -> Vec<String> {
    items(k, &["get", "pods", "-l", "name=agent"])
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn daemonset_revisions_back_rollout_history_and_undo() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "dsrev"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], AGENT_DS).unwrap();
    k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]).unwrap();
    let revs = agent_revisions(&k);
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0].0, 1);
    for pod in items(&k, &["get", "pods", "-l", "name=agent"]) {
        assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], revs[0].1.as_str(), "{pod}");
    }

    for image in ["registry.k8s.io/agent:v2", "registry.k8s.io/agent:v3"] {
        k.ok(&["set", "image", "daemonset/agent", &format!("agent={image}")]).unwrap();
        k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]).unwrap();
    }
    // revisionHistoryLimit 1: revision 1 goes once no pod runs it.
    let revs = wait_for("history trimmed to one old revision", Duration::from_secs(20), || {
        let revs = agent_revisions(&k);
        (revs.iter().map(|r| r.0).collect::<Vec<_>>() == [2, 3]).then_some(revs)
    });
    let ds = k.json(&["get", "daemonset", "agent", "-o", "json"]).unwrap();
    assert_eq!(ds["status"]["observedGeneration"], ds["metadata"]["generation"], "{}", ds["status"]);
    assert_eq!(ds["status"]["updatedNumberScheduled"], 2, "{}", ds["status"]);
    let history = k.ok(&["rollout", "history", "daemonset/agent"]).unwrap();
    let numbers: Vec<&str> = history.lines().skip(2).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(numbers, ["2", "3"], "{history}");
    let detail = k.ok(&["rollout", "history", "daemonset/agent", "--revision=2"]).unwrap();
    assert!(detail.contains("registry.k8s.io/agent:v2"), "{detail}");

    // Undo is done by kubectl from the revision data; the controller renumbers revision 2 as 4.
    let out = k.ok(&["rollout", "undo", "daemonset/agent"]).unwrap();
    assert!(out.contains("rolled back"), "{out}");
    k.ok(&["rollout", "status", "daemonset/agent", "--timeout=60s"]).unwrap();
    wait_for("pods back on v2", Duration::from_secs(30), || {
        (agent_images(&k) == ["registry.k8s.io/agent:v2"; 2]).then_some(())
    });
    let after = wait_for("revision 2 renumbered 4", Duration::from_secs(20), || {
        let revs = agent_revisions(&k);
        (revs.iter().map(|r| r.0).collect::<Vec<_>>() == [3, 4]).then_some(revs)
    });
    assert_eq!(after[1].1, revs[0].1, "the v2 revision is reused, not copied");
    for pod in items(&k, &["get", "pods", "-l", "name=agent"]) {
        if pod["metadata"]["deletionTimestamp"].is_null() {
            assert_eq!(pod["metadata"]["labels"]["controller-revision-hash"], after[1].1.as_str(), "{pod}");
        }
    }
}

const SURGE_DS: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: surge
spec:
  minReadySeconds: 2
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      name: surge
  template:
    metadata:
      labels:
        name: surge
    spec:
      containers:
      - name: surge
        image: registry.k8s.io/surge:v1
"#;

#[test]
fn daemonset_max_surge_starts_the_new_pod_before_the_old_one_goes() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "surge"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], SURGE_DS).unwrap();
    k.ok(&["rollout", "status", "daemonset/surge", "--timeout=60s"]).unwrap();
    k.ok(&["set", "image", "daemonset/surge", "surge=registry.k8s.io/surge:v2"]).unwrap();

    // minReadySeconds keeps each new pod unavailable for a while, so the overlap is visible.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut saw_overlap = false;
    loop {
        let pods: Vec<(String, String, bool)> = items(&k, &["get", "pods", "-l", "name=surge"])
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let node = p["spec"]["nodeName"].as_str().unwrap_or_default().to_string();
                let image = p["spec"]["containers"][0]["image"].as_str().unwrap_or_default().to_string();
                (node, image, p["status"]["phase"] == "Running")
            })
            .collect();
        for node in ["surge-0", "surge-1"] {
            let on_node: Vec<&(String, String, bool)> = pods.iter().filter(|p| p.0 == node).collect();
            assert!(on_node.iter().any(|p| p.2), "maxUnavailable 0: {node} always runs a pod: {pods:?}");
            assert!(on_node.len() <= 2, "{pods:?}");
            if on_node.len() == 2 {
                saw_overlap = true;
                assert!(on_node.iter().any(|p| p.1.ends_with(":v1")) && on_node.iter().any(|p| p.1.ends_with(":v2")), "{pods:?}");
            }
        }
        let surged_nodes = ["surge-0", "surge-1"].iter().filter(|n| pods.iter().filter(|p| &p.0 == *n).count() == 2).count();
        assert!(surged_nodes <= 1, "maxSurge 1: {pods:?}");
        if pods.len() == 2 && pods.iter().all(|p| p.1.ends_with(":v2") && p.2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rollout did not finish: {pods:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(saw_overlap, "no node ever ran the old and the new pod side by side");
    k.ok(&["rollout", "status", "daemonset/surge", "--timeout=60s"]).unwrap();
    let ds = k.json(&["get", "daemonset", "surge", "-o", "json"]).unwrap();
    assert_eq!(ds["status"]["updatedNumberScheduled"], 2, "{}", ds["status"]);
    assert_eq!(ds["status"]["numberAvailable"], 2, "{}", ds["status"]);
}

const ADOPTER: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: keeper
spec:
  serviceName: keeper
  replicas: 2
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app: keeper
  template:
    metadata:
      labels:
        app: keeper
    spec:
      containers:
      - name: keeper
        image: registry.k8s.io/pause:3.10
"#;

/// `(pod, uid of its controller)` for the keeper pods.
fn keeper_controllers(k: &Kubectl) -> Vec<(String, String)> {
    let mut pods: Vec<(String, String)> = items(k, &["get", "pods"])
        .iter()
        .filter(|p| p["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("keeper-")))
        .map(|p| {
            let controller = p["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["controller"] == true)
                .and_then(|r| r["uid"].as_str())
                .unwrap_or_default()
                .to_string();
            (p["metadata"]["name"].as_str().unwrap_or_default().to_string(), controller)
        })
        .collect();
    pods.sort();
    pods
}

#[test]
fn statefulset_adopts_orphaned_pods_and_releases_unmatched_ones() {
    let c = crate::cluster();
    let k = c.kubectl();
    k.ok_stdin(&["apply", "-f", "-"], ADOPTER).unwrap();
    let first_uid = k.ok(&["get", "statefulset", "keeper", "-o", "jsonpath={.metadata.uid}"]).unwrap();
    wait_for("keeper pods", Duration::from_secs(30), || {
        (keeper_controllers(&k) == [("keeper-0".to_string(), first_uid.clone()), ("keeper-1".to_string(), first_uid.clone())]).then_some(())
    });
    let pod_uids = k.ok(&["get", "pods", "keeper-0", "keeper-1", "-o", "jsonpath={.items[*].metadata.uid}"]).unwrap();

    // Orphaned by a non-cascading delete, the pods are adopted by the next set of that name.
    k.ok(&["delete", "statefulset", "keeper", "--cascade=orphan"]).unwrap();
    wait_for("orphaned keeper pods", Duration::from_secs(30), || {
        keeper_controllers(&k).iter().all(|(_, owner)| owner.is_empty()).then_some(())
    });
    k.ok_stdin(&["apply", "-f", "-"], ADOPTER).unwrap();
    let second_uid = k.ok(&["get", "statefulset", "keeper", "-o", "jsonpath={.metadata.uid}"]).unwrap();
    assert_ne!(first_uid, second_uid);
    wait_for("keeper pods adopted", Duration::from_secs(30), || {
        keeper_controllers(&k).iter().all(|(_, owner)| *owner == second_uid).then_some(())
    });
    let adopted_uids = k.ok(&["get", "pods", "keeper-0", "keeper-1", "-o", "jsonpath={.items[*].metadata.uid}"]).unwrap();
    assert_eq!(pod_uids, adopted_uids, "the same pods were adopted, not recreated");

    // A pod relabelled out of the selector is released.
    k.ok(&["label", "pod", "keeper-1", "app=debug", "--overwrite"]).unwrap();
    wait_for("keeper-1 released", Duration::from_secs(30), || {
        let refs = k.json(&["get", "pod", "keeper-1", "-o", "json"]).ok()?["metadata"]["ownerReferences"].clone();
        refs.as_array().is_none_or(Vec::is_empty).then_some(())
    });
    let owner = k.json(&["get", "pod", "keeper-0", "-o", "json"]).unwrap()["metadata"]["ownerReferences"][0]["uid"].clone();
    assert_eq!(owner, second_uid.as_str());
}

const LEADER_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: leader
spec:
  completions: 3
  parallelism: 1
  completionMode: Indexed
  successPolicy:
    rules:
    - succeededIndexes: "2"
    - succeededCount: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
"#;

#[test]
fn indexed_job_completes_early_on_its_success_policy() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--name-prefix", "succ", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], LEADER_JOB).unwrap();
    k.ok(&["wait", "--for=condition=complete", "job/leader", "--timeout=60s"]).unwrap();
    let job = k.json(&["get", "job", "leader", "-o", "json"]).unwrap();
    let matched = "Matched rules at index 1".to_string();
    assert_eq!(
        conditions(&job),
        [
            ("SuccessCriteriaMet".into(), "SuccessPolicy".into(), matched.clone()),
            ("Complete".into(), "SuccessPolicy".into(), matched)
        ]
    );
    assert_eq!(job["status"]["completedIndexes"], "0", "{}", job["status"]);
    assert_eq!(job["status"]["succeeded"], 1, "{}", job["status"]);
    // Index 0 alone satisfied the policy: indexes 1 and 2 never ran.
    let pods = items(&k, &["get", "pods", "-l", "batch.kubernetes.io/job-name=leader"]);
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], "0");
}

const PER_INDEX_JOBS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: shards
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  backoffLimitPerIndex: 0
  template:
    metadata:
      annotations:
        sim.rkube.io/exit-code: "1"
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
---
apiVersion: batch/v1
kind: Job
metadata:
  name: capped
spec:
  completions: 4
  parallelism: 4
  completionMode: Indexed
  backoffLimitPerIndex: 0
  maxFailedIndexes: 1
  template:
    metadata:
      annotations:
        sim.rkube.io/exit-code: "1"
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
"#;

#[test]
fn indexed_jobs_fail_per_index_and_past_max_failed_indexes() {
    let c = start(&[]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--name-prefix", "idx", "--run-duration", "1s"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], PER_INDEX_JOBS).unwrap();
    k.ok(&["wait", "--for=condition=failed", "job/shards", "job/capped", "--timeout=60s"])
        .unwrap_or_else(|e| panic!("{e}\n{}", k.ok(&["get", "jobs", "-o", "yaml"]).unwrap_or_default()));

    // backoffLimitPerIndex 0: each index fails once and is not retried; the Job fails once
    // every index is finished.
    let job = k.json(&["get", "job", "shards", "-o", "json"]).unwrap();
    assert_eq!(job["status"]["failedIndexes"], "0,1", "{}", job["status"]);
    assert_eq!(job["status"]["completedIndexes"], "", "{}", job["status"]);
    assert_eq!(job["status"]["failed"], 2, "{}", job["status"]);
    let message = "Job has failed indexes".to_string();
    assert_eq!(
        conditions(&job),
        [
            ("FailureTarget".into(), "FailedIndexes".into(), message.clone()),
            ("Failed".into(), "FailedIndexes".into(), message)
        ]
    );
    let pods = items(&k, &["get", "pods", "-l", "batch.kubernetes.io/job-name=shards"]);
    assert_eq!(pods.len(), 2, "no index is retried");
    for pod in &pods {
        assert_eq!(pod["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"], "0", "{pod}");
    }

    let job = k.json(&["get", "job", "capped", "-o", "json"]).unwrap();
    let (_, reason, message) = conditions(&job).pop().unwrap();
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"),
        "{}",
        job["status"]
    );
    let failed = job["status"]["failedIndexes"].as_str().unwrap_or_default();
    assert!(failed.len() >= 3, "more than one failed index: {failed}");
}

#[test]
fn statefulset_claim_retention_policy_deletes_claims_on_scale_down_and_delete() {
    let c = crate::cluster();
    let k = c.kubectl();
    let manifest = PARALLEL_WITH_CLAIMS.replace(
        "  podManagementPolicy: Parallel\n",
        "  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy:\n    whenScaled: Delete\n    whenDeleted: Delete\n",
    );
    k.ok_stdin(&["apply", "-f", "-"], &manifest).unwrap();
    let claim_names = |k: &Kubectl| {
        let mut names: Vec<String> = items(k, &["get", "pvc"]).iter().filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string)).collect();
        names.sort();
        names
    };
    wait_for("claims for db-0 and db-1", Duration::from_secs(30), || (claim_names(&k) == ["data-db-0", "data-db-1"]).then_some(()));
    let claim = k.json(&["get", "pvc", "data-db-0", "-o", "json"]).unwrap();
    let set_uid = k.ok(&["get", "statefulset", "db", "-o", "jsonpath={.metadata.uid}"]).unwrap();
    let refs = claim["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
    assert!(refs.iter().any(|r| r["kind"] == "StatefulSet" && r["uid"] == set_uid.as_str()), "whenDeleted: Delete makes the set own the claim: {refs:?}");

    // whenScaled: Delete — the condemned pod's claim goes with it.
    k.ok(&["scale", "statefulset", "db", "--replicas=1"]).unwrap();
    wait_for("data-db-1 deleted with db-1", Duration::from_secs(30), || (claim_names(&k) == ["data-db-0"]).then_some(()));
    // whenDeleted: Delete — the rest goes with the set.
    k.ok(&["delete", "statefulset", "db", "--wait=true"]).unwrap();
    wait_for("all claims deleted", Duration::from_secs(30), || claim_names(&k).is_empty().then_some(()));
}

const REPLACEMENT_JOBS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: eager
spec:
  template:
    metadata:
      finalizers: ["e2e.rkube.io/hold"]
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
---
apiVersion: batch/v1
kind: Job
metadata:
  name: patient
spec:
  podReplacementPolicy: Failed
  template:
    metadata:
      finalizers: ["e2e.rkube.io/hold"]
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
"#;

#[test]
fn job_pod_replacement_policy_failed_waits_for_terminating_pods() {
    // No nodes: the pods stay Pending, and a finalizer keeps a deleted one terminating.
    let c = crate::cluster();
    let k = c.kubectl();
    k.ok_stdin(&["apply", "-f", "-"], REPLACEMENT_JOBS).unwrap();
    let pods_of = |job: &str| -> Vec<(String, bool)> {
        let mut pods: Vec<(String, bool)> = items(&k, &["get", "pods", "-l", &format!("batch.kubernetes.io/job-name={job}")])
            .iter()
            .map(|p| (p["metadata"]["name"].as_str().unwrap_or_default().to_string(), !p["metadata"]["deletionTimestamp"].is_null()))
            .collect();
        pods.sort();
        pods
    };
    let first = |job: &str| wait_for("the job's pod", Duration::from_secs(30), || pods_of(job).first().map(|p| p.0.clone()));
    let (eager, patient) = (first("eager"), first("patient"));
    k.ok(&["delete", "pod", &eager, &patient, "--wait=false"]).unwrap();

    // TerminatingOrFailed (the default): a replacement starts beside the terminating pod.
    wait_for("a replacement for the eager job", Duration::from_secs(20), || {
        let pods = pods_of("eager");
        (pods.len() == 2 && pods.iter().filter(|p| !p.1).count() == 1).then_some(())
    });
    // Failed: none while the old pod terminates; the Job reports it as terminating.
    let job = wait_for("patient job counts its terminating pod", Duration::from_secs(20), || {
        let job = k.json(&["get", "job", "patient", "-o", "json"]).ok()?;
        (job["status"]["terminating"] == 1).then_some(job)
    });
    assert!(job["status"]["active"].is_null(), "{}", job["status"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(pods_of("patient"), [(patient.clone(), true)]);

    // Once it is gone, the replacement comes.
    k.ok(&["patch", "pod", &patient, "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]).unwrap();
    wait_for("a replacement for the patient job", Duration::from_secs(20), || {
        let pods = pods_of("patient");
        (pods.len() == 1 && pods[0].0 != patient && !pods[0].1).then_some(())
    });
}
