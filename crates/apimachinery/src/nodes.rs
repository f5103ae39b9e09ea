//! Reading Node objects the same way everywhere (allocator, agent).

use k8s_openapi::api::core::v1::Node;

/// A Node's pod CIDRs: `spec.podCIDRs`, or the single `spec.podCIDR` of older writers.
pub fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let list = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_wins_and_the_single_field_is_the_fallback() {
        let node = |spec: serde_json::Value| -> Node {
            serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}, "spec": spec})).unwrap_or_default()
        };
        assert_eq!(pod_cidrs(&node(serde_json::json!({"podCIDR": "10.0.1.0/24"}))), ["10.0.1.0/24"]);
        assert_eq!(
            pod_cidrs(&node(serde_json::json!({"podCIDR": "10.0.1.0/24", "podCIDRs": ["10.0.1.0/24", "fd00::/64"]}))),
            ["10.0.1.0/24", "fd00::/64"]
        );
        assert!(pod_cidrs(&node(serde_json::json!({"podCIDR": ""}))).is_empty());
    }
}
