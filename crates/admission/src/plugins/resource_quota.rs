//! ResourceQuota: a create that would take a namespace's usage over a quota's `spec.hard` is
//! refused with upstream's `exceeded quota` 403 (`staging/src/k8s.io/apiserver/pkg/admission/
//! plugin/resourcequota/controller.go`). Usage is computed from the stored objects; the quota
//! controller ([`crate::quota_controller`]) keeps `status.used` current with the same functions.
//! Quota scopes are not evaluated yet: a quota with scopes applies to every object.

use std::collections::BTreeMap;

use rkube_apimachinery::ApiError;
use rkube_apimachinery::quantity::milli_value;
use rkube_registry::admission::Operation;
use rkube_registry::{ListOptions, Registry};
use serde_json::Value;

use crate::context::{Context, Plugin};

/// The plugin.
pub struct ResourceQuota;

#[async_trait::async_trait]
impl Plugin for ResourceQuota {
    async fn validate(&self, ctx: &Context<'_>, obj: Option<&Value>) -> Result<(), ApiError> {
        let Some(obj) = obj else { return Ok(()) };
        if ctx.req.operation != Operation::Create || !ctx.req.subresource.is_empty() {
            return Ok(());
        }
        let Some(ns) = ctx.req.namespace else { return Ok(()) };
        let res = ctx.req.resource;
        let quotas = ctx.list("", "v1", "resourcequotas", Some(ns)).await?;
        if quotas.is_empty() {
            return Ok(());
        }
        let requested = object_usage(&res.group, &res.plural, obj);
        if requested.is_empty() {
            return Ok(());
        }
        for quota in &quotas {
            let hard = hard_of(quota);
            let tracked: Vec<&String> = requested.keys().filter(|k| hard.contains_key(*k)).collect();
            if tracked.is_empty() {
                continue;
            }
            let names: Vec<String> = tracked.iter().map(|s| (*s).clone()).collect();
            let used = namespace_usage(&ctx.registry, ns, &names).await?;
            let mut exceeded = Vec::new();
            for name in &names {
                let limit = hard.get(name).map(|(m, _)| *m).unwrap_or(i64::MAX);
                let want = requested.get(name).copied().unwrap_or(0);
                let have = used.get(name).copied().unwrap_or(0);
                if have.saturating_add(want) > limit {
                    exceeded.push(name.clone());
                }
            }
            if !exceeded.is_empty() {
                exceeded.sort();
                let show = |f: &dyn Fn(&String) -> String| exceeded.iter().map(|n| format!("{n}={}", f(n))).collect::<Vec<_>>().join(",");
                let message = format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    quota["metadata"]["name"].as_str().unwrap_or(""),
                    show(&|n| format_quantity(n, requested.get(n).copied().unwrap_or(0))),
                    show(&|n| format_quantity(n, used.get(n).copied().unwrap_or(0))),
                    show(&|n| hard.get(n).map(|(_, t)| t.clone()).unwrap_or_default()),
                );
                return Err(ctx.forbidden(&message));
            }
        }
        Ok(())
    }
}

/// `spec.hard` as resource name → (milli value, text).
pub fn hard_of(quota: &Value) -> BTreeMap<String, (i64, String)> {
    quota["spec"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            milli_value(&text).map(|m| (k.clone(), (m, text)))
        })
        .collect()
}

/// Writes a used amount as upstream's quantities print: counts and whole units plainly, CPU
/// fractions in milli units, memory in bytes.
pub fn format_quantity(_name: &str, milli: i64) -> String {
    if milli % 1000 == 0 { (milli / 1000).to_string() } else { format!("{milli}m") }
}

/// The quota resource names an object counts against, with its amounts (milli units).
pub fn object_usage(group: &str, plural: &str, obj: &Value) -> BTreeMap<String, i64> {
    let mut usage = BTreeMap::new();
    let count_name = if group.is_empty() { format!("count/{plural}") } else { format!("count/{plural}.{group}") };
    usage.insert(count_name, 1000);
    if group.is_empty() {
        match plural {
            "pods" => {
                if !pod_counts(obj) {
                    return BTreeMap::new();
                }
                usage.insert("pods".into(), 1000);
                for section in ["requests", "limits"] {
                    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
                    for c in obj["spec"]["containers"].as_array().into_iter().flatten() {
                        for (k, v) in c["resources"][section].as_object().into_iter().flatten() {
                            if let Some(m) = v.as_str().and_then(milli_value) {
                                *sums.entry(k.clone()).or_default() += m;
                            }
                        }
                    }
                    for (k, m) in sums {
                        if section == "requests" && (k == "cpu" || k == "memory" || k == "ephemeral-storage") {
                            usage.insert(k.clone(), m);
                        }
                        usage.insert(format!("{section}.{k}"), m);
                    }
                }
            }
            "services" => {
                usage.insert("services".into(), 1000);
                match obj["spec"]["type"].as_str() {
                    Some("LoadBalancer") => {
                        usage.insert("services.loadbalancers".into(), 1000);
                        usage.insert("services.nodeports".into(), node_ports(obj));
                    }
                    Some("NodePort") => {
                        usage.insert("services.nodeports".into(), node_ports(obj));
                    }
                    _ => {}
                }
            }
            "persistentvolumeclaims" => {
                usage.insert("persistentvolumeclaims".into(), 1000);
                if let Some(m) = obj["spec"]["resources"]["requests"]["storage"].as_str().and_then(milli_value) {
                    usage.insert("requests.storage".into(), m);
                }
            }
            "secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas" => {
                usage.insert(plural.to_string(), 1000);
            }
            _ => {}
        }
    }
    usage
}

fn node_ports(svc: &Value) -> i64 {
    svc["spec"]["ports"].as_array().map_or(0, |p| p.len() as i64 * 1000)
}

/// Pods in a terminal phase or being deleted stop counting (upstream's `QuotaV1Pod`).
fn pod_counts(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && pod["metadata"]["deletionTimestamp"].is_null()
}

/// The resource (group, plural) a quota resource name counts.
fn counted_resource(name: &str) -> Option<(String, String)> {
    if let Some(rest) = name.strip_prefix("count/") {
        return Some(match rest.split_once('.') {
            Some((plural, group)) => (group.to_string(), plural.to_string()),
            None => (String::new(), rest.to_string()),
        });
    }
    let plural = match name {
        "pods" | "cpu" | "memory" | "ephemeral-storage" => "pods",
        n if n.starts_with("requests.") && n != "requests.storage" || n.starts_with("limits.") => "pods",
        "services" | "services.loadbalancers" | "services.nodeports" => "services",
        "persistentvolumeclaims" | "requests.storage" => "persistentvolumeclaims",
        "secrets" | "configmaps" | "replicationcontrollers" | "resourcequotas" => name,
        _ => return None,
    };
    Some((String::new(), plural.to_string()))
}

/// Current usage in `ns` of each named quota resource (milli units).
pub async fn namespace_usage(registry: &Registry, ns: &str, names: &[String]) -> Result<BTreeMap<String, i64>, ApiError> {
    let mut by_resource: BTreeMap<(String, String), Vec<&String>> = BTreeMap::new();
    for n in names {
        if let Some(r) = counted_resource(n) {
            by_resource.entry(r).or_default().push(n);
        }
    }
    let mut used: BTreeMap<String, i64> = names.iter().map(|n| (n.clone(), 0)).collect();
    for ((group, plural), wanted) in by_resource {
        let Some(res) = registry.resources().into_iter().find(|r| r.group == group && r.plural == plural) else { continue };
        let listed = registry.list(&res, Some(ns), &ListOptions::default()).await?;
        for item in listed["items"].as_array().into_iter().flatten() {
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
    fn pod_usage_counts_pods_and_requests() {
        let pod = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}}}, {"resources": {"requests": {"cpu": "250m"}}}]}});
        let u = object_usage("", "pods", &pod);
        assert_eq!(u.get("pods"), Some(&1000));
        assert_eq!(u.get("requests.cpu"), Some(&500));
        assert_eq!(u.get("limits.cpu"), Some(&1000));
        assert_eq!(format_quantity("requests.cpu", 500), "500m");
    }

    #[test]
    fn finished_pods_do_not_count() {
        let pod = json!({"status": {"phase": "Succeeded"}, "spec": {}});
        assert!(object_usage("", "pods", &pod).is_empty());
    }
}
