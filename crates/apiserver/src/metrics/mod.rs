//! `metrics.k8s.io/v1beta1` served by the API server itself, answering as an aggregated
//! metrics-server would (sigs.k8s.io/metrics-server `pkg/api`): NodeMetrics and PodMetrics,
//! get and list (label and field selectors, namespaces), from the in-memory [`MetricsStore`]
//! that the [`scraper`] fills from each node's `/metrics/resource`. Requests never scrape.
//!
//! Discovery lists the group after the built-in ones, as the aggregator lists an APIService
//! with metrics-server's low group priority.

pub mod prometheus;
pub mod scraper;
pub mod store;

use std::sync::Arc;

use chrono::TimeZone;
use rkube_apimachinery::ApiError;
use serde_json::{Value, json};

pub use store::MetricsStore;
use store::Usage;

use crate::handler::Query;
use crate::request_info::RequestInfo;
use crate::state::AppState;

/// The group served.
pub const GROUP: &str = "metrics.k8s.io";
/// Its only version.
pub const VERSION: &str = "v1beta1";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// `(plural, kind, namespaced)` of the served resources.
const RESOURCES: [(&str, &str, bool); 2] = [("nodes", "NodeMetrics", false), ("pods", "PodMetrics", true)];

/// `GET /apis/metrics.k8s.io/v1beta1` (APIResourceList), as metrics-server publishes it.
pub fn resource_list() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, namespaced)| json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]}))
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": resources})
}

fn group() -> Value {
    let v = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [v.clone()], "preferredVersion": v})
}

/// `GET /apis/metrics.k8s.io` (APIGroup).
pub fn api_group() -> Value {
    let mut g = group();
    if let Some(o) = g.as_object_mut() {
        o.insert("kind".into(), json!("APIGroup"));
        o.insert("apiVersion".into(), json!("v1"));
    }
    g
}

/// Appends the group to a legacy `/apis` APIGroupList.
pub fn add_to_group_list(doc: &mut Value) {
    if let Some(groups) = doc.get_mut("groups").and_then(Value::as_array_mut) {
        groups.push(group());
    }
}

/// Appends the group to an aggregated (`apidiscovery.k8s.io/v2`) `/apis` document.
pub fn add_to_aggregated(doc: &mut Value) {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|(plural, kind, namespaced)| {
            json!({"resource": plural, "responseKind": {"group": "", "version": "", "kind": kind},
                "scope": if *namespaced { "Namespaced" } else { "Cluster" }, "singularResource": "", "verbs": ["get", "list"]})
        })
        .collect();
    let entry = json!({"metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}]});
    if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
        items.push(entry);
    }
}

/// Go's `time.Duration.String()` for whole milliseconds (`15s`, `15.062s`, `1m0.5s`, `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms.abs() < 1000 {
        return format!("{ms}ms");
    }
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = if frac == 0 { format!("{s}s") } else { format!("{s}.{}s", format!("{frac:03}").trim_end_matches('0')) };
    match (h, m) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

/// A CPU quantity from nanocores in canonical DecimalSI form (`100m`, `2`, `137784788n`), as
/// `resource.NewScaledQuantity(n, resource.Nano).String()` prints it.
pub fn cpu_quantity(nanocores: u64) -> String {
    if nanocores == 0 {
        return "0".into();
    }
    for (divisor, suffix) in [(1_000_000_000_000u64, "k"), (1_000_000_000, ""), (1_000_000, "m"), (1_000, "u")] {
        if nanocores.is_multiple_of(divisor) {
            return format!("{}{suffix}", nanocores / divisor);
        }
    }
    format!("{nanocores}n")
}

/// A memory quantity in canonical BinarySI form (`64Mi`, `1442672Ki`, `500`), as
/// `resource.NewQuantity(b, resource.BinarySI).String()` prints it.
pub fn memory_quantity(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let mut value = bytes;
    let mut suffix = 0;
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    while value.is_multiple_of(1024) && suffix < SUFFIXES.len() - 1 {
        value /= 1024;
        suffix += 1;
    }
    format!("{value}{}", SUFFIXES[suffix])
}

fn rfc3339(ms: i64) -> String {
    chrono::Utc.timestamp_millis_opt(ms).single().unwrap_or_else(chrono::Utc::now).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.cpu_nanocores), "memory": memory_quantity(u.memory_bytes)})
}

fn metadata(object: &Value, now: &str) -> Value {
    let mut m = json!({"name": object.pointer("/metadata/name").cloned().unwrap_or(Value::Null), "creationTimestamp": now});
    if let Some(ns) = object.pointer("/metadata/namespace") {
        m["namespace"] = ns.clone();
    }
    if let Some(labels) = object.pointer("/metadata/labels").filter(|l| l.as_object().is_some_and(|o| !o.is_empty())) {
        m["labels"] = labels.clone();
    }
    m
}

fn node_metrics(store: &MetricsStore, node: &Value, now: &str) -> Option<Value> {
    let name = node.pointer("/metadata/name")?.as_str()?;
    let u = store.node(name)?;
    Some(json!({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, "metadata": metadata(node, now),
        "timestamp": rfc3339(u.timestamp_ms), "window": go_duration(u.window_ms), "usage": usage_json(&u)}))
}

fn pod_metrics(store: &MetricsStore, pod: &Value, now: &str) -> Option<Value> {
    let ns = pod.pointer("/metadata/namespace")?.as_str()?;
    let name = pod.pointer("/metadata/name")?.as_str()?;
    let u = store.pod(ns, name)?;
    let containers: Vec<Value> = u.containers.iter().map(|(c, usage)| json!({"name": c, "usage": usage_json(usage)})).collect();
    Some(json!({"kind": "PodMetrics", "apiVersion": GROUP_VERSION, "metadata": metadata(pod, now),
        "timestamp": rfc3339(u.timestamp_ms), "window": go_duration(u.window_ms), "containers": containers}))
}

/// Serves a request below `/apis/metrics.k8s.io`: discovery, or get/list of node and pod
/// metrics (authorization already happened on the metrics resource).
pub async fn serve(state: &Arc<AppState>, info: &RequestInfo, q: &Query) -> Result<Value, ApiError> {
    if !info.is_resource {
        return match info.version.as_str() {
            "" => Ok(api_group()),
            VERSION => Ok(resource_list()),
            _ => Err(ApiError::path_not_found()),
        };
    }
    let Some((plural, _, namespaced)) = RESOURCES.iter().find(|(p, _, _)| *p == info.resource).copied() else {
        return Err(ApiError::path_not_found());
    };
    if info.version != VERSION || !info.subresource.is_empty() || (!namespaced && info.namespace.is_some()) {
        return Err(ApiError::path_not_found());
    }
    if !matches!(info.verb.as_str(), "get" | "list") {
        return Err(ApiError::method_not_supported(GROUP, plural, &info.verb));
    }
    let reg = &state.registry;
    let source = reg.lookup("", "v1", plural).ok_or_else(ApiError::path_not_found)?;
    let ns = info.namespace.as_deref();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let store = &state.metrics;
    let one = |object: &Value| if namespaced { pod_metrics(store, object, &now) } else { node_metrics(store, object, &now) };
    if info.verb == "get" {
        // A missing node or pod is the core NotFound; one without metrics yet is NotFound on
        // the metrics resource, as metrics-server answers.
        let object = reg.get(&source, ns, &info.name, "").await?;
        let not_found_name = match ns {
            Some(ns) => format!("{ns}/{}", info.name),
            None => info.name.clone(),
        };
        let metrics_resource = if namespaced { "podmetrics" } else { "nodemetrics" };
        return one(&object).ok_or_else(|| ApiError::not_found(GROUP, metrics_resource, &not_found_name));
    }
    let mut options = crate::handler::list_options(q)?;
    // Continue tokens and limits of the source list do not apply to the filtered result.
    options.limit = 0;
    options.continue_token = None;
    let list = reg.list(&source, ns, &options).await?;
    let mut items: Vec<Value> = list["items"].as_array().map(|objects| objects.iter().filter_map(one).collect()).unwrap_or_default();
    items.sort_by(|a, b| {
        let key = |v: &Value| (v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("").to_string(), v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string());
        key(a).cmp(&key(b))
    });
    let kind = if namespaced { "PodMetricsList" } else { "NodeMetricsList" };
    Ok(json!({"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}))
}

/// Summed usage of an object: a node's `usage`, or the sum over a pod's containers.
fn total_usage(object: &Value) -> (u64, u64) {
    let parse = |u: &Value| {
        let cpu = u["cpu"].as_str().and_then(rkube_apimachinery::quantity::milli_value).unwrap_or(0);
        let memory = u["memory"].as_str().and_then(rkube_apimachinery::quantity::value).unwrap_or(0);
        (u64::try_from(cpu).unwrap_or(0), u64::try_from(memory).unwrap_or(0))
    };
    match object["containers"].as_array() {
        Some(containers) => containers.iter().map(|c| parse(&c["usage"])).fold((0, 0), |(a, b), (c, m)| (a + c, b + m)),
        None => parse(&object["usage"]),
    }
}

/// The Table metrics-server prints (`pkg/api/table.go`): Name, cpu, memory, Window; no
/// columns for an empty list.
pub fn table(value: &Value, include: crate::table::IncludeObject) -> Value {
    let objects: Vec<&Value> = match value["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    let columns = if objects.is_empty() {
        Value::Null
    } else {
        json!([
            {"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0},
            {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
            {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
        ])
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let (cpu_milli, memory) = total_usage(o);
            let mut row = json!({"cells": [o["metadata"]["name"], cpu_quantity(cpu_milli * 1_000_000), memory_quantity(memory), o["window"]]});
            let object = match include {
                crate::table::IncludeObject::None => None,
                crate::table::IncludeObject::Metadata => Some(crate::table::partial_metadata(o)),
                crate::table::IncludeObject::Object => Some((*o).clone()),
            };
            if let Some(object) = object {
                row["object"] = object;
            }
            row
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_as_upstream() {
        assert_eq!(cpu_quantity(100_000_000), "100m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(137_784_788), "137784788n");
        assert_eq!(cpu_quantity(1_500_000), "1500u");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(64 * 1024 * 1024), "64Mi");
        assert_eq!(memory_quantity(1_477_296_128), "1442672Ki");
        assert_eq!(memory_quantity(500), "500");
        assert_eq!(memory_quantity(1025), "1025");
    }

    #[test]
    fn windows_print_as_go_durations() {
        assert_eq!(go_duration(15_000), "15s");
        assert_eq!(go_duration(15_062), "15.062s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(60_500), "1m0.5s");
        assert_eq!(go_duration(500), "500ms");
    }

    #[test]
    fn tables_sum_container_usage() {
        let pod = json!({"metadata": {"name": "p"}, "window": "1s", "containers": [
            {"name": "a", "usage": {"cpu": "125m", "memory": "50Mi"}}, {"name": "b", "usage": {"cpu": "125m", "memory": "50Mi"}}]});
        let t = table(&json!({"items": [pod]}), crate::table::IncludeObject::None);
        assert_eq!(t["rows"][0]["cells"], json!(["p", "250m", "100Mi", "1s"]));
        assert_eq!(t["columnDefinitions"][1]["name"], "cpu");
        assert!(table(&json!({"items": []}), crate::table::IncludeObject::None)["columnDefinitions"].is_null());
    }

    #[test]
    fn discovery_documents() {
        let list = resource_list();
        assert_eq!(list["resources"][1]["kind"], "PodMetrics");
        assert_eq!(list["resources"][0]["namespaced"], false);
        let mut apis = json!({"groups": []});
        add_to_group_list(&mut apis);
        assert_eq!(apis["groups"][0]["preferredVersion"]["groupVersion"], GROUP_VERSION);
        let mut aggregated = json!({"items": []});
        add_to_aggregated(&mut aggregated);
        assert_eq!(aggregated["items"][0]["versions"][0]["resources"][0]["scope"], "Cluster");
    }
}
