//! `GET /v1/recordings` and `GET /v1/recordings/{id}`: the sealed recordings
//! of exec and PostgreSQL sessions, read from the audit chain (the `recording.sealed`
//! events are the index: a recording is listed only once its hash is
//! sealed, and a file nobody sealed is never served).
//!
//! Who may read: the identity that ran the session, and administrators (who
//! are this gateway's auditors: they read the audit log too). Another
//! identity gets 404, as for a recording that does not exist, so ids cannot
//! be probed.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use periscope_api as api;
use periscope_audit::{AuditEvent, actions};
use periscope_store::AuditQuery;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncReadExt;

use super::failure::Failure;
use crate::gateway::{Caller, Gateway};
use crate::recordings::{content_type, file_id, recordings_dir, valid_id};

/// Most recordings one list returns.
const MAX_LIST: u32 = 1000;
/// Expiry events considered when listing (the newest).
const MAX_EXPIRED: u32 = 10_000;

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<u32>,
    connection: Option<String>,
}

fn summary(e: &AuditEvent) -> Option<api::RecordingSummary> {
    let d = &e.details;
    let started_at = d["started_at"]
        .as_str()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())?;
    Some(api::RecordingSummary {
        id: d["recording"].as_str()?.to_string(),
        connection: e.target.clone(),
        identity: e.actor.clone(),
        started_at,
        duration_ms: d["duration_ms"].as_u64().unwrap_or(0),
        bytes: d["bytes"].as_u64().unwrap_or(0),
        sha256: d["sha256"].as_str()?.to_string(),
        sealed_seq: e.seq,
        truncated: d["truncated"].as_bool().unwrap_or(false),
        dropped_bytes: d["dropped_bytes"].as_u64().unwrap_or(0),
        format: d["format"]
            .as_str()
            .unwrap_or(api::RECORDING_FORMAT_CAST)
            .to_string(),
        statements: d["statements"].as_u64(),
    })
}

fn store_failure(e: periscope_store::StoreError) -> Failure {
    Failure::unavailable(format!("could not read the audit log: {e}"))
}

async fn expired_ids(gateway: &Gateway) -> Result<std::collections::HashSet<String>, Failure> {
    let expired = gateway
        .store()
        .search_audit(&AuditQuery {
            action: Some(actions::RECORDING_EXPIRED.as_str().to_string()),
            limit: MAX_EXPIRED,
            ..AuditQuery::default()
        })
        .await
        .map_err(store_failure)?;
    Ok(expired
        .iter()
        .filter_map(|e| e.details["recording"].as_str().map(str::to_string))
        .collect())
}

/// `GET /v1/recordings`: the newest sealed recordings the caller may play.
pub(crate) async fn list(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<api::RecordingSummary>>, Failure> {
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIST {
        return Err(Failure::bad_request(format!(
            "`limit` must be between 1 and {MAX_LIST}"
        )));
    }
    let admin = gateway.config().policy.is_admin(&caller.policy_identity);
    let sealed = gateway
        .store()
        .search_audit(&AuditQuery {
            actor: (!admin).then(|| caller.name().to_string()),
            action: Some(actions::RECORDING_SEALED.as_str().to_string()),
            target: q.connection.filter(|c| !c.is_empty()),
            limit,
            ..AuditQuery::default()
        })
        .await
        .map_err(store_failure)?;
    let expired = expired_ids(&gateway).await?;
    Ok(Json(
        sealed
            .iter()
            .filter_map(summary)
            .filter(|s| !expired.contains(&s.id))
            .collect(),
    ))
}

/// The seal of recording `id`, if the caller may see it.
async fn find(gateway: &Gateway, caller: &Caller, id: &str) -> Result<AuditEvent, Failure> {
    let unknown = || {
        Failure::not_found(format!("no recording `{id}`"))
            .with_hint("`periscope recordings list` shows the recordings you may play")
    };
    if !valid_id(id) {
        return Err(unknown());
    }
    let found = gateway
        .store()
        .search_audit(&AuditQuery {
            action: Some(actions::RECORDING_SEALED.as_str().to_string()),
            text: Some(id.to_string()),
            limit: 20,
            ..AuditQuery::default()
        })
        .await
        .map_err(store_failure)?;
    let event = found
        .into_iter()
        .rev()
        .find(|e| e.details["recording"].as_str() == Some(id))
        .ok_or_else(unknown)?;
    let admin = gateway.config().policy.is_admin(&caller.policy_identity);
    if !admin && event.actor != caller.name() {
        return Err(unknown());
    }
    Ok(event)
}

/// `GET /v1/recordings/{id}`: the cast file, as sealed.
pub(crate) async fn get(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let event = find(&gateway, &caller, &id).await?;
    let Some(file) = event.details["file"]
        .as_str()
        .filter(|f| file_id(f).is_some())
    else {
        return Err(Failure::not_found(format!(
            "recording `{id}` could not be written when its session ran (see audit event seq {})",
            event.seq
        )));
    };
    if expired_ids(&gateway).await?.contains(&id) {
        return Err(Failure::not_found(format!(
            "recording `{id}` was deleted by the retention sweep (`[recordings] retention`)"
        )));
    }
    let path = recordings_dir(&gateway).join(file);
    let handle = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(recording = %id, file = %path.display(), error = %e, "a sealed recording cannot be read");
            return Err(Failure::not_found(format!(
                "recording `{id}` is sealed (audit seq {}) but its file cannot be read: {}",
                event.seq,
                e.kind()
            ))
            .with_hint("`periscope audit verify` checks every sealed recording"));
        }
    };
    let stream = futures_util::stream::unfold(Some(handle), |state| async move {
        let mut handle = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match handle.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some(handle)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    if let Ok(v) = HeaderValue::from_str(event.details["sha256"].as_str().unwrap_or_default()) {
        headers.insert("x-periscope-sha256", v);
    }
    Ok(response)
}
