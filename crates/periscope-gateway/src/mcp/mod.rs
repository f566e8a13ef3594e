//! The MCP server: AI agents (Claude Code, Cursor, Codex...) debug
//! production through the same shields as their human ([docs/mcp.md]).
//!
//! - **Transport**: the Model Context Protocol's streamable HTTP transport
//!   at `/mcp` on the HTTPS API listener, served by the official Rust SDK
//!   (`rmcp`) rather than a hand-written JSON-RPC: the protocol moves fast
//!   (sessions, protocol versions, SSE priming) and the SDK follows it.
//! - **Authentication**: every HTTP request carries the human's gateway API
//!   token as `Authorization: Bearer` and is checked like any API call
//!   ([`Gateway::authenticate_api`]: constant-time, expiry, revocation,
//!   `auth.login_failed` audited). A request without a valid token gets 401
//!   with `WWW-Authenticate: Bearer resource_metadata="…"` pointing at the
//!   OAuth protected-resource metadata (`/.well-known/oauth-protected-resource`),
//!   which names this gateway as the authorization server ([`crate::oauth`]:
//!   OAuth 2.1 with PKCE, dynamic registration, the human signing in and
//!   consenting in the console), so a client needs no pasted secret. A
//!   token revoked mid-session stops the very next call.
//! - **Identity**: the agent has none of its own. Each tool acts as the
//!   token's identity, with its roles and grants; each call is audited as
//!   `mcp.call` with `via = "mcp"` and the client's declared name (MCP
//!   `clientInfo.name`), and the SQL sessions a call opens carry the same
//!   marks on every event.
//! - **Tools** (`tools`): each returns one [`outcome::Outcome`] shape. No tool
//!   approves anything: approval stays human, in the console or the CLI.
//!
//! [docs/mcp.md]: https://github.com/periscope-dev/periscope/blob/main/docs/mcp.md

mod exec;
pub mod outcome;
mod schema;
mod tools;

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

use crate::api::{Failure, RequestId};
use crate::client_addr::ClientAddr;
use crate::gateway::{Caller, Gateway};
use crate::shutdown::Shutdown;

pub use tools::PeriscopeMcp;

/// The path of the MCP endpoint.
pub const MCP_PATH: &str = "/mcp";
/// The OAuth protected-resource metadata of the MCP endpoint (RFC 9728).
pub const RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";
/// Largest JSON-RPC request body accepted; a larger one gets 413 before it
/// is read whole. Tool arguments are small (a statement, a reason).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// What the authentication layer hands the tools: who calls, and the token
/// they called with (the password of the SQL sessions a `query` opens,
/// never logged, never returned).
#[derive(Clone)]
pub(crate) struct McpCaller {
    pub(crate) caller: Caller,
    pub(crate) token: Arc<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for McpCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpCaller")
            .field("identity", &self.caller.identity.name)
            .finish_non_exhaustive()
    }
}

/// The routes of the MCP server, merged into the API's router. At
/// `shutdown` every MCP session ends, so an agent's open event stream
/// cannot hold the API's graceful shutdown.
pub(crate) fn router(gateway: Gateway, mut shutdown: Shutdown) -> Router<Gateway> {
    let mut config = StreamableHttpServerConfig::default();
    let sessions_end = config.cancellation_token.clone();
    tokio::spawn(async move {
        shutdown.wait().await;
        sessions_end.cancel();
    });
    // Every request is authenticated by bearer token (a browser tricked
    // into calling holds none), and the gateway is reached by whatever
    // name its operators give it: the SDK's loopback-only Host check would
    // refuse it.
    config.allowed_hosts = Vec::new();
    config.max_request_body_bytes = MAX_REQUEST_BYTES;
    let factory_gateway = gateway.clone();
    let service = StreamableHttpService::new(
        move || Ok(PeriscopeMcp::new(factory_gateway.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service(MCP_PATH, service)
        .layer(middleware::from_fn_with_state(gateway, authenticate));
    Router::new()
        .route(RESOURCE_METADATA_PATH, get(resource_metadata))
        .route(
            &format!("{RESOURCE_METADATA_PATH}{MCP_PATH}"),
            get(resource_metadata),
        )
        .merge(mcp)
}

/// The URL clients reached the gateway by (`https://host:port`): the
/// configured SSO public URL, else the request's `Host`.
pub(crate) fn base_url(gateway: &Gateway, headers: &HeaderMap) -> String {
    let config = gateway.config();
    if let Some(url) = config
        .config
        .sso
        .as_ref()
        .and_then(|s| s.public_url.clone())
    {
        return url;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map(str::to_owned)
        .or_else(|| gateway.endpoints().api.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string());
    format!("https://{host}")
}

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728): the
/// resource, how to present a token, and its authorization server: this
/// gateway itself ([`crate::oauth`]), which signs the human in through the
/// console (single sign-on or a local token) and issues their gateway token.
async fn resource_metadata(State(gateway): State<Gateway>, headers: HeaderMap) -> Response {
    let base = base_url(&gateway, &headers);
    axum::Json(json!({
        "resource": format!("{base}{MCP_PATH}"),
        "authorization_servers": [base],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [],
        "resource_name": "Periscope gateway (MCP)",
        "resource_documentation": "https://github.com/periscope-dev/periscope/blob/main/docs/mcp.md",
    }))
    .into_response()
}

/// Every request to `/mcp` needs a valid API token; the caller and token go
/// into the request for the tools.
async fn authenticate(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0.0);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let challenge = format!(
        "Bearer realm=\"periscope\", resource_metadata=\"{}{RESOURCE_METADATA_PATH}{MCP_PATH}\"",
        base_url(&gateway, request.headers())
    );
    let token = match bearer(request.headers()) {
        Ok(t) => t,
        Err(message) => {
            let response = unauthorized(Failure::unauthorized(message), &challenge);
            return after_reading(request, response).await;
        }
    };
    match gateway
        .authenticate_api(token.as_deref().map(String::as_str), client, &request_id)
        .await
    {
        Ok(caller) => {
            let Some(token) = token else {
                let response = unauthorized(
                    Failure::unauthorized(
                        "an MCP client must send `Authorization: Bearer <token>`",
                    ),
                    &challenge,
                );
                return after_reading(request, response).await;
            };
            request.extensions_mut().insert(McpCaller {
                caller,
                token: Arc::new(token),
            });
            next.run(request).await
        }
        Err(crate::identity::AuthFailure::Unavailable(e)) => {
            after_reading(request, Failure::from(e).into_response()).await
        }
        Err(e) => {
            let failure = Failure::from(e).with_hint(
                "sign in with OAuth (leave the header out) or give the MCP client your gateway \
                 API token as `Authorization: Bearer <token>` (docs/mcp.md)",
            );
            after_reading(request, unauthorized(failure, &challenge)).await
        }
    }
}

/// Answers a refused request only after reading its body (at most
/// [`MAX_REQUEST_BYTES`]), so the connection stays usable: a client that
/// sends its next request on it (an MCP client fetching the metadata the
/// 401 points at) would otherwise race the server closing a connection
/// whose body was left unread. A larger body gets `Connection: close`.
async fn after_reading(request: Request, mut response: Response) -> Response {
    if axum::body::to_bytes(request.into_body(), MAX_REQUEST_BYTES)
        .await
        .is_err()
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn unauthorized(failure: Failure, challenge: &str) -> Response {
    let mut response = failure.into_response();
    if let Ok(value) = HeaderValue::from_str(challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The bearer token, if any; a malformed header is an error that says so.
fn bearer(headers: &HeaderMap) -> Result<Option<zeroize::Zeroizing<String>>, String> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| "the Authorization header is not ASCII".to_string())?;
    let (scheme, token) = text
        .split_once(' ')
        .ok_or_else(|| "the Authorization header must be `Bearer <token>`".to_string())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "unsupported authorization scheme `{scheme}`: use `Bearer <token>`"
        ));
    }
    Ok(Some(zeroize::Zeroizing::new(token.trim().to_string())))
}
