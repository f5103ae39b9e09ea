//! The HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler`): every
//! sync period each autoscaling/v2 HPA reads its target's `scale` subresource (any scalable
//! kind, found through discovery), the pods the scale's selector picks and their usage from
//! `metrics.k8s.io`, computes the replicas each Resource / ContainerResource metric asks for
//! (`replicas.rs`), stabilizes and rate-limits the result (`behavior.rs`), updates the scale,
//! and reports status, conditions and events with upstream's reasons and messages.
//!
//! Not supported: Pods, Object and External metrics (no custom/external metrics APIs are
//! served); they fail as upstream does without those APIs.

pub mod behavior;
pub mod replicas;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricSpec, MetricStatus, MetricTarget,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;
use crate::events::{EventRecorder, EventType};
use behavior::{Bounds, History};
use replicas::{PodMetric, PodMetrics, Proposal};

const COMPONENT: &str = "horizontal-pod-autoscaler";

struct State {
    client: Client,
    recorder: EventRecorder,
    sync_period: Duration,
    histories: Mutex<HashMap<String, History>>,
}

/// Runs the controller until its watch ends, syncing every HPA each `sync_period`.
pub async fn run(ctx: Context, sync_period: Duration) -> Result<()> {
    let state = Arc::new(State {
        client: ctx.client.clone(),
        recorder: ctx.recorder(COMPONENT),
        sync_period,
        histories: Mutex::new(HashMap::new()),
    });
    // Only spec changes trigger a sync at once (status writes, including this controller's
    // own, do not); every HPA is otherwise synced once per period, as upstream's queue with
    // its fixed per-item interval does.
    let (reader, writer) = reflector::store();
    let hpas = reflector::reflector(writer, watcher(Api::<HorizontalPodAutoscaler>::all(ctx.client.clone()), watcher::Config::default()))
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let stream = Controller::for_stream(hpas, reader).run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The message of an API error as a Go client prints it (the Status message).
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// One sync's outcome, written into the status at the end.
struct Sync {
    conditions: Vec<HorizontalPodAutoscalerCondition>,
    now: Time,
}

impl Sync {
    fn set_condition(&mut self, type_: &str, status: bool, reason: &str, message: String) {
        let status = if status { "True" } else { "False" }.to_string();
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = Some(self.now.clone());
                }
                c.status = status;
                c.reason = Some(reason.into());
                c.message = Some(message);
            }
            None => self.conditions.push(HorizontalPodAutoscalerCondition {
                type_: type_.into(),
                status,
                reason: Some(reason.into()),
                message: Some(message),
                last_transition_time: Some(self.now.clone()),
            }),
        }
    }
}

/// A quantity in thousandths printed canonically (`resource.NewMilliQuantity(v, DecimalSI)`).
pub fn milli_quantity(milli: i64) -> String {
    if milli == 0 {
        return "0".into();
    }
    let (mut value, mut exponent) = (milli, -3);
    while value % 1000 == 0 && exponent < 18 {
        value /= 1000;
        exponent += 3;
    }
    let suffix = match exponent {
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    format!("{value}{suffix}")
}

/// Go's `time.ParseDuration` for the shapes metrics-server prints (`15s`, `1.5s`, `500ms`, `1m0.5s`).
pub fn parse_go_duration_ms(s: &str) -> Option<i64> {
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let split = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(split);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += number
            * match unit {
                "h" => 3_600_000.0,
                "m" => 60_000.0,
                "s" => 1000.0,
                "ms" => 1.0,
                "us" | "µs" => 0.001,
                "ns" => 0.000_001,
                _ => return None,
            };
        rest = tail;
    }
    Some(total.round() as i64)
}

fn metrics_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "metrics.k8s.io".into(),
        version: "v1beta1".into(),
        api_version: "metrics.k8s.io/v1beta1".into(),
        kind: "PodMetrics".into(),
        plural: "pods".into(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Usage of `resource` per pod from metrics.k8s.io (upstream `metrics/client.go`
/// `GetResourceMetric`): the sum over containers, or one container's.
async fn resource_metrics(client: &Client, namespace: &str, selector: &str, resource: &str, container: Option<&str>) -> Result<PodMetrics, String> {
    let list = metrics_api(client, namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| format!("unable to fetch metrics from resource metrics API: {}", api_message(&e)))?;
    if list.items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    let mut out = PodMetrics::new();
    for item in &list.items {
        let name = item.name_any();
        let timestamp_ms = item.data["timestamp"].as_str().and_then(|t| t.parse::<Timestamp>().ok()).map(|t| t.as_millisecond()).unwrap_or(0);
        let window_ms = item.data["window"].as_str().and_then(parse_go_duration_ms).unwrap_or(0);
        let containers = item.data["containers"].as_array().cloned().unwrap_or_default();
        let usage = |c: &Value| c["usage"][resource].as_str().and_then(rkube_apimachinery::quantity::milli_value);
        let value = match container {
            Some(want) => {
                let Some(c) = containers.iter().find(|c| c["name"] == want) else {
                    return Err(format!("failed to get container metrics: container {want} not present in metrics for pod {namespace}/{name}"));
                };
                usage(c)
            }
            None if containers.is_empty() => None,
            None => containers.iter().map(usage).sum::<Option<i64>>(),
        };
        if let Some(value) = value {
            out.insert(name, PodMetric { timestamp_ms, window_ms, value });
        }
    }
    Ok(out)
}

/// The target's resource, found through discovery as upstream's RESTMapper does.
async fn target_api(client: &Client, namespace: &str, api_version: &str, kind: &str) -> Result<Api<DynamicObject>, String> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("unable to determine resource for scale target reference: no matches for kind \"{kind}\" in version \"{api_version}\" ({})", api_message(&e)))?;
    Ok(Api::namespaced_with(client.clone(), namespace, &resource))
}

/// What one metric asks for.
struct MetricResult {
    replicas: i32,
    /// Named in the rescale reason (`cpu resource utilization (percentage of request)`).
    name: String,
    status: MetricStatus,
}

/// A failed metric: the event / condition reason and the error.
struct MetricError {
    reason: &'static str,
    message: String,
}

async fn compute_metric(state: &State, hpa: &HorizontalPodAutoscaler, spec: &MetricSpec, current: i32, selector: &str) -> Result<MetricResult, MetricError> {
    let namespace = hpa.namespace().unwrap_or_default();
    let (resource, container, target, container_kind) = match (spec.type_.as_str(), &spec.resource, &spec.container_resource) {
        ("Resource", Some(r), _) => (r.name.clone(), None, r.target.clone(), false),
        ("ContainerResource", _, Some(r)) => (r.name.clone(), Some(r.container.clone()), r.target.clone(), true),
        ("Pods" | "Object" | "External", _, _) => {
            let reason = match spec.type_.as_str() {
                "Pods" => "FailedGetPodsMetric",
                "Object" => "FailedGetObjectMetric",
                _ => "FailedGetExternalMetric",
            };
            let api = if spec.type_ == "External" { "external.metrics.k8s.io" } else { "custom.metrics.k8s.io" };
            return Err(MetricError { reason, message: format!("unable to fetch metrics from {} metrics API: the server could not find the requested resource ({api})", if spec.type_ == "External" { "external" } else { "custom" }) });
        }
        (other, _, _) => {
            return Err(MetricError { reason: "InvalidMetricSourceType", message: format!("unknown metric source type \"{other}\"") });
        }
    };
    let failed_reason = if container_kind { "FailedGetContainerResourceMetric" } else { "FailedGetResourceMetric" };
    let fail = |message: String| MetricError { reason: failed_reason, message };
    let kind_label = if container_kind { "container resource" } else { "resource" };
    let target = target_kind(&target);
    let measured = match target {
        Target::AverageValue(_) => "usage",
        Target::Utilization(_) => "utilization",
        Target::Invalid => return Err(fail(format!("invalid {kind_label} metric source: neither a utilization target nor a value target was set"))),
    };
    let pods: Vec<Pod> = Api::<Pod>::namespaced(state.client.clone(), &namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|e| fail(format!("failed to get {resource} {measured}: unable to get pods while calculating replica count: {}", api_message(&e))))?;
    let metrics = resource_metrics(&state.client, &namespace, selector, &resource, container.as_deref())
        .await
        .map_err(|e| fail(format!("failed to get {resource} {measured}: unable to get metrics for resource {resource}: {e}")))?;
    let current_value = |p: &Proposal, utilization: bool| {
        let mut v = json!({"averageValue": milli_quantity(p.raw_average)});
        if utilization {
            v["averageUtilization"] = json!(p.utilization);
        }
        v
    };
    let status = |current: Value| -> MetricStatus {
        let body = json!({"name": resource, "current": current});
        let value = if let Some(c) = &container {
            let mut b = body;
            b["container"] = json!(c);
            json!({"type": "ContainerResource", "containerResource": b})
        } else {
            json!({"type": "Resource", "resource": body})
        };
        serde_json::from_value(value).unwrap_or_default()
    };
    match target {
        Target::Utilization(percent) => {
            let p = replicas::resource_replicas(current, percent, &resource, container.as_deref(), &pods, metrics, now_ms())
                .map_err(|e| fail(format!("failed to get {resource} {measured}: {e}")))?;
            Ok(MetricResult { replicas: p.replicas, name: format!("{resource} {kind_label} utilization (percentage of request)"), status: status(current_value(&p, true)) })
        }
        Target::AverageValue(milli) => {
            let p = replicas::raw_resource_replicas(current, milli, &resource, &pods, metrics, now_ms())
                .map_err(|e| fail(format!("failed to get {resource} {measured}: {e}")))?;
            Ok(MetricResult { replicas: p.replicas, name: format!("{resource} {kind_label}"), status: status(json!({"averageValue": milli_quantity(p.raw_average)})) })
        }
        // Refused above, before any request.
        Target::Invalid => Err(fail(format!("invalid {kind_label} metric source: neither a utilization target nor a value target was set"))),
    }
}

enum Target {
    Utilization(i32),
    AverageValue(i64),
    Invalid,
}

fn target_kind(t: &MetricTarget) -> Target {
    match (t.average_utilization, &t.average_value) {
        (Some(u), _) if u > 0 => Target::Utilization(u),
        (_, Some(v)) => rkube_apimachinery::quantity::milli_value(&v.0).map_or(Target::Invalid, Target::AverageValue),
        _ => Target::Invalid,
    }
}

/// The metrics of an HPA, with the v2 default (80% CPU) when none are given.
fn metric_specs(hpa: &HorizontalPodAutoscaler) -> Vec<MetricSpec> {
    let specs = hpa.spec.as_ref().and_then(|s| s.metrics.clone()).unwrap_or_default();
    if !specs.is_empty() {
        return specs;
    }
    serde_json::from_value(json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]))
        .unwrap_or_default()
}

/// Upstream `computeReplicasForMetrics`: the highest proposal of the valid metrics, or an error
/// when all are invalid (or some are and the valid ones would scale down).
async fn compute_metrics(
    state: &State,
    hpa: &HorizontalPodAutoscaler,
    sync: &mut Sync,
    current: i32,
    selector: &str,
) -> (Option<(i32, String)>, Vec<MetricStatus>, Option<String>) {
    let specs = metric_specs(hpa);
    let mut statuses = vec![MetricStatus::default(); specs.len()];
    let (mut replicas, mut name) = (0, String::new());
    let mut invalid = 0;
    let mut first_error: Option<MetricError> = None;
    for (i, spec) in specs.iter().enumerate() {
        match compute_metric(state, hpa, spec, current, selector).await {
            Ok(r) => {
                if replicas == 0 || r.replicas > replicas {
                    replicas = r.replicas;
                    name = r.name;
                }
                statuses[i] = r.status;
            }
            Err(e) => {
                state.recorder.record(hpa, EventType::Warning, e.reason, e.message.clone()).await;
                invalid += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error.as_ref().filter(|_| invalid >= specs.len() || replicas < current) {
        sync.set_condition("ScalingActive", false, e.reason, format!("the HPA was unable to compute the replica count: {}", e.message));
        let error = format!("invalid metrics ({invalid} invalid out of {}), first error is: {}", specs.len(), first_metric_error(&specs, e));
        return (None, statuses, Some(error));
    }
    sync.set_condition("ScalingActive", true, "ValidMetricFound", format!("the HPA was able to successfully calculate a replica count from {name}"));
    (Some((replicas, name)), statuses, None)
}

/// The wrapped error upstream reports for the first failed metric.
fn first_metric_error(specs: &[MetricSpec], e: &MetricError) -> String {
    let name = specs
        .iter()
        .find_map(|s| s.resource.as_ref().map(|r| r.name.clone()).or_else(|| s.container_resource.as_ref().map(|r| r.name.clone())))
        .unwrap_or_default();
    match e.reason {
        "FailedGetResourceMetric" => format!("failed to get {name} resource metric value: {}", e.message),
        "FailedGetContainerResourceMetric" => format!("failed to get {name} container resource metric value: {}", e.message),
        _ => e.message.clone(),
    }
}

async fn reconcile(hpa: Arc<HorizontalPodAutoscaler>, state: Arc<State>) -> Result<Action> {
    let key = format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any());
    if hpa.metadata.deletion_timestamp.is_some() {
        state.histories.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
        return Ok(Action::await_change());
    }
    sync_one(&hpa, &state, &key).await?;
    Ok(Action::requeue(state.sync_period))
}

/// Upstream `reconcileAutoscaler`.
async fn sync_one(hpa: &HorizontalPodAutoscaler, state: &State, key: &str) -> Result<()> {
    let namespace = hpa.namespace().unwrap_or_default();
    let Some(spec) = hpa.spec.as_ref() else { return Ok(()) };
    let original = hpa.status.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    let mut sync = Sync { conditions: original.conditions.clone().unwrap_or_default(), now: now.clone() };
    let target = &spec.scale_target_ref;
    let api_version = target.api_version.clone().unwrap_or_default();
    let reference = format!("{}/{}/{}", target.kind, namespace, target.name);

    let scale = match target_api(&state.client, &namespace, &api_version, &target.kind).await {
        Ok(api) => api.get_scale(&target.name).await.map(|s| (api, s)).map_err(|e| api_message(&e)),
        Err(e) => Err(e),
    };
    let (api, scale) = match scale {
        Ok(s) => s,
        Err(e) => {
            state.recorder.record(hpa, EventType::Warning, "FailedGetScale", e.clone()).await;
            sync.set_condition("AbleToScale", false, "FailedGetScale", format!("the HPA controller was unable to get the target's current scale: {e}"));
            let status = HorizontalPodAutoscalerStatus { conditions: Some(sync.conditions), ..original.clone() };
            write_status(state, hpa, &original, status).await?;
            return Ok(());
        }
    };
    sync.set_condition("AbleToScale", true, "SucceededGetScale", "the HPA controller was able to get the target's current scale".into());
    let current = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let mut metric_statuses: Vec<MetricStatus> = original.current_metrics.clone().unwrap_or_default();
    let mut rescale_reason = String::new();
    let mut desired = 0;
    let rescale;
    if current == 0 && min != 0 {
        sync.set_condition("ScalingActive", false, "ScalingDisabled", "scaling is disabled since the replica count of the target is zero".into());
        rescale = false;
    } else if current > max {
        rescale_reason = "Current number of replicas above Spec.MaxReplicas".into();
        desired = max;
        rescale = true;
    } else if current < min {
        rescale_reason = "Current number of replicas below Spec.MinReplicas".into();
        desired = min;
        rescale = true;
    } else {
        let selector = scale.status.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        if selector.is_empty() {
            state.recorder.record(hpa, EventType::Warning, "SelectorRequired", "selector is required".into()).await;
            sync.set_condition("ScalingActive", false, "InvalidSelector", "the HPA target's scale is missing a selector".into());
            let status = HorizontalPodAutoscalerStatus { conditions: Some(sync.conditions), current_replicas: Some(current), ..original.clone() };
            write_status(state, hpa, &original, status).await?;
            return Ok(());
        }
        let (proposal, statuses, error) = compute_metrics(state, hpa, &mut sync, current, &selector).await;
        metric_statuses = statuses;
        let Some((metric_replicas, metric_name)) = proposal else {
            let message = error.unwrap_or_default();
            let status = HorizontalPodAutoscalerStatus {
                conditions: Some(sync.conditions),
                current_replicas: Some(current),
                current_metrics: Some(metric_statuses),
                ..original.clone()
            };
            write_status(state, hpa, &original, status).await?;
            state.recorder.record(hpa, EventType::Warning, "FailedComputeMetricsReplicas", message.clone()).await;
            tracing::debug!(hpa = key, %reference, error = %message, "failed to compute desired number of replicas based on listed metrics");
            return Ok(());
        };
        if metric_replicas > desired {
            desired = metric_replicas;
        }
        if desired > current {
            rescale_reason = format!("{metric_name} above target");
        }
        if desired < current {
            rescale_reason = "All metrics below target".into();
        }
        let bounds = Bounds { min, max, current };
        let normalized = {
            let mut histories = state.histories.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let history = histories.entry(key.to_string()).or_default();
            match &spec.behavior {
                None => history.normalize(now_ms(), desired, bounds),
                Some(b) => {
                    let (up, down) = behavior::effective_rules(b);
                    history.normalize_with_behavior(now_ms(), desired, bounds, &up, &down)
                }
            }
        };
        desired = normalized.replicas;
        sync.set_condition("AbleToScale", true, normalized.able_to_scale.0, normalized.able_to_scale.1.into());
        let (limited, reason, message) = normalized.limited;
        sync.set_condition("ScalingLimited", limited, reason, message.into());
        rescale = desired != current;
    }

    let mut last_scale_time = original.last_scale_time.clone();
    if rescale {
        let mut new_scale: Scale = scale.clone();
        if let Some(s) = new_scale.spec.as_mut() {
            s.replicas = Some(desired);
        } else {
            new_scale.spec = Some(k8s_openapi::api::autoscaling::v1::ScaleSpec { replicas: Some(desired) });
        }
        if let Err(e) = api.replace_scale(&target.name, &PostParams::default(), &new_scale).await {
            let e = api_message(&e);
            state.recorder.record(hpa, EventType::Warning, "FailedRescale", format!("New size: {desired}; reason: {rescale_reason}; error: {e}")).await;
            sync.set_condition("AbleToScale", false, "FailedUpdateScale", format!("the HPA controller was unable to update the target scale: {e}"));
            let status = HorizontalPodAutoscalerStatus {
                conditions: Some(sync.conditions),
                current_replicas: Some(current),
                current_metrics: Some(metric_statuses),
                ..original.clone()
            };
            write_status(state, hpa, &original, status).await?;
            return Ok(());
        }
        sync.set_condition("AbleToScale", true, "SucceededRescale", format!("the HPA controller was able to update the target scale to {desired}"));
        state.recorder.record(hpa, EventType::Normal, "SuccessfulRescale", format!("New size: {desired}; reason: {rescale_reason}")).await;
        state
            .histories
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_string())
            .or_default()
            .store_scale_event(now_ms(), spec.behavior.as_ref(), current, desired);
        last_scale_time = Some(now);
        tracing::info!(hpa = key, %reference, from = current, to = desired, reason = %rescale_reason, "rescaled");
    } else {
        desired = current;
    }
    let status = HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        desired_replicas: desired,
        last_scale_time,
        current_metrics: (!metric_statuses.is_empty()).then_some(metric_statuses),
        conditions: Some(sync.conditions),
        observed_generation: original.observed_generation,
    };
    write_status(state, hpa, &original, status).await
}

/// PUTs the status when it changed (upstream `updateStatusIfNeeded`; RBAC grants `update` on
/// `horizontalpodautoscalers/status`, not `patch`).
async fn write_status(state: &State, hpa: &HorizontalPodAutoscaler, original: &HorizontalPodAutoscalerStatus, status: HorizontalPodAutoscalerStatus) -> Result<()> {
    if &status == original {
        return Ok(());
    }
    let mut updated = hpa.clone();
    updated.status = Some(status);
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(state.client.clone(), &hpa.namespace().unwrap_or_default());
    api.replace_status(&hpa.name_any(), &PostParams::default(), &updated).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_durations() {
        assert_eq!(milli_quantity(80), "80m");
        assert_eq!(milli_quantity(1000), "1");
        assert_eq!(milli_quantity(1500), "1500m");
        assert_eq!(milli_quantity(67_108_864_000), "67108864");
        assert_eq!(parse_go_duration_ms("15s"), Some(15_000));
        assert_eq!(parse_go_duration_ms("1.5s"), Some(1_500));
        assert_eq!(parse_go_duration_ms("1m0.5s"), Some(60_500));
        assert_eq!(parse_go_duration_ms("500ms"), Some(500));
        assert_eq!(parse_go_duration_ms("x"), None);
    }
}
