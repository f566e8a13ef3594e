//! Interception points of the relay, filled in by the guardrail, masking and
//! audit stages.
//!
//! The relay calls [`SessionHooks::on_frontend`] for every message a client
//! sends and [`SessionHooks::on_backend`] for every message the upstream
//! sends, with a borrowed [`Frame`] and the [`ProtocolState`] the relay
//! tracks. Returning `Forward` costs nothing: the original bytes go out
//! unchanged, without a copy or an allocation. Hooks are synchronous on
//! purpose: they run on the hot path of every row; work that must wait (audit
//! writes) belongs on a channel the hook feeds.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;

use crate::backend::TransactionStatus;
use crate::codec::Frame;
use crate::error::PgError;
use crate::relay::SessionHandle;

/// What to do with one client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendAction {
    /// Send the original bytes upstream.
    Forward,
    /// Send these bytes upstream instead: one or more complete frames that
    /// play the same protocol role (a rewritten Query is still one Query).
    Replace(Bytes),
    /// Do not send the message; answer the client with this error instead.
    ///
    /// The relay follows the protocol's rules: for a simple Query (or a
    /// FunctionCall) the client gets the ErrorResponse and a ReadyForQuery;
    /// inside an extended-protocol batch it gets the ErrorResponse, every
    /// following message up to Sync is discarded, and Sync is answered with
    /// ReadyForQuery. The answer is delivered after the responses to
    /// everything sent upstream before it, so the client sees them in order.
    Refuse(PgError),
    /// End the session: the client gets this error as FATAL.
    Terminate(PgError),
}

/// What to do with one upstream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAction {
    /// Send the original bytes to the client.
    Forward,
    /// Send these bytes instead (complete frames; e.g. a masked DataRow).
    Rewrite(Bytes),
    /// Send nothing for this message.
    Drop,
    /// End the session: the client gets this error as FATAL.
    Terminate(PgError),
}

/// COPY sub-protocol state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyState {
    /// No COPY running.
    #[default]
    None,
    /// COPY FROM STDIN: the client sends CopyData.
    In,
    /// COPY TO STDOUT: the upstream sends CopyData.
    Out,
    /// Bidirectional (replication) copy.
    Both,
}

/// Protocol state the relay tracks, shown to every hook call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProtocolState {
    /// Transaction status from the latest upstream ReadyForQuery.
    pub transaction: TransactionStatus,
    /// True between the first extended-protocol message (Parse, Bind,
    /// Describe, Execute, Close) a client sends and the Sync that ends the
    /// batch.
    pub in_extended_batch: bool,
    /// True after a refusal inside a batch: client messages are discarded
    /// (without calling the hook) until Sync.
    pub discarding_until_sync: bool,
    /// COPY sub-protocol in progress, as announced by the upstream.
    pub copy: CopyState,
    /// Query/Sync/FunctionCall messages sent upstream whose ReadyForQuery has
    /// not arrived yet.
    pub pending_ready: u64,
}

/// Facts about an established session, given to [`SessionHooks::on_start`].
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Client address.
    pub client_addr: SocketAddr,
    /// The client's `application_name`, as passed on to the upstream.
    pub application_name: Option<String>,
    /// Client user name (the identity).
    pub user: String,
    /// Connection name the client asked for.
    pub database: String,
    /// Whether the client connection is TLS.
    pub client_tls: bool,
    /// Upstream server address.
    pub upstream_addr: SocketAddr,
    /// Whether the upstream connection is TLS.
    pub upstream_tls: bool,
    /// The upstream's `server_version` parameter, if reported.
    pub server_version: Option<String>,
}

/// How a session ended, given to [`SessionHooks::on_end`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The client sent Terminate or closed its connection.
    ClientClosed,
    /// The upstream closed or failed.
    UpstreamLost(String),
    /// Ended through [`SessionHandle::terminate`], a hook's `Terminate`, or
    /// listener shutdown; with the message the client was given.
    Terminated(String),
    /// A peer broke the protocol or an I/O error occurred.
    Failed(String),
}

/// A condition the relay waits for before it forwards anything more from the
/// upstream to the client, e.g. "the audit event of this statement is
/// durable".
///
/// Hooks are synchronous, so work that must finish before a statement's
/// results may be shown cannot block them; instead a hook hands the relay
/// this future. The statement still goes upstream at once (the query runs
/// while the audit write completes), and only the backend output waits, so
/// the added latency is `max(0, hold - query time)`. Resolving to an error
/// ends the session with that error (sent as FATAL): nothing held is ever
/// delivered.
pub type BackendHold = Pin<Box<dyn Future<Output = Result<(), PgError>> + Send + 'static>>;

/// Per-session interception, implemented by the gateway. All methods have
/// pass-through defaults.
pub trait SessionHooks: Send + 'static {
    /// The session is established; `handle` lets the gateway end it later
    /// (grant expiry, revocation).
    fn on_start(&mut self, info: &SessionInfo, handle: &SessionHandle) {
        let _ = (info, handle);
    }

    /// A message from the client, before it goes upstream.
    fn on_frontend(&mut self, frame: Frame<'_>, state: &ProtocolState) -> FrontendAction {
        let _ = (frame, state);
        FrontendAction::Forward
    }

    /// Asked right after every [`SessionHooks::on_frontend`] call: a hold
    /// returned here stops the relay from processing upstream output, and
    /// from sending a refusal of the message just handled or of a later
    /// one, until it resolves (holds are awaited in the order they were
    /// taken). Output already queued for the client is not recalled, so a
    /// hold covers every response to the message just handled and to the
    /// ones after it.
    fn take_backend_hold(&mut self) -> Option<BackendHold> {
        None
    }

    /// A message from the upstream, before it goes to the client.
    fn on_backend(&mut self, frame: Frame<'_>, state: &ProtocolState) -> BackendAction {
        let _ = (frame, state);
        BackendAction::Forward
    }

    /// The session ended.
    fn on_end(&mut self, end: &SessionEnd) {
        let _ = end;
    }
}

/// Hooks that forward everything: a plain, transparent proxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThrough;

impl SessionHooks for PassThrough {}
