//! The seam through which a shielded session records what it does.
//!
//! The proxy decides what to record (session start and end, each statement
//! with its literals scrubbed, each outcome with masked counts, each
//! refusal); the gateway decides where it goes and how it becomes durable.
//! [`AuditSink::submit`] returns an [`AuditAck`] that resolves once the event
//! is durable: a statement's results are held back until its `query` event
//! is acknowledged (see [`crate::hooks::BackendHold`]), so nothing is ever
//! shown that the audit log does not hold.

use std::future::Future;
use std::pin::Pin;

use periscope_audit::EventDraft;

use crate::relay::SessionHandle;

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
    fn draft(&self, action: &str) -> EventDraft;

    /// Submits `draft` at once. Events submitted by one sink must be
    /// appended in submission order (the proxy relies on a statement's
    /// `query` event preceding its outcome). The returned ack may be dropped
    /// when the caller does not need to wait (outcome events).
    fn submit(&self, draft: EventDraft) -> AuditAck;

    /// Submits an event no one waits for (a statement's outcome), which the
    /// sink may hold back briefly to write it together with the session's
    /// next event: it still precedes every later event of this sink, and a
    /// sink that holds events back must write them within a bounded delay
    /// and before the session's end event. The default writes it at once.
    fn submit_later(&self, draft: EventDraft) {
        drop(self.submit(draft));
    }

    /// The relay started: `handle` ends the session from outside (grant
    /// expiry or revocation).
    fn session_started(&self, handle: &SessionHandle) {
        let _ = handle;
    }
}
