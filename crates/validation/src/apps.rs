//! apps/v1: defaulting as upstream's `pkg/apis/apps/v1/defaults.go` and validation as
//! `pkg/apis/apps/validation/validation.go` (Deployment, ReplicaSet, StatefulSet, DaemonSet,
//! ControllerRevision), including the selector immutability the apps/v1 strategies add.

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

use crate::core::{defaults as core_defaults, pod};
use crate::meta::{self, SelectorMatch};
use crate::names::{self, NameRule};
use crate::util::{
    Errs, arr, child, default_str, default_val, ensure_obj, immutable, is_unset, nonnegative, obj, opt_int, semantic_eq,
    st, with_obj,
};

/// The `metadata.name` rule of an apps kind.
pub(crate) fn name_rule(kind: &str) -> NameRule {
    // ValidateStatefulSetName: pods get `<name>-<ordinal>` hostnames, so the name is a DNS label.
    if kind == "StatefulSet" { NameRule::DnsLabel } else { NameRule::DnsSubdomain }
}

/// `SetObjectDefaults_*` for apps/v1 kinds.
pub(crate) fn apply_defaults(kind: &str, o: &mut Value) {
    if !matches!(kind, "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") || ensure_obj(o, "spec").is_none() {
        return;
    }
    with_obj(o, "spec", |spec| {
        match kind {
            "Deployment" => {
                default_val(spec, "replicas", json!(1));
                if ensure_obj(spec, "strategy").is_some() {
                    with_obj(spec, "strategy", |s| {
                        default_str(s, "type", "RollingUpdate");
                        if st(s, "type") == "RollingUpdate" {
                            default_val(s, "rollingUpdate", json!({}));
                            with_obj(s, "rollingUpdate", |ru| {
                                default_val(ru, "maxUnavailable", json!("25%"));
                                default_val(ru, "maxSurge", json!("25%"));
                            });
                        }
                    });
                }
                default_val(spec, "revisionHistoryLimit", json!(10));
                default_val(spec, "progressDeadlineSeconds", json!(600));
            }
            "ReplicaSet" => default_val(spec, "replicas", json!(1)),
            "DaemonSet" => {
                if ensure_obj(spec, "updateStrategy").is_some() {
                    with_obj(spec, "updateStrategy", |s| {
                        default_str(s, "type", "RollingUpdate");
                        if st(s, "type") == "RollingUpdate" {
                            default_val(s, "rollingUpdate", json!({}));
                            with_obj(s, "rollingUpdate", |ru| {
                                default_val(ru, "maxUnavailable", json!(1));
                                default_val(ru, "maxSurge", json!(0));
                            });
                        }
                    });
                }
                default_val(spec, "revisionHistoryLimit", json!(10));
            }
            _ => {
                default_str(spec, "podManagementPolicy", "OrderedReady");
                if ensure_obj(spec, "updateStrategy").is_some() {
                    with_obj(spec, "updateStrategy", |s| {
                        if crate::util::is_empty_str(s, "type") {
                            default_str(s, "type", "RollingUpdate");
                            default_val(s, "rollingUpdate", json!({}));
                        }
                        if st(s, "type") == "RollingUpdate" {
                            with_obj(s, "rollingUpdate", |ru| default_val(ru, "partition", json!(0)));
                        }
                    });
                }
                if ensure_obj(spec, "persistentVolumeClaimRetentionPolicy").is_some() {
                    with_obj(spec, "persistentVolumeClaimRetentionPolicy", |p| {
                        default_str(p, "whenDeleted", "Retain");
                        default_str(p, "whenScaled", "Retain");
                    });
                }
                default_val(spec, "replicas", json!(1));
                default_val(spec, "revisionHistoryLimit", json!(10));
                crate::util::each_mut(spec, "volumeClaimTemplates", core_defaults::default_pvc);
            }
        }
        with_obj(spec, "template", core_defaults::default_pod_template);
    });
}

/// `ValidatePositiveIntOrPercent`.
fn int_or_percent(errs: &mut Errs, v: Option<&Value>, path: &str) {
    match v {
        Some(Value::String(s)) => {
            for m in names::is_valid_percent(s) {
                errs.push(FieldError::invalid(path, s.as_str(), m));
            }
        }
        Some(Value::Number(n)) => nonnegative(errs, n.as_i64().unwrap_or(0), path),
        _ => {}
    }
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => s.strip_suffix('%').and_then(|d| d.parse().ok()).unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// `IsNotMoreThan100Percent`.
fn not_over_100(errs: &mut Errs, v: Option<&Value>, path: &str) {
    if let Some(Value::String(s)) = v
        && names::is_valid_percent(s).is_empty() && int_or_percent_value(v) > 100 {
            errs.push(FieldError::invalid(path, s.as_str(), "must not be greater than 100%"));
        }
}

/// The selector rules shared by Deployment and ReplicaSet (`ValidateDeploymentSpec` /
/// `ValidateReplicaSetSpec` + `ValidatePodTemplateSpecForReplicaSet`).
fn selector_and_template(errs: &mut Errs, spec: &Value, kind_word: &str, full_template: bool) {
    let sel = spec.get("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(s) => {
            meta::validate_label_selector(errs, Some(s), "spec.selector");
            if obj(s, "matchLabels").is_none_or(|m| m.is_empty()) && arr(s, "matchExpressions").is_empty() {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    s.clone(),
                    format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    let empty = json!({});
    let template = spec.get("template").filter(|t| t.is_object()).unwrap_or(&empty);
    let labels = meta::template_labels(template);
    match meta::selector_match(sel, &labels) {
        SelectorMatch::Invalid => {
            if kind_word == "statefulset" {
                errs.push(FieldError::invalid("spec.selector", sel.cloned().unwrap_or(Value::Null), ""));
            } else {
                errs.push(FieldError::invalid("spec.selector", sel.cloned().unwrap_or(Value::Null), "invalid label selector"));
            }
            return;
        }
        SelectorMatch::Nil | SelectorMatch::NoMatch => errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            template.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        )),
        SelectorMatch::Empty | SelectorMatch::Matches => {}
    }
    if full_template {
        pod::validate_pod_template_spec(errs, template, "spec.template");
    } else {
        let empty_meta = json!({});
        let tmeta = template.get("metadata").unwrap_or(&empty_meta);
        meta::validate_labels(errs, &crate::util::string_map(tmeta, "labels"), "spec.template.labels");
        meta::validate_annotations(errs, &crate::util::string_map(tmeta, "annotations"), "spec.template.annotations");
    }
    let tspec = template.get("spec").unwrap_or(&empty);
    let restart = st(tspec, "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", restart, &["Always"]));
    }
    if !is_unset(tspec, "activeDeadlineSeconds") {
        let kind_name = match kind_word {
            "statefulset" => "StatefulSet",
            "daemonset" => "DaemonSet",
            _ => "ReplicaSet",
        };
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {kind_name} is not Supported"),
        ));
    }
}

fn validate_deployment(errs: &mut Errs, spec: &Value) {
    nonnegative(errs, opt_int(spec, "replicas").unwrap_or(0), "spec.replicas");
    selector_and_template(errs, spec, "deployment", true);
    let empty = json!({});
    let strategy = spec.get("strategy").unwrap_or(&empty);
    match st(strategy, "type") {
        "Recreate" => {
            if !is_unset(strategy, "rollingUpdate") {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| r.is_object()) {
            None => errs.push(FieldError::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil")),
            Some(ru) => {
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                int_or_percent(errs, mu, "spec.strategy.rollingUpdate.maxUnavailable");
                int_or_percent(errs, ms, "spec.strategy.rollingUpdate.maxSurge");
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    errs.push(FieldError::invalid(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        mu.cloned().unwrap_or(Value::Null),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_over_100(errs, mu, "spec.strategy.rollingUpdate.maxUnavailable");
            }
        },
        _ => errs.push(FieldError::not_supported("spec.strategy", strategy.clone(), &["Recreate", "RollingUpdate"])),
    }
    let min_ready = opt_int(spec, "minReadySeconds").unwrap_or(0);
    nonnegative(errs, min_ready, "spec.minReadySeconds");
    if let Some(r) = opt_int(spec, "revisionHistoryLimit") {
        nonnegative(errs, r, "spec.revisionHistoryLimit");
    }
    if let Some(p) = opt_int(spec, "progressDeadlineSeconds") {
        nonnegative(errs, p, "spec.progressDeadlineSeconds");
        if p <= min_ready {
            errs.push(FieldError::invalid("spec.progressDeadlineSeconds", p, "must be greater than minReadySeconds"));
        }
    }
}

fn validate_statefulset(errs: &mut Errs, spec: &Value) {
    match st(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid("spec.podManagementPolicy", other, "must be 'OrderedReady' or 'Parallel'")),
    }
    let empty = json!({});
    let us = spec.get("updateStrategy").unwrap_or(&empty);
    match st(us, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if !is_unset(us, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    us.get("rollingUpdate").cloned().unwrap_or(Value::Null),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = us.get("rollingUpdate").filter(|r| r.is_object()) {
                nonnegative(errs, opt_int(ru, "partition").unwrap_or(0), "spec.updateStrategy.rollingUpdate.partition");
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    int_or_percent(errs, Some(mu), p);
                    if int_or_percent_value(Some(mu)) == 0 {
                        errs.push(FieldError::invalid(p, mu.clone(), "cannot be 0"));
                    }
                    not_over_100(errs, Some(mu), p);
                }
            }
        }
        _ => errs.push(FieldError::invalid("spec.updateStrategy", us.clone(), "must be 'RollingUpdate' or 'OnDelete'")),
    }
    if let Some(p) = spec.get("persistentVolumeClaimRetentionPolicy").filter(|p| p.is_object()) {
        for f in ["whenDeleted", "whenScaled"] {
            let v = st(p, f);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(errs, opt_int(spec, "replicas").unwrap_or(0), "spec.replicas");
    nonnegative(errs, opt_int(spec, "minReadySeconds").unwrap_or(0), "spec.minReadySeconds");
    if let Some(o) = spec.get("ordinals").filter(|o| o.is_object()) {
        nonnegative(errs, opt_int(o, "start").unwrap_or(0), "spec.ordinals.start");
    }
    selector_and_template(errs, spec, "statefulset", false);
}

fn validate_daemonset(errs: &mut Errs, spec: &Value) {
    let sel = spec.get("selector").filter(|s| !s.is_null());
    meta::validate_label_selector(errs, sel, "spec.selector");
    let empty = json!({});
    let template = spec.get("template").filter(|t| t.is_object()).unwrap_or(&empty);
    if matches!(meta::selector_match(sel, &meta::template_labels(template)), SelectorMatch::Nil | SelectorMatch::NoMatch) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            template.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(s) = sel
        && obj(s, "matchLabels").is_none_or(|m| m.is_empty()) && arr(s, "matchExpressions").is_empty() {
            errs.push(FieldError::invalid("spec.selector", s.clone(), "empty selector is invalid for daemonset"));
        }
    pod::validate_pod_template_spec(errs, template, "spec.template");
    let tspec = template.get("spec").unwrap_or(&empty);
    let restart = st(tspec, "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", restart, &["Always"]));
    }
    if !is_unset(tspec, "activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(errs, opt_int(spec, "minReadySeconds").unwrap_or(0), "spec.minReadySeconds");
    let us = spec.get("updateStrategy").unwrap_or(&empty);
    match st(us, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match us.get("rollingUpdate").filter(|r| r.is_object()) {
            None => errs.push(FieldError::required("spec.updateStrategy.rollingUpdate", "")),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                int_or_percent(errs, mu, &child(p, "maxUnavailable"));
                int_or_percent(errs, ms, &child(p, "maxSurge"));
                not_over_100(errs, mu, &child(p, "maxUnavailable"));
                not_over_100(errs, ms, &child(p, "maxSurge"));
                let (hu, hs) = (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0);
                if hu && hs {
                    errs.push(FieldError::invalid(
                        child(p, "maxSurge"),
                        ms.cloned().unwrap_or(Value::Null),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !hu && !hs {
                    errs.push(FieldError::required(child(p, "maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                }
            }
        },
        _ => errs.push(FieldError::not_supported("spec.updateStrategy", us.clone(), &["RollingUpdate", "OnDelete"])),
    }
    if let Some(r) = opt_int(spec, "revisionHistoryLimit") {
        nonnegative(errs, r, "spec.revisionHistoryLimit");
    }
}

/// Spec validation for an apps kind on create (metadata is validated by the caller).
pub(crate) fn validate(kind: &str, o: &Value, errs: &mut Errs) {
    let empty = json!({});
    let spec = o.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    match kind {
        "Deployment" => validate_deployment(errs, spec),
        "ReplicaSet" => {
            nonnegative(errs, opt_int(spec, "replicas").unwrap_or(0), "spec.replicas");
            nonnegative(errs, opt_int(spec, "minReadySeconds").unwrap_or(0), "spec.minReadySeconds");
            selector_and_template(errs, spec, "deployment", true);
        }
        "StatefulSet" => validate_statefulset(errs, spec),
        "DaemonSet" => validate_daemonset(errs, spec),
        "ControllerRevision" => {
            if is_unset(o, "data") {
                errs.push(FieldError::required("data", "data is mandatory"));
            }
            nonnegative(errs, opt_int(o, "revision").unwrap_or(0), "revision");
        }
        _ => {}
    }
}

/// Update validation for an apps kind (metadata update checks are done by the caller).
pub(crate) fn validate_update(kind: &str, new: &Value, old: &Value, errs: &mut Errs) {
    let empty = json!({});
    let ns = new.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    validate(kind, new, errs);
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => immutable(errs, ns.get("selector"), os.get("selector"), "spec.selector"),
        "StatefulSet" => {
            let mut clone = ns.clone();
            if let Some(m) = clone.as_object_mut() {
                for f in ["replicas", "template", "updateStrategy", "minReadySeconds", "ordinals", "persistentVolumeClaimRetentionPolicy"] {
                    match os.get(f) {
                        Some(v) => m.insert(f.into(), v.clone()),
                        None => m.remove(f),
                    };
                }
            }
            if !semantic_eq(&clone, os) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
                ));
            }
        }
        "ControllerRevision" => immutable(errs, new.get("data"), old.get("data"), "data"),
        _ => {}
    }
}
