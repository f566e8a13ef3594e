//! The HTTPS API (`docs/api.md`): routes, bearer authentication, request ids
//! and the one error shape.
//!
//! Every error leaves through [`Failure`]'s rendering or is normalised into it
//! by the request-context layer, so clients always get
//! `{"error": {"code", "message", "hint", "request_id"}}`, including for 404,
//! 405 and malformed JSON bodies.

mod admin;
pub(crate) mod audit;
mod discover;
mod exec;
mod failure;
mod handlers;
mod logs;
mod recordings;
mod shell;
mod sso;
mod stream;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use periscope_api::{ApiError, ErrorBody};

use crate::client_addr::ClientAddr;
use crate::gateway::Gateway;
use crate::identity::random_bytes;
pub use failure::Failure;

pub(crate) use admin::{
    admin_create_user, admin_list_tokens, admin_list_users, admin_reload, admin_revoke_token,
    admin_update_user, disabled_notice, mint_api_token as admin_create_token,
};

/// The handler of `POST /v1/exec`, for the MCP server's `exec` tool, which
/// runs commands through the very same path.
pub(crate) use exec::exec as exec_handler;
pub(crate) use handlers::connection_summaries;
pub(crate) use logs::logs as logs_handler;
pub(crate) use sso::landing_path;

/// Header carrying the request id, generated or echoed.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Largest error body from a built-in rejection that is turned into a message.
const MAX_REJECTION_BODY: usize = 16 * 1024;

/// Marks a response whose body is meant for a person (an HTML page, a
/// redirect): the error normaliser leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnBody;

/// The request id of the current call.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The router with every route, served by `start`: the API's, plus `pages`
/// (the web console's, composed by the server so that the API knows
/// nothing of it), all behind the same request-context layer.
pub fn router(gateway: Gateway, pages: Router<Gateway>) -> Router {
    let mut v1: Router<Gateway> = Router::new()
        .route("/v1/whoami", get(handlers::whoami))
        .route("/v1/connections", get(handlers::connections))
        .route("/v1/connect", post(handlers::connect))
        .route("/v1/exec", post(exec::exec))
        .route("/v1/logs", post(logs::logs))
        .route("/v1/shell", get(shell::shell))
        .route("/v1/recordings", get(recordings::list))
        .route("/v1/recordings/{id}", get(recordings::get))
        .route("/v1/policy/explain", get(handlers::explain))
        .route(
            "/v1/requests",
            get(handlers::list_requests).post(handlers::create_request),
        )
        .route("/v1/requests/{id}", get(handlers::get_request))
        .route("/v1/requests/{id}/approve", post(handlers::approve))
        .route("/v1/requests/{id}/deny", post(handlers::deny))
        .route("/v1/requests/{id}/cancel", post(handlers::cancel))
        .route("/v1/grants", get(handlers::list_grants))
        .route("/v1/grants/{id}", get(handlers::get_grant))
        .route("/v1/grants/{id}/revoke", post(handlers::revoke))
        .route("/v1/audit/events", get(audit::events))
        .route("/v1/audit/export", get(audit::export))
        .route("/v1/audit/verify", post(audit::verify))
        .route("/v1/audit/public-key", get(audit::public_key))
        .route(
            "/v1/admin/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route("/v1/admin/users/{name}", patch(admin::update_user))
        .route(
            "/v1/admin/users/{name}/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/v1/admin/discover", post(discover::discover))
        .route("/v1/admin/discover/{connection}", get(discover::tags))
        .route(
            "/v1/admin/discover/{connection}/dismiss",
            post(discover::dismiss),
        )
        .route("/v1/sessions", get(admin::sessions))
        .route("/v1/admin/sessions/{id}/end", post(admin::end_session));
    if gateway.test_clock().is_some() {
        v1 = v1.route("/v1/test/clock", post(admin::advance_clock));
    }
    let v1 = v1.route_layer(middleware::from_fn_with_state(
        gateway.clone(),
        authenticate,
    ));
    Router::new()
        .route("/sso/login", get(sso::login))
        .route("/sso/callback", get(sso::callback))
        .route("/sso/logout", post(sso::logout))
        .route("/sso/session", get(sso::session))
        .route("/v1/sso/providers", get(sso::providers))
        .route("/v1/sso/cli/start", post(sso::cli_start))
        .route("/v1/sso/cli/token", post(sso::cli_token))
        .route("/v1/sso/device/start", post(sso::device_start))
        .route("/v1/sso/device/poll", post(sso::device_poll))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .merge(v1)
        .merge(pages)
        .fallback(not_found)
        .layer(middleware::from_fn(request_context))
        .with_state(gateway)
}

async fn not_found(request: Request) -> Failure {
    Failure::not_found(format!(
        "no route {} {}",
        request.method(),
        request.uri().path()
    ))
    .with_hint("docs/api.md lists the routes")
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = error_body(&self, None);
        let mut response = (status, axum::Json(body)).into_response();
        // The request-context middleware re-renders it with the request id.
        response.extensions_mut().insert(self);
        response
    }
}

fn error_body(failure: &Failure, request_id: Option<&str>) -> ErrorBody {
    ErrorBody {
        error: ApiError {
            code: failure.code.to_string(),
            message: failure.message.clone(),
            hint: failure.hint.clone(),
            request_id: request_id.map(str::to_owned),
        },
    }
}

fn valid_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| text.to_string())
}

/// Outermost layer: request id, tracing span, the one error shape, metrics.
async fn request_context(mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(valid_request_id)
        .unwrap_or_else(|| hex::encode(random_bytes::<10>()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let span = tracing::info_span!(
        "api",
        request_id = %request_id,
        method = %request.method(),
        route = %route,
    );
    let response = {
        let _enter = span.enter();
        tracing::debug!(path = %request.uri().path(), "request");
        drop(_enter);
        tracing::Instrument::instrument(next.run(request), span.clone()).await
    };
    let status = response.status();
    let own_body = response.extensions().get::<OwnBody>().is_some();
    let mut response = if !own_body && (status.is_client_error() || status.is_server_error()) {
        normalise_error(response, &request_id).await
    } else {
        response
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    crate::metrics::http_request(&route, response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), "served");
    });
    response
}

/// Renders any error response in the one shape, with the request id,
/// keeping its other headers (`Allow`, `WWW-Authenticate`).
async fn normalise_error(response: Response, request_id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let failure = match parts.extensions.get::<Failure>() {
        Some(f) => f.clone(),
        None => {
            // A built-in rejection (bad JSON, bad query, 405...): keep its text
            // as the message, it says what was wrong.
            let bytes = axum::body::to_bytes(body, MAX_REJECTION_BODY)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).trim().to_string();
            let message = if text.is_empty() {
                match parts.status {
                    StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".into(),
                    s => s
                        .canonical_reason()
                        .unwrap_or("request failed")
                        .to_lowercase(),
                }
            } else {
                text
            };
            let mut failure = Failure::from_status(parts.status.as_u16(), message);
            if parts.status == StatusCode::METHOD_NOT_ALLOWED {
                // Keep 405 itself: clients and proxies understand it.
                failure.status = 405;
            }
            failure
        }
    };
    parts.status =
        StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let json = serde_json::to_vec(&error_body(&failure, Some(request_id)))
        .expect("error bodies serialise");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.extensions.insert(failure);
    Response::from_parts(parts, Body::from(json))
}

/// `/v1/*`: a valid API token, or a browser session cookie (with its CSRF
/// token on any state-changing method), is required; the caller goes into
/// the request.
async fn authenticate(
    State(gateway): State<Gateway>,
    mut request: Request,
    next: Next,
) -> Response {
    let bearer = bearer_token(request.headers());
    let client = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0.0);
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let token = match bearer {
        Err(failure) => return failure.into_response(),
        Ok(token) => token,
    };
    if token.is_none()
        && let Some(cookie) = crate::websession::session_cookie(request.headers())
    {
        let cookie = cookie.to_string();
        return match gateway.web_session(&cookie).await {
            Ok(web) => {
                let safe = matches!(
                    *request.method(),
                    axum::http::Method::GET
                        | axum::http::Method::HEAD
                        | axum::http::Method::OPTIONS
                );
                let presented = request
                    .headers()
                    .get(crate::websession::CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !safe && !gateway.csrf_ok(&web.session_id, presented) {
                    return Failure::forbidden(format!(
                        "a request made with a browser session must carry its CSRF token in \
                         the `{}` header",
                        crate::websession::CSRF_HEADER
                    ))
                    .into_response();
                }
                request.extensions_mut().insert(web.caller.clone());
                request.extensions_mut().insert(web);
                next.run(request).await
            }
            Err(crate::websession::WebSessionFailure::Unavailable(e)) => {
                Failure::from(e).into_response()
            }
            Err(e) => Failure::unauthorized(e.to_string())
                .with_hint("sign in again at /sso/login")
                .into_response(),
        };
    }
    match gateway
        .authenticate_api(token.as_deref(), client, &request_id)
        .await
    {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(e) => {
            let mut response = Failure::from(e).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"periscope\""),
            );
            response
        }
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<Option<String>, Failure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Failure::unauthorized("the Authorization header is not ASCII"))?;
    let (scheme, token) = text.split_once(' ').ok_or_else(|| {
        Failure::unauthorized("the Authorization header must be `Bearer <token>`")
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Failure::unauthorized(format!(
            "unsupported authorization scheme `{scheme}`: use `Bearer <token>`"
        )));
    }
    Ok(Some(token.trim().to_string()))
}

/// A JSON body whose rejection is our error shape (the message is serde's).
pub(crate) fn json_ok<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    (status, axum::Json(value)).into_response()
}

/// Plain body helper for non-JSON responses.
pub(crate) fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
