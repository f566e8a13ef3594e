//! Guardrails and grants through the real gateway: what psql and
//! tokio-postgres are refused (with the command that would lift the shield),
//! what a real request and approval change (for new sessions only), and how
//! a session that relies on a grant is ended when the grant expires or is
//! revoked, while a session without grants carries on.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::support::proxy::{Client, World, cells, cli, world};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;

/// The request command printed after `HINT:  to request it: `, without its
/// `--reason "..."`, as CLI arguments.
fn hint_command(stderr: &str) -> Vec<String> {
    let hint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("HINT:  to request it: "))
        .unwrap_or_else(|| panic!("a HINT with the request command:\n{stderr}"));
    let command = hint
        .split(" --reason ")
        .next()
        .unwrap_or_else(|| panic!("{hint}"));
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "periscope", "{hint}");
    words[1..].to_vec()
}

/// Runs a request command as alice and bob's approval through the CLI;
/// returns the grant id.
async fn request_and_approve(w: &World, request: &[String], reason: &str) -> String {
    let mut args: Vec<&str> = request.iter().map(String::as_str).collect();
    args.extend(["--reason", reason, "--json"]);
    let out = cli(w, &w.alice.token, &args).await;
    assert!(out.success, "{}", out.all());
    let id = serde_json::from_str::<Value>(&out.stdout).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli(w, &w.bob.token, &["approve", &id, "--json"]).await;
    assert!(out.success, "{}", out.all());
    serde_json::from_str::<Value>(&out.stdout).unwrap()["grant"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_name_the_shield_and_the_command_that_lifts_it() {
    let w = world().await;
    let conninfo = w.conninfo("alice", "pg-prod");

    // A write: 42501, the shield, and the exact command in the HINT.
    let out = w
        .psql_verbose(
            &conninfo,
            &w.alice.token,
            "UPDATE customers SET name = 'Renamed Person' WHERE id = 1",
        )
        .await;
    assert!(!out.success, "{}", out.all());
    assert!(
        out.stderr
            .contains("ERROR:  42501: `UPDATE` blocked by shield `write` on connection `pg-prod`"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains(
            "HINT:  to request it: periscope request pg-prod --lift write --for 30m --reason \"...\" (role dev: up to 1h"
        ),
        "{}",
        out.all()
    );
    let request = hint_command(&out.stderr);

    // A dangerous function, even in a read.
    let out = w
        .psql_verbose(
            &conninfo,
            &w.alice.token,
            "SELECT pg_read_file('/etc/hostname')",
        )
        .await;
    assert!(!out.success, "{}", out.all());
    assert!(
        out.stderr.contains("ERROR:  42501:") && out.stderr.contains("`function:pg_read_file`"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains("--lift function:pg_read_file"),
        "{}",
        out.all()
    );

    // The HINT's command, run as printed, and an approval.
    let grant = request_and_approve(&w, &request, "INC-7003: rename one customer").await;
    assert!(grant.starts_with("gr_"), "{grant}");

    // A new session: the bounded write runs...
    let out = w
        .psql_verbose(
            &conninfo,
            &w.alice.token,
            "UPDATE customers SET name = 'Renamed Person' WHERE id = 1",
        )
        .await;
    assert!(out.success, "{}", out.all());
    assert!(out.stdout.contains("UPDATE 1"), "{}", out.all());
    let upstream = w
        .shop
        .cluster
        .psql("shop", "SELECT name FROM customers WHERE id = 1")
        .unwrap();
    assert_eq!(upstream.trim(), "Renamed Person");
    // ...an UPDATE without WHERE stays refused: `write` is not
    // `unbounded-write`.
    let out = w
        .psql_verbose(
            &conninfo,
            &w.alice.token,
            "UPDATE customers SET name = name",
        )
        .await;
    assert!(!out.success, "{}", out.all());
    assert!(
        out.stderr.contains("ERROR:  42501:") && out.stderr.contains("shield `unbounded-write`"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr
            .contains("periscope request pg-prod --lift unbounded-write"),
        "{}",
        out.all()
    );
    // ...and the dangerous function too.
    let out = w
        .psql_verbose(
            &conninfo,
            &w.alice.token,
            "SELECT pg_read_file('/etc/hostname')",
        )
        .await;
    assert!(!out.success, "{}", out.all());
    assert!(
        out.stderr.contains("`function:pg_read_file`"),
        "{}",
        out.all()
    );
    let count = w
        .shop
        .cluster
        .psql(
            "shop",
            "SELECT count(*) FROM customers WHERE name = 'Renamed Person'",
        )
        .unwrap();
    assert_eq!(count.trim(), "1", "the unbounded UPDATE never ran");

    // Each refusal is audited with its shield; the grant's ones under it.
    let refused = w
        .audit_until("query.refused", |events| {
            (events.len() >= 4).then(|| events.to_vec())
        })
        .await;
    let shields: Vec<&str> = refused
        .iter()
        .map(|e| e["details"]["shield"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        shields,
        [
            "write",
            "function:pg_read_file",
            "unbounded-write",
            "function:pg_read_file"
        ]
    );
    assert_eq!(refused[0]["grant_ids"], json!([]));
    assert_eq!(refused[2]["grant_ids"], json!([grant]));
    assert_eq!(
        refused[2]["details"]["text"],
        "UPDATE customers SET name = name"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unmask_grant_shows_emails_in_new_sessions_while_cards_stay_masked() {
    let w = world().await;
    let before = w.client().await;
    let query = "SELECT id, email, card_number FROM customers ORDER BY id";

    let request: Vec<String> = [
        "request",
        "pg-dev",
        "--lift",
        "unmask:email",
        "--for",
        "30m",
    ]
    .map(str::to_string)
    .to_vec();
    let grant = request_and_approve(&w, &request, "INC-7004: bounce emails").await;

    let after = w.client().await;
    let rows = cells(&after.simple_query(query).await.unwrap());
    assert_eq!(rows.len(), w.shop.customers.len());
    for (row, c) in rows.iter().zip(&w.shop.customers) {
        assert_eq!(row[1], c.email, "the grant lifts email masking");
        assert_eq!(row[2], "[card]", "cards stay masked");
    }
    // The session opened before the approval keeps its shields.
    let rows = cells(&before.simple_query(query).await.unwrap());
    assert!(rows.iter().all(|r| r[1] == "[email]"), "{rows:?}");
    // So does every session on another connection.
    let out = w.psql("SELECT email FROM customers WHERE id = 1").await;
    assert!(out.success, "{}", out.all());
    assert_eq!(out.stdout.trim(), "[email]");

    let starts = w.audit("session.start").await;
    let grants: Vec<&Value> = starts.iter().map(|e| &e["grant_ids"]).collect();
    assert_eq!(grants, [&json!([]), &json!([grant]), &json!([])]);
}

/// Waits for the FATAL a client is sent while idle; returns it and how long
/// it took from `since`.
async fn fatal_of(client: Client, since: Instant) -> (tokio_postgres::error::DbError, Duration) {
    let Client { client, ended } = client;
    let outcome = tokio::time::timeout(Duration::from_secs(10), ended)
        .await
        .expect("the session ends within 10 s")
        .expect("the connection task reports");
    let elapsed = since.elapsed();
    eprintln!("the client saw the FATAL {elapsed:?} after the grant ended");
    let error = outcome.expect_err("the session ends with an error");
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("a FATAL from the gateway, got {error:?}"))
        .clone();
    assert!(client.is_closed());
    (db, elapsed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_end_closes_the_sessions_relying_on_it_within_a_second() {
    let w = world().await;
    let email_1 = w.shop.customers[0].email.clone();
    let probe = "SELECT email FROM customers WHERE id = 1";
    let plain = w.client().await;

    // Expiry.
    let grant = w.grant_on("pg-dev", &["unmask:email"], "10m").await;
    let reliant = w.client().await;
    assert_eq!(
        cells(&reliant.simple_query(probe).await.unwrap()),
        [[email_1.clone()]]
    );
    let t0 = Instant::now();
    w.advance_clock("10m 1s").await;
    let (fatal, elapsed) = fatal_of(reliant, t0).await;
    assert_eq!(fatal.severity(), "FATAL");
    assert_eq!(fatal.code(), &SqlState::ADMIN_SHUTDOWN);
    assert_eq!(
        fatal.message(),
        format!("grant {grant} expired: this session relied on it (unmask:email) and was closed")
    );
    assert_eq!(
        fatal.hint(),
        Some(
            "to request it again: periscope request pg-dev --lift unmask:email --for 30m \
             --reason \"...\", then open a new session"
        )
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "the session saw the expiry after {elapsed:?}"
    );

    // The session that started with no grant carries on, masked as ever.
    assert_eq!(
        cells(&plain.simple_query(probe).await.unwrap()),
        [["[email]".to_string()]]
    );
    // A new session is masked again.
    let fresh = w.client().await;
    assert_eq!(
        cells(&fresh.simple_query(probe).await.unwrap()),
        [["[email]".to_string()]]
    );

    // Revocation.
    let grant = w.grant_on("pg-dev", &["unmask:email"], "30m").await;
    let reliant = w.client().await;
    assert_eq!(
        cells(&reliant.simple_query(probe).await.unwrap()),
        [[email_1.clone()]]
    );
    let t0 = Instant::now();
    let revoked = w
        .bob
        .api
        .post(
            &format!("/v1/grants/{grant}/revoke"),
            &json!({"reason": "INC-7005 closed"}),
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let (fatal, elapsed) = fatal_of(reliant, t0).await;
    assert_eq!(fatal.code(), &SqlState::ADMIN_SHUTDOWN);
    assert_eq!(
        fatal.message(),
        format!(
            "grant {grant} was revoked by bob: this session relied on it (unmask:email) and was closed"
        )
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "the session saw the revocation after {elapsed:?}"
    );
    assert_eq!(
        cells(&plain.simple_query(probe).await.unwrap()),
        [["[email]".to_string()]]
    );
    assert_eq!(
        cells(&fresh.simple_query(probe).await.unwrap()),
        [["[email]".to_string()]]
    );

    // The audit log ties each end to its grant.
    let ends = w
        .audit_until("session.end", |events| {
            let terminated: Vec<Value> = events
                .iter()
                .filter(|e| {
                    e["details"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("terminated: grant "))
                })
                .cloned()
                .collect();
            (terminated.len() == 2).then_some(terminated)
        })
        .await;
    assert!(
        ends[1]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("grant {grant} was revoked by bob")),
        "{ends:#?}"
    );
    assert_eq!(ends[1]["grant_ids"], json!([grant]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_end_also_closes_a_session_in_the_middle_of_a_statement() {
    let w = world().await;
    let grant = w.grant_on("pg-dev", &["unmask:email"], "10m").await;
    let reliant = w.client().await;
    let Client { client, ended } = reliant;
    let client = std::sync::Arc::new(client);
    let running = tokio::spawn({
        let client = std::sync::Arc::clone(&client);
        async move { client.simple_query("SELECT pg_sleep(60)").await }
    });
    // The statement is running upstream once the gateway shows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream_count(
        &w,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'",
    ) != 1
    {
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let t0 = Instant::now();
    w.advance_clock("10m 1s").await;
    let error = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the statement ends within 10 s")
        .unwrap()
        .expect_err("the statement does not complete");
    let elapsed = t0.elapsed();
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("a FATAL from the gateway, got {error:?}"));
    assert_eq!(db.code(), &SqlState::ADMIN_SHUTDOWN);
    assert!(
        db.message().starts_with(&format!("grant {grant} expired")),
        "{db:?}"
    );
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let _ = tokio::time::timeout(Duration::from_secs(10), ended).await;
    // And the upstream statement was cancelled, not left running.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream_count(
        &w,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)'",
    ) != 0
    {
        assert!(
            Instant::now() < deadline,
            "the upstream statement still runs 10 s after the session ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A count read directly from the upstream, as its superuser.
fn upstream_count(w: &World, sql: &str) -> u64 {
    tokio::task::block_in_place(|| w.shop.cluster.psql("shop", sql))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}
