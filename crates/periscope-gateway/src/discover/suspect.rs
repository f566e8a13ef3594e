//! Run-time learning: results tell what discovery's samples may have missed.
//! When content scans keep masking values that come unchanged from one
//! untagged column, the column is **suspected**: audited once as
//! `discovery.suspected` (column, entity, counts; never a value), listed by
//! `periscope discover CONNECTION --suspected`, and, on a connection with
//! `auto_tag = true`, tagged at once (a discovered tag stored by
//! `periscope`), so every later value of it is masked whole, not only the
//! values a detector recognises.
//!
//! Evidence is kept per gateway process, in memory, and fed off the result
//! path (once per statement with findings). A column an administrator
//! dismissed, or that is tagged already, is never suspected.

use std::collections::BTreeMap;
use std::sync::Arc;

use periscope_api as api;
use periscope_audit::actions;
use periscope_redact::{Counts, Entity};
use serde_json::json;

use super::tags::{DISMISSED, TagChange, store_tags};
use crate::discovery_state::Evidence;
use crate::gateway::{Gateway, SYSTEM_ACTOR};

/// Masked values from one column before it is suspected.
pub const SUSPECT_VALUES: u64 = 10;
/// Statements those values must come from (one query does not decide).
pub const SUSPECT_STATEMENTS: u32 = 3;
/// Columns tracked per connection (the rest are ignored until restart).
const MAX_TRACKED: usize = 10_000;

/// Weighs one statement's findings on `connection` (called by the session
/// sink). A column crossing the thresholds is suspected, audited and, with
/// `auto_tag`, tagged; that work runs on its own task.
pub fn observe(gateway: &Gateway, connection: &str, found: &BTreeMap<Arc<str>, Counts>) {
    let mut newly = Vec::new();
    {
        let Ok(mut state) = gateway.inner.background.lock() else {
            return;
        };
        let columns = state.suspects.entry(connection.to_string()).or_default();
        for (column, counts) in found {
            if !columns.contains_key(column.as_ref()) && columns.len() >= MAX_TRACKED {
                continue;
            }
            let evidence = columns.entry(column.to_string()).or_default();
            evidence.found.merge(counts);
            evidence.statements = evidence.statements.saturating_add(1);
            if evidence.suspected_at.is_none()
                && evidence.found.total() >= SUSPECT_VALUES
                && evidence.statements >= SUSPECT_STATEMENTS
                && !covered(gateway, connection, column)
            {
                evidence.suspected_at = Some(gateway.clock().audit_now().to_string());
                if let Some(entity) = evidence.entity() {
                    newly.push((column.to_string(), entity, evidence.clone()));
                }
            }
        }
    }
    for (column, entity, evidence) in newly {
        let gateway = gateway.clone();
        let connection = connection.to_string();
        tokio::spawn(
            async move { suspect(&gateway, &connection, &column, entity, &evidence).await },
        );
    }
}

/// Whether the column is tagged already (configured or discovered) or was
/// dismissed: nothing to learn there.
fn covered(gateway: &Gateway, connection: &str, column: &str) -> bool {
    let Ok(reference) = column.parse::<periscope_policy::ColumnRef>() else {
        return true;
    };
    let config = gateway.config();
    let tagged = config
        .policy
        .connection(connection)
        .is_some_and(|c| c.data.tags.contains_key(&reference));
    let dismissed = gateway.inner.discovered.lock().is_ok_and(|sets| {
        sets.iter().any(|s| {
            s.connection == connection && s.tags.get(column).is_some_and(|t| t == DISMISSED)
        })
    });
    tagged || dismissed
}

async fn suspect(
    gateway: &Gateway,
    connection: &str,
    column: &str,
    entity: Entity,
    evidence: &Evidence,
) {
    let auto_tag = gateway
        .config()
        .config
        .connection(connection)
        .is_some_and(|c| c.auto_tag);
    let draft = gateway
        .draft(SYSTEM_ACTOR, actions::DISCOVERY_SUSPECTED, connection)
        .with_details(json!({
            "column": column,
            "entity": entity.name(),
            "values": evidence.found.total(),
            "statements": evidence.statements,
            "auto_tag": auto_tag,
        }));
    if let Err(e) = gateway.audit(draft).await {
        tracing::error!(%connection, %column, error = %e, "could not audit a suspected column");
    }
    if !auto_tag {
        return;
    }
    let change = TagChange::Add(BTreeMap::from([(
        column.to_string(),
        entity.name().to_string(),
    )]));
    match store_tags(gateway, SYSTEM_ACTOR, connection, change).await {
        Ok(_) => {
            if let Ok(mut state) = gateway.inner.background.lock()
                && let Some(e) = state
                    .suspects
                    .get_mut(connection)
                    .and_then(|c| c.get_mut(column))
            {
                e.tagged = true;
            }
        }
        Err(e) => {
            tracing::error!(%connection, %column, error = %e, "could not tag a suspected column");
        }
    }
}

/// The suspected columns of `connection` on this gateway.
pub fn suspected(gateway: &Gateway, connection: &str) -> Vec<api::SuspectedColumn> {
    let Ok(state) = gateway.inner.background.lock() else {
        return Vec::new();
    };
    let Some(columns) = state.suspects.get(connection) else {
        return Vec::new();
    };
    columns
        .iter()
        .filter_map(|(column, e)| {
            Some(api::SuspectedColumn {
                column: column.clone(),
                entity: e.entity()?.name().to_string(),
                values: e.found.total(),
                statements: e.statements,
                since: e.suspected_at.clone()?,
                tagged: e.tagged,
            })
        })
        .collect()
}
