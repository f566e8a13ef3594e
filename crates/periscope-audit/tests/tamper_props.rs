//! Property tests: in a random chain with random checkpoints, any single tampering is
//! detected (or provably undetectable without a signature, which is asserted too), the
//! error names the right seq, and a store read and a JSONL export agree.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use crate::common::{checkpoints, draft, events, rehash_from, signer, time};
use periscope_audit::{
    AuditEvent, ChainError, ChainHash, Checkpoint, Start, next_event, verify, verify_jsonl,
    write_jsonl,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

#[derive(Clone, Debug)]
enum Tamper {
    /// Change one field of event k in place (field 0..8).
    Edit(Index, u8),
    /// Change event k and recompute its own hash.
    EditRehash(Index),
    /// Change event k and recompute every hash from there on.
    Rewrite(Index),
    /// Delete event k.
    Delete(Index),
    /// Delete event k and renumber the following ones.
    DeleteRenumber(Index),
    /// Swap events k and k+1 in the stream.
    Swap(Index),
    /// Swap the contents of events k and k+1, keeping seqs in place.
    SwapContent(Index),
    /// Duplicate event k.
    Duplicate(Index),
    /// Insert a well-formed forged event with seq k (taken), before the old k.
    Insert(Index),
    /// Insert a forged event at seq k and renumber the rest.
    InsertRenumber(Index),
    /// Keep only the first m events.
    Truncate(Index),
    /// Change one field of one checkpoint (0 seq, 1 hash, 2 time, 3 signature).
    Checkpoint(Index, u8),
}

fn tamper_strategy() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, f)| Tamper::Edit(i, f)),
        any::<Index>().prop_map(Tamper::EditRehash),
        any::<Index>().prop_map(Tamper::Rewrite),
        any::<Index>().prop_map(Tamper::Delete),
        any::<Index>().prop_map(Tamper::DeleteRenumber),
        any::<Index>().prop_map(Tamper::Swap),
        any::<Index>().prop_map(Tamper::SwapContent),
        any::<Index>().prop_map(Tamper::Duplicate),
        any::<Index>().prop_map(Tamper::Insert),
        any::<Index>().prop_map(Tamper::InsertRenumber),
        any::<Index>().prop_map(Tamper::Truncate),
        (any::<Index>(), 0u8..4).prop_map(|(i, f)| Tamper::Checkpoint(i, f)),
    ]
}

/// What verification must say: the seq reported and the kind of error, or `None`
/// when the tampering cannot be detected without a signature after it.
type Expected = Option<(u64, &'static str)>;

fn kind(e: &ChainError) -> &'static str {
    match e {
        ChainError::SeqZero { .. } => "seq-zero",
        ChainError::Duplicate { .. } => "duplicate",
        ChainError::OutOfOrder { .. } => "out-of-order",
        ChainError::Missing { .. } => "missing",
        ChainError::BrokenLink { .. } => "broken-link",
        ChainError::HashMismatch { .. } => "hash-mismatch",
        ChainError::StartMismatch { .. } => "start-mismatch",
        ChainError::UnknownKey { .. } => "unknown-key",
        ChainError::BadSignature { .. } => "bad-signature",
        ChainError::CheckpointMismatch { .. } => "checkpoint-mismatch",
        ChainError::CheckpointOutOfPlace { .. } => "checkpoint-out-of-place",
        ChainError::Truncated { .. } => "truncated",
        ChainError::Jsonl { .. } => "jsonl",
        ChainError::Read { .. } => "read",
    }
}

fn forged(prev: &AuditEvent) -> AuditEvent {
    next_event(
        prev.head(),
        draft(prev.seq + 1).with_details(json!({"forged": true})),
    )
    .unwrap()
}

/// Applies `tamper` to a chain of n events with checkpoints at `cp_seqs`; returns the
/// tampered events and checkpoints and what verification must report.
fn apply(
    tamper: &Tamper,
    mut ev: Vec<AuditEvent>,
    mut cps: Vec<Checkpoint>,
) -> Option<(Vec<AuditEvent>, Vec<Checkpoint>, Expected)> {
    let n = ev.len() as u64;
    let has_cp = |cps: &[Checkpoint], seq: u64| cps.iter().any(|c| c.seq == seq);
    let max_cp = cps.iter().map(|c| c.seq).max();
    let expected: Expected = match *tamper {
        Tamper::Edit(i, field) => {
            let k = i.index(ev.len());
            let e = &mut ev[k];
            match field {
                0 => e.time = time(e.seq + 10_000),
                1 => e.actor.push('x'),
                2 => e.action.push('x'),
                3 => e.target.push('x'),
                4 => e.details["tampered"] = json!(true),
                5 => e.grant_ids.push("g-extra".into()),
                6 => e.hash = ChainHash::from_bytes([0xee; 32]),
                _ => e.prev_hash = ChainHash::from_bytes([0xee; 32]),
            }
            let kind = if field == 7 {
                "broken-link"
            } else {
                "hash-mismatch"
            };
            Some((k as u64 + 1, kind))
        }
        Tamper::EditRehash(i) => {
            let k = i.index(ev.len());
            ev[k].target = "elsewhere".into();
            ev[k].hash = ev[k].compute_hash();
            let seq = k as u64 + 1;
            if has_cp(&cps, seq) {
                Some((seq, "checkpoint-mismatch"))
            } else if seq < n {
                Some((seq + 1, "broken-link"))
            } else {
                None
            }
        }
        Tamper::Rewrite(i) => {
            let k = i.index(ev.len());
            ev[k].target = "elsewhere".into();
            rehash_from(&mut ev, k);
            let seq = k as u64 + 1;
            cps.iter()
                .map(|c| c.seq)
                .filter(|&s| s >= seq)
                .min()
                .map(|s| (s, "checkpoint-mismatch"))
        }
        Tamper::Delete(i) => {
            let k = i.index(ev.len());
            ev.remove(k);
            let seq = k as u64 + 1;
            if seq < n {
                Some((seq, "missing"))
            } else if has_cp(&cps, n) {
                Some((n, "truncated"))
            } else {
                None
            }
        }
        Tamper::DeleteRenumber(i) => {
            let k = i.index(ev.len());
            ev.remove(k);
            for e in &mut ev[k..] {
                e.seq -= 1;
            }
            let seq = k as u64 + 1;
            if seq < n {
                Some((seq, "broken-link"))
            } else if has_cp(&cps, n) {
                Some((n, "truncated"))
            } else {
                None
            }
        }
        Tamper::Swap(i) => {
            if n < 2 {
                return None;
            }
            let k = i.index(ev.len() - 1);
            ev.swap(k, k + 1);
            Some((k as u64 + 1, "out-of-order"))
        }
        Tamper::SwapContent(i) => {
            if n < 2 {
                return None;
            }
            let k = i.index(ev.len() - 1);
            ev.swap(k, k + 1);
            ev[k].seq -= 1;
            ev[k + 1].seq += 1;
            Some((k as u64 + 1, "broken-link"))
        }
        Tamper::Duplicate(i) => {
            let k = i.index(ev.len());
            ev.insert(k + 1, ev[k].clone());
            Some((k as u64 + 1, "duplicate"))
        }
        Tamper::Insert(i) => {
            // Before position k (seq k+1); the forged event links to event k.
            let k = i.index(ev.len());
            if k == 0 {
                return None; // covered by the genesis tests
            }
            let x = forged(&ev[k - 1]);
            ev.insert(k, x);
            let seq = k as u64 + 1;
            if has_cp(&cps, seq) {
                Some((seq, "checkpoint-mismatch"))
            } else {
                Some((seq, "duplicate"))
            }
        }
        Tamper::InsertRenumber(i) => {
            let k = i.index(ev.len());
            if k == 0 {
                return None;
            }
            let x = forged(&ev[k - 1]);
            ev.insert(k, x);
            for e in &mut ev[k + 1..] {
                e.seq += 1;
            }
            let seq = k as u64 + 1;
            if has_cp(&cps, seq) {
                Some((seq, "checkpoint-mismatch"))
            } else {
                Some((seq + 1, "broken-link"))
            }
        }
        Tamper::Truncate(i) => {
            let m = i.index(ev.len()) as u64; // keep 0..n-1 events
            ev.truncate(m as usize);
            match max_cp {
                Some(c) if c > m => Some((m + 1, "truncated")),
                _ => None,
            }
        }
        Tamper::Checkpoint(i, field) => {
            if cps.is_empty() {
                return None;
            }
            let at = i.index(cps.len());
            let c = &mut cps[at];
            match field {
                0 => c.seq = if c.seq > 1 { c.seq - 1 } else { c.seq + 1 },
                1 => c.hash = ChainHash::from_bytes([0xee; 32]),
                2 => c.time = time(99_999),
                _ => {
                    let mut sig = *c.signature.as_bytes();
                    sig[17] ^= 0x40;
                    c.signature = periscope_audit::CheckpointSignature::from_bytes(sig);
                }
            }
            Some((c.seq, "bad-signature"))
        }
    };
    Some((ev, cps, expected))
}

fn outcome(result: Result<periscope_audit::VerifyReport, ChainError>) -> Expected {
    result.err().map(|e| (e.seq().unwrap(), kind(&e)))
}

fn chain_strategy() -> impl Strategy<Value = (Vec<AuditEvent>, Vec<Checkpoint>)> {
    (1u64..40).prop_flat_map(|n| {
        proptest::collection::vec(proptest::bool::weighted(0.2), n as usize).prop_map(
            move |marks| {
                let ev = events(n);
                let at: Vec<u64> = (1..=n).filter(|s| marks[(s - 1) as usize]).collect();
                let cps = checkpoints(&ev, &at);
                (ev, cps)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn untouched_chains_verify((ev, cps) in chain_strategy()) {
        let report = crate::common::check(&ev, &cps).unwrap();
        prop_assert_eq!(report.events_checked, ev.len() as u64);
        prop_assert_eq!(report.checkpoints_verified, cps.len() as u64);
        let last_cp = cps.iter().map(|c| c.seq).max();
        prop_assert_eq!(report.uncovered_events, ev.len() as u64 - last_cp.unwrap_or(0));
    }

    #[test]
    fn any_single_tampering_is_named_at_the_right_seq(
        (ev, cps) in chain_strategy(),
        tamper in tamper_strategy(),
    ) {
        let Some((ev, cps, expected)) = apply(&tamper, ev, cps) else {
            return Ok(());
        };
        let keys = [signer().verifier_key()];
        let from_store = outcome(verify(
            ev.iter().cloned().map(Ok::<_, std::io::Error>),
            cps.iter().cloned(),
            &keys,
            Start::Genesis,
        ));
        prop_assert_eq!(from_store, expected, "{:?}", tamper);

        let mut file = Vec::new();
        write_jsonl(&mut file, None, ev.iter().cloned().map(Ok::<_, std::io::Error>), &cps)
            .unwrap();
        let from_file = outcome(verify_jsonl(file.as_slice(), &keys, Start::Genesis));
        prop_assert_eq!(from_file, expected, "jsonl {:?}", tamper);
    }

    #[test]
    fn a_partial_export_verifies_from_any_seq(
        (ev, cps) in chain_strategy(),
        since in any::<Index>(),
    ) {
        let k = since.index(ev.len());
        let keys = [signer().verifier_key()];
        let report = verify(
            ev[k..].iter().cloned().map(Ok::<_, std::io::Error>),
            cps.iter().cloned(),
            &keys,
            Start::AsGiven,
        )
        .unwrap();
        prop_assert_eq!(report.first_seq, Some(k as u64 + 1));
        prop_assert_eq!(report.anchor_vouched, cps.iter().any(|c| c.seq == k as u64));
        let before = cps.iter().filter(|c| c.seq < k as u64).count() as u64;
        prop_assert_eq!(report.checkpoints_before_start, before);
    }
}
