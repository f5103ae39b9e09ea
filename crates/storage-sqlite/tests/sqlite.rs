//! Behaviour specific to the SQLite backend: restarts, resumed compaction, watch lag, and range
//! speed over a large prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rkube_storage::{KvStore, StorageError};
use rkube_storage_sqlite::{Options, SqliteStore, schema};
use rusqlite::{Connection, params};

fn rows(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT COUNT(*) FROM kv", [], |row| row.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revisions_never_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let a = store.create("/a", b"a".to_vec()).await.unwrap();
    store.create("/b", b"b".to_vec()).await.unwrap();
    let (_, deleted) = store.delete("/b", None).await.unwrap();
    // The tombstone is the newest row; compaction deletes it. The next revision must still be
    // deleted + 1, not reuse it.
    store.compact(deleted).await.unwrap();
    assert_eq!(rows(&path), 1);
    drop(store);

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), deleted);
    assert_eq!(store.compacted_revision().await.unwrap(), deleted);
    assert_eq!(store.get("/a").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get("/b").await.unwrap(), None);
    assert!(matches!(store.range("/", None, 0, Some(a.mod_revision)).await, Err(StorageError::Compacted { .. })));
    let c = store.create("/c", vec![]).await.unwrap();
    assert_eq!(c.mod_revision, deleted + 1);
    let b = store.create("/b", vec![]).await.unwrap();
    assert_eq!(b.create_revision, deleted + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_compaction_resumes_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let mut kv = store.create("/k", vec![0]).await.unwrap();
    drop(store);
    // 2,500 updates written directly: faster than fsyncing each through the store.
    {
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for _ in 0..2_500 {
            let id = kv.mod_revision + 1;
            tx.execute(schema::INSERT, params![id, "/k", 0, 0, kv.create_revision, kv.mod_revision, vec![1u8]])
                .unwrap();
            kv.mod_revision = id;
        }
        // As if a previous process had recorded the compaction and died before deleting rows.
        tx.execute("INSERT INTO meta (name, value) VALUES ('compact_rev', 2000)", []).unwrap();
        tx.commit().unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 2000);
    assert_eq!(store.current_revision().await.unwrap(), kv.mod_revision);
    let deadline = Instant::now() + Duration::from_secs(5);
    while rows(&path) > 502 {
        assert!(Instant::now() < deadline, "compaction did not resume");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(store.get("/k").await.unwrap().unwrap().mod_revision, kv.mod_revision);
    let mut watch = store.watch("/k", 2000).await.unwrap();
    let first = watch.next().await.unwrap().unwrap();
    assert_eq!(first.revision(), 2001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_is_closed_without_blocking_writers() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { watch_capacity: 4, ..Options::default() };
    let store = SqliteStore::open_with(dir.path().join("state.db"), options).unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("/k{i}")).collect();
    let writes: Vec<_> = keys.iter().map(|key| store.create(key, vec![])).collect();
    for write in futures::future::join_all(writes).await {
        write.unwrap();
    }
    assert_eq!(watch.next().await.unwrap(), Err(StorageError::WatchLagged));
    assert!(watch.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_ends_watches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    drop(store);
    assert!(tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().is_none());
}

/// 10,000 keys under one prefix, each with two versions, next to 10,000 keys under a neighbour
/// prefix: a page, a full list and a list at an old revision must stay fast and use the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_over_ten_thousand_keys_uses_the_index() {
    const N: i64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).unwrap());
    {
        let mut conn = Connection::open(&path).unwrap();
        let tx = conn.transaction().unwrap();
        let value = vec![b'x'; 1_000];
        let mut id = 0i64;
        for prefix in ["/registry/pods/", "/registry/podsx/"] {
            for i in 0..N {
                id += 1;
                let name = format!("{prefix}ns/pod-{i:05}");
                tx.execute(schema::INSERT, params![id, name, 1, 0, id, 0, value]).unwrap();
            }
        }
        for i in 0..N {
            id += 1;
            let name = format!("/registry/pods/ns/pod-{i:05}");
            tx.execute(schema::INSERT, params![id, name, 0, 0, i + 1, i + 1, value]).unwrap();
        }
        tx.commit().unwrap();

        for sql in [schema::RANGE_LATEST, schema::RANGE_COUNT] {
            let sql = format!("EXPLAIN QUERY PLAN {}", sql.replace("{bounds}", "name >= ?3 AND name < ?4"));
            let mut stmt = conn.prepare(&sql).unwrap();
            let plan: Vec<String> = stmt
                .query_map(params![3 * N, 500, "/registry/pods/", "/registry/pods0"], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            eprintln!("plan: {plan:?}");
            assert!(plan.iter().any(|step| step.contains("COVERING INDEX kv_name_id")), "{plan:?}");
            assert!(!plan.iter().any(|step| step.starts_with("SCAN kv")), "{plan:?}");
        }
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 3 * N);

    let started = Instant::now();
    let page = store.range("/registry/pods/", None, 500, None).await.unwrap();
    let page_time = started.elapsed();
    assert_eq!((page.kvs.len(), page.remaining, page.more), (500, N, true));
    assert_eq!(page.kvs[0].mod_revision, 2 * N + 1);
    let started = Instant::now();
    let next = store.range("/registry/pods/", Some(&page.kvs[499].key), 500, Some(page.revision)).await.unwrap();
    let next_time = started.elapsed();
    assert_eq!(next.remaining, N - 500);
    let started = Instant::now();
    let all = store.range("/registry/pods/", None, 0, Some(2 * N)).await.unwrap();
    let all_time = started.elapsed();
    assert_eq!(all.kvs.len() as i64, N);
    assert!(all.kvs.iter().all(|kv| kv.mod_revision == kv.create_revision));
    eprintln!("10k keys: first page {page_time:?}, second page {next_time:?}, full list at old revision {all_time:?}");
    // Generous bounds for a loaded debug build; the point is "not a table scan per key".
    assert!(page_time < Duration::from_secs(2) && all_time < Duration::from_secs(5));

    // Replay crosses many history pages and keeps order.
    let started = Instant::now();
    let mut watch = store.watch("/registry/pods/", 0).await.unwrap();
    let mut expected_events = 2 * N;
    let mut last = 0;
    while expected_events > 0 {
        let event = watch.next().await.unwrap().unwrap();
        assert!(event.revision() > last && event.key().starts_with("/registry/pods/"));
        last = event.revision();
        expected_events -= 1;
    }
    eprintln!("replayed {} events in {:?}", 2 * N, started.elapsed());
}
