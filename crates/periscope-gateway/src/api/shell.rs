//! The interactive shell front end: `GET /v1/shell?connection=NAME` opens
//! the shell of a `shell` connection on a WebSocket, for an authenticated
//! identity, over `periscope-exec` (the PTY, the terminal masker) and
//! `periscope-shield` (masking, the session cut).
//!
//! - **Authorisation** is the other streams' ([`admit`]), then the `shell`
//!   shield: a shell connection is always behind it, and only a grant
//!   lifting `shell` opens it. A refusal is an ordinary API error before the
//!   upgrade (403, the shield in the message, the request command in the
//!   hint), audited as `shell.refused`.
//! - **Transport**: a WebSocket, because input flows too (keystrokes,
//!   resizes, signals). axum's `ws` feature serves it (tokio-tungstenite
//!   underneath). Client to gateway: binary frames are keystrokes, text
//!   frames are JSON [`ShellClientFrame`]s; a malformed or unknown frame
//!   gets an `error` frame and the shell goes on. Gateway to client: JSON
//!   [`ShellServerFrame`]s: `start`, `output` (masked), `end`, then a close.
//!   A request with an `Origin` header naming another host is refused, so a
//!   web page elsewhere cannot open a shell with a browser's cookie.
//! - **Grant ends**: the session watches the grant bus like any other; the
//!   grant lifting `shell` that expires or is revoked ends the shell at once
//!   (SIGHUP, SIGTERM, SIGKILL after 300 ms) and the `end` frame
//!   says why.
//! - **Audit and recording**: `shell.start` is durable before the shell
//!   starts; the masked output is recorded (asciicast v2, keystrokes are
//!   not: their echo is in the output, masked) and sealed before
//!   `shell.end`, which precedes the `end` frame.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use periscope_api::{ShellClientFrame, ShellServerFrame};
use periscope_audit::actions;
use periscope_exec::pty::WindowSize;
use periscope_exec::run::{EndReason, Outcome, Output};
use periscope_exec::shell::{Input, ShellLimits, ShellSignal};
use periscope_policy::{ConnectionKind, ShellConfig, Shield};
use periscope_shield::masking::session_masker;
use periscope_shield::record::AuditSink;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::Failure;
use super::stream::{Admitted, Opener, StreamCut, StreamSession, admit, end_details_with};
use crate::audit_sink::GatewaySink;
use crate::client_addr::ClientAddr;
use crate::gateway::{Caller, Gateway};

/// Output pieces buffered between the terminal and the client.
const OUTPUT_QUEUE: usize = 16;
/// Client frames buffered before the shell takes them.
const INPUT_QUEUE: usize = 64;
/// Largest client message: a paste, not a file transfer.
const MAX_MESSAGE: usize = 1024 * 1024;
/// Largest window side the gateway accepts.
const MAX_SIDE: u16 = 1000;
/// Window size when the client gives none.
const DEFAULT_SIZE: WindowSize = WindowSize { cols: 80, rows: 24 };

/// The query of `GET /v1/shell`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShellQuery {
    /// The connection (`kind = "shell"`).
    connection: String,
    /// The client's window, columns.
    cols: Option<u16>,
    /// The client's window, rows.
    rows: Option<u16>,
}

/// `GET /v1/shell`.
pub(crate) async fn shell(
    State(gateway): State<Gateway>,
    Extension(caller): Extension<Caller>,
    client: Option<Extension<ConnectInfo<ClientAddr>>>,
    agent: Option<Extension<crate::agent::Agent>>,
    headers: HeaderMap,
    query: Result<Query<ShellQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let Query(query) = query.map_err(|e| {
        Failure::bad_request(format!("bad query: {e}"))
            .with_hint("call `GET /v1/shell?connection=NAME&cols=80&rows=24` on a WebSocket")
    })?;
    cross_origin_check(&headers)?;
    let client_addr = client.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| (c.0).0.0);
    let Admitted {
        bus,
        allowance,
        conn,
    } = admit(&gateway, &caller, &query.connection, "shell").await?;
    let (ConnectionKind::Shell, Some(shell_config)) = (conn.kind, conn.shell.clone()) else {
        return Err(Failure::bad_request(format!(
            "connection `{}` is not a shell connection",
            conn.name
        ))
        .with_hint(match conn.kind {
            ConnectionKind::Exec => {
                format!("run its commands: `periscope exec {} -- ARGS`", conn.name)
            }
            ConnectionKind::Logs => format!("read its logs: `periscope logs {}`", conn.name),
            _ => format!(
                "reach it with its own client: `periscope connect {}`",
                conn.name
            ),
        }));
    };
    let identity = caller.name().to_string();
    let size = window_size(query.cols, query.rows)?;
    let Some(lift) = allowance.shields().lifted().get(&Shield::Shell).cloned() else {
        let refusal = allowance.refusal(&Shield::Shell, "shell");
        let draft = gateway
            .draft(&identity, actions::SHELL_REFUSED, &conn.name)
            .with_details(json!({
                "via": "api",
                "reason": "shield",
                "shield": refusal.shield.to_string(),
                "message": refusal.message,
            }));
        gateway.audit(draft).await?;
        return Err(
            Failure::forbidden(format!("{}: {}", refusal.message, refusal.detail))
                .with_hint(refusal.hint),
        );
    };
    let upgrade = upgrade.map_err(|e| {
        Failure::bad_request(format!("`GET /v1/shell` is a WebSocket: {e}"))
            .with_hint("open it with `periscope shell CONNECTION`, or any WebSocket client")
    })?;
    let StreamSession { sink, session } = Opener {
        gateway: &gateway,
        caller: &caller,
        client_addr,
        agent: agent.map(|a| a.0),
        application: "periscope shell",
    }
    .start(
        &conn.name,
        &allowance,
        bus,
        actions::SHELL_START,
        json!({
            "command": shell_config.command.first(),
            "lifted_by": lift.grant_id,
            "cols": size.cols,
            "rows": size.rows,
        }),
        "the shell was not started",
    )
    .await?;
    let masker = session_masker(&allowance, Some(gateway.mask_token_key()));
    let title = format!("periscope shell {} (masked)", conn.name);
    let started = Started {
        gateway,
        sink,
        session,
        shell: shell_config,
        connection: conn.name,
        size,
        title,
    };
    Ok(upgrade
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| serve(socket, started, masker)))
}

/// Refuses a request whose `Origin` names another host than the one it
/// was sent to: browsers send `Origin` on every WebSocket, and a cookie
/// alone must not let a page elsewhere open a shell. Clients that are not
/// browsers send none.
fn cross_origin_check(headers: &HeaderMap) -> Result<(), Failure> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest.trim_end_matches('/'));
    if origin_host.is_some_and(|o| !host.is_empty() && o.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    Err(Failure::forbidden(
        "a shell cannot be opened from another site (the Origin header names another host)",
    ))
}

/// The window size of the query (default 80x24), each side 1 to 1000.
fn window_size(cols: Option<u16>, rows: Option<u16>) -> Result<WindowSize, Failure> {
    let size = WindowSize {
        cols: cols.unwrap_or(DEFAULT_SIZE.cols),
        rows: rows.unwrap_or(DEFAULT_SIZE.rows),
    };
    check_size(size).map_err(Failure::bad_request)
}

fn check_size(size: WindowSize) -> Result<WindowSize, String> {
    if (1..=MAX_SIDE).contains(&size.cols) && (1..=MAX_SIDE).contains(&size.rows) {
        Ok(size)
    } else {
        Err(format!(
            "a window is 1 to {MAX_SIDE} columns by 1 to {MAX_SIDE} rows, not {}x{}",
            size.cols, size.rows
        ))
    }
}

/// What the handler hands to the upgraded connection.
struct Started {
    gateway: Gateway,
    sink: GatewaySink,
    session: String,
    shell: ShellConfig,
    connection: String,
    size: WindowSize,
    title: String,
}

/// Serves one upgraded connection: starts the shell, then pumps frames both
/// ways until the shell ends (then the `end` frame and a close) or the
/// client goes (then the shell is ended).
async fn serve(mut socket: WebSocket, started: Started, masker: periscope_redact::Masker) {
    let Started {
        gateway,
        sink,
        session,
        shell: shell_config,
        connection,
        size,
        title,
    } = started;
    let process = match periscope_exec::pty::spawn(&shell_config, size) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(connection = %connection, error = %e, "cannot start a shell");
            let draft = sink.draft(actions::SHELL_END).with_details(json!({
                "session": session,
                "reason": "failed",
                "error": e.to_string(),
            }));
            let _ = sink.submit(draft).await;
            let end = ShellServerFrame::End {
                reason: "failed".into(),
                exit_code: 1,
                signal: None,
                message: Some(format!(
                    "the shell of connection `{connection}` could not be started; ask an \
                     administrator"
                )),
                hint: None,
                masked: 0,
            };
            let _ = send(&mut socket, &end).await;
            let _ = close(&mut socket, close_code::ERROR, "failed").await;
            return;
        }
    };
    let (cut, cut_rx) = StreamCut::new();
    sink.session_started(Arc::new(cut));
    // A client gone already is seen by the pump below, which ends the shell.
    let _ = send(
        &mut socket,
        &ShellServerFrame::Start {
            session: session.clone(),
        },
    )
    .await;

    let (out_tx, mut out_rx) = mpsc::channel::<Output>(OUTPUT_QUEUE);
    let (in_tx, in_rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let (end_tx, end_rx) = oneshot::channel::<ShellServerFrame>();
    let limits = ShellLimits {
        timeout: shell_config.timeout,
        idle_timeout: shell_config.idle_timeout,
    };
    let recording =
        crate::recordings::Recording::begin_sized(&gateway, &session, title, size.cols, size.rows);
    let session_id = session.clone();
    tokio::spawn(async move {
        let (run_tx, relay) = recording.relay(out_tx, OUTPUT_QUEUE);
        let (outcome, recording) = tokio::join!(
            periscope_exec::shell::run(process, &masker, run_tx, in_rx, cut_rx, limits),
            relay
        );
        recording.seal(&sink).await;
        let end = end_frame(&outcome, &shell_config);
        let draft = sink
            .draft(actions::SHELL_END)
            .with_details(end_details_with(
                &session_id,
                &outcome,
                json!({
                    "output_bytes": outcome.stdout_bytes,
                }),
            ));
        if let Err(e) = sink.submit(draft).await {
            tracing::error!(error = %e, "a shell's end was not recorded");
        }
        let _ = end_tx.send(end);
        drop(sink);
    });

    // Pump both ways. Dropping `in_tx` (the client is gone) ends the shell.
    let mut in_tx = Some(in_tx);
    loop {
        tokio::select! {
            piece = out_rx.recv() => match piece {
                Some(Output::Stdout(data) | Output::Stderr(data)) => {
                    if send(&mut socket, &ShellServerFrame::Output { data }).await.is_err() {
                        in_tx = None;
                        break;
                    }
                }
                None => break,
            },
            message = socket.recv() => {
                let Some(Ok(message)) = message else {
                    in_tx = None;
                    break;
                };
                let input = match message {
                    Message::Binary(bytes) => Ok(Input::Data(bytes.to_vec())),
                    Message::Text(text) => client_frame(text.as_str()),
                    Message::Close(_) => {
                        in_tx = None;
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                match input {
                    Ok(input) => {
                        if let Some(tx) = &in_tx
                            && tx.send(input).await.is_err()
                        {
                            // The shell ended; its end frame follows.
                            in_tx = None;
                        }
                    }
                    Err(message) => {
                        if send(&mut socket, &ShellServerFrame::Error { message }).await.is_err() {
                            in_tx = None;
                            break;
                        }
                    }
                }
            }
        }
    }
    drop(in_tx);
    drop(out_rx);
    // The run's end: audited (and the recording sealed) before the client
    // hears it.
    if let Ok(end) = end_rx.await {
        let _ = send(&mut socket, &end).await;
        let _ = close(&mut socket, close_code::NORMAL, "shell ended").await;
    }
}

/// One client text frame, or the error to send back (the shell goes on).
fn client_frame(text: &str) -> Result<Input, String> {
    let frame: ShellClientFrame = serde_json::from_str(text).map_err(|e| {
        let kind = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string));
        match kind {
            Some(kind) if !["stdin", "resize", "signal"].contains(&kind.as_str()) => {
                format!(
                    "unknown frame type `{}`: a client sends `stdin`, `resize` or `signal` \
                     (or keystrokes as binary frames)",
                    kind.chars().take(40).collect::<String>()
                )
            }
            _ => format!("malformed frame: {e}"),
        }
    })?;
    match frame {
        ShellClientFrame::Stdin { data } => Ok(Input::Data(data.into_bytes())),
        ShellClientFrame::Resize { cols, rows } => {
            check_size(WindowSize { cols, rows }).map(Input::Resize)
        }
        ShellClientFrame::Signal { signal } => ShellSignal::parse(&signal)
            .map(Input::Signal)
            .ok_or_else(|| {
                format!(
                    "unknown signal `{}`: one of {}",
                    signal.chars().take(20).collect::<String>(),
                    ShellSignal::NAMES.join(", ")
                )
            }),
    }
}

async fn send(socket: &mut WebSocket, frame: &ShellServerFrame) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).unwrap_or_default();
    socket.send(Message::Text(text.into())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) -> Result<(), axum::Error> {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await
}

/// The last frame: how the shell ended, in words for the client.
fn end_frame(outcome: &Outcome, shell: &ShellConfig) -> ShellServerFrame {
    let (message, hint) = match &outcome.reason {
        EndReason::Exited | EndReason::ClientGone | EndReason::OutputLimit => (None, None),
        EndReason::Timeout => (
            Some(format!(
                "the shell ran longer than the connection's timeout ({}) and was ended",
                humantime::format_duration(shell.timeout)
            )),
            Some("open a new shell to go on".to_string()),
        ),
        EndReason::Idle => (
            Some(format!(
                "the shell was idle longer than the connection's idle_timeout ({}) and was ended",
                humantime::format_duration(shell.idle_timeout)
            )),
            Some("open a new shell to go on".to_string()),
        ),
        EndReason::Cut(notice) => (Some(notice.message.clone()), notice.hint.clone()),
    };
    ShellServerFrame::End {
        reason: outcome.reason.code().to_string(),
        exit_code: outcome.client_exit_code(),
        signal: outcome.signal,
        message,
        hint,
        masked: outcome.masked.total(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_parsed_or_answered_precisely() {
        assert_eq!(
            client_frame(r#"{"type":"stdin","data":"ls\n"}"#),
            Ok(Input::Data(b"ls\n".to_vec()))
        );
        assert_eq!(
            client_frame(r#"{"type":"resize","cols":100,"rows":30}"#),
            Ok(Input::Resize(WindowSize {
                cols: 100,
                rows: 30
            }))
        );
        let err = client_frame(r#"{"type":"teleport"}"#).unwrap_err();
        assert!(err.starts_with("unknown frame type `teleport`"), "{err}");
        let err = client_frame("{not json").unwrap_err();
        assert!(err.starts_with("malformed frame:"), "{err}");
        let err = client_frame(r#"{"type":"resize","cols":0,"rows":30}"#).unwrap_err();
        assert!(err.contains("1 to 1000 columns"), "{err}");
        let err = client_frame(r#"{"type":"signal","signal":"USR1"}"#).unwrap_err();
        assert!(err.starts_with("unknown signal `USR1`"), "{err}");
    }

    #[test]
    fn another_site_cannot_open_a_shell() {
        let mut headers = HeaderMap::new();
        assert!(cross_origin_check(&headers).is_ok());
        headers.insert(header::HOST, "gw.example:8443".parse().unwrap());
        headers.insert(header::ORIGIN, "https://gw.example:8443".parse().unwrap());
        assert!(cross_origin_check(&headers).is_ok());
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_origin_check(&headers).is_err());
    }
}
