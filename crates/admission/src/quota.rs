//! What objects charge against ResourceQuotas (upstream `pkg/quota/v1/evaluator/core` and the
//! generic object-count evaluator), shared by the ResourceQuota admission plugin and the quota
//! controller: usage per object, quota scopes, and upstream's quantity texts. Amounts are kept in
//! milli units.

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::ApiError;
use rkube_apimachinery::quantity::milli_value;
use rkube_registry::{ListOptions, Registry};
use serde_json::Value;

/// Usage or limits by quota resource name, in milli units.
pub type Usage = BTreeMap<String, i64>;

/// Suffix of the per-StorageClass quota names (`gold.storageclass.storage.k8s.io/requests.storage`).
const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// `hard` of a quota: `status.hard` once the controller has copied it, else `spec.hard`, as
/// name → (milli value, text).
pub fn hard_of(quota: &Value) -> BTreeMap<String, (i64, String)> {
    let hard = if quota["status"]["hard"].is_object() { &quota["status"]["hard"] } else { &quota["spec"]["hard"] };
    quantities(hard).collect()
}

/// `status.used` of a quota as name → milli value.
pub fn used_of(quota: &Value) -> Usage {
    quantities(&quota["status"]["used"]).map(|(k, (m, _))| (k, m)).collect()
}

fn quantities(v: &Value) -> impl Iterator<Item = (String, (i64, String))> + '_ {
    v.as_object().into_iter().flatten().filter_map(|(k, v)| {
        let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        milli_value(&text).map(|m| (k.clone(), (m, text)))
    })
}

/// Whether a quota resource name counts bytes (printed with binary suffixes).
fn counts_bytes(name: &str) -> bool {
    name.ends_with("memory") || name.ends_with("storage") || name.starts_with("hugepages-") || name.contains(".hugepages-")
}

/// A quantity as upstream prints it: whole counts plainly, fractions in milli units, byte
/// amounts with the largest binary suffix that divides them.
pub fn format_quantity(name: &str, milli: i64) -> String {
    if milli % 1000 != 0 {
        return format!("{milli}m");
    }
    let whole = milli / 1000;
    if counts_bytes(name) && whole != 0 {
        for (suffix, unit) in [("Ei", 1i64 << 60), ("Pi", 1 << 50), ("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
            if whole % unit == 0 {
                return format!("{}{suffix}", whole / unit);
            }
        }
    }
    whole.to_string()
}

/// Sums containers' `resources.<section>`; init containers run before, so the pod needs the
/// larger of the sum and any init container (upstream `PodRequestsAndLimits`).
fn pod_resources(spec: &Value, section: &str) -> Usage {
    let of = |c: &Value| -> Usage { quantities(&c["resources"][section]).map(|(k, (m, _))| (k, m)).collect() };
    let mut total = Usage::new();
    for c in spec["containers"].as_array().into_iter().flatten() {
        for (k, m) in of(c) {
            *total.entry(k).or_default() += m;
        }
    }
    for c in spec["initContainers"].as_array().into_iter().flatten() {
        for (k, m) in of(c) {
            let e = total.entry(k).or_default();
            *e = (*e).max(m);
        }
    }
    for (k, m) in quantities(&spec["overhead"]).map(|(k, (m, _))| (k, m)) {
        *total.entry(k).or_default() += m;
    }
    total
}

/// Pods in a terminal phase or being deleted stop counting (upstream's `QuotaV1Pod`).
fn pod_counts(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && pod["metadata"]["deletionTimestamp"].is_null()
}

/// The quota resource names an object counts against, with its amounts.
pub fn object_usage(group: &str, plural: &str, obj: &Value) -> Usage {
    let mut usage = Usage::new();
    let count_name = if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") };
    if group.is_empty() && plural == "pods" && !pod_counts(obj) {
        return usage;
    }
    usage.insert(count_name, 1000);
    if !group.is_empty() {
        return usage;
    }
    match plural {
        "pods" => {
            usage.insert("pods".into(), 1000);
            for (k, m) in pod_resources(&obj["spec"], "requests") {
                if matches!(k.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                    usage.insert(k.clone(), m);
                }
                usage.insert(format!("requests.{k}"), m);
            }
            for (k, m) in pod_resources(&obj["spec"], "limits") {
                usage.insert(format!("limits.{k}"), m);
            }
        }
        "services" => {
            usage.insert("services".into(), 1000);
            let ports = obj["spec"]["ports"].as_array().map_or(0, |p| p.len() as i64 * 1000);
            match obj["spec"]["type"].as_str() {
                Some("LoadBalancer") => {
                    usage.insert("services.loadbalancers".into(), 1000);
                    if obj["spec"]["allocateLoadBalancerNodePorts"].as_bool() != Some(false) {
                        usage.insert("services.nodeports".into(), ports);
                    }
                }
                Some("NodePort") => {
                    usage.insert("services.nodeports".into(), ports);
                }
                _ => {}
            }
        }
        "persistentvolumeclaims" => {
            usage.insert("persistentvolumeclaims".into(), 1000);
            let class = obj["spec"]["storageClassName"].as_str().filter(|c| !c.is_empty());
            if let Some(class) = class {
                usage.insert(format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"), 1000);
            }
            if let Some(m) = obj["spec"]["resources"]["requests"]["storage"].as_str().and_then(milli_value) {
                usage.insert("requests.storage".into(), m);
                if let Some(class) = class {
                    usage.insert(format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"), m);
                }
            }
        }
        "secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas" => {
            usage.insert(plural.to_string(), 1000);
        }
        _ => {}
    }
    usage
}

/// The resource (group, plural) a quota resource name counts.
pub fn counted_resource(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    if name.contains(STORAGE_CLASS_SUFFIX) {
        return Some((String::new(), "persistentvolumeclaims".into()));
    }
    let plural = match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => "pods",
        "persistentvolumeclaims" | "requests.storage" => "persistentvolumeclaims",
        n if n.starts_with("requests.") || n.starts_with("limits.") => "pods",
        "services" | "services.loadbalancers" | "services.nodeports" => "services",
        "secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas" => name,
        _ => return None,
    };
    Some((String::new(), plural.to_string()))
}

/// A quota's scopes as (scope, operator, values): `spec.scopes` entries mean `Exists`.
fn scope_requirements(quota: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut reqs: Vec<(String, String, Vec<String>)> =
        quota["spec"]["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).map(|s| (s.to_string(), "Exists".to_string(), Vec::new())).collect();
    for e in quota["spec"]["scopeSelector"]["matchExpressions"].as_array().into_iter().flatten() {
        let values = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
        reqs.push((e["scopeName"].as_str().unwrap_or("").to_string(), e["operator"].as_str().unwrap_or("").to_string(), values));
    }
    reqs
}

/// Upstream's QoS class test: no container requests or limits CPU or memory.
pub fn is_best_effort(spec: &Value) -> bool {
    let containers = ["initContainers", "containers"].iter().flat_map(|f| spec[*f].as_array().into_iter().flatten());
    !containers.into_iter().any(|c| {
        ["requests", "limits"].iter().any(|s| ["cpu", "memory"].iter().any(|r| c["resources"][*s][*r].as_str().and_then(milli_value).is_some_and(|m| m > 0)))
    })
}

/// Whether any pod (anti-)affinity term reaches other namespaces.
fn uses_cross_namespace_affinity(spec: &Value) -> bool {
    ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
        let a = &spec["affinity"][*kind];
        let required = a["requiredDuringSchedulingIgnoredDuringExecution"].as_array().into_iter().flatten();
        let preferred = a["preferredDuringSchedulingIgnoredDuringExecution"].as_array().into_iter().flatten().map(|w| &w["podAffinityTerm"]);
        required.chain(preferred).any(|t| t["namespaceSelector"].is_object() || t["namespaces"].as_array().is_some_and(|n| !n.is_empty()))
    })
}

/// Whether a quota applies to an object: quotas without scopes apply to everything; scoped
/// quotas only to pods whose every scope matches (upstream `podMatchesScopeFunc`; other
/// evaluators match no scope).
pub fn quota_matches(quota: &Value, group: &str, plural: &str, obj: &Value) -> bool {
    let reqs = scope_requirements(quota);
    if reqs.is_empty() {
        return true;
    }
    if !(group.is_empty() && plural == "pods") {
        return false;
    }
    let spec = &obj["spec"];
    reqs.iter().all(|(scope, op, values)| {
        let holds = match scope.as_str() {
            "Terminating" => spec["activeDeadlineSeconds"].as_i64().is_some_and(|s| s >= 0),
            "NotTerminating" => spec["activeDeadlineSeconds"].as_i64().is_none_or(|s| s < 0),
            "BestEffort" => is_best_effort(spec),
            "NotBestEffort" => !is_best_effort(spec),
            "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(spec),
            "PriorityClass" => {
                let class = spec["priorityClassName"].as_str().unwrap_or("");
                return match op.as_str() {
                    "In" => values.iter().any(|v| v == class),
                    "NotIn" => !values.iter().any(|v| v == class),
                    "Exists" => !class.is_empty(),
                    "DoesNotExist" => class.is_empty(),
                    _ => false,
                };
            }
            _ => return false,
        };
        match op.as_str() {
            "DoesNotExist" => !holds,
            _ => holds,
        }
    })
}

/// Upstream's pod `Constraints`: when a quota limits CPU or memory, every container must state
/// that request or limit. Returns `must specify limits.cpu for: a,b; requests.cpu for: a`.
pub fn missing_pod_resources(pod: &Value, hard: &BTreeSet<String>) -> Option<String> {
    const VALIDATED: [&str; 6] = ["cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"];
    let required: Vec<&str> = VALIDATED.into_iter().filter(|r| hard.contains(*r)).collect();
    if required.is_empty() {
        return None;
    }
    let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let spec = &pod["spec"];
    for c in ["containers", "initContainers"].iter().flat_map(|f| spec[*f].as_array().into_iter().flatten()) {
        let has = |section: &str, r: &str| !c["resources"][section][r].is_null();
        for r in &required {
            let stated = match *r {
                "cpu" | "requests.cpu" => has("requests", "cpu"),
                "memory" | "requests.memory" => has("requests", "memory"),
                "limits.cpu" => has("limits", "cpu"),
                _ => has("limits", "memory"),
            };
            if !stated {
                missing.entry(r).or_default().insert(c["name"].as_str().unwrap_or("").to_string());
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing.iter().map(|(r, names)| format!("{r} for: {}", names.iter().cloned().collect::<Vec<_>>().join(","))).collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// A quota's usage recomputed from the stored objects of its namespace (what the quota
/// controller writes to `status.used`).
pub async fn recompute(registry: &Registry, quota: &Value) -> Result<Usage, ApiError> {
    let ns = quota["metadata"]["namespace"].as_str().unwrap_or("");
    // The spec's names: a recount is what brings `status.hard` up to date.
    let names: Vec<String> = quantities(&quota["spec"]["hard"]).map(|(k, _)| k).collect();
    let mut by_resource: BTreeMap<(String, String), Vec<&String>> = BTreeMap::new();
    for n in &names {
        if let Some(r) = counted_resource(n) {
            by_resource.entry(r).or_default().push(n);
        }
    }
    let mut used: Usage = names.iter().map(|n| (n.clone(), 0)).collect();
    for ((group, plural), wanted) in by_resource {
        let Some(res) = registry.resources().into_iter().find(|r| r.group == group && r.plural == plural) else { continue };
        let listed = registry.list(&res, Some(ns), &ListOptions::default()).await?;
        for item in listed["items"].as_array().into_iter().flatten() {
            if !quota_matches(quota, &group, &plural, item) {
                continue;
            }
            let u = object_usage(&group, &plural, item);
            for n in &wanted {
                if let Some(m) = u.get(*n) {
                    *used.entry((*n).clone()).or_default() += m;
                }
            }
        }
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_usage_counts_pods_and_requests_with_init_containers_as_a_floor() {
        let pod = json!({"spec": {
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"cpu": "1"}}}, {"resources": {"requests": {"cpu": "250m"}}}],
        }});
        let u = object_usage("", "pods", &pod);
        assert_eq!(u.get("pods"), Some(&1000));
        assert_eq!(u.get("count/pods"), Some(&1000));
        assert_eq!(u.get("requests.cpu"), Some(&2000));
        assert_eq!(u.get("limits.cpu"), Some(&1000));
        assert_eq!(format_quantity("requests.memory", u["requests.memory"]), "64Mi");
        assert_eq!(format_quantity("requests.cpu", 500), "500m");
    }

    #[test]
    fn claims_count_storage_overall_and_per_class() {
        let pvc = json!({"spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "10Gi"}}}});
        let u = object_usage("", "persistentvolumeclaims", &pvc);
        assert_eq!(format_quantity("requests.storage", u["requests.storage"]), "10Gi");
        assert_eq!(u["gold.storageclass.storage.k8s.io/requests.storage"], u["requests.storage"]);
        assert_eq!(u["gold.storageclass.storage.k8s.io/persistentvolumeclaims"], 1000);
        assert_eq!(counted_resource("gold.storageclass.storage.k8s.io/requests.storage"), Some((String::new(), "persistentvolumeclaims".into())));
        assert_eq!(counted_resource("count/deployments.apps"), Some(("apps".into(), "deployments".into())));
    }

    #[test]
    fn finished_pods_do_not_count() {
        let pod = json!({"status": {"phase": "Succeeded"}, "spec": {}});
        assert!(object_usage("", "pods", &pod).is_empty());
    }

    #[test]
    fn scopes_select_pods() {
        let best_effort = json!({"spec": {"containers": [{"name": "c"}]}});
        let burstable = json!({"spec": {"activeDeadlineSeconds": 30, "priorityClassName": "high", "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
        let quota = |spec: Value| json!({"spec": spec});
        let be = quota(json!({"scopes": ["BestEffort"]}));
        assert!(quota_matches(&be, "", "pods", &best_effort));
        assert!(!quota_matches(&be, "", "pods", &burstable));
        assert!(!quota_matches(&be, "", "configmaps", &json!({})));
        let term = quota(json!({"scopes": ["Terminating", "NotBestEffort"]}));
        assert!(quota_matches(&term, "", "pods", &burstable));
        let high = quota(json!({"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}));
        assert!(quota_matches(&high, "", "pods", &burstable));
        assert!(!quota_matches(&high, "", "pods", &best_effort));
    }

    #[test]
    fn quotas_on_cpu_require_each_container_to_state_it() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}});
        let hard: BTreeSet<String> = ["requests.cpu", "limits.cpu", "pods"].iter().map(|s| s.to_string()).collect();
        assert_eq!(missing_pod_resources(&pod, &hard).as_deref(), Some("must specify limits.cpu for: a,b; requests.cpu for: a"));
    }
}
