//! What can go wrong, in terms a caller can act on.

use std::sync::Arc;

use periscope_audit::DraftError;

/// Why a store operation failed.
///
/// The variants are split by what the caller does next: [`StoreError::NotFound`] and
/// [`StoreError::AlreadyExists`] become 404/409 answers, [`StoreError::InvalidState`]
/// explains a refused transition to the user, [`StoreError::Invalid`] and
/// [`StoreError::Audit`] are the caller's bug or bad input, and the rest mean the
/// database itself failed, so the action must be refused (nothing was committed).
///
/// `Clone`, because one failed group commit must be reported to every submitter
/// that was waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked for (`identity`, `token`, `request`, `grant`).
        kind: &'static str,
        /// Its name or id.
        id: String,
    },
    /// An object with this name or id exists already (unique names, one approval per
    /// approver).
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// What was created (`identity`, `token`, `approval`...).
        kind: &'static str,
        /// Its name or id.
        id: String,
    },
    /// The object is not in a state that allows the change, e.g. approving a request
    /// that another approver denied a moment ago.
    #[error("{kind} {id} is {from}, so it cannot be {to}")]
    InvalidState {
        /// What was changed (`request`, `grant`).
        kind: &'static str,
        /// Its id.
        id: String,
        /// The state it is in.
        from: String,
        /// The state the caller asked for.
        to: String,
    },
    /// Someone else changed the object between the caller's read and its write (two
    /// approvers at the same moment): reload it, apply the policy again, retry.
    #[error("{kind} {id} was changed by someone else meanwhile; reload it and try again")]
    Conflict {
        /// What was changed.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The caller passed something the store refuses to persist (an empty name, a
    /// limit of zero, an unknown URL scheme...).
    #[error("{0}")]
    Invalid(String),
    /// The audit crate refused one of the drafts; nothing was written.
    #[error("audit event refused: {0}")]
    Audit(#[from] DraftError),
    /// A stored value could not be read back (edited by hand, or written by a newer
    /// version): the store names the row instead of guessing.
    #[error("stored {what} is unreadable: {detail}")]
    Corrupt {
        /// Which table and row.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The audit writer has shut down, so nothing more can be appended through it.
    #[error("the audit writer has shut down; the event was not recorded")]
    WriterClosed,
    /// Applying the schema migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
    /// The database failed (connection lost, disk full, lock timeout...). Nothing of
    /// the operation was committed.
    #[error("database error: {0}")]
    Backend(Arc<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        StoreError::Backend(Arc::new(err))
    }
}

/// The audit writer's own SQLite connection (see `sqlite_chain`) fails the same
/// way the pool does, and callers act on it the same way.
impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Backend(Arc::new(err))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Arc::new(err))
    }
}

impl StoreError {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub(crate) fn already_exists(kind: &'static str, id: impl Into<String>) -> Self {
        StoreError::AlreadyExists {
            kind,
            id: id.into(),
        }
    }
}

/// Whether a database error is a unique-constraint violation, the one error the
/// store turns into [`StoreError::AlreadyExists`].
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
