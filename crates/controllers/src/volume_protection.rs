//! The PVC and PV protection controllers (upstream `pkg/controller/volume/pvcprotection` and
//! `pvprotection`): the StorageObjectInUseProtection admission plugin puts a finalizer on every
//! claim and volume; these controllers remove it from a deleted claim once no pod uses it, and
//! from a deleted volume once it is not Bound, so storage in use is never pulled away.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;
use crate::volume_util::{claims_of, volume_phase};

/// Finalizer of claims.
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// Finalizer of volumes.
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Runs the PVC protection controller until its watches end.
pub async fn run_pvc_protection(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let stream = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default())
        .watches(Api::<Pod>::all(client), watcher::Config::default(), |pod| {
            let ns = pod.namespace().unwrap_or_default();
            claims_of(&pod).into_iter().map(|c| ObjectRef::new(&c).within(&ns)).collect::<Vec<_>>()
        })
        .run(reconcile_claim, requeue_on_error, Arc::new(ctx));
    drain("pvc-protection-controller", stream).await;
    Ok(())
}

/// Runs the PV protection controller until its watch ends.
pub async fn run_pv_protection(ctx: Context) -> Result<()> {
    let stream = Controller::new(Api::<PersistentVolume>::all(ctx.client.clone()), watcher::Config::default())
        .run(reconcile_volume, requeue_on_error, Arc::new(ctx));
    drain("pv-protection-controller", stream).await;
    Ok(())
}

/// Whether the pod keeps the claim in use (upstream `podUsesPVC`): only scheduled pods do,
/// since a node refuses to start a pod whose claim is being deleted, and finished pods do not.
fn uses(pod: &Pod, claim: &str) -> bool {
    let scheduled = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
    let finished = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
    scheduled && !finished && claims_of(pod).iter().any(|c| c == claim)
}

fn has_finalizer<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.meta().finalizers.as_ref().is_some_and(|f| f.iter().any(|x| x == finalizer))
}

fn without_finalizer<K: Resource + Clone>(obj: &K, finalizer: &str) -> K {
    let mut copy = obj.clone();
    if let Some(f) = copy.meta_mut().finalizers.as_mut() {
        f.retain(|x| x != finalizer);
    }
    copy
}

async fn reconcile_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Context>) -> Result<Action> {
    if pvc.metadata.deletion_timestamp.is_none() || !has_finalizer(pvc.as_ref(), PVC_FINALIZER) {
        return Ok(Action::await_change());
    }
    let ns = pvc.namespace().unwrap_or_default();
    let name = pvc.name_any();
    // A live list, as upstream's second check: the watch cache of pods may lag behind.
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &ns).list(&ListParams::default()).await?;
    if pods.items.iter().any(|p| uses(p, &name)) {
        return Ok(Action::await_change());
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    claims.replace(&name, &PostParams::default(), &without_finalizer(pvc.as_ref(), PVC_FINALIZER)).await?;
    tracing::info!(claim = %format!("{ns}/{name}"), "removed the pvc-protection finalizer");
    Ok(Action::await_change())
}

async fn reconcile_volume(pv: Arc<PersistentVolume>, ctx: Arc<Context>) -> Result<Action> {
    if pv.metadata.deletion_timestamp.is_none() || !has_finalizer(pv.as_ref(), PV_FINALIZER) || volume_phase(&pv) == "Bound" {
        return Ok(Action::await_change());
    }
    let volumes: Api<PersistentVolume> = Api::all(ctx.client.clone());
    volumes.replace(&pv.name_any(), &PostParams::default(), &without_finalizer(pv.as_ref(), PV_FINALIZER)).await?;
    Ok(Action::await_change())
}
