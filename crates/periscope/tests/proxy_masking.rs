//! Masking through the real gateway: what psql and tokio-postgres receive
//! from a connection with no data policy (opt-out). Each test asserts that no
//! raw value of the seeded customers or secrets appears anywhere in what the
//! client received, and that non-sensitive columns come through unchanged.
#![allow(clippy::unwrap_used)]

use crate::support::proxy::{JsonText, assert_no_raw, cells, joined, world};
use tokio_postgres::SimpleQueryMessage;

#[tokio::test(flavor = "multi_thread")]
async fn select_star_masks_sensitive_columns_and_keeps_the_rest() {
    let w = world().await;
    let raw = w.shop.raw_values();
    let out = w
        .psql("SELECT id, name, email, phone, ssn, card_number, iban, notes FROM customers ORDER BY id")
        .await;
    assert!(out.success, "{}", out.all());
    assert_no_raw(&out.all(), &raw);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), w.shop.customers.len(), "{}", out.stdout);
    for (line, c) in lines.iter().zip(&w.shop.customers) {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f[0], c.id.to_string());
        assert_eq!(f[1], c.name, "names are not sensitive by default");
        assert_eq!(f[2], "[email]");
        assert_eq!(f[3], "[phone]");
        assert_eq!(f[4], "[ssn]");
        assert_eq!(f[5], "[card]");
        assert_eq!(f[6], "[iban]");
    }

    // `SELECT *` over psql, and the same through tokio-postgres.
    let star = w.psql("SELECT * FROM customers").await;
    assert!(star.success, "{}", star.all());
    assert_no_raw(&star.all(), &raw);
    let client = w.client().await;
    let rows = cells(
        &client
            .simple_query("SELECT * FROM customers ORDER BY id")
            .await
            .unwrap(),
    );
    assert_no_raw(&joined(&rows), &raw);
    assert_eq!(rows[0][1], w.shop.customers[0].name);
    assert_eq!(rows[0][8], "2026-01-01 00:00:00+00");
}

#[tokio::test(flavor = "multi_thread")]
async fn free_text_notes_are_content_scanned() {
    let w = world().await;
    let raw = w.shop.raw_values();
    let client = w.client().await;
    let rows = cells(
        &client
            .simple_query("SELECT id, notes FROM customers ORDER BY id")
            .await
            .unwrap(),
    );
    assert_no_raw(&joined(&rows), &raw);
    for (row, c) in rows.iter().zip(&w.shop.customers) {
        if c.notes.contains('@') {
            assert!(row[1].contains("[email]"), "{row:?}");
        }
        if c.notes.starts_with("VIP") || c.notes.starts_with("Refund") {
            assert_eq!(row[1], c.notes, "a note without personal data is unchanged");
        }
    }
    assert!(rows[1][1].contains("[github_token]"), "{:?}", rows[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_blobs_are_scanned_and_extended_protocol_binary_results_masked() {
    let w = world().await;
    let raw = w.shop.raw_values();
    let client = w.client().await;
    // Extended protocol (prepare + bind + execute), binary results.
    let rows = client
        .query("SELECT id, payload, raw::text, email, name FROM events JOIN customers USING (id) WHERE id <= $1 ORDER BY id", &[&5i64])
        .await
        .unwrap();
    assert_eq!(rows.len(), 5);
    let mut seen = String::new();
    for (row, c) in rows.iter().zip(&w.shop.customers) {
        let id: i64 = row.get(0);
        let payload = row.get::<_, JsonText>(1).value();
        let raw_text: String = row.get(2);
        let email: String = row.get(3);
        let name: String = row.get(4);
        assert_eq!(id, c.id);
        assert_eq!(email, "[email]");
        assert_eq!(name, c.name);
        assert_eq!(payload["contact"]["address"], "[email]");
        assert_eq!(payload["kind"], "signup");
        seen.push_str(&format!("{payload}\t{raw_text}\t{email}\n"));
    }
    assert_no_raw(&seen, &raw);
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_query_text_protocol_through_tokio_postgres() {
    let w = world().await;
    let client = w.client().await;
    let messages = client
        .simple_query("SELECT 1 AS one; SELECT email FROM customers WHERE id = 1")
        .await
        .unwrap();
    let rows = cells(&messages);
    assert_eq!(
        rows,
        vec![vec!["1".to_string()], vec!["[email]".to_string()]]
    );
    assert!(
        messages
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(1)))
    );
}
