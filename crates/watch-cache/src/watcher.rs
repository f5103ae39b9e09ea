//! Watchers: the registry the ingest task fans events out through, and the handle a client holds.
//!
//! Upstream: `staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go` (a buffered channel
//! per watcher; a watcher that cannot take an event is terminated instead of blocking the
//! dispatcher) and `cacher.go` (`indexedWatchers`, so an event is only offered to the watchers that
//! can match it). rkube indexes by bucket (`/registry/<group>/<resource>/`), which is what every
//! resource-scoped watch needs; watchers whose prefix spans several buckets are kept aside and
//! offered every event.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures::stream::BoxStream;
use rkube_storage::Revision;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;

use crate::cache::Shared;
use crate::error::CacheError;
use crate::event::CacheEvent;

/// The bucket of a key or prefix: everything up to and including its 4th `/`
/// (`/registry/apps/deployments/`), or up to its last `/` when it has fewer.
pub(crate) fn bucket_of(key: &str) -> &str {
    match key.match_indices('/').nth(3) {
        Some((i, _)) => &key[..=i],
        None => key.rfind('/').map_or("", |i| &key[..=i]),
    }
}

/// Whether a watch prefix lies inside one bucket (has at least 4 `/`), so the watcher can be
/// indexed by it.
pub(crate) fn indexed_bucket(prefix: &str) -> Option<&str> {
    prefix.match_indices('/').nth(3).map(|(i, _)| &prefix[..=i])
}

/// How a watcher's channel ended, when the cache ended it.
const OPEN: u8 = 0;
const LAGGED: u8 = 1;
const RESET: u8 = 2;

/// State shared by a watcher's handle and its registry slot.
#[derive(Debug, Default)]
pub(crate) struct WatcherEnd(AtomicU8);

impl WatcherEnd {
    fn set(&self, why: u8) {
        // Only the first reason sticks; SeqCst so `progress` sees it once it sees the revision
        // published after it.
        let _ = self
            .0
            .compare_exchange(OPEN, why, Ordering::SeqCst, Ordering::SeqCst);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The ingest side of one watcher.
#[derive(Debug)]
struct Slot {
    prefix: Box<str>,
    tx: mpsc::Sender<Arc<CacheEvent>>,
    end: Arc<WatcherEnd>,
}

/// Every live watcher, indexed by bucket.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    buckets: HashMap<Box<str>, HashMap<u64, Slot>>,
    wide: HashMap<u64, Slot>,
    count: usize,
    closed: bool,
}

impl Registry {
    /// Number of live watchers.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Adds a watcher; returns false (and drops the sender) if the cache is shut down.
    pub(crate) fn insert(
        &mut self,
        id: u64,
        prefix: &str,
        tx: mpsc::Sender<Arc<CacheEvent>>,
        end: Arc<WatcherEnd>,
    ) -> bool {
        if self.closed {
            return false;
        }
        let slot = Slot {
            prefix: prefix.into(),
            tx,
            end,
        };
        match indexed_bucket(prefix) {
            Some(bucket) => {
                self.buckets
                    .entry(bucket.into())
                    .or_default()
                    .insert(id, slot);
            }
            None => {
                self.wide.insert(id, slot);
            }
        }
        self.count += 1;
        true
    }

    /// Removes a watcher (its handle was dropped).
    pub(crate) fn remove(&mut self, id: u64, prefix: &str) {
        let removed = match indexed_bucket(prefix) {
            Some(bucket) => {
                let Some(slots) = self.buckets.get_mut(bucket) else {
                    return;
                };
                let removed = slots.remove(&id).is_some();
                if slots.is_empty() {
                    self.buckets.remove(bucket);
                }
                removed
            }
            None => self.wide.remove(&id).is_some(),
        };
        if removed {
            self.count -= 1;
        }
    }

    /// Offers `event` to every watcher whose prefix matches its key, without ever waiting: a
    /// watcher whose buffer is full is marked lagged and its sender dropped, so it ends after the
    /// events already buffered (upstream `cacheWatcher.add` / `forgetWatcher`).
    pub(crate) fn dispatch(&mut self, event: &Arc<CacheEvent>) {
        let key = event.key();
        let bucket = bucket_of(key);
        let mut gone = Vec::new();
        if let Some(slots) = self.buckets.get_mut(bucket) {
            offer(slots, event, &mut gone);
            if !gone.is_empty() {
                for id in gone.drain(..) {
                    slots.remove(&id);
                    self.count -= 1;
                }
                if slots.is_empty() {
                    self.buckets.remove(bucket);
                }
            }
        }
        if !self.wide.is_empty() {
            offer(&mut self.wide, event, &mut gone);
            for id in gone.drain(..) {
                self.wide.remove(&id);
                self.count -= 1;
            }
        }
    }

    /// Ends every watcher: with [`CacheError::Reset`] when `reset`, else quietly (shutdown).
    pub(crate) fn end_all(&mut self, reset: bool) {
        let slots = self
            .buckets
            .drain()
            .flat_map(|(_, slots)| slots)
            .chain(self.wide.drain());
        for (_, slot) in slots {
            if reset {
                slot.end.set(RESET);
            }
        }
        self.count = 0;
    }

    /// Ends every watcher and refuses new ones.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.end_all(false);
    }
}

fn offer(slots: &mut HashMap<u64, Slot>, event: &Arc<CacheEvent>, gone: &mut Vec<u64>) {
    let key = event.key();
    for (id, slot) in slots.iter() {
        if !key.starts_with(&*slot.prefix) {
            continue;
        }
        match slot.tx.try_send(Arc::clone(event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // Mark before the sender is dropped and before the revision is published.
                slot.end.set(LAGGED);
                gone.push(*id);
            }
            Err(TrySendError::Closed(_)) => gone.push(*id),
        }
    }
}

/// A client's watch: the replayed window first, then live events, in revision order.
///
/// Dropping it unregisters it.
#[derive(Debug)]
pub struct CacheWatcher {
    id: u64,
    prefix: Box<str>,
    replay: VecDeque<Arc<CacheEvent>>,
    rx: mpsc::Receiver<Arc<CacheEvent>>,
    end: Arc<WatcherEnd>,
    cache: Arc<Shared>,
    /// Events at or below this revision are not returned: the watch starts after it.
    after: Revision,
    /// Set while a watch that started ahead of the cache waits for the cache to reach `after`;
    /// past it the watcher ends with [`CacheError::TooLarge`].
    deadline: Option<Instant>,
    finished: bool,
}

/// How a new watcher starts.
#[derive(Debug)]
pub(crate) struct Start {
    pub(crate) replay: VecDeque<Arc<CacheEvent>>,
    pub(crate) after: Revision,
    pub(crate) deadline: Option<Instant>,
}

impl CacheWatcher {
    pub(crate) fn new(
        id: u64,
        prefix: &str,
        start: Start,
        rx: mpsc::Receiver<Arc<CacheEvent>>,
        end: Arc<WatcherEnd>,
        cache: Arc<Shared>,
    ) -> Self {
        Self {
            id,
            prefix: prefix.into(),
            replay: start.replay,
            rx,
            end,
            cache,
            after: start.after,
            deadline: start.deadline,
            finished: false,
        }
    }

    /// The key prefix this watcher matches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The next event. `None` when the cache shut down; `Some(Err(Lagged))` (once, after the
    /// events buffered before the overflow) if this watcher fell behind, `Some(Err(Reset))` if the
    /// cache re-listed the store, `Some(Err(TooLarge))` if the watch started ahead of the cache
    /// and the cache did not get there in time; `None` after any of them.
    pub async fn next(&mut self) -> Option<Result<Arc<CacheEvent>, CacheError>> {
        if self.finished {
            return None;
        }
        if let Some(event) = self.replay.pop_front() {
            return Some(Ok(event));
        }
        loop {
            let received = match self.deadline {
                Some(deadline) if self.cache.published_revision() < self.after => {
                    match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                        Ok(received) => received,
                        Err(_) => {
                            let current = self.cache.published_revision();
                            if current >= self.after {
                                continue;
                            }
                            self.finished = true;
                            return Some(Err(CacheError::TooLarge {
                                requested: self.after,
                                current,
                            }));
                        }
                    }
                }
                _ => {
                    self.deadline = None;
                    self.rx.recv().await
                }
            };
            match received {
                // Only a watch that started ahead of the cache gets these.
                Some(event) if event.revision <= self.after => continue,
                Some(event) => return Some(Ok(event)),
                None => {
                    self.finished = true;
                    return match self.end.get() {
                        LAGGED => Some(Err(CacheError::Lagged)),
                        RESET => Some(Err(CacheError::Reset)),
                        _ => None,
                    };
                }
            }
        }
    }

    /// A revision safe to send in a BOOKMARK: `Some(rev)` when every event with revision `<= rev`
    /// that matches this watcher has already been returned by [`CacheWatcher::next`]; `None` while
    /// events are waiting or once the watcher has ended.
    ///
    /// Sound because the ingest task fills watcher buffers before it publishes a revision: the
    /// revision is read first, then the buffers are found empty.
    pub fn progress(&self) -> Option<Revision> {
        if self.finished {
            return None;
        }
        let revision = self.cache.published_revision();
        if revision < self.after
            || self.end.get() != OPEN
            || !self.replay.is_empty()
            || !self.rx.is_empty()
        {
            return None;
        }
        Some(revision)
    }

    /// This watcher as a stream (ending as [`CacheWatcher::next`] does).
    pub fn into_stream(self) -> BoxStream<'static, Result<Arc<CacheEvent>, CacheError>> {
        Box::pin(futures::stream::unfold(self, |mut watcher| async move {
            watcher.next().await.map(|item| (item, watcher))
        }))
    }
}

impl Drop for CacheWatcher {
    fn drop(&mut self) {
        self.cache.registry.lock().remove(self.id, &self.prefix);
    }
}
