//! The gateway is SIGKILLed while clients run statements through it, then
//! started again on the same data directory: the audit chain still verifies
//! (`periscope audit verify`), and every statement whose result reached a
//! client has its `query` event (results are held until the event is
//! durable, so a crash can lose an outcome, never the record of a statement
//! someone saw).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::proxy::{BIN, assert_no_raw, cells, joined, world};
use serde_json::Value;

const CLIENTS: usize = 6;

#[tokio::test(flavor = "multi_thread")]
async fn gateway_killed_under_load_keeps_a_verifiable_audit_of_every_delivered_result() {
    let mut w = world().await;
    let admin_token =
        w.gw.bootstrap_token()
            .expect("the first start prints the admin token")
            .to_owned();
    let raw = w.shop.raw_values();
    let customers = w.shop.customers.len();

    // Each client runs numbered statements in a loop; the alias names the
    // client and the statement and survives literal scrubbing in the audit
    // text. A statement counts as delivered once its rows reached the client.
    let delivered: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let results = Arc::new(AtomicUsize::new(0));
    let mut loops = Vec::new();
    for k in 0..CLIENTS {
        let client = w.client().await;
        let delivered = Arc::clone(&delivered);
        let results = Arc::clone(&results);
        let raw = raw.clone();
        loops.push(tokio::spawn(async move {
            for i in 0.. {
                let alias = format!("c{k}_s{i}");
                let sql = match i % 3 {
                    0 => format!("SELECT {i} AS {alias}"),
                    1 => format!(
                        "SELECT id AS {alias}, email, notes FROM customers WHERE id = {}",
                        1 + i % customers
                    ),
                    _ => format!(
                        "SELECT count(*) AS {alias} FROM orders WHERE customer_id < {}",
                        i % 50
                    ),
                };
                match client.simple_query(&sql).await {
                    Ok(messages) => {
                        assert_no_raw(&joined(&cells(&messages)), &raw);
                        delivered.lock().unwrap().insert(alias);
                        results.fetch_add(1, Ordering::SeqCst);
                    }
                    // The gateway is gone.
                    Err(_) => return i,
                }
            }
            unreachable!("the loop ends when the gateway dies")
        }));
    }

    let deadline = Instant::now() + Duration::from_secs(20);
    while results.load(Ordering::SeqCst) < 60 {
        assert!(Instant::now() < deadline, "the clients make progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| w.gw.kill()).unwrap();
    for l in loops {
        tokio::time::timeout(Duration::from_secs(10), l)
            .await
            .expect("every client notices the dead gateway")
            .unwrap();
    }
    let delivered = delivered.lock().unwrap().clone();
    assert!(delivered.len() >= 60, "{}", delivered.len());

    tokio::task::block_in_place(|| w.gw.restart()).unwrap();
    w.admin = w.gw.client(Some(&admin_token)).unwrap();

    // The chain verifies through the CLI, as an operator would check it.
    let config_dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["audit", "verify"])
        .env_remove("XDG_CONFIG_HOME")
        .env("PERISCOPE_CONFIG_DIR", config_dir.path())
        .env("PERISCOPE_URL", w.gw.api_url())
        .env("PERISCOPE_TOKEN", &admin_token)
        .env("PERISCOPE_CA_FILE", w.gw.ca_file())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("chain intact: "),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every delivered statement has its `query` event.
    let export = w.audit_export().await;
    let audited: BTreeSet<String> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "query")
        .filter_map(|e| {
            let text = e["details"]["text"].as_str()?.to_owned();
            text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .find(|word| word.starts_with('c') && word.contains("_s"))
                .map(str::to_owned)
        })
        .collect();
    let missing: Vec<&String> = delivered.difference(&audited).collect();
    assert!(
        missing.is_empty(),
        "{} of {} delivered statements have no query event: {missing:?}",
        missing.len(),
        delivered.len()
    );

    // And the restarted gateway serves sessions again.
    let client = w.client().await;
    let rows = cells(
        &client
            .simple_query("SELECT email FROM customers WHERE id = 1")
            .await
            .unwrap(),
    );
    assert_eq!(rows, vec![vec!["[email]"]]);
}
