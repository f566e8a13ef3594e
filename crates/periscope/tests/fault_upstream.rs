//! The upstream PostgreSQL dies mid-query, through the real gateway: clients
//! get an error within seconds instead of hanging, their sessions end, the
//! audit log says why, and once the server is back the gateway serves new
//! sessions without a restart of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use crate::support::proxy::{cells, world};
use serde_json::Value;

/// Polls `check` until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_killed_mid_query_fails_fast_is_audited_and_recovers() {
    let mut w = world().await;

    // A tokio-postgres session and a psql session (TLS), each inside a long
    // statement upstream.
    let client = w.client().await;
    let running = tokio::spawn(async move {
        let result = client.simple_query("SELECT pg_sleep(60)").await;
        (result.map(|_| ()), client)
    });
    let psql = {
        let conninfo = w.conninfo("alice", "pg-prod");
        let token = w.alice.token.clone();
        let psql = w.psql_runner(&conninfo, &token);
        tokio::spawn(async move {
            let out = psql.command("SELECT pg_sleep(61)").output().await.unwrap();
            (Instant::now(), out)
        })
    };
    eventually("both statements run upstream", Duration::from_secs(20), || {
        let active = w
            .shop
            .cluster
            .psql(
                "shop",
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(6%' AND state = 'active'",
            )
            .unwrap();
        async move { (active == "2").then_some(()) }
    })
    .await;

    // The crash: SIGKILL to the postmaster, as the OOM killer would.
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| w.shop.cluster.kill()).unwrap();

    let (result, client) = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the tokio-postgres client hears about the lost upstream within 5 s")
        .unwrap();
    let waited = killed_at.elapsed();
    let err = result.expect_err("the statement cannot succeed");
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("a server error, not a bare EOF: {err}"));
    assert_eq!(db.code().code(), "08006", "{db:?}");
    assert!(db.message().contains("upstream connection lost"), "{db:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The session is over: the connection task ends and the client is closed.
    let ended = tokio::time::timeout(Duration::from_secs(5), client.ended)
        .await
        .expect("the connection ends")
        .unwrap();
    drop(ended);
    assert!(client.client.is_closed());

    let (psql_done, out) = tokio::time::timeout(Duration::from_secs(5), psql)
        .await
        .expect("psql hears about the lost upstream within 5 s")
        .unwrap();
    assert!(psql_done.duration_since(killed_at) < Duration::from_secs(5));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("upstream connection lost"), "{stderr}");

    // While the server is down, a new session is refused at once with 08001
    // rather than left waiting.
    let started = Instant::now();
    let down = crate::support::proxy::connect(&format!(
        "host=127.0.0.1 port={} user=alice password={} dbname=pg-dev sslmode=disable",
        w.pg_port(),
        w.alice.token
    ))
    .await;
    let err = down.err().expect("no session without an upstream");
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().code(), "08001", "{db:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // The audit log ends both sessions with the reason.
    let ends: Vec<Value> = eventually(
        "two session.end events naming the lost upstream",
        Duration::from_secs(10),
        || async {
            let ends: Vec<Value> = w
                .audit("session.end")
                .await
                .into_iter()
                .filter(|e| {
                    e["details"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("upstream lost"))
                })
                .collect();
            (ends.len() == 2).then_some(ends)
        },
    )
    .await;
    for end in &ends {
        assert_eq!(end["actor"], "alice", "{end}");
        assert_eq!(end["details"]["statements"], 1, "{end}");
    }
    let queries = w.audit("query").await;
    let sleeps: Vec<&Value> = queries
        .iter()
        .filter(|q| {
            q["details"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("pg_sleep"))
        })
        .collect();
    assert_eq!(sleeps.len(), 2, "{queries:?}");
    // Each interrupted statement has its outcome: an error, 08006, pointing
    // at its query event.
    let results = w.audit("query.result").await;
    for query in &sleeps {
        let result = results
            .iter()
            .find(|r| r["details"]["query_seq"] == query["seq"])
            .unwrap_or_else(|| panic!("no query.result for {query}: {results:?}"));
        assert_eq!(result["details"]["outcome"], "error", "{result}");
        assert_eq!(result["details"]["sqlstate"], "08006", "{result}");
    }

    // The server comes back (crash recovery); the gateway was never
    // restarted and serves new sessions again, masking included.
    tokio::task::block_in_place(|| w.shop.cluster.restart()).unwrap();
    let client = w.client().await;
    let rows = cells(
        &client
            .simple_query("SELECT id, email FROM customers ORDER BY id LIMIT 2")
            .await
            .unwrap(),
    );
    assert_eq!(rows, vec![vec!["1", "[email]"], vec!["2", "[email]"]]);
    let out = w.psql("SELECT count(*) FROM customers").await;
    assert!(out.success, "{}", out.all());
    assert_eq!(out.stdout.trim(), w.shop.customers.len().to_string());
}
