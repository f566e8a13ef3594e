//! Live sessions in the console: an administrator ends one session from the
//! browser (its client is told why, the trail has it, a non-administrator
//! cannot), and a session's own page shows its timeline from the audit log
//! and plays its recording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fantoccini::Locator;
use serde_json::json;

use crate::console::{base, csrf, http_sign_in};
use crate::support::console::Driver;
use crate::support::proxy::{assert_no_raw, expect, world_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_ends_a_live_session_in_the_browser_and_its_timeline_and_recording_show() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("orders.log");
    let email = "dana.martin@example.com";
    std::fs::write(
        &log,
        format!("order 1 by {email}\n\u{1b}[31mpaid\u{1b}[0m <b>late</b>\norder 2 shipped\n"),
    )
    .unwrap();
    let extra = format!(
        r#"
[[role]]
name = "ops"
connections = ["files"]

[[connection]]
name = "files"
kind = "exec"
command = ["/bin/cat"]
allow = ["{}"]
"#,
        log.display()
    );
    let w = world_with(3, &extra).await;
    let gw = base(&w);
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();

    // alice works in a session.
    let session = w.client().await;
    session
        .simple_query("SELECT id, email FROM customers ORDER BY id")
        .await
        .unwrap();
    assert!(
        session
            .simple_query("UPDATE customers SET email = 'x@example.com' WHERE id = 1")
            .await
            .is_err(),
        "refused"
    );
    let listed = expect(&w.admin.get("/v1/sessions").await.unwrap(), 200);
    let id = listed[0]["id"].as_str().unwrap().to_string();

    // Neither bob in the console nor bob's token may end it.
    let mut bob = http_sign_in(&w, &w.bob.token).await;
    let bob_csrf = csrf(&mut bob, &w).await;
    let refused = bob
        .post_form(
            &format!("{gw}/sessions/{id}/end"),
            &[("csrf_token", bob_csrf.as_str()), ("reason", "no")],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let refused = w
        .bob
        .api
        .post(&format!("/v1/admin/sessions/{id}/end"), &json!({}))
        .await
        .unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);
    let unknown = w
        .admin
        .post("/v1/admin/sessions/ses_nope/end", &json!({}))
        .await
        .unwrap();
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(w.audit("session.ended_by_admin").await.is_empty());

    // The administrator ends it from the grants page, with a reason.
    let driver = Driver::start().await;
    let admin = driver.browser().await;
    admin.sign_in(&gw, &admin_token).await;
    admin.wait_text("#whoami").await;
    admin.goto(&format!("{gw}/grants")).await;
    let row = format!("#sessions tr[data-session='{id}']");
    assert!(admin.wait_text(&row).await.contains("alice"));
    admin.screenshot("console-sessions").await;
    admin
        .fill(&format!("{row} input[name=reason]"), "INC-8 runaway query")
        .await;
    admin
        .click(&format!("{row} button[data-action=end-session]"))
        .await;
    admin.until_gone(&row).await;

    // alice's client is told who ended it and why (a FATAL while idle).
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), session.ended)
        .await
        .expect("the session ends within 10 s")
        .expect("the connection task reports");
    let error = outcome.expect_err("the session ends with an error");
    let text = error
        .as_db_error()
        .unwrap_or_else(|| panic!("a FATAL from the gateway, got {error:?}"))
        .message()
        .to_string();
    assert!(
        text.contains("ended by administrator admin") && text.contains("INC-8 runaway query"),
        "{text}"
    );
    let ended = w
        .audit_until("session.ended_by_admin", |e| e.first().cloned())
        .await;
    assert_eq!(ended["actor"], "admin");
    assert_eq!(ended["target"], id.as_str());
    assert_eq!(ended["details"]["identity"], "alice");
    assert_eq!(ended["details"]["reason"], "INC-8 runaway query");
    w.audit_until("session.end", |e| {
        e.iter()
            .find(|e| e["details"]["session"] == id.as_str())
            .cloned()
    })
    .await;

    // Its page: the timeline from the audit log, statements and refusal.
    admin.goto(&format!("{gw}/sessions/{id}")).await;
    let state = admin.until("#session-state", |t| t.contains("ended")).await;
    assert!(
        state.contains("ended by administrator admin: INC-8 runaway query"),
        "{state}"
    );
    let timeline = admin.wait_text("#timeline").await;
    assert!(timeline.contains("session.start"), "{timeline}");
    assert!(timeline.contains("FROM customers"), "{timeline}");
    assert!(timeline.contains("email 3"), "masked counts: {timeline}");
    assert!(timeline.contains("shield write"), "{timeline}");
    assert!(timeline.contains("session.ended_by_admin"), "{timeline}");
    assert!(timeline.contains("session.end"), "{timeline}");
    admin.screenshot("console-session").await;
    // Reached from an audit event that carries the session too.
    let seq = ended["seq"].as_u64().unwrap();
    admin.goto(&format!("{gw}/audit/events/{seq}")).await;
    admin.click("#session-link").await;
    assert_eq!(admin.path().await, format!("/sessions/{id}"));
    // And from a row of the audit search.
    admin
        .goto(&format!("{gw}/audit?action=session.ended_by_admin"))
        .await;
    admin.click("#events a.session").await;
    assert_eq!(admin.path().await, format!("/sessions/{id}"));

    // bob may not look at alice's session; alice may.
    let hidden = bob.get(&format!("{gw}/sessions/{id}")).await;
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    let mut alice_http = http_sign_in(&w, &w.alice.token).await;
    let own = alice_http.get(&format!("{gw}/sessions/{id}")).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(!own.body.contains("end-session"), "no end button for her");

    // An exec run's recording plays on its session's page, masked, as text.
    let patched = w
        .admin
        .patch("/v1/admin/users/alice", &json!({ "roles": ["dev", "ops"] }))
        .await
        .unwrap();
    expect(&patched, 200);
    let ran = w
        .alice
        .api
        .post(
            "/v1/exec",
            &json!({ "connection": "files", "args": [log.display().to_string()] }),
        )
        .await
        .unwrap();
    assert_eq!(ran.status, 200, "{}", ran.body);
    let start: serde_json::Value = serde_json::from_str(ran.body.lines().next().unwrap()).unwrap();
    let exec_id = start["session"].as_str().unwrap().to_string();
    w.audit_until("recording.sealed", |e| {
        e.iter()
            .find(|e| e["details"]["session"] == exec_id.as_str())
            .cloned()
    })
    .await;
    let alice = driver.browser().await;
    alice.sign_in(&gw, &w.alice.token).await;
    alice.wait_text("#whoami").await;
    alice.goto(&format!("{gw}/sessions/{exec_id}")).await;
    let played = alice.wait_text("#playback").await;
    assert!(played.contains("order 1 by [email]"), "{played}");
    assert!(
        played.contains("paid <b>late</b>"),
        "escaped, escapes dropped: {played}"
    );
    assert_no_raw(&alice.client.source().await.unwrap(), &[email.to_string()]);
    let frames = alice
        .client
        .find_all(Locator::Css("#playback .frame"))
        .await
        .unwrap()
        .len();
    assert!(frames >= 1);
    // console.js enables the controls once it has set the player up.
    alice.wait_text("#player[data-ready]").await;
    alice.click("#step").await;
    let position = alice.until("#position", |t| t.starts_with("1 /")).await;
    assert_eq!(position, format!("1 / {frames}"));
    alice.click("#show-all").await;
    alice
        .until("#position", |t| t == format!("{frames} / {frames}"))
        .await;
    alice.screenshot("console-session-recording").await;
    for b in [admin, alice] {
        b.close().await;
    }
}

/// `periscope ARGS` against the world's gateway as the holder of `token`.
async fn periscope(w: &crate::support::proxy::World, token: &str, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_periscope"));
    cmd.args(args)
        .env("PERISCOPE_URL", w.gw.api_url())
        .env("PERISCOPE_TOKEN", token)
        .env("PERISCOPE_CA_FILE", w.ca_file())
        .env("PERISCOPE_CONFIG_DIR", w.gw.data_dir().join("cli"))
        .env_remove("XDG_CONFIG_HOME");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("periscope runs"))
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_ends_one_session_and_a_non_administrator_cannot() {
    let w = world_with(1, "").await;
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    let kept = w.client().await;
    let ended = w.client().await;
    ended.simple_query("SELECT 1").await.unwrap();
    let listed = expect(&w.admin.get("/v1/sessions").await.unwrap(), 200);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let id = listed[1]["id"].as_str().unwrap().to_string();

    let (ok, text) = periscope(&w, &w.bob.token, &["admin", "sessions", "end", &id]).await;
    assert!(!ok, "{text}");
    assert!(text.contains("not an administrator"), "{text}");

    let (ok, text) = periscope(
        &w,
        &admin_token,
        &["admin", "sessions", "end", &id, "--reason", "INC-9 cleanup"],
    )
    .await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("Ended session {id} of alice")),
        "{text}"
    );
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), ended.ended)
        .await
        .expect("the session ends within 10 s")
        .expect("the connection task reports");
    let error = outcome.expect_err("ended with an error");
    assert!(
        error
            .as_db_error()
            .is_some_and(|e| e.message().contains("INC-9 cleanup")),
        "{error:?}"
    );
    // Only that one: the other session still answers.
    kept.simple_query("SELECT 1").await.unwrap();
    let (ok, text) = periscope(&w, &admin_token, &["admin", "sessions"]).await;
    assert!(ok, "{text}");
    assert!(!text.contains(&id), "{text}");
}
