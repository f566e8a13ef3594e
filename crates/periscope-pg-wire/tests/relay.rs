//! The relay carries every part of the protocol a client relies on, against a
//! real PostgreSQL with real clients (tokio-postgres, psql).

use crate::support::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, pin_mut};
use periscope_pg_wire::backend::{BackendMessage, TransactionStatus};
use tokio_postgres::SimpleQueryMessage;

fn rows_of(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_queries_with_several_statements() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, _conn) = gw.connect().await;

    let msgs = client
        .simple_query("SELECT 1 AS a; SELECT 'two', NULL; SELECT g FROM generate_series(1, 3) g")
        .await
        .unwrap();
    assert_eq!(
        rows_of(&msgs),
        vec![
            vec![Some("1".into())],
            vec![Some("two".into()), None],
            vec![Some("1".into())],
            vec![Some("2".into())],
            vec![Some("3".into())],
        ]
    );
    let completions = msgs
        .iter()
        .filter(|m| matches!(m, SimpleQueryMessage::CommandComplete(_)))
        .count();
    assert_eq!(completions, 3);

    // psql through the gateway sees the same thing.
    let out = psql(&cluster, &gw.conninfo(), "SELECT 40 + 2").await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "42");

    // An empty query gets EmptyQueryResponse and the session goes on.
    client.simple_query("").await.unwrap();
    assert_eq!(
        rows_of(&client.simple_query("SELECT 'still here'").await.unwrap()),
        vec![vec![Some("still here".into())]]
    );
}

#[tokio::test]
async fn extended_protocol_named_and_unnamed_statements_portals_and_binary_results() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (mut client, _conn) = gw.connect().await;

    // Named prepared statement, reused with different parameters; results
    // come back in binary format.
    let stmt = client
        .prepare("SELECT $1::int8 * 2, $2::text, $3::bytea, 1.5::float8")
        .await
        .unwrap();
    for n in [1i64, 21, -7] {
        let row = client
            .query_one(&stmt, &[&n, &"héllo", &vec![0u8, 255, 10]])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), n * 2);
        assert_eq!(row.get::<_, &str>(1), "héllo");
        assert_eq!(row.get::<_, Vec<u8>>(2), vec![0u8, 255, 10]);
        assert_eq!(row.get::<_, f64>(3), 1.5);
    }

    // Unnamed statement (query_typed uses the unnamed statement and portal).
    let rows = client
        .query_typed(
            "SELECT g FROM generate_series(1, $1) g",
            &[(&5i32, tokio_postgres::types::Type::INT4)],
        )
        .await
        .unwrap();
    assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).sum::<i32>(), 15);

    // A named portal read in pieces (PortalSuspended between them).
    let tx = client.transaction().await.unwrap();
    let stmt = tx
        .prepare("SELECT g FROM generate_series(1, 10) g")
        .await
        .unwrap();
    let portal = tx.bind(&stmt, &[]).await.unwrap();
    let mut seen = Vec::new();
    loop {
        let rows = tx.query_portal(&portal, 4).await.unwrap();
        if rows.is_empty() {
            break;
        }
        seen.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn copy_out_and_copy_in() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, _conn) = gw.connect().await;

    let stream = client
        .copy_out("COPY (SELECT g, 'row ' || g FROM generate_series(1, 2000) g) TO STDOUT")
        .await
        .unwrap();
    pin_mut!(stream);
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(data).unwrap();
    assert_eq!(text.lines().count(), 2000);
    assert_eq!(text.lines().last(), Some("2000\trow 2000"));

    client
        .batch_execute("CREATE TABLE copied (id int, label text)")
        .await
        .unwrap();
    let sink = client
        .copy_in::<_, Bytes>("COPY copied FROM STDIN")
        .await
        .unwrap();
    pin_mut!(sink);
    for i in 0..100 {
        sink.send(Bytes::from(format!("{i}\tlabel {i}\n")))
            .await
            .unwrap();
    }
    assert_eq!(sink.as_mut().finish().await.unwrap(), 100);
    let row = client
        .query_one("SELECT count(*), max(label) FROM copied", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 100);
    assert_eq!(row.get::<_, &str>(1), "label 99");

    // psql runs COPY through the simple protocol.
    let out = psql(
        &cluster,
        &gw.conninfo(),
        "COPY (SELECT 'psql copy') TO STDOUT",
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "psql copy");
}

#[tokio::test]
async fn notices_and_parameter_status_reach_the_client() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;

    let out = psql(
        &cluster,
        &gw.conninfo(),
        "DO $$ BEGIN RAISE NOTICE 'hello from upstream'; END $$",
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert!(
        out.stderr.contains("NOTICE:  hello from upstream"),
        "stderr: {}",
        out.stderr
    );

    let (mut raw, startup) = raw_login(gw.addr, &[]).await;
    // The upstream's startup ParameterStatus messages were passed on.
    let statuses: Vec<(String, String)> = startup
        .iter()
        .filter_map(|m| match m.decode() {
            BackendMessage::ParameterStatus { name, value } => {
                Some((name.to_string(), value.to_string()))
            }
            _ => None,
        })
        .collect();
    assert!(statuses.iter().any(|(n, _)| n == "server_version"));
    assert!(statuses.contains(&("client_encoding".into(), "UTF8".into())));
    // The gateway issued a cancel key of its own.
    assert!(startup.iter().any(|m| m.tag == b'K'));

    raw.query("SET application_name = 'via-periscope'").await;
    let msgs = raw.until_ready().await;
    assert!(
        msgs.iter().any(|m| matches!(
            m.decode(),
            BackendMessage::ParameterStatus {
                name: "application_name",
                value: "via-periscope"
            }
        )),
        "no ParameterStatus for application_name in {msgs:?}"
    );
}

#[tokio::test]
async fn transactions_and_error_recovery() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    client
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();

    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute("INSERT INTO t VALUES (1)", &[])
        .await
        .unwrap();
    let err = client.simple_query("SELECT 1 / 0").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(
        err.code().unwrap().code(),
        "25P02",
        "statements in a failed transaction are refused by the server"
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "the rolled-back insert is gone");

    // The transaction status seen by the client follows the server's.
    let (mut raw, _) = raw_login(gw.addr, &[]).await;
    raw.query("BEGIN").await;
    let last = raw.until_ready().await.pop().unwrap();
    assert_eq!(
        last.decode(),
        BackendMessage::ReadyForQuery(TransactionStatus::InTransaction)
    );
    raw.query("SELECT nope").await;
    let last = raw.until_ready().await.pop().unwrap();
    assert_eq!(
        last.decode(),
        BackendMessage::ReadyForQuery(TransactionStatus::Failed)
    );
    raw.query("ROLLBACK").await;
    let last = raw.until_ready().await.pop().unwrap();
    assert_eq!(
        last.decode(),
        BackendMessage::ReadyForQuery(TransactionStatus::Idle)
    );
}

#[tokio::test]
async fn only_presentation_parameters_reach_the_upstream() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (mut raw, _) = raw_login(
        gw.addr,
        &[
            ("application_name", "my-laptop"),
            ("DateStyle", "German"),
            ("options", "-c search_path=attacker"),
            ("search_path", "attacker"),
        ],
    )
    .await;
    raw.query(
        "SELECT current_setting('application_name'), current_setting('DateStyle'), \
         current_setting('search_path'), current_user",
    )
    .await;
    let msgs = raw.until_ready().await;
    let row = msgs
        .iter()
        .find_map(|m| match m.decode() {
            BackendMessage::DataRow(row) => Some(
                row.fields()
                    .map(|f| String::from_utf8(f.unwrap().to_vec()).unwrap())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .unwrap();
    assert_eq!(row[0], "my-laptop");
    assert!(row[1].starts_with("German"), "{}", row[1]);
    assert_eq!(
        row[2], "\"$user\", public",
        "client options must not reach the upstream"
    );
    assert_eq!(
        row[3],
        periscope_testkit::SUPERUSER,
        "the injected role is used"
    );
}
