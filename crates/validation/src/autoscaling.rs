//! HorizontalPodAutoscaler defaults (`pkg/apis/autoscaling/v2/defaults.go`,
//! `pkg/apis/autoscaling/v1/defaults.go`, `pkg/apis/autoscaling/helpers.go`).

use serde_json::{Value, json};

/// `SetDefaults_HorizontalPodAutoscaler` for the object's own version: `minReplicas` 1; in v2
/// also 80% CPU when no metrics are given and the unset parts of `behavior` (the scale-down
/// stabilization window stays unset: the controller's flag decides it).
pub fn apply_defaults(version: &str, hpa: &mut Value) {
    let version = hpa["apiVersion"].as_str().and_then(|a| a.strip_prefix("autoscaling/")).unwrap_or(version).to_string();
    let Some(spec) = hpa.get_mut("spec").and_then(Value::as_object_mut) else { return };
    spec.entry("minReplicas").or_insert(json!(1));
    if version != "v2" {
        return;
    }
    if spec.get("metrics").and_then(Value::as_array).is_none_or(Vec::is_empty) {
        spec.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]),
        );
    }
    let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) else { return };
    let up = behavior.entry("scaleUp").or_insert(json!({}));
    if let Some(up) = up.as_object_mut() {
        up.entry("stabilizationWindowSeconds").or_insert(json!(0));
        up.entry("selectPolicy").or_insert(json!("Max"));
        up.entry("policies").or_insert(json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]));
    }
    let down = behavior.entry("scaleDown").or_insert(json!({}));
    if let Some(down) = down.as_object_mut() {
        down.entry("selectPolicy").or_insert(json!("Max"));
        down.entry("policies").or_insert(json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_defaults() {
        let mut h = json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 5}}}});
        apply_defaults("v2", &mut h);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(h["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
        assert_eq!(h["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
        assert_eq!(h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"], 5);
        assert_eq!(h["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Max");
        let mut v1 = json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3}});
        apply_defaults("v1", &mut v1);
        assert_eq!(v1, json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3, "minReplicas": 1}}));
    }
}
