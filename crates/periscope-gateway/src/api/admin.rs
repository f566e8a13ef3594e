//! Identities, tokens, reload, sessions and the test clock.

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use periscope_api as api;
use periscope_audit::actions;
use periscope_store::{NewIdentity, StoreError, TokenScope};
use serde_json::json;

use super::failure::Failure;
use super::json_ok;
use crate::convert;
use crate::gateway::{Caller, Gateway};
use crate::grants::parse_duration;

/// Longest identity name.
const MAX_NAME: usize = 64;

pub(crate) fn require_admin(gateway: &Gateway, caller: &Caller) -> Result<(), Failure> {
    if gateway.config().policy.is_admin(&caller.policy_identity) {
        return Ok(());
    }
    Err(Failure::forbidden(format!(
        "`{}` is not an administrator: this needs the `admin` role or a role with `admin = true`",
        caller.name()
    )))
}

fn check_identity_name(name: &str) -> Result<(), Failure> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if first_ok && rest_ok && name.len() <= MAX_NAME {
        return Ok(());
    }
    Err(Failure::bad_request(format!(
        "invalid identity name `{name}`: use lowercase letters, digits, `.`, `_` and `-`, \
         starting with a letter or digit, at most {MAX_NAME} characters"
    )))
}

fn check_roles(gateway: &Gateway, roles: &[String]) -> Result<(), Failure> {
    let config = gateway.config();
    let unknown: Vec<&String> = roles
        .iter()
        .filter(|r| config.policy.role(r).is_none())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unknown.iter().map(|r| format!("`{r}`")).collect();
    Err(Failure::bad_request(format!(
        "unknown role{} {}",
        if unknown.len() > 1 { "s" } else { "" },
        names.join(", ")
    ))
    .with_hint(format!(
        "configured roles: {}",
        config.role_names().join(", ")
    )))
}

pub(crate) async fn create_user(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::CreateIdentity>,
) -> Result<Response, Failure> {
    require_admin(&gateway, &caller)?;
    check_identity_name(&body.name)?;
    check_roles(&gateway, &body.roles)?;
    let draft = gateway
        .draft(caller.name(), actions::ADMIN_USER_ADD, &body.name)
        .with_details(json!({ "roles": body.roles }));
    let started = Instant::now();
    let identity = gateway
        .store()
        .create_identity(
            NewIdentity {
                name: body.name.clone(),
                roles: body.roles.clone(),
                created_at: gateway.clock().audit_now(),
            },
            vec![draft],
        )
        .await
        .map_err(|e| match e {
            StoreError::AlreadyExists { .. } => {
                Failure::conflict(format!("identity `{}` already exists", body.name))
            }
            other => other.into(),
        })?;
    gateway.count_audit(1, started);
    Ok(json_ok(StatusCode::CREATED, &convert::identity(&identity)))
}

pub(crate) async fn list_users(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<api::Identity>>, Failure> {
    require_admin(&gateway, &caller)?;
    let list = gateway.store().list_identities().await?;
    Ok(axum::Json(list.iter().map(convert::identity).collect()))
}

fn identity_not_found(name: &str) -> impl Fn(StoreError) -> Failure + '_ {
    move |e| match e {
        StoreError::NotFound { .. } => Failure::not_found(format!("no identity named `{name}`")),
        other => other.into(),
    }
}

pub(crate) async fn update_user(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Json(body): Json<api::UpdateIdentity>,
) -> Result<Json<api::Identity>, Failure> {
    require_admin(&gateway, &caller)?;
    if body.roles.is_none() && body.disabled.is_none() {
        return Err(Failure::bad_request(
            "nothing to change: give `roles` and/or `disabled`",
        ));
    }
    let before = gateway
        .store()
        .get_identity(&name)
        .await
        .map_err(identity_not_found(&name))?;
    if let Some(roles) = &body.roles {
        check_roles(&gateway, roles)?;
        let draft = gateway
            .draft(caller.name(), actions::ADMIN_USER_ROLES, &name)
            .with_details(json!({ "before": before.roles, "after": roles }));
        let started = Instant::now();
        gateway
            .store()
            .update_identity_roles(&name, roles.to_vec(), vec![draft])
            .await
            .map_err(identity_not_found(&name))?;
        gateway.count_audit(1, started);
    }
    if let Some(disabled) = body.disabled {
        let started = Instant::now();
        let changed = if disabled {
            let draft = gateway.draft(caller.name(), actions::ADMIN_USER_DISABLE, &name);
            gateway
                .store()
                .disable_identity(&name, &gateway.clock().audit_now(), vec![draft])
                .await
        } else {
            let draft = gateway.draft(caller.name(), actions::ADMIN_USER_ENABLE, &name);
            gateway.store().enable_identity(&name, vec![draft]).await
        }
        .map_err(identity_not_found(&name))?;
        if changed {
            gateway.count_audit(1, started);
        }
        if disabled {
            // Its browser sessions ended with it (in the store); its live
            // proxy sessions end now, on this replica, and on the others at
            // their next check.
            gateway.cut_sessions_of(&name, disabled_notice(&name, caller.name()));
        }
    }
    let after = gateway
        .store()
        .get_identity(&name)
        .await
        .map_err(identity_not_found(&name))?;
    Ok(axum::Json(convert::identity(&after)))
}

/// What a live session is told when its identity is disabled.
pub(crate) fn disabled_notice(identity: &str, by: &str) -> periscope_shield::grants::CutNotice {
    periscope_shield::grants::CutNotice {
        message: format!("identity `{identity}` was disabled by {by}: this session was closed"),
        detail: Some("a disabled identity's sessions end at once".into()),
        hint: Some("ask an administrator".into()),
    }
}

pub(crate) async fn create_token(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Option<Json<api::CreateToken>>,
) -> Result<Response, Failure> {
    let created = mint_api_token(
        &gateway,
        &caller,
        &name,
        body.map(|b| b.0).unwrap_or_default(),
    )
    .await?;
    Ok(json_ok(StatusCode::CREATED, &created))
}

/// Mints an API token for `name` (administrators only), audited as
/// `token.create`: the API's and the console's one way to do it.
pub(crate) async fn mint_api_token(
    gateway: &Gateway,
    caller: &Caller,
    name: &str,
    body: api::CreateToken,
) -> Result<api::CreatedToken, Failure> {
    require_admin(gateway, caller)?;
    let now = gateway.now();
    let expires_at = match body.expires_in.as_deref() {
        None => None,
        Some(text) => {
            let lifetime = parse_duration(text, "expires_in")?;
            let at = time::Duration::try_from(lifetime)
                .ok()
                .and_then(|d| now.checked_add(d))
                .and_then(|t| periscope_audit::AuditTime::from_datetime(t).ok())
                .ok_or_else(|| Failure::bad_request(format!("expires_in `{text}` is too far")))?;
            Some(at)
        }
    };
    let minted = gateway.hasher().mint(
        name,
        TokenScope::Api,
        body.description.clone().unwrap_or_default(),
        gateway.clock().audit_now(),
        expires_at,
    );
    let draft = gateway
        .draft(
            caller.name(),
            actions::TOKEN_CREATE,
            &minted.record.token_id,
        )
        .with_details(json!({
            "identity": name,
            "scope": "api",
            "description": body.description,
            "expires_at": minted.record.expires_at,
        }));
    let started = Instant::now();
    let summary = gateway
        .store()
        .create_token(minted.record, vec![draft])
        .await
        .map_err(identity_not_found(name))?;
    gateway.count_audit(1, started);
    Ok(api::CreatedToken {
        token: minted.token.to_string(),
        summary: convert::token(&summary),
    })
}

pub(crate) async fn list_tokens(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Vec<api::TokenSummary>>, Failure> {
    require_admin(&gateway, &caller)?;
    gateway
        .store()
        .get_identity(&name)
        .await
        .map_err(identity_not_found(&name))?;
    let tokens = gateway.store().list_tokens(&name).await?;
    Ok(axum::Json(
        tokens
            .iter()
            .filter(|t| t.scope == TokenScope::Api)
            .map(convert::token)
            .collect(),
    ))
}

pub(crate) async fn revoke_token(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<api::TokenSummary>, Failure> {
    require_admin(&gateway, &caller)?;
    let not_found = || Failure::not_found(format!("no token with id `{id}`"));
    let record = gateway
        .store()
        .find_token(&id)
        .await?
        .ok_or_else(not_found)?;
    let draft = gateway
        .draft(caller.name(), actions::TOKEN_REVOKE, &id)
        .with_details(json!({ "identity": record.identity.name }));
    let started = Instant::now();
    let changed = gateway
        .store()
        .revoke_token(&id, &gateway.clock().audit_now(), vec![draft])
        .await?;
    if changed {
        gateway.count_audit(1, started);
    }
    let record = gateway
        .store()
        .find_token(&id)
        .await?
        .ok_or_else(not_found)?;
    Ok(axum::Json(convert::token(&record.summary())))
}

pub(crate) async fn reload(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::ReloadResponse>, Failure> {
    require_admin(&gateway, &caller)?;
    match gateway.reload(caller.name()).await {
        Ok(summary) => Ok(axum::Json(api::ReloadResponse {
            message: summary.to_string(),
        })),
        Err(e) => Err(Failure::config_invalid(e.to_string())
            .with_hint("the previous configuration stays in force; fix the file and reload again")),
    }
}

pub(crate) async fn sessions(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Vec<api::SessionSummary>>, Failure> {
    require_admin(&gateway, &caller)?;
    Ok(axum::Json(gateway.sessions().list()))
}

/// `POST /v1/admin/sessions/{id}/end` (`DecisionBody`, optional): ends one
/// live session of this replica (audited as `session.ended_by_admin`).
pub(crate) async fn end_session(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Option<Json<api::DecisionBody>>,
) -> Result<Json<api::SessionSummary>, Failure> {
    require_admin(&gateway, &caller)?;
    let reason = body.and_then(|b| b.0.reason);
    let ended = gateway
        .end_session(caller.name(), &id, reason.as_deref())
        .await?;
    Ok(axum::Json(ended))
}

pub(crate) async fn advance_clock(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::AdvanceClock>,
) -> Result<Json<api::ClockNow>, Failure> {
    require_admin(&gateway, &caller)?;
    let clock = gateway
        .test_clock()
        .ok_or_else(|| Failure::not_found("the test clock is not enabled"))?;
    let by = parse_duration(&body.advance, "advance")?;
    let now = clock
        .advance(by)
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    tracing::warn!(by = %humantime::format_duration(by), actor = %caller.name(), "TEST CLOCK moved forward");
    let draft = gateway
        .draft(caller.name(), actions::CLOCK_ADVANCE, "")
        .with_details(json!({
            "advance_secs": by.as_secs(),
            "total_shift_secs": clock.shift().as_secs(),
        }));
    gateway.audit(draft).await?;
    gateway.sweep().await?;
    Ok(axum::Json(api::ClockNow { now }))
}

/// The admin API's handlers as the console calls them: one path, the same
/// checks, refusals and audit as `/v1/admin/...` and `periscope admin`.
pub(crate) async fn admin_list_users(
    gateway: &Gateway,
    caller: &Caller,
) -> Result<Vec<api::Identity>, Failure> {
    list_users(State(gateway.clone()), Extension(caller.clone()))
        .await
        .map(|j| j.0)
}

/// See [`admin_list_users`].
pub(crate) async fn admin_create_user(
    gateway: &Gateway,
    caller: &Caller,
    body: api::CreateIdentity,
) -> Result<(), Failure> {
    create_user(
        State(gateway.clone()),
        Extension(caller.clone()),
        Json(body),
    )
    .await
    .map(|_| ())
}

/// See [`admin_list_users`].
pub(crate) async fn admin_update_user(
    gateway: &Gateway,
    caller: &Caller,
    name: &str,
    body: api::UpdateIdentity,
) -> Result<(), Failure> {
    update_user(
        State(gateway.clone()),
        Extension(caller.clone()),
        Path(name.to_string()),
        Json(body),
    )
    .await
    .map(|_| ())
}

/// See [`admin_list_users`].
pub(crate) async fn admin_list_tokens(
    gateway: &Gateway,
    caller: &Caller,
    name: &str,
) -> Result<Vec<api::TokenSummary>, Failure> {
    list_tokens(
        State(gateway.clone()),
        Extension(caller.clone()),
        Path(name.to_string()),
    )
    .await
    .map(|j| j.0)
}

/// See [`admin_list_users`]; answers the token's identity.
pub(crate) async fn admin_revoke_token(
    gateway: &Gateway,
    caller: &Caller,
    id: &str,
) -> Result<String, Failure> {
    revoke_token(
        State(gateway.clone()),
        Extension(caller.clone()),
        Path(id.to_string()),
    )
    .await
    .map(|j| j.0.identity)
}

/// See [`admin_list_users`]; answers what the reload changed.
pub(crate) async fn admin_reload(gateway: &Gateway, caller: &Caller) -> Result<String, Failure> {
    reload(State(gateway.clone()), Extension(caller.clone()))
        .await
        .map(|j| j.0.message)
}
