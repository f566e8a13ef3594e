//! The session relay: both directions of an established session, in one task.
//!
//! This file holds the loop and what it selects on; the rest is cut by
//! concern: `client` and `upstream` run each direction's frames through the
//! hooks, `refusals` places refused statements' errors where PostgreSQL's
//! own would be, `queue` holds the bytes on their way to each peer, `close`
//! ends a session, and `handle` is the [`SessionHandle`] the outside world
//! keeps.
//!
//! # Shape
//!
//! One `select!` loop owns four things per direction: the read half, a
//! fixed-size receive buffer, an output queue and the write half of the other
//! side. Each turn it does whichever is ready first: read a chunk, write some
//! queued bytes, flush, or obey a termination request. Both directions make
//! progress independently (a client streaming COPY data while the upstream
//! streams results cannot deadlock the proxy), and hooks get `&mut self`
//! without locks because only this task touches them.
//!
//! # Zero copy and coalescing
//!
//! After a read, every complete frame in the buffer goes through the hook.
//! Forwarded frames are not copied: consecutive ones are split off the
//! receive buffer as one [`Bytes`](bytes::Bytes) chunk (a reference-counted view of the
//! same memory) and queued. A rewritten or synthetic message splits the run
//! and is queued between two chunks. The queue is written with vectored
//! writes, so one read becomes one write, whatever the number of messages.
//!
//! # Back-pressure and memory
//!
//! A direction reads again only when its output queue is empty and flushed.
//! A client that reads slowly therefore stops the proxy from reading the
//! upstream, whose kernel buffers fill, and PostgreSQL waits: no result is
//! ever buffered whole. Memory per session is two receive buffers (default
//! 64 KiB each, grown only to fit a single larger message, within
//! [`Limits::max_message`]) plus the queued rewrites of one buffer's worth of
//! messages.

mod client;
mod close;
mod handle;
mod queue;
mod refusals;
mod upstream;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncReadExt;

use crate::backend::TransactionStatus;
use crate::cancel::UpstreamCancel;
use crate::codec::{Frame, Limits};
use crate::error::{PgError, ProtocolError, sqlstate};
use crate::hooks::{BackendHold, ProtocolState, SessionEnd, SessionHooks};
use crate::stream::PgStream;

pub use handle::{SessionHandle, SessionStats};
use queue::{OutQueue, drive, prepare_read};
use refusals::{Deferred, Injected};

/// How long the proxy keeps trying to deliver a final FATAL message and close
/// cleanly before it drops the connections.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Bound on sending a CancelRequest for a statement left running at the end.
const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);

/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 64;

/// Most refusals (or backend holds) waiting for the upstream (or the audit
/// log) to catch up; past this the relay stops reading the client, so a
/// client pipelining statements behind a slow one cannot grow the session's
/// memory.
const MAX_DEFERRED: usize = 256;

/// The first upstream read after the client sent something: about what
/// PostgreSQL sends in one go (8 KiB), so a large result's first rows are
/// masked and written before the rest of the buffer is read. Later reads
/// fill the whole buffer.
const FIRST_READ: usize = 8 * 1024;

/// What woke the loop.
enum Event {
    Terminate(PgError),
    HoldResolved(Result<(), PgError>),
    ClientRead(std::io::Result<usize>),
    UpstreamRead(std::io::Result<usize>),
    ClientWritten(std::io::Result<()>),
    UpstreamWritten(std::io::Result<()>),
}

/// Why the loop stopped.
enum Stop {
    ClientClosed,
    ClientTerminated,
    UpstreamLost(String),
    Terminated(PgError),
    ClientProtocol(ProtocolError),
    UpstreamProtocol(ProtocolError),
    ClientIo(std::io::Error),
}

/// Relay settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelayConfig {
    pub(crate) limits: Limits,
    pub(crate) buffer_size: usize,
}

/// One established session, ready to relay.
pub(crate) struct Relay<H> {
    hooks: H,
    handle: SessionHandle,
    config: RelayConfig,
    state: ProtocolState,
    client_buf: BytesMut,
    upstream_buf: BytesMut,
    to_upstream: OutQueue,
    to_client: OutQueue,
    /// ReadyForQuery messages expected / seen from the upstream.
    ready_expected: u64,
    ready_seen: u64,
    deferred: VecDeque<Deferred>,
    /// Whether anything of the current extended batch went upstream.
    batch_forwarded: bool,
    /// A refusal inside a batch partly upstream, waiting for the server's
    /// error on the Execute sent in its place (see `refusals`).
    injected: Option<Injected>,
    /// Syncs sent since the last Execute/Query: if that statement turns out
    /// to be a COPY FROM STDIN, the server ignores them.
    syncs_since_execute: u64,
    upstream_sent_fatal: bool,
    client_terminated: bool,
    scratch: BytesMut,
    /// Where to cancel a running statement when the session ends abruptly.
    upstream_cancel: Option<UpstreamCancel>,
    /// Conditions upstream output waits for (see [`BackendHold`]), oldest
    /// first; while any is pending the upstream is neither read nor
    /// processed.
    holds: VecDeque<BackendHold>,
    /// Holds taken since the session started; those no longer in `holds`
    /// have resolved.
    holds_taken: u64,
    /// The client sent something and nothing has been read from the upstream
    /// since: the next upstream read is capped at [`FIRST_READ`], so that the
    /// first rows of a large result reach the client without waiting for a
    /// whole buffer of rows to be masked.
    client_waiting: bool,
}

impl<H: SessionHooks> Relay<H> {
    pub(crate) fn new(
        hooks: H,
        handle: SessionHandle,
        config: RelayConfig,
        status: TransactionStatus,
        client_leftover: BytesMut,
        upstream_leftover: BytesMut,
        upstream_cancel: Option<UpstreamCancel>,
    ) -> Self {
        let mut client_buf = BytesMut::with_capacity(config.buffer_size);
        client_buf.extend_from_slice(&client_leftover);
        let mut upstream_buf = BytesMut::with_capacity(config.buffer_size);
        upstream_buf.extend_from_slice(&upstream_leftover);
        Self {
            hooks,
            handle,
            config,
            state: ProtocolState {
                transaction: status,
                ..ProtocolState::default()
            },
            client_buf,
            upstream_buf,
            to_upstream: OutQueue::default(),
            to_client: OutQueue::default(),
            ready_expected: 0,
            ready_seen: 0,
            deferred: VecDeque::new(),
            batch_forwarded: false,
            injected: None,
            syncs_since_execute: 0,
            upstream_sent_fatal: false,
            client_terminated: false,
            scratch: BytesMut::new(),
            upstream_cancel,
            holds: VecDeque::new(),
            holds_taken: 0,
            client_waiting: false,
        }
    }

    /// Relays until either side ends or the session is terminated, then
    /// closes both sides and tells the hooks how it ended.
    pub(crate) async fn run(mut self, client: PgStream, upstream: PgStream) -> SessionEnd {
        let (mut client_r, mut client_w) = tokio::io::split(client);
        let (mut upstream_r, mut upstream_w) = tokio::io::split(upstream);
        let mut terminate_rx = self.handle.subscribe();

        // A termination requested before the relay started (listener
        // shutdown racing the handshake) was marked seen by `subscribe`.
        let early = terminate_rx.borrow_and_update().clone();
        let mut stop = early.map(Stop::Terminated);
        // Messages that arrived together with the handshake.
        if stop.is_none() && !self.client_buf.is_empty() {
            stop = self.process_client().err();
        }
        if stop.is_none() && !self.upstream_buf.is_empty() && self.holds.is_empty() {
            stop = self.process_upstream().err();
        }

        let stop = match stop {
            Some(stop) => stop,
            None => loop {
                if self.client_terminated && self.to_upstream.is_drained() {
                    break Stop::ClientTerminated;
                }
                let read_client = !self.client_terminated
                    && self.to_upstream.is_drained()
                    && self.to_client.bytes < self.config.buffer_size
                    && self.deferred.len() < MAX_DEFERRED
                    && self.holds.len() < MAX_DEFERRED;
                let read_upstream = self.to_client.is_drained() && self.holds.is_empty();
                let upstream_read_cap = if self.client_waiting {
                    FIRST_READ
                } else {
                    usize::MAX
                };
                if read_client && let Err(e) = prepare_read(&mut self.client_buf, &self.config) {
                    break Stop::ClientProtocol(e);
                }
                if read_upstream && let Err(e) = prepare_read(&mut self.upstream_buf, &self.config)
                {
                    break Stop::UpstreamProtocol(e);
                }
                let mut upstream_room = (&mut self.upstream_buf).limit(upstream_read_cap);

                let event = tokio::select! {
                    biased;
                    changed = terminate_rx.changed() => match changed {
                        Ok(()) => match terminate_rx.borrow_and_update().clone() {
                            Some(err) => Event::Terminate(err),
                            None => continue,
                        },
                        // The handle (and its sender) lives as long as this
                        // relay, so this cannot happen; treat it as a request.
                        Err(_) => Event::Terminate(PgError::fatal(sqlstate::ADMIN_SHUTDOWN, "session ended")),
                    },
                    r = next_hold(&mut self.holds), if !self.holds.is_empty() => Event::HoldResolved(r),
                    r = drive(&mut client_w, &mut self.to_client), if !self.to_client.is_drained() => Event::ClientWritten(r),
                    r = drive(&mut upstream_w, &mut self.to_upstream), if !self.to_upstream.is_drained() => Event::UpstreamWritten(r),
                    r = upstream_r.read_buf(&mut upstream_room), if read_upstream => Event::UpstreamRead(r),
                    r = client_r.read_buf(&mut self.client_buf), if read_client => Event::ClientRead(r),
                };

                let outcome = match event {
                    Event::Terminate(err) => Err(Stop::Terminated(err)),
                    Event::HoldResolved(Ok(())) => {
                        self.holds.pop_front();
                        // Refusals that waited for their audit event.
                        self.emit_due();
                        // Complete frames cannot wait in the buffer (each
                        // read processes them all), but a hold taken while
                        // the handshake's leftovers were unprocessed can.
                        if self.holds.is_empty()
                            && Frame::parse(&self.upstream_buf, self.config.limits.max_message)
                                .ok()
                                .flatten()
                                .is_some()
                        {
                            self.process_upstream()
                        } else {
                            Ok(())
                        }
                    }
                    Event::HoldResolved(Err(err)) => Err(Stop::Terminated(err)),
                    Event::ClientWritten(r) => r.map_err(Stop::ClientIo),
                    Event::UpstreamWritten(r) => r.map_err(|e| Stop::UpstreamLost(e.to_string())),
                    Event::ClientRead(Ok(0)) => Err(Stop::ClientClosed),
                    Event::ClientRead(Ok(n)) => {
                        self.client_waiting = true;
                        self.handle.count_from_client(n);
                        self.process_client()
                    }
                    Event::ClientRead(Err(e)) => Err(Stop::ClientIo(e)),
                    Event::UpstreamRead(Ok(0)) => Err(Stop::UpstreamLost(
                        "the upstream closed the connection".into(),
                    )),
                    Event::UpstreamRead(Ok(n)) => {
                        self.client_waiting = false;
                        self.handle.count_from_upstream(n);
                        self.process_upstream()
                    }
                    Event::UpstreamRead(Err(e)) => Err(Stop::UpstreamLost(e.to_string())),
                };
                if let Err(stop) = outcome {
                    break stop;
                }
                self.record_memory();
            },
        };

        let end = self.shutdown(stop, &mut client_w, &mut upstream_w).await;
        self.hooks.on_end(&end);
        end
    }

    fn record_memory(&self) {
        let held = self.client_buf.capacity()
            + self.upstream_buf.capacity()
            + self.to_client.bytes
            + self.to_upstream.bytes;
        self.handle.record_high_water(held);
    }
}

/// The oldest pending hold; never resolves when there is none (the caller
/// only polls it when there is one). Cancel-safe: the hold stays queued.
async fn next_hold(holds: &mut VecDeque<BackendHold>) -> Result<(), PgError> {
    match holds.front_mut() {
        Some(hold) => hold.await,
        None => std::future::pending().await,
    }
}
