//! The in-tree plugins of the default profile (upstream `pkg/scheduler/framework/plugins`), as
//! plain functions over the [`crate::cache`] types. Each filter returns a [`Rejection`] with
//! upstream's reason text; each score plugin returns raw scores that [`normalize`] maps to
//! 0..=100 the way the plugin's `NormalizeScore` does.

pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_basics;
pub mod resources_fit;
pub mod taint_toleration;
pub mod topology_spread;
pub mod volume_binding;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The highest score a plugin gives a node (`framework.MaxNodeScore`).
pub const MAX_NODE_SCORE: i64 = 100;

/// Whether removing pods could ever help (upstream `framework.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The node may fit after preemption.
    Unschedulable,
    /// Preemption cannot help on this node.
    UnschedulableAndUnresolvable,
}

/// Why a plugin rejected a pod (for one node, or for all of them in PreFilter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Resolvable by preemption or not.
    pub code: Code,
    /// Upstream's reason texts, e.g. `Insufficient cpu`.
    pub reasons: Vec<String>,
    /// The plugin's name, e.g. `NodeResourcesFit`.
    pub plugin: &'static str,
}

impl Rejection {
    /// A rejection preemption might resolve.
    pub fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Self { code: Code::Unschedulable, reasons: vec![reason.into()], plugin }
    }

    /// A rejection preemption cannot resolve.
    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Self { code: Code::UnschedulableAndUnresolvable, reasons: vec![reason.into()], plugin }
    }
}

/// `metav1.LabelSelector` semantics: every matchLabels entry and expression must hold. An
/// absent selector matches nothing (as `LabelSelectorAsSelector(nil)`), an empty one everything.
pub fn selector_matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector else { return false };
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Maps raw scores to 0..=MAX_NODE_SCORE relative to the highest (`DefaultNormalizeScore`);
/// `reverse` turns "more is worse" into "more is better".
pub fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        let v = MAX_NODE_SCORE * *s / max;
        *s = if reverse { MAX_NODE_SCORE - v } else { v };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalize_score_as_upstream() {
        let mut s = vec![10, 5, 0];
        normalize(&mut s, false);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![10, 5, 0];
        normalize(&mut s, true);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 0];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }

    #[test]
    fn label_selector_semantics() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}, {"key": "app", "operator": "In", "values": ["web", "api"]}]
        }))
        .unwrap();
        assert!(selector_matches(Some(&sel), &labels));
        assert!(selector_matches(Some(&LabelSelector::default()), &labels));
        assert!(!selector_matches(None, &labels));
    }
}
