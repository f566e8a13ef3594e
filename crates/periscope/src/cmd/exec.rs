//! `periscope exec CONNECTION -- ARGS...`: runs a command of an `exec`
//! connection through the gateway, its output streamed back masked.

use std::io::Write;
use std::process::ExitCode;

use periscope_api::{ExecFrame, ExecRequest};

use crate::client::{CliError, Client, ConnArgs};

/// Arguments of `periscope exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Connection name (`kind = "exec"`, see `periscope connections`).
    pub connection: String,
    /// The arguments after the connection's base command, passed as they are
    /// (no shell on either side): `periscope exec kube -- logs web-1`.
    #[arg(last = true, required = true, value_name = "ARGS")]
    pub args: Vec<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope exec`: stdout and stderr as the gateway sends them (already
/// masked), the command's exit code as its own. Ctrl-C closes the stream,
/// and the gateway kills the command's process group.
pub async fn exec(api: &Client, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let response = api
        .post_stream(
            api.url(&["v1", "exec"], &[]),
            &ExecRequest {
                connection: args.connection.clone(),
                args: args.args.clone(),
            },
        )
        .await?;
    tokio::select! {
        result = relay(api, response) => result,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the response closes the stream: the gateway kills the
            // command's process group.
            eprintln!("periscope: interrupted; the command was stopped");
            Ok(ExitCode::from(130))
        }
    }
}

/// Writes the frames of a streamed answer (exec or logs) to stdout and
/// stderr; the end frame's exit code is the result.
pub(crate) async fn relay(
    api: &Client,
    mut response: reqwest::Response,
) -> anyhow::Result<ExitCode> {
    let mut pending: Vec<u8> = Vec::new();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    loop {
        let chunk = response.chunk().await.map_err(|e| api.transport(&e))?;
        let Some(chunk) = chunk else {
            return Err(CliError::refused(
                "the stream from the gateway ended before the command did",
            )
            .with_hint("the gateway may have restarted; its audit log has the command's end")
            .into());
        };
        pending.extend_from_slice(&chunk);
        while let Some(newline) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            let frame: ExecFrame = serde_json::from_slice(&line).map_err(|e| {
                CliError::refused(format!("the gateway sent a frame the CLI cannot read: {e}"))
                    .with_hint(
                        "the CLI and the gateway may be different versions: compare \
                         `periscope --version`",
                    )
            })?;
            match frame {
                ExecFrame::Start { .. } => {}
                ExecFrame::Stdout { data } => {
                    let mut out = stdout.lock();
                    out.write_all(data.as_bytes())?;
                    out.flush()?;
                }
                ExecFrame::Stderr { data } => {
                    let mut err = stderr.lock();
                    err.write_all(data.as_bytes())?;
                    err.flush()?;
                }
                ExecFrame::End {
                    exit_code,
                    message,
                    hint,
                    ..
                } => {
                    if let Some(message) = message {
                        eprintln!("periscope: {message}");
                    }
                    if let Some(hint) = hint {
                        eprintln!("hint: {hint}");
                    }
                    let code = u8::try_from(exit_code.clamp(0, 255)).unwrap_or(1);
                    return Ok(ExitCode::from(code));
                }
            }
        }
    }
}
