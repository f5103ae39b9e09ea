//! TaintToleration (upstream `plugins/tainttoleration`) and the toleration rules shared with
//! the node lifecycle controller (`k8s.io/api/core/v1/toleration.go`).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use super::Rejection;
use crate::cache::{NodeInfo, PodInfo};

/// Whether a toleration tolerates a taint (`Toleration.ToleratesTaint`).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The pod's tolerations.
pub fn tolerations_of(pod: &PodInfo) -> &[Toleration] {
    pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default()
}

fn node_taints(node: &NodeInfo) -> &[Taint] {
    node.node.spec.as_ref().and_then(|s| s.taints.as_deref()).unwrap_or_default()
}

/// Filter: the first NoSchedule/NoExecute taint the pod does not tolerate rejects the node.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let tolerations = tolerations_of(pod);
    let untolerated = node_taints(node)
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)));
    match untolerated {
        Some(t) => Err(Rejection::unresolvable(
            "TaintToleration",
            format!("node(s) had untolerated taint {{{}: {}}}", t.key, t.value.as_deref().unwrap_or("")),
        )),
        None => Ok(()),
    }
}

/// Score (before reverse normalisation): the number of PreferNoSchedule taints not tolerated by
/// the pod's PreferNoSchedule (or effect-less) tolerations.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let tolerations: Vec<&Toleration> =
        tolerations_of(pod).iter().filter(|t| matches!(t.effect.as_deref(), None | Some("") | Some("PreferNoSchedule"))).collect();
    node_taints(node)
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
        .filter(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
        .count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests_support::{node, pod};
    use serde_json::json;

    #[test]
    fn untolerated_taint_message_as_upstream() {
        let n = node(json!({"metadata": {"name": "n1"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
        ]}}));
        let p = pod(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}));
        let err = filter(&p, &n).unwrap_err();
        assert_eq!(err.reasons, vec!["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"]);

        let tolerant = pod(json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]}}));
        assert!(filter(&tolerant, &n).is_ok());
    }

    #[test]
    fn equal_operator_compares_values() {
        let taint = Taint { key: "k".into(), value: Some("v".into()), effect: "NoSchedule".into(), ..Default::default() };
        let t: Toleration = serde_json::from_value(json!({"key": "k", "value": "v"})).unwrap();
        assert!(tolerates(&t, &taint));
        let t: Toleration = serde_json::from_value(json!({"key": "k", "value": "w", "effect": "NoSchedule"})).unwrap();
        assert!(!tolerates(&t, &taint));
        let t: Toleration = serde_json::from_value(json!({"operator": "Exists"})).unwrap();
        assert!(tolerates(&t, &taint));
    }
}
