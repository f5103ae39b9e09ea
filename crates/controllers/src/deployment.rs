//! Deployment controller (pkg/controller/deployment: deployment_controller.go, sync.go,
//! rolling.go, recreate.go, progress.go): owns ReplicaSets named `<deployment>-<template hash>`,
//! rolls them (RollingUpdate within maxSurge/maxUnavailable, or Recreate), keeps revisions and
//! `revisionHistoryLimit`, honours `paused`, and reports status with the Available and
//! Progressing conditions, including ProgressDeadlineExceeded.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::deployment_util::{self as util, POD_TEMPLATE_HASH, REVISION};
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType};
use crate::list_or_null;
use crate::replicaset::{api_message, controller_of, controller_ref};

const COMPONENT: &str = "deployment-controller";

struct State {
    ctx: Context,
    replica_sets: Store<ReplicaSet>,
    recorder: EventRecorder,
}

/// Runs the controller until its watches end.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let deployments = controller.store();
    let (replica_sets, writer) = reflector::store::<ReplicaSet>();
    let rs_events = reflector::reflector(
        writer,
        watcher(Api::<ReplicaSet>::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        replica_sets,
    });
    let stream = controller
        .watches_stream(rs_events, move |rs| deployments_for(&rs, &deployments))
        .run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

fn deployment_selector(d: &Deployment) -> Option<Selector> {
    let selector = d.spec.as_ref()?.selector.clone();
    if selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
    {
        return None;
    }
    Selector::try_from(selector).ok()
}

/// The Deployment a ReplicaSet event concerns: its controller, or for an orphan every
/// Deployment whose selector matches it.
fn deployments_for(rs: &ReplicaSet, deployments: &Store<Deployment>) -> Vec<ObjectRef<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    if let Some(owner) = controller_of(rs) {
        return if owner.kind == "Deployment" {
            vec![ObjectRef::new(&owner.name).within(&ns)]
        } else {
            Vec::new()
        };
    }
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(ns.as_str()))
        .filter(|d| deployment_selector(d).is_some_and(|s| s.matches(rs.labels())))
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

async fn reconcile(d: Arc<Deployment>, state: Arc<State>) -> Result<Action> {
    if tokio::time::timeout(
        Duration::from_secs(1),
        state.replica_sets.wait_until_ready(),
    )
    .await
    .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let mut sync = Sync::new(&state, (*d).clone());
    sync.claim_replica_sets().await?;
    if d.meta().deletion_timestamp.is_some() {
        sync.sync_status_only().await?;
        return Ok(Action::await_change());
    }
    sync.check_paused_condition().await?;
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused || sync.is_scaling_event() {
        sync.scale_only().await?;
        return Ok(Action::await_change());
    }
    let strategy = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.clone())
        .unwrap_or_default();
    if strategy == "Recreate" {
        sync.rollout_recreate().await
    } else {
        sync.rollout_rolling().await
    }
}

/// One sync of one Deployment.
struct Sync<'a> {
    state: &'a State,
    d: Deployment,
    rs_list: Vec<ReplicaSet>,
    ns: String,
}

impl<'a> Sync<'a> {
    fn new(state: &'a State, d: Deployment) -> Self {
        let ns = d.namespace().unwrap_or_default();
        Self {
            state,
            d,
            rs_list: Vec::new(),
            ns,
        }
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.state.ctx.client.clone(), &self.ns)
    }

    fn d_api(&self) -> Api<Deployment> {
        Api::namespaced(self.state.ctx.client.clone(), &self.ns)
    }

    /// Adopts matching orphan ReplicaSets and releases owned ones the selector no longer matches
    /// (upstream `getReplicaSetsForDeployment`).
    async fn claim_replica_sets(&mut self) -> Result<()> {
        let uid = self.d.uid().unwrap_or_default();
        let selector = deployment_selector(&self.d);
        let deleting = self.d.meta().deletion_timestamp.is_some();
        let mut owned = Vec::new();
        for rs in self.state.replica_sets.state() {
            if rs.namespace().as_deref() != Some(self.ns.as_str()) {
                continue;
            }
            let matches = selector.as_ref().is_some_and(|s| s.matches(rs.labels()));
            match controller_of(rs.as_ref()) {
                Some(r) if r.uid == uid => {
                    if matches || deleting {
                        owned.push((*rs).clone());
                    } else {
                        let refs: Vec<_> = rs
                            .metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .filter(|r| r.uid != uid)
                            .collect();
                        let patch = json!({"metadata": {"ownerReferences": list_or_null(&refs), "resourceVersion": rs.metadata.resource_version}});
                        ignore_gone(
                            self.rs_api()
                                .patch(
                                    &rs.name_any(),
                                    &PatchParams::default(),
                                    &Patch::Merge(&patch),
                                )
                                .await,
                        )?;
                    }
                }
                None if matches && !deleting && rs.metadata.deletion_timestamp.is_none() => {
                    let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(controller_ref(&self.d));
                    let patch = json!({"metadata": {"ownerReferences": list_or_null(&refs), "resourceVersion": rs.metadata.resource_version}});
                    if let Some(adopted) = ignore_gone(
                        self.rs_api()
                            .patch(
                                &rs.name_any(),
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await,
                    )? {
                        owned.push(adopted);
                    }
                }
                _ => {}
            }
        }
        owned.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| a.name_any().cmp(&b.name_any()))
        });
        self.rs_list = owned;
        Ok(())
    }

    fn template(&self) -> k8s_openapi::api::core::v1::PodTemplateSpec {
        self.d
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default()
    }

    /// The ReplicaSet whose template equals the Deployment's (oldest first), and the others.
    fn split(&self) -> (Option<ReplicaSet>, Vec<ReplicaSet>) {
        let template = self.template();
        let new = self
            .rs_list
            .iter()
            .find(|rs| {
                rs.spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &template))
            })
            .cloned();
        let new_name = new.as_ref().map(ResourceExt::name_any);
        let old = self
            .rs_list
            .iter()
            .filter(|rs| Some(rs.name_any()) != new_name)
            .cloned()
            .collect();
        (new, old)
    }

    /// A scaling event: some active ReplicaSet's desired-replicas annotation differs from
    /// `spec.replicas` (upstream `isScalingEvent`).
    fn is_scaling_event(&self) -> bool {
        let (new, old) = self.split();
        let desired = util::replicas(&self.d).to_string();
        new.iter()
            .chain(old.iter())
            .filter(|rs| util::rs_replicas(rs) > 0)
            .any(|rs| {
                rs.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(util::DESIRED_REPLICAS))
                    .is_some_and(|v| *v != desired)
            })
    }

    /// Finds or creates the new ReplicaSet and brings the revisions in order (upstream
    /// `getAllReplicaSetsAndSyncRevision`).
    async fn new_and_old(&mut self, create: bool) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>)> {
        let (existing, old) = self.split();
        let new_revision = old.iter().map(util::revision).max().unwrap_or(0) + 1;
        if let Some(mut rs) = existing {
            let before = rs.clone();
            let annotations_changed =
                util::set_new_rs_annotations(&self.d, &mut rs, new_revision, true);
            let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let min_ready_changed = rs.spec.as_ref().and_then(|s| s.min_ready_seconds) != min_ready;
            if annotations_changed || min_ready_changed {
                let patch = json!({"metadata": {"annotations": rs.metadata.annotations, "resourceVersion": before.metadata.resource_version},
                    "spec": {"minReadySeconds": min_ready}});
                rs = self
                    .rs_api()
                    .patch(
                        &rs.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await?;
            }
            let revision = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            self.set_deployment_revision(&revision).await?;
            if self.progress_condition().is_none() && self.has_progress_deadline() {
                let message = format!("Found new replica set \"{}\"", rs.name_any());
                let mut status = self.current_status();
                set_condition(
                    &mut status,
                    condition("Progressing", "True", "FoundNewReplicaSet", &message),
                );
                self.write_status(status).await?;
            }
            self.replace_in_list(&rs);
            return Ok((Some(rs), old));
        }
        if !create {
            return Ok((None, old));
        }
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = util::compute_hash(&self.template(), collision_count);
        let mut template = self.template();
        template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{}", self.d.name_any(), hash);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.ns.clone()),
                labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
                owner_references: Some(vec![controller_ref(&self.d)]),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: self.d.spec.as_ref().and_then(|s| s.min_ready_seconds),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&rs)).collect();
        let replicas = util::new_rs_new_replicas(&self.d, &all, 0);
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&self.d, &mut rs, new_revision, false);
        let created = match self.rs_api().create(&PostParams::default(), &rs).await {
            Ok(created) => {
                if replicas > 0 {
                    let message = format!("Scaled up replica set {name} from 0 to {replicas}");
                    self.state
                        .recorder
                        .record(&self.d, EventType::Normal, "ScalingReplicaSet", message)
                        .await;
                }
                if self.has_progress_deadline() {
                    let mut status = self.current_status();
                    let message = format!("Created new replica set \"{name}\"");
                    set_condition(
                        &mut status,
                        condition("Progressing", "True", "NewReplicaSetCreated", &message),
                    );
                    self.write_status(status).await?;
                }
                created
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let existing = self.rs_api().get(&name).await?;
                let same_owner = controller_of(&existing)
                    .is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref());
                let same_template = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &self.template()));
                if same_owner && same_template {
                    existing
                } else {
                    // A hash collision: bump collisionCount so the next sync hashes differently.
                    let mut status = self.current_status();
                    status["collisionCount"] = json!(collision_count.unwrap_or(0) + 1);
                    self.write_status(status).await?;
                    return Err(Error::Invalid(format!(
                        "replica set {name} already exists with another template; collisionCount raised"
                    )));
                }
            }
            Err(e) => {
                let message = format!(
                    "Failed to create new replica set \"{name}\": {}",
                    api_message(&e)
                );
                self.state
                    .recorder
                    .record(&self.d, EventType::Warning, "FailedCreate", message.clone())
                    .await;
                let mut status = self.current_status();
                set_condition(
                    &mut status,
                    condition("ReplicaFailure", "True", "FailedCreate", &message),
                );
                self.write_status(status).await?;
                return Err(e.into());
            }
        };
        self.set_deployment_revision(&new_revision.to_string())
            .await?;
        self.rs_list.push(created.clone());
        Ok((Some(created), old))
    }

    fn replace_in_list(&mut self, rs: &ReplicaSet) {
        for slot in &mut self.rs_list {
            if slot.metadata.uid == rs.metadata.uid {
                *slot = rs.clone();
            }
        }
    }

    async fn set_deployment_revision(&mut self, revision: &str) -> Result<()> {
        if revision.is_empty()
            || self
                .d
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .map(String::as_str)
                == Some(revision)
        {
            return Ok(());
        }
        // Through /status as upstream (UpdateStatus): the status strategy keeps annotations but
        // does not bump metadata.generation the way a spec-side annotation change does.
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        self.d = self
            .d_api()
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    fn has_progress_deadline(&self) -> bool {
        self.d
            .spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .is_some_and(|s| s != i32::MAX)
    }

    fn current_status(&self) -> Value {
        serde_json::to_value(&self.d.status)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}))
    }

    fn progress_condition(&self) -> Option<Value> {
        find_condition(&self.current_status(), "Progressing")
    }

    async fn write_status(&mut self, status: Value) -> Result<()> {
        if status == self.current_status() {
            return Ok(());
        }
        let patch = json!({"status": status, "metadata": {"resourceVersion": self.d.metadata.resource_version}});
        self.d = self
            .d_api()
            .patch_status(
                &self.d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        Ok(())
    }

    /// Sets `spec.replicas` of a ReplicaSet and records ScalingReplicaSet (upstream
    /// `scaleReplicaSetAndRecordEvent`); true when it scaled.
    async fn scale(&mut self, rs: &ReplicaSet, to: i32) -> Result<bool> {
        let from = util::rs_replicas(rs);
        let desired = util::replicas(&self.d);
        let mut annotated = rs.clone();
        let annotations_changed = util::set_replicas_annotations(
            &mut annotated,
            desired,
            desired + util::max_surge(&self.d),
        );
        if from == to && !annotations_changed {
            return Ok(false);
        }
        let patch = json!({"metadata": {"annotations": annotated.metadata.annotations, "resourceVersion": rs.metadata.resource_version},
            "spec": {"replicas": to}});
        let updated = self
            .rs_api()
            .patch(
                &rs.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        self.replace_in_list(&updated);
        if from != to {
            let direction = if from < to { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {from} to {to}",
                rs.name_any()
            );
            self.state
                .recorder
                .record(&self.d, EventType::Normal, "ScalingReplicaSet", message)
                .await;
        }
        Ok(from != to)
    }

    async fn rollout_rolling(&mut self) -> Result<Action> {
        let (new, old) = self.new_and_old(true).await?;
        let Some(new) = new else {
            return Ok(Action::await_change());
        };
        // Scale up the new ReplicaSet within maxSurge.
        let desired = util::replicas(&self.d);
        let new_replicas = util::rs_replicas(&new);
        if new_replicas != desired {
            let to = if new_replicas > desired {
                desired
            } else {
                let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
                util::new_rs_new_replicas(&self.d, &all, new_replicas)
            };
            if self.scale(&new, to).await? {
                return self.sync_rollout_status().await;
            }
        }
        // Scale down old ReplicaSets within maxUnavailable.
        if self.reconcile_old(&new).await? {
            return self.sync_rollout_status().await;
        }
        if self.complete() {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// Upstream `reconcileOldReplicaSets`: first drop unhealthy old replicas, then healthy ones
    /// while enough stay available. True when something was scaled.
    async fn reconcile_old(&mut self, new: &ReplicaSet) -> Result<bool> {
        let new_name = new.name_any();
        let new = self
            .rs_list
            .iter()
            .find(|rs| rs.name_any() == new_name)
            .cloned()
            .unwrap_or_else(|| new.clone());
        let old: Vec<ReplicaSet> = self
            .rs_list
            .iter()
            .filter(|rs| rs.name_any() != new_name)
            .cloned()
            .collect();
        if old.iter().map(util::rs_replicas).sum::<i32>() == 0 {
            return Ok(false);
        }
        let all: Vec<&ReplicaSet> = self.rs_list.iter().collect();
        let max_scaled_down = util::max_scaled_down(&self.d, &all, Some(&new));
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        let mut scaled = 0;
        let mut by_age = old.clone();
        by_age.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        for rs in &by_age {
            if scaled >= max_scaled_down {
                break;
            }
            let replicas = util::rs_replicas(rs);
            let unhealthy = replicas - util::rs_available(rs);
            if replicas == 0 || unhealthy <= 0 {
                continue;
            }
            let down = unhealthy.min(max_scaled_down - scaled);
            self.scale(rs, replicas - down).await?;
            scaled += down;
        }
        let min_available = util::replicas(&self.d) - util::max_unavailable(&self.d);
        let available: i32 = self.rs_list.iter().map(util::rs_available).sum();
        if available > min_available {
            let budget = available - min_available;
            let mut taken = 0;
            let current_old: Vec<ReplicaSet> = by_age
                .iter()
                .filter_map(|o| {
                    self.rs_list
                        .iter()
                        .find(|r| r.metadata.uid == o.metadata.uid)
                        .cloned()
                })
                .collect();
            for rs in current_old {
                if taken >= budget {
                    break;
                }
                let replicas = util::rs_replicas(&rs);
                if replicas == 0 {
                    continue;
                }
                let down = replicas.min(budget - taken);
                self.scale(&rs, replicas - down).await?;
                taken += down;
            }
            scaled += taken;
        }
        Ok(scaled > 0)
    }

    async fn rollout_recreate(&mut self) -> Result<Action> {
        let (new, old) = self.new_and_old(false).await?;
        let mut scaled_down = false;
        for rs in old.iter().filter(|rs| util::rs_replicas(rs) > 0) {
            scaled_down |= self.scale(rs, 0).await?;
        }
        if scaled_down {
            return self.sync_rollout_status().await;
        }
        // Wait until no old pods exist any more (upstream `oldPodsRunning`).
        let old_running = self
            .rs_list
            .iter()
            .filter(|rs| Some(rs.name_any()) != new.as_ref().map(ResourceExt::name_any))
            .any(|rs| rs.status.as_ref().is_some_and(|s| s.replicas > 0));
        if old_running {
            return self.sync_rollout_status().await;
        }
        let new = match new {
            Some(n) => n,
            None => match self.new_and_old(true).await?.0 {
                Some(n) => n,
                None => return Ok(Action::await_change()),
            },
        };
        let desired = util::replicas(&self.d);
        let current = self
            .rs_list
            .iter()
            .find(|rs| rs.metadata.uid == new.metadata.uid)
            .cloned()
            .unwrap_or(new);
        self.scale(&current, desired).await?;
        if self.complete() {
            self.cleanup().await?;
        }
        self.sync_rollout_status().await
    }

    /// Paused or scaling: resize without rolling (upstream `sync` + `scale`, proportionally
    /// across active ReplicaSets within replicas + maxSurge).
    async fn scale_only(&mut self) -> Result<()> {
        let (new, _) = self.new_and_old(false).await?;
        let desired = util::replicas(&self.d);
        let active: Vec<ReplicaSet> = self
            .rs_list
            .iter()
            .filter(|rs| util::rs_replicas(rs) > 0)
            .cloned()
            .collect();
        if active.len() <= 1 {
            let target = active.first().cloned().or_else(|| new.clone()).or_else(|| {
                self.rs_list
                    .iter()
                    .max_by_key(|rs| util::revision(rs))
                    .cloned()
            });
            if let Some(rs) = target {
                self.scale(&rs, desired).await?;
            }
        } else if new.as_ref().is_some_and(|n| {
            util::rs_replicas(n) == desired
                && n.status
                    .as_ref()
                    .is_some_and(|s| s.available_replicas.unwrap_or(0) == desired)
        }) {
            for rs in active
                .iter()
                .filter(|rs| Some(&rs.metadata.uid) != new.as_ref().map(|n| &n.metadata.uid))
            {
                self.scale(rs, 0).await?;
            }
        } else {
            let allowed = desired + util::max_surge(&self.d);
            let current: i32 = active.iter().map(util::rs_replicas).sum();
            let to_add = allowed - current;
            if to_add != 0 && current > 0 {
                let mut sorted = active.clone();
                // Larger sets first (newer first on ties) get the rounding leftovers.
                sorted.sort_by(|a, b| {
                    util::rs_replicas(b)
                        .cmp(&util::rs_replicas(a))
                        .then_with(|| {
                            b.metadata
                                .creation_timestamp
                                .cmp(&a.metadata.creation_timestamp)
                        })
                });
                let mut added = 0;
                let mut targets = Vec::new();
                for rs in &sorted {
                    let share = util::rs_replicas(rs) * to_add / current;
                    targets.push(util::rs_replicas(rs) + share);
                    added += share;
                }
                if let Some(first) = targets.first_mut() {
                    *first = (*first + to_add - added).max(0);
                }
                for (rs, to) in sorted.iter().zip(targets) {
                    self.scale(rs, to.max(0)).await?;
                }
            }
        }
        if self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup().await?;
        }
        let (new, _) = self.split();
        let status = self.calculate_status(new.as_ref());
        self.write_status(status).await
    }

    async fn sync_status_only(&mut self) -> Result<()> {
        let (new, _) = self.split();
        let status = self.calculate_status(new.as_ref());
        self.write_status(status).await
    }

    /// Progressing Unknown with DeploymentPaused / DeploymentResumed (upstream
    /// `checkPausedConditions`).
    async fn check_paused_condition(&mut self) -> Result<()> {
        if !self.has_progress_deadline() {
            return Ok(());
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let reason = self
            .progress_condition()
            .and_then(|c| c["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        let new = if paused && reason != "DeploymentPaused" {
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
            )
        } else if !paused && reason == "DeploymentPaused" {
            condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
            )
        } else {
            return Ok(());
        };
        let mut status = self.current_status();
        set_condition(&mut status, new);
        self.write_status(status).await
    }

    fn complete(&self) -> bool {
        let (new, _) = self.split();
        let status = self.calculate_status(new.as_ref());
        complete(&self.d, &status)
    }

    /// Deletes the oldest fully scaled-down ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(&mut self) -> Result<()> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let (new, _) = self.split();
        let mut cleanable: Vec<ReplicaSet> = self
            .rs_list
            .iter()
            .filter(|rs| {
                Some(&rs.metadata.uid) != new.as_ref().map(|n| &n.metadata.uid)
                    && rs.metadata.deletion_timestamp.is_none()
            })
            .cloned()
            .collect();
        let surplus = cleanable.len() as i64 - i64::from(limit);
        if surplus <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| {
            util::revision(a).cmp(&util::revision(b)).then_with(|| {
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
            })
        });
        for rs in cleanable.iter().take(usize::try_from(surplus).unwrap_or(0)) {
            let status_replicas = rs.status.as_ref().map_or(0, |s| s.replicas);
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            if status_replicas != 0
                || util::rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            ignore_gone(
                self.rs_api()
                    .delete(&rs.name_any(), &DeleteParams::default())
                    .await
                    .map(|_| ()),
            )?;
        }
        Ok(())
    }

    /// Upstream `calculateStatus`: counts from the ReplicaSets plus the Available condition.
    fn calculate_status(&self, new: Option<&ReplicaSet>) -> Value {
        let sum = |f: &dyn Fn(&ReplicaSet) -> i32| -> i32 { self.rs_list.iter().map(f).sum() };
        let available = sum(&util::rs_available);
        let total_spec = sum(&util::rs_replicas);
        let status_replicas = |rs: &ReplicaSet| rs.status.as_ref().map_or(0, |s| s.replicas);
        let new_uid = new.and_then(|n| n.metadata.uid.clone());
        let updated = self
            .rs_list
            .iter()
            .filter(|rs| rs.metadata.uid == new_uid && new_uid.is_some())
            .map(status_replicas)
            .sum::<i32>();
        let mut status = self.current_status();
        status["observedGeneration"] = json!(self.d.metadata.generation.unwrap_or(0));
        status["replicas"] = json!(sum(&status_replicas));
        status["updatedReplicas"] = json!(updated);
        status["readyReplicas"] = json!(sum(&|rs| rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)));
        status["availableReplicas"] = json!(available);
        status["unavailableReplicas"] = json!((total_spec - available).max(0));
        let available_condition =
            if available >= util::replicas(&self.d) - util::max_unavailable(&self.d) {
                condition(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                )
            } else {
                condition(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            };
        set_condition(&mut status, available_condition);
        status
    }

    /// Upstream `syncRolloutStatus`: status plus the Progressing condition and its deadline.
    async fn sync_rollout_status(&mut self) -> Result<Action> {
        let (new, _) = self.split();
        let mut status = self.calculate_status(new.as_ref());
        let old_status = self.current_status();
        let current = find_condition(&status, "Progressing");
        let rs_text = new
            .as_ref()
            .map(|n| format!("ReplicaSet \"{}\"", n.name_any()));
        let is_complete = status["replicas"] == status["updatedReplicas"]
            && current
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let mut requeue = None;
        if self.has_progress_deadline() && !is_complete {
            if complete(&self.d, &status) {
                let message = rs_text
                    .map_or("Deployment has successfully progressed.".to_string(), |r| {
                        format!("{r} has successfully progressed.")
                    });
                set_condition(
                    &mut status,
                    condition("Progressing", "True", "NewReplicaSetAvailable", &message),
                );
            } else if progressing(&old_status, &status) {
                let message = rs_text.map_or("Deployment is progressing.".to_string(), |r| {
                    format!("{r} is progressing.")
                });
                let mut c = condition("Progressing", "True", "ReplicaSetUpdated", &message);
                if let Some(cur) = current.as_ref().filter(|cur| cur["status"] == "True") {
                    c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                remove_condition(&mut status, "Progressing");
                set_condition(&mut status, c);
            } else if let Some(left) = self.deadline_left(current.as_ref()) {
                if left <= 0 {
                    let message = match &new {
                        Some(n) => {
                            format!("ReplicaSet \"{}\" has timed out progressing.", n.name_any())
                        }
                        None => format!(
                            "Deployment \"{}\" has timed out progressing.",
                            self.d.name_any()
                        ),
                    };
                    set_condition(
                        &mut status,
                        condition("Progressing", "False", "ProgressDeadlineExceeded", &message),
                    );
                } else {
                    requeue = Some(Duration::from_secs(left.unsigned_abs() + 1));
                }
            }
        }
        let failure = self
            .rs_list
            .iter()
            .filter_map(|rs| {
                rs.status
                    .as_ref()?
                    .conditions
                    .as_ref()?
                    .iter()
                    .find(|c| c.type_ == "ReplicaFailure")
                    .cloned()
            })
            .next();
        match failure {
            Some(f) => set_condition(
                &mut status,
                condition(
                    "ReplicaFailure",
                    &f.status,
                    f.reason.as_deref().unwrap_or(""),
                    f.message.as_deref().unwrap_or(""),
                ),
            ),
            None => remove_condition(&mut status, "ReplicaFailure"),
        }
        self.write_status(status).await?;
        Ok(requeue.map_or_else(Action::await_change, Action::requeue))
    }

    /// Seconds until the Progressing condition's deadline; `None` when there is no deadline to
    /// watch (complete, already timed out, or no condition).
    fn deadline_left(&self, current: Option<&Value>) -> Option<i64> {
        let c = current?;
        if c["reason"] == "NewReplicaSetAvailable" || c["reason"] == "ProgressDeadlineExceeded" {
            return None;
        }
        let updated: Timestamp = c["lastUpdateTime"].as_str()?.parse().ok()?;
        let deadline = i64::from(self.d.spec.as_ref()?.progress_deadline_seconds?);
        Some(updated.as_second() + deadline - Timestamp::now().as_second())
    }
}

/// `DeploymentComplete`: every replica updated and available, and the spec observed.
fn complete(d: &Deployment, status: &Value) -> bool {
    let desired = i64::from(util::replicas(d));
    status["updatedReplicas"].as_i64() == Some(desired)
        && status["replicas"].as_i64() == Some(desired)
        && status["availableReplicas"].as_i64() == Some(desired)
        && status["observedGeneration"].as_i64().unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// `DeploymentProgressing`: more updated, ready or available replicas, or fewer old ones.
fn progressing(old: &Value, new: &Value) -> bool {
    let n = |v: &Value, f: &str| v[f].as_i64().unwrap_or(0);
    let old_old = n(old, "replicas") - n(old, "updatedReplicas");
    let new_old = n(new, "replicas") - n(new, "updatedReplicas");
    n(new, "updatedReplicas") > n(old, "updatedReplicas")
        || new_old < old_old
        || n(new, "readyReplicas") > n(old, "readyReplicas")
        || n(new, "availableReplicas") > n(old, "availableReplicas")
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = crate::now_rfc3339();
    json!({"type": type_, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

fn find_condition(status: &Value, type_: &str) -> Option<Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .cloned()
}

fn remove_condition(status: &mut Value, type_: &str) {
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        list.retain(|c| c["type"] != type_);
    }
}

/// Upstream `SetDeploymentCondition`: no change when status and reason are the same; the
/// transition time is kept while the status stays.
fn set_condition(status: &mut Value, mut new: Value) {
    let type_ = new["type"].clone();
    if let Some(current) = find_condition(status, type_.as_str().unwrap_or("")) {
        if current["status"] == new["status"] && current["reason"] == new["reason"] {
            return;
        }
        if current["status"] == new["status"] {
            new["lastTransitionTime"] = current["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, type_.as_str().unwrap_or(""));
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.push(new);
    }
}

fn ignore_gone<T>(r: std::result::Result<T, kube::Error>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}
