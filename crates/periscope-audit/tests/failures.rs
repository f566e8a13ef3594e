//! Every way verification fails, with the exact sentence an auditor reads.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use crate::common::{check, checkpoints, events, rehash_from, signer, time};
use periscope_audit::{
    AuditSigner, ChainError, ChainHash, ChainVerifier, Head, LinkFrom, Start, verify,
};
use serde_json::json;

fn message(result: Result<periscope_audit::VerifyReport, ChainError>) -> (Option<u64>, String) {
    let err = result.expect_err("verification should fail");
    (err.seq(), err.to_string())
}

#[test]
fn edited_row() {
    let mut ev = events(6);
    let stored = ev[2].hash;
    ev[2].details["n"] = json!(99);
    let computed = ev[2].compute_hash();
    assert_eq!(
        message(check(&ev, &checkpoints(&ev, &[6]))),
        (
            Some(3),
            format!(
                "event seq 3 was altered after it was written: its content hashes to {computed}, \
                 not to its stored hash {stored}"
            )
        )
    );
}

#[test]
fn edited_row_with_its_hash_recomputed() {
    let mut ev = events(6);
    let cps = checkpoints(&ev, &[6]);
    ev[2].actor = "mallory".into();
    ev[2].hash = ev[2].compute_hash();
    assert_eq!(
        message(check(&ev, &cps)),
        (
            Some(4),
            format!(
                "event seq 4 does not link to event seq 3: its prev_hash is {}, but event seq 3 \
                 has hash {} (event seq 3 was rewritten or replaced, or event seq 4 was inserted \
                 or altered)",
                ev[3].prev_hash, ev[2].hash
            )
        )
    );
}

#[test]
fn whole_chain_rewritten_after_a_checkpoint() {
    let mut ev = events(6);
    let cps = checkpoints(&ev, &[3, 6]);
    let signed = ev[2].hash;
    ev[1].target = "pg-staging".into();
    rehash_from(&mut ev, 1);
    assert_eq!(
        message(check(&ev, &cps)),
        (
            Some(3),
            format!(
                "the signed checkpoint for seq 3 vouches for hash {signed}, but the log has hash \
                 {} at seq 3: events up to seq 3 were rewritten after they were signed",
                ev[2].hash
            )
        )
    );
    // Without checkpoints, a consistent rewrite cannot be told from the original:
    // this is what checkpoints are for, and the report says so.
    let report = check(&ev, &[]).unwrap();
    assert_eq!(
        report.warnings(),
        [
            "no signed checkpoint was verified: the events are consistent with each other, but \
          nothing proves they were not rewritten as a whole"
        ]
    );
}

#[test]
fn deleted_rows() {
    let ev = events(6);
    let cps = checkpoints(&ev, &[6]);
    let without = |gone: &[u64]| -> Vec<_> {
        ev.iter()
            .filter(|e| !gone.contains(&e.seq))
            .cloned()
            .collect()
    };
    assert_eq!(
        message(check(&without(&[3]), &cps)),
        (
            Some(3),
            "event seq 3 is missing: seq 2 is followed by seq 4 (rows were deleted)".into()
        )
    );
    assert_eq!(
        message(check(&without(&[3, 4]), &cps)),
        (
            Some(3),
            "events seq 3 to 4 are missing: seq 2 is followed by seq 5 (rows were deleted)".into()
        )
    );
    assert_eq!(
        message(check(&without(&[1]), &cps)),
        (
            Some(1),
            "event seq 1 is missing: the log starts at seq 2 (rows were deleted)".into()
        )
    );
    // A gap just before the end is reported at the end of the stream.
    assert_eq!(
        message(check(&without(&[5]), &cps)).1,
        "event seq 5 is missing: seq 4 is followed by seq 6 (rows were deleted)"
    );
}

#[test]
fn deleted_row_renumbered() {
    // The attacker deletes seq 3 and renumbers the rest to close the gap.
    let mut ev = events(6);
    ev.remove(2);
    for e in &mut ev[2..] {
        e.seq -= 1;
    }
    let (seq, text) = message(check(&ev, &[]));
    assert_eq!(seq, Some(3));
    assert!(
        text.starts_with("event seq 3 does not link to event seq 2"),
        "{text}"
    );
}

#[test]
fn reordered_rows() {
    let mut ev = events(6);
    ev.swap(2, 3);
    assert_eq!(
        message(check(&ev, &[])),
        (
            Some(3),
            "event seq 3 comes after seq 4: the events are out of order (rows were reordered or \
             inserted)"
                .into()
        )
    );
    let mut ev = events(6);
    let moved = ev.remove(1);
    ev.insert(4, moved); // 1,3,4,5,2,6: seq 2 arrives too late to be recognised
    assert_eq!(
        message(check(&ev, &[])).1,
        "event seq 2 is missing: seq 1 is followed by seq 3 (rows were deleted)"
    );
}

#[test]
fn inserted_rows() {
    let ev = events(6);
    // A forged event that links correctly, inserted with a seq that is taken.
    let forged = periscope_audit::next_event(
        ev[2].head(),
        crate::common::draft(77).with_grant("g-forged"),
    )
    .unwrap();
    let mut with_forged = ev.clone();
    with_forged.insert(3, forged.clone());
    assert_eq!(
        message(check(&with_forged, &[])),
        (
            Some(4),
            "event seq 4 appears twice: a row was duplicated or another was inserted with the \
             same seq"
                .into()
        )
    );
    // A signed checkpoint at the forged seq catches it even before the duplicate.
    assert_eq!(
        message(check(&with_forged, &checkpoints(&ev, &[4]))).0,
        Some(4)
    );
    let (_, text) = message(check(&with_forged, &checkpoints(&ev, &[4])));
    assert!(
        text.starts_with("the signed checkpoint for seq 4 vouches for hash"),
        "{text}"
    );
}

#[test]
fn replaced_beginning() {
    let mut ev = events(3);
    ev[0].prev_hash = ChainHash::from_bytes([7; 32]);
    rehash_from(&mut ev, 0);
    assert_eq!(
        message(check(&ev, &[])),
        (
            Some(1),
            format!(
                "event seq 1 should start the log with a prev_hash of 64 zeros, but its \
                 prev_hash is {}: the log's beginning was replaced",
                "07".repeat(32)
            )
        )
    );
    let err = check(&ev, &[]).unwrap_err();
    assert!(matches!(
        err,
        ChainError::BrokenLink {
            from: LinkFrom::Genesis,
            ..
        }
    ));
}

#[test]
fn forged_or_altered_checkpoints() {
    let ev = events(6);
    let key_id = signer().key_id();

    let mut altered = checkpoints(&ev, &[3]);
    altered[0].time = time(99);
    assert_eq!(
        message(check(&ev, &altered)),
        (
            Some(3),
            format!(
                "the checkpoint for seq 3 has an invalid signature for key {key_id}: the \
                 checkpoint was forged or altered"
            )
        )
    );

    // Signed with another key that claims to be ours.
    let forger = AuditSigner::from_seed(&[9; 32]);
    let mut forged = forger.sign_checkpoint(ev[2].head(), time(3));
    forged.key_id = key_id;
    assert!(
        message(check(&ev, &[forged]))
            .1
            .contains("has an invalid signature")
    );

    // Signed with a key the auditor was not given.
    let foreign = forger.sign_checkpoint(ev[2].head(), time(3));
    assert_eq!(
        message(check(&ev, &[foreign])),
        (
            Some(3),
            format!(
                "the checkpoint for seq 3 is signed by key {}, which is not among the verifier \
                 keys given ({key_id})",
                forger.key_id()
            )
        )
    );
}

#[test]
fn tail_cut_after_a_checkpoint() {
    let ev = events(6);
    let cps = checkpoints(&ev, &[3, 6]);
    assert_eq!(
        message(check(&ev[..4], &cps)),
        (
            Some(5),
            "events after seq 4 are missing: a signed checkpoint vouches for seq 6 (the end of \
             the log was cut off)"
                .into()
        )
    );
    assert_eq!(
        message(check(&[], &cps)),
        (
            Some(1),
            "no events were found, but a signed checkpoint vouches for seq 6 (the events were \
             deleted)"
                .into()
        )
    );
    // A dangling checkpoint that is itself forged is reported as forged, not as proof
    // that events are missing.
    let mut bad = cps.clone();
    bad[1].signature = bad[0].signature;
    assert!(
        message(check(&ev[..4], &bad))
            .1
            .contains("invalid signature")
    );
}

#[test]
fn seq_zero() {
    let mut ev = events(3);
    ev[1].seq = 0;
    assert_eq!(
        message(check(&ev, &[])),
        (
            Some(0),
            "an event has seq 0 after event seq 1, but seqs start at 1".into()
        )
    );
}

#[test]
fn source_errors_stop_verification() {
    let ev = events(3);
    let source = ev
        .iter()
        .take(2)
        .cloned()
        .map(Ok)
        .chain([Err(std::io::Error::other("disk on fire"))]);
    let err = verify(source, [], &[signer().verifier_key()], Start::Genesis).unwrap_err();
    assert_eq!(err.seq(), Some(3));
    assert_eq!(
        err.to_string(),
        "could not read the events after event seq 2: disk on fire"
    );
}

#[test]
fn checkpoint_far_from_its_event_in_a_stream() {
    let ev = events(4);
    let keys = [signer().verifier_key()];
    let mut verifier = ChainVerifier::new(&keys, Start::Genesis);
    for e in &ev {
        verifier.add_event(e).unwrap();
    }
    let late = checkpoints(&ev, &[2]).remove(0);
    let err = verifier.add_checkpoint(late).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the checkpoint for seq 2 comes after event seq 4: a checkpoint must come right after \
         the event it signs, so it cannot be checked"
    );
}

#[test]
fn resuming_from_a_trusted_position() {
    let ev = events(6);
    let keys = [signer().verifier_key()];
    let run = |start, from: usize| {
        verify(
            ev[from..].iter().cloned().map(Ok::<_, std::io::Error>),
            checkpoints(&ev, &[6]),
            &keys,
            start,
        )
    };

    // The whole export, resumed after seq 3: 1..3 skipped, 4..6 checked.
    let report = run(Start::After(ev[2].head()), 0).unwrap();
    assert_eq!(
        (
            report.events_skipped,
            report.events_checked,
            report.first_seq
        ),
        (3, 3, Some(4))
    );
    assert_eq!(report.uncovered_events, 0);

    let wrong = Head {
        seq: 3,
        hash: ChainHash::from_bytes([1; 32]),
    };
    assert_eq!(
        message(run(Start::After(wrong), 0)),
        (
            Some(3),
            format!(
                "event seq 3 has hash {}, but the trusted starting point says {}: the log was \
                 rewritten up to there, or the wrong starting point was given",
                ev[2].hash, wrong.hash
            )
        )
    );
    assert_eq!(
        message(run(Start::After(wrong), 3)),
        (
            Some(4),
            format!(
                "event seq 4 does not link to the trusted starting point: its prev_hash is {}, \
                 but the trusted hash of seq 3 is {}",
                ev[2].hash, wrong.hash
            )
        )
    );
}

#[test]
fn report_for_a_full_chain() {
    let ev = events(10);
    let report = check(&ev, &checkpoints(&ev, &[4, 8])).unwrap();
    assert_eq!(report.events_checked, 10);
    assert_eq!(report.checkpoints_verified, 2);
    assert_eq!(report.last_checkpoint_seq, Some(8));
    assert_eq!(report.uncovered_events, 2);
    assert_eq!(report.last, Some(ev[9].head()));
    assert_eq!(
        report.to_string(),
        format!(
            "chain intact: 10 events verified, seq 1 to 10, from the start of the log\n\
             2 signed checkpoints verified, the last one at seq 8\n\
             last event: seq 10 hash {}\n\
             warning: 2 events after seq 8 (up to seq 10) are not yet covered by a signed \
             checkpoint",
            ev[9].hash
        )
    );
}

#[test]
fn report_for_a_partial_export() {
    let ev = events(10);
    let keys = [signer().verifier_key()];
    let since = |cps: &[u64]| {
        verify(
            ev[5..].iter().cloned().map(Ok::<_, std::io::Error>),
            checkpoints(&ev, cps),
            &keys,
            Start::AsGiven,
        )
    };

    // The export carries the checkpoint just before its first event: start vouched.
    let report = since(&[2, 5, 10]).unwrap();
    assert!(report.anchor_vouched);
    assert_eq!(report.anchor, Some(ev[4].head()));
    assert_eq!(report.checkpoints_before_start, 1);
    assert_eq!(report.checkpoints_verified, 2);
    assert!(report.warnings().is_empty(), "{:?}", report.warnings());
    assert!(
        report
            .to_string()
            .contains("from a starting point vouched for by a signed checkpoint")
    );

    // Without it, the start is only trusted, and the report says so.
    let report = since(&[10]).unwrap();
    assert!(!report.anchor_vouched);
    assert_eq!(
        report.warnings(),
        [format!(
            "this is a partial chain: the first event (seq 6) links to prev_hash {} for seq 5, \
             which was trusted as given, not proven",
            ev[4].hash
        )]
    );

    // A checkpoint at the start that disagrees with the first event's link.
    let mut tampered = ev[5..].to_vec();
    tampered[0].prev_hash = ChainHash::from_bytes([5; 32]);
    rehash_from(&mut tampered, 0);
    let err = verify(
        tampered.into_iter().map(Ok::<_, std::io::Error>),
        checkpoints(&ev, &[5]),
        &keys,
        Start::AsGiven,
    )
    .unwrap_err();
    assert_eq!(err.seq(), Some(5));
    assert!(
        err.to_string()
            .starts_with("the signed checkpoint for seq 5 vouches for hash")
    );
}

#[test]
fn empty_log() {
    let report = check(&[], &[]).unwrap();
    assert_eq!(report.events_checked, 0);
    assert!(report.warnings().is_empty());
    assert!(
        report
            .to_string()
            .starts_with("chain intact: no events to verify")
    );
}
