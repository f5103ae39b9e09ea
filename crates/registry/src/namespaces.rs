//! Namespace termination: once a namespace is marked for deletion, delete everything in it, then
//! clear its `kubernetes` finalizer so the namespace itself goes (what upstream's namespace
//! controller does through `namespaces/{name}/finalize`,
//! pkg/controller/namespace/deletion/namespaced_resources_deleter.go).
//!
//! It runs inside the server until the controller manager takes it over.

use std::sync::Arc;
use std::time::Duration;

use rkube_apimachinery::{ApiError, meta};
use serde_json::Value;

use crate::options::{DeleteOptions, ListOptions};
use crate::store::Registry;

/// How often terminating namespaces are re-checked while content with finalizers remains.
const RECHECK: Duration = Duration::from_secs(1);

/// Runs until the task is aborted.
pub async fn run_namespace_finalizer(registry: Arc<Registry>) {
    let Some(ns_res) = registry.lookup("", "v1", "namespaces") else { return };
    loop {
        let list = registry.list(&ns_res, None, &ListOptions::default()).await;
        if let Ok(list) = list {
            for ns in list["items"].as_array().into_iter().flatten() {
                if meta::meta_str(ns, "deletionTimestamp").is_none() {
                    continue;
                }
                let name = meta::name(ns).to_string();
                if let Err(e) = finalize_namespace(&registry, &name).await {
                    tracing::warn!(namespace = %name, error = %e, "namespace cleanup failed; will retry");
                }
            }
        }
        // Wake early when a namespace changes, otherwise re-check periodically.
        let mut w = registry.cache().watch("/registry/core/namespaces/", registry.cache().revision()).ok();
        match w.as_mut() {
            Some(w) => {
                let _ = tokio::time::timeout(RECHECK, w.next()).await;
            }
            None => tokio::time::sleep(RECHECK).await,
        }
    }
}

/// Deletes the namespace's content; when nothing is left, removes the `kubernetes` finalizer.
async fn finalize_namespace(registry: &Arc<Registry>, ns: &str) -> Result<(), ApiError> {
    for res in registry.resources() {
        if !res.namespaced() || !res.storage_version || !res.allows("delete") {
            continue;
        }
        registry
            .delete_collection(&res, Some(ns), &ListOptions::default(), &DeleteOptions { grace_period_seconds: Some(0), ..Default::default() })
            .await?;
    }
    // Objects with finalizers are only marked; the namespace waits for them.
    let still_there = count_remaining(registry, ns).await?;
    if still_there > 0 {
        tracing::debug!(namespace = %ns, still_there, "namespace content still terminating");
        return Ok(());
    }
    let Some(ns_res) = registry.lookup("", "v1", "namespaces") else { return Ok(()) };
    registry
        .modify(&ns_res, None, ns, false, false, |old| {
            let mut new = old.clone();
            if let Some(f) = new.get_mut("spec").and_then(|s| s.get_mut("finalizers")).and_then(Value::as_array_mut) {
                f.retain(|x| x != "kubernetes");
            }
            meta::remove_meta(&mut new, "resourceVersion");
            Ok(new)
        })
        .await
        .map(|_| ())
        .or_else(|e| if e.code == 404 { Ok(()) } else { Err(e) })
}

async fn count_remaining(registry: &Arc<Registry>, ns: &str) -> Result<usize, ApiError> {
    let mut n = 0;
    for res in registry.resources() {
        if !res.namespaced() || !res.storage_version {
            continue;
        }
        let left = registry.list(&res, Some(ns), &ListOptions::default()).await?;
        n += left["items"].as_array().map_or(0, Vec::len);
    }
    Ok(n)
}
