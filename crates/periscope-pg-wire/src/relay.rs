//! The session relay: both directions of an established session, in one task.
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
//! receive buffer as one [`Bytes`] chunk (a reference-counted view of the
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

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::backend::{self, BackendMessage, TransactionStatus, tag as btag};
use crate::cancel::{UpstreamCancel, send_cancel};
use crate::codec::{Frame, Limits, frame_len};
use crate::error::{PgError, ProtocolError, Severity, sqlstate};
use crate::frontend::{self, tag as ftag};
use crate::hooks::{
    BackendAction, BackendHold, CopyState, FrontendAction, ProtocolState, SessionEnd, SessionHooks,
};
use crate::stream::PgStream;

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

/// Counters of one session, readable while it runs.
#[derive(Debug, Default)]
pub struct SessionStats {
    bytes_from_client: AtomicU64,
    bytes_from_upstream: AtomicU64,
    buffer_high_water: AtomicUsize,
}

impl SessionStats {
    /// Bytes received from the client since the relay started.
    pub fn bytes_from_client(&self) -> u64 {
        self.bytes_from_client.load(Ordering::Relaxed)
    }

    /// Bytes received from the upstream since the relay started.
    pub fn bytes_from_upstream(&self) -> u64 {
        self.bytes_from_upstream.load(Ordering::Relaxed)
    }

    /// The most bytes the relay held at once in its buffers and queues: the
    /// figure that proves memory stays bounded whatever the result size.
    pub fn buffer_high_water(&self) -> usize {
        self.buffer_high_water.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct HandleInner {
    id: u64,
    terminate: watch::Sender<Option<PgError>>,
    stats: SessionStats,
    /// Listener-wide high-water mark, raised alongside the session's.
    global_high_water: Arc<AtomicUsize>,
}

/// Control of one live session, given to the hooks at start and kept by the
/// listener. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    inner: Arc<HandleInner>,
}

impl SessionHandle {
    pub(crate) fn new(id: u64, global_high_water: Arc<AtomicUsize>) -> Self {
        let (terminate, _) = watch::channel(None);
        Self {
            inner: Arc::new(HandleInner {
                id,
                terminate,
                stats: SessionStats::default(),
                global_high_water,
            }),
        }
    }

    /// Listener-unique session number.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Ends the session: the client receives a FATAL ErrorResponse (SQLSTATE
    /// 57P01) with `reason`, then both connections close, within about a
    /// second even if the client does not read. Used on grant expiry or
    /// revocation. Calling it again, or after the end, does nothing more.
    pub fn terminate(&self, reason: impl Into<String>) {
        self.terminate_with(PgError::fatal(sqlstate::ADMIN_SHUTDOWN, reason));
    }

    /// Like [`SessionHandle::terminate`] with a complete error (code, detail,
    /// hint); sent as FATAL whatever its severity.
    pub fn terminate_with(&self, error: PgError) {
        self.inner.terminate.send_if_modified(|slot| {
            if slot.is_some() {
                return false;
            }
            *slot = Some(PgError {
                severity: Severity::Fatal,
                ..error
            });
            true
        });
    }

    /// Whether termination was requested.
    pub fn is_terminating(&self) -> bool {
        self.inner.terminate.borrow().is_some()
    }

    /// Live counters of the session.
    pub fn stats(&self) -> &SessionStats {
        &self.inner.stats
    }

    fn subscribe(&self) -> watch::Receiver<Option<PgError>> {
        self.inner.terminate.subscribe()
    }

    fn record_high_water(&self, bytes: usize) {
        let previous = self
            .inner
            .stats
            .buffer_high_water
            .fetch_max(bytes, Ordering::Relaxed);
        if bytes > previous {
            self.inner
                .global_high_water
                .fetch_max(bytes, Ordering::Relaxed);
        }
    }
}

/// Bytes waiting to be written to one peer.
#[derive(Debug, Default)]
struct OutQueue {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    /// Written but not yet flushed (TLS may hold the last record).
    dirty: bool,
}

impl OutQueue {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.bytes += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Idle: nothing queued and nothing left unflushed.
    fn is_drained(&self) -> bool {
        self.chunks.is_empty() && !self.dirty
    }

    fn consume(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            if n >= front.len() {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

/// Writes as much of `queue` as the peer takes in one vectored write.
/// Cancel-safe: if the future is dropped, nothing was written.
async fn write_some<W: AsyncWrite + Unpin>(w: &mut W, queue: &mut OutQueue) -> std::io::Result<()> {
    let mut slices = [IoSlice::new(&[]); MAX_IOV];
    let mut n = 0;
    for (slot, chunk) in slices.iter_mut().zip(queue.chunks.iter()) {
        *slot = IoSlice::new(chunk);
        n += 1;
    }
    let written = w.write_vectored(&slices[..n]).await?;
    if written == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    queue.consume(written);
    queue.dirty = true;
    Ok(())
}

/// One step of draining `queue`: a write while bytes are queued, then a flush
/// (TLS may hold the last record back until flushed). Cancel-safe.
async fn drive<W: AsyncWrite + Unpin>(w: &mut W, queue: &mut OutQueue) -> std::io::Result<()> {
    if queue.is_empty() {
        w.flush().await?;
        queue.dirty = false;
        Ok(())
    } else {
        write_some(w, queue).await
    }
}

/// Where a synthetic response goes relative to the upstream's ReadyForQuery
/// messages, counted from the session start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// Right before ReadyForQuery number `n` (an error inside a batch whose
    /// Sync went upstream).
    Before(u64),
    /// Once ReadyForQuery number `n` has been forwarded (0 = now).
    After(u64),
}

#[derive(Debug)]
struct Deferred {
    anchor: Anchor,
    error: PgError,
    /// Also send ReadyForQuery (when no upstream one answers this request).
    ready: bool,
    /// Holds taken up to this refusal (its own audit event's included): it
    /// is sent only once they have all resolved, so a client never sees a
    /// refusal the audit log does not hold.
    after_holds: u64,
}

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
    /// Current extended batch: whether anything of it went upstream, and the
    /// refusal waiting for its Sync.
    batch_forwarded: bool,
    batch_error: Option<PgError>,
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
            batch_error: None,
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
                        self.emit_due(false);
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
                        self.handle
                            .inner
                            .stats
                            .bytes_from_client
                            .fetch_add(n as u64, Ordering::Relaxed);
                        self.process_client()
                    }
                    Event::ClientRead(Err(e)) => Err(Stop::ClientIo(e)),
                    Event::UpstreamRead(Ok(0)) => Err(Stop::UpstreamLost(
                        "the upstream closed the connection".into(),
                    )),
                    Event::UpstreamRead(Ok(n)) => {
                        self.client_waiting = false;
                        self.handle
                            .inner
                            .stats
                            .bytes_from_upstream
                            .fetch_add(n as u64, Ordering::Relaxed);
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

    /// Sends what the end requires (a FATAL to the client, Terminate to the
    /// upstream), bounded by [`CLOSE_GRACE`].
    async fn shutdown<C, U>(
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

    /// Queues a synthetic error (and maybe ReadyForQuery) at `anchor`, and
    /// emits whatever is due.
    fn defer(&mut self, anchor: Anchor, error: PgError, ready: bool) {
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
    fn emit_due(&mut self, before_next_ready: bool) {
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

    fn update_pending(&mut self) {
        if self.ready_seen > self.ready_expected {
            // A miscount (e.g. an unusual COPY sequence): trust the server.
            self.ready_expected = self.ready_seen;
        }
        self.state.pending_ready = self.ready_expected - self.ready_seen;
    }

    /// Runs every complete client frame through the hook.
    fn process_client(&mut self) -> Result<(), Stop> {
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

    fn refuse(&mut self, run: &mut usize, tag: u8, len: usize, error: PgError) {
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
    fn finish_refused_batch(&mut self, run: &mut usize, len: usize) {
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

    /// Runs every complete upstream frame through the hook.
    fn process_upstream(&mut self) -> Result<(), Stop> {
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
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Stop::UpstreamProtocol(e)),
                },
                _ => {}
            }

            let action = if ready_status.is_some() && self.deferred.front().is_some() {
                // A refusal may be due right before this ReadyForQuery: queue
                // what precedes it, then the synthetic error, then go on.
                flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
                self.emit_due(true);
                match Frame::parse(&self.upstream_buf, max) {
                    Ok(Some(frame)) => self.hooks.on_backend(frame, &self.state),
                    // The same bytes parsed a moment ago.
                    Ok(None) | Err(_) => {
                        return Err(Stop::UpstreamProtocol(ProtocolError::Unexpected {
                            expected: "ReadyForQuery",
                            got: "a frame that vanished".into(),
                        }));
                    }
                }
            } else {
                self.hooks.on_backend(frame, &self.state)
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
                self.update_pending();
                if self.deferred.front().is_some() {
                    flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
                    self.emit_due(false);
                }
            }
        }
        flush_run(&mut self.upstream_buf, &mut self.to_client, &mut run);
        Ok(())
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

/// Queues the forwarded run `buf[..run]` (zero-copy) and resets it.
fn flush_run(buf: &mut BytesMut, queue: &mut OutQueue, run: &mut usize) {
    if *run > 0 {
        queue.push(buf.split_to(*run).freeze());
        *run = 0;
    }
}

/// Takes the frame at `buf[run..run + len]` out of the stream: queues the run
/// before it, drops the frame, and queues `replacement` in its place.
fn cut(
    buf: &mut BytesMut,
    queue: &mut OutQueue,
    run: &mut usize,
    len: usize,
    replacement: Option<Bytes>,
) {
    flush_run(buf, queue, run);
    buf.advance(len);
    if let Some(bytes) = replacement {
        queue.push(bytes);
    }
}

/// Makes room for the next read: at least a buffer's worth, and for a
/// partially received large frame (whose length has been validated), room
/// that grows with what has arrived, at most doubling per read. A declared
/// length so costs memory only as its bytes come in: a peer that announces
/// 64 MiB and sends nothing more holds one buffer, not 64 MiB. Shrinks a
/// buffer that grew for one large message once it is empty again.
fn prepare_read(buf: &mut BytesMut, config: &RelayConfig) -> Result<(), ProtocolError> {
    if buf.is_empty() && buf.capacity() > config.buffer_size * 4 {
        *buf = BytesMut::with_capacity(config.buffer_size);
    }
    let needed = match frame_len(buf, config.limits.max_message)? {
        Some(total) if total > buf.len() => total - buf.len(),
        _ => 0,
    };
    let growth = needed.min(buf.len().max(config.buffer_size));
    let wanted = growth
        .max(config.buffer_size.saturating_sub(buf.len()))
        .max(1024);
    buf.reserve(wanted);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_queue_consumes_across_chunks() {
        let mut q = OutQueue::default();
        q.push(Bytes::from_static(b"abc"));
        q.push(Bytes::from_static(b""));
        q.push(Bytes::from_static(b"defg"));
        assert_eq!(q.bytes, 7);
        q.consume(4);
        assert_eq!(q.chunks.len(), 1);
        assert_eq!(&q.chunks[0][..], b"efg");
        q.consume(3);
        assert!(q.is_empty());
        assert_eq!(q.bytes, 0);
    }

    #[test]
    fn prepare_read_grows_with_a_large_frame_as_it_arrives_and_validates_first() {
        let config = RelayConfig {
            limits: Limits {
                max_message: 1 << 20,
                max_startup: 10_240,
            },
            buffer_size: 4096,
        };
        // A 512 KiB frame announced: one buffer's worth, not the frame.
        let mut buf = BytesMut::from(&[b'D', 0, 0x08, 0, 0][..]);
        prepare_read(&mut buf, &config).unwrap();
        assert!(buf.capacity() < 16 * 1024, "{}", buf.capacity());
        // Its bytes arrive as fast as there is room: the buffer grows with
        // them, never to more than about twice what has arrived.
        let total = 1 + (8 << 16);
        let mut reads = 0;
        while buf.len() < total {
            prepare_read(&mut buf, &config).unwrap();
            let room = (buf.capacity() - buf.len()).min(total - buf.len());
            assert!(
                buf.capacity() <= 2 * buf.len() + 2 * config.buffer_size,
                "capacity {} with {} bytes",
                buf.capacity(),
                buf.len()
            );
            buf.resize(buf.len() + room, 0);
            reads += 1;
        }
        assert!(reads < 40, "{reads} reads for a 512 KiB frame");
        assert!(matches!(Frame::parse(&buf, 1 << 20), Ok(Some(f)) if f.as_bytes().len() == total));
        // A length beyond the limit is refused before anything is reserved.
        let mut hostile = BytesMut::from(&[b'D', 0x7f, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            prepare_read(&mut hostile, &config),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert!(hostile.capacity() < 1 << 20);
    }
}
