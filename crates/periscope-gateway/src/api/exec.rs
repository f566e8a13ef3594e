//! The commands front end: `POST /v1/exec` runs a command of an `exec`
//! connection for an authenticated identity, over `periscope-exec` (the data
//! plane) and `periscope-shield` (masking, the session cut).
//!
//! - **Authorisation** is the proxies': [`Gateway::authorize`] (unknown or
//!   uncovered connection, no role: `session.refused`), then the command
//!   line against the connection's patterns ([`periscope_exec::command`]):
//!   a sensitive pattern needs a grant lifting `command:<pattern>`, an
//!   unlisted line is refused (`exec.refused`, with the shield and the
//!   command that requests it).
//! - **Transport**: the answer is streamed HTTP (`application/x-ndjson`, one
//!   [`ExecFrame`] per line: start, stdout, stderr, end). Output only flows
//!   one way in this phase (stdin is empty), so a plain streamed response
//!   through the existing HTTPS API suffices, works through any HTTP proxy
//!   and needs no new dependency; the interactive shell will need a
//!   WebSocket. A client that goes away closes the stream, which kills the
//!   process group (the CLI's Ctrl-C).
//! - **Masking**: output is masked line by line as it flows, with the
//!   session's masker (secrets always, personal data unless a grant lifts
//!   `unmask:<entity>`).
//! - **Grant ends**: the session watches the grant bus like a PostgreSQL
//!   session; a grant it relies on that expires or is revoked kills the
//!   process group at once (within the expiry job's 250 ms period) and the
//!   last frame says why.
//! - **Audit**: `exec.start` is durable before the process starts;
//!   `exec.end` (why, exit code, bytes, masked counts) before the last frame.
//!   Arguments are audited masked; output never.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use periscope_api::{ExecFrame, ExecRequest};
use periscope_audit::actions;
use periscope_exec::command::{self, Permit};
use periscope_exec::run::{EndReason, Limits, Outcome, Output};
use periscope_policy::{ConnectionKind, ExecConfig};
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

/// Output pieces buffered between the process and the client; beyond this
/// the pipes are not read (back-pressure).
const OUTPUT_QUEUE: usize = 16;

/// `POST /v1/exec`.
pub(crate) async fn exec(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ConnectInfo<ClientAddr>>>,
    agent: Option<Extension<crate::agent::Agent>>,
    axum::Json(body): axum::Json<ExecRequest>,
) -> Result<Response, Failure> {
    let client_addr = client.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| (c.0).0.0);
    let Admitted {
        bus,
        allowance,
        conn,
    } = admit(&gateway, &caller, &body.connection, "exec").await?;
    let (ConnectionKind::Exec, Some(exec)) = (conn.kind, conn.exec.clone()) else {
        return Err(Failure::bad_request(format!(
            "connection `{}` is not an exec connection",
            conn.name
        ))
        .with_hint(format!(
            "reach it with its own client: `periscope connect {}`",
            conn.name
        )));
    };
    let masker = session_masker(&allowance, Some(gateway.mask_token_key()));
    // Arguments may hold personal data (`grep alice@example.com`): the audit
    // and the logs get them masked, like any output.
    let args_masked: Vec<String> = body
        .args
        .iter()
        .map(|a| masker.mask_str(a).text.into_owned())
        .collect();
    let identity = caller.name().to_string();
    let permit = match command::check(&exec, &allowance, &body.args) {
        Ok(p) => p,
        Err(denied) => {
            let refusal = denied.refusal(&allowance, &conn.name);
            let draft = gateway
                .draft(&identity, actions::EXEC_REFUSED, &conn.name)
                .with_details(json!({
                    "via": agent.as_ref().map_or("api", |a| a.0.via),
                    "agent": agent.as_ref().map(|a| a.0.client.clone()),
                    "reason": denied.code(),
                    "shield": refusal.shield.to_string(),
                    "args": args_masked,
                    "message": refusal.message,
                }));
            gateway.audit(draft).await?;
            return Err(
                Failure::forbidden(format!("{}: {}", refusal.message, refusal.detail))
                    .with_hint(refusal.hint),
            );
        }
    };
    let StreamSession { sink, session } = Opener {
        gateway: &gateway,
        caller: &caller,
        client_addr,
        agent: agent.map(|a| a.0),
        application: "periscope exec",
    }
    .start(
        &conn.name,
        &allowance,
        bus,
        actions::EXEC_START,
        json!({
            "args": args_masked,
            "pattern": permit.pattern().to_string(),
            "lifted_by": match &permit {
                Permit::Lifted { grant_id, .. } => Some(grant_id.clone()),
                Permit::Allowed { .. } => None,
            },
        }),
        "the command was not started",
    )
    .await?;
    let process = match periscope_exec::process::spawn(&exec, &body.args) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(connection = %conn.name, error = %e, "cannot start a command");
            let draft = sink.draft(actions::EXEC_END).with_details(json!({
                "session": session,
                "reason": "failed",
                "error": e.to_string(),
            }));
            let _ = sink.submit(draft).await;
            return Err(Failure::unavailable(format!(
                "the command of connection `{}` could not be started; ask an administrator",
                conn.name
            )));
        }
    };
    let (cut, cut_rx) = StreamCut::new();
    sink.session_started(Arc::new(cut));

    let (out_tx, out_rx) = mpsc::channel::<Output>(OUTPUT_QUEUE);
    let (end_tx, end_rx) = oneshot::channel::<ExecFrame>();
    let limits = Limits {
        timeout: exec.timeout,
        max_output: exec.max_output,
    };
    let session_id = session.clone();
    let title = format!("periscope exec {} -- {}", conn.name, args_masked.join(" "));
    let recording = crate::recordings::Recording::begin(&gateway, &session, title);
    tokio::spawn(async move {
        // The recorder sits between the run and the client (off the hot
        // path: it never waits for the disk).
        let (run_tx, relay) = recording.relay(out_tx, OUTPUT_QUEUE);
        let (outcome, recording) = tokio::join!(
            periscope_exec::run::run(process, &masker, run_tx, cut_rx, limits),
            relay
        );
        recording.seal(&sink).await;
        let end = end_frame(&outcome, &exec);
        let draft = sink.draft(actions::EXEC_END).with_details(end_details_with(
            &session,
            &outcome,
            json!({
                "stdout_bytes": outcome.stdout_bytes,
                "stderr_bytes": outcome.stderr_bytes,
            }),
        ));
        if let Err(e) = sink.submit(draft).await {
            tracing::error!(error = %e, "a command's end was not recorded");
        }
        let _ = end_tx.send(end);
        drop(sink);
    });

    Ok(ndjson_response(session_id, out_rx, end_rx))
}

/// The last frame: how the command ended, in words for the client.
fn end_frame(outcome: &Outcome, exec: &ExecConfig) -> ExecFrame {
    let (message, hint) = match &outcome.reason {
        EndReason::Exited | EndReason::ClientGone | EndReason::Idle => (None, None),
        EndReason::Timeout => (
            Some(format!(
                "the command ran longer than the connection's timeout ({}) and was killed",
                humantime::format_duration(exec.timeout)
            )),
            None,
        ),
        EndReason::OutputLimit => (
            Some(format!(
                "the command wrote more than the connection's max_output ({} bytes) and was killed",
                exec.max_output
            )),
            Some("narrow the command (a filter, fewer lines) and run it again".to_string()),
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
