use super::*;

fn v2_hpa(metrics: Value, status: Value) -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5, "metrics": metrics},
        "status": status,
    })
}

#[test]
fn cpu_utilization_becomes_the_v1_percentage_without_annotations() {
    let v2 = v2_hpa(
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]),
        json!({"desiredReplicas": 0}),
    );
    let v1 = convert(
        v2.clone(),
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "autoscaling/v1",
    )
    .unwrap();
    assert_eq!(
        v1,
        json!({
            "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
            "status": {"currentReplicas": 0, "desiredReplicas": 0},
        })
    );
    let back = convert(
        v1,
        "HorizontalPodAutoscaler",
        "autoscaling/v1",
        "autoscaling/v2",
    )
    .unwrap();
    assert_eq!(back, v2);
}

#[test]
fn v1_without_a_target_means_eighty_percent_cpu() {
    let v1 = json!({"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3}});
    let v2 = convert(
        v1,
        "HorizontalPodAutoscaler",
        "autoscaling/v1",
        "autoscaling/v2",
    )
    .unwrap();
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(v2["status"], json!({"desiredReplicas": 0}));
}

#[test]
fn v2_only_fields_round_trip_through_v1_annotations() {
    let metrics = json!([
        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
    ]);
    let status = json!({
        "currentReplicas": 2,
        "desiredReplicas": 3,
        "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageValue": "120m", "averageUtilization": 70}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ReadyForNewScale"}],
    });
    let mut v2 = v2_hpa(metrics, status);
    v2["spec"]["behavior"] = json!({"scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}});
    let v1 = convert(
        v2.clone(),
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "autoscaling/v1",
    )
    .unwrap();
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
    assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
    let ann = &v1["metadata"]["annotations"];
    // The exact strings upstream writes (v1 MetricSpec/MetricStatus JSON, Go field names for the
    // behavior, which upstream marshals from its internal type).
    assert_eq!(
        ann[METRIC_SPECS_ANNOTATION],
        r#"[{"type":"Pods","pods":{"metricName":"qps","targetAverageValue":"10"}}]"#
    );
    assert_eq!(
        ann[METRIC_STATUSES_ANNOTATION],
        r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":70,"currentAverageValue":"120m"}}]"#
    );
    assert_eq!(
        ann[BEHAVIOR_ANNOTATION],
        r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":null}"#
    );
    assert_eq!(
        ann[CONDITIONS_ANNOTATION],
        r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2025-01-01T00:00:00Z","reason":"ReadyForNewScale"}]"#
    );
    assert_eq!(ann["team"], "a");
    let back = convert(
        v1,
        "HorizontalPodAutoscaler",
        "autoscaling/v1",
        "autoscaling/v2",
    )
    .unwrap();
    assert_eq!(back["spec"]["metrics"], v2["spec"]["metrics"]);
    assert_eq!(back["spec"]["behavior"], v2["spec"]["behavior"]);
    assert_eq!(back["status"], v2["status"]);
    assert_eq!(back["metadata"]["annotations"], json!({"team": "a"}));
}

#[test]
fn a_broken_round_trip_annotation_is_an_error() {
    let v1 = json!({"metadata": {"name": "web", "annotations": {METRIC_SPECS_ANNOTATION: "{"}}, "spec": {"maxReplicas": 3}});
    assert!(
        convert(
            v1,
            "HorizontalPodAutoscaler",
            "autoscaling/v1",
            "autoscaling/v2"
        )
        .is_err()
    );
}

#[test]
fn events_v1_event_converts_to_the_core_form_and_back() {
    let ev = json!({
        "metadata": {"name": "e1", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Sync",
        "reason": "Synced",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p1"},
        "note": "all good",
        "type": "Normal",
    });
    let core = convert(ev.clone(), "Event", "events.k8s.io/v1", "v1").unwrap();
    assert_eq!(
        core,
        json!({
            "metadata": {"name": "e1", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p1"},
            "reason": "Synced",
            "message": "all good",
            "source": {},
            "firstTimestamp": null,
            "lastTimestamp": null,
            "type": "Normal",
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "action": "Sync",
            "reportingComponent": "example.com/ctl",
            "reportingInstance": "ctl-1",
        })
    );
    let back = convert(core, "Event", "v1", "events.k8s.io/v1").unwrap();
    let mut want = ev;
    want["deprecatedSource"] = json!({});
    want["deprecatedFirstTimestamp"] = Value::Null;
    want["deprecatedLastTimestamp"] = Value::Null;
    assert_eq!(back, want);
}

#[test]
fn core_event_series_count_and_source_map_to_deprecated_fields() {
    let core = json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Node", "name": "n1"},
        "message": "m",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2025-01-01T00:00:00Z",
        "lastTimestamp": "2025-01-01T00:01:00Z",
        "count": 3,
        "series": {"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"},
        "related": {"kind": "Pod", "name": "p"},
        "reportingComponent": "",
        "reportingInstance": "",
    });
    let ev = convert(core, "Event", "v1", "events.k8s.io/v1").unwrap();
    assert_eq!(
        ev["deprecatedSource"],
        json!({"component": "kubelet", "host": "n1"})
    );
    assert_eq!(ev["deprecatedCount"], 3);
    assert_eq!(ev["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
    assert_eq!(ev["series"]["count"], 2);
    assert_eq!(ev["related"]["name"], "p");
    assert_eq!(ev["note"], "m");
    assert!(
        ev.get("reportingController").is_none(),
        "empty strings are omitted in events.k8s.io: {ev}"
    );
    assert_eq!(ev["eventTime"], Value::Null);
}

#[test]
fn events_k8s_io_is_stored_with_core() {
    assert_eq!(
        storage_home("events.k8s.io", "events"),
        Some(("", "events"))
    );
    assert_eq!(storage_home("apps", "deployments"), None);
}
