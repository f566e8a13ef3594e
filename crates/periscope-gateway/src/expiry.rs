//! The background job that ends what time ends.
//!
//! Every [`TICK`] it asks the store to expire due grants and pending
//! requests. The store's sweeps are exactly-once across replicas (conditional
//! updates), so each end is audited once (`grant.expire`, `request.expire`)
//! and published once on this replica's bus, well within the one second a
//! proxy has to restore a shield.
//!
//! Twice a second it also checks the grants that this replica's live
//! sessions rely on: a grant another replica revoked or expired is announced
//! here too, so sessions on every replica are cut without LISTEN/NOTIFY; and
//! the identities they belong to, so a session of an identity disabled on
//! another replica ends too. Once a minute it purges finished sign-in flows
//! and ended browser sessions.

use std::time::{Duration, Instant};

use periscope_audit::actions;
use periscope_policy::{Shield, WebhookEvent};
use serde_json::json;

use crate::convert;
use crate::gateway::{Gateway, SYSTEM_ACTOR};
use crate::metrics;
use crate::shutdown::Shutdown;
use crate::webhook::Notification;
use periscope_shield::grants::{EndReason, GrantEnded, GrantEvent};

/// Sweep period.
pub const TICK: Duration = Duration::from_millis(250);
/// Sweeps between two checks of the grants live sessions use: a grant another
/// replica ends reaches this replica's sessions within about half a second.
const CHECK_EVERY: u64 = 2;
/// Sweeps between two refreshes of the active-grants gauge.
const GAUGE_EVERY: u64 = 4;
/// Sweeps between two purges of expired session secrets.
const PURGE_EVERY: u64 = 240;
/// Time between two time-based checkpoints, by the gateway clock: besides
/// the writer's one every N events, the chain head is signed at least once a
/// minute when it moved, so the window of events covered only by hashes stays
/// short on a quiet gateway.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// What one sweep ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Swept {
    /// Grants expired by this sweep.
    pub grants: Vec<String>,
    /// Pending requests expired by this sweep.
    pub requests: Vec<String>,
}

impl Gateway {
    /// Publishes a grant's end once per replica, whoever noticed it first.
    pub(crate) fn announce_end(&self, ended: GrantEnded) {
        let first = self
            .inner
            .ended
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ended.grant_id.clone());
        if first {
            self.publish(GrantEvent::Ended(ended));
        }
    }

    /// Expires due grants and pending requests now (also run after a test
    /// clock move, so tests need not wait for the next tick).
    pub async fn sweep(&self) -> Result<Swept, periscope_store::StoreError> {
        let now = self.now();
        let started = Instant::now();
        let audit_time = self.clock().audit_now();
        let grants = self
            .store()
            .expire_due_grants(now, |g| {
                vec![
                    periscope_audit::EventDraft::new(
                        audit_time.clone(),
                        SYSTEM_ACTOR,
                        actions::GRANT_EXPIRE,
                        &g.id,
                    )
                    .with_grant(&g.id)
                    .with_details(json!({
                        "identity": g.identity,
                        "connection": g.connection,
                        "lifts": g.lifts.iter().map(Shield::to_string).collect::<Vec<_>>(),
                        "expires_at": periscope_audit::AuditTime::from_datetime(g.expires_at).ok(),
                        "break_glass": g.break_glass,
                    })),
                ]
            })
            .await?;
        self.count_audit(grants.len(), started);
        let config = self.config();
        for g in &grants {
            tracing::info!(grant = %g.id, identity = %g.identity, connection = %g.connection, "grant expired");
            self.announce_end(GrantEnded {
                grant_id: g.id.clone(),
                identity: g.identity.clone(),
                connection: g.connection.clone(),
                reason: EndReason::Expired,
            });
            self.webhook().notify(
                &config,
                Notification {
                    event: WebhookEvent::Expire,
                    actor: SYSTEM_ACTOR.to_string(),
                    request: None,
                    grant: Some(convert::grant(g, now)),
                },
            );
        }

        let started = Instant::now();
        let requests = self
            .store()
            .expire_pending_requests(now, |r| {
                vec![
                    periscope_audit::EventDraft::new(
                        audit_time.clone(),
                        SYSTEM_ACTOR,
                        actions::REQUEST_EXPIRE,
                        &r.id,
                    )
                    .with_details(json!({
                        "requester": r.requester,
                        "connection": r.connection,
                    })),
                ]
            })
            .await?;
        self.count_audit(requests.len(), started);
        for r in &requests {
            tracing::info!(request = %r.id, "pending request expired undecided");
            self.webhook().notify(
                &config,
                Notification {
                    event: WebhookEvent::Expire,
                    actor: SYSTEM_ACTOR.to_string(),
                    request: Some(convert::request(r)),
                    grant: None,
                },
            );
        }
        Ok(Swept {
            grants: grants.into_iter().map(|g| g.id).collect(),
            requests: requests.into_iter().map(|r| r.id).collect(),
        })
    }

    /// Signs the chain head when no checkpoint covers it yet.
    pub(crate) async fn checkpoint_if_moved(&self) -> Result<(), periscope_store::StoreError> {
        let head = self.store().audit_head().await?;
        if head.seq == 0 {
            return Ok(());
        }
        let latest = self.store().audit_checkpoints(Some(head.seq)).await?;
        if latest.iter().any(|c| c.seq == head.seq) {
            return Ok(());
        }
        let checkpoint = self
            .inner
            .checkpoint_signer
            .sign_checkpoint(head, self.clock().audit_now());
        self.store().add_checkpoint(&checkpoint).await?;
        tracing::debug!(seq = head.seq, "periodic audit checkpoint");
        Ok(())
    }

    /// Ends the live sessions of identities that were disabled, possibly on
    /// another replica (the replica that disabled one ends its own at once).
    async fn check_identities_in_use(&self) -> Result<(), periscope_store::StoreError> {
        for name in self.sessions().identities() {
            match self.store().get_identity(&name).await {
                Ok(identity) if !identity.is_enabled() => {
                    self.cut_sessions_of(
                        &name,
                        crate::api::disabled_notice(&name, "an administrator"),
                    );
                }
                Ok(_) | Err(periscope_store::StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Announces the end of grants live sessions use that another replica
    /// ended, and forgets ends no session cares about any more.
    async fn check_grants_in_use(&self) -> Result<(), periscope_store::StoreError> {
        let in_use = self.sessions().grants_in_use();
        let unseen: Vec<String> = {
            let mut ended = self.inner.ended.lock().unwrap_or_else(|e| e.into_inner());
            ended.retain(|id| in_use.contains(id));
            in_use
                .iter()
                .filter(|id| !ended.contains(*id))
                .cloned()
                .collect()
        };
        let now = self.now();
        for id in unseen {
            let grant = match self.store().get_grant(&id).await {
                Ok(g) => g,
                Err(periscope_store::StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let Some(reason) = EndReason::of(&grant, now) else {
                continue;
            };
            self.announce_end(GrantEnded {
                grant_id: grant.id,
                identity: grant.identity,
                connection: grant.connection,
                reason,
            });
        }
        Ok(())
    }
}

/// Runs until `shutdown`.
pub(crate) async fn run(gateway: Gateway, mut shutdown: Shutdown) {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tick: u64 = 0;
    let mut failing = false;
    let mut next_checkpoint = gateway.now() + CHECKPOINT_INTERVAL;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.wait() => return,
        }
        tick = tick.wrapping_add(1);
        let result = async {
            let next_checkpoint = &mut next_checkpoint;
            gateway.sweep().await?;
            if tick.is_multiple_of(CHECK_EVERY) {
                gateway.check_grants_in_use().await?;
                gateway.check_identities_in_use().await?;
            }
            if tick.is_multiple_of(GAUGE_EVERY) {
                let active = gateway.store().active_grants(gateway.now(), None).await?;
                metrics::grants_active(active.len());
                metrics::upkeep();
            }
            if gateway.now() >= *next_checkpoint {
                *next_checkpoint = gateway.now() + CHECKPOINT_INTERVAL;
                gateway.checkpoint_if_moved().await?;
            }
            if tick.is_multiple_of(PURGE_EVERY) {
                let before = gateway.clock().audit_now();
                gateway
                    .store()
                    .purge_expired_connect_secrets(&before)
                    .await?;
                gateway.store().purge_sso_flows(&before).await?;
                gateway.store().purge_web_sessions(&before).await?;
            }
            Ok::<_, periscope_store::StoreError>(())
        }
        .await;
        match (result, failing) {
            (Ok(()), true) => {
                tracing::info!("expiry sweeps work again");
                failing = false;
            }
            (Err(e), false) => {
                tracing::error!(error = %e, "expiry sweep failed; retrying every tick");
                failing = true;
            }
            _ => {}
        }
    }
}
