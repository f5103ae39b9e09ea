//! The cache: state, event windows, the ingest task, and the read and watch entry points.
//!
//! Upstream: `staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go` (one storage watch feeds
//! the cache; `startCaching` re-lists and terminates all watchers when the watch cannot go on) and
//! `watch_cache.go` (current objects in a btree, `store/store_btree.go`, plus a bounded window of
//! recent events; `waitUntilFreshAndBlock` with its 3 s bound). rkube runs one cache over the whole
//! store rather than one per resource: every store revision passes through it, so its revision is
//! exactly the store's and a consistent read only waits for the cache to reach the store's current
//! revision. The event window is still kept per bucket (resource), so a busy resource does not
//! evict a quiet one's history.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use parking_lot::{Mutex, RwLock};
use rkube_storage::{Event, KeyValue, KvStore, Revision, StorageError, WatchStream};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::error::CacheError;
use crate::event::{CacheEvent, EventKind};
use crate::watcher::{CacheWatcher, Registry, Start, WatcherEnd, bucket_of, indexed_bucket};

/// Most store events applied under one lock acquisition.
const MAX_BATCH: usize = 256;
/// First and longest pause between attempts to resume the store watch.
const RETRY_MIN: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// How a [`WatchCache`] is set up.
#[derive(Debug, Clone)]
pub struct WatchCacheConfig {
    /// The store prefix cached and watched. Every store write must fall under it, or the cache's
    /// revision will trail the store's and consistent reads will wait for nothing.
    pub prefix: String,
    /// Most events kept per bucket (upstream's watch cache capacity).
    pub window: usize,
    /// Events buffered per watcher before it is closed as lagged.
    pub watcher_buffer: usize,
    /// Keys per store range call while (re-)listing.
    pub list_page_size: usize,
    /// How long a watch from a revision the cache has not reached waits before failing with
    /// [`CacheError::TooLarge`] (upstream `blockTimeout`).
    pub too_large_wait: Duration,
}

impl Default for WatchCacheConfig {
    fn default() -> Self {
        Self {
            prefix: "/registry/".to_owned(),
            window: 1000,
            watcher_buffer: 1000,
            list_page_size: 1000,
            too_large_wait: Duration::from_secs(3),
        }
    }
}

/// Numbers for monitoring and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// The cache's revision.
    pub revision: Revision,
    /// Objects held.
    pub objects: usize,
    /// Live watchers.
    pub watchers: usize,
    /// Buckets with an event window.
    pub buckets: usize,
    /// Events held in all windows.
    pub window_events: usize,
    /// Times the cache re-listed the store after its start.
    pub relists: u64,
}

/// One page of a cached list.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// Objects in key order.
    pub items: Vec<Arc<KeyValue>>,
    /// The revision the page reflects.
    pub revision: Revision,
    /// Whether more keys match after the last item.
    pub more: bool,
}

/// A bucket's recent events and the oldest revision a watch may start after.
#[derive(Debug)]
struct Bucket {
    events: VecDeque<Arc<CacheEvent>>,
    floor: Revision,
}

/// Everything a read must see at one revision.
#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<String, Arc<KeyValue>>,
    buckets: HashMap<Box<str>, Bucket>,
    /// The revision of the last (re-)list: the floor of every bucket that has evicted nothing.
    base_floor: Revision,
    revision: Revision,
}

impl State {
    fn from_list(objects: BTreeMap<String, Arc<KeyValue>>, revision: Revision) -> Self {
        Self {
            objects,
            buckets: HashMap::new(),
            base_floor: revision,
            revision,
        }
    }

    /// Applies one store event and records it in its bucket's window.
    fn apply(&mut self, event: Event, window: usize) -> Arc<CacheEvent> {
        let revision = event.revision();
        // The previous value comes from the cache itself (upstream `processEvent` reads it from
        // its store too): it is exact because every revision passes through here, and shared.
        let event = match event {
            Event::Put { kv, .. } => {
                let kv = Arc::new(kv);
                let prev = self.objects.insert(kv.key.clone(), Arc::clone(&kv));
                let kind = if prev.is_some() {
                    EventKind::Modified
                } else {
                    EventKind::Added
                };
                CacheEvent::new(kind, kv, prev, revision)
            }
            Event::Delete { prev, .. } => {
                let last = self
                    .objects
                    .remove(&prev.key)
                    .unwrap_or_else(|| Arc::new(prev));
                CacheEvent::new(EventKind::Deleted, Arc::clone(&last), Some(last), revision)
            }
        };
        let event = Arc::new(event);
        let base_floor = self.base_floor;
        let bucket = self
            .buckets
            .entry(bucket_of(event.key()).into())
            .or_insert_with(|| Bucket {
                events: VecDeque::new(),
                floor: base_floor,
            });
        bucket.events.push_back(Arc::clone(&event));
        while bucket.events.len() > window {
            if let Some(evicted) = bucket.events.pop_front() {
                bucket.floor = evicted.revision;
            }
        }
        event
    }

    fn range<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&str>,
    ) -> impl Iterator<Item = &'a Arc<KeyValue>> + 'a {
        let lower = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        self.objects
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(|(_, kv)| kv)
    }

    /// The events under `prefix` after `after`, or Expired if the window no longer reaches back.
    fn events_since(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<VecDeque<Arc<CacheEvent>>, CacheError> {
        let mut floor = self.base_floor;
        let mut chosen: Vec<&Bucket> = Vec::new();
        match indexed_bucket(prefix) {
            Some(bucket) => chosen.extend(self.buckets.get(bucket)),
            None => chosen.extend(
                self.buckets
                    .iter()
                    .filter(|(bucket, _)| {
                        bucket.starts_with(prefix) || prefix.starts_with(&***bucket)
                    })
                    .map(|(_, b)| b),
            ),
        }
        for bucket in &chosen {
            floor = floor.max(bucket.floor);
        }
        // Upstream `getAllEventsSinceLocked`: "too old resource version: %d (%d)".
        if after < floor {
            return Err(CacheError::Expired {
                requested: after,
                oldest: floor,
            });
        }
        let mut events: Vec<Arc<CacheEvent>> = Vec::new();
        for bucket in chosen {
            let start = bucket.events.partition_point(|e| e.revision <= after);
            events.extend(
                bucket
                    .events
                    .range(start..)
                    .filter(|e| e.key().starts_with(prefix))
                    .cloned(),
            );
        }
        if events.len() > 1 {
            events.sort_by_key(|e| e.revision);
        }
        Ok(events.into())
    }
}

/// What the cache handle, the ingest task and every watcher share.
pub(crate) struct Shared {
    config: WatchCacheConfig,
    store: Arc<dyn KvStore>,
    state: RwLock<State>,
    pub(crate) registry: Mutex<Registry>,
    /// `state.revision`, published after the events up to it reached every watcher buffer.
    revision: AtomicI64,
    revision_tx: watch::Sender<Revision>,
    next_id: AtomicU64,
    relists: AtomicU64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .field("revision", &self.published_revision())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn published_revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    fn publish(&self, revision: Revision) {
        self.revision.store(revision, Ordering::Release);
    }

    /// Lists the whole prefix at one revision, page by page.
    async fn list_store(&self) -> Result<State, StorageError> {
        let page = self.config.list_page_size.max(1);
        let mut objects = BTreeMap::new();
        let mut at: Option<Revision> = None;
        let mut start_after: Option<String> = None;
        loop {
            let result = self
                .store
                .range(&self.config.prefix, start_after.as_deref(), page, at)
                .await?;
            let revision = *at.get_or_insert(result.revision);
            for kv in result.kvs {
                start_after = Some(kv.key.clone());
                objects.insert(kv.key.clone(), Arc::new(kv));
            }
            if !result.more || start_after.is_none() {
                return Ok(State::from_list(objects, revision));
            }
        }
    }

    /// Applies a batch of store events: fills watcher buffers, then publishes the revision.
    fn apply(&self, events: Vec<Event>) {
        let revision = {
            let mut state = self.state.write();
            let mut registry = self.registry.lock();
            let window = self.config.window;
            for event in events {
                // After a resumed store watch, events already applied may come again.
                if event.revision() <= state.revision {
                    continue;
                }
                let revision = event.revision();
                let event = state.apply(event, window);
                registry.dispatch(&event);
                state.revision = revision;
            }
            drop(registry);
            self.publish(state.revision);
            state.revision
        };
        self.revision_tx.send_if_modified(|current| {
            let changed = *current != revision;
            *current = revision;
            changed
        });
    }

    /// Replaces the state with a fresh list and ends every watcher (upstream `startCaching` calls
    /// `terminateAllWatchers` before each `ListAndWatch`).
    fn replace(&self, fresh: State) {
        let revision = fresh.revision;
        {
            let mut state = self.state.write();
            if revision < state.revision {
                tracing::warn!(
                    old = state.revision,
                    new = revision,
                    "store revision went backwards"
                );
            }
            *state = fresh;
            self.registry.lock().end_all(true);
            self.publish(revision);
        }
        self.relists.fetch_add(1, Ordering::Relaxed);
        self.revision_tx.send_replace(revision);
    }

    /// Opens a new store watch after the old one failed: resumes from the cache's revision if the
    /// store still has the history (watchers keep going), else re-lists.
    async fn reconnect(&self) -> WatchStream {
        let mut pause = RETRY_MIN;
        loop {
            let from = self.published_revision();
            match self.store.watch(&self.config.prefix, from).await {
                Ok(stream) => return stream,
                Err(StorageError::Compacted { .. }) => match self.list_store().await {
                    Ok(fresh) => {
                        tracing::info!(
                            revision = fresh.revision,
                            "watch cache re-listed the store"
                        );
                        let revision = fresh.revision;
                        match self.store.watch(&self.config.prefix, revision).await {
                            Ok(stream) => {
                                self.replace(fresh);
                                return stream;
                            }
                            Err(error) => {
                                tracing::warn!(%error, "watch cache could not watch after re-list")
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, "watch cache could not re-list the store"),
                },
                Err(error) => {
                    tracing::warn!(%error, "watch cache could not resume its store watch")
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }

    /// Registers a watcher under `prefix`. Call with the state lock held (read is enough), so no
    /// event lands between the replay and the registration. The flag is false if the cache is shut
    /// down: then the sender is already dropped and the watcher ends after its replay.
    fn register(self: &Arc<Self>, prefix: &str, start: Start) -> (CacheWatcher, bool) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.config.watcher_buffer.max(1));
        let end = Arc::new(WatcherEnd::default());
        let registered = self
            .registry
            .lock()
            .insert(id, prefix, tx, Arc::clone(&end));
        (
            CacheWatcher::new(id, prefix, start, rx, end, Arc::clone(self)),
            registered,
        )
    }
}

/// The ingest task: applies store events in batches until aborted.
async fn ingest(shared: Arc<Shared>, mut stream: WatchStream) {
    loop {
        let mut batch = Vec::new();
        let mut failed = false;
        match stream.next().await {
            Some(Ok(event)) => batch.push(event),
            Some(Err(error)) => {
                tracing::warn!(%error, "watch cache store watch failed");
                failed = true;
            }
            None => {
                tracing::warn!("watch cache store watch ended");
                failed = true;
            }
        }
        // Take whatever else is ready without waiting, to apply it under one lock.
        while !failed && batch.len() < MAX_BATCH {
            match stream.next().now_or_never() {
                Some(Some(Ok(event))) => batch.push(event),
                Some(Some(Err(error))) => {
                    tracing::warn!(%error, "watch cache store watch failed");
                    failed = true;
                }
                Some(None) => failed = true,
                None => break,
            }
        }
        if !batch.is_empty() {
            shared.apply(batch);
        }
        if failed {
            stream = shared.reconnect().await;
        }
    }
}

/// The watch cache. Create it with [`WatchCache::start`]; dropping the last handle (or calling
/// [`WatchCache::shutdown`]) stops the ingest task and ends every watcher.
#[derive(Debug)]
pub struct WatchCache {
    shared: Arc<Shared>,
    ingest: AbortHandle,
}

impl WatchCache {
    /// Lists the store at its current revision (in pages), watches it from that revision, and
    /// returns once the initial state is loaded. Keeps at most `window` events per bucket. Spawns
    /// the ingest task on the current tokio runtime.
    pub async fn start(
        store: Arc<dyn KvStore>,
        window: usize,
    ) -> Result<Arc<WatchCache>, CacheError> {
        Self::start_with(
            store,
            WatchCacheConfig {
                window,
                ..WatchCacheConfig::default()
            },
        )
        .await
    }

    /// [`WatchCache::start`] with every setting.
    pub async fn start_with(
        store: Arc<dyn KvStore>,
        config: WatchCacheConfig,
    ) -> Result<Arc<WatchCache>, CacheError> {
        let (revision_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            config,
            store,
            state: RwLock::new(State::default()),
            registry: Mutex::new(Registry::default()),
            revision: AtomicI64::new(0),
            revision_tx,
            next_id: AtomicU64::new(0),
            relists: AtomicU64::new(0),
        });
        let initial = shared.list_store().await?;
        let revision = initial.revision;
        let stream = shared.store.watch(&shared.config.prefix, revision).await?;
        *shared.state.write() = initial;
        shared.publish(revision);
        shared.revision_tx.send_replace(revision);
        let ingest = tokio::spawn(ingest(Arc::clone(&shared), stream)).abort_handle();
        Ok(Arc::new(WatchCache { shared, ingest }))
    }

    /// Stops the ingest task and ends every watcher (their `next` returns None). Reads keep
    /// answering from the last state.
    pub fn shutdown(&self) {
        self.ingest.abort();
        self.shared.registry.lock().close();
    }

    /// The revision of the last event applied (or of the last list).
    pub fn revision(&self) -> Revision {
        self.shared.published_revision()
    }

    /// Waits until [`WatchCache::revision`] is at least `revision`, at most `timeout`
    /// (→ [`CacheError::Timeout`]). For consistent reads: ask the store for its current revision,
    /// then wait for the cache to reach it (upstream `waitUntilFreshAndBlock`).
    pub async fn wait_for_revision(
        &self,
        revision: Revision,
        timeout: Duration,
    ) -> Result<(), CacheError> {
        if self.revision() >= revision {
            return Ok(());
        }
        let mut rx = self.shared.revision_tx.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|current| *current >= revision)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(CacheError::Closed),
            Err(_) => Err(CacheError::Timeout {
                requested: revision,
                current: self.revision(),
            }),
        }
    }

    /// The current objects whose key starts with `prefix`, in key order, and their revision.
    pub fn list(&self, prefix: &str) -> (Vec<Arc<KeyValue>>, Revision) {
        let state = self.shared.state.read();
        (state.range(prefix, None).cloned().collect(), state.revision)
    }

    /// Up to `limit` (0 = all) current objects under `prefix` with keys after `start_after`.
    pub fn list_page(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> ListPage {
        let state = self.shared.state.read();
        let mut range = state.range(prefix, start_after);
        let items: Vec<_> = if limit == 0 {
            range.by_ref().cloned().collect()
        } else {
            range.by_ref().take(limit).cloned().collect()
        };
        let more = range.next().is_some();
        ListPage {
            items,
            revision: state.revision,
            more,
        }
    }

    /// The current value of `key`, and the revision it reflects.
    pub fn get(&self, key: &str) -> (Option<Arc<KeyValue>>, Revision) {
        let state = self.shared.state.read();
        (state.objects.get(key).cloned(), state.revision)
    }

    /// Watches keys under `prefix` with revision `> after`: the bucket's window first, then live
    /// events. Fails with [`CacheError::Expired`] if the window no longer reaches back to `after`
    /// (upstream `getAllEventsSinceLocked`), with [`CacheError::Closed`] after shutdown.
    ///
    /// If `after` is ahead of the cache (a client that just wrote through this server and watches
    /// from the write's revision), the watcher waits for the cache: events up to `after` are
    /// skipped, and if the cache has not reached `after` within the configured bound (3 s) the
    /// watcher's `next` returns [`CacheError::TooLarge`] (upstream `cacher.Watch` blocks in
    /// `waitUntilFreshAndBlock` instead; to fail before answering, as upstream does, call
    /// [`WatchCache::wait_for_revision`] first).
    ///
    /// `prefix` matches keys by string prefix: pass a bucket or a namespace prefix ending in `/`.
    pub fn watch(&self, prefix: &str, after: Revision) -> Result<CacheWatcher, CacheError> {
        let state = self.shared.state.read();
        let start = if after > state.revision {
            let deadline = Instant::now() + self.shared.config.too_large_wait;
            Start {
                replay: VecDeque::new(),
                after,
                deadline: Some(deadline),
            }
        } else {
            Start {
                replay: state.events_since(prefix, after)?,
                after,
                deadline: None,
            }
        };
        match self.shared.register(prefix, start) {
            (watcher, true) => Ok(watcher),
            (_, false) => Err(CacheError::Closed),
        }
    }

    /// Atomically: the current objects under `prefix`, the revision R they reflect, and a watcher
    /// for the events after R. For watches without a resourceVersion (or "0") and for
    /// `sendInitialEvents`, the API server sends the snapshot as ADDED events first.
    pub fn snapshot_and_watch(&self, prefix: &str) -> (Vec<Arc<KeyValue>>, Revision, CacheWatcher) {
        let state = self.shared.state.read();
        let items = state.range(prefix, None).cloned().collect();
        let start = Start {
            replay: VecDeque::new(),
            after: state.revision,
            deadline: None,
        };
        // After shutdown the watcher simply ends.
        let (watcher, _) = self.shared.register(prefix, start);
        (items, state.revision, watcher)
    }

    /// Counters for monitoring and benchmarks.
    pub fn stats(&self) -> CacheStats {
        let state = self.shared.state.read();
        CacheStats {
            revision: state.revision,
            objects: state.objects.len(),
            watchers: self.shared.registry.lock().len(),
            buckets: state.buckets.len(),
            window_events: state.buckets.values().map(|b| b.events.len()).sum(),
            relists: self.shared.relists.load(Ordering::Relaxed),
        }
    }
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        self.shutdown();
    }
}
