//! VolumeBinding (upstream `plugins/volumebinding` with its `binder.go`): missing or deleting
//! claims and unbound `Immediate` claims reject the pod in PreFilter; volumes of bound claims
//! must allow the node (`nodeAffinity`); an unbound `WaitForFirstConsumer` claim needs, on the
//! node, an Available volume that satisfies it or a StorageClass that can provision there.
//!
//! After a node is chosen, [`decide`] says what to do for each such claim — pre-bind a volume
//! (its `claimRef`) or ask for provisioning (the claim's `volume.kubernetes.io/selected-node`)
//! — and the scheduler does it before binding the pod, then waits for the PV controller to bind
//! the claims (upstream PreBind).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;

use super::{Rejection, node_affinity, selector_matches};
use crate::cache::{Cache, NodeInfo, PodInfo};

const PLUGIN: &str = "VolumeBinding";
/// `ErrReasonBindConflict`.
pub const REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// `ErrReasonNodeConflict`.
pub const REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// `ErrReasonPVNotExist`.
pub const REASON_PV_NOT_EXIST: &str = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// The annotation through which the scheduler asks for provisioning on a node.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// What PreFilter found out about the pod's claims.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Volumes of the pod's bound claims, by volume name (None: the volume does not exist).
    pub bound: Vec<(String, Option<Arc<PersistentVolume>>)>,
    /// Claims that wait for the first consumer and are not bound yet.
    pub unbound_delayed: Vec<Arc<PersistentVolumeClaim>>,
    /// With delayed claims: the volumes and classes the filter weighs, taken from the cache
    /// (Arc clones) so filtering needs no cache access.
    pub volumes: Vec<(String, Arc<PersistentVolume>)>,
    /// Classes of the delayed claims, by name.
    pub classes: Vec<Arc<StorageClass>>,
}

/// What to do for one delayed claim on the chosen node.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The claim.
    pub claim: Arc<PersistentVolumeClaim>,
    /// Pre-bind this volume; None: provision on the node.
    pub volume: Option<String>,
    /// The volume's resourceVersion as weighed, the precondition of the pre-binding write.
    pub volume_version: Option<String>,
}

/// PreFilter.
pub fn prefilter(pod: &PodInfo, cache: &Cache) -> Result<State, Rejection> {
    let mut state = State::default();
    let volumes = pod.pod.spec.as_ref().and_then(|s| s.volumes.as_deref()).unwrap_or_default();
    let mut unbound_immediate = false;
    for v in volumes {
        let claim = match (&v.persistent_volume_claim, &v.ephemeral) {
            (Some(pvc), _) => pvc.claim_name.clone(),
            // Generic ephemeral volumes own a PVC named <pod>-<volume>.
            (None, Some(_)) => format!("{}-{}", pod.pod.metadata.name.as_deref().unwrap_or(""), v.name),
            _ => continue,
        };
        let key = format!("{}/{claim}", pod.namespace());
        let Some(pvc) = cache.pvcs.get(&key) else {
            return Err(Rejection::unresolvable(PLUGIN, format!("persistentvolumeclaim \"{claim}\" not found")));
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(Rejection::unresolvable(PLUGIN, format!("persistentvolumeclaim \"{claim}\" is being deleted")));
        }
        let volume_name = pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()).unwrap_or("");
        if !volume_name.is_empty() {
            state.bound.push((volume_name.to_string(), cache.pvs.get(volume_name).cloned()));
            continue;
        }
        if class_of(pvc, cache).and_then(|sc| sc.volume_binding_mode.as_deref()) == Some("WaitForFirstConsumer") {
            state.unbound_delayed.push(pvc.clone());
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Err(Rejection::unresolvable(PLUGIN, "pod has unbound immediate PersistentVolumeClaims"));
    }
    if !state.unbound_delayed.is_empty() {
        state.volumes = cache.pvs.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
        state.volumes.sort_by(|a, b| a.0.cmp(&b.0));
        state.classes = state.unbound_delayed.iter().filter_map(|c| class_of(c, cache).cloned()).collect();
    }
    Ok(state)
}

fn class_of<'a>(pvc: &PersistentVolumeClaim, cache: &'a Cache) -> Option<&'a Arc<StorageClass>> {
    let class = pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("");
    cache.storage_classes.get(class)
}

/// Whether the volume's `nodeAffinity` admits the node (no affinity admits every node).
pub fn volume_allows(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    let Some(required) = pv.spec.as_ref().and_then(|s| s.node_affinity.as_ref()).and_then(|a| a.required.as_ref()) else {
        return true;
    };
    required.node_selector_terms.iter().any(|t| node_affinity::term_matches(t, node))
}

/// Filter.
pub fn filter(state: &State, node: &NodeInfo) -> Result<(), Rejection> {
    for (_, pv) in &state.bound {
        match pv {
            None => return Err(Rejection::unresolvable(PLUGIN, REASON_PV_NOT_EXIST)),
            Some(pv) if !volume_allows(pv, node) => return Err(Rejection::unresolvable(PLUGIN, REASON_NODE_CONFLICT)),
            Some(_) => {}
        }
    }
    if state.unbound_delayed.is_empty() {
        return Ok(());
    }
    match decide(state, node) {
        Some(_) => Ok(()),
        None => Err(Rejection::unresolvable(PLUGIN, REASON_BIND_CONFLICT)),
    }
}

/// For each delayed claim on `node`: the smallest matching Available volume there (not
/// promised to another claim of the pod), else provisioning when the class can provision on the
/// node. None when some claim can have neither.
pub fn decide(state: &State, node: &NodeInfo) -> Option<Vec<Decision>> {
    let mut decisions = Vec::with_capacity(state.unbound_delayed.len());
    let mut taken: Vec<String> = Vec::new();
    for claim in &state.unbound_delayed {
        // A claim already handed to a provisioner for another node stays with that node.
        if let Some(selected) = claim.metadata.annotations.as_ref().and_then(|a| a.get(ANN_SELECTED_NODE)) {
            if selected != node.name() {
                return None;
            }
            decisions.push(Decision { claim: claim.clone(), volume: None, volume_version: None });
            continue;
        }
        let volume = best_volume(claim, node, &state.volumes, &taken);
        match volume {
            Some(name) => {
                taken.push(name.clone());
                let volume_version = state.volumes.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.metadata.resource_version.clone());
                decisions.push(Decision { claim: claim.clone(), volume: Some(name), volume_version });
            }
            None if can_provision(claim, node, &state.classes) => {
                decisions.push(Decision { claim: claim.clone(), volume: None, volume_version: None })
            }
            None => return None,
        }
    }
    Some(decisions)
}

fn can_provision(claim: &PersistentVolumeClaim, node: &NodeInfo, classes: &[Arc<StorageClass>]) -> bool {
    let wanted = claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("");
    let Some(class) = classes.iter().find(|c| c.metadata.name.as_deref() == Some(wanted)) else { return false };
    if class.provisioner == NO_PROVISIONER {
        return false;
    }
    // allowedTopologies: one term must match the node's labels.
    match class.allowed_topologies.as_deref() {
        None | Some([]) => true,
        Some(terms) => terms.iter().any(|t| {
            t.match_label_expressions
                .iter()
                .flatten()
                .all(|e| node.labels().get(&e.key).is_some_and(|v| e.values.iter().any(|x| x == v)))
        }),
    }
}

fn best_volume(claim: &PersistentVolumeClaim, node: &NodeInfo, volumes: &[(String, Arc<PersistentVolume>)], taken: &[String]) -> Option<String> {
    let spec = claim.spec.as_ref()?;
    let class = spec.storage_class_name.as_deref().unwrap_or("");
    let wanted_modes = spec.access_modes.as_deref().unwrap_or_default();
    let claim_mode = spec.volume_mode.as_deref().unwrap_or("Filesystem");
    let request = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| crate::quantity::value(&q.0))
        .unwrap_or(0);
    let claim_name = claim.metadata.name.as_deref().unwrap_or("");
    let claim_ns = claim.metadata.namespace.as_deref().unwrap_or("");
    let mut best: Option<(i64, &str)> = None;
    for (name, pv) in volumes {
        let Some(pv_spec) = pv.spec.as_ref() else { continue };
        if taken.contains(name) || pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let prebound_here = pv_spec.claim_ref.as_ref().map(|r| {
            r.name.as_deref() == Some(claim_name)
                && r.namespace.as_deref() == Some(claim_ns)
                && r.uid.as_deref().is_none_or(|u| u.is_empty() || Some(u) == claim.metadata.uid.as_deref())
        });
        let available = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available");
        let capacity = pv_spec.capacity.as_ref().and_then(|c| c.get("storage")).and_then(|q| crate::quantity::value(&q.0)).unwrap_or(0);
        let modes = pv_spec.access_modes.as_deref().unwrap_or_default();
        let fits = pv_spec.storage_class_name.as_deref().unwrap_or("") == class
            && pv_spec.volume_mode.as_deref().unwrap_or("Filesystem") == claim_mode
            && wanted_modes.iter().all(|m| modes.contains(m))
            && capacity >= request
            && volume_allows(pv, node);
        if !fits {
            continue;
        }
        match prebound_here {
            Some(true) => return Some(name.clone()),
            Some(false) => continue,
            None => {}
        }
        let labels = pv.metadata.labels.clone().unwrap_or_default();
        if !available || (spec.selector.is_some() && !selector_matches(spec.selector.as_ref(), &labels)) {
            continue;
        }
        if best.is_none_or(|(c, _)| capacity < c) {
            best = Some((capacity, name));
        }
    }
    best.map(|(_, n)| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests_support::{node, pod};
    use serde_json::json;

    fn cache_with(pvs: serde_json::Value, class_mode: &str, provisioner: &str) -> Cache {
        let mut cache = Cache::default();
        for pv in pvs.as_array().unwrap() {
            let pv: PersistentVolume = serde_json::from_value(pv.clone()).unwrap();
            cache.pvs.insert(pv.metadata.name.clone().unwrap(), Arc::new(pv));
        }
        let sc: StorageClass = serde_json::from_value(
            json!({"metadata": {"name": "local"}, "provisioner": provisioner, "volumeBindingMode": class_mode}),
        )
        .unwrap();
        cache.storage_classes.insert("local".into(), Arc::new(sc));
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "data", "namespace": "default", "uid": "u"},
            "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap();
        cache.pvcs.insert("default/data".into(), Arc::new(pvc));
        cache
    }

    fn pinned_pv(name: &str, host: &str, size: &str) -> serde_json::Value {
        json!({"metadata": {"name": name}, "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
            "storageClassName": "local", "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}},
            "status": {"phase": "Available"}})
    }

    fn claim_pod() -> PodInfo {
        pod(json!({"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}))
    }

    fn host(name: &str) -> NodeInfo {
        node(json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}))
    }

    #[test]
    fn static_volumes_decide_the_node_and_the_smallest_wins() {
        let cache = cache_with(json!([pinned_pv("a-big", "a", "5Gi"), pinned_pv("a-small", "a", "2Gi")]), "WaitForFirstConsumer", NO_PROVISIONER);
        let state = prefilter(&claim_pod(), &cache).unwrap();
        assert_eq!(filter(&state, &host("b")).unwrap_err().reasons, [REASON_BIND_CONFLICT]);
        let decisions = decide(&state, &host("a")).unwrap();
        assert_eq!(decisions[0].volume.as_deref(), Some("a-small"));
    }

    #[test]
    fn a_provisioning_class_fits_any_node() {
        let cache = cache_with(json!([]), "WaitForFirstConsumer", "rancher.io/local-path");
        let state = prefilter(&claim_pod(), &cache).unwrap();
        assert_eq!(decide(&state, &host("b")).unwrap()[0].volume, None);
    }

    #[test]
    fn immediate_unbound_claims_fail_prefilter() {
        let cache = cache_with(json!([]), "Immediate", "rancher.io/local-path");
        assert_eq!(prefilter(&claim_pod(), &cache).unwrap_err().reasons, ["pod has unbound immediate PersistentVolumeClaims"]);
    }

    #[test]
    fn bound_volumes_pin_the_pod() {
        let mut cache = cache_with(json!([pinned_pv("a-vol", "a", "1Gi")]), "WaitForFirstConsumer", NO_PROVISIONER);
        let mut pvc = (*cache.pvcs["default/data"]).clone();
        pvc.spec.as_mut().unwrap().volume_name = Some("a-vol".into());
        cache.pvcs.insert("default/data".into(), Arc::new(pvc));
        let state = prefilter(&claim_pod(), &cache).unwrap();
        assert!(filter(&state, &host("a")).is_ok());
        assert_eq!(filter(&state, &host("b")).unwrap_err().reasons, [REASON_NODE_CONFLICT]);
    }
}
