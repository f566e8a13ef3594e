//! The shielded session: [`SessionHooks`] that analyse every statement,
//! refuse what a shield blocks, audit what runs, and mask what comes back,
//! following PostgreSQL's protocol so that each row is masked with the plan
//! of the statement it belongs to.
//!
//! The decisions, plans and records are the shield stage's
//! ([`periscope_shield`]); this module knows which message answers which,
//! and is cut by concern:
//!
//! - `state`: what the session tracks between messages: the messages the
//!   server still owes an answer for, prepared statements, portals, SQL-level
//!   names, the `search_path`;
//! - `frontend`: each client message: analysed, guarded, audited, forwarded;
//! - `backend`: each server message: row shapes planned, rows and COPY data
//!   masked, errors and notices scanned, outcomes recorded.
//!
//! # Following the protocol
//!
//! Every message forwarded upstream that the server answers is recorded, in
//! order, as a pending entry; every backend message is matched to the entry
//! at the front. That is what lets rows be masked with the right plan in the
//! extended protocol, where a driver learns the row shape from
//! `Describe(statement)` and later receives DataRows after `Execute` with no
//! RowDescription of their own:
//!
//! - Parse: analysed and guarded; the analysis is kept by statement name.
//! - Bind: the portal remembers its statement and result formats.
//! - Describe: the RowDescription answering it is rewritten (masked columns
//!   become `text`) and, for a portal, gives the portal its plan.
//! - Execute of a portal nobody described: the proxy sends a Describe of the
//!   portal first and drops its answer, so every row is masked with a plan
//!   built from the real row shape and formats.
//! - An ErrorResponse skips the failed batch's entries up to its Sync, as
//!   the server does; ReadyForQuery closes a Query or Sync.
//!
//! # Audit
//!
//! A statement's `query` event is submitted when the statement is received,
//! the statement goes upstream at once, and the relay holds its results
//! until the event is durable ([`periscope_pg_wire::hooks::BackendHold`]);
//! an audit failure ends the session. A refusal is shown only once its
//! `query.refused` event is durable. Outcomes (`query.result`, with rows,
//! duration and masked counts per entity) are not waited for.
//!
//! # Recording
//!
//! When the session is recorded ([`SessionSetup::sample`]), each result's
//! first rows are kept as sent (masked) within the limits, with the
//! RowDescription the client was sent, and handed to the sink with the
//! statement's outcome ([`periscope_shield::record::AuditSink::record_statement`]);
//! decoding them to text is the recording writer's job.

mod backend;
mod frontend;
mod state;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use periscope_pg_wire::codec::Frame;
use periscope_pg_wire::frontend::{put_cstr, put_frame, tag as ftag};
use periscope_pg_wire::hooks::{
    BackendAction, BackendHold, FrontendAction, ProtocolState, SessionEnd, SessionHooks,
    SessionInfo,
};
use periscope_policy::Allowance;
use periscope_redact::TokenKey;
use periscope_shield::masking::{Masking, session_masker};
use periscope_shield::record::{AuditSink, SampleLimits, SessionRecorder};
use periscope_sql::{AnalysisCache, AnalyzeOptions};

use crate::catalog::PgCatalog;
use crate::refusal::{PgSessionCut, backend_hold};
use state::SessionState;

/// Size of the buffer masked rows are written into (see `scratch`).
const SCRATCH_CAPACITY: usize = 16 * 1024;

/// How long a statement's results wait for its audit event before the
/// session is ended instead.
pub const AUDIT_TIMEOUT: Duration = periscope_shield::record::AUDIT_TIMEOUT;

/// What a session is set up with, before its catalog is known.
#[derive(Debug, Clone)]
pub struct SessionSetup {
    /// The identity.
    pub identity: String,
    /// The connection name.
    pub connection: String,
    /// The decision the session runs under (shields, grants, refusal hints).
    pub allowance: Allowance,
    /// The deployment's key for the `token` operator.
    pub token_key: Option<TokenKey>,
    /// Analyses shared by the sessions of the connection.
    pub analyses: Arc<AnalysisCache>,
    /// How much of each result the session recording keeps; `None` when
    /// the session is not recorded (nothing is captured then).
    pub sample: Option<SampleLimits>,
}

/// The hooks of one shielded session. See the module documentation.
pub struct ShieldedSession<A: AuditSink> {
    recorder: SessionRecorder<A>,
    setup: SessionSetup,
    /// Set by [`ShieldedSession::attach`]; until then every statement is
    /// refused (fail closed).
    masking: Option<Masking>,
    catalog: Option<Arc<PgCatalog>>,
    options: AnalyzeOptions,
    state: SessionState,
    /// Rows are rewritten into this buffer and split off one by one;
    /// starting it (and so every later refill) at 16 KiB makes one
    /// allocation serve dozens of rows instead of one each.
    scratch: BytesMut,
}

impl<A: AuditSink> std::fmt::Debug for ShieldedSession<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShieldedSession")
            .field("session", &self.recorder.session_id())
            .field("identity", &self.setup.identity)
            .field("connection", &self.setup.connection)
            .finish_non_exhaustive()
    }
}

impl<A: AuditSink> ShieldedSession<A> {
    /// A session that refuses every statement until [`ShieldedSession::attach`]
    /// gives it a catalog (fail closed).
    pub fn new(setup: SessionSetup, audit: A) -> ShieldedSession<A> {
        let grant_ids = setup
            .allowance
            .shields()
            .grant_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        ShieldedSession {
            recorder: SessionRecorder::new(audit, grant_ids),
            setup,
            masking: None,
            catalog: None,
            options: AnalyzeOptions::default(),
            state: SessionState::default(),
            scratch: BytesMut::with_capacity(SCRATCH_CAPACITY),
        }
    }

    /// Gives the session its catalog, its id (in audit events) and the
    /// upstream role (what `$user` means in the `search_path`).
    pub fn attach(&mut self, catalog: Arc<PgCatalog>, session_id: &str, upstream_user: &str) {
        let masker = session_masker(&self.setup.allowance, self.setup.token_key.as_ref());
        self.masking = Some(Masking::new(
            masker,
            self.setup.allowance.shields().clone(),
            Arc::clone(catalog.data()),
        ));
        self.catalog = Some(catalog);
        self.recorder.set_session_id(session_id);
        self.state.set_upstream_user(upstream_user);
        self.options.search_path = self.state.search_path();
    }

    /// The grants this session relies on.
    pub fn grant_ids(&self) -> &[String] {
        self.recorder.grant_ids()
    }

    /// The audit sink.
    pub fn sink(&self) -> &A {
        self.recorder.sink()
    }

    /// The session id given at [`ShieldedSession::attach`].
    pub fn session_id(&self) -> &str {
        self.recorder.session_id()
    }
}

impl<A: AuditSink> SessionHooks for ShieldedSession<A> {
    fn on_start(&mut self, info: &SessionInfo, handle: &periscope_pg_wire::SessionHandle) {
        self.recorder.started(
            info.client_addr,
            info.application_name.clone(),
            PgSessionCut::shared(handle),
        );
    }

    fn on_frontend(&mut self, frame: Frame<'_>, state: &ProtocolState) -> FrontendAction {
        match frame.tag() {
            // COPY FROM STDIN data and the end of a session carry no
            // statement.
            ftag::COPY_DATA | ftag::COPY_DONE | ftag::COPY_FAIL | ftag::TERMINATE | ftag::FLUSH => {
                FrontendAction::Forward
            }
            _ => self.handle_frontend(frame, state),
        }
    }

    fn take_backend_hold(&mut self) -> Option<BackendHold> {
        self.recorder.take_hold().map(backend_hold)
    }

    fn on_backend(&mut self, frame: Frame<'_>, _state: &ProtocolState) -> BackendAction {
        self.handle_backend(frame)
    }

    fn on_end(&mut self, end: &SessionEnd) {
        self.interrupted_outcomes(end);
        let reason = match end {
            SessionEnd::ClientClosed => "client closed the session".to_string(),
            SessionEnd::UpstreamLost(r) => format!("upstream lost: {r}"),
            SessionEnd::Terminated(m) => format!("terminated: {m}"),
            SessionEnd::Failed(m) => format!("failed: {m}"),
        };
        self.recorder.end(&reason);
    }
}

/// Bytes of a frame the session writes itself, for tests of the wire form.
#[doc(hidden)]
pub fn describe_portal_frame(portal: &str) -> Bytes {
    let mut out = BytesMut::new();
    put_frame(&mut out, ftag::DESCRIBE, |o| {
        o.put_u8(b'P');
        put_cstr(o, portal);
    });
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_pg_wire::frontend::{FrontendMessage, Target};

    #[test]
    fn describe_frames_are_well_formed() {
        let bytes = describe_portal_frame("p1");
        let frame = Frame::parse(&bytes, 1 << 20).unwrap().unwrap();
        assert_eq!(
            FrontendMessage::decode(frame).unwrap(),
            FrontendMessage::Describe {
                target: Target::Portal,
                name: "p1"
            }
        );
    }
}
