//! The shutdown signal every task of the gateway waits on.
//!
//! A leaf module: the API, the protocol listeners and the background jobs
//! all hold one, and none of them needs to know who starts or stops the
//! gateway.

use tokio::sync::watch;

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
