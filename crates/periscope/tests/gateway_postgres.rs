//! The gateway on a PostgreSQL store: two `periscope up` processes on one
//! database are replicas (one bootstrap, shared state, one audit chain), and a
//! restart keeps everything.
#![allow(clippy::unwrap_used)]

use crate::support::gateway::{BIN, POLICY, audit, expect, user};
use periscope_testkit::{GatewayOptions, GatewayProcess, PgCluster, SUPERUSER, SUPERUSER_PASSWORD};
use serde_json::json;

fn options(cluster: &PgCluster, data_dir: &std::path::Path) -> GatewayOptions {
    let config = format!(
        "[store]\nurl = \"postgres://{SUPERUSER}@127.0.0.1:{}/periscope\"\npassword_env = \"PERISCOPE_TEST_STORE_PASSWORD\"\n{POLICY}",
        cluster.port()
    );
    GatewayOptions::default()
        .config(config)
        .data_dir(data_dir)
        .env("PERISCOPE_TEST_STORE_PASSWORD", SUPERUSER_PASSWORD)
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_postgres_store_bootstrap_once_and_share_grants() {
    let cluster = tokio::task::spawn_blocking(|| {
        let cluster = PgCluster::start()?;
        cluster.create_database("periscope")?;
        Ok::<_, periscope_testkit::TestkitError>(cluster)
    })
    .await
    .unwrap()
    .unwrap();
    // Replicas on one host share the data directory (keys, CA); elsewhere its
    // keys/ and tls/ are copied (docs/operations.md).
    let shared = tempfile::tempdir().unwrap();
    let (a, b) = (
        options(&cluster, shared.path()),
        options(&cluster, shared.path()),
    );
    let (first, second) = tokio::join!(
        tokio::task::spawn_blocking(move || GatewayProcess::start(BIN, a)),
        tokio::task::spawn_blocking(move || GatewayProcess::start(BIN, b)),
    );
    let (mut one, two) = (first.unwrap().unwrap(), second.unwrap().unwrap());
    assert!(!one.stdout().contains("sqlite"), "{}", one.stdout());

    let tokens: Vec<&str> = [&one, &two]
        .iter()
        .filter_map(|g| g.bootstrap_token())
        .collect();
    assert_eq!(tokens.len(), 1, "exactly one replica bootstrapped");
    let token = tokens[0].to_owned();
    let admin_one = one.client(Some(&token)).unwrap();
    let admin_two = two.client(Some(&token)).unwrap();
    expect(&admin_two.get("/v1/whoami").await.unwrap(), 200);
    assert_eq!(
        audit(&admin_one, "action=admin.user_add&target=admin")
            .await
            .len(),
        1
    );

    let alice = user(&one, &admin_one, "alice", &["dev"]).await;
    let lena_on_two = user(&two, &admin_two, "lena", &["lead"]).await;
    let created = alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-prod", "lifts": ["unmask:email"], "duration": "30m", "reason": "INC-501: replica check" }),
        )
        .await
        .unwrap();
    let req = expect(&created, 201)["id"].as_str().unwrap().to_owned();
    let approved = expect(
        &lena_on_two
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    let grant = approved["grant"]["id"].as_str().unwrap().to_owned();

    // Approved on replica two, in force on replica one.
    let on_one = expect(&alice.get("/v1/grants").await.unwrap(), 200);
    assert_eq!(on_one[0]["id"], grant.as_str());
    let explained = expect(
        &alice
            .get("/v1/policy/explain?connection=pg-prod")
            .await
            .unwrap(),
        200,
    );
    assert!(
        explained["text"]
            .as_str()
            .unwrap()
            .contains(&format!("by grant {grant}")),
        "{}",
        explained["text"]
    );

    // One chain, written by both, verifies from either.
    let verified = expect(
        &admin_two
            .post("/v1/audit/verify", &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(audit(&admin_one, "action=config.load").await.len(), 2);

    // A restart keeps the state (the store is PostgreSQL, the keys are on disk).
    tokio::task::block_in_place(|| one.restart()).unwrap();
    assert!(one.bootstrap_token().is_none());
    let after = expect(
        &one.client(Some(&token))
            .unwrap()
            .get("/v1/grants?identity=alice")
            .await
            .unwrap(),
        200,
    );
    assert_eq!(after[0]["id"], grant.as_str());
    assert_eq!(after[0]["status"], "active");
    drop(two);
    drop(one);
    drop(cluster);
}
