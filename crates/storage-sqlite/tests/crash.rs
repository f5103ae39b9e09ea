//! "Durable before acknowledged" under `kill -9`: the test re-runs its own binary as a writer child
//! that creates keys from several tasks and prints each acknowledged one; the parent SIGKILLs it
//! mid-stream, reopens the file and checks that every acknowledged write is there, byte for byte,
//! and that revisions continue past all of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkube_storage::KvStore;
use rkube_storage_sqlite::SqliteStore;

/// Set in the child's environment to the database path; selects writer mode.
const WRITER_ENV: &str = "RKUBE_SQLITE_CRASH_WRITER_DB";
/// Acknowledgements to wait for before killing the child.
const KILL_AFTER: usize = 400;
const WRITER_TASKS: usize = 4;

fn value_for(key: &str) -> Vec<u8> {
    format!("{key}|").repeat(40).into_bytes()
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Ok(path) = std::env::var(WRITER_ENV) {
        run_writer(Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "acknowledged_writes_survive_kill_9", "--nocapture", "--test-threads", "1"])
            .env(WRITER_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();

    let mut acks: Vec<(String, i64)> = Vec::new();
    let mut first_ack = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.len() < KILL_AFTER {
        assert!(Instant::now() < deadline, "writer too slow: {} acks", acks.len());
        let line = lines.next().expect("writer exited early").unwrap();
        if let Some(ack) = parse_ack(&line) {
            first_ack.get_or_insert_with(Instant::now);
            acks.push(ack);
        }
    }
    let elapsed = first_ack.map(|t| t.elapsed()).unwrap_or_default();
    child.0.kill().unwrap(); // SIGKILL: no destructors, no flush, no clean close
    child.0.wait().unwrap();
    // Lines already in the pipe were acknowledged before the kill too.
    acks.extend(lines.map_while(|line| line.ok()).filter_map(|line| parse_ack(&line)));
    eprintln!(
        "{} acknowledged creates before kill -9 ({:.0} creates/s with {WRITER_TASKS} concurrent writers)",
        acks.len(),
        KILL_AFTER as f64 / elapsed.as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        let max_acked = acks.iter().map(|(_, rev)| *rev).max().unwrap();
        assert!(store.current_revision().await.unwrap() >= max_acked);
        for (key, revision) in &acks {
            let kv = store.get(key).await.unwrap().unwrap_or_else(|| panic!("acknowledged {key} lost"));
            assert_eq!(kv.mod_revision, *revision, "{key}");
            assert_eq!(kv.value, value_for(key), "{key}");
        }
        let listed = store.range("/crash/", None, 0, None).await.unwrap();
        assert!(listed.kvs.len() >= acks.len());
        let after = store.create("/after-crash", b"x".to_vec()).await.unwrap();
        assert!(after.mod_revision > max_acked);
        assert_eq!(after.mod_revision, store.current_revision().await.unwrap());
    });
}

fn parse_ack(line: &str) -> Option<(String, i64)> {
    let mut parts = line.strip_prefix("ACK ")?.split(' ');
    Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
}

/// Child mode: create keys from several tasks until killed, printing each acknowledgement.
fn run_writer(path: &Path) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(path).unwrap());
        // Never outlive a parent that failed to kill us.
        let stop_at = Instant::now() + Duration::from_secs(30);
        let tasks: Vec<_> = (0..WRITER_TASKS)
            .map(|task| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0.. {
                        if Instant::now() > stop_at {
                            break;
                        }
                        let key = format!("/crash/{task}/{i:06}");
                        let kv = store.create(&key, value_for(&key)).await.unwrap();
                        // println! takes the stdout lock per line, so lines never interleave.
                        println!("ACK {key} {}", kv.mod_revision);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Kills the child if the parent test fails before doing so itself.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
