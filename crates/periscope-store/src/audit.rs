//! The audit chain in the database: appending inside a write transaction, and the
//! queries behind `periscope audit tail | search | export | verify`.

use futures_util::stream::{self, Stream, StreamExt, TryStreamExt};
use periscope_audit::{
    AuditEvent, AuditTime, AuditVerifierKey, ChainError, ChainHash, ChainVerifier, Checkpoint,
    CheckpointSignature, DraftError, EventDraft, EventLine, Head, KeyId, Start, VerifyReport,
    next_event,
};
use serde_json::Value;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::live_chain::ChainPause;
use crate::sql::{self, Sql};
use crate::store::{Store, WriteTx};

/// Rows per multi-row INSERT: 9 parameters each stays far below SQLite's 32766 and
/// PostgreSQL's 65535 parameter limits.
const INSERT_CHUNK: usize = 200;

/// Rows per page when streaming: bounds memory whatever the chain length.
const PAGE: i64 = 500;

/// The chain head: the last event's seq and hash.
pub(crate) const HEAD_QUERY: &str = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";

/// Stores a checkpoint; an identical one already present is left alone. `$n`
/// placeholders, which both PostgreSQL and SQLite (and so the writer's own
/// SQLite connection) accept.
pub(crate) const INSERT_CHECKPOINT: &str = "INSERT INTO audit_checkpoints \
     (seq, key_id, hash, time, signature) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (seq, key_id) DO NOTHING";

pub(crate) const EVENT_COLUMNS: &str =
    "seq, time, actor, action, target, details, grant_ids, prev_hash, hash";

/// Filters for [`Store::search_audit`]; every field left `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// Exactly this action, or every action under a prefix when it ends in `.`
    /// (`request.` matches `request.create`, `request.approve`...).
    pub action: Option<String>,
    /// Exactly this target.
    pub target: Option<String>,
    /// Events at or after this time.
    pub since: Option<AuditTime>,
    /// Events strictly before this time.
    pub until: Option<AuditTime>,
    /// Events with a seq strictly below this one: the keyset of the next
    /// page (a page ends at its oldest seq), so paging stays as fast on the
    /// thousandth page as on the first, whatever the chain length.
    pub before_seq: Option<u64>,
    /// Events with a seq at or above this one: with `before_seq`, a window
    /// of the chain, so a filter no index serves examines a bounded number
    /// of events.
    pub from_seq: Option<u64>,
    /// Events whose actor, action, target or details contain this text,
    /// ignoring ASCII case (`%` and `_` are matched literally).
    pub text: Option<String>,
    /// Most events returned (the newest matches); 0 means the default of 100.
    pub limit: u32,
}

/// The actions of a session's statements. The session index
/// (`audit_events_by_session`, migration 6) leaves them out, and a query
/// that uses it must repeat this list word for word.
const STATEMENT_ACTIONS: &str = "('query', 'query.result', 'query.refused')";

/// Most of a session's non-statement events read (its start, end, seals...).
const MAX_SESSION_MARKERS: i64 = 1000;

/// One page of a session's events, from [`Store::session_events`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionEvents {
    /// The identity whose session it is (the actor of its start event).
    pub identity: String,
    /// Its events in seq order: its start, statements and their outcomes,
    /// refusals, recording seals, an administrator ending it, its end.
    pub events: Vec<AuditEvent>,
    /// Whether more events follow the last one (page again from its seq).
    pub more: bool,
}

/// Where an export starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportFrom {
    /// The whole chain.
    Start,
    /// Events with seq at or after this one.
    Seq(u64),
    /// Events at or after this time.
    Time(AuditTime),
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// The last event's position, [`Head::GENESIS`] for an empty chain.
    pub async fn audit_head(&self) -> Result<Head, StoreError> {
        self.audit_readable().await?;
        let row = sqlx::query(HEAD_QUERY).fetch_optional(&self.pool).await?;
        match row {
            None => Ok(Head::GENESIS),
            Some(row) => head_of(&row),
        }
    }

    /// Appends events on their own (actions that change no other state, such as a
    /// refused login), in one transaction. For high rates use
    /// [`crate::AuditWriter`], which batches concurrent appends.
    pub async fn append_audit(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let mut tx = self.begin_write().await?;
        let events = append_in_tx(&mut tx, drafts).await?;
        tx.commit().await?;
        Ok(events)
    }

    /// The last `n` events, oldest first.
    pub async fn audit_tail(&self, n: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.search_audit(&AuditQuery {
            limit: n.max(1),
            ..AuditQuery::default()
        })
        .await
    }

    /// The newest events matching `query`, oldest first.
    pub async fn search_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>, StoreError> {
        self.audit_readable().await?;
        let limit = if query.limit == 0 { 100 } else { query.limit };
        let mut sql = Sql::new("SELECT ");
        sql.push(EVENT_COLUMNS)
            .push(" FROM audit_events WHERE 1 = 1");
        if let Some(actor) = &query.actor {
            sql.push(" AND actor = ").bind(actor.clone());
        }
        match query.action.as_deref() {
            Some(prefix) if prefix.ends_with('.') => {
                // substr, not LIKE (case-insensitive on SQLite, wildcards to escape)
                // nor a text range (PostgreSQL collations may ignore punctuation).
                let chars = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
                sql.push(" AND substr(action, 1, CAST(")
                    .bind(chars)
                    .push(" AS INTEGER)) = ")
                    .bind(prefix.to_owned());
            }
            Some(action) => {
                sql.push(" AND action = ").bind(action.to_owned());
            }
            None => {}
        }
        if let Some(target) = &query.target {
            sql.push(" AND target = ").bind(target.clone());
        }
        if let Some(since) = &query.since {
            sql.push(" AND time >= ").bind(since.as_str().to_owned());
        }
        if let Some(until) = &query.until {
            sql.push(" AND time < ").bind(until.as_str().to_owned());
        }
        if let Some(before) = query.before_seq {
            sql.push(" AND seq < ").bind(sql::to_i64(before));
        }
        if let Some(from) = query.from_seq {
            sql.push(" AND seq >= ").bind(sql::to_i64(from));
        }
        if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
            // LOWER on both sides: SQLite's LIKE ignores ASCII case, PostgreSQL's
            // does not; both accept `||` and ESCAPE.
            let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
            sql.push(" AND LOWER(actor || ' ' || action || ' ' || target || ' ' || details) LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\'");
        }
        sql.push(" ORDER BY seq DESC LIMIT ").bind(i64::from(limit));
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut events = rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(events)
    }

    /// The events of session `session` (`details.session`) with a seq
    /// above `after`, at most about `limit` statements' worth, or `None` for
    /// a session the log does not know.
    ///
    /// Indexed all the way, never a walk of the log: the session index
    /// gives its few non-statement events (so its identity and its first and
    /// last seq), then its statements are read through the actor index over
    /// that seq range only.
    pub async fn session_events(
        &self,
        session: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Option<SessionEvents>, StoreError> {
        self.audit_readable().await?;
        let key = match self.backend() {
            crate::Backend::Sqlite => "json_extract(details, '$.session')",
            crate::Backend::Postgres => "((details::json) ->> 'session')",
        };
        let mut markers_sql = Sql::new("SELECT ");
        markers_sql
            .push(EVENT_COLUMNS)
            .push(" FROM audit_events WHERE action NOT IN ")
            .push(STATEMENT_ACTIONS)
            .push(" AND ")
            .push(key)
            .push(" = ")
            .bind(session.to_owned())
            .push(" ORDER BY seq LIMIT ")
            .bind(MAX_SESSION_MARKERS);
        let rows = markers_sql.query().fetch_all(&self.pool).await?;
        let markers = rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        let Some(first) = markers.first() else {
            return Ok(None);
        };
        let start = markers
            .iter()
            .find(|e| e.action.ends_with(".start"))
            .unwrap_or(first);
        let identity = start.actor.clone();
        let from = first.seq;
        // Ended: its statements all come before its end event. Live (or
        // its end lost), the range runs to the head: the actor index then
        // reads the identity's events since the session started.
        let until = markers
            .iter()
            .rev()
            .find(|e| e.action.ends_with(".end"))
            .map(|e| e.seq);
        let after = after.unwrap_or(0);
        let limit = if limit == 0 { 200 } else { limit };
        let mut sql = Sql::new("SELECT ");
        sql.push(EVENT_COLUMNS)
            .push(" FROM audit_events WHERE actor = ")
            .bind(identity.clone())
            .push(" AND seq >= ")
            .bind(sql::to_i64(from.max(after.saturating_add(1))));
        if let Some(until) = until {
            sql.push(" AND seq <= ").bind(sql::to_i64(until));
        }
        sql.push(" AND action IN ")
            .push(STATEMENT_ACTIONS)
            .push(" AND ")
            .push(key)
            .push(" = ")
            .bind(session.to_owned())
            .push(" ORDER BY seq LIMIT ")
            .bind(i64::from(limit) + 1);
        let rows = sql.query().fetch_all(&self.pool).await?;
        let mut statements = rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
        let more = statements.len() > limit as usize;
        statements.truncate(limit as usize);
        // The page ends at its last statement when more follow; the
        // session's other events up to there (or all, on the last page).
        let page_end = if more {
            statements.last().map_or(u64::MAX, |e| e.seq)
        } else {
            u64::MAX
        };
        let mut events: Vec<AuditEvent> = markers
            .into_iter()
            .filter(|e| e.seq > after && e.seq <= page_end)
            .chain(statements)
            .collect();
        events.sort_by_key(|e| e.seq);
        Ok(Some(SessionEvents {
            identity,
            events,
            more,
        }))
    }

    /// One event by seq.
    pub async fn audit_event(&self, seq: u64) -> Result<AuditEvent, StoreError> {
        self.audit_readable().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM audit_events WHERE seq = $1"
        )))
        .bind(sql::to_i64(seq))
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("audit event", seq.to_string()))?;
        event_of(&row)
    }

    /// Streams events in seq order from `from` up to the head as it is when the
    /// stream starts, a page at a time: memory stays bounded for millions of events,
    /// and no connection or read snapshot is held between pages.
    pub fn export_audit(
        &self,
        from: ExportFrom,
    ) -> impl Stream<Item = Result<AuditEvent, StoreError>> + Send + 'static {
        let store = self.clone();
        let start = async move {
            store.audit_readable().await?;
            let first = match from {
                ExportFrom::Start => 1,
                ExportFrom::Seq(seq) => seq.max(1),
                ExportFrom::Time(time) => {
                    // Replicas' clocks may disagree slightly, so times are not
                    // strictly in seq order: start at the lowest seq at or after
                    // `time` and export a contiguous range from there (a range with
                    // holes could not be verified).
                    let first: Option<i64> =
                        sqlx::query_scalar("SELECT MIN(seq) FROM audit_events WHERE time >= $1")
                            .bind(time.as_str().to_owned())
                            .fetch_one(&store.pool)
                            .await?;
                    match first {
                        Some(seq) => sql::to_u64(seq, || "audit event seq".into())?,
                        None => u64::MAX,
                    }
                }
            };
            let last = store.audit_head().await?.seq;
            Ok::<_, StoreError>(pages(store, first, last))
        };
        stream::once(start).try_flatten()
    }

    /// The newest signed checkpoint, if the chain was ever signed.
    pub async fn last_audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.audit_readable().await?;
        let row = sqlx::query(
            "SELECT seq, key_id, hash, time, signature FROM audit_checkpoints \
             ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_of).transpose()
    }

    /// Signed checkpoints in seq order: all of them, or those at or after `since`.
    pub async fn audit_checkpoints(
        &self,
        since: Option<u64>,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        self.audit_readable().await?;
        let rows = sqlx::query(
            "SELECT seq, key_id, hash, time, signature FROM audit_checkpoints \
             WHERE seq >= $1 ORDER BY seq, key_id",
        )
        .bind(sql::to_i64(since.unwrap_or(0)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_of).collect()
    }

    /// Stores a checkpoint signed elsewhere (e.g. by the CLI at `audit verify
    /// --sign`); writing the same one twice is a no-op.
    pub async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        insert_checkpoint(&mut tx, checkpoint).await?;
        tx.commit().await
    }

    /// Verifies the whole stored chain, or from a trusted `start`, against every
    /// stored checkpoint signed by one of `keys`: one streaming pass. A database
    /// failure is reported as [`ChainError::Read`].
    pub async fn verify_audit(
        &self,
        keys: &[AuditVerifierKey],
        start: Start,
    ) -> Result<VerifyReport, ChainError> {
        let read_error = |after: Option<u64>, e: StoreError| ChainError::Read {
            after,
            source: Box::new(e),
        };
        let mut verifier = ChainVerifier::new(keys, start);
        let checkpoints = self
            .audit_checkpoints(None)
            .await
            .map_err(|e| read_error(None, e))?;
        for checkpoint in checkpoints {
            verifier.add_checkpoint(checkpoint)?;
        }
        let from = match start {
            Start::After(head) => ExportFrom::Seq(head.seq),
            Start::Genesis | Start::AsGiven => ExportFrom::Start,
        };
        let mut events = std::pin::pin!(self.export_audit(from));
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| read_error(verifier.last_seq(), e))?;
            verifier.add_event(&event)?;
        }
        verifier.finish()
    }
}

/// Seq-ordered pages of events in `first..=last`.
fn pages(
    store: Store,
    first: u64,
    last: u64,
) -> impl Stream<Item = Result<AuditEvent, StoreError>> + Send + 'static {
    stream::try_unfold(first, move |next| {
        let store = store.clone();
        async move {
            if next > last {
                return Ok::<_, StoreError>(None);
            }
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {EVENT_COLUMNS} FROM audit_events \
                 WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT $3"
            )))
            .bind(sql::to_i64(next))
            .bind(sql::to_i64(last))
            .bind(PAGE)
            .fetch_all(&store.pool)
            .await?;
            let page = rows.iter().map(event_of).collect::<Result<Vec<_>, _>>()?;
            let after = match page.last() {
                Some(event) if page.len() as i64 == PAGE => event.seq.saturating_add(1),
                _ => u64::MAX,
            };
            if page.is_empty() {
                return Ok(None);
            }
            Ok(Some((stream::iter(page.into_iter().map(Ok)), after)))
        }
    })
    .try_flatten()
}

/// Appends `drafts` inside `tx`, after taking the chain lock: all or none. Any
/// refused draft fails the whole transaction.
pub(crate) async fn append_in_tx(
    tx: &mut WriteTx,
    drafts: Vec<EventDraft>,
) -> Result<Vec<AuditEvent>, StoreError> {
    if drafts.is_empty() {
        return Ok(Vec::new());
    }
    tx.lock_audit_chain().await?;
    // Paused live chain: its events not yet indexed go in first (once per
    // transaction), and the head is the one in memory (the index may lag).
    let mut head = match tx.pause.as_ref().map(|pause| (pause.inserted, pause.head)) {
        Some((inserted, head)) => {
            if let Some((events, checkpoints)) = tx
                .pause
                .as_mut()
                .filter(|_| !inserted)
                .map(ChainPause::take)
            {
                let result = insert_taken(tx, &events, &checkpoints).await;
                if let Some(pause) = tx.pause.as_mut() {
                    pause.put_back(events, checkpoints, result.is_ok());
                }
                result?;
            }
            head
        }
        None => read_head(tx).await?,
    };
    let mut events = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let event = next_event(head, draft)?;
        head = event.head();
        events.push(event);
    }
    insert_events(tx, &events).await?;
    if let Some(pause) = tx.pause.as_mut() {
        pause.linked(head);
    }
    Ok(events)
}

/// Inserts the events (and checkpoints) a paused live chain had not yet
/// indexed.
async fn insert_taken(
    tx: &mut WriteTx,
    events: &[EventRow],
    checkpoints: &[Checkpoint],
) -> Result<(), StoreError> {
    insert_rows(tx, events).await?;
    for checkpoint in checkpoints {
        insert_checkpoint(tx, checkpoint).await?;
    }
    Ok(())
}

/// Links each draft after `head`, keeping refused drafts' errors in their places, so
/// one bad submitter does not fail a whole group commit.
pub(crate) fn link_each(
    mut head: Head,
    drafts: impl IntoIterator<Item = EventDraft>,
) -> (Vec<Result<AuditEvent, DraftError>>, Head) {
    let linked = drafts
        .into_iter()
        .map(|draft| {
            let event = next_event(head, draft)?;
            head = event.head();
            Ok(event)
        })
        .collect();
    (linked, head)
}

/// The chain head as this transaction sees it (call after [`WriteTx::lock_audit_chain`]).
pub(crate) async fn read_head(tx: &mut WriteTx) -> Result<Head, StoreError> {
    let row = sqlx::query(HEAD_QUERY).fetch_optional(&mut *tx.tx).await?;
    match row {
        None => Ok(Head::GENESIS),
        Some(row) => head_of(&row),
    }
}

/// Inserts already-linked events in multi-row statements.
pub(crate) async fn insert_events(
    tx: &mut WriteTx,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    let rows: Vec<EventRow> = events.iter().map(EventRow::of).collect();
    insert_rows(tx, &rows).await
}

/// Inserts rows of already-linked events in multi-row statements.
pub(crate) async fn insert_rows(tx: &mut WriteTx, rows: &[EventRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut sql = Sql::new("INSERT INTO audit_events (");
        sql.push(EVENT_COLUMNS).push(") VALUES ");
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.push("(").bind(sql::to_i64(row.seq));
            sql.push(", ").bind(row.time.as_str().to_owned());
            sql.push(", ").bind(row.actor.clone());
            sql.push(", ").bind(row.action.clone());
            sql.push(", ").bind(row.target.clone());
            sql.push(", ").bind(row.details().to_owned());
            sql.push(", ").bind(row.grant_ids().to_owned());
            sql.push(", ").bind(row.prev_hash().to_owned());
            sql.push(", ").bind(row.hash().to_owned());
            sql.push(")");
        }
        // Not kept in the connection's statement cache: every batch size is
        // its own statement text, and up to a hundred cached multi-row
        // INSERTs per pooled connection held on to tens of MiB for good.
        sql.query().persistent(false).execute(&mut *tx.tx).await?;
    }
    Ok(())
}

/// An audit event as its row of `audit_events`, every column as stored. Every
/// insert path (the pool's, the writer's and the index's own SQLite
/// connection) binds these, so the stored form cannot drift apart.
///
/// The encoded columns (`details`, `grant_ids`, both hashes) are slices of
/// the event's export line, which holds them as canonical JSON: the live
/// chain builds rows from the line it wrote to the redo file
/// ([`EventRow::from_line`]), so indexing an event serialises nothing
/// again; other paths render the line ([`EventRow::of`]).
#[derive(Debug)]
pub(crate) struct EventRow {
    pub(crate) seq: u64,
    pub(crate) time: AuditTime,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) target: String,
    line: EventLine,
}

impl EventRow {
    /// Encodes `event`.
    pub(crate) fn of(event: &AuditEvent) -> EventRow {
        EventRow {
            seq: event.seq,
            time: event.time.clone(),
            actor: event.actor.clone(),
            action: event.action.clone(),
            target: event.target.clone(),
            line: event.to_line(),
        }
    }

    /// The row of `event`, whose export line is `line` (both from
    /// [`periscope_audit::next_event_line`]); also gives back the event's
    /// `details`, which the row does not need, for the caller to drop where
    /// it costs least.
    pub(crate) fn from_line(event: AuditEvent, line: EventLine) -> (EventRow, Value) {
        let AuditEvent {
            seq,
            time,
            actor,
            action,
            target,
            details,
            ..
        } = event;
        let row = EventRow {
            seq,
            time,
            actor,
            action,
            target,
            line,
        };
        (row, details)
    }

    /// `details` as JSON text.
    pub(crate) fn details(&self) -> &str {
        self.line.details()
    }

    /// `grant_ids` as a JSON array.
    pub(crate) fn grant_ids(&self) -> &str {
        self.line.grant_ids()
    }

    /// `prev_hash` in hex.
    pub(crate) fn prev_hash(&self) -> &str {
        self.line.prev_hash()
    }

    /// `hash` in hex.
    pub(crate) fn hash(&self) -> &str {
        self.line.hash()
    }
}

/// Inserts a checkpoint; an identical one already present is left alone.
pub(crate) async fn insert_checkpoint(tx: &mut WriteTx, cp: &Checkpoint) -> Result<(), StoreError> {
    sqlx::query(INSERT_CHECKPOINT)
        .bind(sql::to_i64(cp.seq))
        .bind(cp.key_id.to_string())
        .bind(cp.hash.to_hex())
        .bind(cp.time.as_str().to_owned())
        .bind(cp.signature.to_string())
        .execute(&mut *tx.tx)
        .await?;
    Ok(())
}

fn head_of(row: &AnyRow) -> Result<Head, StoreError> {
    head_from(row.try_get("seq")?, &sql::text(row, "hash")?)
}

/// The head from the two columns of [`HEAD_QUERY`], whichever connection read
/// them.
pub(crate) fn head_from(seq: i64, hash: &str) -> Result<Head, StoreError> {
    let seq = sql::to_u64(seq, || "audit head seq".into())?;
    let hash = ChainHash::from_hex(hash)
        .map_err(|e| StoreError::corrupt(format!("audit event {seq} hash"), e))?;
    Ok(Head { seq, hash })
}

fn event_of(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let seq = sql::to_u64(row.try_get("seq")?, || "audit event seq".into())?;
    let what = |field: &str| format!("audit event {seq} {field}");
    let hash = |field: &str| {
        ChainHash::from_hex(&sql::text(row, field)?)
            .map_err(|e| StoreError::corrupt(what(field), e))
    };
    Ok(AuditEvent {
        seq,
        time: sql::time(&sql::text(row, "time")?, || what("time"))?,
        actor: sql::text(row, "actor")?,
        action: sql::text(row, "action")?,
        target: sql::text(row, "target")?,
        details: serde_json::from_str(&sql::text(row, "details")?)
            .map_err(|e| StoreError::corrupt(what("details"), e))?,
        grant_ids: serde_json::from_str(&sql::text(row, "grant_ids")?)
            .map_err(|e| StoreError::corrupt(what("grant_ids"), e))?,
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
    })
}

fn checkpoint_of(row: &AnyRow) -> Result<Checkpoint, StoreError> {
    let seq = sql::to_u64(row.try_get("seq")?, || "checkpoint seq".into())?;
    let what = |field: &str| format!("audit checkpoint {seq} {field}");
    Ok(Checkpoint {
        seq,
        hash: ChainHash::from_hex(&sql::text(row, "hash")?)
            .map_err(|e| StoreError::corrupt(what("hash"), e))?,
        time: sql::time(&sql::text(row, "time")?, || what("time"))?,
        key_id: KeyId::from_hex(&sql::text(row, "key_id")?)
            .map_err(|e| StoreError::corrupt(what("key_id"), e))?,
        signature: CheckpointSignature::from_hex(&sql::text(row, "signature")?)
            .map_err(|e| StoreError::corrupt(what("signature"), e))?,
    })
}
