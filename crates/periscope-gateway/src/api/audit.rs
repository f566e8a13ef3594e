//! Reading, exporting and verifying the audit chain.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use futures_util::StreamExt;
use periscope_api as api;
use periscope_audit::{
    AuditEvent, AuditTime, ChainError, Checkpoint, JsonlHeader, JsonlWriter, Start,
};
use periscope_store::{AuditQuery, ExportFrom};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use super::admin::require_admin;
use super::failure::Failure;
use crate::gateway::{Caller, Gateway};

/// Most events one search returns.
pub const MAX_EVENTS: u32 = 10_000;
/// Export chunks are flushed at about this size.
const CHUNK: usize = 64 * 1024;

/// Parses `since`/`until`: an RFC 3339 time, or a duration meaning "now minus".
pub(crate) fn parse_instant(
    text: &str,
    field: &str,
    now: OffsetDateTime,
) -> Result<AuditTime, Failure> {
    let text = text.trim();
    let instant = match OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t,
        Err(_) => match humantime::parse_duration(text) {
            Ok(d) => time::Duration::try_from(d)
                .ok()
                .and_then(|d| now.checked_sub(d))
                .ok_or_else(|| Failure::bad_request(format!("`{field}` {text} is too far back")))?,
            Err(_) => {
                return Err(Failure::bad_request(format!(
                    "`{field}` must be an RFC 3339 time (2026-11-29T05:00:00Z) or a duration \
                     before now (1h, 30m, 7d), not `{text}`"
                )));
            }
        },
    };
    AuditTime::from_datetime(instant).map_err(|e| Failure::bad_request(format!("`{field}`: {e}")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct EventsQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    tail: Option<u32>,
    before: Option<u64>,
    text: Option<String>,
}

pub(crate) async fn events(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<Vec<AuditEvent>>, Failure> {
    require_admin(&gateway, &caller)?;
    let now = gateway.now();
    let limit = q.tail.or(q.limit).unwrap_or(100);
    if limit == 0 || limit > MAX_EVENTS {
        return Err(Failure::bad_request(format!(
            "`limit`/`tail` must be between 1 and {MAX_EVENTS}"
        )));
    }
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let query = AuditQuery {
        actor: non_empty(q.actor),
        action: non_empty(q.action),
        target: non_empty(q.target),
        since: q
            .since
            .as_deref()
            .map(|s| parse_instant(s, "since", now))
            .transpose()?,
        until: q
            .until
            .as_deref()
            .map(|s| parse_instant(s, "until", now))
            .transpose()?,
        before_seq: q.before,
        from_seq: None,
        text: non_empty(q.text),
        limit,
    };
    Ok(axum::Json(gateway.store().search_audit(&query).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    since: Option<String>,
    since_seq: Option<u64>,
}

/// `GET /v1/audit/export`: the chain as JSONL (header, events, checkpoints
/// right after the events they sign), streamed page by page with
/// backpressure, so memory stays bounded whatever the chain length.
pub(crate) async fn export(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, Failure> {
    require_admin(&gateway, &caller)?;
    let from = match (q.since.as_deref(), q.since_seq) {
        (Some(_), Some(_)) => {
            return Err(Failure::bad_request(
                "give `since` or `since_seq`, not both",
            ));
        }
        (Some(s), None) => ExportFrom::Time(parse_instant(s, "since", gateway.now())?),
        (None, Some(seq)) => ExportFrom::Seq(seq),
        (None, None) => ExportFrom::Start,
    };
    let checkpoints = gateway.store().audit_checkpoints(None).await?;
    let key_id = gateway.audit_verifier_key().key_id();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let store = gateway.store().clone();
    tokio::spawn(async move {
        if let Err(e) = produce(store, from, checkpoints, key_id, &tx).await {
            tracing::error!(error = %e, "audit export aborted");
            let _ = tx.send(Err(std::io::Error::other(e))).await;
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"audit.jsonl\""),
    );
    Ok(response)
}

/// Where the JSONL writer puts its bytes; the export task takes them out in
/// chunks between events.
#[derive(Clone, Default)]
struct SharedSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedSink {
    fn take_if_at_least(&self, at_least: usize) -> Option<Vec<u8>> {
        let mut buffer = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (buffer.len() >= at_least).then(|| std::mem::take(&mut *buffer))
    }
}

impl std::io::Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the export into `tx` chunk by chunk.
async fn produce(
    store: periscope_store::Store,
    from: ExportFrom,
    checkpoints: Vec<Checkpoint>,
    key_id: periscope_audit::KeyId,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let sink = SharedSink::default();
    let mut writer = JsonlWriter::new(sink.clone());
    let io = |e: std::io::Error| e.to_string();
    writer
        .write_header(&JsonlHeader::new(Some(key_id)))
        .map_err(io)?;
    let mut checkpoints = checkpoints.into_iter().peekable();
    let mut events = std::pin::pin!(store.export_audit(from));
    let mut first = true;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| e.to_string())?;
        if first {
            // The last checkpoint before the first exported event vouches for
            // where a partial export starts; older ones prove nothing more.
            let mut before = None;
            while let Some(cp) = checkpoints.next_if(|c| c.seq < event.seq) {
                before = Some(cp);
            }
            if let Some(cp) = before {
                writer.write_checkpoint(&cp).map_err(io)?;
            }
            first = false;
        }
        while let Some(cp) = checkpoints.next_if(|c| c.seq < event.seq) {
            writer.write_checkpoint(&cp).map_err(io)?;
        }
        writer.write_event(&event).map_err(io)?;
        while let Some(cp) = checkpoints.next_if(|c| c.seq == event.seq) {
            writer.write_checkpoint(&cp).map_err(io)?;
        }
        if let Some(chunk) = sink.take_if_at_least(CHUNK)
            && tx.send(Ok(Bytes::from(chunk))).await.is_err()
        {
            return Ok(()); // the client went away
        }
    }
    // Checkpoints past the last exported event are left out: they sign events
    // written after the export started, which a verifier would call missing.
    writer.into_inner().map_err(io)?;
    if let Some(rest) = sink.take_if_at_least(1) {
        let _ = tx.send(Ok(Bytes::from(rest))).await;
    }
    Ok(())
}

pub(crate) async fn verify(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<api::VerifyResponse>, Failure> {
    require_admin(&gateway, &caller)?;
    let keys = [gateway.audit_verifier_key().clone()];
    match gateway.store().verify_audit(&keys, Start::Genesis).await {
        Ok(report) => {
            // The chain holds: now the recordings it seals.
            let recordings = crate::recordings::verify::check_gateway(&gateway)
                .await
                .map_err(|e| {
                    Failure::unavailable(format!("could not read the audit chain: {e}"))
                })?;
            let ok = recordings.as_ref().is_none_or(|r| r.ok());
            let mut summary = report.to_string();
            if let Some(r) = &recordings {
                if !r.ok() {
                    tracing::error!(report = %r, "SEALED RECORDINGS FAILED VERIFICATION");
                }
                summary = format!("{summary}; {r}");
            }
            Ok(axum::Json(api::VerifyResponse {
                ok,
                summary,
                broken_at: None,
                report: Some(json!({
                    "recordings": recordings.as_ref().map(|r| json!({
                        "checked": r.checked,
                        "intact": r.intact,
                        "expired": r.expired,
                        "problems": r.problem_lines(),
                    })),
                    "events_checked": report.events_checked,
                    "first_seq": report.first_seq,
                    "last_seq": report.last.map(|h| h.seq),
                    "last_hash": report.last.map(|h| h.hash.to_hex()),
                    "checkpoints_verified": report.checkpoints_verified,
                    "last_checkpoint_seq": report.last_checkpoint_seq,
                    "uncovered_events": report.uncovered_events,
                    "warnings": report.warnings(),
                })),
            }))
        }
        Err(ChainError::Read { source, .. }) => Err(Failure::unavailable(format!(
            "could not read the audit chain: {source}"
        ))),
        Err(e) => {
            tracing::error!(error = %e, "AUDIT CHAIN VERIFICATION FAILED");
            Ok(axum::Json(api::VerifyResponse {
                ok: false,
                summary: e.to_string(),
                broken_at: e.seq(),
                report: None,
            }))
        }
    }
}

pub(crate) async fn public_key(State(gateway): State<Gateway>) -> Json<api::PublicKey> {
    let key = gateway.audit_verifier_key();
    axum::Json(api::PublicKey {
        key_id: key.key_id().to_string(),
        public_key: key.to_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_before_now() {
        let now = OffsetDateTime::parse("2026-11-29T05:00:00Z", &Rfc3339).unwrap();
        assert_eq!(
            parse_instant("1h", "since", now).unwrap().as_str(),
            "2026-11-29T04:00:00.000000Z"
        );
        assert_eq!(
            parse_instant("2026-11-28T00:00:00+01:00", "since", now)
                .unwrap()
                .as_str(),
            "2026-11-27T23:00:00.000000Z"
        );
        let err = parse_instant("yesterday", "since", now).unwrap_err();
        assert!(err.message.contains("RFC 3339"), "{}", err.message);
    }
}
