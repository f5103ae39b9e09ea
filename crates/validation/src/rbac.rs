//! rbac.authorization.k8s.io/v1: defaulting as upstream's `pkg/apis/rbac/v1/defaults.go` and
//! validation as `pkg/apis/rbac/validation/validation.go`. Names are path segments.

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

use crate::meta;
use crate::names;
use crate::util::{Errs, arr, child, default_str, each_mut, index, st, with_obj};

const GROUP: &str = "rbac.authorization.k8s.io";

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` / `SetDefaults_Subject`.
pub(crate) fn apply_defaults(kind: &str, o: &mut Value) {
    if !matches!(kind, "RoleBinding" | "ClusterRoleBinding") {
        return;
    }
    with_obj(o, "roleRef", |r| default_str(r, "apiGroup", GROUP));
    each_mut(o, "subjects", |s| {
        if crate::util::is_empty_str(s, "apiGroup") {
            match st(s, "kind") {
                "User" | "Group" => default_str(s, "apiGroup", GROUP),
                _ => {}
            }
        }
    });
}

/// `ValidatePolicyRule`.
fn validate_rule(errs: &mut Errs, rule: &Value, namespaced: bool, path: &str) {
    if arr(rule, "verbs").is_empty() {
        errs.push(FieldError::required(child(path, "verbs"), "verbs must contain at least one value"));
    }
    let urls = arr(rule, "nonResourceURLs");
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid(
                child(path, "nonResourceURLs"),
                Value::from(urls.to_vec()),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr(rule, "apiGroups").is_empty() || !arr(rule, "resources").is_empty() || !arr(rule, "resourceNames").is_empty() {
            errs.push(FieldError::invalid(
                child(path, "nonResourceURLs"),
                Value::from(urls.to_vec()),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if arr(rule, "apiGroups").is_empty() {
        errs.push(FieldError::required(child(path, "apiGroups"), "resource rules must supply at least one api group"));
    }
    if arr(rule, "resources").is_empty() {
        errs.push(FieldError::required(child(path, "resources"), "resource rules must supply at least one resource"));
    }
}

/// `ValidateRoleBindingSubject`.
fn validate_subject(errs: &mut Errs, s: &Value, namespaced: bool, path: &str) {
    let name = st(s, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let group = st(s, "apiGroup");
    match st(s, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for m in names::is_dns1123_subdomain(name) {
                    errs.push(FieldError::invalid(child(path, "name"), name, m));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[""]));
            }
            if !namespaced && st(s, "namespace").is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != GROUP {
                errs.push(FieldError::not_supported(child(path, "apiGroup"), group, &[GROUP]));
            }
        }
        other => errs.push(FieldError::not_supported(child(path, "kind"), other, &["ServiceAccount", "User", "Group"])),
    }
}

fn validate_binding(errs: &mut Errs, o: &Value, namespaced: bool) {
    let empty = json!({});
    let role_ref = o.get("roleRef").unwrap_or(&empty);
    let group = st(role_ref, "apiGroup");
    if group != GROUP {
        errs.push(FieldError::not_supported("roleRef.apiGroup", group, &[GROUP]));
    }
    let kind = st(role_ref, "kind");
    if namespaced {
        if !matches!(kind, "Role" | "ClusterRole") {
            errs.push(FieldError::not_supported("roleRef.kind", kind, &["Role", "ClusterRole"]));
        }
    } else if kind != "ClusterRole" {
        errs.push(FieldError::not_supported("roleRef.kind", kind, &["ClusterRole"]));
    }
    let name = st(role_ref, "name");
    if name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for m in names::path_segment_name(name, false) {
            errs.push(FieldError::invalid("roleRef.name", name, m));
        }
    }
    for (i, s) in arr(o, "subjects").iter().enumerate() {
        validate_subject(errs, s, namespaced, &index("subjects", i));
    }
}

/// Create validation for RBAC kinds (metadata is validated by the caller).
pub(crate) fn validate(kind: &str, o: &Value, errs: &mut Errs) {
    match kind {
        "Role" | "ClusterRole" => {
            for (i, r) in arr(o, "rules").iter().enumerate() {
                validate_rule(errs, r, kind == "Role", &index("rules", i));
            }
            if kind == "ClusterRole"
                && let Some(agg) = o.get("aggregationRule").filter(|a| a.is_object()) {
                    let selectors = arr(agg, "clusterRoleSelectors");
                    if selectors.is_empty() {
                        errs.push(FieldError::required(
                            "aggregationRule.clusterRoleSelectors",
                            "at least one clusterRoleSelector required if aggregationRule is non-nil",
                        ));
                    }
                    for (i, s) in selectors.iter().enumerate() {
                        meta::validate_label_selector(errs, Some(s), &index("aggregationRule.clusterRoleSelectors", i));
                    }
                }
        }
        "RoleBinding" => validate_binding(errs, o, true),
        "ClusterRoleBinding" => validate_binding(errs, o, false),
        _ => {}
    }
}

/// Update validation for RBAC kinds: a binding's roleRef cannot change.
pub(crate) fn validate_update(kind: &str, new: &Value, old: &Value, errs: &mut Errs) {
    validate(kind, new, errs);
    if matches!(kind, "RoleBinding" | "ClusterRoleBinding") {
        let (n, o) = (new.get("roleRef").cloned().unwrap_or(Value::Null), old.get("roleRef").cloned().unwrap_or(Value::Null));
        if !crate::util::semantic_eq(&n, &o) {
            errs.push(FieldError::invalid("roleRef", n, "cannot change roleRef"));
        }
    }
}
