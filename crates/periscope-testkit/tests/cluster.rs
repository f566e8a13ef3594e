//! The harness itself must work before any test can trust it.

use periscope_testkit::{PasswordMethod, PgCluster, Psql, PsqlOutput, fixtures};

/// psql as `user` over TCP with SCRAM, through the testkit's one runner.
async fn psql_as(cluster: &PgCluster, user: &str, password: &str, sql: &str) -> PsqlOutput {
    let conninfo = format!(
        "host=127.0.0.1 port={} user={user} dbname=postgres",
        cluster.port()
    );
    Psql::new(cluster.binaries(), conninfo)
        .password(password)
        .run(sql)
        .await
}

#[tokio::test]
async fn cluster_starts_with_password_auth_and_seeds_fixtures() {
    let cluster = PgCluster::start().unwrap();
    cluster.create_database("shop").unwrap();
    cluster.psql("shop", fixtures::SHOP_SCHEMA).unwrap();
    let customers = fixtures::customers(20, 1);
    cluster
        .psql("shop", &fixtures::insert_sql(&customers))
        .unwrap();
    let count = cluster
        .psql("shop", "SELECT count(*) FROM customers")
        .unwrap();
    assert_eq!(count, "20");
    let email = cluster
        .psql("shop", "SELECT email FROM customers WHERE id = 3")
        .unwrap();
    assert_eq!(email, customers[2].email);

    // SCRAM is enforced: a wrong password is refused.
    let out = psql_as(&cluster, periscope_testkit::SUPERUSER, "wrong", "SELECT 1").await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn login_roles_use_the_requested_method() {
    let cluster = PgCluster::start().unwrap();
    for (name, method, expected) in [
        ("scram_user", PasswordMethod::Scram, "SCRAM-SHA-256"),
        ("md5_user", PasswordMethod::Md5, "md5"),
        ("plain_user", PasswordMethod::Cleartext, "SCRAM-SHA-256"),
    ] {
        cluster.create_login_role(name, "s3cret", method).unwrap();
        let out = psql_as(&cluster, name, "s3cret", "SELECT current_user").await;
        assert!(out.success, "{name}: {}", out.stderr);
        let stored = cluster
            .psql(
                "postgres",
                &format!("SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = '{name}'"),
            )
            .unwrap();
        assert!(stored.starts_with(expected), "{name}: stored {stored}");
    }
    let hba = cluster
        .psql(
            "postgres",
            "SELECT string_agg(auth_method, ',' ORDER BY line_number) FROM pg_hba_file_rules",
        )
        .unwrap();
    assert!(hba.starts_with("md5,password,"), "{hba}");
}

#[test]
fn killed_cluster_restarts_with_its_data() {
    let mut cluster = PgCluster::start().unwrap();
    cluster
        .psql(
            "postgres",
            "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)",
        )
        .unwrap();
    cluster.psql("postgres", "CHECKPOINT").unwrap();
    cluster.kill().unwrap();
    assert!(cluster.psql("postgres", "SELECT 1").is_err());
    cluster.restart().unwrap();
    assert_eq!(
        cluster.psql("postgres", "SELECT v FROM kept").unwrap(),
        "42"
    );
}
