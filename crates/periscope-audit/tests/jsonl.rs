//! The JSONL export: round trips, partial exports, and a precise error for every kind
//! of damaged line (a damaged line is a verification failure, never a panic).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufReader, Write as _};

use crate::common::{checkpoints, events, signer};
use periscope_audit::{
    AuditEvent, Checkpoint, JsonlHeader, JsonlReader, JsonlRecord, MAX_LINE_BYTES, Start,
    VerifyReport, verify_jsonl, write_jsonl,
};
use serde_json::json;

fn export(events: &[AuditEvent], checkpoints: &[Checkpoint]) -> String {
    let mut out = Vec::new();
    let summary = write_jsonl(
        &mut out,
        Some(&JsonlHeader::new(Some(signer().key_id()))),
        events.iter().cloned().map(Ok::<_, std::io::Error>),
        checkpoints,
    )
    .unwrap();
    assert_eq!(summary.events, events.len() as u64);
    assert_eq!(summary.checkpoints, checkpoints.len() as u64);
    String::from_utf8(out).unwrap()
}

fn verify_text(text: &str, start: Start) -> Result<VerifyReport, periscope_audit::ChainError> {
    verify_jsonl(text.as_bytes(), &[signer().verifier_key()], start)
}

/// Replaces line `n` (1-based) of `text`.
fn with_line(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[n - 1] = line;
    lines.join("\n") + "\n"
}

#[test]
fn round_trip_through_a_file() {
    let ev = events(50);
    let cps = checkpoints(&ev, &[20, 10, 30, 50]); // any order in, seq order out
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write_jsonl(
        file.as_file_mut(),
        Some(&JsonlHeader::new(Some(signer().key_id()))),
        ev.iter().cloned().map(Ok::<_, std::io::Error>),
        &cps,
    )
    .unwrap();
    file.as_file_mut().flush().unwrap();

    let read = || BufReader::new(std::fs::File::open(file.path()).unwrap());
    let records: Vec<JsonlRecord> = JsonlReader::new(read()).map(Result::unwrap).collect();
    assert_eq!(records.len(), 1 + 50 + 4);
    assert_eq!(
        records[0],
        JsonlRecord::Header(JsonlHeader::new(Some(signer().key_id())))
    );
    // Each checkpoint right after its event.
    assert_eq!(records[10], JsonlRecord::Event(ev[9].clone()));
    assert_eq!(records[11], JsonlRecord::Checkpoint(cps[1].clone()));
    let events_back: Vec<AuditEvent> = records
        .into_iter()
        .filter_map(|r| match r {
            JsonlRecord::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events_back, ev);

    let report = verify_jsonl(read(), &[signer().verifier_key()], Start::Genesis).unwrap();
    assert_eq!(
        (
            report.events_checked,
            report.checkpoints_verified,
            report.uncovered_events
        ),
        (50, 4, 0)
    );
}

#[test]
fn numbers_and_odd_strings_survive_the_round_trip() {
    let mut chain = periscope_audit::Chain::new();
    let e = chain
        .append(
            periscope_audit::EventDraft::new(crate::common::time(1), "ren\u{e9}\u{1F600}", "query", "")
                .with_details(json!({
                    "f": [0.1, 1.0, -0.0, 1e21, 2.5e-8, 18446744073709551615u64, -9223372036854775808i64],
                    "s": "\u{0}\u{1f}\u{7f}\u{2028}\"\\/",
                })),
        )
        .unwrap();
    let cps = [signer().sign_checkpoint(e.head(), crate::common::time(2))];
    let text = export(std::slice::from_ref(&e), &cps);
    assert_eq!(
        verify_text(&text, Start::Genesis)
            .unwrap()
            .checkpoints_verified,
        1
    );
}

#[test]
fn windows_line_endings_and_a_missing_final_newline_are_read() {
    let ev = events(3);
    let text = export(&ev, &checkpoints(&ev, &[3]));
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(
        verify_text(&crlf, Start::Genesis).unwrap().events_checked,
        3
    );
    let no_final = text.trim_end_matches('\n');
    assert_eq!(
        verify_text(no_final, Start::Genesis)
            .unwrap()
            .checkpoints_verified,
        1
    );
    // And the header is optional.
    let headerless: String = text.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        verify_text(&headerless, Start::Genesis)
            .unwrap()
            .events_checked,
        3
    );
}

#[test]
fn partial_export_carries_the_checkpoint_before_its_start() {
    let ev = events(12);
    let cps = checkpoints(&ev, &[4, 8, 12]);
    let text = export(&ev[8..], &cps);
    let lines: Vec<&str> = text.lines().collect();
    // header, checkpoints 4 and 8 (before the first event, seq 9), events 9..12, checkpoint 12
    assert!(lines[1].contains(r#""type":"checkpoint","seq":4"#));
    assert!(lines[2].contains(r#""type":"checkpoint","seq":8"#));
    assert!(lines[3].contains(r#""type":"event","seq":9"#));

    let report = verify_text(&text, Start::AsGiven).unwrap();
    assert!(report.anchor_vouched);
    assert_eq!(
        (
            report.checkpoints_before_start,
            report.checkpoints_verified,
            report.first_seq
        ),
        (1, 2, Some(9))
    );
    // The same file is not a whole log.
    let err = verify_text(&text, Start::Genesis).unwrap_err();
    assert_eq!(
        err.to_string(),
        "events seq 1 to 8 are missing: the log starts at seq 9 (rows were deleted)"
    );
}

#[test]
fn tampering_with_the_file() {
    let ev = events(6);
    let text = export(&ev, &checkpoints(&ev, &[3, 6]));
    // Lines: 1 header, 2..4 events 1..3, 5 checkpoint 3, 6..8 events 4..6, 9 checkpoint 6.

    let edited = text.replacen(r#""actor":"user1""#, r#""actor":"nobody""#, 1);
    let err = verify_text(&edited, Start::Genesis).unwrap_err();
    assert_eq!(err.seq(), Some(1));
    assert!(
        err.to_string().starts_with("event seq 1 was altered"),
        "{err}"
    );

    let lines: Vec<&str> = text.lines().collect();
    let drop = |n: &[usize]| -> String {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !n.contains(&(i + 1)))
            .map(|(_, l)| format!("{l}\n"))
            .collect()
    };
    assert_eq!(
        verify_text(&drop(&[3]), Start::Genesis).unwrap_err().seq(),
        Some(2)
    );
    // Cutting the tail together with its checkpoint: only what remains signed is proven,
    // and the report says the rest is unsigned. An auditor who kept the last checkpoint
    // passes it in and catches the cut (see `kept_checkpoint_catches_a_cut_tail`).
    let cut = drop(&[7, 8, 9]);
    let report = verify_text(&cut, Start::Genesis).unwrap();
    assert_eq!((report.last.unwrap().seq, report.uncovered_events), (4, 1));
    // Cutting the tail but leaving its checkpoint.
    let err = verify_text(&drop(&[7, 8]), Start::Genesis).unwrap_err();
    assert_eq!(err.seq(), Some(5));
    assert!(
        err.to_string()
            .starts_with("events after seq 4 are missing"),
        "{err}"
    );
}

#[test]
fn kept_checkpoint_catches_a_cut_tail() {
    let ev = events(6);
    let cps = checkpoints(&ev, &[3, 6]);
    // The store lost events 5, 6 and checkpoint 6; the auditor kept checkpoint 6.
    let text = export(&ev[..4], &cps[..1]);
    let kept = cps[1].clone();
    let keys = [signer().verifier_key()];
    let mut verifier = periscope_audit::ChainVerifier::new(&keys, Start::Genesis);
    verifier.add_checkpoint(kept).unwrap();
    for record in JsonlReader::new(text.as_bytes()) {
        match record.unwrap() {
            JsonlRecord::Event(e) => verifier.add_event(&e).unwrap(),
            JsonlRecord::Checkpoint(c) => verifier.add_checkpoint(c).unwrap(),
            JsonlRecord::Header(_) => {}
        }
    }
    let err = verifier.finish().unwrap_err();
    assert_eq!(err.seq(), Some(5));
}

#[test]
fn every_damaged_line_gets_a_precise_error() {
    let ev = events(3);
    let text = export(&ev, &checkpoints(&ev, &[3]));
    let event2 = text.lines().nth(2).unwrap().to_owned();
    let cases: Vec<(String, &str)> = vec![
        (
            with_line(&text, 3, "not json"),
            "the export is malformed after event seq 1: line 3 is not a JSON object: expected ident (column 2)",
        ),
        (
            with_line(&text, 3, "[1,2]"),
            "the export is malformed after event seq 1: line 3 is not a JSON object: the line is not an object",
        ),
        (
            with_line(&text, 3, &event2.replace(r#""type":"event","#, "")),
            "the export is malformed after event seq 1: line 3 has no \"type\" field",
        ),
        (
            with_line(
                &text,
                3,
                &event2.replace(r#""type":"event""#, r#""type":"evnt""#),
            ),
            "the export is malformed after event seq 1: line 3 has unknown type \"evnt\" (expected \"event\", \"checkpoint\" or \"header\")",
        ),
        (
            with_line(
                &text,
                3,
                &event2.replace(r#""type":"event""#, r#""type":7"#),
            ),
            "the export is malformed after event seq 1: line 3 has a \"type\" that is not a string: 7",
        ),
        (
            with_line(&text, 3, &event2.replace(r#","hash":"#, r#","hsh":"#)),
            "the export is malformed after event seq 1: line 3 is not a valid event record: unknown field `hsh`, expected one of `seq`, `time`, `actor`, `action`, `target`, `details`, `grant_ids`, `prev_hash`, `hash`",
        ),
        (
            with_line(&text, 3, &event2.replace(r#""actor":"user2","#, "")),
            "the export is malformed after event seq 1: line 3 is not a valid event record: missing field `actor`",
        ),
        (
            with_line(&text, 3, &event2.replace(".002000Z", ".002Z")),
            "the export is malformed after event seq 1: line 3 is not a valid event record: time \"2026-11-29T05:00:00.002Z\" is not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC, microseconds)",
        ),
        (
            with_line(&text, 3, &event2.replace(r#""seq":2"#, r#""seq":-2"#)),
            "the export is malformed after event seq 1: line 3 is not a valid event record: invalid value: integer `-2`, expected u64",
        ),
        (
            with_line(&text, 3, ""),
            "the export is malformed after event seq 1: line 3 is empty, but every line must be one JSON record",
        ),
        (
            with_line(&text, 3, text.lines().next().unwrap()),
            "the export is malformed after event seq 1: line 3 holds a header, which is only allowed on the first line",
        ),
        (
            with_line(
                &text,
                1,
                r#"{"type":"header","format":"periscope-audit-jsonl","version":2}"#,
            ),
            "the export is malformed: line 1 announces format \"periscope-audit-jsonl\" version 2; this verifier reads \"periscope-audit-jsonl\" version 1",
        ),
        (
            with_line(
                &text,
                1,
                r#"{"type":"header","format":"other","version":1}"#,
            ),
            "the export is malformed: line 1 announces format \"other\" version 1; this verifier reads \"periscope-audit-jsonl\" version 1",
        ),
    ];
    for (damaged, expected) in cases {
        let err = verify_text(&damaged, Start::Genesis).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(
            err.seq(),
            if expected.contains("after event seq 1") {
                Some(2)
            } else {
                None
            }
        );
    }

    // Hash spelled in capitals: refused, not normalised.
    let upper = ev[1].hash.to_hex().to_uppercase();
    let damaged = with_line(&text, 3, &event2.replace(&ev[1].hash.to_hex(), &upper));
    let err = verify_text(&damaged, Start::Genesis)
        .unwrap_err()
        .to_string();
    let first_letter = upper.chars().find(char::is_ascii_uppercase).unwrap();
    assert_eq!(
        err,
        format!(
            "the export is malformed after event seq 1: line 3 is not a valid event record: a \
             hash must be 64 lowercase hex digits, found {first_letter:?}"
        )
    );
}

#[test]
fn invalid_utf8_and_overlong_lines() {
    let ev = events(2);
    let text = export(&ev, &[]);
    let mut bytes = text.clone().into_bytes();
    let at = text.find("user2").unwrap();
    bytes[at] = 0xff;
    let err =
        verify_jsonl(bytes.as_slice(), &[signer().verifier_key()], Start::Genesis).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the export is malformed after event seq 1: line 3 is not valid UTF-8"
    );

    let mut long = text.into_bytes();
    long.extend(std::iter::repeat_n(b' ', MAX_LINE_BYTES + 10));
    let err =
        verify_jsonl(long.as_slice(), &[signer().verifier_key()], Start::Genesis).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the export is malformed after event seq 2: line 4 is longer than 16 MiB"
    );
}

#[test]
fn reader_stops_after_the_first_bad_line() {
    let ev = events(3);
    let text = with_line(&export(&ev, &[]), 2, "garbage");
    let mut reader = JsonlReader::new(text.as_bytes());
    assert!(matches!(reader.next(), Some(Ok(JsonlRecord::Header(_)))));
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.line, 2);
    assert!(reader.next().is_none());
}

#[test]
fn io_errors_are_reported_with_their_line() {
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("cable unplugged"));
            }
            self.0 -= 1;
            let line =
                b"{\"type\":\"header\",\"format\":\"periscope-audit-jsonl\",\"version\":1}\n";
            buf[..line.len()].copy_from_slice(line);
            Ok(line.len())
        }
    }
    let err = verify_jsonl(
        BufReader::new(Failing(1)),
        &[signer().verifier_key()],
        Start::Genesis,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the export is malformed: line 2 could not be read: cable unplugged"
    );
}

#[test]
fn member_order_does_not_matter_but_duplicates_are_refused() {
    let ev = events(3);
    let text = export(&ev, &checkpoints(&ev, &[3]));
    // Re-serialise every record with its members sorted, which puts "type" last
    // (what `jq -S` would do to a file).
    let sorted: String = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!("{}\n", periscope_audit::canonical_json(&v))
        })
        .collect();
    assert!(
        sorted
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(r#""type":"event"}"#)
    );
    let report = verify_text(&sorted, Start::Genesis).unwrap();
    assert_eq!((report.events_checked, report.checkpoints_verified), (3, 1));

    // A member given twice is ambiguous (parsers keep the first or the last one).
    let line = text.lines().nth(2).unwrap();
    for twice in [
        line.replacen(
            r#""actor":"user2""#,
            r#""actor":"user2","actor":"mallory""#,
            1,
        ),
        line.replacen(r#""type":"event""#, r#""type":"event","type":"event""#, 1),
    ] {
        let err = verify_text(&with_line(&text, 3, &twice), Start::Genesis).unwrap_err();
        let name = if twice.contains("mallory") {
            "actor"
        } else {
            "type"
        };
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "the export is malformed after event seq 1: line 3 has the member \"{name}\" twice"
            )),
            "{message}"
        );
    }
}
