//! The client direction: every complete frame through the hook, forwarded
//! runs queued without a copy, the protocol state the client's messages
//! change.

use super::queue::{cut, flush_run};
use super::{Relay, Stop};
use crate::codec::Frame;
use crate::error::{PgError, ProtocolError, Severity};
use crate::frontend::{self, tag as ftag};
use crate::hooks::{CopyState, FrontendAction, SessionHooks};

impl<H: SessionHooks> Relay<H> {
    /// Runs every complete client frame through the hook.
    pub(super) fn process_client(&mut self) -> Result<(), Stop> {
        let max = self.config.limits.max_message;
        // End of the run of forwarded frames at the start of `client_buf`.
        let mut run = 0;
        loop {
            let frame = match Frame::parse(&self.client_buf[run..], max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(Stop::ClientProtocol(e)),
            };
            let tag = frame.tag();
            let len = frame.len();
            if !frontend::is_known_tag(tag) {
                return Err(Stop::ClientProtocol(ProtocolError::UnknownMessage {
                    direction: "frontend",
                    tag,
                }));
            }
            if self.client_terminated {
                // Nothing after Terminate is meaningful.
                cut(
                    &mut self.client_buf,
                    &mut self.to_upstream,
                    &mut run,
                    len,
                    None,
                );
                continue;
            }

            if self.state.discarding_until_sync {
                if tag == ftag::SYNC {
                    self.finish_refused_batch(&mut run, len);
                } else if tag == ftag::TERMINATE {
                    self.track_frontend(tag);
                    run += len;
                } else {
                    cut(
                        &mut self.client_buf,
                        &mut self.to_upstream,
                        &mut run,
                        len,
                        None,
                    );
                }
                continue;
            }

            let action = self.hooks.on_frontend(frame, &self.state);
            if let Some(hold) = self.hooks.take_backend_hold() {
                self.holds.push_back(hold);
                self.holds_taken += 1;
            }
            match action {
                FrontendAction::Forward => {
                    run += len;
                    self.track_frontend(tag);
                }
                FrontendAction::Replace(bytes) => {
                    cut(
                        &mut self.client_buf,
                        &mut self.to_upstream,
                        &mut run,
                        len,
                        Some(bytes),
                    );
                    self.track_frontend(tag);
                }
                FrontendAction::Refuse(error) => {
                    let error = PgError {
                        severity: Severity::Error,
                        ..error
                    };
                    self.refuse(&mut run, tag, len, error);
                }
                FrontendAction::Terminate(error) => {
                    flush_run(&mut self.client_buf, &mut self.to_upstream, &mut run);
                    return Err(Stop::Terminated(PgError {
                        severity: Severity::Fatal,
                        ..error
                    }));
                }
            }
        }
        flush_run(&mut self.client_buf, &mut self.to_upstream, &mut run);
        self.update_pending();
        Ok(())
    }

    /// State changes caused by a client message that went upstream.
    fn track_frontend(&mut self, tag: u8) {
        match tag {
            ftag::QUERY | ftag::FUNCTION_CALL => {
                self.ready_expected += 1;
                self.syncs_since_execute = 0;
            }
            ftag::PARSE | ftag::BIND | ftag::DESCRIBE | ftag::CLOSE => {
                self.state.in_extended_batch = true;
                self.batch_forwarded = true;
            }
            ftag::EXECUTE => {
                self.state.in_extended_batch = true;
                self.batch_forwarded = true;
                self.syncs_since_execute = 0;
            }
            ftag::SYNC => {
                // The server ignores Sync during COPY FROM STDIN.
                if self.state.copy != CopyState::In {
                    self.ready_expected += 1;
                }
                self.syncs_since_execute += 1;
                self.state.in_extended_batch = false;
                self.batch_forwarded = false;
            }
            ftag::COPY_DONE | ftag::COPY_FAIL if self.state.copy == CopyState::In => {
                self.state.copy = CopyState::None;
            }
            ftag::TERMINATE => self.client_terminated = true,
            _ => {}
        }
    }
}
