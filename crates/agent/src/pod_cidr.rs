//! Where the managed pod network's CIDR comes from. As the kubelet in cluster mode, the agent
//! takes it from its Node's `spec.podCIDRs`, which the server's `nodeipam` controller fills in
//! once the Node exists: the agent creates its Node early (the full status follows when the
//! runtime runs) and waits for the field. An explicit `--pod-cidr` is used as given instead, and
//! the Node the agent creates carries it, so the allocator counts it (or ignores it when it lies
//! outside the cluster CIDR) rather than assigning another.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::AgentError;
use crate::node::node_object;

/// How long the agent waits for the server to assign its Node a pod CIDR: allocation takes
/// well under a second, but after a server restart the controller manager first waits for its
/// previous leader's Lease to expire.
pub const ASSIGNED_POD_CIDR_WAIT: Duration = Duration::from_secs(120);
/// How often the wait is logged.
const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(15);


/// The IPv4 CIDR of a Node's pod CIDRs (the managed pod network is IPv4 only).
pub fn ipv4_pod_cidr(cidrs: &[String]) -> Option<String> {
    cidrs
        .iter()
        .find(|c| matches!(c.parse::<ipnet::IpNet>(), Ok(ipnet::IpNet::V4(_))))
        .cloned()
}

/// Creates the Node without status when it does not exist yet (the agent's registration
/// takes it over later, as it takes over any existing Node).
async fn ensure_node(nodes: &Api<Node>, name: &str) -> Result<(), AgentError> {
    let object: Node = serde_json::from_value(node_object(name, None))
        .map_err(|e| AgentError::Api(e.to_string()))?;
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(AgentError::Api(format!("creating node {name}: {e}"))),
    }
}

/// Waits until the server has assigned node `name` a pod CIDR and returns its IPv4 one;
/// creates the Node first if needed. Fails after `wait`, or at once when the Node's CIDRs hold
/// no IPv4 one.
pub async fn await_assigned_pod_cidr(
    client: &kube::Client,
    name: &str,
    wait: Duration,
) -> Result<String, AgentError> {
    let nodes: Api<Node> = Api::all(client.clone());
    ensure_node(&nodes, name).await?;
    let started = tokio::time::Instant::now();
    let mut next_log = started;
    loop {
        match nodes.get_opt(name).await {
            Ok(Some(node)) => {
                let cidrs = rkube_apimachinery::nodes::pod_cidrs(&node);
                if !cidrs.is_empty() {
                    return ipv4_pod_cidr(&cidrs).ok_or_else(|| {
                        AgentError::Config(format!(
                            "node {name} has pod CIDRs {cidrs:?} but no IPv4 one, and the managed pod network is IPv4: give --pod-cidr"
                        ))
                    }).inspect(|cidr| tracing::info!(node = %name, pod_cidr = %cidr, "using the pod CIDR the server assigned to this node"));
                }
            }
            // Deleted meanwhile: create it again, the server assigns the new one a CIDR.
            Ok(None) => ensure_node(&nodes, name).await?,
            Err(e) => tracing::warn!(node = %name, error = %e, "reading this node's pod CIDR"),
        }
        let now = tokio::time::Instant::now();
        if now.duration_since(started) >= wait {
            return Err(AgentError::Config(format!(
                "the server assigned node {name} no pod CIDR (spec.podCIDR) within {}s: is node CIDR allocation off (rkube server --allocate-node-cidrs=false, --disable=nodeipam) or the cluster CIDR exhausted (kubectl get events --field-selector reason=CIDRNotAvailable)? Give the agent --pod-cidr to choose the range itself",
                wait.as_secs()
            )));
        }
        if now >= next_log {
            tracing::info!(node = %name, waited_seconds = now.duration_since(started).as_secs(), "waiting for the server to assign this node a pod CIDR (spec.podCIDR)");
            next_log = now + WAIT_LOG_INTERVAL;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// With an explicit `--pod-cidr`: an existing Node without pod CIDRs gets it (as its creation
/// would have); one with other CIDRs keeps them, and the mismatch is logged (the agent still
/// uses its flag, since the pod network is its own).
pub async fn record_explicit_pod_cidr(
    client: &kube::Client,
    name: &str,
    node: &Node,
    pod_cidr: &str,
) -> Result<(), AgentError> {
    let cidrs = rkube_apimachinery::nodes::pod_cidrs(node);
    if cidrs.is_empty() {
        let nodes: Api<Node> = Api::all(client.clone());
        let patch = json!({"spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| AgentError::Api(format!("setting node {name}'s pod CIDR: {e}")))?;
    } else if !cidrs.iter().any(|c| c == pod_cidr) {
        tracing::warn!(node = %name, node_pod_cidrs = ?cidrs, %pod_cidr, "the node's spec.podCIDRs differ from --pod-cidr; pods get addresses from --pod-cidr");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ipv4_cidr_is_picked_from_the_nodes_cidrs() {
        let cidrs = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ipv4_pod_cidr(&cidrs(&["fd00::/64", "10.42.1.0/24"])).as_deref(),
            Some("10.42.1.0/24")
        );
        assert_eq!(ipv4_pod_cidr(&cidrs(&["fd00::/64"])), None);
        assert_eq!(ipv4_pod_cidr(&cidrs(&["junk"])), None);
        let node: Node = serde_json::from_value(
            json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.42.2.0/24"}}),
        )
        .unwrap();
        assert_eq!(rkube_apimachinery::nodes::pod_cidrs(&node), vec!["10.42.2.0/24".to_string()]);
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": "n"}, "spec": {}})).unwrap();
        assert!(rkube_apimachinery::nodes::pod_cidrs(&node).is_empty());
    }
}
