//! A crash (SIGKILL) in the middle of a burst of audit writes loses no event that was
//! acknowledged, and the chain still verifies after a restart.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::{TestDb, TestResult};
use periscope_audit::{AuditSigner, Start};

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
