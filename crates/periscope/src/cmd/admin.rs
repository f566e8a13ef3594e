//! `periscope admin`: identities, their tokens, configuration reloads and live
//! sessions. Everything here needs an admin role; the gateway audits each call.

use std::process::ExitCode;

use periscope_api::{
    CreateIdentity, CreateToken, CreatedToken, DecisionBody, Identity, ReloadResponse,
    SessionSummary, TokenSummary, UpdateIdentity,
};

use super::output::{ago, expiry, list, now, relative, render, shell_quote, table, url, utc};
use crate::client::{Client, ConnArgs, print, print_json};

/// Arguments of `periscope admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// What to manage.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// Subcommands of `periscope admin`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Identities (users and service accounts).
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens of identities.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Re-read the gateway's configuration file (refused, with the reason, if invalid).
    Reload,
    /// Live proxy sessions and the grants they depend on; `sessions end ID` ends one.
    Sessions {
        /// What to do (list by default).
        #[command(subcommand)]
        command: Option<SessionsCommand>,
    },
}

/// Subcommands of `periscope admin sessions`.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// List the live sessions (the default).
    List,
    /// End one live session now: its client is told who ended it and why.
    End {
        /// Session id (`ses_...`, from `admin sessions`).
        id: String,
        /// Why (recorded in the audit log and shown to the session's client).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

/// Subcommands of `periscope admin user`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an identity.
    Add {
        /// Name: lowercase letters, digits, `.`, `_`, `-`.
        name: String,
        /// Role from the configuration (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true, num_args = 1..)]
        roles: Vec<String>,
    },
    /// List identities.
    List,
    /// Disable an identity: its tokens stop working at once.
    Disable {
        /// Identity name.
        name: String,
    },
    /// Re-enable a disabled identity.
    Enable {
        /// Identity name.
        name: String,
    },
    /// Replace an identity's roles.
    SetRoles {
        /// Identity name.
        name: String,
        /// Role from the configuration (repeat for several).
        #[arg(long = "role", value_name = "ROLE", required = true, num_args = 1..)]
        roles: Vec<String>,
    },
}

/// Subcommands of `periscope admin token`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token for an identity; it is printed once and never again.
    Create {
        /// Identity name.
        name: String,
        /// What the token is for (shown in `admin token list`).
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Lifetime, e.g. 90d; without it the token does not expire.
        #[arg(long, value_name = "DURATION", value_parser = parse_lifetime)]
        expires_in: Option<String>,
    },
    /// List an identity's tokens (never their secrets).
    List {
        /// Identity name.
        name: String,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// Token id (from `admin token list`).
        id: String,
    },
}

fn parse_lifetime(text: &str) -> Result<String, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("the lifetime must be longer than zero".into()),
        Ok(_) => Ok(text.to_owned()),
        Err(e) => Err(format!("{e} (examples: 90d, 12h)")),
    }
}

/// Runs `periscope admin ...`.
pub async fn run(api: &Client, args: &AdminArgs) -> anyhow::Result<ExitCode> {
    let json = args.conn.json;
    match &args.command {
        AdminCommand::User(cmd) => user(api, cmd, json).await,
        AdminCommand::Token(cmd) => token(api, cmd, json).await,
        AdminCommand::Reload => {
            let answer = api
                .post::<(), ReloadResponse>(api.url(&["v1", "admin", "reload"], &[]), None)
                .await?;
            if json {
                print_json(&answer.raw)?;
            } else {
                print(&answer.value.message)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Sessions {
            command: None | Some(SessionsCommand::List),
        } => sessions(api, json).await,
        AdminCommand::Sessions {
            command: Some(SessionsCommand::End { id, reason }),
        } => end_session(api, id, reason.clone(), json).await,
    }
}

async fn user(api: &Client, cmd: &UserCommand, json: bool) -> anyhow::Result<ExitCode> {
    let (answer, sentence) = match cmd {
        UserCommand::Add { name, roles } => {
            let answer = api
                .post::<_, Identity>(
                    api.url(&["v1", "admin", "users"], &[]),
                    Some(&CreateIdentity {
                        name: name.clone(),
                        roles: roles.clone(),
                    }),
                )
                .await?;
            let sentence = format!(
                "Created identity {} with roles {}.\nGive them a token: periscope admin token create {}",
                answer.value.name,
                list(&answer.value.roles),
                shell_quote(&answer.value.name)
            );
            (answer, sentence)
        }
        UserCommand::List => {
            let answer = api
                .get::<Vec<Identity>>(api.url(&["v1", "admin", "users"], &[]))
                .await?;
            if json {
                print_json(&answer.raw)?;
                return Ok(ExitCode::SUCCESS);
            }
            let now = now();
            let mut t = table(["NAME", "ROLES", "STATUS", "CREATED"]);
            for i in &answer.value {
                t.add_row(vec![
                    i.name.clone(),
                    list(&i.roles),
                    if i.disabled { "disabled" } else { "active" }.to_owned(),
                    ago(i.created_at, now),
                ]);
            }
            print(&render(&t, "No identities."))?;
            return Ok(ExitCode::SUCCESS);
        }
        UserCommand::Disable { name } | UserCommand::Enable { name } => {
            let disabled = matches!(cmd, UserCommand::Disable { .. });
            let answer = api
                .patch::<_, Identity>(
                    api.url(&["v1", "admin", "users", name], &[]),
                    &UpdateIdentity {
                        roles: None,
                        disabled: Some(disabled),
                    },
                )
                .await?;
            let sentence = if disabled {
                format!(
                    "Disabled {}: its tokens no longer authenticate.",
                    answer.value.name
                )
            } else {
                format!("Enabled {} again.", answer.value.name)
            };
            (answer, sentence)
        }
        UserCommand::SetRoles { name, roles } => {
            let answer = api
                .patch::<_, Identity>(
                    api.url(&["v1", "admin", "users", name], &[]),
                    &UpdateIdentity {
                        roles: Some(roles.clone()),
                        disabled: None,
                    },
                )
                .await?;
            let sentence = format!(
                "{} now has roles {}.",
                answer.value.name,
                list(&answer.value.roles)
            );
            (answer, sentence)
        }
    };
    if json {
        print_json(&answer.raw)?;
    } else {
        print(&sentence)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn token(api: &Client, cmd: &TokenCommand, json: bool) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            name,
            description,
            expires_in,
        } => {
            let answer = api
                .post::<_, CreatedToken>(
                    api.url(&["v1", "admin", "users", name, "tokens"], &[]),
                    Some(&CreateToken {
                        description: description.clone(),
                        expires_in: expires_in.clone(),
                    }),
                )
                .await?;
            if json {
                print_json(&answer.raw)?;
                return Ok(ExitCode::SUCCESS);
            }
            let c = &answer.value;
            let lifetime = match c.summary.expires_at {
                Some(at) => expiry(at, now()),
                None => "does not expire".to_owned(),
            };
            print(&format!(
                "Token {} for {}, {lifetime}:\n\n  {}\n\n\
                 It will not be shown again: hand it over now, through a channel you trust.\n\
                 They run: periscope login --url {} --token TOKEN --ca-file CA.pem",
                c.summary.id,
                c.summary.identity,
                c.token,
                url(api.base())
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { name } => {
            let answer = api
                .get::<Vec<TokenSummary>>(api.url(&["v1", "admin", "users", name, "tokens"], &[]))
                .await?;
            if json {
                print_json(&answer.raw)?;
                return Ok(ExitCode::SUCCESS);
            }
            let now = now();
            let mut t = table([
                "ID",
                "DESCRIPTION",
                "STATUS",
                "CREATED",
                "EXPIRES",
                "LAST USED",
            ]);
            for tok in &answer.value {
                let status = match (tok.revoked_at, tok.expires_at) {
                    (Some(at), _) => format!("revoked {}", ago(at, now)),
                    (None, Some(at)) if at <= now => "expired".to_owned(),
                    _ => "active".to_owned(),
                };
                t.add_row(vec![
                    tok.id.clone(),
                    tok.description.clone().unwrap_or_else(|| "-".into()),
                    status,
                    ago(tok.created_at, now),
                    tok.expires_at.map_or("never".to_owned(), |at| {
                        format!("{} ({})", relative(at, now), utc(at))
                    }),
                    tok.last_used_at
                        .map_or("never".to_owned(), |at| ago(at, now)),
                ]);
            }
            print(&render(&t, &format!("{name} has no tokens.")))?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id } => {
            let answer = api
                .delete::<TokenSummary>(api.url(&["v1", "admin", "tokens", id], &[]))
                .await?;
            if json {
                print_json(&answer.raw)?;
            } else {
                print(&format!(
                    "Revoked token {} of {}: it no longer authenticates.",
                    answer.value.id, answer.value.identity
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn sessions(api: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let answer = api
        .get::<Vec<SessionSummary>>(api.url(&["v1", "sessions"], &[]))
        .await?;
    if json {
        print_json(&answer.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let now = now();
    let mut t = table([
        "ID",
        "IDENTITY",
        "CONNECTION",
        "CLIENT",
        "APPLICATION",
        "GRANTS",
        "STARTED",
    ]);
    for s in &answer.value {
        t.add_row(vec![
            s.id.clone(),
            s.identity.clone(),
            s.connection.clone(),
            s.client_addr.clone(),
            s.application_name.clone().unwrap_or_else(|| "-".into()),
            list(&s.grants),
            ago(s.started_at, now),
        ]);
    }
    print(&render(&t, "No live sessions."))?;
    Ok(ExitCode::SUCCESS)
}

async fn end_session(
    api: &Client,
    id: &str,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let answer = api
        .post::<_, SessionSummary>(
            api.url(&["v1", "admin", "sessions", id, "end"], &[]),
            Some(&DecisionBody { reason }),
        )
        .await?;
    if json {
        print_json(&answer.raw)?;
    } else {
        let s = &answer.value;
        print(&format!(
            "Ended session {} of {} on {}: its client was told why.",
            s.id, s.identity, s.connection
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
