//! The audit writer's own connection to the embedded SQLite file.
//!
//! Through the shared pool, every step of a group commit (begin, read the head,
//! insert, commit) is a round trip to sqlx's SQLite worker thread, and each round
//! trip costs two thread wake-ups. Under a busy proxy those hops, not SQLite,
//! bounded how many statements per second could be audited. The writer
//! therefore owns one plain connection on its own thread and runs a whole
//! batch there, with prepared statements kept across batches.
//!
//! Nothing else changes: the same file, the same schema, the same `BEGIN
//! IMMEDIATE` transaction, and the store's in-process write gate, so the
//! writer still takes its turn with the pool's writers and, through SQLite's
//! busy timeout, with other processes (a CLI command beside the gateway).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use periscope_audit::{AuditEvent, Checkpoint, Head};
use periscope_policy::AuditDurability;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use tokio::sync::Mutex;

use crate::audit::{EVENT_COLUMNS, EventRow, HEAD_QUERY, INSERT_CHECKPOINT, head_from};
use crate::error::StoreError;
use crate::sql;

/// Where and how to open the writer's connection: taken from the [`crate::Store`]
/// it writes for.
#[derive(Clone, Debug)]
pub(crate) struct SqliteFile {
    pub(crate) path: PathBuf,
    pub(crate) busy_timeout: Duration,
    pub(crate) durability: AuditDurability,
    /// The store's in-process write gate, held for each transaction.
    pub(crate) write_gate: Arc<Mutex<()>>,
}

/// An open connection dedicated to appending to the audit chain. Blocking: use it
/// only from the writer's own thread.
pub(crate) struct SqliteChain {
    conn: Connection,
    write_gate: Arc<Mutex<()>>,
}

impl SqliteChain {
    /// Opens the file (which the store has already created and migrated) with the
    /// same per-connection settings as the pool's connections.
    pub(crate) fn open(file: &SqliteFile) -> Result<SqliteChain, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&file.path, flags)?;
        conn.busy_timeout(file.busy_timeout)?;
        let synchronous = match file.durability {
            AuditDurability::PowerLoss => "FULL",
            AuditDurability::ProcessCrash => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous};"
        ))?;
        Ok(SqliteChain {
            conn,
            write_gate: file.write_gate.clone(),
        })
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction, holding the store's
    /// write gate, and commits it: nothing is written unless everything is.
    fn transaction<T>(
        &mut self,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _gate = self.write_gate.blocking_lock();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let answer = body(&tx)?;
        tx.commit()?;
        Ok(answer)
    }

    /// One transaction: read the head, let `link` turn it into the events to
    /// insert (and maybe a checkpoint), insert them, commit.
    pub(crate) fn append<T>(
        &mut self,
        link: impl FnOnce(Head) -> (Vec<AuditEvent>, Option<Checkpoint>, T),
    ) -> Result<(T, Option<Checkpoint>), StoreError> {
        self.transaction(|tx| {
            let (events, checkpoint, answer) = link(read_head(tx)?);
            let rows: Vec<EventRow> = events.iter().map(EventRow::of).collect();
            insert_rows(tx, &rows)?;
            if let Some(checkpoint) = &checkpoint {
                insert_checkpoint(tx, checkpoint)?;
            }
            Ok((answer, checkpoint))
        })
    }

    /// Inserts events and checkpoints that are already linked (the live
    /// chain's indexer), in one transaction.
    pub(crate) fn insert(
        &mut self,
        events: &[EventRow],
        checkpoints: &[Checkpoint],
    ) -> Result<(), StoreError> {
        self.transaction(|tx| {
            insert_rows(tx, events)?;
            checkpoints
                .iter()
                .try_for_each(|checkpoint| insert_checkpoint(tx, checkpoint))
        })
    }

    /// Inserts those of `events` and `checkpoints` the index lacks (replay
    /// of the redo file); an event already there must have the same hash (a
    /// checkpoint already there is left alone by `INSERT_CHECKPOINT`).
    /// Returns how many events were inserted.
    pub(crate) fn insert_missing(
        &mut self,
        events: &[AuditEvent],
        checkpoints: &[Checkpoint],
    ) -> Result<u64, StoreError> {
        self.transaction(|tx| {
            let mut missing = Vec::new();
            let mut stored = tx.prepare_cached("SELECT hash FROM audit_events WHERE seq = ?1")?;
            for event in events {
                let hash: Option<String> = stored
                    .query_row(params![sql::to_i64(event.seq)], |row| row.get(0))
                    .optional()?;
                match hash {
                    None => missing.push(EventRow::of(event)),
                    Some(hash) if hash == event.hash.to_hex() => {}
                    Some(_) => {
                        return Err(StoreError::corrupt(
                            format!("audit event {}", event.seq),
                            "the redo file and the database hold different events at this seq",
                        ));
                    }
                }
            }
            insert_rows(tx, &missing)?;
            for checkpoint in checkpoints {
                insert_checkpoint(tx, checkpoint)?;
            }
            Ok(missing.len() as u64)
        })
    }

    /// The chain head as committed now.
    pub(crate) fn head(&mut self) -> Result<Head, StoreError> {
        read_head(&self.conn)
    }

    /// Stores a checkpoint in its own transaction (the final one at shutdown).
    pub(crate) fn add_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.transaction(|tx| insert_checkpoint(tx, checkpoint))
    }
}

/// Rows per multi-row INSERT of the index: one statement step per this many
/// events instead of one per event (each step binds, runs and resets a
/// statement, and that was a tenth of the index's cost).
const ROWS_PER_INSERT: usize = 32;

/// Inserts rows of linked events with the connection's cached statements:
/// [`ROWS_PER_INSERT`] at a time, the rest one by one.
fn insert_rows(conn: &Connection, rows: &[EventRow]) -> Result<(), StoreError> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut insert = conn.prepare_cached(&insert_statement(ROWS_PER_INSERT))?;
        for chunk in chunks.by_ref() {
            for (i, row) in chunk.iter().enumerate() {
                bind_row(&mut insert, i * EVENT_COLUMN_COUNT, row)?;
            }
            insert.raw_execute()?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut insert = conn.prepare_cached(&insert_statement(1))?;
        for row in rest {
            bind_row(&mut insert, 0, row)?;
            insert.raw_execute()?;
        }
    }
    Ok(())
}

/// Columns of `audit_events`, in [`EVENT_COLUMNS`]' order.
const EVENT_COLUMN_COUNT: usize = 9;

/// `INSERT INTO audit_events (...) VALUES (?, ...), ...` for `rows` rows.
fn insert_statement(rows: usize) -> String {
    let values = format!("({})", ["?"; EVENT_COLUMN_COUNT].join(", "));
    format!(
        "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES {}",
        vec![values; rows].join(", ")
    )
}

/// Binds `row` to the parameters after `before` (parameters count from 1).
fn bind_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    before: usize,
    row: &EventRow,
) -> Result<(), StoreError> {
    let at = before + 1;
    insert.raw_bind_parameter(at, sql::to_i64(row.seq))?;
    insert.raw_bind_parameter(at + 1, row.time.as_str())?;
    insert.raw_bind_parameter(at + 2, &row.actor)?;
    insert.raw_bind_parameter(at + 3, &row.action)?;
    insert.raw_bind_parameter(at + 4, &row.target)?;
    insert.raw_bind_parameter(at + 5, row.details())?;
    insert.raw_bind_parameter(at + 6, row.grant_ids())?;
    insert.raw_bind_parameter(at + 7, row.prev_hash())?;
    insert.raw_bind_parameter(at + 8, row.hash())?;
    Ok(())
}

fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    let mut query = conn.prepare_cached(HEAD_QUERY)?;
    let row = query
        .query_row([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .optional()?;
    match row {
        None => Ok(Head::GENESIS),
        Some((seq, hash)) => head_from(seq, &hash),
    }
}

fn insert_checkpoint(conn: &Connection, cp: &Checkpoint) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(INSERT_CHECKPOINT)?;
    insert.execute(params![
        sql::to_i64(cp.seq),
        cp.key_id.to_string(),
        cp.hash.to_hex(),
        cp.time.as_str(),
        cp.signature.to_string(),
    ])?;
    Ok(())
}
