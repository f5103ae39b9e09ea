//! The HorizontalPodAutoscaler controller scaling a Deployment on simulated CPU usage, driven
//! with `kubectl autoscale` and `kubectl get hpa`.

use std::time::Duration;

use rkube_testkit::Kubectl;
use serde_json::Value;

use crate::scheduling::{Sim, start, wait_for, wait_nodes_ready};

fn deployment(name: &str, cpu_request: Option<&str>) -> String {
    let resources = cpu_request.map(|r| format!("        resources:\n          requests:\n            cpu: {r}\n")).unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n      annotations:\n        sim.rkube.io/cpu-usage: \"100m\"\n    spec:\n      containers:\n      - name: app\n        image: busybox\n{resources}"
    )
}

fn hpa(k: &Kubectl, name: &str) -> Value {
    k.json(&["get", "hpa", name, "-o", "json"]).unwrap()
}

fn condition(hpa: &Value, type_: &str) -> Option<(String, String, String)> {
    let c = hpa["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into(), c["message"].as_str()?.into()))
}

fn event_messages(k: &Kubectl, name: &str, reason: &str) -> Vec<String> {
    let selector = format!("involvedObject.kind=HorizontalPodAutoscaler,involvedObject.name={name},reason={reason}");
    let events = k.json(&["get", "events", "--field-selector", &selector, "-o", "json"]).unwrap();
    events["items"].as_array().map(|items| items.iter().filter_map(|e| e["message"].as_str().map(String::from)).collect()).unwrap_or_default()
}

fn replicas(k: &Kubectl, name: &str) -> i64 {
    k.json(&["get", "deployment", name, "-o", "json"]).unwrap()["spec"]["replicas"].as_i64().unwrap_or(-1)
}

#[test]
fn hpa_scales_a_deployment_up_and_down_on_cpu_usage() {
    let c = start(&["--metric-resolution=1s", "--horizontal-pod-autoscaler-sync-period=1s"]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "2", "--name-prefix", "hpa", "--cpu", "8"]);
    wait_nodes_ready(&k, 2);
    k.ok_stdin(&["apply", "-f", "-"], &deployment("web", Some("200m"))).unwrap();
    k.ok(&["autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=4"]).unwrap();
    // Scale down after 2 s of lower recommendations instead of upstream's default 5 min.
    k.ok(&["patch", "hpa", "web", "--type=merge", "-p", r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":2}}}}"#]).unwrap();

    // 100m of a 200m request: exactly on target, nothing to do.
    wait_for("the HPA to see 50%", Duration::from_secs(30), || {
        let out = k.ok(&["get", "hpa", "web", "--no-headers"]).ok()?;
        out.contains("cpu: 50%/50%").then_some(())
    });
    let h = hpa(&k, "web");
    assert_eq!(h["status"]["currentReplicas"], 1);
    assert_eq!(h["status"]["desiredReplicas"], 1);
    assert_eq!(h["status"]["currentMetrics"][0]["resource"]["current"]["averageValue"], "100m");
    assert_eq!(
        condition(&h, "ScalingActive").unwrap(),
        ("True".into(), "ValidMetricFound".into(), "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".into())
    );
    assert_eq!(condition(&h, "AbleToScale").unwrap().0, "True");
    let header = k.ok(&["get", "hpa"]).unwrap();
    let columns: Vec<&str> = header.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(columns, ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]);

    // Load rises to 400m (200% of the request): 4 replicas at once, the maximum.
    k.ok(&["annotate", "pods", "-l", "app=web", "--overwrite", "sim.rkube.io/cpu-usage=400m"]).unwrap();
    wait_for("scale up to 4", Duration::from_secs(30), || (replicas(&k, "web") == 4).then_some(()));
    // A sample whose window straddles the change may take a smaller step first.
    let ups = event_messages(&k, "web", "SuccessfulRescale");
    assert_eq!(ups.last().map(String::as_str), Some("New size: 4; reason: cpu resource utilization (percentage of request) above target"), "{ups:?}");
    assert!(ups.iter().all(|m| m.ends_with("; reason: cpu resource utilization (percentage of request) above target")), "{ups:?}");
    let h = wait_for("status after scale-up", Duration::from_secs(20), || {
        let h = hpa(&k, "web");
        (h["status"]["currentReplicas"] == 4 && condition(&h, "ScalingLimited").is_some_and(|c| c.0 == "True")).then_some(h)
    });
    assert!(h["status"]["lastScaleTime"].is_string(), "{h}");
    assert_eq!(
        condition(&h, "ScalingLimited").unwrap(),
        ("True".into(), "TooManyReplicas".into(), "the desired replica count is more than the maximum replica count".into())
    );
    let row = k.ok(&["get", "hpa", "web", "--no-headers"]).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[..2], ["web", "Deployment/web"], "{row}");
    assert_eq!(&cells[4..7], ["1", "4", "4"], "{row}");

    // Load falls: back to the minimum once the 2 s stabilization window has passed.
    k.ok(&["annotate", "pods", "-l", "app=web", "--overwrite", "sim.rkube.io/cpu-usage=10m"]).unwrap();
    wait_for("scale down to 1", Duration::from_secs(40), || (replicas(&k, "web") == 1).then_some(()));
    let downs = event_messages(&k, "web", "SuccessfulRescale");
    assert!(downs.iter().any(|m| m == "New size: 1; reason: All metrics below target"), "{downs:?}");
    let h = wait_for("status after scale-down", Duration::from_secs(20), || {
        let h = hpa(&k, "web");
        (h["status"]["desiredReplicas"] == 1 && h["status"]["currentReplicas"] == 1).then_some(h)
    });
    assert_eq!(condition(&h, "ScalingActive").unwrap().1, "ValidMetricFound");
}

#[test]
fn hpa_reports_pods_without_cpu_requests() {
    let c = start(&["--metric-resolution=1s", "--horizontal-pod-autoscaler-sync-period=1s"]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--name-prefix", "hpanr"]);
    wait_nodes_ready(&k, 1);
    k.ok_stdin(&["apply", "-f", "-"], &deployment("bare", None)).unwrap();
    k.ok(&["autoscale", "deployment", "bare", "--cpu-percent=50", "--max=3"]).unwrap();
    // First the pod has no metrics yet, then its missing request is the problem.
    let h = wait_for("ScalingActive=False for the missing request", Duration::from_secs(30), || {
        let h = hpa(&k, "bare");
        condition(&h, "ScalingActive").filter(|c| c.0 == "False" && c.1 == "FailedGetResourceMetric" && c.2.contains("missing request")).map(|_| h)
    });
    let (_, _, message) = condition(&h, "ScalingActive").unwrap();
    assert!(
        message.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: missing request for cpu in container app of Pod bare-"),
        "{message}"
    );
    let events = event_messages(&k, "bare", "FailedGetResourceMetric");
    assert!(events.iter().any(|m| m.starts_with("failed to get cpu utilization: missing request for cpu in container app of Pod bare-")), "{events:?}");
    let computed = event_messages(&k, "bare", "FailedComputeMetricsReplicas");
    assert!(computed.iter().any(|m| m.starts_with("invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: failed to get cpu utilization: ")), "{computed:?}");
    let row = k.ok(&["get", "hpa", "bare", "--no-headers"]).unwrap();
    assert!(row.contains("cpu: <unknown>/50%"), "{row}");
    // minReplicas defaults to 1 as upstream's API defaulting does.
    assert_eq!(row.split_whitespace().nth(4), Some("1"), "{row}");
    assert_eq!(replicas(&k, "bare"), 1);

    // The v1 form is served (kubectl ≥1.33 drops the version of a short name like
    // `hpa.v1.autoscaling` when expanding it, and so reads v2 from upstream too).
    let v1 = k.json(&["get", "horizontalpodautoscalers.v1.autoscaling", "bare", "-o", "json"]).unwrap();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
}

#[test]
fn hpa_scales_a_statefulset_on_average_value() {
    let c = start(&["--metric-resolution=1s", "--horizontal-pod-autoscaler-sync-period=1s"]);
    let k = c.kubectl();
    let _sim = Sim::start(&c, &["--nodes", "1", "--name-prefix", "hpass", "--cpu", "8"]);
    wait_nodes_ready(&k, 1);
    let set = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 1\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n      annotations:\n        sim.rkube.io/cpu-usage: \"300m\"\n    spec:\n      containers:\n      - name: db\n        image: busybox\n";
    k.ok_stdin(&["apply", "-f", "-"], set).unwrap();
    let hpa_yaml = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: db\nspec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: StatefulSet\n    name: db\n  minReplicas: 1\n  maxReplicas: 3\n  metrics:\n  - type: Resource\n    resource:\n      name: cpu\n      target:\n        type: AverageValue\n        averageValue: 100m\n";
    k.ok_stdin(&["apply", "-f", "-"], hpa_yaml).unwrap();
    // 300m per pod against 100m: three pods.
    wait_for("scale up to 3", Duration::from_secs(30), || {
        let set = k.json(&["get", "statefulset", "db", "-o", "json"]).ok()?;
        (set["spec"]["replicas"] == 3).then_some(())
    });
    let ups = event_messages(&k, "db", "SuccessfulRescale");
    assert_eq!(ups.last().map(String::as_str), Some("New size: 3; reason: cpu resource above target"), "{ups:?}");
    let h = hpa(&k, "db");
    assert!(h["status"]["currentMetrics"][0]["resource"]["current"]["averageValue"].is_string(), "{h}");
    assert!(h["status"]["currentMetrics"][0]["resource"]["current"].get("averageUtilization").is_none(), "{h}");
    let row = k.ok(&["get", "hpa", "db", "--no-headers"]).unwrap();
    assert!(row.contains("StatefulSet/db") && row.contains("/100m"), "{row}");
}
