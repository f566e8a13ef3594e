//! The gateway as an OAuth 2.1 authorization server for MCP clients
//! ([docs/mcp.md], MCP authorization specification).
//!
//! An MCP client (Claude Code, Cursor...) that meets `401` at `/mcp`
//! discovers, from the protected-resource metadata, that this gateway is
//! its own authorization server; reads `/.well-known/oauth-authorization-server`
//! (RFC 8414); registers itself (`POST /oauth/register`, RFC 7591); sends
//! its human's browser to `/oauth/authorize` with a PKCE S256 challenge;
//! and trades the code it gets back, with its verifier, at `/oauth/token`
//! for an ordinary gateway API token of that human. No secret is ever
//! pasted into the client.
//!
//! - **Who signs in**: the human, in the console ([`crate::console`]): single
//!   sign-on when `[sso]` is configured, or a local identity's token. A
//!   consent page then names the client and where it returns to; only an
//!   explicit "Allow" (a CSRF-checked form of that browser session) issues
//!   a code. Both decisions are audited (`oauth.consent`).
//! - **Public clients only**: PKCE S256 is required; no client secret is
//!   issued or accepted. Redirect URIs must be HTTPS, a loopback HTTP
//!   address (whose port may vary, RFC 8252 §7.3) or a private-use scheme
//!   (`cursor://…`, RFC 8252 §7.1).
//! - **Nothing stored for a client**: a client id is its registration
//!   (name, redirect URIs) sealed with the gateway's key, so any replica
//!   accepts it and registering writes nothing. An authorization code is a
//!   store row keyed by its keyed hash, taken once, valid two minutes, like
//!   the CLI's SSO hand-off.
//! - **What the client gets** is the human's token (`[sso] token_lifetime`,
//!   12 h by default, audited `token.create` with `via = "oauth"` and the
//!   client's name), so every tool call acts as that human with their roles
//!   and grants; revoking the token (`periscope admin token revoke`) ends
//!   the client's access at its next call.
//!
//! [docs/mcp.md]: https://github.com/periscope-dev/periscope/blob/main/docs/mcp.md

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use periscope_audit::actions;
use periscope_store::{SsoFlow, SsoFlowKind, TokenScope};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::api::OwnBody;
use crate::gateway::Gateway;
use crate::sso::{HANDOFF_TTL, audit_time, valid_challenge};

/// RFC 8414 metadata of this authorization server.
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";
/// Where the human's browser is sent to consent.
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// Where a client trades its code and verifier for a token.
pub const TOKEN_PATH: &str = "/oauth/token";
/// Dynamic client registration (RFC 7591).
pub const REGISTER_PATH: &str = "/oauth/register";

/// Prefix of the client ids this gateway issues.
const CLIENT_ID_PREFIX: &str = "pmc_";
/// Most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 4;
/// Longest redirect URI accepted.
const MAX_REDIRECT_URI_LEN: usize = 512;
/// Longest client name kept (longer ones are cut).
const MAX_CLIENT_NAME: usize = 80;
/// Largest registration or token request body read.
pub(crate) const MAX_FORM_BYTES: usize = 16 * 1024;
/// Longest `state` a client may send through.
const MAX_STATE_LEN: usize = 1024;
/// What marks a hand-off row as an OAuth authorization code (its
/// `provider`), so the CLI's hand-off endpoint never redeems one and this
/// one never redeems a CLI's.
const CODE_MARK: &str = "oauth";

/// The routes of the protocol endpoints (the consent page is the
/// console's).
pub(crate) fn router() -> Router<Gateway> {
    Router::new()
        .route(METADATA_PATH, get(metadata))
        .route(REGISTER_PATH, post(register))
        .route(TOKEN_PATH, post(token))
}

/// A registered client, as sealed in its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Client {
    /// The name the client registered with (shown on the consent page and
    /// in audit events).
    #[serde(rename = "n")]
    pub(crate) name: String,
    /// Where codes may be sent.
    #[serde(rename = "r")]
    pub(crate) redirect_uris: Vec<String>,
    /// When it registered (Unix seconds).
    #[serde(rename = "t")]
    pub(crate) issued_at: i64,
    /// Random: two registrations are two clients, even when identical (a
    /// code issued to one is refused to the other).
    #[serde(rename = "k")]
    pub(crate) nonce: String,
}

/// Seals `client` into a client id: its registration, base64url, and a MAC
/// under the gateway's key.
fn seal_client(gateway: &Gateway, client: &Client) -> String {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(client).unwrap_or_default());
    let mac = gateway.hasher().derive("oauth-client", &payload);
    format!(
        "{CLIENT_ID_PREFIX}{payload}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The client a client id stands for, when this gateway (or a replica
/// with the same key) issued it.
pub(crate) fn open_client(gateway: &Gateway, client_id: &str) -> Option<Client> {
    let sealed = client_id.strip_prefix(CLIENT_ID_PREFIX)?;
    if sealed.len() > 8 * 1024 {
        return None;
    }
    let (payload, mac) = sealed.rsplit_once('.')?;
    let presented = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(mac)
        .ok()?;
    let expected = gateway.hasher().derive("oauth-client", payload);
    if presented.len() != expected.len() || !bool::from(presented.ct_eq(&expected)) {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// Whether `uri` may receive codes: HTTPS, loopback HTTP or a private-use
/// scheme (`com.example.app:/cb`, `cursor://…`); never a fragment, never
/// `javascript:`/`data:`/`file:`. The error says which rule failed.
fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!(
            "a redirect URI is longer than {MAX_REDIRECT_URI_LEN} characters"
        ));
    }
    let url = url::Url::parse(uri).map_err(|e| format!("`{uri}` is not a URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` has a fragment (RFC 6749 §3.1.2)"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "`{uri}`: plain HTTP is accepted only on a loopback address (127.0.0.1, [::1], localhost)"
        )),
        "javascript" | "data" | "file" | "blob" | "about" | "vbscript" => Err(format!(
            "`{uri}`: the `{}` scheme cannot receive a code",
            url.scheme()
        )),
        // Private-use schemes name an app (RFC 8252 §7.1); a bare word
        // such as `cursor` is what desktop clients register too.
        _ => Ok(()),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether `asked` is one of the client's redirect URIs: the same string,
/// or for a loopback address the same but for the port (RFC 8252 §7.3: a
/// native app listens on whatever port is free).
fn redirect_matches(registered: &str, asked: &str) -> bool {
    if registered == asked {
        return true;
    }
    let (Ok(mut a), Ok(mut b)) = (url::Url::parse(registered), url::Url::parse(asked)) else {
        return false;
    };
    if a.scheme() != "http" || !is_loopback(&a) || !is_loopback(&b) {
        return false;
    }
    let _ = a.set_port(None);
    let _ = b.set_port(None);
    a == b
}

/// The query of an authorization request, as the client sent it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AuthorizeParams {
    pub(crate) response_type: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) scope: Option<String>,
}

impl AuthorizeParams {
    /// The parameters as form fields, to carry them through the consent
    /// form unchanged.
    pub(crate) fn fields(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("resource", &self.resource),
            ("scope", &self.scope),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// A checked authorization request: who asks, where the answer goes.
#[derive(Debug, Clone)]
pub(crate) struct Authorization {
    pub(crate) client: Client,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) challenge: String,
}

impl Authorization {
    /// The client's redirect URI with `pairs` appended (and `state`, and
    /// `iss` per RFC 9207 so a client talking to several servers can tell
    /// which answered).
    pub(crate) fn redirect_with(&self, issuer: &str, pairs: &[(&str, &str)]) -> String {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return self.redirect_uri.clone();
        };
        {
            let mut query = url.query_pairs_mut();
            for (k, v) in pairs {
                query.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        url.to_string()
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub(crate) enum AuthorizeError {
    /// The client or its redirect URI cannot be trusted: shown to the
    /// person, never redirected (RFC 6749 §4.1.2.1).
    Page(String),
    /// The client is known: the error goes back to it.
    Redirect {
        to: Box<Authorization>,
        error: &'static str,
        description: String,
    },
}

/// Checks an authorization request against the registered client and this
/// resource (`base` is the gateway's URL).
pub(crate) fn check_authorize(
    gateway: &Gateway,
    base: &str,
    params: &AuthorizeParams,
) -> Result<Authorization, AuthorizeError> {
    let client_id = params
        .client_id
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| AuthorizeError::Page("the request names no `client_id`".into()))?;
    let client = open_client(gateway, client_id).ok_or_else(|| {
        AuthorizeError::Page(
            "this client is not registered with this gateway (its `client_id` was not issued \
             here, or was altered): the MCP client must register again"
                .into(),
        )
    })?;
    let redirect_uri = match params.redirect_uri.as_deref().filter(|r| !r.is_empty()) {
        Some(asked) => {
            if !client
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, asked))
            {
                return Err(AuthorizeError::Page(format!(
                    "`{asked}` is not a redirect URI this client registered, so nothing is sent there"
                )));
            }
            asked.to_string()
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(AuthorizeError::Page(
                "the request names no `redirect_uri` and the client registered several".into(),
            ));
        }
    };
    let state = params.state.clone().filter(|s| !s.is_empty());
    let mut to = Authorization {
        client,
        client_id: client_id.to_string(),
        redirect_uri,
        state,
        challenge: String::new(),
    };
    if to.state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        to.state = None;
        return Err(redirect_error(
            to,
            "invalid_request",
            format!("`state` is longer than {MAX_STATE_LEN} characters"),
        ));
    }
    if params.response_type.as_deref() != Some("code") {
        return Err(redirect_error(
            to,
            "unsupported_response_type",
            "only `response_type=code` is supported".into(),
        ));
    }
    if params.code_challenge_method.as_deref() != Some("S256") {
        return Err(redirect_error(
            to,
            "invalid_request",
            "PKCE is required: send `code_challenge` with `code_challenge_method=S256`".into(),
        ));
    }
    match params.code_challenge.as_deref() {
        Some(c) if valid_challenge(c) => to.challenge = c.to_string(),
        _ => {
            return Err(redirect_error(
                to,
                "invalid_request",
                "`code_challenge` must be the 43-character base64url SHA-256 of the verifier"
                    .into(),
            ));
        }
    }
    if let Some(resource) = params.resource.as_deref().filter(|r| !r.is_empty())
        && !resource_is_ours(base, resource)
    {
        return Err(redirect_error(
            to,
            "invalid_target",
            format!(
                "`{resource}` is not a resource of this gateway (its MCP endpoint is {base}/mcp)"
            ),
        ));
    }
    Ok(to)
}

fn redirect_error(to: Authorization, error: &'static str, description: String) -> AuthorizeError {
    AuthorizeError::Redirect {
        to: Box::new(to),
        error,
        description,
    }
}

/// Whether a `resource` indicator (RFC 8707) names this gateway or its MCP
/// endpoint.
fn resource_is_ours(base: &str, resource: &str) -> bool {
    let resource = resource.trim_end_matches('/');
    resource == base || resource == format!("{base}{}", crate::mcp::MCP_PATH)
}

impl Gateway {
    /// Issues the one-time code of an authorization `identity` consented
    /// to: a store row keyed by the code's keyed hash, taken once by
    /// [`token`], valid [`HANDOFF_TTL`].
    pub(crate) async fn issue_oauth_code(
        &self,
        to: &Authorization,
        identity: &str,
    ) -> Result<Zeroizing<String>, periscope_store::StoreError> {
        let code = Zeroizing::new(crate::sso::new_handle());
        let now = self.now();
        self.store()
            .insert_sso_flow(&SsoFlow {
                flow_id: crate::sso::flow_id(self.hasher(), &code),
                kind: SsoFlowKind::Handoff,
                provider: CODE_MARK.to_string(),
                redirect_uri: to.redirect_uri.clone(),
                return_to: Some(to.client_id.clone()),
                cli_challenge: Some(to.challenge.clone()),
                poll_secs: None,
                identity: Some(identity.to_string()),
                created_at: audit_time(now)?,
                expires_at: audit_time(now + HANDOFF_TTL)?,
            })
            .await?;
        Ok(code)
    }
}

/// Whether a hand-off row is an OAuth authorization code (the CLI's
/// hand-off endpoint refuses those).
pub(crate) fn is_oauth_code(flow: &SsoFlow) -> bool {
    flow.provider == CODE_MARK && flow.return_to.is_some()
}

/// An RFC 6749 §5.2 error: `{error, error_description}`, never cached.
fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    let description = description.into();
    tracing::info!(error, %description, "an OAuth request was refused");
    let mut response = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    finish(&mut response);
    response
}

/// Marks a protocol response as final (the API's error normaliser leaves
/// it as RFC 6749 shapes it) and never cached.
fn finish(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(OwnBody);
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
async fn metadata(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let base = crate::mcp::base_url(&gateway, &headers);
    let mut response = axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "registration_endpoint": format!("{base}{REGISTER_PATH}"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": [],
        "service_documentation": "https://github.com/periscope-dev/periscope/blob/main/docs/mcp.md",
    }))
    .into_response();
    finish(&mut response);
    response
}

/// What a client sends to register (RFC 7591 §2); unknown fields ignored.
#[derive(Debug, Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
}

/// `POST /oauth/register`: a public client registers; its id seals what
/// it registered, nothing is stored.
async fn register(State(gateway): State<Gateway>, body: Bytes) -> Response {
    if body.len() > MAX_FORM_BYTES {
        return oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            format!("a registration is at most {MAX_FORM_BYTES} bytes"),
        );
    }
    let asked: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client_metadata",
                format!("the registration is not the JSON of RFC 7591: {e}"),
            );
        }
    };
    if asked.redirect_uris.is_empty() || asked.redirect_uris.len() > MAX_REDIRECT_URIS {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!("register between 1 and {MAX_REDIRECT_URIS} `redirect_uris`"),
        );
    }
    for uri in &asked.redirect_uris {
        if let Err(why) = check_redirect_uri(uri) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", why);
        }
    }
    if let Some(grants) = &asked.grant_types
        && grants
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "only the `authorization_code` grant is offered",
        );
    }
    if let Some(types) = &asked.response_types
        && types.iter().any(|t| t != "code")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "only `response_type` `code` is offered",
        );
    }
    let name: String = asked
        .client_name
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_CLIENT_NAME)
        .collect::<String>()
        .trim()
        .to_string();
    let client = Client {
        name: if name.is_empty() {
            "an unnamed MCP client".into()
        } else {
            name
        },
        redirect_uris: asked.redirect_uris,
        issued_at: gateway.now().unix_timestamp(),
        nonce: hex::encode(crate::identity::random_bytes::<8>()),
    };
    let client_id = seal_client(&gateway, &client);
    let mut response = (
        StatusCode::CREATED,
        axum::Json(json!({
            "client_id": client_id,
            "client_id_issued_at": client.issued_at,
            "client_name": client.name,
            "redirect_uris": client.redirect_uris,
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })),
    )
        .into_response();
    finish(&mut response);
    response
}

/// `POST /oauth/token` (`authorization_code` with PKCE): the code taken
/// once, its client, redirect URI and verifier checked, then the human's
/// gateway token minted and audited.
async fn token(State(gateway): State<Gateway>, body: Bytes) -> Response {
    if body.len() > MAX_FORM_BYTES {
        return oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("a token request is at most {MAX_FORM_BYTES} bytes"),
        );
    }
    let form: Vec<(String, Zeroizing<String>)> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
        .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match field("grant_type") {
        Some("authorization_code") => {}
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!(
                    "`{other}` is not offered: only `authorization_code` (sign in again when the token expires)"
                ),
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "`grant_type` is missing",
            );
        }
    }
    let (Some(code), Some(verifier), Some(client_id)) =
        (field("code"), field("code_verifier"), field("client_id"))
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send `code`, `code_verifier` and `client_id`",
        );
    };
    let Some(client) = open_client(&gateway, client_id) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "this `client_id` was not issued by this gateway",
        );
    };
    let invalid_grant = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    if !crate::sso::plausible_handle(code) {
        return invalid_grant("this authorization code is not valid");
    }
    let flow = match gateway
        .store()
        .take_sso_flow(
            &crate::sso::flow_id(gateway.hasher(), code),
            SsoFlowKind::Handoff,
        )
        .await
    {
        Ok(Some(flow)) if is_oauth_code(&flow) => flow,
        Ok(_) => {
            return invalid_grant("this authorization code was already used or has expired");
        }
        Err(e) => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                format!("the store is unavailable: {e}"),
            );
        }
    };
    if gateway.clock().audit_now() >= flow.expires_at {
        return invalid_grant("this authorization code has expired: authorize again");
    }
    if flow.return_to.as_deref() != Some(client_id) {
        return invalid_grant("this authorization code was issued to another client");
    }
    if let Some(redirect) = field("redirect_uri")
        && redirect != flow.redirect_uri
    {
        return invalid_grant("`redirect_uri` differs from the authorization request's");
    }
    let challenge = flow.cli_challenge.as_deref().unwrap_or("");
    if !crate::sso::verifier_matches(verifier, challenge) {
        return invalid_grant("the code verifier does not match this code's challenge");
    }
    let Some(identity) = flow.identity.as_deref() else {
        return invalid_grant("this authorization code names no identity");
    };
    match gateway.issue_oauth_token(identity, &client.name).await {
        Ok((token, expires_in)) => {
            let mut response = axum::Json(json!({
                "access_token": token.as_str(),
                "token_type": "Bearer",
                "expires_in": expires_in,
            }))
            .into_response();
            finish(&mut response);
            response
        }
        Err(e) => e,
    }
}

impl Gateway {
    /// Mints the API token an MCP client receives for `identity`:
    /// `[sso] token_lifetime` (12 h by default), audited as `token.create`
    /// with `via = "oauth"` and the client's name.
    async fn issue_oauth_token(
        &self,
        identity: &str,
        client: &str,
    ) -> Result<(Zeroizing<String>, i64), Response> {
        let unavailable = |e: periscope_store::StoreError| {
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                format!("the store is unavailable: {e}"),
            )
        };
        let stored = self.store().get_identity(identity).await.map_err(|e| {
            if matches!(e, periscope_store::StoreError::NotFound { .. }) {
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the identity that consented no longer exists",
                )
            } else {
                unavailable(e)
            }
        })?;
        if !stored.is_enabled() {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                format!("identity `{identity}` is disabled at this gateway"),
            ));
        }
        let lifetime = self.sso_token_lifetime();
        let expires_at = audit_time(self.now() + lifetime).map_err(unavailable)?;
        let minted = self.hasher().mint(
            identity,
            TokenScope::Api,
            format!("MCP client {client} (OAuth)"),
            self.clock().audit_now(),
            Some(expires_at),
        );
        let draft = self
            .draft(identity, actions::TOKEN_CREATE, &minted.record.token_id)
            .with_details(json!({
                "identity": identity,
                "scope": "api",
                "via": "oauth",
                "agent": client,
                "expires_at": minted.record.expires_at,
            }));
        let started = std::time::Instant::now();
        self.store()
            .create_token(minted.record, vec![draft])
            .await
            .map_err(unavailable)?;
        self.count_audit(1, started);
        Ok((
            minted.token,
            i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_a_code_may_reach() {
        for ok in [
            "http://127.0.0.1:33418/callback",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:8080/cb",
            "https://app.example.com/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example.com/cb",
            "https://app.example.com/cb#frag",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_loopback_redirect_may_change_its_port_and_nothing_else() {
        let registered = "http://127.0.0.1:1234/callback";
        assert!(redirect_matches(
            registered,
            "http://127.0.0.1:5555/callback"
        ));
        assert!(!redirect_matches(registered, "http://127.0.0.1:5555/other"));
        assert!(!redirect_matches(
            registered,
            "http://127.0.0.2:1234/callback"
        ));
        assert!(!redirect_matches(
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb"
        ));
    }
}
