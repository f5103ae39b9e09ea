//! Measurements, ignored by default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rkube_storage::KvStore;
use rkube_storage::memory::MemoryStore;

use super::{PODS, config, next, pod, start};

/// Numbers for the README: `cargo test --release -p rkube-watch-cache fan_out_numbers -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn fan_out_numbers() {
    let store = Arc::new(MemoryStore::new());
    let cache = start(&store, config(1000)).await;
    let mut watchers: Vec<_> = (0..1000)
        .map(|_| cache.snapshot_and_watch(PODS).2)
        .collect();
    let mut buffered = Vec::new();
    let mut received = Vec::new();
    for round in 0..200 {
        let started = Instant::now();
        let kv = store
            .create(&pod("default", &format!("p{round}")), vec![0; 1024])
            .await
            .unwrap();
        cache
            .wait_for_revision(kv.mod_revision, Duration::from_secs(5))
            .await
            .unwrap();
        buffered.push(started.elapsed());
        for watcher in &mut watchers {
            next(watcher).await;
        }
        received.push(started.elapsed());
    }
    buffered.sort();
    received.sort();
    let pct = |v: &[Duration], p: usize| v[v.len() * p / 100];
    eprintln!(
        "1 event → 1000 watchers: write→all buffered p50 {:?} p99 {:?}; write→all 1000 received p50 {:?} p99 {:?}",
        pct(&buffered, 50),
        pct(&buffered, 99),
        pct(&received, 50),
        pct(&received, 99)
    );

    // Ingest throughput with 1000 watchers on one bucket, draining concurrently.
    drop(watchers);
    let watchers: Vec<_> = (0..1000)
        .map(|_| cache.snapshot_and_watch(PODS).2)
        .collect();
    let drains: Vec<_> = watchers
        .into_iter()
        .map(|mut w| tokio::spawn(async move { while let Some(Ok(_)) = w.next().await {} }))
        .collect();
    let writes = 5000;
    let started = Instant::now();
    for i in 0..writes {
        store
            .create(&pod("bulk", &format!("p{i}")), vec![0; 1024])
            .await
            .unwrap();
    }
    let last = store.current_revision().await.unwrap();
    cache
        .wait_for_revision(last, Duration::from_secs(60))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let stats = cache.stats();
    eprintln!(
        "{writes} writes with 1000 draining watchers: {elapsed:?} ({:.0} events/s applied+fanned out); {} lagged of 1000; stats {stats:?}",
        writes as f64 / elapsed.as_secs_f64(),
        1000 - stats.watchers
    );
    cache.shutdown();
    for drain in drains {
        drain.await.unwrap();
    }

    let started = Instant::now();
    let (items, _) = cache.list(PODS);
    eprintln!("list of {} objects: {:?}", items.len(), started.elapsed());
}
