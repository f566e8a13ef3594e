//! Users change at run time; sign-ins, refreshes and userinfo see the change.

use openidconnect::{OAuth2TokenResponse, TokenResponse};
use periscope_dev_idp::{DevIdp, User};
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Rp, Tokens, alice, idp};

fn groups(rp: &Rp, tokens: &Tokens, nonce: &openidconnect::Nonce) -> Vec<String> {
    rp.verify(tokens, nonce)
        .expect("verifies")
        .additional_claims()
        .groups
        .clone()
        .expect("groups claim")
}

#[tokio::test]
async fn a_removed_group_is_gone_at_the_next_sign_in() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let (before, nonce) = rp.sign_in("alice").await;
    assert_eq!(groups(&rp, &before, &nonce), ["eng", "sre"]);

    idp.upsert_user(alice().with_groups(["eng"]))
        .expect("update");
    let (after, nonce_after) = rp.sign_in("alice").await;
    assert_eq!(groups(&rp, &after, &nonce_after), ["eng"]);
    // What was issued before keeps what it said.
    assert_eq!(groups(&rp, &before, &nonce), ["eng", "sre"]);
}

#[tokio::test]
async fn refresh_reads_the_user_again_and_rotates_the_refresh_token() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let (tokens, _) = rp.sign_in("alice").await;
    let first = tokens.refresh_token().expect("a refresh token").clone();

    idp.upsert_user(alice().with_groups(["eng"]))
        .expect("update");
    let refreshed = rp
        .client
        .exchange_refresh_token(&first)
        .expect("token endpoint")
        .request_async(&rp.http)
        .await
        .expect("refresh");
    let id_token = refreshed.id_token().expect("a new ID token");
    let claims = id_token
        .claims(&rp.verifier(), |n: Option<&openidconnect::Nonce>| match n {
            None => Ok(()),
            Some(_) => Err("a refreshed ID token carries no nonce".to_string()),
        })
        .expect("verifies");
    assert_eq!(
        claims.additional_claims().groups.as_deref(),
        Some(&["eng".to_string()][..])
    );
    assert_ne!(
        refreshed.refresh_token().map(|t| t.secret()),
        Some(first.secret())
    );

    let reuse = rp
        .client
        .exchange_refresh_token(&first)
        .expect("token endpoint")
        .request_async(&rp.http)
        .await;
    assert!(
        matches!(&reuse, Err(openidconnect::RequestTokenError::ServerResponse(r))
            if r.error().to_string() == "invalid_grant"),
        "a used refresh token is refused"
    );
}

#[tokio::test]
async fn a_removed_user_can_no_longer_sign_in_refresh_or_read_userinfo() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let (tokens, _) = rp.sign_in("alice").await;
    assert!(idp.remove_user("alice").is_some());

    let again = rp.get(rp.request(Some("alice")).url.as_str()).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let refresh = rp
        .client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .expect("token endpoint")
        .request_async(&rp.http)
        .await;
    assert!(refresh.is_err());
    let userinfo = rp
        .http
        .0
        .get(format!("{}/userinfo", idp.issuer_url()))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
    let challenge = userinfo.headers()["www-authenticate"]
        .to_str()
        .expect("ASCII");
    assert!(challenge.contains("invalid_token"), "{challenge}");
}

#[tokio::test]
async fn reserved_claims_cannot_be_set_as_extra_claims() {
    let idp = idp().await;
    let forged = alice().with_claim("iss", json!("http://elsewhere.invalid"));
    assert!(idp.upsert_user(forged.clone()).is_err());
    let refused = DevIdp::builder().user(forged).start().await;
    assert!(refused.is_err());
    // And a sub cannot be taken over by another user name.
    let thief = User::new("eve").with_sub("sub-alice");
    assert!(idp.upsert_user(thief).is_err());
}
