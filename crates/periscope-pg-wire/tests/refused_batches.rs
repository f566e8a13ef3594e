//! A refusal inside an extended batch is answered as PostgreSQL answers a
//! failing message: the error at once (drivers that send Parse, Describe,
//! Flush and wait, like asyncpg, or flush a pipeline before fetching, like
//! psycopg 3, must not hang), the rest skipped until Sync, and the batch's
//! implicit transaction rolled back.

use crate::support::*;
use bytes::BytesMut;

fn refusing_hooks() -> HookConfig {
    HookConfig {
        refuse_word: Some("secret_table".into()),
        ..HookConfig::default()
    }
}

fn describe_statement(name: &str) -> Vec<u8> {
    let mut body = vec![b'S'];
    body.extend_from_slice(name.as_bytes());
    body.push(0);
    build::sized(b'D', &body)
}

fn flush() -> Vec<u8> {
    build::sized(b'H', &[])
}

fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}

/// Reads exactly `n` messages (each within the raw client's 10 s limit: a
/// hang fails the test).
async fn recv_n(raw: &mut RawClient, n: usize) -> Vec<Msg> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(raw.recv().await);
    }
    out
}

#[tokio::test]
async fn a_refused_parse_followed_by_flush_is_answered_at_once() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;

    // asyncpg's prepare: Parse, Describe, Flush, and it waits.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("s1", "SELECT * FROM secret_table"));
    out.extend_from_slice(&describe_statement("s1"));
    out.extend_from_slice(&flush());
    raw.send(&out).await;
    let error = raw.recv().await;
    assert_eq!(error.tag, b'E', "{error:?}");
    assert_eq!(error.error().unwrap().code(), Some("42501"));
    // Its Sync (asyncpg sends one after the error) gets ReadyForQuery only.
    raw.send(&build::sync()).await;
    assert_eq!(tags(&raw.until_ready().await), "Z");

    // The session goes on, in both protocols.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("s2", "SELECT 'next'"));
    out.extend_from_slice(&describe_statement("s2"));
    out.extend_from_slice(&flush());
    raw.send(&out).await;
    assert_eq!(tags(&recv_n(&mut raw, 3).await), "1tT");
    raw.send(&build::sync()).await;
    assert_eq!(tags(&raw.until_ready().await), "Z");
    raw.query("SELECT 'after'").await;
    assert_eq!(tags(&raw.until_ready().await), "TDCZ");
}

#[tokio::test]
async fn a_pipeline_gets_the_results_before_the_refusal_without_a_sync() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;

    // psycopg 3 pipeline: an allowed statement, a refused one, then a
    // flush request before the Sync.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "SELECT 'first'"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::parse("", "SELECT * FROM secret_table"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&flush());
    raw.send(&out).await;
    let got = recv_n(&mut raw, 5).await;
    assert_eq!(tags(&got), "12DCE", "{got:?}");
    assert!(String::from_utf8_lossy(&got[2].raw).contains("first"));
    let err = got[4].error().unwrap();
    assert_eq!(err.code(), Some("42501"));
    assert_eq!(err.message(), Some("access to secret_table is shielded"));
    raw.send(&build::sync()).await;
    assert_eq!(tags(&raw.until_ready().await), "Z");

    // A second such batch on the same session behaves the same.
    raw.send(&out).await;
    assert_eq!(tags(&recv_n(&mut raw, 5).await), "12DCE");
    raw.send(&build::sync()).await;
    assert_eq!(tags(&raw.until_ready().await), "Z");
}

#[tokio::test]
async fn the_batch_is_rolled_back_as_the_server_would() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;
    raw.query("CREATE TABLE visible (x int)").await;
    raw.until_ready().await;

    // The insert ran upstream, the statement after it was refused: the
    // implicit transaction of the batch is rolled back, like PostgreSQL
    // does when a later message of a batch fails.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "INSERT INTO visible VALUES (8)"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::parse("", "SELECT * FROM secret_table"));
    out.extend_from_slice(&build::sync());
    raw.send(&out).await;
    assert_eq!(tags(&raw.until_ready().await), "12CEZ");
    raw.query("SELECT count(*) FROM visible").await;
    let rows = raw.until_ready().await;
    let row = rows.iter().find(|m| m.tag == b'D').unwrap();
    assert_eq!(row.data_row().unwrap()[0].as_deref(), Some(&b"0"[..]));
}

#[tokio::test]
async fn an_earlier_server_error_in_the_batch_stands() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;

    // The server fails first; it never reaches the refused statement's
    // place, so the client sees the server's error, once.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "SELECT 1/0"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::parse("", "SELECT * FROM secret_table"));
    out.extend_from_slice(&build::sync());
    raw.send(&out).await;
    let got = raw.until_ready().await;
    // (The division by a constant fails when the server plans it, at Bind.)
    assert_eq!(tags(&got), "1EZ", "{got:?}");
    assert_eq!(got[1].error().unwrap().code(), Some("22012"));

    // Nothing of that refusal lingers: the next batch's own error is the
    // server's, not a refusal.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "SELECT * FROM no_such_table"));
    out.extend_from_slice(&build::sync());
    raw.send(&out).await;
    let got = raw.until_ready().await;
    assert_eq!(tags(&got), "EZ");
    assert_eq!(got[0].error().unwrap().code(), Some("42P01"));
}
