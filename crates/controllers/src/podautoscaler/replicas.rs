//! The replica calculation of upstream's `pkg/controller/podautoscaler/replica_calculator.go`
//! and `metrics/utilization.go`, for Resource and ContainerResource metrics: pure functions
//! over the pods and their metrics.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Pod;
use rkube_apimachinery::quantity::milli_value;

/// Upstream's `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min).
const CPU_INITIALIZATION_PERIOD_MS: i64 = 5 * 60 * 1000;
/// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s).
const INITIAL_READINESS_DELAY_MS: i64 = 30 * 1000;

/// One pod's usage of a resource, in thousandths (`MilliValue`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    /// When the usage was measured (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Over how long (milliseconds).
    pub window_ms: i64,
    /// Usage in thousandths of the unit.
    pub value: i64,
}

/// Usage by pod name.
pub type PodMetrics = HashMap<String, PodMetric>;

/// What a calculation proposes and what it measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Replicas the metric asks for.
    pub replicas: i32,
    /// Utilization in percent of the request (Utilization targets), or average usage in
    /// thousandths (AverageValue targets).
    pub utilization: i64,
    /// Average usage per pod in thousandths.
    pub raw_average: i64,
}

fn millis(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> i64 {
    t.0.as_millisecond()
}

/// Pods split as upstream's `groupPods`: counted as ready, unready (no usable CPU sample yet),
/// missing (no metrics) and ignored (deleted or failed).
#[derive(Debug, Default)]
struct Groups {
    ready: usize,
    unready: BTreeSet<String>,
    missing: BTreeSet<String>,
    ignored: BTreeSet<String>,
}

fn group_pods(pods: &[Pod], metrics: &PodMetrics, resource: &str, now_ms: i64) -> Groups {
    let mut g = Groups::default();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            g.ignored.insert(name);
            continue;
        }
        if phase == "Pending" {
            g.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            g.missing.insert(name);
            continue;
        };
        if resource == "cpu" {
            let ready = status.and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
            let start = status.and_then(|s| s.start_time.as_ref()).map(millis);
            let unready = match (ready, start) {
                (Some(condition), Some(start)) => {
                    let transition = condition.last_transition_time.as_ref().map(millis).unwrap_or(0);
                    if start + CPU_INITIALIZATION_PERIOD_MS > now_ms {
                        // Still initialising: a sample must cover a whole window since the pod
                        // became ready.
                        condition.status == "False" || metric.timestamp_ms < transition + metric.window_ms
                    } else {
                        // Unready and never ready since it started.
                        condition.status == "False" && start + INITIAL_READINESS_DELAY_MS > transition
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(name);
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// Requests of each pod for `resource` in thousandths (upstream `calculateRequests`): regular
/// and restartable init containers, or only `container`.
pub fn pod_requests(pods: &[Pod], container: Option<&str>, resource: &str) -> Result<HashMap<String, i64>, String> {
    let mut out = HashMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(spec) = pod.spec.as_ref() else { continue };
        let sidecars = spec.init_containers.iter().flatten().filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let mut sum = 0i64;
        for c in spec.containers.iter().chain(sidecars) {
            if container.is_some_and(|want| want != c.name) {
                continue;
            }
            let request = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get(resource)).and_then(|q| milli_value(&q.0));
            match request {
                Some(v) => sum += v,
                None => return Err(format!("missing request for {resource} in container {} of Pod {name}", c.name)),
            }
        }
        out.insert(name, sum);
    }
    Ok(out)
}

/// Upstream's `GetResourceUtilizationRatio`: (usage ratio, utilization %, average usage).
fn utilization_ratio(metrics: &PodMetrics, requests: &HashMap<String, i64>, target: i32) -> Result<(f64, i64, i64), String> {
    let (mut total, mut requested, mut entries) = (0i64, 0i64, 0i64);
    for (pod, m) in metrics {
        if let Some(r) = requests.get(pod) {
            total += m.value;
            requested += r;
            entries += 1;
        }
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = total * 100 / requested;
    Ok((utilization as f64 / f64::from(target), utilization, total / entries))
}

fn ceil_replicas(ratio: f64, count: usize) -> i32 {
    (ratio * count as f64).ceil() as i32
}

/// Replicas for a Utilization target (upstream `GetResourceReplicas`).
pub fn resource_replicas(
    current: i32,
    target_utilization: i32,
    resource: &str,
    container: Option<&str>,
    pods: &[Pod],
    mut metrics: PodMetrics,
    now_ms: i64,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &metrics, resource, now_ms);
    for name in groups.ignored.iter().chain(&groups.unready) {
        metrics.remove(name);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let requests = pod_requests(pods, container, resource)?;
    let (ratio, utilization, raw_average) = utilization_ratio(&metrics, &requests, target_utilization)?;
    let unchanged = Proposal { replicas: current, utilization, raw_average };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(unchanged);
        }
        return Ok(Proposal { replicas: ceil_replicas(ratio, groups.ready), utilization, raw_average });
    }
    // Pods without metrics count as using their whole request (or the target, if higher) when
    // scaling down and nothing when scaling up, which dampens the move in either direction.
    if !groups.missing.is_empty() {
        let fallback = i64::from(target_utilization.max(100));
        for name in &groups.missing {
            let value = if ratio < 1.0 { requests.get(name).copied().unwrap_or(0) * fallback / 100 } else { 0 };
            if ratio != 1.0 {
                metrics.insert(name.clone(), PodMetric { timestamp_ms: 0, window_ms: 0, value });
            }
        }
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            metrics.insert(name.clone(), PodMetric { timestamp_ms: 0, window_ms: 0, value: 0 });
        }
    }
    let (new_ratio, _, _) = utilization_ratio(&metrics, &requests, target_utilization)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(unchanged);
    }
    let replicas = ceil_replicas(new_ratio, metrics.len());
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(unchanged);
    }
    Ok(Proposal { replicas, utilization, raw_average })
}

/// Replicas for an AverageValue target in thousandths (upstream `GetRawResourceReplicas` →
/// `calcPlainMetricReplicas`).
pub fn raw_resource_replicas(current: i32, target: i64, resource: &str, pods: &[Pod], mut metrics: PodMetrics, now_ms: i64) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let groups = group_pods(pods, &metrics, resource, now_ms);
    for name in groups.ignored.iter().chain(&groups.unready) {
        metrics.remove(name);
    }
    if metrics.is_empty() {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let usage_ratio = |m: &PodMetrics| {
        let average = m.values().map(|p| p.value).sum::<i64>() / m.len() as i64;
        (average as f64 / target as f64, average)
    };
    let (ratio, usage) = usage_ratio(&metrics);
    let unchanged = Proposal { replicas: current, utilization: usage, raw_average: usage };
    let scale_up_with_unready = !groups.unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && groups.missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(unchanged);
        }
        return Ok(Proposal { replicas: ceil_replicas(ratio, groups.ready), utilization: usage, raw_average: usage });
    }
    if !groups.missing.is_empty() {
        for name in &groups.missing {
            let value = if ratio < 1.0 { target } else { 0 };
            if ratio != 1.0 {
                metrics.insert(name.clone(), PodMetric { timestamp_ms: 0, window_ms: 0, value });
            }
        }
    }
    if scale_up_with_unready {
        for name in &groups.unready {
            metrics.insert(name.clone(), PodMetric { timestamp_ms: 0, window_ms: 0, value: 0 });
        }
    }
    let (new_ratio, _) = usage_ratio(&metrics);
    if (1.0 - new_ratio).abs() <= TOLERANCE || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0) {
        return Ok(unchanged);
    }
    let replicas = ceil_replicas(new_ratio, metrics.len());
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(unchanged);
    }
    Ok(Proposal { replicas, utilization: usage, raw_average: usage })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 10 * 60 * 1000 * 1000;

    fn ts(ms: i64) -> String {
        k8s_openapi::jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
    }

    fn pod(name: &str, phase: &str, ready: bool, cpu_request: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu_request}}}]},
            "status": {"phase": phase, "startTime": ts(NOW - 3_600_000),
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}, "lastTransitionTime": ts(NOW - 3_000_000)}]}
        }))
        .unwrap()
    }

    fn metrics(values: &[(&str, i64)]) -> PodMetrics {
        values.iter().map(|(n, v)| (n.to_string(), PodMetric { timestamp_ms: NOW, window_ms: 15_000, value: *v })).collect()
    }

    #[test]
    fn scales_up_on_utilization_above_target() {
        let pods = vec![pod("a", "Running", true, "100m"), pod("b", "Running", true, "100m")];
        let p = resource_replicas(2, 50, "cpu", None, &pods, metrics(&[("a", 100), ("b", 100)]), NOW).unwrap();
        assert_eq!(p, Proposal { replicas: 4, utilization: 100, raw_average: 100 });
    }

    #[test]
    fn within_tolerance_keeps_replicas() {
        let pods = vec![pod("a", "Running", true, "100m")];
        let p = resource_replicas(1, 50, "cpu", None, &pods, metrics(&[("a", 54)]), NOW).unwrap();
        assert_eq!(p.replicas, 1);
        assert_eq!(p.utilization, 54);
    }

    #[test]
    fn missing_pods_dampen_scale_down() {
        // a uses 10% of its request; b has no metrics and counts as 100% on the way down.
        let pods = vec![pod("a", "Running", true, "100m"), pod("b", "Running", true, "100m")];
        let p = resource_replicas(2, 50, "cpu", None, &pods, metrics(&[("a", 10)]), NOW).unwrap();
        assert_eq!(p.replicas, 2, "new ratio (10+100)/200/0.5 = 1.1 crosses 1.0 → unchanged");
    }

    #[test]
    fn unready_pods_count_as_zero_on_scale_up() {
        let pods = vec![pod("a", "Running", true, "100m"), pod("b", "Pending", false, "100m")];
        let p = resource_replicas(2, 50, "cpu", None, &pods, metrics(&[("a", 200)]), NOW).unwrap();
        // (200 + 0) / 200 = 100% → ratio 2 over 2 pods → 4.
        assert_eq!(p.replicas, 4);
    }

    #[test]
    fn errors_as_upstream() {
        let no_request: Pod = serde_json::from_value(json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Running"}})).unwrap();
        assert_eq!(pod_requests(&[no_request], None, "cpu").unwrap_err(), "missing request for cpu in container app of Pod x");
        assert_eq!(resource_replicas(1, 50, "cpu", None, &[], PodMetrics::new(), NOW).unwrap_err(), "no pods returned by selector while calculating replica count");
        let pods = vec![pod("a", "Running", true, "100m")];
        assert_eq!(
            resource_replicas(1, 50, "cpu", None, &pods, PodMetrics::new(), NOW).unwrap_err(),
            "did not receive metrics for targeted pods (pods might be unready)"
        );
    }

    #[test]
    fn average_value_targets() {
        let pods = vec![pod("a", "Running", true, "100m"), pod("b", "Running", true, "100m")];
        let p = raw_resource_replicas(2, 100, "cpu", &pods, metrics(&[("a", 300), ("b", 300)]), NOW).unwrap();
        assert_eq!(p, Proposal { replicas: 6, utilization: 300, raw_average: 300 });
    }
}
