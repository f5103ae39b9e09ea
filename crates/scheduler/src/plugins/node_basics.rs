//! NodeUnschedulable, NodeName and NodePorts (upstream `plugins/nodeunschedulable`,
//! `plugins/nodename`, `plugins/nodeports`).

use k8s_openapi::api::core::v1::Taint;

use super::{Rejection, taint_toleration};
use crate::cache::{NodeInfo, PodInfo};

/// The taint a cordoned node is treated as having.
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// NodeUnschedulable: a cordoned node only takes pods tolerating its unschedulable taint.
pub fn node_unschedulable(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    let cordoned = node.node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
    if !cordoned {
        return Ok(());
    }
    let taint = Taint { key: UNSCHEDULABLE_TAINT_KEY.into(), effect: "NoSchedule".into(), ..Default::default() };
    let tolerations = pod.pod.spec.as_ref().and_then(|s| s.tolerations.as_deref()).unwrap_or_default();
    if tolerations.iter().any(|t| taint_toleration::tolerates(t, &taint)) {
        return Ok(());
    }
    Err(Rejection::unresolvable("NodeUnschedulable", "node(s) were unschedulable"))
}

/// NodeName: a pod naming a node only fits that node.
pub fn node_name(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    match pod.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
        Some(wanted) if wanted != node.name() => Err(Rejection::unresolvable("NodeName", "node(s) didn't match the requested node name")),
        _ => Ok(()),
    }
}

/// NodePorts: the pod's host ports must be free on the node.
pub fn node_ports(pod: &PodInfo, node: &NodeInfo) -> Result<(), Rejection> {
    if pod.ports.iter().any(|want| node.used_ports.iter().any(|used| used.conflicts(want))) {
        return Err(Rejection::unschedulable("NodePorts", "node(s) didn't have free ports for the requested pod ports"));
    }
    Ok(())
}
