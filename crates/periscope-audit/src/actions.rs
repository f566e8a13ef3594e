//! Names of the actions Periscope records.
//!
//! An action is a dotted lowercase name: the part before the first dot says which
//! subsystem acted, the rest what happened. These constants keep the writers (gateway,
//! CLI) and the readers (queries, reports, alerts) spelling them the same way. The log
//! itself accepts any non-empty name without whitespace, so a newer gateway can record
//! actions an older verifier has never heard of: the chain proves integrity, not
//! vocabulary.

/// An identity authenticated to a data plane (token or session secret).
pub const AUTH_LOGIN: &str = "auth.login";
/// An authentication attempt was refused; `details` says why, never the secret tried.
pub const AUTH_LOGIN_FAILED: &str = "auth.login_failed";
/// An identity signed in through single sign-on (OIDC): `details` name the
/// provider, the subject, the groups seen, the roles they map to and how
/// (`web`, `cli`, `device`); never a code, token or ID token.
pub const AUTH_SSO_LOGIN: &str = "auth.sso.login";
/// A single sign-on was refused; `details.reason` is a stable code
/// (`wrong_issuer`, `nonce_mismatch`, `domain_not_allowed`, `no_role`...) and
/// nothing was granted.
pub const AUTH_SSO_REFUSED: &str = "auth.sso.refused";
/// A single sign-on created an identity just in time.
pub const AUTH_SSO_IDENTITY_CREATE: &str = "auth.sso.identity_create";
/// A single sign-on changed an identity's roles (recomputed from its groups):
/// `details` hold the roles before and after.
pub const AUTH_SSO_ROLES: &str = "auth.sso.roles";
/// A browser session began (web sign-in by SSO or token); `target` is the
/// session's public id, never its cookie.
pub const WEB_SESSION_START: &str = "auth.web_session.start";
/// A browser session ended: sign-out, idle or absolute timeout, or its
/// identity was disabled.
pub const WEB_SESSION_END: &str = "auth.web_session.end";
/// An API token was used; `target` names the token by id, never by value.
pub const TOKEN_USE: &str = "token.use";
/// An API token was issued.
pub const TOKEN_CREATE: &str = "token.create";
/// An API token was revoked.
pub const TOKEN_REVOKE: &str = "token.revoke";

/// A grant was requested (shields to lift, duration, reason).
pub const REQUEST_CREATE: &str = "request.create";
/// An approver approved a request.
pub const REQUEST_APPROVE: &str = "request.approve";
/// An approver denied a request.
pub const REQUEST_DENY: &str = "request.deny";
/// The requester withdrew a request before a decision.
pub const REQUEST_CANCEL: &str = "request.cancel";

/// A grant became active and its shields were lifted.
pub const GRANT_START: &str = "grant.start";
/// A grant reached its expiry and its shields came back.
pub const GRANT_EXPIRE: &str = "grant.expire";
/// A grant was revoked before its expiry.
pub const GRANT_REVOKE: &str = "grant.revoke";
/// A break-glass role lifted a secret shield; recorded loudly for review.
pub const GRANT_BREAK_GLASS: &str = "grant.break_glass";

/// A client session through the gateway began.
pub const SESSION_START: &str = "session.start";
/// A client session ended (normally, or because a grant it depended on ended).
pub const SESSION_END: &str = "session.end";

/// A statement ran; `details` holds its text with literals redacted, row and masked
/// counts, never a value.
pub const QUERY: &str = "query";
/// A statement was refused by a shield or because it could not be analysed.
pub const QUERY_REFUSED: &str = "query.refused";
/// The outcome of a statement that ran: rows, duration, masked counts per entity,
/// the error code if it failed.
pub const QUERY_RESULT: &str = "query.result";

/// The gateway loaded its configuration at start.
pub const CONFIG_LOAD: &str = "config.load";
/// The configuration was reloaded while running.
pub const CONFIG_RELOAD: &str = "config.reload";

/// An administrator added an identity.
pub const ADMIN_USER_ADD: &str = "admin.user_add";
/// An administrator removed an identity.
pub const ADMIN_USER_REMOVE: &str = "admin.user_remove";

/// The audit log was started (first event of a new deployment).
pub const AUDIT_INIT: &str = "audit.init";
/// The audit signing key changed; `details` names the old and new key ids, so a
/// verifier can tell which keys it needs.
pub const AUDIT_KEY_ROTATE: &str = "audit.key_rotate";

/// Every constant above, for documentation, completion and tests.
pub const ALL: &[&str] = &[
    AUTH_LOGIN,
    AUTH_LOGIN_FAILED,
    AUTH_SSO_LOGIN,
    AUTH_SSO_REFUSED,
    AUTH_SSO_IDENTITY_CREATE,
    AUTH_SSO_ROLES,
    WEB_SESSION_START,
    WEB_SESSION_END,
    TOKEN_USE,
    TOKEN_CREATE,
    TOKEN_REVOKE,
    REQUEST_CREATE,
    REQUEST_APPROVE,
    REQUEST_DENY,
    REQUEST_CANCEL,
    GRANT_START,
    GRANT_EXPIRE,
    GRANT_REVOKE,
    GRANT_BREAK_GLASS,
    SESSION_START,
    SESSION_END,
    QUERY,
    QUERY_REFUSED,
    QUERY_RESULT,
    CONFIG_LOAD,
    CONFIG_RELOAD,
    ADMIN_USER_ADD,
    ADMIN_USER_REMOVE,
    AUDIT_INIT,
    AUDIT_KEY_ROTATE,
];

/// Whether `name` follows the house style (lowercase ASCII words of `a-z0-9_`, joined
/// by single dots). Advisory: writers may check their own names with it, the log does
/// not enforce it.
pub fn is_conventional(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constant_is_conventional_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL {
            assert!(is_conventional(name), "{name}");
            assert!(seen.insert(name), "duplicate {name}");
        }
        for odd in ["", "Auth.login", "auth..login", ".x", "x.", "auth login"] {
            assert!(!is_conventional(odd), "{odd:?}");
        }
    }
}
