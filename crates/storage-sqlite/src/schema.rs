//! The table, its indexes, and the SQL both the writer and the readers use.
//!
//! Like kine (`pkg/drivers/sqlite/sqlite.go`, `pkg/drivers/generic/generic.go`), the table is the
//! log: every create, update and delete appends one row whose `id` is the revision. Unlike kine,
//! rows do not repeat the previous value (`old_value`): an event's previous value is the row its
//! `prev_revision` points at, which compaction never removes while the event is still replayable
//! (a row is only deleted once the row superseding it is at or below the compacted revision). That
//! halves the bytes written, and fsynced, per update.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, ToSql, params};

use rkube_storage::{Event, KeyValue, Revision};

use crate::Error;

/// Created on open; every statement is idempotent so reopening an existing file is a no-op.
///
/// - `id` is the revision. AUTOINCREMENT makes SQLite remember the highest id ever used in
///   `sqlite_sequence` even after compaction deletes that row (a compacted tombstone can be the
///   newest row), so revisions never go backwards across restarts.
/// - `created`/`deleted` mark the row as a create or a tombstone; `create_revision` is the key's
///   current life; `prev_revision` is the id of the key's previous row (0 for a first create).
/// - `kv_name_prev_revision` is unique: two writes that both saw the same previous row cannot both
///   commit (kine's guard; our single writer makes it a backstop).
/// - `kv_name_id` covers "latest row of each name under a prefix at revision R" (see
///   [`RANGE_LATEST`]) without touching the table.
/// - `meta` holds `compact_rev` (reads below it fail) and `compact_done` (how far history rows
///   have actually been deleted), so an interrupted compaction resumes after a restart.
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_name_prev_revision ON kv (name, prev_revision);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id, deleted);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The latest row per name in a key range at a revision, live rows only, one page. The inner
/// queries only read the covering index `kv_name_id` over the prefix (SQLite's "bare column" rule
/// makes `deleted` come from the row holding `MAX(id)`, and the GROUP BY walks the index in name
/// order, so the page needs no sort); only the page's rows are then read from the table for their
/// values. `{bounds}` is filled with the name conditions; `?1` is the revision, `?2` the limit
/// (-1 = none).
pub const RANGE_LATEST: &str = "
SELECT k.name, k.create_revision, k.id, k.value
FROM (
    SELECT id, name FROM (
        SELECT MAX(id) AS id, deleted, name FROM kv WHERE {bounds} AND id <= ?1 GROUP BY name
    )
    WHERE deleted = 0
    ORDER BY name
    LIMIT ?2
) AS page
JOIN kv AS k ON k.id = page.id
ORDER BY page.name";

/// How many keys [`RANGE_LATEST`] would return without a limit; index-only.
pub const RANGE_COUNT: &str = "
SELECT COUNT(*)
FROM (SELECT MAX(id) AS id, deleted FROM kv WHERE {bounds} AND id <= ?1 GROUP BY name)
WHERE deleted = 0";

/// History rows after a revision, oldest first, with the previous row's value for updates and
/// deletes. `?1` < id <= `?2`, at most `?3` rows.
pub const HISTORY: &str = "
SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision, k.value, p.value
FROM kv AS k LEFT JOIN kv AS p ON p.id = k.prev_revision AND k.created = 0
WHERE k.id > ?1 AND k.id <= ?2 AND {bounds}
ORDER BY k.id
LIMIT ?3";

/// Deletes, for revisions in (`?1`, `?2`], every row superseded by a row in that window and every
/// tombstone in it. Cribbed from kine's `compactSQL` (which cribbed from
/// `k8s.io/apiserver/pkg/storage/etcd3/compact.go`'s idea of keeping each key's latest revision).
pub const COMPACT_BATCH: &str = "
DELETE FROM kv WHERE id IN (
    SELECT prev_revision FROM kv WHERE id > ?1 AND id <= ?2 AND prev_revision != 0
    UNION
    SELECT id FROM kv WHERE id > ?1 AND id <= ?2 AND deleted != 0
)";

/// Appends one row.
pub const INSERT: &str = "
INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Sets a `meta` value.
pub(crate) const SET_META: &str =
    "INSERT INTO meta (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET value = excluded.value";

/// The meta row naming the compacted revision.
pub(crate) const COMPACT_REV: &str = "compact_rev";
/// The meta row naming how far compaction has deleted history.
pub(crate) const COMPACT_DONE: &str = "compact_done";

/// A key's newest row, tombstone or not.
#[derive(Debug)]
pub(crate) struct Latest {
    pub id: Revision,
    pub create_revision: Revision,
    pub deleted: bool,
    pub value: Vec<u8>,
}

impl Latest {
    /// The key's live value, unless the newest row is a tombstone.
    pub(crate) fn into_live(self, key: &str) -> Option<KeyValue> {
        (!self.deleted).then(|| KeyValue {
            key: key.to_owned(),
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.id,
        })
    }
}

/// The newest row of `key` (index `kv_name_id`, then one primary-key lookup).
pub(crate) fn latest(conn: &Connection, key: &str) -> Result<Option<Latest>, Error> {
    let mut stmt = conn
        .prepare_cached("SELECT id, create_revision, deleted, value FROM kv WHERE name = ?1 ORDER BY id DESC LIMIT 1")?;
    let row = stmt
        .query_row([key], |row| {
            Ok(Latest { id: row.get(0)?, create_revision: row.get(1)?, deleted: row.get(2)?, value: row.get(3)? })
        })
        .optional()?;
    Ok(row)
}

/// The revisions a read snapshot sees: (current, compacted). Reading both inside the caller's
/// transaction keeps them consistent with the rows it reads next.
pub(crate) fn snapshot_revisions(conn: &Connection) -> Result<(Revision, Revision), Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'kv'), (SELECT value FROM meta WHERE name = ?1)",
    )?;
    let (current, compacted) = stmt.query_row([COMPACT_REV], |row| {
        Ok((row.get::<_, Option<Revision>>(0)?, row.get::<_, Option<Revision>>(1)?))
    })?;
    Ok((current.unwrap_or(0), compacted.unwrap_or(0)))
}

/// A `meta` value, 0 when unset.
pub(crate) fn meta(conn: &Connection, name: &str) -> Result<Revision, Error> {
    let value = conn
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |row| row.get::<_, Revision>(0))
        .optional()?;
    Ok(value.unwrap_or(0))
}

/// Sets a `meta` value.
pub(crate) fn set_meta(conn: &Connection, name: &str, value: Revision) -> Result<(), Error> {
    conn.prepare_cached(SET_META)?.execute(params![name, value])?;
    Ok(())
}

/// One history row turned into the event it records.
pub(crate) fn history_event(row: &rusqlite::Row<'_>) -> Result<Event, Error> {
    let id: Revision = row.get(0)?;
    let key: String = row.get(1)?;
    let created: bool = row.get(2)?;
    let deleted: bool = row.get(3)?;
    let create_revision: Revision = row.get(4)?;
    let prev_revision: Revision = row.get(5)?;
    let prev = if created {
        None
    } else {
        let value: Option<Vec<u8>> = row.get(7)?;
        let value = value.ok_or(Error::MissingHistory { revision: prev_revision })?;
        Some(KeyValue { key: key.clone(), value, create_revision, mod_revision: prev_revision })
    };
    Ok(match (deleted, prev) {
        (true, Some(prev)) => Event::Delete { prev, revision: id },
        (true, None) => return Err(Error::MissingHistory { revision: id }),
        (false, prev) => {
            let kv = KeyValue { key, value: row.get(6)?, create_revision, mod_revision: id };
            Event::Put { kv, prev }
        }
    })
}

/// The key range of a prefix read, as SQL conditions on `name` plus their parameters. Keys compare
/// as bytes (SQLite's BINARY collation is memcmp on the UTF-8), so "everything with this prefix" is
/// `name >= prefix AND name < prefix-with-last-byte-incremented`, which the index serves as a
/// range scan, unlike `LIKE` or `substr`.
#[derive(Debug, Clone)]
pub(crate) struct Bounds {
    lower: Vec<u8>,
    lower_inclusive: bool,
    upper: Option<Vec<u8>>,
}

impl Bounds {
    /// Keys starting with `prefix`, strictly after `start_after` when given.
    pub(crate) fn new(prefix: &str, start_after: Option<&str>) -> Self {
        let (lower, lower_inclusive) = match start_after {
            Some(after) if after >= prefix => (after.as_bytes().to_vec(), false),
            _ => (prefix.as_bytes().to_vec(), true),
        };
        Bounds { lower, lower_inclusive, upper: prefix_end(prefix.as_bytes()) }
    }

    /// The conditions on `column`, using parameters `?first`
    /// and (if there is an upper bound) `?first+1`.
    pub(crate) fn sql(&self, column: &str, first: usize) -> String {
        let op = if self.lower_inclusive { ">=" } else { ">" };
        match self.upper {
            Some(_) => format!("{column} {op} ?{first} AND {column} < ?{}", first + 1),
            None => format!("{column} {op} ?{first}"),
        }
    }

    /// The parameters for [`Bounds::sql`], in order.
    pub(crate) fn params(&self) -> Vec<TextBytes<'_>> {
        let mut params = vec![TextBytes(&self.lower)];
        if let Some(upper) = &self.upper {
            params.push(TextBytes(upper));
        }
        params
    }
}

/// The smallest byte string greater than every string starting with `prefix`; None if there is
/// none (empty prefix, or all 0xFF, which UTF-8 never contains).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Binds bytes as TEXT. The exclusive upper bound of a prefix may not be valid UTF-8 (`/` + 1 is
/// fine, but a multi-byte character's last byte + 1 is not); SQLite compares it as bytes anyway.
#[derive(Debug)]
pub(crate) struct TextBytes<'a>(pub &'a [u8]);

impl ToSql for TextBytes<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), Some(b"/registry/pods0".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
    }

    #[test]
    fn bounds_use_start_after_only_inside_the_prefix() {
        let b = Bounds::new("/p/", Some("/a"));
        assert_eq!(b.sql("name", 3), "name >= ?3 AND name < ?4");
        let b = Bounds::new("/p/", Some("/p/x"));
        assert_eq!(b.sql("k.name", 1), "k.name > ?1 AND k.name < ?2");
        assert_eq!(Bounds::new("", None).sql("name", 1), "name >= ?1");
    }
}
