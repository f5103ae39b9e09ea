//! The one writer: a std thread owning the only write connection. Async callers send commands over
//! a channel and await a oneshot reply, so fsyncs never block the async runtime.
//!
//! Commands that arrive while a commit is in progress are committed together in the next
//! transaction (group commit): each still gets its own revision and its own conditional check,
//! which sees the earlier writes of the same transaction, but they share one WAL fsync. Replies and
//! watch events go out only after COMMIT returns, so an acknowledged write is on disk
//! (`synchronous=FULL`) and a watcher never sees a write that could still be rolled back.
//!
//! Compaction runs here too, in small transactions interleaved with writes, so a large compaction
//! never holds the write lock for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use rkube_storage::fanout::Fanout;
use rkube_storage::{Event, KeyValue, Result, Revision, StorageError};

use crate::{Error, schema};

/// At most this many writes share one transaction, to bound the latency of the first of them.
const MAX_GROUP: usize = 128;
/// Revisions covered by one compaction transaction (kine uses 1,000 too).
const COMPACT_BATCH: Revision = 1_000;

/// Revisions the store handle reads without asking the writer.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The last committed revision.
    pub current: AtomicI64,
    /// The compacted revision (reads below it fail).
    pub compacted: AtomicI64,
}

/// A request to the writer.
pub(crate) enum Command {
    Create { key: String, value: Vec<u8>, reply: oneshot::Sender<Result<KeyValue>> },
    Update { key: String, value: Vec<u8>, expected: Revision, reply: oneshot::Sender<Result<KeyValue>> },
    Delete { key: String, expected: Option<Revision>, reply: oneshot::Sender<Result<(KeyValue, Revision)>> },
    Compact { revision: Revision, reply: oneshot::Sender<Result<()>> },
}

impl Command {
    fn is_write(&self) -> bool {
        !matches!(self, Command::Compact { .. })
    }

    /// Answers a write with its outcome.
    fn reply(self, outcome: Result<(KeyValue, Revision)>) {
        // A caller that stopped waiting (dropped future) is not an error for the writer.
        match self {
            Command::Create { reply, .. } | Command::Update { reply, .. } => {
                let _ = reply.send(outcome.map(|(kv, _)| kv));
            }
            Command::Delete { reply, .. } => {
                let _ = reply.send(outcome);
            }
            Command::Compact { reply, .. } => {
                let _ = reply.send(outcome.map(|_| ()));
            }
        }
    }
}

/// Compaction in progress: rows up to `done` are gone, up to `target` still to go.
struct Compaction {
    done: Revision,
    target: Revision,
    waiting: Vec<oneshot::Sender<Result<()>>>,
}

/// The writer thread's state.
pub(crate) struct Writer {
    conn: Connection,
    revision: Revision,
    shared: Arc<Shared>,
    fanout: Fanout,
    compaction: Option<Compaction>,
}

impl Writer {
    /// Takes over the write connection; resumes a compaction a previous process did not finish.
    pub(crate) fn new(conn: Connection, shared: Arc<Shared>, fanout: Fanout) -> std::result::Result<Self, Error> {
        let (revision, compacted) = schema::snapshot_revisions(&conn)?;
        let done = schema::meta(&conn, schema::COMPACT_DONE)?;
        shared.current.store(revision, Ordering::Release);
        shared.compacted.store(compacted, Ordering::Release);
        let compaction =
            (done < compacted).then(|| Compaction { done, target: compacted, waiting: Vec::new() });
        Ok(Writer { conn, revision, shared, fanout, compaction })
    }

    /// Serves commands until every sender is gone. Unfinished compaction resumes on the next open.
    pub(crate) fn run(mut self, commands: Receiver<Command>) {
        let mut lookahead: Option<Command> = None;
        loop {
            let next = match lookahead.take() {
                Some(command) => Some(command),
                // Between compaction batches, only pick up what is already queued.
                None if self.compaction.is_some() => match commands.try_recv() {
                    Ok(command) => Some(command),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                },
                None => match commands.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break,
                },
            };
            match next {
                Some(Command::Compact { revision, reply }) => self.start_compaction(revision, reply),
                Some(first) => {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match commands.try_recv() {
                            Ok(command) if command.is_write() => group.push(command),
                            Ok(command) => {
                                lookahead = Some(command);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group);
                }
                None => self.compact_step(),
            }
        }
        tracing::debug!(revision = self.revision, "sqlite writer stopped");
    }

    /// Commits a group of writes in one transaction, then publishes and replies in order.
    fn commit_group(&mut self, group: Vec<Command>) {
        let start = self.revision;
        match self.apply_group(&group) {
            Ok(outcomes) => {
                self.shared.current.store(self.revision, Ordering::Release);
                for (command, (outcome, event)) in group.into_iter().zip(outcomes) {
                    if let Some(event) = event {
                        self.fanout.publish(event);
                    }
                    command.reply(outcome);
                }
            }
            Err(err) => {
                // Nothing of the group is committed: no revision was used, nobody is acknowledged.
                self.revision = start;
                tracing::error!(error = %err, writes = group.len(), "sqlite write transaction failed");
                let err = StorageError::from(err);
                for command in group {
                    command.reply(Err(err.clone()));
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply_group(
        &mut self,
        group: &[Command],
    ) -> std::result::Result<Vec<(Result<(KeyValue, Revision)>, Option<Event>)>, Error> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(group.len());
        for command in group {
            outcomes.push(apply(&tx, &mut self.revision, command)?);
        }
        tx.commit()?;
        Ok(outcomes)
    }

    fn start_compaction(&mut self, revision: Revision, reply: oneshot::Sender<Result<()>>) {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if revision > self.revision {
            let _ = reply.send(Err(StorageError::FutureRevision { requested: revision, current: self.revision }));
            return;
        }
        if revision <= compacted {
            let _ = reply.send(Ok(()));
            return;
        }
        // Record the new compacted revision before deleting anything: from this commit on, reads
        // below it fail instead of seeing half-deleted history.
        if let Err(err) = schema::set_meta(&self.conn, schema::COMPACT_REV, revision) {
            let _ = reply.send(Err(err.into()));
            return;
        }
        self.shared.compacted.store(revision, Ordering::Release);
        match &mut self.compaction {
            Some(compaction) => {
                compaction.target = revision;
                compaction.waiting.push(reply);
            }
            None => {
                let done = compacted;
                self.compaction = Some(Compaction { done, target: revision, waiting: vec![reply] });
            }
        }
    }

    /// Deletes one batch of compacted history; on the last one answers the callers and truncates
    /// the WAL, the natural moment to give the space back.
    fn compact_step(&mut self) {
        let Some(compaction) = &mut self.compaction else { return };
        let to = compaction.target.min(compaction.done + COMPACT_BATCH);
        let result = (|| -> std::result::Result<usize, Error> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.prepare_cached(schema::COMPACT_BATCH)?.execute(params![compaction.done, to])?;
            schema::set_meta(&tx, schema::COMPACT_DONE, to)?;
            tx.commit()?;
            Ok(deleted)
        })();
        match result {
            Ok(deleted) => {
                tracing::trace!(from = compaction.done, to, deleted, "compacted batch");
                compaction.done = to;
                if to < compaction.target {
                    return;
                }
                for reply in compaction.waiting.drain(..) {
                    let _ = reply.send(Ok(()));
                }
                self.compaction = None;
                self.checkpoint();
            }
            Err(err) => {
                // Stop here; `compact_done` tells the next compaction (or the next open) where to
                // carry on. Reads are unaffected: the compacted revision is already recorded.
                tracing::warn!(error = %err, "sqlite compaction batch failed");
                let err = StorageError::from(err);
                for reply in compaction.waiting.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
                self.compaction = None;
            }
        }
    }

    /// Moves the WAL into the database and truncates it. Readers in the middle of a long read can
    /// make it incomplete, which is harmless: SQLite's automatic checkpoints continue.
    fn checkpoint(&self) {
        let result = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        if let Err(err) = result {
            tracing::debug!(error = %err, "wal checkpoint skipped");
        }
    }
}

/// Applies one write inside the group's transaction. The outer error aborts the whole group; the
/// inner one is this write's own answer (AlreadyExists, NotFound, Conflict), which uses no revision.
#[allow(clippy::type_complexity)]
fn apply(
    conn: &Connection,
    revision: &mut Revision,
    command: &Command,
) -> std::result::Result<(Result<(KeyValue, Revision)>, Option<Event>), Error> {
    let next = *revision + 1;
    let key = match command {
        Command::Create { key, .. } | Command::Update { key, .. } | Command::Delete { key, .. } => key,
        Command::Compact { .. } => return Ok((Err(StorageError::Backend("not a write".into())), None)),
    };
    let latest = schema::latest(conn, key)?;
    let latest_id = latest.as_ref().map_or(0, |row| row.id);
    let live = latest.and_then(|row| row.into_live(key));
    let mut insert = conn.prepare_cached(schema::INSERT)?;
    let check = |expected: Option<Revision>| -> Result<KeyValue> {
        let current = live.clone().ok_or_else(|| StorageError::NotFound { key: key.clone() })?;
        match expected {
            Some(expected) if expected != current.mod_revision => {
                Err(StorageError::Conflict { key: key.clone(), expected, current: Box::new(current) })
            }
            _ => Ok(current),
        }
    };
    let (outcome, event) = match command {
        Command::Create { value, .. } => {
            if live.is_some() {
                return Ok((Err(StorageError::AlreadyExists { key: key.clone() }), None));
            }
            insert.execute(params![next, key, true, false, next, latest_id, value])?;
            let kv = KeyValue { key: key.clone(), value: value.clone(), create_revision: next, mod_revision: next };
            ((kv.clone(), next), Event::Put { kv, prev: None })
        }
        Command::Update { value, expected, .. } => {
            let prev = match check(Some(*expected)) {
                Ok(prev) => prev,
                Err(err) => return Ok((Err(err), None)),
            };
            insert.execute(params![next, key, false, false, prev.create_revision, prev.mod_revision, value])?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: next,
            };
            ((kv.clone(), next), Event::Put { kv, prev: Some(prev) })
        }
        Command::Delete { expected, .. } => {
            let prev = match check(*expected) {
                Ok(prev) => prev,
                Err(err) => return Ok((Err(err), None)),
            };
            let empty: &[u8] = &[];
            insert.execute(params![next, key, false, true, prev.create_revision, prev.mod_revision, empty])?;
            ((prev.clone(), next), Event::Delete { prev, revision: next })
        }
        Command::Compact { .. } => return Ok((Err(StorageError::Backend("not a write".into())), None)),
    };
    *revision = next;
    Ok((Ok(outcome), Some(event)))
}
