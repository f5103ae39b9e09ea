//! Reads: a small pool of read-only connections used from `spawn_blocking`. In WAL mode readers
//! never wait for the writer and each read transaction sees one consistent snapshot, so a range's
//! revision checks, count and page all agree.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, OpenFlags, ToSql, Transaction};

use rkube_storage::{Event, KeyValue, RangeResult, Revision, StorageError};

use crate::Error;
use crate::schema::{self, Bounds};

/// Read connections, opened on demand and kept up to `max_idle`.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, max_idle: usize) -> Self {
        Readers { path, idle: Mutex::new(Vec::new()), max_idle }
    }

    fn open(&self) -> Result<Connection, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // Only a checkpoint or WAL recovery can make a reader wait, briefly.
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Runs `read` in one read transaction on a pooled connection. Blocking: call from
    /// `spawn_blocking`.
    pub(crate) fn with<T>(&self, read: impl FnOnce(&Transaction<'_>) -> Result<T, Error>) -> Result<T, Error> {
        let pooled = self.idle.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.open()?,
        };
        let result = (|| {
            let tx = conn.transaction()?;
            let value = read(&tx)?;
            tx.finish()?;
            Ok(value)
        })();
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        result
    }
}

/// Runs a read on the blocking pool.
pub(crate) async fn run<T: Send + 'static>(
    readers: &Arc<Readers>,
    read: impl FnOnce(&Transaction<'_>) -> Result<T, Error> + Send + 'static,
) -> rkube_storage::Result<T> {
    let readers = readers.clone();
    match tokio::task::spawn_blocking(move || readers.with(read)).await {
        Ok(result) => result.map_err(StorageError::from),
        Err(err) => Err(StorageError::Backend(format!("sqlite read task failed: {err}"))),
    }
}

/// The latest live value of a key.
pub(crate) fn get(tx: &Transaction<'_>, key: &str) -> Result<Option<KeyValue>, Error> {
    Ok(schema::latest(tx, key)?.and_then(|row| row.into_live(key)))
}

/// A prefix range at a revision; see [`rkube_storage::KvStore::range`].
pub(crate) fn range(
    tx: &Transaction<'_>,
    prefix: &str,
    start_after: Option<&str>,
    limit: usize,
    revision: Option<Revision>,
) -> Result<RangeResult, Error> {
    let (current, compacted) = schema::snapshot_revisions(tx)?;
    let at = match revision {
        Some(rev) if rev > 0 => rev,
        _ => current,
    };
    if at > current {
        return Err(StorageError::FutureRevision { requested: at, current }.into());
    }
    if at < compacted {
        return Err(StorageError::Compacted { requested: at, compacted }.into());
    }
    let bounds = Bounds::new(prefix, start_after);
    let bound_params = bounds.params();

    let count_sql = schema::RANGE_COUNT.replace("{bounds}", &bounds.sql("name", 2));
    let mut params: Vec<&dyn ToSql> = vec![&at];
    params.extend(bound_params.iter().map(|p| p as &dyn ToSql));
    let remaining: i64 = tx.prepare_cached(&count_sql)?.query_row(params.as_slice(), |row| row.get(0))?;

    let page_sql = schema::RANGE_LATEST.replace("{bounds}", &bounds.sql("name", 3));
    let sql_limit: i64 = if limit == 0 { -1 } else { i64::try_from(limit).unwrap_or(i64::MAX) };
    let mut params: Vec<&dyn ToSql> = vec![&at, &sql_limit];
    params.extend(bound_params.iter().map(|p| p as &dyn ToSql));
    let mut stmt = tx.prepare_cached(&page_sql)?;
    let kvs = stmt
        .query_map(params.as_slice(), |row| {
            Ok(KeyValue { key: row.get(0)?, create_revision: row.get(1)?, mod_revision: row.get(2)?, value: row.get(3)? })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let more = remaining > kvs.len() as i64;
    Ok(RangeResult { kvs, more, remaining, revision: at })
}

/// Up to `page` events for `prefix` with revisions in (`after`, `upto`], oldest first. Fails with
/// Compacted if compaction has passed `after` (some of those rows may be gone).
pub(crate) fn history(
    tx: &Transaction<'_>,
    prefix: &str,
    after: Revision,
    upto: Revision,
    page: usize,
) -> Result<Vec<Event>, Error> {
    let (_, compacted) = schema::snapshot_revisions(tx)?;
    if after < compacted {
        return Err(StorageError::Compacted { requested: after + 1, compacted }.into());
    }
    let bounds = Bounds::new(prefix, None);
    let bound_params = bounds.params();
    let sql = schema::HISTORY.replace("{bounds}", &bounds.sql("k.name", 4));
    let page = i64::try_from(page).unwrap_or(i64::MAX);
    let mut params: Vec<&dyn ToSql> = vec![&after, &upto, &page];
    params.extend(bound_params.iter().map(|p| p as &dyn ToSql));
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params.as_slice())?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        events.push(schema::history_event(row)?);
    }
    Ok(events)
}
