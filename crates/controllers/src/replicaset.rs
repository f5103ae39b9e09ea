//! ReplicaSet and ReplicationController controllers (pkg/controller/replicaset/replica_set.go;
//! upstream runs the ReplicationController controller as the same code behind an adapter, and so
//! does this module, through [`ReplicaOwner`]).
//!
//! Each sync claims the pods in the owner's namespace (adopting orphans its selector matches,
//! releasing owned pods it no longer matches), creates pods from the template in slow-start
//! batches or deletes the best-ranked surplus, and writes status: replicas, fullyLabeledReplicas,
//! readyReplicas, availableReplicas, observedGeneration and the ReplicaFailure condition.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType};
use crate::expectations::Expectations;
use crate::list_or_null;
use crate::pod_util;

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
const BURST_REPLICAS: usize = 500;

/// What the replica controller needs to know about its owner kind.
pub trait ReplicaOwner:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// Event source component (`replicaset-controller`, `replication-controller`).
    const COMPONENT: &'static str;
    /// `spec.replicas` (default 1).
    fn desired_replicas(&self) -> i32;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The pod selector; `None` selects nothing.
    fn pod_selector(&self) -> Option<Selector>;
    /// `spec.template`.
    fn pod_template(&self) -> Option<&PodTemplateSpec>;
    /// The current `status` as JSON.
    fn status_value(&self) -> Value;
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn pod_selector(&self) -> Option<Selector> {
        let selector = self.spec.as_ref()?.selector.clone();
        let empty = selector
            .match_labels
            .as_ref()
            .is_none_or(BTreeMap::is_empty)
            && selector
                .match_expressions
                .as_ref()
                .is_none_or(Vec::is_empty);
        if empty {
            return None;
        }
        Selector::try_from(selector).ok()
    }
    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec
            .as_ref()
            .map(|s| &s.template)
            .and_then(Option::as_ref)
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn desired_replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn pod_selector(&self) -> Option<Selector> {
        let labels = self
            .spec
            .as_ref()?
            .selector
            .clone()
            .filter(|m| !m.is_empty())?;
        Some(labels.into_iter().collect())
    }
    fn pod_template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

struct State<K: ReplicaOwner> {
    ctx: Context,
    pods: Store<Pod>,
    recorder: EventRecorder,
    expectations: Expectations,
    _kind: std::marker::PhantomData<K>,
}

/// Runs the controller for owner kind `K` until its watches end.
pub async fn run<K: ReplicaOwner>(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let (pods, writer) = reflector::store::<Pod>();
    let pod_events = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let controller = Controller::new(Api::<K>::all(client), watcher::Config::default());
    let owners = controller.store();
    let state = Arc::new(State::<K> {
        recorder: ctx.recorder(K::COMPONENT),
        ctx,
        pods,
        expectations: Expectations::default(),
        _kind: std::marker::PhantomData,
    });
    let stream = controller
        .watches_stream(pod_events, move |pod| owners_to_sync::<K>(&pod, &owners))
        .run(reconcile::<K>, requeue_on_error, state);
    drain(K::COMPONENT, stream).await;
    Ok(())
}

/// The owner a pod event concerns: its controller, or for an orphan every owner whose selector
/// matches it (upstream `getPodReplicaSets`).
fn owners_to_sync<K: ReplicaOwner>(pod: &Pod, owners: &Store<K>) -> Vec<ObjectRef<K>> {
    let ns = pod.namespace().unwrap_or_default();
    if let Some(owner) = controller_of(pod) {
        if owner.kind == K::kind(&()) {
            return vec![ObjectRef::new(&owner.name).within(&ns)];
        }
        return Vec::new();
    }
    let labels = pod.labels();
    owners
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
        .filter(|o| o.pod_selector().is_some_and(|s| s.matches(labels)))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// The ownerReference with `controller: true`, if any.
pub fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An ownerReference to `owner` marked as its controller, blocking owner deletion (upstream
/// `metav1.NewControllerRef`).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

async fn reconcile<K: ReplicaOwner>(owner: Arc<K>, state: Arc<State<K>>) -> Result<Action> {
    if tokio::time::timeout(Duration::from_secs(1), state.pods.wait_until_ready())
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = owner.namespace().unwrap_or_default();
    let name = owner.name_any();
    let key = format!("{ns}/{name}");
    let client = state.ctx.client.clone();
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let owner_uid = owner.uid().unwrap_or_default();
    let deleting = owner.meta().deletion_timestamp.is_some();

    // Claim: adopt matching orphans, release owned pods that no longer match.
    let selector = owner.pod_selector();
    // Shared, not cloned: an owner with 10,000 pods is reconciled on every pod change.
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in state.pods.state() {
        if pod.namespace().as_deref() != Some(ns.as_str()) || !pod_util::is_active(&pod) {
            continue;
        }
        let matches = selector.as_ref().is_some_and(|s| s.matches(pod.labels()));
        match controller_of(pod.as_ref()) {
            Some(r) if r.uid == owner_uid => {
                if matches || deleting {
                    owned.push(pod.clone());
                } else {
                    release(&pods_api, &pod, &owner_uid).await?;
                }
            }
            Some(_) => {}
            None if matches && !deleting => {
                if let Some(adopted) =
                    adopt(&pods_api, &pod, controller_ref(owner.as_ref())).await?
                {
                    owned.push(Arc::new(adopted));
                }
            }
            None => {}
        }
    }

    let seen = |pod_name: &str| {
        state
            .pods
            .get(&ObjectRef::new(pod_name).within(&ns))
            .is_some_and(|p| pod_util::is_active(&p))
    };
    let mut failure = None;
    if !deleting && state.expectations.satisfied(&key, seen) {
        failure = manage_replicas(&state, owner.as_ref(), &owned, &pods_api, &key).await;
    }
    update_status(&client, owner.as_ref(), &owned, failure).await?;

    let now = Timestamp::now();
    let min_ready = owner.min_ready_seconds();
    let wait = owned
        .iter()
        .filter_map(|p| pod_util::seconds_until_available(p, min_ready, now))
        .min();
    Ok(match wait {
        Some(secs) => Action::requeue(Duration::from_secs(secs.unsigned_abs() + 1)),
        None => Action::await_change(),
    })
}

/// Creates or deletes pods towards `spec.replicas`; returns the ReplicaFailure (reason, message)
/// when a call failed.
async fn manage_replicas<K: ReplicaOwner>(
    state: &State<K>,
    owner: &K,
    owned: &[Arc<Pod>],
    pods_api: &Api<Pod>,
    key: &str,
) -> Option<(&'static str, String)> {
    let desired = usize::try_from(owner.desired_replicas().max(0)).unwrap_or(0);
    if owned.len() < desired {
        let missing = (desired - owned.len()).min(BURST_REPLICAS);
        let pod = match pod_from_template(owner) {
            Ok(p) => p,
            Err(e) => return Some(("FailedCreate", e.to_string())),
        };
        // Slow start (upstream `slowStartBatch`): 1, 2, 4, … so a failing create stops early.
        let post = PostParams::default();
        let mut created = Vec::new();
        let mut batch = 1usize;
        let mut failure = None;
        'batches: while created.len() < missing {
            let size = batch.min(missing - created.len());
            let results =
                futures::future::join_all((0..size).map(|_| pods_api.create(&post, &pod))).await;
            for r in results {
                match r {
                    Ok(p) => {
                        let pod_name = p.name_any();
                        state
                            .recorder
                            .record(
                                owner,
                                EventType::Normal,
                                "SuccessfulCreate",
                                format!("Created pod: {pod_name}"),
                            )
                            .await;
                        created.push(pod_name);
                    }
                    Err(e) => {
                        let message = api_message(&e);
                        state
                            .recorder
                            .record(
                                owner,
                                EventType::Warning,
                                "FailedCreate",
                                format!("Error creating: {message}"),
                            )
                            .await;
                        failure = Some(("FailedCreate", message));
                    }
                }
            }
            if failure.is_some() {
                break 'batches;
            }
            batch *= 2;
        }
        state.expectations.expect(key, created, Vec::new());
        return failure;
    }
    if owned.len() > desired {
        let surplus = (owned.len() - desired).min(BURST_REPLICAS);
        let all: Vec<Pod> = owned.iter().map(|p| Pod::clone(p)).collect();
        let mut ranked = all.clone();
        pod_util::sort_for_deletion(&mut ranked, &all);
        let victims: Vec<Pod> = ranked.into_iter().take(surplus).collect();
        state
            .expectations
            .expect(key, Vec::new(), victims.iter().map(ResourceExt::name_any));
        let mut failure = None;
        for pod in victims {
            let pod_name = pod.name_any();
            match pods_api.delete(&pod_name, &DeleteParams::default()).await {
                Ok(_) => {
                    state
                        .recorder
                        .record(
                            owner,
                            EventType::Normal,
                            "SuccessfulDelete",
                            format!("Deleted pod: {pod_name}"),
                        )
                        .await;
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    let message = api_message(&e);
                    state
                        .recorder
                        .record(
                            owner,
                            EventType::Warning,
                            "FailedDelete",
                            format!("Error deleting: {message}"),
                        )
                        .await;
                    failure = Some(("FailedDelete", message));
                }
            }
        }
        return failure;
    }
    None
}

/// The message of an API error as upstream prints it (the Status message).
pub fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        other => other.to_string(),
    }
}

/// A pod for `owner` from its template (upstream `GetPodFromTemplate`).
fn pod_from_template<K: ReplicaOwner>(owner: &K) -> Result<Pod> {
    let template = owner
        .pod_template()
        .ok_or_else(|| Error::Invalid("spec.template is missing".into()))?;
    let meta = template.metadata.clone().unwrap_or_default();
    let name = owner.name_any();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Makes `owner_ref` the pod's controller (upstream `AdoptPod`), guarded by the pod's
/// resourceVersion; `None` when the pod changed or went away meanwhile.
pub(crate) async fn adopt(
    api: &Api<Pod>,
    pod: &Pod,
    owner_ref: OwnerReference,
) -> Result<Option<Pod>> {
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(owner_ref);
    let patch = json!({"metadata": {"ownerReferences": list_or_null(&refs), "resourceVersion": pod.metadata.resource_version, "uid": pod.metadata.uid}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(p) => Ok(Some(p)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes the owner's reference from a pod it no longer selects (upstream `ReleasePod`).
pub(crate) async fn release(api: &Api<Pod>, pod: &Pod, owner_uid: &str) -> Result<()> {
    let refs: Vec<&OwnerReference> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .collect();
    let patch = json!({"metadata": {"ownerReferences": list_or_null(&refs), "resourceVersion": pod.metadata.resource_version}});
    match api
        .patch(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes `status` when it changed (upstream `calculateStatus` + `updateReplicaSetStatus`).
async fn update_status<K: ReplicaOwner>(
    client: &kube::Client,
    owner: &K,
    owned: &[Arc<Pod>],
    failure: Option<(&str, String)>,
) -> Result<()> {
    let now = Timestamp::now();
    let template_labels = owner
        .pod_template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = owned
        .iter()
        .filter(|p| {
            template_labels
                .iter()
                .all(|(k, v)| p.labels().get(k) == Some(v))
        })
        .count();
    let ready = owned.iter().filter(|p| pod_util::is_ready(p)).count();
    let available = owned
        .iter()
        .filter(|p| pod_util::is_available(p, owner.min_ready_seconds(), now))
        .count();
    let current = owner.status_value();
    let mut conditions: Vec<Value> = current["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    match failure {
        Some((reason, message)) => {
            let existing = conditions
                .iter()
                .position(|c| c["type"] == "ReplicaFailure");
            let condition = json!({"type": "ReplicaFailure", "status": "True", "reason": reason, "message": message,
                "lastTransitionTime": crate::now_rfc3339()});
            match existing {
                Some(i)
                    if conditions[i]["reason"] == reason
                        && conditions[i]["message"] == condition["message"] => {}
                Some(i) => conditions[i] = condition,
                None => conditions.push(condition),
            }
        }
        None => conditions.retain(|c| c["type"] != "ReplicaFailure"),
    }
    let desired = json!({
        "replicas": owned.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner.meta().generation,
        "conditions": conditions,
    });
    let unchanged = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|f| current[*f].as_i64().unwrap_or(0) == desired[*f].as_i64().unwrap_or(0))
        && current["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            == conditions;
    if unchanged {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &owner.namespace().unwrap_or_default());
    let patch = json!({"status": desired});
    match api
        .patch_status(
            &owner.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
