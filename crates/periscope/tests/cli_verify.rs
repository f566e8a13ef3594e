//! `periscope audit verify --file ... --public-key ...`: offline verification of an
//! export, with nothing but the file and the public key (no gateway, no profile).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::support::cli::{periscope, run, run_with_stdin};
use periscope_audit::{
    AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head, JsonlHeader, next_event,
    write_jsonl,
};
use serde_json::{Value, json};

fn signer() -> AuditSigner {
    AuditSigner::from_seed(&[7; 32])
}

fn time(seq: u64) -> AuditTime {
    AuditTime::from_unix_micros(1_795_928_400_000_000 + seq as i64 * 1_000_000).unwrap()
}

/// Events 1..=n looking like a day at the gateway.
fn events(n: u64) -> Vec<AuditEvent> {
    let mut head = Head::GENESIS;
    (1..=n)
        .map(|seq| {
            let (actor, action) = match seq % 4 {
                0 => ("alice", "request.create"),
                1 => ("bob", "request.approve"),
                2 => ("alice", "session.start"),
                _ => ("alice", "query"),
            };
            let draft = EventDraft::new(time(seq), actor, action, "pg-prod")
                .with_details(json!({ "n": seq }));
            let event = next_event(head, draft).unwrap();
            head = event.head();
            event
        })
        .collect()
}

fn checkpoints(events: &[AuditEvent], at: &[u64], signer: &AuditSigner) -> Vec<Checkpoint> {
    at.iter()
        .map(|&seq| signer.sign_checkpoint(events[seq as usize - 1].head(), time(seq)))
        .collect()
}

/// The export text, as `periscope audit export` would stream it.
fn export_text(events: &[AuditEvent], checkpoints: &[Checkpoint]) -> String {
    let mut out = Vec::new();
    write_jsonl(
        &mut out,
        Some(&JsonlHeader::new(Some(signer().key_id()))),
        events.iter().cloned().map(Ok::<_, std::io::Error>),
        checkpoints,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn key(&self) -> PathBuf {
        self.write("audit-verify.pub", &signer().verifier_key().to_pem())
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }
}

fn verify(files: &Files, file: &Path, key: &Path, extra: &[&str]) -> crate::support::cli::Run {
    run(periscope(&files.config())
        .args(["audit", "verify", "--file"])
        .arg(file)
        .arg("--public-key")
        .arg(key)
        .args(extra))
}

/// Index of the line holding event `seq`.
fn event_line(text: &str, seq: u64) -> usize {
    text.lines()
        .position(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["type"] == "event" && v["seq"] == seq
        })
        .unwrap()
}

fn edit_lines(text: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    lines.join("\n") + "\n"
}

#[test]
fn a_valid_export_verifies_with_counts_and_the_unsigned_tail() {
    let files = Files::new();
    let ev = events(25);
    let text = export_text(&ev, &checkpoints(&ev, &[10, 20], &signer()));
    let file = files.write("audit.jsonl", &text);
    let out = verify(&files, &file, &files.key(), &[]);
    let stdout = out.ok();
    assert!(
        stdout.contains("chain intact: 25 events verified, seq 1 to 25"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 signed checkpoints verified, the last one at seq 20"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5 events after seq 20 (up to seq 25) are not yet covered"),
        "{stdout}"
    );
    assert!(
        !Path::new(&files.config()).exists(),
        "offline verify needs no profile"
    );
}

#[test]
fn json_output_carries_the_counts() {
    let files = Files::new();
    let ev = events(12);
    let text = export_text(&ev, &checkpoints(&ev, &[12], &signer()));
    let file = files.write("audit.jsonl", &text);
    let out = verify(&files, &file, &files.key(), &["--json"]);
    out.code(0);
    let v = out.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events_checked"], 12);
    assert_eq!(v["checkpoints_verified"], 1);
    assert_eq!(v["uncovered_events"], 0);
    assert_eq!(v["last_seq"], 12);
    assert_eq!(v["last_hash"], ev[11].hash.to_hex());
}

#[test]
fn an_edited_line_fails_naming_its_seq() {
    let files = Files::new();
    let ev = events(20);
    let text = export_text(&ev, &checkpoints(&ev, &[10, 20], &signer()));
    let i = event_line(&text, 7);
    let tampered = edit_lines(&text, |lines| {
        let mut v: Value = serde_json::from_str(&lines[i]).unwrap();
        v["target"] = json!("pg-staging");
        lines[i] = v.to_string();
    });
    let file = files.write("audit.jsonl", &tampered);
    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr
            .contains("event seq 7 was altered after it was written"),
        "{}",
        out.both()
    );
    assert!(
        out.stderr.starts_with("periscope: error: "),
        "{}",
        out.both()
    );
    assert!(out.stdout.is_empty(), "{}", out.both());
}

#[test]
fn a_deleted_line_fails_naming_the_missing_seq() {
    let files = Files::new();
    let ev = events(20);
    let text = export_text(&ev, &checkpoints(&ev, &[20], &signer()));
    let i = event_line(&text, 12);
    let tampered = edit_lines(&text, |lines| {
        lines.remove(i);
    });
    let file = files.write("audit.jsonl", &tampered);
    let out = verify(&files, &file, &files.key(), &["--json"]);
    out.code(1);
    assert!(
        out.stderr.contains("event seq 12 is missing"),
        "{}",
        out.both()
    );
    assert_eq!(out.json()["broken_at"], 12);
}

#[test]
fn reordered_lines_fail_naming_the_seq() {
    let files = Files::new();
    let ev = events(20);
    let text = export_text(&ev, &checkpoints(&ev, &[20], &signer()));
    let (a, b) = (event_line(&text, 5), event_line(&text, 6));
    let tampered = edit_lines(&text, |lines| lines.swap(a, b));
    let file = files.write("audit.jsonl", &tampered);
    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr.contains("event seq 5 comes after seq 6"),
        "{}",
        out.both()
    );
}

#[test]
fn a_rewritten_and_relinked_chain_fails_at_the_signed_checkpoint() {
    // Someone with write access recomputes every hash after an edit: the links hold,
    // only the signature gives it away.
    let files = Files::new();
    let mut ev = events(20);
    let cps = checkpoints(&ev, &[10, 20], &signer());
    ev[14].actor = "mallory".into();
    for j in 14..ev.len() {
        if j > 14 {
            ev[j].prev_hash = ev[j - 1].hash;
        }
        ev[j].hash = ev[j].compute_hash();
    }
    let file = files.write("audit.jsonl", &export_text(&ev, &cps));
    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr
            .contains("the signed checkpoint for seq 20 vouches for hash"),
        "{}",
        out.both()
    );
}

#[test]
fn a_wrong_public_key_fails() {
    let files = Files::new();
    let ev = events(10);
    let text = export_text(&ev, &checkpoints(&ev, &[10], &signer()));
    let file = files.write("audit.jsonl", &text);
    let other = AuditSigner::from_seed(&[9; 32]).verifier_key();
    let key = files.write("other.pub", &other.to_pem());
    let out = verify(&files, &file, &key, &[]);
    out.code(1);
    assert!(
        out.stderr.contains(&format!(
            "the checkpoint for seq 10 is signed by key {}, which is not among the verifier keys given ({})",
            signer().key_id(),
            other.key_id()
        )),
        "{}",
        out.both()
    );
    // The header named the right key: the CLI points that out.
    assert!(
        out.stderr
            .contains("the file's header says its checkpoints are signed by key"),
        "{}",
        out.both()
    );
}

#[test]
fn a_forged_checkpoint_fails() {
    let files = Files::new();
    let ev = events(10);
    let mut cps = checkpoints(&ev, &[10], &signer());
    cps[0].time = time(99);
    let file = files.write("audit.jsonl", &export_text(&ev, &cps));
    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr
            .contains("the checkpoint for seq 10 has an invalid signature"),
        "{}",
        out.both()
    );
}

#[test]
fn a_partial_export_needs_partial_and_then_verifies() {
    let files = Files::new();
    let ev = events(30);
    let cps = checkpoints(&ev, &[10, 30], &signer());
    // What `audit export --since-seq 11` holds: the checkpoint vouching for seq 10
    // first, then events 11..=30.
    let text = export_text(&ev[10..], &cps);
    let file = files.write("partial.jsonl", &text);

    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr.contains("events seq 1 to 10 are missing"),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("hint:"), "{}", out.both());
    assert!(out.stderr.contains("--partial"), "{}", out.both());

    let out = verify(&files, &file, &files.key(), &["--partial"]);
    let stdout = out.ok();
    assert!(
        stdout.contains("20 events verified, seq 11 to 30"),
        "{stdout}"
    );
    assert!(
        stdout.contains("vouched for by a signed checkpoint"),
        "{stdout}"
    );

    // Resuming after a position verified before.
    let after = format!("10:{}", ev[9].hash.to_hex());
    let out = verify(&files, &file, &files.key(), &["--after", &after]);
    assert!(
        out.ok().contains("after the trusted position seq 10"),
        "{}",
        out.both()
    );
    let wrong = format!("10:{}", ev[8].hash.to_hex());
    verify(&files, &file, &files.key(), &["--after", &wrong]).code(1);
}

#[test]
fn stdin_is_read_with_a_dash() {
    let files = Files::new();
    let ev = events(5);
    let text = export_text(&ev, &checkpoints(&ev, &[5], &signer()));
    let key = files.key();
    let out = run_with_stdin(
        periscope(&files.config())
            .args(["audit", "verify", "--file", "-", "--public-key"])
            .arg(&key),
        text.as_bytes(),
    );
    assert!(out.ok().contains("5 events verified"), "{}", out.both());
}

#[test]
fn a_damaged_line_fails_with_its_line_number() {
    let files = Files::new();
    let ev = events(5);
    let text = export_text(&ev, &checkpoints(&ev, &[5], &signer()));
    let i = event_line(&text, 3);
    let damaged = edit_lines(&text, |lines| lines[i].truncate(20));
    let file = files.write("audit.jsonl", &damaged);
    let out = verify(&files, &file, &files.key(), &[]);
    out.code(1);
    assert!(
        out.stderr.contains(&format!(
            "the export is malformed after event seq 2: line {} ",
            i + 1
        )),
        "{}",
        out.both()
    );
}

#[test]
fn key_problems_are_usage_errors() {
    let files = Files::new();
    let ev = events(3);
    let file = files.write("audit.jsonl", &export_text(&ev, &[]));

    let private = files.write("audit-sign.pem", &signer().to_pem());
    let out = verify(&files, &file, &private, &[]);
    out.code(2);
    assert!(
        out.stderr.contains("this is a private key"),
        "{}",
        out.both()
    );
    assert!(
        !out.stderr.contains("BEGIN PRIVATE KEY") && !out.stdout.contains("BEGIN PRIVATE KEY"),
        "the private key must never be echoed"
    );

    let missing = files.dir.path().join("nope.pub");
    let out = verify(&files, &file, &missing, &[]);
    out.code(2);
    assert!(
        out.stderr.contains("cannot read the public key") && out.stderr.contains("nope.pub"),
        "{}",
        out.both()
    );

    let out = verify(
        &files,
        &files.dir.path().join("absent.jsonl"),
        &files.key(),
        &[],
    );
    out.code(2);
    assert!(out.stderr.contains("absent.jsonl"), "{}", out.both());

    // --file without --public-key: refused by the argument parser.
    let out = run(periscope(&files.config())
        .args(["audit", "verify", "--file"])
        .arg(&file));
    out.code(2);
    assert!(out.stderr.contains("--public-key"), "{}", out.both());
}
