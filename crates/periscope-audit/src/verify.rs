//! Walking the chain: recompute every hash, check every link and signature, and name
//! the first broken link in words an auditor understands.

use std::collections::BTreeMap;
use std::fmt;

use crate::checkpoint::Checkpoint;
use crate::event::AuditEvent;
use crate::hash::{ChainHash, Head};
use crate::jsonl::JsonlError;
use crate::keys::{AuditVerifierKey, KeyId};

/// Where verification starts, i.e. what is trusted without proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The whole chain: the first event must be seq 1 with a `prev_hash` of zeros.
    Genesis,
    /// Resume after a position already trusted, e.g. the head of an earlier successful
    /// verification or a checkpoint the auditor kept. The first checked event must be
    /// `seq + 1` and link to `hash`; events at or before `seq` are skipped, except that
    /// the event at `seq` itself (if present) must have `hash`.
    After(Head),
    /// A partial export (`--since`): the first event's seq and `prev_hash` are taken as
    /// given. Nothing before it is proven, unless a checkpoint signed exactly the
    /// position before it (then the report says the start is vouched for).
    AsGiven,
}

/// What verification established. Every event it counts was hash-checked and linked;
/// events up to [`VerifyReport::last_checkpoint_seq`] are moreover covered by a valid
/// signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// How the start was chosen.
    pub start: Start,
    /// The position before the first checked event (`None` if no event was checked in
    /// [`Start::AsGiven`] mode).
    pub anchor: Option<Head>,
    /// Whether a verified checkpoint signed exactly `anchor` (always true in spirit for
    /// [`Start::Genesis`], whose anchor is fixed; this field says whether a *signature*
    /// covers it).
    pub anchor_vouched: bool,
    /// Events whose hash and link were checked.
    pub events_checked: u64,
    /// Events skipped because they lie before a [`Start::After`] position.
    pub events_skipped: u64,
    /// Seq of the first checked event.
    pub first_seq: Option<u64>,
    /// The last checked event: the head to resume from next time.
    pub last: Option<Head>,
    /// Checkpoints whose signature and hash were both verified.
    pub checkpoints_verified: u64,
    /// Checkpoints for positions before the start: their signature was checked, but
    /// there was no event to compare their hash with.
    pub checkpoints_before_start: u64,
    /// Highest seq covered by a verified checkpoint.
    pub last_checkpoint_seq: Option<u64>,
    /// Checked events after the last verified checkpoint: hash-linked but not yet
    /// signed, so someone with write access to the store could still have rewritten
    /// them (a warning, not a failure: the gateway signs every N events).
    pub uncovered_events: u64,
}

impl VerifyReport {
    /// Sentences for what verification could *not* establish; empty when the whole
    /// range is proven from a fixed start and signed to the end.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Start::AsGiven, Some(anchor), false) =
            (self.start, self.anchor, self.anchor_vouched)
        {
            out.push(format!(
                "this is a partial chain: the first event (seq {}) links to prev_hash {} \
                 for seq {}, which was trusted as given, not proven",
                anchor.seq + 1,
                anchor.hash,
                anchor.seq
            ));
        }
        if self.events_checked > 0 && self.checkpoints_verified == 0 {
            out.push(
                "no signed checkpoint was verified: the events are consistent with each \
                 other, but nothing proves they were not rewritten as a whole"
                    .to_owned(),
            );
        } else if let (true, Some(last)) = (self.uncovered_events > 0, self.last) {
            out.push(format!(
                "{} event{} after seq {} (up to seq {}) {} not yet covered by a signed \
                 checkpoint",
                self.uncovered_events,
                plural(self.uncovered_events),
                last.seq - self.uncovered_events,
                last.seq,
                if self.uncovered_events == 1 {
                    "is"
                } else {
                    "are"
                },
            ));
        }
        out
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last) {
            (Some(first), Some(last)) => write!(
                f,
                "chain intact: {} event{} verified, seq {} to {}",
                self.events_checked,
                plural(self.events_checked),
                first,
                last.seq
            )?,
            _ => write!(f, "chain intact: no events to verify")?,
        }
        match self.start {
            Start::Genesis => write!(f, ", from the start of the log")?,
            Start::After(head) => write!(f, ", after the trusted position seq {}", head.seq)?,
            Start::AsGiven if self.anchor_vouched => write!(
                f,
                ", from a starting point vouched for by a signed checkpoint"
            )?,
            Start::AsGiven => write!(f, ", from a starting point trusted as given")?,
        }
        writeln!(f)?;
        write!(
            f,
            "{} signed checkpoint{} verified",
            self.checkpoints_verified,
            plural(self.checkpoints_verified)
        )?;
        if let Some(seq) = self.last_checkpoint_seq {
            write!(f, ", the last one at seq {seq}")?;
        }
        if self.checkpoints_before_start > 0 {
            write!(
                f,
                " ({} more before the start, signature only)",
                self.checkpoints_before_start
            )?;
        }
        if let Some(last) = self.last {
            write!(f, "\nlast event: seq {} hash {}", last.seq, last.hash)?;
        }
        for warning in self.warnings() {
            write!(f, "\nwarning: {warning}")?;
        }
        Ok(())
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What the previous hash of a broken link was supposed to come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkFrom {
    /// Seq 1 must link to 64 zeros.
    Genesis,
    /// The first event after a [`Start::After`] position.
    TrustedStart,
    /// The event just before.
    Event,
}

/// The first broken link found, with the seq where the chain stops being trustworthy.
///
/// Each message is one sentence an auditor can act on: which seq, what is wrong, and
/// what tampering (or damage) produces it. `docs/audit.md` lists them all.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// An event claims seq 0; seqs start at 1.
    #[error("an event has seq 0{}, but seqs start at 1", after_text(*after))]
    SeqZero {
        /// Seq of the last good event, if any.
        after: Option<u64>,
    },
    /// Two events with the same seq (a row duplicated, or inserted with a taken seq).
    #[error(
        "event seq {seq} appears twice: a row was duplicated or another was inserted with the same seq"
    )]
    Duplicate {
        /// The repeated seq.
        seq: u64,
    },
    /// An event arrives after one with a higher seq (rows reordered or inserted).
    #[error(
        "event seq {seq} comes after seq {after}: the events are out of order (rows were reordered or inserted)"
    )]
    OutOfOrder {
        /// The seq that came too late.
        seq: u64,
        /// The higher seq before it.
        after: u64,
    },
    /// One or more seqs are skipped (rows deleted).
    #[error("{}", missing_text(*after, *next))]
    Missing {
        /// Last seq present before the gap (0 at the start of the log).
        after: u64,
        /// First seq present after the gap.
        next: u64,
    },
    /// The event's `prev_hash` is not the previous event's hash.
    #[error("{}", link_text(*seq, *from, expected, found))]
    BrokenLink {
        /// The event whose link is broken.
        seq: u64,
        /// What the previous hash should have come from.
        from: LinkFrom,
        /// The hash it should link to.
        expected: ChainHash,
        /// Its `prev_hash`.
        found: ChainHash,
    },
    /// The event's content does not hash to its stored hash (edited in place).
    #[error(
        "event seq {seq} was altered after it was written: its content hashes to {computed}, not to its stored hash {stored}"
    )]
    HashMismatch {
        /// The altered event.
        seq: u64,
        /// Hash stored with the event.
        stored: ChainHash,
        /// Hash of its current content.
        computed: ChainHash,
    },
    /// With [`Start::After`]: the event at the start position is not the trusted one.
    #[error(
        "event seq {seq} has hash {found}, but the trusted starting point says {trusted}: the log was rewritten up to there, or the wrong starting point was given"
    )]
    StartMismatch {
        /// The start position's seq.
        seq: u64,
        /// The hash the caller trusts.
        trusted: ChainHash,
        /// The hash of the event found there.
        found: ChainHash,
    },
    /// A checkpoint names a key the verifier was not given.
    #[error(
        "the checkpoint for seq {seq} is signed by key {key_id}, which is not among the verifier keys given ({})",
        key_list(known)
    )]
    UnknownKey {
        /// The checkpoint's seq.
        seq: u64,
        /// The key it names.
        key_id: KeyId,
        /// The keys the verifier has.
        known: Vec<KeyId>,
    },
    /// A checkpoint's signature does not verify (forged or altered checkpoint).
    #[error(
        "the checkpoint for seq {seq} has an invalid signature for key {key_id}: the checkpoint was forged or altered"
    )]
    BadSignature {
        /// The checkpoint's seq.
        seq: u64,
        /// The key it names.
        key_id: KeyId,
    },
    /// A validly signed checkpoint disagrees with the event at its seq.
    #[error(
        "the signed checkpoint for seq {seq} vouches for hash {signed}, but the log has hash {found} at seq {seq}: events up to seq {seq} were rewritten after they were signed"
    )]
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: u64,
        /// The hash it signed.
        signed: ChainHash,
        /// The hash in the log at that seq.
        found: ChainHash,
    },
    /// In a stream, a checkpoint arrives long after the event it signs.
    #[error(
        "the checkpoint for seq {seq} comes after event seq {after}: a checkpoint must come right after the event it signs, so it cannot be checked"
    )]
    CheckpointOutOfPlace {
        /// The checkpoint's seq.
        seq: u64,
        /// The event already passed.
        after: u64,
    },
    /// The log ends before a validly signed checkpoint (tail cut off).
    #[error("{}", truncated_text(*after, *checkpoint_seq))]
    Truncated {
        /// Last seq present (`None` if there were no events at all).
        after: Option<u64>,
        /// The highest seq a valid checkpoint vouches for.
        checkpoint_seq: u64,
    },
    /// A JSONL export line could not be read as a record.
    #[error("the export is malformed{}: {error}", after_text(*after))]
    Jsonl {
        /// Last good seq before the bad line.
        after: Option<u64>,
        /// The line and what is wrong with it.
        error: JsonlError,
    },
    /// The event source (a store query) failed.
    #[error("could not read the events{}: {source}", after_text(*after))]
    Read {
        /// Last good seq before the failure.
        after: Option<u64>,
        /// The source's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ChainError {
    /// The seq at which the chain stops being trustworthy: the event or checkpoint at
    /// fault, or the first missing seq. `None` when no seq can be named (e.g. an export
    /// that is unreadable before its first event).
    pub fn seq(&self) -> Option<u64> {
        match self {
            ChainError::SeqZero { .. } => Some(0),
            ChainError::Duplicate { seq }
            | ChainError::OutOfOrder { seq, .. }
            | ChainError::BrokenLink { seq, .. }
            | ChainError::HashMismatch { seq, .. }
            | ChainError::StartMismatch { seq, .. }
            | ChainError::UnknownKey { seq, .. }
            | ChainError::BadSignature { seq, .. }
            | ChainError::CheckpointMismatch { seq, .. }
            | ChainError::CheckpointOutOfPlace { seq, .. } => Some(*seq),
            ChainError::Missing { after, .. } => Some(after + 1),
            ChainError::Truncated { after, .. }
            | ChainError::Jsonl { after, .. }
            | ChainError::Read { after, .. } => after.map(|s| s + 1),
        }
    }
}

fn after_text(after: Option<u64>) -> String {
    match after {
        Some(seq) => format!(" after event seq {seq}"),
        None => String::new(),
    }
}

fn missing_text(after: u64, next: u64) -> String {
    let what = if next - after == 2 {
        format!("event seq {} is missing", after + 1)
    } else {
        format!("events seq {} to {} are missing", after + 1, next - 1)
    };
    if after == 0 {
        format!("{what}: the log starts at seq {next} (rows were deleted)")
    } else {
        format!("{what}: seq {after} is followed by seq {next} (rows were deleted)")
    }
}

fn link_text(seq: u64, from: LinkFrom, expected: &ChainHash, found: &ChainHash) -> String {
    match from {
        LinkFrom::Genesis => format!(
            "event seq {seq} should start the log with a prev_hash of 64 zeros, but its \
             prev_hash is {found}: the log's beginning was replaced"
        ),
        LinkFrom::TrustedStart => format!(
            "event seq {seq} does not link to the trusted starting point: its prev_hash is \
             {found}, but the trusted hash of seq {} is {expected}",
            seq - 1
        ),
        LinkFrom::Event => format!(
            "event seq {seq} does not link to event seq {prev}: its prev_hash is {found}, but \
             event seq {prev} has hash {expected} (event seq {prev} was rewritten or replaced, \
             or event seq {seq} was inserted or altered)",
            prev = seq - 1
        ),
    }
}

fn truncated_text(after: Option<u64>, checkpoint_seq: u64) -> String {
    match after {
        Some(seq) if seq > 0 => format!(
            "events after seq {seq} are missing: a signed checkpoint vouches for seq \
             {checkpoint_seq} (the end of the log was cut off)"
        ),
        _ => format!(
            "no events were found, but a signed checkpoint vouches for seq {checkpoint_seq} \
             (the events were deleted)"
        ),
    }
}

fn key_list(keys: &[KeyId]) -> String {
    if keys.is_empty() {
        "none".to_owned()
    } else {
        keys.iter()
            .map(KeyId::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An incremental verifier: feed it checkpoints and events in seq order, then call
/// [`ChainVerifier::finish`].
///
/// Memory stays bounded by the number of checkpoints not yet reached (events are
/// never kept), so it verifies millions of events from a store cursor or a file.
/// Checkpoints may be given all up front (from a store) or interleaved right after
/// the event they sign (from a JSONL export). Stop at the first error: after one,
/// further calls mean nothing.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    keys: &'k [AuditVerifierKey],
    start: Start,
    anchor: Option<Head>,
    head: Option<Head>,
    pending: BTreeMap<u64, Vec<Checkpoint>>,
    gap: Option<(u64, u64)>,
    events_checked: u64,
    events_skipped: u64,
    first_seq: Option<u64>,
    checkpoints_verified: u64,
    checkpoints_before_start: u64,
    covered_through: Option<u64>,
    anchor_vouched: bool,
}

impl<'k> ChainVerifier<'k> {
    /// A verifier trusting `start` and accepting checkpoints signed by any of `keys`
    /// (several when keys were rotated or each replica has its own).
    pub fn new(keys: &'k [AuditVerifierKey], start: Start) -> Self {
        let anchor = match start {
            Start::Genesis => Some(Head::GENESIS),
            Start::After(head) => Some(head),
            Start::AsGiven => None,
        };
        ChainVerifier {
            keys,
            start,
            anchor,
            head: anchor,
            pending: BTreeMap::new(),
            gap: None,
            events_checked: 0,
            events_skipped: 0,
            first_seq: None,
            checkpoints_verified: 0,
            checkpoints_before_start: 0,
            covered_through: None,
            anchor_vouched: false,
        }
    }

    /// Adds a checkpoint: checked now if its event has just been verified, else kept
    /// until that event arrives (or reported as truncation if it never does).
    pub fn add_checkpoint(&mut self, checkpoint: Checkpoint) -> Result<(), ChainError> {
        let Some(head) = self.head else {
            self.pending
                .entry(checkpoint.seq)
                .or_default()
                .push(checkpoint);
            return Ok(());
        };
        if checkpoint.seq > head.seq {
            self.pending
                .entry(checkpoint.seq)
                .or_default()
                .push(checkpoint);
            Ok(())
        } else if checkpoint.seq == head.seq {
            self.settle(&checkpoint, head)
        } else if self.events_checked == 0 {
            self.check_signature(&checkpoint)?;
            self.checkpoints_before_start += 1;
            Ok(())
        } else {
            Err(ChainError::CheckpointOutOfPlace {
                seq: checkpoint.seq,
                after: head.seq,
            })
        }
    }

    /// Checks one event: its seq follows the last one, its `prev_hash` links to it, and
    /// its content hashes to its `hash`; then settles checkpoints for its seq.
    pub fn add_event(&mut self, event: &AuditEvent) -> Result<(), ChainError> {
        if let Some((after, next)) = self.gap.take() {
            // One event of look-ahead turns "missing" into the more precise "out of
            // order" when the skipped seq shows up right after.
            return Err(if event.seq == after + 1 {
                ChainError::OutOfOrder {
                    seq: event.seq,
                    after: next,
                }
            } else {
                ChainError::Missing { after, next }
            });
        }
        if event.seq == 0 {
            return Err(ChainError::SeqZero {
                after: self.last_seq(),
            });
        }
        let head = match self.head {
            Some(head) => head,
            None => self.anchor_on(event)?,
        };
        if event.seq <= head.seq {
            return self.before_head(event, head);
        }
        if event.seq > head.seq + 1 {
            self.gap = Some((head.seq, event.seq));
            return Ok(());
        }
        if event.prev_hash != head.hash {
            let from = if self.events_checked > 0 {
                LinkFrom::Event
            } else if self.start == Start::Genesis {
                LinkFrom::Genesis
            } else {
                LinkFrom::TrustedStart
            };
            return Err(ChainError::BrokenLink {
                seq: event.seq,
                from,
                expected: head.hash,
                found: event.prev_hash,
            });
        }
        let computed = event.compute_hash();
        if computed != event.hash {
            return Err(ChainError::HashMismatch {
                seq: event.seq,
                stored: event.hash,
                computed,
            });
        }
        let head = event.head();
        self.head = Some(head);
        self.events_checked += 1;
        self.first_seq.get_or_insert(event.seq);
        if let Some(checkpoints) = self.pending.remove(&event.seq) {
            for checkpoint in &checkpoints {
                self.settle(checkpoint, head)?;
            }
        }
        Ok(())
    }

    /// Ends the walk: reports a trailing gap, then any validly signed checkpoint beyond
    /// the last event (the tail was cut), else the report.
    pub fn finish(self) -> Result<VerifyReport, ChainError> {
        if let Some((after, next)) = self.gap {
            return Err(ChainError::Missing { after, next });
        }
        let mut beyond = None;
        for checkpoint in self.pending.values().flatten() {
            self.check_signature(checkpoint)?;
            beyond = Some(checkpoint.seq);
        }
        if let Some(checkpoint_seq) = beyond {
            return Err(ChainError::Truncated {
                after: self.head.map(|h| h.seq),
                checkpoint_seq,
            });
        }
        let last = if self.events_checked > 0 {
            self.head
        } else {
            None
        };
        let uncovered_events = match (last, self.covered_through) {
            (None, _) => 0,
            (Some(last), Some(covered)) => last.seq - covered,
            (Some(_), None) => self.events_checked,
        };
        Ok(VerifyReport {
            start: self.start,
            anchor: self.anchor,
            anchor_vouched: self.anchor_vouched,
            events_checked: self.events_checked,
            events_skipped: self.events_skipped,
            first_seq: self.first_seq,
            last,
            checkpoints_verified: self.checkpoints_verified,
            checkpoints_before_start: self.checkpoints_before_start,
            last_checkpoint_seq: self.covered_through,
            uncovered_events,
        })
    }

    /// Seq of the last checked event, for error messages.
    pub fn last_seq(&self) -> Option<u64> {
        if self.events_checked > 0 {
            self.head.map(|h| h.seq)
        } else {
            None
        }
    }

    /// [`Start::AsGiven`]: the first event fixes the anchor; checkpoints held so far are
    /// either before it (signature only), at it (vouching for it) or kept.
    fn anchor_on(&mut self, event: &AuditEvent) -> Result<Head, ChainError> {
        let anchor = Head {
            seq: event.seq - 1,
            hash: event.prev_hash,
        };
        self.anchor = Some(anchor);
        self.head = Some(anchor);
        let later = self.pending.split_off(&(anchor.seq + 1));
        let early = std::mem::replace(&mut self.pending, later);
        for checkpoint in early.into_values().flatten() {
            if checkpoint.seq == anchor.seq {
                self.settle(&checkpoint, anchor)?;
            } else {
                self.check_signature(&checkpoint)?;
                self.checkpoints_before_start += 1;
            }
        }
        Ok(anchor)
    }

    /// An event at or before the head: skipped before a trusted start, else a
    /// duplicate or out of order.
    fn before_head(&mut self, event: &AuditEvent, head: Head) -> Result<(), ChainError> {
        if self.events_checked == 0 {
            if event.seq == head.seq && event.hash != head.hash {
                return Err(ChainError::StartMismatch {
                    seq: event.seq,
                    trusted: head.hash,
                    found: event.hash,
                });
            }
            self.events_skipped += 1;
            return Ok(());
        }
        Err(if event.seq == head.seq {
            ChainError::Duplicate { seq: event.seq }
        } else {
            ChainError::OutOfOrder {
                seq: event.seq,
                after: head.seq,
            }
        })
    }

    fn check_signature(&self, checkpoint: &Checkpoint) -> Result<(), ChainError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.key_id() == checkpoint.key_id)
            .ok_or_else(|| ChainError::UnknownKey {
                seq: checkpoint.seq,
                key_id: checkpoint.key_id,
                known: self.keys.iter().map(AuditVerifierKey::key_id).collect(),
            })?;
        if key.verify_checkpoint(checkpoint) {
            Ok(())
        } else {
            Err(ChainError::BadSignature {
                seq: checkpoint.seq,
                key_id: checkpoint.key_id,
            })
        }
    }

    /// Verifies a checkpoint against the chain position `at` (same seq).
    fn settle(&mut self, checkpoint: &Checkpoint, at: Head) -> Result<(), ChainError> {
        self.check_signature(checkpoint)?;
        if checkpoint.hash != at.hash {
            return Err(ChainError::CheckpointMismatch {
                seq: at.seq,
                signed: checkpoint.hash,
                found: at.hash,
            });
        }
        self.checkpoints_verified += 1;
        self.covered_through = Some(self.covered_through.map_or(at.seq, |c| c.max(at.seq)));
        if self.events_checked == 0 {
            self.anchor_vouched = true;
        }
        Ok(())
    }
}

/// Verifies a chain read from a store: `events` in seq order (a cursor, never
/// collected), `checkpoints` all at once (they are few).
///
/// Returns the report, or the first broken link. Errors from the event source stop
/// verification and are reported as [`ChainError::Read`].
pub fn verify<I, E, C>(
    events: I,
    checkpoints: C,
    keys: &[AuditVerifierKey],
    start: Start,
) -> Result<VerifyReport, ChainError>
where
    I: IntoIterator<Item = Result<AuditEvent, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    C: IntoIterator<Item = Checkpoint>,
{
    let mut verifier = ChainVerifier::new(keys, start);
    for checkpoint in checkpoints {
        verifier.add_checkpoint(checkpoint)?;
    }
    for event in events {
        let event = event.map_err(|source| ChainError::Read {
            after: verifier.last_seq(),
            source: source.into(),
        })?;
        verifier.add_event(&event)?;
    }
    verifier.finish()
}
