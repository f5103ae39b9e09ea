//! The core ("" group) v1 kinds: defaults (`defaults.rs`), pods (`pod.rs`, `container.rs`),
//! services (`service.rs`), config and storage objects (`config.rs`).

pub(crate) mod config;
pub(crate) mod container;
pub(crate) mod defaults;
pub(crate) mod pod;
pub(crate) mod quantity;
pub(crate) mod service;

use rkube_apimachinery::FieldError;
use serde_json::{Value, json};

use crate::meta::{self, SelectorMatch};
use crate::names::NameRule;
use crate::util::{Errs, nonnegative, obj, opt_int, semantic_eq, st, string_map};

/// The `metadata.name` rule of a core kind (`ValidateServiceName`, `ValidateNamespaceName`, …).
pub(crate) fn name_rule(kind: &str) -> NameRule {
    match kind {
        "Service" => NameRule::Dns1035Label,
        "Namespace" => NameRule::DnsLabel,
        _ => NameRule::DnsSubdomain,
    }
}

/// `ValidateReplicationControllerSpec` (selector must be non-empty and match the template).
fn validate_replication_controller(errs: &mut Errs, rc: &Value) {
    let empty = json!({});
    let spec = rc.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    nonnegative(errs, opt_int(spec, "replicas").unwrap_or(0), "spec.replicas");
    nonnegative(errs, opt_int(spec, "minReadySeconds").unwrap_or(0), "spec.minReadySeconds");
    let selector = string_map(spec, "selector");
    if selector.is_empty() {
        errs.push(FieldError::required("spec.selector", ""));
    } else {
        meta::validate_labels(errs, &selector, "spec.selector");
    }
    match spec.get("template").filter(|t| t.is_object()) {
        None => errs.push(FieldError::required("spec.template", "")),
        Some(t) => {
            let sel = json!({"matchLabels": obj(spec, "selector").cloned().unwrap_or_default()});
            if !selector.is_empty() && meta::selector_match(Some(&sel), &meta::template_labels(t)) != SelectorMatch::Matches {
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    t.get("metadata").and_then(|m| m.get("labels")).cloned().unwrap_or(Value::Null),
                    "`selector` does not match template `labels`",
                ));
            }
            pod::validate_pod_template_spec(errs, t, "spec.template");
            let tspec = t.get("spec").unwrap_or(&empty);
            let restart = st(tspec, "restartPolicy");
            if restart != "Always" {
                errs.push(FieldError::not_supported("spec.template.spec.restartPolicy", restart, &["Always"]));
            }
            if !crate::util::is_unset(tspec, "activeDeadlineSeconds") {
                errs.push(FieldError::forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
}

/// Create validation for core kinds (metadata is validated by the caller).
pub(crate) fn validate(kind: &str, o: &Value, errs: &mut Errs) {
    match kind {
        "Pod" => pod::validate_pod_create(errs, o),
        "PodTemplate" => {
            let empty = json!({});
            pod::validate_pod_template_spec(errs, o.get("template").unwrap_or(&empty), "template");
        }
        "ReplicationController" => validate_replication_controller(errs, o),
        "Service" => service::validate_service(errs, o),
        "ConfigMap" => config::validate_config_map(errs, o),
        "Secret" => config::validate_secret(errs, o),
        "Namespace" => config::validate_namespace(errs, o),
        "PersistentVolumeClaim" => config::validate_pvc(errs, o),
        "Node" => validate_node_pod_cidrs(errs, o),
        _ => {}
    }
}

/// The pod CIDR part of `ValidateNode` (pkg/apis/core/validation): valid CIDRs, at most one
/// per IP family, no duplicates.
fn validate_node_pod_cidrs(errs: &mut Errs, node: &Value) {
    let cidrs: Vec<&str> = node["spec"]["podCIDRs"].as_array().map(|l| l.iter().map(|c| c.as_str().unwrap_or("")).collect()).unwrap_or_default();
    let mut families = Vec::new();
    for (index, cidr) in cidrs.iter().enumerate() {
        match cidr.parse::<ipnet::IpNet>() {
            Ok(net) => families.push(matches!(net, ipnet::IpNet::V6(_))),
            Err(_) => errs.push(FieldError::invalid(
                format!("spec.podCIDRs[{index}]"),
                *cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            )),
        }
    }
    if cidrs.len() > 1 {
        let dual_stack = families.len() == 2 && families[0] != families[1];
        if !dual_stack || cidrs.len() > 2 {
            errs.push(FieldError::invalid("spec.podCIDRs", json!(cidrs), "may specify no more than one CIDR for each IP family"));
        }
        for (index, cidr) in cidrs.iter().enumerate() {
            if cidrs[..index].contains(cidr) {
                errs.push(FieldError::duplicate(format!("spec.podCIDRs[{index}]"), *cidr));
            }
        }
    }
}

/// `ValidateNodeUpdate`: the controller manager may assign pod CIDRs to a Node that has none;
/// nobody may change them afterwards.
fn validate_node_pod_cidr_update(errs: &mut Errs, new: &Value, old: &Value) {
    let old_cidrs = old["spec"]["podCIDRs"].as_array().cloned().unwrap_or_default();
    if old_cidrs.is_empty() {
        return;
    }
    let new_cidrs = new["spec"]["podCIDRs"].as_array().cloned().unwrap_or_default();
    if old_cidrs != new_cidrs {
        errs.push(FieldError::forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"));
    }
}

/// Update validation for core kinds (metadata update checks are done by the caller).
pub(crate) fn validate_update(kind: &str, new: &Value, old: &Value, errs: &mut Errs) {
    match kind {
        "Pod" => pod::validate_pod_update(errs, new, old),
        "Service" => service::validate_service_update(errs, new, old),
        "ConfigMap" => {
            config::validate_immutable_data(errs, new, old, &["data", "binaryData"]);
            config::validate_config_map(errs, new);
        }
        "Secret" => config::validate_secret_update(errs, new, old),
        "PersistentVolumeClaim" => {
            config::validate_pvc(errs, new);
            // Claims are immutable except the storage request (and a first volumeName).
            let mut n = new.get("spec").cloned().unwrap_or(Value::Null);
            let o = old.get("spec").cloned().unwrap_or(Value::Null);
            if let Some(m) = n.as_object_mut() {
                if st(&o, "volumeName").is_empty() {
                    match o.get("volumeName") {
                        Some(v) => m.insert("volumeName".into(), v.clone()),
                        None => m.remove("volumeName"),
                    };
                }
                if let Some(res) = m.get_mut("resources").and_then(Value::as_object_mut) {
                    res.remove("requests");
                }
            }
            let mut o_cmp = o.clone();
            if let Some(res) = o_cmp.get_mut("resources").and_then(Value::as_object_mut) {
                res.remove("requests");
            }
            if !semantic_eq(&n, &o_cmp) {
                errs.push(FieldError::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ));
            }
        }
        "ReplicationController" => validate_replication_controller(errs, new),
        "PodTemplate" => validate(kind, new, errs),
        "Namespace" => config::validate_namespace(errs, new),
        "Node" => {
            validate_node_pod_cidrs(errs, new);
            validate_node_pod_cidr_update(errs, new, old);
        }
        "ServiceAccount" | "Endpoints" | "Event" | "LimitRange" | "ResourceQuota" => {}
        _ => {}
    }
}
