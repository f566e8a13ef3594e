//! The shutdown signal every task of the gateway waits on, and the work
//! shutdown waits for beyond the sessions ([`Sealing`]: recordings being
//! sealed after their session ended).
//!
//! A leaf module: the API, the protocol listeners and the background jobs
//! all hold one, and none of them needs to know who starts or stops the
//! gateway.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// Fires once when the gateway begins to shut down; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal that fires when `stop` sends `true` (or is dropped).
    pub(crate) fn new(stop: watch::Receiver<bool>) -> Shutdown {
        Shutdown(stop)
    }
}

impl Shutdown {
    /// Resolves when shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which also means "stop".
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// Seals still being written after their session ended (a PostgreSQL
/// session's recording is closed and sealed by a task of its own): shutdown
/// waits for them before it closes the audit writer.
#[derive(Debug, Default)]
pub struct Sealing {
    count: AtomicUsize,
    idle: Notify,
}

/// One seal in progress; dropping it ends it.
#[derive(Debug)]
pub struct SealingGuard(Arc<Sealing>);

impl Sealing {
    /// A seal starts.
    pub fn start(self: &Arc<Self>) -> SealingGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        SealingGuard(Arc::clone(self))
    }

    /// Waits until no seal is in progress.
    pub async fn wait(&self) {
        loop {
            let idle = self.idle.notified();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for SealingGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
