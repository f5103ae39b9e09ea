//! VolumeBinding, the part that needs no PV controller (upstream `plugins/volumebinding`):
//! missing or deleting PVCs and unbound `Immediate` PVCs reject the pod in PreFilter; an unbound
//! `WaitForFirstConsumer` PVC rejects every node until a PersistentVolume binding or provisioning
//! exists (the PV controller issue), so such pods stay Pending with upstream's reason.

use super::Rejection;
use crate::cache::{Cache, PodInfo};

/// What PreFilter found out about the pod's claims.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Claims that wait for the first consumer and are not bound yet.
    pub unbound_delayed: Vec<String>,
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
            return Err(Rejection::unresolvable("VolumeBinding", format!("persistentvolumeclaim \"{claim}\" not found")));
        };
        if pvc.metadata.deletion_timestamp.is_some() {
            return Err(Rejection::unresolvable("VolumeBinding", format!("persistentvolumeclaim \"{claim}\" is being deleted")));
        }
        let bound = pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref()).is_some_and(|n| !n.is_empty());
        if bound {
            continue;
        }
        let class = pvc.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()).unwrap_or("");
        let delayed =
            cache.storage_classes.get(class).and_then(|sc| sc.volume_binding_mode.as_deref()).is_some_and(|m| m == "WaitForFirstConsumer");
        if delayed {
            state.unbound_delayed.push(claim);
        } else {
            unbound_immediate = true;
        }
    }
    if unbound_immediate {
        return Err(Rejection::unresolvable("VolumeBinding", "pod has unbound immediate PersistentVolumeClaims"));
    }
    Ok(state)
}

/// Filter: without a volume to bind or provision, a delayed claim fits no node.
pub fn filter(state: &State) -> Result<(), Rejection> {
    if state.unbound_delayed.is_empty() {
        return Ok(());
    }
    Err(Rejection::unresolvable("VolumeBinding", "node(s) didn't find available persistent volumes to bind"))
}
