//! The identity and arithmetic of StatefulSet pods, free of I/O
//! (pkg/controller/statefulset/stateful_set_utils.go).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use crate::pod_util;
use crate::replicaset::controller_ref;

/// Label naming the revision a pod (or ControllerRevision) was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Label carrying the pod's stable name, so a Service can select one replica.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label carrying the pod's ordinal (upstream 1.28+, PodIndexLabel).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// The ordinal of `pod_name` when it is `<set>-<N>`, as upstream's `getParentNameAndOrdinal`.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i32> {
    let (parent, ordinal) = pod_name.rsplit_once('-')?;
    if parent != set_name || ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ordinal.parse().ok()
}

/// `spec.replicas` (default 1).
pub fn replicas(set: &StatefulSet) -> i32 {
    set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `spec.ordinals.start` (default 0).
pub fn start_ordinal(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.ordinals.as_ref())
        .and_then(|o| o.start)
        .unwrap_or(0)
}

/// True unless `podManagementPolicy` is `Parallel`.
pub fn is_ordered(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.pod_management_policy.as_deref())
        != Some("Parallel")
}

/// `RollingUpdate` (the default) or `OnDelete`.
pub fn is_rolling_update(set: &StatefulSet) -> bool {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        != Some("OnDelete")
}

/// `updateStrategy.rollingUpdate.partition` (default 0).
pub fn partition(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0)
}

/// `minReadySeconds` (default 0).
pub fn min_ready_seconds(set: &StatefulSet) -> i32 {
    set.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `persistentVolumeClaimRetentionPolicy.whenDeleted` / `whenScaled` is `Delete`.
pub fn retention_deletes(set: &StatefulSet) -> (bool, bool) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let deletes = |v: Option<&String>| v.map(String::as_str) == Some("Delete");
    (
        deletes(policy.and_then(|p| p.when_deleted.as_ref())),
        deletes(policy.and_then(|p| p.when_scaled.as_ref())),
    )
}

/// The revision label of a pod.
pub fn pod_revision(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

/// Running and Ready (upstream `isRunningAndReady`).
pub fn is_running_and_ready(pod: &Pod) -> bool {
    pod_util::phase(pod) == "Running" && pod_util::is_ready(pod)
}

/// Running, Ready and not terminating (upstream `isHealthy`).
pub fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// Succeeded or Failed: the pod must be replaced.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(pod_util::phase(pod), "Succeeded" | "Failed")
}

/// Name of the claim for `template_name` of pod `<set>-<ordinal>`.
pub fn claim_name(template_name: &str, set_name: &str, ordinal: i32) -> String {
    format!("{template_name}-{set_name}-{ordinal}")
}

/// The claims pod `ordinal` needs, from `volumeClaimTemplates`, labelled with the set's
/// selector labels as upstream's `getPersistentVolumeClaims` does.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let Some(spec) = set.spec.as_ref() else {
        return Vec::new();
    };
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|template| {
            let template_name = template.metadata.name.clone().unwrap_or_default();
            let mut labels = template.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&template_name, &set_name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// Pod `ordinal` of `set` built from `template` at revision `revision` (upstream
/// `newStatefulSetPod` + `setPodRevision`): stable name and hostname, the governing service as
/// subdomain, identity labels, and one volume per claim template replacing any of that name.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let pod_name = format!("{set_name}-{ordinal}");
    let meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(pod_name.clone());
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .unwrap_or_default();
    if !service.is_empty() {
        spec.subdomain = Some(service);
    }
    let claims = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    if !claims.is_empty() {
        let mut volumes = spec.volumes.take().unwrap_or_default();
        for claim in &claims {
            let template_name = claim.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != template_name);
            volumes.push(Volume {
                name: template_name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&template_name, &set_name, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The status counters of a set over its pods (upstream `computeReplicaStatus`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// Pods that exist and are not terminated.
    pub replicas: i32,
    /// Of those, Ready.
    pub ready: i32,
    /// Ready for minReadySeconds.
    pub available: i32,
    /// At the current revision.
    pub current: i32,
    /// At the update revision.
    pub updated: i32,
}

/// Counts `pods` as upstream's status does: terminating pods do not count as replicas.
pub fn count_replicas(
    pods: &[Pod],
    current_revision: &str,
    update_revision: &str,
    min_ready_seconds: i32,
    now: Timestamp,
) -> ReplicaCounts {
    let mut counts = ReplicaCounts::default();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() || is_finished(pod) {
            continue;
        }
        counts.replicas += 1;
        if is_running_and_ready(pod) {
            counts.ready += 1;
            if pod_util::is_available(pod, min_ready_seconds, now) {
                counts.available += 1;
            }
        }
        let revision = pod_revision(pod).unwrap_or("");
        if revision == current_revision {
            counts.current += 1;
        }
        if revision == update_revision {
            counts.updated += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: serde_json::Value) -> StatefulSet {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn ordinals_come_only_from_the_sets_own_pod_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webs-1"), None);
        assert_eq!(ordinal_of("my-web", "my-web-3"), Some(3));
        assert_eq!(ordinal_of("web", "web-"), None);
    }

    #[test]
    fn pods_get_stable_identity_and_claim_volumes() {
        let s = set(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {
                "serviceName": "nginx",
                "selector": {"matchLabels": {"app": "nginx"}},
                "template": {"metadata": {"labels": {"app": "nginx"}},
                             "spec": {"containers": [{"name": "c", "image": "i"}],
                                      "volumes": [{"name": "www", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }));
        let template = s.spec.as_ref().unwrap().template.clone();
        let pod = new_pod(&s, &template, "web-abc", 2);
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["name"], "web-2");
        assert_eq!(
            v["metadata"]["labels"]["controller-revision-hash"],
            "web-abc"
        );
        assert_eq!(
            v["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            "web-2"
        );
        assert_eq!(v["metadata"]["labels"]["apps.kubernetes.io/pod-index"], "2");
        assert_eq!(v["spec"]["hostname"], "web-2");
        assert_eq!(v["spec"]["subdomain"], "nginx");
        assert_eq!(
            v["spec"]["volumes"],
            json!([{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}}])
        );
        assert_eq!(v["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        let claims = claims_for(&s, 2);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-2"));
        assert_eq!(
            claims[0]
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get("app")
                .map(String::as_str),
            Some("nginx")
        );
    }

    #[test]
    fn status_counts_skip_terminating_pods_and_split_revisions() {
        let pod = |name: &str, rev: &str, ready: bool, deleting: bool| -> Pod {
            let mut v = json!({
                "metadata": {"name": name, "labels": {"controller-revision-hash": rev}},
                "status": {"phase": "Running"}
            });
            if ready {
                v["status"]["conditions"] = json!([{"type": "Ready", "status": "True",
                    "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
            }
            if deleting {
                v["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
            }
            serde_json::from_value(v).unwrap()
        };
        let pods = [
            pod("web-0", "old", true, false),
            pod("web-1", "new", true, false),
            pod("web-2", "new", false, false),
            pod("web-3", "old", true, true),
        ];
        let now: Timestamp = "2024-01-01T00:00:05Z".parse().unwrap();
        let counts = count_replicas(&pods, "old", "new", 10, now);
        assert_eq!(
            counts,
            ReplicaCounts {
                replicas: 3,
                ready: 2,
                available: 0,
                current: 1,
                updated: 2
            }
        );
        assert_eq!(count_replicas(&pods, "old", "new", 0, now).available, 2);
    }
}
