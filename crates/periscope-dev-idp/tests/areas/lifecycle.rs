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
