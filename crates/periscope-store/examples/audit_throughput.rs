//! Measures group-commit throughput: `C` concurrent submitters append `N` events in
//! total through one `AuditWriter`, as the proxy does under load.
//!
//! `cargo run --release -p periscope-store --example audit_throughput -- [URL] [N] [C]`
//! (default: a SQLite file in a temp dir, 20000 events, 64 submitters).

use std::sync::Arc;
use std::time::Instant;

use periscope_audit::{AuditSigner, AuditTime, EventDraft};
use periscope_store::{AuditWriter, AuditWriterConfig, Store, StoreOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = tempfile::tempdir()?;
    let url = match args.get(1) {
        Some(url) if url != "-" => url.clone(),
        _ => periscope_store::sqlite_url(&dir.path().join("periscope.db"))?,
    };
    let total: usize = args
        .get(2)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let concurrency: usize = args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(64);
    let store = Store::open(&url, &StoreOptions::default()).await?;
    let time = AuditTime::from_unix_micros(1_795_928_400_000_000)?;
    let clock_time = time.clone();
    let writer = AuditWriter::spawn(
        store.clone(),
        AuditSigner::from_seed(&[1; 32]),
        Arc::new(move || clock_time.clone()),
        AuditWriterConfig::default(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let writer = writer.clone();
        let time = time.clone();
        let count = total / concurrency + usize::from(task < total % concurrency);
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let draft = EventDraft::new(time.clone(), "alice", "query", "pg-prod")
                    .with_details(
                        serde_json::json!({"sql": "SELECT * FROM users WHERE id = $1", "rows": i}),
                    );
                writer.append(draft).await?;
            }
            Ok::<_, periscope_store::StoreError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    let stats = writer.stats();
    writer.shutdown().await?;
    println!(
        "{:?}: {total} events from {concurrency} submitters in {:.2} s = {:.0} events/s, {} batches ({:.1} events per commit)",
        store.backend(),
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        stats.batches,
        stats.events as f64 / stats.batches.max(1) as f64,
    );
    Ok(())
}
