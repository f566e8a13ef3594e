//! Shared world of the `proxy_*` tests: a real throwaway PostgreSQL cluster
//! seeded with the shop (customers with every kind of personal data, secrets
//! in an `api_clients` table and in a note, JSON blobs, views), the real
//! `periscope up` binary in front of it, identities with tokens, and clients:
//! the real `psql` (TLS, `verify-full` with the gateway's CA) and
//! `tokio-postgres` (over a connection that allows plaintext on loopback).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use periscope_testkit::fixtures::{self, Customer, SHOP_SCHEMA};
use periscope_testkit::{
    ApiClient, ApiResponse, GatewayOptions, GatewayProcess, PasswordMethod, PgCluster, Psql,
    quote_literal,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_periscope");
/// The upstream role the gateway logs in as (SCRAM); clients never see it.
pub const UPSTREAM_USER: &str = "periscope_ro";
/// Its password, given to the gateway through `PG_PROD_PASSWORD`.
pub const UPSTREAM_PASSWORD: &str = "upstream-Zq9-injected-credential";
/// GitHub-style tokens stored in `api_clients.api_token` (a secret column).
pub const API_TOKENS: [&str; 3] = [
    "ghp_Xq3Lk9Vb2Nc7Mz5Rt8Yw1Pd4Hf6Js0AeUiOo",
    "ghp_Bm8Nc2Vx5Zl9Kj3Hg7Fd1Sa4Qw6Er0TyUiOp",
    "ghp_Zx1Cv2Bn3Mq4Wl5Ek6Rj7Th8Yg9Uf0IdOsPa",
];
/// A token written into customer 2's free-text notes.
pub const NOTE_TOKEN: &str = "ghp_Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1XcVbNm";

/// The seeded upstream.
pub struct Shop {
    pub cluster: PgCluster,
    pub customers: Vec<Customer>,
}

impl Shop {
    /// Every raw value no masking test may let through: each customer's
    /// personal data and every secret.
    pub fn raw_values(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .customers
            .iter()
            .flat_map(|c| c.sensitive_values().into_iter().map(str::to_string))
            .collect();
        all.extend(API_TOKENS.iter().map(|s| s.to_string()));
        all.push(NOTE_TOKEN.to_string());
        all
    }

    /// Names are not sensitive by default (`person_name` is optional).
    pub fn names(&self) -> Vec<&str> {
        self.customers.iter().map(|c| c.name.as_str()).collect()
    }
}

/// Objects beyond the fixture schema: secrets, JSON blobs and views.
fn extras(customers: &[Customer]) -> String {
    let mut sql = String::from(
        "CREATE TABLE api_clients (id bigint PRIMARY KEY, customer_id bigint NOT NULL, api_token text NOT NULL);\n\
         CREATE TABLE events (id bigint PRIMARY KEY, customer_id bigint NOT NULL, payload jsonb NOT NULL, raw json NOT NULL);\n\
         CREATE VIEW customer_contacts AS SELECT id, name, email, phone FROM customers;\n\
         CREATE VIEW contact_mails AS SELECT id, email AS mail FROM customer_contacts;\n",
    );
    for (i, token) in API_TOKENS.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO api_clients VALUES ({}, {}, {});\n",
            i + 1,
            i + 1,
            quote_literal(token)
        ));
    }
    for c in customers {
        // The key names say nothing sensitive: only content scanning finds
        // the values inside.
        let payload = json!({"contact": {"address": c.email, "reach": c.phone}, "kind": "signup", "customer": c.id});
        sql.push_str(&format!(
            "INSERT INTO events VALUES ({0}, {0}, {1}, {1});\n",
            c.id,
            quote_literal(&payload.to_string())
        ));
    }
    sql.push_str(&format!(
        "UPDATE customers SET notes = 'Integration key pasted by support: ' || {} WHERE id = 2;\n",
        quote_literal(NOTE_TOKEN)
    ));
    sql
}

/// A cluster with database `shop` seeded with `n` customers (seed 7) and
/// the gateway's upstream role.
pub fn shop(n: usize) -> Shop {
    let cluster = PgCluster::start().expect("a throwaway PostgreSQL cluster");
    cluster.create_database("shop").unwrap();
    let mut customers = fixtures::customers(n, 7);
    // Customer 2's note is rewritten to hold a token; keep the model in step.
    if let Some(c) = customers.get_mut(1) {
        c.notes = format!("Integration key pasted by support: {NOTE_TOKEN}");
    }
    cluster.psql("shop", SHOP_SCHEMA).unwrap();
    cluster
        .psql("shop", &fixtures::insert_sql(&fixtures::customers(n, 7)))
        .unwrap();
    cluster.psql("shop", &extras(&customers)).unwrap();
    cluster
        .create_login_role(UPSTREAM_USER, UPSTREAM_PASSWORD, PasswordMethod::Scram)
        .unwrap();
    cluster
        .psql(
            "shop",
            &format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {UPSTREAM_USER};\n\
                 GRANT INSERT, UPDATE, DELETE ON customers, orders TO {UPSTREAM_USER};"
            ),
        )
        .unwrap();
    Shop { cluster, customers }
}

/// Connections `pg-prod` (TLS required, the default) and `pg-dev` (the
/// same upstream, plaintext allowed on loopback for tokio-postgres), both
/// with `public.payments` as a sensitive table; roles `dev` (alice) and
/// `lead` (bob, approves dev requests).
pub fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "PG_PROD_PASSWORD"
upstream_tls = "disable"

[connection.data_policy]
sensitive_tables = ["public.payments"]

[[connection]]
name = "pg-dev"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "PG_PROD_PASSWORD"
upstream_tls = "disable"
client_tls = "optional"

[connection.data_policy]
sensitive_tables = ["public.payments"]

[[role]]
name = "dev"
connections = ["pg-prod", "pg-dev"]
may_lift = ["unmask:*", "write", "unbounded-write", "table:public.payments", "function:pg_read_file"]
max_duration = "1h"
approvals = 1
approvers = ["lead"]

[[role]]
name = "lead"
connections = ["pg-prod", "pg-dev"]
may_lift = ["unmask:*"]
max_duration = "1h"
approvers = ["lead"]
{extra}
"#
    )
}

/// A user with a token.
pub struct User {
    pub name: String,
    pub token: String,
    pub api: ApiClient,
}

/// Everything a test needs.
pub struct World {
    pub shop: Shop,
    pub gw: GatewayProcess,
    pub admin: ApiClient,
    pub alice: User,
    pub bob: User,
}

/// Starts a gateway without blocking the async runtime.
pub async fn start_gateway(options: GatewayOptions) -> GatewayProcess {
    tokio::task::spawn_blocking(move || GatewayProcess::start(BIN, options))
        .await
        .expect("the start task does not panic")
        .expect("the gateway starts")
}

/// Asserts the status and returns the JSON body.
#[track_caller]
pub fn expect(response: &ApiResponse, status: u16) -> Value {
    assert_eq!(
        response.status, status,
        "unexpected status; body: {}",
        response.body
    );
    response.json()
}

/// Creates `name` with `roles` and an API token.
pub async fn user(gw: &GatewayProcess, admin: &ApiClient, name: &str, roles: &[&str]) -> User {
    let created = admin
        .post("/v1/admin/users", &json!({ "name": name, "roles": roles }))
        .await
        .unwrap();
    expect(&created, 201);
    let token = admin
        .post(&format!("/v1/admin/users/{name}/tokens"), &json!({}))
        .await
        .unwrap();
    let token = expect(&token, 201)["token"].as_str().unwrap().to_owned();
    User {
        name: name.to_string(),
        api: gw.client(Some(&token)).unwrap(),
        token,
    }
}

/// A seeded shop with `n` customers behind a gateway (test clock on).
pub async fn world_with(n: usize, extra_config: &str) -> World {
    let shop = tokio::task::spawn_blocking(move || shop(n)).await.unwrap();
    let gw = start_gateway(
        GatewayOptions::default()
            .config(config(shop.cluster.port(), extra_config))
            .test_clock(true)
            .env("PG_PROD_PASSWORD", UPSTREAM_PASSWORD),
    )
    .await;
    let admin = gw
        .client(Some(
            gw.bootstrap_token()
                .expect("first start prints the admin token"),
        ))
        .unwrap();
    let alice = user(&gw, &admin, "alice", &["dev"]).await;
    let bob = user(&gw, &admin, "bob", &["lead"]).await;
    World {
        shop,
        gw,
        admin,
        alice,
        bob,
    }
}

/// [`world_with`] 20 customers and the standard configuration.
pub async fn world() -> World {
    world_with(20, "").await
}

/// What a psql or CLI run printed (the testkit's one psql runner's output).
pub use periscope_testkit::PsqlOutput as Output;

impl World {
    /// The gateway's PostgreSQL address.
    pub fn pg_port(&self) -> u16 {
        self.gw
            .pg_addr()
            .expect("the ready line names the pg listener")
            .port()
    }

    /// libpq conninfo for `user` on `connection` over TLS, verifying the
    /// gateway's certificate with the CA `periscope up` wrote.
    pub fn conninfo(&self, user: &str, connection: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname={connection} sslmode=verify-full sslrootcert={}",
            self.pg_port(),
            self.gw.ca_file().display()
        )
    }

    /// Runs the real psql (`-X -A -t`, stop at the first error) with
    /// `password` as PGPASSWORD.
    pub async fn psql_as(&self, conninfo: &str, password: &str, sql: &str) -> Output {
        self.psql_runner(conninfo, password).run(sql).await
    }

    /// The testkit's psql runner for `conninfo` as the holder of `password`.
    pub fn psql_runner(&self, conninfo: &str, password: &str) -> Psql {
        Psql::new(self.shop.cluster.binaries(), conninfo).password(password)
    }

    /// psql as alice on `pg-prod` over TLS.
    pub async fn psql(&self, sql: &str) -> Output {
        self.psql_as(&self.conninfo("alice", "pg-prod"), &self.alice.token, sql)
            .await
    }

    /// tokio-postgres as `user` on `pg-dev` (plaintext allowed there).
    pub async fn client_as(&self, user: &User) -> Client {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={} password={} dbname=pg-dev sslmode=disable application_name=proxy-tests",
            self.pg_port(),
            user.name,
            user.token
        );
        connect(&conninfo)
            .await
            .expect("connect through the gateway")
    }

    /// tokio-postgres as alice.
    pub async fn client(&self) -> Client {
        self.client_as(&self.alice).await
    }

    /// Every audit event with `action`, oldest first.
    pub async fn audit(&self, action: &str) -> Vec<Value> {
        let r = self
            .admin
            .get(&format!("/v1/audit/events?action={action}&limit=1000"))
            .await
            .unwrap();
        let mut events = expect(&r, 200).as_array().cloned().unwrap();
        events.sort_by_key(|e| e["seq"].as_u64());
        events
    }

    /// The whole audit log, exported as JSONL.
    pub async fn audit_export(&self) -> String {
        let r = self.admin.get("/v1/audit/export").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.body.clone()
    }

    /// alice requests `lifts`, bob approves; returns the grant id.
    pub async fn grant(&self, lifts: &[&str], duration: &str) -> String {
        self.grant_on("pg-prod", lifts, duration).await
    }

    /// Moves the gateway's test clock forward.
    pub async fn advance_clock(&self, by: &str) {
        let r = self
            .admin
            .post("/v1/test/clock", &json!({ "advance": by }))
            .await
            .unwrap();
        expect(&r, 200);
    }

    /// The gateway's CA file.
    pub fn ca_file(&self) -> PathBuf {
        self.gw.ca_file()
    }
}

/// A tokio-postgres client and the outcome of its connection task.
pub struct Client {
    pub client: tokio_postgres::Client,
    pub ended: oneshot::Receiver<Result<(), tokio_postgres::Error>>,
}

impl std::ops::Deref for Client {
    type Target = tokio_postgres::Client;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

/// Connects tokio-postgres (no TLS).
pub async fn connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    let (tx, ended) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(connection.await);
    });
    Ok(Client { client, ended })
}

/// Asserts that none of `raw` occurs in `received`.
#[track_caller]
pub fn assert_no_raw(received: &str, raw: &[String]) {
    for value in raw {
        assert!(
            !received.contains(value.as_str()),
            "a raw sensitive value reached the client: {value:?}\nin:\n{received}"
        );
    }
}

/// Every cell of simple-query results as text (NULL as `NULL`), tab
/// separated, one row per line.
pub fn cells(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Rows as one string, for `assert_no_raw`.
pub fn joined(rows: &[Vec<String>]) -> String {
    rows.iter()
        .map(|r| r.join("\t"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `json`/`jsonb` value as received in binary format, as text (the
/// version byte of `jsonb` checked and removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(pub String);

impl<'a> tokio_postgres::types::FromSql<'a> for JsonText {
    fn from_sql(
        ty: &tokio_postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let body = if *ty == tokio_postgres::types::Type::JSONB {
            match raw.split_first() {
                Some((1, rest)) => rest,
                _ => return Err("jsonb without version byte 1".into()),
            }
        } else {
            raw
        };
        Ok(JsonText(std::str::from_utf8(body)?.to_string()))
    }

    fn accepts(ty: &tokio_postgres::types::Type) -> bool {
        *ty == tokio_postgres::types::Type::JSON || *ty == tokio_postgres::types::Type::JSONB
    }
}

impl JsonText {
    /// Parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).expect("valid JSON")
    }
}

/// Runs the real `periscope` CLI as the holder of `token` against the
/// world's gateway (no profile, no inherited `PERISCOPE_*` settings).
pub async fn cli(w: &World, token: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    for var in [
        "PERISCOPE_URL",
        "PERISCOPE_TOKEN",
        "PERISCOPE_CA_FILE",
        "XDG_CONFIG_HOME",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args)
        .env("PERISCOPE_CONFIG_DIR", w.gw.data_dir().join("cli-profile"))
        .env("PERISCOPE_URL", w.gw.api_url())
        .env("PERISCOPE_TOKEN", token)
        .env("PERISCOPE_CA_FILE", w.gw.ca_file())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the CLI finishes within a minute")
        .expect("the CLI runs");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl World {
    /// psql with `VERBOSITY=verbose`, so errors show their SQLSTATE
    /// (`ERROR:  42501: ...`) and every field (DETAIL, HINT).
    pub async fn psql_verbose(&self, conninfo: &str, password: &str, sql: &str) -> Output {
        self.psql_runner(conninfo, password)
            .verbose()
            .run(sql)
            .await
    }

    /// tokio-postgres on `pg-dev` with `user` and `password`, without
    /// panicking on refusal.
    pub async fn try_client(
        &self,
        user: &str,
        password: &str,
        connection: &str,
    ) -> Result<Client, tokio_postgres::Error> {
        connect(&format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={connection} \
             sslmode=disable application_name=proxy-tests",
            self.pg_port()
        ))
        .await
    }

    /// alice requests `lifts` on `connection` through the API, bob approves;
    /// returns the grant id.
    pub async fn grant_on(&self, connection: &str, lifts: &[&str], duration: &str) -> String {
        let created = self
            .alice
            .api
            .post(
                "/v1/requests",
                &json!({"connection": connection, "lifts": lifts, "duration": duration,
                        "reason": "INC-7002: support ticket"}),
            )
            .await
            .unwrap();
        let req = expect(&created, 201)["id"].as_str().unwrap().to_owned();
        let approved = self
            .bob
            .api
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap();
        expect(&approved, 200)["grant"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Polls the audit log until `pick` finds what it wants among the
    /// events with `action` (10 s deadline).
    pub async fn audit_until<T>(&self, action: &str, pick: impl Fn(&[Value]) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let events = self.audit(action).await;
            if let Some(found) = pick(&events) {
                return found;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no matching {action} event within 10 s; have: {events:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The SQLSTATE and message of a FATAL the gateway answers a TLS client
/// with, read by a minimal PostgreSQL client (SSLRequest, a TLS handshake
/// that verifies the gateway's certificate with `ca_file`, a startup
/// packet, the password): psql shows connection errors without their code.
pub fn fatal_over_tls(
    port: u16,
    ca_file: &std::path::Path,
    user: &str,
    database: &str,
    password: &str,
) -> (String, String) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::io::{Read as _, Write as _};

    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).unwrap();
    assert_eq!(answer[0], b'S', "the gateway offers TLS");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap().to_owned();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);

    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes());
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    tls.write_all(&startup).unwrap();

    fn read_message(
        tls: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
    ) -> (u8, Vec<u8>) {
        let mut head = [0u8; 5];
        tls.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut payload = vec![0u8; len - 4];
        tls.read_exact(&mut payload).unwrap();
        (head[0], payload)
    }
    let (tag, payload) = read_message(&mut tls);
    assert_eq!(tag, b'R', "the gateway asks for a password");
    assert_eq!(
        payload,
        3u32.to_be_bytes(),
        "AuthenticationCleartextPassword"
    );
    let mut message = vec![b'p'];
    message.extend_from_slice(&((password.len() + 5) as u32).to_be_bytes());
    message.extend_from_slice(password.as_bytes());
    message.push(0);
    tls.write_all(&message).unwrap();
    let (tag, payload) = read_message(&mut tls);
    assert_eq!(tag, b'E', "an ErrorResponse");
    let mut code = String::new();
    let mut text = String::new();
    let mut severity = String::new();
    for field in payload.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let value = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = value,
            b'M' => text = value,
            b'V' => severity = value,
            _ => {}
        }
    }
    assert_eq!(severity, "FATAL");
    (code, text)
}
