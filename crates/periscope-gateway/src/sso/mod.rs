//! Single sign-on with OpenID Connect providers (`[sso]`).
//!
//! Three ways in, one way out: every sign-in ends in
//! [`signin`](self::signin): the ID token is verified ([`oidc`]), its claims
//! become an identity name, an email check and roles (the pure rules of
//! `periscope_policy::SsoProvider`), and the store creates the identity just
//! in time or recomputes its roles, in one transaction with its audit events.
//! What the sign-in yields is an ordinary credential, so the API and every
//! proxy check SSO identities exactly like local ones:
//!
//! - **web** (`GET /sso/login` → provider → `GET /sso/callback`): the
//!   authorization code flow with PKCE, `state` and `nonce`, ending in a
//!   browser session ([`crate::websession`]);
//! - **CLI** (`periscope login --sso`): the same code flow through the
//!   browser, the provider redirecting to the gateway, which hands a
//!   one-time code to the CLI's loopback address; the CLI trades it, with
//!   the PKCE verifier only it knows, for a gateway token (12 h by default);
//! - **device** (`periscope login --sso --device`): the device
//!   authorization grant, polled by the gateway on the CLI's behalf, ending
//!   in the same gateway token.
//!
//! **Flows hold no secret at rest.** A flow in progress is a store row keyed
//! by the keyed hash of its handle (`state`, device code, hand-off code),
//! taken once. The PKCE verifier and the nonce are derived from the `state`
//! with the gateway's key, so the store never sees them and any replica can
//! finish a flow another began. A web flow's `state` is also bound to the
//! browser that began it by a short-lived `SameSite=Lax` cookie (login
//! CSRF).
//!
//! **Fail closed.** Every check that fails refuses the sign-in with a stable
//! reason ([`Refusal::code`]), audited as `auth.sso.refused`, and nothing is
//! granted. A provider that cannot be reached fails new sign-ins only:
//! browser sessions, gateway tokens and proxy sessions already issued keep
//! working. Codes, tokens, ID tokens and secrets are never logged or audited.

mod flow;
pub mod oidc;
mod signin;
mod workflow;

use periscope_store::StoreError;

pub use flow::{CLI_FLOW_TTL, HANDOFF_TTL, STATE_COOKIE, WEB_FLOW_TTL, challenge_of};
pub(crate) use flow::{flow_id, new_handle, plausible_handle, valid_challenge, verifier_matches};
pub(crate) use workflow::audit_time;
pub use workflow::{
    Begun, CALLBACK_PATH, CallbackParams, Collected, DevicePoll, DeviceStarted, FlowStart, Landing,
};

/// How SSO reaches providers: one HTTP client and the metadata cache.
#[derive(Debug)]
pub struct Sso {
    http: oidc::Http,
    cache: oidc::MetadataCache,
}

impl Sso {
    /// A fresh client and an empty cache.
    pub fn new() -> Result<Sso, reqwest::Error> {
        Ok(Sso {
            http: oidc::Http::new()?,
            cache: oidc::MetadataCache::default(),
        })
    }
}

/// Why a sign-in was refused. Each carries a stable code for the audit log
/// and a message the person signing in can act on.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// SSO is not configured, or no such provider.
    #[error("{detail}")]
    NotConfigured {
        /// What is missing.
        detail: String,
    },
    /// The provider could not be reached: sign-in fails closed, existing
    /// sessions and tokens keep working.
    #[error("{detail}; existing sessions and tokens keep working, try signing in again later")]
    Unreachable {
        /// Which provider and why.
        detail: String,
    },
    /// The provider answered, but not usably (bad discovery document,
    /// configuration mismatch).
    #[error("{detail}")]
    Provider {
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The flow itself: an unknown, replayed or expired `state` or
    /// hand-off code, a cookie that does not match, an error the provider
    /// sent back.
    #[error("{detail}")]
    Flow {
        /// Stable code.
        code: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The ID token failed a check (issuer, audience, signature, key,
    /// times, nonce).
    #[error("the provider's ID token was refused ({code}): {detail}")]
    Token {
        /// Stable code.
        code: &'static str,
        /// What the check said.
        detail: String,
    },
    /// The person may not sign in: email not verified, domain not allowed,
    /// no group mapping to a role, unusable name, name taken, disabled.
    #[error("{detail}")]
    Denied {
        /// Stable code.
        code: &'static str,
        /// What to do about it.
        detail: String,
    },
    /// The store failed.
    #[error("the store is unavailable: {0}")]
    Store(#[from] StoreError),
}

impl Refusal {
    /// The stable reason recorded in `auth.sso.refused`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotConfigured { .. } => "not_configured",
            Refusal::Unreachable { .. } => "provider_unreachable",
            Refusal::Provider { code, .. }
            | Refusal::Flow { code, .. }
            | Refusal::Token { code, .. }
            | Refusal::Denied { code, .. } => code,
            Refusal::Store(_) => "store_unavailable",
        }
    }

    fn flow(code: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal::Flow {
            code,
            detail: detail.into(),
        }
    }

    fn denied(code: &'static str, detail: impl Into<String>) -> Refusal {
        Refusal::Denied {
            code,
            detail: detail.into(),
        }
    }
}
