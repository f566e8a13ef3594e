//! Webhook notifications from the real binary to a real local HTTP receiver:
//! signed, timestamped, retried with backoff, never blocking the API.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::gateway::{POLICY, admin, expect, start, user};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{KeyInit, Mac};
use periscope_testkit::GatewayOptions;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SECRET: &str = "webhook-test-secret-8c1f";

/// One attempt as the receiver saw it.
#[derive(Debug)]
struct Attempt {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: StatusCode,
    at: Instant,
}

#[derive(Clone)]
struct Receiver {
    failures_left: Arc<AtomicUsize>,
    seen: mpsc::UnboundedSender<Attempt>,
}

async fn hook(
    State(r): State<Receiver>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let fail = r
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let answered = if fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    };
    let _ = r.seen.send(Attempt {
        headers,
        body: body.to_vec(),
        answered,
        at: Instant::now(),
    });
    answered
}

fn signature_of(body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn next(seen: &mut mpsc::UnboundedReceiver<Attempt>) -> Attempt {
    tokio::time::timeout(Duration::from_secs(20), seen.recv())
        .await
        .expect("a webhook delivery arrives")
        .expect("the receiver is alive")
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_are_signed_and_retried_until_the_receiver_accepts() {
    let (tx, mut seen) = mpsc::unbounded_channel();
    let receiver = Receiver {
        failures_left: Arc::new(AtomicUsize::new(2)),
        seen: tx,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let config = format!(
        "{POLICY}\n[webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret_env = \"PERISCOPE_TEST_WEBHOOK_SECRET\"\nevents = [\"request\", \"approve\", \"revoke\"]\n"
    );
    let gw = start(
        GatewayOptions::default()
            .config(config)
            .env("PERISCOPE_TEST_WEBHOOK_SECRET", SECRET),
    )
    .await;
    let admin = admin(&gw);
    let alice = user(&gw, &admin, "alice", &["dev"]).await;
    let lena = user(&gw, &admin, "lena", &["lead"]).await;

    let asked = Instant::now();
    let created = alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-prod", "lifts": ["write"], "duration": "30m", "reason": "INC-77: fix a stuck refund" }),
        )
        .await
        .unwrap();
    let answered = asked.elapsed();
    let req = expect(&created, 201)["id"].as_str().unwrap().to_owned();

    // Two refusals, then success: the same delivery, re-signed each time.
    let attempts = [
        next(&mut seen).await,
        next(&mut seen).await,
        next(&mut seen).await,
    ];
    let answers: Vec<u16> = attempts.iter().map(|a| a.answered.as_u16()).collect();
    assert_eq!(answers, [503, 503, 204]);
    let delivery = attempts[0].headers["x-periscope-delivery"]
        .to_str()
        .unwrap();
    for attempt in &attempts {
        assert_eq!(attempt.headers["x-periscope-delivery"], delivery);
        assert_eq!(attempt.headers["x-periscope-event"], "request");
        assert_eq!(attempt.headers["content-type"], "application/json");
        assert_eq!(
            attempt.headers["x-periscope-signature"].to_str().unwrap(),
            signature_of(&attempt.body),
            "the signature is HMAC-SHA-256 of the exact body"
        );
        let body: Value = serde_json::from_slice(&attempt.body).unwrap();
        assert_eq!(body["event"], "request");
        assert_eq!(body["delivery"], delivery);
        assert_eq!(body["actor"], "alice");
        assert_eq!(body["request"]["id"], req.as_str());
        assert_eq!(
            attempt.headers["x-periscope-timestamp"].to_str().unwrap(),
            body["timestamp"].to_string(),
            "the signed body carries the timestamp the header repeats"
        );
    }
    let backoff = attempts[2].at - attempts[0].at;
    assert!(
        backoff >= Duration::from_millis(1400),
        "exponential backoff between attempts: {backoff:?}"
    );
    assert!(
        answered < backoff,
        "the API answered ({answered:?}) without waiting for the deliveries ({backoff:?})"
    );

    // A tampered body no longer matches its signature.
    let mut forged = attempts[2].body.clone();
    forged[10] ^= 1;
    assert_ne!(
        signature_of(&forged),
        attempts[2].headers["x-periscope-signature"]
            .to_str()
            .unwrap()
    );

    // Later events go through at the first attempt; unsubscribed ones are not sent.
    let approved = lena
        .post(&format!("/v1/requests/{req}/approve"), &json!({}))
        .await
        .unwrap();
    expect(&approved, 200);
    let approve = next(&mut seen).await;
    assert_eq!(approve.answered, StatusCode::NO_CONTENT);
    let body: Value = serde_json::from_slice(&approve.body).unwrap();
    assert_eq!(body["event"], "approve");
    assert_eq!(body["actor"], "lena");
    assert_eq!(body["grant"]["identity"], "alice");
    let deny_me = alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-prod", "lifts": ["unmask:email"], "duration": "30m", "reason": "INC-78: check an address" }),
        )
        .await
        .unwrap();
    let second = expect(&deny_me, 201)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        serde_json::from_slice::<Value>(&next(&mut seen).await.body).unwrap()["event"],
        "request"
    );
    expect(
        &lena
            .post(
                &format!("/v1/requests/{second}/deny"),
                &json!({ "reason": "not needed" }),
            )
            .await
            .unwrap(),
        200,
    );
    let grant = body["grant"]["id"].as_str().unwrap();
    expect(
        &alice
            .post(&format!("/v1/grants/{grant}/revoke"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    let revoke = next(&mut seen).await;
    assert_eq!(
        revoke.headers["x-periscope-event"], "revoke",
        "the denial (not subscribed) was skipped"
    );
}
