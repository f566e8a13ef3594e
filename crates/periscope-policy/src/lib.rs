//! Periscope's policy: who may reach which connection, under which shields, and
//! how a temporary grant lifts one.
//!
//! This crate is the pure core the gateway and every protocol proxy share:
//!
//! - [`Config`]: the checked model of `periscope.toml`, refused with file, line
//!   and column when wrong.
//! - [`Shield`] and [`ShieldPattern`]: the unit of protection (`unmask:email`,
//!   `write`, `table:payments.cards`...) and how roles name the shields they may
//!   ask to lift.
//! - [`Policy`] and [`decide`]: deny by default; for a permitted session, the
//!   effective [`ShieldSet`] and an [`Explanation`] for `periscope policy explain`.
//! - [`validate_request`], [`apply_approval`] and friends: the grant workflow
//!   rules (reason, duration cap, no self-approval, approval counts, break-glass).
//!
//! Nothing here performs I/O, spawns tasks or reads a clock: the caller passes
//! the configuration text and the current time (`time::OffsetDateTime`, UTC), so
//! every rule is testable and every replica decides alike.
//!
//! ```
//! use periscope_policy::{decide, Identity, Policy, PolicyInput, Shield};
//!
//! let policy = Policy::parse(
//!     r#"
//!     [[connection]]
//!     name = "pg-prod"
//!     kind = "postgres"
//!     host = "db.internal"
//!     database = "shop"
//!     user = "periscope"
//!     password_env = "PG_PROD_PASSWORD"
//!
//!     [[role]]
//!     name = "dev"
//!     connections = ["pg-prod"]
//!     may_lift = ["unmask:email"]
//!     approvers = ["lead"]
//!
//!     [[role]]
//!     name = "lead"
//!     "#,
//!     "periscope.toml",
//! )?;
//! let alice = Identity::new("alice", ["dev"]);
//! let decision = decide(&PolicyInput {
//!     policy: &policy,
//!     identity: &alice,
//!     connection: "pg-prod",
//!     grants: &[],
//!     now: time::OffsetDateTime::UNIX_EPOCH,
//! });
//! let session = decision.allowance().expect("dev covers pg-prod");
//! assert!(session.shields().blocks_write());
//! let refusal = session.refusal(&"unmask:email".parse::<Shield>()?, "reading email");
//! assert!(refusal.hint.contains("periscope request pg-prod --lift unmask:email"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod command;
mod config;
mod decide;
mod explain;
mod grant;
mod names;
mod policy;
mod serde_secs;
mod shield;

pub use config::{
    ADMIN_ROLE, AuditConfig, AuditDurability, ClientTls, Config, ConfigError, ConnectionConfig,
    ConnectionKind, DEFAULT_EXEC_MAX_OUTPUT, DEFAULT_EXEC_TIMEOUT, DEFAULT_JOURNALCTL,
    DEFAULT_LOGS_TIMEOUT, DEFAULT_MAX_DURATION, DEFAULT_PENDING_TTL, DEFAULT_RECORDING_MAX_SIZE,
    DEFAULT_RECORDING_RETENTION, DEFAULT_SHELL_IDLE_TIMEOUT, DEFAULT_SHELL_TIMEOUT, DataPolicy,
    Diagnostic, ExecConfig, LogSource, LogsConfig, MAX_APPROVALS, MAX_EXEC_MAX_OUTPUT,
    MAX_EXEC_TIMEOUT, MAX_GRANT_DURATION, MAX_PENDING_TTL, MAX_RECORDING_MAX_SIZE,
    MAX_RECORDING_RETENTION, MIN_GRANT_DURATION, MIN_RECORDING_RETENTION, RecordingsConfig,
    RequestsConfig, RoleConfig, SecretRef, ServerConfig, ShellConfig, SsoConfig, SsoProvider,
    StoreConfig, StoreUrl, UpstreamTls, WebhookConfig, WebhookEvent,
};
/// Defaults and bounds of `[sso]`.
pub mod sso {
    pub use crate::config::{
        DEFAULT_GROUPS_CLAIM, DEFAULT_SCOPES, DEFAULT_SESSION_IDLE, DEFAULT_SESSION_LIFETIME,
        DEFAULT_SSO_TOKEN_LIFETIME, DEFAULT_USERNAME_CLAIM, MAX_SSO_LIFETIME, MIN_SESSION_IDLE,
        MIN_SSO_LIFETIME,
    };
}
pub use command::{CommandPattern, InvalidCommandPattern, MAX_COMMAND_PATTERN};
pub use decide::{
    Allowance, Decision, DenyReason, IgnoredLift, Lift, LiftOption, PolicyInput, Refusal,
    SUGGESTED_DURATION, ShieldSet, Verdict, decide,
};
pub use explain::{Explanation, GrantLine, ShieldLine, ShieldState};
pub use grant::{
    Approval, ApprovalError, ApprovalOutcome, Grant, GrantStatus, GrantTerms, MAX_REASON_CHARS,
    MIN_REASON_CHARS, Opened, Request, RequestError, RequestPlan, RequestStatus, RevokeError,
    UnknownStatus, apply_approval, cancel_request, check_reason, deny_request, expire_request,
    grant_is_active, revoke_grant, validate_request,
};
pub use names::{ColumnRef, FunctionName, InvalidName, TableName};
pub use policy::{ConnectionPolicy, Identity, Policy};
pub use shield::{MaskTarget, PatternKind, Shield, ShieldParseError, ShieldPattern};
