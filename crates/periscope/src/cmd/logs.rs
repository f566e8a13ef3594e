//! `periscope logs CONNECTION [SOURCE]`: reads or follows a log source of a
//! `logs` connection through the gateway, its lines streamed back masked.

use std::process::ExitCode;

use periscope_api::LogsRequest;

use crate::client::{Client, ConnArgs};

/// Arguments of `periscope logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Connection name (`kind = "logs"`, see `periscope connections`).
    pub connection: String,
    /// The log source; may be left out when the connection has only one.
    pub source: Option<String>,
    /// Keep following the source (new lines, across rotation) until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines from this long ago, by their leading timestamp (`1h`, `30m`).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only lines matching this regular expression. The gateway applies it
    /// to the masked text, so it cannot find a value that is masked.
    #[arg(long, value_name = "RE")]
    pub grep: Option<String>,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope logs`: the lines as the gateway sends them (already masked
/// and filtered) on stdout, the source's own errors on stderr. Ctrl-C
/// closes the stream, and the gateway stops reading.
pub async fn logs(api: &Client, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let response = api
        .post_stream(
            api.url(&["v1", "logs"], &[]),
            &LogsRequest {
                connection: args.connection.clone(),
                source: args.source.clone(),
                follow: args.follow,
                since: args.since.clone(),
                grep: args.grep.clone(),
            },
        )
        .await?;
    tokio::select! {
        result = super::exec::relay(api, response) => result,
        _ = tokio::signal::ctrl_c() => Ok(ExitCode::from(130)),
    }
}
