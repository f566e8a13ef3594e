//! The client subcommands, flattened into the top-level `periscope` command so that
//! `main.rs` needs one variant for all of them. Each resolves its connection
//! settings, runs on a small tokio runtime, and reports failures with the exit
//! codes documented in `docs/cli.md`.

use std::process::ExitCode;

use super::{
    account, admin, audit, connections, discover, exec, grants, logs, policy, recordings, shell,
};
use crate::client::{self, CliError, Client, ConnArgs};

/// Commands that talk to a gateway (or, for `audit verify --file`, to nothing).
#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Check a gateway URL and token, then save them (and the CA file) for later commands.
    Login(account::LoginArgs),
    /// Forget the saved URL and token.
    Logout(account::LogoutArgs),
    /// Show who the current token belongs to.
    Whoami(account::ConnOnly),
    /// List the connections you can see and whether you may open sessions on them.
    Connections(account::ConnOnly),
    /// Get a short-lived secret and the psql command for a connection.
    Connect(connections::ConnectArgs),
    /// Run a command of an exec connection; its output comes back masked.
    Exec(exec::ExecArgs),
    /// Read or follow a log source of a logs connection; lines come back masked.
    Logs(logs::LogsArgs),
    /// Open the interactive shell of a shell connection (needs a grant
    /// lifting `shell`); its output comes back masked.
    Shell(shell::ShellArgs),
    /// List the recordings of exec sessions, and play one back.
    Recordings(recordings::RecordingsArgs),
    /// Ask for a grant lifting shields on a connection for a while.
    Request(grants::RequestArgs),
    /// List requests (pending by default).
    Requests(grants::RequestsArgs),
    /// Approve someone else's request.
    Approve(grants::ApproveArgs),
    /// Deny a request, saying why.
    Deny(grants::DenyArgs),
    /// Cancel your own pending request.
    Cancel(grants::CancelArgs),
    /// List grants (active by default) and their time left.
    Grants(grants::GrantsArgs),
    /// End a grant early: its shields come back at once.
    Revoke(grants::RevokeArgs),
    /// Explain what an identity may do on a connection.
    Policy(policy::PolicyArgs),
    /// Find the sensitive columns of a connection by sampling them; propose
    /// (and with --apply, store) tags (admin roles).
    Discover(discover::DiscoverArgs),
    /// Manage identities, tokens, configuration and sessions (admin roles).
    Admin(admin::AdminArgs),
    /// Read, export and verify the tamper-evident audit log.
    Audit(audit::AuditArgs),
}

impl ClientCommand {
    fn conn(&self) -> &ConnArgs {
        match self {
            ClientCommand::Login(a) => &a.conn,
            ClientCommand::Logout(a) => &a.conn,
            ClientCommand::Whoami(a) | ClientCommand::Connections(a) => &a.conn,
            ClientCommand::Connect(a) => &a.conn,
            ClientCommand::Exec(a) => &a.conn,
            ClientCommand::Logs(a) => &a.conn,
            ClientCommand::Shell(a) => &a.conn,
            ClientCommand::Recordings(a) => &a.conn,
            ClientCommand::Request(a) => &a.conn,
            ClientCommand::Requests(a) => &a.conn,
            ClientCommand::Approve(a) => &a.conn,
            ClientCommand::Deny(a) => &a.conn,
            ClientCommand::Cancel(a) => &a.conn,
            ClientCommand::Grants(a) => &a.conn,
            ClientCommand::Revoke(a) => &a.conn,
            ClientCommand::Policy(a) => &a.conn,
            ClientCommand::Discover(a) => &a.conn,
            ClientCommand::Admin(a) => &a.conn,
            ClientCommand::Audit(a) => &a.conn,
        }
    }
}

/// Runs a client subcommand.
pub fn run(command: ClientCommand) -> anyhow::Result<ExitCode> {
    let json = command.conn().json;
    let result = dispatch(command);
    match result {
        Err(err) if is_broken_pipe(&err) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            if json && let Some(body) = err.downcast_ref::<CliError>().and_then(|e| e.body.as_ref())
            {
                // Best effort: the error itself is reported on stderr either way.
                let _ = client::print_json(body);
            }
            Err(err)
        }
        ok => ok,
    }
}

fn dispatch(command: ClientCommand) -> anyhow::Result<ExitCode> {
    match command {
        ClientCommand::Logout(args) => account::logout(args),
        ClientCommand::Audit(args) if !audit::needs_gateway(&args) => audit::run_offline(&args),
        ClientCommand::Login(args) => client::runtime()?.block_on(account::login(args)),
        command => {
            let conn = command.conn();
            let target = client::resolve(conn)?;
            let api = Client::new(&target)?;
            let json = conn.json;
            client::runtime()?.block_on(async move {
                match &command {
                    ClientCommand::Whoami(_) => account::whoami(&api, json).await,
                    ClientCommand::Connections(_) => connections::connections(&api, json).await,
                    ClientCommand::Connect(a) => connections::connect(&api, a).await,
                    ClientCommand::Exec(a) => exec::exec(&api, a).await,
                    ClientCommand::Logs(a) => logs::logs(&api, a).await,
                    ClientCommand::Shell(a) => shell::shell(&api, a).await,
                    ClientCommand::Recordings(a) => recordings::run(&api, a).await,
                    ClientCommand::Request(a) => grants::request(&api, a).await,
                    ClientCommand::Requests(a) => grants::requests(&api, a).await,
                    ClientCommand::Approve(a) => grants::approve(&api, a).await,
                    ClientCommand::Deny(a) => grants::deny(&api, a).await,
                    ClientCommand::Cancel(a) => grants::cancel(&api, a).await,
                    ClientCommand::Grants(a) => grants::grants(&api, a).await,
                    ClientCommand::Revoke(a) => grants::revoke(&api, a).await,
                    ClientCommand::Policy(a) => policy::run(&api, a).await,
                    ClientCommand::Discover(a) => discover::run(&api, a).await,
                    ClientCommand::Admin(a) => admin::run(&api, a).await,
                    ClientCommand::Audit(a) => audit::run(&api, a).await,
                    ClientCommand::Login(_) | ClientCommand::Logout(_) => {
                        Err(CliError::usage("internal: login/logout dispatched twice").into())
                    }
                }
            })
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
