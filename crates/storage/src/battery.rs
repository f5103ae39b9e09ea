//! The behaviour battery every backend must pass, in the spirit of upstream's shared storage suite
//! (`k8s.io/apiserver/pkg/storage/testing/store_tests.go`) and kine's test server.
//!
//! Each check is a public `async fn` taking a fresh, empty store; [`storage_battery!`] expands into
//! one `#[tokio::test]` per check. Revisions are asserted relative to the store's starting revision
//! so the same checks run against a shared etcd too.
//!
//! ```ignore
//! rkube_storage::storage_battery!(|| async { rkube_storage::memory::MemoryStore::new() });
//! ```
//! The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
//! The factory may return any [`KvStore`], including `Arc<dyn KvStore>`; to keep a temporary
//! directory alive for the test's duration, return a [`WithGuard`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::{Event, KeyValue, KvStore, RangeResult, Result, Revision, StorageError, WatchStream};

/// Expands into one `#[tokio::test]` per battery check, each with a fresh store from `$factory`
/// (a closure returning a future of a [`KvStore`]).
#[macro_export]
macro_rules! storage_battery {
    ($factory:expr) => {
        $crate::storage_battery!(@each $factory;
            empty_store,
            crud,
            create_twice_is_already_exists,
            update_with_stale_revision_conflicts_with_current_value,
            update_and_delete_of_missing_key_are_not_found,
            delete_guarded_and_unguarded,
            every_write_adds_exactly_one_revision,
            create_revision_resets_after_delete,
            values_are_kept_byte_for_byte,
            range_is_ordered_and_prefix_isolated,
            range_paginates_with_limit_and_start_after,
            range_at_old_revision_sees_old_state,
            range_at_future_revision_fails,
            compaction_hides_old_revisions_and_keeps_current_data,
            watch_replays_history_then_goes_live,
            watch_from_current_revision_sees_only_new_events,
            watch_from_future_revision_waits_for_it,
            watch_events_carry_prev_values,
            watch_filters_by_prefix,
            watch_has_no_gaps_under_concurrent_writes,
            concurrent_conflicting_updates_exactly_one_wins,
            concurrent_creates_exactly_one_wins,
            concurrent_writes_get_consecutive_revisions
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let factory = $factory;
                let store = factory().await;
                $crate::battery::$name(store).await;
            }
        )*
    };
}

/// A store plus something that must outlive it (e.g. the `tempfile::TempDir` holding its files).
/// The store is dropped first.
pub struct WithGuard<S, G> {
    /// The store under test.
    pub store: S,
    /// Dropped after the store.
    pub guard: G,
}

#[async_trait]
impl<S: KvStore, G: Send + Sync + 'static> KvStore for WithGuard<S, G> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        self.store.get(key).await
    }
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        self.store.range(prefix, start_after, limit, revision).await
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.store.create(key, value).await
    }
    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue> {
        self.store.update(key, value, expected_revision).await
    }
    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.store.delete(key, expected_revision).await
    }
    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        self.store.watch(prefix, after_revision).await
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.store.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.store.compacted_revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        self.store.compact(revision).await
    }
}

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(100);

/// The next event of a watch, failing the test after a generous timeout.
pub async fn next_event(watch: &mut WatchStream) -> Event {
    match tokio::time::timeout(WAIT, watch.next()).await {
        Ok(Some(Ok(event))) => event,
        Ok(Some(Err(err))) => panic!("watch failed: {err}"),
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within {WAIT:?}"),
    }
}

/// Asserts that a watch delivers nothing for a short while.
pub async fn assert_quiet(watch: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET, watch.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

fn keys(result: &RangeResult) -> Vec<&str> {
    result.kvs.iter().map(|kv| kv.key.as_str()).collect()
}

fn kv(key: &str, value: &[u8], create_revision: Revision, mod_revision: Revision) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value.to_vec(), create_revision, mod_revision }
}

/// A new store has nothing in it; reads of missing keys are not errors.
pub async fn empty_store(store: impl KvStore) {
    let rev = store.current_revision().await.unwrap();
    assert!(rev >= 0);
    assert!(store.compacted_revision().await.unwrap() <= rev);
    assert_eq!(store.get("/battery/missing").await.unwrap(), None);
    let listed = store.range("/battery/", None, 0, None).await.unwrap();
    assert_eq!(listed, RangeResult { kvs: vec![], more: false, remaining: 0, revision: rev });
}

/// Create, get, update, get, delete, get.
pub async fn crud(store: impl KvStore) {
    let base = store.current_revision().await.unwrap();
    let created = store.create("/c/a", b"one".to_vec()).await.unwrap();
    assert_eq!(created, kv("/c/a", b"one", base + 1, base + 1));
    assert_eq!(store.get("/c/a").await.unwrap(), Some(created.clone()));
    let updated = store.update("/c/a", b"two".to_vec(), created.mod_revision).await.unwrap();
    assert_eq!(updated, kv("/c/a", b"two", base + 1, base + 2));
    assert_eq!(store.get("/c/a").await.unwrap(), Some(updated.clone()));
    let (deleted, rev) = store.delete("/c/a", Some(updated.mod_revision)).await.unwrap();
    assert_eq!(deleted, updated);
    assert_eq!(rev, base + 3);
    assert_eq!(store.get("/c/a").await.unwrap(), None);
    assert_eq!(store.current_revision().await.unwrap(), base + 3);
}

/// Creating an existing key fails and changes nothing.
pub async fn create_twice_is_already_exists(store: impl KvStore) {
    let first = store.create("/c/a", b"1".to_vec()).await.unwrap();
    let err = store.create("/c/a", b"2".to_vec()).await.unwrap_err();
    assert_eq!(err, StorageError::AlreadyExists { key: "/c/a".into() });
    assert_eq!(store.get("/c/a").await.unwrap(), Some(first.clone()));
    assert_eq!(store.current_revision().await.unwrap(), first.mod_revision);
}

/// An update guarded by an old revision fails with the current value attached.
pub async fn update_with_stale_revision_conflicts_with_current_value(store: impl KvStore) {
    let first = store.create("/c/a", b"1".to_vec()).await.unwrap();
    let second = store.update("/c/a", b"2".to_vec(), first.mod_revision).await.unwrap();
    let err = store.update("/c/a", b"3".to_vec(), first.mod_revision).await.unwrap_err();
    assert_eq!(
        err,
        StorageError::Conflict { key: "/c/a".into(), expected: first.mod_revision, current: Box::new(second.clone()) }
    );
    assert_eq!(store.get("/c/a").await.unwrap(), Some(second));
}

/// Updating or deleting a key that does not exist (or no longer exists) is NotFound.
pub async fn update_and_delete_of_missing_key_are_not_found(store: impl KvStore) {
    let not_found = StorageError::NotFound { key: "/c/a".into() };
    assert_eq!(store.update("/c/a", vec![], 1).await.unwrap_err(), not_found);
    assert_eq!(store.delete("/c/a", None).await.unwrap_err(), not_found);
    assert_eq!(store.delete("/c/a", Some(1)).await.unwrap_err(), not_found);
    let created = store.create("/c/a", vec![]).await.unwrap();
    store.delete("/c/a", None).await.unwrap();
    assert_eq!(store.update("/c/a", vec![], created.mod_revision).await.unwrap_err(), not_found);
    assert_eq!(store.delete("/c/a", None).await.unwrap_err(), not_found);
}

/// A guarded delete needs the current revision; an unguarded one always works.
pub async fn delete_guarded_and_unguarded(store: impl KvStore) {
    let first = store.create("/c/a", b"1".to_vec()).await.unwrap();
    let second = store.update("/c/a", b"2".to_vec(), first.mod_revision).await.unwrap();
    let err = store.delete("/c/a", Some(first.mod_revision)).await.unwrap_err();
    assert!(matches!(&err, StorageError::Conflict { current, .. } if **current == second), "{err:?}");
    let (prev, rev) = store.delete("/c/a", Some(second.mod_revision)).await.unwrap();
    assert_eq!((prev, rev), (second.clone(), second.mod_revision + 1));

    let b = store.create("/c/b", b"b".to_vec()).await.unwrap();
    let (prev, rev) = store.delete("/c/b", None).await.unwrap();
    assert_eq!((prev, rev), (b.clone(), b.mod_revision + 1));
}

/// Each successful write makes exactly one new revision; failed writes make none.
pub async fn every_write_adds_exactly_one_revision(store: impl KvStore) {
    let mut expected = store.current_revision().await.unwrap();
    for i in 0..5 {
        let kv = store.create(&format!("/r/{i}"), vec![i]).await.unwrap();
        expected += 1;
        assert_eq!(kv.mod_revision, expected);
        assert_eq!(store.current_revision().await.unwrap(), expected);
        let kv = store.update(&format!("/r/{i}"), vec![i, i], kv.mod_revision).await.unwrap();
        expected += 1;
        assert_eq!(kv.mod_revision, expected);
    }
    let _ = store.create("/r/0", vec![]).await.unwrap_err();
    let _ = store.update("/r/0", vec![], 1).await.unwrap_err();
    let _ = store.delete("/r/missing", None).await.unwrap_err();
    assert_eq!(store.current_revision().await.unwrap(), expected);
    let (_, rev) = store.delete("/r/0", None).await.unwrap();
    assert_eq!(rev, expected + 1);
    assert_eq!(store.current_revision().await.unwrap(), expected + 1);
}

/// Re-creating a deleted key starts a new life: a new create_revision.
pub async fn create_revision_resets_after_delete(store: impl KvStore) {
    let first = store.create("/c/a", b"1".to_vec()).await.unwrap();
    let updated = store.update("/c/a", b"2".to_vec(), first.mod_revision).await.unwrap();
    assert_eq!(updated.create_revision, first.create_revision);
    store.delete("/c/a", None).await.unwrap();
    let again = store.create("/c/a", b"3".to_vec()).await.unwrap();
    assert_eq!(again.create_revision, again.mod_revision);
    assert_eq!(again.create_revision, updated.mod_revision + 2);
}

/// Values are opaque bytes: empty, non-UTF-8 and large values round-trip exactly.
pub async fn values_are_kept_byte_for_byte(store: impl KvStore) {
    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let large: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    for (key, value) in [("/v/empty", vec![]), ("/v/binary", binary), ("/v/large", large)] {
        store.create(key, value.clone()).await.unwrap();
        assert_eq!(store.get(key).await.unwrap().unwrap().value, value);
        let listed = store.range(key, None, 0, None).await.unwrap();
        assert_eq!(listed.kvs[0].value, value);
    }
    let key = "/v/ünïcødé/名前";
    store.create(key, b"u".to_vec()).await.unwrap();
    assert_eq!(keys(&store.range("/v/ü", None, 0, None).await.unwrap()), vec![key]);
}

/// Range returns keys in byte order and only those with the exact prefix.
pub async fn range_is_ordered_and_prefix_isolated(store: impl KvStore) {
    for key in [
        "/registry/pods/ns/b",
        "/registry/podsx/ns/a",
        "/registry/pods/ns/a",
        "/registry/pods/ns2/a",
        "/registry/pod",
        "/registry/pods/ns/a/b",
        "/registry/pods0",
    ] {
        store.create(key, key.as_bytes().to_vec()).await.unwrap();
    }
    let pods = store.range("/registry/pods/", None, 0, None).await.unwrap();
    assert_eq!(
        keys(&pods),
        vec!["/registry/pods/ns/a", "/registry/pods/ns/a/b", "/registry/pods/ns/b", "/registry/pods/ns2/a"]
    );
    assert_eq!((pods.more, pods.remaining), (false, 4));
    assert_eq!(keys(&store.range("/registry/pods/ns/", None, 0, None).await.unwrap()).len(), 3);
    let all = store.range("/registry/", None, 0, None).await.unwrap();
    let mut sorted = keys(&all);
    sorted.sort_unstable();
    assert_eq!(keys(&all), sorted);
    assert_eq!(all.kvs.len(), 7);
    assert!(all.kvs.iter().all(|kv| kv.value == kv.key.as_bytes()));
    let exact = store.range("/registry/pods/ns/a", None, 0, None).await.unwrap();
    assert_eq!(keys(&exact), vec!["/registry/pods/ns/a", "/registry/pods/ns/a/b"]);
    assert!(store.range("/registry/q", None, 0, None).await.unwrap().kvs.is_empty());
}

/// Paging with limit and start_after at a fixed revision sees one consistent list even while
/// writes happen between pages; `more` and `remaining` describe what is left.
pub async fn range_paginates_with_limit_and_start_after(store: impl KvStore) {
    for i in 0..10 {
        store.create(&format!("/p/k{i:02}"), format!("v{i}").into_bytes()).await.unwrap();
    }
    store.create("/q/outside", vec![]).await.unwrap();
    store.create("/p", vec![]).await.unwrap();

    let page = store.range("/p/", None, 3, None).await.unwrap();
    assert_eq!(keys(&page), vec!["/p/k00", "/p/k01", "/p/k02"]);
    assert_eq!((page.more, page.remaining), (true, 10));
    let at = page.revision;
    assert_eq!(at, store.current_revision().await.unwrap());

    // Writes between pages must not show up in later pages read at `at`.
    let k05 = store.get("/p/k05").await.unwrap().unwrap();
    store.update("/p/k05", b"changed".to_vec(), k05.mod_revision).await.unwrap();
    store.delete("/p/k07", None).await.unwrap();
    store.create("/p/k10", vec![]).await.unwrap();
    store.create("/p/k025", vec![]).await.unwrap();

    let mut seen = keys(&page).into_iter().map(str::to_owned).collect::<Vec<_>>();
    let mut last = page.kvs.last().unwrap().key.clone();
    let mut expected_remaining = 7;
    loop {
        let page = store.range("/p/", Some(&last), 3, Some(at)).await.unwrap();
        assert_eq!(page.revision, at);
        assert_eq!(page.remaining, expected_remaining);
        assert_eq!(page.more, expected_remaining > 3);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if let Some(k05) = page.kvs.iter().find(|kv| kv.key == "/p/k05") {
            assert_eq!(k05.value, b"v5");
        }
        expected_remaining -= page.kvs.len() as i64;
        if !page.more {
            break;
        }
        last = page.kvs.last().unwrap().key.clone();
    }
    let expected: Vec<String> = (0..10).map(|i| format!("/p/k{i:02}")).collect();
    assert_eq!(seen, expected);

    let now = store.range("/p/", None, 0, None).await.unwrap();
    assert_eq!(now.kvs.len(), 11);
    assert_eq!((now.more, now.remaining), (false, 11));
    let tail = store.range("/p/", Some("/p/k09"), 0, None).await.unwrap();
    assert_eq!(keys(&tail), vec!["/p/k10"]);
    let past = store.range("/p/", Some("/p/zzz"), 5, None).await.unwrap();
    assert_eq!((past.kvs.len(), past.more, past.remaining), (0, false, 0));
    // A start_after before the prefix does not let keys outside the prefix in.
    assert_eq!(store.range("/p/", Some("/a"), 0, None).await.unwrap().kvs.len(), 11);
}

/// A range at an old revision returns the state as of that revision, deleted keys included.
pub async fn range_at_old_revision_sees_old_state(store: impl KvStore) {
    let a1 = store.create("/o/a", b"a1".to_vec()).await.unwrap();
    let b1 = store.create("/o/b", b"b1".to_vec()).await.unwrap();
    let a2 = store.update("/o/a", b"a2".to_vec(), a1.mod_revision).await.unwrap();
    let (_, deleted_b) = store.delete("/o/b", None).await.unwrap();
    let c1 = store.create("/o/c", b"c1".to_vec()).await.unwrap();

    let at = |rev| store.range("/o/", None, 0, Some(rev));
    assert_eq!(at(a1.mod_revision).await.unwrap().kvs, vec![a1.clone()]);
    assert_eq!(at(b1.mod_revision).await.unwrap().kvs, vec![a1.clone(), b1.clone()]);
    assert_eq!(at(a2.mod_revision).await.unwrap().kvs, vec![a2.clone(), b1.clone()]);
    let after_delete = at(deleted_b).await.unwrap();
    assert_eq!(after_delete.kvs, vec![a2.clone()]);
    assert_eq!((after_delete.revision, after_delete.remaining), (deleted_b, 1));
    assert_eq!(at(c1.mod_revision).await.unwrap().kvs, vec![a2.clone(), c1.clone()]);
    let old_page = store.range("/o/", Some("/o/a"), 1, Some(b1.mod_revision)).await.unwrap();
    assert_eq!((old_page.kvs, old_page.more, old_page.remaining), (vec![b1], false, 1));
    if a1.mod_revision > 1 {
        assert!(at(a1.mod_revision - 1).await.unwrap().kvs.is_empty());
    }
}

/// Reading ahead of the store fails; reading at the current revision (or 0 = current) works.
pub async fn range_at_future_revision_fails(store: impl KvStore) {
    let kv = store.create("/f/a", vec![]).await.unwrap();
    let err = store.range("/f/", None, 0, Some(kv.mod_revision + 1)).await.unwrap_err();
    assert_eq!(err, StorageError::FutureRevision { requested: kv.mod_revision + 1, current: kv.mod_revision });
    assert_eq!(store.range("/f/", None, 0, Some(kv.mod_revision)).await.unwrap().kvs, vec![kv.clone()]);
    let zero = store.range("/f/", None, 0, Some(0)).await.unwrap();
    assert_eq!((zero.kvs, zero.revision), (vec![kv.clone()], kv.mod_revision));
}

/// After compaction, reads below the compacted revision and watches needing compacted events fail
/// with Compacted; the state at and after it, and all current data, stay.
pub async fn compaction_hides_old_revisions_and_keeps_current_data(store: impl KvStore) {
    let a1 = store.create("/k/a", b"a1".to_vec()).await.unwrap();
    let a2 = store.update("/k/a", b"a2".to_vec(), a1.mod_revision).await.unwrap();
    let b1 = store.create("/k/b", b"b1".to_vec()).await.unwrap();
    let (_, b_deleted) = store.delete("/k/b", None).await.unwrap();
    let c1 = store.create("/k/c", b"c1".to_vec()).await.unwrap();
    let c2 = store.update("/k/c", b"c2".to_vec(), c1.mod_revision).await.unwrap();

    store.compact(b_deleted).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), b_deleted);
    let err = store.range("/k/", None, 0, Some(b1.mod_revision)).await.unwrap_err();
    assert!(matches!(err, StorageError::Compacted { compacted, .. } if compacted == b_deleted), "{err:?}");
    assert!(matches!(store.range("/k/", None, 0, Some(a1.mod_revision)).await, Err(StorageError::Compacted { .. })));
    assert_eq!(store.range("/k/", None, 0, Some(b_deleted)).await.unwrap().kvs, vec![a2.clone()]);
    assert_eq!(store.range("/k/", None, 0, Some(c1.mod_revision)).await.unwrap().kvs, vec![a2.clone(), c1.clone()]);
    assert_eq!(store.range("/k/", None, 0, None).await.unwrap().kvs, vec![a2.clone(), c2.clone()]);
    assert_eq!(store.get("/k/a").await.unwrap(), Some(a2.clone()));
    assert_eq!(store.get("/k/b").await.unwrap(), None);

    let err = store.watch("/k/", a2.mod_revision).await.err().unwrap();
    assert!(matches!(err, StorageError::Compacted { .. }), "{err:?}");
    let mut watch = store.watch("/k/", b_deleted).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: c1.clone(), prev: None });
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: c2.clone(), prev: Some(c1.clone()) });

    // Compacting again at or below is a no-op; ahead of the store is an error.
    store.compact(b_deleted).await.unwrap();
    store.compact(a1.mod_revision).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), b_deleted);
    let err = store.compact(c2.mod_revision + 1).await.unwrap_err();
    assert!(matches!(err, StorageError::FutureRevision { .. }), "{err:?}");

    // Writes go on with the same revision sequence, updates of compacted-history keys work,
    // and a key whose tombstone was compacted can be created again.
    let b2 = store.create("/k/b", b"b2".to_vec()).await.unwrap();
    assert_eq!(b2.mod_revision, c2.mod_revision + 1);
    assert_eq!(b2.create_revision, b2.mod_revision);
    let a3 = store.update("/k/a", b"a3".to_vec(), a2.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: b2.clone(), prev: None });
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: a3.clone(), prev: Some(a2.clone()) });

    // Compacting everything keeps the current state readable and watchable.
    let now = store.current_revision().await.unwrap();
    store.compact(now).await.unwrap();
    assert_eq!(store.range("/k/", None, 0, Some(now)).await.unwrap().kvs, vec![a3.clone(), b2.clone(), c2.clone()]);
    assert_eq!(store.range("/k/", None, 0, None).await.unwrap().kvs.len(), 3);
    let mut watch = store.watch("/k/", now).await.unwrap();
    let (prev, rev) = store.delete("/k/c", Some(c2.mod_revision)).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Delete { prev, revision: rev });
}

/// A watch from an old revision replays every later change in order, then streams live ones.
pub async fn watch_replays_history_then_goes_live(store: impl KvStore) {
    let base = store.current_revision().await.unwrap();
    let a1 = store.create("/w/a", b"1".to_vec()).await.unwrap();
    let a2 = store.update("/w/a", b"2".to_vec(), a1.mod_revision).await.unwrap();
    let b1 = store.create("/w/b", b"1".to_vec()).await.unwrap();

    let mut from_start = store.watch("/w/", base).await.unwrap();
    let mut from_middle = store.watch("/w/", a1.mod_revision).await.unwrap();
    let c1 = store.create("/w/c", b"1".to_vec()).await.unwrap();

    let replayed: Vec<Revision> = [
        next_event(&mut from_start).await,
        next_event(&mut from_start).await,
        next_event(&mut from_start).await,
        next_event(&mut from_start).await,
    ]
    .iter()
    .map(Event::revision)
    .collect();
    assert_eq!(replayed, vec![a1.mod_revision, a2.mod_revision, b1.mod_revision, c1.mod_revision]);
    assert_eq!(next_event(&mut from_middle).await, Event::Put { kv: a2.clone(), prev: Some(a1) });
    assert_eq!(next_event(&mut from_middle).await, Event::Put { kv: b1, prev: None });
    assert_eq!(next_event(&mut from_middle).await, Event::Put { kv: c1, prev: None });
    assert_quiet(&mut from_start).await;
    assert_quiet(&mut from_middle).await;
}

/// A watch from the current revision delivers only later changes.
pub async fn watch_from_current_revision_sees_only_new_events(store: impl KvStore) {
    store.create("/w/old", vec![]).await.unwrap();
    let now = store.current_revision().await.unwrap();
    let mut watch = store.watch("/w/", now).await.unwrap();
    assert_quiet(&mut watch).await;
    let new = store.create("/w/new", vec![]).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: new, prev: None });
}

/// A watch after a revision the store has not reached starts delivering once it passes it.
pub async fn watch_from_future_revision_waits_for_it(store: impl KvStore) {
    let now = store.current_revision().await.unwrap();
    let mut watch = store.watch("/w/", now + 2).await.unwrap();
    store.create("/w/1", vec![]).await.unwrap();
    store.create("/w/2", vec![]).await.unwrap();
    let third = store.create("/w/3", vec![]).await.unwrap();
    assert_eq!(next_event(&mut watch).await, Event::Put { kv: third, prev: None });
}

/// Update events carry the previous value; delete events carry the last value and their revision.
pub async fn watch_events_carry_prev_values(store: impl KvStore) {
    let now = store.current_revision().await.unwrap();
    let mut live = store.watch("/e/", now).await.unwrap();
    let a1 = store.create("/e/a", b"1".to_vec()).await.unwrap();
    let a2 = store.update("/e/a", b"2".to_vec(), a1.mod_revision).await.unwrap();
    let (prev, deleted) = store.delete("/e/a", None).await.unwrap();
    assert_eq!(prev, a2);
    let expected = vec![
        Event::Put { kv: a1.clone(), prev: None },
        Event::Put { kv: a2.clone(), prev: Some(a1.clone()) },
        Event::Delete { prev: a2.clone(), revision: deleted },
    ];
    let mut replayed = store.watch("/e/", now).await.unwrap();
    for event in &expected {
        assert_eq!(&next_event(&mut live).await, event);
        assert_eq!(&next_event(&mut replayed).await, event);
    }
    assert_eq!(expected[2].key(), "/e/a");
    assert_eq!(expected[2].revision(), deleted);
}

/// A watch only sees keys with its exact prefix, in replay and live.
pub async fn watch_filters_by_prefix(store: impl KvStore) {
    let now = store.current_revision().await.unwrap();
    store.create("/registry/podsx/a", vec![]).await.unwrap();
    let replayed = store.create("/registry/pods/a", vec![]).await.unwrap();
    let mut pods = store.watch("/registry/pods/", now).await.unwrap();
    let mut everything = store.watch("", now).await.unwrap();
    store.create("/registry/pods", vec![]).await.unwrap();
    store.create("/registry/podsx/b", vec![]).await.unwrap();
    let live = store.create("/registry/pods/b", vec![]).await.unwrap();
    assert_eq!(next_event(&mut pods).await.key(), replayed.key);
    assert_eq!(next_event(&mut pods).await.key(), live.key);
    assert_quiet(&mut pods).await;
    for _ in 0..5 {
        next_event(&mut everything).await;
    }
    assert_quiet(&mut everything).await;
}

/// Starting a watch while writes are in flight loses and repeats nothing at the replay/live seam.
pub async fn watch_has_no_gaps_under_concurrent_writes(store: impl KvStore) {
    let store = Arc::new(store);
    let start = store.current_revision().await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut last = 0;
            for i in 0..300 {
                last = store.create(&format!("/g/{i:04}"), vec![]).await.unwrap().mod_revision;
            }
            last
        })
    };
    while store.current_revision().await.unwrap() < start + 50 {
        tokio::task::yield_now().await;
    }
    let from = store.current_revision().await.unwrap() - 20;
    let mut watch = store.watch("/g/", from).await.unwrap();
    let last = writer.await.unwrap();
    let mut expected = from + 1;
    while expected <= last {
        assert_eq!(next_event(&mut watch).await.revision(), expected);
        expected += 1;
    }
    assert_quiet(&mut watch).await;
}

/// Many writers updating from the same revision: exactly one wins, the rest see its value.
pub async fn concurrent_conflicting_updates_exactly_one_wins(store: impl KvStore) {
    let store = Arc::new(store);
    let base = store.create("/x/a", b"base".to_vec()).await.unwrap();
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.update("/x/a", vec![i], base.mod_revision).await })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let winner = store.get("/x/a").await.unwrap().unwrap();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    for result in results {
        match result {
            Ok(kv) => assert_eq!(kv, winner),
            Err(StorageError::Conflict { current, .. }) => assert_eq!(*current, winner),
            Err(err) => panic!("unexpected error {err}"),
        }
    }
    assert_eq!(store.current_revision().await.unwrap(), base.mod_revision + 1);
}

/// Many writers creating one key: exactly one wins.
pub async fn concurrent_creates_exactly_one_wins(store: impl KvStore) {
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.create("/x/b", vec![i]).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(err) => assert_eq!(err, StorageError::AlreadyExists { key: "/x/b".into() }),
        }
    }
    assert_eq!(wins, 1);
}

/// Concurrent writes to different keys get distinct revisions with no holes.
pub async fn concurrent_writes_get_consecutive_revisions(store: impl KvStore) {
    let store = Arc::new(store);
    let start = store.current_revision().await.unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..25 {
                    revs.push(store.create(&format!("/y/{t}/{i}"), vec![]).await.unwrap().mod_revision);
                }
                revs
            })
        })
        .collect();
    let mut revs = Vec::new();
    for task in tasks {
        revs.extend(task.await.unwrap());
    }
    revs.sort_unstable();
    assert_eq!(revs, ((start + 1)..=(start + 100)).collect::<Vec<_>>());
    assert_eq!(store.range("/y/", None, 0, None).await.unwrap().remaining, 100);
}
