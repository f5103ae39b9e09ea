//! The key-value store contract rkube's registry is built on, with etcd v3 semantics.
//!
//! One global, strictly increasing revision numbers every change; an object's resourceVersion is the
//! revision that last modified it (`mod_revision`). Writes are conditional on the revision the
//! writer read, so concurrent writers conflict instead of overwriting each other. A watch replays
//! every change after a given revision (unless compacted) and then streams live changes.
//!
//! Backends: [`memory::MemoryStore`] (reference, feature `testing`), `rkube-storage-sqlite`
//! (embedded default), and later etcd. All of them pass [`battery`] (feature `testing`).

use async_trait::async_trait;
use futures::stream::BoxStream;

#[cfg(any(test, feature = "testing"))]
pub mod battery;
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
    /// How many keys matched in all (after `start_after`, ignoring `limit`)
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
    #[error("key {key} was modified: expected revision {expected}, current {current}")]
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
    /// A watcher fell too far behind and was dropped; it must re-list.
    #[error("watch fell behind and was closed")]
    WatchLagged,
    /// The backend failed (I/O, database error, closed).
    #[error("storage backend error: {0}")]
    Backend(String),
}

/// A result of the store.
pub type Result<T> = std::result::Result<T, StorageError>;

/// A stream of events for one watch, in revision order. It ends with an error if the watcher lags.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// A store with etcd semantics. Every method is atomic; a successful write is durable on return.
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The latest value of `key`, or None.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys with the given prefix, in key order, strictly after `start_after` when given, at most
    /// `limit` keys (0 = no limit), as of `revision` (None = current). Reading at a compacted
    /// revision fails with [`StorageError::Compacted`], at a future one with `FutureRevision`.
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

    /// Events for keys under `prefix` with revision > `after_revision`, then live events.
    /// Fails with `Compacted` if events after `after_revision` are no longer kept.
    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream>;

    /// The current revision (the last committed write; 0 for an empty new store).
    async fn current_revision(&self) -> Result<Revision>;

    /// The oldest revision still readable: history at or below it is gone.
    async fn compacted_revision(&self) -> Result<Revision>;

    /// Drops history at or below `revision` (never the latest value of a live key).
    async fn compact(&self, revision: Revision) -> Result<()>;
}
