//! One object, several versions: HPAs in autoscaling/v1 and v2, Events in core and events.k8s.io.
//!
//! HPA versions are named in full (`horizontalpodautoscalers.v1.autoscaling`): kubectl 1.33
//! resolves the short form `hpa.v1.autoscaling` to the preferred version here.

use crate::cluster;

#[test]
fn hpa_created_by_kubectl_autoscale_reads_in_v1_and_v2() {
    let c = cluster();
    let k = c.kubectl();
    k.ok(&["create", "deployment", "web", "--image=registry.example/nginx:1.25"]).unwrap();
    let out = k.ok(&["autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=4"]).unwrap();
    assert!(out.contains("horizontalpodautoscaler.autoscaling/web autoscaled"), "{out}");

    let v1 = k.json(&["get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "json"]).unwrap();
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["spec"]["maxReplicas"], 4);
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");
    let v2 = k.json(&["get", "horizontalpodautoscalers.v2.autoscaling", "web", "-o", "json"]).unwrap();
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"],
        serde_json::json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );
    let yaml = k.ok(&["get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "yaml"]).unwrap();
    assert!(yaml.contains("targetCPUUtilizationPercentage: 50"), "{yaml}");

    // A v2-only metric survives a v1 read-modify-write through the round-trip annotation.
    let v2_only = r#"{"spec":{"metrics":[{"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":50}}},{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}]}}"#;
    k.ok(&["patch", "horizontalpodautoscalers.v2.autoscaling", "web", "--type=merge", "-p", v2_only]).unwrap();
    let v1 = k.json(&["get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "json"]).unwrap();
    assert_eq!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"],
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
    );
    let mut edited = v1.clone();
    edited["spec"]["maxReplicas"] = serde_json::json!(7);
    k.ok_stdin(&["replace", "-f", "-"], &edited.to_string()).unwrap();
    let v2 = k.json(&["get", "horizontalpodautoscalers.v2.autoscaling", "web", "-o", "json"]).unwrap();
    assert_eq!(v2["spec"]["maxReplicas"], 7);
    assert_eq!(v2["spec"]["metrics"][0]["resource"]["name"], "memory");
    assert_eq!(v2["spec"]["metrics"][1]["resource"]["target"]["averageUtilization"], 50);
    assert!(v2["metadata"].get("annotations").is_none(), "round-trip annotations are not stored: {v2}");
}

#[test]
fn events_k8s_io_event_reads_as_a_core_event() {
    let c = cluster();
    let k = c.kubectl();
    let ev = r#"{
  "apiVersion": "events.k8s.io/v1", "kind": "Event",
  "metadata": {"name": "web.1", "namespace": "default"},
  "eventTime": "2025-01-01T00:00:00.000000Z",
  "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
  "action": "Sync", "reason": "Synced", "type": "Normal", "note": "synced web",
  "regarding": {"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"}
}"#;
    k.ok_stdin(&["create", "-f", "-"], ev).unwrap();
    let core = k.json(&["get", "events.v1.", "web.1", "-o", "json"]).unwrap();
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "synced web");
    assert_eq!(core["involvedObject"]["kind"], "Deployment");
    assert_eq!(core["reportingComponent"], "example.com/ctl");
    assert_eq!(core["source"], serde_json::json!({}));
    let events = k.ok(&["events"]).unwrap();
    assert!(events.contains("Synced") && events.contains("Deployment/web") && events.contains("synced web"), "{events}");

    // Field selectors use each group's own field names.
    let by_regarding = k.json(&["get", "events.v1.events.k8s.io", "--field-selector=regarding.kind=Deployment,reason=Synced", "-o", "json"]).unwrap();
    assert_eq!(by_regarding["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_regarding["items"][0]["note"], "synced web");
    let none = k.json(&["get", "events.v1.events.k8s.io", "--field-selector=regarding.kind=Pod", "-o", "json"]).unwrap();
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let core_sel = k.json(&["get", "events.v1.", "--field-selector=involvedObject.name=web", "-o", "json"]).unwrap();
    assert_eq!(core_sel["items"].as_array().unwrap().len(), 1);
}
