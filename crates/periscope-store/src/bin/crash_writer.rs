//! Test harness, not a tool: appends audit events through the group-commit writer
//! as fast as it can and prints each acknowledged seq on its own line, until it is
//! killed. `tests/crash.rs` SIGKILLs it mid-burst and checks that every printed seq
//! survived and the chain still verifies.
//!
//! Usage: `periscope-store-crash-writer DATABASE_URL [power-loss|process-crash]`
//! (the `[audit] durability` to open the store with; default `process-crash`, as the gateway's).

use std::io::Write;
use std::sync::Arc;

use periscope_audit::{AuditSigner, AuditTime, EventDraft};
use periscope_policy::AuditDurability;
use periscope_store::{AuditWriter, AuditWriterConfig, Store, StoreOptions};

/// Seed of the checkpoint key, shared with the test that verifies the chain.
const SEED: [u8; 32] = [42; 32];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let usage = "usage: periscope-store-crash-writer DATABASE_URL [power-loss|process-crash]";
    let url = std::env::args().nth(1).ok_or(usage)?;
    let durability = match std::env::args().nth(2).as_deref() {
        Some("power-loss") => AuditDurability::PowerLoss,
        None | Some("process-crash") => AuditDurability::ProcessCrash,
        Some(_) => return Err(usage.into()),
    };
    let options = StoreOptions {
        durability,
        ..StoreOptions::default()
    };
    let store = Store::open(&url, &options).await?;
    let time = AuditTime::from_unix_micros(1_795_928_400_000_000)?;
    let clock_time = time.clone();
    let writer = AuditWriter::spawn(
        store,
        AuditSigner::from_seed(&SEED),
        Arc::new(move || clock_time.clone()),
        AuditWriterConfig {
            checkpoint_every: 50,
            ..AuditWriterConfig::default()
        },
    );
    let mut tasks = Vec::new();
    for task in 0..8 {
        let writer = writer.clone();
        let time = time.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let draft = EventDraft::new(time.clone(), format!("writer{task}"), "query", "pg")
                    .with_details(serde_json::json!({ "i": i }));
                let seq = writer.append(draft).await?;
                // Printed only after the commit returned: an acknowledgement.
                let mut out = std::io::stdout().lock();
                writeln!(out, "{seq}")?;
                out.flush()?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
