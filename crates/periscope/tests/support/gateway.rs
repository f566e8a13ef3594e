//! Shared helpers of the `gateway_*` tests: start the real `periscope up`
//! binary, talk to its API, and a policy fixture with a few roles.
#![allow(dead_code)]

use std::time::Duration;

use periscope_testkit::{ApiClient, ApiResponse, GatewayOptions, GatewayProcess};
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_periscope");

/// Connections and roles used by most tests.
pub const POLICY: &str = r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"
labels = { env = "prod" }

[[connection]]
name = "pg-staging"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"
labels = { env = "staging" }

[[role]]
name = "dev"
connections = ["pg-prod"]
may_lift = ["unmask:email", "write"]
max_duration = "1h"
approvals = 1
approvers = ["lead"]

[[role]]
name = "lead"
connections = ["pg-prod"]
may_lift = ["unmask:*", "write", "ddl"]
max_duration = "4h"
approvals = 2
approvers = ["sre"]

[[role]]
name = "sre"
connections = ["*"]
may_lift = ["unmask:*", "write"]
max_duration = "1h"
approvers = ["lead", "sre"]

[[role]]
name = "breakglass"
connections = ["pg-prod"]
may_lift = ["unmask:*"]
max_duration = "30m"
approvals = 0
break_glass = true
"#;

/// Starts a gateway without blocking the async runtime.
pub async fn start(options: GatewayOptions) -> GatewayProcess {
    tokio::task::spawn_blocking(move || GatewayProcess::start(BIN, options))
        .await
        .expect("the start task does not panic")
        .expect("the gateway starts")
}

/// The administrator's client (bootstrap token of a first start).
pub fn admin(gw: &GatewayProcess) -> ApiClient {
    let token = gw
        .bootstrap_token()
        .expect("a first start prints the bootstrap token");
    gw.client(Some(token)).expect("API client")
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

/// Creates `name` with `roles` and returns a client with a fresh token.
pub async fn user(gw: &GatewayProcess, admin: &ApiClient, name: &str, roles: &[&str]) -> ApiClient {
    let created = admin
        .post("/v1/admin/users", &json!({ "name": name, "roles": roles }))
        .await
        .expect("create user");
    expect(&created, 201);
    let token = admin
        .post(&format!("/v1/admin/users/{name}/tokens"), &json!({}))
        .await
        .expect("create token");
    let token = expect(&token, 201)["token"]
        .as_str()
        .expect("the token is in the answer")
        .to_owned();
    gw.client(Some(&token)).expect("API client")
}

/// The audit events matching `query` (e.g. `action=grant.expire`).
pub async fn audit(admin: &ApiClient, query: &str) -> Vec<Value> {
    let response = admin
        .get(&format!("/v1/audit/events?{query}"))
        .await
        .expect("audit search");
    expect(&response, 200)
        .as_array()
        .cloned()
        .expect("an array of events")
}

/// Polls `check` until it returns `Some`, or fails after `timeout`: for
/// effects another process produces asynchronously.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
