//! The grant workflow: request, approve, deny, cancel, revoke, and who may see
//! what.
//!
//! Each operation reads the current object, lets `periscope-policy` compute
//! the next state (the rules live there, pure), and hands both to the store,
//! which writes the change and its audit events in one transaction only if
//! nobody changed the object meanwhile. Notifications (bus, webhook) follow
//! the commit, never precede it.

use std::time::{Duration, Instant};

use periscope_api as api;
use periscope_audit::{EventDraft, actions};
use periscope_policy::{
    ApprovalError, ApprovalOutcome, Grant, Opened, Request, RequestError, RequestStatus,
    RevokeError, Shield, WebhookEvent, apply_approval, cancel_request, deny_request, revoke_grant,
    validate_request,
};
use periscope_store::{GrantFilter, RequestFilter, StoreError};
use serde_json::json;

use crate::config::LoadedConfig;
use crate::convert::{self, grant_id_for};
use crate::gateway::{Caller, Gateway};
use crate::identity::random_id;
use crate::webhook::Notification;
use periscope_shield::grants::{EndReason, GrantEnded, GrantEvent, GrantStarted};

/// Why a step of the grant workflow was refused or failed. Each kind says
/// what the caller can do about it; the HTTP API maps kinds to statuses
/// (`api::failure`), the console and the CLI show the message and the hint.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The input breaks a rule (duration, lifts, a missing reason).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// No such request or grant, or the caller may not see it.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// Where to look.
        hint: Option<String>,
    },
    /// The caller may not do this (their own request, not an approver).
    #[error("{message}")]
    Forbidden {
        /// What was refused.
        message: String,
        /// Who or what can do it.
        hint: Option<String>,
    },
    /// The caller already did this, or another change won the race.
    #[error("{0}")]
    Conflict(String),
    /// The object's state does not allow it (no longer pending, ended).
    #[error("{0}")]
    InvalidState(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl GrantError {
    fn invalid(message: impl Into<String>) -> GrantError {
        GrantError::Invalid {
            message: message.into(),
            hint: None,
        }
    }

    fn not_found(message: impl Into<String>) -> GrantError {
        GrantError::NotFound {
            message: message.into(),
            hint: None,
        }
    }

    fn forbidden(message: impl Into<String>) -> GrantError {
        GrantError::Forbidden {
            message: message.into(),
            hint: None,
        }
    }

    fn conflict(message: impl Into<String>) -> GrantError {
        GrantError::Conflict(message.into())
    }

    fn invalid_state(message: impl Into<String>) -> GrantError {
        GrantError::InvalidState(message.into())
    }

    /// Adds a hint to the kinds that carry one.
    #[must_use]
    fn with_hint(mut self, text: impl Into<String>) -> GrantError {
        if let GrantError::Invalid { hint, .. }
        | GrantError::NotFound { hint, .. }
        | GrantError::Forbidden { hint, .. } = &mut self
        {
            *hint = Some(text.into());
        }
        self
    }

    /// What to do about it, when there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            GrantError::Invalid { hint, .. }
            | GrantError::NotFound { hint, .. }
            | GrantError::Forbidden { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// How often an approval is retried when another approval landed between the
/// read and the write.
const CONFLICT_RETRIES: usize = 5;

/// Most objects a listing returns.
pub const LIST_LIMIT: u32 = 500;

/// Which requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatusFilter {
    /// One status.
    Only(RequestStatus),
    /// Every status.
    All,
}

impl std::str::FromStr for RequestStatusFilter {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, GrantError> {
        if s == "all" {
            return Ok(RequestStatusFilter::All);
        }
        s.parse::<RequestStatus>()
            .map(RequestStatusFilter::Only)
            .map_err(|_| {
                GrantError::invalid(format!(
                    "unknown status `{s}`: use pending, approved, denied, cancelled, expired or all"
                ))
            })
    }
}

fn request_error(e: RequestError) -> GrantError {
    let message = e.to_string();
    match e {
        RequestError::UnknownConnection(_) => GrantError::not_found(message)
            .with_hint("`GET /v1/connections` (`periscope connections`) lists the connections"),
        RequestError::NotCovered(_)
        | RequestError::NotPermitted { .. }
        | RequestError::NeedsBreakGlass { .. } => GrantError::forbidden(message)
            .with_hint("`periscope policy explain` shows what you may lift and how"),
        RequestError::TooLong { max, .. } => GrantError::invalid(message).with_hint(format!(
            "ask for at most {}, e.g. --for {}",
            humantime::format_duration(max),
            humantime::format_duration(max)
        )),
        _ => GrantError::invalid(message),
    }
}

fn approval_error(e: ApprovalError, request: &Request) -> GrantError {
    let message = e.to_string();
    match e {
        ApprovalError::OwnRequest => GrantError::forbidden(message).with_hint(format!(
            "ask a member of {} to approve it",
            request.approver_roles.join(" or ")
        )),
        ApprovalError::NotAnApprover(_) | ApprovalError::NotRequester => {
            GrantError::forbidden(message)
        }
        ApprovalError::AlreadyApproved(_) => GrantError::conflict(message),
        ApprovalError::ReasonRequired => GrantError::invalid(message)
            .with_hint("say why, e.g. --reason \"not needed: use the replica\""),
        ApprovalError::NotPending { .. } => GrantError::invalid_state(message),
        ApprovalError::Expired(_) => GrantError::invalid_state(message),
    }
}

fn revoke_error(e: RevokeError) -> GrantError {
    let message = e.to_string();
    match e {
        RevokeError::AlreadyEnded { .. } => GrantError::invalid_state(message),
        RevokeError::NotAllowed(_) => GrantError::forbidden(message),
    }
}

/// The audit details of a request.
fn request_details(r: &Request) -> serde_json::Value {
    json!({
        "connection": r.connection,
        "lifts": r.lifts.iter().map(Shield::to_string).collect::<Vec<_>>(),
        "duration_secs": r.duration.as_secs(),
        "reason": r.reason,
        "role": r.role,
        "approvals_required": r.approvals_required,
        "approver_roles": r.approver_roles,
        "break_glass": r.break_glass,
    })
}

impl Gateway {
    fn may_see_request(&self, config: &LoadedConfig, caller: &Caller, r: &Request) -> bool {
        r.requester == caller.name()
            || config.policy.is_admin(&caller.policy_identity)
            || r.approver_roles
                .iter()
                .any(|role| caller.policy_identity.roles.contains(role))
    }

    fn may_see_grant(&self, config: &LoadedConfig, caller: &Caller, g: &Grant) -> bool {
        g.identity == caller.name()
            || config.policy.is_admin(&caller.policy_identity)
            || config.policy.role(&g.role).is_some_and(|role| {
                role.approvers
                    .iter()
                    .any(|a| caller.policy_identity.roles.contains(a))
            })
    }

    /// The drafts recording a grant's start (and its break-glass use).
    fn grant_start_drafts(&self, actor: &str, grant: &Grant) -> Vec<EventDraft> {
        let lifts: Vec<String> = grant.lifts.iter().map(Shield::to_string).collect();
        let mut drafts = vec![
            self.draft(actor, actions::GRANT_START, &grant.id)
                .with_grant(&grant.id)
                .with_details(json!({
                    "identity": grant.identity,
                    "connection": grant.connection,
                    "lifts": lifts,
                    "role": grant.role,
                    "request_id": grant.request_id,
                    "approvers": grant.approvers.iter().map(|a| &a.approver).collect::<Vec<_>>(),
                    "starts_at": periscope_audit::AuditTime::from_datetime(grant.starts_at).ok(),
                    "expires_at": periscope_audit::AuditTime::from_datetime(grant.expires_at).ok(),
                    "break_glass": grant.break_glass,
                })),
        ];
        if grant.break_glass {
            let secrets: Vec<String> = grant
                .lifts
                .iter()
                .filter(|s| s.is_secret())
                .map(Shield::to_string)
                .collect();
            drafts.push(
                self.draft(&grant.identity, actions::GRANT_BREAK_GLASS, &grant.id)
                    .with_grant(&grant.id)
                    .with_details(json!({
                        "connection": grant.connection,
                        "secrets_unmasked": secrets,
                        "role": grant.role,
                        "reason": grant.reason,
                        "break_glass": true,
                    })),
            );
            tracing::warn!(
                grant = %grant.id, identity = %grant.identity, connection = %grant.connection,
                "BREAK-GLASS grant started: secrets are unmasked"
            );
        }
        drafts
    }

    fn announce_start(&self, grant: &Grant) {
        self.publish(GrantEvent::Started(GrantStarted {
            grant_id: grant.id.clone(),
            identity: grant.identity.clone(),
            connection: grant.connection.clone(),
        }));
    }

    /// `POST /v1/requests`: asks for a grant; granted at once when the role
    /// needs no approval.
    pub async fn create_request(
        &self,
        caller: &Caller,
        body: &api::CreateRequest,
    ) -> Result<(api::Request, Option<api::Grant>), GrantError> {
        let lifts = body
            .lifts
            .iter()
            .map(|s| {
                s.parse::<Shield>()
                    .map_err(|e| GrantError::invalid(format!("`{s}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let duration = parse_duration(&body.duration, "duration")?;
        let config = self.config();
        let now = self.now();
        let plan = validate_request(
            &config.policy,
            &caller.policy_identity,
            &body.connection,
            &lifts,
            duration,
            &body.reason,
            now,
        )
        .map_err(request_error)?;
        let id = random_id("req_");
        let started = Instant::now();
        let (request, grant) = match plan.open(&id) {
            Opened::Pending(request) => (request, None),
            Opened::Granted { request, grant } => {
                let grant = grant.into_grant(grant_id_for(&id));
                (request, Some(grant))
            }
        };
        let mut drafts = vec![
            self.draft(caller.name(), actions::REQUEST_CREATE, &request.id)
                .with_details(request_details(&request)),
        ];
        if let Some(grant) = &grant {
            drafts.extend(self.grant_start_drafts(caller.name(), grant));
        }
        let count = drafts.len();
        self.store()
            .create_request(&request, grant.as_ref(), drafts)
            .await?;
        self.count_audit(count, started);
        tracing::info!(request = %request.id, requester = %request.requester, connection = %request.connection, "request created");

        let api_request = convert::request(&request);
        let api_grant = grant.as_ref().map(|g| convert::grant(g, now));
        self.webhook().notify(
            &config,
            Notification {
                event: WebhookEvent::Request,
                actor: caller.name().to_string(),
                request: Some(api_request.clone()),
                grant: None,
            },
        );
        if let Some(grant) = &grant {
            self.announce_start(grant);
            self.webhook().notify(
                &config,
                Notification {
                    event: WebhookEvent::Approve,
                    actor: caller.name().to_string(),
                    request: Some(api_request.clone()),
                    grant: api_grant.clone(),
                },
            );
        }
        Ok((api_request, api_grant))
    }

    async fn visible_request(&self, caller: &Caller, id: &str) -> Result<Request, GrantError> {
        let hidden = || GrantError::not_found(format!("request {id} not found"));
        let request = match self.store().get_request(id).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => return Err(hidden()),
            Err(e) => return Err(e.into()),
        };
        if !self.may_see_request(&self.config(), caller, &request) {
            return Err(hidden());
        }
        Ok(request)
    }

    /// `GET /v1/requests/{id}`.
    pub async fn get_request(&self, caller: &Caller, id: &str) -> Result<api::Request, GrantError> {
        Ok(convert::request(&self.visible_request(caller, id).await?))
    }

    /// `GET /v1/requests`: by default the pending requests the caller made or
    /// may decide; administrators see everyone's.
    pub async fn list_requests(
        &self,
        caller: &Caller,
        status: Option<RequestStatusFilter>,
        identity: Option<&str>,
    ) -> Result<Vec<api::Request>, GrantError> {
        let status = match status.unwrap_or(RequestStatusFilter::Only(RequestStatus::Pending)) {
            RequestStatusFilter::Only(s) => Some(s),
            RequestStatusFilter::All => None,
        };
        let requests = self
            .store()
            .list_requests(&RequestFilter {
                status,
                requester: identity.map(str::to_owned),
                connection: None,
                limit: LIST_LIMIT,
            })
            .await?;
        let config = self.config();
        Ok(requests
            .iter()
            .filter(|r| self.may_see_request(&config, caller, r))
            .map(convert::request)
            .collect())
    }

    /// `POST /v1/requests/{id}/approve`, with the approver's optional
    /// comment (recorded in the `request.approve` event).
    pub async fn approve(
        &self,
        caller: &Caller,
        id: &str,
        comment: Option<&str>,
    ) -> Result<api::ApproveResponse, GrantError> {
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        for _ in 0..CONFLICT_RETRIES {
            let before = self.visible_request(caller, id).await?;
            let now = self.now();
            let outcome = apply_approval(&before, &caller.policy_identity, now)
                .map_err(|e| approval_error(e, &before))?;
            let (after, grant) = match outcome {
                ApprovalOutcome::Pending { request, .. } => (request, None),
                ApprovalOutcome::Granted { request, grant } => {
                    let grant = grant.into_grant(grant_id_for(&request.id));
                    (request, Some(grant))
                }
            };
            let approval = after
                .approvals
                .last()
                .expect("an accepted approval was just recorded");
            let mut drafts = vec![
                self.draft(caller.name(), actions::REQUEST_APPROVE, &after.id)
                    .with_details(json!({
                        "requester": after.requester,
                        "connection": after.connection,
                        "role": approval.role,
                        "approvals": after.approvals.len(),
                        "approvals_required": after.approvals_required,
                        "break_glass": after.break_glass,
                        "comment": comment,
                    })),
            ];
            if let Some(grant) = &grant {
                drafts.extend(self.grant_start_drafts(caller.name(), grant));
            }
            let count = drafts.len();
            let started = Instant::now();
            match self
                .store()
                .update_request(&before, &after, grant.as_ref(), drafts)
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::AlreadyExists { .. }) => {
                    return Err(GrantError::conflict(format!(
                        "{} already approved request {id}; another approver is needed",
                        caller.name()
                    )));
                }
                Err(e) => return Err(e.into()),
            }
            self.count_audit(count, started);
            tracing::info!(request = %after.id, approver = %caller.name(), granted = grant.is_some(), "request approved");
            let request = convert::request(&after);
            let api_grant = grant.as_ref().map(|g| convert::grant(g, now));
            if let Some(grant) = &grant {
                self.announce_start(grant);
            }
            self.webhook().notify(
                &self.config(),
                Notification {
                    event: WebhookEvent::Approve,
                    actor: caller.name().to_string(),
                    request: Some(request.clone()),
                    grant: api_grant.clone(),
                },
            );
            return Ok(api::ApproveResponse {
                request,
                grant: api_grant,
            });
        }
        Err(GrantError::conflict(format!(
            "request {id} keeps changing under concurrent approvals; try again"
        )))
    }

    /// `POST /v1/requests/{id}/deny`: an approver refuses, with a reason.
    pub async fn deny(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<&str>,
    ) -> Result<api::Request, GrantError> {
        let reason = reason.map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(GrantError::invalid("a denial needs a reason")
                .with_hint("periscope deny ID --reason \"...\""));
        }
        let before = self.visible_request(caller, id).await?;
        let after = deny_request(&before, &caller.policy_identity, reason, self.now())
            .map_err(|e| approval_error(e, &before))?;
        let draft = self
            .draft(caller.name(), actions::REQUEST_DENY, &after.id)
            .with_details(json!({
                "requester": after.requester,
                "connection": after.connection,
                "reason": reason,
            }));
        let started = Instant::now();
        self.store()
            .update_request(&before, &after, None, vec![draft])
            .await?;
        self.count_audit(1, started);
        let request = convert::request(&after);
        self.webhook().notify(
            &self.config(),
            Notification {
                event: WebhookEvent::Deny,
                actor: caller.name().to_string(),
                request: Some(request.clone()),
                grant: None,
            },
        );
        Ok(request)
    }

    /// `POST /v1/requests/{id}/cancel`: the requester withdraws it.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<api::Request, GrantError> {
        let before = self.visible_request(caller, id).await?;
        let after = cancel_request(&before, &caller.policy_identity, self.now())
            .map_err(|e| approval_error(e, &before))?;
        let draft = self
            .draft(caller.name(), actions::REQUEST_CANCEL, &after.id)
            .with_details(json!({ "connection": after.connection }));
        let started = Instant::now();
        self.store()
            .update_request(&before, &after, None, vec![draft])
            .await?;
        self.count_audit(1, started);
        Ok(convert::request(&after))
    }

    async fn visible_grant(&self, caller: &Caller, id: &str) -> Result<Grant, GrantError> {
        let hidden = || GrantError::not_found(format!("grant {id} not found"));
        let grant = match self.store().get_grant(id).await {
            Ok(g) => g,
            Err(StoreError::NotFound { .. }) => return Err(hidden()),
            Err(e) => return Err(e.into()),
        };
        if !self.may_see_grant(&self.config(), caller, &grant) {
            return Err(hidden());
        }
        Ok(grant)
    }

    /// `GET /v1/grants/{id}`.
    pub async fn get_grant(&self, caller: &Caller, id: &str) -> Result<api::Grant, GrantError> {
        let grant = self.visible_grant(caller, id).await?;
        Ok(convert::grant(&grant, self.now()))
    }

    /// `GET /v1/grants`: the caller's own grants and those it may revoke;
    /// administrators see everyone's.
    pub async fn list_grants(
        &self,
        caller: &Caller,
        active_only: bool,
        identity: Option<&str>,
        connection: Option<&str>,
    ) -> Result<Vec<api::Grant>, GrantError> {
        let now = self.now();
        let grants = self
            .store()
            .list_grants(&GrantFilter {
                active_at: active_only.then_some(now),
                identity: identity.map(str::to_owned),
                connection: connection.map(str::to_owned),
                limit: LIST_LIMIT,
            })
            .await?;
        let config = self.config();
        Ok(grants
            .iter()
            .filter(|g| self.may_see_grant(&config, caller, g))
            .map(|g| convert::grant(g, now))
            .collect())
    }

    /// `POST /v1/grants/{id}/revoke`: ends a grant now; live sessions relying
    /// on it are told at once through the bus.
    pub async fn revoke(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<&str>,
    ) -> Result<api::Grant, GrantError> {
        let grant = self.visible_grant(caller, id).await?;
        let now = self.now();
        let config = self.config();
        let revoked = revoke_grant(&config.policy, &grant, &caller.policy_identity, now)
            .map_err(revoke_error)?;
        let draft = self
            .draft(caller.name(), actions::GRANT_REVOKE, &grant.id)
            .with_grant(&grant.id)
            .with_details(json!({
                "identity": grant.identity,
                "connection": grant.connection,
                "reason": reason.map(str::trim).filter(|r| !r.is_empty()),
                "break_glass": grant.break_glass,
            }));
        let started = Instant::now();
        let changed = self
            .store()
            .revoke_grant(&grant.id, caller.name(), now, vec![draft])
            .await?;
        if !changed {
            return Err(GrantError::invalid_state(format!(
                "grant {id} already ended (expired or revoked a moment ago)"
            )));
        }
        self.count_audit(1, started);
        tracing::info!(grant = %grant.id, by = %caller.name(), "grant revoked");
        self.announce_end(GrantEnded {
            grant_id: grant.id.clone(),
            identity: grant.identity.clone(),
            connection: grant.connection.clone(),
            reason: EndReason::Revoked {
                by: caller.name().to_string(),
            },
        });
        let api_grant = convert::grant(&revoked, now);
        self.webhook().notify(
            &config,
            Notification {
                event: WebhookEvent::Revoke,
                actor: caller.name().to_string(),
                request: None,
                grant: Some(api_grant.clone()),
            },
        );
        Ok(api_grant)
    }
}

/// Parses a humantime duration (`30m`, `2h`, `1h30m`), naming the field.
pub fn parse_duration(text: &str, field: &str) -> Result<Duration, GrantError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        GrantError::invalid(format!("invalid {field} `{text}`: {e}"))
            .with_hint("write durations like 30m, 2h or 1h30m")
    })
}
