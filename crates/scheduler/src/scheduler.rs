//! The scheduler's run loop: watches feed the cache and the queue over one channel; one task
//! owns both and schedules a pod at a time; binding, status updates, preemption deletions and
//! events go out in spawned tasks so the loop never waits on the API server
//! (upstream `pkg/scheduler/scheduler.go`, `schedule_one.go`, `eventhandlers.go`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;

use crate::cache::{Cache, PodInfo, pod_key};
use crate::events::{EventRecorder, reference};
use crate::framework::{Framework, NO_NODES_MESSAGE, ScheduleError};
use crate::plugins::volume_binding::{self, Decision};
use crate::preemption;
use crate::queue::SchedulingQueue;

/// The scheduler name pods select with `spec.schedulerName` (and the events' component).
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Pods with this `spec.schedulerName` are ours.
    pub scheduler_name: String,
    /// The identity written into events (`reportingInstance`).
    pub identity: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { scheduler_name: DEFAULT_SCHEDULER_NAME.into(), identity: crate::leader::identity() }
    }
}

/// Kinds of watched objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Pod,
    Node,
    Claim,
    Volume,
    Class,
    Namespace,
}

/// Everything that reaches the loop.
enum Msg {
    Pod(Pod),
    PodGone(Pod),
    Node(Node),
    NodeGone(Node),
    Claim(PersistentVolumeClaim),
    ClaimGone(PersistentVolumeClaim),
    Volume(PersistentVolume),
    VolumeGone(PersistentVolume),
    Class(StorageClass),
    ClassGone(StorageClass),
    Namespace(Namespace),
    /// A (re)list finished; objects of the kind not in the set are gone.
    Listed(Kind, HashSet<String>),
    /// A binding failed: forget the assumption and retry later.
    BindFailed(String),
}

fn spawn_watch<K, F>(api: Api<K>, kind: Kind, tx: mpsc::UnboundedSender<Msg>, to_msg: F) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default,
    F: Fn(K, bool) -> Msg + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        let mut listing: HashSet<String> = HashSet::new();
        while let Some(ev) = stream.next().await {
            let msg = match ev {
                Ok(watcher::Event::Apply(o)) => to_msg(o, true),
                Ok(watcher::Event::Delete(o)) => to_msg(o, false),
                Ok(watcher::Event::Init) => {
                    listing.clear();
                    continue;
                }
                Ok(watcher::Event::InitApply(o)) => {
                    listing.insert(object_key(&o));
                    to_msg(o, true)
                }
                Ok(watcher::Event::InitDone) => Msg::Listed(kind, std::mem::take(&mut listing)),
                Err(e) => {
                    tracing::debug!(error = %e, ?kind, "watch error; the watcher retries");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    })
}

fn object_key<K: Resource>(o: &K) -> String {
    format!("{}/{}", o.meta().namespace.as_deref().unwrap_or(""), o.meta().name.as_deref().unwrap_or(""))
}

/// Runs the scheduler until the task is dropped (leader election aborts it on loss).
pub async fn run(client: kube::Client, config: SchedulerConfig) {
    let (tx, rx) = mpsc::unbounded_channel();
    let _watches = crate::AbortOnDrop(vec![
        spawn_watch(Api::<Pod>::all(client.clone()), Kind::Pod, tx.clone(), |o, live| if live { Msg::Pod(o) } else { Msg::PodGone(o) }),
        spawn_watch(Api::<Node>::all(client.clone()), Kind::Node, tx.clone(), |o, live| if live { Msg::Node(o) } else { Msg::NodeGone(o) }),
        spawn_watch(Api::<PersistentVolumeClaim>::all(client.clone()), Kind::Claim, tx.clone(), |o, live| {
            if live { Msg::Claim(o) } else { Msg::ClaimGone(o) }
        }),
        spawn_watch(Api::<PersistentVolume>::all(client.clone()), Kind::Volume, tx.clone(), |o, live| {
            if live { Msg::Volume(o) } else { Msg::VolumeGone(o) }
        }),
        spawn_watch(Api::<StorageClass>::all(client.clone()), Kind::Class, tx.clone(), |o, live| {
            if live { Msg::Class(o) } else { Msg::ClassGone(o) }
        }),
        spawn_watch(Api::<Namespace>::all(client.clone()), Kind::Namespace, tx.clone(), |o, _| Msg::Namespace(o)),
    ]);
    let recorder = EventRecorder::new(client.clone(), config.scheduler_name.clone(), config.identity.clone());
    let mut sched = Scheduler {
        client,
        config,
        recorder,
        tx,
        cache: Cache::default(),
        queue: SchedulingQueue::default(),
        framework: Framework::default(),
        synced: HashSet::new(),
    };
    sched.run(rx).await;
}

struct Scheduler {
    client: kube::Client,
    config: SchedulerConfig,
    recorder: EventRecorder,
    tx: mpsc::UnboundedSender<Msg>,
    cache: Cache,
    queue: SchedulingQueue,
    framework: Framework,
    synced: HashSet<Kind>,
}

impl Scheduler {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            loop {
                match rx.try_recv() {
                    Ok(m) => self.handle(m),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            let next_backoff = self.queue.flush(now);
            // Schedule only once pods and nodes are listed, so placements see the whole cluster.
            let ready = [Kind::Pod, Kind::Node, Kind::Claim, Kind::Volume, Kind::Class].iter().all(|k| self.synced.contains(k));
            if ready && let Some(p) = self.queue.pop() {
                self.schedule_one(p.pod);
                tokio::task::yield_now().await;
                continue;
            }
            let wait = next_backoff.map_or(Duration::from_secs(1), |t| t.saturating_duration_since(now)).min(Duration::from_secs(1));
            tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => return,
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn is_ours(&self, pod: &Pod) -> bool {
        pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref()).unwrap_or(DEFAULT_SCHEDULER_NAME) == self.config.scheduler_name
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Pod(pod) => {
                let key = pod_key(&pod);
                let assigned = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).is_some_and(|n| !n.is_empty());
                if assigned {
                    self.queue.remove(&key);
                    let was_accounted = self.cache.node_of(&key).is_some();
                    self.cache.upsert_pod(Arc::new(pod));
                    if was_accounted && self.cache.node_of(&key).is_none() {
                        // A pod finished: its resources are free.
                        self.queue.move_all(now);
                    }
                } else if self.cache.is_assumed(&key) {
                    // An older version while our binding is in flight.
                } else if pod.metadata.deletion_timestamp.is_some() || !self.is_ours(&pod) {
                    self.queue.remove(&key);
                } else {
                    self.queue.add_or_update(&key, Arc::new(pod), now);
                }
            }
            Msg::PodGone(pod) => {
                let key = pod_key(&pod);
                self.queue.remove(&key);
                if self.cache.node_of(&key).is_some() {
                    self.cache.remove_pod(&key);
                    self.cache.forget(&key);
                    self.queue.move_all(now);
                }
            }
            Msg::Node(node) => {
                self.cache.upsert_node(node);
                self.queue.move_all(now);
            }
            Msg::NodeGone(node) => self.cache.remove_node(&node.name_any()),
            Msg::Claim(pvc) => {
                self.cache.pvcs.insert(object_key(&pvc), Arc::new(pvc));
                self.queue.move_all(now);
            }
            Msg::ClaimGone(pvc) => {
                self.cache.pvcs.remove(&object_key(&pvc));
            }
            Msg::Volume(pv) => {
                self.cache.pvs.insert(pv.name_any(), Arc::new(pv));
                self.queue.move_all(now);
            }
            Msg::VolumeGone(pv) => {
                self.cache.pvs.remove(&pv.name_any());
            }
            Msg::Class(sc) => {
                self.cache.storage_classes.insert(sc.name_any(), Arc::new(sc));
                self.queue.move_all(now);
            }
            Msg::ClassGone(sc) => {
                self.cache.storage_classes.remove(&sc.name_any());
            }
            Msg::Namespace(ns) => {
                self.cache.namespace_labels.insert(ns.name_any(), ns.metadata.labels.unwrap_or_default());
            }
            Msg::Listed(kind, seen) => {
                self.synced.insert(kind);
                match kind {
                    Kind::Node => {
                        let gone: Vec<String> = self.cache.nodes.keys().filter(|n| !seen.contains(&format!("/{n}"))).cloned().collect();
                        for n in gone {
                            self.cache.remove_node(&n);
                        }
                    }
                    Kind::Pod => self.cache.retain_pods(|key| seen.contains(key)),
                    Kind::Claim | Kind::Volume | Kind::Class | Kind::Namespace => {}
                }
                self.queue.move_all(now);
            }
            Msg::BindFailed(key) => {
                self.cache.forget(&key);
                self.queue.error(&key, now);
            }
        }
    }

    fn schedule_one(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let info = Arc::new(PodInfo::new(pod.clone()));
        match self.framework.schedule(info.clone(), &self.cache) {
            Ok(node) => {
                let decisions = self.assume_volumes(&info, &node);
                self.cache.assume(&info, &node);
                tokio::spawn(bind(self.client.clone(), self.recorder.clone(), self.tx.clone(), pod, key, node, decisions));
            }
            Err(err) => {
                let mut nominated = None;
                let message = match err {
                    ScheduleError::NoNodes => NO_NODES_MESSAGE.to_string(),
                    ScheduleError::Unfit(mut fit, state) => {
                        if let Some(state) = state {
                            match preemption::preempt(&state, &self.cache, &fit.diagnosis) {
                                Ok(candidate) => {
                                    nominated = Some(candidate.node.clone());
                                    tokio::spawn(evict_victims(self.client.clone(), self.recorder.clone(), pod.clone(), candidate));
                                }
                                Err(msg) => fit.diagnosis.post_filter_msg = Some(format!("preemption: {msg}")),
                            }
                        }
                        fit.to_string()
                    }
                };
                tracing::debug!(pod = %key, %message, "unschedulable");
                self.queue.unschedulable(&key, Instant::now());
                tokio::spawn(report_unschedulable(self.client.clone(), self.recorder.clone(), pod, message, nominated));
            }
        }
    }
}

/// Upstream's `bindTimeoutSeconds`: how long PreBind waits for the claims to be bound.
const VOLUME_BIND_TIMEOUT: Duration = Duration::from_secs(600);

impl Scheduler {
    /// What VolumeBinding does for the pod's delayed claims on `node`; the volumes it pre-binds
    /// are marked taken in the cache at once so the next pods do not pick them too
    /// (upstream `AssumePodVolumes`).
    fn assume_volumes(&mut self, info: &PodInfo, node: &str) -> Vec<Decision> {
        let Ok(state) = volume_binding::prefilter(info, &self.cache) else { return Vec::new() };
        if state.unbound_delayed.is_empty() {
            return Vec::new();
        }
        let Some(decisions) = self.cache.nodes.get(node).and_then(|n| volume_binding::decide(&state, n)) else { return Vec::new() };
        for d in &decisions {
            if let Some(name) = &d.volume
                && let Some(pv) = self.cache.pvs.get(name)
            {
                let mut assumed = (**pv).clone();
                assumed.spec.get_or_insert_with(Default::default).claim_ref = Some(claim_reference(&d.claim));
                self.cache.pvs.insert(name.clone(), Arc::new(assumed));
            }
        }
        decisions
    }
}

fn claim_reference(pvc: &PersistentVolumeClaim) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: pvc.metadata.namespace.clone(),
        name: pvc.metadata.name.clone(),
        uid: pvc.metadata.uid.clone(),
        resource_version: pvc.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// VolumeBinding's PreBind (upstream `BindPodVolumes`): pre-bind the chosen volumes, ask for
/// provisioning on the node, then wait until the PV controller has bound every claim.
async fn bind_volumes(client: &kube::Client, node: &str, decisions: &[Decision]) -> Result<(), String> {
    for d in decisions {
        let ns = d.claim.metadata.namespace.clone().unwrap_or_default();
        let claim = d.claim.name_any();
        match &d.volume {
            Some(volume) => {
                let patch = json!({
                    "metadata": {"resourceVersion": d.volume_version, "annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                    "spec": {"claimRef": claim_reference(&d.claim)},
                });
                Api::<PersistentVolume>::all(client.clone())
                    .patch(volume, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(|e| format!("binding volumes: {e}"))?;
            }
            None if d.claim.metadata.annotations.as_ref().and_then(|a| a.get(volume_binding::ANN_SELECTED_NODE)).map(String::as_str) == Some(node) => {}
            None => {
                let patch = json!({"metadata": {"annotations": {volume_binding::ANN_SELECTED_NODE: node}}});
                Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
                    .patch(&claim, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(|e| format!("binding volumes: {e}"))?;
            }
        }
    }
    let deadline = Instant::now() + VOLUME_BIND_TIMEOUT;
    for d in decisions {
        let ns = d.claim.metadata.namespace.clone().unwrap_or_default();
        let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
        loop {
            let current = api.get_opt(&d.claim.name_any()).await.map_err(|e| format!("binding volumes: {e}"))?;
            let Some(current) = current.filter(|c| c.metadata.uid == d.claim.metadata.uid) else {
                return Err(format!("binding volumes: pvc \"{}\" was deleted", d.claim.name_any()));
            };
            let bound = current.spec.as_ref().and_then(|s| s.volume_name.as_deref()).is_some_and(|v| !v.is_empty())
                && current.metadata.annotations.as_ref().is_some_and(|a| a.contains_key("pv.kubernetes.io/bind-completed"));
            if bound {
                break;
            }
            if Instant::now() > deadline {
                return Err("binding volumes: context deadline exceeded".into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// VolumeBinding's PreBind, then POST pods/{name}/binding, then the `Scheduled` event.
async fn bind(
    client: kube::Client,
    recorder: EventRecorder,
    tx: mpsc::UnboundedSender<Msg>,
    pod: Arc<Pod>,
    key: String,
    node: String,
    volumes: Vec<Decision>,
) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.name_any();
    if !volumes.is_empty()
        && let Err(e) = bind_volumes(&client, &node, &volumes).await
    {
        tracing::info!(pod = %key, error = %e, "binding volumes failed");
        let message = format!("running PreBind plugin \"VolumeBinding\": {e}");
        recorder.record(reference("Pod", &pod.metadata), "Warning", "FailedScheduling", "Scheduling", message).await;
        let _ = tx.send(Msg::BindFailed(key));
        return;
    }
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}
    });
    let api: Api<Pod> = Api::namespaced(client, &ns);
    match api.create_subresource::<_, serde_json::Value>("binding", &name, &PostParams::default(), &binding).await {
        Ok(_) => {
            recorder
                .record(
                    reference("Pod", &pod.metadata),
                    "Normal",
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {ns}/{name} to {node}"),
                )
                .await;
        }
        Err(e) => {
            tracing::info!(pod = %key, error = %e, "binding failed");
            let _ = tx.send(Msg::BindFailed(key));
        }
    }
}

/// PodScheduled=False (reason Unschedulable) and nominatedNodeName, then `FailedScheduling`.
async fn report_unschedulable(client: kube::Client, recorder: EventRecorder, pod: Arc<Pod>, message: String, nominated: Option<String>) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, &ns);
    let current = pod.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let same_condition = current
        .is_some_and(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable") && c.message.as_deref() == Some(&message));
    let current_nominated = pod.status.as_ref().and_then(|s| s.nominated_node_name.clone());
    if !same_condition || (nominated.is_some() && nominated != current_nominated) {
        let transition = match current {
            Some(c) if c.status == "False" => c.last_transition_time.as_ref().map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            _ => None,
        }
        .unwrap_or_else(crate::events::now_rfc3339);
        let mut status = json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": message, "lastProbeTime": null, "lastTransitionTime": transition}]});
        if let Some(node) = &nominated {
            status["nominatedNodeName"] = json!(node);
        }
        if let Err(e) = api.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(json!({"status": status}))).await {
            tracing::debug!(error = %e, "updating PodScheduled");
        }
    }
    recorder.record(reference("Pod", &pod.metadata), "Warning", "FailedScheduling", "Scheduling", message).await;
}

/// Deletes the victims chosen by preemption, each marked with a DisruptionTarget condition.
async fn evict_victims(client: kube::Client, recorder: EventRecorder, preemptor: Arc<Pod>, candidate: preemption::Candidate) {
    for victim in &candidate.victims {
        let ns = victim.namespace().to_string();
        let name = victim.pod.name_any();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let now = crate::events::now_rfc3339();
        let condition = json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": format!("{DEFAULT_SCHEDULER_NAME}: preempting to accommodate a higher priority pod"), "lastTransitionTime": now}]}});
        if let Err(e) = api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(condition)).await {
            tracing::debug!(error = %e, "marking the preemption victim");
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                let uid = preemptor.metadata.uid.clone().unwrap_or_default();
                recorder
                    .record(
                        reference("Pod", &victim.pod.metadata),
                        "Normal",
                        "Preempted",
                        "Preempting",
                        format!("Preempted by pod {uid} on node {}", candidate.node),
                    )
                    .await;
            }
            Err(e) => tracing::info!(error = %e, victim = %victim.key, "deleting the preemption victim"),
        }
    }
}
