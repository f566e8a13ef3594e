//! What client tools send at connect and while browsing a schema, through
//! the shielded session against a real PostgreSQL: harmless set-up passes,
//! catalog metadata comes back as it is, and what can carry data stays
//! shielded (issue 18; the whole matrix runs in `crates/periscope/tests`).

use crate::support::{Shielded, seeded_cluster};
use tokio_postgres::SimpleQueryMessage;

fn first_row(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .expect("a row")
}

async fn row(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    first_row(&messages)
}

async fn refused_by(client: &tokio_postgres::Client, sql: &str) -> String {
    let err = client
        .simple_query(sql)
        .await
        .expect_err("refused through the gateway");
    let db = err.as_db_error().expect("an error from the server side");
    assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
    db.message().to_string()
}

#[tokio::test]
async fn session_set_up_of_pg_dump_pgadmin_and_asyncpg_passes() {
    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;

    // pgAdmin's connect string, in one query string.
    let set_up = "SET DateStyle=ISO; SET client_min_messages=notice; \
        SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() \
        WHERE name = 'bytea_output'; SET client_encoding='UTF8';";
    client.simple_query(set_up).await.expect("pgAdmin's set-up");
    assert_eq!(row(&client, "SHOW bytea_output").await, ["hex"]);
    // asyncpg, as a prepared statement with a parameter.
    let jit = client
        .query_one("SELECT set_config('jit', $1, false)", &[&"off"])
        .await
        .expect("asyncpg's jit switch");
    assert_eq!(jit.get::<_, String>(0), "off");

    // pg_dump: an empty search_path, then everything qualified; the proxy
    // follows the path (an unqualified name no longer finds the table).
    assert_eq!(
        row(
            &client,
            "SELECT pg_catalog.set_config('search_path', '', false);"
        )
        .await,
        [""]
    );
    let err = client
        .simple_query("SELECT id FROM customers")
        .await
        .expect_err("customers is not on an empty path");
    assert_eq!(err.as_db_error().unwrap().code().code(), "42P01");
    row(
        &client,
        "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
         WHERE name = 'restrict_nonsystem_relation_kind'",
    )
    .await;
    client
        .batch_execute(
            "BEGIN; SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             LOCK TABLE public.customers IN ACCESS SHARE MODE",
        )
        .await
        .expect("pg_dump's lock");
    let email = row(&client, "SELECT email FROM public.customers LIMIT 1").await;
    assert_eq!(email, ["[email]"]);
    client.batch_execute("COMMIT").await.unwrap();

    // What stays shielded.
    let msg = refused_by(
        &client,
        "SELECT set_config('app.x', (SELECT email FROM public.customers LIMIT 1), false)",
    )
    .await;
    assert!(msg.contains("function:set_config"), "{msg}");
    let msg = refused_by(&client, "SET app.tenant = '7'").await;
    assert!(msg.contains("function:set_config"), "{msg}");
    let msg = refused_by(
        &client,
        "SELECT set_config('default_transaction_read_only', 'off', false)",
    )
    .await;
    assert!(msg.contains("`write`"), "{msg}");
    let msg = refused_by(&client, "LOCK TABLE public.customers IN EXCLUSIVE MODE").await;
    assert!(msg.contains("`write`"), "{msg}");
}

#[tokio::test]
async fn catalog_metadata_comes_back_unmasked() {
    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (client, _conn) = proxy.connect().await;

    // pgjdbc's getImportedKeys reads a number from pg_settings.
    assert_eq!(
        row(
            &client,
            "SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'"
        )
        .await,
        ["32"]
    );
    // DataGrip's state_number, pg_dump's tableoid.
    let r = row(
        &client,
        "SELECT xmin::text::int8 > 0, tableoid::regclass::text, ctid FROM customers LIMIT 1",
    )
    .await;
    assert_eq!(r[..2], ["t", "customers"]);
    assert!(r[2].starts_with('('), "{r:?}");
    // pg_dump's text search parsers: prstoken is a function, not a token.
    assert_eq!(
        row(
            &client,
            "SELECT prstoken::regproc::text FROM pg_catalog.pg_ts_parser WHERE prsname = 'default'"
        )
        .await,
        ["prsd_nexttoken"]
    );
    // pgAdmin's user info.
    let r = row(
        &client,
        "SELECT 'pg_signal_backend' = ANY(ARRAY(SELECT pg_catalog.pg_roles.rolname \
         FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles \
         ON (m.roleid = pg_catalog.pg_roles.oid) WHERE m.member = 10)) AS can_signal_backend",
    )
    .await;
    assert!(r == ["t"] || r == ["f"], "{r:?}");
    // pgjdbc's getSQLKeywords, psql's \dconfig, DataGrip's time zones.
    assert_eq!(
        row(
            &client,
            "SELECT word, catcode FROM pg_get_keywords() WHERE word = 'select'"
        )
        .await,
        ["select", "R"]
    );
    assert_eq!(
        row(
            &client,
            "SELECT name, is_dst::text FROM pg_timezone_names WHERE name = 'UTC'"
        )
        .await,
        ["UTC", "false"]
    );
    // pgAdmin's dashboard: sessions pass, other sessions' statement text is
    // masked whole.
    let r = row(
        &client,
        "SELECT pid = pg_backend_pid(), state, query FROM pg_stat_activity \
         WHERE pid = pg_backend_pid()",
    )
    .await;
    assert_eq!(r, ["t", "active", "[query_text]"]);
    assert_eq!(
        row(
            &client,
            "SELECT pg_stat_get_backend_activity(b) FROM pg_stat_get_backend_idset() b \
             WHERE pg_stat_get_backend_pid(b) = pg_backend_pid()"
        )
        .await,
        ["[query_text]"]
    );
}

/// Type OIDs of a RowDescription, from its raw bytes.
fn described_types(raw: &[u8]) -> Vec<u32> {
    let mut at = 7; // tag, length, field count
    let count = i16::from_be_bytes([raw[5], raw[6]]);
    let mut types = Vec::new();
    for _ in 0..count {
        while raw[at] != 0 {
            at += 1;
        }
        at += 1 + 4 + 2; // name's NUL, table oid, attribute number
        types.push(u32::from_be_bytes([
            raw[at],
            raw[at + 1],
            raw[at + 2],
            raw[at + 3],
        ]));
        at += 4 + 2 + 4 + 2;
    }
    types
}

#[tokio::test]
async fn portals_keep_their_plan_whatever_comes_after() {
    use periscope_testkit::pgraw::{RawClient, build};

    let (cluster, _) = seeded_cluster(3);
    let proxy = Shielded::start(&cluster, "", vec![]).await;
    let (mut raw, _) = RawClient::login(
        proxy.addr,
        &[
            ("user", crate::support::USER),
            ("database", crate::support::CONNECTION),
        ],
        crate::support::TOKEN,
    )
    .await;

    // psycopg's named cursors: DECLARE, then a Describe of the cursor as a
    // portal. Its shape is the DECLARE's: only the e-mail is re-typed.
    raw.query("BEGIN; DECLARE c CURSOR FOR SELECT id, email FROM customers ORDER BY id")
        .await;
    raw.until_ready().await;
    let mut describe = vec![b'P'];
    describe.extend_from_slice(b"c\0");
    raw.send(&build::sized(b'D', &describe)).await;
    raw.send(&build::sync()).await;
    let msgs = raw.until_ready().await;
    let desc = msgs
        .iter()
        .find(|m| m.tag == b'T')
        .expect("a RowDescription");
    assert_eq!(described_types(&desc.raw), [20, 25]);
    raw.query("COMMIT").await;
    raw.until_ready().await;

    // sqlx: Bind with binary results, Execute, then Close of the portal
    // before the server answered: the rows keep the portal's plan.
    raw.send(&build::parse(
        "s1",
        "SELECT id, email FROM customers WHERE id = 1",
    ))
    .await;
    raw.send(&build::sync()).await;
    raw.until_ready().await;
    let mut bind = b"\0s1\0".to_vec();
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1]);
    let mut batch = build::sized(b'B', &bind);
    batch.extend_from_slice(&build::execute("", 0));
    batch.extend_from_slice(&build::sized(b'C', b"P\0"));
    batch.extend_from_slice(&build::sync());
    raw.send(&batch).await;
    let msgs = raw.until_ready().await;
    let row = msgs.iter().find_map(|m| m.data_row()).expect("a DataRow");
    assert_eq!(row[0].as_deref(), Some(&1_i64.to_be_bytes()[..]));
    assert_eq!(row[1].as_deref(), Some(&b"[email]"[..]));
}
