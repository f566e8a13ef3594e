//! The `exec` tool: a command of an exec connection run for an agent
//! through the very handler of `POST /v1/exec` (same decision, patterns,
//! masking, audit with `via`/`agent`, and grant cut), its NDJSON frames
//! gathered into one outcome with the output bounded.

use futures_util::StreamExt;

use super::outcome::{Outcome, Refusal};
use crate::gateway::{Caller, Gateway};

/// Most bytes of output the `exec` tool keeps (stdout and stderr together).
const AGENT_EXEC_OUTPUT: usize = 256 * 1024;

/// Runs a command of an exec connection for an agent through the very
/// handler of `POST /v1/exec` (same decision, patterns, masking, audit and
/// cut), and gathers its frames into an MCP outcome, output bounded.
pub(crate) async fn run(
    gateway: &Gateway,
    caller: &Caller,
    agent: &crate::agent::Agent,
    body: periscope_api::ExecRequest,
) -> Outcome {
    let response = crate::api::exec_handler(
        axum::extract::State(gateway.clone()),
        axum::Extension(caller.clone()),
        None,
        Some(axum::Extension(agent.clone())),
        axum::Json(body),
    )
    .await;
    let response = match response {
        Ok(r) => r,
        Err(f) if f.status == 403 => {
            return Outcome::refused(
                f.message.clone(),
                Refusal::from_hint(f.hint.as_deref(), None),
            );
        }
        Err(f) => return Outcome::failed(f.message.clone(), f.hint.clone()),
    };
    let mut stream = response.into_body().into_data_stream();
    let mut pending = Vec::new();
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let mut truncated = false;
    let mut end = None;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk);
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            let Ok(frame) = serde_json::from_slice::<periscope_api::ExecFrame>(&line) else {
                continue;
            };
            match frame {
                periscope_api::ExecFrame::Stdout { data }
                | periscope_api::ExecFrame::Stderr { data }
                    if stdout.len() + stderr.len() + data.len() > AGENT_EXEC_OUTPUT =>
                {
                    truncated = true;
                }
                periscope_api::ExecFrame::Stdout { data } => stdout.push_str(&data),
                periscope_api::ExecFrame::Stderr { data } => stderr.push_str(&data),
                periscope_api::ExecFrame::End { .. } => end = Some(frame),
                periscope_api::ExecFrame::Start { .. } => {}
            }
        }
    }
    match end {
        Some(periscope_api::ExecFrame::End {
            reason,
            exit_code,
            signal,
            message,
            hint,
            masked,
        }) => {
            let result = serde_json::json!({
                "reason": reason,
                "exit_code": exit_code,
                "signal": signal,
                "stdout": stdout,
                "stderr": stderr,
                "truncated": truncated,
                "masked": masked,
                "message": message,
            });
            if reason == "cut" {
                let mut outcome = Outcome::failed(
                    message.unwrap_or_else(|| "the command was cut".into()),
                    hint,
                );
                outcome.result = Some(result);
                outcome
            } else {
                Outcome::completed(result)
            }
        }
        _ => Outcome::failed("the command's stream ended without its last frame", None),
    }
}
