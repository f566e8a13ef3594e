//! Signed webhook notifications of the grant workflow.
//!
//! Each event (request, approve, deny, expire, revoke) a configuration
//! subscribes to is POSTed as JSON to `[webhook] url`:
//!
//! ```text
//! POST /hook
//! Content-Type: application/json
//! X-Periscope-Event: approve
//! X-Periscope-Delivery: whk_4f9c2a1b7e3d6a05
//! X-Periscope-Timestamp: 1795928400
//! X-Periscope-Signature: sha256=<hex HMAC-SHA-256(secret, body)>
//!
//! {"event":"approve","delivery":"whk_…","timestamp":1795928400,"actor":"bob","request":{…},"grant":{…}}
//! ```
//!
//! The signature covers the exact body bytes, and the body carries the
//! timestamp: a receiver checks the signature, then refuses timestamps older
//! than a few minutes and delivery ids it has seen, which defeats replays.
//! Deliveries never block the API call that caused them: they are queued, sent
//! in the background and retried with exponential backoff; a delivery that
//! fails every attempt is logged and counted in `periscope_webhook_failures_total`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use periscope_policy::WebhookEvent;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};

use crate::config::LoadedConfig;
use crate::identity::random_id;
use crate::metrics;

/// Header carrying `sha256=<hex HMAC of the body>`.
pub const SIGNATURE_HEADER: &str = "x-periscope-signature";
/// Header repeating the body's `timestamp` (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-periscope-timestamp";
/// Header naming the event.
pub const EVENT_HEADER: &str = "x-periscope-event";
/// Header carrying the delivery id (the same on every retry).
pub const DELIVERY_HEADER: &str = "x-periscope-delivery";

/// Deliveries waiting to be sent; beyond this, new ones are dropped (and
/// counted as failures) rather than slowing the API down.
const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const CONCURRENCY: usize = 16;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time.
    pub first_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Time limit of one attempt.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The JSON body of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Payload<'a> {
    /// `request`, `approve`, `deny`, `expire` or `revoke`.
    pub event: WebhookEvent,
    /// Unique per delivery, the same on every retry: receivers deduplicate on it.
    pub delivery: &'a str,
    /// Unix seconds when this attempt was signed.
    pub timestamp: i64,
    /// Who caused it (`periscope` for expiries).
    pub actor: &'a str,
    /// The request concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'a periscope_api::Request>,
    /// The grant concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<&'a periscope_api::Grant>,
}

/// One notification, before it is signed.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The event.
    pub event: WebhookEvent,
    /// Who caused it.
    pub actor: String,
    /// The request concerned.
    pub request: Option<periscope_api::Request>,
    /// The grant concerned.
    pub grant: Option<periscope_api::Grant>,
}

struct Delivery {
    url: String,
    secret: SecretString,
    id: String,
    notification: Notification,
}

/// Queues notifications for background delivery; cheap to clone.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    queue: mpsc::Sender<Delivery>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("url", &self.url)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// Starts the delivery task on the current runtime.
    pub fn spawn(policy: RetryPolicy) -> WebhookSender {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(receiver, policy));
        WebhookSender { queue }
    }

    /// Queues `notification` if the configuration in force has a webhook that
    /// subscribes to its event. Never waits.
    pub fn notify(&self, config: &LoadedConfig, notification: Notification) {
        let (Some(hook), Some(secret)) = (&config.config.webhook, &config.webhook_secret) else {
            return;
        };
        if !hook.events.contains(&notification.event) {
            return;
        }
        let delivery = Delivery {
            url: hook.url.clone(),
            secret: secret.clone(),
            id: random_id("whk_"),
            notification,
        };
        if let Err(e) = self.queue.try_send(delivery) {
            metrics::webhook_failure();
            tracing::warn!(error = %e, "webhook queue full or closed; notification dropped");
        }
    }
}

async fn run(mut receiver: mpsc::Receiver<Delivery>, policy: RetryPolicy) {
    let client = match reqwest::Client::builder()
        .timeout(policy.timeout)
        .user_agent(concat!("periscope/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook HTTP client; webhooks are disabled");
            while receiver.recv().await.is_some() {
                metrics::webhook_failure();
            }
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    while let Some(delivery) = receiver.recv().await {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        tokio::spawn(async move {
            deliver(&client, &delivery, policy).await;
            drop(permit);
        });
    }
}

/// The body and signature header of one attempt.
pub fn sign(secret: &[u8], payload: &Payload<'_>) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(payload).expect("webhook payloads serialise");
    (body.clone(), signature(secret, &body))
}

/// `sha256=<hex HMAC-SHA-256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn deliver(client: &reqwest::Client, delivery: &Delivery, policy: RetryPolicy) {
    let n = &delivery.notification;
    let event = serde_json::to_value(n.event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    for attempt in 1..=policy.attempts.max(1) {
        // Unix time from the system clock: receivers compare it with theirs.
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let payload = Payload {
            event: n.event,
            delivery: &delivery.id,
            timestamp,
            actor: &n.actor,
            request: n.request.as_ref(),
            grant: n.grant.as_ref(),
        };
        let (body, signature) = sign(delivery.secret.expose_secret().as_bytes(), &payload);
        let result = client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, &event)
            .header(DELIVERY_HEADER, &delivery.id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let problem = match result {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(delivery = %delivery.id, %event, attempt, "webhook delivered");
                return;
            }
            Ok(response) => format!("the receiver answered {}", response.status()),
            Err(e) => format!("the request failed: {e}"),
        };
        if attempt >= policy.attempts {
            metrics::webhook_failure();
            tracing::warn!(
                delivery = %delivery.id, %event, url = %delivery.url, attempts = attempt,
                problem, "webhook delivery failed for good"
            );
            return;
        }
        let wait = policy.backoff(attempt);
        tracing::info!(
            delivery = %delivery.id, %event, attempt, problem,
            retry_in = %humantime::format_duration(wait), "webhook delivery failed; will retry"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
    }

    #[test]
    fn signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
