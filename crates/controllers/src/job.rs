//! The Job controller (pkg/controller/job): runs pods until `completions` succeed (NonIndexed or
//! Indexed, `parallelism` at a time), backs off after failures (10 s doubling) and fails the Job
//! past `backoffLimit`, `activeDeadlineSeconds` or a `podFailurePolicy` FailJob rule, honours
//! `suspend`, and counts finished pods through the `batch.kubernetes.io/job-tracking` finalizer
//! and `status.uncountedTerminatedPods` so no pod is counted twice or lost.
//!
//! As upstream 1.33, a finishing Job first gets SuccessCriteriaMet or FailureTarget, its
//! remaining pods are deleted, and Complete or Failed follows once none is left running.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType};
use crate::expectations::Expectations;
use crate::job_util::{self as util, COMPLETION_INDEX, FailureAction, TRACKING_FINALIZER};
use crate::pod_util;
use crate::replicaset::{api_message, controller_of, controller_ref};

const COMPONENT: &str = "job-controller";

struct State {
    ctx: Context,
    pods: Store<Pod>,
    recorder: EventRecorder,
    expectations: Expectations,
    /// Pods whose tracking finalizer this controller removed and already counted, until the pod
    /// cache shows the removal (upstream's finalizer expectations): without it a stale cache
    /// would count them twice.
    released: Mutex<HashSet<String>>,
}

impl State {
    fn released(&self) -> MutexGuard<'_, HashSet<String>> {
        self.released.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs the controller until its watches end.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let (pods, writer) = reflector::store::<Pod>();
    let pod_events = reflector::reflector(
        writer,
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        pods,
        expectations: Expectations::default(),
        released: Mutex::default(),
    });
    let controller = Controller::new(Api::<Job>::all(client), watcher::Config::default());
    let jobs = controller.store();
    let stream = controller
        .watches_stream(pod_events, |pod| {
            let owner = controller_of(&pod).filter(|o| o.kind == "Job")?;
            Some(ObjectRef::new(&owner.name).within(&pod.namespace().unwrap_or_default()))
        })
        .run(reconcile, requeue_on_error, state.clone());
    tokio::select! {
        () = drain(COMPONENT, stream) => {}
        () = release_orphans(state, jobs) => {}
    }
    Ok(())
}

/// How often pods of deleted Jobs are looked for.
const ORPHAN_SWEEP: Duration = Duration::from_secs(2);

/// Removes the tracking finalizer from pods whose Job is gone (upstream `syncOrphanPod`): no
/// reconcile runs for a deleted Job, and its pods could otherwise never be deleted, which
/// would also hold up their namespace's deletion.
async fn release_orphans(state: Arc<State>, jobs: Store<Job>) {
    if state.pods.wait_until_ready().await.is_err() || jobs.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        tokio::time::sleep(ORPHAN_SWEEP).await;
        let live: HashSet<String> = jobs.state().iter().filter_map(|j| j.uid()).collect();
        for pod in state.pods.state().iter().filter(|p| has_finalizer(p)) {
            let owner_alive = controller_of(pod.as_ref())
                .filter(|o| o.kind == "Job")
                .is_some_and(|o| live.contains(&o.uid));
            if owner_alive {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(
                state.ctx.client.clone(),
                &pod.namespace().unwrap_or_default(),
            );
            if let Err(e) = remove_finalizer(&api, pod).await {
                tracing::debug!(error = %e, pod = %pod.name_any(), "releasing an orphaned Job pod failed");
            }
        }
    }
}

fn has_condition(job: &Job, type_: &str) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": now})
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == TRACKING_FINALIZER))
}

/// A pod that will not run again: Succeeded, Failed, or deleted before succeeding (upstream
/// counts the latter as failed).
fn finished_as(pod: &Pod) -> Option<bool> {
    match pod_util::phase(pod) {
        "Succeeded" => Some(true),
        "Failed" => Some(false),
        _ if pod.metadata.deletion_timestamp.is_some() => Some(false),
        _ => None,
    }
}

fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
}

async fn reconcile(cached: Arc<Job>, state: Arc<State>) -> Result<Action> {
    if tokio::time::timeout(Duration::from_secs(1), state.pods.wait_until_ready())
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = cached.namespace().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(state.ctx.client.clone(), &ns);
    // Counting is incremental, so it must start from the stored status, not a cached one that
    // may not show this controller's last write yet.
    let job = match jobs_api.get_opt(&cached.name_any()).await? {
        Some(j) if j.uid() == cached.uid() => j,
        _ => return Ok(Action::await_change()),
    };
    let key = format!("{ns}/{}", job.name_any());
    let job_uid = job.uid().unwrap_or_default();
    let pods: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| controller_of(p.as_ref()).is_some_and(|r| r.uid == job_uid))
        .map(|p| (**p).clone())
        .collect();
    let pods_api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &ns);
    {
        let mut released = state.released();
        for pod in &pods {
            if !has_finalizer(pod) {
                released.remove(&pod.uid().unwrap_or_default());
            }
        }
    }
    let counted = |pod: &Pod| state.released().contains(&pod.uid().unwrap_or_default());

    if has_condition(&job, "Complete") || has_condition(&job, "Failed") {
        for pod in pods.iter().filter(|p| has_finalizer(p)) {
            remove_finalizer(&pods_api, pod).await?;
        }
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let now_str = crate::now_rfc3339();
    let status = serde_json::to_value(&job.status).unwrap_or(Value::Null);
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let uid_list = |field: &str| -> BTreeSet<String> {
        status["uncountedTerminatedPods"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (mut uncounted_ok, mut uncounted_failed) = (uid_list("succeeded"), uid_list("failed"));
    let mut succeeded = i32::try_from(status["succeeded"].as_i64().unwrap_or(0)).unwrap_or(0);
    let mut failed = i32::try_from(status["failed"].as_i64().unwrap_or(0)).unwrap_or(0);
    let mut completed_indexes =
        util::parse_indexes(status["completedIndexes"].as_str().unwrap_or(""));
    let indexed = util::is_indexed(&job);

    // 1. Finished pods still holding the finalizer: record them as uncounted first, so a
    //    crash between the status write and the finalizer removal never loses them.
    let mut fail_job: Option<(String, String)> = None;
    let mut newly = false;
    let mut to_release: Vec<&Pod> = Vec::new();
    for pod in pods.iter().filter(|p| has_finalizer(p) && !counted(p)) {
        let Some(ok) = finished_as(pod) else { continue };
        let uid = pod.uid().unwrap_or_default();
        to_release.push(pod);
        if uncounted_ok.contains(&uid) || uncounted_failed.contains(&uid) {
            continue;
        }
        if ok {
            uncounted_ok.insert(uid);
            newly = true;
            continue;
        }
        match util::match_failure_policy(&job, pod) {
            FailureAction::Ignore => {}
            FailureAction::FailJob(message) => {
                fail_job.get_or_insert(("PodFailurePolicy".into(), message));
                uncounted_failed.insert(uid);
                newly = true;
            }
            _ => {
                uncounted_failed.insert(uid);
                newly = true;
            }
        }
    }
    let mut resource_version = job.resource_version();
    if newly {
        let patch = json!({"metadata": {"resourceVersion": resource_version}, "status": {"uncountedTerminatedPods": {
            "succeeded": crate::list_or_null(&uncounted_ok.iter().collect::<Vec<_>>()),
            "failed": crate::list_or_null(&uncounted_failed.iter().collect::<Vec<_>>())}}});
        let written = jobs_api
            .patch_status(
                &job.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        resource_version = written.resource_version();
    }
    // 2. Release them and move them into the counters.
    for pod in to_release {
        remove_finalizer(&pods_api, pod).await?;
        let uid = pod.uid().unwrap_or_default();
        state.released().insert(uid.clone());
        if uncounted_ok.remove(&uid) {
            if indexed {
                if let Some(i) = util::pod_index(pod) {
                    completed_indexes.insert(i);
                }
            } else {
                succeeded += 1;
            }
        } else if uncounted_failed.remove(&uid) {
            failed += 1;
        }
    }
    // Uncounted pods that are already gone (released by an earlier pass) count too.
    let present: BTreeSet<String> = pods.iter().filter_map(ResourceExt::uid).collect();
    for uid in std::mem::take(&mut uncounted_ok) {
        if present.contains(&uid) {
            uncounted_ok.insert(uid);
        } else if !indexed {
            succeeded += 1;
        }
    }
    for uid in std::mem::take(&mut uncounted_failed) {
        if present.contains(&uid) {
            uncounted_failed.insert(uid);
        } else {
            failed += 1;
        }
    }
    if indexed {
        let completions = util::completions(&job).unwrap_or(0);
        completed_indexes.retain(|i| *i >= 0 && *i < completions);
        succeeded = i32::try_from(completed_indexes.len()).unwrap_or(i32::MAX);
    }

    // backoffLimitPerIndex: an index whose failures pass the limit (or that a FailIndex rule
    // hit) is failed for good and not run again.
    let per_index_limit = util::backoff_limit_per_index(&job);
    let mut failed_indexes = util::parse_indexes(status["failedIndexes"].as_str().unwrap_or(""));
    let mut index_failures = BTreeMap::new();
    if let Some(limit) = per_index_limit {
        let failed_pods: Vec<(&Pod, FailureAction)> = pods
            .iter()
            .filter(|p| finished_as(p) == Some(false))
            .map(|p| (p, util::match_failure_policy(&job, p)))
            .collect();
        index_failures = util::index_failures(
            failed_pods
                .iter()
                .map(|(p, action)| (*p, *action == FailureAction::Ignore)),
        );
        for (pod, action) in &failed_pods {
            if *action == FailureAction::FailIndex
                && let Some(i) = util::pod_index(pod)
            {
                failed_indexes.insert(i);
            }
        }
        failed_indexes.extend(
            index_failures
                .iter()
                .filter(|(_, count)| **count > limit)
                .map(|(i, _)| *i),
        );
        failed_indexes.retain(|i| !completed_indexes.contains(i));
    }

    let active: Vec<&Pod> = pods.iter().filter(|p| pod_util::is_active(p)).collect();
    let is_terminating = |p: &Pod| {
        p.metadata.deletion_timestamp.is_some()
            && !matches!(pod_util::phase(p), "Succeeded" | "Failed")
    };
    let terminating = pods.iter().filter(|p| is_terminating(p)).count();
    let ready = active.iter().filter(|p| pod_util::is_ready(p)).count();
    let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);

    // startTime: set when the Job (re)starts running.
    let mut start_time = status["startTime"].as_str().map(str::to_string);
    let mut requeue: Option<Duration> = None;

    // 3. Decide whether the Job is finishing.
    let mut finishing: Option<(&str, String, String)> = conditions
        .iter()
        .find(|c| {
            (c["type"] == "FailureTarget" || c["type"] == "SuccessCriteriaMet")
                && c["status"] == "True"
        })
        .map(|c| {
            let terminal = if c["type"] == "FailureTarget" {
                "Failed"
            } else {
                "Complete"
            };
            (
                terminal,
                c["reason"].as_str().unwrap_or("").to_string(),
                c["message"].as_str().unwrap_or("").to_string(),
            )
        });
    if finishing.is_none() && !suspended {
        let deadline = job.spec.as_ref().and_then(|s| s.active_deadline_seconds);
        let started = start_time
            .as_deref()
            .and_then(|s| s.parse::<Timestamp>().ok());
        let failure = fail_job.or_else(|| {
            (failed > util::backoff_limit(&job)).then(|| {
                (
                    "BackoffLimitExceeded".to_string(),
                    "Job has reached the specified backoff limit".to_string(),
                )
            })
        });
        let max_failed_indexes = job.spec.as_ref().and_then(|s| s.max_failed_indexes);
        let failure = failure.or_else(|| {
            let max = max_failed_indexes?;
            (per_index_limit.is_some()
                && i32::try_from(failed_indexes.len()).unwrap_or(i32::MAX) > max)
                .then(|| {
                    (
                        "MaxFailedIndexesExceeded".to_string(),
                        "Job has exceeded the specified maximal number of failed indexes"
                            .to_string(),
                    )
                })
        });
        let failure = failure.or_else(|| {
            let (deadline, started) = (deadline?, started?);
            let elapsed = now.as_second() - started.as_second();
            if elapsed >= deadline {
                return Some((
                    "DeadlineExceeded".to_string(),
                    "Job was active longer than specified deadline".to_string(),
                ));
            }
            requeue = Some(Duration::from_secs(
                u64::try_from(deadline - elapsed).unwrap_or(1),
            ));
            None
        });
        // Every index finished, some of them failed.
        let failure = failure.or_else(|| {
            let completions = usize::try_from(util::completions(&job).unwrap_or(0)).ok()?;
            (per_index_limit.is_some()
                && !failed_indexes.is_empty()
                && failed_indexes.len() + completed_indexes.len() >= completions)
                .then(|| {
                    (
                        "FailedIndexes".to_string(),
                        "Job has failed indexes".to_string(),
                    )
                })
        });
        if let Some((reason, message)) = failure {
            conditions.push(condition(
                "FailureTarget",
                "True",
                &reason,
                &message,
                &now_str,
            ));
            finishing = Some(("Failed", reason, message));
        } else if let Some(message) = indexed
            .then(|| util::match_success_policy(&job, &completed_indexes))
            .flatten()
        {
            conditions.push(condition(
                "SuccessCriteriaMet",
                "True",
                "SuccessPolicy",
                &message,
                &now_str,
            ));
            finishing = Some(("Complete", "SuccessPolicy".into(), message));
        } else if util::completions_reached(
            &job,
            succeeded,
            i32::try_from(active.len()).unwrap_or(0),
        ) {
            let (reason, message) = (
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            );
            conditions.push(condition(
                "SuccessCriteriaMet",
                "True",
                reason,
                message,
                &now_str,
            ));
            finishing = Some(("Complete", reason.into(), message.into()));
        }
    }

    let mut completion_time = None;
    if let Some((terminal, reason, message)) = &finishing {
        // Stop what still runs; the terminal condition waits until nothing does.
        for pod in &active {
            delete_pod(&pods_api, pod).await?;
        }
        let running = pods
            .iter()
            .any(|p| finished_as(p).is_none() || is_terminating(p));
        if active.is_empty() && !running && uncounted_ok.is_empty() && uncounted_failed.is_empty() {
            conditions.push(condition(terminal, "True", reason, message, &now_str));
            if *terminal == "Complete" {
                completion_time = Some(now_str.clone());
                state
                    .recorder
                    .record(&job, EventType::Normal, "Completed", "Job completed".into())
                    .await;
            } else {
                state
                    .recorder
                    .record(&job, EventType::Warning, reason, message.clone())
                    .await;
            }
        } else {
            requeue = Some(Duration::from_secs(1));
        }
    } else if suspended {
        for pod in &active {
            delete_pod(&pods_api, pod).await?;
        }
        if !has_condition(&job, "Suspended") {
            conditions.retain(|c| c["type"] != "Suspended");
            conditions.push(condition(
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now_str,
            ));
            state
                .recorder
                .record(&job, EventType::Normal, "Suspended", "Job suspended".into())
                .await;
        }
        start_time = None;
    } else {
        if has_condition(&job, "Suspended") {
            conditions.retain(|c| c["type"] != "Suspended");
            conditions.push(condition(
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                &now_str,
            ));
            state
                .recorder
                .record(&job, EventType::Normal, "Resumed", "Job resumed".into())
                .await;
        }
        if start_time.is_none() {
            start_time = Some(now_str.clone());
            if let Some(deadline) = job.spec.as_ref().and_then(|s| s.active_deadline_seconds) {
                requeue = Some(Duration::from_secs(
                    u64::try_from(deadline).unwrap_or(0) + 1,
                ));
            }
        }
        let seen = |name: &str| state.pods.get(&ObjectRef::new(name).within(&ns)).is_some();
        if state.expectations.satisfied(&key, seen) {
            let wait = manage_pods(
                &state,
                &job,
                &pods,
                &active,
                succeeded,
                &completed_indexes,
                &failed_indexes,
                &index_failures,
                &key,
            )
            .await?;
            if let Some(w) = wait {
                requeue = Some(requeue.map_or(w, |r| r.min(w)));
            }
        }
    }

    let mut desired = json!({
        "active": (!active.is_empty()).then_some(active.len()),
        "ready": ready,
        "terminating": terminating,
        "succeeded": (succeeded > 0).then_some(succeeded),
        "failed": (failed > 0).then_some(failed),
        "startTime": start_time,
        "conditions": crate::list_or_null(&conditions),
        "uncountedTerminatedPods": {
            "succeeded": crate::list_or_null(&uncounted_ok.iter().collect::<Vec<_>>()),
            "failed": crate::list_or_null(&uncounted_failed.iter().collect::<Vec<_>>())},
    });
    if indexed {
        let formatted = util::format_indexes(&completed_indexes);
        desired["completedIndexes"] = json!(formatted);
    }
    if per_index_limit.is_some() {
        desired["failedIndexes"] = json!(util::format_indexes(&failed_indexes));
    }
    if let Some(t) = completion_time {
        desired["completionTime"] = json!(t);
    }
    let unchanged = desired.as_object().is_some_and(|m| {
        m.iter().all(|(k, v)| match k.as_str() {
            "uncountedTerminatedPods" => {
                status[k]["succeeded"].as_array().map_or(0, Vec::len) == uncounted_ok.len()
                    && status[k]["failed"].as_array().map_or(0, Vec::len) == uncounted_failed.len()
                    && status[k].is_object()
            }
            _ => status[k] == *v,
        })
    });
    if !unchanged {
        match jobs_api
            .patch_status(
                &job.name_any(),
                &PatchParams::default(),
                &Patch::Merge(
                    &json!({"metadata": {"resourceVersion": resource_version}, "status": desired}),
                ),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Creates or deletes pods towards the wanted number of active ones; returns how long to wait
/// when creation is held back by the failure backoff.
#[allow(clippy::too_many_arguments)]
async fn manage_pods(
    state: &State,
    job: &Job,
    pods: &[Pod],
    active: &[&Pod],
    succeeded: i32,
    completed_indexes: &BTreeSet<i32>,
    failed_indexes: &BTreeSet<i32>,
    index_failures: &BTreeMap<i32, i32>,
    key: &str,
) -> Result<Option<Duration>> {
    let ns = job.namespace().unwrap_or_default();
    let pods_api: Api<Pod> = Api::namespaced(state.ctx.client.clone(), &ns);
    // Failed indexes are as done as succeeded ones.
    let finished = succeeded.saturating_add(i32::try_from(failed_indexes.len()).unwrap_or(0));
    let want = usize::try_from(util::want_active(job, finished)).unwrap_or(0);
    if active.len() > want {
        let mut ranked: Vec<Pod> = active.iter().map(|p| (*p).clone()).collect();
        let all = ranked.clone();
        pod_util::sort_for_deletion(&mut ranked, &all);
        let victims: Vec<Pod> = ranked.into_iter().take(active.len() - want).collect();
        state
            .expectations
            .expect(key, Vec::new(), victims.iter().map(ResourceExt::name_any));
        for pod in &victims {
            delete_pod(&pods_api, pod).await?;
        }
        return Ok(None);
    }
    // podReplacementPolicy Failed: a terminating pod keeps its slot (and index) until it is
    // fully gone or Failed, so no replacement runs beside it.
    let occupying: Vec<&Pod> = if util::replaces_only_failed(job) {
        pods.iter()
            .filter(|p| {
                pod_util::is_active(p)
                    || (p.metadata.deletion_timestamp.is_some()
                        && !matches!(pod_util::phase(p), "Succeeded" | "Failed"))
            })
            .collect()
    } else {
        active.to_vec()
    };
    if occupying.len() >= want {
        return Ok(None);
    }
    // Back off after consecutive failures (failed pods newer than the last success).
    let last_success = pods
        .iter()
        .filter(|p| pod_util::phase(p) == "Succeeded")
        .filter_map(finish_time)
        .max();
    let failures: Vec<Timestamp> = pods
        .iter()
        .filter(|p| pod_util::phase(p) == "Failed")
        .filter_map(finish_time)
        .filter(|t| last_success.is_none_or(|s| *t > s))
        .collect();
    if let Some(last_failure) = failures.iter().max() {
        let delay = util::backoff_delay(u32::try_from(failures.len()).unwrap_or(u32::MAX));
        let elapsed = Timestamp::now().as_second() - last_failure.as_second();
        let remaining = i64::try_from(delay.as_secs()).unwrap_or(i64::MAX) - elapsed;
        if remaining > 0 {
            return Ok(Some(Duration::from_secs(remaining.unsigned_abs())));
        }
    }
    let indexes: Vec<Option<i32>> = if util::is_indexed(job) {
        let running: BTreeSet<i32> = occupying
            .iter()
            .filter_map(|p| util::pod_index(p))
            .collect();
        (0..util::completions(job).unwrap_or(0))
            .filter(|i| {
                !completed_indexes.contains(i)
                    && !failed_indexes.contains(i)
                    && !running.contains(i)
            })
            .take(want - occupying.len())
            .map(Some)
            .collect()
    } else {
        vec![None; want - occupying.len()]
    };
    let mut created = Vec::new();
    let mut failure = None;
    for index in indexes {
        let mut pod = pod_from_template(job, index)?;
        if let Some(i) = index
            && util::backoff_limit_per_index(job).is_some()
        {
            let count = index_failures.get(&i).copied().unwrap_or(0);
            pod.metadata
                .annotations
                .get_or_insert_default()
                .insert(util::INDEX_FAILURE_COUNT.into(), count.to_string());
        }
        match pods_api.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                let name = p.name_any();
                state
                    .recorder
                    .record(
                        job,
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
                        job,
                        EventType::Warning,
                        "FailedCreate",
                        format!("Error creating: {}", api_message(&e)),
                    )
                    .await;
                failure = Some(e);
                break;
            }
        }
    }
    state.expectations.expect(key, created, Vec::new());
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(None),
    }
}

/// A pod from the Job's template: generated name (`<job>-<index>-` when Indexed), the tracking
/// finalizer, the controller reference, and for Indexed Jobs the completion index as
/// annotation, label, hostname and `JOB_COMPLETION_INDEX` (upstream `addCompletionIndexEnvVariables`).
fn pod_from_template(job: &Job, index: Option<i32>) -> Result<Pod> {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .ok_or_else(|| Error::Invalid("spec.template is missing".into()))?;
    let meta = template.metadata.unwrap_or_default();
    let name = job.name_any();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = meta.annotations.unwrap_or_default();
    let mut finalizers = meta.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.into());
    let mut spec = template.spec.unwrap_or_default();
    let generate_name = match index {
        Some(i) => {
            annotations.insert(COMPLETION_INDEX.into(), i.to_string());
            labels.insert(COMPLETION_INDEX.into(), i.to_string());
            if spec.hostname.is_none() {
                spec.hostname = Some(format!("{name}-{i}"));
            }
            for container in spec
                .init_containers
                .iter_mut()
                .flatten()
                .chain(spec.containers.iter_mut())
            {
                let env = container.env.get_or_insert_with(Vec::new);
                if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                    env.push(EnvVar {
                        name: "JOB_COMPLETION_INDEX".into(),
                        value: None,
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                api_version: None,
                                field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                            }),
                            ..Default::default()
                        }),
                    });
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            finalizers: Some(finalizers),
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

async fn delete_pod(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    match api.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Drops the tracking finalizer, guarded by the pod's resourceVersion.
async fn remove_finalizer(api: &Api<Pod>, pod: &Pod) -> Result<()> {
    let rest: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = json!({"metadata": {"finalizers": crate::list_or_null(&rest), "resourceVersion": pod.metadata.resource_version}});
    match api
        .patch(
            &pod.name_any(),
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
