//! Health, identity, connections, explain, requests and grants.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Json};
use periscope_api as api;
use serde::Deserialize;
use serde_json::json;

use super::failure::Failure;
use super::{json_ok, text};
use crate::gateway::{Caller, Gateway};
use crate::grants::RequestStatusFilter;

pub(crate) async fn healthz() -> Response {
    json_ok(StatusCode::OK, &json!({ "status": "ok" }))
}

pub(crate) async fn readyz(State(gateway): State<Gateway>) -> Result<Response, Failure> {
    let probe = tokio::time::timeout(Duration::from_secs(2), gateway.store().audit_head()).await;
    match probe {
        Ok(Ok(_)) => Ok(json_ok(
            StatusCode::OK,
            &json!({ "status": "ready", "config": gateway.config().source.to_string() }),
        )),
        Ok(Err(e)) => Err(Failure::unavailable(format!(
            "the store does not answer: {e}"
        ))),
        Err(_) => Err(Failure::unavailable(
            "the store did not answer within 2 seconds",
        )),
    }
}

pub(crate) async fn metrics(State(gateway): State<Gateway>) -> Response {
    let writer = gateway.audit_writer().stats();
    crate::metrics::audit_totals(
        writer.events + gateway.audit_events_in_transactions(),
        writer.batches,
    );
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        crate::metrics::render(),
    )
}

pub(crate) async fn whoami(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Json<api::WhoAmI> {
    let config = gateway.config();
    axum::Json(api::WhoAmI {
        identity: caller.identity.name.clone(),
        roles: caller.identity.roles.clone(),
        admin: config.policy.is_admin(&caller.policy_identity),
        token_id: caller.token_id.clone(),
        token_expires_at: caller.token_expires_at,
    })
}

pub(crate) async fn connections(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Json<Vec<api::ConnectionSummary>> {
    axum::Json(connection_summaries(&gateway, &caller.policy_identity))
}

/// Every configured connection, with whether `identity` may reach it: what
/// `GET /v1/connections` and the MCP `connections_list` tool answer.
pub(crate) fn connection_summaries(
    gateway: &Gateway,
    identity: &periscope_policy::Identity,
) -> Vec<api::ConnectionSummary> {
    let config = gateway.config();
    config
        .config
        .connections
        .iter()
        .map(|c| api::ConnectionSummary {
            name: c.name.clone(),
            kind: serde_json::to_value(c.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            labels: c.labels.clone(),
            may_connect: !config.policy.covering_roles(identity, &c.name).is_empty(),
        })
        .collect()
}

/// A libpq connection-string value, quoted when needed.
fn conninfo_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '\'' && c != '\\')
    {
        return value.to_string();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Percent-encodes a URI component.
fn uri_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) async fn connect(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::ConnectRequest>,
) -> Result<Json<api::ConnectResponse>, Failure> {
    let (secret, expires_at) = gateway
        .issue_session_secret(&caller, &body.connection)
        .await?;
    let config = gateway.config();
    let host = config.config.server.advertised_host();
    let port = gateway
        .endpoints()
        .protocol("pg")
        .map_or(config.config.server.pg_listen.port(), |a| a.port());
    let ca = gateway.ca_file().display().to_string();
    let user = caller.name().to_string();
    let psql_command = format!(
        "psql \"host={} port={port} user={} dbname={} sslmode=verify-full sslrootcert={}\"",
        conninfo_value(&host),
        conninfo_value(&user),
        conninfo_value(&body.connection),
        conninfo_value(&ca),
    );
    let uri_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let uri = format!(
        "postgresql://{}@{uri_host}:{port}/{}?sslmode=verify-full&sslrootcert={}",
        uri_component(&user),
        uri_component(&body.connection),
        uri_component(&ca),
    );
    Ok(axum::Json(api::ConnectResponse {
        connection: body.connection,
        user,
        secret: secret.to_string(),
        expires_at,
        host,
        port,
        psql_command,
        uri,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExplainQuery {
    identity: Option<String>,
    connection: String,
}

pub(crate) async fn explain(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ExplainQuery>,
) -> Result<Json<api::ExplainResponse>, Failure> {
    let config = gateway.config();
    let subject = match q.identity.as_deref() {
        None => caller.policy_identity.clone(),
        Some(name) if name == caller.name() => caller.policy_identity.clone(),
        Some(name) => {
            if !config.policy.is_admin(&caller.policy_identity) {
                return Err(Failure::forbidden(
                    "only administrators may explain another identity's access",
                )
                .with_hint("omit `identity` to explain your own"));
            }
            let stored = gateway
                .store()
                .get_identity(name)
                .await
                .map_err(|e| match e {
                    periscope_store::StoreError::NotFound { .. } => {
                        Failure::not_found(format!("no identity named `{name}`"))
                    }
                    other => other.into(),
                })?;
            periscope_policy::Identity::from(&stored)
        }
    };
    let decision = gateway.decide(&subject, &q.connection).await?;
    Ok(axum::Json(api::ExplainResponse {
        text: decision.explanation.to_text(),
        explanation: serde_json::to_value(&decision.explanation)
            .map_err(|e| Failure::internal(e.to_string()))?,
    }))
}

pub(crate) async fn create_request(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::CreateRequest>,
) -> Result<Response, Failure> {
    let (request, _grant) = gateway.create_request(&caller, &body).await?;
    Ok(json_ok(StatusCode::CREATED, &request))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestsQuery {
    status: Option<String>,
    identity: Option<String>,
}

pub(crate) async fn list_requests(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<RequestsQuery>,
) -> Result<Json<Vec<api::Request>>, Failure> {
    let status = q
        .status
        .as_deref()
        .map(str::parse::<RequestStatusFilter>)
        .transpose()?;
    Ok(axum::Json(
        gateway
            .list_requests(&caller, status, q.identity.as_deref())
            .await?,
    ))
}

pub(crate) async fn get_request(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<api::Request>, Failure> {
    Ok(axum::Json(gateway.get_request(&caller, &id).await?))
}

/// A decision body is optional: no body at all reads as `{}`.
fn decision(body: Option<Json<api::DecisionBody>>) -> api::DecisionBody {
    body.map(|b| b.0).unwrap_or_default()
}

pub(crate) async fn approve(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Option<Json<api::DecisionBody>>,
) -> Result<Json<api::ApproveResponse>, Failure> {
    let body = decision(body);
    Ok(axum::Json(
        gateway
            .approve(&caller, &id, body.reason.as_deref())
            .await?,
    ))
}

pub(crate) async fn deny(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Option<Json<api::DecisionBody>>,
) -> Result<Json<api::Request>, Failure> {
    let body = decision(body);
    Ok(axum::Json(
        gateway.deny(&caller, &id, body.reason.as_deref()).await?,
    ))
}

pub(crate) async fn cancel(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<api::Request>, Failure> {
    Ok(axum::Json(gateway.cancel(&caller, &id).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GrantsQuery {
    status: Option<String>,
    identity: Option<String>,
    connection: Option<String>,
}

pub(crate) async fn list_grants(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<GrantsQuery>,
) -> Result<Json<Vec<api::Grant>>, Failure> {
    let active_only = match q.status.as_deref() {
        None | Some("active") => true,
        Some("all") => false,
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "unknown status `{other}`: use active or all"
            )));
        }
    };
    let empty = |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(axum::Json(
        gateway
            .list_grants(
                &caller,
                active_only,
                empty(&q.identity).as_deref(),
                empty(&q.connection).as_deref(),
            )
            .await?,
    ))
}

pub(crate) async fn get_grant(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<api::Grant>, Failure> {
    Ok(axum::Json(gateway.get_grant(&caller, &id).await?))
}

pub(crate) async fn revoke(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Option<Json<api::DecisionBody>>,
) -> Result<Json<api::Grant>, Failure> {
    let body = decision(body);
    Ok(axum::Json(
        gateway.revoke(&caller, &id, body.reason.as_deref()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_values_are_quoted_only_when_needed() {
        assert_eq!(conninfo_value("pg-prod"), "pg-prod");
        assert_eq!(conninfo_value("/a b/ca.pem"), "'/a b/ca.pem'");
        assert_eq!(conninfo_value("it's"), "'it\\'s'");
        assert_eq!(uri_component("/d/ca.pem"), "/d/ca.pem");
        assert_eq!(uri_component("a b&c"), "a%20b%26c");
    }
}
