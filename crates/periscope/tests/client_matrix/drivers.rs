//! Drivers through the gateway, each compared with a direct connection:
//! the Python ones (psycopg 3, psycopg2, asyncpg, SQLAlchemy's inspector),
//! node-postgres and pgjdbc through their scripts in tests/clients, and the
//! Rust ones (tokio-postgres, sqlx) in process.

use std::path::PathBuf;

use futures_util::TryStreamExt;
use sqlx::Row;

use super::world::{INSTALL, World, assert_no_raw, clients_dir, python, run_ok, script};

/// The `ok <check>` lines of a client script.
fn checks(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(|l| l.split(" [").next().unwrap_or(l).trim().to_string())
        .collect()
}

#[tokio::test]
async fn python_drivers_work_through_the_gateway() {
    let world = World::start().await;
    let direct_url = format!(
        "postgresql://{}@127.0.0.1:{}/shop",
        "shop_reader:matrix-Upstream-9c1-password",
        world.cluster.port()
    );
    let expected = [
        ("psycopg3", 8),
        ("psycopg2", 5),
        ("asyncpg", 5),
        ("sqlalchemy", 1),
    ];
    for (driver, n) in expected {
        let out = run_ok(
            tokio::process::Command::new(python())
                .arg(script("drivers.py"))
                .args([
                    driver,
                    &world.gateway(),
                    &world.direct(),
                    &world.gateway_url(),
                    &direct_url,
                ]),
            driver,
        )
        .await;
        assert_eq!(checks(&out).len(), n, "{driver}:\n{out}");
        assert_no_raw(&out, &world.raw_values());
    }
}

#[tokio::test]
async fn node_postgres_works_through_the_gateway() {
    let world = World::start().await;
    let modules = clients_dir().join("node/node_modules");
    assert!(
        modules.join("pg").exists(),
        "{} is missing: run {INSTALL} (npm install pg)",
        modules.join("pg").display()
    );
    let direct_url = format!(
        "postgresql://shop_reader:matrix-Upstream-9c1-password@127.0.0.1:{}/shop",
        world.cluster.port()
    );
    let out = run_ok(
        tokio::process::Command::new("node")
            .arg(script("node_pg.js"))
            .args([world.gateway_url(), direct_url])
            .env("NODE_PATH", &modules),
        "node node_pg.js",
    )
    .await;
    assert_eq!(checks(&out).len(), 5, "{out}");
    assert_no_raw(&out, &world.raw_values());
}

#[tokio::test]
async fn pgjdbc_works_through_the_gateway() {
    let world = World::start().await;
    let jar = PathBuf::from("/usr/share/java/postgresql.jar");
    assert!(
        jar.exists(),
        "{} is missing: run {INSTALL} (Debian libpostgresql-jdbc-java)",
        jar.display()
    );
    let classes = tempfile::tempdir().unwrap();
    run_ok(
        tokio::process::Command::new("javac")
            .arg("-d")
            .arg(classes.path())
            .arg("-cp")
            .arg(&jar)
            .arg(script("Probe.java")),
        "javac Probe.java",
    )
    .await;
    let classpath = format!("{}:{}", jar.display(), classes.path().display());
    let out = run_ok(
        tokio::process::Command::new("java")
            .args(["-cp", &classpath, "Probe"])
            .arg(format!(
                "jdbc:postgresql://127.0.0.1:{}/shop?sslmode=disable",
                world.pg_port()
            ))
            .args(["alice", &world.token])
            .arg(format!(
                "jdbc:postgresql://127.0.0.1:{}/shop?sslmode=disable",
                world.cluster.port()
            ))
            .args(["shop_reader", "matrix-Upstream-9c1-password"]),
        "java Probe",
    )
    .await;
    assert_eq!(checks(&out).len(), 5, "{out}");
    assert_no_raw(&out, &world.raw_values());
}

#[tokio::test]
async fn rust_drivers_work_through_the_gateway() {
    let world = World::start().await;

    // tokio-postgres: binary results, prepared statements, a portal read in
    // pieces, a refusal in the extended protocol.
    let (client, conn) = tokio_postgres::connect(&world.gateway(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let stmt = client
        .prepare("SELECT id, email FROM customers WHERE id = $1")
        .await
        .unwrap();
    for id in 1..=6_i64 {
        let row = client.query_one(&stmt, &[&id]).await.unwrap();
        assert_eq!(row.get::<_, i64>(0), id);
        assert_eq!(row.get::<_, String>(1), "[email]");
    }
    let mut client = client;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind("SELECT id, email FROM customers ORDER BY id", &[])
        .await
        .unwrap();
    let mut seen = 0;
    loop {
        let rows = tx.query_portal(&portal, 7).await.unwrap();
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            assert_eq!(r.get::<_, String>(1), "[email]");
        }
        seen += rows.len();
    }
    tx.commit().await.unwrap();
    assert_eq!(seen, 30);
    let stream = client
        .query_raw("SELECT amount_cents FROM orders WHERE id = $1", [1_i64])
        .await
        .unwrap();
    let rows: Vec<tokio_postgres::Row> = stream.try_collect().await.unwrap();
    assert_eq!(rows.len(), 1);
    let err = client
        .execute("UPDATE customers SET name = $1 WHERE id = 1", &[&"x"])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42501");
    assert_eq!(
        client
            .query_one("SELECT 1::int4", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );

    // sqlx: a pool, binds, a refusal.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&world.gateway_url())
        .await
        .unwrap();
    let row = sqlx::query("SELECT id, email, name FROM customers WHERE id = $1")
        .bind(2_i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(row.get::<i64, _>("id"), 2);
    assert_eq!(row.get::<String, _>("email"), "[email]");
    assert_eq!(row.get::<String, _>("name"), world.customers[1].name);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(total > 0);
    let err = sqlx::query("DELETE FROM orders WHERE id = $1")
        .bind(1_i64)
        .execute(&pool)
        .await
        .unwrap_err();
    let db = err.as_database_error().unwrap();
    assert_eq!(db.code().as_deref(), Some("42501"));
    pool.close().await;
}
