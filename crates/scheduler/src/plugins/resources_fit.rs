//! NodeResourcesFit (filter, LeastAllocated score) and NodeResourcesBalancedAllocation (upstream
//! `plugins/noderesources/fit.go`, `least_allocated.go`, `balanced_allocation.go`).

use super::{Code, MAX_NODE_SCORE, Rejection};
use crate::cache::{NodeInfo, PodInfo};

/// Filter: the node has room for the pod's requests and one more pod.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let mut reasons = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.allowed_pods {
        reasons.push("Too many pods".to_string());
    }
    let want = &pod.requests;
    let free = |alloc: i64, used: i64| alloc - used;
    if !want.is_zero() {
        if want.milli_cpu > 0 && want.milli_cpu > free(node.allocatable.milli_cpu, node.requested.milli_cpu) {
            reasons.push("Insufficient cpu".into());
        }
        if want.memory > 0 && want.memory > free(node.allocatable.memory, node.requested.memory) {
            reasons.push("Insufficient memory".into());
        }
        if want.ephemeral_storage > 0 && want.ephemeral_storage > free(node.allocatable.ephemeral_storage, node.requested.ephemeral_storage)
        {
            reasons.push("Insufficient ephemeral-storage".into());
        }
        for (name, amount) in &want.scalar {
            let alloc = node.allocatable.scalar.get(name).copied().unwrap_or(0);
            let used = node.requested.scalar.get(name).copied().unwrap_or(0);
            if *amount > 0 && *amount > alloc - used {
                reasons.push(format!("Insufficient {name}"));
            }
        }
    }
    if reasons.is_empty() { Ok(()) } else { Err(Rejection { code: Code::Unschedulable, reasons, plugin: "NodeResourcesFit" }) }
}

fn least_requested(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// LeastAllocated: free share of cpu and memory after placing the pod (weights 1 and 1),
/// counting unset requests as the scheduler defaults.
pub fn least_allocated_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let cpu = least_requested(node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu, node.allocatable.milli_cpu);
    let memory = least_requested(node.non_zero_requested.memory + pod.non_zero_requests.memory, node.allocatable.memory);
    (cpu + memory) / 2
}

/// BalancedAllocation: how even the cpu and memory shares would be after placing the pod.
pub fn balanced_allocation_score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let mut fractions = Vec::with_capacity(2);
    for (requested, capacity) in [
        (node.requested.milli_cpu + pod.requests.milli_cpu, node.allocatable.milli_cpu),
        (node.requested.memory + pod.requests.memory, node.allocatable.memory),
    ] {
        if capacity > 0 {
            fractions.push((requested as f64 / capacity as f64).min(1.0));
        }
    }
    let std = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests_support::{sized_node, sized_pod};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn insufficient_resources_are_all_reported() {
        let mut node = sized_node("n", "1", "1Gi", json!({}));
        node.add_pod(Arc::new(sized_pod("old", "800m", "512Mi", json!({}))));
        let pod = sized_pod("new", "500m", "1Gi", json!({}));
        let err = filter(&pod, &node).unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(err.code, Code::Unschedulable);
        assert!(filter(&sized_pod("small", "200m", "256Mi", json!({})), &node).is_ok());
    }

    #[test]
    fn least_allocated_matches_upstream_example() {
        // Upstream least_allocated_test "nothing scheduled, resources requested, differently
        // sized nodes": pod 3000m/5000; node1 4000m/10000 → cpu 25, mem 50 → 37;
        // node2 6000m/10000 → cpu 50, mem 50 → 50.
        let pod = sized_pod("p", "3", "5000", json!({}));
        assert_eq!(least_allocated_score(&pod, &sized_node("n1", "4", "10000", json!({}))), 37);
        assert_eq!(least_allocated_score(&pod, &sized_node("n2", "6", "10000", json!({}))), 50);
    }

    #[test]
    fn balanced_allocation_matches_upstream_example() {
        // Upstream balanced_allocation_test: pod 3000m/5000 on 4000m/10000 → fractions 0.75 and
        // 0.5, std 0.125 → 87; on 6000m/10000 → 0.5 and 0.5 → 100.
        let pod = sized_pod("p", "3", "5000", json!({}));
        assert_eq!(balanced_allocation_score(&pod, &sized_node("n1", "4", "10000", json!({}))), 87);
        assert_eq!(balanced_allocation_score(&pod, &sized_node("n2", "6", "10000", json!({}))), 100);
    }

    #[test]
    fn too_many_pods() {
        let node = crate::cache::tests_support::node(json!({"metadata": {"name": "n"}, "status": {"allocatable": {"pods": "0"}}}));
        let err = filter(&sized_pod("p", "0", "0", json!({})), &node).unwrap_err();
        assert_eq!(err.reasons, vec!["Too many pods"]);
    }
}
