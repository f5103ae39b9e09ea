//! Embedded SQLite backend for [`rkube_storage::KvStore`]: kine's design (one append-only log
//! table whose row id is the revision, see [`schema`]) in a single process.
//!
//! - **Writes** go to one writer thread owning the only write connection (module `writer`); it commits
//!   with `journal_mode=WAL` and `synchronous=FULL`, so an acknowledged write survives `kill -9`
//!   and power loss, then publishes the event to the in-process watch fan-out. No polling and no
//!   gap "fill" rows: we are the only writer of the file, unlike kine.
//! - **Reads** use a small pool of read-only connections on `spawn_blocking` (module `reader`); WAL
//!   readers never wait for the writer.
//! - **Watches** subscribe to the fan-out, then replay history from the table in pages.
//! - **Compaction** deletes superseded rows and tombstones in batches of 1,000 revisions on the
//!   writer thread; the compacted revision is recorded in the file and survives restarts.
//!
//! The file is meant for one process at a time: a second process writing to it would make the
//! in-memory revision and the watch fan-out wrong.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream;
use rusqlite::Connection;
use tokio::sync::oneshot;

use rkube_storage::fanout::{self, DEFAULT_WATCH_CAPACITY, Fanout};
use rkube_storage::{KeyValue, KvStore, RangeResult, Result, Revision, StorageError, WatchStream};

mod reader;
pub mod schema;
mod writer;

use reader::Readers;
use writer::{Command, Shared, Writer};

/// Events read per query while a watch replays history.
const REPLAY_PAGE: usize = 512;

/// What went wrong inside the SQLite backend; callers see it as a [`StorageError`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An update or delete row whose previous row is missing: the file was changed by something
    /// other than this backend.
    #[error("history row {revision} is missing")]
    MissingHistory {
        /// The missing revision.
        revision: Revision,
    },
    /// The file is not usable as configured (e.g. WAL could not be enabled).
    #[error("cannot open {path}: {reason}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A store-level answer passed through (Compacted, FutureRevision, …).
    #[error(transparent)]
    Store(#[from] StorageError),
}

impl From<Error> for StorageError {
    fn from(err: Error) -> Self {
        match err {
            Error::Store(err) => err,
            other => StorageError::Backend(other.to_string()),
        }
    }
}

/// Tuning knobs; the defaults suit a single-node cluster.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events a watcher may fall behind before it is closed with `WatchLagged`.
    pub watch_capacity: usize,
    /// Read connections kept open between reads.
    pub max_idle_readers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { watch_capacity: DEFAULT_WATCH_CAPACITY, max_idle_readers: 4 }
    }
}

/// A [`KvStore`] in one SQLite file. Dropping it stops the writer thread (after the writes already
/// queued) and ends all watch streams.
#[derive(Debug)]
pub struct SqliteStore {
    commands: Option<mpsc::Sender<Command>>,
    writer: Option<JoinHandle<()>>,
    readers: Arc<Readers>,
    shared: Arc<Shared>,
    fanout: Fanout,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` with default [`Options`].
    ///
    /// Synchronous: it creates the schema and reads the current revision, which takes a few
    /// milliseconds of file I/O. From async code that cares, wrap it in `spawn_blocking`. Must be
    /// used (not necessarily opened) inside a tokio runtime, since reads use `spawn_blocking`.
    /// The parent directory must exist.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        Self::open_with(path, Options::default())
    }

    /// Like [`SqliteStore::open`] with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let conn = open_writer(&path)?;
        let shared = Arc::new(Shared::default());
        let fanout = Fanout::new(options.watch_capacity);
        let writer = Writer::new(conn, shared.clone(), fanout.clone())?;
        let (commands, receiver) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("rkube-sqlite-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|err| StorageError::Backend(format!("cannot start sqlite writer: {err}")))?;
        Ok(SqliteStore {
            commands: Some(commands),
            writer: Some(handle),
            readers: Arc::new(Readers::new(path, options.max_idle_readers)),
            shared,
            fanout,
        })
    }

    /// Stops the writer after the writes already queued and waits for it without blocking the
    /// async runtime (dropping the store does the same wait on the current thread).
    pub async fn close(mut self) {
        self.commands = None;
        if let Some(handle) = self.writer.take() {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    /// Sends a command to the writer and waits for its answer.
    async fn send<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let closed = || StorageError::Backend("sqlite writer has stopped".into());
        self.commands.as_ref().ok_or_else(closed)?.send(make(reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// The write connection: WAL so readers never block on the writer and a commit is one append;
/// `synchronous=FULL` so that append is fsynced before COMMIT returns (kine's default `NORMAL`
/// can lose the last commits on power loss, which would break "durable before acknowledged").
fn open_writer(path: &Path) -> std::result::Result<Connection, Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Open { path: path.to_path_buf(), reason: format!("journal_mode is {mode}, not wal") });
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(schema::SCHEMA)?;
    Ok(conn)
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channel makes the writer finish the queued writes and exit; joining means
        // the file is closed when the drop returns, so it can be reopened right away.
        self.commands = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        reader::run(&self.readers, move |tx| reader::get(tx, &key)).await
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        reader::run(&self.readers, move |tx| reader::range(tx, &prefix, start_after.as_deref(), limit, revision)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.send(|reply| Command::Create { key: key.to_owned(), value, reply }).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected_revision: Revision) -> Result<KeyValue> {
        self.send(|reply| Command::Update { key: key.to_owned(), value, expected: expected_revision, reply }).await
    }

    async fn delete(&self, key: &str, expected_revision: Option<Revision>) -> Result<(KeyValue, Revision)> {
        self.send(|reply| Command::Delete { key: key.to_owned(), expected: expected_revision, reply }).await
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        // Subscribe first, then learn how far the table is complete: anything committed later is
        // in the subscription, anything earlier is in the table (see `fanout`).
        let subscription = self.fanout.subscribe();
        let (upto, compacted) = reader::run(&self.readers, |tx| schema::snapshot_revisions(tx)).await?;
        if after_revision < compacted {
            return Err(StorageError::Compacted { requested: after_revision + 1, compacted });
        }
        let readers = self.readers.clone();
        let owned_prefix = prefix.to_owned();
        // Replay lazily, one page per read, so a long history is never all in memory.
        let replay = stream::unfold(Some(after_revision), move |cursor| {
            let readers = readers.clone();
            let prefix = owned_prefix.clone();
            async move {
                let after = cursor.filter(|after| *after < upto)?;
                let page = reader::run(&readers, move |tx| reader::history(tx, &prefix, after, upto, REPLAY_PAGE)).await;
                match page {
                    Ok(events) => {
                        let next = match events.last() {
                            Some(last) if events.len() == REPLAY_PAGE => Some(last.revision()),
                            _ => None,
                        };
                        Some((stream::iter(events.into_iter().map(Ok)).boxed(), next))
                    }
                    Err(err) => Some((stream::iter([Err(err)]).boxed(), None)),
                }
            }
        })
        .flatten()
        .boxed();
        Ok(fanout::watch_stream(prefix.to_owned(), replay, upto.max(after_revision), subscription))
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.current.load(Ordering::Acquire))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.send(|reply| Command::Compact { revision, reply }).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn writer_connection_is_wal_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("state.db")).unwrap();
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
    }

    #[tokio::test]
    async fn close_then_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        store.create("/a", vec![1]).await.unwrap();
        store.close().await;
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.get("/a").await.unwrap().unwrap().value, vec![1]);
    }
}
