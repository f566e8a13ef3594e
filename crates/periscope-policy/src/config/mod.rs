//! The checked model of `periscope.toml`.
//!
//! [`Config::parse`] is the only way to build one from text: it refuses unknown
//! keys, inline credentials and dangling names with the file, line and column of
//! the mistake, so a configuration that parses is one the gateway can apply
//! whole. The gateway reads the file; this module never touches the disk.

mod error;
mod raw;
mod recordings;
mod sso;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use periscope_redact::{Entity, Operator};
use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Diagnostic};
pub use recordings::{
    DEFAULT_RECORDING_MAX_SIZE, DEFAULT_RECORDING_RETENTION, MAX_RECORDING_MAX_SIZE,
    MAX_RECORDING_RETENTION, MIN_RECORDING_RETENTION, RecordingsConfig,
};
pub use sso::{
    DEFAULT_GROUPS_CLAIM, DEFAULT_SCOPES, DEFAULT_SESSION_IDLE, DEFAULT_SESSION_LIFETIME,
    DEFAULT_SSO_TOKEN_LIFETIME, DEFAULT_USERNAME_CLAIM, MAX_SSO_LIFETIME, MIN_SESSION_IDLE,
    MIN_SSO_LIFETIME, SsoConfig, SsoProvider,
};

use crate::command::CommandPattern;
use crate::names::{ColumnRef, FunctionName, TableName};
use crate::shield::{MaskTarget, ShieldPattern};

/// Name of the built-in role held by the bootstrap administrator.
///
/// It may manage identities, tokens and configuration and read the whole audit,
/// but covers no connection: reaching data always goes through a declared role.
pub const ADMIN_ROLE: &str = "admin";

/// Shortest grant a role may allow and a request may ask for; below this a grant
/// would expire before anyone could use it.
pub const MIN_GRANT_DURATION: Duration = Duration::from_secs(60);

/// Longest `max_duration` a role may declare: grants are for debugging sessions,
/// and the bound catches typos such as `30d` for `30m`.
pub const MAX_GRANT_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `max_duration` of a role that does not set one.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);

/// Most approvals a role may require; more would make requests unapprovable in
/// practice.
pub const MAX_APPROVALS: u32 = 10;

/// How long a request waits for approval when `[requests] pending_ttl` is unset.
pub const DEFAULT_PENDING_TTL: Duration = Duration::from_secs(24 * 3600);

/// Longest `pending_ttl`: a week-old request no longer reflects a live need.
pub const MAX_PENDING_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A checked `periscope.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listeners and the data directory.
    pub server: ServerConfig,
    /// Where requests, grants, identities and the audit chain are kept.
    pub store: StoreConfig,
    /// Audit chain settings.
    pub audit: AuditConfig,
    /// How long requests wait for a decision.
    pub requests: RequestsConfig,
    /// Optional notifications of the grant workflow.
    pub webhook: Option<WebhookConfig>,
    /// Upstream targets, in file order.
    pub connections: Vec<ConnectionConfig>,
    /// Declared roles, in file order (the built-in `admin` role is not listed).
    pub roles: Vec<RoleConfig>,
    /// Single sign-on providers; `None` when only local tokens are used.
    pub sso: Option<SsoConfig>,
    /// Recordings of exec sessions.
    pub recordings: RecordingsConfig,
}

impl Config {
    /// Parses and checks a configuration; `file` is only used in messages.
    ///
    /// An empty text is a valid configuration: the gateway starts with defaults,
    /// no connection and only the built-in `admin` role.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let mut reporter = error::Reporter::new(file, text);
                let span = e.span().unwrap_or(0..0);
                reporter.error(span, e.message().trim_end().to_string());
                return Err(reporter
                    .finish()
                    .expect_err("one diagnostic was just reported"));
            }
        };
        let mut reporter = error::Reporter::new(file, text);
        let config = validate::validate(raw, &mut reporter);
        reporter.finish()?;
        Ok(config)
    }

    /// Where the store lives: the configured URL, or the embedded SQLite file in
    /// the data directory.
    pub fn store_url(&self) -> StoreUrl {
        self.store.url.clone().unwrap_or_else(|| StoreUrl::Sqlite {
            path: self.server.data_dir.join("periscope.db"),
        })
    }

    /// The connection called `name`.
    pub fn connection(&self, name: &str) -> Option<&ConnectionConfig> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The declared role called `name` (the built-in `admin` role is not declared).
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// `[server]`: where the gateway listens and keeps its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// HTTPS API and web UI (default `127.0.0.1:8443`).
    pub api_listen: SocketAddr,
    /// PostgreSQL protocol listener (default `127.0.0.1:15432`).
    pub pg_listen: SocketAddr,
    /// Host name clients should use, as printed by `periscope connect`; when
    /// unset, the IP of `pg_listen`.
    pub public_host: Option<String>,
    /// Data directory: embedded store, TLS certificate and keys (default
    /// `./periscope-data`; `periscope up --data-dir` overrides it).
    pub data_dir: PathBuf,
}

impl ServerConfig {
    /// The host name to print in connection instructions.
    pub fn advertised_host(&self) -> String {
        self.public_host
            .clone()
            .unwrap_or_else(|| self.pg_listen.ip().to_string())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            pg_listen: SocketAddr::from(([127, 0, 0, 1], 15432)),
            public_host: None,
            data_dir: PathBuf::from("./periscope-data"),
        }
    }
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreConfig {
    /// The configured store; `None` means the embedded SQLite file (see
    /// [`Config::store_url`]).
    pub url: Option<StoreUrl>,
}

/// Where the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An embedded SQLite database file (`sqlite://PATH`).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database shared by replicas (`postgres://user@host/db`).
    Postgres {
        /// The URL as written, guaranteed to carry no password.
        url: String,
        /// Where the password comes from, if the server asks for one.
        password: Option<SecretRef>,
    },
}

/// A credential given by reference, never inline: the config file can be
/// committed and shared without leaking anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRef {
    /// Read from this environment variable of the gateway process.
    Env(String),
    /// Read from this file (trailing newline stripped by the reader).
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(var) => write!(f, "environment variable {var}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// Write a signed checkpoint every this many events (default 1000).
    pub checkpoint_every: u64,
    /// Which failure an acknowledged audit event (and so the action it
    /// records) must survive.
    pub durability: AuditDurability,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: 1000,
            durability: AuditDurability::default(),
        }
    }
}

/// `[audit] durability`: the failure an acknowledged audit event survives.
///
/// Every proxied statement waits for its audit event before its results are
/// released, so this is the price of each statement: a disk flush, or a
/// write into the operating system's (or the PostgreSQL store's) memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditDurability {
    /// Flushed to disk before it is acknowledged: survives a power loss or an
    /// operating-system crash too (SQLite `synchronous = FULL`, PostgreSQL
    /// `synchronous_commit = on`), at the price of a flush per group commit
    /// on every statement's path.
    PowerLoss,
    /// Handed to the operating system (SQLite WAL, `synchronous = NORMAL`)
    /// or to the PostgreSQL store's server (`synchronous_commit = off`)
    /// before it is acknowledged (default, as trusted audit pipelines do):
    /// survives a crash or SIGKILL of the gateway, which is the guarantee the
    /// fault tests check; the last events may be lost only if the machine
    /// running the store loses power or crashes.
    #[default]
    ProcessCrash,
}

/// `[requests]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestsConfig {
    /// A request not decided within this time expires (default 24h, at most 7 days).
    pub pending_ttl: Duration,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        RequestsConfig {
            pending_ttl: DEFAULT_PENDING_TTL,
        }
    }
}

/// `[webhook]`: a signed POST for each grant workflow event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http://` or `https://` endpoint.
    pub url: String,
    /// HMAC key used to sign each delivery.
    pub secret: SecretRef,
    /// Which events are sent (default: all of them).
    pub events: BTreeSet<WebhookEvent>,
}

/// A grant workflow event a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookEvent {
    /// A request was created.
    Request,
    /// A request received an approval (or was granted).
    Approve,
    /// A request was denied.
    Deny,
    /// A request or grant expired.
    Expire,
    /// A grant was revoked.
    Revoke,
}

impl WebhookEvent {
    /// Every event, the default subscription.
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::Request,
        WebhookEvent::Approve,
        WebhookEvent::Deny,
        WebhookEvent::Expire,
        WebhookEvent::Revoke,
    ];
}

/// The data plane of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    /// PostgreSQL wire protocol.
    Postgres,
    /// Commands the gateway runs for the engineer (`periscope exec`), their
    /// output masked as it streams.
    Exec,
    /// Named log sources the gateway reads for the engineer (`periscope
    /// logs`): file globs, journal units or a command, masked as they stream.
    Logs,
    /// An interactive shell on a PTY (`periscope shell`), its output masked
    /// as it streams; always behind the `shell` shield.
    Shell,
}

/// Default `discovery_interval`: once a day is enough to catch a newly
/// filled column without loading the upstream.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Longest `discovery_interval` (beyond it, findings go stale unnoticed).
pub const MAX_DISCOVERY_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Default `timeout` of an exec connection: a diagnostic command, not a job.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest `timeout` of an exec connection.
pub const MAX_EXEC_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Default `max_output` of an exec connection, in bytes (stdout and stderr
/// together, before masking).
pub const DEFAULT_EXEC_MAX_OUTPUT: u64 = 64 * 1024 * 1024;
/// Largest `max_output` of an exec connection, in bytes.
pub const MAX_EXEC_MAX_OUTPUT: u64 = 16 * 1024 * 1024 * 1024;

/// What an `exec` connection runs: a base command, the argument patterns
/// that need no grant and those that are sensitive flows, and the process's
/// surroundings. Nothing goes through a shell; nothing is inherited from the
/// gateway's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    /// The program (an absolute path) and its fixed leading arguments
    /// (`["/usr/bin/kubectl", "--context", "prod"]`); the engineer's
    /// arguments follow them.
    pub command: Vec<String>,
    /// Argument patterns that run without a grant (`logs *`, `get pods`).
    pub allow: Vec<CommandPattern>,
    /// Argument patterns refused unless a grant lifts `command:<pattern>`;
    /// checked before `allow`, so a sensitive pattern always wins.
    pub sensitive: Vec<CommandPattern>,
    /// Working directory of the process (default: the gateway's own).
    pub working_dir: Option<PathBuf>,
    /// The process's whole environment.
    pub env: BTreeMap<String, String>,
    /// The process group is killed after this long (default 10 minutes).
    pub timeout: Duration,
    /// The process group is killed once stdout and stderr together passed
    /// this many bytes (default 64 MiB).
    pub max_output: u64,
}

/// Default `timeout` of a shell connection: a debugging session, not a
/// terminal left open for the day.
pub const DEFAULT_SHELL_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default `idle_timeout` of a shell connection: a shell nobody types into
/// or reads from for this long is ended.
pub const DEFAULT_SHELL_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What a `shell` connection runs: one program on a PTY, with an explicit
/// environment (nothing inherited from the gateway), and its time limits.
/// Access always needs a grant lifting the `shell` shield: a shell runs
/// anything, so no argument pattern can vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellConfig {
    /// The program (an absolute path) and its arguments
    /// (`["/bin/bash", "--noprofile", "--norc"]`).
    pub command: Vec<String>,
    /// Working directory of the shell (default: the gateway's own).
    pub working_dir: Option<PathBuf>,
    /// The shell's whole environment (`TERM`, `PATH`... only as listed).
    pub env: BTreeMap<String, String>,
    /// The shell is ended this long after it started (default 1 hour).
    pub timeout: Duration,
    /// The shell is ended after this long without input or output (default
    /// 15 minutes).
    pub idle_timeout: Duration,
}

/// Default `timeout` of a logs connection: how long one read or follow may
/// last before the gateway ends it.
pub const DEFAULT_LOGS_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default `journalctl` of a logs connection.
pub const DEFAULT_JOURNALCTL: &str = "/usr/bin/journalctl";

/// What a `logs` connection reads: named sources, and the surroundings of the
/// processes it starts (journal and command sources). Nothing goes through a
/// shell; nothing is inherited from the gateway's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogsConfig {
    /// The sources by name (`periscope logs CONNECTION SOURCE`).
    pub sources: BTreeMap<String, LogSource>,
    /// The `journalctl` program journal sources run (an absolute path).
    pub journalctl: PathBuf,
    /// Working directory of journal and command processes.
    pub working_dir: Option<PathBuf>,
    /// The whole environment of journal and command processes.
    pub env: BTreeMap<String, String>,
    /// One read or follow is ended after this long (default 1 hour).
    pub timeout: Duration,
    /// One read or follow is ended once it read this many bytes (default 64 MiB).
    pub max_output: u64,
}

/// One named log source of a `logs` connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// Files matching these globs (absolute paths, wildcards `*` and `?` in
    /// the last component only), followed across rotation and truncation.
    Files(Vec<PathBuf>),
    /// The journal of these systemd units (`journalctl -u UNIT`).
    Journal(Vec<String>),
    /// A command whose standard output is the log stream.
    Command {
        /// The program (an absolute path) and its arguments.
        command: Vec<String>,
        /// Arguments added to follow (`["-f"]`); empty means the source
        /// cannot be followed.
        follow_args: Vec<String>,
    },
}

impl LogSource {
    /// A short word for the audit and errors: `files`, `journal` or `command`.
    pub fn kind(&self) -> &'static str {
        match self {
            LogSource::Files(_) => "files",
            LogSource::Journal(_) => "journal",
            LogSource::Command { .. } => "command",
        }
    }
}

/// TLS from the gateway to the upstream server, with libpq's meaning of each mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamTls {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it, without verifying the certificate (default,
    /// as in libpq, so a local database works out of the box; prefer
    /// `verify-full` in production).
    #[default]
    Prefer,
    /// Require TLS, without verifying the certificate.
    Require,
    /// Require TLS and verify the certificate chain and host name.
    VerifyFull,
}

/// TLS from clients (`psql`) to the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientTls {
    /// Plaintext clients are accepted; meant for local development only.
    Optional,
    /// Plaintext clients are refused (default): the client's password is a
    /// Periscope API token and must not cross the network in clear.
    #[default]
    Required,
}

/// `[[connection]]`: one upstream target and its injected credentials.
///
/// The PostgreSQL fields (`host` to `client_tls`) are empty and unused on an
/// `exec` connection, whose target is [`ConnectionConfig::exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Unique name, used as the database name by clients (`psql -d pg-prod`).
    pub name: String,
    /// Protocol.
    pub kind: ConnectionKind,
    /// Upstream host name or address.
    pub host: String,
    /// Upstream port (default 5432).
    pub port: u16,
    /// Upstream database.
    pub database: String,
    /// Upstream user the gateway logs in as.
    pub user: String,
    /// Upstream password, by reference; `None` for trust or certificate auth.
    pub password: Option<SecretRef>,
    /// TLS to upstream (default `prefer`).
    pub upstream_tls: UpstreamTls,
    /// CA bundle for `require`/`verify-full`; system roots when unset.
    pub upstream_ca_file: Option<PathBuf>,
    /// TLS from clients (default `required`).
    pub client_tls: ClientTls,
    /// Whether the gateway profiles this connection's data in the
    /// background when it first serves it (default `true`; opt out with
    /// `background_discovery = false`) and then every
    /// `discovery_interval`; what it finds is masked at once and listed for
    /// review.
    pub background_discovery: bool,
    /// How often the background profile runs again after the first (data
    /// changes: a column that was empty fills up). Default 24 hours.
    pub discovery_interval: Duration,
    /// Whether a column that results show holding sensitive values (run-time
    /// learning: suspected) is tagged at once and masked whole from then on
    /// (default `false`: suspected columns are listed and audited only).
    pub auto_tag: bool,
    /// Free-form labels that roles select on (`env = "prod"`).
    pub labels: BTreeMap<String, String>,
    /// Extra protections; `None` means the fully shielded defaults.
    pub data_policy: Option<DataPolicy>,
    /// What an `exec` connection runs; `Some` exactly when `kind` is `exec`.
    pub exec: Option<ExecConfig>,
    /// What a `logs` connection reads; `Some` exactly when `kind` is `logs`.
    pub logs: Option<LogsConfig>,
    /// What a `shell` connection runs; `Some` exactly when `kind` is `shell`.
    pub shell: Option<ShellConfig>,
}

/// `[connection.data_policy]`: what a connection protects beyond the defaults.
///
/// Every field can only add protection, except `operators` (which choose how
/// masked values look) and `refuse_unanalysable = false`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPolicy {
    /// Column tags: the whole column is masked as this entity or custom tag.
    pub tags: BTreeMap<ColumnRef, MaskTarget>,
    /// Tables every access to which is refused unless `table:NAME` is lifted.
    pub sensitive_tables: BTreeSet<TableName>,
    /// Functions refused in addition to the built-in dangerous list.
    pub blocked_functions: BTreeSet<FunctionName>,
    /// Masking operator per entity (default `redact`).
    pub operators: BTreeMap<Entity, Operator>,
    /// Optional-tier entities to detect and mask.
    pub enable: BTreeSet<Entity>,
    /// Refuse SQL the analyser cannot follow (default `true`).
    pub refuse_unanalysable: bool,
}

impl Default for DataPolicy {
    fn default() -> Self {
        DataPolicy {
            tags: BTreeMap::new(),
            sensitive_tables: BTreeSet::new(),
            blocked_functions: BTreeSet::new(),
            operators: BTreeMap::new(),
            enable: BTreeSet::new(),
            refuse_unanalysable: true,
        }
    }
}

/// `[[role]]`: what members may reach and which shields they may ask to lift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleConfig {
    /// Unique name.
    pub name: String,
    /// Connections by name; `*` means every connection.
    pub connections: BTreeSet<String>,
    /// Label selector: the role also covers every connection carrying all these
    /// labels. Empty selects nothing.
    pub connection_labels: BTreeMap<String, String>,
    /// Shields members may ask to lift.
    pub may_lift: Vec<ShieldPattern>,
    /// Longest grant (default 1h, at most 24h).
    #[serde(with = "crate::serde_secs")]
    pub max_duration: Duration,
    /// Approvals a request needs (default 1; 0 grants immediately).
    pub approvals: u32,
    /// Roles whose members may approve or deny requests made through this role.
    pub approvers: BTreeSet<String>,
    /// May lift secret-tier shields; every such use is flagged in the audit.
    pub break_glass: bool,
    /// May manage identities, tokens and configuration and read the whole audit.
    pub admin: bool,
}

impl RoleConfig {
    /// Whether this role lets its members reach `connection`.
    pub fn covers(&self, connection: &ConnectionConfig) -> bool {
        self.connections.contains("*")
            || self.connections.contains(&connection.name)
            || (!self.connection_labels.is_empty()
                && self
                    .connection_labels
                    .iter()
                    .all(|(k, v)| connection.labels.get(k) == Some(v)))
    }

    /// The built-in administrator role: admin powers, no connection, nothing to lift.
    pub fn builtin_admin() -> RoleConfig {
        RoleConfig {
            name: ADMIN_ROLE.to_string(),
            connections: BTreeSet::new(),
            connection_labels: BTreeMap::new(),
            may_lift: Vec::new(),
            max_duration: DEFAULT_MAX_DURATION,
            approvals: 1,
            approvers: BTreeSet::new(),
            break_glass: false,
            admin: true,
        }
    }
}

impl ConnectionConfig {
    /// The data policy in force: the declared one or the fully shielded default.
    pub fn effective_data_policy(&self) -> DataPolicy {
        self.data_policy.clone().unwrap_or_default()
    }
}
