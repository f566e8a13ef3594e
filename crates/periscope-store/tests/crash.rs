//! A crash (SIGKILL) in the middle of a burst of audit writes loses no event that was
//! acknowledged, and the chain still verifies after a restart.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{TestDb, TestResult, manual_clock, t};
use futures_util::TryStreamExt;
use periscope_audit::{AuditEvent, AuditSigner, Head, JsonlWriter, Start, next_event};
use periscope_store::{
    AuditWriter, AuditWriterConfig, EventDraft, ExportFrom, Store, StoreOptions,
};
use serde_json::json;

/// How many acknowledgements to wait for before killing the writer.
const ACKS_BEFORE_KILL: usize = 300;

async fn acknowledged_events_survive_sigkill(db: TestDb) -> TestResult {
    events_survive_sigkill_with(db, "power-loss").await
}

/// `[audit] durability = "process-crash"` does not flush each commit to disk,
/// but what it acknowledged is with the OS (SQLite) or the database server
/// (PostgreSQL), where killing the writer cannot undo it.
async fn acknowledged_events_survive_sigkill_without_flushes(db: TestDb) -> TestResult {
    events_survive_sigkill_with(db, "process-crash").await
}

async fn events_survive_sigkill_with(db: TestDb, durability: &'static str) -> TestResult {
    // Only the child writes: close this process's connections first.
    db.store.close().await;
    let url = db.url.clone();
    let acked = tokio::task::spawn_blocking(move || -> std::io::Result<BTreeSet<u64>> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_periscope-store-crash-writer"))
            .arg(&url)
            .arg(durability)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut acked = BTreeSet::new();
        while acked.len() < ACKS_BEFORE_KILL {
            let Some(line) = lines.next() else {
                let status = child.wait()?;
                panic!(
                    "crash writer exited early ({status}) after {} acks",
                    acked.len()
                );
            };
            acked.insert(line?.trim().parse::<u64>().expect("the writer prints seqs"));
        }
        // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no shutdown.
        child.kill()?;
        child.wait()?;
        // Acknowledgements printed before the kill are still in the pipe.
        for line in lines {
            match line?.trim().parse::<u64>() {
                Ok(seq) => {
                    acked.insert(seq);
                }
                Err(_) => break, // a line cut by the kill
            }
        }
        Ok(acked)
    })
    .await??;

    let store = db.replica().await;
    let head = store.audit_head().await?;
    for seq in &acked {
        assert!(
            *seq <= head.seq,
            "acknowledged seq {seq} is beyond the head {head:?}"
        );
    }
    let key = AuditSigner::from_seed(&[42; 32]).verifier_key();
    let report = store.verify_audit(&[key], Start::Genesis).await?;
    // Gap-free and linked up to the head, so every acknowledged seq is present.
    assert_eq!(report.events_checked, head.seq);
    assert!(report.checkpoints_verified >= 1, "{report:?}");
    assert!(acked.len() >= ACKS_BEFORE_KILL);
    Ok(())
}

both_backends!(acknowledged_events_survive_sigkill);
both_backends!(acknowledged_events_survive_sigkill_without_flushes);

/// The redo file beside an embedded database after a crash: the events
/// already indexed, then `extra` more linked after them, then what `tail`
/// appends (a torn or corrupt line). Returns the path and the head the file
/// reaches.
async fn crashed_redo(
    db: &TestDb,
    extra: u64,
    edit: impl FnOnce(&mut Vec<u8>),
) -> Result<(std::path::PathBuf, Head), Box<dyn std::error::Error + Send + Sync>> {
    let (clock, _) = manual_clock();
    let writer = AuditWriter::spawn(
        db.store.clone(),
        AuditSigner::from_seed(&[42; 32]),
        clock,
        AuditWriterConfig::default(),
    );
    for i in 0..3 {
        writer
            .append(EventDraft::new(t(i), "alice", "query", "pg"))
            .await?;
    }
    writer.shutdown().await?;
    let indexed = db.store.export_audit(ExportFrom::Start);
    let indexed: Vec<AuditEvent> = indexed.try_collect().await?;
    db.store.close().await;
    let mut lines = JsonlWriter::new(Vec::new());
    let mut head = Head::GENESIS;
    for event in &indexed {
        lines.write_event(event)?;
        head = event.head();
    }
    for i in 0..extra {
        let event = next_event(
            head,
            EventDraft::new(t(10 + i as i64), "bob", "query", "pg")
                .with_details(json!({ "sql": "SELECT 1", "i": i })),
        )?;
        head = event.head();
        lines.write_event(&event)?;
    }
    let mut bytes = lines.into_inner()?;
    edit(&mut bytes);
    let database = db.url.trim_start_matches("sqlite://");
    let database = database.split('?').next().unwrap_or(database);
    let path = std::path::PathBuf::from(format!("{database}-audit-redo-a"));
    std::fs::write(&path, bytes)?;
    Ok((path, head))
}

/// Events acknowledged from the redo file but never indexed (the gateway
/// was killed) are in the log as soon as the store opens again, and a line
/// torn by the crash (never acknowledged) is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redo_file_left_by_a_crash_is_replayed_when_the_store_opens() -> TestResult {
    let db = TestDb::sqlite().await?;
    let (path, head) = crashed_redo(&db, 4, |bytes| {
        bytes.extend_from_slice(br#"{"type":"event","seq":8,"time":"2026-"#);
    })
    .await?;
    assert_eq!(head.seq, 7);
    let store = db.replica().await;
    assert_eq!(store.audit_head().await?, head);
    let key = AuditSigner::from_seed(&[42; 32]).verifier_key();
    let report = store.verify_audit(&[key], Start::Genesis).await?;
    assert_eq!(report.events_checked, 7);
    assert_eq!(std::fs::metadata(&path)?.len(), 0, "replayed, so emptied");
    Ok(())
}

/// A redo line that does not hash to its recorded hash, anywhere but a torn
/// end, is tampering or disk corruption: the store refuses to open and says
/// where, and the index is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_redo_file_stops_the_store_from_opening() -> TestResult {
    let db = TestDb::sqlite().await?;
    let (path, _) = crashed_redo(&db, 4, |bytes| {
        let text = String::from_utf8(bytes.clone()).expect("JSON lines");
        *bytes = text.replacen("SELECT 1", "SELECT 2", 1).into_bytes();
    })
    .await?;
    let err = Store::open(&db.url, &StoreOptions::default())
        .await
        .expect_err("a tampered redo file must not be replayed");
    let message = err.to_string();
    assert!(message.contains("audit redo file"), "{message}");
    assert!(message.contains("event 4 does not hash"), "{message}");
    assert!(std::fs::metadata(&path)?.len() > 0, "the evidence is kept");
    Ok(())
}
