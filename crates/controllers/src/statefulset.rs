//! The StatefulSet controller (pkg/controller/statefulset): pods `<set>-<N>` with stable
//! identity, PersistentVolumeClaims from `volumeClaimTemplates` (kept when pods and the set go,
//! unless `persistentVolumeClaimRetentionPolicy` says Delete), OrderedReady (one pod at a time,
//! each Running and Ready before the next; scale-down from the highest ordinal) or Parallel pod
//! management, and rolling updates from the highest ordinal down to the partition, each pod
//! recreated at the update revision. Revisions are ControllerRevisions `<set>-<hash>` whose data
//! is the pod template, as upstream's history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::deployment_util::compute_hash;
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType};
use crate::replicaset::{adopt, api_message, controller_of, controller_ref, release};
use crate::statefulset_util::{self as util, REVISION_LABEL};

const COMPONENT: &str = "statefulset-controller";

struct State {
    ctx: Context,
    pods: Store<Pod>,
    revisions: Store<ControllerRevision>,
    recorder: EventRecorder,
}

/// Runs the controller until its watches end.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let pod_events = reflector::reflector(
        pod_writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let (revisions, revision_writer) = reflector::store::<ControllerRevision>();
    let revision_events = reflector::reflector(
        revision_writer,
        watcher(
            Api::<ControllerRevision>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .touched_objects();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        pods,
        revisions,
    });
    let stream = Controller::new(Api::<StatefulSet>::all(client), watcher::Config::default())
        .watches_stream(pod_events, |pod| {
            owning_set(&pod).or_else(|| orphan_parent(&pod))
        })
        .watches_stream(revision_events, |rev| owning_set(&rev))
        .run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

fn owning_set<K: Resource>(obj: &K) -> Option<ObjectRef<StatefulSet>> {
    let owner = controller_of(obj).filter(|o| o.kind == "StatefulSet")?;
    Some(ObjectRef::new(&owner.name).within(obj.meta().namespace.as_deref().unwrap_or("")))
}

/// The set an orphan pod named `<set>-<N>` could be adopted by (upstream `isMemberOf`).
fn orphan_parent(pod: &Pod) -> Option<ObjectRef<StatefulSet>> {
    if controller_of(pod).is_some() {
        return None;
    }
    let name = pod.name_any();
    let (parent, _) = name.rsplit_once('-')?;
    util::ordinal_of(parent, &name)?;
    Some(ObjectRef::new(parent).within(pod.metadata.namespace.as_deref().unwrap_or("")))
}

/// The revision data upstream stores: a strategic-merge patch replacing the template.
pub(crate) fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(map) = t.as_object_mut() {
        map.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision was made from.
fn revision_template(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(map) = t.as_object_mut() {
        map.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

async fn reconcile(set: Arc<StatefulSet>, state: Arc<State>) -> Result<Action> {
    let ready = async {
        state.pods.wait_until_ready().await?;
        state.revisions.wait_until_ready().await
    };
    if tokio::time::timeout(Duration::from_secs(1), ready)
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if set.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let set_name = set.name_any();

    let mut owned = claim_pods(&state, set.as_ref()).await?;
    owned.sort_by_key(|p| util::ordinal_of(&set_name, &p.name_any()));

    let revisions = Revisions::sync(&state, set.as_ref()).await?;
    let outcome = sync_pods(&state, set.as_ref(), &owned, &revisions).await;
    update_status(&state, set.as_ref(), &owned, &revisions).await?;
    outcome?;

    let min_ready = util::min_ready_seconds(set.as_ref());
    let now = Timestamp::now();
    let wait = owned
        .iter()
        .filter_map(|p| crate::pod_util::seconds_until_available(p, min_ready, now))
        .min();
    Ok(match wait {
        Some(secs) => Action::requeue(Duration::from_secs(secs.unsigned_abs() + 1)),
        None => Action::await_change(),
    })
}

/// The set's pods as upstream's ControllerRefManager claims them: orphans named `<set>-<N>`
/// that match the selector are adopted, owned pods that no longer match are released.
async fn claim_pods(state: &State, set: &StatefulSet) -> Result<Vec<Pod>> {
    let ns = set.namespace().unwrap_or_default();
    let set_uid = set.uid().unwrap_or_default();
    let set_name = set.name_any();
    let api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &ns);
    // An empty selector selects nothing (validation rejects it anyway).
    let selector = set
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .filter(|s| {
            s.match_labels.as_ref().is_some_and(|m| !m.is_empty())
                || s.match_expressions.as_ref().is_some_and(|e| !e.is_empty())
        })
        .and_then(|s| Selector::try_from(s).ok());
    let mut owned = Vec::new();
    for pod in state.pods.state() {
        if pod.namespace().as_deref() != Some(ns.as_str()) {
            continue;
        }
        let matches = util::ordinal_of(&set_name, &pod.name_any()).is_some()
            && selector.as_ref().is_some_and(|s| s.matches(pod.labels()));
        match controller_of(pod.as_ref()) {
            Some(r) if r.uid == set_uid => {
                if matches {
                    owned.push((*pod).clone());
                } else {
                    release(&api, &pod, &set_uid).await?;
                }
            }
            Some(_) => {}
            None if matches && pod.metadata.deletion_timestamp.is_none() => {
                if let Some(adopted) = adopt(&api, &pod, controller_ref(set)).await? {
                    owned.push(adopted);
                }
            }
            None => {}
        }
    }
    Ok(owned)
}

/// The set's current and update revisions with their templates.
struct Revisions {
    current_name: String,
    current_template: PodTemplateSpec,
    update_name: String,
    update_template: PodTemplateSpec,
    collision_count: i32,
}

impl Revisions {
    /// Finds or creates the ControllerRevision of the set's template, makes it the newest, and
    /// trims history to `revisionHistoryLimit` (upstream `getStatefulSetRevisions` and
    /// `truncateHistory`).
    async fn sync(state: &State, set: &StatefulSet) -> Result<Revisions> {
        let ns = set.namespace().unwrap_or_default();
        let set_uid = set.uid().unwrap_or_default();
        let api: Api<ControllerRevision> = Api::namespaced(state.ctx.client.clone(), &ns);
        let mut owned: Vec<ControllerRevision> = state
            .revisions
            .state()
            .iter()
            .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
            .filter(|r| controller_of(r.as_ref()).is_some_and(|o| o.uid == set_uid))
            .map(|r| (**r).clone())
            .collect();
        owned.sort_by_key(|r| r.revision);
        let template = set
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .ok_or_else(|| Error::Invalid("spec is missing".into()))?;
        let data = revision_data(&template);
        let max_revision = owned.iter().map(|r| r.revision).max().unwrap_or(0);
        let mut collision_count = set
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);

        let equal = owned
            .iter()
            .rev()
            .find(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
            .cloned();
        let update = match equal {
            Some(rev) if rev.revision == max_revision => rev,
            Some(rev) => {
                // Rolling back to an earlier template: that revision becomes the newest.
                let patch = json!({"revision": max_revision + 1});
                api.patch(
                    &rev.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?
            }
            None => loop {
                let hash = compute_hash(&template, Some(collision_count).filter(|c| *c > 0));
                let name = format!("{}-{hash}", set.name_any());
                let mut labels: BTreeMap<String, String> = set
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.match_labels.clone())
                    .unwrap_or_default();
                labels.insert(REVISION_LABEL.into(), name.clone());
                let revision = ControllerRevision {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        owner_references: Some(vec![controller_ref(set)]),
                        ..Default::default()
                    },
                    data: Some(RawExtension(data.clone())),
                    revision: max_revision + 1,
                };
                match api.create(&PostParams::default(), &revision).await {
                    Ok(r) => break r,
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        let existing = api.get(&name).await?;
                        if existing.data.as_ref().map(|d| &d.0) == Some(&data)
                            && controller_of(&existing).is_some_and(|o| o.uid == set_uid)
                        {
                            break existing;
                        }
                        collision_count += 1;
                    }
                    Err(e) => return Err(e.into()),
                }
            },
        };
        let update_name = update.name_any();
        let current_name = set
            .status
            .as_ref()
            .and_then(|s| s.current_revision.clone())
            .filter(|n| owned.iter().any(|r| r.name_any() == *n))
            .unwrap_or_else(|| update_name.clone());
        let current_template = owned
            .iter()
            .find(|r| r.name_any() == current_name)
            .and_then(revision_template)
            .unwrap_or_else(|| template.clone());

        truncate_history(state, set, &api, &owned, &[&current_name, &update_name]).await;
        Ok(Revisions {
            current_name,
            current_template,
            update_name,
            update_template: template,
            collision_count,
        })
    }
}

/// Deletes the oldest revisions no pod uses beyond `revisionHistoryLimit` (default 10).
async fn truncate_history(
    state: &State,
    set: &StatefulSet,
    api: &Api<ControllerRevision>,
    owned: &[ControllerRevision],
    live: &[&str],
) {
    let limit = set
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let ns = set.namespace().unwrap_or_default();
    let set_uid = set.uid().unwrap_or_default();
    let in_use: Vec<String> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| controller_of(p.as_ref()).is_some_and(|r| r.uid == set_uid))
        .filter_map(|p| util::pod_revision(p).map(str::to_string))
        .collect();
    let history: Vec<&ControllerRevision> = owned
        .iter()
        .filter(|r| {
            let name = r.name_any();
            !live.contains(&name.as_str()) && !in_use.contains(&name)
        })
        .collect();
    let excess = history
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    for rev in history.into_iter().take(excess) {
        if let Err(e) = api.delete(&rev.name_any(), &DeleteParams::default()).await {
            tracing::debug!(error = %e, "deleting an old ControllerRevision failed");
        }
    }
}

/// What one pass decided to do next (OrderedReady passes stop at the first action or wait).
enum Step {
    Continue,
    Stop,
}

/// Creates missing and replaces finished pods in ordinal order, deletes condemned pods from the
/// highest ordinal, then rolls pods to the update revision (upstream `updateStatefulSet`).
async fn sync_pods(
    state: &State,
    set: &StatefulSet,
    owned: &[Pod],
    revisions: &Revisions,
) -> Result<()> {
    let set_name = set.name_any();
    let ordered = util::is_ordered(set);
    let start = util::start_ordinal(set);
    let end = start + util::replicas(set).max(0);
    let in_range =
        |p: &Pod| util::ordinal_of(&set_name, &p.name_any()).is_some_and(|o| o >= start && o < end);
    let mut condemned: Vec<&Pod> = owned.iter().filter(|p| !in_range(p)).collect();
    condemned.reverse();

    for ordinal in start..end {
        let name = format!("{set_name}-{ordinal}");
        let pod = owned.iter().find(|p| p.name_any() == name);
        let step = match pod {
            None => create_pod(state, set, revisions, ordinal).await?,
            Some(p) if util::is_finished(p) && p.metadata.deletion_timestamp.is_none() => {
                let reason = if crate::pod_util::phase(p) == "Failed" {
                    ("RecreatingFailedPod", "failed")
                } else {
                    ("RecreatingTerminatedPod", "terminated")
                };
                state
                    .recorder
                    .record(
                        set,
                        EventType::Warning,
                        reason.0,
                        format!(
                            "StatefulSet {}/{set_name} is recreating {} Pod {name}",
                            set.namespace().unwrap_or_default(),
                            reason.1
                        ),
                    )
                    .await;
                delete_pod(state, set, p).await?;
                Step::Stop
            }
            Some(p) if !util::is_healthy(p) => Step::Stop,
            Some(p)
                if !crate::pod_util::is_available(
                    p,
                    util::min_ready_seconds(set),
                    Timestamp::now(),
                ) =>
            {
                Step::Stop
            }
            Some(_) => Step::Continue,
        };
        if ordered && matches!(step, Step::Stop) {
            return Ok(());
        }
    }

    let all_healthy = owned.iter().filter(|p| in_range(p)).all(util::is_healthy);
    for pod in &condemned {
        if pod.metadata.deletion_timestamp.is_some() {
            if ordered {
                return Ok(());
            }
            continue;
        }
        if ordered && !all_healthy && util::is_healthy(pod) {
            return Ok(());
        }
        let (_, delete_on_scale) = util::retention_deletes(set);
        if delete_on_scale {
            own_claims_by_pod(state, set, pod).await;
        }
        delete_pod(state, set, pod).await?;
        if ordered {
            return Ok(());
        }
    }
    if !condemned.is_empty() && ordered {
        return Ok(());
    }

    if !util::is_rolling_update(set) {
        return Ok(());
    }
    let partition = util::partition(set);
    let mut targets: Vec<&Pod> = owned.iter().filter(|p| in_range(p)).collect();
    targets.reverse();
    for pod in targets {
        let ordinal = util::ordinal_of(&set_name, &pod.name_any()).unwrap_or(0);
        if ordinal < partition {
            break;
        }
        if util::pod_revision(pod) != Some(revisions.update_name.as_str())
            && pod.metadata.deletion_timestamp.is_none()
        {
            if !all_healthy {
                return Ok(());
            }
            tracing::info!(pod = %pod.name_any(), revision = %revisions.update_name, "rolling StatefulSet pod to the update revision");
            delete_pod(state, set, pod).await?;
            return Ok(());
        }
        if !util::is_healthy(pod) {
            return Ok(());
        }
    }
    Ok(())
}

/// Creates pod `ordinal` and its claims; `Stop` so an ordered set waits for it.
async fn create_pod(
    state: &State,
    set: &StatefulSet,
    revisions: &Revisions,
    ordinal: i32,
) -> Result<Step> {
    let ns = set.namespace().unwrap_or_default();
    let set_name = set.name_any();
    let pod_name = format!("{set_name}-{ordinal}");
    let claims_api: Api<PersistentVolumeClaim> = Api::namespaced(state.ctx.client.clone(), &ns);
    let (delete_with_set, _) = util::retention_deletes(set);
    for mut claim in util::claims_for(set, ordinal) {
        let claim_name = claim.name_any();
        if delete_with_set {
            claim.metadata.owner_references = Some(vec![OwnerReference {
                controller: None,
                ..controller_ref(set)
            }]);
        }
        match claims_api.create(&PostParams::default(), &claim).await {
            Ok(_) => {
                state
                    .recorder
                    .record(
                        set,
                        EventType::Normal,
                        "SuccessfulCreate",
                        format!(
                            "create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"
                        ),
                    )
                    .await;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => {
                state
                    .recorder
                    .record(
                        set,
                        EventType::Warning,
                        "FailedCreate",
                        format!(
                            "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                            api_message(&e)
                        ),
                    )
                    .await;
                return Err(e.into());
            }
        }
    }
    let use_current = util::is_rolling_update(set) && ordinal < util::partition(set);
    let pod = if use_current {
        util::new_pod(
            set,
            &revisions.current_template,
            &revisions.current_name,
            ordinal,
        )
    } else {
        util::new_pod(
            set,
            &revisions.update_template,
            &revisions.update_name,
            ordinal,
        )
    };
    let pods_api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &ns);
    match pods_api.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            state
                .recorder
                .record(
                    set,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                )
                .await;
            Ok(Step::Stop)
        }
        // The cache has not seen the pod yet.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Step::Stop),
        Err(e) => {
            state
                .recorder
                .record(
                    set,
                    EventType::Warning,
                    "FailedCreate",
                    format!(
                        "create Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        api_message(&e)
                    ),
                )
                .await;
            Err(e.into())
        }
    }
}

async fn delete_pod(state: &State, set: &StatefulSet, pod: &Pod) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(
        state.ctx.client.clone(),
        &pod.namespace().unwrap_or_default(),
    );
    let pod_name = pod.name_any();
    let set_name = set.name_any();
    let precondition = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&pod_name, &precondition).await {
        Ok(_) => {
            state
                .recorder
                .record(
                    set,
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
                )
                .await;
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => {
            state
                .recorder
                .record(
                    set,
                    EventType::Warning,
                    "FailedDelete",
                    format!(
                        "delete Pod {pod_name} in StatefulSet {set_name} failed error: {}",
                        api_message(&e)
                    ),
                )
                .await;
            Err(e.into())
        }
    }
}

/// With `whenScaled: Delete`, a condemned pod becomes the owner of its claims so the garbage
/// collector removes them after it (upstream `updateClaimOwnerRefForSetAndPod`).
async fn own_claims_by_pod(state: &State, set: &StatefulSet, pod: &Pod) {
    let ns = set.namespace().unwrap_or_default();
    let Some(ordinal) = util::ordinal_of(&set.name_any(), &pod.name_any()) else {
        return;
    };
    let api: Api<PersistentVolumeClaim> = Api::namespaced(state.ctx.client.clone(), &ns);
    let pod_ref = OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        controller: None,
        block_owner_deletion: None,
    };
    for claim in util::claims_for(set, ordinal) {
        let name = claim.name_any();
        let Ok(existing) = api.get(&name).await else {
            continue;
        };
        let mut refs = existing
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default();
        let set_uid = set.uid().unwrap_or_default();
        if refs.iter().any(|r| r.uid == pod_ref.uid) && !refs.iter().any(|r| r.uid == set_uid) {
            continue;
        }
        // The pod must be the claim's only owner here: the garbage collector deletes a
        // dependent only once every owner is gone (upstream drops the set's reference too).
        refs.retain(|r| r.uid != set_uid && r.uid != pod_ref.uid);
        refs.push(pod_ref.clone());
        let patch = json!({"metadata": {"ownerReferences": refs}});
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::debug!(error = %e, claim = %name, "setting the pod as claim owner failed");
        }
    }
}

/// Writes status (upstream `computeReplicaStatus` + `completeRollingUpdate`).
async fn update_status(
    state: &State,
    set: &StatefulSet,
    owned: &[Pod],
    revisions: &Revisions,
) -> Result<()> {
    let counts = util::count_replicas(
        owned,
        &revisions.current_name,
        &revisions.update_name,
        util::min_ready_seconds(set),
        Timestamp::now(),
    );
    let mut current_revision = revisions.current_name.clone();
    let mut current_replicas = counts.current;
    if util::is_rolling_update(set)
        && counts.updated == counts.replicas
        && counts.ready == counts.replicas
        && counts.replicas == util::replicas(set)
    {
        current_revision = revisions.update_name.clone();
        current_replicas = counts.updated;
    }
    let desired = json!({
        "observedGeneration": set.meta().generation,
        "replicas": counts.replicas,
        "readyReplicas": counts.ready,
        "currentReplicas": current_replicas,
        "updatedReplicas": counts.updated,
        "availableReplicas": counts.available,
        "currentRevision": current_revision,
        "updateRevision": revisions.update_name,
        "collisionCount": revisions.collision_count,
    });
    let current = serde_json::to_value(&set.status).unwrap_or(Value::Null);
    let unchanged = desired.as_object().is_some_and(|m| {
        m.iter()
            .all(|(k, v)| normalized(&current[k]) == normalized(v))
    });
    if unchanged {
        return Ok(());
    }
    let api: Api<StatefulSet> = Api::namespaced(
        state.ctx.client.clone(),
        &set.namespace().unwrap_or_default(),
    );
    match api
        .patch_status(
            &set.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": desired})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Zero and absent are the same in status (Go omits zero counters).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Null => json!(0),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_data_round_trips_the_template() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}
        }))
        .unwrap();
        let data = revision_data(&template);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            metadata: ObjectMeta::default(),
            data: Some(RawExtension(data)),
            revision: 1,
        };
        assert_eq!(revision_template(&rev), Some(template));
    }
}
