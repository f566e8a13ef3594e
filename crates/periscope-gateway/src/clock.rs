//! The gateway's notion of now.
//!
//! Every time-based rule (token expiry, grant expiry, pending-request expiry,
//! audit timestamps, checkpoint times) reads the same [`Clock`], so a test can
//! move time forward by minutes without sleeping, and the store never reads the
//! system clock itself (it takes a [`periscope_store::Clock`] built from this
//! one by [`store_clock`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use periscope_audit::AuditTime;
use time::OffsetDateTime;

/// Largest total shift a [`TestClock`] accepts: far beyond any grant or pending
/// TTL, and far from the year 9999 that audit times cannot spell.
pub const MAX_TEST_CLOCK_SHIFT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A source of the current time, shared by everything in one gateway.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant in UTC, truncated to whole microseconds (the
    /// precision the audit chain and the store keep, so a time read back equals
    /// the time written).
    fn now(&self) -> OffsetDateTime;

    /// The current instant in the audit chain's fixed form.
    fn audit_now(&self) -> AuditTime {
        AuditTime::from_datetime(self.now())
            .expect("gateway clocks stay within years 0000-9999 (test shifts are bounded)")
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        truncate_micros(OffsetDateTime::now_utc())
    }
}

/// The system clock shifted by an offset that tests move forward
/// (`periscope up --test-clock`, then `POST /v1/test/clock`).
///
/// Time keeps flowing between advances, so the gateway behaves exactly as in
/// production, only "later": a 30-minute grant expires after one call instead
/// of after 30 minutes.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_micros: AtomicI64,
}

/// Why a test clock refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The total shift would exceed [`MAX_TEST_CLOCK_SHIFT`].
    #[error(
        "the test clock can move at most {} in total",
        humantime::format_duration(MAX_TEST_CLOCK_SHIFT)
    )]
    TooFar,
}

impl TestClock {
    /// A test clock that starts at the system time.
    pub fn new() -> TestClock {
        TestClock::default()
    }

    /// Moves the clock forward by `by` and returns the new now.
    pub fn advance(&self, by: Duration) -> Result<OffsetDateTime, ClockError> {
        let add = i64::try_from(by.as_micros()).map_err(|_| ClockError::TooFar)?;
        let max = i64::try_from(MAX_TEST_CLOCK_SHIFT.as_micros()).unwrap_or(i64::MAX);
        self.offset_micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |current| {
                current.checked_add(add).filter(|total| *total <= max)
            })
            .map_err(|_| ClockError::TooFar)?;
        Ok(self.now())
    }

    /// How far the clock has been moved in total.
    pub fn shift(&self) -> Duration {
        Duration::from_micros(self.offset_micros.load(Ordering::SeqCst).unsigned_abs())
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        let offset = time::Duration::microseconds(self.offset_micros.load(Ordering::SeqCst));
        truncate_micros(OffsetDateTime::now_utc().saturating_add(offset))
    }
}

/// The store's clock type (used for checkpoint times) reading `clock`.
pub fn store_clock(clock: Arc<dyn Clock>) -> periscope_store::Clock {
    Arc::new(move || clock.audit_now())
}

fn truncate_micros(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.microsecond();
    t.replace_microsecond(micros)
        .expect("a microsecond read from a valid time is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clock_moves_forward_and_refuses_absurd_shifts() {
        let clock = TestClock::new();
        let before = SystemClock.now();
        let moved = clock.advance(Duration::from_secs(3600)).unwrap();
        assert!(moved - before >= time::Duration::minutes(60));
        assert_eq!(clock.shift(), Duration::from_secs(3600));
        assert_eq!(
            clock.advance(MAX_TEST_CLOCK_SHIFT),
            Err(ClockError::TooFar),
            "the total shift is bounded"
        );
        assert_eq!(
            clock.shift(),
            Duration::from_secs(3600),
            "a refused move changes nothing"
        );
    }

    #[test]
    fn now_is_truncated_to_microseconds() {
        let now = SystemClock.now();
        assert_eq!(now.nanosecond() % 1000, 0);
        let audit = SystemClock.audit_now();
        assert_eq!(audit.as_str().len(), periscope_audit::AUDIT_TIME_LEN);
    }
}
