//! Query from the browser, end to end: alice runs SQL in the console on the
//! real gateway over a seeded PostgreSQL, in headless Chromium. The
//! statement takes psql's path (the gateway's own PostgreSQL listener), so
//! the masking, the refusal with its request hint and the audit trail are
//! the listener's; the trail says `via: "console"`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fantoccini::Locator;

use crate::console::{base, csrf, http_sign_in};
use crate::support::console::Driver;
use crate::support::proxy::{assert_no_raw, world_with};

/// A table of free text mentioning emails under a neutral name: run-time
/// learning suspects its column once results keep hitting the detector.
const IMPORTS: &str = "CREATE TABLE imports (id bigint PRIMARY KEY, blob text);\n\
     GRANT SELECT ON imports TO periscope_ro;\n\
     INSERT INTO imports SELECT i, 'imported row ' || i || ', contact buyer' || i || '@example.com' \
     FROM generate_series(1, 8) AS i;\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_a_query_shows_masked_cells_pages_a_refusal_with_its_hint_and_text_stays_text()
 {
    let w = world_with(60, "").await;
    // Before the first session, so the connection's catalog knows it.
    tokio::task::block_in_place(|| w.shop.cluster.psql("shop", IMPORTS)).unwrap();
    let gw = base(&w);
    let driver = Driver::start().await;
    let alice = driver.browser().await;
    alice.sign_in(&gw, &w.alice.token).await;
    alice.wait_text("#whoami").await;
    alice.goto(&format!("{gw}/query")).await;
    let options = alice.wait_text("#query-connection").await;
    assert!(
        options.contains("pg-prod") && options.contains("pg-dev"),
        "{options}"
    );

    // Personal data comes back masked, the masked cells marked, in pages.
    alice
        .fill("#sql", "SELECT id, name, email FROM customers ORDER BY id")
        .await;
    alice.click("#run").await;
    let summary = alice
        .until("#result-summary", |t| t.contains("row(s)"))
        .await;
    assert!(summary.starts_with("60 row(s)"), "{summary}");
    assert!(summary.contains("60 cell(s) masked"), "{summary}");
    assert!(summary.contains("page 1 of 2"), "{summary}");
    let marked = alice
        .client
        .find_all(Locator::Css("#result-table td.masked[data-masked='email']"))
        .await
        .unwrap();
    assert_eq!(marked.len(), 50, "one page of marked cells");
    assert_eq!(marked[0].text().await.unwrap(), "[email]");
    let page = alice.client.source().await.unwrap();
    assert_no_raw(&page, &w.shop.raw_values());
    assert!(
        page.contains(&w.shop.customers[0].name),
        "names are not masked"
    );
    alice.screenshot("console-query").await;
    alice.click("#next-page").await;
    let second = alice
        .until("#result-summary", |t| t.contains("page 2 of 2"))
        .await;
    assert!(second.starts_with("60 row(s)"), "{second}");
    let rows = alice
        .client
        .find_all(Locator::Css("#result-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 10);

    // Markup in the SQL and in the results is text: nothing runs.
    let xss = "<script>alert(1)</script>";
    alice
        .fill("#sql", &format!("SELECT '{xss}' AS \"<b>x</b>\""))
        .await;
    alice.click("#run").await;
    let cell = alice
        .until("#result-table tbody td", |t| t.contains("alert"))
        .await;
    assert_eq!(cell, xss);
    assert_eq!(alice.wait_text("#result-table th").await, "<b>x</b>");
    assert!(alice.client.get_alert_text().await.is_err(), "no alert ran");

    // A write is refused with the shield, the hint and a way to ask.
    alice
        .fill(
            "#sql",
            "UPDATE customers SET email = 'new@example.com' WHERE id = 1",
        )
        .await;
    alice.click("#run").await;
    assert_eq!(alice.wait_text("#refused-shield").await, "write");
    let hint = alice.wait_text("#refusal-hint").await;
    assert!(
        hint.contains("periscope request pg-prod --lift write --for 30m"),
        "{hint}"
    );
    alice.screenshot("console-query-refused").await;
    alice.click("#request-lift").await;
    assert_eq!(alice.path().await, "/request");
    let write = alice
        .client
        .find(Locator::Css("input[name=lift][value=write]"))
        .await
        .unwrap();
    assert!(
        write.is_selected().await.unwrap(),
        "the form asks for `write`"
    );

    // The trail has the statements, marked as coming from the console.
    let queries = w
        .audit_until("query", |e| {
            let from_console: Vec<_> = e
                .iter()
                .filter(|e| e["actor"] == "alice" && e["details"]["via"] == "console")
                .cloned()
                .collect();
            (from_console.len() >= 2).then_some(from_console)
        })
        .await;
    assert!(
        queries[0]["details"]["agent"]
            .as_str()
            .unwrap()
            .starts_with("ws_"),
        "{queries:#?}"
    );
    assert!(
        queries.iter().any(|q| q["details"]["text"]
            .as_str()
            .unwrap()
            .contains("FROM customers")),
        "{queries:#?}"
    );
    let refused = w.audit("query.refused").await;
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert_eq!(refused[0]["details"]["via"], "console");
    assert_eq!(refused[0]["details"]["shield"], "write");
    assert!(
        !w.audit_export().await.contains(xss),
        "the audit keeps literal-free text"
    );

    // Run-time learning: a column whose results keep hitting the detector
    // shows on the administrator's discovery page.
    let mut http = http_sign_in(&w, &w.alice.token).await;
    let token = csrf(&mut http, &w).await;
    for _ in 0..3 {
        let ran = http
            .post_form(
                &format!("{gw}/query"),
                &[
                    ("csrf_token", token.as_str()),
                    ("connection", "pg-prod"),
                    ("sql", "SELECT blob FROM imports ORDER BY id LIMIT 5"),
                ],
            )
            .await;
        assert_eq!(ran.status, 200, "{}", ran.body);
        assert!(ran.body.contains("contact [email]"), "{}", ran.body);
    }
    let denied = http.get(&format!("{gw}/discovery")).await;
    assert_eq!(denied.status, 403, "administrators only");
    let admin_token = w.gw.bootstrap_token().unwrap().to_string();
    let auditor = driver.browser().await;
    auditor.sign_in(&gw, &admin_token).await;
    auditor.wait_text("#whoami").await;
    let row = "tr[data-column='public.imports.blob']";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        auditor.goto(&format!("{gw}/discovery")).await;
        if let Some(text) = auditor.text(row).await {
            assert!(text.contains("email"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no suspected column: {}",
            auditor.client.source().await.unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    auditor.screenshot("console-discovery").await;

    // A POST without the CSRF token runs nothing.
    let before = w.audit("query").await.len();
    let forged = http
        .post_form(
            &format!("{gw}/query"),
            &[("connection", "pg-prod"), ("sql", "SELECT 1")],
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(w.audit("query").await.len(), before);
    for b in [alice, auditor] {
        b.close().await;
    }
}
