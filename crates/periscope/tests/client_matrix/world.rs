//! One seeded shop cluster and one gateway per test: connection `shop`
//! (named like its upstream database, so tools that key on the database
//! name agree with `current_database()`), fully shielded (no data policy),
//! identity alice with role `dev`; the upstream role is read-only.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use periscope_testkit::fixtures::{self, Customer};
use periscope_testkit::{GatewayOptions, GatewayProcess, PasswordMethod, PgCluster};
use serde_json::json;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_periscope");
/// The upstream role (the gateway's injected credentials, and the direct
/// connection the results are compared with).
pub const UPSTREAM_USER: &str = "shop_reader";
const UPSTREAM_PASSWORD: &str = "matrix-Upstream-9c1-password";
/// How many customers the shop has.
pub const CUSTOMERS: usize = 30;

/// The command that installs every client the matrix drives.
pub const INSTALL: &str = "scripts/install-client-matrix";

pub struct World {
    pub cluster: PgCluster,
    pub gw: GatewayProcess,
    pub token: String,
    pub customers: Vec<Customer>,
}

fn config(port: u16) -> String {
    format!(
        r#"
[[connection]]
name = "shop"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "SHOP_PASSWORD"
upstream_tls = "disable"
client_tls = "optional"

[[role]]
name = "dev"
connections = ["shop"]
may_lift = ["unmask:*", "write", "ddl"]
max_duration = "1h"
approvers = ["lead"]

[[role]]
name = "lead"
"#
    )
}

/// The shop as `periscope demo` seeds it, plus the objects the GUI fixtures
/// browse (a view, a sequence, a function, comments).
fn seed(cluster: &PgCluster) {
    cluster.create_database("shop").unwrap();
    let mut sql = format!(
        "{}{}{}",
        fixtures::SHOP_SCHEMA,
        fixtures::INTEGRATIONS_SCHEMA,
        fixtures::SHOP_INDEXES
    );
    for batch in fixtures::Shop::new(CUSTOMERS, fixtures::DEMO_SEED, 100) {
        sql.push_str(&batch.sql);
    }
    sql.push_str(include_str!("../fixtures/clients/upstream-extra.sql"));
    cluster.psql("shop", &sql).unwrap();
    cluster
        .create_login_role(UPSTREAM_USER, UPSTREAM_PASSWORD, PasswordMethod::Scram)
        .unwrap();
    cluster
        .psql(
            "shop",
            &format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {UPSTREAM_USER};\n\
                 GRANT SELECT, USAGE ON ALL SEQUENCES IN SCHEMA public TO {UPSTREAM_USER};"
            ),
        )
        .unwrap();
}

impl World {
    pub async fn start() -> World {
        let cluster = tokio::task::spawn_blocking(|| {
            let cluster = PgCluster::start().expect("a throwaway PostgreSQL cluster");
            seed(&cluster);
            cluster
        })
        .await
        .unwrap();
        let options = GatewayOptions::default()
            .config(config(cluster.port()))
            .env("SHOP_PASSWORD", UPSTREAM_PASSWORD);
        let gw = tokio::task::spawn_blocking(move || GatewayProcess::start(BIN, options))
            .await
            .unwrap()
            .expect("the gateway starts");
        let admin = gw
            .client(Some(gw.bootstrap_token().expect("the bootstrap token")))
            .unwrap();
        let r = admin
            .post(
                "/v1/admin/users",
                &json!({"name": "alice", "roles": ["dev"]}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        let r = admin
            .post("/v1/admin/users/alice/tokens", &json!({}))
            .await
            .unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        let token = r.json()["token"].as_str().unwrap().to_string();
        World {
            cluster,
            gw,
            token,
            customers: fixtures::customers(CUSTOMERS, fixtures::DEMO_SEED),
        }
    }

    pub fn pg_port(&self) -> u16 {
        self.gw.pg_addr().expect("the pg listener").port()
    }

    /// libpq keyword/value conninfo straight to the upstream.
    pub fn direct(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={UPSTREAM_USER} password={UPSTREAM_PASSWORD} dbname=shop sslmode=disable",
            self.cluster.port()
        )
    }

    /// libpq keyword/value conninfo through the gateway, as alice.
    pub fn gateway(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=alice password={} dbname=shop sslmode=disable",
            self.pg_port(),
            self.token
        )
    }

    /// `postgresql://` URL through the gateway (node-postgres, asyncpg).
    pub fn gateway_url(&self) -> String {
        format!(
            "postgresql://alice:{}@127.0.0.1:{}/shop?sslmode=disable",
            self.token,
            self.pg_port()
        )
    }

    /// Every customer's sensitive values: none may reach a client.
    pub fn raw_values(&self) -> Vec<String> {
        self.customers
            .iter()
            .flat_map(|c| c.sensitive_values().into_iter().map(str::to_string))
            .collect()
    }

    /// A PostgreSQL client binary of the cluster's version (psql, pg_dump,
    /// pgbench).
    pub fn pg_bin(&self, name: &str) -> PathBuf {
        self.cluster.binaries().path(name)
    }
}

#[track_caller]
pub fn assert_no_raw(received: &str, raw: &[String]) {
    for value in raw {
        assert!(
            !received.contains(value.as_str()),
            "a raw sensitive value reached the client: {value:?}"
        );
    }
}

/// Where `scripts/install-client-matrix` puts the clients.
pub fn clients_dir() -> PathBuf {
    std::env::var_os("PERISCOPE_CLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/periscope-client-matrix")
        })
}

/// The virtualenv's Python, or a failure naming the install command.
pub fn python() -> PathBuf {
    let p = clients_dir().join("venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run {INSTALL} (it installs psycopg, psycopg2, asyncpg, SQLAlchemy and pgcli into a virtualenv)",
        p.display()
    );
    p
}

/// A script of tests/clients.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// Runs a client program to its end (bounded), returning its output.
pub async fn run(cmd: &mut tokio::process::Command, what: &str) -> Output {
    cmd.kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} finishes within three minutes"))
        .unwrap_or_else(|e| panic!("{what} starts: {e} (install with {INSTALL})"))
}

/// Runs a client program that must succeed; its stdout.
pub async fn run_ok(cmd: &mut tokio::process::Command, what: &str) -> String {
    let out = run(cmd, what).await;
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
