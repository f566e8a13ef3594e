//! `/userinfo`: the user's claims, as they are now, for a bearer access
//! token (RFC 6750 errors in `WWW-Authenticate`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::id_token::user_claims;
use crate::secret;
use crate::state::Shared;

/// `GET` or `POST /userinfo` with `Authorization: Bearer <access token>`.
pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return unauthorized("Bearer realm=\"periscope-dev-idp\"");
    };
    let now_ms = shared.clock.now_ms();
    let inner = shared.lock();
    let claims = inner
        .access
        .get(&secret::digest(token))
        .filter(|grant| grant.expires_ms > now_ms)
        .and_then(|grant| {
            let user = inner.user_by_sub(&grant.authn.sub)?;
            Some(user_claims(user, &grant.authn))
        });
    drop(inner);
    match claims {
        Some(claims) => {
            let mut response = (StatusCode::OK, axum::Json(Value::Object(claims))).into_response();
            crate::token::no_store(response.headers_mut());
            response
        }
        None => unauthorized(
            "Bearer realm=\"periscope-dev-idp\", error=\"invalid_token\", \
             error_description=\"unknown, expired or revoked access token\"",
        ),
    }
}

fn unauthorized(challenge: &'static str) -> Response {
    let mut response = StatusCode::UNAUTHORIZED.into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}
