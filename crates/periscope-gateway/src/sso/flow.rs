//! The secrets of a sign-in in progress: handles, and what is derived from
//! them instead of being stored.

use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::identity::{TokenHasher, random_bytes};

/// How long a web sign-in may take between the redirect to the provider
/// and the callback.
pub const WEB_FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// The same for a CLI sign-in through the browser.
pub const CLI_FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// How long the CLI has to collect its token once the browser came back.
pub const HANDOFF_TTL: Duration = Duration::from_secs(2 * 60);
/// Longest device flow, whatever the provider says.
pub const DEVICE_FLOW_MAX: Duration = Duration::from_secs(15 * 60);
/// The cookie that binds a web flow's `state` to the browser that began it.
pub const STATE_COOKIE: &str = "__Host-periscope_sso_state";

/// A fresh 256-bit handle, base64url (the OIDC `state`, a hand-off code).
pub(crate) fn new_handle() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The store key of a handle: its keyed hash, so the store cannot replay it.
pub(crate) fn flow_id(hasher: &TokenHasher, handle: &str) -> String {
    hex::encode(hasher.derive("sso-flow", handle))
}

/// The nonce sent with `state`: derived, so nothing stores it.
pub(crate) fn nonce_of(hasher: &TokenHasher, state: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.derive("sso-nonce", state))
}

/// The PKCE verifier of `state` (43 base64url characters, RFC 7636).
pub(crate) fn verifier_of(hasher: &TokenHasher, state: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.derive("sso-pkce", state))
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2), as the CLI sends it.
pub fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `challenge` is 43 base64url characters (a SHA-256 digest).
pub(crate) fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` hashes to `challenge`, in constant time.
pub(crate) fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let computed = challenge_of(verifier);
    computed.len() == challenge.len() && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// Whether a handle sent back to us has the shape of one we issue (so a
/// garbage value is refused before the store is asked).
pub(crate) fn plausible_handle(handle: &str) -> bool {
    (16..=512).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc7636_example_challenge() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge_of(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verifier_matches(verifier, &challenge_of(verifier)));
        assert!(!verifier_matches("x", &challenge_of(verifier)));
        assert!(valid_challenge(&challenge_of(verifier)));
    }

    #[test]
    fn derived_values_differ_by_purpose_and_state() {
        let h = TokenHasher::new(crate::datadir::SecretKey::from_bytes([3; 32]));
        let a = new_handle();
        let b = new_handle();
        assert_ne!(a, b);
        assert!(plausible_handle(&a));
        assert_ne!(nonce_of(&h, &a), verifier_of(&h, &a));
        assert_ne!(nonce_of(&h, &a), nonce_of(&h, &b));
        assert_ne!(flow_id(&h, &a), flow_id(&h, &b));
        assert_eq!(verifier_of(&h, &a).len(), 43);
        assert!(!plausible_handle("short"));
        assert!(!plausible_handle(&format!("{a} ")));
    }
}
