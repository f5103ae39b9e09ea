//! Pod garbage collector (pkg/controller/podgc/gc_controller.go): every 20 s it deletes the
//! oldest terminated pods above `--terminated-pod-gc-threshold` (12500), pods bound to nodes
//! that no longer exist (after marking them Failed with a DisruptionTarget condition), and
//! unscheduled pods that are being deleted.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::context::Context;
use crate::error::Result;
use crate::pod_util;

/// Upstream's `gcCheckPeriod`.
const PERIOD: Duration = Duration::from_secs(20);
/// Upstream's default `--terminated-pod-gc-threshold`.
pub const TERMINATED_THRESHOLD: usize = 12500;

/// Runs the collector.
pub async fn run(ctx: Context) -> Result<()> {
    loop {
        if let Err(e) = pass(&ctx.client, TERMINATED_THRESHOLD).await {
            tracing::warn!(error = %e, "pod garbage collection failed");
        }
        tokio::time::sleep(PERIOD).await;
    }
}

async fn pass(client: &Client, threshold: usize) -> Result<()> {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let nodes: HashSet<String> = Api::<Node>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    let force = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };

    for pod in terminated_over_threshold(&pods, threshold) {
        delete(client, pod, &DeleteParams::default()).await?;
    }
    for pod in &pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if !node.is_empty() && !nodes.contains(node) {
            // Re-check live: the node may have been created after the list.
            if Api::<Node>::all(client.clone())
                .get_opt(node)
                .await?
                .is_some()
            {
                continue;
            }
            mark_failed(client, pod).await?;
            delete(client, pod, &force).await?;
        } else if node.is_empty() && pod.metadata.deletion_timestamp.is_some() {
            delete(client, pod, &force).await?;
        }
    }
    Ok(())
}

/// The oldest terminated pods beyond `threshold`.
pub fn terminated_over_threshold(pods: &[Pod], threshold: usize) -> Vec<&Pod> {
    let mut terminated: Vec<&Pod> = pods
        .iter()
        .filter(|p| matches!(pod_util::phase(p), "Succeeded" | "Failed"))
        .collect();
    if terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
    });
    let surplus = terminated.len() - threshold;
    terminated.truncate(surplus);
    terminated
}

async fn mark_failed(client: &Client, pod: &Pod) -> Result<()> {
    if matches!(pod_util::phase(pod), "Succeeded" | "Failed") {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let mut conditions = serde_json::to_value(
        pod.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default(),
    )?;
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c["type"] != "DisruptionTarget");
        list.push(
            json!({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": crate::now_rfc3339()}),
        );
    }
    let patch = json!({"status": {"phase": "Failed", "conditions": conditions}});
    match api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

async fn delete(client: &Client, pod: &Pod, params: &DeleteParams) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    tracing::info!(namespace = ?pod.namespace(), pod = %pod.name_any(), "pod garbage collector deleting a pod");
    match api.delete(&pod.name_any(), params).await {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": created}, "status": {"phase": phase}})).unwrap()
    }

    #[test]
    fn only_the_oldest_terminated_pods_beyond_the_threshold_go() {
        let pods = vec![
            pod("new-done", "Succeeded", "2024-01-03T00:00:00Z"),
            pod("running", "Running", "2024-01-01T00:00:00Z"),
            pod("old-failed", "Failed", "2024-01-01T00:00:00Z"),
            pod("mid-done", "Succeeded", "2024-01-02T00:00:00Z"),
        ];
        let names: Vec<String> = terminated_over_threshold(&pods, 1)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, ["old-failed", "mid-done"]);
        assert!(terminated_over_threshold(&pods, 3).is_empty());
    }
}
