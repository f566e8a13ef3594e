//! The one shape every API error takes: a status, a stable code from
//! [`periscope_api::codes`], a message and a hint. The gateway's own error
//! types (the store's, authentication's, the grant workflow's) say what went
//! wrong; this is the only place that decides which HTTP status that is.

use periscope_api::codes;
use periscope_store::StoreError;

use crate::gateway::ConnectError;
use crate::grants::GrantError;
use crate::identity::AuthFailure;
use crate::sso::Refusal;

/// An operation refused or failed, with what the API answers: a status, a
/// stable code from [`periscope_api::codes`], a message and a hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened, in one sentence.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Failure {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// 400: malformed or invalid input.
    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, codes::BAD_REQUEST, message)
    }

    /// 401: no valid credentials.
    pub fn unauthorized(message: impl Into<String>) -> Failure {
        Failure::new(401, codes::UNAUTHORIZED, message)
    }

    /// 403: the policy refuses.
    pub fn forbidden(message: impl Into<String>) -> Failure {
        Failure::new(403, codes::FORBIDDEN, message)
    }

    /// 404: no such object (or not visible to the caller).
    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(404, codes::NOT_FOUND, message)
    }

    /// 409: exists already, or changed meanwhile.
    pub fn conflict(message: impl Into<String>) -> Failure {
        Failure::new(409, codes::CONFLICT, message)
    }

    /// 409: the object's state does not allow the action.
    pub fn invalid_state(message: impl Into<String>) -> Failure {
        Failure::new(409, codes::INVALID_STATE, message)
    }

    /// 422: a reload was refused; the message locates the problem.
    pub fn config_invalid(message: impl Into<String>) -> Failure {
        Failure::new(422, codes::CONFIG_INVALID, message)
    }

    /// 503: a dependency is down.
    pub fn unavailable(message: impl Into<String>) -> Failure {
        Failure::new(503, codes::UNAVAILABLE, message)
    }

    /// 500: a bug.
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(500, codes::INTERNAL, message)
    }

    /// The error for a method or route that does not exist.
    pub fn from_status(status: u16, message: impl Into<String>) -> Failure {
        let code = match status {
            400 | 411 | 413 | 415 | 422 => codes::BAD_REQUEST,
            401 => codes::UNAUTHORIZED,
            403 => codes::FORBIDDEN,
            404 => codes::NOT_FOUND,
            405 => codes::BAD_REQUEST,
            409 => codes::CONFLICT,
            503 => codes::UNAVAILABLE,
            _ => codes::INTERNAL,
        };
        let status = match status {
            411 | 415 | 422 => 400,
            s => s,
        };
        Failure::new(status, code, message)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match &e {
            StoreError::NotFound { .. } => Failure::not_found(e.to_string()),
            StoreError::AlreadyExists { .. } => Failure::conflict(e.to_string()),
            StoreError::InvalidState { .. } => Failure::invalid_state(e.to_string()),
            StoreError::Conflict { .. } => Failure::conflict(e.to_string()),
            StoreError::Invalid(_) => Failure::bad_request(e.to_string()),
            StoreError::Backend(_) | StoreError::Migrate(_) | StoreError::WriterClosed => {
                tracing::error!(error = %e, "store unavailable");
                Failure::unavailable(format!("the store is unavailable: {e}"))
                    .with_hint("retry in a moment; the gateway log has details")
            }
            StoreError::Audit(_) | StoreError::Corrupt { .. } => {
                tracing::error!(error = %e, "store refused or returned unreadable data");
                Failure::internal(e.to_string())
            }
        }
    }
}

impl From<AuthFailure> for Failure {
    fn from(e: AuthFailure) -> Failure {
        match e {
            AuthFailure::Unavailable(store) => Failure::from(store),
            AuthFailure::Missing | AuthFailure::Malformed => Failure::unauthorized(e.to_string())
                .with_hint(
                    "log in with `periscope login --url URL --token TOKEN`, or set PERISCOPE_TOKEN",
                ),
            other => Failure::unauthorized(other.to_string()),
        }
    }
}

impl From<GrantError> for Failure {
    fn from(e: GrantError) -> Failure {
        let hint = e.hint().map(str::to_string);
        let failure = match e {
            GrantError::Invalid { message, .. } => Failure::bad_request(message),
            GrantError::NotFound { message, .. } => Failure::not_found(message),
            GrantError::Forbidden { message, .. } => Failure::forbidden(message),
            GrantError::Conflict(message) => Failure::conflict(message),
            GrantError::InvalidState(message) => Failure::invalid_state(message),
            GrantError::Store(store) => return Failure::from(store),
        };
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

impl From<crate::sessions::EndSessionError> for Failure {
    fn from(e: crate::sessions::EndSessionError) -> Failure {
        use crate::sessions::EndSessionError;
        match e {
            EndSessionError::Unknown(_) => Failure::not_found(e.to_string())
                .with_hint("`periscope admin sessions` lists the live sessions of this gateway"),
            EndSessionError::Starting(_) => Failure::conflict(e.to_string()),
            EndSessionError::Store(store) => Failure::from(store),
        }
    }
}

impl From<ConnectError> for Failure {
    fn from(e: ConnectError) -> Failure {
        match e {
            ConnectError::Refused(message) => Failure::forbidden(message)
                .with_hint("`periscope policy explain` shows your access"),
            ConnectError::Store(store) => Failure::from(store),
        }
    }
}

impl Failure {
    /// A refused sign-in: 400 for a broken or replayed flow, 401 for an ID
    /// token that failed a check, 403 for a person the rules refuse, 503 for
    /// a provider that cannot be reached or used. The message starts with
    /// the refusal's stable reason.
    pub fn from_refusal(refusal: &Refusal) -> Failure {
        let message = format!("single sign-on refused ({}): {refusal}", refusal.code());
        match refusal {
            Refusal::Store(_) => {
                Failure::unavailable(format!("single sign-on is unavailable: {refusal}"))
                    .with_hint("retry in a moment; the gateway log has details")
            }
            Refusal::NotConfigured { .. } => Failure::not_found(message)
                .with_hint("`GET /v1/sso/providers` lists the providers of this gateway"),
            Refusal::Unreachable { .. } => Failure::unavailable(message),
            Refusal::Provider { .. } => Failure::unavailable(message)
                .with_hint("an administrator must fix the provider's configuration"),
            Refusal::Flow { .. } => Failure::bad_request(message),
            Refusal::Token { .. } => Failure::unauthorized(message)
                .with_hint("the gateway log names the check; tell an administrator"),
            Refusal::Denied { .. } => Failure::forbidden(message),
        }
    }
}
