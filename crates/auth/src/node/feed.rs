//! Keeps the node graph in step with the store: a snapshot of pods, PersistentVolumes and
//! VolumeAttachments from the watch cache, then their events (upstream's graph_populator reads
//! shared informers). No request ever lists anything.

use std::sync::Arc;

use rkube_registry::Registry;
use rkube_watch_cache::{CacheWatcher, EventKind};
use serde_json::Value;

use super::NodeAuthorizer;
use super::graph::Graph;

const PODS: &str = "/registry/core/pods/";
const PERSISTENT_VOLUMES: &str = "/registry/core/persistentvolumes/";
const VOLUME_ATTACHMENTS: &str = "/registry/storage.k8s.io/volumeattachments/";
const PREFIXES: [&str; 3] = [PODS, PERSISTENT_VOLUMES, VOLUME_ATTACHMENTS];

/// `(namespace, name)` of a key `<prefix>[<ns>/]<name>`.
fn key_names<'k>(prefix: &str, key: &'k str) -> (&'k str, &'k str) {
    let rest = key.strip_prefix(prefix).unwrap_or(key);
    rest.split_once('/').unwrap_or(("", rest))
}

fn apply(graph: &mut Graph, prefix: &str, key: &str, object: Option<&Value>) {
    let (ns, name) = key_names(prefix, key);
    match (prefix, object) {
        (PODS, Some(o)) => graph.set_pod(o),
        (PODS, None) => graph.delete_pod(ns, name),
        (PERSISTENT_VOLUMES, Some(o)) => graph.set_pv(o),
        (PERSISTENT_VOLUMES, None) => graph.delete_pv(name),
        (VOLUME_ATTACHMENTS, Some(o)) => graph.set_volume_attachment(o),
        (VOLUME_ATTACHMENTS, None) => graph.delete_volume_attachment(name),
        _ => {}
    }
}

/// The revision every watcher has delivered up to, when all are idle.
fn progress(watchers: &[CacheWatcher]) -> Option<i64> {
    watchers.iter().map(CacheWatcher::progress).collect::<Option<Vec<_>>>()?.into_iter().min()
}

/// Runs until the watch cache shuts down.
pub async fn run(node: Arc<NodeAuthorizer>, registry: Arc<Registry>) {
    loop {
        let mut graph = Graph::default();
        let mut watchers = Vec::new();
        let mut revision = i64::MAX;
        for prefix in PREFIXES {
            let (items, rev, watcher) = registry.cache().snapshot_and_watch(prefix);
            for kv in items {
                match serde_json::from_slice::<Value>(&kv.value) {
                    Ok(v) => apply(&mut graph, prefix, &kv.key, Some(&v)),
                    Err(e) => tracing::warn!(key = %kv.key, error = %e, "undecodable object left out of the node graph"),
                }
            }
            revision = revision.min(rev);
            watchers.push(watcher);
        }
        node.replace_graph(graph, revision);
        loop {
            let [pods, pvs, vas] = &mut watchers[..] else { return };
            let next = tokio::select! {
                e = pods.next() => Some((PODS, e)),
                e = pvs.next() => Some((PERSISTENT_VOLUMES, e)),
                e = vas.next() => Some((VOLUME_ATTACHMENTS, e)),
                _ = node.progress_wanted.notified() => None,
            };
            let Some((prefix, event)) = next else {
                if let Some(p) = progress(&watchers) {
                    node.mark(p);
                }
                continue;
            };
            match event {
                Some(Ok(ev)) => {
                    let object = match ev.kind {
                        EventKind::Deleted => None,
                        _ => serde_json::from_slice::<Value>(&ev.kv.value).ok(),
                    };
                    node.update(|g| apply(g, prefix, ev.key(), object.as_ref()));
                    if let Some(p) = progress(&watchers) {
                        node.mark(p);
                    }
                }
                Some(Err(e)) => {
                    tracing::info!(error = %e, "node graph watch ended; rebuilding the graph");
                    break;
                }
                None => return,
            }
        }
    }
}
