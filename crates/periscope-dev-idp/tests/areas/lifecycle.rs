//! Starting with bad configuration, stopping (provider unreachable) and
//! restarting.

use std::time::Duration;

use periscope_dev_idp::{DevIdp, IdpError};

use crate::support::{GATEWAY, GATEWAY_REDIRECT, Rp, http, idp};

#[tokio::test]
async fn a_stopped_provider_refuses_connections_and_a_restart_serves_the_same_state() {
    let mut idp = idp().await;
    let rp = Rp::gateway(&idp).await;
    let kid = idp.current_kid();
    let (tokens, nonce) = rp.sign_in("alice").await;

    idp.stop().await;
    assert!(!idp.is_running());
    let discovery = format!("{}/.well-known/openid-configuration", idp.issuer_url());
    let refused = http().0.get(&discovery).send().await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_connect()),
        "connection refused: {refused:?}"
    );

    idp.restart().await.expect("restart on the same port");
    let rp_again = Rp::gateway(&idp).await;
    assert_eq!(idp.current_kid(), kid);
    rp_again
        .verify(&tokens, &nonce)
        .expect("same keys after restart");
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error() {
    let idp = idp().await;
    let second = DevIdp::builder().port(idp.addr().port()).start().await;
    assert!(matches!(second, Err(IdpError::Bind { .. })), "{second:?}");
}

#[tokio::test]
async fn bad_configuration_is_refused_with_the_reason() {
    let cases = [
        (
            DevIdp::builder()
                .client(GATEWAY, "s", [GATEWAY_REDIRECT])
                .client(GATEWAY, "t", [GATEWAY_REDIRECT]),
            "twice",
        ),
        (
            DevIdp::builder().client(GATEWAY, "s", ["not a url"]),
            "absolute URL",
        ),
        (
            DevIdp::builder().client(GATEWAY, "s", ["http://127.0.0.1/cb#frag"]),
            "fragment",
        ),
        (
            DevIdp::builder().device_poll_interval(Duration::from_millis(500)),
            "whole seconds",
        ),
        (DevIdp::builder().code_ttl(Duration::ZERO), "code_ttl"),
    ];
    for (builder, reason) in cases {
        match builder.start().await {
            Err(IdpError::Config(message)) => {
                assert!(
                    message.contains(reason),
                    "{message:?} should say {reason:?}"
                )
            }
            other => panic!("expected a configuration error ({reason}), got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_registered_at_run_time_can_sign_in_and_a_bad_one_is_refused() {
    let idp = idp().await;
    let late = "http://127.0.0.1:9/late/callback";
    let before = Rp::new(&idp, "late", Some("late-secret"), late.to_string()).await;
    let refused = before.get(before.request(Some("alice")).url.as_str()).await;
    assert_eq!(
        refused.status,
        reqwest::StatusCode::BAD_REQUEST,
        "unknown client"
    );

    idp.register_client(periscope_dev_idp::Client {
        id: "late".into(),
        secret: Some("late-secret".into()),
        redirect_uris: vec![late.into()],
    })
    .expect("a valid client registers");
    let (tokens, nonce) = before.sign_in("alice").await;
    before.verify(&tokens, &nonce).expect("its tokens verify");

    let bad = idp.register_client(periscope_dev_idp::Client {
        id: "bad".into(),
        secret: None,
        redirect_uris: vec!["not a url".into()],
    });
    assert!(matches!(bad, Err(IdpError::Config(_))), "{bad:?}");
}
