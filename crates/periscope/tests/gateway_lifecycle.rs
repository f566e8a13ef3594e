//! `periscope up` as a process: first start and restart, invalid configuration,
//! reload, tokens, the API's error shape, metrics, and audit tampering.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::gateway::{BIN, POLICY, admin, audit, expect, start, user};
use periscope_testkit::{GatewayOptions, GatewayProcess};
use serde_json::json;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_creates_private_files_prints_the_token_once_and_restart_reuses_all() {
    let mut gw = start(GatewayOptions::default()).await;
    let data = gw.data_dir().to_path_buf();
    assert_eq!(mode(&data), 0o700);
    for private in [
        "tls/ca.key",
        "tls/server.key",
        "keys/audit-signing.key",
        "keys/token-hmac.key",
        "keys/mask-token.key",
        "periscope.db",
        "periscope.db-audit-redo-a",
        "periscope.db-audit-redo-b",
    ] {
        assert_eq!(mode(&data.join(private)), 0o600, "{private}");
    }
    for public in ["tls/ca.pem", "tls/server.pem", "keys/audit-verify.pub"] {
        assert!(data.join(public).is_file(), "{public}");
    }

    let stdout = gw.stdout();
    let token = gw.bootstrap_token().unwrap().to_owned();
    assert!(token.starts_with("psc_"), "{token}");
    assert_eq!(
        stdout.matches(&token).count(),
        2,
        "token line and login command:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "periscope login --url {} --token {token} --ca-file {}",
            gw.api_url(),
            gw.ca_file().display()
        )),
        "{stdout}"
    );
    let ready: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("periscope: ready "))
        .collect();
    assert_eq!(ready.len(), 1, "{stdout}");
    assert!(ready[0].contains(&format!("api={}", gw.api_url())));
    assert!(ready[0].ends_with(&format!("data_dir={}", data.display())));
    assert!(
        !gw.stderr().contains(&token),
        "the token never reaches the log"
    );

    let client = admin(&gw);
    let me = expect(&client.get("/v1/whoami").await.unwrap(), 200);
    assert_eq!(me["identity"], "admin");
    assert_eq!(me["admin"], true);
    let ca = std::fs::read(gw.ca_file()).unwrap();
    let public_key = expect(&client.get("/v1/audit/public-key").await.unwrap(), 200);

    let status = tokio::task::block_in_place(|| gw.stop()).unwrap();
    assert!(status.success(), "a SIGTERM stop exits 0: {status}");
    tokio::task::block_in_place(|| gw.restart()).unwrap();

    assert!(gw.bootstrap_token().is_none(), "bootstrap is not repeated");
    assert!(!gw.stdout().contains("psc_"), "{}", gw.stdout());
    assert_eq!(std::fs::read(gw.ca_file()).unwrap(), ca, "the CA is reused");
    let client = gw.client(Some(&token)).unwrap();
    expect(&client.get("/v1/whoami").await.unwrap(), 200);
    assert_eq!(
        expect(&client.get("/v1/audit/public-key").await.unwrap(), 200),
        public_key,
        "the audit signing key is reused"
    );
    assert_eq!(
        audit(&client, "action=admin.user_add&target=admin")
            .await
            .len(),
        1
    );
    assert_eq!(audit(&client, "action=config.load").await.len(), 2);
    let verified = expect(
        &client.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(
        verified["report"]["checkpoints_verified"].as_u64().unwrap() >= 1,
        "the clean stop signed a final checkpoint: {verified}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_configuration_is_refused_with_file_line_and_reason() {
    let options = GatewayOptions::default().config(
        "[[connection]]\nname = \"pg-prod\"\nkind = \"postgres\"\nhost = \"h\"\ndatabase = \"d\"\nuser = \"u\"\n\n[[role]]\nname = \"dev\"\nconnections = [\"pg-prod\"]\napprovers = [\"nobody\"]\n",
    );
    let exited =
        tokio::task::spawn_blocking(move || GatewayProcess::start_expecting_failure(BIN, options))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("periscope.toml:11:"),
        "file and line of `approvers`: {}",
        exited.stderr
    );
    assert!(exited.stderr.contains("nobody"), "{}", exited.stderr);
    assert!(!exited.stdout.contains("periscope: ready"));
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_key_files_are_refused_at_start() {
    let mut gw = start(GatewayOptions::default()).await;
    tokio::task::block_in_place(|| gw.stop()).unwrap();
    let key = gw.data_dir().join("keys/token-hmac.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let exited = tokio::task::block_in_place(|| gw.restart_expecting_failure()).unwrap();
    assert_eq!(exited.status.code(), Some(1));
    assert!(
        exited
            .stderr
            .contains("token-hmac.key has permissions 0644")
            && exited.stderr.contains("chmod 600"),
        "{}",
        exited.stderr
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(gw.data_dir().join("keys/audit-signing.key"), "garbage\n").unwrap();
    let exited = tokio::task::block_in_place(|| gw.restart_expecting_failure()).unwrap();
    assert!(
        exited.stderr.contains("audit-signing.key is corrupt"),
        "{}",
        exited.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_and_api_reloads_apply_whole_or_keep_the_old_policy() {
    let mut gw = start(GatewayOptions::default().config(POLICY)).await;
    let admin = admin(&gw);
    let alice = user(&gw, &admin, "alice", &["dev"]).await;
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|c| c["may_connect"] == true)
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = expect(&alice.get("/v1/connections").await.unwrap(), 200);
    assert_eq!(names(before), ["pg-prod"]);

    // A valid change, applied on SIGHUP.
    let extended = POLICY.replace(
        "connections = [\"pg-prod\"]\nmay_lift = [\"unmask:email\", \"write\"]",
        "connections = [\"pg-prod\", \"pg-staging\"]\nmay_lift = [\"unmask:email\", \"write\"]",
    );
    assert_ne!(extended, POLICY);
    gw.write_config(&extended).unwrap();
    let mark = gw.log_mark();
    gw.signal("HUP").unwrap();
    gw.wait_for_log("configuration reloaded", mark, Duration::from_secs(10))
        .unwrap();
    let after = expect(&alice.get("/v1/connections").await.unwrap(), 200);
    assert_eq!(names(after), ["pg-prod", "pg-staging"]);

    // An invalid file: refused with its location, the previous policy stays.
    let broken = format!("{extended}\n[[role]]\nname = \"dev\"\n");
    gw.write_config(&broken).unwrap();
    let mark = gw.log_mark();
    gw.signal("HUP").unwrap();
    gw.wait_for_log("reload refused", mark, Duration::from_secs(10))
        .unwrap();
    let located = gw
        .wait_for_log("periscope.toml:", mark, Duration::from_secs(10))
        .unwrap();
    assert!(located.contains("dev"), "{located}");
    let kept = expect(&alice.get("/v1/connections").await.unwrap(), 200);
    assert_eq!(names(kept), ["pg-prod", "pg-staging"]);

    // The same through the API: a precise error, nothing applied.
    let refused = admin.post("/v1/admin/reload", &json!({})).await.unwrap();
    let body = expect(&refused, 422);
    assert_eq!(body["error"]["code"], "config_invalid");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("periscope.toml:"),
        "{body}"
    );
    let forbidden = alice.post("/v1/admin/reload", &json!({})).await.unwrap();
    assert_eq!(forbidden.status, 403);

    gw.write_config(POLICY).unwrap();
    let applied = expect(
        &admin.post("/v1/admin/reload", &json!({})).await.unwrap(),
        200,
    );
    assert!(
        applied["message"]
            .as_str()
            .unwrap()
            .starts_with("configuration reloaded"),
        "{applied}"
    );
    let back = expect(&alice.get("/v1/connections").await.unwrap(), 200);
    assert_eq!(names(back), ["pg-prod"]);

    let reloads = audit(&admin, "action=config.reload").await;
    let outcomes: Vec<&str> = reloads
        .iter()
        .map(|e| e["details"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["applied", "refused", "refused", "applied"]);
    assert!(
        reloads[1]["details"]["error"]
            .as_str()
            .unwrap()
            .contains("periscope.toml:"),
        "{}",
        reloads[1]
    );
    assert_eq!(reloads[0]["actor"], "periscope");
    assert_eq!(reloads[3]["actor"], "admin");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_revoked_and_unknown_tokens_get_401_and_every_failure_is_audited() {
    let gw = start(GatewayOptions::default().config(POLICY).test_clock(true)).await;
    let admin = admin(&gw);
    expect(
        &admin
            .post(
                "/v1/admin/users",
                &json!({ "name": "bob", "roles": ["dev"] }),
            )
            .await
            .unwrap(),
        201,
    );
    let issue = |expires: Option<&str>| {
        let admin = admin.clone();
        let body = match expires {
            Some(e) => json!({ "description": "laptop", "expires_in": e }),
            None => json!({}),
        };
        async move {
            let created = admin
                .post("/v1/admin/users/bob/tokens", &body)
                .await
                .unwrap();
            let created = expect(&created, 201);
            (
                created["token"].as_str().unwrap().to_owned(),
                created["summary"]["id"].as_str().unwrap().to_owned(),
            )
        }
    };
    let (short, _) = issue(Some("1h")).await;
    let (revocable, revocable_id) = issue(None).await;
    let short_client = gw.client(Some(&short)).unwrap();
    let revocable_client = gw.client(Some(&revocable)).unwrap();

    // Three calls, one recorded use (at most one per token per minute).
    for _ in 0..3 {
        expect(&revocable_client.get("/v1/whoami").await.unwrap(), 200);
    }
    let uses = audit(&admin, &format!("action=token.use&target={revocable_id}")).await;
    assert_eq!(uses.len(), 1, "{uses:?}");

    expect(&short_client.get("/v1/whoami").await.unwrap(), 200);
    expect(
        &admin
            .post("/v1/test/clock", &json!({ "advance": "2h" }))
            .await
            .unwrap(),
        200,
    );
    let expired = short_client.get("/v1/whoami").await.unwrap();
    assert_eq!(expect(&expired, 401)["error"]["code"], "unauthorized");
    assert!(
        expired.error_message().contains("expired"),
        "{}",
        expired.body
    );

    let revoked = expect(
        &admin
            .delete(&format!("/v1/admin/tokens/{revocable_id}"))
            .await
            .unwrap(),
        200,
    );
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let refused = revocable_client.get("/v1/whoami").await.unwrap();
    assert_eq!(refused.status, 401);
    assert!(
        refused.error_message().contains("revoked"),
        "{}",
        refused.body
    );

    let forged = gw
        .client(Some("psc_0123456789abcdef_not-a-real-secret"))
        .unwrap()
        .get("/v1/whoami")
        .await
        .unwrap();
    assert_eq!(forged.status, 401);
    assert_eq!(forged.error_message(), "invalid token");
    let anonymous = gw.client(None).unwrap().get("/v1/whoami").await.unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"periscope\"")
    );

    // A disabled identity's tokens stop working.
    let (fresh, _) = issue(None).await;
    expect(
        &admin
            .patch("/v1/admin/users/bob", &json!({ "disabled": true }))
            .await
            .unwrap(),
        200,
    );
    let disabled = gw
        .client(Some(&fresh))
        .unwrap()
        .get("/v1/whoami")
        .await
        .unwrap();
    assert_eq!(disabled.status, 401);
    assert!(
        disabled.error_message().contains("disabled"),
        "{}",
        disabled.body
    );

    let failures = crate::support::gateway::eventually(
        "the failed logins in the audit",
        Duration::from_secs(10),
        || {
            let admin = admin.clone();
            async move {
                let events = audit(&admin, "action=auth.login_failed").await;
                (events.len() >= 5).then_some(events)
            }
        },
    )
    .await;
    let reasons: Vec<&str> = failures
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    for reason in ["expired", "revoked", "unknown_token", "missing", "disabled"] {
        assert!(reasons.contains(&reason), "{reason} in {reasons:?}");
    }
    let all = expect(
        &admin.get("/v1/audit/events?limit=1000").await.unwrap(),
        200,
    )
    .to_string();
    for secret in [&short, &revocable, &fresh] {
        // `psc_<id>_<secret>`: the secret is base64url and may itself hold
        // `_`, so it is everything after the second one (a split at the last
        // `_` could leave a fragment short enough to occur by chance).
        let secret_part = secret.splitn(3, '_').nth(2).unwrap();
        assert!(secret_part.len() >= 40, "{secret_part}");
        assert!(
            !all.contains(secret_part),
            "a token secret reached the audit log"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_error_has_the_one_shape_with_the_request_id() {
    let gw = start(GatewayOptions::default()).await;
    let admin = admin(&gw);

    let health = expect(
        &gw.client(None).unwrap().get("/healthz").await.unwrap(),
        200,
    );
    assert_eq!(health, json!({ "status": "ok" }));
    let ready = gw.client(None).unwrap().get("/readyz").await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.body);

    let unknown = admin.get("/v1/nothing-here").await.unwrap();
    let body = expect(&unknown, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let id = unknown.header("x-request-id").unwrap().to_owned();
    assert_eq!(body["error"]["request_id"], id.as_str());

    let wrong_method = admin.delete("/v1/whoami").await.unwrap();
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.error_code().as_deref(), Some("bad_request"));

    let echoed = admin
        .with_header("x-request-id", "trace-42")
        .post("/v1/admin/users", &json!({ "name": "carol" }))
        .await
        .unwrap();
    let body = expect(&echoed, 400);
    assert_eq!(echoed.header("x-request-id"), Some("trace-42"));
    assert_eq!(body["error"]["request_id"], "trace-42");
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `roles`"),
        "the serde message is kept: {body}"
    );

    let malformed = admin
        .send_raw("POST", "/v1/requests", "application/json", "{not json")
        .await
        .unwrap();
    assert_eq!(expect(&malformed, 400)["error"]["code"], "bad_request");

    let unknown_role = admin
        .post(
            "/v1/admin/users",
            &json!({ "name": "carol", "roles": ["dba"] }),
        )
        .await
        .unwrap();
    let body = expect(&unknown_role, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("`dba`"));
    assert_eq!(body["error"]["hint"], "configured roles: admin");

    let test_clock = admin
        .post("/v1/test/clock", &json!({ "advance": "1h" }))
        .await
        .unwrap();
    assert_eq!(
        test_clock.status, 404,
        "no test clock route without --test-clock"
    );

    let metrics = gw.client(None).unwrap().get("/metrics").await.unwrap();
    assert_eq!(metrics.status, 200);
    for name in [
        "periscope_http_requests_total{route=\"/v1/whoami\",status=\"405\"}",
        "periscope_grants_active",
        "periscope_sessions_active",
        "periscope_audit_events_total",
        "periscope_audit_write_seconds_bucket",
        "periscope_webhook_failures_total",
    ] {
        assert!(
            metrics.body.contains(name),
            "{name} missing:\n{}",
            metrics.body
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_verify_offline_and_tampering_in_the_store_is_named_by_verify() {
    let gw = start(GatewayOptions::default().config(POLICY)).await;
    let admin = admin(&gw);
    for name in ["u1", "u2", "u3"] {
        user(&gw, &admin, name, &["dev"]).await;
    }
    let export = admin.get("/v1/audit/export").await.unwrap();
    assert_eq!(export.status, 200);
    assert_eq!(export.header("content-type"), Some("application/x-ndjson"));
    let key = expect(&admin.get("/v1/audit/public-key").await.unwrap(), 200);
    let key =
        periscope_audit::AuditVerifierKey::parse(key["public_key"].as_str().unwrap()).unwrap();
    let report = periscope_audit::verify_jsonl(
        std::io::Cursor::new(export.body.as_bytes()),
        &[key],
        periscope_audit::Start::Genesis,
    )
    .unwrap();
    assert!(report.events_checked >= 9, "{report}");

    let partial = admin.get("/v1/audit/export?since_seq=5").await.unwrap();
    let first_event = partial
        .body
        .lines()
        .find(|l| l.contains("\"type\":\"event\""))
        .unwrap();
    assert!(first_event.contains("\"seq\":5"), "{first_event}");

    let ok = expect(
        &admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(ok["ok"], true, "{ok}");

    // Edit one stored event behind the gateway's back.
    let url = format!("sqlite://{}", gw.data_dir().join("periscope.db").display());
    use sqlx::Connection as _;
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let changed = sqlx::query("UPDATE audit_events SET target = 'mallory' WHERE seq = 6")
        .execute(&mut db)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
    db.close().await.unwrap();

    let broken = expect(
        &admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(broken["ok"], false, "{broken}");
    assert_eq!(broken["broken_at"], 6);
    assert!(
        broken["summary"].as_str().unwrap().contains("seq 6"),
        "{broken}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_gateway_signs_its_chain_head_every_minute() {
    let gw = start(GatewayOptions::default().test_clock(true)).await;
    let admin = admin(&gw);
    user(&gw, &admin, "quiet", &[]).await;
    let before = expect(
        &admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(before["report"]["checkpoints_verified"], 0, "{before}");
    expect(
        &admin
            .post("/v1/test/clock", &json!({ "advance": "2m" }))
            .await
            .unwrap(),
        200,
    );
    let signed = crate::support::gateway::eventually(
        "a time-based checkpoint",
        Duration::from_secs(5),
        || {
            let admin = admin.clone();
            async move {
                let report = admin
                    .post("/v1/audit/verify", &json!({}))
                    .await
                    .unwrap()
                    .json();
                (report["report"]["checkpoints_verified"].as_u64() >= Some(1)).then_some(report)
            }
        },
    )
    .await;
    assert_eq!(signed["ok"], true, "{signed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_address_in_use_fails_the_start_before_anything_is_created() {
    let first = start(GatewayOptions::default()).await;
    let taken = first.api_url().trim_start_matches("https://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut busy = GatewayOptions::default().data_dir(&data);
    busy.ephemeral_ports = false;
    busy.args = vec!["--api-listen".into(), taken.clone()];
    let exited =
        tokio::task::spawn_blocking(move || GatewayProcess::start_expecting_failure(BIN, busy))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(exited.status.code(), Some(1));
    assert!(
        exited.stderr.contains(&format!("cannot listen on {taken}")),
        "{}",
        exited.stderr
    );
    assert!(
        !data.exists(),
        "no data directory, no store, no lost bootstrap token"
    );
    let retry = start(GatewayOptions::default().data_dir(&data)).await;
    assert!(
        retry.bootstrap_token().is_some(),
        "the first real start bootstraps"
    );
}
