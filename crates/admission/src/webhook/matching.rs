//! Which webhooks a request goes to: rules, scope, namespaceSelector, objectSelector
//! (upstream `pkg/admission/plugin/webhook/predicates`).

use rkube_apimachinery::ApiError;
use serde_json::Value;

use crate::context::Context;

fn any_matches(list: &Value, want: &str) -> bool {
    list.as_array().into_iter().flatten().filter_map(Value::as_str).any(|s| s == "*" || s == want)
}

fn resource_matches(list: &Value, resource: &str, sub: &str) -> bool {
    list.as_array().into_iter().flatten().filter_map(Value::as_str).any(|s| {
        let (r, sr) = s.split_once('/').unwrap_or((s, ""));
        let res_ok = r == "*" || r == resource;
        let sub_ok = if s.contains('/') { sr == "*" || sr == sub } else { sub.is_empty() };
        res_ok && sub_ok
    })
}

fn rule_matches(ctx: &Context<'_>, rule: &Value) -> bool {
    let r = ctx.req.resource;
    let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
        "Cluster" => !r.namespaced(),
        "Namespaced" => r.namespaced(),
        _ => true,
    };
    scope_ok
        && any_matches(&rule["operations"], ctx.req.operation.as_str())
        && any_matches(&rule["apiGroups"], &r.group)
        && any_matches(&rule["apiVersions"], &r.version)
        && resource_matches(&rule["resources"], &r.plural, ctx.req.subresource)
}

/// `metav1.LabelSelector` against labels: matchLabels and matchExpressions (an empty selector
/// matches everything).
pub fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels[k].as_str();
    for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
        if label(k) != v.as_str() {
            return false;
        }
    }
    for e in selector["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("");
        let values: Vec<&str> = e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let ok = match e["operator"].as_str().unwrap_or("") {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => !label(key).is_some_and(|v| values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `hook` is called for this request.
pub async fn applies(ctx: &Context<'_>, hook: &Value, obj: Option<&Value>) -> Result<bool, ApiError> {
    if !hook["rules"].as_array().into_iter().flatten().any(|r| rule_matches(ctx, r)) {
        return Ok(false);
    }
    let object_labels = |o: Option<&Value>| o.map(|o| o["metadata"]["labels"].clone()).unwrap_or(Value::Null);
    if hook["objectSelector"].is_object() {
        let sel = &hook["objectSelector"];
        if !selector_matches(sel, &object_labels(obj)) && !selector_matches(sel, &object_labels(ctx.req.old)) {
            return Ok(false);
        }
    }
    if hook["namespaceSelector"].is_object() {
        let r = ctx.req.resource;
        let labels = if r.group.is_empty() && r.plural == "namespaces" {
            // A namespace is matched by its own labels.
            object_labels(obj.or(ctx.req.old))
        } else if let Some(ns) = ctx.req.namespace.filter(|_| r.namespaced()) {
            ctx.get("", "v1", "namespaces", None, ns).await?.map(|n| n["metadata"]["labels"].clone()).unwrap_or(Value::Null)
        } else {
            return Ok(true);
        };
        if !selector_matches(&hook["namespaceSelector"], &labels) {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = json!({"team": "a", "env": "prod"});
        assert!(selector_matches(&json!({}), &labels));
        assert!(selector_matches(&json!({"matchLabels": {"team": "a"}}), &labels));
        assert!(!selector_matches(&json!({"matchLabels": {"team": "b"}}), &labels));
        assert!(selector_matches(&json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}), &labels));
        assert!(!selector_matches(&json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}), &labels));
    }

    #[test]
    fn resources_match_with_subresources() {
        assert!(resource_matches(&json!(["pods"]), "pods", ""));
        assert!(!resource_matches(&json!(["pods"]), "pods", "status"));
        assert!(resource_matches(&json!(["pods/*"]), "pods", "status"));
        assert!(resource_matches(&json!(["*"]), "configmaps", ""));
    }
}
