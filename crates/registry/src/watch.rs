//! WATCH over the watch cache with upstream's resourceVersion semantics
//! (apiserver `pkg/storage/cacher/cacher.go` Watch, `cache_watcher.go`):
//! - unset or "0": synthetic ADDED events for the current state, then changes;
//! - N: every change after N (410 Expired when N is older than the cache keeps);
//! - `sendInitialEvents=true`: the current state, then a BOOKMARK annotated
//!   `k8s.io/initial-events-end`, then changes.
//!
//! Selectors are applied to both the new and the previous object so that an object moving out of
//! the selection is reported as DELETED and one moving in as ADDED, as the cacher does.

use std::collections::VecDeque;
use std::sync::Arc;

use rkube_apimachinery::{ApiError, ResourceInfo};
use rkube_storage::KeyValue;
use rkube_watch_cache::{CacheError, CacheEvent, CacheWatcher};
/// What happened to an object ([`Change::kind`]).
pub use rkube_watch_cache::EventKind;
use serde_json::Value;

use crate::keys;
use crate::options::ListOptions;
use crate::store::{Registry, parse_rv};

/// One event to send to the client.
#[derive(Debug, Clone)]
pub struct WatchEventOut {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`.
    pub event_type: &'static str,
    /// The object in the requested version; `Null` when `shared` is set (decode it with
    /// [`WatchStart::decode_shared`] only if the shared encoding is not cached yet).
    pub object: Value,
    /// The revision of the event.
    pub revision: i64,
    /// A live event every unfiltered watcher of the resource receives exactly alike: the server
    /// encodes it once per wire format and version and shares the bytes (upstream's
    /// `cachingObject`), instead of decoding and encoding it once per watcher.
    pub shared: Option<Arc<CacheEvent>>,
}

impl WatchEventOut {
    fn decoded(event_type: &'static str, object: Value, revision: i64) -> Self {
        Self { event_type, object, revision, shared: None }
    }
}

/// An open watch: initial events first, then live ones.
pub struct WatchStart {
    registry: Arc<Registry>,
    res: Arc<ResourceInfo>,
    opts: ListOptions,
    initial: VecDeque<WatchEventOut>,
    watcher: CacheWatcher,
}

impl Registry {
    /// Opens a watch. `send_initial_events` follows the request's `sendInitialEvents`.
    pub async fn watch(
        self: &Arc<Self>,
        res: Arc<ResourceInfo>,
        ns: Option<&str>,
        opts: ListOptions,
        send_initial_events: Option<bool>,
    ) -> Result<WatchStart, ApiError> {
        self.check_field_selector(&res, &opts)?;
        let prefix = keys::list_prefix(&res, ns);
        let rv = opts.resource_version.as_str();
        let synthetic = send_initial_events.unwrap_or(rv.is_empty() || rv == "0");
        let mut initial = VecDeque::new();
        let watcher = if synthetic {
            if !rv.is_empty() && rv != "0" {
                let want = parse_rv(rv)?;
                self.cache
                    .wait_for_revision(want, std::time::Duration::from_secs(5))
                    .await
                    .map_err(|_| ApiError::timeout(format!("Too large resource version: {want}")))?;
            } else if rv.is_empty() {
                let current = self.current_revision().await?;
                self.cache.wait_for_revision(current, std::time::Duration::from_secs(5)).await.map_err(ApiError::internal)?;
            }
            let (kvs, revision, watcher) = self.cache.snapshot_and_watch(&prefix);
            for kv in kvs {
                let obj = self.decode(&res, &kv)?;
                if self.matches(&res, &obj, &opts) {
                    initial.push_back(WatchEventOut::decoded("ADDED", obj, kv.mod_revision));
                }
            }
            if send_initial_events == Some(true) {
                let mut bookmark = self.bookmark_object(&res, revision);
                if let Some(m) = rkube_apimachinery::meta::metadata_mut(&mut bookmark) {
                    m.insert("annotations".into(), serde_json::json!({"k8s.io/initial-events-end": "true"}));
                }
                initial.push_back(WatchEventOut::decoded("BOOKMARK", bookmark, revision));
            }
            watcher
        } else {
            let after = parse_rv(rv)?;
            // A revision the cache has not reached yet: wait briefly, then fail before the stream
            // starts, as upstream's cacher does (`Too large resource version`, 504).
            if after > self.cache.revision() {
                if let Err(e) = self.cache.wait_for_revision(after, std::time::Duration::from_secs(3)).await {
                    return Err(ApiError::timeout(e.to_string()));
                }
            }
            match self.cache.watch(&prefix, after) {
                Ok(w) => w,
                Err(CacheError::Expired { requested, oldest }) => {
                    return Err(ApiError::expired(format!("too old resource version: {requested} ({oldest})")));
                }
                Err(e) => return Err(ApiError::timeout(e.to_string())),
            }
        };
        Ok(WatchStart { registry: self.clone(), res, opts, initial, watcher })
    }

    /// The object of a BOOKMARK event: only kind, apiVersion and resourceVersion.
    pub fn bookmark_object(&self, res: &ResourceInfo, revision: i64) -> Value {
        serde_json::json!({
            "kind": res.kind,
            "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": revision.to_string(), "creationTimestamp": null},
        })
    }
}

impl WatchStart {
    /// The next event, None when the watch ends (server shutdown), or an error (410 Expired when
    /// the watcher fell behind and must re-list).
    pub async fn next(&mut self) -> Option<Result<WatchEventOut, ApiError>> {
        if let Some(e) = self.initial.pop_front() {
            return Some(Ok(e));
        }
        loop {
            let ev = match self.watcher.next().await? {
                Ok(ev) => ev,
                Err(e) => {
                    return Some(Err(ApiError::expired(format!("watch closed: {e}; please re-list"))));
                }
            };
            match self.translate(&ev) {
                Ok(Some(out)) => return Some(Ok(out)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// A revision safe to report in a BOOKMARK now (every earlier matching event was sent).
    pub fn progress(&self) -> Option<i64> {
        if !self.initial.is_empty() {
            return None;
        }
        self.watcher.progress()
    }

    /// The bookmark object for a revision.
    pub fn bookmark(&self, revision: i64) -> WatchEventOut {
        WatchEventOut::decoded("BOOKMARK", self.registry.bookmark_object(&self.res, revision), revision)
    }

    fn decode(&self, kv: &KeyValue, revision: i64) -> Result<Value, ApiError> {
        let mut obj = self.registry.decode(&self.res, kv)?;
        rkube_apimachinery::meta::set_meta(&mut obj, "resourceVersion", Value::String(revision.to_string()));
        Ok(obj)
    }

    /// The object of a shared event, in this watch's version (what `object` would have held).
    pub fn decode_shared(&self, ev: &CacheEvent) -> Result<Value, ApiError> {
        self.decode(&ev.kv, ev.revision)
    }

    fn translate(&self, ev: &Arc<CacheEvent>) -> Result<Option<WatchEventOut>, ApiError> {
        let filtered = self.opts.label_selector.as_ref().is_some_and(|s| !s.is_empty())
            || self.opts.field_selector.as_ref().is_some_and(|s| !s.is_empty());
        if !filtered {
            let event_type = match ev.kind {
                EventKind::Deleted => "DELETED",
                EventKind::Modified if ev.prev.is_some() => "MODIFIED",
                EventKind::Added | EventKind::Modified => "ADDED",
            };
            return Ok(Some(WatchEventOut { event_type, object: Value::Null, revision: ev.revision, shared: Some(ev.clone()) }));
        }
        match ev.kind {
            EventKind::Deleted => {
                // The deleted object as it last was, at the deletion's revision.
                let obj = self.decode(&ev.kv, ev.revision)?;
                if self.registry.matches(&self.res, &obj, &self.opts) {
                    return Ok(Some(WatchEventOut::decoded("DELETED", obj, ev.revision)));
                }
                Ok(None)
            }
            EventKind::Added | EventKind::Modified => {
                let obj = self.decode(&ev.kv, ev.revision)?;
                let now = self.registry.matches(&self.res, &obj, &self.opts);
                let before = match &ev.prev {
                    Some(p) => {
                        let prev = self.decode(p, ev.revision)?;
                        self.registry.matches(&self.res, &prev, &self.opts)
                    }
                    None => false,
                };
                let t = match (before, now) {
                    (false, true) => "ADDED",
                    (true, true) => {
                        if ev.kind == EventKind::Added { "ADDED" } else { "MODIFIED" }
                    }
                    (true, false) => "DELETED",
                    (false, false) => return Ok(None),
                };
                Ok(Some(WatchEventOut::decoded(t, obj, ev.revision)))
            }
        }
    }
}

/// One change to a stored object, as in-process controllers that follow many resources see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Added, Modified or Deleted.
    pub kind: EventKind,
    /// The API group (`""` for core).
    pub group: String,
    /// The resource.
    pub plural: String,
    /// The namespace, for namespaced objects.
    pub namespace: Option<String>,
}

impl Change {
    /// Reads a storage key (`/registry/<group|core>/<plural>/[<namespace>/]<name>`).
    fn from_key(kind: EventKind, key: &str) -> Option<Self> {
        let parts: Vec<&str> = key.trim_start_matches('/').split('/').collect();
        let (group, plural, namespace) = match parts.as_slice() {
            ["registry", g, p, ns, _name] => (*g, *p, Some(ns.to_string())),
            ["registry", g, p, _name] => (*g, *p, None),
            _ => return None,
        };
        let group = if group == "core" { "" } else { group };
        Some(Self { kind, group: group.to_string(), plural: plural.to_string(), namespace })
    }
}

impl Registry {
    /// Every change to any object from now on. The stream ends when the watch cache drops this
    /// watcher (too slow to keep up, or shutdown); callers re-open it and resynchronise.
    pub fn changes(&self) -> futures::stream::BoxStream<'static, Change> {
        use futures::StreamExt;
        let Ok(watcher) = self.cache.watch("/registry/", self.cache.revision()) else {
            return futures::stream::empty().boxed();
        };
        watcher
            .into_stream()
            .take_while(|e| std::future::ready(e.is_ok()))
            .filter_map(|e| std::future::ready(e.ok().and_then(|e| Change::from_key(e.kind, e.key()))))
            .boxed()
    }
}

#[cfg(test)]
mod change_tests {
    use super::*;

    #[test]
    fn keys_name_the_resource_and_namespace_that_changed() {
        let c = Change::from_key(EventKind::Added, "/registry/apps/deployments/default/web");
        assert_eq!(c, Some(Change { kind: EventKind::Added, group: "apps".into(), plural: "deployments".into(), namespace: Some("default".into()) }));
        let c = Change::from_key(EventKind::Deleted, "/registry/core/namespaces/default");
        assert_eq!(c.map(|c| (c.group, c.plural, c.namespace)), Some((String::new(), "namespaces".into(), None)));
        assert_eq!(Change::from_key(EventKind::Added, "/other"), None);
    }
}
