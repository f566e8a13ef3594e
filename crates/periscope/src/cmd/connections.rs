//! `periscope connections` and `periscope connect`: what the caller may reach, and a
//! short-lived secret to reach it with their own tools.

use std::process::ExitCode;

use periscope_api::{ConnectRequest, ConnectResponse, ConnectionSummary};

use super::output::{expiry, now, render, shell_quote, table};
use crate::client::{Client, ConnArgs, print, print_json};

/// `periscope connections`.
pub async fn connections(api: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let answer = api
        .get::<Vec<ConnectionSummary>>(api.url(&["v1", "connections"], &[]))
        .await?;
    if json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = table(["NAME", "KIND", "LABELS", "ACCESS"]);
    for c in &answer.value {
        let labels = c
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        t.add_row(vec![
            c.name.clone(),
            c.kind.clone(),
            if labels.is_empty() {
                "-".into()
            } else {
                labels
            },
            if c.may_connect {
                "may connect".into()
            } else {
                "no".into()
            },
        ]);
    }
    print(&render(&t, "No connections are visible to you."))?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `periscope connect`.
#[derive(Debug, clap::Args)]
pub struct ConnectArgs {
    /// Connection name, e.g. pg-prod (see `periscope connections`).
    pub connection: String,
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope connect CONNECTION`: prints the secret once, with ready-to-paste
/// commands (the secret is the only way in; upstream credentials are never shown).
pub async fn connect(api: &Client, args: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<_, ConnectResponse>(
            api.url(&["v1", "connect"], &[]),
            Some(&ConnectRequest {
                connection: args.connection.clone(),
            }),
        )
        .await?;
    if args.conn.json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = &answer.value;
    print(&format!(
        "Session secret for {user} on {conn}, {exp}.\n\
         Sessions opened before it expires stay open; run `periscope connect {conn}` again for a new one.\n\
         \n\
         psql:\n  PGPASSWORD={secret} {psql}\n\
         \n\
         URI (drivers, GUIs; give the secret as the password):\n  {uri}\n\
         \n\
         secret:   {raw_secret}\n\
         host:     {host}\n\
         port:     {port}\n\
         database: {conn}\n\
         user:     {user}",
        user = c.user,
        conn = c.connection,
        exp = expiry(c.expires_at, now()),
        secret = shell_quote(&c.secret),
        raw_secret = c.secret,
        psql = c.psql_command,
        uri = c.uri,
        host = c.host,
        port = c.port,
    ))?;
    Ok(ExitCode::SUCCESS)
}
