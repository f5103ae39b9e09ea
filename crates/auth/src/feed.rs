//! Keeps the authorizer's index in step with the store: one snapshot of every RBAC object from
//! the watch cache, then its events (upstream's authorizer reads shared informers instead).

use std::sync::Arc;

use rkube_registry::Registry;
use rkube_watch_cache::EventKind;
use serde_json::Value;

use crate::authorizer::Authorizer;
use crate::index::{PolicyIndex, RBAC_PREFIX};

/// Runs until the watch cache shuts down.
pub async fn run(authorizer: Arc<Authorizer>, registry: Arc<Registry>) {
    loop {
        let (items, revision, mut watcher) = registry.cache().snapshot_and_watch(RBAC_PREFIX);
        let mut index = PolicyIndex::default();
        for kv in items {
            match serde_json::from_slice::<Value>(&kv.value) {
                Ok(v) => index.apply(&kv.key, Some(&v)),
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "undecodable RBAC object ignored"),
            }
        }
        authorizer.replace_index(index, revision);
        loop {
            tokio::select! {
                event = watcher.next() => match event {
                    Some(Ok(ev)) => {
                        let obj = match ev.kind {
                            EventKind::Deleted => None,
                            _ => serde_json::from_slice::<Value>(&ev.kv.value).ok(),
                        };
                        authorizer.update(|index| index.apply(ev.key(), obj.as_ref()), ev.revision);
                        if let Some(p) = watcher.progress() {
                            authorizer.mark(p);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "RBAC watch ended; reloading the policy");
                        break;
                    }
                    None => return,
                },
                _ = authorizer.progress_wanted.notified() => {
                    if let Some(p) = watcher.progress() {
                        authorizer.mark(p);
                    }
                }
            }
        }
    }
}
