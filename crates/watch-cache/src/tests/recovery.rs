//! Recovery when the store watch breaks: resume from the cache's revision, or re-list after
//! compaction. Uses a store wrapper that breaks watch streams and refuses new ones on demand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rkube_storage::memory::MemoryStore;
use rkube_storage::{
    KeyValue, KvStore, RangeResult, Result as StoreResult, Revision, StorageError, WatchStream,
};
use tokio::sync::oneshot;

use super::{PODS, config, keys, next, pod};
use crate::{CacheError, WatchCache};

/// A store whose watch streams can be broken, and whose new watches can be refused, on demand.
struct Flaky {
    inner: Arc<MemoryStore>,
    refuse_watch: AtomicBool,
    watches: AtomicUsize,
    kills: parking_lot::Mutex<Vec<oneshot::Sender<()>>>,
}

impl Flaky {
    fn new(inner: Arc<MemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            refuse_watch: AtomicBool::new(false),
            watches: AtomicUsize::new(0),
            kills: Default::default(),
        })
    }

    /// Ends every open watch stream with `WatchLagged`.
    fn break_watches(&self) {
        for kill in self.kills.lock().drain(..) {
            let _ = kill.send(());
        }
    }
}

#[async_trait]
impl KvStore for Flaky {
    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> StoreResult<RangeResult> {
        self.inner.range(prefix, start_after, limit, revision).await
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> StoreResult<KeyValue> {
        self.inner.create(key, value).await
    }
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> StoreResult<KeyValue> {
        self.inner.update(key, value, expected).await
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> StoreResult<(KeyValue, Revision)> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> StoreResult<WatchStream> {
        if self.refuse_watch.load(Ordering::SeqCst) {
            return Err(StorageError::Backend("watch refused by test".into()));
        }
        let stream = self.inner.watch(prefix, after).await?;
        self.watches.fetch_add(1, Ordering::SeqCst);
        let (kill, killed) = oneshot::channel();
        self.kills.lock().push(kill);
        let lagged = futures::stream::once(async { Err(StorageError::WatchLagged) });
        Ok(stream.take_until(killed).chain(lagged).boxed())
    }
    async fn current_revision(&self) -> StoreResult<Revision> {
        self.inner.current_revision().await
    }
    async fn compacted_revision(&self) -> StoreResult<Revision> {
        self.inner.compacted_revision().await
    }
    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.inner.compact(revision).await
    }
}

#[tokio::test]
async fn a_broken_store_watch_is_resumed_without_disturbing_watchers() {
    let memory = Arc::new(MemoryStore::new());
    let store = Flaky::new(memory.clone());
    let cache = WatchCache::start_with(store.clone(), config(10))
        .await
        .unwrap();
    let mut watcher = cache.watch(PODS, 0).unwrap();
    memory.create(&pod("default", "a"), vec![]).await.unwrap();
    assert_eq!(next(&mut watcher).await.revision, 1);

    store.refuse_watch.store(true, Ordering::SeqCst);
    store.break_watches();
    memory.create(&pod("default", "b"), vec![]).await.unwrap();
    memory.create(&pod("default", "c"), vec![]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await; // a couple of refused retries
    store.refuse_watch.store(false, Ordering::SeqCst);

    assert_eq!(next(&mut watcher).await.revision, 2);
    assert_eq!(next(&mut watcher).await.revision, 3);
    assert_eq!(store.watches.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().relists, 0);
}

#[tokio::test]
async fn a_compacted_store_watch_relists_and_resets_watchers() {
    let memory = Arc::new(MemoryStore::new());
    let store = Flaky::new(memory.clone());
    memory
        .create(&pod("default", "gone"), vec![])
        .await
        .unwrap();
    let cache = WatchCache::start_with(store.clone(), config(10))
        .await
        .unwrap();
    let mut watcher = cache.watch(PODS, 1).unwrap();

    store.refuse_watch.store(true, Ordering::SeqCst);
    store.break_watches();
    memory.delete(&pod("default", "gone"), None).await.unwrap(); // 2
    memory
        .create(&pod("default", "new"), b"n".to_vec())
        .await
        .unwrap(); // 3
    memory.compact(3).await.unwrap();
    store.refuse_watch.store(false, Ordering::SeqCst);

    let ended = tokio::time::timeout(Duration::from_secs(5), watcher.next())
        .await
        .unwrap();
    assert_eq!(ended.unwrap().unwrap_err(), CacheError::Reset);
    assert!(watcher.next().await.is_none());
    cache
        .wait_for_revision(3, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(keys(&cache.list(PODS).0), [pod("default", "new")]);
    assert_eq!(cache.stats().relists, 1);
    assert_eq!(
        cache.watch(PODS, 1).unwrap_err(),
        CacheError::Expired {
            requested: 1,
            oldest: 3
        }
    );

    let mut fresh = cache.watch(PODS, 3).unwrap();
    memory
        .create(&pod("default", "later"), vec![])
        .await
        .unwrap();
    assert_eq!(next(&mut fresh).await.revision, 4);
}
