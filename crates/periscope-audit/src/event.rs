//! Audit events and the exact bytes their hash covers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::{Sink, write_string, write_value};
use crate::hash::{ChainHash, Head};
use crate::timestamp::AuditTime;

/// Prefix of every event's hashed bytes. It names the format version, so a future
/// layout can never produce a hash that a v1 verifier would accept, and event hashes
/// can never collide with other SHA-256 uses (checkpoint messages have their own prefix).
pub const EVENT_HASH_DOMAIN: &[u8] = b"periscope-audit-v1\n";

/// What a writer knows about something that happened, before it takes its place in
/// the chain.
///
/// `details` is stored as is and kept forever, readable by every auditor: it must
/// never carry a secret or an unmasked sensitive value. Query text goes in with its
/// literals already redacted by the proxy; counts, names of shields, entity classes
/// and ids are fine, values are not. Prefer integers over floats in `details`
/// (durations in microseconds, counts): integers hash the same in every language,
/// see `docs/audit.md`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventDraft {
    /// When it happened.
    pub time: AuditTime,
    /// Who did it: an identity name, or `periscope` for the gateway itself.
    pub actor: String,
    /// What happened: a dotted lowercase name, see [`crate::actions`].
    pub action: String,
    /// What it was done to (`pg-prod`, a request id...); empty when nothing.
    pub target: String,
    /// Structured facts about the event (never secrets or unmasked values).
    pub details: Value,
    /// The grants in force for this action, so an auditor can tie every use of a
    /// lifted shield to the approval behind it.
    pub grant_ids: Vec<String>,
}

impl EventDraft {
    /// A draft with empty `details` (`{}`) and no grants; add them with the builders.
    pub fn new(
        time: AuditTime,
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        EventDraft {
            time,
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            details: Value::Object(serde_json::Map::new()),
            grant_ids: Vec::new(),
        }
    }

    /// Sets `details`.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Adds a grant id.
    #[must_use]
    pub fn with_grant(mut self, grant_id: impl Into<String>) -> Self {
        self.grant_ids.push(grant_id.into());
        self
    }

    /// Refuses drafts that could not be told apart or searched for later.
    pub(crate) fn check(&self) -> Result<(), DraftError> {
        if self.actor.is_empty() {
            return Err(DraftError::EmptyActor);
        }
        if self.action.is_empty() {
            return Err(DraftError::EmptyAction);
        }
        if self
            .action
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(DraftError::BadAction(self.action.clone()));
        }
        if self.grant_ids.iter().any(String::is_empty) {
            return Err(DraftError::EmptyGrantId);
        }
        Ok(())
    }
}

/// Why a draft could not be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// Every event must say who acted.
    #[error("an audit event needs an actor")]
    EmptyActor,
    /// Every event must say what happened.
    #[error("an audit event needs an action")]
    EmptyAction,
    /// Action names are dotted words, so they can be searched and grouped.
    #[error("action {0:?} contains whitespace or control characters")]
    BadAction(String),
    /// A grant id that is empty ties the event to nothing.
    #[error("an audit event lists an empty grant id")]
    EmptyGrantId,
    /// The chain has reached `u64::MAX` events (not expected in practice).
    #[error("the audit chain is full: seq cannot go past {}", u64::MAX)]
    ChainFull,
}

/// One record of the hash-chained log, as stored and exported.
///
/// Fields are public so a store can rebuild an event from its columns; nothing here
/// is trusted until a verifier has recomputed `hash` and checked the links.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// Position in the chain: 1 for the first event, then +1 with no gaps.
    pub seq: u64,
    /// When it happened.
    pub time: AuditTime,
    /// Who did it.
    pub actor: String,
    /// What happened (dotted lowercase name).
    pub action: String,
    /// What it was done to; empty when nothing.
    pub target: String,
    /// Structured facts (never secrets or unmasked values).
    pub details: Value,
    /// Grants in force for this action.
    pub grant_ids: Vec<String>,
    /// `hash` of event `seq - 1`, or [`ChainHash::ZERO`] for seq 1.
    pub prev_hash: ChainHash,
    /// SHA-256 over [`EVENT_HASH_DOMAIN`], `prev_hash` and the canonical JSON of the
    /// other fields; see [`AuditEvent::hashed_bytes`].
    pub hash: ChainHash,
}

impl AuditEvent {
    /// Recomputes the hash from the content and `prev_hash`, ignoring the stored `hash`.
    pub fn compute_hash(&self) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(EVENT_HASH_DOMAIN);
        hasher.update(self.prev_hash.as_bytes());
        write_body(&mut hasher, self);
        ChainHash::from_bytes(hasher.finalize().into())
    }

    /// The exact bytes whose SHA-256 is the event hash:
    /// `"periscope-audit-v1\n"`, then the 32 raw bytes of `prev_hash`, then the
    /// canonical JSON of `{action, actor, details, grant_ids, seq, target, time}`.
    /// For auditors re-implementing the verifier and for debugging a mismatch.
    pub fn hashed_bytes(&self) -> Vec<u8> {
        let mut out = EVENT_HASH_DOMAIN.to_vec();
        out.extend_from_slice(self.prev_hash.as_bytes());
        out.extend_from_slice(self.canonical_body().as_bytes());
        out
    }

    /// The canonical JSON of the hashed fields (everything but `prev_hash` and `hash`).
    pub fn canonical_body(&self) -> String {
        let mut out = String::new();
        write_body(&mut out, self);
        out
    }

    /// This event as a chain position, to append after it or to sign it.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// [`AuditEvent::link`], and the event's export line made from the
    /// canonical body it hashed (see [`crate::next_event_line`]).
    pub(crate) fn link_with_line(
        prev: Head,
        draft: EventDraft,
    ) -> Result<(AuditEvent, EventLine), DraftError> {
        let mut event = AuditEvent::unlinked(prev, draft)?;
        let body = MarkedBody::of(&event);
        let mut hasher = Sha256::new();
        hasher.update(EVENT_HASH_DOMAIN);
        hasher.update(event.prev_hash.as_bytes());
        hasher.update(body.text.as_bytes());
        event.hash = ChainHash::from_bytes(hasher.finalize().into());
        let line = body.into_line(&event);
        Ok((event, line))
    }

    /// This event's export line, as [`crate::next_event_line`] gives it
    /// (the stored `hash` is taken as given): for a store that keeps the
    /// columns of events it did not link itself in the same encoding.
    pub fn to_line(&self) -> EventLine {
        MarkedBody::of(self).into_line(self)
    }

    /// Builds the event that follows `prev` (whose hash is taken as given).
    pub(crate) fn link(prev: Head, draft: EventDraft) -> Result<AuditEvent, DraftError> {
        let mut event = AuditEvent::unlinked(prev, draft)?;
        event.hash = event.compute_hash();
        Ok(event)
    }

    /// The event that follows `prev`, with its hash still zero.
    fn unlinked(prev: Head, draft: EventDraft) -> Result<AuditEvent, DraftError> {
        draft.check()?;
        let seq = prev.seq.checked_add(1).ok_or(DraftError::ChainFull)?;
        let EventDraft {
            time,
            actor,
            action,
            target,
            details,
            grant_ids,
        } = draft;
        let event = AuditEvent {
            seq,
            time,
            actor,
            action,
            target,
            details,
            grant_ids,
            prev_hash: prev.hash,
            hash: ChainHash::ZERO,
        };
        Ok(event)
    }
}

/// Writes the hashed fields as one canonical JSON object. The members are written in
/// sorted key order by hand (a test checks this equals `canonical_json` of the same
/// object), so hashing needs no intermediate `Value`.
fn write_body(out: &mut impl Sink, e: &AuditEvent) {
    write_body_start(out, e);
    write_value(out, &e.details);
    out.push(GRANT_IDS_KEY);
    write_grant_ids(out, &e.grant_ids);
    write_body_end(out, e);
}

/// What separates `details` from `grant_ids` in the body.
const GRANT_IDS_KEY: &str = ",\"grant_ids\":";

/// The body up to the value of `details`.
fn write_body_start(out: &mut impl Sink, e: &AuditEvent) {
    out.push("{\"action\":");
    write_string(out, &e.action);
    out.push(",\"actor\":");
    write_string(out, &e.actor);
    out.push(",\"details\":");
}

fn write_grant_ids(out: &mut impl Sink, grant_ids: &[String]) {
    out.push("[");
    for (i, id) in grant_ids.iter().enumerate() {
        if i > 0 {
            out.push(",");
        }
        write_string(out, id);
    }
    out.push("]");
}

/// The body after the value of `grant_ids`.
fn write_body_end(out: &mut impl Sink, e: &AuditEvent) {
    out.push(",\"seq\":");
    out.push(&e.seq.to_string());
    out.push(",\"target\":");
    write_string(out, &e.target);
    out.push(",\"time\":");
    write_string(out, e.time.as_str());
    out.push("}");
}

/// Length of an event line's `{"type":"event","prev_hash":"…","hash":"…",`.
const LINE_PREFIX_LEN: usize = 29 + 64 + 10 + 64 + 2;

/// An event's canonical body, with where `details` and `grant_ids` sit in it.
struct MarkedBody {
    text: String,
    details: std::ops::Range<usize>,
    grant_ids: std::ops::Range<usize>,
}

impl MarkedBody {
    fn of(event: &AuditEvent) -> MarkedBody {
        let mut text = String::with_capacity(512);
        write_body_start(&mut text, event);
        let details_at = text.len();
        write_value(&mut text, &event.details);
        let details = details_at..text.len();
        text.push_str(GRANT_IDS_KEY);
        let grant_ids_at = text.len();
        write_grant_ids(&mut text, &event.grant_ids);
        let grant_ids = grant_ids_at..text.len();
        write_body_end(&mut text, event);
        MarkedBody {
            text,
            details,
            grant_ids,
        }
    }

    /// The export line: the record's type and `event`'s two hashes in front
    /// of the body's members.
    fn into_line(self, event: &AuditEvent) -> EventLine {
        let mut text = String::with_capacity(self.text.len() + LINE_PREFIX_LEN + 1);
        text.push_str("{\"type\":\"event\",\"prev_hash\":\"");
        event.prev_hash.push_hex(&mut text);
        text.push_str("\",\"hash\":\"");
        event.hash.push_hex(&mut text);
        text.push_str("\",");
        debug_assert_eq!(text.len(), LINE_PREFIX_LEN);
        // The body's `{` is not in the line.
        text.push_str(&self.text[1..]);
        text.push('\n');
        let shift = |range: std::ops::Range<usize>| {
            range.start - 1 + LINE_PREFIX_LEN..range.end - 1 + LINE_PREFIX_LEN
        };
        EventLine {
            text,
            details: shift(self.details),
            grant_ids: shift(self.grant_ids),
        }
    }
}

/// An event's export line (see [`crate::next_event_line`]), which also
/// holds each column a store keeps as encoded text: a store that logs the
/// line and indexes the event in a table takes those columns from it
/// instead of serialising the event a second time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    text: String,
    details: std::ops::Range<usize>,
    grant_ids: std::ops::Range<usize>,
}

impl EventLine {
    /// The line, ending with a newline, as [`crate::JsonlReader`] reads it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `details` as canonical JSON (the bytes its hash covers).
    pub fn details(&self) -> &str {
        &self.text[self.details.clone()]
    }

    /// `grant_ids` as a canonical JSON array.
    pub fn grant_ids(&self) -> &str {
        &self.text[self.grant_ids.clone()]
    }

    /// `prev_hash` in lowercase hex.
    pub fn prev_hash(&self) -> &str {
        &self.text[29..29 + 64]
    }

    /// `hash` in lowercase hex.
    pub fn hash(&self) -> &str {
        &self.text[29 + 64 + 10..LINE_PREFIX_LEN - 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::canonical_json;
    use serde_json::json;

    fn sample() -> AuditEvent {
        AuditEvent::link(
            Head::GENESIS,
            EventDraft::new(
                AuditTime::parse("2026-11-29T05:00:00.123456Z").unwrap(),
                "alice",
                "query",
                "pg-prod",
            )
            .with_details(json!({"z": 1, "sql": "SELECT \"x\" FROM t WHERE a = $1"}))
            .with_grant("g-1")
            .with_grant("g-0"),
        )
        .unwrap()
    }

    #[test]
    fn body_is_the_canonical_json_of_the_hashed_fields() {
        let e = sample();
        let mut as_value = serde_json::to_value(&e).unwrap();
        let map = as_value.as_object_mut().unwrap();
        map.remove("hash");
        map.remove("prev_hash");
        assert_eq!(e.canonical_body(), canonical_json(&as_value));
    }

    #[test]
    fn hashed_bytes_hash_to_the_event_hash() {
        let e = sample();
        let digest: [u8; 32] = Sha256::digest(e.hashed_bytes()).into();
        assert_eq!(ChainHash::from_bytes(digest), e.hash);
        assert_eq!(e.compute_hash(), e.hash);
    }

    #[test]
    fn an_event_line_reads_back_as_the_same_event() {
        let draft = EventDraft::new(
            AuditTime::parse("2026-11-29T05:00:00.123456Z").unwrap(),
            "alice",
            "query",
            "pg-prod",
        )
        .with_details(json!({"z": 1.5, "sql": "SELECT \"x\"\n", "n": [1, -2]}))
        .with_grant("g-1");
        let prev = sample().head();
        let (event, line) = AuditEvent::link_with_line(prev, draft.clone()).unwrap();
        assert_eq!(event, AuditEvent::link(prev, draft).unwrap());
        assert!(line.as_str().ends_with('\n'));
        // The stored columns it hands out read back as the event's.
        let details: serde_json::Value = serde_json::from_str(line.details()).unwrap();
        assert_eq!(details, event.details);
        let grants: Vec<String> = serde_json::from_str(line.grant_ids()).unwrap();
        assert_eq!(grants, event.grant_ids);
        assert_eq!(line.prev_hash(), event.prev_hash.to_hex());
        assert_eq!(line.hash(), event.hash.to_hex());
        assert_eq!(
            event.to_line(),
            line,
            "an event read back gives the same line"
        );
        let mut records = crate::JsonlReader::new(line.as_str().as_bytes());
        match records.next() {
            Some(Ok(crate::JsonlRecord::Event(read))) => assert_eq!(read, event),
            other => panic!("not an event line: {other:?}"),
        }
        assert!(records.next().is_none());
    }

    #[test]
    fn every_hashed_field_changes_the_hash() {
        let e = sample();
        let edits: Vec<fn(&mut AuditEvent)> = vec![
            |e| e.seq += 1,
            |e| e.time = AuditTime::parse("2026-11-29T05:00:00.123457Z").unwrap(),
            |e| e.actor.push('x'),
            |e| e.action.push('x'),
            |e| e.target.push('x'),
            |e| e.details["z"] = json!(2),
            |e| e.grant_ids.swap(0, 1),
            |e| e.prev_hash = ChainHash::from_bytes([1; 32]),
        ];
        for edit in edits {
            let mut changed = e.clone();
            edit(&mut changed);
            assert_ne!(changed.compute_hash(), e.hash, "{changed:?}");
        }
    }

    #[test]
    fn refuses_bad_drafts() {
        let t = AuditTime::parse("2026-11-29T05:00:00.123456Z").unwrap();
        let cases = [
            (
                EventDraft::new(t.clone(), "", "query", ""),
                "an audit event needs an actor",
            ),
            (
                EventDraft::new(t.clone(), "a", "", ""),
                "an audit event needs an action",
            ),
            (
                EventDraft::new(t.clone(), "a", "query run", ""),
                "action \"query run\" contains whitespace or control characters",
            ),
            (
                EventDraft::new(t.clone(), "a", "query", "").with_grant(""),
                "an audit event lists an empty grant id",
            ),
        ];
        for (draft, message) in cases {
            let err = AuditEvent::link(Head::GENESIS, draft).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
        let full = Head {
            seq: u64::MAX,
            hash: ChainHash::ZERO,
        };
        assert_eq!(
            AuditEvent::link(full, EventDraft::new(t, "a", "query", "")),
            Err(DraftError::ChainFull)
        );
    }
}
