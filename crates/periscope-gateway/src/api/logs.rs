//! The logs front end: `POST /v1/logs` reads or follows a log source of a
//! `logs` connection for an authenticated identity, over
//! `periscope-exec`'s [`periscope_exec::logs`] (the data plane) and
//! `periscope-shield` (masking, the session cut).
//!
//! - **Authorisation** is the proxies': [`Gateway::authorize`] (unknown or
//!   uncovered connection, no role: `session.refused`). Reading needs no
//!   grant: what is read is masked (secrets always, personal data unless a
//!   grant lifts `unmask:<entity>`).
//! - **Transport**: streamed HTTP (`application/x-ndjson`), the frames of
//!   `POST /v1/exec` ([`ExecFrame`]): start, stdout (the lines), stderr
//!   (the source's own errors), end.
//! - **Filtering**: `--since` and `--grep` are applied to the masked text
//!   (a grep cannot probe a masked value).
//! - **Grant ends**: a read whose session relies on a grant (an unmask)
//!   watches the grant bus; the grant's end stops it at once and the last
//!   frame says why. A client that goes away stops it too.
//! - **Audit**: `logs.start` is durable before the source is read; `logs.end`
//!   (why, bytes read, lines shown, masked counts) before the last frame.
//!   Counts only, never a line.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use periscope_api::{ExecFrame, LogsRequest};
use periscope_audit::actions;
use periscope_exec::logs::{self, filter::LineFilter};
use periscope_exec::run::{EndReason, Limits, Output};
use periscope_policy::{ConnectionKind, LogsConfig};
use periscope_shield::masking::session_masker;
use periscope_shield::record::AuditSink;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::Failure;
use super::stream::{
    Admitted, Opener, StreamCut, StreamSession, admit, end_details_with, ndjson_response,
};
use crate::client_addr::ClientAddr;
use crate::gateway::{Caller, Gateway};

/// Output pieces buffered between the source and the client; beyond this
/// the source is not read (back-pressure).
const OUTPUT_QUEUE: usize = 16;

/// The source a request names, or why it names none.
fn pick_source<'c>(
    logs: &'c LogsConfig,
    connection: &str,
    wanted: Option<&str>,
) -> Result<(&'c str, &'c periscope_policy::LogSource), Failure> {
    let names = logs
        .sources
        .keys()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    match wanted {
        Some(name) => logs
            .sources
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| {
                Failure::not_found(format!(
                    "connection `{connection}` has no log source `{name}`; its sources: {names}"
                ))
                .with_hint(format!("periscope logs {connection} SOURCE"))
            }),
        None => {
            let mut all = logs.sources.iter();
            match (all.next(), all.next()) {
                (Some((k, v)), None) => Ok((k.as_str(), v)),
                _ => Err(Failure::bad_request(format!(
                    "connection `{connection}` has several log sources ({names}): name one"
                ))
                .with_hint(format!("periscope logs {connection} SOURCE"))),
            }
        }
    }
}

/// `POST /v1/logs`.
pub(crate) async fn logs(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ConnectInfo<ClientAddr>>>,
    agent: Option<Extension<crate::agent::Agent>>,
    axum::Json(body): axum::Json<LogsRequest>,
) -> Result<Response, Failure> {
    let client_addr = client.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| (c.0).0.0);
    let Admitted {
        bus,
        allowance,
        conn,
    } = admit(&gateway, &caller, &body.connection, "logs").await?;
    let (ConnectionKind::Logs, Some(logs_config)) = (conn.kind, conn.logs.clone()) else {
        let hint = match conn.kind {
            ConnectionKind::Exec => {
                format!("run its commands: `periscope exec {} -- ARGS`", conn.name)
            }
            _ => format!(
                "reach it with its own client: `periscope connect {}`",
                conn.name
            ),
        };
        return Err(Failure::bad_request(format!(
            "connection `{}` is not a logs connection",
            conn.name
        ))
        .with_hint(hint));
    };
    let (source_name, source) = pick_source(&logs_config, &conn.name, body.source.as_deref())?;
    let since = match &body.since {
        None => None,
        Some(text) => {
            let ago = humantime::parse_duration(text).map_err(|e| {
                Failure::bad_request(format!("--since `{text}`: {e}"))
                    .with_hint("write a duration such as `30m`, `1h` or `2d`")
            })?;
            let ago = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX);
            Some(gateway.now().unix_timestamp().saturating_sub(ago))
        }
    };
    let filter = LineFilter::new(since, body.grep.as_deref())
        .map_err(|e| Failure::bad_request(e.to_string()))?;
    let plan = logs::plan(&logs_config, source_name, source, body.follow, since).map_err(|e| {
        Failure::bad_request(e.to_string())
            .with_hint("read it without --follow, or ask an administrator for `follow_args`")
    })?;
    let masker = session_masker(&allowance, Some(gateway.mask_token_key()));
    // A grep pattern may hold personal data (`alice@example.com`): the
    // audit gets it masked.
    let grep_masked = body
        .grep
        .as_deref()
        .map(|g| masker.mask_str(g).text.into_owned());
    let StreamSession { sink, session } = Opener {
        gateway: &gateway,
        caller: &caller,
        client_addr,
        agent: agent.map(|a| a.0),
        application: "periscope logs",
    }
    .start(
        &conn.name,
        &allowance,
        bus,
        actions::LOGS_START,
        json!({
            "source": source_name,
            "source_kind": source.kind(),
            "follow": body.follow,
            "since": body.since,
            "grep": grep_masked,
        }),
        "the log source was not read",
    )
    .await?;
    let (cut, cut_rx) = StreamCut::new();
    sink.session_started(Arc::new(cut));
    let (out_tx, out_rx) = mpsc::channel::<Output>(OUTPUT_QUEUE);
    let limits = Limits {
        timeout: logs_config.timeout,
        max_output: logs_config.max_output,
    };
    let started = match logs::start(plan) {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(connection = %conn.name, error = %e, "cannot start a log source");
            let draft = sink.draft(actions::LOGS_END).with_details(json!({
                "session": session,
                "source": source_name,
                "reason": "failed",
                "error": e.to_string(),
            }));
            let _ = sink.submit(draft).await;
            return Err(Failure::unavailable(format!(
                "the log source `{source_name}` of connection `{}` could not be started; ask an \
                 administrator",
                conn.name
            )));
        }
    };
    let (end_tx, end_rx) = oneshot::channel::<ExecFrame>();
    let source_owned = source_name.to_string();
    let session_id = session.clone();
    let title = format!(
        "periscope logs {} {source_name}{}{}",
        conn.name,
        if body.follow { " --follow" } else { "" },
        grep_masked
            .as_deref()
            .map(|g| format!(" --grep {g}"))
            .unwrap_or_default()
    );
    let recording = crate::recordings::Recording::begin(&gateway, &session, title);
    tokio::spawn(async move {
        // As for exec: the recorder sits between the read and the client,
        // never waiting for the disk; sealed before `logs.end`.
        let (run_tx, relay) = recording.relay(out_tx, OUTPUT_QUEUE);
        let (done, recording) = tokio::join!(
            logs::run(started, &masker, filter, run_tx, cut_rx, limits),
            relay
        );
        recording.seal(&sink).await;
        let outcome = &done.outcome;
        let draft = sink.draft(actions::LOGS_END).with_details(end_details_with(
            &session,
            outcome,
            json!({
                "source": source_owned,
                "bytes": outcome.stdout_bytes,
                "stderr_bytes": outcome.stderr_bytes,
                "lines": done.lines,
            }),
        ));
        if let Err(e) = sink.submit(draft).await {
            tracing::error!(error = %e, "a log read's end was not recorded");
        }
        let _ = end_tx.send(end_frame(&done, &limits));
        drop(sink);
    });
    Ok(ndjson_response(session_id, out_rx, end_rx))
}

/// The last frame: how the read ended, in words for the client.
fn end_frame(done: &logs::LogsOutcome, limits: &Limits) -> ExecFrame {
    let outcome = &done.outcome;
    let (message, hint) = match &outcome.reason {
        EndReason::Exited | EndReason::ClientGone | EndReason::Idle => (None, None),
        EndReason::Timeout => (
            Some(format!(
                "the read lasted longer than the connection's timeout ({}) and was ended",
                humantime::format_duration(limits.timeout)
            )),
            Some("read it again (with --since) to go on".to_string()),
        ),
        EndReason::OutputLimit => (
            Some(format!(
                "the read passed the connection's max_output ({} bytes) and was ended",
                limits.max_output
            )),
            Some("narrow it (--since, --grep) and read again".to_string()),
        ),
        EndReason::Cut(notice) => (Some(notice.message.clone()), notice.hint.clone()),
    };
    ExecFrame::End {
        reason: outcome.reason.code().to_string(),
        exit_code: outcome.client_exit_code(),
        signal: outcome.signal,
        message,
        hint,
        masked: outcome.masked.total(),
    }
}
