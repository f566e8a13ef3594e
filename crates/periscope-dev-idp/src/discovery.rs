//! Discovery (OpenID Connect Discovery 1.0, RFC 8414 fields) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::authorize::SCOPES;
use crate::state::Shared;
use crate::token::DEVICE_GRANT;

/// `GET /.well-known/openid-configuration`.
pub(crate) async fn configuration(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let mut claims: Vec<String> = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "azp",
        "at_hash",
        "email",
        "email_verified",
        "name",
        "preferred_username",
        "groups",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect();
    {
        let inner = shared.lock();
        for user in inner.users.values() {
            for name in user.extra_claims.keys() {
                if !claims.contains(name) {
                    claims.push(name.clone());
                }
            }
        }
    }
    Json(json!({
        "issuer": shared.issuer,
        "authorization_endpoint": shared.url("/authorize"),
        "token_endpoint": shared.url("/token"),
        "device_authorization_endpoint": shared.url("/device_authorization"),
        "userinfo_endpoint": shared.url("/userinfo"),
        "jwks_uri": shared.url("/jwks"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// `GET /jwks`: the published public keys.
pub(crate) async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let set = shared.lock().keys.jwks();
    let mut response = Json(set).into_response();
    // Short, so a relying party that honours caching still sees a rotation
    // within a test; rotation tests refetch explicitly anyway.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
