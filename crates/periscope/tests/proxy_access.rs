//! Who gets in through the real gateway's PostgreSQL listener, and what the
//! audit log says about it: refusals with their SQLSTATE (28P01, 3D000,
//! 42501, 28000, 08004), TLS (`sslmode=verify-full` with the CA file that
//! `periscope up` writes), session secrets from `periscope connect`, and the
//! session and statement events an auditor reads. The upstream password
//! never reaches a client or the audit log.
#![allow(clippy::unwrap_used)]

use crate::support::proxy::{
    API_TOKENS, UPSTREAM_PASSWORD, UPSTREAM_USER, World, assert_no_raw, cells, cli, config,
    fatal_over_tls, shop, start_gateway, user, world,
};
use periscope_testkit::GatewayOptions;
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;

/// A second upstream password, wrong: what `pg-broken` is configured with.
const BROKEN_PASSWORD: &str = "broken-Vw4-wrong-upstream-credential";

/// The standard world plus `pg-other` (a connection no role covers) and
/// `pg-broken` (its upstream refuses the configured password), whose role
/// `ops` dave has; carol has no role at all.
struct Access {
    w: World,
    carol: crate::support::proxy::User,
    dave: crate::support::proxy::User,
    _secrets: tempfile::TempDir,
}

async fn access_world() -> Access {
    let shop = tokio::task::spawn_blocking(|| shop(20)).await.unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("pg-broken.password");
    std::fs::write(&password_file, BROKEN_PASSWORD).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let port = shop.cluster.port();
    let extra = format!(
        r#"
[[connection]]
name = "pg-other"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "PG_PROD_PASSWORD"
upstream_tls = "disable"
client_tls = "optional"

[[connection]]
name = "pg-broken"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_file = "{}"
upstream_tls = "disable"
client_tls = "optional"

[[role]]
name = "ops"
connections = ["pg-broken"]
may_lift = ["write"]
max_duration = "1h"
approvers = ["lead"]
"#,
        password_file.display()
    );
    let gw = start_gateway(
        GatewayOptions::default()
            .config(config(port, &extra))
            .test_clock(true)
            .env("PG_PROD_PASSWORD", UPSTREAM_PASSWORD),
    )
    .await;
    let admin = gw
        .client(Some(gw.bootstrap_token().expect("the admin token")))
        .unwrap();
    let alice = user(&gw, &admin, "alice", &["dev"]).await;
    let bob = user(&gw, &admin, "bob", &["lead"]).await;
    let carol = user(&gw, &admin, "carol", &[]).await;
    let dave = user(&gw, &admin, "dave", &["ops"]).await;
    Access {
        w: World {
            shop,
            gw,
            admin,
            alice,
            bob,
        },
        carol,
        dave,
        _secrets: secrets,
    }
}

/// The refusal of a tokio-postgres connection attempt: SQLSTATE and message.
#[track_caller]
fn refusal(
    result: Result<crate::support::proxy::Client, tokio_postgres::Error>,
) -> (SqlState, String) {
    let Err(e) = result else {
        panic!("the gateway let the session in");
    };
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("a FATAL from the gateway, got {e:?}"));
    assert_eq!(db.severity(), "FATAL", "{db:?}");
    (db.code().clone(), db.message().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_carry_their_sqlstate_and_are_audited() {
    let a = access_world().await;
    let w = &a.w;
    let mut client_visible = String::new();

    // A wrong password: 28P01, whether it looks like a token or not.
    let mut forged = w.alice.token.clone();
    forged.pop();
    forged.push(if w.alice.token.ends_with('A') {
        'B'
    } else {
        'A'
    });
    for wrong in ["hunter2", forged.as_str()] {
        let (code, message) = refusal(w.try_client("alice", wrong, "pg-dev").await);
        assert_eq!(code, SqlState::INVALID_PASSWORD, "{message}");
        assert!(
            message.contains("give a Periscope API token or a session secret"),
            "{message}"
        );
        client_visible.push_str(&message);
    }
    // Someone else's valid token is no password for alice.
    let (code, message) = refusal(w.try_client("alice", &w.bob.token, "pg-dev").await);
    assert_eq!(code, SqlState::INVALID_PASSWORD, "{message}");
    client_visible.push_str(&message);
    // psql over TLS shows the same refusal.
    let out = w
        .psql_as(&w.conninfo("alice", "pg-prod"), "hunter2", "SELECT 1")
        .await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("password authentication failed"),
        "{}",
        out.all()
    );
    client_visible.push_str(&out.all());

    // Each failure is audited with where it came from.
    let failed = w
        .audit_until("auth.login_failed", |events| {
            let pg: Vec<Value> = events
                .iter()
                .filter(|e| e["details"]["via"] == "pg")
                .cloned()
                .collect();
            (pg.len() >= 4).then_some(pg)
        })
        .await;
    for e in &failed {
        assert!(
            e["details"]["client_addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{e}"
        );
        assert!(e["details"]["reason"].is_string(), "{e}");
    }
    assert!(
        failed.iter().any(|e| e["actor"] == "alice"),
        "failures are attributed to the claimed or owning identity: {failed:#?}"
    );

    // An unknown connection: 3D000 (asked over TLS: a connection that does
    // not exist does not allow plaintext).
    let (code, message) = tokio::task::spawn_blocking({
        let (port, ca, token) = (w.pg_port(), w.ca_file(), w.alice.token.clone());
        move || fatal_over_tls(port, &ca, "alice", "pg-nope", &token)
    })
    .await
    .unwrap();
    assert_eq!(code, "3D000", "{message}");
    assert!(message.contains("pg-nope"), "{message}");
    client_visible.push_str(&message);
    let out = w
        .psql_as(&w.conninfo("alice", "pg-nope"), &w.alice.token, "SELECT 1")
        .await;
    assert!(!out.success);
    assert!(out.stderr.contains("pg-nope"), "{}", out.all());
    client_visible.push_str(&out.all());
    // A connection none of alice's roles covers: 3D000 as well.
    let (code, message) = refusal(w.try_client("alice", &w.alice.token, "pg-other").await);
    assert_eq!(code, SqlState::INVALID_CATALOG_NAME, "{message}");
    client_visible.push_str(&message);

    // An identity with no role: 42501.
    let (code, message) = refusal(w.try_client("carol", &a.carol.token, "pg-dev").await);
    assert_eq!(code, SqlState::INSUFFICIENT_PRIVILEGE, "{message}");
    client_visible.push_str(&message);
    let (code, _) = tokio::task::spawn_blocking({
        let (port, ca, token) = (w.pg_port(), w.ca_file(), a.carol.token.clone());
        move || fatal_over_tls(port, &ca, "carol", "pg-prod", &token)
    })
    .await
    .unwrap();
    assert_eq!(code, "42501");

    // Both kinds of refusal are audited, per identity and connection.
    let refused = w
        .audit_until("session.refused", |events| {
            let has = |actor: &str, target: &str| {
                events
                    .iter()
                    .any(|e| e["actor"] == actor && e["target"] == target)
            };
            (has("alice", "pg-nope") && has("alice", "pg-other") && has("carol", "pg-dev"))
                .then(|| events.to_vec())
        })
        .await;
    assert!(refused.len() >= 3, "{refused:#?}");

    // The upstream refuses the injected credentials: 08004, naming neither
    // the injected role nor any password.
    let (code, message) = refusal(w.try_client("dave", &a.dave.token, "pg-broken").await);
    assert_eq!(
        code,
        SqlState::SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
        "{message}"
    );
    assert!(
        message.contains("upstream authentication for connection \"pg-broken\" failed"),
        "{message}"
    );
    assert!(!message.contains(UPSTREAM_USER), "{message}");
    client_visible.push_str(&message);

    let export = w.audit_export().await;
    for secret in [UPSTREAM_PASSWORD, BROKEN_PASSWORD] {
        assert!(
            !client_visible.contains(secret),
            "a client saw an upstream password:\n{client_visible}"
        );
        assert!(
            !export.contains(secret),
            "the audit export holds an upstream password"
        );
    }
    assert!(
        !export.contains("hunter2"),
        "a refused password reached the audit log"
    );
    assert!(
        !export.contains(&w.alice.token),
        "a token reached the audit log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_is_refused_where_tls_is_required_and_verify_full_works() {
    let w = crate::support::proxy::world().await;
    let logins_before = w.audit("auth.login").await.len();

    // tokio-postgres without TLS on pg-prod: refused before a password is
    // asked for, so the token never crosses in clear.
    let (code, message) = refusal(w.try_client("alice", &w.alice.token, "pg-prod").await);
    assert_eq!(
        code,
        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        "{message}"
    );
    assert!(message.contains("requires TLS"), "{message}");
    assert!(message.contains("sslmode=require"), "{message}");
    // psql with sslmode=disable: the same.
    let plain = format!(
        "host=127.0.0.1 port={} user=alice dbname=pg-prod sslmode=disable",
        w.pg_port()
    );
    let out = w.psql_as(&plain, &w.alice.token, "SELECT 1").await;
    assert!(!out.success, "{}", out.all());
    assert!(out.stderr.contains("requires TLS"), "{}", out.all());

    // verify-full with the CA file `periscope up` wrote: in, over TLS.
    let out = w.psql("SELECT 41 + 1").await;
    assert!(out.success, "{}", out.all());
    assert_eq!(out.stdout.trim(), "42");
    // sslmode=require (encrypted, certificate not checked) works too.
    let require = format!(
        "host=127.0.0.1 port={} user=alice dbname=pg-prod sslmode=require",
        w.pg_port()
    );
    let out = w
        .psql_as(
            &require,
            &w.alice.token,
            "SELECT email FROM customers WHERE id = 1",
        )
        .await;
    assert!(out.success, "{}", out.all());
    assert_eq!(out.stdout.trim(), "[email]");
    let logins = w.audit("auth.login").await;
    assert_eq!(
        logins.len(),
        logins_before + 2,
        "only the two TLS sessions logged in: {logins:#?}"
    );
    assert!(
        logins
            .iter()
            .all(|e| e["details"]["via"] == "pg" && e["target"] == "pg-prod"),
        "{logins:#?}"
    );
    let starts = w.audit("session.start").await;
    assert!(
        starts.iter().all(|e| e["details"]["client_tls"] == true),
        "{starts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_secret_from_periscope_connect_is_the_password() {
    let w = crate::support::proxy::world().await;

    // `periscope connect pg-prod` through the real CLI.
    let out = cli(&w, &w.alice.token, &["connect", "pg-prod", "--json"]).await;
    assert!(out.success, "{}", out.all());
    let answer: Value = serde_json::from_str(&out.stdout).unwrap();
    let secret = answer["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pss_"), "{answer}");
    let psql_command = answer["psql_command"].as_str().unwrap();
    assert!(
        psql_command.contains("sslmode=verify-full") && psql_command.contains("dbname=pg-prod"),
        "{psql_command}"
    );
    assert!(!out.all().contains(UPSTREAM_PASSWORD), "{}", out.all());
    // The conninfo it prints, as printed, with the secret as the password.
    let conninfo = psql_command
        .split('"')
        .nth(1)
        .expect("a quoted conninfo")
        .to_string();
    let got = w
        .psql_as(
            &conninfo,
            &secret,
            "SELECT id, email FROM customers WHERE id = 1",
        )
        .await;
    assert!(got.success, "{}", got.all());
    assert_eq!(got.stdout.trim(), "1|[email]");

    let login = w
        .audit_until("auth.login", |events| {
            events
                .iter()
                .find(|e| e["details"]["credential"] == "session_secret")
                .cloned()
        })
        .await;
    assert_eq!(login["actor"], "alice");
    assert_eq!(login["target"], "pg-prod");
    let start = w
        .audit_until("session.start", |events| {
            events
                .iter()
                .find(|e| e["details"]["credential"] == "session_secret")
                .cloned()
        })
        .await;
    assert_eq!(start["details"]["token_id"], login["details"]["token_id"]);

    // It is scoped to its connection.
    let (code, message) = refusal(w.try_client("alice", &secret, "pg-dev").await);
    assert_eq!(code, SqlState::INVALID_PASSWORD, "{message}");
    assert!(
        message.contains("issued for `pg-prod`") && message.contains("periscope connect pg-dev"),
        "{message}"
    );
    // And to its owner.
    let (code, _) = refusal(w.try_client("bob", &secret, "pg-dev").await);
    assert_eq!(code, SqlState::INVALID_PASSWORD);

    // A secret for pg-dev: a session opened with it outlives the secret's
    // ten minutes; a new login after them is refused.
    let out = cli(&w, &w.alice.token, &["connect", "pg-dev", "--json"]).await;
    assert!(out.success, "{}", out.all());
    let dev_secret = serde_json::from_str::<Value>(&out.stdout).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let open = w
        .try_client("alice", &dev_secret, "pg-dev")
        .await
        .expect("the secret is the password");
    w.advance_clock("11m").await;
    let rows = cells(
        &open
            .simple_query("SELECT email FROM customers WHERE id = 2")
            .await
            .expect("an open session stays open"),
    );
    assert_eq!(rows, vec![vec!["[email]".to_string()]]);
    let (code, message) = refusal(w.try_client("alice", &dev_secret, "pg-dev").await);
    assert_eq!(code, SqlState::INVALID_PASSWORD, "{message}");
    // The API token itself keeps working.
    let ok = w.try_client("alice", &w.alice.token, "pg-dev").await;
    assert!(ok.is_ok());
    let export = w.audit_export().await;
    assert!(!export.contains(&secret) && !export.contains(&dev_secret));
    assert!(!export.contains(UPSTREAM_PASSWORD));
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_events_describe_sessions_and_statements() {
    let w = crate::support::proxy::world().await;
    let raw = w.shop.raw_values();
    let grant = w.grant_on("pg-dev", &["unmask:phone"], "30m").await;
    let client = w.client().await;

    // One masked read with literals, one refused write, one failing
    // statement.
    let rows = cells(
        &client
            .simple_query(
                "SELECT email, card_number, phone FROM customers WHERE id = 3 AND name <> 'Zed Literal'",
            )
            .await
            .unwrap(),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "[email]");
    assert_eq!(rows[0][1], "[card]");
    assert_eq!(
        rows[0][2], w.shop.customers[2].phone,
        "unmask:phone is lifted"
    );
    let refused = client
        .simple_query("UPDATE customers SET email = 'attacker@evil.example' WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let failed = client
        .simple_query("SELECT 1 / 0 FROM customers WHERE id = 4")
        .await
        .unwrap_err();
    assert_eq!(failed.code(), Some(&SqlState::DIVISION_BY_ZERO));
    let tokens = cells(
        &client
            .simple_query("SELECT api_token FROM api_clients ORDER BY id")
            .await
            .unwrap(),
    );
    assert_no_raw(&crate::support::proxy::joined(&tokens), &raw);
    drop(client);

    // session.start: who, from where, with what, under which grants.
    let start = w
        .audit_until("session.start", |events| events.first().cloned())
        .await;
    let session = start["details"]["session"].as_str().unwrap().to_owned();
    assert_eq!(start["actor"], "alice");
    assert_eq!(start["target"], "pg-dev");
    assert_eq!(start["grant_ids"], json!([grant]));
    assert_eq!(start["details"]["grants"], json!([grant]));
    assert_eq!(start["details"]["application_name"], "proxy-tests");
    assert_eq!(start["details"]["credential"], "api_token");
    assert_eq!(start["details"]["client_tls"], false);
    let client_addr = start["details"]["client_addr"].as_str().unwrap().to_owned();
    assert!(client_addr.starts_with("127.0.0.1:"), "{start}");

    // query: literal-free text, class, tables; under the grant.
    let queries = w
        .audit_until("query", |events| {
            let mine: Vec<Value> = events
                .iter()
                .filter(|e| e["details"]["session"] == session.as_str())
                .cloned()
                .collect();
            (mine.len() >= 3).then_some(mine)
        })
        .await;
    let select = &queries[0];
    assert_eq!(
        select["details"]["text"],
        "SELECT email, card_number, phone FROM customers WHERE id = ? AND name <> ?"
    );
    assert_eq!(select["details"]["class"], "select");
    assert_eq!(select["details"]["tables"], json!(["public.customers"]));
    assert_eq!(select["grant_ids"], json!([grant]));
    assert_eq!(select["target"], "pg-dev");

    // query.result: rows and masked counts per entity, or the error.
    let results = w
        .audit_until("query.result", |events| {
            let mine: Vec<Value> = events
                .iter()
                .filter(|e| e["details"]["session"] == session.as_str())
                .cloned()
                .collect();
            (mine.len() >= 3).then_some(mine)
        })
        .await;
    let first = &results[0];
    assert_eq!(first["details"]["outcome"], "ok");
    assert_eq!(first["details"]["rows"], 1);
    assert_eq!(first["details"]["masked"], json!({"email": 1, "card": 1}));
    assert_eq!(
        first["details"]["query_seq"], select["seq"],
        "an outcome names its statement's event"
    );
    let division = results
        .iter()
        .find(|e| e["details"]["outcome"] == "error")
        .expect("the failing statement's outcome");
    assert_eq!(division["details"]["sqlstate"], "22012");
    let secrets = results.last().unwrap();
    assert_eq!(secrets["details"]["rows"], 3);
    assert_eq!(secrets["details"]["masked"], json!({"secret": 3}));

    // query.refused: the shield that refused, and no literal.
    let refusal = w
        .audit_until("query.refused", |events| {
            events
                .iter()
                .find(|e| e["details"]["session"] == session.as_str())
                .cloned()
        })
        .await;
    assert_eq!(refusal["details"]["shield"], "write");
    assert_eq!(
        refusal["details"]["text"],
        "UPDATE customers SET email = ? WHERE id = ?"
    );

    // session.end: the same who and where, the totals.
    let end = w
        .audit_until("session.end", |events| {
            events
                .iter()
                .find(|e| e["details"]["session"] == session.as_str())
                .cloned()
        })
        .await;
    assert_eq!(end["actor"], "alice");
    assert_eq!(end["target"], "pg-dev");
    assert_eq!(end["grant_ids"], json!([grant]));
    assert_eq!(end["details"]["client_addr"], client_addr.as_str());
    assert_eq!(end["details"]["application_name"], "proxy-tests");
    assert_eq!(end["details"]["statements"], 3);
    assert_eq!(end["details"]["refused"], 1);
    assert_eq!(
        end["details"]["masked"],
        json!({"email": 1, "card": 1, "secret": 3})
    );
    assert_eq!(end["details"]["reason"], "client closed the session");

    // The whole export: no literal, no raw value, no upstream password.
    let export = w.audit_export().await;
    for leaked in ["Zed Literal", "attacker@evil.example", UPSTREAM_PASSWORD] {
        assert!(!export.contains(leaked), "{leaked} is in the audit export");
    }
    assert_no_raw(&export, &raw);
    assert!(API_TOKENS.iter().all(|t| !export.contains(t)));
}

/// The writer's commit count, from `/metrics`.
async fn audit_commits(w: &World) -> u64 {
    let r = w.admin.get("/metrics").await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
        .lines()
        .find_map(|line| line.strip_prefix("periscope_audit_commits_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no periscope_audit_commits_total in:\n{}", r.body))
}

/// A statement's outcome is not committed on its own: it waits (briefly) to
/// share the commit of the session's next statement, which halves the
/// commits of a busy session, and an idle session's last outcome is still
/// written within moments, without the session having to end.
#[tokio::test(flavor = "multi_thread")]
async fn outcomes_share_the_next_statements_commit_and_idle_ones_are_written_anyway() {
    let w = world().await;
    let client = w.client().await;
    client.simple_query("SELECT 1").await.unwrap();
    // The session stays open and idle: its outcome arrives anyway.
    w.audit_until("query.result", |events| (!events.is_empty()).then_some(()))
        .await;

    let results_before = w.audit("query.result").await.len();
    let commits_before = audit_commits(&w).await;
    let statements = 30;
    for i in 0..statements {
        let rows = client.simple_query(&format!("SELECT {i}")).await.unwrap();
        assert_eq!(cells(&rows), vec![vec![i.to_string()]]);
    }
    w.audit_until("query.result", |events| {
        (events.len() >= results_before + statements).then_some(())
    })
    .await;
    let commits = audit_commits(&w).await - commits_before;
    // Each statement's `query` event must be committed before its rows are
    // shown; its outcome rides along with the next one. Without that, 30
    // statements took 60 commits.
    assert!(
        commits <= statements as u64 + 3,
        "{statements} statements took {commits} audit commits"
    );
    drop(client);
}
