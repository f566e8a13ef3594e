//! Refusals: a statement a hook refused never goes upstream, and its error
//! reaches the client where PostgreSQL's own would have: after the answers
//! to everything sent before it, once the holds taken before it resolved
//! (its audit event is durable).
//!
//! # Inside an extended batch
//!
//! PostgreSQL answers a failing message of a batch with ErrorResponse at
//! once (it flushes errors), then skips every message up to Sync, which it
//! answers with ReadyForQuery after rolling back the batch's implicit
//! transaction. Clients rely on the "at once": asyncpg sends Parse,
//! Describe and Flush and waits; psycopg's pipeline mode flushes before it
//! fetches. So a refusal in a batch is answered the same way:
//!
//! - nothing of the batch went upstream: the error is queued at once (after
//!   the answers owed for earlier batches), the rest of the batch is
//!   dropped, and its Sync is answered with ReadyForQuery by the relay;
//! - part of it went upstream: the server holds that part's results
//!   (perhaps unflushed) and would commit its implicit transaction at
//!   Sync. The relay sends in the refused message's place an `Execute` of
//!   a portal that cannot exist ([`REFUSED_PORTAL`]) and a Flush: the
//!   server answers the part before it, fails on the Execute with an error
//!   it flushes, skips the rest until Sync and rolls the batch back, all by
//!   its own rules. That error is replaced by the refusal; when an earlier
//!   message of the batch failed first, the server never reaches the
//!   Execute and its own first error stands, as it would without the
//!   proxy. The batch's Sync goes upstream and its ReadyForQuery answers
//!   the client.

use super::Relay;
use super::queue::cut;
use crate::backend;
use crate::error::{PgError, sqlstate};
use crate::frontend::{self, tag as ftag};
use crate::hooks::{CopyState, SessionHooks};

/// Where a synthetic response goes relative to the upstream's ReadyForQuery
/// messages, counted from the session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Anchor {
    /// Once ReadyForQuery number `n` has been forwarded (0 = now).
    After(u64),
}

/// The portal of the `Execute` sent upstream in place of a refused message
/// of a batch that is partly upstream: no client can create it (the relay
/// refuses nothing by name, but a client portal of this name would only
/// make its own batch fail with the refusal's message).
pub(crate) const REFUSED_PORTAL: &str = "periscope: refused statement";

/// A refusal waiting for the server's error on [`REFUSED_PORTAL`].
#[derive(Debug)]
pub(super) struct Injected {
    /// The refusal the server's error is replaced with.
    pub(super) error: PgError,
    /// The ReadyForQuery that ends the batch: past it, the server did not
    /// fail on the injected Execute (an earlier message failed first).
    pub(super) until_ready: u64,
}

#[derive(Debug)]
pub(super) struct Deferred {
    anchor: Anchor,
    /// The error; `None` for a lone ReadyForQuery (the Sync of a batch whose
    /// error went out at once).
    error: Option<PgError>,
    /// Also send ReadyForQuery (when no upstream one answers this request).
    ready: bool,
    /// Holds taken up to this refusal (its own audit event's included): it
    /// is sent only once they have all resolved, so a client never sees a
    /// refusal the audit log does not hold.
    after_holds: u64,
}

impl<H: SessionHooks> Relay<H> {
    /// Queues a synthetic error (and maybe ReadyForQuery) at `anchor`, and
    /// emits whatever is due.
    pub(super) fn defer(&mut self, anchor: Anchor, error: Option<PgError>, ready: bool) {
        self.deferred.push_back(Deferred {
            anchor,
            error,
            ready,
            after_holds: self.holds_taken,
        });
        self.emit_due();
    }

    /// Emits deferred responses that are due.
    pub(super) fn emit_due(&mut self) {
        while let Some(front) = self.deferred.front() {
            if front.after_holds > self.holds_taken - self.holds.len() as u64 {
                break;
            }
            let due = match front.anchor {
                Anchor::After(n) => n <= self.ready_seen,
            };
            if !due {
                break;
            }
            let Some(item) = self.deferred.pop_front() else {
                break;
            };
            self.scratch.clear();
            if let Some(error) = &item.error {
                backend::encode::error_response(&mut self.scratch, error);
            }
            if item.ready {
                backend::encode::ready_for_query(&mut self.scratch, self.state.transaction);
            }
            self.to_client.push(self.scratch.split().freeze());
        }
    }

    pub(super) fn update_pending(&mut self) {
        if self.ready_seen > self.ready_expected {
            // A miscount (e.g. an unusual COPY sequence): trust the server.
            self.ready_expected = self.ready_seen;
        }
        self.state.pending_ready = self.ready_expected - self.ready_seen;
    }

    pub(super) fn refuse(&mut self, run: &mut usize, tag: u8, len: usize, error: PgError) {
        let extended = matches!(
            tag,
            ftag::PARSE | ftag::BIND | ftag::DESCRIBE | ftag::EXECUTE | ftag::CLOSE
        ) || self.state.in_extended_batch;
        if self.state.copy == CopyState::In && matches!(tag, ftag::COPY_DATA | ftag::COPY_DONE) {
            // Abort the COPY upstream; the server answers with its error
            // (which quotes our message) and ReadyForQuery.
            self.scratch.clear();
            frontend::put_frame(&mut self.scratch, ftag::COPY_FAIL, |o| {
                frontend::put_cstr(o, &error.message)
            });
            let fail = self.scratch.split().freeze();
            cut(
                &mut self.client_buf,
                &mut self.to_upstream,
                run,
                len,
                Some(fail),
            );
            self.state.copy = CopyState::None;
        } else if extended {
            self.state.discarding_until_sync = true;
            self.state.in_extended_batch = true;
            if self.batch_forwarded {
                // Let the server fail the batch by its own rules (see the
                // module documentation).
                self.scratch.clear();
                frontend::put_frame(&mut self.scratch, ftag::EXECUTE, |o| {
                    frontend::put_cstr(o, REFUSED_PORTAL);
                    o.extend_from_slice(&0_i32.to_be_bytes());
                });
                frontend::put_frame(&mut self.scratch, ftag::FLUSH, |_| {});
                let injected = self.scratch.split().freeze();
                cut(
                    &mut self.client_buf,
                    &mut self.to_upstream,
                    run,
                    len,
                    Some(injected),
                );
                self.injected = Some(Injected {
                    error,
                    until_ready: self.ready_expected + 1,
                });
            } else {
                cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
                self.defer(Anchor::After(self.ready_expected), Some(error), false);
            }
        } else {
            cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
            self.defer(Anchor::After(self.ready_expected), Some(error), true);
        }
    }

    /// Whether an upstream ErrorResponse is the server's answer to the
    /// injected Execute of [`REFUSED_PORTAL`].
    pub(super) fn is_injected_error(&self, code: Option<&str>, message: Option<&str>) -> bool {
        self.injected.is_some()
            && code == Some(sqlstate::INVALID_CURSOR_NAME)
            && message.is_some_and(|m| m.contains(REFUSED_PORTAL))
    }

    /// The Sync that ends a batch containing a refusal.
    pub(super) fn finish_refused_batch(&mut self, run: &mut usize, len: usize) {
        self.state.discarding_until_sync = false;
        self.state.in_extended_batch = false;
        if self.batch_forwarded {
            // The server failed the batch on the injected Execute (or
            // earlier): its Sync ends the batch, its ReadyForQuery answers.
            *run += len;
            self.ready_expected += 1;
            self.syncs_since_execute += 1;
            self.batch_forwarded = false;
        } else {
            // The error went out at the refusal; the Sync gets its answer.
            cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
            self.defer(Anchor::After(self.ready_expected), None, true);
        }
    }
}
