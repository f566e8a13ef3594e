//! The device authorization grant (RFC 8628), as `periscope login --device`
//! will use it.

use std::time::Duration;

use openidconnect::core::CoreDeviceAuthorizationResponse;
use openidconnect::{Nonce, Scope, TokenResponse};
use reqwest::StatusCode;

use crate::support::{GATEWAY, GATEWAY_SECRET, Rp, idp};

async fn start_device(rp: &Rp) -> CoreDeviceAuthorizationResponse {
    rp.client
        .exchange_device_code()
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("groups".into()))
        .request_async(&rp.http)
        .await
        .expect("device authorization")
}

/// One raw poll of the token endpoint: the error code, or "ok".
async fn poll(rp: &Rp, device: &CoreDeviceAuthorizationResponse) -> String {
    let token_url = rp
        .metadata
        .token_endpoint()
        .expect("token endpoint")
        .to_string();
    let answer = rp
        .post_form(
            &token_url,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device.device_code().secret()),
                ("client_id", GATEWAY),
                ("client_secret", GATEWAY_SECRET),
            ],
        )
        .await;
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    if answer.status == StatusCode::OK {
        "ok".into()
    } else {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        body["error"].as_str().expect("error").to_string()
    }
}

fn device_url(device: &CoreDeviceAuthorizationResponse, user: &str, action: &str) -> String {
    let mut url = url::Url::parse(device.verification_uri().as_str()).expect("URL");
    url.query_pairs_mut()
        .append_pair("user_code", device.user_code().secret())
        .append_pair("user", user)
        .append_pair("action", action);
    url.into()
}

#[tokio::test]
async fn device_flow_is_pending_until_approved_then_issues_verified_tokens() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let device = start_device(&rp).await;
    assert_eq!(device.interval(), Duration::from_secs(1));
    assert_eq!(poll(&rp, &device).await, "authorization_pending");

    // The verification page the user opens shows the code pre-filled.
    let complete = device
        .verification_uri_complete()
        .expect("verification_uri_complete");
    let page = rp.get(complete.secret()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(device.user_code().secret().as_str()));

    let approved = rp.get(&device_url(&device, "alice", "approve")).await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);

    // RFC 8628 §3.5: a client waits the interval between polls.
    tokio::time::sleep(device.interval()).await;
    let tokens = rp
        .client
        .exchange_device_access_token(&device)
        .expect("token endpoint")
        .request_async(&rp.http, tokio::time::sleep, Some(Duration::from_secs(30)))
        .await
        .expect("tokens after approval");
    let id_token = tokens.id_token().expect("ID token");
    let claims = id_token
        .claims(&rp.verifier(), |nonce: Option<&Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("the device flow sends no nonce".to_string()),
        })
        .expect("ID token verifies");
    assert_eq!(claims.subject().as_str(), "sub-alice");
    assert_eq!(
        claims.additional_claims().groups.as_deref(),
        Some(&["eng".to_string(), "sre".to_string()][..])
    );

    assert_eq!(
        poll(&rp, &device).await,
        "invalid_grant",
        "a device code is single-use"
    );
}

#[tokio::test]
async fn polling_faster_than_the_interval_gets_slow_down() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let device = start_device(&rp).await;
    assert_eq!(poll(&rp, &device).await, "authorization_pending");
    assert_eq!(poll(&rp, &device).await, "slow_down");
}

#[tokio::test]
async fn denied_device_gets_access_denied() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let device = start_device(&rp).await;
    let denied = rp.get(&device_url(&device, "alice", "deny")).await;
    assert_eq!(denied.status, StatusCode::OK);
    assert_eq!(poll(&rp, &device).await, "access_denied");
    // A decided code cannot be approved afterwards.
    let late = rp.get(&device_url(&device, "alice", "approve")).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn expired_device_code_gets_expired_token_and_cannot_be_approved() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let device = start_device(&rp).await;
    idp.advance_clock(device.expires_in() + Duration::from_secs(1));
    let late = rp.get(&device_url(&device, "alice", "approve")).await;
    assert_eq!(late.status, StatusCode::BAD_REQUEST);
    assert!(late.body.contains("expired"), "{}", late.body);
    assert_eq!(poll(&rp, &device).await, "expired_token");
}

#[tokio::test]
async fn unknown_user_code_or_user_is_an_error_on_the_page() {
    let idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let device = start_device(&rp).await;
    let base = format!("{}/device", idp.issuer_url());
    let wrong_code = rp
        .get(&format!("{base}?user_code=BBBB-BBBB&user=alice"))
        .await;
    assert_eq!(wrong_code.status, StatusCode::BAD_REQUEST);
    let wrong_user = rp.get(&device_url(&device, "mallory", "approve")).await;
    assert_eq!(wrong_user.status, StatusCode::BAD_REQUEST);
    assert_eq!(poll(&rp, &device).await, "authorization_pending");
}
