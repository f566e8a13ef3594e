//! `POST /v1/admin/discover` and `GET /v1/admin/discover/{connection}`:
//! sensitive data discovery for administrators (see `crate::discover`).
//! Every run and every refusal is audited; answers and events hold counts,
//! shares, catalog names and entities, never a sampled value.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use periscope_api as api;
use periscope_audit::actions;
use periscope_store::StoreError;
use serde_json::json;

use super::failure::Failure;
use crate::discover::{self, DiscoverError, DiscoverOptions, ReportError};
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

/// Stores the proposed tags the configuration does not already set, as the
/// connection's next version, then recompiles the policy in force.
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
    let draft = |version: i64| {
        gateway
            .draft(caller.name(), actions::DISCOVERY_APPLY, connection)
            .with_details(json!({ "version": version, "added": added }))
    };
    // The version is known only inside the transaction; the event names the
    // one this apply expects, and a concurrent apply makes it retry.
    let mut attempt = 0;
    let set = loop {
        let next = gateway
            .store()
            .discovered_tag_history(connection)
            .await?
            .first()
            .map_or(1, |s| s.version + 1);
        let started = Instant::now();
        match gateway
            .store()
            .apply_discovered_tags(
                connection,
                added.clone(),
                caller.name(),
                gateway.clock().audit_now(),
                vec![draft(next)],
            )
            .await
        {
            Ok(set) => {
                gateway.count_audit(1, started);
                break set;
            }
            Err(StoreError::AlreadyExists { .. }) if attempt < 3 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    gateway.refresh_discovered_tags().await?;
    Ok(api::AppliedTags {
        version: set.version,
        total: set.tags.len(),
        added,
    })
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
