//! The authorization code flow with PKCE, as the gateway's web sign-in will
//! run it, and the ways a code exchange must fail.

use std::time::Duration;

use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{
    AccessTokenHash, AuthType, OAuth2TokenResponse, PkceCodeVerifier, TokenResponse,
};
use reqwest::StatusCode;

use crate::support::{CLI, GATEWAY, GATEWAY_REDIRECT, Rp, idp, jose_header};

#[tokio::test]
async fn code_flow_with_pkce_yields_a_verified_id_token_and_userinfo() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let (tokens, nonce) = rp.sign_in("alice").await;

    let claims = rp.verify(&tokens, &nonce).expect("ID token verifies");
    assert_eq!(claims.issuer().as_str(), idp.issuer_url());
    assert_eq!(claims.subject().as_str(), "sub-alice");
    assert_eq!(
        claims
            .audiences()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        [GATEWAY]
    );
    assert_eq!(
        claims.nonce().map(|n| n.secret().as_str()),
        Some(nonce.secret().as_str())
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    assert_eq!(claims.email_verified(), Some(true));
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    let extra = claims.additional_claims();
    assert_eq!(
        extra.groups.as_deref(),
        Some(&["eng".to_string(), "sre".to_string()][..])
    );
    assert_eq!(extra.department.as_deref(), Some("platform"));

    let id_token = tokens.id_token().expect("ID token");
    assert_eq!(jose_header(&id_token.to_string())["kid"], idp.current_kid());
    let verifier = rp.verifier();
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("signed"),
        id_token.signing_key(&verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert_eq!(
        id_token.signing_alg().ok(),
        Some(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256)
    );

    let userinfo: serde_json::Value = rp
        .http
        .0
        .get(format!("{}/userinfo", idp.issuer_url()))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("JSON");
    assert_eq!(userinfo["sub"], "sub-alice");
    assert_eq!(userinfo["email"], "alice@example.com");
    assert_eq!(userinfo["groups"], serde_json::json!(["eng", "sre"]));
}

#[tokio::test]
async fn client_secret_post_authenticates_as_well_as_basic() {
    let idp = idp().await;
    let mut rp = Rp::gateway(&idp).await;
    rp.client = rp.client.set_auth_type(AuthType::RequestBody);
    let (tokens, nonce) = rp.sign_in("alice").await;
    rp.verify(&tokens, &nonce).expect("ID token verifies");
}

#[tokio::test]
async fn public_client_signs_in_on_any_loopback_port() {
    let idp = idp().await;
    let rp = Rp::new(&idp, CLI, None, "http://127.0.0.1:54321/callback".into()).await;
    let (tokens, nonce) = rp.sign_in("bob").await;
    let claims = rp.verify(&tokens, &nonce).expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), "sub-bob");
    assert_eq!(claims.email(), None, "Bob has no email");
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_what_it_issued() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("alice"));
    let verifier = request.verifier.secret().clone();
    let code = rp.code(&request).await;
    let tokens = rp
        .exchange(&code, PkceCodeVerifier::new(verifier.clone()))
        .await
        .expect("first exchange");
    let userinfo = |token: String| {
        let http = rp.http.0.clone();
        let url = format!("{}/userinfo", idp.issuer_url());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("userinfo")
                .status()
        }
    };
    let access = tokens.access_token().secret().clone();
    assert_eq!(userinfo(access.clone()).await, StatusCode::OK);

    let replay = rp.exchange(&code, PkceCodeVerifier::new(verifier)).await;
    assert_eq!(replay.err().as_deref(), Some("invalid_grant"));
    assert_eq!(userinfo(access).await, StatusCode::UNAUTHORIZED, "revoked");
}

#[tokio::test]
async fn wrong_or_missing_pkce_verifier_is_refused() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("alice"));
    let code = rp.code(&request).await;
    let wrong = PkceCodeVerifier::new("x".repeat(64));
    assert_eq!(
        rp.exchange(&code, wrong).await.err().as_deref(),
        Some("invalid_grant")
    );

    let request = rp.request(Some("alice"));
    let code = rp.code(&request).await;
    let answer = rp
        .post_form(
            &format!("{}/token", idp.issuer_url()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", GATEWAY_REDIRECT),
                ("client_id", GATEWAY),
                ("client_secret", crate::support::GATEWAY_SECRET),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("invalid_request"), "{}", answer.body);
    assert!(answer.body.contains("code_verifier"), "{}", answer.body);
}

/// The request's URL with one query parameter replaced or removed.
fn with_param(url: &url::Url, name: &str, value: Option<&str>) -> url::Url {
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain(value.map(|v| (name.to_string(), v.to_string())))
        .collect();
    let mut out = url.clone();
    out.query_pairs_mut().clear().extend_pairs(pairs);
    out
}

#[tokio::test]
async fn authorization_without_s256_pkce_is_refused_back_to_the_client() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("alice"));
    let plain = with_param(&request.url, "code_challenge_method", Some("plain"));
    let no_method = with_param(&request.url, "code_challenge_method", None);
    let no_challenge = with_param(
        &with_param(&request.url, "code_challenge", None),
        "code_challenge_method",
        None,
    );
    for url in [plain, no_method, no_challenge] {
        let answer = rp.get(url.as_str()).await;
        assert_eq!(answer.status, StatusCode::FOUND, "{url}");
        assert_eq!(answer.param("error").as_deref(), Some("invalid_request"));
        assert_eq!(answer.param("code"), None);
        assert_eq!(
            answer.param("state").as_deref(),
            Some(request.csrf.secret().as_str())
        );
        assert_eq!(answer.param("iss").as_deref(), Some(idp.issuer_url()));
    }
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("alice"));
    for redirect in [
        "http://attacker.invalid/cb",
        "http://127.0.0.1:9/sso/callback/extra",
    ] {
        let url = with_param(&request.url, "redirect_uri", Some(redirect));
        let answer = rp.get(url.as_str()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.location.is_none());
        assert!(answer.body.contains("not registered"), "{}", answer.body);
    }
    let unknown_client = with_param(&request.url, "client_id", Some("nobody"));
    let answer = rp.get(unknown_client.as_str()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.location.is_none());
}

#[tokio::test]
async fn wrong_client_secret_is_refused() {
    let idp = idp().await;
    let honest = Rp::gateway(&idp).await;
    let impostor = Rp::new(
        &idp,
        GATEWAY,
        Some("not-the-secret"),
        GATEWAY_REDIRECT.into(),
    )
    .await;
    let request = honest.request(Some("alice"));
    let code = honest.code(&request).await;
    let result = impostor.exchange(&code, request.verifier).await;
    assert_eq!(result.err().as_deref(), Some("invalid_client"));
}

#[tokio::test]
async fn code_expires() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("alice"));
    let code = rp.code(&request).await;
    idp.advance_clock(Duration::from_secs(61));
    let result = rp.exchange(&code, request.verifier).await;
    assert_eq!(result.err().as_deref(), Some("invalid_grant"));
}

/// Reads the hidden inputs and the picker's options of the sign-in page.
fn form_fields(html: &str) -> (Vec<(String, String)>, Vec<String>) {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let hidden = html
        .split("<input type=\"hidden\"")
        .skip(1)
        .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value")?)))
        .collect();
    let options = html
        .split("<option")
        .skip(1)
        .filter_map(|tag| attr(tag, "value"))
        .collect();
    (hidden, options)
}

#[tokio::test]
async fn sign_in_page_lists_users_and_its_form_approves_or_denies() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(None);
    let page = rp.get(request.url.as_str()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script"), "no JavaScript");
    let (hidden, users) = form_fields(&page.body);
    assert_eq!(users, ["alice", "bob"]);
    let authorize = format!("{}/authorize", idp.issuer_url());

    let mut form: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    form.push(("login_hint", "bob"));
    form.push(("decision", "approve"));
    let approved = rp.post_form(&authorize, &form).await;
    assert_eq!(approved.status, StatusCode::FOUND, "{}", approved.body);
    assert_eq!(
        approved.param("state").as_deref(),
        Some(request.csrf.secret().as_str())
    );
    let code = approved.param("code").expect("code");
    let tokens = rp
        .exchange(&code, request.verifier)
        .await
        .expect("exchange");
    let claims = rp.verify(&tokens, &request.nonce).expect("verifies");
    assert_eq!(claims.subject().as_str(), "sub-bob");

    form.pop();
    form.push(("decision", "deny"));
    let denied = rp.post_form(&authorize, &form).await;
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"));
    assert_eq!(denied.param("code"), None);
}

#[tokio::test]
async fn unknown_login_hint_and_silent_prompt_are_refused() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let request = rp.request(Some("mallory"));
    let answer = rp.get(request.url.as_str()).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("no user"), "{}", answer.body);

    let silent = with_param(&rp.request(None).url, "prompt", Some("none"));
    let answer = rp.get(silent.as_str()).await;
    assert_eq!(answer.param("error").as_deref(), Some("login_required"));
}
