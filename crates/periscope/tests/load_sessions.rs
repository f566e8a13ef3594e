//! A short load run in the default suite: 50 concurrent sessions through the
//! real gateway run a mix of statements (simple and extended protocol,
//! masked columns, joins, JSON, refused writes, server errors, transactions)
//! for a few seconds. No unexpected error, no raw seeded value reaches a
//! client, every session ends cleanly and is audited. The long version is
//! `scripts/soak-pg` (docs/robustness.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::proxy::{
    API_TOKENS, Client, JsonText, assert_no_raw, cells, connect, joined, world_with,
};

const SESSIONS: usize = 50;
const RUN_FOR: Duration = Duration::from_secs(4);

/// What one session did.
#[derive(Debug, Default)]
struct Tally {
    statements: u64,
    refused: u64,
    server_errors: u64,
    connect: Duration,
}

/// Runs statement `i` of the mix; returns everything the client received
/// as text, for the raw-value check.
async fn step(c: &Client, i: u64, customers: u64, tally: &mut Tally) -> String {
    let id = 1 + (i * 7) % customers;
    tally.statements += 1;
    match i % 8 {
        0 => {
            let rows = c
                .query(
                    "SELECT id, name, email, phone, ssn, card_number, iban, notes FROM customers WHERE id = $1",
                    &[&i64::try_from(id).unwrap()],
                )
                .await
                .unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<_, String>(2), "[email]");
            rows.iter()
                .map(|r| {
                    (1..8)
                        .map(|k| r.get::<_, Option<String>>(k).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join("\t")
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        1 => joined(&cells(
            &c.simple_query("SELECT * FROM customers ORDER BY id LIMIT 10")
                .await
                .unwrap(),
        )),
        2 => joined(&cells(
            &c.simple_query(
                "SELECT c.email, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.email ORDER BY 2 DESC LIMIT 5",
            )
            .await
            .unwrap(),
        )),
        3 => {
            let row = c
                .query_one(
                    "SELECT payload, raw FROM events WHERE id = $1",
                    &[&i64::try_from(id).unwrap()],
                )
                .await
                .unwrap();
            let a: JsonText = row.get(0);
            let b: JsonText = row.get(1);
            format!("{}\n{}", a.0, b.0)
        }
        4 => {
            let err = c
                .simple_query(&format!("UPDATE customers SET notes = 'x' WHERE id = {id}"))
                .await
                .expect_err("writes need a grant");
            let db = err.as_db_error().unwrap();
            assert_eq!(db.code().code(), "42501", "{db:?}");
            tally.refused += 1;
            db.message().to_string()
        }
        5 => {
            let err = c
                .simple_query("SELECT 1 / (id - id) FROM customers WHERE id = 1")
                .await
                .expect_err("division by zero");
            let db = err.as_db_error().unwrap();
            assert_eq!(db.code().code(), "22012", "{db:?}");
            tally.server_errors += 1;
            db.message().to_string()
        }
        6 => joined(&cells(
            &c.simple_query(&format!(
                "BEGIN; SELECT api_token FROM api_clients ORDER BY id; SELECT notes FROM customers WHERE id = {id}; COMMIT"
            ))
            .await
            .unwrap(),
        )),
        _ => {
            let n: i64 = c
                .query_one("SELECT count(*) FROM orders WHERE customer_id <= $1", &[&i64::try_from(id).unwrap()])
                .await
                .unwrap()
                .get(0);
            n.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_sessions_of_mixed_statements_stay_correct_and_masked() {
    let w = world_with(60, "").await;
    let raw = Arc::new(w.shop.raw_values());
    let customers = w.shop.customers.len() as u64;
    assert!(API_TOKENS.iter().all(|t| raw.contains(&t.to_string())));

    let conninfo = format!(
        "host=127.0.0.1 port={} user=alice password={} dbname=pg-dev sslmode=disable application_name=load",
        w.pg_port(),
        w.alice.token
    );

    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let raw = Arc::clone(&raw);
        let conninfo = conninfo.clone();
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let client = connect(&conninfo)
                .await
                .expect("a session through the gateway");
            let mut tally = Tally {
                connect: t0.elapsed(),
                ..Tally::default()
            };
            let mut i = s as u64;
            let until = Instant::now() + RUN_FOR;
            // At least one full round of the mix, then until the time is up.
            while tally.statements < 8 || Instant::now() < until {
                let received = step(&client, i, customers, &mut tally).await;
                assert_no_raw(&received, &raw);
                i += 1;
            }
            drop(client.client);
            client
                .ended
                .await
                .unwrap()
                .expect("the session ends cleanly");
            tally
        }));
    }
    let mut total = Tally::default();
    for t in tasks {
        let tally = t.await.expect("a session task panicked");
        total.statements += tally.statements;
        total.refused += tally.refused;
        total.server_errors += tally.server_errors;
        total.connect = total.connect.max(tally.connect);
    }
    eprintln!(
        "{SESSIONS} sessions (slowest connect {:?}): {} statements ({} refused, {} server errors) in {:?}",
        total.connect,
        total.statements,
        total.refused,
        total.server_errors,
        started.elapsed()
    );
    assert!(total.statements >= 8 * SESSIONS as u64);
    assert!(total.refused > 0 && total.server_errors > 0);

    // The sessions arrived together: the first read the upstream catalog,
    // the others waited for it instead of each reading it again.
    let loads = w.gw.stderr().matches("upstream catalog loaded").count();
    assert_eq!(loads, 1, "catalog loads for {SESSIONS} concurrent sessions");

    // Every session started and ended in the audit log.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let starts = w.audit("session.start").await.len();
        let ends = w.audit("session.end").await.len();
        if starts == SESSIONS && ends == SESSIONS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{starts} session.start and {ends} session.end events for {SESSIONS} sessions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
