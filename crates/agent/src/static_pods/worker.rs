//! The static pod manager: polls the manifest directory, starts a worker per static pod and
//! stops the workers of pods whose file went away or changed (a changed file is a new pod: its
//! hash, hence its UID, changed). Each worker syncs its pod through the same [`PodSyncer`] as
//! API pods, keeps the mirror pod in the API and reports the status on it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::StaticPodState;
use super::manifest::{
    self, CONFIG_SEEN_ANNOTATION, CONFIG_SOURCE_ANNOTATION, FILE_SOURCE, StaticPod, full_name,
};
use super::mirror::{MirrorClient, is_mirror_of};
use crate::status;
use crate::sync::PodSyncer;

/// How often the manifest directory is read (the kubelet polls every 20 s and also listens to
/// inotify; a short poll alone keeps rkube free of a file-watching dependency).
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How often a static pod is synced without changes, as API pods are.
const RESYNC_INTERVAL: Duration = Duration::from_secs(1);
/// The pause between failed attempts to create or delete a mirror pod.
const MIRROR_RETRY: Duration = Duration::from_secs(5);

/// What every static pod worker uses.
struct WorkerContext {
    syncer: Arc<PodSyncer>,
    client: kube::Client,
    mirrors: MirrorClient,
    state: Arc<StaticPodState>,
}

struct Worker {
    uid: String,
    full_name: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

/// Reads the manifest directory and keeps one worker per static pod.
pub struct StaticPodManager {
    /// `None`: static pods are disabled (mirror pods left by earlier runs are still removed).
    dir: Option<PathBuf>,
    node_name: String,
    context: Arc<WorkerContext>,
    workers: HashMap<String, Worker>,
    /// Workers told to stop, still stopping their pod: a new version of the same pod waits.
    stopping: Vec<Worker>,
    /// The last error logged for each bad manifest, so each is logged once until it changes.
    reported: HashMap<PathBuf, String>,
}

impl StaticPodManager {
    pub fn new(
        dir: Option<PathBuf>,
        node_name: String,
        syncer: Arc<PodSyncer>,
        client: kube::Client,
        state: Arc<StaticPodState>,
    ) -> Self {
        if let Some(dir) = &dir
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            tracing::warn!(path = %dir.display(), error = %e, "creating the static pod manifest directory");
        }
        let context = Arc::new(WorkerContext {
            syncer,
            mirrors: MirrorClient::new(client.clone(), node_name.clone()),
            client,
            state,
        });
        Self {
            dir,
            node_name,
            context,
            workers: HashMap::new(),
            stopping: Vec::new(),
            reported: HashMap::new(),
        }
    }

    /// Polls the directory until the task is aborted (which stops the workers, not the pods).
    pub async fn run(mut self) {
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            self.poll().await;
        }
    }

    /// One read of the directory: workers started and stopped to match it, orphaned mirror
    /// pods deleted.
    pub async fn poll(&mut self) {
        let contents = match &self.dir {
            Some(dir) => manifest::read_dir(dir, &self.node_name),
            None => Default::default(),
        };
        self.log_errors(&contents.errors);
        let current: HashMap<String, StaticPod> = contents
            .pods
            .into_iter()
            .map(|p| (p.uid().to_string(), p))
            .collect();
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|uid| !current.contains_key(*uid))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(worker) = self.workers.remove(&uid) {
                tracing::info!(pod = %worker.full_name, %uid, "static pod removed or changed: stopping it");
                let _ = worker.stop.send(true);
                self.stopping.push(worker);
            }
        }
        self.stopping.retain(|w| !w.handle.is_finished());
        let mut uids: HashSet<String> = current.keys().cloned().collect();
        uids.extend(self.stopping_uids());
        self.context.state.set_uids(uids);
        for (uid, found) in current {
            if self.workers.contains_key(&uid) {
                continue;
            }
            let full_name = found.full_name();
            // The previous version of this pod stops before the new one starts.
            let (previous, others): (Vec<Worker>, Vec<Worker>) = std::mem::take(&mut self.stopping)
                .into_iter()
                .partition(|w| w.full_name == full_name);
            self.stopping = others;
            tracing::info!(pod = %full_name, %uid, path = %found.path.display(), "static pod found");
            let pod = first_seen(found.pod);
            let (stop, stopped) = watch::channel(false);
            let handle = tokio::spawn(run_worker(
                self.context.clone(),
                pod,
                previous.into_iter().map(|w| w.handle).collect(),
                stopped,
            ));
            self.workers.insert(
                uid.clone(),
                Worker {
                    uid,
                    full_name,
                    stop,
                    handle,
                },
            );
        }
        self.delete_orphaned_mirrors().await;
    }

    fn stopping_uids(&self) -> impl Iterator<Item = String> + '_ {
        self.stopping.iter().map(|w| w.uid.clone())
    }

    fn log_errors(&mut self, errors: &[manifest::ManifestError]) {
        let mut still_bad = HashMap::new();
        for e in errors {
            if self.reported.get(&e.path) != Some(&e.message) {
                tracing::error!(path = %e.path.display(), error = %e.message, "could not process manifest file");
            }
            still_bad.insert(e.path.clone(), e.message.clone());
        }
        self.reported = still_bad;
    }

    /// Mirror pods of this node with no static pod of their name (upstream
    /// `deleteOrphanedMirrorPods`): their file was removed while no agent ran, or never existed.
    async fn delete_orphaned_mirrors(&self) {
        let state = &self.context.state;
        if !state.mirrors.is_listed() {
            return;
        }
        let names: HashSet<String> = self
            .workers
            .values()
            .chain(&self.stopping)
            .map(|w| w.full_name.clone())
            .collect();
        for orphan in state.mirrors.orphans(&names) {
            tracing::info!(pod = %full_name(&orphan), "deleting a mirror pod without a static pod");
            match self.context.mirrors.delete(&orphan).await {
                Ok(()) => state.mirrors.gone(&orphan),
                Err(e) => {
                    tracing::warn!(pod = %full_name(&orphan), error = %e, "deleting a mirror pod")
                }
            }
        }
    }
}

impl Drop for StaticPodManager {
    /// The agent stops: so do the workers, leaving their containers to the runtime (a new
    /// agent adopts them; one stopped mid-termination is an orphan it removes).
    fn drop(&mut self) {
        for worker in self.workers.values().chain(&self.stopping) {
            worker.handle.abort();
        }
    }
}

/// The annotations the kubelet's config merge adds when it first sees a pod.
fn first_seen(mut pod: Pod) -> Pod {
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(CONFIG_SOURCE_ANNOTATION.into(), FILE_SOURCE.into());
    // RFC 3339 in UTC with the fraction's trailing zeros dropped, as Go's RFC3339Nano.
    annotations.insert(
        CONFIG_SEEN_ANNOTATION.into(),
        k8s_openapi::jiff::Timestamp::now().to_string(),
    );
    pod
}

/// Runs one static pod until told to stop, then stops it and deletes its mirror pod.
async fn run_worker(
    context: Arc<WorkerContext>,
    mut pod: Pod,
    previous: Vec<JoinHandle<()>>,
    mut stop: watch::Receiver<bool>,
) {
    for handle in previous {
        let _ = handle.await;
    }
    let key = full_name(&pod);
    let mut mirror_state = MirrorState::default();
    let mut latest_status: Option<Value> = None;
    let mut reported: Option<(String, Value)> = None;
    while !*stop.borrow_and_update() {
        match context.syncer.sync(&pod).await {
            Ok(Some(status)) => {
                // The static pod keeps its own status (start time, phase), as the kubelet's
                // status manager does: there is no API object to read it back from.
                match serde_json::from_value(status.clone()) {
                    Ok(parsed) => pod.status = Some(parsed),
                    Err(e) => {
                        tracing::debug!(pod = %key, error = %e, "reading back a static pod status")
                    }
                }
                latest_status = Some(status);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(pod = %key, error = %e, "syncing static pod"),
        }
        if let Some(mirror) = mirror_state.reconcile(&context, &pod).await
            && let Some(status) = &latest_status
        {
            let comparable = (
                mirror.uid().unwrap_or_default(),
                status::without_transition_times(status),
            );
            if reported.as_ref() != Some(&comparable)
                && crate::patch_status(&context.client, &mirror, status).await
            {
                reported = Some(comparable);
            }
        }
        tokio::select! {
            // The manager is gone (the agent stops): the pod keeps running, as API pods do.
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(RESYNC_INTERVAL) => {}
        }
    }
    let grace = crate::grace_period(&pod);
    tracing::info!(pod = %key, grace, "stopping static pod");
    while let Err(e) = context.syncer.terminate(&pod, grace).await {
        tracing::warn!(pod = %key, error = %e, "stopping static pod");
        tokio::time::sleep(RESYNC_INTERVAL).await;
    }
    if let Some(mirror) = context.state.mirrors.get(&key)
        && is_mirror_of(&mirror, &pod)
    {
        match context.mirrors.delete(&mirror).await {
            Ok(()) => context.state.mirrors.gone(&mirror),
            // The orphan sweep of the manager retries it.
            Err(e) => tracing::warn!(pod = %key, error = %e, "deleting mirror pod"),
        }
    }
}

/// A worker's view of its mirror pod.
#[derive(Default)]
struct MirrorState {
    /// No create or delete is tried before this (after a failure).
    not_before: Option<Instant>,
    /// The last failure logged, so an unreachable API server is logged once, not every retry.
    last_error: Option<String>,
}

impl MirrorState {
    /// Makes the API hold a current mirror of `pod` (upstream `syncPod`): a mirror being
    /// deleted or of another version of the pod is deleted, then a missing one created.
    /// Returns the mirror to report status on, if there is one.
    async fn reconcile(&mut self, context: &WorkerContext, pod: &Pod) -> Option<Pod> {
        let mirrors = &context.state.mirrors;
        if !mirrors.is_listed() {
            return None;
        }
        let existing = mirrors.get(&full_name(pod));
        if let Some(mirror) = &existing
            && mirror.metadata.deletion_timestamp.is_none()
            && is_mirror_of(mirror, pod)
        {
            return Some(mirror.clone());
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        if let Some(mirror) = existing {
            tracing::info!(pod = %full_name(pod), mirror_uid = %mirror.uid().unwrap_or_default(),
                "deleting a mirror pod that is being deleted or of another version of the static pod");
            if let Err(e) = context.mirrors.delete(&mirror).await {
                self.failed(pod, format!("deleting mirror pod: {e}"));
                return None;
            }
            mirrors.gone(&mirror);
        }
        match context.mirrors.create(pod).await {
            Ok(created) => {
                self.not_before = None;
                self.last_error = None;
                let current =
                    created.metadata.deletion_timestamp.is_none() && is_mirror_of(&created, pod);
                if current {
                    tracing::info!(pod = %full_name(pod), mirror_uid = %created.uid().unwrap_or_default(), "mirror pod created");
                }
                mirrors.seen(created.clone());
                current.then_some(created)
            }
            Err(e) => {
                self.failed(pod, format!("creating mirror pod: {e}"));
                None
            }
        }
    }

    fn failed(&mut self, pod: &Pod, message: String) {
        if self.last_error.as_deref() != Some(message.as_str()) {
            tracing::warn!(pod = %full_name(pod), error = %message, "mirror pod");
            self.last_error = Some(message);
        }
        self.not_before = Some(Instant::now() + MIRROR_RETRY);
    }
}
