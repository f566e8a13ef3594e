//! The authorization endpoint: code flow with PKCE S256 only.
//!
//! Until the client and its redirect URI are known good, errors are shown as
//! a page, never redirected (RFC 6749 §4.1.2.1: no open redirector); after
//! that they go back to the client with `error`, `state` and `iss`
//! (RFC 9207). The user is chosen by `login_hint` (user name, subject or
//! email): with it the request is approved at once, which is what a test
//! without a browser needs; without it, the sign-in page asks, and posts the
//! same parameters back here with the chosen `login_hint`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::clock::ms;
use crate::html;
use crate::secret;
use crate::state::{Authn, CodeGrant, Shared};

/// The scopes this provider knows; others are ignored, as RFC 6749 §3.3 allows.
pub(crate) const SCOPES: &[&str] = &["openid", "email", "profile", "groups", "offline_access"];

/// `GET /authorize`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(pairs)) => authorize(&shared, pairs),
        Err(e) => html::error_page(StatusCode::BAD_REQUEST, &format!("bad query string: {e}")),
    }
}

/// `POST /authorize` (the sign-in page's form, or a client posting its request).
pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    match form {
        Ok(Form(pairs)) => authorize(&shared, pairs),
        Err(e) => html::error_page(StatusCode::BAD_REQUEST, &format!("bad form: {e}")),
    }
}

fn authorize(shared: &Shared, pairs: Vec<(String, String)>) -> Response {
    let mut params: HashMap<&str, &str> = HashMap::new();
    for (name, value) in &pairs {
        if params.insert(name, value).is_some() {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                &format!("parameter {name:?} appears more than once"),
            );
        }
    }
    let param = |name: &str| params.get(name).copied().filter(|v| !v.is_empty());

    let Some(client_id) = param("client_id") else {
        return html::error_page(StatusCode::BAD_REQUEST, "missing client_id");
    };
    let Some(redirect_uri) = param("redirect_uri") else {
        return html::error_page(StatusCode::BAD_REQUEST, "missing redirect_uri");
    };
    {
        let inner = shared.lock();
        let Some(client) = inner.clients.get(client_id) else {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                &format!("unknown client_id {client_id:?}"),
            );
        };
        if !client.accepts_redirect(redirect_uri) {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                &format!(
                    "redirect_uri {redirect_uri:?} is not registered for client {client_id:?}"
                ),
            );
        }
    }

    // From here on the redirect URI is trusted: errors go back to the client.
    let state = param("state");
    let back = |error: &str, description: &str| {
        redirect(
            redirect_uri,
            &[
                ("error", error),
                ("error_description", description),
                ("iss", &shared.issuer),
            ],
            state,
        )
    };
    if param("response_type") != Some("code") {
        return back(
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    let requested: Vec<&str> = param("scope").unwrap_or("").split(' ').collect();
    if !requested.contains(&"openid") {
        return back("invalid_scope", "scope must include openid");
    }
    let scopes: Vec<String> = SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| s.to_string())
        .collect();
    let Some(challenge) = param("code_challenge") else {
        return back(
            "invalid_request",
            "PKCE is required: missing code_challenge",
        );
    };
    if param("code_challenge_method") != Some("S256") {
        return back(
            "invalid_request",
            "code_challenge_method must be S256 (plain is not accepted)",
        );
    }
    if !secret::valid_s256_challenge(challenge) {
        return back(
            "invalid_request",
            "code_challenge is not base64url of a SHA-256 digest",
        );
    }
    if param("decision") == Some("deny") {
        return back("access_denied", "the user cancelled the sign-in");
    }

    let now_ms = shared.clock.now_ms();
    let mut inner = shared.lock();
    let user = match param("login_hint") {
        Some(hint) => match inner.find_user(hint) {
            Some(user) => user.clone(),
            None => {
                let known: Vec<&str> = inner.users.keys().map(String::as_str).collect();
                return html::error_page(
                    StatusCode::BAD_REQUEST,
                    &format!("no user {hint:?}; known users: {}", known.join(", ")),
                );
            }
        },
        None if param("prompt") == Some("none") => {
            return back("login_required", "prompt=none and no login_hint");
        }
        None => {
            let users: Vec<_> = inner.users.values().cloned().collect();
            return html::login_page(client_id, &pairs, &users);
        }
    };

    let code = match secret::random_token() {
        Ok(code) => code,
        Err(e) => return back("server_error", &e.to_string()),
    };
    inner.prune(now_ms);
    inner.codes.insert(
        secret::digest(&code),
        CodeGrant {
            authn: Authn {
                sub: user.sub,
                client_id: client_id.to_string(),
                scopes,
                nonce: param("nonce").map(str::to_string),
                auth_time: now_ms / 1000,
            },
            redirect_uri: redirect_uri.to_string(),
            code_challenge: challenge.to_string(),
            expires_ms: now_ms + ms(shared.settings.code_ttl),
            used: false,
            issued: Vec::new(),
        },
    );
    drop(inner);
    redirect(
        redirect_uri,
        &[("code", &code), ("iss", &shared.issuer)],
        state,
    )
}

/// A 302 to the client's redirect URI with these parameters (and `state`)
/// added to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        // Registered URIs are checked at start; a loopback match is too.
        return html::error_page(StatusCode::BAD_REQUEST, "redirect_uri is not a URL");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => html::error_page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not a valid header",
        ),
    }
}
