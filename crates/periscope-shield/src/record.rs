//! What a shielded session records, and the seam through which it goes.
//!
//! The shield stage decides what to record: the session's start and end,
//! each action (a SQL statement with its literals scrubbed, a command), each
//! outcome with masked counts, each refusal with its shield. The gateway
//! decides where events go and how they become durable ([`AuditSink`]).
//!
//! [`AuditSink::submit`] returns an [`AuditAck`] that resolves once the event
//! is durable. A [`SessionRecorder`] turns the acks a client must wait for
//! (an action's event before its results, a refusal's event before the
//! refusal) into one [`AuditHold`]: the protocol's relay shows nothing more
//! until it resolves, so nothing is ever shown that the audit log does not
//! hold. Outcomes are not waited for: the sink may batch them with the
//! session's next event.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use periscope_audit::EventDraft;
use periscope_audit::actions::{self, Action};
use periscope_redact::Counts;
use periscope_sql::{SqlDialect, scrub_literals};
use serde_json::{Map, Value, json};

use crate::grants::SessionCut;
use crate::masking::MaskCounts;
use crate::statement::{Refusal, StatementRef};

/// Resolves to the event's sequence number once it is durable, or to why
/// it could not be recorded.
pub type AuditAck = Pin<Box<dyn Future<Output = Result<u64, AuditFailure>> + Send + 'static>>;

/// The audit log did not record an event; whatever it described must not
/// happen (the session is ended).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit log could not record the event: {0}")]
pub struct AuditFailure(pub String);

/// Where a shielded session's audit events go; implemented by the gateway
/// (one value per session), and by tests.
pub trait AuditSink: Send + Sync + 'static {
    /// A draft stamped with the gateway's clock, for this session's identity
    /// (`actor`) and connection (`target`).
    fn draft(&self, action: Action) -> EventDraft;

    /// Submits `draft` at once. Events submitted by one sink must be
    /// appended in submission order (an action's event precedes its
    /// outcome). The returned ack may be dropped when the caller does not
    /// need to wait.
    fn submit(&self, draft: EventDraft) -> AuditAck;

    /// Submits an event no one waits for (an action's outcome), which the
    /// sink may hold back briefly to write it together with the session's
    /// next event: it still precedes every later event of this sink, and a
    /// sink that holds events back must write them within a bounded delay
    /// and before the session's end event. The default writes it at once.
    fn submit_later(&self, draft: EventDraft) {
        drop(self.submit(draft));
    }

    /// The session started: `cut` ends it from outside (grant expiry or
    /// revocation, an administrator).
    fn session_started(&self, cut: Arc<dyn SessionCut>) {
        let _ = cut;
    }

    /// An action's results held values that content scans masked in
    /// untagged columns (`schema.table.column` -> what was found): the
    /// evidence run-time learning weighs. Called off the result path, once
    /// per action with findings; the default ignores it.
    fn found_in_columns(&self, found: &BTreeMap<Arc<str>, Counts>) {
        let _ = found;
    }

    /// Whether the session's statements are recorded (a session recording
    /// with a sample of each result): when false, [`SessionRecorder`]
    /// builds no [`StatementRecord`] at all. The default records nothing.
    fn records_statements(&self) -> bool {
        false
    }

    /// One statement for the session's recording, handed over after its
    /// outcome (or refusal) without waiting: an implementation queues it
    /// for a writer of its own and never blocks the session. Called only
    /// when [`AuditSink::records_statements`] says so.
    fn record_statement(&self, record: StatementRecord) {
        let _ = record;
    }

    /// Submits the session's end event, the last of the sink. A sink that
    /// records the session closes and seals its recording first (the seal
    /// precedes the end event); nobody waits for either. The default
    /// submits it at once.
    fn end_session(&self, draft: EventDraft) {
        drop(self.submit(draft));
    }
}

/// How much of each statement's (masked) result a session recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleLimits {
    /// Most rows kept per statement (0: none, the statement is recorded
    /// without rows).
    pub rows: usize,
    /// Most bytes of row data kept per statement, as sent to the client.
    pub bytes: usize,
}

/// A statement's masked result sample as the client received it, captured
/// cheaply on the result path (bytes as sent) and decoded to text later,
/// off that path, by [`ResultSample::decode`].
pub trait ResultSample: Send + std::fmt::Debug + 'static {
    /// The columns and rows as text; called by the recording's writer.
    fn decode(self: Box<Self>) -> DecodedSample;

    /// Bytes the sample holds until it is decoded (bounds what a
    /// recording keeps in memory).
    fn held_bytes(&self) -> usize;
}

/// A decoded result sample.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedSample {
    /// The result's columns, as described to the client.
    pub columns: Vec<SampleColumn>,
    /// The sampled rows, each cell as text (`None` for SQL NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// Rows or bytes beyond the limits were not kept (or the last row was
    /// cut at the byte limit).
    pub truncated: bool,
}

/// One column of a result sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleColumn {
    /// Its name as the client saw it.
    pub name: String,
    /// The type the client was told (a masked column is `text`).
    pub type_name: String,
    /// The entity or tag it was masked whole as (`email`), when it was
    /// (other columns are content-scanned: their cells show what was found).
    pub masked: Option<String>,
}

/// How a recorded statement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedOutcome {
    /// It ran to completion.
    Ok,
    /// It failed (the SQLSTATE or protocol error code).
    Error(String),
    /// A shield refused it before it reached the upstream.
    Refused {
        /// The shield, when one is named.
        shield: Option<String>,
        /// The message the client was shown.
        message: String,
    },
}

/// One statement of a session recording.
pub struct StatementRecord {
    /// When it started, from the session's start.
    pub at: Duration,
    /// How long it ran.
    pub duration: Duration,
    /// Its text as audited (literals replaced by placeholders).
    pub text: String,
    /// Its class (`select`, `update`...).
    pub class: String,
    /// The seq of its `query` (or `query.refused`) event, when known.
    pub query_seq: u64,
    /// How it ended.
    pub outcome: RecordedOutcome,
    /// Rows it returned or changed.
    pub rows: u64,
    /// What was masked in its results, per entity (as in `query.result`).
    pub masked: Value,
    /// A sample of its masked result, if it returned rows.
    pub sample: Option<Box<dyn ResultSample>>,
}

impl std::fmt::Debug for StatementRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementRecord")
            .field("at", &self.at)
            .field("class", &self.class)
            .field("outcome", &self.outcome)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

/// How long an action's results wait for its audit event before the
/// session is ended instead.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The audit log failed to record what a hold waited for: the session must
/// end, with this message (which says what was not shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HoldFailure(pub String);

/// A condition the relay waits for before it shows anything more: every
/// event it covers is durable.
pub type AuditHold = Pin<Box<dyn Future<Output = Result<(), HoldFailure>> + Send + 'static>>;

/// The outcome of one action, for its `query.result` event.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The action, when it was analysed.
    pub stmt: Option<&'a StatementRef>,
    /// The sequence number of its `query` event (0 while not yet known).
    pub query_seq: u64,
    /// Rows (or lines) it returned or changed.
    pub rows: u64,
    /// When it started.
    pub started: Instant,
    /// What was masked in its results.
    pub counts: &'a MaskCounts,
    /// The error code it ended with (PostgreSQL: the SQLSTATE), if any.
    pub error: Option<&'a str>,
    /// A sample of its masked result, for the session recording.
    pub sample: Option<Box<dyn ResultSample>>,
}

/// The audit trail of one session: its events, in order, with the grants it
/// relies on, and the holds that keep results back until their events are
/// durable.
pub struct SessionRecorder<A: AuditSink> {
    audit: A,
    grant_ids: Vec<String>,
    session_id: String,
    started: Instant,
    client: Option<(SocketAddr, Option<String>)>,
    actions: u64,
    refused: u64,
    totals: MaskCounts,
    hold: Option<AuditHold>,
}

impl<A: AuditSink> std::fmt::Debug for SessionRecorder<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecorder")
            .field("session", &self.session_id)
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}

impl<A: AuditSink> SessionRecorder<A> {
    /// A recorder whose events carry `grant_ids`.
    pub fn new(audit: A, grant_ids: Vec<String>) -> SessionRecorder<A> {
        SessionRecorder {
            audit,
            grant_ids,
            session_id: String::new(),
            started: Instant::now(),
            client: None,
            actions: 0,
            refused: 0,
            totals: MaskCounts::default(),
            hold: None,
        }
    }

    /// The session's id in its events, once the gateway registered it.
    pub fn set_session_id(&mut self, id: &str) {
        self.session_id = id.to_string();
    }

    /// The session's id in its events.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The grants this session relies on.
    pub fn grant_ids(&self) -> &[String] {
        &self.grant_ids
    }

    /// The audit sink.
    pub fn sink(&self) -> &A {
        &self.audit
    }

    /// The session is live: where the client connected from (for its end
    /// event), and how to cut it (for the grant watcher).
    pub fn started(
        &mut self,
        client_addr: SocketAddr,
        application_name: Option<String>,
        cut: Arc<dyn SessionCut>,
    ) {
        self.started = Instant::now();
        self.client = Some((client_addr, application_name));
        self.audit.session_started(cut);
    }

    /// A draft of this session's `action` with `details` and its grants.
    pub fn draft(&self, action: Action, details: Value) -> EventDraft {
        let mut draft = self.audit.draft(action).with_details(details);
        for g in &self.grant_ids {
            draft = draft.with_grant(g.clone());
        }
        draft
    }

    /// The hold the relay must wait for before it shows anything more, if
    /// events were submitted since the last call.
    pub fn take_hold(&mut self) -> Option<AuditHold> {
        self.hold.take()
    }

    /// Makes the relay wait, after any hold already pending, until `recorded`
    /// says the audit log holds `what`, before it shows anything more. If the
    /// log fails or takes longer than [`AUDIT_TIMEOUT`], the hold fails with
    /// a message that says so and that `withheld` was not shown.
    fn hold_until_recorded(
        &mut self,
        recorded: impl Future<Output = Result<(), AuditFailure>> + Send + 'static,
        what: &'static str,
        withheld: &'static str,
    ) {
        let hold: AuditHold = Box::pin(async move {
            match tokio::time::timeout(AUDIT_TIMEOUT, recorded).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(HoldFailure(format!("{e}; {withheld}"))),
                Err(_) => Err(HoldFailure(format!(
                    "the audit log did not record {what} in time; {withheld}"
                ))),
            }
        });
        self.hold = Some(match self.hold.take() {
            None => hold,
            Some(previous) => Box::pin(async move {
                previous.await?;
                hold.await
            }),
        });
    }

    /// Submits `query` events, one per action, and makes the relay hold the
    /// results until they are durable; each event's sequence number lands
    /// in its slot (for the outcome's `query_seq`).
    pub fn actions(&mut self, events: Vec<(Map<String, Value>, Arc<AtomicU64>)>) {
        let mut acks: Vec<(AuditAck, Arc<AtomicU64>)> = Vec::with_capacity(events.len());
        for (details, seq) in events {
            self.actions += 1;
            let draft = self.draft(actions::QUERY, Value::Object(details));
            acks.push((self.audit.submit(draft), seq));
        }
        if acks.is_empty() {
            return;
        }
        let recorded = async move {
            for (ack, seq) in acks {
                seq.store(ack.await?, Ordering::Relaxed);
            }
            Ok(())
        };
        self.hold_until_recorded(
            recorded,
            "the statement",
            "the statement's results were not shown and the session was closed",
        );
    }

    /// Records a refusal (`query.refused` with its shield and message). The
    /// refusal is shown only once its event is durable, like an action's
    /// results: a client never sees what the log may lose, and a client
    /// pipelining refused actions waits for the log.
    pub fn refusal(&mut self, mut details: Map<String, Value>, refusal: &Refusal) {
        self.refused += 1;
        details.insert(
            "shield".into(),
            refusal
                .shield
                .as_ref()
                .map_or(Value::Null, |s| Value::from(s.to_string())),
        );
        details.insert("message".into(), Value::from(refusal.message.clone()));
        if self.audit.records_statements() {
            let text = |k: &str| {
                details
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            self.audit.record_statement(StatementRecord {
                at: self.started.elapsed(),
                duration: Duration::ZERO,
                text: text("text"),
                class: text("class"),
                query_seq: 0,
                outcome: RecordedOutcome::Refused {
                    shield: refusal.shield.as_ref().map(ToString::to_string),
                    message: refusal.message.clone(),
                },
                rows: 0,
                masked: Value::Object(Map::new()),
                sample: None,
            });
        }
        let draft = self.draft(actions::QUERY_REFUSED, Value::Object(details));
        let ack = self.audit.submit(draft);
        self.hold_until_recorded(
            async move { ack.await.map(|_| ()) },
            "the refusal",
            "the statement was refused, and the session was closed",
        );
    }

    /// Records an action's outcome (`query.result`: rows, duration, masked
    /// counts, error code). Nothing waits for it: it can share a commit
    /// with the session's next event instead of costing one of its own.
    pub fn outcome(&mut self, mut outcome: Outcome<'_>) {
        let masked = outcome.counts.to_json();
        if self.audit.records_statements() {
            self.record(&mut outcome, masked.clone());
        }
        let mut d = Map::new();
        d.insert("session".into(), Value::from(self.session_id.clone()));
        d.insert("query_seq".into(), Value::from(outcome.query_seq));
        if let Some(st) = outcome.stmt.and_then(StatementRef::get) {
            d.insert("class".into(), Value::from(st.class.name()));
            d.insert(
                "fingerprint".into(),
                Value::from(format!("{:016x}", st.fingerprint)),
            );
        }
        d.insert("rows".into(), Value::from(outcome.rows));
        d.insert(
            "duration_us".into(),
            Value::from(u64::try_from(outcome.started.elapsed().as_micros()).unwrap_or(u64::MAX)),
        );
        d.insert("masked".into(), masked);
        match outcome.error {
            Some(code) => {
                d.insert("outcome".into(), Value::from("error"));
                d.insert("sqlstate".into(), Value::from(code));
            }
            None => {
                d.insert("outcome".into(), Value::from("ok"));
            }
        }
        self.totals.merge(outcome.counts);
        if !outcome.counts.found_in().is_empty() {
            self.audit.found_in_columns(outcome.counts.found_in());
        }
        let draft = self.draft(actions::QUERY_RESULT, Value::Object(d));
        self.audit.submit_later(draft);
    }

    /// Hands the statement to the session recording (off the result path:
    /// the sample is decoded by the recording's writer).
    fn record(&mut self, outcome: &mut Outcome<'_>, masked: Value) {
        let st = outcome.stmt.and_then(StatementRef::get);
        let (text, class) = match st {
            Some(st) => (st.normalized.clone(), st.class.name().to_string()),
            None => (
                "(not analysed: see the query event)".to_string(),
                "unanalysed".to_string(),
            ),
        };
        let outcome_kind = match outcome.error {
            Some(code) => RecordedOutcome::Error(code.to_string()),
            None => RecordedOutcome::Ok,
        };
        self.audit.record_statement(StatementRecord {
            at: outcome.started.saturating_duration_since(self.started),
            duration: outcome.started.elapsed(),
            text,
            class,
            query_seq: outcome.query_seq,
            outcome: outcome_kind,
            rows: outcome.rows,
            masked,
            sample: outcome.sample.take(),
        });
    }

    /// Records the session's end (`session.end`: why, how long, how many
    /// actions and refusals, masked totals).
    pub fn end(&mut self, reason: &str) {
        let (client_addr, application_name) = match &self.client {
            Some((addr, app)) => (Some(addr.to_string()), app.clone()),
            None => (None, None),
        };
        let details = json!({
            "session": self.session_id,
            "client_addr": client_addr,
            "application_name": application_name,
            "reason": reason,
            "duration_us": u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "statements": self.actions,
            "refused": self.refused,
            "masked": self.totals.to_json(),
        });
        let draft = self.draft(actions::SESSION_END, details);
        self.audit.end_session(draft);
    }

    /// The details of a SQL statement's `query` or `query.refused` event:
    /// its literal-free text, class, tables and fingerprint when analysed;
    /// the text with its literals scrubbed otherwise.
    pub fn statement_details(&self, stmt: Option<&StatementRef>, sql: &str) -> Map<String, Value> {
        let mut d = Map::new();
        d.insert("session".into(), Value::from(self.session_id.clone()));
        match stmt.and_then(|s| s.get().map(|st| (s, st))) {
            Some((s, st)) => {
                d.insert("text".into(), Value::from(st.normalized.clone()));
                d.insert("class".into(), Value::from(st.class.name()));
                let tables: Vec<String> = st
                    .tables_read
                    .iter()
                    .chain(st.tables_written.iter())
                    .map(|t| t.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                d.insert("tables".into(), json!(tables));
                d.insert(
                    "fingerprint".into(),
                    Value::from(format!("{:016x}", st.fingerprint)),
                );
                if s.analysis.statements.len() > 1 {
                    d.insert("statement_index".into(), Value::from(s.index + 1));
                }
            }
            None => {
                d.insert(
                    "text".into(),
                    Value::from(scrub_literals(sql, SqlDialect::PostgreSql)),
                );
                d.insert("class".into(), Value::from("unanalysed"));
            }
        }
        d
    }
}
