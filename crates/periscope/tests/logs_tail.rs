//! Log sources through the gateway, end to end: the real `periscope up` and
//! the real `periscope logs` CLI on a `logs` connection over real files and
//! real processes: masked lines, `--grep` on the masked text, unknown
//! sources, uncovered connections, a follow that sees appends, rotation and
//! truncation and ends when the unmask grant it relied on is revoked, a
//! client that stops reading (back-pressure), and the audit trail.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use crate::support::cli::{Run, run};
use crate::support::gateway::{admin, audit, eventually, expect, start};
use periscope_testkit::{ApiClient, GatewayOptions, GatewayProcess};
use serde_json::json;

const EMAIL: &str = "alice.martin@example.com";
const CARD: &str = "4111 1111 1111 1111";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

struct World {
    gw: GatewayProcess,
    admin: ApiClient,
    dev: ApiClient,
    dev_token: String,
    dir: tempfile::TempDir,
    profile: tempfile::TempDir,
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
[[connection]]
name = "app"
kind = "logs"
journalctl = "/bin/echo"
max_output = 1073741824

[connection.sources.web]
files = ["{d}/web.log*"]

[connection.sources.big]
files = ["{d}/big.log"]

[connection.sources.units]
journal = ["nginx.service"]

[connection.sources.cmd]
command = ["/bin/cat", "{d}/web.log"]

[[connection]]
name = "other"
kind = "logs"
sources = {{ web = {{ files = ["{d}/web.log"] }} }}

[[role]]
name = "dev"
connections = ["app"]
may_lift = ["unmask:email"]
max_duration = "1h"
approvals = 0
"#
    )
}

fn append(path: &Path, text: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text).unwrap();
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    append(
        &dir.path().join("web.log"),
        format!(
            "2020-01-01T00:00:00Z old order by {EMAIL}\n\
             2099-01-01T00:00:00Z order 1 by {EMAIL} paid with {CARD}\n\
             2099-01-01T00:00:01Z deploy key {AWS_KEY} bytes \u{1}\n"
        )
        .as_bytes(),
    );
    append(
        &dir.path().join("web.log"),
        b"2099-01-01T00:00:02Z not utf-8 \xff\xfe end\n",
    );
    let gw = start(
        GatewayOptions::default()
            .config(config(dir.path()))
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
        dir,
        profile: tempfile::tempdir().unwrap(),
    }
}

impl World {
    fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = crate::support::cli::periscope(self.profile.path());
        cmd.args(["logs", "--url", self.gw.api_url(), "--ca-file"])
            .arg(self.gw.ca_file())
            .args(args)
            .env("PERISCOPE_TOKEN", &self.dev_token);
        cmd
    }

    fn logs(&self, args: &[&str]) -> Run {
        run(&mut self.cli(args))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn audit_text(&self) -> String {
        serde_json::to_string(&audit(&self.admin, "limit=1000").await).unwrap()
    }
}

fn assert_masked(text: &str) {
    for value in [EMAIL, CARD, AWS_KEY, "4111111111111111"] {
        assert!(!text.contains(value), "`{value}` leaked in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn log_sources_are_read_masked_filtered_and_audited() {
    let w = world().await;
    let out = w.logs(&["app", "web"]);
    let text = out.ok();
    assert_masked(text);
    assert!(
        text.contains("order 1 by [email] paid with [card]\n"),
        "{text}"
    );
    assert!(text.contains("deploy key [aws_access_key]"), "{text}");
    assert!(text.contains("not utf-8 \u{fffd}\u{fffd} end\n"), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");

    // --since by the lines' timestamps; --grep on the masked text: the
    // address itself is not there to be found, its placeholder is.
    let recent = w.logs(&["app", "web", "--since", "1h"]);
    assert_eq!(recent.ok().lines().count(), 3, "{}", recent.both());
    let probe = w.logs(&["app", "web", "--grep", EMAIL]);
    assert_eq!(probe.ok(), "", "a grep cannot probe a masked value");
    let placeholder = w.logs(&["app", "web", "--grep", r"\[card\]"]);
    assert_eq!(placeholder.ok().lines().count(), 1);

    // A command source and a journal source (journalctl is /bin/echo here,
    // so the output is the argv the gateway gave it).
    let cmd = w.logs(&["app", "cmd"]);
    assert_masked(cmd.ok());
    assert!(cmd.ok().contains("[email]"));
    let units = w.logs(&["app", "units"]);
    assert_eq!(
        units.ok(),
        "--no-pager --output=short-iso --unit=nginx.service\n"
    );

    // Clear errors: an unknown source lists the others; several sources
    // need a name; a command source without follow_args cannot be followed;
    // a bad --grep; a connection the role does not cover.
    let unknown = w.logs(&["app", "nope"]);
    unknown.code(1);
    assert!(
        unknown.stderr.contains(
            "connection `app` has no log source `nope`; its sources: `big`, `cmd`, `units`, `web`"
        ),
        "{}",
        unknown.both()
    );
    let several = w.logs(&["app"]);
    several.code(1);
    assert!(
        several.stderr.contains("has several log sources"),
        "{}",
        several.both()
    );
    let follow = w.logs(&["app", "cmd", "--follow"]);
    follow.code(1);
    assert!(
        follow.stderr.contains("cannot be followed"),
        "{}",
        follow.both()
    );
    let bad = w.logs(&["app", "web", "--grep", "("]);
    bad.code(1);
    assert!(
        bad.stderr.contains("not a valid regular expression"),
        "{}",
        bad.both()
    );
    let uncovered = w.logs(&["other", "web"]);
    assert_ne!(uncovered.code, Some(0));
    assert_eq!(uncovered.stdout, "");
    assert!(uncovered.stderr.contains("other"), "{}", uncovered.both());
    let refused = audit(&w.admin, "action=session.refused").await;
    assert!(
        refused
            .iter()
            .any(|e| e["target"] == "other" && e["details"]["via"] == "logs"),
        "{refused:?}"
    );

    let starts = audit(&w.admin, "action=logs.start").await;
    assert_eq!(starts.len(), 6, "{starts:?}");
    let ends = audit(&w.admin, "action=logs.end").await;
    assert_eq!(ends.len(), 6, "{ends:?}");
    let first = ends
        .iter()
        .find(|e| e["details"]["lines"] == 4 && e["details"]["source"] == "web")
        .unwrap_or_else(|| panic!("the first read's end: {ends:?}"));
    assert_eq!(first["details"]["reason"], "exited");
    assert_eq!(first["details"]["masked"]["email"], 2);
    assert_eq!(first["details"]["masked"]["card"], 1);
    assert!(first["details"]["bytes"].as_u64().unwrap() > 100);
    let text = w.audit_text().await;
    assert_masked(&text);
    // The grep pattern holding an address is audited masked.
    assert!(text.contains(r#""grep":"[email]""#), "{text}");

    // Every read is recorded as its reader saw it, masked, and sealed
    // before its end event.
    let first_session = first["details"]["session"].as_str().unwrap();
    let seals = audit(&w.admin, "action=recording.sealed").await;
    let seal = seals
        .iter()
        .find(|e| e["details"]["session"] == first_session)
        .unwrap_or_else(|| panic!("the first read's seal: {seals:?}"));
    assert!(
        seal["seq"].as_u64() < first["seq"].as_u64(),
        "sealed before logs.end"
    );
    let id = seal["details"]["recording"].as_str().unwrap();
    let cast = w.dev.get(&format!("/v1/recordings/{id}")).await.unwrap();
    assert_eq!(cast.status, 200, "{}", cast.body);
    assert!(
        cast.body.contains("periscope logs app web")
            && cast.body.contains("order 1 by [email] paid with [card]"),
        "{}",
        cast.body
    );
    assert_masked(&cast.body);
}

/// The lines a running CLI prints, as they come.
fn lines_of(child: &mut Child) -> std_mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

fn next_line(rx: &std_mpsc::Receiver<String>) -> String {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("a line within 10 s")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_sees_appends_rotation_truncation_and_ends_when_its_grant_is_revoked() {
    let w = world().await;
    let grant = expect(
        &w.dev
            .post(
                "/v1/requests",
                &json!({
                    "connection": "app",
                    "lifts": ["unmask:email"],
                    "duration": "30m",
                    "reason": "INC-9 who placed order 1",
                }),
            )
            .await
            .unwrap(),
        201,
    )["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let log = w.path("web.log");
    let mut child = w
        .cli(&["app", "web", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut child);
    // Following starts at the end: the session is listed once it runs.
    eventually("the follow to run", Duration::from_secs(10), || async {
        let sessions = expect(&w.admin.get("/v1/sessions").await.unwrap(), 200);
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["application_name"] == "periscope logs")
            .then_some(())
    })
    .await;
    append(
        &log,
        format!("appended by {EMAIL} with {CARD}\n").as_bytes(),
    );
    // The grant unmasks e-mail addresses, nothing else.
    assert_eq!(
        next_line(&lines),
        format!("appended by {EMAIL} with [card]")
    );
    append(&log, b"before rotation\n");
    std::fs::rename(&log, w.path("web.log.1")).unwrap();
    append(&log, b"after rotation\n");
    assert_eq!(next_line(&lines), "before rotation");
    assert_eq!(next_line(&lines), "after rotation");
    std::fs::File::create(&log).unwrap();
    append(&log, b"truncated\n");
    assert_eq!(next_line(&lines), "truncated");

    expect(
        &w.admin
            .post(&format!("/v1/grants/{grant}/revoke"), &json!({}))
            .await
            .unwrap(),
        200,
    );
    let revoked = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "the follow still runs 5 s after its grant was revoked"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = revoked.elapsed();
    eprintln!("the follow ended {took:?} after the grant was revoked");
    assert!(took < Duration::from_secs(1), "ended after {took:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("grant {grant}")), "{stderr}");
    assert!(stderr.contains("revoked"), "{stderr}");
    let end = eventually("logs.end", Duration::from_secs(5), || async {
        audit(&w.admin, "action=logs.end").await.into_iter().next()
    })
    .await;
    assert_eq!(end["details"]["reason"], "cut", "{end}");
    assert_eq!(end["details"]["lines"], 4, "{end}");
    // Without the grant, the address is masked again.
    let again = w.logs(&["app", "web", "--grep", "appended"]);
    assert_eq!(again.ok(), "appended by [email] with [card]\n");
}

/// A status line of `/proc/PID/status`, in KiB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Where the gateway's read of `path` is, if it has the file open.
fn read_position(pid: u32, path: &Path) -> Option<u64> {
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if std::fs::read_link(fd.path()).is_ok_and(|target| target == path) {
            let info =
                std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str()?))
                    .ok()?;
            return info
                .lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_stalls_the_read_in_bounded_memory() {
    let w = world().await;
    let pid = w.gw.pid().expect("the gateway runs");
    // 64 MiB of log lines, one 8 MiB line without a newline among them.
    let big = w.path("big.log");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let line = format!("2099-01-01T00:00:00Z order by {EMAIL} paid\n");
        for _ in 0..(28 << 20) / line.len() {
            f.write_all(line.as_bytes()).unwrap();
        }
        f.write_all(&vec![b'x'; 8 << 20]).unwrap();
        for _ in 0..(28 << 20) / line.len() {
            f.write_all(line.as_bytes()).unwrap();
        }
    }
    let size = std::fs::metadata(&big).unwrap().len();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let baseline = status_kb(pid, "VmRSS:");
    // The CLI's stdout is a pipe nobody reads: it blocks once the pipe is
    // full, stops reading the stream, and the gateway must stop too.
    let mut child = w
        .cli(&["app", "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The read stalls: the gateway's position in the file stops moving,
    // well before its end.
    let mut last = None;
    let mut still_since = Instant::now();
    let started = Instant::now();
    let stalled_at = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "never stalled");
        let pos = read_position(pid, &big);
        if let Some(at) = pos
            && pos == last
        {
            if still_since.elapsed() > Duration::from_secs(1) {
                break at;
            }
        } else {
            last = pos;
            still_since = Instant::now();
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the CLI ended: the whole file was read without back-pressure"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let peak = status_kb(pid, "VmHWM:");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "stalled at {stalled_at} of {size} bytes; gateway RSS baseline {} KiB, peak {} KiB (+{} KiB)",
        baseline, peak, growth
    );
    assert!(stalled_at < size / 2, "read {stalled_at} of {size} bytes");
    assert!(growth < 16 * 1024, "the gateway grew by {growth} KiB");
    // The client goes away: the read ends, audited as such.
    child.kill().unwrap();
    child.wait().unwrap();
    let end = eventually("logs.end", Duration::from_secs(10), || async {
        audit(&w.admin, "action=logs.end").await.into_iter().next()
    })
    .await;
    assert_eq!(end["details"]["reason"], "client_gone", "{end}");
    assert!(end["details"]["bytes"].as_u64().unwrap() < size, "{end}");
}
