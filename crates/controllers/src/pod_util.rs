//! Pod predicates and the deletion ranking the replica controllers share
//! (pkg/controller/controller_utils.go `IsPodActive`, `ActivePodsWithRanks`,
//! pkg/api/v1/pod/util.go `IsPodReady`, `IsPodAvailable`).

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// Not terminated and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = phase(pod);
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// `status.phase`, empty when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the Ready condition last became True (`Some(None)` when True without a time).
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then(|| ready.last_transition_time.as_ref().map(|t| t.0))
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
    }
}

/// Seconds until a Ready pod becomes available, when it is not yet (for requeueing).
pub fn seconds_until_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<i64> {
    match ready_since(pod) {
        Some(Some(since)) if min_ready_seconds > 0 => {
            let left = since.as_second() + i64::from(min_ready_seconds) - now.as_second();
            (left > 0).then_some(left)
        }
        _ => None,
    }
}

fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| cs.iter().map(|c| c.restart_count).sum())
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase_rank(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders `pods` so the ones to delete first come first (upstream `ActivePodsWithRanks.Less`):
/// unassigned before assigned, Pending before Unknown before Running, not ready before ready,
/// more pods of the same owner on the node before fewer, ready for a shorter time before longer,
/// more restarts before fewer, newer before older.
pub fn sort_for_deletion(pods: &mut [Pod], all_related: &[Pod]) {
    let on_node = |pod: &Pod| -> usize {
        let node = node_name(pod);
        if node.is_empty() {
            return 0;
        }
        all_related
            .iter()
            .filter(|p| is_active(p) && node_name(p) == node)
            .count()
    };
    let mut ranked: Vec<(usize, Pod)> = pods.iter().map(|p| (on_node(p), p.clone())).collect();
    ranked.sort_by(|(rank_a, a), (rank_b, b)| deletion_order(a, *rank_a, b, *rank_b));
    for (slot, (_, pod)) in pods.iter_mut().zip(ranked) {
        *slot = pod;
    }
}

fn deletion_order(a: &Pod, rank_a: usize, b: &Pod, rank_b: usize) -> Ordering {
    let assigned = |p: &Pod| !node_name(p).is_empty();
    if assigned(a) != assigned(b) {
        return assigned(a).cmp(&assigned(b));
    }
    if phase_rank(a) != phase_rank(b) {
        return phase_rank(a).cmp(&phase_rank(b));
    }
    if is_ready(a) != is_ready(b) {
        return is_ready(a).cmp(&is_ready(b));
    }
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    if is_ready(a) && is_ready(b) {
        let (ta, tb) = (ready_since(a).flatten(), ready_since(b).flatten());
        if ta != tb {
            // Ready more recently (later time) goes first; an unknown time counts as most recent.
            return match (ta, tb) {
                (None, _) => Ordering::Less,
                (_, None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            };
        }
    }
    if restart_count(a) != restart_count(b) {
        return restart_count(b).cmp(&restart_count(a));
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    match (created(a), created(b)) {
        (None, None) => Ordering::Equal,
        (None, _) => Ordering::Less,
        (_, None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<&str>, created: &str) -> Pod {
        let mut v = json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": phase}
        });
        if !node.is_empty() {
            v["spec"]["nodeName"] = json!(node);
        }
        if let Some(t) = ready {
            v["status"]["conditions"] =
                json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        }
        serde_json::from_value(v).unwrap()
    }

    fn names(pods: &[Pod]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn unassigned_pending_and_unready_pods_go_first() {
        let t = "2024-01-01T00:00:00Z";
        let mut pods = vec![
            pod("running-ready", "n1", "Running", Some(t), t),
            pod("unassigned", "", "Pending", None, t),
            pod("running-unready", "n1", "Running", None, t),
            pod("pending-on-node", "n1", "Pending", None, t),
        ];
        let all = pods.clone();
        sort_for_deletion(&mut pods, &all);
        assert_eq!(
            names(&pods),
            [
                "unassigned",
                "pending-on-node",
                "running-unready",
                "running-ready"
            ]
        );
    }

    #[test]
    fn crowded_nodes_then_recently_ready_then_newest_go_first() {
        let old = "2024-01-01T00:00:00Z";
        let new = "2024-01-02T00:00:00Z";
        let mut pods = vec![
            pod("alone", "n1", "Running", Some(old), old),
            pod("crowded-a", "n2", "Running", Some(old), old),
            pod("crowded-b", "n2", "Running", Some(new), old),
        ];
        let all = pods.clone();
        sort_for_deletion(&mut pods, &all);
        assert_eq!(names(&pods), ["crowded-b", "crowded-a", "alone"]);

        let mut same = vec![
            pod("older", "", "Pending", None, old),
            pod("newer", "", "Pending", None, new),
        ];
        let all = same.clone();
        sort_for_deletion(&mut same, &all);
        assert_eq!(names(&same), ["newer", "older"]);
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod(
            "p",
            "n",
            "Running",
            Some("2024-01-01T00:00:00Z"),
            "2024-01-01T00:00:00Z",
        );
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(is_available(&p, 0, at("2024-01-01T00:00:01Z")));
        assert!(!is_available(&p, 10, at("2024-01-01T00:00:05Z")));
        assert_eq!(
            seconds_until_available(&p, 10, at("2024-01-01T00:00:05Z")),
            Some(5)
        );
        assert!(is_available(&p, 10, at("2024-01-01T00:00:10Z")));
        assert!(!is_available(
            &pod("q", "", "Pending", None, "2024-01-01T00:00:00Z"),
            0,
            at("2024-01-01T00:00:10Z")
        ));
    }
}
