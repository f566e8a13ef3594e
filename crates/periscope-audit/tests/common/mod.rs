//! Chains for tests: deterministic keys, times and contents.

#![allow(dead_code)]

use periscope_audit::{
    AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head, next_event,
};
use serde_json::json;

/// The signer every test uses (Ed25519 signatures are deterministic).
pub fn signer() -> AuditSigner {
    AuditSigner::from_seed(&[0x2a; 32])
}

/// Time of event `seq`: one millisecond apart.
pub fn time(seq: u64) -> AuditTime {
    AuditTime::from_unix_micros(1_795_928_400_000_000 + seq as i64 * 1_000).unwrap()
}

/// A varied draft for event `seq`.
pub fn draft(seq: u64) -> EventDraft {
    let action = ["session.start", "query", "query.refused", "grant.start"][(seq % 4) as usize];
    let mut d = EventDraft::new(time(seq), format!("user{}", seq % 3), action, "pg-prod")
        .with_details(json!({"n": seq, "sql": "SELECT email FROM customers WHERE id = $1"}));
    if seq.is_multiple_of(2) {
        d = d.with_grant(format!("g-{}", seq / 2));
    }
    d
}

/// Events 1..=n.
pub fn events(n: u64) -> Vec<AuditEvent> {
    let mut head = Head::GENESIS;
    (1..=n)
        .map(|seq| {
            let e = next_event(head, draft(seq)).unwrap();
            head = e.head();
            e
        })
        .collect()
}

/// Checkpoints signed over `events` at the given seqs.
pub fn checkpoints(events: &[AuditEvent], at: &[u64]) -> Vec<Checkpoint> {
    let s = signer();
    at.iter()
        .map(|&seq| {
            let e = &events[(seq - 1) as usize];
            s.sign_checkpoint(e.head(), time(seq))
        })
        .collect()
}

/// Verifies from genesis with the test key.
pub fn check(
    events: &[AuditEvent],
    checkpoints: &[Checkpoint],
) -> Result<periscope_audit::VerifyReport, periscope_audit::ChainError> {
    periscope_audit::verify(
        events.iter().cloned().map(Ok::<_, std::io::Error>),
        checkpoints.iter().cloned(),
        &[signer().verifier_key()],
        periscope_audit::Start::Genesis,
    )
}

/// Recomputes the hash of `events[i]` and relinks everything after it, as an attacker
/// with write access to the store (but not the signing key) would.
pub fn rehash_from(events: &mut [AuditEvent], i: usize) {
    for j in i..events.len() {
        if j > 0 {
            events[j].prev_hash = events[j - 1].hash;
        }
        events[j].hash = events[j].compute_hash();
    }
}
