//! Policy rules: matching a request (plugin/pkg/auth/authorizer/rbac `RuleAllows` and
//! `rbac/v1/evaluation_helpers.go`), and comparing rule sets for the escalation check
//! (pkg/registry/rbac/validation `policy_comparator.go`, `compact_rules.go`, and
//! `rbac/v1/helpers.go` `CompactString`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::attributes::Attributes;

/// `*` in verbs, apiGroups, resources and nonResourceURLs.
pub const ALL: &str = "*";

/// `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs (`get`, `list`, …, `*`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub verbs: Vec<String>,
    /// API groups (`""` is core).
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub api_groups: Vec<String>,
    /// Resources, possibly `resource/subresource` or `*/subresource`.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub resources: Vec<String>,
    /// Object names the rule is limited to.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource paths, possibly ending in `*`.
    #[serde(default, rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub non_resource_urls: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

impl PolicyRule {
    /// Whether the rule allows the request.
    pub fn allows(&self, attrs: &Attributes) -> bool {
        if !self.verb_matches(&attrs.verb) {
            return false;
        }
        if !attrs.resource_request {
            return self.non_resource_url_matches(&attrs.path);
        }
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        self.api_group_matches(&attrs.api_group)
            && self.resource_matches(&combined, &attrs.subresource)
            && self.resource_name_matches(&attrs.name)
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == ALL || v == verb)
    }

    fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == ALL || g == group)
    }

    /// `*`, the exact `resource[/subresource]`, or `*/subresource`.
    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty() && r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource))
        })
    }

    fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || has(&self.resource_names, name)
    }

    fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| u == ALL || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
    }

    /// One rule per (group, resource, verb[, name]) and per (url, verb): `BreakdownRule`.
    pub fn breakdown(&self) -> Vec<PolicyRule> {
        let mut out = Vec::new();
        let one = |s: &String| vec![s.clone()];
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    if self.resource_names.is_empty() {
                        out.push(PolicyRule { api_groups: one(group), resources: one(resource), verbs: one(verb), ..Default::default() });
                    } else {
                        for name in &self.resource_names {
                            out.push(PolicyRule {
                                api_groups: one(group),
                                resources: one(resource),
                                verbs: one(verb),
                                resource_names: one(name),
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(PolicyRule { non_resource_urls: one(url), verbs: one(verb), ..Default::default() });
            }
        }
        out
    }

    /// Whether this rule grants everything `sub` (a broken-down rule) grants: `ruleCovers`.
    fn covers(&self, sub: &PolicyRule) -> bool {
        let verbs = has(&self.verbs, ALL) || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, ALL) || has_all(&self.api_groups, &sub.api_groups);
        let resources = resources_cover(&self.resources, &sub.resources);
        let urls = sub.non_resource_urls.iter().all(|p| self.non_resource_urls.iter().any(|o| url_covers(o, p)));
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty() || has_all(&self.resource_names, &sub.resource_names)
        };
        verbs && groups && resources && names && urls
    }

    /// `CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        for (label, values) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !values.is_empty() {
                parts.push(format!("{label}:{}", go_quote_list(values)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) || has_all(owner, wanted) {
        return true;
    }
    wanted.iter().all(|path| {
        if has(owner, path) {
            return true;
        }
        match path.split_once('/') {
            Some((_, sub)) => has(owner, &format!("*/{sub}")),
            None => false,
        }
    })
}

fn url_covers(owner: &str, path: &str) -> bool {
    owner == path || (owner.ends_with('*') && path.starts_with(owner.trim_end_matches('*')))
}

/// Whether `owner` grants everything in `wanted`; the uncovered broken-down rules otherwise
/// (`Covers`).
pub fn covers(owner: &[PolicyRule], wanted: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> =
        wanted.iter().flat_map(PolicyRule::breakdown).filter(|sub| !owner.iter().any(|o| o.covers(sub))).collect();
    (missing.is_empty(), missing)
}

/// Merges rules that differ only in verbs (one group, one resource, at most one name, no URLs):
/// `CompactRules`. Order is unspecified; callers sort the descriptions.
pub fn compact(rules: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = rule.resource_names.len() <= 1
            && rule.non_resource_urls.is_empty()
            && rule.api_groups.len() == 1
            && rule.resources.len() == 1;
        if !is_simple {
            out.push(rule.clone());
            continue;
        }
        match simple.iter_mut().find(|s| s.api_groups == rule.api_groups && s.resources == rule.resources && s.resource_names == rule.resource_names) {
            Some(existing) => {
                for verb in &rule.verbs {
                    if !has(&existing.verbs, verb) {
                        existing.verbs.push(verb.clone());
                    }
                }
            }
            None => simple.push(rule.clone()),
        }
    }
    out.extend(simple);
    out
}

/// The sorted, de-duplicated compact descriptions of `rules`, one per line, as upstream lists
/// missing permissions.
pub fn describe_missing(rules: &[PolicyRule]) -> String {
    let set: BTreeSet<String> = compact(rules).iter().map(PolicyRule::compact_string).collect();
    set.into_iter().collect::<Vec<_>>().join("\n")
}

/// Go's `%q` of one string.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quote_list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        PolicyRule { api_groups: v(groups), resources: v(resources), verbs: v(verbs), ..Default::default() }
    }

    fn resource_request(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "default".into(),
            resource_request: true,
            ..Default::default()
        }
    }

    #[test]
    fn wildcards_match_everything() {
        let r = rule(&["*"], &["*"], &["*"]);
        assert!(r.allows(&resource_request("delete", "apps", "deployments", "scale", "web")));
    }

    #[test]
    fn subresources_need_their_own_grant() {
        let r = rule(&[""], &["pods"], &["get"]);
        assert!(r.allows(&resource_request("get", "", "pods", "", "p")));
        assert!(!r.allows(&resource_request("get", "", "pods", "log", "p")));
        let log = rule(&[""], &["pods/log"], &["get"]);
        assert!(log.allows(&resource_request("get", "", "pods", "log", "p")));
        let any_scale = rule(&["*"], &["*/scale"], &["get"]);
        assert!(any_scale.allows(&resource_request("get", "apps", "deployments", "scale", "web")));
        assert!(!any_scale.allows(&resource_request("get", "apps", "deployments", "", "web")));
        assert!(!any_scale.allows(&resource_request("get", "apps", "deployments", "status", "web")));
    }

    #[test]
    fn resource_names_limit_the_rule() {
        let mut r = rule(&[""], &["configmaps"], &["get"]);
        r.resource_names = vec!["cluster-info".into()];
        assert!(r.allows(&resource_request("get", "", "configmaps", "", "cluster-info")));
        assert!(!r.allows(&resource_request("get", "", "configmaps", "", "other")));
        assert!(!r.allows(&resource_request("list", "", "configmaps", "", "")));
    }

    #[test]
    fn non_resource_urls_with_star_suffix() {
        let r = PolicyRule { verbs: vec!["get".into()], non_resource_urls: vec!["/apis/*".into(), "/healthz".into()], ..Default::default() };
        let path = |p: &str| Attributes { verb: "get".into(), path: p.into(), ..Default::default() };
        assert!(r.allows(&path("/apis/apps/v1")));
        assert!(r.allows(&path("/apis/")));
        assert!(!r.allows(&path("/apis")));
        assert!(r.allows(&path("/healthz")));
        assert!(!r.allows(&path("/healthz/etcd")));
    }

    #[test]
    fn covers_reports_missing_broken_down_rules() {
        let owner = vec![rule(&[""], &["pods", "pods/log"], &["get", "list"])];
        let (ok, missing) = covers(&owner, &[rule(&[""], &["pods"], &["get"])]);
        assert!(ok && missing.is_empty());
        let (ok, missing) = covers(&owner, &[rule(&[""], &["pods", "secrets"], &["get", "delete"])]);
        assert!(!ok);
        assert_eq!(
            describe_missing(&missing),
            "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
        );
        let star_sub = vec![rule(&["*"], &["*/scale"], &["get"])];
        assert!(covers(&star_sub, &[rule(&["apps"], &["deployments/scale"], &["get"])]).0);
    }
}
