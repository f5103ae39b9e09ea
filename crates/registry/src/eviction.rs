//! `pods/{name}/eviction` (policy/v1 Eviction), as upstream's `EvictionREST`
//! (pkg/registry/core/pod/storage/eviction.go): a pod covered by a PodDisruptionBudget is
//! deleted only while the budget allows a disruption, which the eviction takes (it decrements
//! `status.disruptionsAllowed` and records the pod in `status.disruptedPods`) before deleting;
//! otherwise the answer is 429 TooManyRequests. Terminal, pending and already-deleting pods are
//! deleted without consulting budgets.

use rkube_apimachinery::selectors::LabelSelector;
use rkube_apimachinery::{ApiError, ResourceInfo, meta};
use serde_json::{Value, json};

use crate::options::{DeleteOptions, ListOptions};
use crate::store::Registry;

/// Upstream's refusal message, which `kubectl drain` prints while it retries.
pub const BUDGET_VIOLATION: &str =
    "Cannot evict pod as it would violate the pod's disruption budget.";

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// Whether the budget lets this pod go now, and if so the budget with the disruption taken.
/// `Err` carries the 429 to answer.
pub fn take_disruption(pdb: &Value, pod: &Value, now: &str) -> Result<Option<Value>, ApiError> {
    let name = meta::name(pdb);
    let status = &pdb["status"];
    let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
    let current = status["currentHealthy"].as_i64().unwrap_or(0);
    let refuse = |detail: String| {
        ApiError::too_many_requests(
            BUDGET_VIOLATION,
            json!([{"reason": "DisruptionBudget", "message": detail}]),
        )
    };
    // An unready pod does not count as healthy, so evicting it costs nothing when the budget
    // is met (IfHealthyBudget, the default) or always (AlwaysAllow).
    if !is_ready(pod) {
        let policy = pdb["spec"]["unhealthyPodEvictionPolicy"]
            .as_str()
            .unwrap_or("IfHealthyBudget");
        if policy == "AlwaysAllow" || current >= desired {
            return Ok(None);
        }
        return Err(refuse(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
    if observed < generation {
        return Err(refuse(
            "The disruption budget is still being processed by the server.".into(),
        ));
    }
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed <= 0 {
        return Err(refuse(format!(
            "The disruption budget {name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    let mut updated = pdb.clone();
    updated["status"]["disruptionsAllowed"] = json!(allowed - 1);
    if !updated["status"]["disruptedPods"].is_object() {
        updated["status"]["disruptedPods"] = json!({});
    }
    updated["status"]["disruptedPods"][meta::name(pod)] = json!(now);
    Ok(Some(updated))
}

impl Registry {
    /// Evicts pod `name` in `ns` (`pods` is the pods resource) as the Eviction `eviction` asks.
    /// Answers upstream's `Status{status: Success}` (code 201).
    pub async fn evict_pod(
        &self,
        pods: &ResourceInfo,
        ns: &str,
        name: &str,
        eviction: &Value,
        dry_run: bool,
    ) -> Result<Value, ApiError> {
        if meta::name(eviction) != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let mut admitted = eviction.clone();
        self.admit_subresource_create(pods, Some(ns), name, "eviction", &mut admitted, dry_run)
            .await?;
        let pod = self.get(pods, Some(ns), name, "").await?;
        let mut opts = DeleteOptions {
            dry_run,
            ..Default::default()
        };
        let delete_options = &eviction["deleteOptions"];
        opts.grace_period_seconds = delete_options["gracePeriodSeconds"].as_i64();
        opts.precondition_uid = delete_options["preconditions"]["uid"]
            .as_str()
            .map(str::to_string);
        opts.precondition_resource_version = delete_options["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string);
        let phase = pod["status"]["phase"].as_str().unwrap_or("");
        let ignores_budgets = matches!(phase, "Succeeded" | "Failed" | "Pending")
            || meta::meta_str(&pod, "deletionTimestamp").is_some();
        if !ignores_budgets {
            self.take_budget(ns, &pod, dry_run).await?;
        }
        self.delete(pods, Some(ns), name, &opts).await?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }

    /// Finds the pod's budget and takes one disruption from it (none: nothing to take).
    async fn take_budget(&self, ns: &str, pod: &Value, dry_run: bool) -> Result<(), ApiError> {
        let Some(pdbs) = self.lookup("policy", "v1", "poddisruptionbudgets") else {
            return Ok(());
        };
        let list = self.list(&pdbs, Some(ns), &ListOptions::default()).await?;
        let labels = pod["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let matching: Vec<&Value> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pdb| {
                LabelSelector::from_label_selector_json(&pdb["spec"]["selector"])
                    .is_ok_and(|s| !s.matches_nothing() && s.matches(&labels))
            })
            .collect();
        let pdb = match matching.as_slice() {
            [] => return Ok(()),
            [one] => *one,
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        };
        let pdb_name = meta::name(pdb).to_string();
        let now = meta::now_rfc3339();
        // Check and take against the stored budget, so two evictions cannot spend one disruption.
        self.modify(&pdbs, Some(ns), &pdb_name, true, dry_run, |current| {
            Ok(take_disruption(current, pod, &now)?.unwrap_or_else(|| current.clone()))
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdb(allowed: i64, current: i64, desired: i64) -> Value {
        json!({"metadata": {"name": "zk-pdb", "generation": 1},
               "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "zk"}}},
               "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": current, "desiredHealthy": desired, "expectedPods": 3}})
    }

    fn pod(ready: bool) -> Value {
        json!({"metadata": {"name": "zk-0", "labels": {"app": "zk"}},
               "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn a_budget_with_room_gives_one_disruption() {
        let taken = take_disruption(&pdb(1, 3, 2), &pod(true), "2024-01-01T00:00:00Z")
            .unwrap()
            .unwrap();
        assert_eq!(taken["status"]["disruptionsAllowed"], 0);
        assert_eq!(
            taken["status"]["disruptedPods"]["zk-0"],
            "2024-01-01T00:00:00Z"
        );
    }

    #[test]
    fn an_exhausted_budget_answers_429_with_upstreams_message() {
        let err = take_disruption(&pdb(0, 2, 2), &pod(true), "now").unwrap_err();
        let status = err.to_status();
        assert_eq!(status["code"], 429);
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(
            status["message"],
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "DisruptionBudget", "message": "The disruption budget zk-pdb needs 2 healthy pods and has 2 currently"})
        );
    }

    #[test]
    fn unready_pods_go_when_the_healthy_budget_is_met() {
        assert_eq!(
            take_disruption(&pdb(0, 2, 2), &pod(false), "now").unwrap(),
            None
        );
        assert!(take_disruption(&pdb(0, 1, 2), &pod(false), "now").is_err());
    }
}
