//! `periscope policy explain`: why an identity sees what it sees on a connection.

use std::process::ExitCode;

use periscope_api::ExplainResponse;

use crate::client::{Client, ConnArgs, print, print_json};

/// Arguments of `periscope policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// Subcommands of `periscope policy`.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// What IDENTITY may do on CONNECTION now: roles, shields in force, grants
    /// lifting them, and what could be requested.
    Explain {
        /// Identity name, e.g. alice.
        identity: String,
        /// Connection name, e.g. pg-prod.
        connection: String,
    },
}

/// Runs `periscope policy ...`.
pub async fn run(api: &Client, args: &PolicyArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PolicyCommand::Explain {
            identity,
            connection,
        } => {
            let answer = api
                .get::<ExplainResponse>(api.url(
                    &["v1", "policy", "explain"],
                    &[
                        ("identity", Some(identity.clone())),
                        ("connection", Some(connection.clone())),
                    ],
                ))
                .await?;
            if args.conn.json {
                print_json(&answer.raw)?;
            } else {
                print(&answer.value.text)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
