//! The end of a session: what each way of ending owes each side (a FATAL to
//! the client, Terminate to the upstream, a CancelRequest for a statement
//! left running), within a bounded grace.

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::queue::{OutQueue, write_some};
use super::{CANCEL_TIMEOUT, CLOSE_GRACE, Relay, Stop};
use crate::backend;
use crate::cancel::send_cancel;
use crate::error::{PgError, sqlstate};
use crate::frontend;
use crate::hooks::{SessionEnd, SessionHooks};

impl<H: SessionHooks> Relay<H> {
    /// Sends what the end requires (a FATAL to the client, Terminate to the
    /// upstream), bounded by [`CLOSE_GRACE`].
    pub(super) async fn shutdown<C, U>(
        &mut self,
        stop: Stop,
        client_w: &mut C,
        upstream_w: &mut U,
    ) -> SessionEnd
    where
        C: AsyncWrite + Unpin,
        U: AsyncWrite + Unpin,
    {
        // A session ended under a running statement: the upstream would run
        // it to completion before reading our Terminate, so cancel it too
        // (a terminated grant must not keep a heavy query going).
        let abrupt = !matches!(
            stop,
            Stop::ClientTerminated | Stop::UpstreamLost(_) | Stop::UpstreamProtocol(_)
        );
        if abrupt
            && self.state.pending_ready > 0
            && let Some(target) = self.upstream_cancel.clone()
        {
            let session = self.handle.id();
            tokio::spawn(async move {
                if let Err(e) = send_cancel(&target, CANCEL_TIMEOUT).await {
                    tracing::warn!(session, error = %e, "cancel at session end failed");
                }
            });
        }

        let (fatal, to_client_ok, to_upstream_ok, end) = match stop {
            Stop::ClientClosed => (None, false, true, SessionEnd::ClientClosed),
            Stop::ClientTerminated => (None, false, true, SessionEnd::ClientClosed),
            Stop::ClientIo(e) => (
                None,
                false,
                true,
                SessionEnd::Failed(format!("client I/O: {e}")),
            ),
            Stop::UpstreamLost(reason) => {
                tracing::warn!(session = self.handle.id(), %reason, "upstream connection lost");
                let fatal = (!self.upstream_sent_fatal).then(|| {
                    PgError::fatal(sqlstate::CONNECTION_FAILURE, "upstream connection lost")
                });
                (fatal, true, false, SessionEnd::UpstreamLost(reason))
            }
            Stop::Terminated(err) => {
                let message = err.message.clone();
                (Some(err), true, true, SessionEnd::Terminated(message))
            }
            Stop::ClientProtocol(e) => {
                tracing::warn!(session = self.handle.id(), error = %e, "client protocol violation");
                let err = PgError::fatal(sqlstate::PROTOCOL_VIOLATION, e.to_string());
                (
                    Some(err),
                    true,
                    true,
                    SessionEnd::Failed(format!("client protocol error: {e}")),
                )
            }
            Stop::UpstreamProtocol(e) => {
                tracing::warn!(session = self.handle.id(), error = %e, "upstream protocol violation");
                let err = PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    "the upstream server sent an invalid message; the session was closed",
                );
                (
                    Some(err),
                    true,
                    false,
                    SessionEnd::Failed(format!("upstream protocol error: {e}")),
                )
            }
        };

        let client_done = async {
            if !to_client_ok {
                return;
            }
            if let Some(fatal) = &fatal {
                self.scratch.clear();
                backend::encode::error_response(&mut self.scratch, fatal);
                self.to_client.push(self.scratch.split().freeze());
            }
            while !self.to_client.is_empty() {
                if write_some(client_w, &mut self.to_client).await.is_err() {
                    return;
                }
            }
            let _ = client_w.flush().await;
            let _ = client_w.shutdown().await;
        };
        let _ = tokio::time::timeout(CLOSE_GRACE, client_done).await;

        if to_upstream_ok {
            let upstream_done = async {
                // Whatever was queued for the upstream is dropped unless the
                // client said goodbye: then its Terminate is in the queue.
                if !self.client_terminated {
                    self.to_upstream = OutQueue::default();
                    let mut bye = BytesMut::new();
                    frontend::encode::terminate(&mut bye);
                    self.to_upstream.push(bye.freeze());
                }
                while !self.to_upstream.is_empty() {
                    if write_some(upstream_w, &mut self.to_upstream).await.is_err() {
                        return;
                    }
                }
                let _ = upstream_w.flush().await;
                let _ = upstream_w.shutdown().await;
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, upstream_done).await;
        }
        end
    }
}
