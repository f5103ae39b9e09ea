//! The DaemonSet controller (pkg/controller/daemon): one pod on every node the template fits
//! (nodeSelector, required node affinity, taints against the pod's and the default DaemonSet
//! tolerations), pinned to its node by `metadata.name` node affinity and bound by the scheduler;
//! new nodes get a pod, pods leave nodes that stop fitting, failed pods are replaced, and a
//! RollingUpdate replaces old-template pods at most `maxUnavailable` at a time, or with
//! `maxSurge` starts the updated pod next to the old one before deleting it.
//!
//! Every template the set has had is kept as a ControllerRevision `<ds>-<hash>` (upstream
//! `pkg/controller/daemon/update.go`), which is what `kubectl rollout history|undo` reads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::daemonset_util as util;
use crate::deployment_util::{compute_hash, scaled_value};
use crate::error::Result;
use crate::events::{EventRecorder, EventType};
use crate::expectations::Expectations;
use crate::pod_util;
use crate::replicaset::{api_message, controller_of, controller_ref};
use crate::statefulset::revision_data;
use crate::statefulset_util::REVISION_LABEL;

const COMPONENT: &str = "daemonset-controller";

struct State {
    ctx: Context,
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    recorder: EventRecorder,
    expectations: Expectations,
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
    let (nodes, node_writer) = reflector::store::<Node>();
    let node_events = reflector::reflector(
        node_writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
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
    let controller = Controller::new(Api::<DaemonSet>::all(client), watcher::Config::default());
    let sets = controller.store();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        pods,
        nodes,
        revisions,
        expectations: Expectations::default(),
    });
    let stream = controller
        .watches_stream(pod_events, |pod| {
            let owner = controller_of(&pod).filter(|o| o.kind == "DaemonSet")?;
            Some(ObjectRef::new(&owner.name).within(&pod.namespace().unwrap_or_default()))
        })
        .watches_stream(revision_events, |rev| {
            let owner = controller_of(&rev).filter(|o| o.kind == "DaemonSet")?;
            Some(ObjectRef::new(&owner.name).within(&rev.namespace().unwrap_or_default()))
        })
        // A node change can matter to every DaemonSet.
        .watches_stream(node_events, move |_node| {
            sets.state()
                .iter()
                .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

async fn reconcile(ds: Arc<DaemonSet>, state: Arc<State>) -> Result<Action> {
    let ready = async {
        state.pods.wait_until_ready().await?;
        state.nodes.wait_until_ready().await?;
        state.revisions.wait_until_ready().await
    };
    if tokio::time::timeout(Duration::from_secs(1), ready)
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if ds.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = ds.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", ds.name_any());
    let uid = ds.uid().unwrap_or_default();
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    let (hash, collision_count) = sync_history(&state, &ds).await?;

    let owned: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| controller_of(p.as_ref()).is_some_and(|r| r.uid == uid))
        .map(|p| (**p).clone())
        .collect();
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in &owned {
        if let Some(node) = util::pod_node(pod) {
            by_node.entry(node).or_default().push(pod);
        }
    }
    let nodes = state.nodes.state();
    let now = Timestamp::now();
    let min_ready = min_ready_seconds(&ds);

    let mut to_create: Vec<String> = Vec::new();
    let mut to_delete: Vec<&Pod> = Vec::new();
    // (node, pod) for nodes that should run the daemon and have a live pod.
    let mut placed: Vec<(String, &Pod)> = Vec::new();
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        != Some("OnDelete");
    let rolling_update = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref());
    let max_surge_setting = rolling_update.and_then(|r| r.max_surge.as_ref());
    // Upstream `AllowsSurge`: a non-zero maxSurge switches the rollout to surge mode.
    let surging = rolling && scaled_value(max_surge_setting, 100, true) > 0;
    let is_updated = |p: &Pod| p.labels().get(REVISION_LABEL) == Some(&hash);
    // (node, oldest old pod, oldest updated pod) per node with live pods, in surge mode.
    let mut surge_nodes: Vec<(String, Option<&Pod>, Option<&Pod>)> = Vec::new();
    for node in nodes.iter() {
        let name = node.name_any();
        let pods = by_node.remove(&name).unwrap_or_default();
        let live: Vec<&Pod> = pods
            .iter()
            .copied()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if !util::should_run(&pod_spec, node) {
            to_delete.extend(live);
            continue;
        }
        let (failed, mut running): (Vec<&Pod>, Vec<&Pod>) = live
            .into_iter()
            .partition(|p| pod_util::phase(p) == "Failed");
        if !failed.is_empty() {
            state
                .recorder
                .record(
                    ds.as_ref(),
                    EventType::Warning,
                    "FailedDaemonPod",
                    format!(
                        "Found failed daemon pod {ns}/{} on node {name}, will try to kill it",
                        failed[0].name_any()
                    ),
                )
                .await;
            to_delete.extend(failed);
        }
        running.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        let Some((&oldest, rest)) = running.split_first() else {
            let terminating = pods.iter().any(|p| p.metadata.deletion_timestamp.is_some());
            if !terminating {
                to_create.push(name);
            }
            continue;
        };
        placed.push((name.clone(), oldest));
        if surging {
            // During a surge a node may hold its oldest old pod and its oldest updated pod.
            let (new, old): (Vec<&Pod>, Vec<&Pod>) =
                running.iter().copied().partition(|p| is_updated(p));
            let old_pod = old.first().copied();
            let new_pod = new.first().copied();
            to_delete.extend(old.iter().skip(1));
            to_delete.extend(new.iter().skip(1));
            surge_nodes.push((name, old_pod, new_pod));
        } else {
            to_delete.extend(rest);
        }
    }
    // Pods pinned to nodes that no longer exist.
    for pods in by_node.values() {
        to_delete.extend(
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none()),
        );
    }

    // Rolling update: replace old-template pods within the unavailability budget.
    let desired = i32::try_from(placed.len() + to_create.len()).unwrap_or(i32::MAX);
    if surging {
        // Upstream `rollingUpdate` with surge: an updated pod is started next to the old one
        // (at most maxSurge nodes at a time), and the old pod goes once the new one is available.
        let max_surge = scaled_value(max_surge_setting, desired, true);
        let mut surged = 0;
        let mut candidates: Vec<String> = Vec::new();
        for (node, old_pod, new_pod) in &surge_nodes {
            match (old_pod, new_pod) {
                (None, _) => {}
                (Some(old_pod), None) => {
                    if !pod_util::is_available(old_pod, min_ready, now) {
                        // An unavailable old pod may be replaced outside the surge budget.
                        to_create.push(node.clone());
                    } else {
                        candidates.push(node.clone());
                    }
                }
                (Some(old_pod), Some(new_pod)) => {
                    if pod_util::is_available(new_pod, min_ready, now) {
                        to_delete.push(old_pod);
                    } else {
                        surged += 1;
                    }
                }
            }
        }
        let room = usize::try_from((max_surge - surged).max(0)).unwrap_or(0);
        to_create.extend(candidates.into_iter().take(room));
    } else if rolling {
        let max_unavailable = rolling_update
            .and_then(|r| r.max_unavailable.as_ref())
            .map_or(1, |v| scaled_value(Some(v), desired, true))
            .max(1);
        let unavailable = i32::try_from(
            placed
                .iter()
                .filter(|(_, p)| !pod_util::is_available(p, min_ready, now))
                .count()
                + to_create.len(),
        )
        .unwrap_or(i32::MAX);
        let mut budget = max_unavailable - unavailable;
        // Old pods that are not available cost nothing to replace.
        for (_, pod) in placed.iter().filter(|(_, p)| !is_updated(p)) {
            if !pod_util::is_available(pod, min_ready, now) {
                to_delete.push(pod);
            } else if budget > 0 {
                budget -= 1;
                to_delete.push(pod);
            }
        }
    }

    let ns_pods: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &ns);
    let seen = |name: &str| {
        state
            .pods
            .get(&ObjectRef::new(name).within(&ns))
            .is_some_and(|p| p.metadata.deletion_timestamp.is_none())
    };
    if state.expectations.satisfied(&key, seen) {
        let mut created = Vec::new();
        for node in &to_create {
            let Some(pod) = util::new_pod(&ds, &hash, node) else {
                continue;
            };
            match ns_pods.create(&PostParams::default(), &pod).await {
                Ok(p) => {
                    let name = p.name_any();
                    state
                        .recorder
                        .record(
                            ds.as_ref(),
                            EventType::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {name}"),
                        )
                        .await;
                    created.push(name);
                }
                Err(e) => {
                    state
                        .recorder
                        .record(
                            ds.as_ref(),
                            EventType::Warning,
                            "FailedCreate",
                            format!("Error creating: {}", api_message(&e)),
                        )
                        .await;
                }
            }
        }
        let deleted: Vec<String> = to_delete.iter().map(|p| p.name_any()).collect();
        state.expectations.expect(&key, created, deleted.clone());
        for name in deleted {
            match ns_pods.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    state
                        .recorder
                        .record(
                            ds.as_ref(),
                            EventType::Normal,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        )
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    state
                        .recorder
                        .record(
                            ds.as_ref(),
                            EventType::Warning,
                            "FailedDelete",
                            format!("Error deleting: {}", api_message(&e)),
                        )
                        .await;
                }
            }
        }
    }

    update_status(
        &state,
        &ds,
        &placed,
        desired,
        &hash,
        collision_count,
        &owned,
        &pod_spec,
        now,
    )
    .await?;
    cleanup_history(&state, &ds, &hash).await;
    // Every live pod counts: a surge pod becoming available lets its old pod go.
    let wait = owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| pod_util::seconds_until_available(p, min_ready, now))
        .min();
    Ok(match wait {
        Some(secs) => Action::requeue(Duration::from_secs(secs.unsigned_abs() + 1)),
        None => Action::await_change(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn update_status(
    state: &State,
    ds: &DaemonSet,
    placed: &[(String, &Pod)],
    desired: i32,
    hash: &str,
    collision_count: i32,
    owned: &[Pod],
    pod_spec: &k8s_openapi::api::core::v1::PodSpec,
    now: Timestamp,
) -> Result<()> {
    let min_ready = min_ready_seconds(ds);
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(placed.iter().filter(|(_, p)| f(p)).count()).unwrap_or(i32::MAX)
    };
    let nodes = state.nodes.state();
    let misscheduled = owned
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(util::pod_node)
        .filter(|n| {
            nodes
                .iter()
                .find(|node| node.name_any() == *n)
                .is_none_or(|node| !util::should_run(pod_spec, node))
        })
        .count();
    let available = count(&|p| pod_util::is_available(p, min_ready, now));
    let status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": placed.len(),
        "numberMisscheduled": misscheduled,
        "numberReady": count(&|p| pod_util::is_ready(p)),
        "updatedNumberScheduled": count(&|p| p.labels().get(REVISION_LABEL).map(String::as_str) == Some(hash)),
        "numberAvailable": available,
        "numberUnavailable": desired - available,
        "observedGeneration": ds.meta().generation,
    });
    let mut status = status;
    if collision_count > 0 {
        status["collisionCount"] = json!(collision_count);
    }
    let current = serde_json::to_value(&ds.status).unwrap_or(Value::Null);
    let unchanged = status.as_object().is_some_and(|m| {
        m.iter()
            .all(|(k, v)| current[k].as_i64().unwrap_or(0) == v.as_i64().unwrap_or(0))
    });
    if unchanged {
        return Ok(());
    }
    let api: Api<DaemonSet> = Api::namespaced(
        state.ctx.client.clone(),
        &ds.namespace().unwrap_or_default(),
    );
    match api
        .patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The revision-hash label of a pod or ControllerRevision.
fn hash_label<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta()
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

fn owned_revisions(state: &State, ds: &DaemonSet) -> Vec<ControllerRevision> {
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let mut owned: Vec<ControllerRevision> = state
        .revisions
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
        .filter(|r| controller_of(r.as_ref()).is_some_and(|o| o.uid == uid))
        .map(|r| (**r).clone())
        .collect();
    owned.sort_by_key(|r| r.revision);
    owned
}

/// Finds or creates the ControllerRevision of the current template and makes it the newest
/// (upstream `constructHistory`): an undo brings an older revision back under a new number.
/// Returns the hash pods of the current template carry, and the collision count.
async fn sync_history(state: &State, ds: &DaemonSet) -> Result<(String, i32)> {
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(state.ctx.client.clone(), &ns);
    let owned = owned_revisions(state, ds);
    let template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let data = revision_data(&template);
    let max_revision = owned.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut collision_count = ds
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let annotations = ds.metadata.annotations.clone();

    let equal = owned
        .iter()
        .rev()
        .find(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
        .cloned();
    let current = match equal {
        Some(rev) => {
            // Newest revision number, and the set's annotations (kubectl's change-cause), as
            // upstream keeps them on the current history.
            let mut patch = json!({});
            if rev.revision != max_revision {
                patch["revision"] = json!(max_revision + 1);
            }
            if rev.metadata.annotations != annotations {
                patch["metadata"] = json!({"annotations": annotations.clone().unwrap_or_default()});
            }
            if patch.as_object().is_some_and(|m| m.is_empty()) {
                rev
            } else {
                api.patch(
                    &rev.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?
            }
        }
        None => loop {
            let hash = compute_hash(&template, Some(collision_count).filter(|c| *c > 0));
            let name = format!("{}-{hash}", ds.name_any());
            let mut labels: BTreeMap<String, String> = template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            labels.insert(REVISION_LABEL.into(), hash.clone());
            let revision = ControllerRevision {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: annotations.clone(),
                    owner_references: Some(vec![controller_ref(ds)]),
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
                        && controller_of(&existing).is_some_and(|o| o.uid == uid)
                    {
                        break existing;
                    }
                    // A foreign revision holds the name: hash again with a new collision count.
                    collision_count += 1;
                }
                Err(e) => return Err(e.into()),
            }
        },
    };
    let hash = hash_label(&current)
        .map(str::to_string)
        .unwrap_or_else(|| compute_hash(&template, Some(collision_count).filter(|c| *c > 0)));
    Ok((hash, collision_count))
}

/// Deletes the oldest revisions no live pod uses beyond `revisionHistoryLimit` (default 10),
/// as upstream `cleanupHistory`.
async fn cleanup_history(state: &State, ds: &DaemonSet, current_hash: &str) {
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let ns = ds.namespace().unwrap_or_default();
    let uid = ds.uid().unwrap_or_default();
    let in_use: Vec<String> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| controller_of(p.as_ref()).is_some_and(|r| r.uid == uid))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| hash_label(p.as_ref()).map(str::to_string))
        .collect();
    let owned = owned_revisions(state, ds);
    let history: Vec<&ControllerRevision> = owned
        .iter()
        .filter(|r| {
            hash_label(*r).is_none_or(|h| h != current_hash && !in_use.iter().any(|u| u == h))
        })
        .collect();
    let excess = history
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    let api: Api<ControllerRevision> = Api::namespaced(state.ctx.client.clone(), &ns);
    for rev in history.into_iter().take(excess) {
        match api.delete(&rev.name_any(), &DeleteParams::default()).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => tracing::debug!(error = %e, "deleting an old ControllerRevision failed"),
        }
    }
}
