//! One scheduling cycle for one pod (upstream `pkg/scheduler/schedule_one.go`): PreFilter,
//! Filter over a rotating window of nodes, Score with the default profile's weights, host
//! selection, and the `FitError` text of FailedScheduling events.

use std::fmt;
use std::sync::Arc;

use rand::Rng;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::plugins::{
    Code, Rejection, inter_pod_affinity, node_affinity, node_basics, normalize, resources_fit, taint_toleration, topology_spread,
    volume_binding,
};

/// Upstream's message when the cluster has no nodes (`ErrNoNodesAvailable`).
pub const NO_NODES_MESSAGE: &str = "no nodes available to schedule pods";

/// Per-cycle state computed by PreFilter.
#[derive(Debug, Clone)]
pub struct CycleState {
    /// The pod being scheduled.
    pub pod: Arc<PodInfo>,
    /// InterPodAffinity counts.
    pub inter_pod: inter_pod_affinity::State,
    /// PodTopologySpread `DoNotSchedule` counts.
    pub spread: topology_spread::State,
    /// VolumeBinding findings.
    pub volumes: volume_binding::State,
}

impl CycleState {
    /// PreFilter of every plugin that has one.
    pub fn prefilter(pod: Arc<PodInfo>, cache: &Cache) -> Result<Self, Rejection> {
        let volumes = volume_binding::prefilter(&pod, cache)?;
        let inter_pod = inter_pod_affinity::State::prefilter(&pod, cache);
        let spread = topology_spread::State::prefilter(&pod, cache, "DoNotSchedule");
        Ok(Self { pod, inter_pod, spread, volumes })
    }

    /// Filter, in the default profile's order; the first rejection wins.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Rejection> {
        let pod = &self.pod;
        node_basics::node_unschedulable(pod, node)?;
        node_basics::node_name(pod, node)?;
        taint_toleration::filter(pod, node)?;
        node_affinity::filter(pod, node)?;
        node_basics::node_ports(pod, node)?;
        resources_fit::filter(pod, node)?;
        volume_binding::filter(&self.volumes, node)?;
        self.spread.filter(pod, node)?;
        self.inter_pod.filter(node)
    }
}

/// Why a pod fits nowhere (upstream `framework.Diagnosis`).
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    /// The rejection of each node, by node name.
    pub node_to_status: Vec<(String, Rejection)>,
    /// A PreFilter rejection, which applies to all nodes.
    pub prefilter_msg: Option<String>,
    /// What PostFilter (preemption) reported.
    pub post_filter_msg: Option<String>,
}

/// A pod that fits on no node (upstream `framework.FitError`).
#[derive(Debug, Clone)]
pub struct FitError {
    /// Nodes in the snapshot.
    pub num_all_nodes: usize,
    /// Why.
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    /// "0/X nodes are available: <PreFilterMsg>. <reason histogram>. <PostFilterMsg>."
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        match &self.diagnosis.prefilter_msg {
            Some(msg) => write!(f, " {msg}.")?,
            None => {
                let mut histogram: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
                for (_, rejection) in &self.diagnosis.node_to_status {
                    for reason in &rejection.reasons {
                        *histogram.entry(reason.as_str()).or_default() += 1;
                    }
                }
                let mut parts: Vec<String> = histogram.into_iter().map(|(reason, n)| format!("{n} {reason}")).collect();
                parts.sort();
                if !parts.is_empty() {
                    write!(f, " {}.", parts.join(", "))?;
                }
            }
        }
        if let Some(msg) = &self.diagnosis.post_filter_msg {
            write!(f, " {msg}.")?;
        }
        Ok(())
    }
}

/// The outcome of a failed cycle.
#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// The cluster has no nodes.
    NoNodes,
    /// No node fits; the state is kept for preemption.
    Unfit(FitError, Option<Box<CycleState>>),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoNodes => f.write_str(NO_NODES_MESSAGE),
            Self::Unfit(e, _) => e.fmt(f),
        }
    }
}

/// How many feasible nodes to look for before scoring (upstream `numFeasibleNodesToFind` with
/// the adaptive percentage: 50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
pub fn num_feasible_nodes_to_find(all: usize) -> usize {
    const MIN_FEASIBLE: usize = 100;
    if all < MIN_FEASIBLE {
        return all;
    }
    let percentage = 50usize.saturating_sub(all / 125).max(5);
    (all * percentage / 100).max(MIN_FEASIBLE)
}

/// Default profile score weights (upstream `pkg/scheduler/apis/config/v1/default_plugins.go`).
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;
const WEIGHT_INTER_POD_AFFINITY: i64 = 2;
const WEIGHT_RESOURCES_FIT: i64 = 1;
const WEIGHT_BALANCED_ALLOCATION: i64 = 1;

/// Runs cycles; keeps the rotating start index between them.
#[derive(Debug, Default)]
pub struct Framework {
    next_start_index: usize,
}

impl Framework {
    /// Finds the node for `pod`.
    pub fn schedule(&mut self, pod: Arc<PodInfo>, cache: &Cache) -> Result<String, ScheduleError> {
        let nodes: Vec<&NodeInfo> = cache.nodes.values().collect();
        if nodes.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        let state = match CycleState::prefilter(pod.clone(), cache) {
            Ok(s) => s,
            Err(rejection) => {
                let msg = rejection.reasons.join(", ");
                let node_to_status = nodes.iter().map(|n| (n.name().to_string(), rejection.clone())).collect();
                let diagnosis = Diagnosis { node_to_status, prefilter_msg: Some(msg), post_filter_msg: None };
                // Preemption still runs (and finds every node unresolvable), as upstream.
                let state = CycleState { pod, inter_pod: Default::default(), spread: Default::default(), volumes: Default::default() };
                return Err(ScheduleError::Unfit(FitError { num_all_nodes: nodes.len(), diagnosis }, Some(Box::new(state))));
            }
        };
        // A pod that preempted others goes to its nominated node if it fits there now.
        if let Some(nominated) = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref())
            && let Some(node) = cache.nodes.get(nominated)
            && state.filter(node).is_ok()
        {
            return Ok(nominated.to_string());
        }
        let want = num_feasible_nodes_to_find(nodes.len());
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(nodes.len()));
        let mut rejected = Vec::new();
        let start = self.next_start_index % nodes.len();
        let mut processed = 0;
        for i in 0..nodes.len() {
            let node = nodes[(start + i) % nodes.len()];
            processed += 1;
            match state.filter(node) {
                Ok(()) => {
                    feasible.push(node);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Err(r) => rejected.push((node.name().to_string(), r)),
            }
        }
        self.next_start_index = (start + processed) % nodes.len();
        if feasible.is_empty() {
            let diagnosis = Diagnosis { node_to_status: rejected, ..Default::default() };
            return Err(ScheduleError::Unfit(FitError { num_all_nodes: nodes.len(), diagnosis }, Some(Box::new(state))));
        }
        if feasible.len() == 1 {
            return Ok(feasible[0].name().to_string());
        }
        let scores = score(&state, cache, &feasible);
        Ok(select_host(&feasible, &scores))
    }
}

/// Weighted sum of the normalised plugin scores for each feasible node.
pub fn score(state: &CycleState, cache: &Cache, nodes: &[&NodeInfo]) -> Vec<i64> {
    let pod = &state.pod;
    let mut total = vec![0i64; nodes.len()];
    let mut add = |scores: &[i64], weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    let mut taints: Vec<i64> = nodes.iter().map(|n| taint_toleration::score(pod, n)).collect();
    normalize(&mut taints, true);
    add(&taints, WEIGHT_TAINT_TOLERATION);
    let mut affinity: Vec<i64> = nodes.iter().map(|n| node_affinity::score(pod, n)).collect();
    normalize(&mut affinity, false);
    add(&affinity, WEIGHT_NODE_AFFINITY);
    let fit: Vec<i64> = nodes.iter().map(|n| resources_fit::least_allocated_score(pod, n)).collect();
    add(&fit, WEIGHT_RESOURCES_FIT);
    let balanced: Vec<i64> = nodes.iter().map(|n| resources_fit::balanced_allocation_score(pod, n)).collect();
    add(&balanced, WEIGHT_BALANCED_ALLOCATION);
    let soft_spread = topology_spread::State::prefilter(pod, cache, "ScheduleAnyway");
    if !soft_spread.is_empty() {
        let raw: Vec<Option<i64>> = nodes.iter().map(|n| soft_spread.score(n)).collect();
        add(&topology_spread::normalize(&raw), WEIGHT_POD_TOPOLOGY_SPREAD);
    }
    let pairs = inter_pod_affinity::topology_scores(pod, cache);
    if !pairs.is_empty() {
        let mut raw: Vec<i64> = nodes.iter().map(|n| inter_pod_affinity::score(&pairs, n)).collect();
        inter_pod_affinity::normalize(&mut raw);
        add(&raw, WEIGHT_INTER_POD_AFFINITY);
    }
    total
}

/// The highest score wins; ties are broken at random (reservoir sampling, as upstream).
fn select_host(nodes: &[&NodeInfo], scores: &[i64]) -> String {
    let mut rng = rand::rng();
    let mut best = 0;
    let mut ties = 0u32;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    nodes[best].name().to_string()
}

/// Whether any rejection in the diagnosis could be resolved by preemption.
pub fn preemption_may_help(diagnosis: &Diagnosis) -> bool {
    diagnosis.node_to_status.iter().any(|(_, r)| r.code == Code::Unschedulable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::Code;
    use serde_json::json;

    fn rejection(code: Code, reason: &str) -> Rejection {
        Rejection { code, reasons: vec![reason.to_string()], plugin: "test" }
    }

    #[test]
    fn fit_error_text_as_upstream() {
        let diagnosis = Diagnosis {
            node_to_status: vec![
                (
                    "n1".into(),
                    rejection(Code::UnschedulableAndUnresolvable, "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"),
                ),
                ("n2".into(), rejection(Code::UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector")),
                ("n3".into(), rejection(Code::UnschedulableAndUnresolvable, "node(s) didn't match Pod's node affinity/selector")),
            ],
            prefilter_msg: None,
            post_filter_msg: Some("preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling".into()),
        };
        let e = FitError { num_all_nodes: 3, diagnosis };
        assert_eq!(
            e.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, 2 node(s) didn't match \
             Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn prefilter_message_replaces_the_histogram() {
        let e = FitError {
            num_all_nodes: 2,
            diagnosis: Diagnosis { prefilter_msg: Some("pod has unbound immediate PersistentVolumeClaims".into()), ..Default::default() },
        };
        assert_eq!(e.to_string(), "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.");
    }

    #[test]
    fn feasible_nodes_to_find_as_upstream() {
        assert_eq!(num_feasible_nodes_to_find(50), 50);
        assert_eq!(num_feasible_nodes_to_find(100), 100);
        assert_eq!(num_feasible_nodes_to_find(1000), 420);
        assert_eq!(num_feasible_nodes_to_find(5000), 500);
        assert_eq!(num_feasible_nodes_to_find(6000), 300);
    }

    #[test]
    fn schedules_onto_the_emptier_node() {
        let mut cache = Cache::default();
        for name in ["busy", "idle"] {
            cache.upsert_node(
                serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
                .unwrap(),
            );
        }
        cache.upsert_pod(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "old", "namespace": "default"},
            "spec": {"nodeName": "busy", "containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "6Gi"}}}]}}))
            .unwrap(),
        ));
        let pod = crate::cache::tests_support::sized_pod("new", "500m", "1Gi", json!({}));
        let mut fw = Framework::default();
        assert_eq!(fw.schedule(Arc::new(pod), &cache).unwrap(), "idle");
    }
}
