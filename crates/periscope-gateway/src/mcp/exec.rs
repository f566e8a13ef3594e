//! The `exec` and `logs_tail` tools: a command of an exec connection, or
//! a log source read to its end, run for an agent through the very
//! handlers of `POST /v1/exec` and `POST /v1/logs` (same decision,
//! patterns, masking, audit with `via`/`agent`, and grant cut), their
//! NDJSON frames gathered into one outcome with the output bounded: the
//! first bytes of a command's output, the last ones of a log.

use futures_util::StreamExt;

use super::outcome::{Outcome, Refusal};
use crate::gateway::{Caller, Gateway};

/// Most bytes of output a tool keeps (stdout and stderr together).
const AGENT_EXEC_OUTPUT: usize = 256 * 1024;

/// Which end of a long output an agent gets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// A command's first bytes (what it printed first explains the rest).
    Head,
    /// A log's last lines (the newest are what a tail is for).
    Tail,
}

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
    gather(response, Keep::Head).await
}

/// Reads a log source of a logs connection to its end for an agent
/// through the very handler of `POST /v1/logs` (never following: a tool
/// call must end), keeping its newest lines.
pub(crate) async fn tail(
    gateway: &Gateway,
    caller: &Caller,
    agent: &crate::agent::Agent,
    body: periscope_api::LogsRequest,
) -> Outcome {
    let response = crate::api::logs_handler(
        axum::extract::State(gateway.clone()),
        axum::Extension(caller.clone()),
        None,
        Some(axum::Extension(agent.clone())),
        axum::Json(body),
    )
    .await;
    gather(response, Keep::Tail).await
}

/// Gathers a streamed answer's frames into one outcome.
async fn gather(
    response: Result<axum::response::Response, crate::api::Failure>,
    keep: Keep,
) -> Outcome {
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
                periscope_api::ExecFrame::Stdout { data } if keep == Keep::Tail => {
                    stdout.push_str(&data);
                    // Cut back to the limit only when twice over it, so a
                    // long log costs linear time.
                    if stdout.len() > 2 * AGENT_EXEC_OUTPUT {
                        drop_oldest_lines(&mut stdout, AGENT_EXEC_OUTPUT);
                        truncated = true;
                    }
                }
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
    if keep == Keep::Tail && stdout.len() > AGENT_EXEC_OUTPUT {
        drop_oldest_lines(&mut stdout, AGENT_EXEC_OUTPUT);
        truncated = true;
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

/// Keeps at most `limit` bytes of `text`'s end, starting at a line.
fn drop_oldest_lines(text: &mut String, limit: usize) {
    let mut cut = text.len().saturating_sub(limit);
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    let at_line_start = cut == 0 || text.as_bytes()[cut - 1] == b'\n';
    let start = if at_line_start {
        cut
    } else {
        text[cut..].find('\n').map_or(cut, |at| cut + at + 1)
    };
    text.drain(..start);
}

#[cfg(test)]
mod tests {
    use super::drop_oldest_lines;

    #[test]
    fn a_tail_keeps_whole_newest_lines() {
        let mut text = "one\ntwo\nthree\nfour\n".to_string();
        drop_oldest_lines(&mut text, 12);
        assert_eq!(text, "three\nfour\n");
        let mut text = "one\ntwo\nthree\nfour\n".to_string();
        drop_oldest_lines(&mut text, 10);
        assert_eq!(text, "four\n");
        let mut text = "one\ntwo\n".to_string();
        drop_oldest_lines(&mut text, 4);
        assert_eq!(text, "two\n");
        let mut text = "é".repeat(10);
        drop_oldest_lines(&mut text, 5);
        assert!(text.len() <= 6 && text.chars().all(|c| c == 'é'));
    }
}
