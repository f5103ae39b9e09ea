//! Defaulting and validation of built-in Kubernetes objects, on their JSON wire form, with
//! upstream's field paths and messages (Kubernetes 1.33).
//!
//! - [`apply_defaults`]: the `SetDefaults_*` functions of `pkg/apis/*/v1/defaults.go`.
//! - [`validate_create`] / [`validate_update`]: `pkg/apis/*/validation` for the kind, including
//!   `metadata` ([`validate_object_meta`]) and the immutable-field rules of updates.
//! - [`generate_job_selector`]: the Job strategy's selector generation, for the registry.
//!
//! Modules: `names` (string formats), `meta` (metadata, labels, selectors), `core` (pods,
//! services, config), `apps`, `batch` (+ `cron`), `rbac`. Kinds without specific rules get the
//! metadata checks only; see [`has_spec_rules`].

mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod core;
mod cron;
pub mod meta;
pub mod names;
mod rbac;
mod util;

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

pub use batch::generate_job_selector;
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use names::NameRule;

/// The `metadata.name` rule upstream applies to `kind` in `group` (DNS-1123 subdomain unless
/// the kind's validation says otherwise).
pub fn name_rule(group: &str, kind: &str) -> NameRule {
    match group {
        "" => core::name_rule(kind),
        "apps" => apps::name_rule(kind),
        "rbac.authorization.k8s.io" => NameRule::PathSegment,
        "apiregistration.k8s.io" if kind == "APIService" => NameRule::ApiServiceName,
        _ => NameRule::DnsSubdomain,
    }
}

/// True for the groups served by kube-apiserver itself, whose kinds use core's
/// `ValidateObjectMeta` (with the Kubernetes finalizer-name rule); CRDs, APIServices and custom
/// resources use apimachinery's generic metadata validation.
fn is_builtin_group(group: &str) -> bool {
    matches!(group, "" | "apps" | "batch" | "policy" | "autoscaling")
        || (group.ends_with(".k8s.io") && !matches!(group, "apiextensions.k8s.io" | "apiregistration.k8s.io"))
}

/// True when `kind` has spec/data rules here beyond the metadata checks.
pub fn has_spec_rules(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("", "Pod" | "PodTemplate" | "ReplicationController" | "Service" | "ConfigMap" | "Secret" | "Namespace" | "PersistentVolumeClaim")
            | ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "ControllerRevision")
            | ("batch", "Job" | "CronJob")
            | ("rbac.authorization.k8s.io", "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding")
            | ("certificates.k8s.io", "CertificateSigningRequest")
    )
}

/// Applies upstream's defaults for `group/version, kind` to `obj` in place (the
/// `SetObjectDefaults_*` walk: the kind's own defaults plus nested pod templates, containers,
/// probes, ports and volumes). Unknown kinds are left unchanged.
pub fn apply_defaults(group: &str, version: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match group {
        "" => core::defaults::apply(kind, obj),
        "apps" => apps::apply_defaults(kind, obj),
        "batch" => batch::apply_defaults(kind, obj),
        "rbac.authorization.k8s.io" => rbac::apply_defaults(kind, obj),
        "networking.k8s.io" if kind == "NetworkPolicy" => default_network_policy(obj),
        "autoscaling" if kind == "HorizontalPodAutoscaler" => autoscaling::apply_defaults(version, obj),
        _ => {}
    }
}

/// `SetDefaults_NetworkPolicy` / `SetDefaults_NetworkPolicyPort` (`pkg/apis/networking/v1/defaults.go`).
fn default_network_policy(np: &mut Value) {
    util::with_obj(np, "spec", |spec| {
        for dir in ["ingress", "egress"] {
            util::each_mut(spec, dir, |rule| util::each_mut(rule, "ports", |p| util::default_str(p, "protocol", "TCP")));
        }
        if util::arr(spec, "policyTypes").is_empty() {
            let types = if util::arr(spec, "egress").is_empty() { json!(["Ingress"]) } else { json!(["Ingress", "Egress"]) };
            if let Some(m) = spec.as_object_mut() {
                m.insert("policyTypes".into(), types);
            }
        }
    });
}

/// Validates an object being created: metadata (name rules, labels, annotations, owner
/// references, finalizers) and the kind's spec. Namespace presence/absence is the server's check.
pub fn validate_create(group: &str, _version: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_with(obj, name_rule(group, kind), is_builtin_group(group));
    match group {
        "" => core::validate(kind, obj, &mut errs),
        "apps" => apps::validate(kind, obj, &mut errs),
        "batch" => batch::validate(kind, obj, &mut errs),
        "rbac.authorization.k8s.io" => rbac::validate(kind, obj, &mut errs),
        "certificates.k8s.io" if kind == "CertificateSigningRequest" => certificates::validate(obj, &mut errs),
        _ => {}
    }
    canonical_values(errs)
}

/// Sorts the keys of object values in errors, as Go prints maps (sorted) and most structs
/// (fields in declaration order, which for the small structs printed here is alphabetical).
fn canonical_values(mut errs: Vec<FieldError>) -> Vec<FieldError> {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k.as_str()]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    for e in &mut errs {
        if let Some(v) = e.value.as_mut().filter(|v| v.is_object() || v.is_array()) {
            *v = sort(v);
        }
    }
    errs
}

/// Validates an update of `old` to `new`: metadata update rules (immutable identity fields,
/// resourceVersion required, …), the kind's spec, and its immutable fields (Deployment/ReplicaSet/
/// DaemonSet selectors, StatefulSet spec, Service cluster IPs, Job selector/template, Pod spec,
/// ConfigMap/Secret data when `immutable: true`, RoleBinding roleRef).
pub fn validate_update(group: &str, _version: &str, kind: &str, new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = meta::validate_object_meta_update_with(new, old, is_builtin_group(group));
    match group {
        "" => core::validate_update(kind, new, old, &mut errs),
        "apps" => apps::validate_update(kind, new, old, &mut errs),
        "batch" => batch::validate_update(kind, new, old, &mut errs),
        "rbac.authorization.k8s.io" => rbac::validate_update(kind, new, old, &mut errs),
        "certificates.k8s.io" if kind == "CertificateSigningRequest" => certificates::validate_update(new, old, &mut errs),
        _ => {}
    }
    canonical_values(errs)
}

#[cfg(test)]
mod tests;
