//! The ClusterRole aggregation controller (pkg/controller/clusterroleaggregation): a ClusterRole
//! with an `aggregationRule` gets the rules of every other ClusterRole its selectors match,
//! taken in name order without duplicates, whenever any ClusterRole changes.

use std::sync::Arc;
use std::time::Duration;

use rkube_apimachinery::selectors::LabelSelector;
use rkube_apimachinery::{ApiError, meta};
use rkube_registry::{ListOptions, Registry};
use serde_json::Value;

/// Passes per change: aggregated roles that select other aggregated roles (edit → admin) settle
/// within a few.
const MAX_PASSES: usize = 8;

/// The rules `role` should have, given every ClusterRole (`ruleExists` de-duplication).
pub fn aggregated_rules(role: &Value, all: &[Value]) -> Option<Vec<Value>> {
    let selectors = role["aggregationRule"]["clusterRoleSelectors"].as_array()?;
    let mut sorted: Vec<&Value> = all.iter().collect();
    sorted.sort_by(|a, b| meta::name(a).cmp(meta::name(b)));
    let mut rules: Vec<Value> = Vec::new();
    for selector in selectors {
        let Ok(sel) = LabelSelector::from_label_selector_json(selector) else { continue };
        for other in &sorted {
            if meta::name(other) == meta::name(role) || !sel.matches_object(other) {
                continue;
            }
            for rule in other["rules"].as_array().into_iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Some(rules)
}

/// One pass over every aggregated ClusterRole; true when something was updated.
pub async fn reconcile_once(registry: &Registry) -> Result<bool, ApiError> {
    let Some(res) = registry.lookup("rbac.authorization.k8s.io", "v1", "clusterroles") else { return Ok(false) };
    let list = registry.list(&res, None, &ListOptions::default()).await?;
    let all: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    let mut changed = false;
    for role in &all {
        let Some(want) = aggregated_rules(role, &all) else { continue };
        let have = role["rules"].as_array().cloned().unwrap_or_default();
        if have == want {
            continue;
        }
        let name = meta::name(role).to_string();
        let want = Value::Array(want);
        let updated = registry
            .modify(&res, None, &name, false, false, |old| {
                let mut new = old.clone();
                new["rules"] = want.clone();
                meta::remove_meta(&mut new, "resourceVersion");
                Ok(new)
            })
            .await;
        match updated {
            Ok(_) => changed = true,
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// Runs until aborted: reconciles at start and after every ClusterRole change.
pub async fn run(registry: Arc<Registry>) {
    loop {
        let mut watcher = registry.cache().watch("/registry/rbac.authorization.k8s.io/clusterroles/", registry.cache().revision()).ok();
        for _ in 0..MAX_PASSES {
            match reconcile_once(&registry).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "ClusterRole aggregation failed; will retry");
                    break;
                }
            }
        }
        match watcher.as_mut() {
            Some(w) => {
                // Wake on the next change (a resync also runs every minute).
                let _ = tokio::time::timeout(Duration::from_secs(60), w.next()).await;
            }
            None => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregation_takes_matching_roles_in_name_order_without_duplicates() {
        let view = json!({"metadata": {"name": "view", "labels": {"agg/edit": "true"}}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg/view": "true"}}]}, "rules": []});
        let edit = json!({"metadata": {"name": "edit"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg/edit": "true"}}]}, "rules": []});
        let pods = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]});
        let secrets = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]});
        let z = json!({"metadata": {"name": "z-extra", "labels": {"agg/view": "true"}}, "rules": [secrets, pods]});
        let a = json!({"metadata": {"name": "a-base", "labels": {"agg/view": "true"}}, "rules": [pods]});
        let other = json!({"metadata": {"name": "other"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let all = vec![view.clone(), edit.clone(), z, a, other];
        assert_eq!(aggregated_rules(&view, &all).unwrap(), vec![pods.clone(), secrets.clone()]);
        // edit picks up view's (still empty) rules only through view's label.
        assert_eq!(aggregated_rules(&edit, &all).unwrap(), Vec::<Value>::new());
        assert!(aggregated_rules(&a_role(), &all).is_none());
    }

    fn a_role() -> Value {
        json!({"metadata": {"name": "plain"}, "rules": []})
    }
}
