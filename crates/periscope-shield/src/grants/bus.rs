//! The in-process grant event bus.
//!
//! When a grant ends (expiry or revocation) every live session that relies on
//! it must lose the lifted shields within a second. The gateway publishes a
//! [`GrantEvent`] here the moment the end is committed; proxies subscribe
//! once and re-decide or cut the sessions concerned. Across replicas, the
//! expiry task also announces the end of any grant a local session uses that
//! another replica ended (see `crate::expiry`); LISTEN/NOTIFY can replace that
//! poll later without changing subscribers.

use periscope_policy::{Grant, GrantStatus};
use time::OffsetDateTime;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it sees
/// [`broadcast::error::RecvError::Lagged`]; a subscriber that lags must
/// re-check every grant its sessions use.
pub const BUS_CAPACITY: usize = 1024;

/// Why a grant ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// It reached its expiry time.
    Expired,
    /// Someone revoked it.
    Revoked {
        /// Who revoked it.
        by: String,
    },
}

impl EndReason {
    /// Why `grant` no longer lifts its shields at `now`, read from the store's
    /// record (for a subscriber that missed the event itself); `None` while
    /// it is scheduled or in force.
    pub fn of(grant: &Grant, now: OffsetDateTime) -> Option<EndReason> {
        match grant.status(now) {
            GrantStatus::Active | GrantStatus::Scheduled => None,
            GrantStatus::Revoked => Some(EndReason::Revoked {
                by: grant.revoked_by.clone().unwrap_or_default(),
            }),
            GrantStatus::Expired => Some(EndReason::Expired),
        }
    }
}

/// A grant stopped lifting its shields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantEnded {
    /// The grant.
    pub grant_id: String,
    /// Whose grant it was.
    pub identity: String,
    /// The connection it applied to.
    pub connection: String,
    /// Expiry or revocation.
    pub reason: EndReason,
}

/// A grant became active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantStarted {
    /// The grant.
    pub grant_id: String,
    /// Whose grant it is.
    pub identity: String,
    /// The connection it applies to.
    pub connection: String,
}

/// What the bus carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrantEvent {
    /// A grant started (sessions opened later will see it; live sessions keep
    /// the shields they started with).
    Started(GrantStarted),
    /// A grant ended: sessions relying on it must re-decide or end.
    Ended(GrantEnded),
}

/// Sender side of the bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct GrantBus {
    sender: broadcast::Sender<GrantEvent>,
}

impl Default for GrantBus {
    fn default() -> Self {
        GrantBus::new()
    }
}

impl GrantBus {
    /// An empty bus.
    pub fn new() -> GrantBus {
        let (sender, _) = broadcast::channel(BUS_CAPACITY);
        GrantBus { sender }
    }

    /// Publishes to every current subscriber (none is fine).
    pub fn publish(&self, event: GrantEvent) {
        tracing::debug!(?event, "grant event");
        let _ = self.sender.send(event);
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<GrantEvent> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn grant(now: OffsetDateTime) -> Grant {
        Grant {
            id: "gr_1".into(),
            request_id: "rq_1".into(),
            identity: "alice".into(),
            connection: "pg-prod".into(),
            lifts: Vec::new(),
            role: "dev".into(),
            starts_at: now - Duration::minutes(10),
            expires_at: now + Duration::minutes(20),
            revoked_at: None,
            revoked_by: None,
            break_glass: false,
            reason: "INC-1".into(),
            approvers: Vec::new(),
        }
    }

    #[test]
    fn end_reason_is_read_from_the_grant_record() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let live = grant(now);
        assert_eq!(EndReason::of(&live, now), None);
        let scheduled = Grant {
            starts_at: now + Duration::minutes(1),
            ..grant(now)
        };
        assert_eq!(EndReason::of(&scheduled, now), None);
        let revoked = Grant {
            revoked_at: Some(now - Duration::seconds(1)),
            revoked_by: Some("bob".into()),
            ..grant(now)
        };
        assert_eq!(
            EndReason::of(&revoked, now),
            Some(EndReason::Revoked { by: "bob".into() })
        );
        assert_eq!(
            EndReason::of(&live, now + Duration::minutes(20)),
            Some(EndReason::Expired)
        );
    }
}
