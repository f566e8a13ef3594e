//! The web console end to end: the real `periscope up` over a seeded
//! PostgreSQL (the proxy tests' world: alice is a developer, bob a lead who
//! approves), driven by headless Chromium through chromedriver for the
//! flows a person runs, and by plain HTTPS for the refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::console::Driver;
use crate::support::proxy::{World, world_with};
use crate::support::sso::{Browser as Http, crypto};

/// The console's base URL.
pub(crate) fn base(w: &World) -> String {
    w.gw.api_url().to_string()
}

/// A value between `marker="` and the next quote in a page.
fn attribute_after(body: &str, marker: &str) -> String {
    let start = body
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {body}"))
        + marker.len();
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_string()
}

/// Signs a plain HTTPS client in with `token` through the sign-in form.
pub(crate) async fn http_sign_in(w: &World, token: &str) -> Http {
    crypto();
    let gw = base(w);
    let mut http = Http::new(&w.ca_file());
    let form = http.get(&format!("{gw}/signin")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let check = attribute_after(&form.body, "name=\"signin_check\" value=\"");
    let done = http
        .post_form(
            &format!("{gw}/signin"),
            &[("signin_check", &check), ("token", token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/"));
    assert!(http.session().is_some(), "a session cookie");
    http
}

/// The CSRF token a signed-in page embeds.
pub(crate) async fn csrf(http: &mut Http, w: &World) -> String {
    let home = http.get(&format!("{}/", base(w))).await;
    assert_eq!(home.status, 200, "{}", home.body);
    attribute_after(&home.body, "name=\"csrf_token\" value=\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_a_request_is_approved_elsewhere_counts_down_and_expires_and_the_auditor_finds_it()
 {
    let w = world_with(5, "").await;
    let gw = base(&w);
    let driver = Driver::start().await;

    // alice signs in with her token and asks for a grant; the reason carries
    // markup that must stay text everywhere.
    let alice = driver.browser().await;
    alice.sign_in(&gw, &w.alice.token).await;
    assert_eq!(alice.wait_text("#whoami").await, "alice");
    assert!(
        alice.wait_text("#connections").await.contains("pg-prod"),
        "her connections"
    );
    alice
        .goto(&format!("{gw}/request?connection=pg-prod"))
        .await;
    let rules = alice.wait_text(".approval-rules").await;
    assert!(rules.contains("from a member of lead"), "{rules}");
    alice.fill("#lifts-other", "unmask:email").await;
    let reason = "<script>alert(1)</script> INC-7 refund stuck";
    alice.fill("#reason", reason).await;
    alice.screenshot("console-request").await;
    alice.click("#submit-request").await;
    let flash = alice.wait_text("#flash").await;
    assert!(
        flash.contains("waits for 1 approval(s) from lead"),
        "{flash}"
    );
    let request_id = flash.split_whitespace().nth(1).unwrap().to_string();
    assert!(request_id.starts_with("req_"), "{flash}");
    let grant_id = request_id.replacen("req_", "gr_", 1);
    assert!(
        alice
            .wait_text("#no-grants")
            .await
            .contains("No active grant")
    );

    // bob approves in his own browser; the inbox shows the reason as text.
    let bob = driver.browser().await;
    bob.sign_in(&gw, &w.bob.token).await;
    assert_eq!(bob.wait_text("#whoami").await, "bob");
    bob.goto(&format!("{gw}/approvals")).await;
    let row = format!("article[data-request='{request_id}']");
    let shown_reason = bob.wait_text(&format!("{row} td.reason")).await;
    assert_eq!(shown_reason, reason, "the reason is shown as text");
    bob.screenshot("console-approvals").await;
    bob.fill(&format!("{row} input[name=comment]"), "ok for INC-7")
        .await;
    bob.click(&format!("{row} button[data-action=approve]"))
        .await;
    let outcome = bob.wait_text("#flash").await;
    assert!(outcome.contains(&grant_id), "{outcome}");
    bob.until_gone(&row).await;

    // alice's page, never reloaded, shows the grant counting down.
    let cell = format!("#grants tr[data-grant='{grant_id}'] time.countdown");
    let first = alice.until(&cell, |t| t.ends_with("left")).await;
    assert!(
        first.starts_with("29m") || first.starts_with("30m"),
        "{first}"
    );
    let later = alice.until(&cell, |t| t != first).await;
    assert!(later.ends_with("left"), "it counts: {first} then {later}");
    alice.screenshot("console-home").await;

    // The approval, with bob's comment, is in the trail.
    let approved = w
        .audit_until("request.approve", |e| {
            e.iter()
                .find(|e| e["target"] == request_id.as_str())
                .cloned()
        })
        .await;
    assert_eq!(approved["actor"], "bob");
    assert_eq!(approved["details"]["comment"], "ok for INC-7");

    // The grant ends; alice's page shows it without a reload.
    w.advance_clock("31m").await;
    alice.until_gone(&cell).await;
    alice
        .until(&format!("#requests tr[data-request='{request_id}']"), |t| {
            t.contains("approved")
        })
        .await;
    alice.wait_text("#no-grants").await;

    // The administrator searches the trail and verifies the chain.
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    let auditor = driver.browser().await;
    auditor.sign_in(&gw, &admin_token).await;
    auditor.wait_text("#whoami").await;
    auditor
        .goto(&format!("{gw}/audit?actor=alice&text=INC-7"))
        .await;
    let events = auditor.wait_text("#events").await;
    assert!(events.contains("request.create"), "{events}");
    assert!(events.contains(&request_id), "{events}");
    // The request's id (without its prefix) finds its whole story.
    let hex = request_id.trim_start_matches("req_");
    auditor.goto(&format!("{gw}/audit?text={hex}")).await;
    let all = auditor.wait_text("#events").await;
    for action in ["request.create", "request.approve", "grant.start"] {
        assert!(all.contains(action), "{action} in {all}");
    }
    auditor.click("#verify-now").await;
    let status = auditor
        .until("#verify-status", |t| t.contains("intact"))
        .await;
    assert!(status.contains("by admin"), "{status}");
    auditor.screenshot("console-audit").await;
    let seq = auditor
        .client
        .find(fantoccini::Locator::Css("#events tbody tr"))
        .await
        .unwrap()
        .attr("data-seq")
        .await
        .unwrap()
        .unwrap();
    auditor.goto(&format!("{gw}/audit/events/{seq}")).await;
    let detail = auditor.wait_text("#event").await;
    assert!(detail.contains(hex), "{detail}");
    auditor.wait_text("#details").await;

    // The reason never ran as a script: no alert is open on either page.
    assert!(alice.client.get_alert_text().await.is_err());
    assert!(bob.client.get_alert_text().await.is_err());

    // Sign-out ends the session: `/` sends to the sign-in page again.
    alice.goto(&format!("{gw}/")).await;
    alice.click("#signout").await;
    alice
        .until("main", |t| t.contains("You are signed out"))
        .await;
    assert_eq!(alice.path().await, "/signin");
    alice.goto(&format!("{gw}/")).await;
    assert_eq!(alice.path().await, "/signin");
    let ended = w.audit("auth.web_session.end").await;
    assert!(
        ended
            .iter()
            .any(|e| e["actor"] == "alice" && e["details"]["reason"] == "sign_out"),
        "{ended:#?}"
    );
    for b in [alice, bob, auditor] {
        b.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_a_bad_token_is_refused_and_the_page_says_so() {
    let w = world_with(1, "").await;
    let gw = base(&w);
    let driver = Driver::start().await;
    let b = driver.browser().await;
    b.sign_in(&gw, "psc_nope_wrongwrongwrong").await;
    let notice = b.wait_text(".notice").await;
    assert!(notice.contains("Sign-in refused"), "{notice}");
    assert_eq!(b.path().await, "/signin");
    b.goto(&format!("{gw}/")).await;
    assert_eq!(b.path().await, "/signin", "still signed out");
    b.close().await;
    // The failed sign-in is audited.
    w.audit_until("auth.login_failed", |e| (!e.is_empty()).then_some(()))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_pages_need_a_session_and_carry_the_security_headers() {
    let w = world_with(1, "").await;
    let gw = base(&w);
    crypto();
    let mut anon = Http::new(&w.ca_file());
    for path in ["/", "/request", "/approvals", "/audit"] {
        let page = anon.get(&format!("{gw}{path}")).await;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert_eq!(page.location.as_deref(), Some("/signin"), "{path}");
    }

    let signin = anon.get(&format!("{gw}/signin")).await;
    let csp = signin.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(signin.headers["x-frame-options"], "DENY");

    // htmx is served from the binary, byte for byte the vendored file.
    let htmx = anon.get(&format!("{gw}/static/htmx.min.js")).await;
    assert_eq!(htmx.status, 200);
    assert!(
        htmx.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let vendored = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../periscope-gateway/assets/htmx-2.0.11.min.js"
    ))
    .unwrap();
    assert!(
        htmx.body == vendored,
        "the served htmx is the vendored file"
    );

    // The session cookie is HttpOnly, Secure, SameSite, host-only.
    let mut alice = Http::new(&w.ca_file());
    let form = alice.get(&format!("{gw}/signin")).await;
    let check = attribute_after(&form.body, "name=\"signin_check\" value=\"");
    let done = alice
        .post_form(
            &format!("{gw}/signin"),
            &[("signin_check", &check), ("token", &w.alice.token)],
        )
        .await;
    let cookie = done
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-periscope_session="))
        .expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let started = w.audit("auth.web_session.start").await;
    assert_eq!(started.last().unwrap()["details"]["method"], "token");

    // The audit pages are for administrators, as the API's.
    let audit = alice.get(&format!("{gw}/audit")).await;
    assert_eq!(audit.status, 403, "{}", audit.body);
    assert!(
        audit.body.contains("not an administrator"),
        "{}",
        audit.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_refuses_forged_posts_bad_tokens_and_self_approval() {
    let w = world_with(1, "").await;
    let gw = base(&w);
    crypto();

    // A sign-in form posted without this browser's double-submit cookie
    // (a cross-site form) is refused, even with a good token.
    let mut stranger = Http::new(&w.ca_file());
    let forged = stranger
        .post_form(
            &format!("{gw}/signin"),
            &[("signin_check", "forged"), ("token", &w.alice.token)],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(stranger.session().is_none());

    // A wrong token is refused, audited, and starts no session.
    let form = stranger.get(&format!("{gw}/signin")).await;
    let check = attribute_after(&form.body, "name=\"signin_check\" value=\"");
    let bad = stranger
        .post_form(
            &format!("{gw}/signin"),
            &[("signin_check", &check), ("token", "psc_x_notatoken")],
        )
        .await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    assert!(bad.body.contains("Sign-in refused"), "{}", bad.body);
    assert!(stranger.session().is_none());
    // Audited (written by the group-commit writer, so polled).
    w.audit_until("auth.login_failed", |e| (!e.is_empty()).then_some(()))
        .await;

    // A state change without the CSRF token changes nothing.
    let mut alice = http_sign_in(&w, &w.alice.token).await;
    let request_form = [
        ("connection", "pg-prod"),
        ("lifts_other", "unmask:email"),
        ("duration", "30m"),
        ("reason", "INC-9 checking"),
    ];
    let no_csrf = alice
        .post_form(&format!("{gw}/request"), &request_form)
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert!(no_csrf.body.contains("CSRF"), "{}", no_csrf.body);
    let wrong = alice
        .post_form(
            &format!("{gw}/request"),
            &[request_form.as_slice(), &[("csrf_token", "wrong")]].concat(),
        )
        .await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    assert!(
        w.audit("request.create").await.is_empty(),
        "nothing created"
    );

    // With it, the request goes through the grant workflow; a lift outside
    // alice's roles is refused with the API's message.
    let token = csrf(&mut alice, &w).await;
    let outside = alice
        .post_form(
            &format!("{gw}/request"),
            &[
                ("csrf_token", token.as_str()),
                ("connection", "pg-prod"),
                ("lifts_other", "unmask:secret"),
                ("duration", "30m"),
                ("reason", "INC-9 checking refunds"),
            ],
        )
        .await;
    assert_eq!(outside.status, 403, "{}", outside.body);
    assert!(outside.body.contains("id=\"refusal\""), "{}", outside.body);

    // bob (a lead) asks through his own role, whose approvers are leads:
    // he cannot approve it himself in the console, as in the API.
    let mut bob = http_sign_in(&w, &w.bob.token).await;
    let bob_csrf = csrf(&mut bob, &w).await;
    let asked = bob
        .post_form(
            &format!("{gw}/request"),
            &[
                ("csrf_token", bob_csrf.as_str()),
                ("connection", "pg-prod"),
                ("lifts_other", "unmask:email"),
                ("duration", "30m"),
                ("reason", "INC-10 my own request"),
            ],
        )
        .await;
    assert_eq!(asked.status, 303, "{}", asked.body);
    let id = asked
        .location
        .as_deref()
        .unwrap()
        .trim_start_matches("/?created=")
        .to_string();
    let inbox = bob.get(&format!("{gw}/approvals")).await;
    assert!(inbox.body.contains("id=\"mine\""), "{}", inbox.body);
    assert!(
        !inbox.body.contains(&format!("/approvals/{id}/approve")),
        "no approve button on his own request"
    );
    let own = bob
        .post_form(
            &format!("{gw}/approvals/{id}/approve"),
            &[("csrf_token", bob_csrf.as_str())],
        )
        .await;
    assert_eq!(own.status, 403, "{}", own.body);
    assert!(own.body.contains("your own request"), "{}", own.body);
    assert!(w.audit("request.approve").await.is_empty(), "not approved");

    // Signing out needs the CSRF token too, then ends the session.
    let kept = alice.clone();
    let no_token = alice.post_form(&format!("{gw}/signout"), &[]).await;
    assert_eq!(no_token.status, 403, "{}", no_token.body);
    let out = alice
        .post_form(&format!("{gw}/signout"), &[("csrf_token", &token)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/signin?signed_out=1"));
    let mut kept = kept;
    let after = kept.get(&format!("{gw}/")).await;
    assert_eq!(after.status, 303, "the old cookie no longer works");
    assert_eq!(after.location.as_deref(), Some("/signin?ended=sign_out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approver_revokes_a_grant_and_the_administrator_sees_the_session_end() {
    let w = world_with(1, "").await;
    let gw = base(&w);
    let grant = w.grant_on("pg-dev", &["unmask:email"], "30m").await;
    // alice works under the grant.
    let session = w.client_as(&w.alice).await;
    session.client.simple_query("SELECT 1").await.unwrap();

    // The administrator sees her session and the grant it relies on.
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    let mut admin = http_sign_in(&w, &admin_token).await;
    let board = admin.get(&format!("{gw}/grants")).await;
    assert_eq!(board.status, 200, "{}", board.body);
    let row = board
        .body
        .split("<tr data-session=")
        .nth(1)
        .unwrap_or_else(|| panic!("a live session: {}", board.body));
    assert!(row.contains("alice") && row.contains(&grant), "{row}");

    // bob, an approver, sees the grant but not the sessions.
    let mut bob = http_sign_in(&w, &w.bob.token).await;
    let board = bob.get(&format!("{gw}/grants")).await;
    assert!(
        board.body.contains(&format!("data-grant=\"{grant}\"")),
        "{}",
        board.body
    );
    assert!(
        !board.body.contains("data-session="),
        "live sessions are for administrators"
    );

    // Revoking needs the CSRF token, goes through the grant workflow, and
    // ends the session that relied on the grant.
    let no_csrf = bob
        .post_form(&format!("{gw}/grants/{grant}/revoke"), &[("reason", "x")])
        .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    let token = csrf(&mut bob, &w).await;
    let revoked = bob
        .post_form(
            &format!("{gw}/grants/{grant}/revoke"),
            &[("csrf_token", token.as_str()), ("reason", "INC-7 closed")],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let events = w.audit("grant.revoke").await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["actor"], "bob");
    assert_eq!(events[0]["details"]["reason"], "INC-7 closed");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), session.ended)
        .await
        .expect("the session ends when its grant is revoked");
    assert!(ended.is_ok());
    let after = bob.get(&format!("{gw}/grants")).await;
    assert!(!after.body.contains(&format!("data-grant=\"{grant}\"")));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let board = admin.get(&format!("{gw}/grants")).await;
        if board.body.contains("id=\"no-sessions\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ended session is still listed: {}",
            board.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
