//! The token endpoint: authorization code (PKCE), device code and refresh
//! token grants, client authentication, and the issuance they share.
//!
//! Errors follow RFC 6749 §5.2 (JSON `error` and `error_description`, 400,
//! or 401 with `WWW-Authenticate` for a failed client authentication);
//! every response is `Cache-Control: no-store`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::clock::ms;
use crate::id_token::{self, IdTokenInput};
use crate::model::Client;
use crate::secret;
use crate::state::{AccessGrant, Authn, DeviceStatus, RefreshGrant, Shared};

pub(crate) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An OAuth error response.
#[derive(Debug)]
pub(crate) struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    pub(crate) fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else if error == "server_error" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }
}

impl From<crate::IdpError> for OAuthError {
    fn from(e: crate::IdpError) -> Self {
        OAuthError::new("server_error", e.to_string())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        no_store(headers);
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"periscope-dev-idp\""),
            );
        }
        response
    }
}

pub(crate) fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Form parameters, each at most once (RFC 6749 §3.1, §3.2).
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn parse(
        form: Result<Form<Vec<(String, String)>>, FormRejection>,
    ) -> Result<Self, OAuthError> {
        let Form(pairs) = form.map_err(|e| {
            OAuthError::new(
                "invalid_request",
                format!("expected an application/x-www-form-urlencoded body: {e}"),
            )
        })?;
        let mut map = HashMap::new();
        for (name, value) in pairs {
            if map.contains_key(&name) {
                return Err(OAuthError::new(
                    "invalid_request",
                    format!("parameter {name:?} appears more than once"),
                ));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::new("invalid_request", format!("missing {name}")))
    }
}

/// Authenticates the client: `client_secret_basic`, `client_secret_post`,
/// or a public client by `client_id` alone. Using two methods at once is
/// refused (RFC 6749 §2.3).
pub(crate) fn authenticate_client(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let fail = |why: &str| OAuthError::new("invalid_client", why.to_string());
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => Some(
            parse_basic(value)
                .ok_or_else(|| fail("the Authorization header is not valid client_secret_basic"))?,
        ),
        None => None,
    };
    let posted_secret = params.get("client_secret");
    let (id, secret) = match (basic, posted_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "client authenticated twice (Authorization header and client_secret)",
            ));
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|posted| posted != id) {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id differs from the authenticated client",
                ));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| fail("no client authentication and no client_id"))?;
            (id.to_string(), secret.map(str::to_string))
        }
    };
    let inner = shared.lock();
    let client = inner
        .clients
        .get(&id)
        .ok_or_else(|| fail("unknown client"))?;
    match (&client.secret, secret) {
        (Some(registered), Some(presented)) if secret::secrets_match(&presented, registered) => {}
        (Some(_), Some(_)) => return Err(fail("wrong client secret")),
        (Some(_), None) => return Err(fail("this client must authenticate with its secret")),
        (None, None) => {}
        (None, Some(_)) => return Err(fail("this client is public and has no secret")),
    }
    Ok(client.clone())
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?;
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `POST /token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Response, OAuthError> {
    let params = Params::parse(form)?;
    let client = authenticate_client(&shared, &headers, &params)?;
    let authn = match params.require("grant_type")? {
        "authorization_code" => redeem_code(&shared, &client, &params)?,
        DEVICE_GRANT => redeem_device_code(&shared, &client, &params)?,
        "refresh_token" => redeem_refresh_token(&shared, &client, &params)?,
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant type {other:?} is not supported"),
            ));
        }
    };
    let code_digest = (params.get("grant_type") == Some("authorization_code"))
        .then(|| params.get("code").map(secret::digest))
        .flatten();
    issue(&shared, &authn, code_digest)
}

fn redeem_code(shared: &Shared, client: &Client, params: &Params) -> Result<Authn, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.require("redirect_uri")?;
    let verifier = params.get("code_verifier");
    let invalid = |why: &str| OAuthError::new("invalid_grant", why.to_string());
    let now = shared.clock.now_ms();
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let grant = inner
        .codes
        .get_mut(&secret::digest(code))
        .ok_or_else(|| invalid("unknown or expired authorization code"))?;
    if grant.used {
        // A replay: the code may have been stolen, so what it issued goes too.
        let issued = std::mem::take(&mut grant.issued);
        for digest in issued {
            inner.access.remove(&digest);
            inner.refresh.remove(&digest);
        }
        return Err(invalid(
            "authorization code already used; the tokens it issued are revoked",
        ));
    }
    if grant.expires_ms <= now {
        return Err(invalid("authorization code expired"));
    }
    if grant.authn.client_id != client.id {
        return Err(invalid("authorization code was issued to another client"));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(invalid(
            "redirect_uri differs from the one in the authorization request",
        ));
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::new(
            "invalid_request",
            "missing code_verifier (PKCE is required)",
        ));
    };
    if !secret::pkce_verifies(verifier, &grant.code_challenge) {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    grant.used = true;
    Ok(grant.authn.clone())
}

fn redeem_device_code(
    shared: &Shared,
    client: &Client,
    params: &Params,
) -> Result<Authn, OAuthError> {
    let device_code = params.require("device_code")?;
    let now = shared.clock.now_ms();
    let mut inner = shared.lock();
    let grant = inner
        .devices
        .get_mut(&secret::digest(device_code))
        .ok_or_else(|| OAuthError::new("invalid_grant", "unknown device code"))?;
    if grant.client_id != client.id {
        return Err(OAuthError::new(
            "invalid_grant",
            "device code was issued to another client",
        ));
    }
    if grant.expires_ms <= now {
        return Err(OAuthError::new(
            "expired_token",
            "the device code has expired",
        ));
    }
    let last_poll = grant.last_poll_ms.replace(now);
    match grant.status.clone() {
        DeviceStatus::Pending => {
            if last_poll.is_some_and(|last| now.saturating_sub(last) < grant.interval_ms) {
                grant.interval_ms += 5000;
                return Err(OAuthError::new(
                    "slow_down",
                    format!(
                        "polling too fast; wait {} s between requests",
                        grant.interval_ms / 1000
                    ),
                ));
            }
            Err(OAuthError::new(
                "authorization_pending",
                "the user has not approved this device yet",
            ))
        }
        DeviceStatus::Denied => Err(OAuthError::new(
            "access_denied",
            "the user denied this device",
        )),
        DeviceStatus::Redeemed => Err(OAuthError::new("invalid_grant", "device code already used")),
        DeviceStatus::Approved { sub, auth_time } => {
            grant.status = DeviceStatus::Redeemed;
            Ok(Authn {
                sub,
                client_id: grant.client_id.clone(),
                scopes: grant.scopes.clone(),
                nonce: None,
                auth_time,
            })
        }
    }
}

fn redeem_refresh_token(
    shared: &Shared,
    client: &Client,
    params: &Params,
) -> Result<Authn, OAuthError> {
    let token = params.require("refresh_token")?;
    let now = shared.clock.now_ms();
    let mut inner = shared.lock();
    let digest = secret::digest(token);
    let grant = inner
        .refresh
        .get(&digest)
        .ok_or_else(|| OAuthError::new("invalid_grant", "unknown or used refresh token"))?;
    if grant.authn.client_id != client.id {
        return Err(OAuthError::new(
            "invalid_grant",
            "refresh token was issued to another client",
        ));
    }
    if grant.expires_ms <= now {
        return Err(OAuthError::new("invalid_grant", "refresh token expired"));
    }
    let mut authn = grant.authn.clone();
    if let Some(asked) = params.get("scope") {
        let asked: Vec<String> = asked.split(' ').map(str::to_string).collect();
        if let Some(extra) = asked.iter().find(|s| !authn.scopes.contains(s)) {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope {extra:?} was not granted originally"),
            ));
        }
        authn.scopes = asked;
    }
    // Rotation: the token is spent; a new one comes with the response.
    inner.refresh.remove(&digest);
    // A refreshed ID token carries no nonce (OIDC Core §12.2).
    authn.nonce = None;
    Ok(authn)
}

/// Issues an access token, a refresh token and an ID token for `authn`,
/// reading the user as they are now (changed groups show up; a removed
/// user gets `invalid_grant`).
fn issue(
    shared: &Shared,
    authn: &Authn,
    from_code: Option<[u8; 32]>,
) -> Result<Response, OAuthError> {
    let access_token = secret::random_token()?;
    let refresh_token = secret::random_token()?;
    let now_ms = shared.clock.now_ms();
    let settings = &shared.settings;
    let (user, key, faults) = {
        let mut inner = shared.lock();
        inner.prune(now_ms);
        let user = inner
            .user_by_sub(&authn.sub)
            .cloned()
            .ok_or_else(|| OAuthError::new("invalid_grant", "the user no longer exists"))?;
        let access_digest = secret::digest(&access_token);
        let refresh_digest = secret::digest(&refresh_token);
        inner.access.insert(
            access_digest,
            AccessGrant {
                authn: authn.clone(),
                expires_ms: now_ms + ms(settings.access_token_ttl),
            },
        );
        inner.refresh.insert(
            refresh_digest,
            RefreshGrant {
                authn: authn.clone(),
                expires_ms: now_ms + ms(settings.refresh_token_ttl),
            },
        );
        if let Some(code) = from_code.and_then(|d| inner.codes.get_mut(&d)) {
            code.issued = vec![access_digest, refresh_digest];
        }
        (user, inner.keys.current(), inner.take_faults())
    };
    let input = IdTokenInput {
        issuer: &shared.issuer,
        user: &user,
        authn,
        access_token: &access_token,
        now_secs: now_ms / 1000,
        ttl_secs: settings.id_token_ttl.as_secs(),
        faults: &faults,
    };
    // Signing is a millisecond or so of CPU (optimised): done inline rather
    // than on a blocking thread, which a current-thread test runtime lacks.
    let id_token = id_token::sign(&input, &key)?;
    let body: Value = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl.as_secs(),
        "refresh_token": refresh_token,
        "id_token": id_token,
        "scope": authn.scopes.join(" "),
    });
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}
