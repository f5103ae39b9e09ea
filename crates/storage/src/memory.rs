//! In-memory reference backend: the simplest code that has the full contract, so the battery can be
//! checked against something obviously right and other crates can test without a database.
//!
//! Every key keeps its versions (value or tombstone, with the revision that wrote it), so a range
//! at an old revision picks each key's last version at or below it. A log of events since the
//! compacted revision serves watch replay. One mutex guards it all: writes, replay snapshots and
//! publishing to the fan-out happen under it, which keeps events in revision order.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream;
use parking_lot::Mutex;

use crate::fanout::{self, DEFAULT_WATCH_CAPACITY, Fanout};
use crate::{Event, KeyValue, KvStore, RangeResult, Result, Revision, StorageError, WatchStream};

/// A [`KvStore`] in memory with full history, compaction and watch. Nothing survives a drop.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    fanout: Fanout,
}

#[derive(Debug, Default)]
struct State {
    revision: Revision,
    compacted: Revision,
    /// Each key's versions in revision order; `None` is a deletion.
    keys: BTreeMap<String, Vec<(Revision, Option<KeyValue>)>>,
    /// Every event with revision > `compacted`, in order: `log[i]` has revision `compacted + 1 + i`.
    log: VecDeque<Event>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store whose watchers may lag [`DEFAULT_WATCH_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_watch_capacity(DEFAULT_WATCH_CAPACITY)
    }

    /// An empty store whose watchers are dropped once they lag `capacity` events.
    pub fn with_watch_capacity(capacity: usize) -> Self {
        MemoryStore { state: Mutex::new(State::default()), fanout: Fanout::new(capacity) }
    }
}

impl State {
    fn latest(&self, key: &str) -> Option<&KeyValue> {
        self.keys.get(key).and_then(|versions| versions.last()).and_then(|(_, kv)| kv.as_ref())
    }

    /// Appends one change (a new value, or a deletion when `kv` is None) and returns its event.
    fn commit(&mut self, key: &str, kv: Option<KeyValue>, prev: Option<KeyValue>) -> Event {
        let revision = self.revision + 1;
        self.revision = revision;
        self.keys.entry(key.to_owned()).or_default().push((revision, kv.clone()));
        let event = match (kv, prev) {
            (Some(kv), prev) => Event::Put { kv, prev },
            (None, Some(prev)) => Event::Delete { prev, revision },
            // Callers only delete existing keys; keep the log dense anyway.
            (None, None) => Event::Delete {
                prev: KeyValue { key: key.to_owned(), value: vec![], create_revision: 0, mod_revision: 0 },
                revision,
            },
        };
        self.log.push_back(event.clone());
        event
    }

    fn check_expected(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let current = self.latest(key).cloned().ok_or_else(|| StorageError::NotFound { key: key.to_owned() })?;
        match expected {
            Some(expected) if expected != current.mod_revision => {
                Err(StorageError::Conflict { key: key.to_owned(), expected, current: Box::new(current) })
            }
            _ => Ok(current),
        }
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.state.lock().latest(key).cloned())
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        let state = self.state.lock();
        let at = match revision {
            Some(rev) if rev > 0 => rev,
            _ => state.revision,
        };
        if at > state.revision {
            return Err(StorageError::FutureRevision { requested: at, current: state.revision });
        }
        if at < state.compacted {
            return Err(StorageError::Compacted { requested: at, compacted: state.compacted });
        }
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut kvs = Vec::new();
        let mut remaining = 0i64;
        let matching = state
            .keys
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix));
        for (_, versions) in matching {
            let version = versions.iter().rev().find(|(rev, _)| *rev <= at);
            if let Some((_, Some(kv))) = version {
                remaining += 1;
                if limit == 0 || kvs.len() < limit {
                    kvs.push(kv.clone());
                }
            }
        }
        let more = remaining > kvs.len() as i64;
        Ok(RangeResult { kvs, more, remaining, revision: at })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let mut state = self.state.lock();
        if state.latest(key).is_some() {
            return Err(StorageError::AlreadyExists { key: key.to_owned() });
        }
        let revision = state.revision + 1;
        let kv = KeyValue { key: key.to_owned(), value, create_revision: revision, mod_revision: revision };
        let event = state.commit(key, Some(kv.clone()), None);
        self.fanout.publish(event);
        Ok(kv)
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue> {
        let mut state = self.state.lock();
        let prev = state.check_expected(key, Some(expected_revision))?;
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: prev.create_revision,
            mod_revision: state.revision + 1,
        };
        let event = state.commit(key, Some(kv.clone()), Some(prev));
        self.fanout.publish(event);
        Ok(kv)
    }

    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let mut state = self.state.lock();
        let prev = state.check_expected(key, expected_revision)?;
        let event = state.commit(key, None, Some(prev.clone()));
        let revision = event.revision();
        self.fanout.publish(event);
        Ok((prev, revision))
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        let state = self.state.lock();
        if after_revision < state.compacted {
            return Err(StorageError::Compacted { requested: after_revision + 1, compacted: state.compacted });
        }
        // Subscribing and snapshotting under the lock means no write falls between the two.
        let subscription = self.fanout.subscribe();
        let skip = usize::try_from(after_revision - state.compacted).unwrap_or(usize::MAX);
        let replay: Vec<Result<Event>> =
            state.log.iter().skip(skip).filter(|e| e.key().starts_with(prefix)).cloned().map(Ok).collect();
        // A watch after a future revision must not get the live events up to it either.
        let replayed_to = state.revision.max(after_revision);
        drop(state);
        Ok(fanout::watch_stream(prefix.to_owned(), stream::iter(replay).boxed(), replayed_to, subscription))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.state.lock().revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.state.lock().compacted)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut state = self.state.lock();
        if revision > state.revision {
            return Err(StorageError::FutureRevision { requested: revision, current: state.revision });
        }
        if revision <= state.compacted {
            return Ok(());
        }
        state.compacted = revision;
        // Keep each key's last version at or below `revision` (the state there stays readable)
        // unless it is a deletion, then drop keys left without versions.
        state.keys.retain(|_, versions| {
            let older = versions.iter().take_while(|(rev, _)| *rev <= revision).count();
            let keep_from = match versions.get(older.wrapping_sub(1)) {
                Some((_, Some(_))) => older - 1,
                _ => older,
            };
            versions.drain(..keep_from);
            !versions.is_empty()
        });
        while state.log.front().is_some_and(|e| e.revision() <= revision) {
            state.log.pop_front();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use super::*;

    crate::storage_battery!(|| async { MemoryStore::new() });

    #[tokio::test]
    async fn shared_arc_dyn_store_works_through_the_blanket_impl() {
        let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new());
        crate::battery::crud(store).await;
    }

    #[tokio::test]
    async fn slow_watcher_is_dropped_and_writers_continue() {
        let store = MemoryStore::with_watch_capacity(4);
        let mut watch = store.watch("/", 0).await.unwrap();
        for i in 0..20 {
            store.create(&format!("/k{i}"), vec![]).await.unwrap();
        }
        assert_eq!(watch.next().await.unwrap(), Err(StorageError::WatchLagged));
        assert!(watch.next().await.is_none());
        assert_eq!(store.current_revision().await.unwrap(), 20);
    }

    #[tokio::test]
    async fn compaction_drops_superseded_versions_and_tombstones() {
        let store = MemoryStore::new();
        let a = store.create("/a", b"1".to_vec()).await.unwrap();
        store.update("/a", b"2".to_vec(), a.mod_revision).await.unwrap();
        store.create("/b", b"x".to_vec()).await.unwrap();
        store.delete("/b", None).await.unwrap();
        store.compact(4).await.unwrap();
        let state = store.state.lock();
        assert_eq!(state.keys.len(), 1);
        assert_eq!(state.keys["/a"].len(), 1);
        assert!(state.log.is_empty());
    }
}
