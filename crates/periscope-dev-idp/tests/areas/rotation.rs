//! Signing key rotation: a relying party that refetches the JWKS follows it.

use openidconnect::{ClaimsVerificationError, SignatureVerificationError};
use periscope_dev_idp::{PreviousKey, SigningAlg};

use crate::support::{Rp, idp, jose_header};

fn no_matching_key(result: Result<crate::support::Claims, ClaimsVerificationError>) -> bool {
    matches!(
        result,
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey
        ))
    )
}

#[tokio::test]
async fn token_from_a_new_key_verifies_once_the_client_refetches_the_jwks() {
    let idp = idp().await;
    let mut rp = Rp::gateway(&idp).await;
    let old_kid = idp.current_kid();
    let new_kid = idp
        .rotate_key(SigningAlg::Rs256, PreviousKey::Keep)
        .await
        .expect("rotation");
    assert_ne!(old_kid, new_kid);
    assert_eq!(idp.current_kid(), new_kid);
    assert_eq!(idp.published_kids(), [old_kid.clone(), new_kid.clone()]);

    let (tokens, nonce) = rp.sign_in("alice").await;
    let header = jose_header(
        &openidconnect::TokenResponse::id_token(&tokens)
            .expect("ID token")
            .to_string(),
    );
    assert_eq!(header["kid"], new_kid.as_str());
    assert!(no_matching_key(rp.verify(&tokens, &nonce)), "stale JWKS");

    rp.refetch().await;
    rp.verify(&tokens, &nonce)
        .expect("verifies with the refetched JWKS");

    // Finishing the rotation removes the old key only.
    idp.retire_key(&old_kid).expect("retire");
    assert_eq!(idp.published_kids(), [new_kid]);
}

#[tokio::test]
async fn retired_key_no_longer_verifies_what_it_signed() {
    let idp = idp().await;
    let mut rp = Rp::gateway(&idp).await;
    let (old_tokens, old_nonce) = rp.sign_in("alice").await;
    rp.verify(&old_tokens, &old_nonce)
        .expect("verifies before rotation");

    let new_kid = idp
        .rotate_key(SigningAlg::Rs256, PreviousKey::Retire)
        .await
        .expect("rotation");
    assert_eq!(idp.published_kids(), std::slice::from_ref(&new_kid));
    rp.refetch().await;
    assert!(no_matching_key(rp.verify(&old_tokens, &old_nonce)));
    let (tokens, nonce) = rp.sign_in("alice").await;
    rp.verify(&tokens, &nonce).expect("new key verifies");

    let refused = idp.retire_key(&new_kid);
    assert!(refused.is_err(), "the signing key cannot be retired");
    assert!(idp.retire_key("no-such-kid").is_err());
}

#[tokio::test]
async fn es256_keys_sign_and_verify() {
    let idp = idp().await;
    let mut rp = Rp::gateway(&idp).await;
    idp.rotate_key(SigningAlg::Es256, PreviousKey::Keep)
        .await
        .expect("rotation");
    rp.refetch().await;
    let (tokens, nonce) = rp.sign_in("alice").await;
    let header = jose_header(
        &openidconnect::TokenResponse::id_token(&tokens)
            .expect("ID token")
            .to_string(),
    );
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], idp.current_kid().as_str());
    rp.verify(&tokens, &nonce).expect("ES256 verifies");
}
