//! Appending events: turning a draft into the next link of the chain.

use crate::event::{AuditEvent, DraftError, EventDraft, EventLine};
use crate::hash::Head;

/// Builds the event that follows `head`: seq `head.seq + 1`, `prev_hash = head.hash`,
/// hash computed.
///
/// Stateless on purpose: a store reads the head inside its serialised transaction,
/// calls this, and inserts the result; if the insert fails nothing here needs
/// rolling back. Use [`Head::GENESIS`] for the first event.
pub fn next_event(head: Head, draft: EventDraft) -> Result<AuditEvent, DraftError> {
    AuditEvent::link(head, draft)
}

/// [`next_event`], also giving the event as one line of an export
/// (`{"type":"event",…}` and a newline, as [`crate::JsonlWriter`] reads it
/// back), built from the canonical text the hash covers: a writer that
/// logs every event it links (the embedded store's redo file) serialises
/// each event once, for the log and for the columns of its index alike.
pub fn next_event_line(
    head: Head,
    draft: EventDraft,
) -> Result<(AuditEvent, EventLine), DraftError> {
    AuditEvent::link_with_line(head, draft)
}

/// An in-memory chain writer that remembers its head: for single-writer uses such as
/// tests, tools and exports built in memory. Stores should use [`next_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    head: Head,
}

impl Chain {
    /// An empty chain; the first appended event gets seq 1.
    pub fn new() -> Self {
        Chain {
            head: Head::GENESIS,
        }
    }

    /// Continues an existing chain whose last event is `head`.
    pub fn resume(head: Head) -> Self {
        Chain { head }
    }

    /// The last event's position ([`Head::GENESIS`] when empty).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Appends `draft` and returns the event to store; the head moves only on success.
    pub fn append(&mut self, draft: EventDraft) -> Result<AuditEvent, DraftError> {
        let event = next_event(self.head, draft)?;
        self.head = event.head();
        Ok(event)
    }
}

impl Default for Chain {
    fn default() -> Self {
        Chain::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ChainHash;
    use crate::timestamp::AuditTime;

    #[test]
    fn links_each_event_to_the_previous_one() {
        let t = AuditTime::from_unix_micros(0).unwrap();
        let mut chain = Chain::new();
        let first = chain
            .append(EventDraft::new(t.clone(), "a", "x", ""))
            .unwrap();
        let second = chain
            .append(EventDraft::new(t.clone(), "a", "x", ""))
            .unwrap();
        assert_eq!((first.seq, first.prev_hash), (1, ChainHash::ZERO));
        assert_eq!((second.seq, second.prev_hash), (2, first.hash));
        assert_ne!(
            first.hash, second.hash,
            "seq is hashed, so equal content differs"
        );
        assert_eq!(chain.head(), second.head());

        // A refused draft leaves the head where it was.
        assert!(chain.append(EventDraft::new(t, "", "x", "")).is_err());
        assert_eq!(chain.head(), second.head());
    }
}
