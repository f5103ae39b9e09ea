//! DefaultPreemption's victim selection (upstream `plugins/defaultpreemption` and
//! `framework/preemption`): on each node a lower-priority pod could make room on, remove all
//! lower-priority pods, then reprieve the most important ones that can stay; pick the node whose
//! victims matter least. PodDisruptionBudgets are not consulted yet.

use std::sync::Arc;

use crate::cache::{Cache, NodeInfo, PodInfo};
use crate::framework::{CycleState, Diagnosis, FitError};
use crate::plugins::{Code, Rejection};

/// The node chosen for preemption and the pods to evict there.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The node the preemptor is nominated to.
    pub node: String,
    /// Pods to delete.
    pub victims: Vec<Arc<PodInfo>>,
}

/// `PodEligibleToPreemptOthers`: `None` when eligible, else upstream's message.
pub fn ineligibility(pod: &PodInfo, cache: &Cache) -> Option<String> {
    let spec = pod.pod.spec.as_ref()?;
    if spec.preemption_policy.as_deref() == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never.".into());
    }
    // Already preempted on a node where lower-priority victims are still terminating: wait.
    let nominated = pod.pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref())?;
    let node = cache.nodes.get(nominated)?;
    let terminating = node.pods.iter().any(|p| p.pod.metadata.deletion_timestamp.is_some() && p.priority < pod.priority);
    terminating.then(|| "not eligible due to a terminating pod on the nominated node.".to_string())
}

fn start_time(p: &PodInfo) -> Option<&k8s_openapi::jiff::Timestamp> {
    p.pod.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| &t.0)
}

/// Victims on one node, or why none can help.
fn select_victims(state: &CycleState, node: &NodeInfo, cache: &Cache) -> Result<Vec<Arc<PodInfo>>, Rejection> {
    let pod = &state.pod;
    let mut potential: Vec<Arc<PodInfo>> = node.pods.iter().filter(|p| p.priority < pod.priority).cloned().collect();
    if potential.is_empty() {
        return Err(Rejection::unresolvable("DefaultPreemption", "No preemption victims found for incoming pod"));
    }
    let mut trial_node = node.clone();
    let mut trial = state.clone();
    for v in &potential {
        trial_node.remove_pod(&v.key);
        trial.inter_pod.update(pod, v, node, &cache.namespace_labels, -1);
        trial.spread.update(pod, v, node, -1);
    }
    trial.filter(&trial_node)?;
    // Most important first: higher priority, then the one running longer.
    potential.sort_by(|a, b| b.priority.cmp(&a.priority).then_with(|| start_time(a).cmp(&start_time(b))));
    let mut victims = Vec::new();
    for v in potential {
        trial_node.add_pod(v.clone());
        trial.inter_pod.update(pod, &v, node, &cache.namespace_labels, 1);
        trial.spread.update(pod, &v, node, 1);
        if trial.filter(&trial_node).is_err() {
            trial_node.remove_pod(&v.key);
            trial.inter_pod.update(pod, &v, node, &cache.namespace_labels, -1);
            trial.spread.update(pod, &v, node, -1);
            victims.push(v);
        }
    }
    Ok(victims)
}

/// `pickOneNodeForPreemption` without PDBs: lowest highest-victim priority, then lowest sum of
/// priorities, then fewest victims, then the latest-started highest-priority victim.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.into_iter().min_by(|a, b| {
        let top = |c: &Candidate| c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum = |c: &Candidate| c.victims.iter().map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1).sum::<i64>();
        let latest = |c: &Candidate| {
            let top = top(c);
            c.victims.iter().filter(|v| v.priority == top).filter_map(|v| start_time(v)).min().cloned()
        };
        top(a)
            .cmp(&top(b))
            .then_with(|| sum(a).cmp(&sum(b)))
            .then_with(|| a.victims.len().cmp(&b.victims.len()))
            .then_with(|| latest(b).cmp(&latest(a)))
    })
}

/// PostFilter: a candidate, or the message that goes after "preemption: ".
pub fn preempt(state: &CycleState, cache: &Cache, diagnosis: &Diagnosis) -> Result<Candidate, String> {
    if let Some(msg) = ineligibility(&state.pod, cache) {
        return Err(msg);
    }
    let mut statuses = Vec::new();
    let mut candidates = Vec::new();
    for (name, rejection) in &diagnosis.node_to_status {
        if rejection.code == Code::UnschedulableAndUnresolvable {
            statuses.push((name.clone(), Rejection::unresolvable("DefaultPreemption", "Preemption is not helpful for scheduling")));
            continue;
        }
        let Some(node) = cache.nodes.get(name) else { continue };
        match select_victims(state, node, cache) {
            Ok(victims) => candidates.push(Candidate { node: name.clone(), victims }),
            Err(r) => statuses.push((name.clone(), r)),
        }
    }
    match pick(candidates) {
        Some(c) => Ok(c),
        None => {
            let num_all_nodes = statuses.len();
            let e = FitError { num_all_nodes, diagnosis: Diagnosis { node_to_status: statuses, ..Default::default() } };
            // FitError renders a trailing period; the caller's separator adds its own.
            Err(e.to_string().trim_end_matches('.').to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Framework, ScheduleError};
    use serde_json::json;

    fn pod_json(name: &str, node: Option<&str>, priority: i32, cpu: &str) -> serde_json::Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"nodeName": node, "priority": priority,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    #[test]
    fn evicts_the_lowest_priority_pod_that_makes_room() {
        let mut cache = Cache::default();
        cache.upsert_node(
            serde_json::from_value(
                json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}}),
            )
            .unwrap(),
        );
        cache.upsert_pod(Arc::new(serde_json::from_value(pod_json("low", Some("n1"), 10, "1")).unwrap()));
        cache.upsert_pod(Arc::new(serde_json::from_value(pod_json("mid", Some("n1"), 50, "1")).unwrap()));
        let high = Arc::new(PodInfo::new(Arc::new(serde_json::from_value(pod_json("high", None, 100, "1")).unwrap())));
        let Err(ScheduleError::Unfit(fit, Some(state))) = Framework::default().schedule(high, &cache) else { panic!("should not fit") };
        assert_eq!(fit.to_string(), "0/1 nodes are available: 1 Insufficient cpu.");
        let c = preempt(&state, &cache, &fit.diagnosis).unwrap();
        assert_eq!(c.node, "n1");
        let names: Vec<&str> = c.victims.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(names, vec!["default/low"]);
    }

    #[test]
    fn no_help_message_as_upstream() {
        let mut cache = Cache::default();
        cache.upsert_node(
            serde_json::from_value(
                json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "1", "memory": "4Gi", "pods": "110"}}}),
            )
            .unwrap(),
        );
        cache.upsert_pod(Arc::new(serde_json::from_value(pod_json("same", Some("n1"), 100, "1")).unwrap()));
        let p = Arc::new(PodInfo::new(Arc::new(serde_json::from_value(pod_json("p", None, 100, "1")).unwrap())));
        let Err(ScheduleError::Unfit(fit, Some(state))) = Framework::default().schedule(p, &cache) else { panic!("should not fit") };
        let msg = preempt(&state, &cache, &fit.diagnosis).unwrap_err();
        assert_eq!(msg, "0/1 nodes are available: 1 No preemption victims found for incoming pod");
    }
}
