//! Session control: cancel mapping, hook refusals, termination from outside,
//! back-pressure, upstream loss, session limit and shutdown.

use std::time::{Duration, Instant};

use crate::support::*;
use bytes::BytesMut;
use futures_util::{StreamExt, pin_mut};
use periscope_pg_wire::backend::{BackendMessage, TransactionStatus};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

#[tokio::test]
async fn cancel_through_the_gateway_stops_a_running_query() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    let cancel = client.cancel_token();

    let started = Instant::now();
    let running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    wait_until_active(&cluster, "SELECT pg_sleep(30)%").await;

    // The client only knows the gateway's key; the gateway maps it.
    cancel
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("send the cancel request to the gateway");
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the cancelled query ends promptly")
        .unwrap();
    let err = outcome.expect_err("a cancelled query fails");
    assert_eq!(err.code().unwrap().code(), "57014", "{err}");
    assert!(started.elapsed() < Duration::from_secs(25));
    assert_eq!(gw.metrics.cancels_forwarded(), 1);
}

#[tokio::test]
async fn a_cancel_with_a_wrong_key_is_ignored() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    let mut raw = RawClient::connect(gw.addr).await;
    let mut out = BytesMut::new();
    periscope_pg_wire::frontend::encode::cancel_request(&mut out, 12345, &[1, 2, 3, 4]);
    raw.send(&out).await;
    assert!(raw.until_eof().await.is_empty(), "a cancel gets no answer");
    assert_eq!(gw.metrics.cancels_forwarded(), 0);
    client.simple_query("SELECT 1").await.unwrap();
}

fn refusing_hooks() -> HookConfig {
    HookConfig {
        refuse_word: Some("secret_table".into()),
        ..HookConfig::default()
    }
}

#[tokio::test]
async fn a_refused_query_gets_42501_and_the_session_continues() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    client
        .batch_execute("CREATE TABLE visible (x int); INSERT INTO visible VALUES (7)")
        .await
        .unwrap();

    // Simple protocol.
    let err = client
        .simple_query("SELECT * FROM secret_table")
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42501");
    assert_eq!(db.message(), "access to secret_table is shielded");
    assert_eq!(
        db.hint(),
        Some("periscope request pg-test --lift table:secret_table")
    );
    // Extended protocol (Parse refused, rest of the batch discarded).
    let err = client
        .query("SELECT * FROM secret_table WHERE 1 = $1", &[&1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501");
    // The session still works, both ways.
    let row = client
        .query_one("SELECT x FROM visible", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    client.simple_query("SELECT 1").await.unwrap();

    // psql shows the refusal.
    let out = psql(&cluster, &gw.conninfo(), "SELECT * FROM secret_table").await;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("ERROR:  access to secret_table is shielded"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn refusals_are_answered_in_order_with_pipelined_work() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;

    // Three simple queries in one write: the refused one in the middle must
    // be answered after the first one's results, before the third's.
    let mut out = BytesMut::new();
    periscope_pg_wire::frontend::encode::query(&mut out, "SELECT pg_sleep(0.2), 'first'");
    periscope_pg_wire::frontend::encode::query(&mut out, "SELECT * FROM secret_table");
    periscope_pg_wire::frontend::encode::query(&mut out, "SELECT 'third'");
    raw.send(&out).await;
    let first = raw.until_ready().await;
    assert!(first.iter().any(|m| m.tag == b'D'), "{first:?}");
    assert!(first.iter().all(|m| m.tag != b'E'));
    let second = raw.until_ready().await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[0].error().unwrap().code(), Some("42501"));
    let third = raw.until_ready().await;
    let data = third.iter().find(|m| m.tag == b'D').unwrap();
    assert!(String::from_utf8_lossy(&data.raw).contains("third"));

    // An extended batch: a forwarded statement, then a refused Parse, then
    // more messages up to Sync. The forwarded part runs; the error comes
    // after its results, before the batch's ReadyForQuery; the rest is
    // discarded.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "SELECT 'ok'"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::parse("s2", "SELECT * FROM secret_table"));
    out.extend_from_slice(&build::bind("", "s2"));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::sync());
    raw.send(&out).await;
    let batch = raw.until_ready().await;
    let tags: Vec<u8> = batch.iter().map(|m| m.tag).collect();
    assert_eq!(tags, b"12DCEZ", "{batch:?}");
    assert_eq!(batch[4].error().unwrap().code(), Some("42501"));
    assert_eq!(
        batch[5].decode(),
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );

    // A batch refused before anything went upstream: error, then our own
    // ReadyForQuery at the Sync.
    let mut out = BytesMut::new();
    out.extend_from_slice(&build::parse("", "SELECT * FROM secret_table"));
    out.extend_from_slice(&build::bind("", ""));
    out.extend_from_slice(&build::execute("", 0));
    out.extend_from_slice(&build::sync());
    raw.send(&out).await;
    let batch = raw.until_ready().await;
    let tags: Vec<u8> = batch.iter().map(|m| m.tag).collect();
    assert_eq!(tags, b"EZ", "{batch:?}");

    // And the session is fine.
    raw.query("SELECT 'after'").await;
    let after = raw.until_ready().await;
    assert!(after.iter().any(|m| m.tag == b'D'));
}

#[tokio::test]
async fn terminate_from_outside_reaches_the_client_within_a_second() {
    let cluster = start_cluster();
    let (tx, mut handles) = mpsc::unbounded_channel();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(HookConfig {
            handles: Some(tx),
            ..HookConfig::default()
        })
        .start()
        .await;
    let (client, conn) = gw.connect().await;
    client.simple_query("SELECT 1").await.unwrap();
    let handle = handles.recv().await.unwrap();
    assert_eq!(gw.metrics.active_sessions(), 1);
    assert_eq!(gw.sessions.snapshot().len(), 1);

    let asked = Instant::now();
    handle.terminate("grant 42 expired: the unmask:email shield is back");
    let outcome = tokio::time::timeout(Duration::from_secs(1), conn)
        .await
        .expect("the connection ends within a second")
        .unwrap();
    let err = outcome.expect_err("the session ends with an error");
    let db = err.as_db_error().expect("a FATAL from the gateway");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.code().code(), "57P01");
    assert_eq!(
        db.message(),
        "grant 42 expired: the unmask:email shield is back"
    );
    assert!(asked.elapsed() < Duration::from_secs(1));
    assert!(client.simple_query("SELECT 1").await.is_err());
    // The session is gone from the listener's books.
    let deadline = Instant::now() + Duration::from_secs(5);
    while gw.metrics.active_sessions() != 0 {
        assert!(Instant::now() < deadline, "session still counted as active");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_slow_reader_keeps_relay_memory_bounded() {
    let cluster = start_cluster();
    let (tx, mut handles) = mpsc::unbounded_channel();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(HookConfig {
            handles: Some(tx),
            ..HookConfig::default()
        })
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    let handle = handles.recv().await.unwrap();

    const ROWS: i64 = 200_000;
    let stream = client
        .query_raw(
            "SELECT g, repeat('x', 100) FROM generate_series(1, $1::int8) g",
            [ROWS],
        )
        .await
        .unwrap();
    pin_mut!(stream);
    let mut count = 0i64;
    while let Some(row) = stream.next().await {
        let row = row.unwrap();
        count += 1;
        assert_eq!(row.get::<_, i64>(0), count);
        // A slow consumer: the server could produce much faster.
        if count % 2_000 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert_eq!(count, ROWS);

    let relayed = handle.stats().bytes_from_upstream();
    let high_water = handle.stats().buffer_high_water();
    eprintln!("relayed {relayed} bytes with a buffer high-water mark of {high_water} bytes");
    assert!(relayed > 20_000_000, "the result is large: {relayed} bytes");
    // Two 64 KiB receive buffers plus at most one buffer's worth queued.
    assert!(
        high_water <= 256 * 1024,
        "relay memory must not grow with the result: {high_water} bytes"
    );
    assert_eq!(gw.metrics.buffer_high_water(), high_water);
}

#[tokio::test]
async fn losing_the_upstream_mid_query_fails_the_client_promptly() {
    let mut cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, conn) = gw.connect().await;
    let running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await });
    wait_until_active(&cluster, "SELECT pg_sleep(30)%").await;

    let killed = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.kill().expect("kill the cluster");
        cluster
    })
    .await
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the client hears about it promptly")
        .unwrap();
    // The pending query receives the gateway's FATAL.
    let err = outcome.expect_err("the query cannot succeed");
    let db = err
        .as_db_error()
        .expect("an error from the gateway, not a bare EOF");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.code().code(), "08006");
    assert_eq!(db.message(), "upstream connection lost");
    tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("the connection closes")
        .unwrap()
        .expect_err("the connection ends with an error");
    eprintln!("client saw the loss {:?} after the kill", killed.elapsed());
    assert!(killed.elapsed() < Duration::from_secs(10));
    drop(cluster);
}

#[tokio::test]
async fn the_session_limit_refuses_with_53300_and_frees_up() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .config(|c| c.max_sessions = 1)
        .start()
        .await;
    let (client, conn) = gw.connect().await;
    client.simple_query("SELECT 1").await.unwrap();

    let Err(err) = connect(&gw.conninfo()).await else {
        panic!("a second session over the limit must be refused")
    };
    assert_eq!(err.code().unwrap().code(), "53300", "{err}");
    assert_eq!(gw.metrics.refused_over_limit(), 1);

    drop(client);
    conn.await.unwrap().unwrap();
    // The slot is released when the session task ends.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match connect(&gw.conninfo()).await {
            Ok((client, _)) => {
                client.simple_query("SELECT 1").await.unwrap();
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "slot never freed: {e}");
                tokio::task::yield_now().await;
            }
        }
    }
}

#[tokio::test]
async fn shutdown_ends_live_sessions_with_a_message() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, conn) = gw.connect().await;
    client.simple_query("SELECT 1").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), gw.shutdown())
        .await
        .expect("shutdown completes");
    let err = conn.await.unwrap().expect_err("the session was ended");
    assert_eq!(err.code().unwrap().code(), "57P01");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "the Periscope gateway is shutting down"
    );
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}

#[tokio::test]
async fn thousands_of_refusals_pipelined_behind_a_slow_statement_stay_in_order() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(refusing_hooks())
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;
    const REFUSED: usize = 3_000;
    let mut out = BytesMut::new();
    periscope_pg_wire::frontend::encode::query(&mut out, "SELECT pg_sleep(0.3)");
    for i in 0..REFUSED {
        periscope_pg_wire::frontend::encode::query(
            &mut out,
            &format!("SELECT {i} FROM secret_table"),
        );
    }
    periscope_pg_wire::frontend::encode::query(&mut out, "SELECT 'last'");
    // Written concurrently: the relay pauses reading while refusals wait.
    let (mut read_half, mut write_half) = raw.stream().split();
    let writer = async {
        write_half.write_all(&out).await.unwrap();
    };
    let reader = async {
        let mut all = Vec::new();
        let mut buf = BytesMut::new();
        let mut readies = 0;
        while readies < REFUSED + 2 {
            while let Some(frame) = periscope_pg_wire::Frame::parse(&buf, usize::MAX).unwrap() {
                let len = frame.len();
                let raw = buf.split_to(len).to_vec();
                if raw[0] == b'Z' {
                    readies += 1;
                }
                all.push(raw[0]);
            }
            if readies >= REFUSED + 2 {
                break;
            }
            let n = read_half.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed early");
        }
        all
    };
    let ((), tags) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(writer, reader)
    })
    .await
    .expect("every query answered");
    // The slow statement's answer first, then each refusal, then the last.
    let first_ready = tags.iter().position(|&t| t == b'Z').unwrap();
    assert!(tags[..first_ready].contains(&b'D'));
    let refusals = &tags[first_ready + 1..first_ready + 1 + 2 * REFUSED];
    assert!(
        refusals.chunks(2).all(|pair| pair == b"EZ"),
        "refusals out of order"
    );
    let last = &tags[first_ready + 1 + 2 * REFUSED..];
    assert_eq!(last, b"TDCZ");
}

#[tokio::test]
async fn a_backend_hook_rewrites_rows_and_drops_messages() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(HookConfig {
            mask_emails: true,
            ..HookConfig::default()
        })
        .start()
        .await;
    let out = psql(
        &cluster,
        &gw.conninfo(),
        "DO $$ BEGIN RAISE NOTICE 'dropped'; END $$; \
         SELECT 'alice@example.com', 'plain', NULL::text UNION ALL SELECT 'x', 'bob@example.org', 'y'",
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "DO\n[email]|plain|\nx|[email]|y");
    assert!(!out.stderr.contains("dropped"), "{}", out.stderr);
    assert!(!out.stdout.contains('@'));
}

#[tokio::test]
async fn terminating_a_session_also_cancels_its_running_statement() {
    let cluster = start_cluster();
    let (tx, mut handles) = mpsc::unbounded_channel();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .hooks(HookConfig {
            handles: Some(tx),
            ..HookConfig::default()
        })
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    let handle = handles.recv().await.unwrap();
    let running = tokio::spawn(async move { client.simple_query("SELECT pg_sleep(60)").await });
    wait_until_active(&cluster, "SELECT pg_sleep(60)%").await;

    handle.terminate("grant 7 revoked");
    let err = tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("the client is told at once")
        .unwrap()
        .expect_err("the statement does not complete");
    assert_eq!(err.as_db_error().unwrap().message(), "grant 7 revoked");

    // The upstream backend stops too, instead of sleeping a minute.
    let (direct, _c) = connect(&cluster.conninfo("postgres")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = direct
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' \
                 AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream statement kept running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
