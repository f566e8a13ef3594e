//! From the internal models (policy, store) to the wire types of
//! `periscope-api`: the one place that decides what clients see.

use periscope_audit::AuditTime;
use periscope_policy as policy;
use time::OffsetDateTime;

/// The grant id of the grant created from request `request_id`.
///
/// A request yields at most one grant, so the grant's id is derived from the
/// request's (`req_X` → `gr_X`): listing a request can name its grant without
/// another lookup, and the link is visible in every id.
pub fn grant_id_for(request_id: &str) -> String {
    format!(
        "gr_{}",
        request_id.strip_prefix("req_").unwrap_or(request_id)
    )
}

/// A request as the API shows it.
pub fn request(r: &policy::Request) -> periscope_api::Request {
    let status = match r.status {
        policy::RequestStatus::Pending => periscope_api::RequestStatus::Pending,
        policy::RequestStatus::Approved => periscope_api::RequestStatus::Approved,
        policy::RequestStatus::Denied => periscope_api::RequestStatus::Denied,
        policy::RequestStatus::Expired => periscope_api::RequestStatus::Expired,
        policy::RequestStatus::Cancelled => periscope_api::RequestStatus::Cancelled,
    };
    let approved = r.status == policy::RequestStatus::Approved;
    periscope_api::Request {
        id: r.id.clone(),
        requester: r.requester.clone(),
        connection: r.connection.clone(),
        lifts: r.lifts.iter().map(ToString::to_string).collect(),
        duration_secs: r.duration.as_secs(),
        reason: r.reason.clone(),
        role: r.role.clone(),
        approvals_required: r.approvals_required,
        approver_roles: r.approver_roles.clone(),
        approvals: r
            .approvals
            .iter()
            .map(|a| periscope_api::Approval {
                approver: a.approver.clone(),
                at: a.at,
            })
            .collect(),
        break_glass: r.break_glass,
        status,
        created_at: r.created_at,
        decided_at: r.decided_at,
        decided_by: r.decided_by.clone().or_else(|| {
            approved
                .then(|| r.approvals.last().map(|a| a.approver.clone()))
                .flatten()
        }),
        decision_reason: r.decision_reason.clone(),
        grant_id: approved.then(|| grant_id_for(&r.id)),
    }
}

/// A grant as the API shows it, with its status at `now`.
pub fn grant(g: &policy::Grant, now: OffsetDateTime) -> periscope_api::Grant {
    let status = match g.status(now) {
        policy::GrantStatus::Active | policy::GrantStatus::Scheduled => {
            periscope_api::GrantStatus::Active
        }
        policy::GrantStatus::Expired => periscope_api::GrantStatus::Expired,
        policy::GrantStatus::Revoked => periscope_api::GrantStatus::Revoked,
    };
    periscope_api::Grant {
        id: g.id.clone(),
        request_id: g.request_id.clone(),
        identity: g.identity.clone(),
        connection: g.connection.clone(),
        lifts: g.lifts.iter().map(ToString::to_string).collect(),
        reason: g.reason.clone(),
        approvers: g.approvers.iter().map(|a| a.approver.clone()).collect(),
        break_glass: g.break_glass,
        starts_at: g.starts_at,
        expires_at: g.expires_at,
        status,
        revoked_at: g.revoked_at,
        revoked_by: g.revoked_by.clone(),
    }
}

/// An identity as admins see it.
pub fn identity(i: &periscope_store::Identity) -> periscope_api::Identity {
    periscope_api::Identity {
        name: i.name.clone(),
        roles: i.roles.clone(),
        disabled: !i.is_enabled(),
        created_at: i.created_at.to_datetime(),
    }
}

/// A token without its secret.
pub fn token(t: &periscope_store::TokenSummary) -> periscope_api::TokenSummary {
    let at = |t: &Option<AuditTime>| t.as_ref().map(AuditTime::to_datetime);
    periscope_api::TokenSummary {
        id: t.token_id.clone(),
        identity: t.identity.clone(),
        description: (!t.description.is_empty()).then(|| t.description.clone()),
        created_at: t.created_at.to_datetime(),
        expires_at: at(&t.expires_at),
        revoked_at: at(&t.revoked_at),
        last_used_at: at(&t.last_used_at),
    }
}
