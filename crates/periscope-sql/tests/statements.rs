//! Statement classes, writes, locks, unbounded writes, tables and functions:
//! what the proxy's guardrails decide on.

use crate::common::{catalog, one};
use periscope_sql::{
    AnalyzeOptions, CopyFormat, CopyRowFormat, CopySource, CopyTarget, SessionEffect,
    StatementClass as C, TableName, analyze,
};

/// `COPY ... TO` with the default text format.
fn copy_to(target: CopyTarget) -> C {
    C::CopyTo {
        target,
        format: CopyFormat::Rows(CopyRowFormat::text()),
    }
}

fn class(sql: &str) -> C {
    one(sql).class
}

#[test]
fn every_statement_kind_gets_its_class() {
    let explain = |analyze: bool, inner: C| C::Explain {
        analyze,
        inner: Box::new(inner),
    };
    let cases: Vec<(&str, C)> = vec![
        ("SELECT 1", C::Select),
        ("VALUES (1), (2)", C::Select),
        ("WITH x AS (SELECT 1) SELECT * FROM x", C::Select),
        ("TABLE customers", C::Select),
        ("INSERT INTO customers (name) VALUES ('a')", C::Insert),
        ("UPDATE customers SET name = 'a' WHERE id = 1", C::Update),
        ("DELETE FROM customers WHERE id = 1", C::Delete),
        (
            "WITH x AS (SELECT 1) DELETE FROM orders WHERE id IN (SELECT * FROM x)",
            C::Delete,
        ),
        (
            "WITH x AS (SELECT 2) INSERT INTO orders (total) SELECT * FROM x",
            C::Insert,
        ),
        (
            "WITH x AS (SELECT 3) UPDATE orders SET total = 0",
            C::Update,
        ),
        (
            "MERGE INTO customers c USING orders o ON c.id = o.customer_id WHEN MATCHED THEN UPDATE SET name = 'x' WHEN NOT MATCHED THEN INSERT (name) VALUES ('y')",
            C::Merge,
        ),
        ("CREATE TABLE t (a int)", C::Ddl),
        ("CREATE TEMP TABLE t AS SELECT email FROM customers", C::Ddl),
        ("SELECT email INTO t2 FROM customers", C::Ddl),
        ("CREATE VIEW v AS SELECT email FROM customers", C::Ddl),
        ("CREATE MATERIALIZED VIEW mv AS SELECT 1", C::Ddl),
        ("REFRESH MATERIALIZED VIEW customer_stats", C::Ddl),
        ("ALTER TABLE customers ADD COLUMN x int", C::Ddl),
        ("DROP TABLE customers", C::Ddl),
        ("TRUNCATE customers", C::Ddl),
        ("COMMENT ON TABLE customers IS 'x'", C::Ddl),
        ("CREATE INDEX ON customers (email)", C::Ddl),
        ("CREATE EXTENSION dblink", C::Ddl),
        (
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql",
            C::Ddl,
        ),
        ("CREATE SCHEMA s", C::Ddl),
        ("ALTER SYSTEM SET work_mem = '1GB'", C::Ddl),
        ("SECURITY LABEL ON TABLE customers IS 'x'", C::Ddl),
        ("REINDEX TABLE customers", C::Ddl),
        ("GRANT SELECT ON customers TO bob", C::Dcl),
        ("REVOKE ALL ON customers FROM bob", C::Dcl),
        ("GRANT admin TO bob", C::Dcl),
        ("CREATE ROLE eve LOGIN SUPERUSER", C::Dcl),
        ("ALTER ROLE bob SUPERUSER", C::Dcl),
        ("DROP ROLE eve", C::Dcl),
        ("CREATE USER eve", C::Dcl),
        ("REASSIGN OWNED BY a TO b", C::Dcl),
        ("DROP OWNED BY a", C::Dcl),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
            C::Dcl,
        ),
        ("COPY customers TO STDOUT", copy_to(CopyTarget::Stdout)),
        ("COPY (SELECT 1) TO STDOUT", copy_to(CopyTarget::Stdout)),
        ("COPY customers TO '/tmp/x'", copy_to(CopyTarget::File)),
        (
            "COPY customers TO PROGRAM 'gzip > /tmp/x'",
            copy_to(CopyTarget::Program),
        ),
        (
            "COPY customers FROM STDIN",
            C::CopyFrom {
                source: CopySource::Stdin,
            },
        ),
        (
            "COPY customers FROM '/etc/passwd'",
            C::CopyFrom {
                source: CopySource::File,
            },
        ),
        (
            "COPY customers FROM PROGRAM 'id'",
            C::CopyFrom {
                source: CopySource::Program,
            },
        ),
        ("BEGIN", C::Transaction),
        (
            "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY",
            C::Transaction,
        ),
        ("START TRANSACTION", C::Transaction),
        ("COMMIT", C::Transaction),
        ("END", C::Transaction),
        ("ROLLBACK", C::Transaction),
        ("SAVEPOINT s1", C::Transaction),
        ("ROLLBACK TO SAVEPOINT s1", C::Transaction),
        ("RELEASE SAVEPOINT s1", C::Transaction),
        ("COMMIT PREPARED 'x'", C::Transaction),
        (
            "SET search_path TO public",
            C::Set {
                variable: "search_path".into(),
            },
        ),
        (
            "SET LOCAL statement_timeout = '5s'",
            C::Set {
                variable: "statement_timeout".into(),
            },
        ),
        (
            "SET ROLE admin",
            C::Set {
                variable: "role".into(),
            },
        ),
        (
            "SET SESSION AUTHORIZATION bob",
            C::Set {
                variable: "session authorization".into(),
            },
        ),
        (
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            C::Set {
                variable: "transaction".into(),
            },
        ),
        ("SHOW search_path", C::Show),
        ("SHOW ALL", C::Show),
        ("RESET ALL", C::Reset),
        ("EXPLAIN SELECT 1", explain(false, C::Select)),
        (
            "EXPLAIN ANALYZE DELETE FROM customers",
            explain(true, C::Delete),
        ),
        (
            "EXPLAIN (ANALYZE, BUFFERS) UPDATE customers SET name = 'x'",
            explain(true, C::Update),
        ),
        (
            "EXPLAIN (ANALYZE false) UPDATE customers SET name = 'x'",
            explain(false, C::Update),
        ),
        (
            "EXPLAIN (ANALYZE off, VERBOSE) SELECT 1",
            explain(false, C::Select),
        ),
        (
            "PREPARE q(int) AS SELECT email FROM customers WHERE id = $1",
            C::Prepare {
                name: "q".into(),
                inner: Box::new(C::Select),
            },
        ),
        ("EXECUTE q(1)", C::Execute { name: "q".into() }),
        ("DEALLOCATE q", C::Deallocate),
        ("DEALLOCATE ALL", C::Deallocate),
        (
            "DECLARE cur CURSOR FOR SELECT email FROM customers",
            C::Declare {
                name: "cur".into(),
                inner: Box::new(C::Select),
            },
        ),
        (
            "FETCH 10 FROM cur",
            C::Fetch {
                cursor: "cur".into(),
            },
        ),
        ("CLOSE cur", C::Close),
        ("CALL my_proc(1)", C::Call),
        ("DO $$ BEGIN PERFORM pg_sleep(1); END $$", C::Do),
        ("DO LANGUAGE plpgsql $$ BEGIN NULL; END $$", C::Do),
        ("LISTEN ch", C::Listen),
        ("UNLISTEN *", C::Listen),
        ("NOTIFY ch, 'hello'", C::Notify),
        ("VACUUM customers", C::Vacuum),
        ("VACUUM (VERBOSE, ANALYZE) customers", C::Vacuum),
        ("ANALYZE customers", C::Analyze),
        ("DISCARD ALL", C::Discard),
        (
            "LOCK TABLE customers IN ACCESS EXCLUSIVE MODE",
            C::Lock {
                mode: periscope_sql::LockMode::AccessExclusive,
            },
        ),
        ("CHECKPOINT", C::Other("checkpoint".into())),
        ("LOAD 'plpgsql'", C::Other("load".into())),
    ];
    for (sql, want) in cases {
        assert_eq!(class(sql), want, "{sql}");
    }
}

/// What JDBC, psycopg, node-postgres, npgsql, pgbouncer and GUIs send on
/// connect and around transactions.
#[test]
fn driver_housekeeping_statements_are_classified() {
    let cases: Vec<(&str, C)> = vec![
        (
            "SET extra_float_digits = 3",
            C::Set {
                variable: "extra_float_digits".into(),
            },
        ),
        (
            "SET application_name = 'PostgreSQL JDBC Driver'",
            C::Set {
                variable: "application_name".into(),
            },
        ),
        (
            "SET DateStyle = 'ISO'",
            C::Set {
                variable: "datestyle".into(),
            },
        ),
        (
            "SET client_encoding TO 'UTF8'",
            C::Set {
                variable: "client_encoding".into(),
            },
        ),
        (
            "SET TIME ZONE 'UTC'",
            C::Set {
                variable: "timezone".into(),
            },
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
            C::Set {
                variable: "transaction".into(),
            },
        ),
        ("SHOW TRANSACTION ISOLATION LEVEL", C::Show),
        ("SELECT pg_catalog.version()", C::Select),
        ("SELECT current_schema()", C::Select),
        (
            "SELECT oid, typname FROM pg_catalog.pg_type WHERE typname IN ('hstore', 'citext')",
            C::Select,
        ),
        ("SELECT 1", C::Select),
        ("DISCARD ALL", C::Discard),
        ("BEGIN READ WRITE", C::Transaction),
        ("ROLLBACK AND CHAIN", C::Transaction),
    ];
    for (sql, want) in cases {
        let st = one(sql);
        assert_eq!(st.class, want, "{sql}");
        assert!(st.parsed, "{sql}");
        assert!(!st.is_write(), "{sql}");
        assert!(!st.has_unknown_outputs(), "{sql}: {:?}", st.outputs);
    }
}

#[test]
fn analyses_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<periscope_sql::Analysis>();
    send_sync::<periscope_sql::AnalysisCache>();
    send_sync::<periscope_sql::StaticCatalog>();
}

#[test]
fn class_helpers_answer_the_guardrail_questions() {
    let writes = [
        "INSERT INTO customers (name) VALUES ('a')",
        "UPDATE customers SET name = 'a' WHERE id = 1",
        "DELETE FROM customers WHERE id = 1",
        "COPY customers FROM STDIN",
        "EXPLAIN ANALYZE DELETE FROM customers WHERE id = 1",
        "PREPARE d AS DELETE FROM customers WHERE id = $1",
        "WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING *) SELECT * FROM d",
        "WITH i AS (INSERT INTO orders (total) VALUES (1) RETURNING id) SELECT 1",
        "SELECT nextval('orders_id_seq')",
        "SELECT pg_catalog.setval('orders_id_seq', 1)",
        "SELECT lo_import('/etc/passwd')",
        "SELECT email INTO t2 FROM customers",
        "CREATE TABLE t AS SELECT 1",
        "TRUNCATE customers",
        "SELECT * FROM (SELECT 1) x WHERE EXISTS (SELECT nextval('s'))",
    ];
    for sql in writes {
        assert!(one(sql).is_write(), "should write: {sql}");
    }
    let reads = [
        "SELECT email FROM customers",
        "EXPLAIN DELETE FROM customers",
        "EXPLAIN (ANALYZE false) DELETE FROM customers",
        "SHOW search_path",
        "COPY customers TO STDOUT",
        "SELECT currval('s')",
    ];
    for sql in reads {
        assert!(!one(sql).is_write(), "should not write: {sql}");
    }
    for sql in [
        "CREATE TABLE t (a int)",
        "DROP VIEW customer_contacts",
        "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1",
    ] {
        assert!(one(sql).is_ddl(), "{sql}");
    }
    assert!(!one("EXPLAIN CREATE TABLE t AS SELECT 1").is_ddl());
    for sql in [
        "DO $$ BEGIN END $$",
        "CALL p()",
        "COPY customers TO PROGRAM 'x'",
        "COPY customers FROM '/etc/passwd'",
    ] {
        assert!(one(sql).class.runs_server_code(), "{sql}");
    }
    assert!(!one("COPY customers TO STDOUT").class.runs_server_code());
    assert!(one("GRANT SELECT ON customers TO bob").class.is_dcl());
}

#[test]
fn locks_are_found_anywhere() {
    for sql in [
        "SELECT * FROM customers FOR UPDATE",
        "SELECT * FROM customers FOR SHARE SKIP LOCKED",
        "SELECT * FROM (SELECT id FROM customers FOR UPDATE OF customers) x",
        "WITH x AS (SELECT id FROM customers FOR UPDATE) SELECT * FROM x",
        "LOCK TABLE customers",
    ] {
        assert!(one(sql).locks, "{sql}");
    }
    assert!(!one("SELECT * FROM customers").locks);
}

#[test]
fn unbounded_writes_are_flagged() {
    for sql in [
        "UPDATE customers SET name = 'x'",
        "DELETE FROM customers",
        "DELETE FROM customers WHERE true",
        "DELETE FROM customers WHERE 1 = 1",
        "UPDATE customers SET name = 'x' WHERE (1 = 1)",
        "DELETE FROM customers WHERE 'a' = 'a' OR id = 3",
        "DELETE FROM customers WHERE NOT false",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d",
        "WITH x AS (SELECT 1) DELETE FROM orders",
        "EXPLAIN ANALYZE DELETE FROM customers",
        "TRUNCATE orders",
    ] {
        assert!(one(sql).unbounded_write, "{sql}");
    }
    for sql in [
        "UPDATE customers SET name = 'x' WHERE id = 1",
        "DELETE FROM customers WHERE id IN (1, 2)",
        "DELETE FROM customers WHERE 1 = 2",
        "EXPLAIN DELETE FROM customers",
        "INSERT INTO orders (total) VALUES (1)",
    ] {
        assert!(!one(sql).unbounded_write, "{sql}");
    }
}

#[test]
fn tables_read_and_written_are_resolved() {
    let t = |s: &str| match s.split_once('.') {
        Some((schema, name)) => TableName::qualified(schema, name),
        None => TableName::bare(s),
    };
    let st = one("SELECT c.email FROM customers c JOIN orders o ON o.customer_id = c.id");
    assert_eq!(
        st.tables_read,
        [t("public.customers"), t("public.orders")].into()
    );
    assert!(st.tables_written.is_empty());

    let st = one("SELECT email FROM contact_emails");
    assert_eq!(
        st.tables_read,
        [
            t("public.contact_emails"),
            t("public.customer_contacts"),
            t("public.customers")
        ]
        .into()
    );

    let st = one(
        "WITH x AS (SELECT * FROM payments) SELECT * FROM x ORDER BY (SELECT max(total) FROM orders)",
    );
    assert_eq!(
        st.tables_read,
        [t("public.payments"), t("public.orders")].into()
    );

    let st = one("INSERT INTO orders (customer_id) SELECT id FROM customers");
    assert_eq!(st.tables_written, [t("public.orders")].into());
    assert_eq!(st.tables_read, [t("public.customers")].into());

    let st = one(
        "UPDATE customers SET name = o.status FROM orders o WHERE o.customer_id = customers.id",
    );
    assert_eq!(st.tables_written, [t("public.customers")].into());
    assert_eq!(st.tables_read, [t("public.orders")].into());

    let st = one("DELETE FROM payments USING orders WHERE payments.order_id = orders.id");
    assert_eq!(st.tables_written, [t("public.payments")].into());
    assert_eq!(st.tables_read, [t("public.orders")].into());

    let st = one("COPY customers FROM STDIN");
    assert_eq!(st.tables_written, [t("public.customers")].into());

    let st = one("SELECT * FROM app.customers, not_there");
    assert_eq!(st.tables_read, [t("app.customers"), t("not_there")].into());

    let st = one("SELECT * FROM generate_series(1, 2), unnest(ARRAY[1])");
    assert!(st.tables_read.is_empty(), "{:?}", st.tables_read);

    let st = one("TRUNCATE orders, payments");
    assert_eq!(
        st.tables_written,
        [t("public.orders"), t("public.payments")].into()
    );
}

#[test]
fn functions_are_found_in_every_position() {
    let cases: &[(&str, &str)] = &[
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        (
            "SELECT pg_catalog.pg_read_file('/etc/passwd')",
            "pg_catalog.pg_read_file",
        ),
        (
            "SELECT 1 FROM customers WHERE pg_ls_dir('.') IS NOT NULL",
            "pg_ls_dir",
        ),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
        (
            "SELECT * FROM customers c, LATERAL pg_ls_dir(c.name) d",
            "pg_ls_dir",
        ),
        (
            "SELECT * FROM dblink('host=x', 'select 1') AS t(a int)",
            "dblink",
        ),
        ("SELECT (SELECT lo_import('/x'))", "lo_import"),
        (
            "WITH x AS (SELECT pg_terminate_backend(1)) SELECT * FROM x",
            "pg_terminate_backend",
        ),
        (
            "SELECT 1 ORDER BY pg_read_binary_file('/x')",
            "pg_read_binary_file",
        ),
        ("SELECT upper(lower(pg_read_file('/x')))", "pg_read_file"),
        ("SELECT CAST(pg_read_file('/x') AS int)", "pg_read_file"),
        ("SELECT pg_read_file('/x')::int", "pg_read_file"),
        (
            "SELECT id FROM customers GROUP BY id HAVING count(pg_ls_dir('.')) > 0",
            "pg_ls_dir",
        ),
        (
            "INSERT INTO orders (status) VALUES (pg_read_file('/x'))",
            "pg_read_file",
        ),
        (
            "INSERT INTO orders (total) SELECT 1 RETURNING pg_read_file('/x')",
            "pg_read_file",
        ),
        (
            "UPDATE orders SET status = pg_read_file('/x') WHERE id = 1",
            "pg_read_file",
        ),
        (
            "DELETE FROM orders WHERE id = 1 RETURNING dblink_exec('x')",
            "dblink_exec",
        ),
        (
            "CREATE TABLE t (a text DEFAULT pg_read_file('/x'))",
            "pg_read_file",
        ),
        (
            "ALTER TABLE customers ADD COLUMN x int DEFAULT pg_read_file('/etc/passwd')::int",
            "pg_read_file",
        ),
        ("CREATE INDEX ON customers (lower(email))", "lower"),
        (
            "SELECT count(*) FILTER (WHERE pg_ls_dir('.') = 'x') FROM customers",
            "pg_ls_dir",
        ),
        (
            "SELECT row_number() OVER (ORDER BY pg_ls_dir('.')) FROM customers",
            "pg_ls_dir",
        ),
        (
            "SELECT CASE WHEN true THEN pg_read_file('/x') END",
            "pg_read_file",
        ),
        ("SELECT ARRAY[pg_read_file('/x')]", "pg_read_file"),
        ("SELECT 1 IN (SELECT lo_unlink(1))", "lo_unlink"),
        ("EXPLAIN ANALYZE SELECT pg_read_file('/x')", "pg_read_file"),
        ("PREPARE p AS SELECT pg_read_file($1)", "pg_read_file"),
        ("EXECUTE p(pg_read_file('/x'))", "pg_read_file"),
        ("COPY (SELECT pg_read_file('/x')) TO STDOUT", "pg_read_file"),
        ("CALL \"MyProc\"(1)", "MyProc"),
        ("SELECT PG_READ_FILE('/x')", "pg_read_file"),
        ("DO $$ BEGIN END $$; SELECT pg_sleep(1)", "pg_sleep"),
    ];
    for (sql, f) in cases {
        let a = analyze(sql, &catalog(), &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert!(
            a.statements.iter().any(|s| s.functions.contains(*f)),
            "{f} not found in {sql}: {:?}",
            a.statements
                .iter()
                .map(|s| &s.functions)
                .collect::<Vec<_>>()
        );
    }
    let st = one("SELECT pg_catalog.pg_read_file('/x')");
    assert!(st.calls("pg_read_file"));
    assert!(!st.calls("read_file"));
}

#[test]
fn functions_inside_views_are_reported() {
    // customer_stats is defined with split_part(): querying it runs split_part.
    let st = one("SELECT * FROM customer_stats");
    assert!(st.functions.contains("split_part"), "{:?}", st.functions);
}

#[test]
fn unparsed_but_recognised_statements_keep_lexical_facts() {
    let st = one("ALTER SYSTEM SET shared_preload_libraries = 'x'");
    assert!(!st.parsed);
    assert_eq!(st.class, C::Ddl);
    let st = one("SECURITY LABEL ON TABLE customers IS pg_read_file('/x')");
    assert!(!st.parsed);
    assert!(st.functions.contains("pg_read_file"), "{:?}", st.functions);
}

#[test]
fn several_statements_are_analysed_in_order() {
    let a = analyze(
        "BEGIN; UPDATE customers SET name = 'x' WHERE id = 1; SELECT email FROM customers;; COMMIT;",
        &catalog(),
        &AnalyzeOptions::default(),
    )
    .expect("analyses");
    let classes: Vec<&C> = a.statements.iter().map(|s| &s.class).collect();
    assert_eq!(
        classes,
        [&C::Transaction, &C::Update, &C::Select, &C::Transaction]
    );
    assert!(a.is_write());
    assert_eq!(
        a.normalized(),
        "BEGIN; UPDATE customers SET name = ? WHERE id = ?; SELECT email FROM customers; COMMIT"
    );
    assert_eq!(
        analyze("", &catalog(), &AnalyzeOptions::default())
            .expect("empty")
            .statements
            .len(),
        0
    );
    assert_eq!(
        analyze(" ; -- nothing\n", &catalog(), &AnalyzeOptions::default())
            .expect("empty")
            .statements
            .len(),
        0
    );
}

/// The SQL psql 15 sends for `\d`, `\dt`, `\d customers`, `\d+ customers`, `\l`,
/// `\dn`, `\df`, `\dv`, `\di`, `\du`, `\dT`, `\dx` and `\conninfo`, captured
/// with `psql -E`: all must analyse, and with the catalog of PostgreSQL's own
/// relations every output column's lineage must be known.
#[test]
fn psql_meta_command_queries_analyse_completely() {
    let text = include_str!("fixtures/psql-meta-commands.sql");
    let mut queries: Vec<(String, String)> = Vec::new();
    for block in text.split("--@ ").skip(1) {
        let (cmd, sql) = block.split_once('\n').expect("block has a header line");
        queries.push((cmd.to_owned(), sql.to_owned()));
    }
    assert!(queries.len() >= 30, "{} queries", queries.len());
    let cat = catalog();
    for (cmd, sql) in &queries {
        let a = analyze(sql, &cat, &AnalyzeOptions::default())
            .unwrap_or_else(|e| panic!("{cmd}: {e}\n{sql}"));
        for st in &a.statements {
            assert_eq!(st.class, C::Select, "{cmd}");
            assert!(!st.is_write(), "{cmd}");
            assert!(!st.outputs.is_empty(), "{cmd}");
            for o in &st.outputs {
                assert!(
                    !o.lineage.has_unknown(),
                    "{cmd}: column {} unknown: {:?}\n{sql}",
                    o.name,
                    o.lineage
                );
            }
            assert!(st.outputs_exact, "{cmd}");
            assert!(
                st.tables_read.iter().all(|t| t.schema.is_some()),
                "{cmd}: unresolved {:?}",
                st.tables_read
            );
        }
    }
}

#[test]
fn system_views_expand_through_their_definitions() {
    // pg_roles is a view over pg_authid: its rolpassword column is the constant
    // '********', the other columns come from pg_authid.
    let st = one("SELECT rolname, rolpassword FROM pg_roles");
    assert_eq!(
        st.outputs[0].lineage,
        crate::common::pass(&["pg_catalog.pg_authid.rolname"])
    );
    assert_eq!(st.outputs[1].lineage, periscope_sql::Lineage::Constant);
    assert!(
        st.tables_read
            .contains(&TableName::qualified("pg_catalog", "pg_authid"))
    );
}

fn copy_format(sql: &str) -> CopyFormat {
    match class(sql) {
        C::CopyTo { format, .. } => format,
        other => panic!("{sql}: not a COPY TO but {other:?}"),
    }
}

#[test]
fn copy_formats_come_from_the_options() {
    let CopyFormat::Rows(text) = copy_format("COPY customers TO STDOUT") else {
        panic!("text COPY is readable");
    };
    assert!(!text.csv);
    assert_eq!((text.delimiter, text.null.as_str()), (b'\t', "\\N"));
    let CopyFormat::Rows(csv) =
        copy_format("COPY (SELECT 1) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')")
    else {
        panic!("CSV COPY is readable");
    };
    assert!(csv.csv && csv.header);
    assert_eq!((csv.delimiter, csv.quote, csv.escape), (b';', b'"', b'"'));
    assert_eq!(csv.null, "");
    let CopyFormat::Rows(legacy) = copy_format("COPY customers TO STDOUT CSV HEADER") else {
        panic!("legacy CSV COPY is readable");
    };
    assert!(legacy.csv && legacy.header);
    assert_eq!(
        copy_format("COPY customers TO STDOUT (FORMAT binary)"),
        CopyFormat::Binary
    );
    assert_eq!(
        copy_format("COPY customers TO STDOUT BINARY"),
        CopyFormat::Binary
    );
    let unreadable = copy_format("COPY customers TO STDOUT (ENCODING 'LATIN1')");
    let reason = unreadable.rows().unwrap_err();
    assert!(reason.contains("ENCODING 'LATIN1'"), "{reason}");
    assert!(
        CopyFormat::Binary
            .rows()
            .unwrap_err()
            .contains("binary COPY")
    );
}

fn effects(sql: &str) -> Vec<SessionEffect> {
    one(sql).effects
}

#[test]
fn session_effects_are_reported() {
    let path = |p: &[&str], local| SessionEffect::SearchPath {
        path: p.iter().map(|s| s.to_string()).collect(),
        local,
    };
    assert_eq!(
        effects("SET search_path TO app, \"Mixed\", public"),
        [path(&["app", "Mixed", "public"], false)]
    );
    assert_eq!(
        effects("set search_path = '$user', public"),
        [path(&["$user", "public"], false)]
    );
    assert_eq!(
        effects("SET LOCAL search_path TO app"),
        [path(&["app"], true)]
    );
    assert_eq!(effects("SET search_path = ''"), [path(&[], false)]);
    assert_eq!(
        effects("SET search_path TO DEFAULT"),
        [SessionEffect::SearchPathReset { local: false }]
    );
    for reset in ["RESET search_path", "RESET ALL"] {
        assert_eq!(
            effects(reset),
            [SessionEffect::SearchPathReset { local: false }],
            "{reset}"
        );
    }
    assert_eq!(
        effects("DISCARD ALL"),
        [
            SessionEffect::SearchPathReset { local: false },
            SessionEffect::DeallocateAll,
            SessionEffect::CloseAllCursors
        ]
    );
    assert_eq!(effects("DISCARD PLANS"), []);
    assert_eq!(effects("RESET statement_timeout"), []);
    assert_eq!(effects("DEALLOCATE ALL"), [SessionEffect::DeallocateAll]);
    assert_eq!(
        effects("DEALLOCATE PREPARE Stmt1"),
        [SessionEffect::Deallocate {
            name: "stmt1".into()
        }]
    );
    // A statement named like the keyword is not every statement.
    assert_eq!(
        effects("DEALLOCATE \"all\""),
        [SessionEffect::Deallocate { name: "all".into() }]
    );
    assert_eq!(
        effects("CLOSE c1"),
        [SessionEffect::CloseCursor { name: "c1".into() }]
    );
    assert_eq!(effects("CLOSE ALL"), [SessionEffect::CloseAllCursors]);
    assert_eq!(effects("SET statement_timeout = 0"), []);
    assert_eq!(effects("SELECT 1"), []);
}

#[test]
fn switching_to_read_write_is_recognised() {
    for sql in [
        "SET default_transaction_read_only = off",
        "SET LOCAL transaction_read_only TO off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "SET TRANSACTION READ WRITE",
        "BEGIN READ WRITE",
        "START TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE",
    ] {
        assert!(one(sql).lifts_read_only, "{sql}");
    }
    for sql in [
        "BEGIN",
        "BEGIN READ ONLY",
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SET search_path TO public",
        "SELECT 'READ WRITE'",
    ] {
        assert!(!one(sql).lifts_read_only, "{sql}");
    }
}
