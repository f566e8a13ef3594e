//! Browser sessions: a server-side session in the store behind a cookie.
//!
//! Single sign-on creates one after a web sign-in; the web console creates
//! one after its own sign-in with an API token. Both use this API:
//!
//! - [`Gateway::start_web_session`]`(identity, method, client)`: creates the
//!   session for an identity already authenticated (by SSO or a token) and
//!   returns a [`StartedWebSession`] with the `Set-Cookie` value
//!   ([`StartedWebSession::set_cookie`]) and the session's CSRF token.
//! - [`Gateway::web_session`]`(cookie value)` → [`WebCaller`]: looks the
//!   cookie up and yields the [`Caller`] (identity and roles as stored now),
//!   the session id and its CSRF token; [`session_cookie`] reads the cookie
//!   from request headers. A session past its idle or absolute timeout, or
//!   whose identity was disabled, is refused (and recorded as ended).
//! - [`Gateway::end_web_session`]`(session id, actor, reason)`: sign-out.
//!   [`clear_session_cookie`] is the `Set-Cookie` value that removes it.
//! - [`Gateway::csrf_ok`]`(session id, presented)`: every state-changing
//!   request made with the cookie (any method but GET, HEAD, OPTIONS) must
//!   carry the session's CSRF token, in the [`CSRF_HEADER`] header (htmx,
//!   fetch) or a [`CSRF_FIELD`] form field. The `/v1` API accepts the cookie
//!   in place of a bearer token under that rule.
//!
//! **Cookie.** `__Host-periscope_session=<session id>.<secret>; Path=/;
//! Secure; HttpOnly; SameSite=Lax`. `__Host-` makes the browser refuse it
//! unless it is `Secure`, host-only and for `/`, so a sibling sub-domain
//! cannot plant or shadow it; `HttpOnly` keeps it from scripts. The secret
//! is 256 random bits of which the store keeps only the keyed hash
//! (`keys/token-hmac.key`), compared in constant time, like API tokens.
//!
//! **Why `SameSite=Lax`, not `Strict`.** Strict would withhold the cookie on
//! every navigation that starts on another site: the first page after the
//! identity provider's redirect, and every link to the console from chat or
//! email (an approval request) would look signed out. Lax still withholds it
//! from cross-site POSTs, frames, images and fetches, and the per-session
//! CSRF token covers what Lax does not (a same-site page, or a browser that
//! ignores SameSite), so no state changes on a cookie alone.
//!
//! **CSRF token.** `HMAC-SHA-256(key, "csrf" || session id)`, derived rather
//! than stored: it is constant for the session, unguessable without the
//! gateway's key, and dies with the session.
//!
//! **Timeouts.** Absolute (`[sso] session_lifetime`, 12 h by default) and
//! idle (`session_idle_timeout`, 1 h); the last use is recorded at most once
//! a minute. Disabling the identity ends its sessions at once.

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use periscope_audit::{AuditTime, actions};
use periscope_store::{NewWebSession, StoreError, WebSessionRecord};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::gateway::{Caller, Gateway};
use crate::identity::{random_bytes, random_id};

/// The session cookie's name (`__Host-`: secure, host-only, path `/`).
pub const SESSION_COOKIE: &str = "__Host-periscope_session";
/// Header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token (plain HTML forms).
pub const CSRF_FIELD: &str = "csrf_token";
/// Why a session ended: its owner signed out.
pub const END_SIGN_OUT: &str = "sign_out";
/// Why a session ended: unused for longer than the idle timeout.
pub const END_IDLE: &str = "idle";
/// Why a session ended: its absolute lifetime is over.
pub const END_EXPIRED: &str = "expired";
/// Why a session ended: its identity was disabled.
pub const END_DISABLED: &str = "identity_disabled";

/// A session just created: what the response sets, shown once.
pub struct StartedWebSession {
    /// The public id (`ws_...`), for audit and logs.
    pub session_id: String,
    /// The cookie's value (`<id>.<secret>`); never logged.
    pub cookie: Zeroizing<String>,
    /// The session's CSRF token, to embed in pages.
    pub csrf_token: String,
    /// The absolute end.
    pub expires_at: OffsetDateTime,
    max_age: u64,
}

impl std::fmt::Debug for StartedWebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartedWebSession")
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl StartedWebSession {
    /// The `Set-Cookie` header value that installs the session.
    pub fn set_cookie(&self) -> HeaderValue {
        let text = Zeroizing::new(format!(
            "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
            self.cookie.as_str(),
            self.max_age
        ));
        let mut value = HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("__Host-periscope_session=; Max-Age=0"));
        value.set_sensitive(true);
        value
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "__Host-periscope_session=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
    )
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The session cookie of a request, if it sent one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty())
}

/// A request made with a valid session cookie.
#[derive(Debug, Clone)]
pub struct WebCaller {
    /// Who is calling, as stored now (`token_id` is the session id,
    /// `token_expires_at` its absolute end).
    pub caller: Caller,
    /// The session's public id.
    pub session_id: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// How the session signed in (`sso:okta`, `token`).
    pub method: String,
}

/// Why a session cookie was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WebSessionFailure {
    /// The value is not `<id>.<secret>`, or no such session, or the secret
    /// is wrong: told apart only in logs.
    #[error("not signed in: the session is unknown")]
    Unknown,
    /// The session ended (`reason`: sign_out, idle, expired, identity_disabled).
    #[error("the session ended ({reason}): sign in again")]
    Ended {
        /// Why.
        reason: String,
    },
    /// The store could not be asked.
    #[error("sessions are unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

impl Gateway {
    fn web_session_lifetimes(&self) -> (std::time::Duration, std::time::Duration) {
        let config = self.config();
        match &config.config.sso {
            Some(sso) => (sso.session_lifetime, sso.session_idle_timeout),
            None => (
                periscope_policy::sso::DEFAULT_SESSION_LIFETIME,
                periscope_policy::sso::DEFAULT_SESSION_IDLE,
            ),
        }
    }

    /// Creates a browser session for `identity`, already authenticated by
    /// `method` (`sso:<provider>`, `token`); audited as
    /// `auth.web_session.start`. The lifetimes come from `[sso]` (or its
    /// defaults).
    pub async fn start_web_session(
        &self,
        identity: &str,
        method: &str,
        client: Option<SocketAddr>,
    ) -> Result<StartedWebSession, StoreError> {
        let (lifetime, idle) = self.web_session_lifetimes();
        let now = self.now();
        let expires_at = now + lifetime;
        let expires = AuditTime::from_datetime(expires_at)
            .map_err(|e| StoreError::Invalid(format!("session expiry: {e}")))?;
        let session_id = random_id("ws_");
        let secret = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Zeroizing::new(random_bytes::<32>())),
        );
        let draft = self
            .draft(identity, actions::WEB_SESSION_START, &session_id)
            .with_details(json!({
                "method": method,
                "expires_at": expires,
                "idle_timeout_secs": idle.as_secs(),
                "client_addr": client.map(|a| a.to_string()),
            }));
        let started = Instant::now();
        self.store()
            .create_web_session(
                NewWebSession {
                    session_id: session_id.clone(),
                    secret_hash: self.hasher().hash_secret(&secret),
                    identity: identity.to_string(),
                    method: method.to_string(),
                    created_at: self.clock().audit_now(),
                    expires_at: expires,
                    idle_secs: i64::try_from(idle.as_secs()).unwrap_or(i64::MAX),
                },
                vec![draft],
            )
            .await?;
        self.count_audit(1, started);
        Ok(StartedWebSession {
            cookie: Zeroizing::new(format!("{session_id}.{}", secret.as_str())),
            csrf_token: self.csrf_token(&session_id),
            max_age: lifetime.as_secs(),
            session_id,
            expires_at,
        })
    }

    /// The caller behind a session cookie's value. Records a use at most
    /// once a minute; a session found past its timeouts is ended (audited)
    /// and refused.
    pub async fn web_session(&self, cookie: &str) -> Result<WebCaller, WebSessionFailure> {
        let Some((id, secret)) = cookie.split_once('.') else {
            return Err(WebSessionFailure::Unknown);
        };
        if !id.starts_with("ws_") || id.len() > 64 || secret.is_empty() || secret.len() > 128 {
            return Err(WebSessionFailure::Unknown);
        }
        let Some(record) = self.store().find_web_session(id).await? else {
            let _ = self.hasher().matches(secret, &[0; 32]);
            return Err(WebSessionFailure::Unknown);
        };
        if !self.hasher().matches(secret, &record.secret_hash) {
            tracing::info!(session = %id, "a session cookie with a wrong secret was refused");
            return Err(WebSessionFailure::Unknown);
        }
        if let Some(reason) = &record.end_reason {
            return Err(WebSessionFailure::Ended {
                reason: reason.clone(),
            });
        }
        let now = self.clock().audit_now();
        if let Some(reason) = Self::timed_out(&record, &now) {
            self.end_web_session(&record.session_id, "periscope", reason)
                .await?;
            return Err(WebSessionFailure::Ended {
                reason: reason.to_string(),
            });
        }
        if !record.identity.is_enabled() {
            self.end_web_session(&record.session_id, "periscope", END_DISABLED)
                .await?;
            return Err(WebSessionFailure::Ended {
                reason: END_DISABLED.to_string(),
            });
        }
        if record.needs_touch(&now)
            && let Err(e) = self
                .store()
                .touch_web_session(&record.session_id, &now)
                .await
        {
            tracing::warn!(error = %e, "could not record a session's use");
        }
        Ok(WebCaller {
            csrf_token: self.csrf_token(&record.session_id),
            caller: Caller {
                policy_identity: periscope_policy::Identity::from(&record.identity),
                token_expires_at: Some(record.expires_at.to_datetime()),
                token_id: record.session_id.clone(),
                identity: record.identity,
            },
            session_id: record.session_id,
            method: record.method,
        })
    }

    fn timed_out(record: &WebSessionRecord, now: &AuditTime) -> Option<&'static str> {
        if *now >= record.expires_at {
            return Some(END_EXPIRED);
        }
        match record.idle_deadline() {
            Some(deadline) if *now >= deadline => Some(END_IDLE),
            _ => None,
        }
    }

    /// Ends a session (`reason`: [`END_SIGN_OUT`]...) on behalf of `actor`;
    /// audited as `auth.web_session.end`. `false` when it had already ended.
    pub async fn end_web_session(
        &self,
        session_id: &str,
        actor: &str,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let draft = self
            .draft(actor, actions::WEB_SESSION_END, session_id)
            .with_details(json!({ "reason": reason }));
        let started = Instant::now();
        let ended = self
            .store()
            .end_web_session(session_id, &self.clock().audit_now(), reason, vec![draft])
            .await?;
        if ended {
            self.count_audit(1, started);
        }
        Ok(ended)
    }

    /// The CSRF token of session `session_id`.
    pub fn csrf_token(&self, session_id: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.hasher().derive("csrf", session_id))
    }

    /// Whether `presented` is session `session_id`'s CSRF token (constant
    /// time).
    pub fn csrf_ok(&self, session_id: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.csrf_token(session_id);
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-periscope_session=ws_1.abc ; c=3"),
        );
        assert_eq!(session_cookie(&headers), Some("ws_1.abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "z"), None);
        let empty = HeaderMap::new();
        assert_eq!(session_cookie(&empty), None);
    }

    #[test]
    fn the_cleared_cookie_keeps_the_prefix_rules() {
        let v = clear_session_cookie();
        let text = v.to_str().unwrap();
        for part in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=0"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
