//! Commands through the gateway, end to end: the real `periscope up` and the
//! real `periscope exec` CLI running `/bin/cat` and `/bin/sleep` on an exec
//! connection: masked streaming, exit codes, refusals with the shield and
//! the request command, grants that lift a sensitive pattern or a mask, a
//! grant's expiry killing a running command, and the audit trail.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{Run, run};
use crate::support::gateway::{admin, audit, eventually, expect, start};
use periscope_testkit::{ApiClient, GatewayOptions, GatewayProcess};
use serde_json::{Value, json};

const EMAIL: &str = "alice.martin@example.com";
const CARD: &str = "4111 1111 1111 1111";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

struct World {
    gw: GatewayProcess,
    admin: ApiClient,
    dev: ApiClient,
    dev_token: String,
    fixture: PathBuf,
    profile: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

fn config(fixture: &Path) -> String {
    let fixture = fixture.display();
    format!(
        r#"
[[connection]]
name = "files"
kind = "exec"
command = ["/bin/cat"]
allow = ["{fixture}", "/nonexistent/*"]
sensitive = ["/etc/*"]
timeout = "1m"

[[connection]]
name = "slow"
kind = "exec"
command = ["/bin/sleep"]
allow = ["0"]
sensitive = ["313"]

[[role]]
name = "dev"
connections = ["files", "slow"]
may_lift = ["command:*", "unmask:email"]
max_duration = "1h"
approvals = 0
"#
    )
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("orders.log");
    std::fs::write(
        &fixture,
        format!("order 1 by {EMAIL} paid with {CARD}\ndeploy key {AWS_KEY}\nno newline at the end"),
    )
    .unwrap();
    let gw = start(
        GatewayOptions::default()
            .config(config(&fixture))
            .test_clock(true),
    )
    .await;
    let admin = admin(&gw);
    expect(
        &admin
            .post(
                "/v1/admin/users",
                &json!({ "name": "dana", "roles": ["dev"] }),
            )
            .await
            .unwrap(),
        201,
    );
    let token = expect(
        &admin
            .post("/v1/admin/users/dana/tokens", &json!({}))
            .await
            .unwrap(),
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = gw.client(Some(&token)).unwrap();
    World {
        gw,
        admin,
        dev,
        dev_token: token,
        fixture,
        profile: tempfile::tempdir().unwrap(),
        _dir: dir,
    }
}

impl World {
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = crate::support::cli::periscope(self.profile.path());
        cmd.args(["exec", "--url", self.gw.api_url(), "--ca-file"])
            .arg(self.gw.ca_file())
            .args(args)
            .env("PERISCOPE_TOKEN", &self.dev_token);
        cmd
    }

    fn exec(&self, args: &[&str]) -> Run {
        run(&mut self.cli(args))
    }

    async fn grant(&self, connection: &str, lift: &str, duration: &str) -> String {
        let r = self
            .dev
            .post(
                "/v1/requests",
                &json!({
                    "connection": connection,
                    "lifts": [lift],
                    "duration": duration,
                    "reason": "INC-7 a stuck deployment",
                }),
            )
            .await
            .unwrap();
        let body = expect(&r, 201);
        body["grant_id"]
            .as_str()
            .unwrap_or_else(|| panic!("granted at once: {body}"))
            .to_string()
    }

    /// Every audit event, as text: what must never hold an unmasked value.
    async fn audit_text(&self) -> String {
        let all = audit(&self.admin, "limit=1000").await;
        serde_json::to_string(&all).unwrap()
    }
}

fn assert_masked(text: &str) {
    for value in [EMAIL, CARD, AWS_KEY, "4111111111111111"] {
        assert!(!text.contains(value), "`{value}` leaked in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_commands_stream_masked_output_and_keep_their_exit_code() {
    let w = world().await;
    let fixture = w.fixture.display().to_string();
    let ok = w.exec(&["files", "--", &fixture]);
    assert_eq!(
        ok.ok(),
        "order 1 by [email] paid with [card]\ndeploy key [aws_access_key]\nno newline at the end",
        "{}",
        ok.both()
    );
    // The program's own failure: its exit code and stderr, masked (the
    // argument holds an e-mail address).
    let missing = w.exec(&["files", "--", "/nonexistent/bob@example.org"]);
    missing.code(1);
    assert_eq!(missing.stdout, "");
    assert!(
        missing
            .stderr
            .contains("/nonexistent/[email]: No such file or directory"),
        "{}",
        missing.both()
    );
    assert!(!missing.stderr.contains("bob@example.org"));

    // A grant lifting `unmask:email` shows e-mail addresses, nothing else.
    w.grant("files", "unmask:email", "30m").await;
    let lifted = w.exec(&["files", "--", &fixture]);
    let out = lifted.ok();
    assert!(out.contains(EMAIL), "{out}");
    assert!(
        out.contains("[card]") && out.contains("[aws_access_key]"),
        "{out}"
    );

    let starts = audit(&w.admin, "action=exec.start").await;
    assert_eq!(starts.len(), 3, "{starts:?}");
    let ends = audit(&w.admin, "action=exec.end").await;
    assert_eq!(ends.len(), 3, "{ends:?}");
    let first = ends
        .iter()
        .find(|e| e["details"]["exit_code"] == 0 && e["details"]["masked"]["email"] == 1)
        .unwrap_or_else(|| panic!("the first run's end: {ends:?}"));
    assert_eq!(first["details"]["reason"], "exited");
    assert_eq!(first["details"]["masked"]["card"], 1);
    assert_eq!(first["details"]["masked"]["aws_access_key"], 1);
    assert!(first["details"]["stdout_bytes"].as_u64().unwrap() > 60);
    assert!(
        ends.iter().any(|e| e["details"]["exit_code"] == 1),
        "{ends:?}"
    );
    // The audit holds the arguments masked and never an output value; the
    // e-mail unmasked by the grant is in the client's output only.
    let text = w.audit_text().await;
    assert_masked(&text);
    assert!(!text.contains("bob@example.org"), "{text}");
    assert!(text.contains("/nonexistent/[email]"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unlisted_and_sensitive_commands_are_refused_until_a_grant_lifts_them() {
    let w = world().await;
    let sensitive = w.exec(&["files", "--", "/etc/hostname"]);
    sensitive.code(1);
    assert!(
        sensitive
            .stderr
            .contains("command blocked by shield `command:/etc/*` on connection `files`"),
        "{}",
        sensitive.both()
    );
    assert!(
        sensitive
            .stderr
            .contains("periscope request files --lift 'command:/etc/*' --for"),
        "{}",
        sensitive.both()
    );
    assert_eq!(sensitive.stdout, "");

    // Not on the allow-list: no grant can lift it; shell metacharacters are
    // just text (no shell ever sees them).
    let unlisted = w.exec(&["files", "--", "/tmp/x; cat /etc/passwd"]);
    unlisted.code(1);
    assert!(
        unlisted
            .stderr
            .contains("command not on the allow-list of connection `files`"),
        "{}",
        unlisted.both()
    );
    assert!(
        unlisted.stderr.contains("ask an administrator"),
        "{}",
        unlisted.both()
    );

    // Another data plane's connection is not an exec connection, and an exec
    // connection cannot be reached with psql's secret either.
    let connect = w
        .dev
        .post("/v1/connect", &json!({ "connection": "files" }))
        .await
        .unwrap();
    assert_eq!(connect.status, 403, "{}", connect.body);
    assert!(
        connect.body.contains("periscope exec files"),
        "{}",
        connect.body
    );

    let grant = w.grant("files", "command:/etc/*", "30m").await;
    let allowed = w.exec(&["files", "--", "/etc/hostname"]);
    assert!(!allowed.ok().is_empty(), "{}", allowed.both());

    let refused = audit(&w.admin, "action=exec.refused").await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|e| e["details"]["shield"] == "command:/etc/*"
                && e["details"]["reason"] == "sensitive"),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|e| e["details"]["reason"] == "not_listed"),
        "{refused:?}"
    );
    let starts = audit(&w.admin, "action=exec.start").await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["details"]["lifted_by"], grant.as_str());
    assert_eq!(starts[0]["details"]["pattern"], "/etc/*");
}

/// Whether a process runs `/bin/sleep ARG`.
fn sleeping(arg: &str) -> bool {
    let wanted = format!("/bin/sleep\0{arg}\0");
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_grant_expiry_kills_a_running_command_within_a_second() {
    let w = world().await;
    let grant = w.grant("slow", "command:313", "1m").await;
    let mut child: Child = w
        .cli(&["slow", "--", "313"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Running: the gateway lists the session and the process exists.
    eventually("the command to run", Duration::from_secs(10), || async {
        let sessions = expect(&w.admin.get("/v1/sessions").await.unwrap(), 200);
        let listed = sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["connection"] == "slow");
        (listed && sleeping("313")).then_some(())
    })
    .await;
    expect(
        &w.admin
            .post("/v1/test/clock", &json!({ "advance": "61s" }))
            .await
            .unwrap(),
        200,
    );
    let advanced = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            advanced.elapsed() < Duration::from_secs(5),
            "the command still runs 5 s after its grant expired"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = advanced.elapsed();
    eprintln!("the CLI exited {took:?} after the grant expired");
    assert!(took < Duration::from_secs(1), "killed after {took:?}");
    assert!(!sleeping("313"), "the process group is gone");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(137), "{stderr}");
    assert!(
        stderr.contains(&format!("grant {grant} expired")),
        "{stderr}"
    );
    assert!(
        stderr.contains("periscope request slow --lift command:313"),
        "{stderr}"
    );
    let ends = eventually("exec.end", Duration::from_secs(5), || async {
        let ends = audit(&w.admin, "action=exec.end").await;
        (!ends.is_empty()).then_some(ends)
    })
    .await;
    let end: &Value = &ends[0];
    assert_eq!(end["details"]["reason"], "cut", "{end}");
    assert_eq!(end["details"]["signal"], 9, "{end}");
    assert!(
        end["details"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{end}"
    );
    // Without the grant, the sensitive pattern is refused again.
    let again = w.exec(&["slow", "--", "313"]);
    again.code(1);
    assert!(again.stderr.contains("`command:313`"), "{}", again.both());
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_in_the_cli_stops_the_command() {
    let w = world().await;
    w.grant("slow", "command:313", "30m").await;
    let mut child: Child = w
        .cli(&["slow", "--", "313"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the command to run", Duration::from_secs(10), || async {
        sleeping("313").then_some(())
    })
    .await;
    let interrupted = Command::new("/bin/kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let out = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert_eq!(out.0.code(), Some(130), "{}", out.1);
    assert!(out.1.contains("interrupted"), "{}", out.1);
    // The gateway saw the stream close and killed the process group.
    eventually("the command to end", Duration::from_secs(5), || async {
        (!sleeping("313")).then_some(())
    })
    .await;
    let end = eventually("exec.end", Duration::from_secs(5), || async {
        audit(&w.admin, "action=exec.end").await.into_iter().next()
    })
    .await;
    assert_eq!(end["details"]["reason"], "client_gone", "{end}");
}
