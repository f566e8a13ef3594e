//! Storing discovered tags: each change is a new version of the
//! connection's set, committed with its audit event, then merged into the
//! policy in force (no restart). Shared by `periscope discover --apply`,
//! `--dismiss` and the background profiles.

use std::collections::BTreeMap;
use std::time::Instant;

use periscope_api as api;
use periscope_audit::actions;
use periscope_store::StoreError;
use serde_json::json;

use crate::gateway::Gateway;

pub use crate::discovery_state::DISMISSED;

/// One change to a connection's discovered tags.
#[derive(Debug, Clone)]
pub enum TagChange {
    /// Tag these columns (`column -> entity`).
    Add(BTreeMap<String, String>),
    /// Dismiss discovery's finding on these columns.
    Dismiss(Vec<String>),
}

/// Stores `change` as the connection's next version (audited as `actor`),
/// then recompiles the policy in force.
pub async fn store_tags(
    gateway: &Gateway,
    actor: &str,
    connection: &str,
    change: TagChange,
) -> Result<api::AppliedTags, StoreError> {
    let (tags, action, details): (BTreeMap<String, String>, _, _) = match &change {
        TagChange::Add(added) => (added.clone(), actions::DISCOVERY_APPLY, json!(added)),
        TagChange::Dismiss(columns) => (
            columns
                .iter()
                .map(|c| (c.clone(), DISMISSED.to_string()))
                .collect(),
            actions::DISCOVERY_DISMISS,
            json!(columns),
        ),
    };
    let key = match change {
        TagChange::Add(_) => "added",
        TagChange::Dismiss(_) => "dismissed",
    };
    let draft = |version: i64| {
        gateway
            .draft(actor, action, connection)
            .with_details(json!({ "version": version, key: details }))
    };
    // The version is known only inside the transaction; the event names the
    // one this change expects, and a concurrent change makes it retry.
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
                tags.clone(),
                actor,
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
            Err(e) => return Err(e),
        }
    };
    gateway.refresh_discovered_tags().await?;
    Ok(api::AppliedTags {
        version: set.version,
        total: set.tags.values().filter(|t| *t != DISMISSED).count(),
        added: tags,
    })
}
