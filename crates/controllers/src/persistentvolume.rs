//! The PersistentVolume binder (upstream `pkg/controller/volume/persistentvolume`,
//! `pv_controller.go`): binds Pending claims to Available volumes, keeps both sides of a binding
//! consistent (`claimRef`/`volumeName`, the bind annotations, phases, the claim's capacity and
//! access modes), hands claims with a StorageClass to their (external) provisioner, and reclaims
//! volumes whose claim is gone.
//!
//! Two kube-rs controllers share the work as upstream's claim and volume workers do: one
//! reconciles claims, one volumes; each is woken by changes of the other kind. Writes are full
//! updates with the read resourceVersion (the controller's RBAC role has `update`, not `patch`),
//! so a stale read ends in 409 and a retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus, PersistentVolumeStatus, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::ResourceExt;

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;
use crate::events::{EventRecorder, EventType};
use crate::volume_util::*;

const COMPONENT: &str = "persistentvolume-controller";
/// Upstream's `--pvclaimbinder-sync-period`.
const RESYNC: Duration = Duration::from_secs(15);
/// How many objects' last events are remembered for de-duplication.
const MAX_REMEMBERED_EVENTS: usize = 10_000;

struct State {
    ctx: Context,
    recorder: EventRecorder,
    volumes: Store<PersistentVolume>,
    claims: Store<PersistentVolumeClaim>,
    classes: Store<StorageClass>,
    /// The last (reason, message) recorded per object uid: upstream's recorder folds repeats
    /// into one event with a count; this recorder does not, so repeats are not sent at all.
    last_event: Mutex<HashMap<String, (String, String)>>,
}

impl State {
    async fn event_once<K>(&self, obj: &K, kind: EventType, reason: &str, message: String)
    where
        K: kube::Resource<DynamicType = ()>,
    {
        let uid = obj.meta().uid.clone().unwrap_or_default();
        let key = (reason.to_string(), message.clone());
        {
            let Ok(mut last) = self.last_event.lock() else { return };
            if last.get(&uid) == Some(&key) {
                return;
            }
            // Deleted objects never come back to clear their entry: bound the memory instead.
            if last.len() >= MAX_REMEMBERED_EVENTS {
                last.clear();
            }
            last.insert(uid, key);
        }
        self.recorder.record(obj, kind, reason, message).await;
    }
}

/// Runs the binder until its watches end.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let (classes, class_writer) = reflector::store::<StorageClass>();
    let class_events =
        reflector::reflector(class_writer, watcher(Api::<StorageClass>::all(client.clone()), watcher::Config::default()))
            .default_backoff()
            .touched_objects();
    let claim_controller = Controller::new(Api::<PersistentVolumeClaim>::all(client.clone()), watcher::Config::default());
    let volume_controller = Controller::new(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default());
    let claims = claim_controller.store();
    let volumes = volume_controller.store();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        volumes: volumes.clone(),
        claims: claims.clone(),
        classes,
        last_event: Mutex::new(HashMap::new()),
    });

    let claims_for_volumes = claims.clone();
    let claim_stream = claim_controller
        .watches(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default(), move |pv| {
            claims_to_resync(&pv, &claims_for_volumes)
        })
        .run(reconcile_claim, requeue_on_error, state.clone());
    let volumes_for_claims = volumes.clone();
    let volume_stream = volume_controller
        .watches(Api::<PersistentVolumeClaim>::all(client), watcher::Config::default(), move |pvc| {
            volumes_to_resync(&pvc, &volumes_for_claims)
        })
        .run(reconcile_volume, requeue_on_error, state);
    let classes_task = async {
        futures::pin_mut!(class_events);
        while futures::StreamExt::next(&mut class_events).await.is_some() {}
    };
    tokio::join!(drain(COMPONENT, claim_stream), drain(COMPONENT, volume_stream), classes_task);
    Ok(())
}

/// Claims to look at again when a volume changes: its claim, and when it is free, every
/// unbound claim (it may now match one of them).
fn claims_to_resync(pv: &PersistentVolume, claims: &Store<PersistentVolumeClaim>) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    if let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        let (Some(name), Some(ns)) = (r.name.as_deref(), r.namespace.as_deref()) else { return Vec::new() };
        return vec![ObjectRef::new(name).within(ns)];
    }
    claims.state().iter().filter(|c| claim_volume_name(c).is_empty()).map(|c| ObjectRef::from_obj(c.as_ref())).collect()
}

/// Volumes to look at again when a claim changes or goes: the one it names and the ones
/// whose `claimRef` points at it.
fn volumes_to_resync(pvc: &PersistentVolumeClaim, volumes: &Store<PersistentVolume>) -> Vec<ObjectRef<PersistentVolume>> {
    let mut refs: Vec<ObjectRef<PersistentVolume>> =
        volumes.state().iter().filter(|v| claim_ref_matches(v, pvc)).map(|v| ObjectRef::from_obj(v.as_ref())).collect();
    let named = claim_volume_name(pvc);
    if !named.is_empty() {
        refs.push(ObjectRef::new(named));
    }
    refs
}

async fn reconcile_claim(pvc: Arc<PersistentVolumeClaim>, st: Arc<State>) -> Result<Action> {
    if pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volume_name = claim_volume_name(&pvc).to_string();
    if volume_name.is_empty() && annotation(pvc.as_ref(), ANN_BIND_COMPLETED).is_some() {
        set_claim_lost(&st, &pvc, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!").await?;
        return Ok(Action::requeue(RESYNC));
    }
    if volume_name.is_empty() { sync_unbound_claim(&pvc, &st).await } else { sync_bound_claim(&pvc, &volume_name, &st).await }
}

/// A claim without `volumeName` (upstream `syncUnboundClaim`, first branch).
async fn sync_unbound_claim(pvc: &Arc<PersistentVolumeClaim>, st: &State) -> Result<Action> {
    let class_name = claim_class(pvc).to_string();
    let class = if class_name.is_empty() { None } else { st.classes.get(&ObjectRef::new(&class_name)) };
    // Delayed claims bind only to volumes the scheduler pre-bound; provisioning starts once it
    // picked a node.
    let delayed = class.as_ref().is_some_and(|c| c.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer"));
    let volumes = st.volumes.state();
    if let Some(pv) = find_best_match(pvc, &volumes, delayed) {
        bind(st, pv, pvc).await?;
        return Ok(Action::requeue(RESYNC));
    }
    if delayed && annotation(pvc.as_ref(), ANN_SELECTED_NODE).is_none() {
        let (reason, message) = delayed_binding_event(st, pvc).await?;
        st.event_once(pvc.as_ref(), EventType::Normal, reason, message).await;
        return Ok(Action::requeue(RESYNC));
    }
    if class_name.is_empty() {
        st.event_once(
            pvc.as_ref(),
            EventType::Normal,
            "FailedBinding",
            "no persistent volumes available for this claim and no storage class is set".into(),
        )
        .await;
        return Ok(Action::requeue(RESYNC));
    }
    let Some(class) = class else {
        // The class may exist and not be in the cache yet: ask before complaining.
        if Api::<StorageClass>::all(st.ctx.client.clone()).get_opt(&class_name).await?.is_none() {
            st.event_once(pvc.as_ref(), EventType::Warning, "ProvisioningFailed", format!("storageclass.storage.k8s.io \"{class_name}\" not found"))
                .await;
        }
        return Ok(Action::requeue(RESYNC));
    };
    // Every provisioner is external to this controller (upstream has no in-tree one left):
    // name it on the claim and wait for the provisioner to create a pre-bound volume.
    let provisioner = class.provisioner.clone();
    if annotation(pvc.as_ref(), ANN_STORAGE_PROVISIONER) != Some(provisioner.as_str()) {
        let mut claim = (**pvc).clone();
        set_annotation(&mut claim, ANN_STORAGE_PROVISIONER, &provisioner);
        set_annotation(&mut claim, ANN_BETA_STORAGE_PROVISIONER, &provisioner);
        claims_api(st, pvc).replace(&pvc.name_any(), &PostParams::default(), &claim).await?;
    }
    st.event_once(
        pvc.as_ref(),
        EventType::Normal,
        "ExternalProvisioning",
        format!(
            "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system \
             administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
        ),
    )
    .await;
    Ok(Action::requeue(RESYNC))
}

/// Upstream `emitEventForUnboundDelayBindingClaim`: name the pods that wait to be scheduled,
/// if any use the claim.
async fn delayed_binding_event(st: &State, pvc: &PersistentVolumeClaim) -> Result<(&'static str, String)> {
    let pods = Api::<Pod>::namespaced(st.ctx.client.clone(), &pvc.namespace().unwrap_or_default()).list(&ListParams::default()).await?;
    let claim = pvc.name_any();
    let waiting: Vec<String> = pods
        .items
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_none_or(str::is_empty))
        .filter(|p| claims_of(p).contains(&claim))
        .map(|p| p.name_any())
        .collect();
    Ok(match waiting.as_slice() {
        [] => ("WaitForFirstConsumer", "waiting for first consumer to be created before binding".to_string()),
        [one] => ("WaitForPodScheduled", format!("waiting for pod {one} to be scheduled")),
        many => ("WaitForPodScheduled", format!("waiting for pods {} to be scheduled", many.join(","))),
    })
}

/// A claim that names its volume (upstream `syncBoundClaim` and the pre-bound branch of
/// `syncUnboundClaim`).
async fn sync_bound_claim(pvc: &Arc<PersistentVolumeClaim>, volume_name: &str, st: &State) -> Result<Action> {
    let cached = st.volumes.get(&ObjectRef::new(volume_name));
    let pv = match cached {
        Some(pv) => pv,
        None => match Api::<PersistentVolume>::all(st.ctx.client.clone()).get_opt(volume_name).await? {
            Some(pv) => Arc::new(pv),
            None => {
                if annotation(pvc.as_ref(), ANN_BIND_COMPLETED).is_some() {
                    set_claim_lost(st, pvc, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!").await?;
                }
                return Ok(Action::requeue(RESYNC));
            }
        },
    };
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if claim_ref.is_none() || claim_ref_matches(&pv, pvc) {
        if claim_ref.is_none()
            && let Some(why) = mismatch(&pv, pvc)
        {
            st.event_once(pvc.as_ref(), EventType::Warning, "VolumeMismatch", format!("Cannot bind to requested volume \"{volume_name}\": {why}"))
                .await;
            return Ok(Action::requeue(RESYNC));
        }
        bind(st, &pv, pvc).await?;
        return Ok(Action::requeue(RESYNC));
    }
    if annotation(pvc.as_ref(), ANN_BIND_COMPLETED).is_some() {
        set_claim_lost(st, pvc, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly").await?;
    } else {
        st.event_once(pvc.as_ref(), EventType::Warning, "FailedBinding", format!("volume \"{volume_name}\" already bound to a different claim."))
            .await;
    }
    Ok(Action::requeue(RESYNC))
}

fn claims_api(st: &State, pvc: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
    Api::namespaced(st.ctx.client.clone(), &pvc.namespace().unwrap_or_default())
}

async fn set_claim_lost(st: &State, pvc: &PersistentVolumeClaim, reason: &str, message: &str) -> Result<()> {
    if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Lost") {
        let mut claim = pvc.clone();
        claim.status.get_or_insert_with(Default::default).phase = Some("Lost".into());
        claims_api(st, pvc).replace_status(&pvc.name_any(), &PostParams::default(), &claim).await?;
    }
    st.event_once(pvc, EventType::Warning, reason, message.to_string()).await;
    Ok(())
}

/// Binds both sides (upstream `bind`: volume first, then its phase, then the claim, then the
/// claim's status), skipping the writes that are already done.
async fn bind(st: &State, pv: &Arc<PersistentVolume>, pvc: &Arc<PersistentVolumeClaim>) -> Result<()> {
    let volumes: Api<PersistentVolume> = Api::all(st.ctx.client.clone());
    let volume_name = pv.name_any();
    let mut volume = (**pv).clone();
    let ref_complete = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()).is_some_and(|r| r.uid == pvc.metadata.uid);
    if !ref_complete {
        let spec = volume.spec.get_or_insert_with(Default::default);
        if spec.claim_ref.is_none() {
            set_annotation(&mut volume, ANN_BOUND_BY_CONTROLLER, YES);
        }
        volume.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_reference(pvc));
        volume = volumes.replace(&volume_name, &PostParams::default(), &volume).await?;
        tracing::info!(volume = %volume_name, claim = %format!("{}/{}", pvc.namespace().unwrap_or_default(), pvc.name_any()), "bound volume to claim");
    }
    if volume_phase(&volume) != "Bound" {
        volume.status = Some(PersistentVolumeStatus { phase: Some("Bound".into()), ..volume.status.clone().unwrap_or_default() });
        volumes.replace_status(&volume_name, &PostParams::default(), &volume).await?;
    }

    let claims = claims_api(st, pvc);
    let mut claim = (**pvc).clone();
    let named = claim_volume_name(pvc) == volume_name;
    if !named || annotation(pvc.as_ref(), ANN_BIND_COMPLETED).is_none() {
        if !named {
            claim.spec.get_or_insert_with(Default::default).volume_name = Some(volume_name.clone());
            set_annotation(&mut claim, ANN_BOUND_BY_CONTROLLER, YES);
        }
        set_annotation(&mut claim, ANN_BIND_COMPLETED, YES);
        claim = claims.replace(&pvc.name_any(), &PostParams::default(), &claim).await?;
    }
    let spec = volume.spec.clone().unwrap_or_default();
    let status = claim.status.clone().unwrap_or_default();
    let wanted = PersistentVolumeClaimStatus {
        phase: Some("Bound".into()),
        capacity: spec.capacity.clone(),
        access_modes: spec.access_modes.clone(),
        ..status.clone()
    };
    if status != wanted {
        claim.status = Some(wanted);
        claims.replace_status(&pvc.name_any(), &PostParams::default(), &claim).await?;
    }
    Ok(())
}

async fn reconcile_volume(pv: Arc<PersistentVolume>, st: Arc<State>) -> Result<Action> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        set_volume_phase(&st, &pv, "Available", None).await?;
        return Ok(Action::requeue(RESYNC));
    };
    let ref_uid = claim_ref.uid.clone().unwrap_or_default();
    if ref_uid.is_empty() {
        // Pre-bound by a user or the scheduler; the claim side does the binding.
        set_volume_phase(&st, &pv, "Available", None).await?;
        return Ok(Action::requeue(RESYNC));
    }
    let ns = claim_ref.namespace.clone().unwrap_or_default();
    let name = claim_ref.name.clone().unwrap_or_default();
    let cached = st.claims.get(&ObjectRef::new(&name).within(&ns)).filter(|c| c.metadata.uid.as_deref() == Some(ref_uid.as_str()));
    let claim = match cached {
        Some(c) => Some(c),
        // Not in the cache is not gone: the cache may lag behind a new claim.
        None => Api::<PersistentVolumeClaim>::namespaced(st.ctx.client.clone(), &ns)
            .get_opt(&name)
            .await?
            .filter(|c| c.metadata.uid.as_deref() == Some(ref_uid.as_str()))
            .map(Arc::new),
    };
    let Some(claim) = claim else {
        return reclaim(&st, &pv).await;
    };
    let claim_volume = claim_volume_name(&claim);
    if claim_volume == pv.name_any() {
        set_volume_phase(&st, &pv, "Bound", None).await?;
    } else if !claim_volume.is_empty() {
        // The claim went to another volume: this one is free again (upstream `unbindVolume`).
        let mut volume = (*pv).clone();
        if annotation(&volume, ANN_BOUND_BY_CONTROLLER).is_some() {
            volume.spec.get_or_insert_with(Default::default).claim_ref = None;
            if let Some(a) = volume.metadata.annotations.as_mut() {
                a.remove(ANN_BOUND_BY_CONTROLLER);
            }
        } else if let Some(r) = volume.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
            // A user's pre-binding stays, without the uid of the claim that went elsewhere.
            r.uid = None;
        }
        let volume = Api::<PersistentVolume>::all(st.ctx.client.clone()).replace(&pv.name_any(), &PostParams::default(), &volume).await?;
        set_volume_phase(&st, &Arc::new(volume), "Available", None).await?;
    }
    Ok(Action::requeue(RESYNC))
}

/// The claim is gone: Released, then the reclaim policy (upstream `reclaimVolume`).
async fn reclaim(st: &State, pv: &Arc<PersistentVolume>) -> Result<Action> {
    let phase = volume_phase(pv);
    if phase != "Released" && phase != "Failed" {
        set_volume_phase(st, pv, "Released", None).await?;
        return Ok(Action::requeue(Duration::from_millis(200)));
    }
    if phase == "Failed" {
        return Ok(Action::requeue(RESYNC));
    }
    let policy = pv.spec.as_ref().and_then(|s| s.persistent_volume_reclaim_policy.as_deref()).unwrap_or("Retain");
    match policy {
        // A provisioner deletes what it provisioned; nothing deletes the others.
        "Delete" if annotation(pv.as_ref(), ANN_PROVISIONED_BY).is_none() => {
            let message = format!("error getting deleter volume plugin for volume \"{}\": no deletable volume plugin matched", pv.name_any());
            set_volume_phase(st, pv, "Failed", Some(&message)).await?;
            st.event_once(pv.as_ref(), EventType::Warning, "VolumeFailedDelete", message).await;
        }
        "Recycle" => {
            let message = "No recycler plugin found for the volume!".to_string();
            set_volume_phase(st, pv, "Failed", Some(&message)).await?;
            st.event_once(pv.as_ref(), EventType::Warning, "VolumeFailedRecycle", message).await;
        }
        _ => {}
    }
    Ok(Action::requeue(RESYNC))
}

async fn set_volume_phase(st: &State, pv: &Arc<PersistentVolume>, phase: &str, message: Option<&str>) -> Result<()> {
    if volume_phase(pv) == phase {
        return Ok(());
    }
    let mut volume = (**pv).clone();
    volume.status = Some(PersistentVolumeStatus {
        phase: Some(phase.to_string()),
        message: message.map(str::to_string),
        reason: None,
        // Left as read: the server stamps the transition time when the phase changes.
        last_phase_transition_time: pv.status.as_ref().and_then(|s| s.last_phase_transition_time.clone()),
    });
    Api::<PersistentVolume>::all(st.ctx.client.clone()).replace_status(&pv.name_any(), &PostParams::default(), &volume).await?;
    Ok(())
}
