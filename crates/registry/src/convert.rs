//! Conversion between the served versions of one resource, for the kinds whose versions differ
//! in more than `apiVersion`:
//!
//! - `autoscaling/v1` ⇄ `autoscaling/v2` HorizontalPodAutoscaler (stored as v2). v1 only has
//!   `targetCPUUtilizationPercentage`/`currentCPUUtilizationPercentage`; the rest of v2 travels in
//!   `autoscaling.alpha.kubernetes.io/*` annotations so a v1 client that writes the object back
//!   loses nothing (upstream `pkg/apis/autoscaling/v1/conversion.go`, `annotations.go`,
//!   `helpers.go`).
//! - core `v1` Event ⇄ `events.k8s.io/v1` Event, which share storage in the core form (upstream
//!   `pkg/apis/events/v1/conversion.go` and the generated field-by-field conversion).
//!
//! Objects are converted as JSON, in the key order Go's `encoding/json` writes the target struct,
//! with the zero values Go writes for non-pointer fields of the converted parts (so an Event read
//! through the other group looks as it does upstream: `"firstTimestamp": null`, `"source": {}`).
//! Every other kind converts by rewriting `apiVersion` only (done by the caller).

use serde_json::{Map, Value, json};

/// `autoscaling.MetricSpecsAnnotation`.
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`: what a v1 HPA without a target means.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The annotations `DropRoundTripHorizontalPodAutoscalerAnnotations` removes.
const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRIC_SPECS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
];

/// A conversion that cannot be done (a round-trip annotation that is not valid JSON of its type,
/// which upstream reports as a decoding error).
#[derive(Debug, thiserror::Error)]
#[error("converting {kind} from {from} to {to}: {reason}")]
pub struct ConvertError {
    kind: String,
    from: String,
    to: String,
    reason: String,
}

/// Where objects of a group-resource are stored when that differs from the group itself:
/// `events.k8s.io` events live in core's storage, in the core form.
pub fn storage_home(group: &str, plural: &str) -> Option<(&'static str, &'static str)> {
    (group == "events.k8s.io" && plural == "events").then_some(("", "events"))
}

/// Converts the body of `obj` (an object of `kind` in `from`) to the `to` apiVersion. Leaves
/// `apiVersion`/`kind` to the caller. Kinds without a special conversion are returned unchanged.
pub fn convert(obj: Value, kind: &str, from: &str, to: &str) -> Result<Value, ConvertError> {
    if from == to || from.is_empty() {
        return Ok(obj);
    }
    let fail = |reason: String| ConvertError {
        kind: kind.into(),
        from: from.into(),
        to: to.into(),
        reason,
    };
    match (kind, from, to) {
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => Ok(hpa_v2_to_v1(&obj)),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => {
            hpa_v1_to_v2(&obj).map_err(fail)
        }
        ("Event", "v1", "events.k8s.io/v1") => Ok(event_core_to_events(&obj)),
        ("Event", "events.k8s.io/v1", "v1") => Ok(event_events_to_core(&obj)),
        _ => Ok(obj),
    }
}

// ---- shared helpers ---------------------------------------------------------------------------

/// The value of `key` unless absent or `null` (a nil pointer in Go).
fn present<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn put_present(out: &mut Map<String, Value>, key: &str, from: &Value, from_key: &str) {
    if let Some(v) = present(from, from_key) {
        out.insert(key.into(), v.clone());
    }
}

/// A field Go declares without `omitempty`: written even when zero.
fn put_or(out: &mut Map<String, Value>, key: &str, from: &Value, from_key: &str, zero: Value) {
    out.insert(key.into(), present(from, from_key).cloned().unwrap_or(zero));
}

/// A string field with `omitempty`: written only when non-empty.
fn put_nonempty(out: &mut Map<String, Value>, key: &str, from: &Value, from_key: &str) {
    if let Some(v) = present(from, from_key).filter(|v| v.as_str() != Some("") && *v != &json!(0)) {
        out.insert(key.into(), v.clone());
    }
}

fn annotations_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.get_mut("metadata")?
        .get_mut("annotations")?
        .as_object_mut()
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

fn set_annotation(obj: &mut Value, key: &str, value: String) {
    let Some(o) = obj.as_object_mut() else { return };
    let meta = o.entry("metadata").or_insert_with(|| json!({}));
    let Some(m) = meta.as_object_mut() else {
        return;
    };
    let ann = m.entry("annotations").or_insert_with(|| json!({}));
    if let Some(a) = ann.as_object_mut() {
        a.insert(key.into(), Value::String(value));
    }
}

/// Removes the round-trip annotations; an annotation map left empty disappears (`omitempty`).
fn drop_round_trip_annotations(obj: &mut Value) {
    let Some(ann) = annotations_mut(obj) else {
        return;
    };
    for k in ROUND_TRIP_ANNOTATIONS {
        ann.shift_remove(k);
    }
    if ann.is_empty()
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.shift_remove("annotations");
    }
}

/// Replaces `spec` and `status` of `obj` (keeping the other keys and their order).
fn with_spec_status(obj: &Value, spec: Map<String, Value>, status: Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (k, v) in obj.as_object().into_iter().flatten() {
        if k != "spec" && k != "status" {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("spec".into(), Value::Object(spec));
    out.insert("status".into(), Value::Object(status));
    Value::Object(out)
}

// ---- HorizontalPodAutoscaler ------------------------------------------------------------------

fn is_cpu_resource(metric: &Value) -> bool {
    metric["type"] == "Resource" && metric["resource"]["name"] == "cpu"
}

fn is_cpu_utilization_target(metric: &Value) -> bool {
    is_cpu_resource(metric)
        && present(&metric["resource"]["target"], "averageUtilization").is_some()
}

/// `CrossVersionObjectReference` (same JSON in both versions: kind, name, apiVersion).
fn object_reference(r: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "kind", r, "kind", json!(""));
    put_or(&mut out, "name", r, "name", json!(""));
    put_present(&mut out, "apiVersion", r, "apiVersion");
    Value::Object(out)
}

/// v2 `MetricSpec` → v1 `MetricSpec` (the form stored in the metrics annotation).
fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "type", m, "type", json!(""));
    if let Some(o) = present(m, "object") {
        let t = &o["target"];
        let mut v = Map::new();
        v.insert("target".into(), object_reference(&o["describedObject"]));
        put_or(&mut v, "metricName", &o["metric"], "name", json!(""));
        put_or(&mut v, "targetValue", t, "value", json!("0"));
        put_present(&mut v, "selector", &o["metric"], "selector");
        put_present(&mut v, "averageValue", t, "averageValue");
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = present(m, "pods") {
        let mut v = Map::new();
        put_or(&mut v, "metricName", &p["metric"], "name", json!(""));
        put_or(
            &mut v,
            "targetAverageValue",
            &p["target"],
            "averageValue",
            json!("0"),
        );
        put_present(&mut v, "selector", &p["metric"], "selector");
        out.insert("pods".into(), Value::Object(v));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(r) = present(m, key) {
            let mut v = Map::new();
            put_or(&mut v, "name", r, "name", json!(""));
            put_present(
                &mut v,
                "targetAverageUtilization",
                &r["target"],
                "averageUtilization",
            );
            put_present(&mut v, "targetAverageValue", &r["target"], "averageValue");
            if container {
                put_or(&mut v, "container", r, "container", json!(""));
            }
            out.insert(key.into(), Value::Object(v));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut v = Map::new();
        put_or(&mut v, "metricName", &e["metric"], "name", json!(""));
        put_present(&mut v, "metricSelector", &e["metric"], "selector");
        put_present(&mut v, "targetValue", &e["target"], "value");
        put_present(&mut v, "targetAverageValue", &e["target"], "averageValue");
        out.insert("external".into(), Value::Object(v));
    }
    Value::Object(out)
}

/// `MetricIdentifier` from a v1 source's name and selector fields.
fn metric_identifier(src: &Value, name_key: &str, selector_key: &str) -> Value {
    let mut id = Map::new();
    put_or(&mut id, "name", src, name_key, json!(""));
    put_present(&mut id, "selector", src, selector_key);
    Value::Object(id)
}

/// v1 `MetricSpec` (from the annotation) → v2 `MetricSpec`.
fn metric_spec_to_v2(m: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "type", m, "type", json!(""));
    if let Some(o) = present(m, "object") {
        let mut target = Map::new();
        let kind = if present(o, "averageValue").is_some() {
            "AverageValue"
        } else {
            "Value"
        };
        target.insert("type".into(), json!(kind));
        put_or(&mut target, "value", o, "targetValue", json!("0"));
        put_present(&mut target, "averageValue", o, "averageValue");
        out.insert(
            "object".into(),
            json!({
                "describedObject": object_reference(&o["target"]),
                "target": Value::Object(target),
                "metric": metric_identifier(o, "metricName", "selector"),
            }),
        );
    }
    if let Some(p) = present(m, "pods") {
        let mut target = Map::new();
        target.insert("type".into(), json!("AverageValue"));
        put_or(
            &mut target,
            "averageValue",
            p,
            "targetAverageValue",
            json!("0"),
        );
        out.insert(
            "pods".into(),
            json!({"metric": metric_identifier(p, "metricName", "selector"), "target": Value::Object(target)}),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(r) = present(m, key) {
            let mut target = Map::new();
            let kind = if present(r, "targetAverageUtilization").is_some() {
                "Utilization"
            } else {
                "AverageValue"
            };
            target.insert("type".into(), json!(kind));
            put_present(
                &mut target,
                "averageUtilization",
                r,
                "targetAverageUtilization",
            );
            put_present(&mut target, "averageValue", r, "targetAverageValue");
            let mut v = Map::new();
            put_or(&mut v, "name", r, "name", json!(""));
            v.insert("target".into(), Value::Object(target));
            if container {
                put_or(&mut v, "container", r, "container", json!(""));
            }
            out.insert(key.into(), Value::Object(v));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut target = Map::new();
        let kind = if present(e, "targetValue").is_some() {
            "Value"
        } else {
            "AverageValue"
        };
        target.insert("type".into(), json!(kind));
        put_present(&mut target, "value", e, "targetValue");
        put_present(&mut target, "averageValue", e, "targetAverageValue");
        out.insert(
            "external".into(),
            json!({"metric": metric_identifier(e, "metricName", "metricSelector"), "target": Value::Object(target)}),
        );
    }
    Value::Object(out)
}

/// v2 `MetricStatus` → v1 `MetricStatus` (the form stored in the current-metrics annotation).
fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "type", m, "type", json!(""));
    if let Some(o) = present(m, "object") {
        let c = &o["current"];
        let mut v = Map::new();
        v.insert("target".into(), object_reference(&o["describedObject"]));
        put_or(&mut v, "metricName", &o["metric"], "name", json!(""));
        put_or(&mut v, "currentValue", c, "value", json!("0"));
        put_present(&mut v, "selector", &o["metric"], "selector");
        put_present(&mut v, "averageValue", c, "averageValue");
        out.insert("object".into(), Value::Object(v));
    }
    if let Some(p) = present(m, "pods") {
        let mut v = Map::new();
        put_or(&mut v, "metricName", &p["metric"], "name", json!(""));
        put_or(
            &mut v,
            "currentAverageValue",
            &p["current"],
            "averageValue",
            json!("0"),
        );
        put_present(&mut v, "selector", &p["metric"], "selector");
        out.insert("pods".into(), Value::Object(v));
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(r) = present(m, key) {
            let mut v = Map::new();
            put_or(&mut v, "name", r, "name", json!(""));
            put_present(
                &mut v,
                "currentAverageUtilization",
                &r["current"],
                "averageUtilization",
            );
            put_or(
                &mut v,
                "currentAverageValue",
                &r["current"],
                "averageValue",
                json!("0"),
            );
            if container {
                put_or(&mut v, "container", r, "container", json!(""));
            }
            out.insert(key.into(), Value::Object(v));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut v = Map::new();
        put_or(&mut v, "metricName", &e["metric"], "name", json!(""));
        put_present(&mut v, "metricSelector", &e["metric"], "selector");
        put_or(&mut v, "currentValue", &e["current"], "value", json!("0"));
        put_present(&mut v, "currentAverageValue", &e["current"], "averageValue");
        out.insert("external".into(), Value::Object(v));
    }
    Value::Object(out)
}

/// v1 `MetricStatus` (from the annotation) → v2 `MetricStatus`.
fn metric_status_to_v2(m: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "type", m, "type", json!(""));
    if let Some(o) = present(m, "object") {
        let mut current = Map::new();
        put_or(&mut current, "value", o, "currentValue", json!("0"));
        put_present(&mut current, "averageValue", o, "averageValue");
        out.insert(
            "object".into(),
            json!({
                "describedObject": object_reference(&o["target"]),
                "metric": metric_identifier(o, "metricName", "selector"),
                "current": Value::Object(current),
            }),
        );
    }
    if let Some(p) = present(m, "pods") {
        let mut current = Map::new();
        put_or(
            &mut current,
            "averageValue",
            p,
            "currentAverageValue",
            json!("0"),
        );
        out.insert(
            "pods".into(),
            json!({"metric": metric_identifier(p, "metricName", "selector"), "current": Value::Object(current)}),
        );
    }
    for (key, container) in [("resource", false), ("containerResource", true)] {
        if let Some(r) = present(m, key) {
            let mut current = Map::new();
            put_or(
                &mut current,
                "averageValue",
                r,
                "currentAverageValue",
                json!("0"),
            );
            put_present(
                &mut current,
                "averageUtilization",
                r,
                "currentAverageUtilization",
            );
            let mut v = Map::new();
            put_or(&mut v, "name", r, "name", json!(""));
            v.insert("current".into(), Value::Object(current));
            if container {
                put_or(&mut v, "container", r, "container", json!(""));
            }
            out.insert(key.into(), Value::Object(v));
        }
    }
    if let Some(e) = present(m, "external") {
        let mut current = Map::new();
        put_or(&mut current, "value", e, "currentValue", json!("0"));
        put_present(&mut current, "averageValue", e, "currentAverageValue");
        out.insert(
            "external".into(),
            json!({"metric": metric_identifier(e, "metricName", "metricSelector"), "current": Value::Object(current)}),
        );
    }
    Value::Object(out)
}

/// `HorizontalPodAutoscalerCondition` (same fields in both versions; Go's order and omitempty).
fn condition(c: &Value) -> Value {
    let mut out = Map::new();
    put_or(&mut out, "type", c, "type", json!(""));
    put_or(&mut out, "status", c, "status", json!(""));
    put_or(
        &mut out,
        "lastTransitionTime",
        c,
        "lastTransitionTime",
        Value::Null,
    );
    put_nonempty(&mut out, "reason", c, "reason");
    put_nonempty(&mut out, "message", c, "message");
    Value::Object(out)
}

/// The behavior as upstream writes it into the annotation: `json.Marshal` of the internal Go type,
/// which has no json tags, so Go field names and `null` for nil pointers and slices.
fn behavior_to_annotation(b: &Value) -> Value {
    let rules = |r: &Value| -> Value {
        if r.is_null() {
            return Value::Null;
        }
        let policies = match r.get("policies").and_then(Value::as_array) {
            Some(ps) => Value::Array(
                ps.iter()
                    .map(|p| {
                        json!({
                            "Type": p.get("type").cloned().unwrap_or(json!("")),
                            "Value": p.get("value").cloned().unwrap_or(json!(0)),
                            "PeriodSeconds": p.get("periodSeconds").cloned().unwrap_or(json!(0)),
                        })
                    })
                    .collect(),
            ),
            None => Value::Null,
        };
        json!({
            "StabilizationWindowSeconds": r.get("stabilizationWindowSeconds").cloned().unwrap_or(Value::Null),
            "SelectPolicy": r.get("selectPolicy").cloned().unwrap_or(Value::Null),
            "Policies": policies,
            "Tolerance": r.get("tolerance").cloned().unwrap_or(Value::Null),
        })
    };
    json!({
        "ScaleUp": rules(b.get("scaleUp").unwrap_or(&Value::Null)),
        "ScaleDown": rules(b.get("scaleDown").unwrap_or(&Value::Null)),
    })
}

/// A key looked up the way `encoding/json` matches struct fields: exact, else case-insensitive.
fn field_ci<'a>(obj: &'a Value, name: &str) -> Option<&'a Value> {
    let m = obj.as_object()?;
    m.get(name)
        .or_else(|| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// The inverse of [`behavior_to_annotation`]: the v2 `behavior`.
fn behavior_from_annotation(raw: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(raw).map_err(|e| format!("{BEHAVIOR_ANNOTATION}: {e}"))?;
    let rules = |r: &Value| -> Value {
        let mut out = Map::new();
        if let Some(x) = field_ci(r, "StabilizationWindowSeconds") {
            out.insert("stabilizationWindowSeconds".into(), x.clone());
        }
        if let Some(x) = field_ci(r, "SelectPolicy") {
            out.insert("selectPolicy".into(), x.clone());
        }
        if let Some(ps) = field_ci(r, "Policies").and_then(Value::as_array) {
            let ps = ps
                .iter()
                .map(|p| {
                    json!({
                        "type": field_ci(p, "Type").cloned().unwrap_or(json!("")),
                        "value": field_ci(p, "Value").cloned().unwrap_or(json!(0)),
                        "periodSeconds": field_ci(p, "PeriodSeconds").cloned().unwrap_or(json!(0)),
                    })
                })
                .collect();
            out.insert("policies".into(), Value::Array(ps));
        }
        if let Some(x) = field_ci(r, "Tolerance") {
            out.insert("tolerance".into(), x.clone());
        }
        Value::Object(out)
    };
    let mut out = Map::new();
    if let Some(r) = field_ci(&v, "ScaleUp") {
        out.insert("scaleUp".into(), rules(r));
    }
    if let Some(r) = field_ci(&v, "ScaleDown") {
        out.insert("scaleDown".into(), rules(r));
    }
    Ok(Value::Object(out))
}

/// `Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler`.
fn hpa_v2_to_v1(v2: &Value) -> Value {
    let in_spec = &v2["spec"];
    let in_status = &v2["status"];
    let metrics = in_spec["metrics"].as_array().cloned().unwrap_or_default();
    let current = in_status["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();

    let mut spec = Map::new();
    spec.insert(
        "scaleTargetRef".into(),
        object_reference(&in_spec["scaleTargetRef"]),
    );
    put_present(&mut spec, "minReplicas", in_spec, "minReplicas");
    put_or(&mut spec, "maxReplicas", in_spec, "maxReplicas", json!(0));
    // The first CPU resource metric decides, even when it targets an average value.
    if let Some(m) = metrics.iter().find(|m| is_cpu_resource(m)) {
        put_present(
            &mut spec,
            "targetCPUUtilizationPercentage",
            &m["resource"]["target"],
            "averageUtilization",
        );
    }

    let mut status = Map::new();
    put_present(
        &mut status,
        "observedGeneration",
        in_status,
        "observedGeneration",
    );
    put_present(&mut status, "lastScaleTime", in_status, "lastScaleTime");
    put_or(
        &mut status,
        "currentReplicas",
        in_status,
        "currentReplicas",
        json!(0),
    );
    put_or(
        &mut status,
        "desiredReplicas",
        in_status,
        "desiredReplicas",
        json!(0),
    );
    // No early exit upstream: the last CPU status with a utilization wins.
    for m in current.iter().filter(|m| is_cpu_resource(m)) {
        put_present(
            &mut status,
            "currentCPUUtilizationPercentage",
            &m["resource"]["current"],
            "averageUtilization",
        );
    }

    let mut out = with_spec_status(v2, spec, status);
    drop_round_trip_annotations(&mut out);
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization_target(m))
        .map(metric_spec_to_v1)
        .collect();
    if !other.is_empty() {
        set_annotation(
            &mut out,
            METRIC_SPECS_ANNOTATION,
            Value::Array(other).to_string(),
        );
    }
    if !current.is_empty() {
        let statuses: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        set_annotation(
            &mut out,
            METRIC_STATUSES_ANNOTATION,
            Value::Array(statuses).to_string(),
        );
    }
    if let Some(b) = present(in_spec, "behavior") {
        set_annotation(
            &mut out,
            BEHAVIOR_ANNOTATION,
            behavior_to_annotation(b).to_string(),
        );
    }
    if let Some(conds) = in_status["conditions"].as_array().filter(|c| !c.is_empty()) {
        let conds: Vec<Value> = conds.iter().map(condition).collect();
        set_annotation(
            &mut out,
            CONDITIONS_ANNOTATION,
            Value::Array(conds).to_string(),
        );
    }
    out
}

fn annotation_list(obj: &Value, key: &str) -> Result<Option<Vec<Value>>, String> {
    match annotation(obj, key) {
        None => Ok(None),
        Some(raw) => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Array(items)) => Ok(Some(items)),
            Ok(Value::Null) => Ok(Some(Vec::new())),
            Ok(other) => Err(format!("{key}: expected a JSON array, got {other}")),
            Err(e) => Err(format!("{key}: {e}")),
        },
    }
}

/// `Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler`.
fn hpa_v1_to_v2(v1: &Value) -> Result<Value, String> {
    let in_spec = &v1["spec"];
    let in_status = &v1["status"];

    let mut spec = Map::new();
    spec.insert(
        "scaleTargetRef".into(),
        object_reference(&in_spec["scaleTargetRef"]),
    );
    put_present(&mut spec, "minReplicas", in_spec, "minReplicas");
    put_or(&mut spec, "maxReplicas", in_spec, "maxReplicas", json!(0));
    let mut metrics = Vec::new();
    if let Some(pct) = present(in_spec, "targetCPUUtilizationPercentage") {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}}}));
    }
    if let Some(other) = annotation_list(v1, METRIC_SPECS_ANNOTATION)? {
        // The metrics v1 could not express come first, the CPU target (if any) last.
        let mut all: Vec<Value> = other.iter().map(metric_spec_to_v2).collect();
        all.append(&mut metrics);
        metrics = all;
    }
    if metrics.is_empty() {
        // autoscaling/v1 implied this target before v2 made it explicit.
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}));
    }
    spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(raw) = annotation(v1, BEHAVIOR_ANNOTATION) {
        spec.insert("behavior".into(), behavior_from_annotation(raw)?);
    }

    let mut status = Map::new();
    put_present(
        &mut status,
        "observedGeneration",
        in_status,
        "observedGeneration",
    );
    put_present(&mut status, "lastScaleTime", in_status, "lastScaleTime");
    put_nonempty(&mut status, "currentReplicas", in_status, "currentReplicas");
    put_or(
        &mut status,
        "desiredReplicas",
        in_status,
        "desiredReplicas",
        json!(0),
    );
    if let Some(current) = annotation_list(v1, METRIC_STATUSES_ANNOTATION)? {
        // The annotation has more information than currentCPUUtilizationPercentage.
        status.insert(
            "currentMetrics".into(),
            Value::Array(current.iter().map(metric_status_to_v2).collect()),
        );
    } else if let Some(pct) = present(in_status, "currentCPUUtilizationPercentage") {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": pct}}}]),
        );
    }
    if let Some(conds) = annotation_list(v1, CONDITIONS_ANNOTATION)? {
        status.insert(
            "conditions".into(),
            Value::Array(conds.iter().map(condition).collect()),
        );
    }

    let mut out = with_spec_status(v1, spec, status);
    drop_round_trip_annotations(&mut out);
    Ok(out)
}

// ---- Event ------------------------------------------------------------------------------------

/// Copies every key except the listed ones, in order (`kind`, `apiVersion`, `metadata` first).
fn event_head(obj: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for k in ["kind", "apiVersion", "metadata"] {
        if let Some(v) = obj.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    out
}

/// Core `v1` Event → `events.k8s.io/v1` Event.
fn event_core_to_events(core: &Value) -> Value {
    let mut out = event_head(core);
    put_or(&mut out, "eventTime", core, "eventTime", Value::Null);
    put_present(&mut out, "series", core, "series");
    put_nonempty(&mut out, "reportingController", core, "reportingComponent");
    put_nonempty(&mut out, "reportingInstance", core, "reportingInstance");
    put_nonempty(&mut out, "action", core, "action");
    put_nonempty(&mut out, "reason", core, "reason");
    put_or(&mut out, "regarding", core, "involvedObject", json!({}));
    put_present(&mut out, "related", core, "related");
    put_nonempty(&mut out, "note", core, "message");
    put_nonempty(&mut out, "type", core, "type");
    put_or(&mut out, "deprecatedSource", core, "source", json!({}));
    put_or(
        &mut out,
        "deprecatedFirstTimestamp",
        core,
        "firstTimestamp",
        Value::Null,
    );
    put_or(
        &mut out,
        "deprecatedLastTimestamp",
        core,
        "lastTimestamp",
        Value::Null,
    );
    put_nonempty(&mut out, "deprecatedCount", core, "count");
    Value::Object(out)
}

/// `events.k8s.io/v1` Event → core `v1` Event (the stored form).
fn event_events_to_core(ev: &Value) -> Value {
    let mut out = event_head(ev);
    put_or(&mut out, "involvedObject", ev, "regarding", json!({}));
    put_nonempty(&mut out, "reason", ev, "reason");
    put_nonempty(&mut out, "message", ev, "note");
    put_or(&mut out, "source", ev, "deprecatedSource", json!({}));
    put_or(
        &mut out,
        "firstTimestamp",
        ev,
        "deprecatedFirstTimestamp",
        Value::Null,
    );
    put_or(
        &mut out,
        "lastTimestamp",
        ev,
        "deprecatedLastTimestamp",
        Value::Null,
    );
    put_nonempty(&mut out, "count", ev, "deprecatedCount");
    put_nonempty(&mut out, "type", ev, "type");
    put_or(&mut out, "eventTime", ev, "eventTime", Value::Null);
    put_present(&mut out, "series", ev, "series");
    put_nonempty(&mut out, "action", ev, "action");
    put_present(&mut out, "related", ev, "related");
    put_or(
        &mut out,
        "reportingComponent",
        ev,
        "reportingController",
        json!(""),
    );
    put_or(
        &mut out,
        "reportingInstance",
        ev,
        "reportingInstance",
        json!(""),
    );
    Value::Object(out)
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
