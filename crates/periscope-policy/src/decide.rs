//! The decision: may this identity use this connection now, and under which
//! shields?
//!
//! [`decide`] is a pure function of the compiled policy, the identity, the
//! connection name, the identity's grants and the current time. The proxy calls
//! it when a session starts and again whenever a grant it relies on ends (see
//! [`ShieldSet::next_change`] and [`ShieldSet::grant_ids`]), so a shield comes
//! back by itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use periscope_redact::{Entity, Operator, Tier};
use serde::Serialize;
use time::OffsetDateTime;

use crate::command::CommandPattern;
use crate::config::{ConnectionKind, DataPolicy, RoleConfig};
use crate::explain::{self, Explanation};
use crate::grant::{Grant, GrantStatus};
use crate::names::{ColumnRef, FunctionName, TableName};
use crate::policy::{Identity, Policy};
use crate::shield::{MaskTarget, Shield};

/// Longest duration a refusal hint or explanation suggests: least privilege by
/// default, the role's maximum is shown next to it.
pub const SUGGESTED_DURATION: Duration = Duration::from_secs(30 * 60);

/// Everything [`decide`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The compiled policy in force.
    pub policy: &'a Policy,
    /// The authenticated identity and its roles.
    pub identity: &'a Identity,
    /// The connection name the client asked for.
    pub connection: &'a str,
    /// The identity's grants as stored (any status, any connection): only the
    /// active ones for this connection count.
    pub grants: &'a [Grant],
    /// The current time, from the caller's clock.
    pub now: OffsetDateTime,
}

/// The outcome of [`decide`]: the verdict for the proxy and the explanation for
/// people.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Allow (with the shield set) or deny (with the reason).
    pub verdict: Verdict,
    /// The same decision, structured for `periscope policy explain`.
    pub explanation: Explanation,
}

impl Decision {
    /// The allowance, when the session may start.
    pub fn allowance(&self) -> Option<&Allowance> {
        match &self.verdict {
            Verdict::Allow(a) => Some(a),
            Verdict::Deny(_) => None,
        }
    }
}

/// May the session start?
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Yes, under these shields.
    Allow(Allowance),
    /// No; deny by default.
    Deny(DenyReason),
}

/// Why a session is refused. Each reason has a stable code for the audit log and
/// a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum DenyReason {
    /// Authentication found no such identity. `decide` never returns this (it
    /// is given an identity); the gateway uses it so every refusal reads alike.
    UnknownIdentity {
        /// The name or token owner that was not found.
        identity: String,
    },
    /// No connection has this name.
    UnknownConnection {
        /// The name asked for.
        connection: String,
    },
    /// The identity holds no role this policy knows.
    NoRole {
        /// The identity.
        identity: String,
    },
    /// The identity's roles exist but none covers the connection.
    NotCovered {
        /// The identity.
        identity: String,
        /// The connection.
        connection: String,
        /// The identity's known roles.
        roles: Vec<String>,
    },
}

impl DenyReason {
    /// A stable snake_case code for audit events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DenyReason::UnknownIdentity { .. } => "unknown_identity",
            DenyReason::UnknownConnection { .. } => "unknown_connection",
            DenyReason::NoRole { .. } => "no_role",
            DenyReason::NotCovered { .. } => "not_covered",
        }
    }

    /// What the client is told. An unknown connection and one the identity may
    /// not reach read the same, so probing cannot list the connections.
    pub fn user_message(&self) -> String {
        match self {
            DenyReason::UnknownIdentity { .. } => {
                "authentication failed: unknown identity or invalid token".to_string()
            }
            DenyReason::UnknownConnection { connection }
            | DenyReason::NotCovered { connection, .. } => format!(
                "connection `{connection}` does not exist or none of your roles covers it \
                 (ask an administrator; `periscope policy explain` shows your access)"
            ),
            DenyReason::NoRole { .. } => {
                "you hold no role, so you may reach no connection; ask an administrator for one"
                    .to_string()
            }
        }
    }
}

impl fmt::Display for DenyReason {
    /// The precise reason, for the audit log and for administrators.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::UnknownIdentity { identity } => write!(f, "unknown identity `{identity}`"),
            DenyReason::UnknownConnection { connection } => {
                write!(f, "unknown connection `{connection}`")
            }
            DenyReason::NoRole { identity } => write!(f, "`{identity}` holds no known role"),
            DenyReason::NotCovered {
                identity,
                connection,
                roles,
            } => write!(
                f,
                "none of `{identity}`'s roles ({}) covers `{connection}`",
                roles.join(", ")
            ),
        }
    }
}

/// A permitted session: the roles that permit it and the shields it runs under.
#[derive(Debug, Clone)]
pub struct Allowance {
    connection: String,
    roles: Vec<RoleConfig>,
    shields: ShieldSet,
}

impl Allowance {
    /// The connection the session is for.
    pub fn connection(&self) -> &str {
        &self.connection
    }

    /// Names of the identity's roles that cover the connection.
    pub fn role_names(&self) -> Vec<&str> {
        self.roles.iter().map(|r| r.name.as_str()).collect()
    }

    /// The shields in force and lifted for this session.
    pub fn shields(&self) -> &ShieldSet {
        &self.shields
    }

    /// The error a proxy returns when `shield` stops `what` (`UPDATE`,
    /// `SELECT from payments.cards`): which shield, what it does, and the exact
    /// command that would request lifting it, or why no role of the user may.
    pub fn refusal(&self, shield: &Shield, what: &str) -> Refusal {
        let options = lift_options(&self.connection, &self.roles, shield, &self.shields);
        let hint = match options.first() {
            Some(o) => format!(
                "to request it: {} (role {}: up to {}, {})",
                o.command,
                o.role,
                o.max_duration,
                approval_phrase(o.approvals, &o.approvers)
            ),
            None if shield.is_secret() => cannot_lift(&self.roles, shield),
            None => format!("{}; ask an administrator", cannot_lift(&self.roles, shield)),
        };
        Refusal {
            shield: shield.clone(),
            message: format!(
                "{what} blocked by shield `{shield}` on connection `{}`",
                self.connection
            ),
            detail: shield.effect(),
            hint,
        }
    }
}

/// A refusal a proxy shows to the client; the PostgreSQL proxy sends it as an
/// ErrorResponse with SQLSTATE 42501, one field each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The shield that caused it.
    pub shield: Shield,
    /// "`UPDATE` blocked by shield `write` on connection `pg-prod`".
    pub message: String,
    /// What the shield does.
    pub detail: String,
    /// The command that requests a grant, or why none of the user's roles may.
    pub hint: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}. {}", self.message, self.detail, self.hint)
    }
}

/// How a lifted shield came to be lifted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lift {
    /// The grant lifting it (the latest-expiring one when several do).
    pub grant_id: String,
    /// When that grant ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Whether it is a break-glass grant.
    pub break_glass: bool,
}

/// The shields of one session: what is masked or blocked, and what grants lift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShieldSet {
    in_force: BTreeSet<Shield>,
    lifted: BTreeMap<Shield, Lift>,
    operators: BTreeMap<Entity, Operator>,
    column_tags: BTreeMap<ColumnRef, MaskTarget>,
    refuse_unanalysable: bool,
}

impl ShieldSet {
    /// The fully shielded set for a connection, before any grant.
    fn baseline(data: &DataPolicy) -> ShieldSet {
        let mut in_force: BTreeSet<Shield> = Entity::ALL
            .iter()
            .filter(|e| entity_in_force(data, **e))
            .map(|e| Shield::Unmask(MaskTarget::Entity(*e)))
            .collect();
        in_force.extend(data.tags.values().map(|t| Shield::Unmask(t.clone())));
        in_force.extend([Shield::Write, Shield::Ddl, Shield::UnboundedWrite]);
        in_force.extend(data.sensitive_tables.iter().cloned().map(Shield::Table));
        in_force.extend(data.blocked_functions.iter().cloned().map(Shield::Function));
        ShieldSet {
            in_force,
            lifted: BTreeMap::new(),
            operators: data.operators.clone(),
            column_tags: data.tags.clone(),
            refuse_unanalysable: data.refuse_unanalysable,
        }
    }

    /// Whether `shield` protects this session now. For functions on the built-in
    /// dangerous list, use [`ShieldSet::blocks_function`].
    pub fn is_in_force(&self, shield: &Shield) -> bool {
        self.in_force.contains(shield)
    }

    /// Every shield in force, sorted.
    pub fn in_force(&self) -> impl Iterator<Item = &Shield> {
        self.in_force.iter()
    }

    /// Every shield lifted by a grant, with the grant.
    pub fn lifted(&self) -> &BTreeMap<Shield, Lift> {
        &self.lifted
    }

    /// How values of `entity` are masked, or `None` when they are shown.
    pub fn mask_operator(&self, entity: Entity) -> Option<Operator> {
        self.in_force
            .contains(&Shield::Unmask(MaskTarget::Entity(entity)))
            .then(|| self.operator(entity))
    }

    /// Every entity masked in this session, with its operator.
    pub fn masked_entities(&self) -> impl Iterator<Item = (Entity, Operator)> + '_ {
        Entity::ALL
            .iter()
            .filter_map(|e| self.mask_operator(*e).map(|op| (*e, op)))
    }

    fn operator(&self, entity: Entity) -> Operator {
        self.operators.get(&entity).copied().unwrap_or_default()
    }

    /// How a whole column is masked because of its tag, or `None` when it has no
    /// tag or the tag's shield is lifted. Custom tags always use `redact`.
    pub fn column_mask(&self, column: &ColumnRef) -> Option<(&MaskTarget, Operator)> {
        let target = self.column_tags.get(column)?;
        if !self.in_force.contains(&Shield::Unmask(target.clone())) {
            return None;
        }
        let op = match target {
            MaskTarget::Entity(e) => self.operator(*e),
            MaskTarget::Tag(_) => Operator::Redact,
        };
        Some((target, op))
    }

    /// Every tagged column, whatever the shield state.
    pub fn column_tags(&self) -> &BTreeMap<ColumnRef, MaskTarget> {
        &self.column_tags
    }

    /// Whether data changes are refused.
    pub fn blocks_write(&self) -> bool {
        self.in_force.contains(&Shield::Write)
    }

    /// Whether schema changes are refused.
    pub fn blocks_ddl(&self) -> bool {
        self.in_force.contains(&Shield::Ddl)
    }

    /// Whether UPDATE/DELETE without WHERE is refused (checked after `write`).
    pub fn blocks_unbounded_write(&self) -> bool {
        self.in_force.contains(&Shield::UnboundedWrite)
    }

    /// Whether every access to `table` is refused.
    pub fn blocks_table(&self, table: &TableName) -> bool {
        self.in_force.contains(&Shield::Table(table.clone()))
    }

    /// Whether a call to `function` is refused. `builtin_dangerous` says whether
    /// the protocol crate's built-in list names it; this crate does not own that
    /// list, only the grants that lift its entries.
    pub fn blocks_function(&self, function: &FunctionName, builtin_dangerous: bool) -> bool {
        let shield = Shield::Function(function.clone());
        !self.lifted.contains_key(&shield) && (builtin_dangerous || self.in_force.contains(&shield))
    }

    /// Whether command lines matching the sensitive pattern `pattern` are
    /// refused (an `exec` connection's `command:<pattern>` shield).
    pub fn blocks_command(&self, pattern: &CommandPattern) -> bool {
        self.in_force.contains(&Shield::Command(pattern.clone()))
    }

    /// Whether opening the interactive shell of a `shell` connection is
    /// refused (no grant lifts `shell`).
    pub fn blocks_shell(&self) -> bool {
        self.in_force.contains(&Shield::Shell)
    }

    /// Whether SQL the analyser cannot follow is refused.
    pub fn refuses_unanalysable(&self) -> bool {
        self.refuse_unanalysable
    }

    /// The grants this session relies on: when one is revoked, the session must
    /// re-decide or end.
    pub fn grant_ids(&self) -> BTreeSet<&str> {
        self.lifted.values().map(|l| l.grant_id.as_str()).collect()
    }

    /// The next instant a lifted shield comes back by expiry, when the session
    /// must re-decide.
    pub fn next_change(&self) -> Option<OffsetDateTime> {
        self.lifted.values().map(|l| l.expires_at).min()
    }
}

/// Whether `entity` is masked on a connection before any grant: secrets and PII
/// always, optional entities when enabled or used as a column tag.
pub(crate) fn entity_in_force(data: &DataPolicy, entity: Entity) -> bool {
    match entity.tier() {
        Tier::Secret | Tier::Pii => true,
        Tier::Optional => {
            data.enable.contains(&entity)
                || data.tags.values().any(|t| *t == MaskTarget::Entity(entity))
        }
    }
}

/// Whether `role` may lift `shield`: a pattern names it and, for a secret, the
/// role is break-glass.
pub(crate) fn role_may_lift(role: &RoleConfig, shield: &Shield) -> bool {
    role.may_lift.iter().any(|p| p.matches(shield)) && (!shield.is_secret() || role.break_glass)
}

/// A grant's lift that `decide` did not honour, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoredLift {
    /// The grant.
    pub grant_id: String,
    /// The shield it names.
    pub shield: Shield,
    /// Why it does not apply any more.
    pub reason: String,
}

/// Decides whether the session may start and under which shields; deny by
/// default.
pub fn decide(input: &PolicyInput<'_>) -> Decision {
    let PolicyInput {
        policy,
        identity,
        connection,
        grants,
        now,
    } = *input;
    let deny = |reason: DenyReason| {
        let explanation = explain::denied(policy, identity, connection, &reason, now);
        Decision {
            verdict: Verdict::Deny(reason),
            explanation,
        }
    };
    let Some(conn) = policy.connection(connection) else {
        return deny(DenyReason::UnknownConnection {
            connection: connection.to_string(),
        });
    };
    let known: Vec<String> = policy
        .known_roles(identity)
        .map(|r| r.name.clone())
        .collect();
    if known.is_empty() {
        return deny(DenyReason::NoRole {
            identity: identity.name.clone(),
        });
    }
    let covering: Vec<RoleConfig> = policy
        .covering_roles(identity, connection)
        .into_iter()
        .cloned()
        .collect();
    if covering.is_empty() {
        return deny(DenyReason::NotCovered {
            identity: identity.name.clone(),
            connection: connection.to_string(),
            roles: known,
        });
    }

    let mut shields = ShieldSet::baseline(&conn.data);
    if conn.kind != ConnectionKind::Postgres {
        // Writes, DDL and functions are SQL flows: an exec connection's
        // flows are its sensitive command patterns, and a logs connection
        // has none (reading is masked, so it needs no grant).
        shields.in_force.retain(|s| matches!(s, Shield::Unmask(_)));
        shields
            .in_force
            .extend(conn.sensitive_commands.iter().cloned().map(Shield::Command));
        if conn.kind == ConnectionKind::Shell {
            // A shell runs anything: it is always a sensitive flow.
            shields.in_force.insert(Shield::Shell);
        }
    }
    let mut active = Vec::new();
    let mut ignored = Vec::new();
    for grant in grants {
        if grant.identity != identity.name
            || grant.connection != conn.name
            || grant.status(now) != GrantStatus::Active
        {
            continue;
        }
        active.push(grant);
        for shield in &grant.lifts {
            match honour(grant, shield, &covering) {
                Ok(()) => {
                    let lift = Lift {
                        grant_id: grant.id.clone(),
                        expires_at: grant.expires_at,
                        break_glass: grant.break_glass,
                    };
                    shields
                        .lifted
                        .entry(shield.clone())
                        .and_modify(|l| {
                            if lift.expires_at > l.expires_at {
                                *l = lift.clone();
                            }
                        })
                        .or_insert(lift);
                }
                Err(reason) => ignored.push(IgnoredLift {
                    grant_id: grant.id.clone(),
                    shield: shield.clone(),
                    reason,
                }),
            }
        }
    }
    for shield in shields.lifted.keys() {
        shields.in_force.remove(shield);
    }

    let allowance = Allowance {
        connection: conn.name.clone(),
        roles: covering,
        shields,
    };
    let explanation = explain::allowed(policy, identity, conn, &allowance, &active, &ignored, now);
    Decision {
        verdict: Verdict::Allow(allowance),
        explanation,
    }
}

/// Whether a grant's lift still applies under the current policy: the grant's
/// role must still be held, cover the connection and permit the lift, and a
/// secret needs a break-glass grant. A reload that narrows a role therefore
/// narrows live grants too.
fn honour(grant: &Grant, shield: &Shield, covering: &[RoleConfig]) -> Result<(), String> {
    if shield.is_secret() && !grant.break_glass {
        return Err("a secret can only be lifted by a break-glass grant".to_string());
    }
    let Some(role) = covering.iter().find(|r| r.name == grant.role) else {
        return Err(format!(
            "role `{}` no longer covers this connection for you",
            grant.role
        ));
    };
    if !role_may_lift(role, shield) {
        return Err(format!("role `{}` no longer permits it", role.name));
    }
    Ok(())
}

/// One way to get a shield lifted: a role of the identity that permits it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiftOption {
    /// The role.
    pub role: String,
    /// The role's maximum grant, human readable (`2h`).
    pub max_duration: String,
    /// Approvals the role requires.
    pub approvals: u32,
    /// Roles whose members may approve.
    pub approvers: Vec<String>,
    /// Whether this would be a break-glass use (a secret lifted through a
    /// break-glass role), flagged loudly in the audit.
    pub break_glass: bool,
    /// The exact command to request it.
    pub command: String,
}

/// The identity's options for lifting `shield`, best first (the role
/// `validate_request` would pick for a lift of this shield alone).
pub(crate) fn lift_options(
    connection: &str,
    roles: &[RoleConfig],
    shield: &Shield,
    shields: &ShieldSet,
) -> Vec<LiftOption> {
    let mut lifts = Vec::new();
    if *shield == Shield::UnboundedWrite && shields.blocks_write() {
        lifts.push(Shield::Write);
    }
    lifts.push(shield.clone());
    let mut permitting: Vec<&RoleConfig> = roles
        .iter()
        .filter(|r| lifts.iter().all(|s| role_may_lift(r, s)))
        .collect();
    permitting.sort_by_key(|r| {
        (
            r.break_glass && !shield.is_secret(),
            r.approvals,
            r.name.clone(),
        )
    });
    permitting
        .into_iter()
        .map(|r| {
            let suggested = r.max_duration.min(SUGGESTED_DURATION);
            let lift_args: String = lifts
                .iter()
                .map(|s| format!(" --lift {}", s.shell_word()))
                .collect();
            LiftOption {
                role: r.name.clone(),
                max_duration: humantime::format_duration(r.max_duration).to_string(),
                approvals: r.approvals,
                approvers: r.approvers.iter().cloned().collect(),
                break_glass: r.break_glass && shield.is_secret(),
                command: format!(
                    "periscope request {connection}{lift_args} --for {} --reason \"...\"",
                    humantime::format_duration(suggested)
                ),
            }
        })
        .collect()
}

/// Why none of `roles` may lift `shield`, phrased as advice.
pub(crate) fn cannot_lift(roles: &[RoleConfig], shield: &Shield) -> String {
    let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
    if shield.is_secret()
        && roles
            .iter()
            .any(|r| r.may_lift.iter().any(|p| p.matches(shield)))
    {
        return "it reveals a secret: only a break-glass role may lift it".to_string();
    }
    format!("none of your roles ({}) may lift it", names.join(", "))
}

/// "1 approval from lead", "no approval needed".
pub(crate) fn approval_phrase(approvals: u32, approvers: &[String]) -> String {
    match approvals {
        0 => "granted at once, no approval needed".to_string(),
        1 => format!("1 approval from {}", approvers.join(" or ")),
        n => format!("{n} approvals from {}", approvers.join(" or ")),
    }
}
