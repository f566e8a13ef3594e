//! `periscope redact` end to end: the built binary, real pipes and files.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn periscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_periscope"))
}

/// Runs `periscope redact ARGS` with `input` on stdin.
fn redact(args: &[&str], input: &str) -> Output {
    let mut child = periscope()
        .arg("redact")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("periscope starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_string();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("periscope runs");
    match writer.join().expect("writer thread") {
        Ok(()) => {}
        // A refused invocation (bad flags) may exit before reading its input.
        Err(e) if e.kind() == ErrorKind::BrokenPipe && !out.status.success() => {}
        Err(e) => panic!("stdin accepts the input: {e}"),
    }
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

#[test]
fn masks_stdin_line_by_line() {
    let input = "user=alice@example.com card=4111 1111 1111 1111\n\
                 token=ghp_1234567890abcdefghijABCDEFGHIJ123456 from 10.0.0.1\n\
                 nothing here 200 OK\n";
    let out = redact(&[], input);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "user=[email] card=[card]\ntoken=[github_token] from [ip]\nnothing here 200 OK\n"
    );
}

#[test]
fn json_lines_and_report() {
    let input = "{\"email\":\"x\",\"note\":\"call +44 20 7946 0958\",\"n\":1}\n\
                 not json but bob@example.org\n\
                 {\"ok\":true}\n";
    let out = redact(&["--format", "json", "--report"], input);
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "{\"email\":\"[email]\",\"n\":1,\"note\":\"call [phone]\"}\n\
         not json but [email]\n\
         {\"ok\":true}\n"
    );
    let report = stderr(&out);
    assert!(report.contains("3 lines, 3 values masked"), "{report}");
    assert!(
        report.contains("email") && report.contains("phone"),
        "{report}"
    );
    assert!(report.contains("1 lines were not valid JSON"), "{report}");
    // Counts only, never values.
    assert!(
        !report.contains("bob@") && !report.contains("7946"),
        "{report}"
    );
}

#[test]
fn entity_selection() {
    let input = "a@b.io 10.0.0.1 550e8400-e29b-41d4-a716-446655440000\n";
    let only_email = redact(&["--entities", "email"], input);
    assert_eq!(
        stdout(&only_email),
        "[email] 10.0.0.1 550e8400-e29b-41d4-a716-446655440000\n"
    );
    let adjusted = redact(&["--entities", "+uuid,-ip"], input);
    assert_eq!(stdout(&adjusted), "[email] 10.0.0.1 [uuid]\n");
}

#[test]
fn operators_and_token_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("key.hex");
    std::fs::write(&key, format!("{}\n", "ab".repeat(32))).expect("write key");
    let key = key.to_str().expect("utf-8 path");
    let input = "card 4111 1111 1111 1111 mail Alice@Example.com\n";
    let args = [
        "--operator",
        "card=partial",
        "--operator",
        "email=token",
        "--token-key-file",
        key,
    ];
    let first = redact(&args, input);
    let second = redact(&args, "mail alice@example.com\n");
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    assert!(
        text.starts_with("card **** **** **** 1111 mail [email:tok_"),
        "{text}"
    );
    // Same key, same (canonical) value: same token.
    let token = &text[text.find("[email:").expect("token")..].trim_end();
    assert_eq!(stdout(&second), format!("mail {token}\n"));
    // No key: a random one, said on stderr.
    let random = redact(&["--operator", "email=token"], input);
    assert!(random.status.success());
    assert!(
        stderr(&random).contains("random key"),
        "{}",
        stderr(&random)
    );
    assert!(stdout(&random).contains("[email:tok_"));
}

#[test]
fn unreadable_file_is_named_and_others_still_processed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.log");
    std::fs::write(&good, "ip 192.0.2.7\n").expect("write");
    let missing = dir.path().join("missing.log");
    let out = periscope()
        .arg("redact")
        .arg(&missing)
        .arg(&good)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("missing.log"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ip [ip]\n");
}

#[test]
fn bad_flags_and_values_exit_2_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--entities", "e-mail"], "unknown entity `e-mail`"),
        (&["--operator", "card=blur"], "unknown operator `blur`"),
        (&["--format", "xml"], "xml"),
    ];
    for (args, needle) in cases {
        let out = redact(args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("bad.hex");
    std::fs::write(&key, "not hex").expect("write");
    let out = redact(&["--token-key-file", key.to_str().expect("utf-8")], "x\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.hex"), "{}", stderr(&out));
}

#[test]
fn flushes_each_line_through_a_pipe() {
    let mut child = periscope()
        .arg("redact")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("periscope starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let stdout = child.stdout.take().expect("stdout is piped");
    // Lines arrive on a channel, so that a missing flush fails the test
    // (after a generous timeout) instead of hanging it.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.expect("utf-8 line")).is_err() {
                break;
            }
        }
    });
    for i in 0..5 {
        writeln!(stdin, "event {i} from user{i}@example.com").expect("write a line");
        stdin.flush().expect("flush stdin");
        let got = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the line comes back before the next one is written");
        assert_eq!(got, format!("event {i} from [email]"));
    }
    drop(stdin);
    assert!(child.wait().expect("exits").success());
    reader.join().expect("reader thread");
}
