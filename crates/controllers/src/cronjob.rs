//! The CronJob controller (pkg/controller/cronjob, v2): creates Job `<cronjob>-<minutes>` at each
//! schedule time (in `spec.timeZone`), honouring `suspend`, `startingDeadlineSeconds` and
//! `concurrencyPolicy` (Allow, Forbid, Replace); keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`, and deletes finished Jobs beyond the history limits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::cronjob_util::{self as util, Schedule};
use crate::error::{Error, Result};
use crate::events::{EventRecorder, EventType, object_reference};
use crate::replicaset::{api_message, controller_of, controller_ref};

const COMPONENT: &str = "cronjob-controller";
/// Annotation recording the schedule time a Job was created for.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream warns when more schedule times than this were missed.
const MISSED_LIMIT: u32 = 100;

struct State {
    ctx: Context,
    jobs: Store<Job>,
    recorder: EventRecorder,
}

/// Runs the controller until its watches end.
pub async fn run(ctx: Context) -> Result<()> {
    let client = ctx.client.clone();
    let (jobs, writer) = reflector::store::<Job>();
    let job_events = reflector::reflector(
        writer,
        watcher(Api::<Job>::all(client.clone()), watcher::Config::default()),
    )
    .default_backoff()
    .touched_objects();
    let state = Arc::new(State {
        recorder: ctx.recorder(COMPONENT),
        ctx,
        jobs,
    });
    let stream = Controller::new(Api::<CronJob>::all(client), watcher::Config::default())
        .watches_stream(job_events, |job| {
            let owner = controller_of(&job).filter(|o| o.kind == "CronJob")?;
            Some(ObjectRef::new(&owner.name).within(&job.namespace().unwrap_or_default()))
        })
        .run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

/// `Complete` or `Failed` when the Job has that condition.
fn finished_condition(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

fn to_chrono(t: &k8s_openapi::jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), 0)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn reconcile(cached: Arc<CronJob>, state: Arc<State>) -> Result<Action> {
    if tokio::time::timeout(Duration::from_secs(1), state.jobs.wait_until_ready())
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = cached.namespace().unwrap_or_default();
    let api: Api<CronJob> = Api::namespaced(state.ctx.client.clone(), &ns);
    let jobs_api: Api<Job> = Api::namespaced(state.ctx.client.clone(), &ns);
    // Decisions rest on status.active and lastScheduleTime, so read the stored object.
    let cj = match api.get_opt(&cached.name_any()).await? {
        Some(c) if c.uid() == cached.uid() => c,
        _ => return Ok(Action::await_change()),
    };
    let cj_uid = cj.uid().unwrap_or_default();
    let spec = cj
        .spec
        .clone()
        .ok_or_else(|| Error::Invalid("spec is missing".into()))?;
    let status = serde_json::to_value(&cj.status).unwrap_or(Value::Null);
    let mut active: Vec<ObjectReference> =
        serde_json::from_value(status["active"].clone()).unwrap_or_default();
    let mut last_successful = status["lastSuccessfulTime"].as_str().map(str::to_string);
    let mut last_schedule = status["lastScheduleTime"].as_str().map(str::to_string);

    let mut owned: Vec<Job> = state
        .jobs
        .state()
        .iter()
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()))
        .filter(|j| controller_of(j.as_ref()).is_some_and(|o| o.uid == cj_uid))
        .map(|j| (**j).clone())
        .collect();
    owned.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));

    // Reconcile status.active with the Jobs that exist.
    for job in &owned {
        let listed = active.iter().any(|r| r.uid == job.uid());
        match finished_condition(job) {
            None if !listed => active.push(object_reference(job)),
            Some(condition) if listed => {
                active.retain(|r| r.uid != job.uid());
                state
                    .recorder
                    .record(
                        &cj,
                        EventType::Normal,
                        "SawCompletedJob",
                        format!(
                            "Saw completed job: {}, condition: {condition}",
                            job.name_any()
                        ),
                    )
                    .await;
            }
            _ => {}
        }
        if finished_condition(job) == Some("Complete")
            && let Some(done) = job.status.as_ref().and_then(|s| s.completion_time.as_ref())
            && let Some(done) = to_chrono(&done.0)
        {
            let newer = last_successful
                .as_deref()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                .is_none_or(|prev| done > prev);
            if newer {
                last_successful = Some(rfc3339(done));
            }
        }
    }
    let existing: Vec<Option<String>> = owned.iter().map(ResourceExt::uid).collect();
    let mut missing = Vec::new();
    active.retain(|r| {
        let found = existing.contains(&r.uid);
        if !found {
            missing.push(r.name.clone().unwrap_or_default());
        }
        found
    });
    for name in missing {
        state
            .recorder
            .record(
                &cj,
                EventType::Normal,
                "MissingJob",
                format!("Active job went missing: {name}"),
            )
            .await;
    }

    if cj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    clean_up_history(&state, &cj, &jobs_api, &owned).await;

    let mut requeue = None;
    let suspended = spec.suspend.unwrap_or(false);
    match Schedule::parse(&spec.schedule, spec.time_zone.as_deref()) {
        Err(message) => {
            state
                .recorder
                .record(&cj, EventType::Warning, "UnparseableSchedule", message)
                .await;
        }
        Ok(_) if suspended => {}
        Ok(schedule) => {
            let now = Utc::now();
            let created = cj
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(|t| to_chrono(&t.0))
                .unwrap_or(now);
            let last = last_schedule
                .as_deref()
                .and_then(|s| s.parse::<DateTime<Utc>>().ok());
            let earliest = util::earliest_time(last, created, spec.starting_deadline_seconds, now);
            let due = schedule.due(earliest, now, MISSED_LIMIT);
            if due.missed >= MISSED_LIMIT {
                state.recorder.record(&cj, EventType::Warning, "TooManyMissedTimes",
                    format!("too many missed start times: {}. Set or decrease .spec.startingDeadlineSeconds or check clock skew", due.missed)).await;
            }
            requeue = due.next.and_then(|n| (n - now).to_std().ok());
            if let Some(scheduled) = due.scheduled {
                let started =
                    start_job(&state, &cj, &jobs_api, &schedule, scheduled, &mut active).await?;
                if started {
                    last_schedule = Some(rfc3339(scheduled));
                }
            }
        }
    }

    let desired = json!({
        "active": crate::list_or_null(&active),
        "lastScheduleTime": last_schedule,
        "lastSuccessfulTime": last_successful,
    });
    let unchanged = ["active", "lastScheduleTime", "lastSuccessfulTime"]
        .iter()
        .all(|f| {
            let now_value = if status[*f].as_array().is_some_and(Vec::is_empty) {
                &Value::Null
            } else {
                &status[*f]
            };
            *now_value == desired[*f]
        });
    if !unchanged {
        let patch =
            json!({"metadata": {"resourceVersion": cj.resource_version()}, "status": desired});
        match api
            .patch_status(
                &cj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Wake up just after the next schedule time (upstream adds 100 ms).
    Ok(match requeue {
        Some(d) => Action::requeue(d + Duration::from_millis(100)),
        None => Action::await_change(),
    })
}

/// Starts the Job for `scheduled` unless the deadline passed, it already ran, or the
/// concurrency policy forbids it; true when `lastScheduleTime` should move to `scheduled`.
async fn start_job(
    state: &State,
    cj: &CronJob,
    jobs_api: &Api<Job>,
    schedule: &Schedule,
    scheduled: DateTime<Utc>,
    active: &mut Vec<ObjectReference>,
) -> Result<bool> {
    let spec = cj.spec.clone().unwrap_or_default();
    let now = Utc::now();
    if let Some(deadline) = spec.starting_deadline_seconds
        && scheduled < now - chrono::Duration::seconds(deadline)
    {
        state
            .recorder
            .record(
                cj,
                EventType::Warning,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    schedule.format_in_zone(scheduled)
                ),
            )
            .await;
        return Ok(false);
    }
    let name = util::job_name(&cj.name_any(), scheduled);
    if active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
    {
        return Ok(true);
    }
    match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !active.is_empty() => {
            state
                .recorder
                .record(
                    cj,
                    EventType::Normal,
                    "JobAlreadyActive",
                    "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
                )
                .await;
            return Ok(false);
        }
        "Replace" => {
            for r in std::mem::take(active) {
                let job_name = r.name.clone().unwrap_or_default();
                delete_job(state, cj, jobs_api, &job_name).await;
            }
        }
        _ => {}
    }
    let template = spec.job_template;
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        schedule.format_in_zone(scheduled),
    );
    let job = Job {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    match jobs_api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            state
                .recorder
                .record(
                    cj,
                    EventType::Normal,
                    "SuccessfulCreate",
                    format!("Created job {name}"),
                )
                .await;
            active.push(object_reference(&created));
            Ok(true)
        }
        // Created before (the status write that followed was lost).
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(true),
        Err(e) => {
            state
                .recorder
                .record(
                    cj,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating job: {}", api_message(&e)),
                )
                .await;
            Err(e.into())
        }
    }
}

async fn delete_job(state: &State, cj: &CronJob, jobs_api: &Api<Job>, name: &str) {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match jobs_api.delete(name, &params).await {
        Ok(_) => {
            state
                .recorder
                .record(
                    cj,
                    EventType::Normal,
                    "SuccessfulDelete",
                    format!("Deleted job {name}"),
                )
                .await;
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => {
            state
                .recorder
                .record(
                    cj,
                    EventType::Warning,
                    "FailedDelete",
                    format!("Deleted job: {}", api_message(&e)),
                )
                .await;
        }
    }
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` (default 3) and
/// `failedJobsHistoryLimit` (default 1).
async fn clean_up_history(state: &State, cj: &CronJob, jobs_api: &Api<Job>, owned: &[Job]) {
    let spec = cj.spec.clone().unwrap_or_default();
    for (condition, limit) in [
        ("Complete", spec.successful_jobs_history_limit.unwrap_or(3)),
        ("Failed", spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let finished: Vec<&Job> = owned
            .iter()
            .filter(|j| finished_condition(j) == Some(condition))
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = finished
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        for job in finished.into_iter().take(excess) {
            delete_job(state, cj, jobs_api, &job.name_any()).await;
        }
    }
}
