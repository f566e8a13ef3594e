//! Bounded memory through the real gateway: a result of millions of rows,
//! every one holding an email address, streams through the masking stage to
//! a client that reads it all, while the gateway process's peak resident
//! memory stays within a fixed bound above its baseline. Nothing is buffered
//! whole: the relay reads the upstream again only once the client took what
//! it produced.
//!
//! 2,000,000 rows (about 90 MB of DataRows from the upstream) rather than
//! 3,000,000: the gateway and the client are debug builds here, where each
//! row costs about 20 microseconds end to end (about 40 s on the 2-core
//! development VM); the bound does not depend on the row count.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::proxy::world_with;
use futures_util::{StreamExt as _, pin_mut};

const ROWS: i64 = 2_000_000;
/// How much the gateway's peak RSS may grow while the result streams.
const BOUND: u64 = 64 * 1024 * 1024;

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status:\n{status}"))
        * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn millions_of_masked_rows_stream_through_in_bounded_memory() {
    let w = world_with(3, "").await;
    let pid = w.gw.pid().expect("the gateway runs");
    let client = w.client().await;
    // Warm up: a session, a catalog, a masked result.
    let warm = client
        .simple_query("SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    assert!(warm.len() > 1000);

    // Peak RSS from here on ("5" resets VmHWM to the current RSS).
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let baseline = status_kb(pid, "VmRSS:");

    let started = Instant::now();
    let sql =
        "SELECT g, 'user' || g || '@example.com' AS contact FROM generate_series(1, $1::int8) g";
    let stream = client
        .query_raw(sql, [ROWS])
        .await
        .expect("the query starts");
    pin_mut!(stream);
    let mut rows = 0i64;
    let mut raw = 0u64;
    let mut masked = 0u64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        rows += 1;
        let g: i64 = row.get(0);
        assert_eq!(g, rows, "rows arrive in order, none lost");
        let contact: &str = row.get(1);
        if contact.contains("@example.com") {
            raw += 1;
        } else if contact == "[email]" {
            masked += 1;
        }
    }
    let elapsed = started.elapsed();
    let peak = status_kb(pid, "VmHWM:");

    assert_eq!(rows, ROWS);
    assert_eq!(raw, 0, "no raw email reached the client");
    assert_eq!(masked, ROWS as u64, "every email came out masked");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{ROWS} rows in {elapsed:?}; gateway RSS baseline {} KiB, peak {} KiB (+{} KiB)",
        baseline / 1024,
        peak / 1024,
        growth / 1024
    );
    assert!(
        growth < BOUND,
        "the gateway's peak RSS grew by {} KiB while streaming (bound {} KiB)",
        growth / 1024,
        BOUND / 1024
    );

    // The outcome is audited with its counts.
    let result = w
        .audit_until("query.result", |events| {
            events
                .iter()
                .find(|e| e["details"]["rows"] == ROWS)
                .cloned()
        })
        .await;
    assert_eq!(result["details"]["masked"]["email"], ROWS);
    assert!(elapsed < Duration::from_secs(120), "{elapsed:?}");
}
