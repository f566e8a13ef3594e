//! Grants ending under live sessions: the event bus the gateway publishes on,
//! the watcher that cuts a session when a grant it relies on ends, and the
//! seam ([`SessionCut`]) through which a protocol ends its session with a
//! clear message.
//!
//! A session is bound to the grants it started with. When one of them
//! expires or is revoked, the shields it lifted are back for everyone at
//! once (new decisions no longer see it), and every live session that
//! relied on it is cut within the expiry job's period, with a message that
//! names the grant, why it ended and the command to request it again.

mod bus;
mod watch;

pub use bus::{BUS_CAPACITY, EndReason, GrantBus, GrantEnded, GrantEvent, GrantStarted};
pub use watch::{
    CutNotice, GrantLookup, SessionCut, WatchedSession, grant_end_notice, watch_grants,
};
