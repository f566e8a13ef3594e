//! Wire types of the Periscope HTTP API.
//!
//! The gateway serves these and the `periscope` CLI consumes them; keeping
//! them in one small crate means the two cannot drift apart, and the internal
//! models (policy, store) can change without changing what clients see.
//! `docs/api.md` documents every route; this crate is its source of truth for
//! field names. Times are RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The one error shape every route returns: `{"error": {"code", "message", "hint"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ApiError,
}

/// What went wrong, for humans (`message`, `hint`) and scripts (`code`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// A stable machine-readable code (see [`codes`]).
    pub code: String,
    /// What happened, in one sentence.
    pub message: String,
    /// What to do about it (often the exact command to run), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The request id, also sent as the `x-request-id` header, to find the
    /// gateway's log lines for this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Stable error codes: scripts match on these, never on messages.
pub mod codes {
    /// The request body or query is malformed or fails validation.
    pub const BAD_REQUEST: &str = "bad_request";
    /// No valid bearer token.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// Authenticated, but the policy refuses this action.
    pub const FORBIDDEN: &str = "forbidden";
    /// The named object does not exist (or is not visible to the caller).
    pub const NOT_FOUND: &str = "not_found";
    /// The object already exists.
    pub const CONFLICT: &str = "conflict";
    /// The object is not in a state that allows this action (e.g. approving a denied request).
    pub const INVALID_STATE: &str = "invalid_state";
    /// A configuration reload was refused; the message names file, line and reason.
    pub const CONFIG_INVALID: &str = "config_invalid";
    /// A dependency (the store) is unavailable; retry later.
    pub const UNAVAILABLE: &str = "unavailable";
    /// A bug or unexpected failure; the request id finds it in the logs.
    pub const INTERNAL: &str = "internal";
}

/// `GET /v1/whoami`: who the bearer token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// Identity name.
    pub identity: String,
    /// Role names held.
    pub roles: Vec<String>,
    /// Whether one of the roles is an admin role.
    pub admin: bool,
    /// Id of the token used for this call.
    pub token_id: String,
    /// When that token expires, if ever.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub token_expires_at: Option<OffsetDateTime>,
}

/// A configured connection as a client may see it (never its credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    /// Connection name, used as `dbname` by PostgreSQL clients.
    pub name: String,
    /// Protocol kind (`postgres`).
    pub kind: String,
    /// Labels from the config.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Whether the caller may open sessions on it now.
    pub may_connect: bool,
}

/// `POST /v1/connect`: ask for a short-lived session secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectRequest {
    /// Connection name.
    pub connection: String,
}

/// A short-lived secret to use as the PostgreSQL password, with ready-to-run commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectResponse {
    /// Connection name.
    pub connection: String,
    /// The user name to connect as (the identity).
    pub user: String,
    /// The secret; shown once, valid until `expires_at`.
    pub secret: String,
    /// Expiry of the secret (sessions opened with it may outlive it).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Host clients should connect to.
    pub host: String,
    /// PostgreSQL listener port.
    pub port: u16,
    /// The exact `psql` command.
    pub psql_command: String,
    /// A `postgresql://` URI for drivers and GUIs.
    pub uri: String,
}

/// `POST /v1/requests`: ask for a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateRequest {
    /// Connection name.
    pub connection: String,
    /// Shields to lift, e.g. `unmask:email`, `write`.
    pub lifts: Vec<String>,
    /// Requested duration, humantime syntax (`30m`, `2h`).
    pub duration: String,
    /// Why: an incident or ticket reference and a sentence.
    pub reason: String,
}

/// Lifecycle of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Approved: a grant was created.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Cancelled by the requester.
    Cancelled,
    /// Not decided in time.
    Expired,
}

/// One approval of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Approver identity.
    pub approver: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A request for a grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Request id (`req_...`).
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// Connection name.
    pub connection: String,
    /// Shields to lift.
    pub lifts: Vec<String>,
    /// Requested duration in seconds.
    pub duration_secs: u64,
    /// The requester's reason.
    pub reason: String,
    /// The role under which it was asked (decides approvals and approvers).
    pub role: String,
    /// Approvals required.
    pub approvals_required: u32,
    /// Roles whose members may approve.
    pub approver_roles: Vec<String>,
    /// Approvals so far.
    pub approvals: Vec<Approval>,
    /// Whether it lifts a secret shield through a break-glass role.
    pub break_glass: bool,
    /// Current status.
    pub status: RequestStatus,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was approved, denied, cancelled or expired.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided (the last approver or the denier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The denial reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_reason: Option<String>,
    /// The grant created on approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// `POST /v1/requests/{id}/deny` (and optional body for approve/revoke/cancel).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionBody {
    /// Why (mandatory for deny).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/requests/{id}/approve` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveResponse {
    /// The request after the approval.
    pub request: Request,
    /// The grant, when this approval completed the count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<Grant>,
}

/// Lifecycle of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// In force now.
    Active,
    /// Reached its expiry.
    Expired,
    /// Ended early by someone.
    Revoked,
}

/// A temporary scope: shields lifted for one identity on one connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Grant id (`gr_...`).
    pub id: String,
    /// The request it came from.
    pub request_id: String,
    /// Who it is for.
    pub identity: String,
    /// Connection name.
    pub connection: String,
    /// Shields lifted.
    pub lifts: Vec<String>,
    /// The requester's reason.
    pub reason: String,
    /// Who approved.
    pub approvers: Vec<String>,
    /// Whether a secret shield is lifted through a break-glass role.
    pub break_glass: bool,
    /// Start (approval time).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Current status.
    pub status: GrantStatus,
    /// When it was revoked, if it was.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Who revoked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<String>,
}

/// `POST /v1/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateIdentity {
    /// Identity name (`[a-z0-9][a-z0-9._-]*`).
    pub name: String,
    /// Role names from the config.
    pub roles: Vec<String>,
}

/// `PATCH /v1/admin/users/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateIdentity {
    /// New role list, if changing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Disable or re-enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// An identity as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Name.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Disabled identities cannot authenticate.
    pub disabled: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/admin/users/{name}/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateToken {
    /// What the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Lifetime, humantime syntax (`90d`); none = no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// A newly created token: the only time the secret is ever shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    /// The token to give to the user.
    pub token: String,
    /// Its public summary.
    pub summary: TokenSummary,
}

/// A token without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// Token id (the public prefix of the token).
    pub id: String,
    /// Owner.
    pub identity: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Revocation time, if revoked.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Last use (coarse: updated at most once a minute).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// `POST /v1/admin/reload` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResponse {
    /// A summary of what changed (connections, roles).
    pub message: String,
}

/// `POST /v1/test/clock` (only when the gateway runs with `--test-clock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvanceClock {
    /// How far to move the gateway's clock forward, humantime syntax.
    pub advance: String,
}

/// The gateway's notion of now, after a clock change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockNow {
    /// Current gateway time.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// A live proxy session, for `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id.
    pub id: String,
    /// Identity.
    pub identity: String,
    /// Connection name.
    pub connection: String,
    /// Client address.
    pub client_addr: String,
    /// Client application name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// Grants the session depends on.
    pub grants: Vec<String>,
    /// Start.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// `GET /v1/policy/explain`: what an identity may do on a connection now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainResponse {
    /// The human rendering, as `periscope policy explain` prints it.
    pub text: String,
    /// The structured explanation (the policy crate's `Explanation`), for scripts.
    pub explanation: serde_json::Value,
}

/// `POST /v1/audit/verify`: the gateway verifies the chain in its store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyResponse {
    /// True when every link and checkpoint verified.
    pub ok: bool,
    /// One paragraph for humans: what was checked, or the first broken link.
    pub summary: String,
    /// Seq of the first broken link, when `ok` is false and a seq applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken_at: Option<u64>,
    /// The audit crate's report (counts, last head, unsigned tail), when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
}

/// `GET /v1/audit/public-key`: the key that verifies checkpoints. Auditors
/// should obtain it out of band too; fetching it from the gateway under audit
/// proves nothing on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// Short fingerprint, as found in checkpoints.
    pub key_id: String,
    /// The public key in the audit crate's text format.
    pub public_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody {
            error: ApiError {
                code: codes::FORBIDDEN.into(),
                message: "alice may not approve her own request".into(),
                hint: Some("ask a member of role lead".into()),
                request_id: None,
            },
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["error"]["code"], "forbidden");
        assert_eq!(json["error"]["hint"], "ask a member of role lead");
        assert!(json["error"].get("request_id").is_none());
    }
}

/// One single sign-on provider, as `GET /v1/sso/providers` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProvider {
    /// Its name (`okta`), for `periscope login --sso --provider`.
    pub name: String,
    /// What the sign-in page calls it.
    pub display_name: String,
}

/// `GET /v1/sso/providers` (no token needed): how to sign in here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProviders {
    /// The providers, the default first; empty when SSO is off.
    pub providers: Vec<SsoProvider>,
    /// The redirect URL to register with each provider, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_url: Option<String>,
}

/// `POST /v1/sso/cli/start`: begin `periscope login --sso` through a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoCliStart {
    /// The provider; the default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Where the CLI listens for the browser: `http://127.0.0.1:PORT/...`.
    pub redirect_uri: String,
    /// S256 challenge of the CLI's own PKCE verifier (RFC 7636).
    pub code_challenge: String,
}

/// The answer to [`SsoCliStart`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoCliStarted {
    /// The page to open in a browser (the provider's sign-in).
    pub authorize_url: String,
    /// The provider used.
    pub provider: String,
    /// When the sign-in must be finished by.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /v1/sso/cli/token`: the CLI trades the one-time code it received
/// on its loopback address, with its PKCE verifier, for a gateway token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoCliToken {
    /// The one-time code.
    pub code: String,
    /// The verifier whose challenge began the sign-in.
    pub code_verifier: String,
}

/// A gateway token from a single sign-on (shown once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoToken {
    /// The API token (`psc_...`), also the PostgreSQL password.
    pub token: String,
    /// Its public id.
    pub token_id: String,
    /// Who signed in.
    pub identity: String,
    /// Their roles now, from their groups.
    pub roles: Vec<String>,
    /// When the token expires (sign in again then).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /v1/sso/device/start`: begin the device authorization grant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDeviceStart {
    /// The provider; the default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// The answer to [`SsoDeviceStart`]: what the person must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDeviceStarted {
    /// The code the CLI polls with (secret).
    pub device_code: String,
    /// The code to type at `verification_uri`.
    pub user_code: String,
    /// Where to type it, on any device with a browser.
    pub verification_uri: String,
    /// The same page with the code filled in, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval: u64,
    /// When the code expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The provider used.
    pub provider: String,
}

/// `POST /v1/sso/device/poll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDevicePoll {
    /// The device code from [`SsoDeviceStarted`].
    pub device_code: String,
}

/// The answer to [`SsoDevicePoll`]: `pending` (poll again) or `done` with
/// the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDevicePolled {
    /// `pending` or `done`.
    pub status: String,
    /// The token once `done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SsoToken>,
}

/// `POST /v1/exec`: run a command on an `exec` connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Connection name (`kind = "exec"`).
    pub connection: String,
    /// The arguments after the connection's base command, passed as they
    /// are (no shell).
    pub args: Vec<String>,
}

/// Content type of the `POST /v1/exec` answer: one [`ExecFrame`] per line.
pub const EXEC_CONTENT_TYPE: &str = "application/x-ndjson";

/// One line of the `POST /v1/exec` answer, streamed as the command runs.
/// Output frames hold text already masked by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecFrame {
    /// The command started (its `exec.start` event is durable).
    Start {
        /// The session's id (as listed by `GET /v1/sessions`).
        session: String,
    },
    /// Masked standard output.
    Stdout {
        /// The text.
        data: String,
    },
    /// Masked standard error.
    Stderr {
        /// The text.
        data: String,
    },
    /// The command ended; always the last frame.
    End {
        /// `exited`, `timeout`, `output_limit`, `cut` or `failed`.
        reason: String,
        /// The exit code a client should end with: the process's, or 128 +
        /// the signal that killed it.
        exit_code: i32,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
        /// Why it was stopped, when the gateway stopped it.
        message: Option<String>,
        /// What to do next (the command that requests a grant again).
        hint: Option<String>,
        /// Values masked in the output, all entities together.
        masked: u64,
    },
}

/// A text frame the client sends on the `GET /v1/shell` WebSocket. Typed
/// bytes may also be sent as binary frames (the CLI does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShellClientFrame {
    /// Bytes typed, as text (Ctrl-C is `"\u0003"`).
    Stdin {
        /// The text.
        data: String,
    },
    /// The client's window size; send one at start and on each change.
    Resize {
        /// Columns (1 to 1000).
        cols: u16,
        /// Rows (1 to 1000).
        rows: u16,
    },
    /// A signal for the foreground job: `INT`, `QUIT`, `TERM`, `HUP`,
    /// `KILL`, `TSTP` or `CONT`.
    Signal {
        /// The signal's name.
        signal: String,
    },
}

/// A frame the gateway sends on the `GET /v1/shell` WebSocket (JSON in text
/// frames). Output holds text already masked by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShellServerFrame {
    /// The shell started (its `shell.start` event is durable).
    Start {
        /// The session's id (as listed by `GET /v1/sessions`, and the
        /// recording's id).
        session: String,
    },
    /// Masked terminal output (escape sequences included).
    Output {
        /// The text.
        data: String,
    },
    /// A frame of the client's the gateway could not take (malformed JSON,
    /// an unknown type, a bad size or signal); the shell goes on.
    Error {
        /// What was wrong.
        message: String,
    },
    /// The shell ended; always the last frame before the close.
    End {
        /// `exited`, `timeout`, `idle`, `cut`, `client_gone` or `failed`.
        reason: String,
        /// The exit code a client should end with: the shell's, or 128 +
        /// the signal that killed it.
        exit_code: i32,
        /// The signal that ended it, when one did.
        signal: Option<i32>,
        /// Why it was stopped, when the gateway stopped it.
        message: Option<String>,
        /// What to do next (the command that requests a grant again).
        hint: Option<String>,
        /// Values masked in the output, all entities together.
        masked: u64,
    },
}

/// `POST /v1/logs`: read or follow a log source of a `logs` connection. The
/// answer is streamed like `POST /v1/exec`'s: [`ExecFrame`]s, the source's
/// lines (masked, then filtered) as `stdout`, its own errors as `stderr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// Connection name (`kind = "logs"`).
    pub connection: String,
    /// The source; may be left out when the connection has only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Keep following the source after its end.
    #[serde(default)]
    pub follow: bool,
    /// Only lines from this long ago (`1h`, `30m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only lines matching this regular expression, applied by the gateway
    /// to the masked text (so it cannot probe a masked value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grep: Option<String>,
}

/// `POST /v1/admin/discover` (administrators): sample a connection's columns
/// and propose tags; with `apply`, store them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoverRequest {
    /// The connection to profile.
    pub connection: String,
    /// Only this schema (default: every schema but the system's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Rows sampled per column (default 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<u32>,
    /// Store the proposed tags (versioned, audited); masking uses them at once.
    #[serde(default)]
    pub apply: bool,
}

/// What discovery found on a connection: counts and shares, never a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoverResponse {
    /// The connection profiled.
    pub connection: String,
    /// The schema filter, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Rows asked for per column.
    pub sample: u32,
    /// Tables sampled.
    pub tables: u32,
    /// Columns profiled (types that never hold identifiers are not).
    pub columns: u32,
    /// Rows read from the upstream, all tables together.
    pub rows_sampled: u64,
    /// Wall time of the run.
    pub elapsed_ms: u64,
    /// Every profiled column and JSON field, with its evidence.
    pub fields: Vec<DiscoveredField>,
    /// The tags proposed per column (a JSON column's fields folded into one
    /// column tag, since tags name columns).
    pub proposed: Vec<ProposedTag>,
    /// Tables that could not be sampled, and why (SQLSTATE only).
    #[serde(default)]
    pub skipped: Vec<SkippedTable>,
    /// A ready `[connection.data_policy.tags]` snippet for `periscope.toml`.
    pub snippet: String,
    /// What `apply` stored, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedTags>,
}

/// One column, or one JSON field inside a column, as discovery judged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredField {
    /// `schema.table.column`, or `schema.table.column.$.path` for a JSON field.
    pub path: String,
    /// Non-null, non-blank values sampled.
    pub sampled: u32,
    /// NULLs sampled.
    pub nulls: u32,
    /// The entity the name alone suggests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by_name: Option<String>,
    /// The proposed tag (entity), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed: Option<String>,
    /// What the proposal rests on: `name`, `content` or `name_and_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// Why, for people (counts and shares).
    pub reason: String,
    /// Every check some value passed, strongest first.
    pub evidence: Vec<FieldEvidence>,
}

/// How many sampled values of a field validate as an entity by one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldEvidence {
    /// The entity.
    pub entity: String,
    /// The check (`sin`, `card`, `format`...).
    pub check: String,
    /// Values that validated.
    pub matched: u32,
    /// Values sampled.
    pub sampled: u32,
    /// `matched / sampled`.
    pub share: f64,
    /// The share random values of the same shape reach.
    pub chance: f64,
    /// The share the check must reach.
    pub required: f64,
    /// Whether this evidence alone decides.
    pub passed: bool,
}

/// A column tag discovery proposes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposedTag {
    /// `schema.table.column`.
    pub column: String,
    /// The entity the column is masked whole as.
    pub entity: String,
    /// The fields that led to it (the column itself, or JSON paths in it).
    pub from: Vec<String>,
    /// The tag the configuration already gives the column, which wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured: Option<String>,
}

/// A table discovery could not sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedTable {
    /// `schema.table`.
    pub table: String,
    /// Why (an SQLSTATE and its meaning, never the server's message).
    pub reason: String,
}

/// The tag a dismissed column carries in [`DiscoveredTagVersion::tags`]:
/// an administrator overrode discovery's finding there.
pub const DISMISSED_TAG: &str = "none";

/// `POST /v1/admin/discover/{connection}/dismiss` (administrators):
/// override discovery's finding on columns it tagged (or would tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DismissRequest {
    /// `schema.table.column` of each column.
    pub columns: Vec<String>,
}

/// The result of `apply` (or of a dismissal: `added` maps each dismissed
/// column to `none`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedTags {
    /// The connection's new tag set version.
    pub version: i64,
    /// The tags stored by this apply, `column -> entity`.
    pub added: std::collections::BTreeMap<String, String>,
    /// How many discovered tags the connection has now.
    pub total: usize,
}

/// `GET /v1/admin/discover/{connection}` (administrators): the discovered
/// tags in force and their history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveredTags {
    /// The connection.
    pub connection: String,
    /// Every version, newest first.
    pub versions: Vec<DiscoveredTagVersion>,
    /// What the gateway's background profile of the connection found (its
    /// new findings are stored at once, in `report.applied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<BackgroundDiscovery>,
    /// Untagged columns whose values keep hitting detectors in results on
    /// this gateway (run-time learning).
    #[serde(default)]
    pub suspected: Vec<SuspectedColumn>,
}

/// An untagged column whose values keep hitting detectors in results
/// (run-time learning): counts, never a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspectedColumn {
    /// `schema.table.column`.
    pub column: String,
    /// The entity most of its masked values were.
    pub entity: String,
    /// Values masked by content scans so far (on this gateway).
    pub values: u64,
    /// Statements whose results had some.
    pub statements: u32,
    /// When it became suspected (RFC 3339).
    pub since: String,
    /// Whether `auto_tag` tagged it (masked whole from then on).
    pub tagged: bool,
}

/// The state of a connection's background profile on this gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackgroundDiscovery {
    /// `running`, `done` or `failed`.
    pub state: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Why it failed (no value, no secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its report, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DiscoverResponse>,
}

/// One stored version of a connection's discovered tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredTagVersion {
    /// 1, 2, ...
    pub version: i64,
    /// When it was applied (RFC 3339).
    pub created_at: String,
    /// Who applied it.
    pub created_by: String,
    /// `column -> entity`.
    pub tags: std::collections::BTreeMap<String, String>,
}

/// Media type of a recording (`GET /v1/recordings/{id}`): asciicast v2.
pub const CAST_CONTENT_TYPE: &str = "application/x-asciicast";

/// Media type of a PostgreSQL session's recording (`GET
/// /v1/recordings/{id}`): JSON lines, a header then one line per statement
/// (docs/recordings.md).
pub const SQL_RECORDING_CONTENT_TYPE: &str = "application/x-ndjson";

/// `format` of a terminal recording (asciicast v2).
pub const RECORDING_FORMAT_CAST: &str = "asciicast-v2";

/// `format` of a PostgreSQL session's recording.
pub const RECORDING_FORMAT_SQL: &str = "periscope-sql";

/// A sealed recording, for `GET /v1/recordings`: what `recording.sealed`
/// says of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingSummary {
    /// Recording id (the session id; `periscope recordings play ID`).
    pub id: String,
    /// Connection the session was on.
    pub connection: String,
    /// Identity that ran it.
    pub identity: String,
    /// Start of the session.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// How long it was recorded, in milliseconds.
    pub duration_ms: u64,
    /// Size of the cast file.
    pub bytes: u64,
    /// SHA-256 of the file, as sealed in the audit chain.
    pub sha256: String,
    /// Seq of the `recording.sealed` event.
    pub sealed_seq: u64,
    /// Whether `max_size` cut it short.
    pub truncated: bool,
    /// Output bytes missing because the recorder fell behind.
    pub dropped_bytes: u64,
    /// What the file holds: [`RECORDING_FORMAT_CAST`] (a terminal session)
    /// or [`RECORDING_FORMAT_SQL`] (a PostgreSQL session's statements).
    #[serde(default = "cast_format")]
    pub format: String,
    /// Statements recorded (SQL recordings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statements: Option<u64>,
}

fn cast_format() -> String {
    RECORDING_FORMAT_CAST.to_string()
}
