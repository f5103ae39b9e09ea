//! The disruption controller (pkg/controller/disruption): PodDisruptionBudget status —
//! expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed, disruptedPods and the
//! DisruptionAllowed condition — which the pods `eviction` subresource consults.
//!
//! Upstream takes expectedPods from the scale of the pods' controllers; rkube counts the
//! matching pods that are not terminated, which is the same once a controller has its replicas.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use crate::context::{Context, drain, requeue_on_error};
use crate::deployment_util::scaled_value;
use crate::error::Result;
use crate::pod_util;

const COMPONENT: &str = "disruption-controller";
/// Upstream's `DeletionTimeout`: a disrupted pod not deleted by then counts again.
const DELETION_TIMEOUT_SECONDS: i64 = 120;

struct State {
    ctx: Context,
    pods: Store<Pod>,
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
    let controller = Controller::new(
        Api::<PodDisruptionBudget>::all(client),
        watcher::Config::default(),
    );
    let budgets = controller.store();
    let state = Arc::new(State { ctx, pods });
    let stream = controller
        .watches_stream(pod_events, move |pod| {
            let ns = pod.namespace().unwrap_or_default();
            budgets
                .state()
                .iter()
                .filter(|b| b.namespace().as_deref() == Some(ns.as_str()))
                .filter(|b| selector(b).is_some_and(|s| s.matches(pod.labels())))
                .map(|b| ObjectRef::from_obj(b.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, requeue_on_error, state);
    drain(COMPONENT, stream).await;
    Ok(())
}

fn selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    let s = pdb.spec.as_ref()?.selector.clone()?;
    Selector::try_from(s).ok()
}

/// The status numbers of a budget (upstream `getExpectedPodCount` + `updatePdbStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetNumbers {
    /// Pods the budget covers.
    pub expected: i32,
    /// Of those, Ready and not being disrupted.
    pub current_healthy: i32,
    /// How many must stay healthy.
    pub desired_healthy: i32,
    /// How many may be evicted now.
    pub disruptions_allowed: i32,
}

/// Computes the numbers from `minAvailable` or `maxUnavailable` (percentages round up).
pub fn budget_numbers(
    min_available: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    expected: i32,
    current_healthy: i32,
) -> BudgetNumbers {
    let desired_healthy = match (min_available, max_unavailable) {
        (Some(min), _) => scaled_value(Some(min), expected, true),
        (None, Some(max)) => (expected - scaled_value(Some(max), expected, true)).max(0),
        // Neither set: upstream's default is minAvailable 1.
        (None, None) => 1,
    };
    BudgetNumbers {
        expected,
        current_healthy,
        desired_healthy,
        disruptions_allowed: (current_healthy - desired_healthy).max(0),
    }
}

async fn reconcile(pdb: Arc<PodDisruptionBudget>, state: Arc<State>) -> Result<Action> {
    if tokio::time::timeout(Duration::from_secs(1), state.pods.wait_until_ready())
        .await
        .is_err()
    {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = pdb.namespace().unwrap_or_default();
    let Some(sel) = selector(&pdb) else {
        return Ok(Action::await_change());
    };
    let pods: Vec<Arc<Pod>> = state
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| sel.matches(p.labels()))
        .filter(|p| !matches!(pod_util::phase(p), "Succeeded" | "Failed"))
        .collect();
    let now = Timestamp::now();
    let status = serde_json::to_value(&pdb.status).unwrap_or(Value::Null);
    // Keep disrupted pods that still exist, are not yet being deleted, and are recent.
    let mut disrupted = Map::new();
    let mut requeue = None;
    for (name, at) in status["disruptedPods"].as_object().into_iter().flatten() {
        let alive = pods
            .iter()
            .any(|p| p.name_any() == *name && p.metadata.deletion_timestamp.is_none());
        let since = at.as_str().and_then(|s| s.parse::<Timestamp>().ok());
        let age = since.map_or(i64::MAX, |t| now.as_second() - t.as_second());
        if alive && age < DELETION_TIMEOUT_SECONDS {
            disrupted.insert(name.clone(), at.clone());
            requeue = Some(Duration::from_secs(
                u64::try_from(DELETION_TIMEOUT_SECONDS - age).unwrap_or(1),
            ));
        }
    }
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_util::is_ready(p))
        .filter(|p| !disrupted.contains_key(&p.name_any()))
        .count();
    let spec = pdb.spec.clone().unwrap_or_default();
    let numbers = budget_numbers(
        spec.min_available.as_ref(),
        spec.max_unavailable.as_ref(),
        i32::try_from(pods.len()).unwrap_or(i32::MAX),
        i32::try_from(healthy).unwrap_or(i32::MAX),
    );
    let allowed = numbers.disruptions_allowed > 0;
    let (cond_status, reason) = if allowed {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let mut condition = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "DisruptionAllowed"))
        .cloned()
        .unwrap_or(Value::Null);
    if condition["status"] != cond_status || condition["reason"] != reason {
        condition = json!({"type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": "",
            "lastTransitionTime": crate::now_rfc3339(), "observedGeneration": pdb.meta().generation});
    }
    let desired = json!({
        "observedGeneration": pdb.meta().generation,
        "expectedPods": numbers.expected,
        "currentHealthy": numbers.current_healthy,
        "desiredHealthy": numbers.desired_healthy,
        "disruptionsAllowed": numbers.disruptions_allowed,
        "disruptedPods": if disrupted.is_empty() { Value::Null } else { Value::Object(disrupted) },
        "conditions": [condition],
    });
    let unchanged = desired.as_object().is_some_and(|m| {
        m.iter().all(|(k, v)| match v {
            Value::Number(_) => status[k].as_i64().unwrap_or(0) == v.as_i64().unwrap_or(0),
            _ => status[k] == *v,
        })
    });
    if !unchanged {
        let api: Api<PodDisruptionBudget> = Api::namespaced(state.ctx.client.clone(), &ns);
        // The eviction subresource writes this status too: never overwrite a disruption it took.
        let patch =
            json!({"metadata": {"resourceVersion": pdb.resource_version()}, "status": desired});
        match api
            .patch_status(
                &pdb.name_any(),
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
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_numbers_follow_min_available_and_max_unavailable() {
        let int = IntOrString::Int;
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(
            budget_numbers(Some(&int(2)), None, 3, 3),
            BudgetNumbers {
                expected: 3,
                current_healthy: 3,
                desired_healthy: 2,
                disruptions_allowed: 1
            }
        );
        assert_eq!(
            budget_numbers(Some(&int(2)), None, 2, 2).disruptions_allowed,
            0
        );
        assert_eq!(
            budget_numbers(Some(&pct("50%")), None, 3, 3).desired_healthy,
            2
        );
        assert_eq!(budget_numbers(None, Some(&int(1)), 3, 3).desired_healthy, 2);
        // maxUnavailable percentages round up, so 10% of 3 still allows one.
        assert_eq!(
            budget_numbers(None, Some(&pct("10%")), 3, 3).disruptions_allowed,
            1
        );
        assert_eq!(
            budget_numbers(None, Some(&int(1)), 3, 1).disruptions_allowed,
            0
        );
    }
}
