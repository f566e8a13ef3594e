//! `periscope login --sso`: sign in with the company's identity provider and
//! save the short-lived gateway token it yields, as `periscope login` saves
//! a pasted one.
//!
//! - **Browser** (default): the CLI listens on `127.0.0.1` on a port of its
//!   own, asks the gateway to begin a sign-in whose result comes back there,
//!   and opens the provider's page. The provider sends the browser to the
//!   gateway (the one redirect URL registered with the provider), which
//!   sends it on to the CLI with a one-time code; the CLI trades that code,
//!   with a PKCE verifier only it knows, for the token. A code seen by
//!   anyone else (browser history, another local process) is useless.
//! - **Device** (`--device`, for a machine without a browser): the CLI
//!   prints a code to type at the provider on any other device, and the
//!   gateway polls the provider until it is approved.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Html;
use periscope_api::{
    SsoCliStart, SsoCliStarted, SsoCliToken, SsoDevicePoll, SsoDevicePolled, SsoDeviceStart,
    SsoDeviceStarted, SsoToken,
};
use reqwest::Url;
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};

use super::output::{list, url as show_url};
use secrecy::SecretString;

use crate::client::{self, CliError, Client, Profile, Target, print, print_json};

/// Longest wait for the browser to come back.
const BROWSER_WAIT: Duration = Duration::from_secs(10 * 60);
/// The path the CLI listens on.
const CALLBACK: &str = "/callback";

/// What `periscope login --sso` needs from the flags.
#[derive(Debug)]
pub struct SsoLogin {
    /// The gateway.
    pub url: Url,
    /// Its CA, when not a public one.
    pub ca_file: Option<std::path::PathBuf>,
    /// The provider; the gateway's default when `None`.
    pub provider: Option<String>,
    /// Use the device grant.
    pub device: bool,
    /// Print the sign-in URL instead of opening a browser.
    pub no_browser: bool,
    /// Print JSON.
    pub json: bool,
}

/// Runs the sign-in and saves the profile.
pub async fn run(login: SsoLogin) -> anyhow::Result<ExitCode> {
    let api = Client::new(&Target {
        url: login.url.clone(),
        token: SecretString::from(""),
        ca_file: login.ca_file.clone(),
    })?;
    let token = if login.device {
        device(&api, &login).await?
    } else {
        browser(&api, &login).await?
    };
    let path = client::save_profile(&Profile {
        url: login.url.to_string(),
        token: SecretString::from(token.token.clone()),
        ca_file: login.ca_file.clone(),
    })?;
    if login.json {
        let mut value = serde_json::to_value(&token)?;
        if let Some(object) = value.as_object_mut() {
            // Saved in the profile; not echoed where logs may keep it.
            object.remove("token");
            object.insert(
                "profile".into(),
                serde_json::Value::String(path.display().to_string()),
            );
        }
        print_json(&value)?;
    } else {
        let expires = token
            .expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        print(&format!(
            "Logged in to {} as {} (role{} {}) with single sign-on.\n\
             Token {} expires at {expires}: run `periscope login --sso` again then.\n\
             Profile saved to {} (readable by you only).",
            show_url(&login.url),
            token.identity,
            if token.roles.len() == 1 { "" } else { "s" },
            list(&token.roles),
            token.token_id,
            path.display()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh PKCE verifier: 256 random bits, hex (64 unreserved characters).
fn new_verifier() -> Result<String, CliError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::usage(format!("the system's random source failed: {e}")))?;
    Ok(hex::encode(bytes))
}

#[derive(Debug, Deserialize)]
struct Returned {
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

type Sender = mpsc::Sender<Result<String, String>>;

async fn returned(State(tx): State<Sender>, Query(q): Query<Returned>) -> Html<String> {
    let (result, page) = match (q.code, q.error) {
        (Some(code), _) => (
            Ok(code),
            "<h1>Signed in</h1><p>You can close this tab and go back to the terminal.</p>"
                .to_string(),
        ),
        (None, error) => {
            let why = q
                .error_description
                .or(error)
                .unwrap_or_else(|| "the gateway sent neither a code nor an error".into());
            let escaped = why
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            (
                Err(why),
                format!("<h1>Sign-in refused</h1><p>{escaped}</p>"),
            )
        }
    };
    let _ = tx.send(result).await;
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Periscope sign-in</title></head><body>{page}</body></html>"
    ))
}

async fn browser(api: &Client, login: &SsoLogin) -> Result<SsoToken, CliError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| CliError::usage(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::usage(format!("cannot listen on 127.0.0.1: {e}")))?
        .port();
    let verifier = new_verifier()?;
    let started = api
        .post::<_, SsoCliStarted>(
            api.url(&["v1", "sso", "cli", "start"], &[]),
            Some(&SsoCliStart {
                provider: login.provider.clone(),
                redirect_uri: format!("http://127.0.0.1:{port}{CALLBACK}"),
                code_challenge: periscope_gateway::sso::challenge_of(&verifier),
            }),
        )
        .await?
        .value;
    let (tx, mut rx) = mpsc::channel::<Result<String, String>>(1);
    let app = axum::Router::new()
        .route(CALLBACK, axum::routing::get(returned))
        .with_state(tx);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    eprintln!(
        "Sign in with {} in your browser.{}\n  {}",
        started.provider,
        if login.no_browser {
            " Open this address:"
        } else {
            " If it does not open, visit:"
        },
        started.authorize_url
    );
    if !login.no_browser {
        open_browser(&started.authorize_url);
    }
    let result = tokio::time::timeout(BROWSER_WAIT, rx.recv()).await;
    // The page was answered before the result was sent; the server may go.
    let _ = stop.send(());
    let _ = server.await;
    let code = match result {
        Err(_) => {
            return Err(CliError::refused(format!(
                "the browser did not come back within {} minutes",
                BROWSER_WAIT.as_secs() / 60
            ))
            .with_hint("run `periscope login --sso` again, or use --device without a browser"));
        }
        Ok(None) => return Err(CliError::refused("the sign-in listener stopped")),
        Ok(Some(Err(why))) => {
            return Err(CliError::refused(why).with_hint(
                "the gateway's audit log records why (`auth.sso.refused`); ask an administrator",
            ));
        }
        Ok(Some(Ok(code))) => code,
    };
    Ok(api
        .post::<_, SsoToken>(
            api.url(&["v1", "sso", "cli", "token"], &[]),
            Some(&SsoCliToken {
                code,
                code_verifier: verifier,
            }),
        )
        .await?
        .value)
}

/// Opens `url` in the person's browser (`$BROWSER`, else the platform's
/// opener), without waiting; a failure only means they copy the URL.
fn open_browser(url: &str) {
    let command = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| {
            if cfg!(target_os = "macos") {
                "open".into()
            } else {
                "xdg-open".into()
            }
        });
    let spawned = std::process::Command::new(&command)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("(could not start `{command}`: {e}; open the address yourself)");
    }
}

async fn device(api: &Client, login: &SsoLogin) -> Result<SsoToken, CliError> {
    let started = api
        .post::<_, SsoDeviceStarted>(
            api.url(&["v1", "sso", "device", "start"], &[]),
            Some(&SsoDeviceStart {
                provider: login.provider.clone(),
            }),
        )
        .await?
        .value;
    let complete = started
        .verification_uri_complete
        .as_deref()
        .map(|u| format!("\n  or open directly: {u}"))
        .unwrap_or_default();
    eprintln!(
        "To sign in with {}, open {} on any device and enter the code:\n\n    {}\n{complete}\n\
         Waiting for the approval...",
        started.provider, started.verification_uri, started.user_code
    );
    let deadline = started.expires_at;
    loop {
        let asked = Instant::now();
        let polled = api
            .post::<_, SsoDevicePolled>(
                api.url(&["v1", "sso", "device", "poll"], &[]),
                Some(&SsoDevicePoll {
                    device_code: started.device_code.clone(),
                }),
            )
            .await?
            .value;
        if let Some(token) = polled.token {
            return Ok(token);
        }
        if time::OffsetDateTime::now_utc() >= deadline {
            return Err(
                CliError::refused("the device code expired before it was approved")
                    .with_hint("run `periscope login --sso --device` again"),
            );
        }
        // The gateway waits on the provider; only pace a quick answer.
        let interval = Duration::from_secs(started.interval.max(1));
        if let Some(rest) = interval.checked_sub(asked.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}
