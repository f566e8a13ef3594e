//! Names of the actions Periscope records, in one place.
//!
//! An action is a dotted lowercase name: the part before the first dot says which
//! subsystem acted, the rest what happened. These constants keep the writers (gateway,
//! shield, CLI) and the readers (queries, reports, alerts) spelling them the same way.
//!
//! Writers take an [`Action`], which only this module can make: an action the gateway
//! records is therefore always one listed here, in [`ALL`], and documented in
//! `docs/audit.md` (a test checks both). The log itself accepts any non-empty name
//! without whitespace ([`crate::EventDraft::new`] takes a string), so a newer gateway
//! can record actions an older verifier has never heard of: the chain proves
//! integrity, not vocabulary.

use std::fmt;

/// The name of an action the gateway records. Made only by the constants of this
/// module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Action(&'static str);

impl Action {
    /// The dotted name, as stored in events.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl From<Action> for String {
    fn from(action: Action) -> String {
        action.0.to_string()
    }
}

impl PartialEq<str> for Action {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Action {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Action> for str {
    fn eq(&self, other: &Action) -> bool {
        self == other.0
    }
}

impl PartialEq<Action> for String {
    fn eq(&self, other: &Action) -> bool {
        self == other.0
    }
}

/// Declares each action once: its constant, its documentation, and its entry in
/// [`ALL`].
macro_rules! actions {
    ($($(#[doc = $doc:literal])+ $name:ident = $value:literal;)+) => {
        $(
            $(#[doc = $doc])+
            pub const $name: Action = Action($value);
        )+

        /// Every action above, for documentation, completion and tests.
        pub const ALL: &[Action] = &[$($name),+];
    };
}

actions! {
    /// An identity authenticated (token or session secret on a proxy).
    AUTH_LOGIN = "auth.login";
    /// An authentication attempt was refused; `details` says why, never the secret tried.
    AUTH_LOGIN_FAILED = "auth.login_failed";
    /// An identity signed in through single sign-on (OIDC): `details` name the
    /// provider, the subject, the groups seen, the roles they map to and how
    /// (`web`, `cli`, `device`); never a code, token or ID token.
    AUTH_SSO_LOGIN = "auth.sso.login";
    /// A single sign-on was refused; `details.reason` is a stable code
    /// (`wrong_issuer`, `nonce_mismatch`, `domain_not_allowed`, `no_role`...) and
    /// nothing was granted.
    AUTH_SSO_REFUSED = "auth.sso.refused";
    /// A single sign-on created an identity just in time.
    AUTH_SSO_IDENTITY_CREATE = "auth.sso.identity_create";
    /// A single sign-on changed an identity's roles (recomputed from its groups):
    /// `details` hold the roles before and after.
    AUTH_SSO_ROLES = "auth.sso.roles";
    /// A browser session began (web sign-in by SSO or token); `target` is the
    /// session's public id, never its cookie.
    WEB_SESSION_START = "auth.web_session.start";
    /// A browser session ended: sign-out, idle or absolute timeout, or its
    /// identity was disabled.
    WEB_SESSION_END = "auth.web_session.end";
    /// An API token was used; `target` names the token by id, never by value.
    TOKEN_USE = "token.use";
    /// An API token was issued.
    TOKEN_CREATE = "token.create";
    /// An API token was revoked.
    TOKEN_REVOKE = "token.revoke";

    /// A grant was requested (shields to lift, duration, reason).
    REQUEST_CREATE = "request.create";
    /// An approver approved a request.
    REQUEST_APPROVE = "request.approve";
    /// An approver denied a request.
    REQUEST_DENY = "request.deny";
    /// The requester withdrew a request before a decision.
    REQUEST_CANCEL = "request.cancel";
    /// A pending request expired undecided.
    REQUEST_EXPIRE = "request.expire";

    /// A grant became active and its shields were lifted.
    GRANT_START = "grant.start";
    /// A grant reached its expiry and its shields came back.
    GRANT_EXPIRE = "grant.expire";
    /// A grant was revoked before its expiry.
    GRANT_REVOKE = "grant.revoke";
    /// A break-glass role lifted a secret shield; recorded loudly for review.
    GRANT_BREAK_GLASS = "grant.break_glass";

    /// A client session through the gateway began.
    SESSION_START = "session.start";
    /// A client session ended (normally, or because a grant it depended on ended).
    SESSION_END = "session.end";
    /// A session (or a `periscope connect` secret) was refused by the policy: unknown
    /// or uncovered connection, no role.
    SESSION_REFUSED = "session.refused";
    /// An administrator ended one live session (`target` is the session id;
    /// `details` has its identity, connection and the reason given).
    SESSION_ENDED_BY_ADMIN = "session.ended_by_admin";

    /// A statement ran; `details` holds its text with literals redacted, never a value.
    QUERY = "query";
    /// A statement was refused by a shield or because it could not be analysed.
    QUERY_REFUSED = "query.refused";
    /// The outcome of a statement that ran: rows, duration, masked counts per entity,
    /// the error code if it failed.
    QUERY_RESULT = "query.result";

    /// A command started on an `exec` connection: its arguments masked, the
    /// pattern that allowed it, the grants it relies on.
    EXEC_START = "exec.start";
    /// A command was refused on an `exec` connection: the shield or rule, its
    /// arguments masked.
    EXEC_REFUSED = "exec.refused";
    /// A command ended: why (exited, timeout, output limit, cut, client gone),
    /// exit code or signal, bytes written, masked counts per entity.
    EXEC_END = "exec.end";

    /// A read or follow of a log source started on a `logs` connection: the
    /// source, follow, since, the `--grep` pattern masked, the grants.
    LOGS_START = "logs.start";
    /// A read of a log source ended: why (exited, timeout, output limit, cut,
    /// client gone), bytes read, lines shown, masked counts per entity.
    LOGS_END = "logs.end";

    /// An interactive shell started on a `shell` connection: the grant
    /// lifting `shell`, the window size, the grants; durable before the
    /// shell starts.
    SHELL_START = "shell.start";
    /// A shell was refused on a `shell` connection (no grant lifts `shell`,
    /// or the request was malformed): the shield and the message.
    SHELL_REFUSED = "shell.refused";
    /// A shell ended: why (exited, timeout, idle, cut, client gone), exit
    /// code or signal, bytes of output, masked counts per entity; never a
    /// keystroke or an output's text.
    SHELL_END = "shell.end";
    /// A session's recording was closed and its SHA-256 sealed into the chain
    /// (`details`: recording id, session, file, sha256, bytes, whether it was
    /// truncated or the recorder fell behind), so `audit verify` proves the
    /// file untouched.
    RECORDING_SEALED = "recording.sealed";
    /// A sealed recording was deleted by the retention sweep (or could not
    /// be kept); verification no longer expects its file.
    RECORDING_EXPIRED = "recording.expired";
    /// An AI agent called a tool of the MCP server as an identity: the tool,
    /// its status (`completed`, `pending_approval`, `refused`, `failed`),
    /// `via = "mcp"` and the client's declared name; never an argument's value.
    MCP_CALL = "mcp.call";
    /// A person answered an MCP client's OAuth authorization request in
    /// the console: the client's name, its redirect URI and `allowed` or
    /// `denied`. An allowed one is followed by the `token.create` of the
    /// client's token (`via = "oauth"`).
    OAUTH_CONSENT = "oauth.consent";

    /// The gateway loaded its configuration at start.
    CONFIG_LOAD = "config.load";
    /// The configuration was reloaded while running.
    CONFIG_RELOAD = "config.reload";

    /// An administrator added an identity.
    ADMIN_USER_ADD = "admin.user_add";
    /// An administrator removed an identity.
    ADMIN_USER_REMOVE = "admin.user_remove";
    /// An administrator changed an identity's roles.
    ADMIN_USER_ROLES = "admin.user_roles";
    /// An administrator disabled an identity.
    ADMIN_USER_DISABLE = "admin.user_disable";
    /// An administrator re-enabled an identity.
    ADMIN_USER_ENABLE = "admin.user_enable";

    /// Sensitive data discovery ran on a connection (`periscope discover`,
    /// or the gateway's background profile as `periscope`): schemas,
    /// columns and rows sampled, fields proposed per entity; never a value.
    DISCOVERY_RUN = "discovery.run";
    /// A `periscope discover` call was refused: the caller is not an
    /// administrator, or the connection is unknown.
    DISCOVERY_REFUSED = "discovery.refused";
    /// Discovered tags were stored (`periscope discover --apply`, or a
    /// background profile's new findings as `periscope`): the new version
    /// and the tags it added; masking uses them at once.
    DISCOVERY_APPLY = "discovery.apply";
    /// An administrator overrode discovery for some columns
    /// (`periscope discover --dismiss`): their discovered tags are removed
    /// and later profiles leave them alone.
    DISCOVERY_DISMISS = "discovery.dismiss";
    /// Results kept showing detected values in an untagged column
    /// (run-time learning): the column, the entity and counts, and whether
    /// `auto_tag` tags it; never a value.
    DISCOVERY_SUSPECTED = "discovery.suspected";

    /// The gateway started with a test clock that the API can move (never in
    /// production).
    CLOCK_TEST_MODE = "clock.test_mode";
    /// The test clock was moved forward.
    CLOCK_ADVANCE = "clock.advance";

    /// The audit log was started (first event of a new deployment).
    AUDIT_INIT = "audit.init";
    /// The audit signing key changed; `details` names the old and new key ids, so a
    /// verifier can tell which keys it needs.
    AUDIT_KEY_ROTATE = "audit.key_rotate";
}

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
    fn every_action_is_conventional_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for action in ALL {
            assert!(is_conventional(action.as_str()), "{action}");
            assert!(seen.insert(action.as_str()), "duplicate {action}");
        }
        for odd in ["", "Auth.login", "auth..login", ".x", "x.", "auth login"] {
            assert!(!is_conventional(odd), "{odd:?}");
        }
    }

    #[test]
    fn every_action_is_documented_for_auditors() {
        let doc = include_str!("../../../docs/audit.md");
        let missing: Vec<&str> = ALL
            .iter()
            .map(|a| a.as_str())
            .filter(|name| !doc.contains(&format!("`{name}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/audit.md does not list these actions: {missing:?}"
        );
    }
}
