//! Background profiles (opt-out): the first time the gateway serves a
//! PostgreSQL connection it profiles the connection's data, masks at once
//! the columns it finds sensitive (stored as discovered tags by
//! `periscope`, audited, listed by `periscope discover CONNECTION
//! --review`), and profiles again every `discovery_interval`. An
//! administrator overrides a finding with `--dismiss`, which later profiles
//! respect.

use std::collections::BTreeMap;

use periscope_api as api;
use tokio::task::JoinHandle;

use super::tags::{TagChange, store_tags};
use super::{DiscoverOptions, report};
use crate::gateway::{Gateway, SYSTEM_ACTOR};

/// The background profile of `connection` on this gateway, if any.
pub fn background(gateway: &Gateway, connection: &str) -> Option<api::BackgroundDiscovery> {
    gateway
        .inner
        .background
        .lock()
        .ok()
        .and_then(|s| s.runs.get(connection).cloned())
}

/// Called when a session on `connection` is about to be served: the first
/// time on this gateway, unless the connection opts out
/// (`background_discovery = false`), starts the background profiles.
/// Profiles run one at a time per gateway, with the same bounded, read-only
/// sampling as `periscope discover`. Until the first one is done, results
/// are content-scanned as before.
pub fn on_first_serve(gateway: &Gateway, connection: &str) {
    drop(start(gateway, connection));
}

/// Starts the background profiles of `connection` now if they have not
/// started, and returns the first profile's task to wait on (`None` when
/// they had started already or the connection opts out). `periscope demo`
/// waits on it so its tour starts with the findings in force.
pub fn profile_now(gateway: &Gateway, connection: &str) -> Option<JoinHandle<()>> {
    start(gateway, connection)
}

fn start(gateway: &Gateway, connection: &str) -> Option<JoinHandle<()>> {
    let interval = gateway
        .config()
        .config
        .connection(connection)
        .filter(|c| c.background_discovery)?
        .discovery_interval;
    {
        let mut state = gateway.inner.background.lock().ok()?;
        if !state.started.insert(connection.to_string()) {
            return None;
        }
    }
    let first = {
        let gateway = gateway.clone();
        let connection = connection.to_string();
        tokio::spawn(async move { profile_once(&gateway, &connection).await })
    };
    let gateway = gateway.clone();
    let connection = connection.to_string();
    Some(tokio::spawn(async move {
        let _ = first.await;
        // Later profiles: detached, so that waiting on the first ends.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let still_on = gateway
                    .config()
                    .config
                    .connection(&connection)
                    .is_some_and(|c| c.background_discovery);
                if !still_on {
                    if let Ok(mut state) = gateway.inner.background.lock() {
                        state.started.remove(&connection);
                    }
                    return;
                }
                profile_once(&gateway, &connection).await;
            }
        });
    }))
}

/// One profile: samples, stores the new findings, records the outcome.
async fn profile_once(gateway: &Gateway, connection: &str) {
    let started_at = gateway.clock().audit_now().to_string();
    if let Ok(mut state) = gateway.inner.background.lock() {
        let previous = state.runs.remove(connection);
        state.runs.insert(
            connection.to_string(),
            api::BackgroundDiscovery {
                state: "running".into(),
                started_at,
                finished_at: None,
                error: None,
                // The last report stays readable while the next one runs.
                report: previous.and_then(|p| p.report),
            },
        );
    }
    let result = match gateway.inner.background_gate.acquire().await {
        Ok(_permit) => {
            let mut result = report(
                gateway,
                connection,
                &DiscoverOptions::default(),
                SYSTEM_ACTOR,
                true,
            )
            .await
            .map_err(|e| e.to_string());
            if let Ok(found) = &mut result {
                match apply_findings(gateway, connection, found).await {
                    Ok(applied) => found.applied = applied,
                    Err(e) => result = Err(format!("could not store the findings: {e}")),
                }
            }
            result
        }
        Err(_) => return,
    };
    let finished_at = gateway.clock().audit_now().to_string();
    if let Err(e) = &result {
        tracing::warn!(%connection, error = %e, "background discovery failed");
    }
    if let Ok(mut state) = gateway.inner.background.lock()
        && let Some(run) = state.runs.get_mut(connection)
    {
        run.finished_at = Some(finished_at);
        match result {
            Ok(found) => {
                run.state = "done".into();
                run.report = Some(found);
            }
            Err(e) => {
                run.state = "failed".into();
                run.error = Some(e);
            }
        }
    }
}

/// Stores what the profile found that nothing covers yet: not tagged by
/// the configuration, not stored before (an administrator's dismissal
/// included), and not already masked as that entity by the column's name.
async fn apply_findings(
    gateway: &Gateway,
    connection: &str,
    found: &api::DiscoverResponse,
) -> Result<Option<api::AppliedTags>, periscope_store::StoreError> {
    let stored: BTreeMap<String, String> = gateway
        .store()
        .discovered_tag_history(connection)
        .await?
        .into_iter()
        .next()
        .map(|s| s.tags)
        .unwrap_or_default();
    let new = new_findings(found, &stored);
    if new.is_empty() {
        return Ok(None);
    }
    store_tags(gateway, SYSTEM_ACTOR, connection, TagChange::Add(new))
        .await
        .map(Some)
}

/// The proposals of `found` that change what is masked, given the tags
/// `stored` for the connection.
pub(super) fn new_findings(
    found: &api::DiscoverResponse,
    stored: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    found
        .proposed
        .iter()
        .filter(|p| p.configured.is_none())
        .filter(|p| !stored.contains_key(&p.column))
        .filter(|p| p.column.parse::<periscope_policy::ColumnRef>().is_ok())
        .filter(|p| {
            // A column whose name already masks it as this entity needs no tag.
            let by_name = found
                .fields
                .iter()
                .find(|f| f.path == p.column)
                .and_then(|f| f.by_name.as_deref());
            by_name != Some(p.entity.as_str())
        })
        .map(|p| (p.column.clone(), p.entity.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(path: &str, by_name: Option<&str>) -> api::DiscoveredField {
        api::DiscoveredField {
            path: path.into(),
            sampled: 100,
            nulls: 0,
            by_name: by_name.map(Into::into),
            proposed: None,
            basis: None,
            reason: String::new(),
            evidence: vec![],
        }
    }

    fn proposal(column: &str, entity: &str, configured: Option<&str>) -> api::ProposedTag {
        api::ProposedTag {
            column: column.into(),
            entity: entity.into(),
            from: vec![column.into()],
            configured: configured.map(Into::into),
        }
    }

    #[test]
    fn only_findings_that_change_masking_are_stored() {
        let found = api::DiscoverResponse {
            connection: "pg".into(),
            schema: None,
            sample: 1000,
            tables: 1,
            columns: 4,
            rows_sampled: 400,
            elapsed_ms: 1,
            fields: vec![
                field("public.t.ref", None),
                field("public.t.email", Some("email")),
                field("public.t.code", None),
                field("public.t.tagged", None),
            ],
            proposed: vec![
                proposal("public.t.ref", "national_id", None),
                proposal("public.t.email", "email", None),
                proposal("public.t.code", "card", None),
                proposal("public.t.tagged", "ssn", Some("ssn")),
            ],
            skipped: vec![],
            snippet: String::new(),
            applied: None,
        };
        let stored = BTreeMap::from([("public.t.code".to_string(), "none".to_string())]);
        let new = new_findings(&found, &stored);
        assert_eq!(
            new,
            BTreeMap::from([("public.t.ref".to_string(), "national_id".to_string())])
        );
    }
}
