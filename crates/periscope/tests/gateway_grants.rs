//! The grant workflow through the real binary's API: request, approve, use,
//! expire (with the test clock), and every rule on the way.
#![allow(clippy::unwrap_used)]

use crate::support::gateway::{POLICY, admin, audit, expect, start, user};
use periscope_testkit::{ApiClient, GatewayOptions, GatewayProcess};
use serde_json::{Value, json};

struct World {
    gw: GatewayProcess,
    admin: ApiClient,
    alice: ApiClient,
    bob: ApiClient,
    lena: ApiClient,
    sam: ApiClient,
    sara: ApiClient,
}

async fn world() -> World {
    let gw = start(GatewayOptions::default().config(POLICY).test_clock(true)).await;
    let admin = admin(&gw);
    World {
        alice: user(&gw, &admin, "alice", &["dev"]).await,
        bob: user(&gw, &admin, "bob", &["dev"]).await,
        lena: user(&gw, &admin, "lena", &["lead"]).await,
        sam: user(&gw, &admin, "sam", &["sre"]).await,
        sara: user(&gw, &admin, "sara", &["sre"]).await,
        admin,
        gw,
    }
}

async fn request(client: &ApiClient, lifts: &[&str], duration: &str) -> Value {
    let response = client
        .post(
            "/v1/requests",
            &json!({
                "connection": "pg-prod",
                "lifts": lifts,
                "duration": duration,
                "reason": "INC-4411: refund stuck",
            }),
        )
        .await
        .unwrap();
    expect(&response, 201)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_approve_use_expire_cycle() {
    let w = world().await;
    let explain = expect(
        &w.alice
            .get("/v1/policy/explain?connection=pg-prod")
            .await
            .unwrap(),
        200,
    );
    let text = explain["text"].as_str().unwrap();
    assert!(text.contains("may connect: yes, through dev"), "{text}");
    assert!(
        text.contains("periscope request pg-prod --lift unmask:email --for 30m"),
        "{text}"
    );
    assert_eq!(explain["explanation"]["may_connect"], true);

    let created = request(&w.alice, &["unmask:email"], "30m").await;
    assert_eq!(created["status"], "pending");
    assert_eq!(created["role"], "dev");
    assert_eq!(created["approvals_required"], 1);
    assert_eq!(created["approver_roles"], json!(["lead"]));
    assert_eq!(created["duration_secs"], 1800);
    let req = id(&created);

    // Lena (lead) sees it in her inbox; Bob (a fellow dev) does not.
    let inbox = expect(&w.lena.get("/v1/requests").await.unwrap(), 200);
    assert!(
        inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == req.as_str())
    );
    let others = expect(&w.bob.get("/v1/requests").await.unwrap(), 200);
    assert!(others.as_array().unwrap().is_empty(), "{others}");
    assert_eq!(
        w.bob
            .get(&format!("/v1/requests/{req}"))
            .await
            .unwrap()
            .status,
        404
    );

    let approved = expect(
        &w.lena
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(approved["request"]["status"], "approved");
    let grant = &approved["grant"];
    assert_eq!(grant["status"], "active");
    assert_eq!(grant["identity"], "alice");
    assert_eq!(grant["approvers"], json!(["lena"]));
    assert_eq!(grant["lifts"], json!(["unmask:email"]));
    assert_eq!(approved["request"]["grant_id"], grant["id"]);
    let gr = id(grant);

    let active = expect(&w.alice.get("/v1/grants").await.unwrap(), 200);
    assert_eq!(active.as_array().unwrap().len(), 1);
    let lifted = expect(
        &w.alice
            .get("/v1/policy/explain?connection=pg-prod")
            .await
            .unwrap(),
        200,
    );
    let text = lifted["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("unmask:email: by grant {gr}")),
        "{text}"
    );

    // Half an hour later (test clock), the grant has ended by itself.
    let moved = expect(
        &w.admin
            .post("/v1/test/clock", &json!({ "advance": "31m" }))
            .await
            .unwrap(),
        200,
    );
    assert!(moved["now"].is_string());
    let active = expect(&w.alice.get("/v1/grants").await.unwrap(), 200);
    assert!(active.as_array().unwrap().is_empty(), "{active}");
    let all = expect(&w.alice.get("/v1/grants?status=all").await.unwrap(), 200);
    assert_eq!(all[0]["status"], "expired");
    let shielded = expect(
        &w.alice
            .get("/v1/policy/explain?connection=pg-prod")
            .await
            .unwrap(),
        200,
    );
    assert!(
        !shielded["text"]
            .as_str()
            .unwrap()
            .contains("lifted by your grants"),
        "{}",
        shielded["text"]
    );

    let expiries = audit(&w.admin, &format!("action=grant.expire&target={gr}")).await;
    assert_eq!(expiries.len(), 1, "audited exactly once: {expiries:?}");
    assert_eq!(expiries[0]["actor"], "periscope");
    assert_eq!(expiries[0]["grant_ids"], json!([gr]));
    let starts = audit(&w.admin, &format!("action=grant.start&target={gr}")).await;
    assert_eq!(starts.len(), 1);
    assert_eq!(starts[0]["actor"], "lena");
    let created_events = audit(&w.admin, &format!("action=request.create&target={req}")).await;
    assert_eq!(
        created_events[0]["details"]["reason"],
        "INC-4411: refund stuck"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_approval_is_refused_and_another_approver_grants() {
    let w = world().await;
    // Sam (sre) asks through role sre, whose approvers include sre itself.
    let created = request(&w.sam, &["write"], "30m").await;
    assert_eq!(created["role"], "sre");
    let req = id(&created);
    let own = w
        .sam
        .post(&format!("/v1/requests/{req}/approve"), &json!({}))
        .await
        .unwrap();
    let body = expect(&own, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(
        body["error"]["message"],
        "you cannot approve or deny your own request"
    );
    assert!(
        body["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("lead or sre")
    );
    let not_approver = w
        .bob
        .post(&format!("/v1/requests/{req}/approve"), &json!({}))
        .await
        .unwrap();
    assert_eq!(not_approver.status, 404, "bob cannot even see it");
    let granted = expect(
        &w.sara
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(granted["grant"]["approvers"], json!(["sara"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn duration_is_capped_by_the_role_and_requests_are_checked() {
    let w = world().await;
    let too_long = w
        .alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-prod", "lifts": ["unmask:email"], "duration": "2h", "reason": "INC-4411: refund stuck" }),
        )
        .await
        .unwrap();
    let body = expect(&too_long, 400);
    assert_eq!(
        body["error"]["message"],
        "2h is longer than role `dev` allows (at most 1h)"
    );
    assert!(body["error"]["hint"].as_str().unwrap().contains("--for 1h"));

    let cases = [
        (
            json!(["unmask:email"]),
            "30m",
            "fix",
            400,
            "a reason is required",
        ),
        (
            json!(["ddl"]),
            "30m",
            "INC-1: schema fix",
            403,
            "may lift `ddl`",
        ),
        (
            json!(["unmask:nothing"]),
            "30m",
            "INC-1: schema fix",
            400,
            "nothing",
        ),
        (
            json!(["write"]),
            "forever",
            "INC-1: schema fix",
            400,
            "invalid duration",
        ),
    ];
    for (lifts, duration, reason, status, needle) in cases {
        let response = w
            .alice
            .post(
                "/v1/requests",
                &json!({ "connection": "pg-prod", "lifts": lifts, "duration": duration, "reason": reason }),
            )
            .await
            .unwrap();
        assert_eq!(
            response.status, status,
            "{lifts} {duration}: {}",
            response.body
        );
        assert!(
            response.error_message().contains(needle),
            "{lifts}: {}",
            response.body
        );
    }
    let unknown = w
        .alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-nope", "lifts": ["write"], "duration": "30m", "reason": "INC-1: schema fix" }),
        )
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_approvals_are_required_when_the_role_says_so() {
    let w = world().await;
    let created = request(&w.lena, &["ddl"], "2h").await;
    assert_eq!(created["role"], "lead");
    assert_eq!(created["approvals_required"], 2);
    let req = id(&created);
    let first = expect(
        &w.sam
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(first["request"]["status"], "pending");
    assert!(first.get("grant").is_none(), "{first}");
    let again = w
        .sam
        .post(&format!("/v1/requests/{req}/approve"), &json!({}))
        .await
        .unwrap();
    assert_eq!(expect(&again, 409)["error"]["code"], "conflict");
    let second = expect(
        &w.sara
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(second["request"]["status"], "approved");
    assert_eq!(second["grant"]["approvers"], json!(["sam", "sara"]));
    assert_eq!(
        audit(&w.admin, &format!("action=request.approve&target={req}"))
            .await
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_deny_cancel_and_pending_expiry() {
    let w = world().await;
    // Revoke: the grantee's approver role may; a bystander may not.
    let req = id(&request(&w.alice, &["write"], "30m").await);
    let approved = expect(
        &w.lena
            .post(&format!("/v1/requests/{req}/approve"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    let gr = id(&approved["grant"]);
    assert_eq!(
        w.bob
            .post(&format!("/v1/grants/{gr}/revoke"), &json!({}))
            .await
            .unwrap()
            .status,
        404
    );
    let revoked = expect(
        &w.lena
            .post(
                &format!("/v1/grants/{gr}/revoke"),
                &json!({ "reason": "done" }),
            )
            .await
            .unwrap(),
        200,
    );
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], "lena");
    let twice = w
        .lena
        .post(&format!("/v1/grants/{gr}/revoke"), &json!({}))
        .await
        .unwrap();
    assert_eq!(expect(&twice, 409)["error"]["code"], "invalid_state");
    let events = audit(&w.admin, &format!("action=grant.revoke&target={gr}")).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["reason"], "done");

    // Deny needs a reason; a denied request cannot be approved.
    let req = id(&request(&w.alice, &["unmask:email"], "30m").await);
    let bare = w
        .lena
        .post(&format!("/v1/requests/{req}/deny"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        expect(&bare, 400)["error"]["message"],
        "a denial needs a reason"
    );
    let denied = expect(
        &w.lena
            .post(
                &format!("/v1/requests/{req}/deny"),
                &json!({ "reason": "use the replica" }),
            )
            .await
            .unwrap(),
        200,
    );
    assert_eq!(denied["status"], "denied");
    assert_eq!(denied["decided_by"], "lena");
    assert_eq!(denied["decision_reason"], "use the replica");
    let late = w
        .lena
        .post(&format!("/v1/requests/{req}/approve"), &json!({}))
        .await
        .unwrap();
    assert_eq!(expect(&late, 409)["error"]["code"], "invalid_state");

    // Cancel: only the requester.
    let req = id(&request(&w.alice, &["unmask:email"], "30m").await);
    let theirs = w
        .lena
        .post(&format!("/v1/requests/{req}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(theirs.status, 403);
    let cancelled = expect(
        &w.alice
            .post(&format!("/v1/requests/{req}/cancel"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    assert_eq!(cancelled["status"], "cancelled");

    // A request nobody decides expires after the pending TTL (24h).
    let req = id(&request(&w.alice, &["unmask:email"], "30m").await);
    expect(
        &w.admin
            .post("/v1/test/clock", &json!({ "advance": "25h" }))
            .await
            .unwrap(),
        200,
    );
    let expired = expect(
        &w.alice.get(&format!("/v1/requests/{req}")).await.unwrap(),
        200,
    );
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        audit(&w.admin, &format!("action=request.expire&target={req}"))
            .await
            .len(),
        1
    );

    let mine = expect(&w.alice.get("/v1/requests?status=all").await.unwrap(), 200);
    assert_eq!(mine.as_array().unwrap().len(), 4);
    let by_status = expect(
        &w.admin.get("/v1/requests?status=denied").await.unwrap(),
        200,
    );
    assert_eq!(by_status.as_array().unwrap().len(), 1);
    let bad = w.alice.get("/v1/requests?status=maybe").await.unwrap();
    assert_eq!(expect(&bad, 400)["error"]["code"], "bad_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn break_glass_grants_start_at_once_and_are_flagged_in_the_audit() {
    let w = world().await;
    let oncall = user(&w.gw, &w.admin, "oncall", &["breakglass"]).await;
    let created = request(&oncall, &["unmask:github_token"], "15m").await;
    assert_eq!(created["status"], "approved");
    assert_eq!(created["break_glass"], true);
    let dev_secret = w
        .alice
        .post(
            "/v1/requests",
            &json!({ "connection": "pg-prod", "lifts": ["unmask:github_token"], "duration": "15m", "reason": "INC-9: rotate key" }),
        )
        .await
        .unwrap();
    assert_eq!(dev_secret.status, 403, "{}", dev_secret.body);
    let flagged = audit(&w.admin, "action=grant.break_glass").await;
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0]["actor"], "oncall");
    assert_eq!(flagged[0]["details"]["break_glass"], true);
    assert_eq!(
        flagged[0]["details"]["secrets_unmasked"],
        json!(["unmask:github_token"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_connect_and_deny_by_default() {
    let w = world().await;
    let nobody = user(&w.gw, &w.admin, "nobody", &[]).await;

    // Admins may explain anyone; others only themselves.
    let about_alice = expect(
        &w.admin
            .get("/v1/policy/explain?identity=alice&connection=pg-prod")
            .await
            .unwrap(),
        200,
    );
    let text = about_alice["text"].as_str().unwrap();
    assert!(text.starts_with("alice on pg-prod at "), "{text}");
    assert!(text.contains("shields in force:"), "{text}");
    assert!(
        text.contains("lift through role dev: up to 1h, 1 approval from lead"),
        "{text}"
    );
    assert!(text.contains("write:"), "{text}");
    let staging = expect(
        &w.admin
            .get("/v1/policy/explain?identity=alice&connection=pg-staging")
            .await
            .unwrap(),
        200,
    );
    assert!(
        staging["text"]
            .as_str()
            .unwrap()
            .contains("may connect: no")
    );
    assert_eq!(
        w.alice
            .get("/v1/policy/explain?identity=bob&connection=pg-prod")
            .await
            .unwrap()
            .status,
        403
    );
    assert_eq!(
        w.admin
            .get("/v1/policy/explain?identity=ghost&connection=pg-prod")
            .await
            .unwrap()
            .status,
        404
    );

    // A session secret for psql, never on the command line.
    let connect = expect(
        &w.alice
            .post("/v1/connect", &json!({ "connection": "pg-prod" }))
            .await
            .unwrap(),
        200,
    );
    let secret = connect["secret"].as_str().unwrap();
    assert!(secret.starts_with("pss_"), "{secret}");
    let command = connect["psql_command"].as_str().unwrap();
    assert!(!command.contains(secret));
    assert!(
        command.contains(&format!(
            "user=alice dbname=pg-prod sslmode=verify-full sslrootcert={}",
            w.gw.ca_file().display()
        )),
        "{command}"
    );
    assert!(
        connect["uri"]
            .as_str()
            .unwrap()
            .starts_with("postgresql://alice@")
    );
    let on_api =
        w.gw.client(Some(secret))
            .unwrap()
            .get("/v1/whoami")
            .await
            .unwrap();
    assert_eq!(on_api.status, 401, "session secrets do not open the API");

    // Deny by default, each refusal audited.
    for (client, connection, code) in [
        (&nobody, "pg-prod", "no_role"),
        (&w.alice, "pg-nope", "unknown_connection"),
        (&w.alice, "pg-staging", "not_covered"),
    ] {
        let refused = client
            .post("/v1/connect", &json!({ "connection": connection }))
            .await
            .unwrap();
        assert_eq!(expect(&refused, 403)["error"]["code"], "forbidden");
        let events = audit(
            &w.admin,
            &format!("action=session.refused&target={connection}"),
        )
        .await;
        assert!(
            events.iter().any(|e| e["details"]["reason"] == code),
            "{code}: {events:?}"
        );
    }
    let connections = expect(&nobody.get("/v1/connections").await.unwrap(), 200);
    assert!(
        connections
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["may_connect"] == false)
    );
}
