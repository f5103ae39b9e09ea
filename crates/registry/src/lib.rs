//! The generic object store: every built-in resource is kept as JSON under
//! `/registry/<group>/<plural>/...` in a [`rkube_storage::KvStore`], read through the
//! [`rkube_watch_cache::WatchCache`], with per-resource behaviour from [`policy`] and [`strategy`].
//!
//! Entry point: [`Registry`]. The API server calls it after decoding and authorizing a request;
//! it returns objects in their wire form or an [`rkube_apimachinery::ApiError`].

pub mod admission;
pub mod allocators;
pub mod binding;
pub mod eviction;
pub mod continue_token;
pub mod crd;
pub mod csr;
pub mod convert;
pub mod keys;
pub mod list;
pub mod options;
pub mod ownership;
pub mod policy;
pub mod scale;
pub mod store;
pub mod strategy;
pub mod watch;

pub use options::{DeleteOptions, ListOptions};
pub use store::{DeleteOutcome, Registry, RegistryConfig, WriteCheck};
pub use rkube_watch_cache::CacheEvent;
pub use watch::{WatchEventOut, WatchStart};
