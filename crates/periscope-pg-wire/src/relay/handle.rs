//! A live session's handle: its id, its counters, and the way to end it from
//! outside (grant expiry, revocation, listener shutdown).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::watch;

use crate::error::{PgError, Severity, sqlstate};

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

    pub(super) fn subscribe(&self) -> watch::Receiver<Option<PgError>> {
        self.inner.terminate.subscribe()
    }

    pub(super) fn count_from_client(&self, bytes: usize) {
        self.inner
            .stats
            .bytes_from_client
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn count_from_upstream(&self, bytes: usize) {
        self.inner
            .stats
            .bytes_from_upstream
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(super) fn record_high_water(&self, bytes: usize) {
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
