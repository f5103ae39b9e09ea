//! `metadata` validation and label selectors, as upstream's apimachinery
//! `pkg/api/validation/objectmeta.go`, `pkg/apis/meta/v1/validation/validation.go` and the
//! Kubernetes-specific finalizer check in `pkg/apis/core/validation/validation.go`.

use rkube_apimachinery::FieldError;
use serde_json::Value;

use crate::names::{self, NameRule};
use crate::util::{Errs, arr, child, index, int, is_unset, obj, opt_int, st, string_map};

/// Upstream's `TotalAnnotationSizeLimitB` (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `ValidateLabelName`.
pub(crate) fn validate_label_name(errs: &mut Errs, name: &str, path: &str) {
    for msg in names::is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
}

/// `ValidateLabels`: every error is reported at the map's path, as upstream does. Keys are
/// visited in sorted order (upstream's order is Go's random map order).
pub(crate) fn validate_labels(errs: &mut Errs, labels: &[(&str, &str)], path: &str) {
    let mut sorted = labels.to_vec();
    sorted.sort();
    for (k, v) in sorted {
        validate_label_name(errs, k, path);
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names compared lower-case; total size ≤ 256 KiB.
pub(crate) fn validate_annotations(errs: &mut Errs, annotations: &[(&str, &str)], path: &str) {
    let mut sorted = annotations.to_vec();
    sorted.sort();
    let mut total = 0usize;
    for (k, v) in sorted {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// `validateOwnerReference` / `ValidateOwnerReferences`.
fn validate_owner_references(errs: &mut Errs, refs: &[Value], path: &str) {
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = st(r, "apiVersion");
        let kind = st(r, "kind");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(child(path, "apiVersion"), api_version, "version must not be empty"));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(child(path, "kind"), kind, "must not be empty"));
        }
        if st(r, "name").is_empty() {
            errs.push(FieldError::invalid(child(path, "name"), "", "must not be empty"));
        }
        if st(r, "uid").is_empty() {
            errs.push(FieldError::invalid(child(path, "uid"), "", "must not be empty"));
        }
        if api_version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(path, r.clone(), "/v1, Kind=Event is disallowed from being an owner"));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{kind}/{}", st(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
}

/// `ValidateFinalizers`, plus core's `validateKubeFinalizerName` for built-in kinds.
fn validate_finalizers(errs: &mut Errs, finalizers: &[Value], path: &str, kube_names: bool) {
    let names: Vec<&str> = finalizers.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            Value::from(names.clone()),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in names.iter().enumerate().filter(|_| kube_names) {
        if !f.contains('/') && !matches!(*f, "kubernetes" | "orphan" | "foregroundDeletion") {
            errs.push(FieldError::invalid(
                index(path, i),
                *f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
}

/// The checks shared by create and update (`validateObjectMetaAccessorWithOptsCommon`), without
/// the namespace rule, which is the server's (it knows the scope).
fn validate_common(errs: &mut Errs, meta: &Value, kube_names: bool) {
    if let Some(g) = opt_int(meta, "generation") {
        crate::util::nonnegative(errs, g, "metadata.generation");
    }
    validate_labels(errs, &string_map(meta, "labels"), "metadata.labels");
    validate_annotations(errs, &string_map(meta, "annotations"), "metadata.annotations");
    validate_owner_references(errs, arr(meta, "ownerReferences"), "metadata.ownerReferences");
    validate_finalizers(errs, arr(meta, "finalizers"), "metadata.finalizers", kube_names);
}

/// `ValidateObjectMeta` on create: `metadata.name` is required unless `generateName` is set (the
/// registry generates the name first, as upstream's `BeforeCreate` does, so a missing name with
/// a generateName is reported too), both are checked with the kind's name rule, then labels,
/// annotations, owner references and finalizers.
pub fn validate_object_meta(obj_value: &Value, rule: NameRule) -> Vec<FieldError> {
    validate_object_meta_with(obj_value, rule, true)
}

/// [`validate_object_meta`] with the choice of core's finalizer-name rule: built-in kinds use
/// core's `ValidateObjectMeta` (finalizers must be standard or domain-qualified), custom
/// resources and CRDs apimachinery's generic one (`kube_names` false).
pub fn validate_object_meta_with(obj_value: &Value, rule: NameRule, kube_names: bool) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let empty = Value::Object(Default::default());
    let meta = obj_value.get("metadata").filter(|m| m.is_object()).unwrap_or(&empty);
    let generate_name = st(meta, "generateName");
    if !generate_name.is_empty() {
        for msg in rule.check(generate_name, true) {
            errs.push(FieldError::invalid("metadata.generateName", generate_name, msg));
        }
    }
    let name = st(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else {
        for msg in rule.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    validate_common(&mut errs, meta, kube_names);
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable, the generation may not go down, and no finalizer may be added once deletion started.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    validate_object_meta_update_with(new, old, true)
}

/// [`validate_object_meta_update`] with the choice of finalizer-name rule (see
/// [`validate_object_meta_with`]).
pub fn validate_object_meta_update_with(new: &Value, old: &Value, kube_names: bool) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let empty = Value::Object(Default::default());
    let nm = new.get("metadata").filter(|m| m.is_object()).unwrap_or(&empty);
    let om = old.get("metadata").filter(|m| m.is_object()).unwrap_or(&empty);

    if !is_unset(om, "deletionTimestamp") {
        let old_f: Vec<&str> = arr(om, "finalizers").iter().filter_map(Value::as_str).collect();
        let mut extra: Vec<&str> =
            arr(nm, "finalizers").iter().filter_map(Value::as_str).filter(|f| !old_f.contains(f)).collect();
        extra.sort_unstable();
        extra.dedup();
        if !extra.is_empty() {
            let list: Vec<String> = extra.iter().map(|f| format!("{f:?}")).collect();
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    list.join(", ")
                ),
            ));
        }
    }
    // Upstream also requires `metadata.resourceVersion` here; its store fills it in for
    // unconditional updates before validating and rejects a missing one for the other kinds
    // itself, and rkube's registry does the same before calling us, so it is not repeated.
    if int(nm, "generation") < int(om, "generation") {
        errs.push(FieldError::invalid("metadata.generation", int(nm, "generation"), "must not be decremented"));
    }
    for f in ["name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"] {
        crate::util::immutable(&mut errs, nm.get(f), om.get(f), &format!("metadata.{f}"));
    }
    validate_common(&mut errs, nm, kube_names);
    errs
}

/// `ValidateLabelSelector` (strict: label values in selectors are validated).
pub(crate) fn validate_label_selector(errs: &mut Errs, sel: Option<&Value>, path: &str) {
    let Some(sel) = sel.filter(|s| s.is_object()) else { return };
    validate_labels(errs, &string_map(sel, "matchLabels"), &child(path, "matchLabels"));
    for (i, expr) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = index(&child(path, "matchExpressions"), i);
        let values = arr(expr, "values");
        match st(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(child(&p, "operator"), other, "not a valid selector operator")),
        }
        validate_label_name(errs, st(expr, "key"), &child(&p, "key"));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(index(&child(&p, "values"), j), v, msg));
            }
        }
    }
}

/// The outcome of `metav1.LabelSelectorAsSelector` applied to a label set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SelectorMatch {
    /// The selector selects nothing in particular (nil) — upstream `labels.Nothing()`.
    Nil,
    /// The selector has no requirements — upstream `labels.Everything()` (`Empty()` is true).
    Empty,
    /// The selector matches the labels.
    Matches,
    /// The selector does not match the labels.
    NoMatch,
    /// The selector does not convert (bad operator, or In/NotIn without values).
    Invalid,
}

/// Evaluates a `LabelSelector` JSON object against a label map.
pub(crate) fn selector_match(sel: Option<&Value>, labels: &[(&str, &str)]) -> SelectorMatch {
    let Some(sel) = sel.filter(|s| s.is_object()) else { return SelectorMatch::Nil };
    let match_labels = string_map(sel, "matchLabels");
    let exprs = arr(sel, "matchExpressions");
    if match_labels.is_empty() && exprs.is_empty() {
        return SelectorMatch::Empty;
    }
    let get = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    let mut ok = match_labels.iter().all(|(k, v)| get(k) == Some(*v));
    for e in exprs {
        let k = st(e, "key");
        let values: Vec<&str> = arr(e, "values").iter().filter_map(Value::as_str).collect();
        let m = match st(e, "operator") {
            "In" if !values.is_empty() => get(k).is_some_and(|v| values.contains(&v)),
            "NotIn" if !values.is_empty() => get(k).is_none_or(|v| !values.contains(&v)),
            "Exists" if values.is_empty() => get(k).is_some(),
            "DoesNotExist" if values.is_empty() => get(k).is_none(),
            _ => return SelectorMatch::Invalid,
        };
        ok &= m;
    }
    if ok { SelectorMatch::Matches } else { SelectorMatch::NoMatch }
}

/// The labels of `template.metadata` as pairs.
pub(crate) fn template_labels(template: &Value) -> Vec<(&str, &str)> {
    obj(template, "metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn name_is_required_without_generate_name() {
        let e = validate_object_meta(&json!({"metadata": {}}), NameRule::DnsSubdomain);
        assert_eq!(messages(&e), vec!["metadata.name: Required value: name or generateName is required"]);
    }

    #[test]
    fn labels_are_reported_at_the_map_path() {
        let e = validate_object_meta(&json!({"metadata": {"name": "x", "labels": {"a": "-b"}}}), NameRule::DnsSubdomain);
        assert_eq!(e.len(), 1);
        assert!(e[0].message().starts_with("metadata.labels: Invalid value: \"-b\": a valid label must be"));
    }

    #[test]
    fn oversized_annotations_are_too_long() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let e = validate_object_meta(&json!({"metadata": {"name": "x", "annotations": {"a": big}}}), NameRule::DnsSubdomain);
        assert_eq!(messages(&e), vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]);
    }

    #[test]
    fn finalizers_must_be_qualified_or_standard() {
        let e = validate_object_meta(&json!({"metadata": {"name": "x", "finalizers": ["kubernetes", "mine"]}}), NameRule::DnsSubdomain);
        assert_eq!(
            messages(&e),
            vec!["metadata.finalizers[1]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"]
        );
    }

    #[test]
    fn update_keeps_name() {
        let old = json!({"metadata": {"name": "a", "uid": "u", "resourceVersion": "1"}});
        let new = json!({"metadata": {"name": "b", "uid": "u"}});
        let m = messages(&validate_object_meta_update(&new, &old));
        assert_eq!(m, vec!["metadata.name: Invalid value: \"b\": field is immutable"]);
    }

    #[test]
    fn selectors_match_like_label_selector_as_selector() {
        let labels = [("app", "web"), ("tier", "fe")];
        assert_eq!(selector_match(Some(&json!({"matchLabels": {"app": "web"}})), &labels), SelectorMatch::Matches);
        assert_eq!(selector_match(Some(&json!({"matchLabels": {"app": "db"}})), &labels), SelectorMatch::NoMatch);
        assert_eq!(
            selector_match(Some(&json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]})), &labels),
            SelectorMatch::Matches
        );
        assert_eq!(selector_match(Some(&json!({})), &labels), SelectorMatch::Empty);
        assert_eq!(selector_match(None, &labels), SelectorMatch::Nil);
    }
}
