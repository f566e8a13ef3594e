//! Throughput of the audit chain: appending (hashing) events, verifying them from a
//! store-like iterator, and verifying a JSONL export. Events carry a realistic
//! `query` payload (redacted statement text, counts, grant id), so the figures say
//! how long `periscope audit verify` takes per million events.
//!
//! Run: `cargo bench -p periscope-audit --bench verify`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use periscope_audit::{
    AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head, JsonlHeader, Start, actions,
    next_event, verify, verify_jsonl, write_jsonl,
};
use serde_json::json;

const EVENTS: u64 = 20_000;
const CHECKPOINT_EVERY: u64 = 1_000;

fn draft(i: u64) -> EventDraft {
    let time = AuditTime::from_unix_micros(1_795_928_400_000_000 + i as i64 * 1_000)
        .expect("a 2026 time is in range");
    EventDraft::new(time, "alice@example.com", actions::QUERY, "pg-prod")
        .with_details(json!({
            "session": format!("s-{}", i / 50),
            "sql": "SELECT id, email, card_number FROM customers WHERE id = $1 AND region = $2",
            "rows": i % 100,
            "masked": {"email": i % 100, "card": i % 100},
            "duration_us": 1_250 + i % 700,
        }))
        .with_grant("g-7f3a")
}

fn chain(signer: &AuditSigner) -> (Vec<AuditEvent>, Vec<Checkpoint>) {
    let mut head = Head::GENESIS;
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    for i in 0..EVENTS {
        let event = next_event(head, draft(i)).expect("bench drafts are valid");
        head = event.head();
        if event.seq.is_multiple_of(CHECKPOINT_EVERY) {
            checkpoints.push(signer.sign_checkpoint(head, event.time.clone()));
        }
        events.push(event);
    }
    (events, checkpoints)
}

fn bench(c: &mut Criterion) {
    let signer = AuditSigner::from_seed(&[1; 32]);
    let keys = [signer.verifier_key()];
    let (events, checkpoints) = chain(&signer);
    let drafts: Vec<EventDraft> = (0..EVENTS).map(draft).collect();
    let mut jsonl = Vec::new();
    write_jsonl(
        &mut jsonl,
        Some(&JsonlHeader::new(Some(signer.key_id()))),
        events.iter().cloned().map(Ok::<_, std::io::Error>),
        &checkpoints,
    )
    .expect("writing to memory cannot fail");

    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("append", |b| {
        b.iter(|| {
            let mut head = Head::GENESIS;
            for d in &drafts {
                head = next_event(head, d.clone()).expect("valid").head();
            }
            black_box(head)
        })
    });
    group.bench_function("verify_iter", |b| {
        b.iter(|| {
            verify(
                events.iter().cloned().map(Ok::<_, std::io::Error>),
                checkpoints.iter().cloned(),
                &keys,
                Start::Genesis,
            )
            .expect("the chain is intact")
        })
    });
    group.bench_function("verify_jsonl", |b| {
        b.iter(|| verify_jsonl(jsonl.as_slice(), &keys, Start::Genesis).expect("intact"))
    });
    group.finish();
    eprintln!(
        "JSONL export: {} bytes for {EVENTS} events ({} bytes/event)",
        jsonl.len(),
        jsonl.len() as u64 / EVENTS
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
