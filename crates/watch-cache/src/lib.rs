//! The watch cache: one store watch feeds an in-memory copy of every object and a sliding window of
//! recent events per resource, so LIST, GET and WATCH are served without touching the store.
//!
//! Modelled on upstream's cacher (`staging/src/k8s.io/apiserver/pkg/storage/cacher/`), with one
//! cache over the whole store instead of one per resource, so the cache's revision is exactly the
//! store's:
//! - [`WatchCache::start`] lists the store and watches it from the list's revision;
//! - [`WatchCache::list`], [`WatchCache::get`] answer from memory at [`WatchCache::revision`];
//!   [`WatchCache::wait_for_revision`] makes them consistent reads;
//! - [`WatchCache::watch`] replays a bucket's window after a revision, then streams live events;
//!   [`WatchCache::snapshot_and_watch`] gives current objects and a watcher with no gap between;
//! - each watcher has a bounded buffer; one that cannot keep up is closed
//!   ([`CacheError::Lagged`]), never waited for; [`CacheWatcher::progress`] gives bookmark
//!   revisions.
//!
//! A bucket is a key's prefix up to and including its 4th `/`: `/registry/apps/deployments/`.

mod cache;
mod error;
mod event;
mod watcher;

#[cfg(test)]
mod tests;

pub use cache::{CacheStats, ListPage, WatchCache, WatchCacheConfig};
pub use error::CacheError;
pub use event::{CacheEvent, EventKind};
pub use watcher::CacheWatcher;
