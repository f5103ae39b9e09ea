//! What the volume controllers share: upstream's annotation keys and the claim ⇄ volume matching
//! rules (upstream `pkg/controller/volume/persistentvolume/util` and `index.go`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::core::{Selector, SelectorExt};
use kube::{Resource, ResourceExt};

/// Set on a claim once the controller finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on the side of a binding the controller (not the user) filled in.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The node the scheduler picked for a claim that waits for its first consumer.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner expected to create a volume for a claim.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The same, under its beta name (still written by upstream for old provisioners).
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner that created a volume.
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// The class marker of the default StorageClass.
pub const ANN_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
/// The provisioner name of classes for statically created volumes only.
pub const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// The value upstream writes into boolean-like annotations.
pub const YES: &str = "yes";

/// The claims a pod's volumes name (a generic ephemeral volume owns `<pod>-<volume>`).
pub fn claims_of(pod: &Pod) -> Vec<String> {
    let pod_name = pod.name_any();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(c), _) => Some(c.claim_name.clone()),
            (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
            _ => None,
        })
        .collect()
}

/// `spec.storageClassName` of a claim, "" when unset.
pub fn claim_class(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

/// `spec.storageClassName` of a volume, "" when unset.
pub fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("")
}

/// `spec.volumeName` of a claim, "" when unset.
pub fn claim_volume_name(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or("")
}

/// `status.phase` of a volume, "" when unset.
pub fn volume_phase(pv: &PersistentVolume) -> &str {
    pv.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// An annotation's value.
pub fn annotation<'a, K: Resource>(obj: &'a K, key: &str) -> Option<&'a str> {
    obj.meta().annotations.as_ref().and_then(|a| a.get(key)).map(String::as_str)
}

/// Sets an annotation.
pub fn set_annotation<K: Resource>(obj: &mut K, key: &str, value: &str) {
    obj.meta_mut().annotations.get_or_insert_with(BTreeMap::new).insert(key.to_string(), value.to_string());
}

/// Bytes of `spec.resources.requests.storage` of a claim.
pub fn requested_bytes(pvc: &PersistentVolumeClaim) -> i64 {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| rkube_apimachinery::quantity::value(&q.0))
        .unwrap_or(0)
}

/// Bytes of `spec.capacity.storage` of a volume.
pub fn capacity_bytes(pv: &PersistentVolume) -> i64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| rkube_apimachinery::quantity::value(&q.0))
        .unwrap_or(0)
}

/// The reference a bound volume keeps to its claim (upstream `GetBindVolumeToClaim`).
pub fn claim_reference(pvc: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: pvc.namespace(),
        name: Some(pvc.name_any()),
        uid: pvc.uid(),
        resource_version: pvc.resource_version(),
        field_path: None,
    }
}

/// Whether the volume's `claimRef` names this claim (a reference without uid is a pre-binding
/// and matches any claim of that name).
pub fn claim_ref_matches(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else { return false };
    r.name.as_deref() == Some(pvc.name_any().as_str())
        && r.namespace.as_deref().unwrap_or("") == pvc.namespace().unwrap_or_default()
        && r.uid.as_deref().is_none_or(|u| u.is_empty() || Some(u) == pvc.metadata.uid.as_deref())
}

/// Why the volume cannot serve the claim (upstream `checkVolumeSatisfyClaim` wording), or None.
pub fn mismatch(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Option<&'static str> {
    if capacity_bytes(pv) < requested_bytes(pvc) {
        return Some("requested PV is too small");
    }
    if volume_class(pv) != claim_class(pvc) {
        return Some("storageClassName does not match");
    }
    let volume_mode = pv.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    let claim_mode = pvc.spec.as_ref().and_then(|s| s.volume_mode.as_deref()).unwrap_or("Filesystem");
    if volume_mode != claim_mode {
        return Some("incompatible volumeMode");
    }
    let offered = pv.spec.as_ref().and_then(|s| s.access_modes.as_deref()).unwrap_or_default();
    let wanted = pvc.spec.as_ref().and_then(|s| s.access_modes.as_deref()).unwrap_or_default();
    if !wanted.iter().all(|m| offered.contains(m)) {
        return Some("incompatible accessMode");
    }
    None
}

fn selector_matches(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(selector) = pvc.spec.as_ref().and_then(|s| s.selector.clone()) else { return true };
    match Selector::try_from(selector) {
        Ok(s) => s.matches(pv.labels()),
        Err(_) => false,
    }
}

/// The volume to bind the claim to (upstream `findMatchingVolume`): a volume pre-bound to the
/// claim wins; otherwise the smallest Available, unclaimed volume that satisfies the claim.
/// With `delayed` binding only pre-bound volumes count: the scheduler picks the others.
pub fn find_best_match<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: &'a [std::sync::Arc<PersistentVolume>],
    delayed: bool,
) -> Option<&'a std::sync::Arc<PersistentVolume>> {
    let mut best: Option<&std::sync::Arc<PersistentVolume>> = None;
    for pv in volumes {
        if pv.metadata.deletion_timestamp.is_some() || mismatch(pv, pvc).is_some() {
            continue;
        }
        if claim_ref_matches(pv, pvc) {
            return Some(pv);
        }
        let claimed = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some();
        if claimed || delayed || volume_phase(pv) != "Available" || !selector_matches(pv, pvc) {
            continue;
        }
        if best.is_none_or(|b| capacity_bytes(pv) < capacity_bytes(b)) {
            best = Some(pv);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pv(name: &str, size: &str, class: &str, labels: serde_json::Value) -> Arc<PersistentVolume> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": class},
                "status": {"phase": "Available"}}))
            .unwrap(),
        )
    }

    fn pvc(size: &str, class: &str, selector: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "c", "namespace": "default", "uid": "u1"},
            "spec": {"resources": {"requests": {"storage": size}}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": class, "selector": selector}}))
        .unwrap()
    }

    #[test]
    fn the_smallest_sufficient_volume_wins() {
        let volumes = vec![pv("big", "10Gi", "", json!({})), pv("small", "2Gi", "", json!({})), pv("tiny", "500Mi", "", json!({}))];
        let claim = pvc("1Gi", "", serde_json::Value::Null);
        assert_eq!(find_best_match(&claim, &volumes, false).unwrap().name_any(), "small");
    }

    #[test]
    fn class_and_selector_must_match() {
        let volumes = vec![pv("other-class", "5Gi", "fast", json!({"tier": "gold"})), pv("gold", "5Gi", "", json!({"tier": "gold"}))];
        let claim = pvc("1Gi", "", json!({"matchLabels": {"tier": "gold"}}));
        assert_eq!(find_best_match(&claim, &volumes, false).unwrap().name_any(), "gold");
        let claim = pvc("1Gi", "", json!({"matchLabels": {"tier": "silver"}}));
        assert!(find_best_match(&claim, &volumes, false).is_none());
    }

    #[test]
    fn delayed_binding_takes_only_prebound_volumes() {
        let mut prebound = (*pv("pre", "5Gi", "", json!({}))).clone();
        prebound.spec.as_mut().unwrap().claim_ref =
            Some(ObjectReference { name: Some("c".into()), namespace: Some("default".into()), ..Default::default() });
        let volumes = vec![pv("free", "1Gi", "", json!({})), Arc::new(prebound)];
        let claim = pvc("1Gi", "", serde_json::Value::Null);
        assert_eq!(find_best_match(&claim, &volumes, true).unwrap().name_any(), "pre");
        assert_eq!(find_best_match(&claim, &volumes[..1], true), None);
    }
}
