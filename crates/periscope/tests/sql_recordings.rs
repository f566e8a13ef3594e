//! Recordings of PostgreSQL sessions, end to end: the real gateway records
//! each statement of a psql or tokio-postgres session with a sample of its
//! masked result (never a raw value), within the configured row and byte
//! limits, with refusals; seals the file's SHA-256 into the audit chain;
//! lists and plays it (`periscope recordings play`); and `audit verify`
//! (online and offline) names the recording once it is altered.

use std::path::PathBuf;

use futures_util::TryStreamExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::proxy::{World, assert_no_raw, cli, expect, world_with};

/// The seal of `session`'s recording, once written.
async fn seal_of(w: &World, session: &str) -> Value {
    let session = session.to_string();
    w.audit_until("recording.sealed", move |events| {
        events
            .iter()
            .find(|e| e["details"]["recording"] == session.as_str())
            .cloned()
    })
    .await
}

/// The id of the newest session `identity` started.
async fn newest_session(w: &World, identity: &str) -> String {
    let starts = w.audit("session.start").await;
    starts
        .iter()
        .rev()
        .find(|e| e["actor"] == identity)
        .and_then(|e| e["details"]["session"].as_str())
        .expect("a session.start")
        .to_string()
}

fn recordings_dir(w: &World) -> PathBuf {
    w.gw.data_dir().join("recordings")
}

/// The recording's lines: header, then statements.
fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_psql_session_is_recorded_masked_sealed_played_and_verified() {
    let w = world_with(20, "").await;
    // Three statements in one session; the refused UPDATE stops psql.
    let run = w
        .psql_runner(&w.conninfo("alice", "pg-prod"), &w.alice.token)
        .arg("-c")
        .arg("SELECT id, email, name FROM customers ORDER BY id LIMIT 3")
        .arg("-c")
        .arg("SELECT count(*) FROM customers")
        .run("UPDATE customers SET email = 'new@example.com' WHERE id = 1")
        .await;
    assert!(!run.success, "{}", run.all());
    assert!(run.stdout.contains("[email]"), "{}", run.all());
    let session = newest_session(&w, "alice").await;
    let seal = seal_of(&w, &session).await;
    assert_eq!(seal["actor"], "alice");
    assert_eq!(seal["target"], "pg-prod");
    assert_eq!(seal["details"]["format"], "periscope-sql");
    assert_eq!(seal["details"]["statements"], 3);
    // The seal precedes the session's end.
    let end = w
        .audit_until("session.end", |events| {
            events
                .iter()
                .find(|e| e["details"]["session"] == session.as_str())
                .cloned()
        })
        .await;
    assert!(end["seq"].as_u64() > seal["seq"].as_u64(), "{seal} {end}");

    // The file: the sealed hash, masked cells, never a raw value.
    let file = seal["details"]["file"].as_str().unwrap();
    assert_eq!(file, format!("{session}.sql.jsonl"));
    let path = recordings_dir(&w).join(file);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        seal["details"]["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_no_raw(&text, &w.shop.raw_values());
    let lines = lines(&text);
    assert_eq!(lines.len(), 4, "{text}");
    let header = &lines[0];
    assert_eq!(header["format"], "periscope-sql");
    assert_eq!(header["session"], session.as_str());
    assert_eq!(header["identity"], "alice");
    assert_eq!(header["connection"], "pg-prod");
    assert_eq!(
        (
            header["sample_rows"].as_u64(),
            header["sample_bytes"].as_u64()
        ),
        (Some(10), Some(8192))
    );

    let read = &lines[1];
    assert_eq!(read["type"], "statement");
    assert_eq!(
        read["text"],
        "SELECT id, email, name FROM customers ORDER BY id LIMIT ?"
    );
    assert_eq!(read["class"], "select");
    assert_eq!(read["outcome"], "ok");
    assert_eq!(read["rows"], 3);
    assert_eq!(read["masked"]["email"], 3);
    assert_eq!(
        read["columns"],
        json!([
            {"name": "id", "type": "int8"},
            {"name": "email", "type": "text", "masked": "email"},
            {"name": "name", "type": "text"},
        ])
    );
    let customers = &w.shop.customers;
    let expected: Vec<Value> = customers[..3]
        .iter()
        .map(|c| json!([c.id.to_string(), "[email]", c.name]))
        .collect();
    assert_eq!(read["sample"], Value::Array(expected), "{read}");
    assert_eq!(read["sample_truncated"], false);
    assert!(read["seq"].as_u64().unwrap() > 0, "{read}");
    assert!(read["t"].as_f64().unwrap() >= 0.0);

    let count = &lines[2];
    assert_eq!(count["sample"], json!([["20"]]), "{count}");
    let refused = &lines[3];
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["shield"], "write");
    assert_eq!(
        refused["text"],
        "UPDATE customers SET email = ? WHERE id = ?"
    );
    assert!(refused["message"].as_str().unwrap().contains("UPDATE"));
    assert!(refused.get("sample").is_none());

    // Listed for alice, played as a transcript.
    let listed = expect(&w.alice.api.get("/v1/recordings").await.unwrap(), 200);
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == session.as_str())
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(mine["format"], "periscope-sql");
    assert_eq!(mine["statements"], 3);
    let served = w
        .alice
        .api
        .get(&format!("/v1/recordings/{session}"))
        .await
        .unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(served.body.as_bytes(), &bytes[..]);
    let list = cli(&w, &w.alice.token, &["recordings", "list"]).await;
    assert!(list.success, "{}", list.all());
    assert!(
        list.stdout.contains(&session) && list.stdout.contains("sql"),
        "{}",
        list.all()
    );
    let play = cli(
        &w,
        &w.alice.token,
        &[
            "recordings",
            "play",
            &session,
            "--speed",
            "1000",
            "--max-idle",
            "1ms",
        ],
    )
    .await;
    assert!(play.success, "{}", play.all());
    let shown = &play.stdout;
    assert!(
        shown.contains("pg-prod=> SELECT id, email, name FROM customers ORDER BY id LIMIT ?;"),
        "{shown}"
    );
    assert!(shown.contains(" id | email   | name"), "{shown}");
    assert!(
        shown.contains(&format!(" 1  | [email] | {}", customers[0].name)),
        "{shown}"
    );
    assert!(shown.contains("(3 rows; masked: email 3)"), "{shown}");
    assert!(
        shown.contains("REFUSED by shield `write`: `UPDATE` blocked"),
        "{shown}"
    );
    assert_no_raw(shown, &w.shop.raw_values());

    // Verification: intact, then one byte of a masked cell edited.
    let ok = expect(
        &w.admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(ok["ok"], true, "{ok}");
    let mut edited = bytes.clone();
    let at = text.find("[email]").unwrap() + 1;
    edited[at] = b'E';
    std::fs::write(&path, &edited).unwrap();
    let bad = expect(
        &w.admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(bad["ok"], false, "{bad}");
    let summary = bad["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "recording {session} (sealed at seq {})",
            seal["seq"]
        )) && summary.contains("was altered"),
        "{summary}"
    );
    // Offline, from an export and the directory.
    let export = w.gw.data_dir().join("audit-export.jsonl");
    std::fs::write(&export, w.audit_export().await).unwrap();
    let key = w.gw.data_dir().join("keys/audit-verify.pub");
    let offline = cli(
        &w,
        w.gw.bootstrap_token().unwrap(),
        &[
            "audit",
            "verify",
            "--file",
            export.to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
            "--recordings",
            recordings_dir(&w).to_str().unwrap(),
        ],
    )
    .await;
    assert!(!offline.success, "{}", offline.all());
    assert!(
        offline.stderr.contains(&format!("recording {session}"))
            && offline.stderr.contains("was altered"),
        "{}",
        offline.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_keep_the_configured_rows_and_bytes_in_binary_and_text() {
    let w = world_with(
        30,
        "[recordings]\nsql_sample_rows = 4\nsql_sample_bytes = 2048\n",
    )
    .await;
    let client = w.client().await;
    // The extended protocol, binary results: ids decoded from int8.
    let rows = client
        .query("SELECT id, email FROM customers ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 30);
    // One row longer than the byte limit: kept cut at it.
    let long = client
        .simple_query("SELECT repeat('x', 5000) AS filler")
        .await
        .unwrap();
    assert!(!long.is_empty());
    // COPY TO STDOUT: its masked lines, sampled as one column.
    let copied: Vec<_> = client
        .copy_out("COPY (SELECT id, email FROM customers ORDER BY id LIMIT 6) TO STDOUT")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(copied.len(), 6);
    drop(client);
    let session = newest_session(&w, "alice").await;
    let seal = seal_of(&w, &session).await;
    let file = seal["details"]["file"].as_str().unwrap();
    let text = std::fs::read_to_string(recordings_dir(&w).join(file)).unwrap();
    assert_no_raw(&text, &w.shop.raw_values());
    let lines = lines(&text);
    assert_eq!(lines[0]["sample_rows"], 4);
    let read = lines
        .iter()
        .find(|l| l["text"] == "SELECT id, email FROM customers ORDER BY id")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(read["rows"], 30);
    assert_eq!(read["sample_truncated"], true);
    assert_eq!(
        read["sample"],
        json!([
            ["1", "[email]"],
            ["2", "[email]"],
            ["3", "[email]"],
            ["4", "[email]"]
        ]),
        "{read}"
    );
    let filler = lines
        .iter()
        .find(|l| l["columns"][0]["name"] == "filler")
        .unwrap_or_else(|| panic!("{text}"));
    let cell = filler["sample"][0][0].as_str().unwrap();
    assert!(cell.ends_with('…'), "{cell}");
    assert!(cell.len() < 2048 && cell.len() > 1900, "{}", cell.len());
    assert_eq!(filler["sample_truncated"], true);
    let copy = lines
        .iter()
        .find(|l| l["columns"][0]["name"] == "COPY")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(copy["rows"], 6, "{copy}");
    assert_eq!(
        copy["sample"],
        json!([
            ["1\t[email]"],
            ["2\t[email]"],
            ["3\t[email]"],
            ["4\t[email]"]
        ]),
        "{copy}"
    );
    assert_eq!(copy["sample_truncated"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_recordings_can_be_turned_off() {
    let w = world_with(3, "[recordings]\nsql = false\n").await;
    let out = w.psql("SELECT id, email FROM customers").await;
    assert!(out.success, "{}", out.all());
    let session = newest_session(&w, "alice").await;
    w.audit_until("session.end", |events| {
        events
            .iter()
            .find(|e| e["details"]["session"] == session.as_str())
            .cloned()
    })
    .await;
    assert!(w.audit("recording.sealed").await.is_empty());
    let dir = recordings_dir(&w);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "{files:?}");
}
