//! `periscope login`, `logout` and `whoami`: who the CLI speaks to the gateway as.

use std::process::ExitCode;

use periscope_api::WhoAmI;

use super::output::{expiry, list, now};
use crate::client::{
    self, CliError, Client, ConnArgs, Profile, Target, parse_url, print, print_json,
};

/// Arguments of `periscope login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// `--url` and `--token` are required here (flags or environment), or
    /// `--url` and `--sso`.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Sign in with the gateway's single sign-on provider (a browser opens)
    /// instead of pasting a token; saves a token valid for hours
    #[arg(long)]
    pub sso: bool,
    /// With --sso: no browser here, show a code to enter on another device
    #[arg(long, requires = "sso")]
    pub device: bool,
    /// With --sso: which provider, when the gateway has several
    #[arg(long, requires = "sso", value_name = "NAME")]
    pub provider: Option<String>,
    /// With --sso: print the sign-in address instead of opening a browser
    #[arg(long, requires = "sso")]
    pub no_browser: bool,
}

/// Arguments of commands that take nothing but the connection flags.
#[derive(Debug, clap::Args)]
pub struct ConnOnly {
    /// Gateway, token, output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope login`: checks the URL, token and CA against `/v1/whoami` before
/// saving them, so a typo is caught now rather than at the next command.
pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    if args.sso {
        return sso_login(&args).await;
    }
    let (Some(url), Some(token)) = (&conn.url, &conn.token) else {
        return Err(CliError::usage("`periscope login` needs --url and --token")
            .with_hint(
                "copy the `periscope login ...` line that `periscope up` printed, or ask an \
                 admin for a token (`periscope admin token create NAME`)",
            )
            .into());
    };
    let url = parse_url(url)?;
    let ca_file = match &conn.ca_file {
        Some(path) => Some(
            std::path::absolute(path)
                .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", path.display())))?,
        ),
        None => None,
    };
    // Not `client::resolve`: login must work even when the saved profile is broken.
    let target = Target {
        url: url.clone(),
        token: client::read_token(token)?,
        ca_file: ca_file.clone(),
    };
    let api = Client::new(&target)?;
    let me = api.get::<WhoAmI>(api.url(&["v1", "whoami"], &[])).await?;
    let path = client::save_profile(&Profile {
        url: url.to_string(),
        token: target.token.clone(),
        ca_file,
    })?;
    if conn.json {
        print_json(&me.raw)?;
    } else {
        print(&format!(
            "Logged in to {} as {} ({}).\nProfile saved to {} (readable by you only).",
            super::output::url(&url),
            me.value.identity,
            roles_phrase(&me.value),
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `periscope login --sso`: the gateway from `--url` or the saved profile.
async fn sso_login(args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let conn = &args.conn;
    // A broken profile must not keep anyone from signing in again.
    let profile = client::load_profile().ok().flatten().map(|(_, p)| p);
    let url = match (&conn.url, &profile) {
        (Some(url), _) => parse_url(url)?,
        (None, Some(p)) => parse_url(&p.url)?,
        (None, None) => {
            return Err(CliError::usage("`periscope login --sso` needs --url")
                .with_hint("the gateway's address, e.g. --url https://periscope.example.com:8443")
                .into());
        }
    };
    let saved_ca = profile
        .filter(|p| parse_url(&p.url).ok().as_ref() == Some(&url))
        .and_then(|p| p.ca_file);
    let ca_file = match &conn.ca_file {
        Some(path) => Some(
            std::path::absolute(path)
                .map_err(|e| CliError::usage(format!("cannot resolve {}: {e}", path.display())))?,
        ),
        None => saved_ca,
    };
    super::sso_login::run(super::sso_login::SsoLogin {
        url,
        ca_file,
        provider: args.provider.clone(),
        device: args.device,
        no_browser: args.no_browser,
        json: conn.json,
    })
    .await
}

/// Arguments of `periscope logout`.
#[derive(Debug, clap::Args)]
pub struct LogoutArgs {
    /// Output format.
    #[command(flatten)]
    pub conn: ConnArgs,
}

/// `periscope logout`: forgets the saved profile (the token stays valid on the
/// gateway until an admin revokes it).
pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let (path, existed) = client::remove_profile()?;
    if args.conn.json {
        print_json(&serde_json::json!({
            "profile": path.display().to_string(),
            "removed": existed,
        }))?;
    } else if existed {
        print(&format!(
            "Logged out: removed {}.\nThe token itself stays valid until an admin revokes it.",
            path.display()
        ))?;
    } else {
        print(&format!("Not logged in: there is no {}.", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `periscope whoami`.
pub async fn whoami(api: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let me = api.get::<WhoAmI>(api.url(&["v1", "whoami"], &[])).await?;
    if json {
        print_json(&me.raw)?;
        return Ok(ExitCode::SUCCESS);
    }
    let w = &me.value;
    let token = match w.token_expires_at {
        Some(at) => format!("token {}, {}", w.token_id, expiry(at, now())),
        None => format!("token {}, no expiry", w.token_id),
    };
    print(&format!(
        "{} ({}) at {}\n{token}",
        w.identity,
        roles_phrase(w),
        super::output::url(api.base())
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn roles_phrase(w: &WhoAmI) -> String {
    let roles = format!(
        "role{} {}",
        if w.roles.len() == 1 { "" } else { "s" },
        list(&w.roles)
    );
    if w.admin {
        format!("{roles}, administrator")
    } else {
        roles
    }
}
