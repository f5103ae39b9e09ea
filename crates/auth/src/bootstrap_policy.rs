//! Upstream's default roles and bindings (plugin/pkg/auth/authorizer/rbac/bootstrappolicy), kept
//! as data in `data/bootstrap-policy.txt`, and their reconciliation at start
//! (pkg/registry/rbac/reconciliation: missing objects are created; objects annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` get missing rules, subjects, labels and
//! annotations added; nothing is removed).

use serde_json::{Map, Value, json};

use crate::rules::{self, PolicyRule};

const POLICY: &str = include_str!("../data/bootstrap-policy.txt");

/// The annotation that lets the server keep a default object up to date.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// The label every default object carries.
pub const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// One default object and where it is served.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultObject {
    /// `clusterroles`, `clusterrolebindings`, `roles`, `rolebindings`.
    pub plural: &'static str,
    /// Namespace of Roles and RoleBindings.
    pub namespace: Option<String>,
    /// The object.
    pub object: Value,
}

fn list(csv: &str) -> Vec<String> {
    csv.split(',').map(str::to_string).collect()
}

fn base(kind: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut metadata = json!({
        "name": name,
        "labels": {BOOTSTRAPPING_LABEL: "rbac-defaults"},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    });
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({"apiVersion": RBAC_API_VERSION, "kind": kind, "metadata": metadata})
}

fn parse_rule(fields: &[&str]) -> Result<PolicyRule, String> {
    let mut rule = PolicyRule::default();
    for f in fields {
        let (k, v) = f.split_once('=').ok_or_else(|| format!("bad rule field {f:?}"))?;
        match k {
            "groups" => rule.api_groups = list(v),
            "resources" => rule.resources = list(v),
            "names" => rule.resource_names = list(v),
            "urls" => rule.non_resource_urls = list(v),
            "verbs" => rule.verbs = list(v),
            other => return Err(format!("unknown rule field {other:?}")),
        }
    }
    Ok(rule)
}

fn subject(spec: &str) -> Result<Value, String> {
    let (kind, name) = spec.split_once(':').ok_or_else(|| format!("bad subject {spec:?}"))?;
    Ok(match kind {
        "ServiceAccount" => {
            let (ns, n) = name.split_once('/').ok_or_else(|| format!("bad ServiceAccount subject {spec:?}"))?;
            json!({"kind": "ServiceAccount", "name": n, "namespace": ns})
        }
        _ => json!({"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name}),
    })
}

fn binding(kind: &str, id: &str, fields: &[&str]) -> Result<(Option<String>, Value), String> {
    let (ns, name) = match kind {
        "RoleBinding" => {
            let (ns, n) = id.split_once('/').ok_or_else(|| format!("bad RoleBinding {id:?}"))?;
            (Some(ns.to_string()), n)
        }
        _ => (None, id),
    };
    let mut obj = base(kind, name, ns.as_deref());
    let mut subjects = Vec::new();
    for f in fields {
        let (k, v) = f.split_once('=').ok_or_else(|| format!("bad binding field {f:?}"))?;
        match k {
            "role" => {
                let (ref_kind, ref_name) = match v.split_once(':') {
                    Some(("Role", n)) => ("Role", n),
                    _ => ("ClusterRole", v),
                };
                obj["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind, "name": ref_name});
            }
            "subject" => subjects.push(subject(v)?),
            other => return Err(format!("unknown binding field {other:?}")),
        }
    }
    if !subjects.is_empty() {
        obj["subjects"] = Value::Array(subjects);
    }
    Ok((ns, obj))
}

fn controller_binding(role_name: &str) -> Option<DefaultObject> {
    let sa = role_name.strip_prefix("system:controller:")?;
    let mut obj = base("ClusterRoleBinding", role_name, None);
    obj["roleRef"] = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name});
    obj["subjects"] = json!([{"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}]);
    Some(DefaultObject { plural: "clusterrolebindings", namespace: None, object: obj })
}

/// Every default object: ClusterRoles, Roles, ClusterRoleBindings (including one per
/// controller role), RoleBindings.
pub fn default_objects() -> Result<Vec<DefaultObject>, String> {
    let mut roles: Vec<DefaultObject> = Vec::new();
    let mut bindings: Vec<DefaultObject> = Vec::new();
    for (lineno, line) in POLICY.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        let at = |e: String| format!("bootstrap-policy.txt line {}: {e}", lineno + 1);
        match fields.as_slice() {
            ["rule", rest @ ..] => {
                let rule = parse_rule(rest).map_err(at)?;
                let last = roles.last_mut().ok_or_else(|| at("rule before any role".into()))?;
                let rules = last.object.as_object_mut().map(|o| o.entry("rules").or_insert_with(|| json!([])));
                if let Some(Value::Array(a)) = rules {
                    a.push(serde_json::to_value(rule).map_err(|e| at(e.to_string()))?);
                }
            }
            ["ClusterRole", name, rest @ ..] => {
                let mut obj = base("ClusterRole", name, None);
                let mut selectors = Vec::new();
                for f in rest {
                    let (k, v) = f.split_once('=').ok_or_else(|| at(format!("bad field {f:?}")))?;
                    let (lk, lv) = v.split_once('=').ok_or_else(|| at(format!("bad label {v:?}")))?;
                    match k {
                        "label" => obj["metadata"]["labels"][lk] = json!(lv),
                        "aggregate" => selectors.push(json!({"matchLabels": {lk: lv}})),
                        other => return Err(at(format!("unknown field {other:?}"))),
                    }
                }
                if !selectors.is_empty() {
                    obj["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
                    obj["rules"] = json!([]);
                }
                roles.push(DefaultObject { plural: "clusterroles", namespace: None, object: obj });
                if let Some(b) = controller_binding(name) {
                    bindings.push(b);
                }
            }
            ["Role", id] => {
                let (ns, name) = id.split_once('/').ok_or_else(|| at(format!("bad Role {id:?}")))?;
                roles.push(DefaultObject { plural: "roles", namespace: Some(ns.to_string()), object: base("Role", name, Some(ns)) });
            }
            [kind @ ("ClusterRoleBinding" | "RoleBinding"), id, rest @ ..] => {
                let (namespace, object) = binding(kind, id, rest).map_err(at)?;
                let plural = if *kind == "RoleBinding" { "rolebindings" } else { "clusterrolebindings" };
                bindings.push(DefaultObject { plural, namespace, object });
            }
            _ => return Err(at(format!("cannot parse {trimmed:?}"))),
        }
    }
    roles.extend(bindings);
    Ok(roles)
}

fn merge_string_map(existing: &mut Value, expected: &Value, field: &str) -> bool {
    let Some(want) = expected["metadata"][field].as_object() else { return false };
    let Some(meta) = existing.get_mut("metadata").and_then(Value::as_object_mut) else { return false };
    let have = meta.entry(field).or_insert_with(|| Value::Object(Map::new()));
    if have.is_null() {
        *have = Value::Object(Map::new());
    }
    let Some(have) = have.as_object_mut() else { return false };
    let mut changed = false;
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// The updated object when `existing` lacks something of `expected` and may be updated
/// (`autoupdate` not `"false"`); None when nothing is to be done.
pub fn reconcile(existing: &Value, expected: &Value) -> Option<Value> {
    if existing["metadata"]["annotations"][AUTOUPDATE_ANNOTATION].as_str() == Some("false") {
        return None;
    }
    let mut out = existing.clone();
    let mut changed = merge_string_map(&mut out, expected, "labels");
    changed |= merge_string_map(&mut out, expected, "annotations");
    let parse = |v: &Value| serde_json::from_value::<Option<Vec<PolicyRule>>>(v.clone()).ok().flatten().unwrap_or_default();
    if expected.get("aggregationRule").is_some() {
        // Aggregated roles: the selectors are reconciled, the rules belong to the controller.
        let want = expected["aggregationRule"]["clusterRoleSelectors"].as_array().cloned().unwrap_or_default();
        let have = out["aggregationRule"]["clusterRoleSelectors"].as_array().cloned().unwrap_or_default();
        let mut merged = have.clone();
        for s in want {
            if !merged.contains(&s) {
                merged.push(s);
            }
        }
        if merged != have {
            out["aggregationRule"] = json!({"clusterRoleSelectors": merged});
            changed = true;
        }
    } else if expected.get("rules").is_some() {
        let (covered, missing) = rules::covers(&parse(&out["rules"]), &parse(&expected["rules"]));
        if !covered {
            let mut all = parse(&out["rules"]);
            all.extend(missing);
            out["rules"] = serde_json::to_value(all).unwrap_or_else(|_| json!([]));
            changed = true;
        }
    }
    if let Some(want) = expected["subjects"].as_array() {
        let mut have = out["subjects"].as_array().cloned().unwrap_or_default();
        let before = have.len();
        for s in want {
            let same = |h: &Value| h["kind"] == s["kind"] && h["name"] == s["name"] && h["namespace"].as_str().unwrap_or("") == s["namespace"].as_str().unwrap_or("");
            if !have.iter().any(same) {
                have.push(s.clone());
            }
        }
        if have.len() != before {
            out["subjects"] = Value::Array(have);
            changed = true;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_parses_with_upstream_names() {
        let objs = default_objects().unwrap();
        let find = |plural: &str, name: &str| objs.iter().find(|o| o.plural == plural && o.object["metadata"]["name"] == name).map(|o| o.object.clone());
        let admin = find("clusterroles", "cluster-admin").unwrap();
        assert_eq!(admin["rules"][0], json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert_eq!(admin["metadata"]["labels"][BOOTSTRAPPING_LABEL], "rbac-defaults");
        assert_eq!(admin["metadata"]["annotations"][AUTOUPDATE_ANNOTATION], "true");
        let edit = find("clusterroles", "edit").unwrap();
        assert_eq!(edit["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
        assert_eq!(edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"], "true");
        let crb = find("clusterrolebindings", "cluster-admin").unwrap();
        assert_eq!(crb["subjects"][0], json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:masters"}));
        let ctrl = find("clusterrolebindings", "system:controller:namespace-controller").unwrap();
        assert_eq!(ctrl["subjects"][0], json!({"kind": "ServiceAccount", "name": "namespace-controller", "namespace": "kube-system"}));
        assert!(find("clusterrolebindings", "system:node").unwrap().get("subjects").is_none());
        let rb = objs.iter().find(|o| o.plural == "rolebindings" && o.object["metadata"]["name"] == "system::leader-locking-kube-scheduler").unwrap();
        assert_eq!(rb.namespace.as_deref(), Some("kube-system"));
        assert_eq!(rb.object["roleRef"]["kind"], "Role");
        let cluster_roles = objs.iter().filter(|o| o.plural == "clusterroles").count();
        assert_eq!(cluster_roles, 31 + 35 + 2, "upstream's plus rkube:scheduler-priority and metrics-server's system:aggregated-metrics-reader");
    }

    #[test]
    fn reconcile_adds_missing_rules_and_respects_autoupdate_false() {
        let expected = json!({"metadata": {"name": "r", "labels": {"a": "1"}, "annotations": {AUTOUPDATE_ANNOTATION: "true"}}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]});
        let existing = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        let out = reconcile(&existing, &expected).unwrap();
        assert_eq!(out["rules"][1], json!({"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}));
        assert_eq!(out["metadata"]["labels"]["a"], "1");
        assert!(reconcile(&out, &expected).is_none());
        let pinned = json!({"metadata": {"name": "r", "annotations": {AUTOUPDATE_ANNOTATION: "false"}}, "rules": []});
        assert!(reconcile(&pinned, &expected).is_none());
    }
}
