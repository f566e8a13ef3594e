//! A small OpenID Connect provider that runs in-process on a loopback port.
//!
//! `periscope demo --sso` needs an identity provider a newcomer can sign in
//! with without any account, and the SSO test suite needs one it can bend:
//! rotate its keys, change a user's groups between two sign-ins, issue ID
//! tokens that are wrong in one precise way, or vanish. Both use this crate,
//! so the provider the tests trust is the one the demo ships.
//!
//! It is a real HTTP server (axum on `127.0.0.1`, plain HTTP: loopback only,
//! which OAuth 2.0 for native apps and every relying-party library accept for
//! development), and it speaks the protocols as written, so a conformant
//! relying party (the `openidconnect` crate in this crate's tests, the gateway
//! later) cannot tell it from a production provider:
//!
//! - discovery (`/.well-known/openid-configuration`) and a JWKS with RS256
//!   (and optionally ES256) keys, every token carrying its `kid`; keys rotate
//!   at run time ([`RunningIdp::rotate_key`]);
//! - the authorization code flow with PKCE S256 only (`plain` and a missing
//!   challenge are refused), `state` echoed, `nonce` carried into the ID
//!   token, redirect URIs checked exactly (any port for loopback redirects,
//!   RFC 8252); codes single-use and short-lived, a replay revokes what the
//!   code issued;
//! - the device authorization grant (RFC 8628) with `authorization_pending`,
//!   `slow_down`, `expired_token` and `access_denied`;
//! - refresh tokens (rotated on use, re-reading the user so changed groups
//!   show up), and `/userinfo` with a bearer token.
//!
//! Without a browser, a test picks the user with `login_hint=<user>` and is
//! redirected at once; a browser gets a small HTML page with a user picker
//! (no JavaScript, nothing loaded from elsewhere). Device codes are approved
//! on `/device`, by form or by `GET /device?user_code=..&user=..`.
//!
//! Signing and key generation use the field's crates (`jsonwebtoken` with its
//! RustCrypto backend, `rsa`, `p256`); this crate writes no JOSE or crypto of
//! its own. The one hand-made token is [`Fault::Unsigned`], which is by design
//! not a JWS.
//!
//! State lives in memory behind one mutex that is never held across an
//! `.await`; bearer secrets (codes, tokens, device codes) are kept only as
//! SHA-256 digests and client secrets are compared in constant time, like a
//! production provider would, so the demo does not teach bad habits.

mod authorize;
mod builder;
mod clock;
mod device;
mod discovery;
mod html;
mod id_token;
mod keys;
mod model;
mod secret;
mod server;
mod state;
mod token;
mod userinfo;

pub use builder::DevIdpBuilder;
pub use keys::SigningAlg;
pub use model::{Client, Fault, PreviousKey, User};
pub use server::RunningIdp;

/// The entry point: `DevIdp::builder()...start().await`.
///
/// A unit type rather than a constructor on [`RunningIdp`] so that the
/// configuration phase (builder, may be invalid) and the running phase (a
/// bound port) are separate types.
#[derive(Debug)]
pub struct DevIdp;

impl DevIdp {
    /// Starts configuring a provider: add clients and users, then `start()`.
    pub fn builder() -> DevIdpBuilder {
        DevIdpBuilder::default()
    }
}

/// Why the provider could not be configured, started or changed.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    /// The loopback listener could not be bound (port taken, no loopback).
    #[error("could not listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A client, user or setting is not acceptable; the message says which
    /// and why.
    #[error("invalid dev IdP configuration: {0}")]
    Config(String),
    /// A signing key could not be generated or encoded.
    #[error("signing key: {0}")]
    Key(String),
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// The key to retire does not exist or is the one signing now.
    #[error("cannot retire key {kid}: {reason}")]
    Retire {
        /// The key id asked for.
        kid: String,
        /// Why it was refused.
        reason: &'static str,
    },
}
