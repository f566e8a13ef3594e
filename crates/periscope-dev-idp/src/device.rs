//! The device authorization grant (RFC 8628): the device asks for a code
//! (`POST /device_authorization`), a person approves it on `/device`, and
//! the device polls the token endpoint (see `token.rs`).
//!
//! `/device` serves people and tests alike: `GET /device` shows the form,
//! `GET /device?user_code=X` pre-fills it (`verification_uri_complete`), and
//! `user_code` together with `user` (by GET or POST) decides at once, with
//! `action=deny` to refuse.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::authorize::SCOPES;
use crate::clock::ms;
use crate::html;
use crate::secret;
use crate::state::{DeviceGrant, DeviceStatus, Shared};
use crate::token::{OAuthError, Params, authenticate_client, no_store};

/// `POST /device_authorization`.
pub(crate) async fn device_authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let params = Params::parse(form)?;
    let client = authenticate_client(&shared, &headers, &params)?;
    let requested: Vec<&str> = params.get("scope").unwrap_or("").split(' ').collect();
    if !requested.contains(&"openid") {
        return Err(OAuthError::new(
            "invalid_scope",
            "scope must include openid",
        ));
    }
    let scopes = SCOPES
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| s.to_string())
        .collect();
    let device_code = secret::random_token()?;
    let now_ms = shared.clock.now_ms();
    let settings = &shared.settings;
    let user_code = {
        let mut inner = shared.lock();
        inner.prune(now_ms);
        // Eight letters from twenty: a collision among live codes is
        // unlikely, but cheap to rule out.
        let mut user_code = secret::user_code()?;
        while inner
            .user_codes
            .contains_key(&secret::normalise_user_code(&user_code))
        {
            user_code = secret::user_code()?;
        }
        let digest = secret::digest(&device_code);
        inner
            .user_codes
            .insert(secret::normalise_user_code(&user_code), digest);
        inner.devices.insert(
            digest,
            DeviceGrant {
                client_id: client.id,
                scopes,
                expires_ms: now_ms + ms(settings.device_code_ttl),
                interval_ms: ms(settings.device_poll_interval),
                last_poll_ms: None,
                status: DeviceStatus::Pending,
            },
        );
        user_code
    };
    let verification_uri = shared.url("/device");
    let body = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": settings.device_code_ttl.as_secs(),
        "interval": settings.device_poll_interval.as_secs(),
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// `GET /device`.
pub(crate) async fn page_get(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(params)) => verify(&shared, &params),
        Err(e) => html::error_page(StatusCode::BAD_REQUEST, &format!("bad query string: {e}")),
    }
}

/// `POST /device`.
pub(crate) async fn page_post(
    State(shared): State<Arc<Shared>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    match form {
        Ok(Form(params)) => verify(&shared, &params),
        Err(e) => html::error_page(StatusCode::BAD_REQUEST, &format!("bad form: {e}")),
    }
}

fn verify(shared: &Shared, params: &HashMap<String, String>) -> Response {
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let users = || shared.lock().users.values().cloned().collect::<Vec<_>>();
    let (Some(typed_code), Some(username)) = (param("user_code"), param("user")) else {
        return html::device_page(param("user_code"), &users(), None);
    };
    let deny = match param("action") {
        None | Some("approve") => false,
        Some("deny") => true,
        Some(other) => {
            return html::device_page(
                Some(typed_code),
                &users(),
                Some(&format!("unknown action {other:?}")),
            );
        }
    };
    let now_ms = shared.clock.now_ms();
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let Some(user) = inner.find_user(username).cloned() else {
        let users: Vec<_> = inner.users.values().cloned().collect();
        return html::device_page(
            Some(typed_code),
            &users,
            Some(&format!("no user {username:?}")),
        );
    };
    let grant = inner
        .user_codes
        .get(&secret::normalise_user_code(typed_code))
        .and_then(|digest| inner.devices.get_mut(digest));
    let error = match grant {
        None => Some("unknown code; check it and try again"),
        Some(g) if g.expires_ms <= now_ms => {
            Some("this code has expired; start again on your device")
        }
        Some(g) if g.status != DeviceStatus::Pending => Some("this code has already been used"),
        Some(g) => {
            g.status = if deny {
                DeviceStatus::Denied
            } else {
                DeviceStatus::Approved {
                    sub: user.sub.clone(),
                    auth_time: now_ms / 1000,
                }
            };
            None
        }
    };
    if let Some(error) = error {
        let users: Vec<_> = inner.users.values().cloned().collect();
        return html::device_page(Some(typed_code), &users, Some(error));
    }
    drop(guard);
    let message = if deny {
        "Access denied. Your device will be told.".to_string()
    } else {
        format!(
            "Device approved for {}. You can return to your device.",
            user.username
        )
    };
    html::page(
        StatusCode::OK,
        if deny {
            "Device denied"
        } else {
            "Device approved"
        },
        &format!("<p id=\"result\">{}</p>", html::escape(&message)),
    )
}
