//! The arithmetic of Jobs, free of I/O (pkg/controller/job: indexed_job_utils.go,
//! pod_failure_policy.go, backoff_utils.go, job_controller.go `wantActive`).

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, PodFailurePolicyRule};
use k8s_openapi::api::core::v1::Pod;

/// Finalizer that keeps a Job's pods until the controller has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label carrying an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's `DefaultJobPodFailureBackOff`.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Upstream's `MaxJobPodFailureBackOff`.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// `spec.completionMode` is `Indexed`.
pub fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// `spec.parallelism` (default 1).
pub fn parallelism(job: &Job) -> i32 {
    job.spec.as_ref().and_then(|s| s.parallelism).unwrap_or(1)
}

/// `spec.completions` (unset: any one success completes the Job).
pub fn completions(job: &Job) -> Option<i32> {
    job.spec.as_ref().and_then(|s| s.completions)
}

/// `spec.backoffLimit` (default 6).
pub fn backoff_limit(job: &Job) -> i32 {
    job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(6)
}

/// The index of an Indexed Job's pod, from its annotation.
pub fn pod_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// Parses `status.completedIndexes` (`"1,3-5,7"`).
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    set.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    set.insert(i);
                }
            }
        }
    }
    set
}

/// Formats indexes as `status.completedIndexes` does: ascending, consecutive runs as `a-b`.
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        // Upstream writes two adjacent indexes as a pair, not a range.
        parts.push(match end - start {
            0 => start.to_string(),
            1 => format!("{start},{end}"),
            _ => format!("{start}-{end}"),
        });
    }
    parts.join(",")
}

/// How many pods should run now: completions left (or parallelism when completions is unset
/// and nothing succeeded yet), capped by parallelism.
pub fn want_active(job: &Job, succeeded: i32) -> i32 {
    let parallelism = parallelism(job).max(0);
    match completions(job) {
        None if succeeded > 0 => 0,
        None => parallelism,
        Some(c) => (c - succeeded).clamp(0, parallelism),
    }
}

/// True when the success criteria are met (upstream `complete` in `syncJob`).
pub fn completions_reached(job: &Job, succeeded: i32, active: i32) -> bool {
    match completions(job) {
        None => succeeded > 0 && active == 0,
        Some(c) => succeeded >= c,
    }
}

/// Delay before creating pods again after `failures` consecutive failures: 10 s doubling up to
/// 10 min (upstream `getRemainingTime` of the backoff record).
pub fn backoff_delay(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    BACKOFF_BASE
        .checked_mul(factor)
        .unwrap_or(BACKOFF_MAX)
        .min(BACKOFF_MAX)
}

/// What a podFailurePolicy rule decided about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureAction {
    /// Fail the whole Job with this message.
    FailJob(String),
    /// Do not count the failure against backoffLimit.
    Ignore,
    /// Count it (also when no rule matches).
    Count,
    /// Fail the pod's index (Indexed Jobs with backoffLimitPerIndex).
    FailIndex,
}

/// Applies `spec.podFailurePolicy` to a failed pod (upstream `matchPodFailurePolicy`).
pub fn match_failure_policy(job: &Job, pod: &Pod) -> FailureAction {
    let Some(rules) = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
        .map(|p| &p.rules)
    else {
        return FailureAction::Count;
    };
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    for (index, rule) in rules.iter().enumerate() {
        let Some(subject) = rule_matches(rule, pod) else {
            continue;
        };
        return match rule.action.as_str() {
            "FailJob" => FailureAction::FailJob(match subject {
                Matched::ExitCode(container, code) => format!(
                    "Container {container} for pod {ns}/{pod_name} failed with exit code {code} matching FailJob rule at index {index}"
                ),
                Matched::Condition(type_) => format!(
                    "Pod {ns}/{pod_name} has condition {type_} matching FailJob rule at index {index}"
                ),
            }),
            "Ignore" => FailureAction::Ignore,
            "FailIndex" => FailureAction::FailIndex,
            _ => FailureAction::Count,
        };
    }
    FailureAction::Count
}

enum Matched {
    ExitCode(String, i32),
    Condition(String),
}

fn rule_matches(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<Matched> {
    let status = pod.status.as_ref()?;
    if let Some(req) = &rule.on_exit_codes {
        let statuses = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten());
        for cs in statuses {
            if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                continue;
            }
            let Some(code) = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| t.exit_code)
            else {
                continue;
            };
            if code == 0 {
                continue;
            }
            let listed = req.values.contains(&code);
            let matched = match req.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            if matched {
                return Some(Matched::ExitCode(cs.name.clone(), code));
            }
        }
        return None;
    }
    for pattern in rule.on_pod_conditions.iter().flatten() {
        let found = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == pattern.type_ && c.status == pattern.status);
        if found {
            return Some(Matched::Condition(pattern.type_.clone()));
        }
    }
    None
}

/// The first `successPolicy` rule the succeeded indexes satisfy (upstream
/// `matchSuccessPolicy`), as the SuccessCriteriaMet message; rules only apply to Indexed Jobs.
pub fn match_success_policy(job: &Job, succeeded: &BTreeSet<i32>) -> Option<String> {
    let rules = &job.spec.as_ref()?.success_policy.as_ref()?.rules;
    let completions = completions(job).unwrap_or(0);
    rules.iter().enumerate().find_map(|(position, rule)| {
        let matched = match (&rule.succeeded_indexes, rule.succeeded_count) {
            (Some(indexes), count) => {
                let wanted: BTreeSet<i32> = parse_indexes(indexes)
                    .into_iter()
                    .filter(|i| *i >= 0 && *i < completions)
                    .collect();
                let hits = wanted.intersection(succeeded).count();
                match count {
                    None => !wanted.is_empty() && hits == wanted.len(),
                    Some(count) => usize::try_from(count).is_ok_and(|c| hits >= c),
                }
            }
            (None, Some(count)) => usize::try_from(count).is_ok_and(|c| succeeded.len() >= c),
            (None, None) => false,
        };
        matched.then(|| format!("Matched rules at index {position}"))
    })
}

/// `podReplacementPolicy` is `Failed` (its default when a podFailurePolicy is set), rather
/// than `TerminatingOrFailed`.
pub fn replaces_only_failed(job: &Job) -> bool {
    let Some(spec) = job.spec.as_ref() else {
        return false;
    };
    match spec.pod_replacement_policy.as_deref() {
        Some(policy) => policy == "Failed",
        None => spec.pod_failure_policy.is_some(),
    }
}

/// Annotation counting the earlier failures of a pod's index (backoffLimitPerIndex).
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";

/// `spec.backoffLimitPerIndex`, for Indexed Jobs only.
pub fn backoff_limit_per_index(job: &Job) -> Option<i32> {
    is_indexed(job)
        .then(|| job.spec.as_ref()?.backoff_limit_per_index)
        .flatten()
}

/// The failures a pod's index had before it was created.
pub fn index_failure_count(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INDEX_FAILURE_COUNT))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Per index, the failures so far (upstream `getNewIndexFailureCounts`): a failed pod adds
/// one to the count it was created with, unless `ignored` says the failure does not count.
pub fn index_failures<'a>(
    failed_pods: impl IntoIterator<Item = (&'a Pod, bool)>,
) -> std::collections::BTreeMap<i32, i32> {
    let mut counts = std::collections::BTreeMap::new();
    for (pod, ignored) in failed_pods {
        let Some(index) = pod_index(pod) else {
            continue;
        };
        let count = index_failure_count(pod).saturating_add(i32::from(!ignored));
        let entry = counts.entry(index).or_insert(0);
        *entry = count.max(*entry);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": spec})).unwrap()
    }

    #[test]
    fn index_failures_add_to_the_count_each_pod_was_created_with() {
        let pod = |index: i32, count: Option<i32>| -> Pod {
            let mut annotations = json!({COMPLETION_INDEX: index.to_string()});
            if let Some(c) = count {
                annotations[INDEX_FAILURE_COUNT] = json!(c.to_string());
            }
            serde_json::from_value(json!({"metadata": {"annotations": annotations}})).unwrap()
        };
        let (a, b, c, d) = (pod(0, None), pod(0, Some(1)), pod(1, None), pod(2, Some(2)));
        let counts = index_failures([(&a, false), (&b, false), (&c, false), (&d, true)]);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [(0, 2), (1, 1), (2, 2)]
        );
    }

    #[test]
    fn success_policy_rules_match_in_order() {
        let j = job(
            json!({"completions": 5, "completionMode": "Indexed", "successPolicy": {"rules": [
            {"succeededIndexes": "0,2-3"},
            {"succeededIndexes": "1-4", "succeededCount": 2},
            {"succeededCount": 4}]}}),
        );
        assert_eq!(match_success_policy(&j, &parse_indexes("0,2")), None);
        assert_eq!(
            match_success_policy(&j, &parse_indexes("0,2-3")).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(
            match_success_policy(&j, &parse_indexes("0,1,4")).as_deref(),
            Some("Matched rules at index 1")
        );
        assert_eq!(match_success_policy(&j, &parse_indexes("1")), None);
        let plain = job(json!({"completions": 5, "completionMode": "Indexed"}));
        assert_eq!(match_success_policy(&plain, &parse_indexes("0-4")), None);
    }

    #[test]
    fn completed_indexes_round_trip_as_ranges() {
        let set = parse_indexes("1,3-5,7");
        assert_eq!(set.iter().copied().collect::<Vec<_>>(), [1, 3, 4, 5, 7]);
        assert_eq!(format_indexes(&set), "1,3-5,7");
        assert_eq!(format_indexes(&parse_indexes("0-1,4-5")), "0,1,4,5");
        assert_eq!(format_indexes(&[0, 1].into_iter().collect()), "0,1");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }

    #[test]
    fn active_pods_wanted_follow_completions_and_parallelism() {
        let j = job(json!({"completions": 5, "parallelism": 2, "template": {}}));
        assert_eq!(want_active(&j, 0), 2);
        assert_eq!(want_active(&j, 4), 1);
        assert_eq!(want_active(&j, 5), 0);
        assert!(completions_reached(&j, 5, 0));
        assert!(!completions_reached(&j, 4, 1));
        let work_queue = job(json!({"parallelism": 3, "template": {}}));
        assert_eq!(want_active(&work_queue, 0), 3);
        assert_eq!(want_active(&work_queue, 1), 0);
        assert!(!completions_reached(&work_queue, 1, 2));
        assert!(completions_reached(&work_queue, 1, 0));
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
        assert_eq!(backoff_delay(0), Duration::ZERO);
        assert_eq!(backoff_delay(1), Duration::from_secs(10));
        assert_eq!(backoff_delay(2), Duration::from_secs(20));
        assert_eq!(backoff_delay(4), Duration::from_secs(80));
        assert_eq!(backoff_delay(7), Duration::from_secs(600));
        assert_eq!(backoff_delay(40), Duration::from_secs(600));
    }

    #[test]
    fn failure_policy_matches_exit_codes_and_conditions_in_rule_order() {
        let j = job(json!({"template": {}, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
        ]}}));
        let pod = |code: i32, disrupted: bool| -> Pod {
            let mut v = json!({"metadata": {"name": "j-abc", "namespace": "default"}, "status": {"phase": "Failed",
                "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": code}}}]}});
            if disrupted {
                v["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True"}]);
            }
            serde_json::from_value(v).unwrap()
        };
        assert_eq!(
            match_failure_policy(&j, &pod(42, false)),
            FailureAction::FailJob(
                "Container main for pod default/j-abc failed with exit code 42 matching FailJob rule at index 1".into()
            )
        );
        assert_eq!(
            match_failure_policy(&j, &pod(42, true)),
            FailureAction::Ignore
        );
        assert_eq!(
            match_failure_policy(&j, &pod(1, false)),
            FailureAction::Count
        );
    }
}
