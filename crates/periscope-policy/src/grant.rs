//! Requests and grants: the model the store persists and the pure rules of the
//! workflow (request, approve, deny, cancel, expire, revoke).
//!
//! Every function takes the current state and `now` and returns the next state
//! or a precise refusal; none of them reads a clock or writes anywhere. The
//! gateway persists the result and writes the audit event, so the rules can be
//! tested exhaustively here and applied identically by every replica.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::MIN_GRANT_DURATION;
use crate::policy::{Identity, Policy};
use crate::shield::{MaskTarget, Shield};

/// Fewest characters a reason may have once trimmed: enough for `INC-4411: x`,
/// too many for `fix` or `debug`.
pub const MIN_REASON_CHARS: usize = 10;

/// Most characters a reason may have; reasons are audit fields, not documents.
pub const MAX_REASON_CHARS: usize = 1000;

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Enough approvals were given (or none were needed): a grant exists.
    Approved,
    /// An approver refused it.
    Denied,
    /// Nobody decided before the pending deadline.
    Expired,
    /// The requester withdrew it.
    Cancelled,
}

impl RequestStatus {
    /// The stable lowercase name, as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Approved => "approved",
            RequestStatus::Denied => "denied",
            RequestStatus::Expired => "expired",
            RequestStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RequestStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            RequestStatus::Pending,
            RequestStatus::Approved,
            RequestStatus::Denied,
            RequestStatus::Expired,
            RequestStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.name() == s)
        .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// A status name that is not one of [`RequestStatus`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown request status `{0}` (pending, approved, denied, expired, cancelled)")]
pub struct UnknownStatus(pub String);

/// One approval given to a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The approving identity.
    pub approver: String,
    /// The approver role under which it approved.
    pub role: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A request for a grant, from creation to its final status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Caller-generated id (`req_...`).
    pub id: String,
    /// Who asked.
    pub requester: String,
    /// Which connection.
    pub connection: String,
    /// The shields to lift, sorted and without duplicates.
    pub lifts: Vec<Shield>,
    /// How long the grant lasts once approved.
    #[serde(rename = "duration_secs", with = "crate::serde_secs")]
    pub duration: Duration,
    /// Why, as given by the requester (trimmed).
    pub reason: String,
    /// The role through which the lifts are permitted.
    pub role: String,
    /// Approvals needed, copied from the role when the request was made.
    pub approvals_required: u32,
    /// Roles whose members may approve, copied from the role.
    pub approver_roles: Vec<String>,
    /// Whether the request lifts a secret (break-glass use, audited loudly).
    pub break_glass: bool,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it expires if still pending.
    #[serde(with = "time::serde::rfc3339")]
    pub pending_until: OffsetDateTime,
    /// Where it is in its life.
    pub status: RequestStatus,
    /// Approvals given so far.
    pub approvals: Vec<Approval>,
    /// When it left `pending`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    /// Who denied or cancelled it.
    pub decided_by: Option<String>,
    /// The denial reason.
    pub decision_reason: Option<String>,
}

/// A temporary scope: identity + connection + lifted shields + window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Caller-generated id (`gr_...`).
    pub id: String,
    /// The request it came from.
    pub request_id: String,
    /// Whom it is for.
    pub identity: String,
    /// Which connection.
    pub connection: String,
    /// The shields it lifts.
    pub lifts: Vec<Shield>,
    /// The role through which it was granted.
    pub role: String,
    /// When it took effect (the final approval).
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// When it ends by itself.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was revoked, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
    /// Whether it lifts a secret (break-glass use).
    pub break_glass: bool,
    /// The requester's reason.
    pub reason: String,
    /// The approvals that granted it (empty for a role with `approvals = 0`).
    pub approvers: Vec<Approval>,
}

/// Where a grant is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// Not yet started.
    Scheduled,
    /// In effect.
    Active,
    /// Ended by reaching `expires_at`.
    Expired,
    /// Ended by revocation.
    Revoked,
}

impl Grant {
    /// The grant's status at `now`; revocation wins over expiry once it happened.
    pub fn status(&self, now: OffsetDateTime) -> GrantStatus {
        match self.revoked_at {
            Some(at) if at <= now => GrantStatus::Revoked,
            _ if now < self.starts_at => GrantStatus::Scheduled,
            _ if now >= self.expires_at => GrantStatus::Expired,
            _ => GrantStatus::Active,
        }
    }
}

/// Whether `grant` lifts its shields at `now`: started, not expired, not revoked.
pub fn grant_is_active(grant: &Grant, now: OffsetDateTime) -> bool {
    grant.status(now) == GrantStatus::Active
}

/// A checked request, ready to be stored under an id the caller generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestPlan {
    /// Who asks.
    pub requester: String,
    /// Which connection.
    pub connection: String,
    /// The shields to lift, sorted and without duplicates.
    pub lifts: Vec<Shield>,
    /// Grant duration, whole seconds.
    #[serde(rename = "duration_secs", with = "crate::serde_secs")]
    pub duration: Duration,
    /// Trimmed reason.
    pub reason: String,
    /// The role chosen to permit the lifts.
    pub role: String,
    /// Approvals the role requires.
    pub approvals_required: u32,
    /// Roles whose members may approve.
    pub approver_roles: Vec<String>,
    /// Whether a secret is lifted.
    pub break_glass: bool,
    /// When the request is made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it expires if nobody decides.
    #[serde(with = "time::serde::rfc3339")]
    pub pending_until: OffsetDateTime,
}

/// A new request, and its grant when the role needs no approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Waiting for approvals.
    Pending(Request),
    /// Granted at once (`approvals = 0`).
    Granted {
        /// The request, already `approved`.
        request: Request,
        /// The grant to store under a new id.
        grant: GrantTerms,
    },
}

impl RequestPlan {
    /// Turns the plan into a stored request with the caller's `id`; a role with
    /// `approvals = 0` grants it immediately.
    pub fn open(self, id: impl Into<String>) -> Opened {
        let request = Request {
            id: id.into(),
            requester: self.requester,
            connection: self.connection,
            lifts: self.lifts,
            duration: self.duration,
            reason: self.reason,
            role: self.role,
            approvals_required: self.approvals_required,
            approver_roles: self.approver_roles,
            break_glass: self.break_glass,
            created_at: self.created_at,
            pending_until: self.pending_until,
            status: RequestStatus::Pending,
            approvals: Vec::new(),
            decided_at: None,
            decided_by: None,
            decision_reason: None,
        };
        if request.approvals_required == 0 {
            let now = request.created_at;
            let (request, grant) = grant_now(request, now);
            Opened::Granted { request, grant }
        } else {
            Opened::Pending(request)
        }
    }
}

/// Everything of a grant but its id, which the caller generates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTerms(Box<Grant>);

impl GrantTerms {
    /// The grant, under the caller's `id`.
    pub fn into_grant(self, id: impl Into<String>) -> Grant {
        let mut grant = *self.0;
        grant.id = id.into();
        grant
    }

    /// When the grant will end by itself.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.0.expires_at
    }
}

fn grant_now(mut request: Request, now: OffsetDateTime) -> (Request, GrantTerms) {
    request.status = RequestStatus::Approved;
    request.decided_at = Some(now);
    let span = time::Duration::try_from(request.duration).unwrap_or(time::Duration::MAX);
    let grant = Grant {
        id: String::new(),
        request_id: request.id.clone(),
        identity: request.requester.clone(),
        connection: request.connection.clone(),
        lifts: request.lifts.clone(),
        role: request.role.clone(),
        starts_at: now,
        expires_at: now.saturating_add(span),
        revoked_at: None,
        revoked_by: None,
        break_glass: request.break_glass,
        reason: request.reason.clone(),
        approvers: request.approvals.clone(),
    };
    (request, GrantTerms(Box::new(grant)))
}

/// Why a request was refused before being stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No connection has this name.
    #[error("unknown connection `{0}`")]
    UnknownConnection(String),
    /// None of the requester's roles covers the connection.
    #[error("none of your roles covers connection `{0}`")]
    NotCovered(String),
    /// The request lifts nothing.
    #[error("name at least one shield to lift, e.g. `--lift unmask:email`")]
    NothingRequested,
    /// The reason is missing, too short or a placeholder.
    #[error(
        "a reason is required: say why you need this, e.g. `INC-4411: refund stuck` ({MIN_REASON_CHARS} to {MAX_REASON_CHARS} characters)"
    )]
    Reason,
    /// The shield is not in force on this connection, so there is nothing to lift.
    #[error("`{shield}` is not a shield on `{connection}`: nothing to lift")]
    NotAShield {
        /// The shield asked for.
        shield: Shield,
        /// The connection.
        connection: String,
    },
    /// `unbounded-write` without `write`.
    #[error("`unbounded-write` only matters together with `write`: add `--lift write`")]
    UnboundedWithoutWrite,
    /// The duration is below the minimum.
    #[error(
        "a grant lasts at least {}",
        humantime::format_duration(MIN_GRANT_DURATION)
    )]
    TooShort,
    /// The duration exceeds every suitable role's maximum.
    #[error(
        "{requested} is longer than role `{role}` allows (at most {max})",
        requested = humantime::format_duration(*.requested),
        max = humantime::format_duration(*.max)
    )]
    TooLong {
        /// The duration asked for.
        requested: Duration,
        /// The largest maximum among the roles that permit the lifts.
        max: Duration,
        /// The role with that maximum.
        role: String,
    },
    /// No role of the requester may lift this shield on this connection.
    #[error("none of your roles ({roles}) may lift `{shield}`", roles = .roles.join(", "))]
    NotPermitted {
        /// The shield.
        shield: Shield,
        /// The requester's roles covering the connection.
        roles: Vec<String>,
    },
    /// The shield is a secret and no covering break-glass role permits it.
    #[error("`{shield}` reveals a secret: only a break-glass role may lift it")]
    NeedsBreakGlass {
        /// The secret shield.
        shield: Shield,
    },
    /// Each lift is permitted by some role, but no single role permits them all.
    #[error("no single role permits all of these lifts together; request them separately")]
    SplitRequired,
}

/// Checks a request against the policy and picks the role that will govern it.
///
/// Among the requester's roles covering `connection` that permit every lift for
/// the requested duration, the choice prefers a role that is not break-glass
/// (unless a secret is lifted), then the fewest approvals, then the name, so the
/// same request always lands on the same role.
pub fn validate_request(
    policy: &Policy,
    requester: &Identity,
    connection: &str,
    lifts: &[Shield],
    duration: Duration,
    reason: &str,
    now: OffsetDateTime,
) -> Result<RequestPlan, RequestError> {
    let conn = policy
        .connection(connection)
        .ok_or_else(|| RequestError::UnknownConnection(connection.to_string()))?;
    let covering = policy.covering_roles(requester, connection);
    if covering.is_empty() {
        return Err(RequestError::NotCovered(connection.to_string()));
    }
    let reason = check_reason(reason)?;
    let lifts: BTreeSet<Shield> = lifts.iter().cloned().collect();
    if lifts.is_empty() {
        return Err(RequestError::NothingRequested);
    }
    for shield in &lifts {
        let exists = match shield {
            Shield::Unmask(MaskTarget::Tag(t)) => conn
                .data
                .tags
                .values()
                .any(|v| matches!(v, MaskTarget::Tag(x) if x == t)),
            Shield::Unmask(MaskTarget::Entity(e)) => crate::decide::entity_in_force(&conn.data, *e),
            Shield::Table(t) => conn.data.sensitive_tables.contains(t),
            Shield::Command(p) => conn.sensitive_commands.contains(p),
            Shield::Shell => conn.kind == crate::ConnectionKind::Shell,
            Shield::Write | Shield::Ddl | Shield::UnboundedWrite | Shield::Function(_) => {
                conn.kind == crate::ConnectionKind::Postgres
            }
        };
        if !exists {
            return Err(RequestError::NotAShield {
                shield: shield.clone(),
                connection: connection.to_string(),
            });
        }
    }
    if lifts.contains(&Shield::UnboundedWrite) && !lifts.contains(&Shield::Write) {
        return Err(RequestError::UnboundedWithoutWrite);
    }
    let duration = Duration::from_secs(duration.as_secs());
    if duration < MIN_GRANT_DURATION {
        return Err(RequestError::TooShort);
    }

    // Every lift must be permitted by at least one role, secrets by a break-glass one.
    for shield in &lifts {
        if !covering
            .iter()
            .any(|r| crate::decide::role_may_lift(r, shield))
        {
            if covering
                .iter()
                .any(|r| r.may_lift.iter().any(|p| p.matches(shield)))
            {
                return Err(RequestError::NeedsBreakGlass {
                    shield: shield.clone(),
                });
            }
            return Err(RequestError::NotPermitted {
                shield: shield.clone(),
                roles: covering.iter().map(|r| r.name.clone()).collect(),
            });
        }
    }
    let permitting: Vec<_> = covering
        .iter()
        .filter(|r| lifts.iter().all(|s| crate::decide::role_may_lift(r, s)))
        .collect();
    if permitting.is_empty() {
        return Err(RequestError::SplitRequired);
    }
    let secret = lifts.iter().any(Shield::is_secret);
    let role = permitting
        .iter()
        .filter(|r| r.max_duration >= duration)
        .min_by_key(|r| (r.break_glass && !secret, r.approvals, r.name.clone()))
        .ok_or_else(|| {
            let longest = permitting
                .iter()
                .max_by_key(|r| r.max_duration)
                .expect("permitting is not empty");
            RequestError::TooLong {
                requested: duration,
                max: longest.max_duration,
                role: longest.name.clone(),
            }
        })?;

    let ttl = time::Duration::try_from(policy.pending_ttl()).unwrap_or(time::Duration::MAX);
    Ok(RequestPlan {
        requester: requester.name.clone(),
        connection: connection.to_string(),
        lifts: lifts.into_iter().collect(),
        duration,
        reason,
        role: role.name.clone(),
        approvals_required: role.approvals,
        approver_roles: role.approvers.iter().cloned().collect(),
        break_glass: secret,
        created_at: now,
        pending_until: now.saturating_add(ttl),
    })
}

/// Trims a reason and refuses empty, short or placeholder ones (`...`, `n/a`,
/// `todo`), so the audit trail always says why.
pub fn check_reason(reason: &str) -> Result<String, RequestError> {
    let trimmed = reason.trim();
    let chars = trimmed.chars().count();
    let letters = trimmed.chars().filter(|c| c.is_alphanumeric()).count();
    let placeholder = trimmed
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    const PLACEHOLDERS: &[&str] = &[
        "n/a",
        "na",
        "none",
        "todo",
        "tbd",
        "test",
        "testing",
        "asdf",
        "xxx",
        "reason",
        "debug",
        "debugging",
    ];
    if !(MIN_REASON_CHARS..=MAX_REASON_CHARS).contains(&chars)
        || letters < 3
        || PLACEHOLDERS.contains(&placeholder.as_str())
    {
        return Err(RequestError::Reason);
    }
    Ok(trimmed.to_string())
}

/// Why an approval, denial or cancellation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The request was already decided.
    #[error("request {id} is {status}, not pending")]
    NotPending {
        /// The request.
        id: String,
        /// Its status.
        status: RequestStatus,
    },
    /// The pending deadline passed; the caller should mark it expired.
    #[error("request {0} expired before it was decided; ask for a new one")]
    Expired(String),
    /// The requester tried to approve or deny their own request.
    #[error("you cannot approve or deny your own request")]
    OwnRequest,
    /// The identity holds none of the approver roles.
    #[error("only members of {roles} may decide this request", roles = .0.join(", "))]
    NotAnApprover(Vec<String>),
    /// The same approver approved already.
    #[error("{0} already approved this request; another approver is needed")]
    AlreadyApproved(String),
    /// A denial without a reason.
    #[error("a denial needs a reason")]
    ReasonRequired,
    /// Someone other than the requester tried to cancel.
    #[error("only the requester may cancel a request")]
    NotRequester,
}

/// The result of one accepted approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// More approvals are needed.
    Pending {
        /// The request with the approval recorded.
        request: Request,
        /// How many more approvals are needed.
        remaining: u32,
    },
    /// The last approval: the grant starts now.
    Granted {
        /// The request, now `approved`.
        request: Request,
        /// The grant to store under a new id.
        grant: GrantTerms,
    },
}

fn check_pending(request: &Request, now: OffsetDateTime) -> Result<(), ApprovalError> {
    if request.status != RequestStatus::Pending {
        return Err(ApprovalError::NotPending {
            id: request.id.clone(),
            status: request.status,
        });
    }
    if now >= request.pending_until {
        return Err(ApprovalError::Expired(request.id.clone()));
    }
    Ok(())
}

/// The first of `request`'s approver roles that `identity` holds.
fn approver_role(request: &Request, identity: &Identity) -> Result<String, ApprovalError> {
    if identity.name == request.requester {
        return Err(ApprovalError::OwnRequest);
    }
    request
        .approver_roles
        .iter()
        .find(|r| identity.roles.contains(*r))
        .cloned()
        .ok_or_else(|| ApprovalError::NotAnApprover(request.approver_roles.clone()))
}

/// Records `approver`'s approval; the approval that reaches the role's count
/// grants, starting at `now` for the requested duration.
pub fn apply_approval(
    request: &Request,
    approver: &Identity,
    now: OffsetDateTime,
) -> Result<ApprovalOutcome, ApprovalError> {
    check_pending(request, now)?;
    let role = approver_role(request, approver)?;
    if request
        .approvals
        .iter()
        .any(|a| a.approver == approver.name)
    {
        return Err(ApprovalError::AlreadyApproved(approver.name.clone()));
    }
    let mut request = request.clone();
    request.approvals.push(Approval {
        approver: approver.name.clone(),
        role,
        at: now,
    });
    let given = u32::try_from(request.approvals.len()).unwrap_or(u32::MAX);
    if given >= request.approvals_required {
        let (request, grant) = grant_now(request, now);
        Ok(ApprovalOutcome::Granted { request, grant })
    } else {
        Ok(ApprovalOutcome::Pending {
            remaining: request.approvals_required - given,
            request,
        })
    }
}

/// Refuses a pending request; only an approver may, with a reason.
pub fn deny_request(
    request: &Request,
    denier: &Identity,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Request, ApprovalError> {
    check_pending(request, now)?;
    approver_role(request, denier)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApprovalError::ReasonRequired);
    }
    let mut request = request.clone();
    request.status = RequestStatus::Denied;
    request.decided_at = Some(now);
    request.decided_by = Some(denier.name.clone());
    request.decision_reason = Some(reason.to_string());
    Ok(request)
}

/// Withdraws a pending request; only its requester may.
pub fn cancel_request(
    request: &Request,
    by: &Identity,
    now: OffsetDateTime,
) -> Result<Request, ApprovalError> {
    if by.name != request.requester {
        return Err(ApprovalError::NotRequester);
    }
    check_pending(request, now)?;
    let mut request = request.clone();
    request.status = RequestStatus::Cancelled;
    request.decided_at = Some(now);
    request.decided_by = Some(by.name.clone());
    Ok(request)
}

/// The expired form of a pending request whose deadline has passed, or `None`
/// when there is nothing to do; the background job calls this.
pub fn expire_request(request: &Request, now: OffsetDateTime) -> Option<Request> {
    if request.status != RequestStatus::Pending || now < request.pending_until {
        return None;
    }
    let mut request = request.clone();
    request.status = RequestStatus::Expired;
    request.decided_at = Some(request.pending_until);
    Some(request)
}

/// Why a revocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    /// The grant already ended.
    #[error("grant {id} is already {status:?}")]
    AlreadyEnded {
        /// The grant.
        id: String,
        /// Its status.
        status: GrantStatus,
    },
    /// The identity may not revoke this grant.
    #[error(
        "only the grantee, an approver of role `{0}` or an administrator may revoke this grant"
    )]
    NotAllowed(String),
}

/// Ends a grant now. The grantee may give it up; members of the granting role's
/// approver roles and administrators may take it away.
pub fn revoke_grant(
    policy: &Policy,
    grant: &Grant,
    by: &Identity,
    now: OffsetDateTime,
) -> Result<Grant, RevokeError> {
    match grant.status(now) {
        GrantStatus::Active | GrantStatus::Scheduled => {}
        status => {
            return Err(RevokeError::AlreadyEnded {
                id: grant.id.clone(),
                status,
            });
        }
    }
    let approver = policy
        .role(&grant.role)
        .is_some_and(|role| role.approvers.iter().any(|a| by.roles.contains(a)));
    if by.name != grant.identity && !approver && !policy.is_admin(by) {
        return Err(RevokeError::NotAllowed(grant.role.clone()));
    }
    let mut grant = grant.clone();
    grant.revoked_at = Some(now);
    grant.revoked_by = Some(by.name.clone());
    Ok(grant)
}
