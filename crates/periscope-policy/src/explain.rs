//! `periscope policy explain USER CONNECTION`: the decision, shield by shield,
//! with the exact command that would lift each one.
//!
//! The [`Explanation`] is plain data (serialisable to JSON for the API) and
//! renders to text for the CLI; both come from the same [`crate::decide`] call
//! the proxy makes, so the explanation cannot drift from what is enforced.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::decide::{
    Allowance, DenyReason, IgnoredLift, LiftOption, approval_phrase, cannot_lift, lift_options,
};
use crate::grant::Grant;
use crate::policy::{ConnectionPolicy, Identity, Policy};
use crate::shield::{MaskTarget, Shield};

/// The decision for one identity on one connection at one instant, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The identity.
    pub identity: String,
    /// Every role the identity holds.
    pub roles: Vec<String>,
    /// The connection.
    pub connection: String,
    /// The instant of the decision.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Whether a session may start.
    pub may_connect: bool,
    /// Why or why not, in one sentence.
    pub reason: String,
    /// The identity's roles that cover the connection.
    pub via_roles: Vec<String>,
    /// Whether the connection declares a data policy (else the defaults apply).
    pub declared_data_policy: bool,
    /// Whether SQL the analyser cannot follow is refused.
    pub refuse_unanalysable: bool,
    /// Every shield, in force or lifted, with how to lift it.
    pub shields: Vec<ShieldLine>,
    /// The identity's active grants on this connection.
    pub grants: Vec<GrantLine>,
    /// Anything else worth knowing (ignored grant lifts, unknown roles...).
    pub notes: Vec<String>,
}

/// One shield (or, for secrets nobody may lift, one group of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShieldLine {
    /// The shield as written on the command line, or `unmask:<secret>` /
    /// `function:*` for the secret group and the built-in function list.
    pub shield: String,
    /// What it does.
    pub effect: String,
    /// In force or lifted.
    #[serde(flatten)]
    pub state: ShieldState,
    /// The identity's ways to lift it, best first.
    pub lift: Vec<LiftOption>,
    /// Why it cannot be lifted, when `lift` is empty and it is in force.
    pub cannot_lift: Option<String>,
}

/// Whether a shield protects the session now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ShieldState {
    /// It protects the session.
    InForce,
    /// A grant lifts it until `expires_at`.
    Lifted {
        /// The grant.
        grant: String,
        /// When the shield comes back.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

/// An active grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantLine {
    /// Grant id.
    pub id: String,
    /// The granting role.
    pub role: String,
    /// Shields it lifts.
    pub lifts: Vec<String>,
    /// When it ends.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Seconds left at the time of the decision.
    pub remaining_secs: u64,
    /// Whether it is a break-glass grant.
    pub break_glass: bool,
    /// The requester's reason.
    pub reason: String,
}

fn base(
    policy: &Policy,
    identity: &Identity,
    connection: &str,
    now: OffsetDateTime,
) -> Explanation {
    let notes = identity
        .roles
        .iter()
        .filter(|r| policy.role(r).is_none())
        .map(|r| format!("role `{r}` is not defined in the configuration and is ignored"))
        .collect();
    Explanation {
        identity: identity.name.clone(),
        roles: identity.roles.iter().cloned().collect(),
        connection: connection.to_string(),
        at: now,
        may_connect: false,
        reason: String::new(),
        via_roles: Vec::new(),
        declared_data_policy: false,
        refuse_unanalysable: true,
        shields: Vec::new(),
        grants: Vec::new(),
        notes,
    }
}

pub(crate) fn denied(
    policy: &Policy,
    identity: &Identity,
    connection: &str,
    reason: &DenyReason,
    now: OffsetDateTime,
) -> Explanation {
    let mut e = base(policy, identity, connection, now);
    e.reason = reason.to_string();
    if let Some(conn) = policy.connection(connection) {
        let covering: Vec<&str> = conn.roles.iter().map(String::as_str).collect();
        e.notes.push(if covering.is_empty() {
            format!("no role covers `{connection}`")
        } else {
            format!(
                "roles covering `{connection}`: {}; an administrator can give one to `{}`",
                covering.join(", "),
                identity.name
            )
        });
    }
    e
}

pub(crate) fn allowed(
    policy: &Policy,
    identity: &Identity,
    conn: &ConnectionPolicy,
    allowance: &Allowance,
    active: &[&Grant],
    ignored: &[IgnoredLift],
    now: OffsetDateTime,
) -> Explanation {
    let mut e = base(policy, identity, &conn.name, now);
    let roles: Vec<_> = allowance
        .role_names()
        .into_iter()
        .filter_map(|n| policy.role(n).cloned())
        .collect();
    let shields = allowance.shields();
    e.may_connect = true;
    e.via_roles = roles.iter().map(|r| r.name.clone()).collect();
    e.reason = format!(
        "`{}` may connect through role{} {}",
        identity.name,
        if roles.len() > 1 { "s" } else { "" },
        e.via_roles.join(", ")
    );
    e.declared_data_policy = conn.declared_data_policy;
    e.refuse_unanalysable = shields.refuses_unanalysable();

    let line = |shield: &Shield, effect: String| {
        let lift = lift_options(&conn.name, &roles, shield, shields);
        let cannot = lift.is_empty().then(|| cannot_lift(&roles, shield));
        ShieldLine {
            shield: shield.to_string(),
            effect,
            state: ShieldState::InForce,
            lift,
            cannot_lift: cannot,
        }
    };

    let mut secret_group = Vec::new();
    let (unmask, others): (Vec<&Shield>, Vec<&Shield>) = shields
        .in_force()
        .partition(|s| matches!(s, Shield::Unmask(_)));
    let (secrets, plain): (Vec<&Shield>, Vec<&Shield>) =
        unmask.into_iter().partition(|s| s.is_secret());
    for shield in plain {
        e.shields.push(line(shield, mask_effect(shield, shields)));
    }
    for shield in secrets {
        let l = line(shield, mask_effect(shield, shields));
        if l.lift.is_empty() {
            if let Shield::Unmask(target) = shield {
                secret_group.push(target.to_string());
            }
        } else {
            e.shields.push(l);
        }
    }
    if !secret_group.is_empty() {
        e.shields.push(ShieldLine {
            shield: "unmask:<secret>".to_string(),
            effect: format!("secrets are always masked: {}", secret_group.join(", ")),
            state: ShieldState::InForce,
            lift: Vec::new(),
            cannot_lift: Some(
                "only a break-glass role may lift a secret, and none of your roles may lift these"
                    .to_string(),
            ),
        });
    }
    for shield in others {
        e.shields.push(line(shield, shield.effect()));
    }
    // Functions a role may lift by name that are not blocked by the data policy:
    // the built-in dangerous list (owned by the protocol crate) may block them.
    let named_functions: BTreeSet<&Shield> = roles
        .iter()
        .flat_map(|r| r.may_lift.iter().filter_map(|p| p.exact()))
        .filter(|s| {
            matches!(s, Shield::Function(_))
                && !shields.is_in_force(s)
                && !shields.lifted().contains_key(*s)
        })
        .collect();
    for shield in named_functions {
        let effect = format!(
            "{} when it is on the built-in dangerous list",
            shield.effect()
        );
        e.shields.push(line(shield, effect));
    }
    e.shields.push(ShieldLine {
        shield: "function:*".to_string(),
        effect: "the built-in dangerous functions (server file access, program execution, \
                 configuration changes...) are refused"
            .to_string(),
        state: ShieldState::InForce,
        lift: Vec::new(),
        cannot_lift: Some(
            "lift one by name with `--lift function:NAME` when a role's `may_lift` allows it"
                .to_string(),
        ),
    });
    for (shield, lift) in shields.lifted() {
        e.shields.push(ShieldLine {
            shield: shield.to_string(),
            effect: match shield {
                Shield::Unmask(_) => mask_effect(shield, shields),
                _ => shield.effect(),
            },
            state: ShieldState::Lifted {
                grant: lift.grant_id.clone(),
                expires_at: lift.expires_at,
            },
            lift: Vec::new(),
            cannot_lift: None,
        });
    }

    for grant in active {
        e.grants.push(GrantLine {
            id: grant.id.clone(),
            role: grant.role.clone(),
            lifts: grant.lifts.iter().map(Shield::to_string).collect(),
            expires_at: grant.expires_at,
            remaining_secs: remaining(grant.expires_at, now).as_secs(),
            break_glass: grant.break_glass,
            reason: grant.reason.clone(),
        });
    }
    for i in ignored {
        e.notes.push(format!(
            "grant {} names `{}` but it is not lifted: {}",
            i.grant_id, i.shield, i.reason
        ));
    }
    if !conn.discovered.is_empty() {
        let columns: Vec<String> = conn.discovered.iter().map(ToString::to_string).collect();
        e.notes.push(format!(
            "tagged by discovery (`periscope discover {} --apply`): {}",
            conn.name,
            columns.join(", ")
        ));
    }
    if !conn.declared_data_policy {
        e.notes.push(format!(
            "`{}` declares no data policy: the fully shielded defaults apply",
            conn.name
        ));
    }
    e
}

fn mask_effect(shield: &Shield, shields: &crate::decide::ShieldSet) -> String {
    match shield {
        Shield::Unmask(MaskTarget::Entity(entity)) => {
            let op = shields
                .mask_operator(*entity)
                .map_or(String::new(), |op| format!(" (operator: {op})"));
            let columns: Vec<String> = shields
                .column_tags()
                .iter()
                .filter(|(_, t)| matches!(t, MaskTarget::Entity(x) if x == entity))
                .map(|(c, _)| c.to_string())
                .collect();
            if columns.is_empty() {
                format!("{entity} values are masked{op}")
            } else {
                format!(
                    "{entity} values are masked{op}; columns tagged `{entity}` are masked whole: {}",
                    columns.join(", ")
                )
            }
        }
        Shield::Unmask(MaskTarget::Tag(tag)) => {
            let columns: Vec<String> = shields
                .column_tags()
                .iter()
                .filter(|(_, t)| matches!(t, MaskTarget::Tag(x) if x == tag))
                .map(|(c, _)| c.to_string())
                .collect();
            format!(
                "columns tagged `{tag}` are masked whole: {}",
                columns.join(", ")
            )
        }
        other => other.effect(),
    }
}

fn remaining(until: OffsetDateTime, now: OffsetDateTime) -> Duration {
    let secs = (until - now).whole_seconds().max(0);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

impl Explanation {
    /// The text `periscope policy explain` prints.
    pub fn to_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} on {} at {}",
            self.identity,
            self.connection,
            timestamp(self.at)
        )?;
        if !self.may_connect {
            writeln!(f, "may connect: no: {}", self.reason)?;
            for note in &self.notes {
                writeln!(f, "  {note}")?;
            }
            return Ok(());
        }
        writeln!(f, "may connect: yes, through {}", self.via_roles.join(", "))?;
        writeln!(
            f,
            "unanalysable SQL: {}",
            if self.refuse_unanalysable {
                "refused"
            } else {
                "allowed (refuse_unanalysable = false)"
            }
        )?;

        writeln!(f, "\nshields in force:")?;
        for line in self
            .shields
            .iter()
            .filter(|l| l.state == ShieldState::InForce)
        {
            writeln!(f, "  {}: {}", line.shield, line.effect)?;
            for o in &line.lift {
                writeln!(
                    f,
                    "    lift through role {}: up to {}, {}{}",
                    o.role,
                    o.max_duration,
                    approval_phrase(o.approvals, &o.approvers),
                    if o.break_glass {
                        " (break-glass, audited)"
                    } else {
                        ""
                    }
                )?;
                writeln!(f, "      {}", o.command)?;
            }
            if let Some(why) = &line.cannot_lift {
                writeln!(f, "    not liftable: {why}")?;
            }
        }

        let lifted: Vec<_> = self
            .shields
            .iter()
            .filter_map(|l| match &l.state {
                ShieldState::Lifted { grant, expires_at } => Some((l, grant, *expires_at)),
                ShieldState::InForce => None,
            })
            .collect();
        if !lifted.is_empty() {
            writeln!(f, "\nlifted by your grants:")?;
            for (line, grant, until) in lifted {
                writeln!(
                    f,
                    "  {}: by grant {grant} until {} ({} left)",
                    line.shield,
                    timestamp(until),
                    humantime::format_duration(remaining(until, self.at))
                )?;
            }
        }

        if !self.grants.is_empty() {
            writeln!(f, "\nactive grants:")?;
            for g in &self.grants {
                writeln!(
                    f,
                    "  {} (role {}{}): {} until {}, reason \"{}\"",
                    g.id,
                    g.role,
                    if g.break_glass { ", break-glass" } else { "" },
                    g.lifts.join(", "),
                    timestamp(g.expires_at),
                    g.reason
                )?;
            }
        }

        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for note in &self.notes {
                writeln!(f, "  - {note}")?;
            }
        }
        Ok(())
    }
}
