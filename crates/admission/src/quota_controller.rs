//! Keeps every ResourceQuota's `status.hard` and `status.used` current, as upstream's resource
//! quota controller does (`pkg/controller/resourcequota`): a namespace's quotas are recomputed
//! from the stored objects when a quota's hard limits are new or changed, when an object is
//! updated or deleted (which releases usage: a pod finishing, a claim removed, a failed create
//! charged at admission), and on a periodic resync. Creates do not trigger a recount: admission
//! charged them already, and recounting before the object is stored would undercount.
//!
//! Writes carry the quota's resourceVersion as read, so a recount never overwrites a charge
//! admission made meanwhile; the namespace is simply queued again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rkube_apimachinery::ApiError;
use rkube_registry::watch::{Change, EventKind};
use rkube_registry::{ListOptions, Registry};
use serde_json::Value;

use crate::plugins::resource_quota::write_used;
use crate::quota::{counted_resource, hard_of, recompute};

/// How often every quota is recomputed regardless of changes.
const RESYNC: Duration = Duration::from_secs(30);
/// Changes arriving within this window are handled in one pass.
const BATCH: Duration = Duration::from_millis(100);

/// Runs until the task is aborted.
pub async fn run(registry: Arc<Registry>) {
    loop {
        let mut changes = registry.changes();
        if let Err(e) = sync(&registry, None).await {
            tracing::warn!(error = %e, "resource quota sync failed");
        }
        let mut resync = tokio::time::interval(RESYNC);
        resync.tick().await;
        let mut dirty: BTreeSet<String> = BTreeSet::new();
        loop {
            tokio::select! {
                change = changes.next() => {
                    let Some(change) = change else { break };
                    if let Some(ns) = affected_namespace(&registry, &change).await {
                        dirty.insert(ns);
                    }
                    continue;
                }
                _ = resync.tick() => {
                    dirty.clear();
                    if let Err(e) = sync(&registry, None).await {
                        tracing::warn!(error = %e, "resource quota resync failed");
                    }
                    continue;
                }
                _ = tokio::time::sleep(BATCH), if !dirty.is_empty() => {}
            }
            for ns in std::mem::take(&mut dirty) {
                match sync(&registry, Some(&ns)).await {
                    Ok(true) => {}
                    // A quota changed under the recount: count again.
                    Ok(false) => {
                        dirty.insert(ns);
                    }
                    Err(e) => tracing::warn!(error = %e, namespace = %ns, "resource quota sync failed"),
                }
            }
        }
        // The change stream ended (lagging or shutdown): start over with a full sync.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The namespace whose quotas a change may affect.
async fn affected_namespace(registry: &Registry, change: &Change) -> Option<String> {
    let ns = change.namespace.clone()?;
    if change.group.is_empty() && change.plural == "resourcequotas" {
        // Only new or changed limits need a recount; admission's own charges do not.
        return quotas_needing_sync(registry, &ns).await.then_some(ns);
    }
    if change.kind == EventKind::Added {
        return None;
    }
    let quotas = list_quotas(registry, Some(&ns)).await.ok()?;
    let tracked = quotas.iter().flat_map(|q| hard_of(q).into_keys()).filter_map(|n| counted_resource(&n)).any(|(g, p)| g == change.group && p == change.plural);
    tracked.then_some(ns)
}

async fn quotas_needing_sync(registry: &Registry, ns: &str) -> bool {
    let Ok(quotas) = list_quotas(registry, Some(ns)).await else { return true };
    quotas.iter().any(|q| {
        let used = &q["status"]["used"];
        q["spec"]["hard"] != q["status"]["hard"] || q["spec"]["hard"].as_object().into_iter().flatten().any(|(k, _)| used[k].is_null())
    })
}

async fn list_quotas(registry: &Registry, ns: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let Some(res) = registry.lookup("", "v1", "resourcequotas") else { return Ok(Vec::new()) };
    let listed = registry.list(&res, ns, &ListOptions::default()).await?;
    Ok(listed["items"].as_array().cloned().unwrap_or_default())
}

/// Recomputes the quotas of one namespace (or all); false when a quota changed under the
/// recount and was left for another pass.
pub async fn sync(registry: &Arc<Registry>, ns: Option<&str>) -> Result<bool, ApiError> {
    let mut complete = true;
    for quota in list_quotas(registry, ns).await? {
        let used = recompute(registry, &quota).await?;
        let hard_current = quota["status"]["hard"] == quota["spec"]["hard"];
        let used_current = used.keys().all(|k| {
            let text = quota["status"]["used"][k].as_str();
            text.and_then(rkube_apimachinery::quantity::milli_value) == used.get(k).copied()
        }) && quota["status"]["used"].as_object().map_or(0, |m| m.len()) == used.len();
        if hard_current && used_current {
            continue;
        }
        match write_used(registry, &quota, &used, true).await {
            Ok(()) => {}
            Err(e) if e.code == 409 => complete = false,
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(complete)
}
