//! `POST /v1/admin/discover` and `GET /v1/admin/discover/{connection}`:
//! sensitive data discovery for administrators (see `crate::discover`).
//! Every run and every refusal is audited; answers and events hold counts,
//! shares, catalog names and entities, never a sampled value.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use periscope_api as api;
use periscope_audit::actions;
use serde_json::json;

use super::failure::Failure;
use crate::discover::{self, DiscoverError, DiscoverOptions, ReportError, TagChange};
use crate::gateway::{Caller, Gateway};

/// Checks the caller is an administrator; a refusal is audited.
async fn admin_only(gateway: &Gateway, caller: &Caller, connection: &str) -> Result<(), Failure> {
    match super::admin::require_admin(gateway, caller) {
        Ok(()) => Ok(()),
        Err(failure) => {
            refused(gateway, caller, connection, "not an administrator").await;
            Err(failure)
        }
    }
}

async fn refused(gateway: &Gateway, caller: &Caller, connection: &str, reason: &str) {
    let draft = gateway
        .draft(caller.name(), actions::DISCOVERY_REFUSED, connection)
        .with_details(json!({ "reason": reason }));
    if let Err(e) = gateway.audit(draft).await {
        tracing::error!(error = %e, "could not audit a refused discovery");
    }
}

pub(crate) async fn discover(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<api::DiscoverRequest>,
) -> Result<Json<api::DiscoverResponse>, Failure> {
    admin_only(&gateway, &caller, &body.connection).await?;
    if gateway
        .config()
        .config
        .connection(&body.connection)
        .is_none()
    {
        refused(&gateway, &caller, &body.connection, "unknown connection").await;
        return Err(Failure::not_found(format!(
            "no connection named `{}`",
            body.connection
        )));
    }
    let options = DiscoverOptions {
        schema: body.schema.clone(),
        sample: body.sample.unwrap_or(DiscoverOptions::default().sample),
    };
    let mut report = discover::report(
        &gateway,
        &body.connection,
        &options,
        caller.name(),
        body.apply,
    )
    .await
    .map_err(|e| match e {
        ReportError::Discover(DiscoverError::Invalid(m)) => Failure::bad_request(m),
        ReportError::UnknownConnection(c) => {
            Failure::not_found(format!("no connection named `{c}`"))
        }
        ReportError::NotADatabase(c) => {
            Failure::bad_request(ReportError::NotADatabase(c).to_string())
        }
        ReportError::Store(e) => e.into(),
        ReportError::Discover(other) => Failure::unavailable(other.to_string()),
    })?;
    if body.apply {
        report.applied = Some(apply(&gateway, &caller, &body.connection, &report.proposed).await?);
    }
    Ok(Json(report))
}

/// Stores the proposed tags the configuration does not already set.
async fn apply(
    gateway: &Gateway,
    caller: &Caller,
    connection: &str,
    proposed: &[api::ProposedTag],
) -> Result<api::AppliedTags, Failure> {
    let added: BTreeMap<String, String> = proposed
        .iter()
        .filter(|p| p.configured.is_none())
        .filter(|p| p.column.parse::<periscope_policy::ColumnRef>().is_ok())
        .map(|p| (p.column.clone(), p.entity.clone()))
        .collect();
    Ok(discover::store_tags(gateway, caller.name(), connection, TagChange::Add(added)).await?)
}

/// `POST /v1/admin/discover/{connection}/dismiss`: an administrator
/// overrides discovery's finding on some columns.
pub(crate) async fn dismiss(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(connection): Path<String>,
    Json(body): Json<api::DismissRequest>,
) -> Result<Json<api::AppliedTags>, Failure> {
    admin_only(&gateway, &caller, &connection).await?;
    let Some(conn) = gateway.config().config.connection(&connection).cloned() else {
        refused(&gateway, &caller, &connection, "unknown connection").await;
        return Err(Failure::not_found(format!(
            "no connection named `{connection}`"
        )));
    };
    if conn.kind != periscope_policy::ConnectionKind::Postgres {
        return Err(Failure::bad_request(
            ReportError::NotADatabase(connection).to_string(),
        ));
    }
    if body.columns.is_empty() {
        return Err(Failure::bad_request(
            "name at least one column to dismiss, as schema.table.column".to_string(),
        ));
    }
    if let Some(bad) = body
        .columns
        .iter()
        .find(|c| c.parse::<periscope_policy::ColumnRef>().is_err())
    {
        return Err(Failure::bad_request(format!(
            "`{bad}` is not a column: write schema.table.column, as `periscope discover --review` lists them"
        )));
    }
    Ok(Json(
        discover::store_tags(
            &gateway,
            caller.name(),
            &connection,
            TagChange::Dismiss(body.columns),
        )
        .await?,
    ))
}

pub(crate) async fn tags(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(connection): Path<String>,
) -> Result<Json<api::DiscoveredTags>, Failure> {
    admin_only(&gateway, &caller, &connection).await?;
    let history = gateway.store().discovered_tag_history(&connection).await?;
    Ok(Json(api::DiscoveredTags {
        background: discover::background(&gateway, &connection),
        suspected: discover::suspect::suspected(&gateway, &connection),
        connection,
        versions: history
            .into_iter()
            .map(|s| api::DiscoveredTagVersion {
                version: s.version,
                created_at: s.created_at.to_string(),
                created_by: s.created_by,
                tags: s.tags,
            })
            .collect(),
    }))
}
