//! Errors of the watch cache.

use rkube_storage::{Revision, StorageError};

/// Why a cache operation failed, or why a watcher ended.
///
/// The messages of [`CacheError::Expired`] and [`CacheError::TooLarge`] are upstream's, so the API
/// server can put them into a `metav1.Status` unchanged
/// (`staging/src/k8s.io/apiserver/pkg/storage/cacher/watch_cache.go`, `getAllEventsSinceLocked`;
/// `staging/src/k8s.io/apiserver/pkg/storage/errors.go`, `NewTooLargeResourceVersionError`).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CacheError {
    /// A watch asked for events after `requested`, but events of that resource up to `oldest` have
    /// been evicted from the window. The API server answers 410 Gone; the client re-lists.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The revision the client asked to watch after.
        requested: Revision,
        /// The oldest revision a watch of this resource may start after.
        oldest: Revision,
    },
    /// A watch asked for a revision the cache did not reach within the wait bound.
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLarge {
        /// The revision asked for.
        requested: Revision,
        /// The cache's revision when the wait gave up.
        current: Revision,
    },
    /// [`crate::WatchCache::wait_for_revision`] gave up.
    #[error("Too large resource version: {requested}, current: {current}")]
    Timeout {
        /// The revision waited for.
        requested: Revision,
        /// The cache's revision when the wait gave up.
        current: Revision,
    },
    /// This watcher's buffer filled up and it was closed so it cannot slow anyone else down. The
    /// client should watch again from the last revision it saw.
    #[error("watcher could not keep up and was closed")]
    Lagged,
    /// The cache re-listed the store (its store watch could not be resumed, e.g. after compaction);
    /// every watcher is ended with this error and must re-list.
    #[error("watch cache was re-initialized from storage")]
    Reset,
    /// The cache has been shut down.
    #[error("watch cache is shut down")]
    Closed,
    /// The store failed while loading the cache.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
