//! PodTopologySpread (upstream `plugins/podtopologyspread`): hard constraints
//! (`DoNotSchedule`) as a filter, soft ones (`ScheduleAnyway`) as a score. Cluster-level default
//! constraints are not applied.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Taint, TopologySpreadConstraint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{MAX_NODE_SCORE, Rejection, node_affinity, selector_matches, taint_toleration};
use crate::cache::{Cache, NodeInfo, PodInfo};

/// One constraint, with matchLabelKeys folded into the selector.
#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    topology_key: String,
    min_domains: usize,
    selector: LabelSelector,
    honor_node_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    fn new(c: &TopologySpreadConstraint, pod: &PodInfo) -> Self {
        let mut selector = c.label_selector.clone().unwrap_or_default();
        for key in c.match_label_keys.iter().flatten() {
            if let Some(v) = pod.labels().get(key) {
                selector.match_expressions.get_or_insert_with(Vec::new).push(LabelSelectorRequirement {
                    key: key.clone(),
                    operator: "In".into(),
                    values: Some(vec![v.clone()]),
                });
            }
        }
        Self {
            max_skew: i64::from(c.max_skew),
            topology_key: c.topology_key.clone(),
            min_domains: c.min_domains.and_then(|m| usize::try_from(m).ok()).unwrap_or(1),
            selector,
            honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }

    fn counts_pod(&self, incoming: &PodInfo, existing: &PodInfo) -> bool {
        existing.namespace() == incoming.namespace()
            && existing.pod.metadata.deletion_timestamp.is_none()
            && selector_matches(Some(&self.selector), existing.labels())
    }
}

/// Matching-pod counts per domain for each constraint of one kind.
#[derive(Debug, Clone, Default)]
pub struct State {
    constraints: Vec<Constraint>,
    /// Per constraint: domain value → matching pods.
    counts: Vec<BTreeMap<String, i64>>,
}

fn node_is_eligible(pod: &PodInfo, node: &NodeInfo, constraints: &[Constraint]) -> bool {
    if !constraints.iter().all(|c| node.labels().contains_key(&c.topology_key)) {
        return false;
    }
    if constraints.iter().any(|c| c.honor_node_affinity) && !node_affinity::matches_required(pod, node) {
        return false;
    }
    if constraints.iter().any(|c| c.honor_taints) {
        let tolerations = taint_toleration::tolerations_of(pod);
        let taints: &[Taint] = node.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default();
        let blocked = taints
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .any(|taint| !tolerations.iter().any(|t| taint_toleration::tolerates(t, taint)));
        if blocked {
            return false;
        }
    }
    true
}

impl State {
    /// Counts over the cluster for the pod's constraints with the given `whenUnsatisfiable`.
    pub fn prefilter(pod: &PodInfo, cache: &Cache, when_unsatisfiable: &str) -> Self {
        let constraints: Vec<Constraint> = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default()
            .iter()
            .filter(|c| c.when_unsatisfiable == when_unsatisfiable)
            .map(|c| Constraint::new(c, pod))
            .collect();
        let mut counts = vec![BTreeMap::new(); constraints.len()];
        if !constraints.is_empty() {
            for node in cache.nodes.values() {
                if !node_is_eligible(pod, node, &constraints) {
                    continue;
                }
                for (i, c) in constraints.iter().enumerate() {
                    let domain = node.labels().get(&c.topology_key).cloned().unwrap_or_default();
                    let matching = node.pods.iter().filter(|p| c.counts_pod(pod, p)).count() as i64;
                    *counts[i].entry(domain).or_default() += matching;
                }
            }
        }
        Self { constraints, counts }
    }

    /// Accounts (+1) or removes (-1) an existing pod on `node` (used by preemption).
    pub fn update(&mut self, incoming: &PodInfo, existing: &PodInfo, node: &NodeInfo, delta: i64) {
        if self.constraints.is_empty() || !node_is_eligible(incoming, node, &self.constraints) {
            return;
        }
        for (i, c) in self.constraints.iter().enumerate() {
            if c.counts_pod(incoming, existing)
                && let Some(domain) = node.labels().get(&c.topology_key)
            {
                *self.counts[i].entry(domain.clone()).or_default() += delta;
            }
        }
    }

    /// Filter for `DoNotSchedule` constraints.
    pub fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(domain) = node.labels().get(&c.topology_key) else {
                return Err(Rejection::unresolvable(
                    "PodTopologySpread",
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                ));
            };
            let counts = &self.counts[i];
            let min = if counts.len() < c.min_domains { 0 } else { counts.values().copied().min().unwrap_or(0) };
            let self_match = i64::from(selector_matches(Some(&c.selector), pod.labels()));
            let matching = counts.get(domain).copied().unwrap_or(0);
            if matching + self_match - min > c.max_skew {
                return Err(Rejection::unschedulable("PodTopologySpread", "node(s) didn't match pod topology spread constraints"));
            }
        }
        Ok(())
    }

    /// True when there is nothing to score.
    pub fn is_empty(&self) -> bool {
        self.constraints.is_empty()
    }

    /// Raw score for `ScheduleAnyway` constraints: matching pods in the node's domains weighted
    /// by log(domains + 2), plus maxSkew - 1 (lower is better).
    pub fn score(&self, node: &NodeInfo) -> Option<i64> {
        let mut total = 0.0;
        for (i, c) in self.constraints.iter().enumerate() {
            let domain = node.labels().get(&c.topology_key)?;
            let weight = ((self.counts[i].len() + 2) as f64).ln();
            total += self.counts[i].get(domain).copied().unwrap_or(0) as f64 * weight + (c.max_skew - 1) as f64;
        }
        Some(total.round() as i64)
    }
}

/// Upstream's NormalizeScore: nodes without the topology labels get 0; the others
/// `100 * (max + min - s) / max`.
pub fn normalize(raw: &[Option<i64>]) -> Vec<i64> {
    let present: Vec<i64> = raw.iter().flatten().copied().collect();
    let (min, max) = (present.iter().copied().min().unwrap_or(0), present.iter().copied().max().unwrap_or(0));
    raw.iter()
        .map(|s| match s {
            None => 0,
            Some(_) if max == 0 => MAX_NODE_SCORE,
            Some(s) => MAX_NODE_SCORE * (max + min - s) / max,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn max_skew_one_over_zones() {
        let mut cache = Cache::default();
        for (name, zone) in [("a1", "a"), ("b1", "b")] {
            cache.upsert_node(
                serde_json::from_value(json!({"metadata": {"name": name, "labels": {"zone": zone}},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
                .unwrap(),
            );
        }
        cache.upsert_node(serde_json::from_value(json!({"metadata": {"name": "nolabel"}})).unwrap());
        let spread = |name: &str, node: Option<&str>| {
            json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "s"}}, "spec": {"nodeName": node,
                "containers": [{"name": "c"}], "topologySpreadConstraints": [
                    {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "s"}}}]}})
        };
        cache.upsert_pod(Arc::new(serde_json::from_value(spread("s0", Some("a1"))).unwrap()));
        let incoming = crate::cache::tests_support::pod(spread("s1", None));
        let state = State::prefilter(&incoming, &cache, "DoNotSchedule");
        assert_eq!(
            state.filter(&incoming, &cache.nodes["a1"]).unwrap_err().reasons,
            vec!["node(s) didn't match pod topology spread constraints"]
        );
        assert!(state.filter(&incoming, &cache.nodes["b1"]).is_ok());
        assert_eq!(
            state.filter(&incoming, &cache.nodes["nolabel"]).unwrap_err().reasons,
            vec!["node(s) didn't match pod topology spread constraints (missing required label)"]
        );
    }
}
