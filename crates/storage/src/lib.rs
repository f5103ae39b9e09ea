//! The key-value store contract rkube's registry is built on, with etcd v3 semantics.
//!
//! One global, strictly increasing revision numbers every change; an object's resourceVersion is the
//! revision that last modified it (`mod_revision`). Writes are conditional on the revision the
//! writer read, so concurrent writers conflict instead of overwriting each other. A watch replays
//! every change after a given revision (unless compacted) and then streams live changes.
//!
//! Backends: `memory::MemoryStore` (reference, feature `testing`), `rkube-storage-sqlite`
//! (embedded default), and later etcd. All of them pass the `battery` module (feature `testing`).
//! Backends that publish their own commits share [`fanout`] for watches.

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;

#[cfg(any(test, feature = "testing"))]
pub mod battery;
pub mod fanout;
#[cfg(any(test, feature = "testing"))]
pub mod memory;

/// A revision of the store. The first write is revision 1; 0 means "none".
pub type Revision = i64;

/// A key and its value at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, e.g. `/registry/pods/default/web-0`.
    pub key: String,
    /// The stored bytes (JSON for rkube objects).
    pub value: Vec<u8>,
    /// The revision that created this key (since its last deletion).
    pub create_revision: Revision,
    /// The revision that last modified this key.
    pub mod_revision: Revision,
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A key was created or updated. `prev` is the value before (None on create).
    Put {
        /// The new value; `kv.mod_revision` is the event's revision.
        kv: KeyValue,
        /// The value before this change, if the key existed.
        prev: Option<KeyValue>,
    },
    /// A key was deleted at `revision`; `prev` is its last value.
    Delete {
        /// The value just before deletion.
        prev: KeyValue,
        /// The revision of the deletion.
        revision: Revision,
    },
}

impl Event {
    /// The revision at which the change happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// The result of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    /// Matching keys in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// Whether more keys matched past `limit`.
    pub more: bool,
    /// How many keys matched in all (after `start_after`, ignoring `limit`), including the ones in
    /// `kvs`; `remaining - kvs.len()` is a list's `remainingItemCount`.
    pub remaining: i64,
    /// The revision the read was served at.
    pub revision: Revision,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// Create of a key that exists.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// Update or delete of a key that does not exist.
    #[error("key {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// Update or delete guarded by a revision that is no longer the key's latest.
    #[error("key {key} was modified: expected revision {expected}, current {current_revision}", current_revision = .current.mod_revision)]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The key's current value.
        current: Box<KeyValue>,
    },
    /// Read or watch at a revision that compaction has removed.
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compacted revision.
        compacted: Revision,
    },
    /// Read at a revision the store has not reached yet.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The current revision.
        current: Revision,
    },
    /// A watcher fell too far behind and was dropped; it must re-list. Writers are never blocked
    /// by a slow watcher: the watcher's buffer overflows and its stream ends with this error.
    #[error("watch fell behind and was closed")]
    WatchLagged,
    /// The backend failed (I/O, database error, closed).
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// A result of the store.
pub type Result<T> = std::result::Result<T, StorageError>;

/// A stream of events for one watch, in revision order. It ends with an error if the watcher lags,
/// and ends (without an error) when the store is dropped.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// A store with etcd semantics. Every method is atomic; a successful write is durable on return.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The latest value of `key`, or None.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys with the given prefix, in key order, strictly after `start_after` when given, at most
    /// `limit` keys (0 = no limit), as of `revision` (None or `Some(r)` with r <= 0 = current).
    /// Reading below the compacted revision fails with [`StorageError::Compacted`] (reading *at*
    /// it works, as in etcd: compaction keeps the state as of that revision), reading above the
    /// current revision fails with `FutureRevision`. Keys compare as bytes, and the prefix is a
    /// plain byte prefix: callers end directory-like prefixes with `/`.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult>;

    /// Creates `key` if absent. Returns the new KeyValue (its revision is the commit revision).
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces `key`'s value if its current mod_revision equals `expected_revision`.
    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue>;

    /// Deletes `key`, if `expected_revision` is given only when it matches the current mod_revision.
    /// Returns the deleted value and the revision of the deletion.
    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// Events for keys under `prefix` with revision > `after_revision`, then live events, without
    /// gaps or duplicates. Fails with `Compacted` if `after_revision` is below the compacted
    /// revision (the events it would need are gone); `after_revision` equal to the compacted or
    /// the current revision is fine. `after_revision` above the current revision is allowed and
    /// simply waits for that revision, as an etcd watch does.
    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream>;

    /// The current revision (the last committed write; 0 for an empty new store).
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable: the state *at* it can still be ranged, the changes at
    /// or below it are gone (0 when never compacted).
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Drops history at or below `revision` (never the latest value of a live key). Compacting
    /// at or below the already compacted revision does nothing; above the current revision fails
    /// with `FutureRevision`.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Whether this value, though unchanged, should be written again: it is stored in a form
    /// the store no longer writes (encrypted with a key that is not the current one). Writers
    /// that skip no-op updates check this, so rewriting objects rotates keys as upstream.
    fn needs_rewrite(&self, _kv: &KeyValue) -> bool {
        false
    }
}

/// Lets an `Arc<dyn KvStore>` (or any shared store) be used wherever a store is expected.
#[async_trait]
impl<T: KvStore + ?Sized> KvStore for Arc<T> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        (**self).get(key).await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        (**self).range(prefix, start_after, limit, revision).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        (**self).create(key, value).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue> {
        (**self).update(key, value, expected_revision).await
    }

    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)> {
        (**self).delete(key, expected_revision).await
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        (**self).watch(prefix, after_revision).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        (**self).current_revision().await
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        (**self).compacted_revision().await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        (**self).compact(revision).await
    }

    fn needs_rewrite(&self, kv: &KeyValue) -> bool {
        (**self).needs_rewrite(kv)
    }
}
