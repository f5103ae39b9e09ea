//! Pod and pod template validation: `ValidatePodSpec`, `ValidatePodCreate`, `ValidatePodUpdate`,
//! `ValidatePodTemplateSpec` and their helpers in upstream's `pkg/apis/core/validation/validation.go`.

use std::collections::{BTreeMap, BTreeSet};

use rkube_apimachinery::FieldError;
use serde_json::Value;

use crate::core::container::{self, dns_label, local_descending_path};
use crate::meta;
use crate::names;
use crate::util::{Errs, arr, child, index, is_unset, opt_int, semantic_eq, st, string_map};

/// Volume source fields of `validateVolumeSource`, in upstream's order.
const VOLUME_SOURCES: &[&str] = &[
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi",
    "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc",
    "flexVolume", "configMap", "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk",
    "storageos", "projected", "scaleIO", "csi", "ephemeral", "image",
];

fn default_mode(errs: &mut Errs, v: &Value, path: &str) {
    if let Some(mode) = opt_int(v, "defaultMode")
        && !(0..=0o777).contains(&mode) {
            errs.push(FieldError::invalid(
                child(path, "defaultMode"),
                mode,
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
}

fn key_to_path_items(errs: &mut Errs, v: &Value, path: &str) {
    for (i, item) in arr(v, "items").iter().enumerate() {
        let ip = index(&child(path, "items"), i);
        if st(item, "key").is_empty() {
            errs.push(FieldError::required(child(&ip, "key"), ""));
        }
        let p = st(item, "path");
        if p.is_empty() {
            errs.push(FieldError::required(child(&ip, "path"), ""));
        } else {
            local_descending_path(errs, p, &child(&ip, "path"));
        }
    }
}

/// The per-source checks of `validateVolumeSource` for the sources users write by hand.
fn validate_source(errs: &mut Errs, kind: &str, src: &Value, path: &str) {
    match kind {
        "hostPath" => {
            let p = st(src, "path");
            if p.is_empty() {
                errs.push(FieldError::required(child(path, "path"), ""));
            } else if p.split('/').any(|x| x == "..") {
                errs.push(FieldError::invalid(child(path, "path"), p, "must not contain '..'"));
            }
        }
        "secret" => {
            if st(src, "secretName").is_empty() {
                errs.push(FieldError::required(child(path, "secretName"), ""));
            }
            default_mode(errs, src, path);
            key_to_path_items(errs, src, path);
        }
        "configMap" => {
            if st(src, "name").is_empty() {
                errs.push(FieldError::required(child(path, "name"), ""));
            }
            default_mode(errs, src, path);
            key_to_path_items(errs, src, path);
        }
        "persistentVolumeClaim"
            if st(src, "claimName").is_empty() => {
                errs.push(FieldError::required(child(path, "claimName"), ""));
            }
        "nfs" => {
            if st(src, "server").is_empty() {
                errs.push(FieldError::required(child(path, "server"), ""));
            }
            let p = st(src, "path");
            if p.is_empty() {
                errs.push(FieldError::required(child(path, "path"), ""));
            } else if !p.starts_with('/') {
                errs.push(FieldError::invalid(child(path, "path"), p, "must be an absolute path"));
            }
        }
        "downwardAPI" | "projected" => default_mode(errs, src, path),
        "image"
            if st(src, "reference").is_empty() => {
                errs.push(FieldError::required(child(path, "reference"), ""));
            }
        _ => {}
    }
}

/// `ValidateVolumes`: returns the valid volumes by name, for mount checks.
fn validate_volumes(errs: &mut Errs, volumes: &[Value], path: &str) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for (i, vol) in volumes.iter().enumerate() {
        let ip = index(path, i);
        let mut el = Errs::new();
        let mut n = 0;
        for kind in VOLUME_SOURCES {
            let Some(src) = vol.get(*kind).filter(|v| !v.is_null()) else { continue };
            if n > 0 {
                el.push(FieldError::forbidden(child(&ip, kind), "may not specify more than 1 volume type"));
            } else {
                n += 1;
                validate_source(&mut el, kind, src, &child(&ip, kind));
            }
        }
        if n == 0 {
            el.push(FieldError::required(ip.clone(), "must specify a volume type"));
        }
        let name = st(vol, "name");
        let np = child(&ip, "name");
        if name.is_empty() {
            el.push(FieldError::required(np.clone(), ""));
        } else {
            dns_label(&mut el, name, &np);
        }
        if all.contains_key(name) {
            el.push(FieldError::duplicate(np, name));
        }
        if el.is_empty() {
            all.insert(name.to_string(), vol.clone());
        } else {
            errs.extend(el);
        }
    }
    all
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(errs: &mut Errs, tolerations: &[Value], path: &str) {
    for (i, t) in tolerations.iter().enumerate() {
        let ip = index(path, i);
        let k = st(t, "key");
        if !k.is_empty() {
            meta::validate_label_name(errs, k, &child(&ip, "key"));
        }
        let op = st(t, "operator");
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&ip, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = st(t, "effect");
        if !is_unset(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&ip, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = st(t, "value");
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(child(&ip, "operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&ip, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(child(&ip, "operator"), other, &["Equal", "Exists"])),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                child(&ip, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

fn enum_field(errs: &mut Errs, value: &str, path: &str, supported: &[&str]) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !supported.contains(&value) {
        errs.push(FieldError::not_supported(path, value, supported));
    }
}

fn name_field(errs: &mut Errs, value: &str, path: &str) {
    for msg in names::is_dns1123_subdomain(value) {
        errs.push(FieldError::invalid(path, value, msg));
    }
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(errs: &mut Errs, spec: &Value, path: &str) {
    let grace = opt_int(spec, "terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(FieldError::required(child(path, "terminationGracePeriodSeconds"), ""));
    }
    let volumes = validate_volumes(errs, arr(spec, "volumes"), &child(path, "volumes"));

    // Regular containers (`validateContainers`).
    let cpath = child(path, "containers");
    let containers = arr(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(cpath.clone(), ""));
    }
    let mut all_names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let ip = index(&cpath, i);
        container::validate_common(errs, c, &volumes, &ip);
        if !all_names.insert(st(c, "name").to_string()) {
            errs.push(FieldError::duplicate(child(&ip, "name"), st(c, "name")));
        }
        container::validate_probes_and_lifecycle(errs, c, grace, &ip);
        if !is_unset(c, "restartPolicy") {
            errs.push(FieldError::forbidden(child(&ip, "restartPolicy"), "may not be set for non-init containers"));
        }
    }
    host_port_conflicts(errs, containers, &cpath);

    // Init containers (`validateInitContainers`).
    let ipath = child(path, "initContainers");
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let ip = index(&ipath, i);
        container::validate_common(errs, c, &volumes, &ip);
        let restart = st(c, "restartPolicy");
        if !is_unset(c, "restartPolicy") && restart != "Always" {
            errs.push(FieldError::not_supported(child(&ip, "restartPolicy"), restart, &["Always"]));
        }
        let name = st(c, "name");
        if all_names.contains(name) {
            errs.push(FieldError::duplicate(child(&ip, "name"), name));
        } else if !name.is_empty() {
            all_names.insert(name.to_string());
        }
        host_port_conflicts(errs, std::slice::from_ref(c), &ipath);
        if restart == "Always" {
            container::validate_probes_and_lifecycle(errs, c, grace, &ip);
        } else {
            for f in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if !is_unset(c, f) {
                    errs.push(FieldError::forbidden(
                        child(&ip, f),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }

    // Host networking requires hostPort == containerPort when set (`validatePodHostNetworkDeps`).
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for (i, c) in containers.iter().enumerate() {
            for (j, p) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (opt_int(p, "hostPort").unwrap_or(0), opt_int(p, "containerPort").unwrap_or(0));
                if hp != 0 && hp != cp {
                    errs.push(FieldError::invalid(
                        child(&index(&child(&index(&cpath, i), "ports"), j), "hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    enum_field(errs, st(spec, "restartPolicy"), &child(path, "restartPolicy"), &["Always", "OnFailure", "Never"]);
    let dns_policy = st(spec, "dnsPolicy");
    enum_field(errs, dns_policy, &child(path, "dnsPolicy"), &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]);
    meta::validate_labels(errs, &string_map(spec, "nodeSelector"), &child(path, "nodeSelector"));
    for (i, s) in arr(spec, "imagePullSecrets").iter().enumerate() {
        if s.as_object().is_some_and(|m| m.keys().any(|k| k != "name")) {
            errs.push(FieldError::invalid(index(&child(path, "imagePullSecrets"), i), s.clone(), "only name may be set"));
        }
    }
    if dns_policy == "None" {
        match spec.get("dnsConfig").filter(|v| v.is_object()) {
            None => errs.push(FieldError::required(child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None")),
            Some(c) if arr(c, "nameservers").is_empty() => errs.push(FieldError::required(
                child(&child(path, "dnsConfig"), "nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )),
            Some(_) => {}
        }
    }
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let t = st(g, "conditionType");
        for msg in names::is_qualified_name(t) {
            errs.push(FieldError::invalid(child(&index(&child(path, "readinessGates"), i), "conditionType"), t, msg));
        }
    }
    let mut gates = BTreeSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let gp = index(&child(path, "schedulingGates"), i);
        let n = st(g, "name");
        for msg in names::is_qualified_name(n) {
            errs.push(FieldError::invalid(gp.clone(), n, msg));
        }
        if !gates.insert(n) {
            errs.push(FieldError::duplicate(gp, n));
        }
    }
    let sa = st(spec, "serviceAccountName");
    if !sa.is_empty() {
        name_field(errs, sa, &child(path, "serviceAccountName"));
    }
    let node = st(spec, "nodeName");
    if !node.is_empty() {
        name_field(errs, node, &child(path, "nodeName"));
    }
    if let Some(ads) = opt_int(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                ads,
                names::inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    for f in ["hostname", "subdomain"] {
        let v = st(spec, f);
        if !v.is_empty() {
            dns_label(errs, v, &child(path, f));
        }
    }
    validate_tolerations(errs, arr(spec, "tolerations"), &child(path, "tolerations"));
    for (i, ha) in arr(spec, "hostAliases").iter().enumerate() {
        let hp = index(&child(path, "hostAliases"), i);
        let ip = st(ha, "ip");
        for msg in names::is_valid_ip(ip) {
            errs.push(FieldError::invalid(child(&hp, "ip"), ip, msg));
        }
        for (j, h) in arr(ha, "hostnames").iter().enumerate() {
            name_field(errs, h.as_str().unwrap_or(""), &index(&child(&hp, "hostnames"), j));
        }
    }
    let pc = st(spec, "priorityClassName");
    if !pc.is_empty() {
        name_field(errs, pc, &child(path, "priorityClassName"));
    }
    if let Some(rc) = spec.get("runtimeClassName").and_then(Value::as_str) {
        name_field(errs, rc, &child(path, "runtimeClassName"));
    }
    if let Some(pp) = spec.get("preemptionPolicy").and_then(Value::as_str) {
        enum_field(errs, pp, &child(path, "preemptionPolicy"), &["PreemptLowerPriority", "Never"]);
    }
    if let Some(os) = spec.get("os").filter(|v| v.is_object()) {
        let n = st(os, "name");
        if !matches!(n, "linux" | "windows") {
            errs.push(FieldError::not_supported(child(&child(path, "os"), "name"), n, &["linux", "windows"]));
        }
    }
}

/// `AccumulateUniqueHostPorts`.
fn host_port_conflicts(errs: &mut Errs, containers: &[Value], path: &str) {
    let mut seen = BTreeSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, p) in arr(c, "ports").iter().enumerate() {
            let hp = opt_int(p, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{hp}", st(p, "protocol"), st(p, "hostIP"));
            if !seen.insert(k.clone()) {
                errs.push(FieldError::duplicate(child(&index(&child(&index(path, ci), "ports"), pi), "hostPort"), k));
            }
        }
    }
}

/// `ValidatePodTemplateSpec` (labels are reported at `<path>.labels`, as upstream does).
pub(crate) fn validate_pod_template_spec(errs: &mut Errs, template: &Value, path: &str) {
    let empty = Value::Object(Default::default());
    let tmeta = template.get("metadata").filter(|m| m.is_object()).unwrap_or(&empty);
    meta::validate_labels(errs, &string_map(tmeta, "labels"), &child(path, "labels"));
    meta::validate_annotations(errs, &string_map(tmeta, "annotations"), &child(path, "annotations"));
    let spec = template.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    validate_pod_spec(errs, spec, &child(path, "spec"));
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            child(&child(path, "spec"), "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// `validatePodMetadataAndSpec` minus the metadata (done by the caller).
fn validate_pod_body(errs: &mut Errs, pod: &Value) {
    let empty = Value::Object(Default::default());
    let spec = pod.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    validate_pod_spec(errs, spec, "spec");
    if st(spec, "serviceAccountName").is_empty() {
        for (vi, v) in arr(spec, "volumes").iter().enumerate() {
            let Some(p) = v.get("projected") else { continue };
            for (si, s) in arr(p, "sources").iter().enumerate() {
                if !is_unset(s, "serviceAccountToken") {
                    errs.push(FieldError::forbidden(
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for list in ["containers", "initContainers"] {
        for (i, c) in arr(spec, list).iter().enumerate() {
            let image = st(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(format!("spec.{list}[{i}].image"), image, "must not have leading or trailing whitespace"));
            }
        }
    }
}

/// `ValidatePodCreate` (without metadata).
pub(crate) fn validate_pod_create(errs: &mut Errs, pod: &Value) {
    validate_pod_body(errs, pod);
    let empty = Value::Object(Default::default());
    let spec = pod.get("spec").unwrap_or(&empty);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden("spec.ephemeralContainers", "cannot be set on create"));
    }
    if !st(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"));
    }
}

/// The fields `ValidatePodUpdate` lets users change.
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A short field-by-field diff standing in for upstream's `cmp.Diff` output.
fn spec_diff(old: &Value, new: &Value) -> String {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else { return String::new() };
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (o.get(k).unwrap_or(&Value::Null), n.get(k).unwrap_or(&Value::Null));
        if !semantic_eq(a, b) {
            out.push_str(&format!("- \t{k}: {a},\n+ \t{k}: {b},\n"));
        }
    }
    out.push_str("  }\n");
    out
}

/// Marks a mirror pod (the API's view of a static pod); only its node sets it, at create.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// The deprecated per-container AppArmor annotations, fixed once the pod exists.
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// `ValidatePodSpecificAnnotationUpdates`: the mirror pod annotation and the AppArmor
/// annotations cannot be added, changed or removed by an update (keys in sorted order; upstream
/// walks Go maps).
fn validate_pod_annotation_updates(errs: &mut Errs, new: &Value, old: &Value) {
    let annotations = |pod: &Value| -> BTreeMap<String, String> {
        string_map(pod.get("metadata").unwrap_or(&Value::Null), "annotations")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (new_annotations, old_annotations) = (annotations(new), annotations(old));
    let path = |k: &str| format!("metadata.annotations[{k}]");
    for (k, old_value) in &old_annotations {
        if new_annotations.get(k) == Some(old_value) {
            continue;
        }
        if k.starts_with(APPARMOR_ANNOTATION_PREFIX) {
            errs.push(FieldError::forbidden(path(k), "may not remove or update AppArmor annotations"));
        }
        if k == MIRROR_POD_ANNOTATION {
            errs.push(FieldError::forbidden(path(k), "may not remove or update mirror pod annotation"));
        }
    }
    for k in new_annotations.keys().filter(|k| !old_annotations.contains_key(*k)) {
        if k.starts_with(APPARMOR_ANNOTATION_PREFIX) {
            errs.push(FieldError::forbidden(path(k), "may not add AppArmor annotations"));
        }
        if k == MIRROR_POD_ANNOTATION {
            errs.push(FieldError::forbidden(path(k), "may not add mirror pod annotation"));
        }
    }
}

/// `ValidatePodUpdate` (without metadata): only images, activeDeadlineSeconds, added tolerations,
/// removed scheduling gates and a negative→1 grace period may change.
pub(crate) fn validate_pod_update(errs: &mut Errs, new: &Value, old: &Value) {
    validate_pod_body(errs, new);
    validate_pod_annotation_updates(errs, new, old);
    let empty = Value::Object(Default::default());
    let ns = new.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    let os = old.get("spec").filter(|s| s.is_object()).unwrap_or(&empty);
    for list in ["containers", "initContainers"] {
        let (nc, oc) = (arr(ns, list), arr(os, list));
        let lp = format!("spec.{list}");
        if nc.len() != oc.len() {
            errs.push(FieldError::forbidden(lp, "pod updates may not add or remove containers"));
            return;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = st(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(child(&index(&lp, i), "image"), ""));
            }
        }
    }
    let path_ads = "spec.activeDeadlineSeconds";
    match (opt_int(ns, "activeDeadlineSeconds"), opt_int(os, "activeDeadlineSeconds")) {
        (Some(n), old_ads) => {
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                errs.push(FieldError::invalid(path_ads, n, names::inclusive_range_error(0, i64::from(i32::MAX))));
                return;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(path_ads, n, "must be less than or equal to previous value"));
                return;
            }
        }
        (None, Some(_)) => {
            errs.push(FieldError::invalid(path_ads, Value::Null, "must not update from a positive integer to nil value"))
        }
        (None, None) => {}
    }
    // Only additions to tolerations (tolerationSeconds of existing ones may change).
    let new_tol = arr(ns, "tolerations");
    for old_t in arr(os, "tolerations") {
        let found = new_tol.iter().any(|t| {
            let mut a = old_t.clone();
            if let (Some(m), Some(ts)) = (a.as_object_mut(), t.get("tolerationSeconds")) {
                m.insert("tolerationSeconds".into(), ts.clone());
            } else if let Some(m) = a.as_object_mut() {
                m.remove("tolerationSeconds");
            }
            semantic_eq(&a, t)
        });
        if !found {
            errs.push(FieldError::forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"));
            break;
        }
    }
    // Only deletions of scheduling gates.
    let old_gates: Vec<&str> = arr(os, "schedulingGates").iter().map(|g| st(g, "name")).collect();
    for (i, g) in arr(ns, "schedulingGates").iter().enumerate() {
        let n = st(g, "name");
        if !old_gates.contains(&n) {
            errs.push(FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                format!("only deletion is allowed, but found new scheduling gate '{n}'"),
            ));
        }
    }
    if semantic_eq(ns, os) {
        return;
    }
    // Munge the updatable fields back to the old values and compare the rest.
    let mut munged = ns.clone();
    for list in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(list).and_then(Value::as_array_mut) {
            for (i, c) in items.iter_mut().enumerate() {
                let old_image = arr(os, list).get(i).and_then(|o| o.get("image")).cloned();
                if let (Some(m), Some(img)) = (c.as_object_mut(), old_image) {
                    m.insert("image".into(), img);
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for f in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let old_grace = opt_int(os, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0) && opt_int(&Value::Object(m.clone()), "terminationGracePeriodSeconds") == Some(1)
            && let Some(g) = os.get("terminationGracePeriodSeconds") {
                m.insert("terminationGracePeriodSeconds".into(), g.clone());
            }
        if !arr(os, "schedulingGates").is_empty() {
            // Gated pods may add node selectors and node affinity.
            for f in ["nodeSelector", "affinity"] {
                match os.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
        }
    }
    if !semantic_eq(&munged, os) {
        errs.push(FieldError::forbidden(
            "spec",
            format!("pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}", spec_diff(os, &munged)),
        ));
    }
}
