//! LimitRanger: container defaults from the namespace's LimitRanges, then min, max and
//! maxLimitRequestRatio of containers, pods and PersistentVolumeClaims
//! (upstream `plugin/pkg/admission/limitranger/admission.go`).

use rkube_apimachinery::ApiError;
use rkube_apimachinery::quantity::milli_value;
use rkube_registry::admission::Operation;
use serde_json::{Map, Value, json};

use crate::context::{Context, Plugin};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The plugin.
pub struct LimitRanger;

#[async_trait::async_trait]
impl Plugin for LimitRanger {
    async fn admit(&self, ctx: &Context<'_>, obj: Option<&mut Value>) -> Result<(), ApiError> {
        let Some(pod) = obj else { return Ok(()) };
        // Containers are immutable, so pods are only looked at when created (as upstream).
        if !ctx.is_pod_create() {
            return Ok(());
        }
        let items = limit_items(ctx).await?;
        apply_container_defaults(pod, &items);
        Ok(())
    }

    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        let pvc = ctx.is("", "persistentvolumeclaims") && matches!(ctx.req.operation, Operation::Create | Operation::Update);
        if !ctx.is_pod_create() && !pvc {
            return Ok(());
        }
        let items = limit_items(ctx).await?;
        let errors = if pvc { validate_claim(obj, &items) } else { validate_pod(obj, &items) };
        match errors.as_slice() {
            [] => Ok(()),
            [one] => Err(ctx.forbidden(one)),
            many => Err(ctx.forbidden(&format!("[{}]", many.join(", ")))),
        }
    }
}

/// The `spec.limits` items of every LimitRange in the namespace, with the v1 defaults
/// (`SetDefaults_LimitRangeItem`: default ← max, defaultRequest ← default, then ← min).
async fn limit_items(ctx: &Context<'_>) -> Result<Vec<Value>, ApiError> {
    let mut items = Vec::new();
    for lr in ctx.list("", "v1", "limitranges", Some(ctx.namespace())).await? {
        for mut item in lr["spec"]["limits"].as_array().cloned().unwrap_or_default() {
            if item["type"] == "Container" {
                fill_missing(&mut item, "default", "max");
                fill_missing(&mut item, "defaultRequest", "default");
                fill_missing(&mut item, "defaultRequest", "min");
            }
            items.push(item);
        }
    }
    Ok(items)
}

fn fill_missing(item: &mut Value, target: &str, source: &str) {
    let Some(src) = item[source].as_object().cloned() else { return };
    if !item[target].is_object() {
        item[target] = json!({});
    }
    if let Some(t) = item[target].as_object_mut() {
        for (k, v) in src {
            t.entry(k).or_insert(v);
        }
    }
}

fn apply_container_defaults(pod: &mut Value, items: &[Value]) {
    let mut limits = Map::new();
    let mut requests = Map::new();
    for item in items.iter().filter(|i| i["type"] == "Container") {
        limits.extend(item["default"].as_object().cloned().unwrap_or_default());
        requests.extend(item["defaultRequest"].as_object().cloned().unwrap_or_default());
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (field, kind) in [("containers", "container"), ("initContainers", "init container")] {
        for c in pod["spec"][field].as_array_mut().into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or("").to_string();
            for (section, defaults, what) in [("requests", &requests, "request"), ("limits", &limits, "limit")] {
                let mut set = Vec::new();
                if !c["resources"].is_object() {
                    c["resources"] = json!({});
                }
                if !c["resources"][section].is_object() {
                    c["resources"][section] = json!({});
                }
                if let Some(current) = c["resources"][section].as_object_mut() {
                    for (k, v) in defaults {
                        if !current.contains_key(k) {
                            current.insert(k.clone(), v.clone());
                            set.push(k.clone());
                        }
                    }
                }
                if c["resources"][section].as_object().is_some_and(Map::is_empty)
                    && let Some(r) = c["resources"].as_object_mut()
                {
                    r.remove(section);
                }
                if !set.is_empty() {
                    set.sort();
                    notes.push(format!("{} {what} for {kind} {name}", set.join(", ")));
                }
            }
        }
    }
    if !notes.is_empty() {
        let meta = &mut pod["metadata"];
        if !meta["annotations"].is_object() {
            meta["annotations"] = json!({});
        }
        meta["annotations"][ANNOTATION] = json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
    }
}

/// A resource list as (name → milli value, text as written).
fn resource_list(v: &Value) -> Vec<(String, i64, String)> {
    v.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| {
            let text = match q {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            milli_value(&text).map(|m| (k.clone(), m, text))
        })
        .collect()
}

fn find<'a>(list: &'a [(String, i64, String)], name: &str) -> Option<&'a (String, i64, String)> {
    list.iter().find(|(k, _, _)| k == name)
}

/// Checks one (requests, limits) pair against one item's min, max and ratio.
fn check(kind: &str, item: &Value, requests: &[(String, i64, String)], limits: &[(String, i64, String)], errors: &mut Vec<String>) {
    for (res, enforced, text) in resource_list(&item["min"]) {
        let req = find(requests, &res);
        let lim = find(limits, &res);
        match req {
            None => errors.push(format!("minimum {res} usage per {kind} is {text}.  No request is specified")),
            Some((_, r, rt)) if *r < enforced => errors.push(format!("minimum {res} usage per {kind} is {text}, but request is {rt}")),
            _ => {
                if let Some((_, l, lt)) = lim.filter(|(_, l, _)| *l < enforced) {
                    let _ = l;
                    errors.push(format!("minimum {res} usage per {kind} is {text}, but limit is {lt}"));
                }
            }
        }
    }
    for (res, enforced, text) in resource_list(&item["max"]) {
        let req = find(requests, &res);
        match find(limits, &res) {
            None => errors.push(format!("maximum {res} usage per {kind} is {text}.  No limit is specified")),
            Some((_, l, lt)) if *l > enforced => errors.push(format!("maximum {res} usage per {kind} is {text}, but limit is {lt}")),
            _ => {
                if let Some((_, _, rt)) = req.filter(|(_, r, _)| *r > enforced) {
                    errors.push(format!("maximum {res} usage per {kind} is {text}, but request is {rt}"));
                }
            }
        }
    }
    for (res, enforced, text) in resource_list(&item["maxLimitRequestRatio"]) {
        let req = find(requests, &res).map(|r| r.1).unwrap_or(0);
        let lim = find(limits, &res).map(|l| l.1).unwrap_or(0);
        if req == 0 {
            errors.push(format!("{res} max limit to request ratio per {kind} is {text}, but no request is specified or request is 0"));
        } else if lim == 0 {
            errors.push(format!("{res} max limit to request ratio per {kind} is {text}, but no limit is specified or limit is 0"));
        } else {
            let ratio = lim as f64 / req as f64;
            if ratio * 1000.0 > enforced as f64 {
                errors.push(format!("{res} max limit to request ratio per {kind} is {text}, but provided ratio is {ratio:.6}"));
            }
        }
    }
}

fn validate_pod(pod: &Value, items: &[Value]) -> Vec<String> {
    let mut errors = Vec::new();
    let containers: Vec<&Value> = super::regular_containers(&pod["spec"]).map(|(_, c)| c).collect();
    for item in items {
        match item["type"].as_str() {
            Some("Container") => {
                for c in &containers {
                    check("Container", item, &resource_list(&c["resources"]["requests"]), &resource_list(&c["resources"]["limits"]), &mut errors);
                }
            }
            Some("Pod") => {
                let sum = |section: &str| {
                    let mut total: Vec<(String, i64, String)> = Vec::new();
                    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
                        for (k, m, _) in resource_list(&c["resources"][section]) {
                            match total.iter_mut().find(|(n, _, _)| *n == k) {
                                Some(t) => t.1 += m,
                                None => total.push((k, m, String::new())),
                            }
                        }
                    }
                    total.into_iter().map(|(k, m, _)| (k, m, format_milli(m))).collect::<Vec<_>>()
                };
                check("Pod", item, &sum("requests"), &sum("limits"), &mut errors);
            }
            _ => {}
        }
    }
    errors
}

fn validate_claim(pvc: &Value, items: &[Value]) -> Vec<String> {
    let mut errors = Vec::new();
    let resources = &pvc["spec"]["resources"];
    for item in items.iter().filter(|i| i["type"] == "PersistentVolumeClaim") {
        check("PersistentVolumeClaim", item, &resource_list(&resources["requests"]), &resource_list(&resources["limits"]), &mut errors);
    }
    errors
}

/// A summed quantity written back: whole units when exact, else milli units.
fn format_milli(m: i64) -> String {
    if m % 1000 == 0 { (m / 1000).to_string() } else { format!("{m}m") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_applied_and_recorded_in_the_annotation() {
        let mut item = json!({"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"}});
        fill_missing(&mut item, "defaultRequest", "default");
        let mut pod = json!({"metadata": {}, "spec": {"containers": [{"name": "nginx"}]}});
        apply_container_defaults(&mut pod, &[item]);
        assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["cpu"], "500m");
        assert_eq!(pod["spec"]["containers"][0]["resources"]["requests"]["memory"], "128Mi");
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container nginx; cpu, memory limit for container nginx"
        );
    }

    #[test]
    fn max_and_ratio_report_upstream_messages() {
        let item = json!({"type": "Container", "max": {"cpu": "1"}, "maxLimitRequestRatio": {"memory": "2"}});
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "256Mi"}}}]}});
        assert_eq!(
            validate_pod(&pod, &[item]),
            vec![
                "maximum cpu usage per Container is 1, but limit is 2".to_string(),
                "memory max limit to request ratio per Container is 2, but provided ratio is 4.000000".to_string(),
            ]
        );
    }
}
