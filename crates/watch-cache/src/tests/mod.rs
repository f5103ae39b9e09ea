//! Tests against the in-memory reference store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_storage::memory::MemoryStore;
use rkube_storage::{KeyValue, KvStore, Revision};

use crate::{CacheError, CacheEvent, CacheWatcher, EventKind, WatchCache, WatchCacheConfig};

mod numbers;
mod recovery;

pub(super) const PODS: &str = "/registry/core/pods/";
pub(super) const CONFIGMAPS: &str = "/registry/core/configmaps/";

pub(super) fn pod(ns: &str, name: &str) -> String {
    format!("{PODS}{ns}/{name}")
}

pub(super) fn config(window: usize) -> WatchCacheConfig {
    WatchCacheConfig {
        window,
        ..WatchCacheConfig::default()
    }
}

pub(super) async fn start(store: &Arc<MemoryStore>, config: WatchCacheConfig) -> Arc<WatchCache> {
    WatchCache::start_with(store.clone(), config).await.unwrap()
}

pub(super) async fn next(watcher: &mut CacheWatcher) -> Arc<CacheEvent> {
    tokio::time::timeout(Duration::from_secs(5), watcher.next())
        .await
        .expect("no event within 5s")
        .expect("watcher ended")
        .expect("watcher failed")
}

pub(super) async fn assert_quiet(watcher: &mut CacheWatcher) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(50), watcher.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

pub(super) fn keys(items: &[Arc<KeyValue>]) -> Vec<&str> {
    items.iter().map(|kv| kv.key.as_str()).collect()
}

#[tokio::test]
async fn initial_load_pages_through_existing_keys() {
    let store = Arc::new(MemoryStore::new());
    for name in ["c", "a", "e", "b", "d"] {
        store
            .create(&pod("default", name), name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    store
        .create(&format!("{CONFIGMAPS}default/x"), b"x".to_vec())
        .await
        .unwrap();
    let cache = start(
        &store,
        WatchCacheConfig {
            list_page_size: 2,
            ..config(10)
        },
    )
    .await;

    assert_eq!(cache.revision(), 6);
    let (items, revision) = cache.list(PODS);
    assert_eq!(revision, 6);
    assert_eq!(
        keys(&items),
        ["a", "b", "c", "d", "e"].map(|n| pod("default", n))
    );
    assert_eq!(items[0].value, b"a");
    let (all, _) = cache.list("/registry/");
    assert_eq!(all.len(), 6);
    let stats = cache.stats();
    assert_eq!((stats.objects, stats.watchers, stats.relists), (6, 0, 0));
}

#[tokio::test]
async fn list_by_sub_prefix_get_and_list_page() {
    let store = Arc::new(MemoryStore::new());
    for (ns, name) in [
        ("default", "a"),
        ("kube-system", "b"),
        ("default", "c"),
        ("default2", "d"),
    ] {
        store.create(&pod(ns, name), vec![]).await.unwrap();
    }
    let cache = start(&store, config(10)).await;

    let (items, revision) = cache.list(&format!("{PODS}default/"));
    assert_eq!(keys(&items), [pod("default", "a"), pod("default", "c")]);
    assert_eq!(revision, 4);

    let (found, revision) = cache.get(&pod("kube-system", "b"));
    assert_eq!(found.unwrap().mod_revision, 2);
    assert_eq!(revision, 4);
    assert!(cache.get(&pod("kube-system", "zz")).0.is_none());

    let page = cache.list_page(PODS, None, 2);
    assert_eq!(
        keys(&page.items),
        [pod("default", "a"), pod("default", "c")]
    );
    assert!(page.more);
    let page = cache.list_page(PODS, Some(&pod("default", "c")), 2);
    assert_eq!(
        keys(&page.items),
        [pod("default2", "d"), pod("kube-system", "b")]
    );
    assert!(!page.more);
}

#[tokio::test]
async fn wait_for_revision_after_a_write_is_prompt() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(10)).await;
    for i in 0..20 {
        let kv = store
            .create(&pod("default", &format!("p{i}")), vec![])
            .await
            .unwrap();
        let started = Instant::now();
        cache
            .wait_for_revision(kv.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(100), "waited {waited:?}");
        assert_eq!(cache.get(&kv.key).0.unwrap().mod_revision, kv.mod_revision);
    }
    let error = cache
        .wait_for_revision(100, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        CacheError::Timeout {
            requested: 100,
            current: 20
        }
    );
}

#[tokio::test]
async fn watch_replays_the_window_after_a_revision_then_goes_live() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(100)).await;
    let mut revisions = Vec::new();
    for i in 0..5 {
        revisions.push(
            store
                .create(&pod("default", &format!("p{i}")), vec![])
                .await
                .unwrap()
                .mod_revision,
        );
        store
            .create(&format!("{CONFIGMAPS}default/c{i}"), vec![])
            .await
            .unwrap();
    }
    cache
        .wait_for_revision(10, Duration::from_secs(5))
        .await
        .unwrap();

    let mut watcher = cache.watch(PODS, revisions[1]).unwrap();
    for expected in &revisions[2..] {
        let event = next(&mut watcher).await;
        assert_eq!((event.revision, event.kind), (*expected, EventKind::Added));
        assert!(event.key().starts_with(PODS));
    }
    assert_quiet(&mut watcher).await;
    let live = store.create(&pod("default", "live"), vec![]).await.unwrap();
    let event = next(&mut watcher).await;
    assert_eq!(
        (event.key(), event.revision),
        (live.key.as_str(), live.mod_revision)
    );
}

#[tokio::test]
async fn watch_before_the_window_floor_is_expired() {
    let store = Arc::new(MemoryStore::new());
    store
        .create(&format!("{CONFIGMAPS}default/c"), vec![])
        .await
        .unwrap();
    let cache = start(&store, config(3)).await;
    for i in 0..5 {
        store
            .create(&pod("default", &format!("p{i}")), vec![])
            .await
            .unwrap(); // revisions 2..=6
    }
    cache
        .wait_for_revision(6, Duration::from_secs(5))
        .await
        .unwrap();

    // Revisions 2 and 3 were evicted: a watch after 3 still sees 4, 5, 6; after 2 would miss 3.
    let error = cache.watch(PODS, 2).unwrap_err();
    assert_eq!(
        error,
        CacheError::Expired {
            requested: 2,
            oldest: 3
        }
    );
    assert_eq!(error.to_string(), "too old resource version: 2 (3)");
    let mut watcher = cache.watch(PODS, 3).unwrap();
    for expected in 4..=6 {
        assert_eq!(next(&mut watcher).await.revision, expected);
    }
    // Another bucket's window is its own: nothing was evicted there since the list at 1.
    assert!(cache.watch(CONFIGMAPS, 1).is_ok());
    assert_eq!(
        cache.watch(CONFIGMAPS, 0).unwrap_err(),
        CacheError::Expired {
            requested: 0,
            oldest: 1
        }
    );
    // A prefix spanning buckets takes the highest floor among them.
    assert_eq!(
        cache.watch("/registry/core/", 1).unwrap_err(),
        CacheError::Expired {
            requested: 1,
            oldest: 3
        }
    );
}

#[tokio::test]
async fn watch_ahead_of_the_cache_waits_then_is_too_large() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(
        &store,
        WatchCacheConfig {
            too_large_wait: Duration::from_millis(200),
            ..config(10)
        },
    )
    .await;

    let mut never = cache.watch(PODS, 5).unwrap();
    assert_eq!(never.progress(), None);
    let started = Instant::now();
    let error = never.next().await.unwrap().unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(190));
    assert_eq!(
        error,
        CacheError::TooLarge {
            requested: 5,
            current: 0
        }
    );
    assert_eq!(
        error.to_string(),
        "Too large resource version: 5, current: 0"
    );
    assert!(never.next().await.is_none());

    // The cache gets there in time: events up to the requested revision are skipped.
    let mut soon = cache.watch(PODS, 2).unwrap();
    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        for name in ["a", "b", "c"] {
            writer.create(&pod("default", name), vec![]).await.unwrap();
        }
    });
    assert_eq!(next(&mut soon).await.revision, 3);
    cache
        .wait_for_revision(3, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(soon.progress(), Some(3));

    // Reaching the revision through other buckets' events is enough: no error at the deadline.
    let mut quiet = cache.watch(PODS, 4).unwrap();
    let writer = store.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        writer
            .create(&format!("{CONFIGMAPS}default/x"), vec![])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(270)).await;
        writer.create(&pod("default", "d"), vec![]).await.unwrap();
    });
    assert_eq!(next(&mut quiet).await.revision, 5);
}

#[tokio::test]
async fn watch_after_shutdown_is_closed() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(10)).await;
    cache.shutdown();
    assert_eq!(cache.watch(PODS, 0).unwrap_err(), CacheError::Closed);
    assert!(cache.snapshot_and_watch(PODS).2.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_all_receive_an_event() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(100)).await;
    let mut watchers: Vec<_> = (0..1000)
        .map(|_| cache.snapshot_and_watch(PODS).2)
        .collect();
    // Also some watchers elsewhere, which must not be offered the event.
    let _others: Vec<_> = (0..1000)
        .map(|_| cache.snapshot_and_watch(CONFIGMAPS).2)
        .collect();
    assert_eq!(cache.stats().watchers, 2000);

    let mut publish = Vec::new();
    let mut deliver = Vec::new();
    for round in 0..5 {
        let started = Instant::now();
        let kv = store
            .create(&pod("default", &format!("p{round}")), vec![])
            .await
            .unwrap();
        // The revision is published only after every watcher buffer has the event.
        cache
            .wait_for_revision(kv.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        publish.push(started.elapsed());
        for watcher in &mut watchers {
            assert_eq!(next(watcher).await.revision, kv.mod_revision);
        }
        deliver.push(started.elapsed());
    }
    eprintln!("1000 watchers: write→all buffered {publish:?}; write→all received {deliver:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_closed_as_lagged_without_delaying_others() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(
        &store,
        WatchCacheConfig {
            watcher_buffer: 4,
            ..config(100)
        },
    )
    .await;
    let mut slow = cache.snapshot_and_watch(PODS).2;
    let mut fast = cache.snapshot_and_watch(PODS).2;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 20 {
            seen.push(next(&mut fast).await.revision);
        }
        seen
    });
    for i in 0..20 {
        let kv = store
            .create(&pod("default", &format!("p{i}")), vec![])
            .await
            .unwrap();
        // The fast reader may fall behind by the buffer too; pace the writes on it, not the slow one.
        cache
            .wait_for_revision(kv.mod_revision, Duration::from_secs(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let seen = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    assert_eq!(
        cache.stats().watchers,
        0,
        "slow watcher unregistered, fast one dropped"
    );

    assert_eq!(slow.progress(), None);
    for expected in 1..=4 {
        assert_eq!(next(&mut slow).await.revision, expected);
    }
    assert_eq!(slow.next().await.unwrap().unwrap_err(), CacheError::Lagged);
    assert!(slow.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_watch_has_no_gap_or_duplicate_under_concurrent_writes() {
    let store = Arc::new(MemoryStore::new());
    // The snapshots' watchers are only read at the end, so they must buffer every write.
    let cache = start(
        &store,
        WatchCacheConfig {
            watcher_buffer: 4000,
            ..config(10_000)
        },
    )
    .await;
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        let mut live: BTreeMap<String, Revision> = BTreeMap::new();
        for i in 0..2000u32 {
            let key = pod("default", &format!("p{}", i % 25));
            match live.get(&key).copied() {
                None => {
                    let kv = writer_store
                        .create(&key, i.to_string().into_bytes())
                        .await
                        .unwrap();
                    live.insert(key, kv.mod_revision);
                }
                Some(rev) if i % 7 == 0 => {
                    writer_store.delete(&key, Some(rev)).await.unwrap();
                    live.remove(&key);
                }
                Some(rev) => {
                    let kv = writer_store
                        .update(&key, i.to_string().into_bytes(), rev)
                        .await
                        .unwrap();
                    live.insert(key, kv.mod_revision);
                }
            }
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    let mut snapshots = Vec::new();
    while !writer.is_finished() {
        snapshots.push(cache.snapshot_and_watch(PODS));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writer.await.unwrap();
    snapshots.push(cache.snapshot_and_watch(PODS));
    let last = store.current_revision().await.unwrap();
    cache
        .wait_for_revision(last, Duration::from_secs(5))
        .await
        .unwrap();
    let expected: BTreeMap<String, Vec<u8>> = store
        .range(PODS, None, 0, None)
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value))
        .collect();
    assert!(snapshots.len() > 2, "took {} snapshots", snapshots.len());

    for (items, revision, mut watcher) in snapshots {
        let mut state: BTreeMap<String, Vec<u8>> = items
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect();
        let mut at = revision;
        while at < last {
            let event = next(&mut watcher).await;
            assert_eq!(
                event.revision,
                at + 1,
                "gap or duplicate after snapshot at {revision}"
            );
            at = event.revision;
            match event.kind {
                EventKind::Added => assert!(
                    state
                        .insert(event.key().to_owned(), event.kv.value.clone())
                        .is_none()
                ),
                EventKind::Modified => assert!(
                    state
                        .insert(event.key().to_owned(), event.kv.value.clone())
                        .is_some()
                ),
                EventKind::Deleted => assert!(state.remove(event.key()).is_some()),
            }
        }
        assert_eq!(state, expected, "snapshot at {revision} plus events");
        assert_eq!(watcher.progress(), Some(last));
    }
}

#[tokio::test]
async fn progress_is_the_revision_up_to_which_everything_was_returned() {
    let store = Arc::new(MemoryStore::new());
    store.create(&pod("default", "a"), vec![]).await.unwrap();
    let cache = start(&store, config(10)).await;
    let mut watcher = cache.watch(&format!("{PODS}default/"), 1).unwrap();
    assert_eq!(watcher.progress(), Some(1));

    store.create(&pod("default", "b"), vec![]).await.unwrap();
    cache
        .wait_for_revision(2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        watcher.progress(),
        None,
        "event 2 is buffered, not yet returned"
    );
    assert_eq!(next(&mut watcher).await.revision, 2);
    assert_eq!(watcher.progress(), Some(2));

    // Changes the watcher does not match advance its progress without an event.
    store
        .create(&format!("{CONFIGMAPS}default/x"), vec![])
        .await
        .unwrap();
    store.create(&pod("other", "c"), vec![]).await.unwrap();
    cache
        .wait_for_revision(4, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(watcher.progress(), Some(4));

    // A watcher that still has to replay its window has no progress yet.
    let mut replaying = cache.watch(PODS, 1).unwrap();
    assert_eq!(replaying.progress(), None);
    assert_eq!(next(&mut replaying).await.revision, 2);
    assert_eq!(replaying.progress(), None);
    assert_eq!(next(&mut replaying).await.revision, 4);
    assert_eq!(replaying.progress(), Some(4));
}

#[tokio::test]
async fn events_carry_kind_prev_and_deletion_revision() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(10)).await;
    let mut watcher = cache.watch(PODS, 0).unwrap();
    let key = pod("default", "a");
    let v1 = store.create(&key, b"v1".to_vec()).await.unwrap();
    let v2 = store
        .update(&key, b"v2".to_vec(), v1.mod_revision)
        .await
        .unwrap();
    let (_, deleted_at) = store.delete(&key, None).await.unwrap();

    let added = next(&mut watcher).await;
    assert_eq!(
        (added.kind, added.kv.value.as_slice(), added.prev.is_none()),
        (EventKind::Added, &b"v1"[..], true)
    );
    let modified = next(&mut watcher).await;
    assert_eq!(modified.kind, EventKind::Modified);
    assert_eq!(modified.kv.value, b"v2");
    assert_eq!(modified.prev.as_ref().unwrap().value, b"v1");
    let deleted = next(&mut watcher).await;
    assert_eq!(deleted.kind, EventKind::Deleted);
    assert_eq!(deleted.revision, deleted_at);
    assert_eq!(
        (deleted.kv.value.as_slice(), deleted.kv.mod_revision),
        (&b"v2"[..], v2.mod_revision)
    );
    assert_eq!(deleted.prev.as_ref().unwrap().value, b"v2");
    assert!(cache.get(&key).0.is_none());
}

#[tokio::test]
async fn a_prefix_spanning_buckets_sees_all_their_events_in_order() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(10)).await;
    store.create(&pod("default", "a"), vec![]).await.unwrap();
    store
        .create(&format!("{CONFIGMAPS}default/b"), vec![])
        .await
        .unwrap();
    store
        .create("/registry/apps/deployments/default/c", vec![])
        .await
        .unwrap();
    cache
        .wait_for_revision(3, Duration::from_secs(5))
        .await
        .unwrap();

    let mut core = cache.watch("/registry/core/", 0).unwrap();
    assert_eq!(next(&mut core).await.revision, 1);
    assert_eq!(next(&mut core).await.revision, 2);
    let mut all = cache.watch("/registry/", 1).unwrap();
    assert_eq!(next(&mut all).await.revision, 2);
    assert_eq!(next(&mut all).await.revision, 3);
    store.create(&pod("default", "d"), vec![]).await.unwrap();
    assert_eq!(next(&mut core).await.revision, 4);
    assert_eq!(next(&mut all).await.revision, 4);
    assert_quiet(&mut core).await;
}

#[tokio::test]
async fn dropping_the_cache_ends_watchers() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(10)).await;
    let mut watcher = cache.snapshot_and_watch(PODS).2;
    drop(cache);
    assert!(watcher.next().await.is_none());
    assert_eq!(watcher.progress(), None);
}

#[test]
fn events_are_encoded_once_per_format() {
    let kv = Arc::new(KeyValue {
        key: pod("default", "a"),
        value: b"{}".to_vec(),
        create_revision: 1,
        mod_revision: 1,
    });
    let event = CacheEvent::new(EventKind::Added, kv, None, 1);
    let calls = AtomicUsize::new(0);
    let encode = |_: &CacheEvent| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(Bytes::from_static(b"encoded"))
    };
    assert_eq!(event.encoded_with("json", encode).unwrap(), "encoded");
    assert_eq!(event.encoded_with("json", encode).unwrap(), "encoded");
    assert_eq!(event.encoded_with("protobuf", encode).unwrap(), "encoded");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
