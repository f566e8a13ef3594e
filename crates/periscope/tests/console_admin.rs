//! Administration in the console, in a real browser: identities added,
//! their roles changed, disabled; a token created (shown once, working),
//! revoked (refused at once); the configuration read-only without a secret;
//! reload. A non-administrator gets none of it. Each change goes through
//! the admin API's own handler, so the trail has it as from the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::console::{base, csrf, http_sign_in};
use crate::support::console::Driver;
use crate::support::proxy::{UPSTREAM_PASSWORD, expect, world_with};

/// A value a program's environment holds: the page must never show it.
const ENV_SECRET: &str = "sk_live_console_must_hide_this";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_manages_identities_tokens_and_configuration_in_the_browser() {
    let extra = format!(
        r#"
[[connection]]
name = "tools"
kind = "exec"
command = ["/bin/echo"]
allow = ["*"]
env = {{ API_KEY = "{ENV_SECRET}" }}
"#
    );
    let w = world_with(3, &extra).await;
    let gw = base(&w);
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();

    // bob is not an administrator: refused, page and form alike.
    let mut bob_http = http_sign_in(&w, &w.bob.token).await;
    let refused = bob_http.get(&format!("{gw}/admin")).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let bob_csrf = csrf(&mut bob_http, &w).await;
    let forged = bob_http
        .post_form(
            &format!("{gw}/admin/identities"),
            &[
                ("csrf_token", &bob_csrf),
                ("name", "mallory"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let users = expect(&w.admin.get("/v1/admin/users").await.unwrap(), 200);
    assert!(!users.to_string().contains("mallory"), "{users}");

    let driver = Driver::start().await;
    let admin = driver.browser().await;
    admin.sign_in(&gw, &admin_token).await;
    // Signed in (the form's redirect home has landed) before going on: a
    // navigation started meanwhile is replaced by that redirect.
    assert_eq!(admin.wait_text("#whoami").await, "admin");
    admin.goto(&format!("{gw}/admin")).await;
    admin.wait_text("tr[data-identity=alice]").await;

    // The configuration: read-only, the env value hidden, no secret.
    let config = admin.wait_text("#config-text").await;
    assert!(
        config.contains("pg-prod") && config.contains("[hidden]"),
        "{config}"
    );
    assert!(!config.contains(ENV_SECRET), "{config}");
    assert!(!config.contains(UPSTREAM_PASSWORD), "{config}");
    admin.screenshot("console-admin").await;

    // Add carol as a developer.
    admin.fill("#new-name", "carol").await;
    admin
        .click("#add-identity input[name=role][value=dev]")
        .await;
    admin.click("#add").await;
    admin
        .until("#admin-done", |t| t.contains("carol added"))
        .await;
    let carol = expect(&w.admin.get("/v1/admin/users").await.unwrap(), 200);
    let carol = carol
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "carol")
        .unwrap_or_else(|| panic!("carol: {carol}"))
        .clone();
    assert_eq!(carol["roles"], json!(["dev"]));

    // A role that does not exist: the API's refusal, nothing changed.
    admin
        .fill("tr[data-identity=carol] input[name=roles]", "dev, wizard")
        .await;
    admin
        .click("tr[data-identity=carol] button[value=roles]")
        .await;
    let page = admin.wait_text("main").await;
    assert!(page.contains("unknown role `wizard`"), "{page}");
    admin.goto(&format!("{gw}/admin")).await;
    admin
        .fill("tr[data-identity=carol] input[name=roles]", "dev, lead")
        .await;
    admin
        .click("tr[data-identity=carol] button[value=roles]")
        .await;
    admin
        .until("#admin-done", |t| t.contains("Roles of carol"))
        .await;

    // A token for carol: shown once, it works; revoked, it does not.
    admin.goto(&format!("{gw}/admin/identities/carol")).await;
    admin.fill("#description", "carol's laptop").await;
    admin.fill("#expires_in", "30d").await;
    admin.click("#create").await;
    let token = admin.wait_text("#new-token").await;
    assert!(token.starts_with("psc_"), "{token}");
    let as_carol = w.alice.api.with_token(Some(token.trim()));
    let me = expect(&as_carol.get("/v1/whoami").await.unwrap(), 200);
    assert_eq!(me["identity"], "carol");
    assert_eq!(me["roles"], json!(["dev", "lead"]));
    admin.goto(&format!("{gw}/admin/identities/carol")).await;
    let row = admin.wait_text("tr[data-token]").await;
    assert!(row.contains("carol's laptop"), "{row}");
    assert!(!row.contains(token.trim()), "the secret is shown once only");
    admin.click("tr[data-token] button").await;
    admin.until("#admin-done", |t| t.contains("revoked")).await;
    assert_eq!(as_carol.get("/v1/whoami").await.unwrap().status, 401);

    // Disable carol, then reload the configuration.
    admin.goto(&format!("{gw}/admin")).await;
    admin
        .click("tr[data-identity=carol] button[value=disable]")
        .await;
    admin.until("#admin-done", |t| t.contains("disabled")).await;
    let state = admin.wait_text("tr[data-identity=carol] td.state").await;
    assert_eq!(state, "disabled");
    admin.click("#reload").await;
    admin
        .until("#admin-done", |t| t.starts_with("Reloaded"))
        .await;

    // All of it in the trail, by the administrator, as from the API.
    for action in [
        "admin.user_add",
        "admin.user_roles",
        "token.create",
        "token.revoke",
        "admin.user_disable",
        "config.reload",
    ] {
        let events = w.audit(action).await;
        assert!(
            events.iter().any(|e| e["actor"] == "admin"),
            "{action} by admin: {events:?}"
        );
    }
    admin.close().await;
}
