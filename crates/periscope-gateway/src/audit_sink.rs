//! The audit sink of one session, whatever its protocol: its events reach
//! the group-commit writer in order, its outcomes share commits, its
//! registry entry lives as long as it does, and its grant watcher cuts it
//! when a grant it relies on ends.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use periscope_audit::EventDraft;
use periscope_audit::actions;
use periscope_audit::actions::Action;
use periscope_policy::Allowance;
use periscope_shield::grants::{
    EndReason, GrantEvent, GrantLookup, SessionCut, WatchedSession, watch_grants,
};
use periscope_shield::record::{AuditAck, AuditFailure, AuditSink, StatementRecord};
use periscope_store::{EnqueuedUnit, StoreError};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::time::Instant;

use crate::gateway::Gateway;
use crate::recordings::sql::SqlRecorder;
use crate::sessions::SessionGuard;

/// What a session's sink knows about it, whatever its protocol.
pub struct SessionContext {
    /// The gateway the events go to.
    pub gateway: Gateway,
    /// Whose session it is.
    pub identity: String,
    /// The connection it is on.
    pub connection: String,
    /// Where the client connected from.
    pub client_addr: SocketAddr,
    /// What the client calls itself (PostgreSQL's `application_name`).
    pub application_name: Option<String>,
    /// Whether the client connection is TLS.
    pub client_tls: bool,
    /// What the identity signed in with (`api_token`, `session_secret`).
    pub credential: &'static str,
    /// Which token, by id.
    pub token_id: String,
    /// The roles the decision used.
    pub roles: Vec<String>,
    /// The grants the session relies on.
    pub grants: Vec<String>,
    /// The decision the session runs under.
    pub allowance: Allowance,
    /// The grant bus, subscribed before the decision read the grants, so a
    /// grant that ends from then on cannot be missed.
    pub bus: Mutex<Option<broadcast::Receiver<GrantEvent>>>,
    /// The agent acting for the identity (an MCP client), when one is: every
    /// event of the session then carries `via` and `agent`.
    pub agent: Option<crate::agent::Agent>,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("identity", &self.identity)
            .field("connection", &self.connection)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

/// Longest a statement's outcome event waits for the session's next event
/// to share its commit. It bounds how stale the audit log can be for an
/// idle session, and what a crash of the gateway can lose: outcomes not yet
/// written, never an event a client's results waited for.
const OUTCOME_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// Held outcomes beyond which they are written without waiting (a session
/// streaming many quick statements, each with its own outcome).
const MAX_HELD: usize = 64;

/// One session's audit sink: events are handed to the group-commit writer
/// in submission order (committed with other sessions' events), and the
/// session's registry entry and grant watcher live as long as it does.
///
/// A statement's event is handed to the writer from the session's own task,
/// and the writer's answer wakes that task directly: no other task stands
/// between a statement and its commit. Outcomes are held back (see
/// [`AuditSink::submit_later`]) so that they share the next statement's
/// commit; a timer task writes those the next statement does not take.
pub struct GatewaySink {
    pub(crate) ctx: Arc<SessionContext>,
    held: Arc<HeldOutcomes>,
    /// The session's SQL recording, once started
    /// ([`GatewaySink::record_sql`]); `recording` says so without a lock.
    sql: Mutex<Option<SqlRecording>>,
    recording: AtomicBool,
    guard: Mutex<Option<SessionGuard>>,
    /// Dropping it stops the grant watcher.
    _stop: oneshot::Sender<()>,
    stop_rx: Mutex<Option<oneshot::Receiver<()>>>,
}

/// A session's outcome events not yet handed to the writer, shared by the
/// session and its timer task.
struct HeldOutcomes {
    gateway: Gateway,
    state: Mutex<Held>,
    /// Arms the timer task (the held list went from empty to not empty) or
    /// tells it the session ended.
    wake: Notify,
}

#[derive(Default)]
struct Held {
    drafts: Vec<EventDraft>,
    /// When the oldest of `drafts` was held.
    since: Option<Instant>,
    /// The timer task is counting down (it need not be woken).
    armed: bool,
    /// The session ended: the timer task stops.
    closed: bool,
}

impl Held {
    /// The held drafts, leaving none (and no deadline).
    fn take(&mut self) -> Vec<EventDraft> {
        self.since = None;
        std::mem::take(&mut self.drafts)
    }
}

impl std::fmt::Debug for GatewaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySink")
            .field("identity", &self.ctx.identity)
            .field("connection", &self.ctx.connection)
            .finish_non_exhaustive()
    }
}

impl GatewaySink {
    /// The sink of a new session; its grant watcher starts with the session
    /// ([`AuditSink::session_started`]).
    pub fn new(ctx: SessionContext) -> GatewaySink {
        let ctx = Arc::new(ctx);
        let held = Arc::new(HeldOutcomes {
            gateway: ctx.gateway.clone(),
            state: Mutex::new(Held::default()),
            wake: Notify::new(),
        });
        tokio::spawn(write_held_outcomes(Arc::clone(&held)));
        let (stop, stop_rx) = oneshot::channel();
        GatewaySink {
            ctx,
            held,
            sql: Mutex::new(None),
            recording: AtomicBool::new(false),
            guard: Mutex::new(None),
            _stop: stop,
            stop_rx: Mutex::new(Some(stop_rx)),
        }
    }

    /// What the session is; shared with its grant watcher.
    pub fn context(&self) -> &Arc<SessionContext> {
        &self.ctx
    }

    /// Records the session's statements with `recorder` (started by
    /// `recordings::start_sql` at `started_at`, RFC 3339) and seals it
    /// before the session's end event.
    pub fn record_sql(&self, recorder: SqlRecorder, session: &str, started_at: String) {
        *self.sql.lock().unwrap_or_else(|e| e.into_inner()) = Some(SqlRecording {
            recorder,
            session: session.to_string(),
            started_at,
        });
        self.recording.store(true, Ordering::Release);
    }

    /// Keeps the session's registry entry as long as the sink lives (the
    /// session is listed until it ends).
    pub fn keep(&self, guard: SessionGuard) {
        *self.guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    }
}

impl HeldOutcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `drafts` to the writer as one unit (one commit). Called with the
    /// state locked, so that the session's events keep their order.
    fn hand_over(&self, drafts: Vec<EventDraft>) -> Result<EnqueuedUnit, StoreError> {
        self.gateway.audit_writer().enqueue_unit_now(drafts)
    }

    /// Writes what is held, with nobody waiting for it: a failure is logged
    /// here (the writer logs a failed commit itself).
    fn write_held(&self, held: &mut Held) {
        let drafts = held.take();
        if drafts.is_empty() {
            return;
        }
        let events = drafts.len();
        if let Err(e) = self.hand_over(drafts) {
            tracing::error!(error = %e, events, "a session's audit events were not recorded");
        }
    }
}

/// The timer of one session's held outcomes: once armed, it writes them when
/// the oldest has waited [`OUTCOME_DELAY`], unless the session's next event
/// took them first; it disarms when nothing is held. A busy session thus
/// wakes it about once per delay, not once per statement.
async fn write_held_outcomes(held: Arc<HeldOutcomes>) {
    loop {
        held.wake.notified().await;
        loop {
            let deadline = {
                let mut state = held.lock();
                if state.closed {
                    return;
                }
                match state.since {
                    None => {
                        state.armed = false;
                        break;
                    }
                    Some(since) if since.elapsed() >= OUTCOME_DELAY => {
                        held.write_held(&mut state);
                        state.armed = false;
                        break;
                    }
                    Some(since) => since + OUTCOME_DELAY,
                }
            };
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for GatewaySink {
    fn drop(&mut self) {
        // The session is gone: what it held is written now.
        let mut state = self.held.lock();
        self.held.write_held(&mut state);
        state.closed = true;
        drop(state);
        self.held.wake.notify_one();
    }
}

impl GatewaySink {
    /// Marks an agent's event: `via` and `agent` added to its details (an
    /// object, or made one), so each event of the session says on whose
    /// behalf and through which client it happened.
    fn tagged(&self, mut draft: EventDraft) -> EventDraft {
        let Some(agent) = &self.ctx.agent else {
            return draft;
        };
        if !draft.details.is_object() {
            draft.details = serde_json::Value::Object(serde_json::Map::new());
        }
        if let Some(map) = draft.details.as_object_mut() {
            map.insert("via".into(), agent.via.into());
            map.insert("agent".into(), agent.client.clone().into());
        }
        draft
    }
}

impl AuditSink for GatewaySink {
    fn draft(&self, action: Action) -> EventDraft {
        self.ctx
            .gateway
            .draft(&self.ctx.identity, action, &self.ctx.connection)
    }

    fn submit(&self, draft: EventDraft) -> AuditAck {
        let draft = self.tagged(draft);
        let started = Instant::now();
        let enqueued = {
            let mut state = self.held.lock();
            // The held outcomes and this event: one unit, one commit.
            let mut drafts = state.take();
            drafts.push(draft);
            self.held.hand_over(drafts)
        };
        Box::pin(async move {
            let outcome = enqueued
                .map_err(|e| recorded_failure(&e))?
                .committed()
                .await
                .map_err(|e| recorded_failure(&e))?;
            crate::metrics::audit_waited(started.elapsed());
            let mut last = Err(AuditFailure(StoreError::WriterClosed.to_string()));
            for result in outcome {
                last = result.map_err(|e| recorded_failure(&e));
            }
            last
        })
    }

    fn submit_later(&self, draft: EventDraft) {
        let draft = self.tagged(draft);
        let mut state = self.held.lock();
        state.drafts.push(draft);
        if state.drafts.len() >= MAX_HELD {
            self.held.write_held(&mut state);
            return;
        }
        if state.since.is_none() {
            state.since = Some(Instant::now());
        }
        if !state.armed {
            state.armed = true;
            drop(state);
            self.held.wake.notify_one();
        }
    }

    fn found_in_columns(
        &self,
        found: &std::collections::BTreeMap<Arc<str>, periscope_redact::Counts>,
    ) {
        crate::discover::suspect::observe(&self.ctx.gateway, &self.ctx.connection, found);
    }

    fn records_statements(&self) -> bool {
        self.recording.load(Ordering::Acquire)
    }

    fn record_statement(&self, record: StatementRecord) {
        if let Some(sql) = self.sql.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            sql.recorder.record(record);
        }
    }

    fn end_session(&self, draft: EventDraft) {
        let recording = self.sql.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.recording.store(false, Ordering::Release);
        let Some(recording) = recording else {
            drop(self.submit(draft));
            return;
        };
        // The outcomes held so far go now, so they keep their place before
        // the seal; the seal and the end follow once the file is closed, in
        // a task of their own (nobody waits for a session's end).
        {
            let mut state = self.held.lock();
            self.held.write_held(&mut state);
        }
        let end = self.tagged(draft);
        let seal = self.tagged(
            self.ctx
                .grants
                .iter()
                .fold(self.draft(actions::RECORDING_SEALED), |d, g| {
                    d.with_grant(g.clone())
                }),
        );
        let gateway = self.ctx.gateway.clone();
        let sealing = gateway.sealing().start();
        tokio::spawn(async move {
            let details = recording.seal_details().await;
            let seal = seal.with_details(details);
            if let Err(e) = gateway.audit_writer().enqueue_unit_now(vec![seal, end]) {
                tracing::error!(error = %e, "a session's recording seal and end were not recorded");
            }
            drop(sealing);
        });
    }

    fn session_started(&self, cut: Arc<dyn SessionCut>) {
        // The registry can end the session too (its identity disabled, or
        // its roles lost at a sign-in), whatever grants it holds.
        if let Some(guard) = self
            .guard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            guard.set_cut(Arc::clone(&cut));
        }
        if self.ctx.grants.is_empty() {
            // Bound to no grant: nothing can end it early.
            return;
        }
        let bus = self
            .ctx
            .bus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let stop = self
            .stop_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (Some(bus), Some(stop)) = (bus, stop) else {
            return;
        };
        let watched = Arc::new(WatchedSession {
            identity: self.ctx.identity.clone(),
            connection: self.ctx.connection.clone(),
            grants: self.ctx.grants.clone(),
            allowance: self.ctx.allowance.clone(),
        });
        let lookup = Arc::new(StoreLookup {
            gateway: self.ctx.gateway.clone(),
            identity: periscope_policy::Identity::new(
                self.ctx.identity.clone(),
                self.ctx.allowance.role_names(),
            ),
            connection: self.ctx.connection.clone(),
        });
        tokio::spawn(watch_grants(watched, cut, bus, stop, lookup));
    }
}

/// A PostgreSQL session's recording in progress.
struct SqlRecording {
    recorder: SqlRecorder,
    session: String,
    started_at: String,
}

impl SqlRecording {
    /// Closes the file; the details of its `recording.sealed` event.
    async fn seal_details(self) -> serde_json::Value {
        match self.recorder.finish().await {
            Ok(w) => serde_json::json!({
                "recording": self.session,
                "session": self.session,
                "format": periscope_api::RECORDING_FORMAT_SQL,
                "file": w.file,
                "sha256": w.sha256,
                "bytes": w.bytes,
                "statements": w.statements,
                "truncated": w.truncated,
                "dropped_statements": w.dropped_statements,
                "started_at": self.started_at,
                "duration_ms": w.duration.as_millis() as u64,
            }),
            Err(e) => {
                tracing::error!(recording = %self.session, error = %e, "a recording could not be written");
                serde_json::json!({
                    "recording": self.session,
                    "session": self.session,
                    "format": periscope_api::RECORDING_FORMAT_SQL,
                    "file": null,
                    "error": e.to_string(),
                })
            }
        }
    }
}

/// A session event that was not recorded, logged.
fn recorded_failure(e: &StoreError) -> AuditFailure {
    tracing::error!(error = %e, "a session's audit event was not recorded");
    AuditFailure(e.to_string())
}

/// Answers a lagging grant watcher from the store.
struct StoreLookup {
    gateway: Gateway,
    identity: periscope_policy::Identity,
    connection: String,
}

impl GrantLookup for StoreLookup {
    fn live_grants(&self) -> Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send + '_>> {
        Box::pin(async move {
            let decision = self
                .gateway
                .decide(&self.identity, &self.connection)
                .await
                .ok()?;
            Some(
                decision
                    .allowance()
                    .map(|a| {
                        a.shields()
                            .grant_ids()
                            .into_iter()
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
    }

    fn end_reason<'a>(
        &'a self,
        grant_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<EndReason>> + Send + 'a>> {
        Box::pin(async move {
            let grant = self.gateway.store().get_grant(grant_id).await.ok()?;
            EndReason::of(&grant, self.gateway.now())
        })
    }
}
