//! Random bearer secrets, their at-rest digests, and PKCE.
//!
//! Codes, access and refresh tokens and device codes are handed out once and
//! kept only as SHA-256 digests: a lookup by digest does not compare the
//! secret byte by byte, and a dump of the provider's memory holds no usable
//! token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::IdpError;

/// A fresh 256-bit secret, base64url without padding (43 characters).
pub(crate) fn random_token() -> Result<String, IdpError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| IdpError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The at-rest form of a bearer secret: the key under which it is stored.
pub(crate) fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares a presented client secret with the registered one in constant
/// time (over their digests, so lengths leak nothing either).
pub(crate) fn secrets_match(presented: &str, registered: &str) -> bool {
    digest(presented).ct_eq(&digest(registered)).into()
}

/// A user code for the device flow: eight letters from an alphabet without
/// vowels or look-alikes (RFC 8628 §6.1), shown as `BCDF-GHJK`.
pub(crate) fn user_code() -> Result<String, IdpError> {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| IdpError::Random(e.to_string()))?;
    // 256 is not a multiple of 20: the first 240 values map evenly, the
    // rest are redrawn one byte at a time.
    let mut code = String::with_capacity(9);
    for (i, mut b) in bytes.into_iter().enumerate() {
        while b >= 240 {
            let mut one = [0u8; 1];
            getrandom::fill(&mut one).map_err(|e| IdpError::Random(e.to_string()))?;
            b = one[0];
        }
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[usize::from(b % 20)]));
    }
    Ok(code)
}

/// A user code as typed: case, spaces and dashes do not matter.
pub(crate) fn normalise_user_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `challenge` is a well-formed S256 code challenge: base64url of a
/// SHA-256 digest, 43 characters (RFC 7636 §4.2).
pub(crate) fn valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` answers `challenge` (S256, RFC 7636 §4.6). A verifier
/// outside 43..=128 unreserved characters is refused outright.
pub(crate) fn pkce_verifies(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// `at_hash`: the left half of the access token's SHA-256, base64url (OIDC
/// Core §3.1.3.6), for RS256 and ES256 alike.
pub(crate) fn at_hash(access_token: &str) -> String {
    let full = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&full[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(valid_s256_challenge(challenge));
        assert!(pkce_verifies(verifier, challenge));
        assert!(!pkce_verifies(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_verifies("short", challenge));
    }

    #[test]
    fn user_codes_are_two_groups_of_four_from_the_alphabet() {
        for _ in 0..100 {
            let code = user_code().expect("random");
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(
                code.chars()
                    .filter(|c| *c != '-')
                    .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c))
            );
            assert_eq!(normalise_user_code(&code.to_lowercase()).len(), 8);
        }
    }
}
