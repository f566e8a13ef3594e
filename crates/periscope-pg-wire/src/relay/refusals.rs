//! Refusals: a statement a hook refused never goes upstream, and its error
//! reaches the client where PostgreSQL's own would have: after the answers
//! to everything sent before it, once the holds taken before it resolved
//! (its audit event is durable), and for an extended batch at its Sync.

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
    /// Right before ReadyForQuery number `n` (an error inside a batch whose
    /// Sync went upstream).
    Before(u64),
    /// Once ReadyForQuery number `n` has been forwarded (0 = now).
    After(u64),
}

#[derive(Debug)]
pub(super) struct Deferred {
    anchor: Anchor,
    error: PgError,
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
    pub(super) fn defer(&mut self, anchor: Anchor, error: PgError, ready: bool) {
        self.deferred.push_back(Deferred {
            anchor,
            error,
            ready,
            after_holds: self.holds_taken,
        });
        self.emit_due(false);
    }

    /// Emits deferred responses that are due. With `before_next_ready`, also
    /// those anchored right before the ReadyForQuery about to be forwarded.
    pub(super) fn emit_due(&mut self, before_next_ready: bool) {
        while let Some(front) = self.deferred.front() {
            if front.after_holds > self.holds_taken - self.holds.len() as u64 {
                break;
            }
            let due = match front.anchor {
                Anchor::After(n) => n <= self.ready_seen,
                Anchor::Before(n) => {
                    n <= self.ready_seen || (before_next_ready && n == self.ready_seen + 1)
                }
            };
            if !due {
                break;
            }
            let Some(item) = self.deferred.pop_front() else {
                break;
            };
            self.scratch.clear();
            backend::encode::error_response(&mut self.scratch, &item.error);
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
            cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
            self.state.discarding_until_sync = true;
            self.state.in_extended_batch = true;
            self.batch_error.get_or_insert(error);
        } else {
            cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
            self.defer(Anchor::After(self.ready_expected), error, true);
        }
    }

    /// The Sync that ends a batch containing a refusal.
    pub(super) fn finish_refused_batch(&mut self, run: &mut usize, len: usize) {
        self.state.discarding_until_sync = false;
        self.state.in_extended_batch = false;
        let error = self.batch_error.take().unwrap_or_else(|| {
            PgError::error(sqlstate::INSUFFICIENT_PRIVILEGE, "statement refused")
        });
        if self.batch_forwarded {
            // Part of the batch is upstream: send the Sync so the server
            // finishes it, and put the error right before its ReadyForQuery.
            *run += len;
            self.ready_expected += 1;
            self.syncs_since_execute += 1;
            self.batch_forwarded = false;
            self.defer(Anchor::Before(self.ready_expected), error, false);
        } else {
            cut(&mut self.client_buf, &mut self.to_upstream, run, len, None);
            self.defer(Anchor::After(self.ready_expected), error, true);
        }
    }
}
