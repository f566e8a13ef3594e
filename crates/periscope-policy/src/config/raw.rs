//! The file as written: serde structs that keep the position of every value
//! that a semantic check may need to point at.
//!
//! Nothing here is public. [`super::validate`] turns these into the checked
//! model in [`super`], so callers never see a half-validated configuration.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::{AuditDurability, ClientTls, ConnectionKind, UpstreamTls, WebhookEvent};

pub(crate) type S<T> = Spanned<T>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub server: RawServer,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub requests: RawRequests,
    pub webhook: Option<RawWebhook>,
    #[serde(default, rename = "connection")]
    pub connections: Vec<RawConnection>,
    #[serde(default, rename = "role")]
    pub roles: Vec<RawRole>,
    pub sso: Option<S<super::sso::RawSso>>,
    #[serde(default)]
    pub recordings: super::recordings::RawRecordings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub api_listen: Option<S<String>>,
    pub pg_listen: Option<S<String>>,
    pub public_host: Option<S<String>>,
    pub data_dir: Option<S<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    pub url: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub password_file: Option<S<String>>,
    /// Present only to refuse it with a useful message instead of "unknown field".
    pub password: Option<S<IgnoredAny>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    pub checkpoint_every: Option<S<i64>>,
    pub durability: Option<AuditDurability>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequests {
    pub pending_ttl: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub url: S<String>,
    pub secret_env: Option<S<String>>,
    pub secret_file: Option<S<String>>,
    pub secret: Option<S<IgnoredAny>>,
    pub events: Option<Vec<WebhookEvent>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnection {
    pub name: S<String>,
    pub kind: S<ConnectionKind>,
    pub host: Option<S<String>>,
    pub port: Option<S<i64>>,
    pub database: Option<S<String>>,
    pub user: Option<S<String>>,
    pub password_env: Option<S<String>>,
    pub password_file: Option<S<String>>,
    pub password: Option<S<IgnoredAny>>,
    #[serde(default)]
    pub upstream_tls: Option<S<UpstreamTls>>,
    pub upstream_ca_file: Option<S<String>>,
    #[serde(default)]
    pub client_tls: Option<S<ClientTls>>,
    #[serde(default)]
    pub background_discovery: Option<bool>,
    pub discovery_interval: Option<S<String>>,
    #[serde(default)]
    pub auto_tag: Option<S<bool>>,
    #[serde(default)]
    pub labels: BTreeMap<S<String>, String>,
    pub data_policy: Option<RawDataPolicy>,
    // `kind = "exec"` only.
    pub command: Option<S<Vec<S<String>>>>,
    pub allow: Option<S<Vec<S<String>>>>,
    pub sensitive: Option<S<Vec<S<String>>>>,
    pub working_dir: Option<S<String>>,
    pub env: Option<S<BTreeMap<S<String>, S<String>>>>,
    pub timeout: Option<S<String>>,
    pub max_output: Option<S<i64>>,
    // `kind = "shell"` only (with `command`, `working_dir`, `env`, `timeout`).
    pub idle_timeout: Option<S<String>>,
    // `kind = "logs"` only (with `working_dir`, `env`, `timeout`, `max_output`).
    pub sources: Option<S<BTreeMap<S<String>, S<RawLogSource>>>>,
    pub journalctl: Option<S<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogSource {
    pub files: Option<S<Vec<S<String>>>>,
    pub journal: Option<S<Vec<S<String>>>>,
    pub command: Option<S<Vec<S<String>>>>,
    pub follow_args: Option<S<Vec<S<String>>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDataPolicy {
    #[serde(default)]
    pub tags: BTreeMap<S<String>, S<String>>,
    #[serde(default)]
    pub sensitive_tables: Vec<S<String>>,
    #[serde(default)]
    pub blocked_functions: Vec<S<String>>,
    #[serde(default)]
    pub operators: BTreeMap<S<String>, S<String>>,
    #[serde(default)]
    pub enable: Vec<S<String>>,
    pub refuse_unanalysable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRole {
    pub name: S<String>,
    #[serde(default)]
    pub connections: Vec<S<String>>,
    #[serde(default)]
    pub connection_labels: BTreeMap<S<String>, String>,
    #[serde(default)]
    pub may_lift: Vec<S<String>>,
    pub max_duration: Option<S<String>>,
    pub approvals: Option<S<i64>>,
    #[serde(default)]
    pub approvers: Vec<S<String>>,
    #[serde(default)]
    pub break_glass: Option<S<bool>>,
    #[serde(default)]
    pub admin: bool,
}
