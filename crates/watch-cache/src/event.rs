//! The events the cache hands to watchers.

use std::sync::Arc;

use bytes::Bytes;
use rkube_storage::{KeyValue, Revision};

/// What happened to an object, as a Kubernetes watch event type says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created.
    Added,
    /// The key was updated.
    Modified,
    /// The key was deleted.
    Deleted,
}

/// One change seen by the cache, shared (behind `Arc`) by every watcher that receives it.
///
/// Like upstream's `watchCacheEvent` (`staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go`)
/// it carries the previous object, so the API server can tell a watcher with a selector that an
/// object left its selection. Like upstream's `cachingObject` (`caching_object.go`) it can keep its
/// wire encodings, so an event sent to many watchers is encoded once per format.
#[derive(Debug)]
pub struct CacheEvent {
    /// Added, Modified or Deleted.
    pub kind: EventKind,
    /// The object after the change; for [`EventKind::Deleted`], its last value before deletion
    /// (whose `mod_revision` is therefore older than [`CacheEvent::revision`]: upstream sends the
    /// deleted object with the deletion's resourceVersion, which the API server sets when encoding).
    pub kv: Arc<KeyValue>,
    /// The object before the change (None for Added; for Deleted the same value as `kv`).
    pub prev: Option<Arc<KeyValue>>,
    /// The store revision of the change.
    pub revision: Revision,
    /// Encodings made so far, by format name.
    encodings: parking_lot::Mutex<Vec<(String, Bytes)>>,
}

impl CacheEvent {
    /// A new event with no cached encodings.
    pub fn new(
        kind: EventKind,
        kv: Arc<KeyValue>,
        prev: Option<Arc<KeyValue>>,
        revision: Revision,
    ) -> Self {
        Self {
            kind,
            kv,
            prev,
            revision,
            encodings: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        &self.kv.key
    }

    /// The event encoded in `format` (a name the caller chooses, e.g. `"json"` or
    /// `"protobuf/apps/v1"`): made by `encode` the first time, then returned from the cache.
    ///
    /// Concurrent callers for the same event wait for the first encoding rather than repeat it
    /// (upstream `caching_object.go` uses a `sync.Once` per serializer for the same reason).
    /// Errors are not cached.
    pub fn encoded_with<E>(
        &self,
        format: &str,
        encode: impl FnOnce(&CacheEvent) -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let mut encodings = self.encodings.lock();
        if let Some((_, bytes)) = encodings.iter().find(|(f, _)| *f == format) {
            return Ok(bytes.clone());
        }
        let bytes = encode(self)?;
        encodings.push((format.to_string(), bytes.clone()));
        Ok(bytes)
    }
}
