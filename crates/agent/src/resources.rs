//! A container's requests and limits as the cgroup settings the kubelet asks the runtime for
//! (`generateLinuxContainerResources`): CPU shares from the request, CFS quota from the limit,
//! the memory limit (no swap), and the OOM score adjustment of the pod's QoS class.

use k8s_openapi::api::core::v1::{Container, Pod};
use rkube_apimachinery::quantity;

use crate::runtime::LinuxResources;

/// cgroup v1 shares are 2..=262144; the kubelet maps 1 CPU to 1024 shares.
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;
const SHARES_PER_CPU: i64 = 1024;
/// CFS period (100 ms) and the smallest quota the kernel accepts (1 ms).
const QUOTA_PERIOD: i64 = 100_000;
const MIN_QUOTA: i64 = 1_000;

/// The QoS class of a pod as upstream computes it (`GetPodQOS`).
pub fn qos_class(pod: &Pod) -> &'static str {
    let spec = pod.spec.as_ref();
    let containers = spec
        .map(|s| s.containers.iter())
        .into_iter()
        .flatten()
        .chain(
            spec.and_then(|s| s.init_containers.as_deref())
                .unwrap_or_default(),
        );
    let mut any = false;
    let mut guaranteed = true;
    for c in containers {
        let resources = c.resources.as_ref();
        let requests = resources.and_then(|r| r.requests.as_ref());
        let limits = resources.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            let request = requests.and_then(|r| r.get(name)).map(|q| q.0.as_str());
            let limit = limits.and_then(|l| l.get(name)).map(|q| q.0.as_str());
            if request.is_some_and(|q| quantity::milli_value(q).unwrap_or(0) > 0)
                || limit.is_some_and(|q| quantity::milli_value(q).unwrap_or(0) > 0)
            {
                any = true;
            }
            let limit_milli = limit.and_then(quantity::milli_value);
            let request_milli = request.and_then(quantity::milli_value).or(limit_milli);
            if limit_milli.is_none() || request_milli != limit_milli {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn milli(container: &Container, kind: &str, name: &str) -> Option<i64> {
    let resources = container.resources.as_ref()?;
    let list = match kind {
        "requests" => resources.requests.as_ref(),
        _ => resources.limits.as_ref(),
    }?;
    quantity::milli_value(&list.get(name)?.0)
}

/// The cgroup settings of `container` in `pod`; `node_memory_bytes` scales the OOM score of
/// burstable containers.
pub fn linux_resources(pod: &Pod, container: &Container, node_memory_bytes: i64) -> LinuxResources {
    // The API defaults a missing request to the limit.
    let cpu_request = milli(container, "requests", "cpu").or(milli(container, "limits", "cpu"));
    let cpu_limit = milli(container, "limits", "cpu");
    let memory_limit = milli(container, "limits", "memory").map(|m| m / 1000);
    let memory_request = milli(container, "requests", "memory")
        .map(|m| m / 1000)
        .or(memory_limit);
    let cpu_shares = cpu_request
        .map(|m| (m * SHARES_PER_CPU / 1000).clamp(MIN_SHARES, MAX_SHARES))
        .unwrap_or(MIN_SHARES);
    let cpu_quota = cpu_limit.map(|m| (m * QUOTA_PERIOD / 1000).max(MIN_QUOTA));
    let oom_score_adj = match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let request = memory_request.unwrap_or(0);
            let adj = if node_memory_bytes > 0 {
                1000 - (1000 * request) / node_memory_bytes
            } else {
                1000
            };
            adj.clamp(2, 999)
        }
    };
    LinuxResources {
        cpu_shares,
        cpu_period: cpu_quota.map(|_| QUOTA_PERIOD).unwrap_or(0),
        cpu_quota: cpu_quota.unwrap_or(0),
        memory_limit_bytes: memory_limit.unwrap_or(0),
        oom_score_adj,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: serde_json::Value) -> Pod {
        let Ok(p) = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "resources": resources}]}
        })) else {
            unreachable!("valid pod")
        };
        p
    }

    #[test]
    fn requests_and_limits_become_shares_quota_memory_and_oom_score() {
        let p = pod(
            serde_json::json!({"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}}),
        );
        let c = &p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        assert_eq!(qos_class(&p), "Burstable");
        let r = linux_resources(&p, c, 1 << 30);
        assert_eq!(
            (r.cpu_shares, r.cpu_quota, r.cpu_period),
            (256, 50_000, 100_000)
        );
        assert_eq!(r.memory_limit_bytes, 64 << 20);
        assert_eq!(r.oom_score_adj, 1000 - (1000 * (32 << 20)) / (1 << 30));

        let p = pod(serde_json::json!({"limits": {"cpu": "1", "memory": "64Mi"}}));
        let c = &p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        assert_eq!(qos_class(&p), "Guaranteed");
        let r = linux_resources(&p, c, 1 << 30);
        assert_eq!((r.cpu_shares, r.oom_score_adj), (1024, -997));

        let p = pod(serde_json::json!({}));
        let c = &p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        assert_eq!(qos_class(&p), "BestEffort");
        let r = linux_resources(&p, c, 1 << 30);
        assert_eq!(
            (
                r.cpu_shares,
                r.cpu_quota,
                r.memory_limit_bytes,
                r.oom_score_adj
            ),
            (2, 0, 0, 1000)
        );
    }
}
