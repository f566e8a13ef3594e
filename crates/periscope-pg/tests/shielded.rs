//! The shielded session against a real PostgreSQL: lineage-aware masking of
//! every transformation, guardrails, the audit hold, the extended protocol
//! and COPY. The gateway end-to-end tests (crates/periscope/tests/proxy_*)
//! cover the same product through the real binary; these pin the session's
//! own behaviour with a controllable audit sink.

use crate::support::{Shielded, assert_no_raw, grant, raw_values, seeded_cluster};
use tokio_postgres::SimpleQueryMessage;

fn texts(messages: &[SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn joined(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|r| r.join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_transformation_of_a_sensitive_column_is_masked_whole() {
    let (cluster, customers) = seeded_cluster(12);
    let raw = raw_values(&customers);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    let cases = [
        ("upper", "SELECT upper(email) FROM customers"),
        ("reverse", "SELECT reverse(card_number) FROM customers"),
        (
            "encode",
            "SELECT encode(email::bytea, 'hex') FROM customers",
        ),
        (
            "substr",
            "SELECT substr(ssn, 1, 3) || substr(ssn, 5) FROM customers",
        ),
        ("concat", "SELECT 'x' || iban || 'y' FROM customers"),
        ("bytea cast", "SELECT phone::bytea FROM customers"),
        (
            "translate",
            "SELECT translate(email, '@.', '#,') FROM customers",
        ),
        ("string_agg", "SELECT string_agg(email, ',') FROM customers"),
        ("array_agg", "SELECT array_agg(card_number) FROM customers"),
        (
            "cte",
            "WITH c AS (SELECT email AS e FROM customers) SELECT e FROM c",
        ),
        (
            "subquery",
            "SELECT x FROM (SELECT ssn AS x FROM customers) s",
        ),
        (
            "join",
            "SELECT o.id, c.iban FROM orders o JOIN customers c ON c.id = o.customer_id",
        ),
        (
            "union",
            "SELECT name FROM customers UNION ALL SELECT phone FROM customers",
        ),
        (
            "lateral",
            "SELECT l.v FROM customers c, LATERAL (SELECT c.email AS v) l",
        ),
        ("view", "SELECT email FROM contacts"),
        ("view of a view", "SELECT mail FROM contact_mails"),
        (
            "case",
            "SELECT CASE WHEN id > 0 THEN card_number ELSE 'none' END FROM customers",
        ),
        (
            "scalar subquery",
            "SELECT (SELECT max(email) FROM customers)",
        ),
    ];
    for (what, sql) in cases {
        let rows = texts(&client.simple_query(sql).await.unwrap());
        assert!(!rows.is_empty(), "{what}: no rows");
        let text = joined(&rows);
        assert_no_raw(&text, &raw);
        assert!(
            rows.iter()
                .flatten()
                .any(|v| v.starts_with('[') && v.ends_with(']')),
            "{what}: {text}"
        );
    }
    // A transformed value is replaced whole, never partially kept.
    let rows = texts(
        &client
            .simple_query("SELECT reverse(card_number), id FROM customers ORDER BY id")
            .await
            .unwrap(),
    );
    assert_eq!(rows[0], vec!["[card]".to_string(), "1".to_string()]);
    // UNION of a non-sensitive and a sensitive column: the whole column is
    // masked (a value may come from either branch).
    let rows = texts(
        &client
            .simple_query("SELECT name FROM customers UNION ALL SELECT phone FROM customers")
            .await
            .unwrap(),
    );
    assert!(rows.iter().all(|r| r[0] == "[phone]"), "{rows:?}");
}

#[tokio::test]
async fn whole_rows_as_json_mask_the_sensitive_keys_inside() {
    let (cluster, customers) = seeded_cluster(8);
    let raw = raw_values(&customers);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    for sql in [
        "SELECT row_to_json(c) FROM customers c ORDER BY id",
        "SELECT to_jsonb(c) FROM customers c ORDER BY id",
        "SELECT json_agg(c) FROM customers c",
    ] {
        let rows = texts(&client.simple_query(sql).await.unwrap());
        let text = joined(&rows);
        assert_no_raw(&text, &raw);
        let doc: serde_json::Value = serde_json::from_str(&rows[0][0]).unwrap();
        let first = if doc.is_array() { doc[0].clone() } else { doc };
        assert_eq!(first["email"], "[email]", "{sql}: {first}");
        assert_eq!(first["card_number"], "[card]", "{sql}: {first}");
        assert_eq!(
            first["id"], 1,
            "{sql}: non-sensitive keys are kept: {first}"
        );
        assert_eq!(first["name"], customers[0].name.as_str(), "{sql}: {first}");
    }
    // A composite row is masked whole.
    let rows = texts(
        &client
            .simple_query("SELECT c FROM customers c")
            .await
            .unwrap(),
    );
    assert_no_raw(&joined(&rows), &raw);
    assert!(
        rows.iter()
            .all(|r| r[0] == "[ssn]" || r[0].starts_with('[')),
        "{rows:?}"
    );
}

#[tokio::test]
async fn results_wait_for_the_audit_event_and_an_audit_failure_ends_the_session() {
    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    // Audit writes take 300 ms: the rows must not arrive before the ack.
    *proxy.audit.delay.lock().unwrap() = std::time::Duration::from_millis(300);
    let rows = client
        .simple_query("SELECT id FROM customers")
        .await
        .unwrap();
    let received = std::time::Instant::now();
    assert_eq!(texts(&rows).len(), 3);
    let acked = *proxy.audit.query_acks.lock().unwrap().last().unwrap();
    assert!(
        acked <= received,
        "rows were shown before their audit event was durable"
    );
    let queries = proxy.audit.with_action("query");
    assert_eq!(queries.last().unwrap()["text"], "SELECT id FROM customers");

    // The log refuses appends: the statement's results are never shown and
    // the session ends with a FATAL saying why.
    a_failing_log_ends_the_session(&proxy, &client, "SELECT email FROM customers").await;
}

/// Makes the test log refuse appends, then checks that `sql` is answered
/// with a FATAL naming the audit log, not with what it would have shown.
async fn a_failing_log_ends_the_session(
    proxy: &Shielded,
    client: &tokio_postgres::Client,
    sql: &str,
) {
    *proxy.audit.delay.lock().unwrap() = std::time::Duration::ZERO;
    proxy
        .audit
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let err = client
        .simple_query(sql)
        .await
        .expect_err("nothing is shown unaudited");
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("audit log"), "{}", db.message());
}

#[tokio::test]
async fn refusals_wait_for_their_audit_event_and_an_audit_failure_ends_the_session() {
    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    // Audit writes take 300 ms: the refusal must not arrive before its ack,
    // in either protocol.
    *proxy.audit.delay.lock().unwrap() = std::time::Duration::from_millis(300);
    let err = client
        .simple_query("DELETE FROM customers")
        .await
        .unwrap_err();
    let refused_at = std::time::Instant::now();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let err = client
        .execute("UPDATE customers SET email = $1", &[&"x"])
        .await
        .unwrap_err();
    let refused_again_at = std::time::Instant::now();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    let acks = proxy.audit.refusal_acks.lock().unwrap().clone();
    assert_eq!(acks.len(), 2, "{acks:?}");
    assert!(
        acks[0] <= refused_at && acks[1] <= refused_again_at,
        "a refusal was shown before its audit event was durable"
    );
    assert_eq!(proxy.audit.with_action("query.refused").len(), 2);

    // The log refuses appends: the refusal is not shown as if recorded; the
    // session ends with a FATAL saying why.
    a_failing_log_ends_the_session(&proxy, &client, "DELETE FROM customers").await;
}

#[tokio::test]
async fn extended_protocol_masks_rows_of_undescribed_portals_and_binary_results() {
    use crate::support::{CONNECTION, TOKEN, USER};
    use periscope_testkit::pgraw::{RawClient, build};

    let (cluster, customers) = seeded_cluster(5);
    let raw = raw_values(&customers);
    let proxy = Shielded::start(&cluster, "", vec![]).await;

    // tokio-postgres: Parse + Describe(statement) + Sync, then Bind (binary
    // results) + Execute + Sync: rows arrive with no RowDescription.
    let (client, _conn) = proxy.connect().await;
    let stmt = client
        .prepare("SELECT id, email, upper(name) AS n, card_number FROM customers WHERE id <= $1 ORDER BY id")
        .await
        .unwrap();
    // Masked columns are described as text.
    assert_eq!(
        stmt.columns()[1].type_(),
        &tokio_postgres::types::Type::TEXT
    );
    for _ in 0..2 {
        let rows = client.query(&stmt, &[&3i64]).await.unwrap();
        assert_eq!(rows.len(), 3);
        for (row, c) in rows.iter().zip(&customers) {
            assert_eq!(row.get::<_, i64>(0), c.id);
            assert_eq!(row.get::<_, String>(1), "[email]");
            assert_eq!(row.get::<_, String>(2), c.name.to_uppercase());
            assert_eq!(row.get::<_, String>(3), "[card]");
        }
    }

    // A raw client that never describes: Parse, Bind, Execute, Sync.
    let (mut raw_client, _) = RawClient::login(
        proxy.addr,
        &[("user", USER), ("database", CONNECTION)],
        TOKEN,
    )
    .await;
    let mut out = Vec::new();
    out.extend_from_slice(&build::parse(
        "s1",
        "SELECT email, id FROM customers ORDER BY id",
    ));
    out.extend_from_slice(&build::bind("p1", "s1"));
    out.extend_from_slice(&build::execute("p1", 2));
    out.extend_from_slice(&build::execute("p1", 0));
    out.extend_from_slice(&build::sync());
    raw_client.send(&out).await;
    let msgs = raw_client.until_ready().await;
    let tags: String = msgs.iter().map(|m| m.tag as char).collect();
    // ParseComplete, BindComplete, 2 rows, PortalSuspended, 3 rows,
    // CommandComplete, ReadyForQuery: the proxy's own Describe left no trace.
    assert_eq!(tags, "12DDsDDDCZ");
    let mut seen = String::new();
    for m in &msgs {
        if let Some(row) = m.data_row() {
            let f: Vec<_> = row
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_ref().unwrap()).to_string())
                .collect();
            assert_eq!(f[0], "[email]");
            seen.push_str(&f.join(","));
        }
    }
    assert_no_raw(&seen, &raw);
    let executes = proxy.audit.with_action("query");
    let last = executes.last().unwrap();
    assert_eq!(last["portal"], "p1");
    assert_eq!(last["statement"], "s1");
}

#[tokio::test]
async fn copy_to_stdout_masks_text_and_csv_rows_like_select_star() {
    use futures_util::TryStreamExt;
    let (cluster, customers) = seeded_cluster(6);
    let raw = raw_values(&customers);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    for sql in [
        "COPY customers TO STDOUT",
        "COPY customers TO STDOUT WITH (FORMAT csv, HEADER)",
        "COPY (SELECT id, name, email, reverse(iban) FROM customers) TO STDOUT (FORMAT csv, DELIMITER ';')",
    ] {
        let stream = client.copy_out(sql).await.unwrap();
        let chunks: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        let text = String::from_utf8(chunks.concat()).unwrap();
        assert_no_raw(&text, &raw);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() >= customers.len(), "{sql}: {text}");
        assert!(
            text.contains(&customers[0].name),
            "{sql}: names are kept: {text}"
        );
        assert!(text.contains("[email]"), "{sql}: {text}");
        assert!(
            text.contains(&format!("\n{}", customers[1].id)),
            "{sql}: ids unchanged: {text}"
        );
    }
    // Binary COPY cannot be masked: refused before it runs, the session goes on.
    let err = client
        .simple_query("COPY customers TO STDOUT (FORMAT binary)")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    assert_eq!(
        texts(&client.simple_query("SELECT 1").await.unwrap()),
        vec![vec!["1".to_string()]]
    );
}

#[tokio::test]
async fn refusals_in_both_protocols_keep_the_session_usable_and_are_audited() {
    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;
    let err = client
        .execute("DELETE FROM customers WHERE id = $1", &[&1i64])
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "42501");
    assert!(db.message().contains("shield `write`"), "{}", db.message());
    assert!(
        db.hint()
            .unwrap()
            .contains("periscope request pg-test --lift write"),
        "{:?}",
        db.hint()
    );
    // The extended batch was discarded up to its Sync; the session goes on.
    assert_eq!(
        client
            .query_one("SELECT count(*) FROM customers", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        3
    );
    let err = client
        .simple_query("UPDATE customers SET email = 'x'")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    assert_eq!(
        texts(&client.simple_query("SELECT 2").await.unwrap()),
        vec![vec!["2".to_string()]]
    );
    let refused = proxy.audit.with_action("query.refused");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["shield"], "write");
    assert_eq!(refused[1]["text"], "UPDATE customers SET email = ?");
    // The read-only backstop is on upstream.
    let on = texts(
        &client
            .simple_query("SHOW default_transaction_read_only")
            .await
            .unwrap(),
    );
    assert_eq!(on, vec![vec!["on".to_string()]]);
}

#[tokio::test]
async fn a_lifted_entity_shows_while_the_others_stay_masked() {
    let (cluster, customers) = seeded_cluster(4);
    let proxy = Shielded::start(
        &cluster,
        "[connection.data_policy]\noperators = { card = \"partial\" }",
        vec![grant("gr_1", &["unmask:email"])],
    )
    .await;
    let (client, _conn) = proxy.connect().await;
    let rows = texts(
        &client
            .simple_query("SELECT email, card_number, ssn FROM customers ORDER BY id")
            .await
            .unwrap(),
    );
    assert_eq!(rows[0][0], customers[0].email);
    let last4 = &customers[0].card_number[customers[0].card_number.len() - 4..];
    assert!(
        rows[0][1].ends_with(last4) && rows[0][1].starts_with("****"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[0][2], "[ssn]");
    let starts = proxy.audit.with_action("query");
    assert!(!starts.is_empty());
    // Every event of the session names the grant it relies on.
    assert!(
        proxy
            .audit
            .events
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.grant_ids == ["gr_1"])
    );
}
