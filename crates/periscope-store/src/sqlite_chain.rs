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

use crate::audit::{EVENT_COLUMNS, HEAD_QUERY, INSERT_CHECKPOINT, StoredEvent, head_from};
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
            insert_rows(tx, &events)?;
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
        events: &[AuditEvent],
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
                    None => missing.push(event.clone()),
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

/// Inserts linked events with the writer's cached statement.
fn insert_rows(conn: &Connection, events: &[AuditEvent]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO audit_events ({EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?;
    for event in events {
        let row = StoredEvent::of(event)?;
        insert.execute(params![
            sql::to_i64(event.seq),
            event.time.as_str(),
            event.actor,
            event.action,
            event.target,
            row.details,
            row.grant_ids,
            row.prev_hash,
            row.hash,
        ])?;
    }
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
