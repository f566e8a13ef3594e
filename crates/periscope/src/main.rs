//! `periscope`: the one binary. Server subcommands (`up`, `demo`) and client
//! subcommands (`request`, `approve`, `audit`, ...) live side by side so that an
//! operator and an engineer install the same thing.

mod client;
mod cmd;

use clap::{Parser, Subcommand};

/// Periscope: debug production through a gateway that shields sensitive data by default.
#[derive(Debug, Parser)]
#[command(name = "periscope", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (HTTPS API, expiry, audit) in the foreground.
    Up(cmd::up::UpArgs),
    /// Try Periscope in five minutes: a gateway in front of a fake shop
    /// database, two users, and a guided tour (Ctrl-C removes it all).
    Demo(cmd::demo::DemoArgs),
    /// Mask secrets and personal data in text or JSON lines (files or stdin).
    Redact(cmd::redact::RedactArgs),
    #[command(flatten)]
    Client(cmd::client::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => cmd::up::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Redact(args) => cmd::redact::run(args),
        Command::Client(command) => cmd::client::run(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => client::report(&err),
    }
}
