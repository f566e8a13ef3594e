//! Recordings of exec sessions, end to end: the real gateway records what
//! the engineer saw (masked) as asciicast v2, seals its SHA-256 into the
//! audit chain, serves it to its owner and administrators only, plays it back
//! with `periscope recordings play`, and `audit verify` (online, and offline
//! from an export with `--recordings`) names a recording edited by one byte.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::cli::{Run, run};
use crate::support::gateway::{admin, audit, expect, start};
use periscope_testkit::{ApiClient, GatewayOptions, GatewayProcess};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const EMAIL: &str = "alice.martin@example.com";
const CARD: &str = "4111 1111 1111 1111";

struct World {
    gw: GatewayProcess,
    admin: ApiClient,
    admin_token: String,
    dev: ApiClient,
    dev_token: String,
    other: ApiClient,
    other_token: String,
    fixture: PathBuf,
    profile: tempfile::TempDir,
    dir: tempfile::TempDir,
}

async fn user(admin: &ApiClient, name: &str) -> String {
    expect(
        &admin
            .post(
                "/v1/admin/users",
                &json!({ "name": name, "roles": ["dev"] }),
            )
            .await
            .unwrap(),
        201,
    );
    expect(
        &admin
            .post(&format!("/v1/admin/users/{name}/tokens"), &json!({}))
            .await
            .unwrap(),
        201,
    )["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let fixture = dir.path().join("orders.log");
    std::fs::write(&fixture, format!("order 1 by {EMAIL}\npaid with {CARD}\n")).unwrap();
    let config = format!(
        r#"
[[connection]]
name = "files"
kind = "exec"
command = ["/bin/cat"]
allow = ["{}"]

[[role]]
name = "dev"
connections = ["files"]
"#,
        fixture.display()
    );
    let gw = start(GatewayOptions::default().config(config)).await;
    let admin = admin(&gw);
    let admin_token = gw.bootstrap_token().unwrap().to_string();
    let dev_token = user(&admin, "dana").await;
    let other_token = user(&admin, "erin").await;
    World {
        dev: gw.client(Some(&dev_token)).unwrap(),
        other: gw.client(Some(&other_token)).unwrap(),
        other_token,
        gw,
        admin,
        admin_token,
        dev_token,
        fixture,
        profile: tempfile::tempdir().unwrap(),
        dir,
    }
}

impl World {
    fn cli(&self, token: &str, args: &[&str]) -> Run {
        let mut cmd: Command = crate::support::cli::periscope(self.profile.path());
        // The connection options right after the subcommand's name: after
        // `--`, they would be the command's own arguments.
        cmd.arg(args[0])
            .args(["--url", self.gw.api_url(), "--ca-file"])
            .arg(self.gw.ca_file())
            .args(&args[1..])
            .env("PERISCOPE_TOKEN", token);
        run(&mut cmd)
    }

    fn recordings(&self) -> PathBuf {
        self.gw.data_dir().join("recordings")
    }

    async fn verify_online(&self) -> Value {
        expect(
            &self
                .admin
                .post("/v1/audit/verify", &json!({}))
                .await
                .unwrap(),
            200,
        )
    }

    /// Exports the chain and verifies it offline against `recordings`.
    fn verify_offline(&self, recordings: &Path) -> Run {
        let export = self.dir.path().join("audit.jsonl");
        let _ = std::fs::remove_file(&export);
        self.cli(
            &self.admin_token,
            &["audit", "export", "-o", export.to_str().unwrap()],
        )
        .ok();
        let key = self.gw.data_dir().join("keys/audit-verify.pub");
        let mut cmd = crate::support::cli::periscope(self.profile.path());
        cmd.args(["audit", "verify", "--file"])
            .arg(&export)
            .arg("--public-key")
            .arg(&key)
            .arg("--recordings")
            .arg(recordings);
        run(&mut cmd)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exec_run_is_recorded_masked_sealed_played_and_verified() {
    let w = world().await;
    let fixture = w.fixture.display().to_string();
    let shown = w
        .cli(&w.dev_token, &["exec", "files", "--", &fixture])
        .ok()
        .to_string();
    assert_eq!(shown, "order 1 by [email]\npaid with [card]\n");

    // Sealed before the client's last frame: listed at once.
    let seals = audit(&w.admin, "action=recording.sealed").await;
    assert_eq!(seals.len(), 1, "{seals:?}");
    let seal = &seals[0];
    assert_eq!(seal["actor"], "dana");
    assert_eq!(seal["target"], "files");
    let id = seal["details"]["recording"].as_str().unwrap().to_string();
    assert!(id.starts_with("ses_"), "{id}");
    let starts = audit(&w.admin, "action=exec.start").await;
    assert_eq!(starts[0]["details"]["session"], id.as_str());

    // The file on disk: asciicast v2, masked, and the sealed hash.
    let path = w.recordings().join(format!("{id}.cast"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        seal["details"]["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    assert_eq!(seal["details"]["bytes"], bytes.len() as u64);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(!text.contains(EMAIL) && !text.contains(CARD), "{text}");
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["version"], 2);
    assert!(header["width"].as_u64().unwrap() > 0);
    assert!(
        header["title"].as_str().unwrap().contains("files"),
        "{header}"
    );
    let played: String = text
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<(f64, String, String)>(l).unwrap())
        .filter(|e| e.1 == "o")
        .map(|e| e.2)
        .collect();
    assert_eq!(played, shown);

    // The API and the CLI: the owner and administrators, nobody else.
    let listed = expect(&w.dev.get("/v1/recordings").await.unwrap(), 200);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["identity"], "dana");
    assert_eq!(listed[0]["connection"], "files");
    assert_eq!(listed[0]["sha256"], seal["details"]["sha256"]);
    let theirs = expect(&w.other.get("/v1/recordings").await.unwrap(), 200);
    assert_eq!(theirs, json!([]));
    let denied = w.other.get(&format!("/v1/recordings/{id}")).await.unwrap();
    assert_eq!(denied.status, 404, "{}", denied.body);
    let traversal = w.dev.get("/v1/recordings/..%2Fperiscope.db").await.unwrap();
    assert_eq!(traversal.status, 404, "{}", traversal.body);
    let by_admin = w.admin.get(&format!("/v1/recordings/{id}")).await.unwrap();
    assert_eq!(by_admin.status, 200);
    assert_eq!(by_admin.body.as_bytes(), &bytes[..]);

    let list = w.cli(&w.dev_token, &["recordings", "list"]);
    assert!(list.ok().contains(&id), "{}", list.both());
    let play = w.cli(
        &w.dev_token,
        &[
            "recordings",
            "play",
            &id,
            "--speed",
            "100",
            "--max-idle",
            "10ms",
        ],
    );
    assert_eq!(play.ok(), shown);
    let raw = w.cli(&w.dev_token, &["recordings", "play", &id, "--raw"]);
    assert_eq!(raw.ok().as_bytes(), &bytes[..]);
    let none = w.cli(&w.other_token, &["recordings", "play", &id]);
    none.code(1);
    assert!(
        none.stderr.contains(&format!("no recording `{id}`")),
        "{}",
        none.both()
    );

    // Verification: intact, then one byte edited, then the file gone.
    let ok = w.verify_online().await;
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["summary"]
            .as_str()
            .unwrap()
            .contains("1 sealed recording checked"),
        "{ok}"
    );
    w.verify_offline(&w.recordings()).ok();

    let mut edited = bytes.clone();
    let at = text.find("[email]").unwrap() + 1;
    edited[at] = b'E';
    std::fs::write(&path, &edited).unwrap();
    let bad = w.verify_online().await;
    assert_eq!(bad["ok"], false, "{bad}");
    let summary = bad["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("recording {id} (sealed at seq {})", seal["seq"]))
            && summary.contains("was altered"),
        "{summary}"
    );
    let cli = w.cli(&w.admin_token, &["audit", "verify"]);
    cli.code(1);
    assert!(
        cli.stderr.contains(&format!("recording {id}")),
        "{}",
        cli.both()
    );
    let offline = w.verify_offline(&w.recordings());
    offline.code(1);
    assert!(
        offline.stderr.contains(&format!("recording {id}"))
            && offline.stderr.contains("was altered"),
        "{}",
        offline.both()
    );

    std::fs::remove_file(&path).unwrap();
    let gone = w.verify_online().await;
    assert!(
        gone["summary"].as_str().unwrap().contains("is missing"),
        "{gone}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn recordings_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"
[recordings]
enabled = false

[[connection]]
name = "echo"
kind = "exec"
command = ["/bin/echo"]
allow = ["*"]

[[role]]
name = "dev"
connections = ["echo"]
"#;
    let gw = start(GatewayOptions::default().config(config)).await;
    let admin = admin(&gw);
    let token = user(&admin, "dana").await;
    let mut cmd = crate::support::cli::periscope(dir.path());
    cmd.args(["exec", "--url", gw.api_url(), "--ca-file"])
        .arg(gw.ca_file())
        .args(["echo", "--", "hello"])
        .env("PERISCOPE_TOKEN", &token);
    assert_eq!(run(&mut cmd).ok(), "hello\n");
    assert!(audit(&admin, "action=recording.sealed").await.is_empty());
    assert!(!gw.data_dir().join("recordings").exists());
}
