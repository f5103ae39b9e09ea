//! NodeAffinity (upstream `plugins/nodeaffinity`, component-helpers `nodeaffinity`):
//! `spec.nodeSelector` and required/preferred `nodeAffinity`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};

use super::Rejection;
use crate::cache::{NodeInfo, PodInfo};

/// Upstream's reason text (`ErrReasonPod`).
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), values) else { return false };
            let Ok(bound) = bound.parse::<i64>() else { return false };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// One term: all label expressions and field expressions hold; an empty term matches nothing.
pub fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.labels();
    exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(node.name())))
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity
/// (`GetRequiredNodeAffinity(pod).Match(node)`).
pub fn matches_required(pod: &PodInfo, node: &NodeInfo) -> bool {
    let Some(spec) = pod.pod.spec.as_ref() else { return true };
    if let Some(selector) = spec.node_selector.as_ref()
        && !selector_subset(selector, node.labels())
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        Some(sel) => sel.node_selector_terms.iter().any(|t| term_matches(t, node)),
        None => true,
    }
}

fn selector_subset(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Filter.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    if matches_required(pod, node) { Ok(()) } else { Err(Rejection::unresolvable("NodeAffinity", REASON)) }
}

/// Score (before normalisation): the summed weights of matching preferred terms.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let preferred = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| na.preferred_during_scheduling_ignored_during_execution.as_deref())
        .unwrap_or_default();
    preferred.iter().filter(|p| p.weight != 0 && term_matches(&p.preference, node)).map(|p| i64::from(p.weight)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests_support::{node, pod};
    use serde_json::json;

    fn az_pod() -> PodInfo {
        // The seed course's example.
        pod(json!({"metadata": {"name": "with-node-affinity", "namespace": "default"}, "spec": {"containers": [{"name": "c"}],
        "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/e2e-az-name", "operator": "In", "values": ["e2e-az1", "e2e-az2"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {"matchExpressions": [
                {"key": "another-node-label-key", "operator": "In", "values": ["another-node-label-value"]}]}}]
        }}}}))
    }

    #[test]
    fn required_terms_and_preferred_weights() {
        let p = az_pod();
        let az1 = node(
            json!({"metadata": {"name": "a", "labels": {"kubernetes.io/e2e-az-name": "e2e-az1", "another-node-label-key": "another-node-label-value"}}}),
        );
        let az3 = node(json!({"metadata": {"name": "b", "labels": {"kubernetes.io/e2e-az-name": "e2e-az3"}}}));
        assert!(filter(&p, &az1).is_ok());
        assert_eq!(filter(&p, &az3).unwrap_err().reasons, vec![REASON]);
        assert_eq!(score(&p, &az1), 1);
        assert_eq!(score(&p, &az3), 0);
    }

    #[test]
    fn node_selector_and_match_fields() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}));
        assert!(filter(&p, &node(json!({"metadata": {"name": "n1", "labels": {"disk": "ssd"}}}))).is_ok());
        assert!(filter(&p, &node(json!({"metadata": {"name": "n2", "labels": {"disk": "ssd"}}}))).is_err());
        assert!(filter(&p, &node(json!({"metadata": {"name": "n1"}}))).is_err());
    }
}
