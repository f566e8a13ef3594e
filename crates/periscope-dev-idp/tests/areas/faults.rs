//! Each fault knob makes a conformant relying party refuse the ID token for
//! the expected reason (or, for claim faults, see the claim missing).

use openidconnect::{ClaimsVerificationError as E, SignatureVerificationError as S};
use periscope_dev_idp::{Fault, RunningIdp};

use crate::support::{Claims, Rp, idp};

/// Signs Alice in with `fault` set for one token; returns the verification.
async fn verify_with(idp: &RunningIdp, fault: Fault) -> Result<Claims, E> {
    let rp = Rp::gateway(idp).await;
    idp.set_fault_once(fault);
    let (tokens, nonce) = rp.sign_in("alice").await;
    rp.verify(&tokens, &nonce)
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::WrongIssuer).await;
    assert!(matches!(result, Err(E::InvalidIssuer(_))), "{result:?}");
}

#[tokio::test]
async fn wrong_or_extra_audience_is_refused() {
    let idp = idp().await;
    for fault in [Fault::WrongAudience, Fault::ExtraAudience] {
        let result = verify_with(&idp, fault).await;
        assert!(
            matches!(result, Err(E::InvalidAudience(_))),
            "{fault:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn expired_token_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::Expired).await;
    assert!(matches!(result, Err(E::Expired(_))), "{result:?}");
}

#[tokio::test]
async fn not_yet_valid_token_is_refused_by_the_issue_time_check() {
    let idp = idp().await;
    // openidconnect accepts any `iat` unless told otherwise: the relying
    // party's verifier (support::Rp::verifier) adds the check, and maps its
    // failure to `Expired`.
    let result = verify_with(&idp, Fault::NotYetValid).await;
    assert!(
        matches!(&result, Err(E::Expired(why)) if why.contains("future")),
        "{result:?}"
    );
}

#[tokio::test]
async fn bad_signature_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::BadSignature).await;
    assert!(
        matches!(result, Err(E::SignatureVerification(S::CryptoError(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::UnknownKid).await;
    assert!(
        matches!(result, Err(E::SignatureVerification(S::NoMatchingKey))),
        "{result:?}"
    );
}

#[tokio::test]
async fn hmac_with_the_public_key_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::AlgConfusion).await;
    assert!(
        matches!(result, Err(E::SignatureVerification(S::DisallowedAlg(_)))),
        "{result:?}"
    );
}

#[tokio::test]
async fn unsigned_token_is_refused() {
    let idp = idp().await;
    let result = verify_with(&idp, Fault::Unsigned).await;
    assert!(
        matches!(result, Err(E::SignatureVerification(S::NoSignature))),
        "{result:?}"
    );
}

#[tokio::test]
async fn wrong_or_missing_nonce_is_refused() {
    let idp = idp().await;
    for fault in [Fault::NonceMismatch, Fault::MissingNonce] {
        let result = verify_with(&idp, fault).await;
        assert!(
            matches!(result, Err(E::InvalidNonce(_))),
            "{fault:?}: {result:?}"
        );
    }
}

#[tokio::test]
async fn claim_faults_remove_or_falsify_the_claim_only() {
    let idp = idp().await;
    let claims = verify_with(&idp, Fault::MissingEmail)
        .await
        .expect("verifies");
    assert_eq!(claims.email(), None);
    assert_eq!(claims.email_verified(), None);
    let claims = verify_with(&idp, Fault::EmailNotVerified)
        .await
        .expect("verifies");
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(claims.email_verified(), Some(false));
    let claims = verify_with(&idp, Fault::MissingGroups)
        .await
        .expect("verifies");
    assert_eq!(claims.additional_claims().groups, None);
    // The faults were one-shot: the next token is whole again.
    let rp = Rp::gateway(&idp).await;
    let (tokens, nonce) = rp.sign_in("alice").await;
    let claims = rp.verify(&tokens, &nonce).expect("verifies");
    assert_eq!(claims.email_verified(), Some(true));
    assert!(claims.additional_claims().groups.is_some());
}

#[tokio::test]
async fn a_set_fault_lasts_until_cleared() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    idp.set_fault(Fault::WrongIssuer);
    for _ in 0..2 {
        let (tokens, nonce) = rp.sign_in("alice").await;
        assert!(matches!(
            rp.verify(&tokens, &nonce),
            Err(E::InvalidIssuer(_))
        ));
    }
    idp.clear_faults();
    let (tokens, nonce) = rp.sign_in("alice").await;
    rp.verify(&tokens, &nonce).expect("whole again");
}
