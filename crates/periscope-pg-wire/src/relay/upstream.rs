//! The upstream direction: every complete frame through the hook, forwarded
//! runs queued without a copy, ReadyForQuery counted (where deferred
//! refusals are placed), COPY state followed.

use super::queue::{cut, flush_run};
use super::{Relay, Stop};
use crate::backend::{self, BackendMessage, tag as btag};
use crate::codec::Frame;
use crate::error::{PgError, ProtocolError, Severity};
use crate::hooks::{BackendAction, CopyState, SessionHooks};

impl<H: SessionHooks> Relay<H> {
    /// Runs every complete upstream frame through the hook.
    pub(super) fn process_upstream(&mut self) -> Result<(), Stop> {
        let max = self.config.limits.max_message;
        let mut run = 0;
        loop {
            let frame = match Frame::parse(&self.upstream_buf[run..], max) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => return Err(Stop::UpstreamProtocol(e)),
            };
            let tag = frame.tag();
            let len = frame.len();
            if !backend::is_known_tag(tag) {
                return Err(Stop::UpstreamProtocol(ProtocolError::UnknownMessage {
                    direction: "backend",
                    tag,
                }));
            }

            // Messages that drive the relay's own state are decoded (and so
            // validated) whatever the hook does with them.
            let mut ready_status = None;
            let mut injected_error = false;
            match tag {
                btag::READY_FOR_QUERY => match BackendMessage::decode(frame) {
                    Ok(BackendMessage::ReadyForQuery(status)) => ready_status = Some(status),
                    Ok(_) => {}
                    Err(e) => return Err(Stop::UpstreamProtocol(e)),
                },
                btag::ERROR_RESPONSE => match BackendMessage::decode(frame) {
                    Ok(BackendMessage::ErrorResponse(fields)) => {
                        if matches!(fields.severity(), Some("FATAL" | "PANIC")) {
                            self.upstream_sent_fatal = true;
                        }
                        injected_error = self.is_injected_error(fields.code(), fields.message());
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Stop::UpstreamProtocol(e)),
                },
                _ => {}
            }

            let action = self.hooks.on_backend(frame, &self.state);
            // The server failed the batch on the Execute sent in a refused
            // message's place: the client gets the refusal instead (the
            // hooks saw the server's error, which is what happened to the
            // batch).
            let action = match self.injected.take() {
                Some(injected) if injected_error => {
                    self.scratch.clear();
                    backend::encode::error_response(&mut self.scratch, &injected.error);
                    match action {
                        BackendAction::Terminate(e) => BackendAction::Terminate(e),
                        _ => BackendAction::Rewrite(self.scratch.split().freeze()),
                    }
                }
                other => {
                    self.injected = other;
                    action
                }
            };
            match action {
                BackendAction::Forward => run += len,
                BackendAction::Rewrite(bytes) => cut(
                    &mut self.upstream_buf,
                    &mut self.to_client,
                    &mut run,
                    len,
                    Some(bytes),
                ),
                BackendAction::Drop => cut(
                    &mut self.upstream_buf,
                    &mut self.to_client,
                    &mut run,
                    len,
                    None,
                ),
                BackendAction::Terminate(error) => {
                    flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
                    return Err(Stop::Terminated(PgError {
                        severity: Severity::Fatal,
                        ..error
                    }));
                }
            }

            match tag {
                btag::COPY_IN_RESPONSE => {
                    self.state.copy = CopyState::In;
                    // Syncs sent right after the COPY's Execute were swallowed
                    // by the server's copy loop.
                    let ignored = self
                        .syncs_since_execute
                        .min(self.ready_expected - self.ready_seen);
                    self.ready_expected -= ignored;
                    self.syncs_since_execute = 0;
                }
                btag::COPY_OUT_RESPONSE => self.state.copy = CopyState::Out,
                btag::COPY_BOTH_RESPONSE => self.state.copy = CopyState::Both,
                btag::COPY_DONE if self.state.copy == CopyState::Out => {
                    self.state.copy = CopyState::None
                }
                btag::COMMAND_COMPLETE | btag::ERROR_RESPONSE => {
                    self.state.copy = CopyState::None;
                }
                _ => {}
            }

            if let Some(status) = ready_status {
                self.state.transaction = status;
                self.state.copy = CopyState::None;
                self.ready_seen += 1;
                // The batch ended without reaching the injected Execute (an
                // earlier message failed first): its error stood.
                if self
                    .injected
                    .as_ref()
                    .is_some_and(|i| i.until_ready <= self.ready_seen)
                {
                    self.injected = None;
                }
                self.update_pending();
                if self.deferred.front().is_some() {
                    flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
                    self.emit_due();
                }
            }
        }
        flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
        Ok(())
    }
}
