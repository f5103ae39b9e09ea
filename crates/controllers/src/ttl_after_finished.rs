//! TTL-after-finished controller (pkg/controller/ttlafterfinished): a Job with
//! `ttlSecondsAfterFinished` is deleted (foreground propagation, so its pods go first) that many
//! seconds after it completed or failed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;

use crate::context::{Context, drain, requeue_on_error};
use crate::error::Result;

/// Runs the controller.
pub async fn run(ctx: Context) -> Result<()> {
    let stream = Controller::new(
        Api::<Job>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .run(reconcile, requeue_on_error, Arc::new(ctx));
    drain("ttl-after-finished", stream).await;
    Ok(())
}

/// When the Job finished: the transition time of its Complete or Failed condition.
pub fn finished_at(job: &Job) -> Option<Timestamp> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(finished) = finished_at(&job) else {
        return Ok(Action::await_change());
    };
    let left = finished.as_second() + i64::from(ttl) - Timestamp::now().as_second();
    if left > 0 {
        return Ok(Action::requeue(Duration::from_secs(left.unsigned_abs())));
    }
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &job.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: job.uid(),
            resource_version: job.resource_version(),
        }),
        ..Default::default()
    };
    tracing::info!(namespace = ?job.namespace(), job = %job.name_any(), "deleting a finished Job whose TTL expired");
    match api.delete(&job.name_any(), &params).await {
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(Action::await_change()),
        other => other.map(|_| Action::await_change()).map_err(Into::into),
    }
}
