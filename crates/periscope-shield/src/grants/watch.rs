//! The grant watcher of one session, and how it cuts the session.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use periscope_policy::{Allowance, Shield};
use tokio::sync::{broadcast, oneshot};

use super::bus::{EndReason, GrantEnded, GrantEvent};

/// Why a session is being ended from outside, in words any protocol can
/// show: PostgreSQL sends it as a FATAL error (message, detail, hint), a
/// command stream as its closing message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutNotice {
    /// What happened (`grant gr_1 expired: this session relied on it ...`).
    pub message: String,
    /// What it means for the session.
    pub detail: Option<String>,
    /// What to do next (the command that requests the grant again).
    pub hint: Option<String>,
}

/// Ends one live session from outside, whatever its protocol. Calling it
/// again, or after the session ended, does nothing more.
pub trait SessionCut: Send + Sync + 'static {
    /// Ends the session, telling the client why.
    fn cut(&self, notice: CutNotice);

    /// The session's id, for logs.
    fn session_id(&self) -> u64;
}

/// Reads the store when the watcher missed bus events (it lagged): which of
/// the session's grants still hold, and why one ended.
pub trait GrantLookup: Send + Sync + 'static {
    /// The grant ids the identity's current decision on the connection
    /// relies on; `None` when the store cannot say right now.
    fn live_grants(&self) -> Pin<Box<dyn Future<Output = Option<Vec<String>>> + Send + '_>>;

    /// Why `grant_id` ended (revoked by whom, or expired), when the store
    /// knows.
    fn end_reason<'a>(
        &'a self,
        grant_id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<EndReason>> + Send + 'a>>;
}

/// What the watcher knows of its session.
#[derive(Debug, Clone)]
pub struct WatchedSession {
    /// Whose session it is.
    pub identity: String,
    /// The connection it is on.
    pub connection: String,
    /// The grants it started with, and relies on.
    pub grants: Vec<String>,
    /// The decision it runs under (which shields each grant lifted).
    pub allowance: Allowance,
}

/// The notice a session gets when a grant it relies on ends: the grant, why
/// it ended, the shields it lifted, and the command to request it again.
pub fn grant_end_notice(session: &WatchedSession, ended: &GrantEnded) -> CutNotice {
    let why = match &ended.reason {
        EndReason::Expired => "expired".to_string(),
        EndReason::Revoked { by } => format!("was revoked by {by}"),
    };
    let lifted: Vec<&Shield> = session
        .allowance
        .shields()
        .lifted()
        .iter()
        .filter(|(_, l)| l.grant_id == ended.grant_id)
        .map(|(s, _): (&Shield, _)| s)
        .collect();
    let names: Vec<String> = lifted.iter().map(|s| s.to_string()).collect();
    let command = format!(
        "periscope request {}{} --for 30m --reason \"...\"",
        session.connection,
        lifted
            .iter()
            .map(|s| format!(" --lift {}", s.shell_word()))
            .collect::<String>()
    );
    CutNotice {
        message: format!(
            "grant {} {why}: this session relied on it ({}) and was closed",
            ended.grant_id,
            names.join(", ")
        ),
        detail: Some(
            "a session keeps the grants it started with; the shields they lifted are back".into(),
        ),
        hint: Some(format!(
            "to request it again: {command}, then open a new session"
        )),
    }
}

/// Watches the grant bus for the end of a grant `session` relies on and
/// cuts it then; returns when `stop` fires (the session ended) or the bus
/// closes. A watcher that lagged asks `lookup` which grants still hold.
pub async fn watch_grants(
    session: Arc<WatchedSession>,
    cut: Arc<dyn SessionCut>,
    mut bus: broadcast::Receiver<GrantEvent>,
    mut stop: oneshot::Receiver<()>,
    lookup: Arc<dyn GrantLookup>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            event = bus.recv() => match event {
                Ok(GrantEvent::Ended(ended)) if session.grants.contains(&ended.grant_id) => {
                    tracing::info!(session = cut.session_id(), grant = %ended.grant_id, "a grant the session relied on ended: terminating it");
                    cut.cut(grant_end_notice(&session, &ended));
                    return;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Events were missed: ask the store which grants still hold.
                    let Some(live) = lookup.live_grants().await else {
                        continue;
                    };
                    if let Some(gone) = session.grants.iter().find(|g| !live.contains(g)) {
                        // The event itself was missed: the store says
                        // whether it was revoked (and by whom) or expired.
                        let reason = lookup.end_reason(gone).await;
                        let ended = GrantEnded {
                            grant_id: gone.clone(),
                            identity: session.identity.clone(),
                            connection: session.connection.clone(),
                            reason: reason.unwrap_or(EndReason::Expired),
                        };
                        cut.cut(grant_end_notice(&session, &ended));
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
