//! Single sign-on end to end, with real parts: the dev OpenID Connect
//! provider on loopback (and PyPI's `oidc-provider-mock` for
//! interoperability), the real `periscope up` and `periscope login --sso`,
//! a seeded PostgreSQL behind the gateway and the real `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::proxy::{connect, expect};
use crate::support::sso::{
    Browser, CliLogin, OidcMock, SsoWorld, as_person, audit, identity_exists, refusal_reasons,
    saved_token, sso_config, sso_world, url_in, web_sign_in, world_for,
};
use periscope_testkit::idp::{Fault, PreviousKey, SigningAlg, User as IdpUser};
use serde_json::json;

/// What the server said, for an error that carries a server message.
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// psql as `user` with `password` on pg-prod over verified TLS.
async fn psql(
    w: &SsoWorld,
    user: &str,
    password: &str,
    sql: &str,
) -> crate::support::proxy::Output {
    w.world
        .psql_as(&w.world.conninfo(user, "pg-prod"), password, sql)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_sign_in_creates_the_identity_with_roles_from_groups_and_a_browser_session() {
    let w = sso_world().await;
    let gw = w.world.gw.api_url().to_string();
    let mut browser = Browser::new(&w.world.ca_file());

    let landed = web_sign_in(&mut browser, &gw, "carol").await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    assert_eq!(landed.location.as_deref(), Some("/sso/session"));
    let cookie = landed
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-periscope_session="))
        .expect("a session cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(browser.session().is_some());

    // The cookie is the caller on the API; the identity was created just in
    // time with the role its group maps to.
    let me = browser
        .api("GET", &format!("{gw}/v1/whoami"), None, None)
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["identity"], "carol");
    assert_eq!(me["roles"], json!(["dev"]));

    // A state change with the cookie alone is refused; with the session's
    // CSRF token it goes through.
    let body = json!({ "connection": "pg-prod" });
    let refused = browser
        .api("POST", &format!("{gw}/v1/connect"), Some(&body), None)
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("CSRF"), "{}", refused.body);
    let csrf = browser.csrf(&gw).await;
    let connect = browser
        .api(
            "POST",
            &format!("{gw}/v1/connect"),
            Some(&body),
            Some(&csrf),
        )
        .await;
    assert_eq!(connect.status, 200, "{}", connect.body);
    let secret: serde_json::Value = serde_json::from_str(&connect.body).unwrap();
    let secret = secret["secret"].as_str().unwrap();

    // The SSO identity's session secret opens PostgreSQL like a local one's.
    let out = psql(&w, "carol", secret, "SELECT current_user IS NOT NULL").await;
    assert!(out.success, "{}", out.all());

    let created = audit(&w.world, "auth.sso.identity_create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["target"], "carol");
    let logins = audit(&w.world, "auth.sso.login").await;
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["details"]["via"], "web");
    assert_eq!(logins[0]["details"]["groups"], json!(["eng"]));
    assert_eq!(logins[0]["details"]["roles"], json!(["dev"]));
    assert_eq!(audit(&w.world, "auth.web_session.start").await.len(), 1);

    // Sign-out needs the CSRF token, ends the session and clears the cookie.
    let old = browser.clone();
    let no_token = browser
        .post_form(&format!("{gw}/sso/logout"), &[("csrf_token", "wrong")])
        .await;
    assert_eq!(no_token.status, 403);
    let out = browser
        .post_form(&format!("{gw}/sso/logout"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(browser.session().is_none(), "the cookie is cleared");
    let mut old = old;
    let after = old.api("GET", &format!("{gw}/v1/whoami"), None, None).await;
    assert_eq!(
        after.status, 401,
        "an ended session is refused: {}",
        after.body
    );
    let ended = audit(&w.world, "auth.web_session.end").await;
    assert_eq!(ended.last().unwrap()["details"]["reason"], "sign_out");

    // A session unused for longer than the idle timeout (1 h) ends.
    let mut idle = Browser::new(&w.world.ca_file());
    assert_eq!(web_sign_in(&mut idle, &gw, "carol").await.status, 303);
    w.world.advance_clock("61m").await;
    let stale = idle
        .api("GET", &format!("{gw}/v1/whoami"), None, None)
        .await;
    assert_eq!(stale.status, 401, "{}", stale.body);
    assert!(stale.body.contains("idle"), "{}", stale.body);
    let ended = audit(&w.world, "auth.web_session.end").await;
    assert_eq!(ended.last().unwrap()["details"]["reason"], "idle");

    // Nothing secret reached the audit log.
    let export = w.world.audit_export().await;
    for secret in [
        crate::support::proxy::UPSTREAM_PASSWORD,
        crate::support::sso::CLIENT_SECRET,
        secret,
        old.session().unwrap(),
    ] {
        assert!(!export.contains(secret), "a secret in the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_login_through_the_browser_saves_a_token_that_opens_psql() {
    let w = sso_world().await;
    let gw = w.world.gw.api_url().to_string();
    let mut cli = CliLogin::start(&gw, &w.world.ca_file(), &["--no-browser"]);
    let authorize = url_in(&cli.wait_line("/authorize?"));

    // The person signs in at the provider; the browser goes to the gateway,
    // then to the CLI's loopback address.
    let mut browser = Browser::new(&w.world.ca_file());
    let at_idp = browser.get(&as_person(&authorize, "dave")).await;
    assert_eq!(at_idp.status, 302, "{}", at_idp.body);
    let back = browser.get(at_idp.location.as_deref().unwrap()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    let loopback = back.location.unwrap();
    assert!(loopback.starts_with("http://127.0.0.1:"), "{loopback}");
    let done = browser.get(&loopback).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("Signed in"), "{}", done.body);

    let (ok, stdout, printed, config_dir) = cli.finish();
    assert!(ok, "periscope login --sso failed: {printed:?}");
    assert!(stdout.contains("as dave (roles dev, lead)"), "{stdout}");
    let token = saved_token(config_dir.path());
    assert!(token.starts_with("psc_"));

    // The token is dave's gateway token: the API, and psql as the password.
    let api = w.world.gw.client(Some(&token)).unwrap();
    let me = expect(&api.get("/v1/whoami").await.unwrap(), 200);
    assert_eq!(me["identity"], "dave");
    assert_eq!(me["roles"], json!(["dev", "lead"]));
    let expires = time::OffsetDateTime::parse(
        me["token_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(11) && left <= time::Duration::hours(12),
        "a 12 h token: {left}"
    );
    let out = psql(&w, "dave", &token, "SELECT count(*) FROM customers").await;
    assert!(out.success, "{}", out.all());
    assert_eq!(out.stdout.trim(), "20");

    let logins = audit(&w.world, "auth.sso.login").await;
    assert_eq!(logins.last().unwrap()["details"]["via"], "cli");
    assert!(!w.world.audit_export().await.contains(&token));

    // The one-time code cannot be used again.
    let code = reqwest::Url::parse(&loopback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let again = w
        .world
        .gw
        .client(None)
        .unwrap()
        .post(
            "/v1/sso/cli/token",
            &json!({ "code": code, "code_verifier": "x".repeat(64) }),
        )
        .await
        .unwrap();
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.error_message().contains("unknown_code"),
        "{}",
        again.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_login_with_the_device_grant() {
    let w = sso_world().await;
    let gw = w.world.gw.api_url().to_string();
    let mut cli = CliLogin::start(&gw, &w.world.ca_file(), &["--device"]);
    let page = url_in(&cli.wait_line("enter the code"));
    let user_code = loop {
        let line = cli.wait_line("");
        if !line.trim().is_empty() {
            break line.trim().to_string();
        }
    };
    // The person approves on another device.
    let approve = format!("{page}?user_code={}&user=carol", user_code.replace(' ', ""));
    let approved = reqwest::get(&approve).await.unwrap();
    assert!(approved.status().is_success(), "{}", approved.status());

    let (ok, stdout, printed, config_dir) = cli.finish();
    assert!(ok, "periscope login --sso --device failed: {printed:?}");
    assert!(stdout.contains("as carol (role dev)"), "{stdout}");
    let token = saved_token(config_dir.path());
    let out = psql(&w, "carol", &token, "SELECT count(*) FROM customers").await;
    assert!(out.success, "{}", out.all());
    let logins = audit(&w.world, "auth.sso.login").await;
    assert_eq!(logins.last().unwrap()["details"]["via"], "device");
}

/// Signs `who` in through the CLI flow's HTTP calls (what `periscope login
/// --sso` does) and returns the gateway token.
async fn token_for(w: &SsoWorld, who: &str) -> Result<String, String> {
    let api = w.world.gw.client(None).unwrap();
    // A loopback address nobody listens on: the test reads the redirect.
    let verifier = "v".repeat(64);
    let challenge = periscope_gateway::sso::challenge_of(&verifier);
    let started = api
        .post(
            "/v1/sso/cli/start",
            &json!({ "redirect_uri": "http://127.0.0.1:9/callback", "code_challenge": challenge }),
        )
        .await
        .unwrap();
    if started.status != 200 {
        return Err(started.error_message());
    }
    let authorize = started.json()["authorize_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut browser = Browser::new(&w.world.ca_file());
    let at_idp = browser.get(&as_person(&authorize, who)).await;
    let back = browser.get(at_idp.location.as_deref().unwrap()).await;
    let location = back.location.expect("a redirect to the CLI");
    let url = reqwest::Url::parse(&location).unwrap();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error_description") {
        return Err(error);
    }
    let token = api
        .post(
            "/v1/sso/cli/token",
            &json!({ "code": param("code").unwrap(), "code_verifier": verifier }),
        )
        .await
        .unwrap();
    if token.status != 200 {
        return Err(token.error_message());
    }
    Ok(token.json()["token"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_recomputed_at_every_sign_in_and_lost_roles_end_live_sessions() {
    let w = sso_world().await;
    let token = token_for(&w, "dave").await.unwrap();
    let api = w.world.gw.client(Some(&token)).unwrap();
    assert_eq!(
        expect(&api.get("/v1/whoami").await.unwrap(), 200)["roles"],
        json!(["dev", "lead"])
    );
    // A live session that started under both roles.
    let live = connect(&format!(
        "host=127.0.0.1 port={} user=dave password={token} dbname=pg-dev sslmode=disable",
        w.world.pg_port()
    ))
    .await
    .expect("dave connects");
    live.simple_query("SELECT 1").await.unwrap();

    // The provider removes dave from `leads`: the next sign-in drops the role
    // and ends the session that ran under it.
    w.idp
        .upsert_user(IdpUser::new("dave").with_groups(["eng"]))
        .unwrap();
    let second = token_for(&w, "dave").await.unwrap();
    let api2 = w.world.gw.client(Some(&second)).unwrap();
    assert_eq!(
        expect(&api2.get("/v1/whoami").await.unwrap(), 200)["roles"],
        json!(["dev"])
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), live.ended)
        .await
        .expect("the session ends at once")
        .unwrap();
    let err = db_message(&ended.expect_err("ended with an error"));
    assert!(err.contains("your roles changed"), "{err}");
    // The earlier token is dave's too: it sees his roles as they are now.
    assert_eq!(
        expect(&api.get("/v1/whoami").await.unwrap(), 200)["roles"],
        json!(["dev"])
    );
    let changes = audit(&w.world, "auth.sso.roles").await;
    let last = changes.last().unwrap();
    assert_eq!(last["details"]["before"], json!(["dev", "lead"]));
    assert_eq!(last["details"]["after"], json!(["dev"]));

    // Out of every mapped group: the sign-in is refused and dave keeps no
    // role; his tokens still authenticate but reach nothing.
    w.idp
        .upsert_user(IdpUser::new("dave").with_groups(["marketing"]))
        .unwrap();
    let refused = token_for(&w, "dave").await.unwrap_err();
    assert!(refused.contains("no role"), "{refused}");
    assert_eq!(
        expect(&api.get("/v1/whoami").await.unwrap(), 200)["roles"],
        json!([])
    );
    let out = psql(&w, "dave", &token, "SELECT 1").await;
    assert!(!out.success, "no role, no session: {}", out.all());
    assert!(
        refusal_reasons(&w.world)
            .await
            .contains(&"no_role".to_string())
    );

    // Whatever happens at the provider, the token ends after 12 hours.
    w.world.advance_clock("12h").await;
    let expired = api.get("/v1/whoami").await.unwrap();
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(
        expired.error_message().contains("expired"),
        "{}",
        expired.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_sso_identity_ends_its_sessions_at_once() {
    let w = sso_world().await;
    let gw = w.world.gw.api_url().to_string();
    let token = token_for(&w, "carol").await.unwrap();
    let mut browser = Browser::new(&w.world.ca_file());
    let landed = web_sign_in(&mut browser, &gw, "carol").await;
    assert_eq!(landed.status, 303);
    let live = connect(&format!(
        "host=127.0.0.1 port={} user=carol password={token} dbname=pg-dev sslmode=disable",
        w.world.pg_port()
    ))
    .await
    .expect("carol connects");
    live.simple_query("SELECT 1").await.unwrap();

    let disabled = w
        .world
        .admin
        .patch("/v1/admin/users/carol", &json!({ "disabled": true }))
        .await
        .unwrap();
    expect(&disabled, 200);

    let ended = tokio::time::timeout(Duration::from_secs(5), live.ended)
        .await
        .expect("the live session ends at once")
        .unwrap();
    let err = db_message(&ended.expect_err("ended with an error"));
    assert!(err.contains("was disabled"), "{err}");
    let me = browser
        .api("GET", &format!("{gw}/v1/whoami"), None, None)
        .await;
    assert_eq!(me.status, 401, "the browser session ended: {}", me.body);
    let api = w.world.gw.client(Some(&token)).unwrap();
    assert_eq!(api.get("/v1/whoami").await.unwrap().status, 401);
    let again = token_for(&w, "carol").await.unwrap_err();
    assert!(again.contains("disabled"), "{again}");
    assert!(
        refusal_reasons(&w.world)
            .await
            .contains(&"disabled".to_string())
    );
    // Local users and tokens stay.
    let alice = w.world.gw.client(Some(&w.world.alice.token)).unwrap();
    assert_eq!(alice.get("/v1/whoami").await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sign_ins_are_refused_with_a_reason_audited_and_grant_nothing() {
    let mut w = sso_world().await;
    let gw = w.world.gw.api_url().to_string();

    // Each fault of the provider's ID token, one sign-in each.
    let faults = [
        (Fault::WrongIssuer, "wrong_issuer"),
        (Fault::WrongAudience, "wrong_audience"),
        (Fault::ExtraAudience, "wrong_audience"),
        (Fault::Expired, "expired"),
        (Fault::NotYetValid, "not_yet_valid"),
        (Fault::BadSignature, "bad_signature"),
        (Fault::AlgConfusion, "bad_signature"),
        (Fault::Unsigned, "bad_signature"),
        (Fault::UnknownKid, "unknown_key"),
        (Fault::NonceMismatch, "nonce_mismatch"),
        (Fault::MissingNonce, "nonce_mismatch"),
        (Fault::EmailNotVerified, "email_not_verified"),
    ];
    for (fault, reason) in faults {
        w.idp.set_fault_once(fault);
        let mut browser = Browser::new(&w.world.ca_file());
        let answer = web_sign_in(&mut browser, &gw, "carol").await;
        assert!(
            (400..500).contains(&answer.status),
            "{fault:?}: {} {}",
            answer.status,
            answer.body
        );
        assert!(
            answer.body.contains(reason),
            "{fault:?} names {reason}: {}",
            answer.body
        );
        assert!(browser.session().is_none(), "{fault:?}: no session");
        assert_eq!(
            refusal_reasons(&w.world).await.last().map(String::as_str),
            Some(reason),
            "{fault:?} is audited"
        );
    }
    w.idp.clear_faults();
    assert!(
        !identity_exists(&w.world, "carol").await,
        "nothing was created"
    );

    // People the rules refuse.
    for (who, reason) in [
        ("mallory", "domain_not_allowed"),
        ("nobody", "no_role"),
        ("alice", "name_taken"),
    ] {
        let mut browser = Browser::new(&w.world.ca_file());
        let answer = web_sign_in(&mut browser, &gw, who).await;
        assert_eq!(answer.status, 403, "{who}: {}", answer.body);
        assert!(answer.body.contains(reason), "{who}: {}", answer.body);
        assert!(browser.session().is_none());
        assert_eq!(
            refusal_reasons(&w.world).await.last().map(String::as_str),
            Some(reason)
        );
    }
    assert!(!identity_exists(&w.world, "mallory").await);
    assert!(!identity_exists(&w.world, "nobody").await);

    // A replayed state, and a callback this browser did not start.
    let mut browser = Browser::new(&w.world.ca_file());
    let begun = browser.get(&format!("{gw}/sso/login")).await;
    let at_idp = browser
        .get(&as_person(begun.location.as_deref().unwrap(), "carol"))
        .await;
    let callback = at_idp.location.unwrap();
    let mut stranger = Browser::new(&w.world.ca_file());
    let foreign = stranger.get(&callback).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(foreign.body.contains("state_mismatch"), "{}", foreign.body);
    let replay_state = browser.cookies.clone();
    let mut replayer = Browser::new(&w.world.ca_file());
    replayer.cookies = replay_state;
    let replayed = replayer.get(&callback).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    assert!(replayed.body.contains("unknown_state"), "{}", replayed.body);

    // Key rotation: a new key the cached JWKS lacks is fetched once.
    let before_rotation = refusal_reasons(&w.world).await.len();
    w.idp
        .rotate_key(SigningAlg::Es256, PreviousKey::Retire)
        .await
        .unwrap();
    let mut browser = Browser::new(&w.world.ca_file());
    let rotated = web_sign_in(&mut browser, &gw, "carol").await;
    assert_eq!(rotated.status, 303, "{}", rotated.body);
    assert_eq!(refusal_reasons(&w.world).await.len(), before_rotation);

    // Provider unreachable (it goes down while a person signs in): the
    // sign-in fails closed, existing sessions and tokens keep working.
    let token = token_for(&w, "carol").await.unwrap();
    let mut newcomer = Browser::new(&w.world.ca_file());
    let begun = newcomer.get(&format!("{gw}/sso/login")).await;
    let at_idp = newcomer
        .get(&as_person(begun.location.as_deref().unwrap(), "carol"))
        .await;
    w.idp.stop().await;
    let down = newcomer.get(at_idp.location.as_deref().unwrap()).await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.body.contains("provider_unreachable"), "{}", down.body);
    assert!(newcomer.session().is_none());
    assert_eq!(
        refusal_reasons(&w.world).await.last().map(String::as_str),
        Some("provider_unreachable")
    );
    let me = browser
        .api("GET", &format!("{gw}/v1/whoami"), None, None)
        .await;
    assert_eq!(me.status, 200, "the browser session keeps working");
    let out = psql(&w, "carol", &token, "SELECT 1").await;
    assert!(out.success, "the token keeps working: {}", out.all());
    w.idp.restart().await.unwrap();
    let mut back = Browser::new(&w.world.ca_file());
    assert_eq!(web_sign_in(&mut back, &gw, "carol").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interoperates_with_pypi_oidc_provider_mock_on_the_web_and_cli_flows() {
    let mock = OidcMock::start(&json!({
        "sub": "erin-sub",
        "preferred_username": "erin",
        "email": "erin@example.com",
        "email_verified": true,
        "groups": ["eng"],
    }))
    .await;
    let world = world_for(&sso_config(&mock.issuer)).await;
    let gw = world.gw.api_url().to_string();

    // Web: the mock's sign-in page posts `sub` to its authorization URL.
    let mut browser = Browser::new(&world.ca_file());
    let begun = browser.get(&format!("{gw}/sso/login")).await;
    assert_eq!(begun.status, 303, "{}", begun.body);
    let authorize = begun.location.unwrap();
    let at_idp = browser.post_form(&authorize, &[("sub", "erin-sub")]).await;
    assert_eq!(at_idp.status, 302, "{}", at_idp.body);
    let landed = browser.get(at_idp.location.as_deref().unwrap()).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    let me = browser
        .api("GET", &format!("{gw}/v1/whoami"), None, None)
        .await;
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(me["identity"], "erin");
    assert_eq!(me["roles"], json!(["dev"]));

    // CLI: the real binary, the browser played by the test.
    let mut cli = CliLogin::start(&gw, &world.ca_file(), &["--no-browser"]);
    let authorize = url_in(&cli.wait_line("/authorize?"));
    let mut browser = Browser::new(&world.ca_file());
    let at_idp = browser.post_form(&authorize, &[("sub", "erin-sub")]).await;
    let back = browser.get(at_idp.location.as_deref().unwrap()).await;
    let done = browser.get(back.location.as_deref().unwrap()).await;
    assert_eq!(done.status, 200);
    let (ok, stdout, printed, config_dir) = cli.finish();
    assert!(ok, "{printed:?}");
    assert!(stdout.contains("as erin (role dev)"), "{stdout}");
    let token = saved_token(config_dir.path());
    let out = world
        .psql_as(
            &world.conninfo("erin", "pg-prod"),
            &token,
            "SELECT count(*) FROM customers",
        )
        .await;
    assert!(out.success, "{}", out.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_configuration_mistakes_stop_the_gateway_with_their_location() {
    let idp_issuer = "https://idp.example.com";
    let bad = crate::support::proxy::config(
        5432,
        &sso_config(idp_issuer).replace("eng = [\"dev\"]", "eng = [\"developers\"]"),
    );
    let exited = tokio::task::spawn_blocking(move || {
        periscope_testkit::GatewayProcess::start_expecting_failure(
            crate::support::proxy::BIN,
            periscope_testkit::GatewayOptions::default().config(bad),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("unknown role `developers`"),
        "{}",
        exited.stderr
    );
    // The client secret must be readable at start.
    let good = crate::support::proxy::config(5432, &sso_config(idp_issuer));
    let exited = tokio::task::spawn_blocking(move || {
        periscope_testkit::GatewayProcess::start_expecting_failure(
            crate::support::proxy::BIN,
            periscope_testkit::GatewayOptions::default().config(good),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(exited.status.code(), Some(2), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("SSO_CLIENT_SECRET is not set"),
        "{}",
        exited.stderr
    );
}

/// `periscope demo --sso` as a newcomer runs it: the printed sign-in
/// command works against the demo's own provider, and the person it signs
/// in has the role the tour promises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_with_sso_prints_a_sign_in_that_works() {
    use std::io::BufRead as _;
    use std::os::unix::fs::PermissionsExt as _;

    let tmp = tempfile::tempdir().unwrap();
    // PostgreSQL runs as `postgres` when the tests run as root.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let data_dir = tmp.path().join("demo");
    let mut demo = std::process::Command::new(crate::support::proxy::BIN)
        .arg("demo")
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--sso", "--rows", "30"])
        .args(["--api-listen", "127.0.0.1:0", "--pg-listen", "127.0.0.1:0"])
        .env("PERISCOPE_CONFIG_DIR", tmp.path().join("config"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
    let guard = Kill(demo.id());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = demo.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            eprintln!("[demo] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .unwrap_or_else(|_| panic!("no ready line: {printed:#?}"));
        let ready = line.starts_with("periscope: ready ");
        printed.push(line);
        if ready {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("Single sign-on:"), "{text}");
    assert!(
        text.contains("carol (group engineering, role developer)"),
        "{text}"
    );
    let login = printed
        .iter()
        .find(|l| l.trim_start().starts_with("$ periscope login --sso"))
        .expect("the sign-in command");
    let words: Vec<&str> = login.split_whitespace().collect();
    let after = |flag: &str| {
        words[words.iter().position(|w| *w == flag).unwrap() + 1]
            .trim_matches('\'')
            .to_string()
    };
    let (url, ca) = (after("--url"), after("--ca-file"));

    let ca_path = std::path::PathBuf::from(&ca);
    let mut cli = CliLogin::start(&url, &ca_path, &["--no-browser"]);
    let authorize = url_in(&cli.wait_line("/authorize?"));
    let mut browser = Browser::new(&ca_path);
    let at_idp = browser.get(&as_person(&authorize, "carol")).await;
    assert_eq!(at_idp.status, 302, "{}", at_idp.body);
    let back = browser.get(at_idp.location.as_deref().unwrap()).await;
    let done = browser.get(back.location.as_deref().unwrap()).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let (ok, stdout, printed_login, _config) = cli.finish();
    assert!(ok, "{printed_login:?}");
    assert!(stdout.contains("as carol (role developer)"), "{stdout}");

    // Ctrl-C stops the provider with everything else.
    std::process::Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .unwrap();
    let status = demo.wait().unwrap();
    assert!(status.success(), "{status:?}");
    drop(guard);
    let farewell: Vec<String> = rx.iter().collect();
    assert!(
        farewell
            .iter()
            .any(|l| l.contains("test identity provider stopped")),
        "{farewell:#?}"
    );
}
