//! Command-line tools through the gateway, each compared with a direct
//! run: psql's meta-commands, pg_dump (schema and data), pgbench.

use periscope_testkit::Psql;

use super::world::{World, assert_no_raw, run, run_ok};

/// A tool from the cluster's PostgreSQL, with no inherited `PGSSLMODE`.
fn command(world: &World, bin: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(world.pg_bin(bin));
    cmd.env_remove("PGSSLMODE").env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// psql as a user sees it (headers on), through the testkit's runner.
fn psql_runner(world: &World, conninfo: &str) -> Psql {
    Psql::new(world.cluster.binaries(), conninfo).headers()
}

async fn psql(world: &World, conninfo: &str, command_text: &str) -> String {
    let out = psql_runner(world, conninfo).run(command_text).await;
    assert!(out.success, "psql -c {command_text} failed:\n{}", out.all());
    out.stdout
}

#[tokio::test]
async fn psql_meta_commands_match_a_direct_session() {
    let world = World::start().await;
    for meta in [
        r"\d+ customers",
        r"\d customer_orders",
        r"\df+ order_total",
        r"\dt",
        r"\dv",
        r"\ds",
        r"\dn",
        r"\di",
        r"\du",
        r"\dx",
        r"\dp customers",
        r"\sf order_total",
        r"\sv customer_orders",
        r"\l shop",
        r"\conninfo",
    ] {
        let direct = psql(&world, &world.direct(), meta).await;
        let gateway = psql(&world, &world.gateway(), meta).await;
        if meta == r"\conninfo" {
            // Where each session is connected: answered, not compared.
            assert!(gateway.contains("\"shop\""), "{gateway}");
            continue;
        }
        assert_eq!(gateway, direct, "{meta}");
    }
    // \dconfig lists the settings that differ from their defaults: through
    // the gateway the read-only backstop is one of them.
    let config = psql(&world, &world.gateway(), r"\dconfig").await;
    assert!(
        config.contains("default_transaction_read_only|on"),
        "{config}"
    );
    assert!(!config.contains("[masked]"), "{config}");

    // \copy ... to stdout is masked like a SELECT.
    let copied = psql(
        &world,
        &world.gateway(),
        r"\copy (SELECT id, email, phone FROM customers ORDER BY id) to stdout",
    )
    .await;
    assert_eq!(copied.lines().count(), 30, "{copied}");
    assert!(
        copied.lines().all(|l| l.ends_with("\t[email]\t[phone]")),
        "{copied}"
    );
    assert_no_raw(&copied, &world.raw_values());
}

async fn pg_dump(world: &World, conninfo: &str, args: &[&str]) -> String {
    run_ok(
        // A fixed key for psql's \restrict lines, so two dumps compare.
        command(world, "pg_dump")
            .arg("--restrict-key=matrix")
            .args(args)
            .args(["-d", conninfo]),
        &format!("pg_dump {}", args.join(" ")),
    )
    .await
}

#[tokio::test]
async fn pg_dump_schema_and_data() {
    let world = World::start().await;
    // The schema, exactly as a direct dump.
    let direct = pg_dump(&world, &world.direct(), &["--schema-only"]).await;
    let gateway = pg_dump(&world, &world.gateway(), &["--schema-only"]).await;
    assert!(
        gateway.contains("CREATE TABLE public.customers"),
        "{gateway}"
    );
    assert_eq!(gateway, direct);

    // The data: tables without personal data as they are; customers
    // masked exactly as `COPY customers TO STDOUT` (a `SELECT *`) is
    // through the gateway.
    let data = |table: &str| format!("--table=public.{table}");
    let direct = pg_dump(&world, &world.direct(), &["--data-only", &data("orders")]).await;
    let gateway = pg_dump(&world, &world.gateway(), &["--data-only", &data("orders")]).await;
    assert_eq!(gateway, direct);
    let dump = pg_dump(
        &world,
        &world.gateway(),
        &["--data-only", &data("customers")],
    )
    .await;
    assert_no_raw(&dump, &world.raw_values());
    let copy = psql(&world, &world.gateway(), r"\copy customers to stdout").await;
    let dumped: Vec<&str> = dump
        .lines()
        .skip_while(|l| !l.starts_with("COPY public.customers"))
        .skip(1)
        .take_while(|l| *l != "\\.")
        .collect();
    let selected: Vec<&str> = copy.lines().collect();
    assert_eq!(dumped.len(), 30);
    assert_eq!(dumped, selected);
    assert!(dumped.iter().all(|l| l.contains("[email]")), "{dump}");
}

#[tokio::test]
async fn pgbench_select_only_in_every_query_mode() {
    let world = World::start().await;
    // The pgbench tables, made directly upstream by their owner.
    let init = run(
        command(&world, "pgbench")
            .args(["-i", "-s", "1", "-q", "-d"])
            .arg(world.cluster.conninfo("shop")),
        "pgbench -i",
    )
    .await;
    assert!(init.status.success(), "{init:?}");
    world
        .cluster
        .psql(
            "shop",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO shop_reader",
        )
        .unwrap();
    for mode in ["simple", "extended", "prepared"] {
        let out = run_ok(
            command(&world, "pgbench")
                .args(["-S", "-n", "-t", "200", "-c", "2", "-M", mode, "-d"])
                .arg(world.gateway()),
            &format!("pgbench -M {mode}"),
        )
        .await;
        assert!(
            out.contains("number of transactions actually processed: 400/400"),
            "{mode}: {out}"
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
}

#[tokio::test]
async fn pgcli_runs_meta_commands_and_queries() {
    let world = World::start().await;
    let pgcli = super::world::clients_dir().join("venv/bin/pgcli");
    assert!(
        pgcli.exists(),
        "{} is missing: run {}",
        pgcli.display(),
        super::world::INSTALL
    );
    let home = tempfile::tempdir().unwrap();
    let meta = home.path().join("meta.sql");
    std::fs::write(&meta, "\\d customers\n\\dt\n\\df order_total\n\\dv\n").unwrap();
    let query = home.path().join("query.sql");
    std::fs::write(
        &query,
        "SELECT id, email, name FROM customers ORDER BY id LIMIT 3;\n",
    )
    .unwrap();
    let run_pgcli = |file: &std::path::Path, url: String| {
        let mut cmd = tokio::process::Command::new(&pgcli);
        cmd.args(["--less-chatty", "-f"])
            .arg(file)
            .arg(url)
            .env("HOME", home.path())
            .env("PAGER", "cat")
            .env("TERM", "dumb");
        cmd
    };
    let direct = format!(
        "postgresql://shop_reader:matrix-Upstream-9c1-password@127.0.0.1:{}/shop?sslmode=disable",
        world.cluster.port()
    );
    // Meta-commands: exactly as direct.
    let want = run_ok(&mut run_pgcli(&meta, direct), "pgcli directly").await;
    let got = run_ok(
        &mut run_pgcli(&meta, world.gateway_url()),
        "pgcli through the gateway",
    )
    .await;
    assert!(got.contains("order_total"), "{got}");
    for (g, w) in got.lines().zip(want.lines()) {
        // pgcli times each command.
        if !(g.starts_with("Time: ") && w.starts_with("Time: ")) {
            assert_eq!(g, w, "pgcli meta-commands differ");
        }
    }
    assert_eq!(got.lines().count(), want.lines().count());
    // A query: names as they are, e-mail addresses masked.
    let got = run_ok(
        &mut run_pgcli(&query, world.gateway_url()),
        "pgcli query through the gateway",
    )
    .await;
    assert_eq!(got.matches("[email]").count(), 3, "{got}");
    assert!(got.contains(&world.customers[0].name), "{got}");
    assert_no_raw(&got, &world.raw_values());
}
