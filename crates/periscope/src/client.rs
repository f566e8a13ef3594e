//! The HTTP API client behind every client subcommand: where the gateway is, which
//! token to present, which CA to trust, and how the gateway's answers and failures
//! reach the user.
//!
//! Settings come, per field, from the flags (`--url`, `--token`, `--ca-file`), then
//! the environment (`PERISCOPE_URL`, `PERISCOPE_TOKEN`, `PERISCOPE_CA_FILE`; clap
//! merges these two), then the profile written by `periscope login`. The profile's
//! token and CA are only used for the profile's own URL, so pointing `--url` at
//! another gateway never sends it the saved token.
//!
//! Failures carry one of three exit codes (see [`ErrorKind`]) so scripts can tell a
//! refusal from a mistake in their own setup from a gateway that is down.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Once;
use std::time::Duration;

use periscope_api::ErrorBody;
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Exit code when the gateway refused or rejected the call, or a check failed.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for a usage or local configuration problem (clap uses 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the gateway could not be reached (network, TLS, timeout).
pub const EXIT_UNREACHABLE: u8 = 3;

/// Which of the documented exit codes a failure maps to; scripts branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The gateway answered with an error, or a verification failed (exit 1).
    Refused,
    /// Bad flags, missing configuration, unreadable local files (exit 2).
    Usage,
    /// The gateway could not be reached or its certificate was not trusted (exit 3).
    Unreachable,
}

/// A failure the user should read: one sentence, optionally what to do about it.
#[derive(Debug)]
pub struct CliError {
    /// Which exit code it maps to.
    pub kind: ErrorKind,
    /// What happened.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The gateway's error body as sent, printed on stdout under `--json` so
    /// scripts can match on its stable `code`.
    pub body: Option<serde_json::Value>,
}

impl CliError {
    /// A failure of the given kind, without a hint.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        CliError {
            kind,
            message: message.into(),
            hint: None,
            body: None,
        }
    }

    /// A usage or local configuration problem.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, message)
    }

    /// A refusal or failed check.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }

    /// Adds what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self.kind {
            ErrorKind::Refused => EXIT_REFUSED,
            ErrorKind::Usage => EXIT_USAGE,
            ErrorKind::Unreachable => EXIT_UNREACHABLE,
        })
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Writes a token into the profile file (mode 0600): the one place a token
/// is serialised.
fn expose_token<S: serde::Serializer>(token: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(token.expose_secret())
}

/// Where the gateway is and how to authenticate: the flags every client
/// subcommand accepts (global, so they may follow the subcommand's own words).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnArgs {
    /// Gateway API URL, e.g. https://127.0.0.1:8443 [default: from `periscope login`]
    #[arg(long, global = true, env = "PERISCOPE_URL", value_name = "URL")]
    pub url: Option<String>,
    /// API token; `-` reads it from stdin [default: from `periscope login`]
    #[arg(
        long,
        global = true,
        env = "PERISCOPE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<SecretString>,
    /// PEM file of the CA that signed the gateway's certificate (the gateway's
    /// data dir holds tls/ca.pem) [default: from `periscope login`, else the system roots]
    #[arg(long, global = true, env = "PERISCOPE_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Print the API's JSON instead of text (errors still go to stderr; the
    /// gateway's error body is also printed on stdout)
    #[arg(long, global = true)]
    pub json: bool,
}

/// What `periscope login` saves: enough to call the gateway without flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    /// Gateway API URL.
    pub url: String,
    /// API token (the file is mode 0600).
    #[serde(serialize_with = "expose_token")]
    pub token: SecretString,
    /// CA file to trust for this gateway, absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// The profile file name inside the config directory.
pub const PROFILE_FILE: &str = "profile.toml";

/// The directory holding `profile.toml`: `$PERISCOPE_CONFIG_DIR`, else
/// `$XDG_CONFIG_HOME/periscope`, else `~/.config/periscope`.
pub fn config_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("PERISCOPE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CONFIG_HOME").map(PathBuf::from)
        && dir.is_absolute()
    {
        return Ok(dir.join("periscope"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("periscope"));
    }
    Err(CliError::usage(
        "cannot find a config directory: neither PERISCOPE_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set",
    )
    .with_hint("set PERISCOPE_CONFIG_DIR to a directory of your own"))
}

/// Path of the profile file.
pub fn profile_path() -> Result<PathBuf, CliError> {
    Ok(config_dir()?.join(PROFILE_FILE))
}

/// Reads the saved profile; `None` when there is none.
pub fn load_profile() -> Result<Option<(PathBuf, Profile)>, CliError> {
    let path = profile_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot read the profile {}: {e}",
                path.display()
            )));
        }
    };
    warn_if_readable_by_others(&path);
    let profile: Profile = toml::from_str(&text).map_err(|e| {
        CliError::usage(format!(
            "the profile {} is not valid: {}",
            path.display(),
            e.to_string().trim_end()
        ))
        .with_hint("run `periscope login` again, or `periscope logout` to remove it")
    })?;
    Ok(Some((path, profile)))
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "periscope: warning: {} holds a token but other users may read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Writes the profile atomically, readable by its owner only (file 0600, directory
/// 0700), and returns its path.
pub fn save_profile(profile: &Profile) -> Result<PathBuf, CliError> {
    let dir = config_dir()?;
    let path = dir.join(PROFILE_FILE);
    let fail = |what: &str, e: io::Error| {
        CliError::usage(format!("cannot {what} {}: {e}", path.display()))
    };
    create_private_dir(&dir).map_err(|e| fail("create the directory of", e))?;
    let text = toml::to_string(profile)
        .map_err(|e| CliError::usage(format!("cannot encode the profile: {e}")))?;
    let tmp = dir.join(format!(".{PROFILE_FILE}.{}.tmp", std::process::id()));
    let written = write_private(&tmp, text.as_bytes()).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail("write", e));
    }
    Ok(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // A leftover file keeps its old mode through open(): set it explicitly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

/// Removes the saved profile; returns its path and whether there was one.
pub fn remove_profile() -> Result<(PathBuf, bool), CliError> {
    let path = profile_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok((path, true)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((path, false)),
        Err(e) => Err(CliError::usage(format!(
            "cannot remove the profile {}: {e}",
            path.display()
        ))),
    }
}

/// Settings resolved from flags, environment and profile.
#[derive(Debug, Clone)]
pub struct Target {
    /// The gateway's base URL (always ends with `/`).
    pub url: Url,
    /// The token to present.
    pub token: SecretString,
    /// The CA to trust instead of the system roots.
    pub ca_file: Option<PathBuf>,
}

/// A gateway URL as people write it: no trailing `/` on a bare host.
pub fn display_url(url: &Url) -> String {
    let text = url.as_str();
    if url.path() == "/" {
        text.trim_end_matches('/').to_owned()
    } else {
        text.to_owned()
    }
}

/// Parses and checks a gateway URL: HTTPS only, since every call carries a token.
pub fn parse_url(text: &str) -> Result<Url, CliError> {
    let mut url = Url::parse(text.trim()).map_err(|e| {
        CliError::usage(format!("{text:?} is not a valid gateway URL: {e}")).with_hint(
            "use the api= address printed by `periscope up`, e.g. https://127.0.0.1:8443",
        )
    })?;
    if url.scheme() != "https" {
        return Err(CliError::usage(format!(
            "the gateway URL {url} does not use https: tokens must not travel in clear text"
        ))
        .with_hint("the gateway serves its API over HTTPS only: use https://HOST:PORT"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(CliError::usage(format!(
            "the gateway URL {url} must not contain credentials, a query or a fragment"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Reads `-` as "the token is on stdin" (keeps it out of `ps` and shell history).
pub fn read_token(token: &SecretString) -> Result<SecretString, CliError> {
    if token.expose_secret() != "-" {
        return check_token(token.clone());
    }
    let mut text = String::new();
    io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| CliError::usage(format!("cannot read the token from stdin: {e}")))?;
    check_token(SecretString::from(text.trim()))
}

fn check_token(token: SecretString) -> Result<SecretString, CliError> {
    let text = token.expose_secret();
    if text.is_empty() {
        return Err(CliError::usage("the API token is empty"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::usage(
            "the API token contains whitespace or control characters",
        ));
    }
    Ok(token)
}

/// Resolves the flags/environment against the saved profile.
pub fn resolve(args: &ConnArgs) -> Result<Target, CliError> {
    let profile = load_profile()?.map(|(_, p)| p);
    let profile_url = match &profile {
        Some(p) => Some(parse_url(&p.url)?),
        None => None,
    };
    let url = match (&args.url, &profile_url) {
        (Some(url), _) => parse_url(url)?,
        (None, Some(url)) => url.clone(),
        (None, None) => {
            return Err(CliError::usage("no gateway URL is configured").with_hint(
                "run `periscope login --url URL --token TOKEN --ca-file PATH`, \
                 or pass --url/--token, or set PERISCOPE_URL and PERISCOPE_TOKEN",
            ));
        }
    };
    // The profile's token and CA belong to the profile's gateway only.
    let same = profile_url.as_ref() == Some(&url);
    let from_profile = profile.filter(|_| same);
    let token = match (&args.token, &from_profile) {
        (Some(token), _) => read_token(token)?,
        (None, Some(p)) => check_token(p.token.clone())?,
        (None, None) => {
            let url = display_url(&url);
            let why = match &profile_url {
                Some(saved) => format!(
                    "no API token for {url} (the saved profile is for {}, and its token is only sent there)",
                    display_url(saved)
                ),
                None => format!("no API token is configured for {url}"),
            };
            return Err(CliError::usage(why).with_hint(
                "pass --token, set PERISCOPE_TOKEN, or run `periscope login` for this URL",
            ));
        }
    };
    let ca_file = args
        .ca_file
        .clone()
        .or_else(|| from_profile.and_then(|p| p.ca_file));
    Ok(Target {
        url,
        token,
        ca_file,
    })
}

/// Time allowed to open a TCP+TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole JSON call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest silence while streaming an export.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A successful JSON answer: typed for the human output, raw for `--json`.
#[derive(Debug)]
pub struct Answer<T> {
    /// The decoded value.
    pub value: T,
    /// The JSON exactly as the gateway sent it (re-indented).
    pub raw: serde_json::Value,
}

/// An authenticated connection to one gateway.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    ca_file: Option<PathBuf>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

static CRYPTO: Once = Once::new();

/// The binary uses ring as its one rustls provider (no aws-lc build); reqwest is
/// built without a provider and picks up this process default.
fn install_crypto_provider() {
    CRYPTO.call_once(|| {
        // Err means another part of the process installed one first: keep it.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Client {
    /// Connects to the resolved target (no network traffic until the first call).
    pub fn new(target: &Target) -> Result<Self, CliError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("periscope-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &target.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                CliError::usage(format!("cannot read the CA file {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "the CA file {} holds no PEM certificate",
                        path.display()
                    ))
                    .with_hint("use the gateway's tls/ca.pem (`-----BEGIN CERTIFICATE-----`)")
                })?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| {
            CliError::usage(format!("cannot set up the HTTPS client: {}", chain(&e)))
        })?;
        Ok(Client {
            http,
            base: target.url.clone(),
            token: target.token.clone(),
            ca_file: target.ca_file.clone(),
        })
    }

    /// The token this client presents (for a WebSocket's handshake, which
    /// does not go through reqwest).
    pub fn token(&self) -> &SecretString {
        &self.token
    }

    /// The CA file to trust instead of the system's roots, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The gateway's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `base` + path segments (each escaped), + query pairs whose value is set.
    pub fn url(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                if let Some(value) = value {
                    pairs.append_pair(key, value);
                }
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url
    }

    /// `GET` a JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<Answer<T>, CliError> {
        self.call(Method::GET, url, None::<&()>).await
    }

    /// `POST` a JSON body (or none) and read a JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        url: Url,
        body: Option<&B>,
    ) -> Result<Answer<T>, CliError> {
        self.call(Method::POST, url, body).await
    }

    /// `POST` for work that takes a while on the gateway (discovery samples
    /// an upstream): the answer may take up to `timeout`.
    pub async fn post_slow<B: Serialize, T: DeserializeOwned>(
        &self,
        url: Url,
        body: &B,
        timeout: Duration,
    ) -> Result<Answer<T>, CliError> {
        self.call_within(Method::POST, url, Some(body), timeout)
            .await
    }

    /// `PATCH` a JSON body and read a JSON answer.
    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<Answer<T>, CliError> {
        self.call(Method::PATCH, url, Some(body)).await
    }

    /// `DELETE` and read a JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, url: Url) -> Result<Answer<T>, CliError> {
        self.call(Method::DELETE, url, None::<&()>).await
    }

    fn request(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        if self.token.expose_secret().is_empty() {
            return self.http.request(method, url);
        }
        let mut auth = reqwest::header::HeaderValue::from_str(&format!(
            "Bearer {}",
            self.token.expose_secret()
        ))
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("Bearer -"));
        auth.set_sensitive(true);
        self.http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, auth)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Answer<T>, CliError> {
        self.call_within(method, url, body, CALL_TIMEOUT).await
    }

    async fn call_within<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<Answer<T>, CliError> {
        let what = format!("{method} {}", url.path());
        let mut request = self.request(method, url).timeout(timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let raw: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::refused(format!("the gateway's answer to {what} is not JSON: {e}"))
        })?;
        let value = T::deserialize(&raw).map_err(|e| {
            CliError::refused(format!(
                "the gateway's answer to {what} has an unexpected shape: {e}"
            ))
            .with_hint(
                "the CLI and the gateway may be different versions: compare `periscope --version`",
            )
        })?;
        Ok(Answer { value, raw })
    }

    /// `GET` a streamed body (the audit export): the status is checked, the body is
    /// left for the caller to read chunk by chunk.
    pub async fn stream(&self, url: Url) -> Result<reqwest::Response, CliError> {
        let response = self
            .request(Method::GET, url)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        Err(api_error(status, &bytes))
    }

    /// `POST` a JSON body whose answer streams (`periscope exec`): no call
    /// timeout (a command may run long), the status checked, the body left
    /// for the caller to read chunk by chunk.
    pub async fn post_stream<B: Serialize>(
        &self,
        url: Url,
        body: &B,
    ) -> Result<reqwest::Response, CliError> {
        let response = self
            .request(Method::POST, url)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        Err(api_error(status, &bytes))
    }

    /// Turns a network or TLS failure into a message that names the URL.
    pub fn transport(&self, err: &reqwest::Error) -> CliError {
        let detail = chain(err);
        let lower = detail.to_lowercase();
        let tls = ["certificate", "tls", "handshake", "unknownissuer", "ssl"]
            .iter()
            .any(|w| lower.contains(w));
        let url = display_url(&self.base);
        let (message, hint) = if tls {
            (
                format!("TLS failed with the gateway at {url}: {detail}"),
                "the gateway's certificate is not trusted: pass its CA with --ca-file PATH \
                 (tls/ca.pem in the gateway's data dir), or set PERISCOPE_CA_FILE"
                    .to_owned(),
            )
        } else if err.is_timeout() {
            (
                format!("the gateway at {url} did not answer in time: {detail}"),
                "check the URL and that the gateway is running; if it uses a self-signed \
                 certificate, pass its CA with --ca-file"
                    .to_owned(),
            )
        } else if err.is_decode() || err.is_body() {
            (
                format!("the connection to the gateway at {url} broke: {detail}"),
                "retry; if it keeps failing, check the gateway's logs".to_owned(),
            )
        } else {
            (
                format!("cannot reach the gateway at {url}: {detail}"),
                "check the URL and that the gateway is running (`periscope up`); \
                 if it uses a self-signed certificate, pass its CA with --ca-file"
                    .to_owned(),
            )
        };
        CliError {
            kind: ErrorKind::Unreachable,
            message,
            hint: Some(hint),
            body: None,
        }
    }
}

/// Reads the gateway's error body (`{"error": {...}}`) into a failure.
pub(crate) fn api_error(status: StatusCode, bytes: &[u8]) -> CliError {
    let raw: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let parsed = raw.as_ref().and_then(|v| ErrorBody::deserialize(v).ok());
    let Some(ErrorBody { error }) = parsed else {
        let text = String::from_utf8_lossy(bytes);
        let snippet: String = text.trim().chars().take(200).collect();
        let mut err = CliError::refused(format!(
            "the gateway answered HTTP {status}{}",
            if snippet.is_empty() {
                String::new()
            } else {
                format!(": {snippet}")
            }
        ));
        if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
            err = err.with_hint(
                "the URL may not point at a Periscope gateway, or the gateway is an older version",
            );
        }
        return err;
    };
    let mut hint = error.hint;
    if hint.is_none() && status == StatusCode::UNAUTHORIZED {
        hint = Some(
            "the token may be wrong, expired or revoked: ask an admin for a new one and run \
             `periscope login` again"
                .to_owned(),
        );
    }
    if let Some(id) = &error.request_id
        && status.is_server_error()
    {
        let tail = format!("(request id {id} finds it in the gateway's logs)");
        hint = Some(match hint {
            Some(h) => format!("{h} {tail}"),
            None => tail,
        });
    }
    CliError {
        kind: ErrorKind::Refused,
        message: error.message,
        hint,
        body: raw,
    }
}

/// An error and its causes on one line, without repeating the URL.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        let text = match e.downcast_ref::<reqwest::Error>() {
            Some(r) if r.url().is_some() => {
                // reqwest appends " for url (...)": the message names the URL already.
                match text.split_once(" for url (") {
                    Some((head, _)) => head.to_owned(),
                    None => text,
                }
            }
            _ => text,
        };
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Shares one tokio runtime between the commands of one process.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::usage(format!("cannot start the async runtime: {e}")))
}

/// Prints text on stdout; a closed pipe (`| head`) is reported as `BrokenPipe`.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.is_empty() && !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Prints a JSON value for scripts, pretty and newline-terminated.
pub fn print_json(value: &serde_json::Value) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    print(&text)
}

/// Prints a failure on stderr (`periscope: error: ...` then `hint: ...`) and picks
/// its exit code: the documented code for a [`CliError`], 2 for anything else.
pub fn report(err: &anyhow::Error) -> ExitCode {
    match err.downcast_ref::<CliError>() {
        Some(e) => {
            eprintln!("periscope: error: {}", e.message);
            if let Some(hint) = &e.hint {
                eprintln!("hint: {hint}");
            }
            e.exit_code()
        }
        None => {
            eprintln!("periscope: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
