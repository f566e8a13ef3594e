//! How the shield stage's protocol-neutral answers look on PostgreSQL's
//! wire: a refusal becomes an ErrorResponse with its SQLSTATE, a failed
//! audit hold or a cut session a FATAL.

use std::sync::Arc;

use periscope_pg_wire::hooks::BackendHold;
use periscope_pg_wire::{PgError, SessionHandle, sqlstate};
use periscope_shield::grants::{CutNotice, SessionCut};
use periscope_shield::record::AuditHold;
use periscope_shield::statement::{Refusal, RefusalKind};

/// The ErrorResponse of a refused statement: 42501 for a permission (a
/// shield or a gateway rule), 54001 for SQL too complex to analyse
/// (PostgreSQL's own code for a limit). The session stays usable.
pub fn refusal_error(refusal: &Refusal) -> PgError {
    let code = match refusal.kind {
        RefusalKind::Forbidden => sqlstate::INSUFFICIENT_PRIVILEGE,
        RefusalKind::TooComplex => sqlstate::STATEMENT_TOO_COMPLEX,
    };
    let mut error = PgError::error(code, refusal.message.clone());
    if let Some(detail) = &refusal.detail {
        error = error.with_detail(detail.clone());
    }
    if let Some(hint) = &refusal.hint {
        error = error.with_hint(hint.clone());
    }
    error
}

/// The relay's hold for an audit hold: a failure ends the session with a
/// FATAL (XX000) that says what was not shown.
pub(crate) fn backend_hold(hold: AuditHold) -> BackendHold {
    Box::pin(async move {
        hold.await
            .map_err(|failure| PgError::fatal(sqlstate::INTERNAL_ERROR, failure.0))
    })
}

/// Ends a PostgreSQL session from outside: the client gets the notice as a
/// FATAL (57P01 admin_shutdown), then both connections close.
#[derive(Debug, Clone)]
pub struct PgSessionCut(pub SessionHandle);

impl SessionCut for PgSessionCut {
    fn cut(&self, notice: CutNotice) {
        let mut error = PgError::fatal(sqlstate::ADMIN_SHUTDOWN, notice.message);
        if let Some(detail) = notice.detail {
            error = error.with_detail(detail);
        }
        if let Some(hint) = notice.hint {
            error = error.with_hint(hint);
        }
        self.0.terminate_with(error);
    }

    fn session_id(&self) -> u64 {
        self.0.id()
    }
}

impl PgSessionCut {
    /// The cut of the session behind `handle`, shared with a grant watcher.
    pub fn shared(handle: &SessionHandle) -> Arc<dyn SessionCut> {
        Arc::new(PgSessionCut(handle.clone()))
    }
}
