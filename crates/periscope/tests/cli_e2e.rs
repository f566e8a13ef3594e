//! The CLI end to end: a real `periscope up` (test clock, temp data dir) driven by
//! the real `periscope` client binary, one identity per environment, through the
//! stories users live: ask, approve, use, expire, revoke, deny, audit and prove.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::cli::{Run, periscope, run};
use periscope_testkit::{GatewayOptions, GatewayProcess};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[audit]
checkpoint_every = 5

[[connection]]
name = "pg-prod"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"
labels = { env = "prod" }

[[connection]]
name = "pg-staging"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"
labels = { env = "staging" }

[[role]]
name = "dev"
connections = ["pg-prod"]
may_lift = ["unmask:email", "write"]
max_duration = "1h"
approvals = 1
approvers = ["lead"]

[[role]]
name = "lead"
connections = ["pg-prod"]
may_lift = ["unmask:*", "write", "ddl"]
max_duration = "4h"
approvals = 2
approvers = ["sre"]

[[role]]
name = "sre"
connections = ["*"]
may_lift = ["unmask:*", "write"]
max_duration = "1h"
approvers = ["lead", "sre"]
"#;

/// A gateway, its admin token, and a profile directory nobody logs into (each
/// identity is chosen through `PERISCOPE_*` variables, as a script would).
struct World {
    gw: GatewayProcess,
    admin: String,
    home: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        let gw = GatewayProcess::start(
            env!("CARGO_BIN_EXE_periscope"),
            GatewayOptions::default().config(CONFIG).test_clock(true),
        )
        .expect("the gateway starts");
        let admin = gw
            .bootstrap_token()
            .expect("a first start prints the admin token")
            .to_owned();
        World {
            gw,
            admin,
            home: tempfile::tempdir().unwrap(),
        }
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join("config")
    }

    /// The CLI as the holder of `token`.
    fn as_token(&self, token: &str) -> Command {
        let mut cmd = periscope(&self.config_dir());
        cmd.env("PERISCOPE_URL", self.gw.api_url())
            .env("PERISCOPE_TOKEN", token)
            .env("PERISCOPE_CA_FILE", self.gw.ca_file());
        cmd
    }

    /// Runs the CLI as the holder of `token`.
    fn cli(&self, token: &str, args: &[&str]) -> Run {
        run(self.as_token(token).args(args))
    }

    /// Runs the CLI as the admin.
    fn admin(&self, args: &[&str]) -> Run {
        self.cli(&self.admin, args)
    }

    /// Creates an identity and a token for it, through the CLI; returns the token.
    fn user(&self, name: &str, roles: &[&str]) -> String {
        let mut args = vec!["admin", "user", "add", name];
        for role in roles {
            args.extend(["--role", role]);
        }
        let out = self.admin(&args);
        assert!(
            out.ok().contains(&format!(
                "Created identity {name} with roles {}.",
                roles.join(", ")
            )),
            "{}",
            out.both()
        );
        let out = self.admin(&["admin", "token", "create", name, "--json"]);
        out.code(0);
        out.json()["token"].as_str().unwrap().to_owned()
    }

    /// Moves the gateway's test clock forward, through the API.
    fn advance(&self, by: &str) {
        let api = self.gw.client(Some(&self.admin)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = rt
            .block_on(api.post("/v1/test/clock", &json!({ "advance": by })))
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
    }

    fn verify_key(&self) -> PathBuf {
        self.gw.data_dir().join("keys").join("audit-verify.pub")
    }
}

/// The value after `prefix` on the first line that holds it, up to whitespace,
/// `:` or `.`.
fn word_after(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in:\n{text}"));
    text[at + prefix.len()..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ':' && *c != '.' && *c != ',')
        .collect()
}

/// The table row holding `needle`.
fn row<'a>(table: &'a str, needle: &str) -> &'a str {
    table
        .lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no row with {needle:?} in:\n{table}"))
}

#[test]
fn a_grant_is_asked_approved_used_explained_and_expires() {
    let w = World::start();
    let alice = w.user("alice", &["dev"]);
    let bob = w.user("bob", &["lead"]);

    let out = w.cli(&alice, &["whoami"]);
    assert!(
        out.ok()
            .starts_with(&format!("alice (role dev) at {}", w.gw.api_url())),
        "{}",
        out.both()
    );

    // alice asks.
    let out = w.cli(
        &alice,
        &[
            "request",
            "pg-prod",
            "--lift",
            "unmask:email",
            "--for",
            "30m",
            "--reason",
            "INC-1234: bounce emails",
        ],
    );
    let text = out.ok();
    let id = word_after(text, "Request ");
    assert!(id.starts_with("req_"), "{text}");
    assert!(
        text.contains("It needs 1 approval from a member of role lead."),
        "{text}"
    );
    assert!(
        text.contains(&format!("An approver runs:\n  periscope approve {id}\n")),
        "{text}"
    );

    // bob sees it waiting.
    let out = w.cli(&bob, &["requests"]);
    let line = row(out.ok(), &id);
    for cell in [
        "alice",
        "pg-prod",
        "unmask:email",
        "30m",
        "0/1 (lead)",
        "pending",
    ] {
        assert!(line.contains(cell), "{cell} missing from {line}");
    }

    // alice cannot approve her own request; --json also prints the error body.
    let out = w.cli(&alice, &["approve", &id]);
    out.code(1);
    assert!(
        out.stderr
            .starts_with("periscope: error: you cannot approve or deny your own request"),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("\nhint: "), "{}", out.both());
    let out = w.cli(&alice, &["approve", &id, "--json"]);
    out.code(1);
    assert_eq!(out.json()["error"]["code"], "forbidden", "{}", out.both());

    // bob approves: the grant starts.
    let out = w.cli(&bob, &["approve", &id]);
    let text = out.ok();
    assert!(
        text.starts_with(&format!("Approved {id}: grant gr_")),
        "{text}"
    );
    let grant = word_after(text, "grant ");
    assert!(
        text.contains("lifts unmask:email on pg-prod for alice, expires in "),
        "{text}"
    );

    // alice sees it with its time left.
    let out = w.cli(&alice, &["grants"]);
    let line = row(out.ok(), &grant);
    assert!(line.contains("active"), "{line}");
    assert!(line.contains("29m") || line.contains("30m"), "{line}");
    assert!(line.contains("bob"), "{line}");
    let out = w.cli(&alice, &["grants", "--json"]);
    let grants = out.json();
    assert_eq!(grants.as_array().unwrap().len(), 1, "{grants}");
    assert_eq!(grants[0]["id"], grant.as_str());
    assert_eq!(grants[0]["status"], "active");

    // explain shows the lifted shield and the grant lifting it.
    let out = w.cli(&alice, &["policy", "explain", "alice", "pg-prod"]);
    assert!(
        out.ok()
            .contains(&format!("unmask:email: by grant {grant}")),
        "{}",
        out.both()
    );
    let out = w.admin(&["policy", "explain", "alice", "pg-prod", "--json"]);
    let v = out.json();
    assert!(v["text"].as_str().unwrap().contains(&grant), "{v}");
    assert!(v["explanation"].is_object(), "{v}");

    // Past its expiry, the grant is gone and the audit log says so.
    w.advance("31m");
    let out = w.cli(&alice, &["grants"]);
    assert!(out.ok().starts_with("No active grants."), "{}", out.both());
    let out = w.cli(&alice, &["grants", "--all"]);
    assert!(row(out.ok(), &grant).contains("expired"), "{}", out.both());
    let out = w.admin(&["audit", "search", "--action", "grant.expire"]);
    let line = row(out.ok(), "grant.expire");
    assert!(line.contains(&grant), "{line}");
    let out = w.admin(&["audit", "search", "--action", "grant.expire", "--json"]);
    let events = out.json();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["grant_ids"], json!([grant]));
    assert_eq!(events[0]["details"]["identity"], "alice");
}

#[test]
fn revoke_two_approvals_deny_and_cancel() {
    let w = World::start();
    let alice = w.user("alice", &["dev"]);
    let bob = w.user("bob", &["lead"]);
    let carol = w.user("carol", &["sre"]);
    let dave = w.user("dave", &["sre"]);

    // A grant ended early.
    let out = w.cli(
        &alice,
        &[
            "request",
            "pg-prod",
            "--lift",
            "write",
            "--for",
            "20m",
            "--reason",
            "INC-2: fix one row",
            "--json",
        ],
    );
    let id = out.json()["id"].as_str().unwrap().to_owned();
    let out = w.cli(&bob, &["approve", &id, "--json"]);
    let grant = out.json()["grant"]["id"].as_str().unwrap().to_owned();
    let out = w.cli(&bob, &["revoke", &grant, "--reason", "fixed"]);
    assert!(
        out.ok().starts_with(&format!(
            "Revoked {grant}: write on pg-prod is shielded again for alice"
        )),
        "{}",
        out.both()
    );
    let out = w.cli(&alice, &["grants"]);
    assert!(out.ok().starts_with("No active grants."), "{}", out.both());
    let out = w.cli(&alice, &["grants", "--all"]);
    assert!(
        row(out.ok(), &grant).contains("revoked by bob"),
        "{}",
        out.both()
    );
    let out = w.admin(&["audit", "search", "--action", "grant.revoke", "--json"]);
    assert_eq!(out.json()[0]["target"], grant.as_str(), "{}", out.both());

    // A role that needs two approvals from sre.
    let out = w.cli(
        &bob,
        &[
            "request",
            "pg-prod",
            "--lift",
            "ddl",
            "--for",
            "1h",
            "--reason",
            "INC-3: add an index",
        ],
    );
    let text = out.ok();
    assert!(
        text.contains("It needs 2 approvals from a member of role sre."),
        "{text}"
    );
    let id = word_after(text, "Request ");
    let out = w.cli(&carol, &["approve", &id]);
    assert_eq!(
        out.ok().trim_end(),
        format!("Approved {id} (1 of 2 approvals); waiting for 1 more from a member of role sre.")
    );
    let out = w.cli(&bob, &["grants", "--identity", "bob"]);
    assert!(out.ok().starts_with("No active grants."), "{}", out.both());
    let out = w.cli(&carol, &["approve", &id]);
    out.code(1);
    assert!(out.stderr.contains("already approved"), "{}", out.both());
    let out = w.cli(&dave, &["approve", &id]);
    assert!(
        out.ok().contains("lifts ddl on pg-prod for bob"),
        "{}",
        out.both()
    );
    let out = w.cli(&bob, &["grants"]);
    assert!(
        row(out.ok(), "ddl").contains("carol, dave"),
        "{}",
        out.both()
    );

    // Deny needs a reason: the argument parser, then the CLI, refuse without one.
    let out = w.cli(
        &alice,
        &[
            "request",
            "pg-prod",
            "--lift",
            "unmask:email",
            "--for",
            "10m",
            "--reason",
            "INC-4: check a bounce",
        ],
    );
    let id = word_after(out.ok(), "Request ");
    let out = w.cli(&bob, &["deny", &id]);
    out.code(2);
    assert!(out.stderr.contains("--reason <TEXT>"), "{}", out.both());
    let out = w.cli(&bob, &["deny", &id, "--reason", " "]);
    out.code(2);
    assert!(
        out.stderr.contains("--reason must not be empty"),
        "{}",
        out.both()
    );
    let out = w.cli(&bob, &["deny", &id, "--reason", "use the staging copy"]);
    assert_eq!(
        out.ok().trim_end(),
        format!("Denied {id} (alice asked to lift unmask:email on pg-prod): use the staging copy")
    );
    let out = w.cli(
        &alice,
        &["requests", "--status", "denied", "--identity", "alice"],
    );
    assert!(row(out.ok(), &id).contains("denied"), "{}", out.both());

    // Cancel, and a decision on a cancelled request is refused.
    let out = w.cli(
        &alice,
        &[
            "request",
            "pg-prod",
            "--lift",
            "write",
            "--for",
            "10m",
            "--reason",
            "INC-5: not needed after all",
        ],
    );
    let id = word_after(out.ok(), "Request ");
    let out = w.cli(&alice, &["cancel", &id]);
    assert_eq!(
        out.ok().trim_end(),
        format!("Cancelled {id} (lift write on pg-prod).")
    );
    let out = w.cli(&bob, &["approve", &id]);
    out.code(1);
    assert!(out.stderr.contains("cancelled"), "{}", out.both());
    let out = w.cli(&alice, &["requests", "--all", "--json"]);
    let requests = out.json();
    let statuses: Vec<&str> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    for status in ["approved", "denied", "cancelled"] {
        assert!(statuses.contains(&status), "{status} in {statuses:?}");
    }
}

#[test]
fn connect_admin_and_json_outputs() {
    let w = World::start();
    let alice = w.user("alice", &["dev"]);

    let out = w.cli(&alice, &["connections"]);
    let text = out.ok();
    assert!(row(text, "pg-prod").contains("may connect"), "{text}");
    assert!(row(text, "pg-staging").ends_with("no"), "{text}");
    let out = w.cli(&alice, &["connections", "--json"]);
    assert_eq!(out.json().as_array().unwrap().len(), 2);

    let out = w.cli(&alice, &["connect", "pg-prod"]);
    let text = out.ok();
    assert!(
        text.starts_with("Session secret for alice on pg-prod, expires in "),
        "{text}"
    );
    let secret = word_after(text, "secret:   ");
    assert!(
        text.contains(&format!("  PGPASSWORD={secret} psql ")),
        "{text}"
    );
    assert!(text.contains("postgresql://alice@"), "{text}");
    let out = w.cli(&alice, &["connect", "pg-prod", "--json"]);
    let v = out.json();
    assert_eq!(v["user"], "alice");
    assert!(v["secret"].as_str().unwrap().len() > 16, "{v}");
    let out = w.cli(&alice, &["connect", "pg-staging"]);
    out.code(1);
    assert!(
        out.stderr.starts_with("periscope: error: "),
        "{}",
        out.both()
    );

    // Token lifecycle as an admin sees it.
    let out = w.admin(&[
        "admin",
        "token",
        "create",
        "alice",
        "--description",
        "laptop",
        "--expires-in",
        "90d",
    ]);
    let text = out.ok();
    assert!(text.starts_with("Token "), "{text}");
    assert!(
        text.contains("for alice, expires in 90d (")
            || text.contains("for alice, expires in 89d 23h ("),
        "{text}"
    );
    assert!(text.contains("It will not be shown again"), "{text}");
    let token_id = word_after(text, "Token ");
    let secret = text
        .lines()
        .find(|l| l.starts_with("  ") && l.trim().len() > 20)
        .unwrap()
        .trim()
        .to_owned();
    let out = w.cli(&secret, &["whoami"]);
    assert!(out.ok().starts_with("alice "), "{}", out.both());
    let out = w.admin(&["admin", "token", "list", "alice"]);
    let line = row(out.ok(), &token_id);
    assert!(line.contains("laptop") && line.contains("active"), "{line}");
    assert!(
        !out.stdout.contains(&secret),
        "token list must not show secrets"
    );
    let out = w.admin(&["admin", "token", "revoke", &token_id]);
    assert!(
        out.ok()
            .starts_with(&format!("Revoked token {token_id} of alice")),
        "{}",
        out.both()
    );
    let out = w.cli(&secret, &["whoami"]);
    out.code(1);
    assert!(
        !out.both().contains(&secret),
        "the token leaked: {}",
        out.both()
    );

    // Roles and disabling.
    let out = w.admin(&[
        "admin",
        "user",
        "set-roles",
        "alice",
        "--role",
        "dev",
        "--role",
        "sre",
    ]);
    assert_eq!(out.ok().trim_end(), "alice now has roles dev, sre.");
    let out = w.admin(&["admin", "user", "list"]);
    assert!(
        row(out.ok(), "alice").contains("dev, sre"),
        "{}",
        out.both()
    );
    let out = w.admin(&["admin", "user", "disable", "alice"]);
    assert!(out.ok().starts_with("Disabled alice"), "{}", out.both());
    w.cli(&alice, &["whoami"]).code(1);
    let out = w.admin(&["admin", "user", "list", "--json"]);
    let users = out.json();
    let entry = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap();
    assert_eq!(entry["disabled"], true);
    w.admin(&["admin", "user", "enable", "alice"]).ok();
    w.cli(&alice, &["whoami"]).ok();

    // Only admins administer.
    let out = w.cli(&alice, &["admin", "user", "list"]);
    out.code(1);
    let out = w.admin(&["admin", "sessions"]);
    assert_eq!(out.ok().trim_end(), "No live sessions.");
    let out = w.admin(&["admin", "reload"]);
    assert!(out.ok().contains("reloaded"), "{}", out.both());
    for args in [
        &["whoami", "--json"][..],
        &["admin", "sessions", "--json"],
        &["admin", "token", "list", "alice", "--json"],
        &["audit", "tail", "-n", "3", "--json"],
    ] {
        let out = w.admin(args);
        out.code(0);
        let _ = out.json();
    }
    let out = w.admin(&["audit", "tail", "-n", "3", "--json"]);
    let seqs: Vec<u64> = out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "{seqs:?}");
}

#[test]
fn the_export_verifies_offline_until_one_line_is_edited() {
    let w = World::start();
    let alice = w.user("alice", &["dev"]);
    let bob = w.user("bob", &["lead"]);
    let out = w.cli(
        &alice,
        &[
            "request",
            "pg-prod",
            "--lift",
            "unmask:email",
            "--for",
            "30m",
            "--reason",
            "INC-9: audit trail",
        ],
    );
    let id = word_after(out.ok(), "Request ");
    w.cli(&bob, &["approve", &id]).ok();

    let out = w.admin(&["audit", "verify"]);
    assert!(out.ok().starts_with("chain intact: "), "{}", out.both());

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let out = run(w
        .as_token(&w.admin)
        .args(["audit", "export", "-o"])
        .arg(&file));
    out.code(0);
    assert!(out.stderr.starts_with("Exported "), "{}", out.both());
    assert!(out.stdout.is_empty(), "{}", out.both());
    assert!(
        !dir.path().join("audit.jsonl.part").exists(),
        "the partial file is renamed"
    );

    // Offline: no gateway settings at all, only the file and the public key.
    let offline = |file: &Path| {
        run(periscope(&w.config_dir())
            .args(["audit", "verify", "--file"])
            .arg(file)
            .arg("--public-key")
            .arg(w.verify_key()))
    };
    let out = offline(&file);
    let text = out.ok();
    assert!(text.contains("chain intact: "), "{text}");
    assert!(text.contains("from the start of the log"), "{text}");
    assert!(!text.contains("0 signed checkpoints"), "{text}");

    // The same export through stdout is the same format.
    let out = w.admin(&["audit", "export"]);
    let first: Value = serde_json::from_str(out.ok().lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "header");

    // Edit one event: the seq is named, exit 1.
    let text = std::fs::read_to_string(&file).unwrap();
    let mut edited = String::new();
    let mut target_seq = None;
    for line in text.lines() {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if target_seq.is_none() && v["type"] == "event" && v["action"] == "request.create" {
            v["actor"] = json!("mallory");
            target_seq = v["seq"].as_u64();
            edited.push_str(&v.to_string());
        } else {
            edited.push_str(line);
        }
        edited.push('\n');
    }
    let seq = target_seq.expect("the export holds the request");
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, edited).unwrap();
    let out = offline(&tampered);
    out.code(1);
    assert!(
        out.stderr
            .contains(&format!("event seq {seq} was altered after it was written")),
        "{}",
        out.both()
    );

    // A partial export verifies with --partial.
    let partial = dir.path().join("partial.jsonl");
    let from = (seq + 1).to_string();
    run(w
        .as_token(&w.admin)
        .args(["audit", "export", "--since-seq", &from, "-o"])
        .arg(&partial))
    .ok();
    let out = run(periscope(&w.config_dir())
        .args(["audit", "verify", "--partial", "--file"])
        .arg(&partial)
        .arg("--public-key")
        .arg(w.verify_key()));
    assert!(
        out.ok().contains(&format!("seq {from} to ")),
        "{}",
        out.both()
    );
}

#[test]
fn login_saves_a_private_profile_and_settings_follow_precedence() {
    let w = World::start();
    let alice = w.user("alice", &["dev"]);
    let config = w.config_dir();

    // Without the CA, TLS fails with a clear message and exit 3.
    let out = run(periscope(&config).args(["login", "--url", w.gw.api_url(), "--token", &w.admin]));
    out.code(3);
    assert!(out.stderr.contains("TLS failed"), "{}", out.both());
    assert!(out.stderr.contains("--ca-file"), "{}", out.both());
    assert!(!out.both().contains(&w.admin), "the token leaked");

    // A wrong token: refused, nothing saved.
    let out = run(periscope(&config)
        .args([
            "login",
            "--url",
            w.gw.api_url(),
            "--token",
            "psc_0000000000000000_wrong",
            "--ca-file",
        ])
        .arg(w.gw.ca_file()));
    out.code(1);
    assert!(!config.join("profile.toml").exists());

    // The token from stdin.
    let out = crate::support::cli::run_with_stdin(
        periscope(&config)
            .args([
                "login",
                "--url",
                w.gw.api_url(),
                "--token",
                "-",
                "--ca-file",
            ])
            .arg(w.gw.ca_file()),
        format!("{}\n", w.admin).as_bytes(),
    );
    let text = out.ok();
    assert!(
        text.starts_with(&format!(
            "Logged in to {} as admin (role admin, administrator).",
            w.gw.api_url()
        )),
        "{text}"
    );
    let profile = config.join("profile.toml");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&profile).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "profile mode {mode:o}");
        let mode = std::fs::metadata(&config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "config dir mode {mode:o}");
    }
    let saved: toml::Value = toml::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(saved["token"].as_str(), Some(w.admin.as_str()));
    assert_eq!(
        saved["ca_file"].as_str().map(PathBuf::from),
        Some(w.gw.ca_file())
    );

    // The profile alone is enough; the environment overrides it; a flag overrides both.
    let whoami = |cmd: &mut Command, extra: &[&str]| {
        let out = run(cmd.arg("whoami").args(extra));
        out.ok().split_whitespace().next().unwrap().to_owned()
    };
    assert_eq!(whoami(&mut periscope(&config), &[]), "admin");
    assert_eq!(
        whoami(periscope(&config).env("PERISCOPE_TOKEN", &alice), &[]),
        "alice"
    );
    let bob = w.user("bob", &["lead"]);
    assert_eq!(
        whoami(
            periscope(&config).env("PERISCOPE_TOKEN", &alice),
            &["--token", &bob]
        ),
        "bob"
    );

    let out = run(periscope(&config).arg("logout"));
    out.ok();
    let out = run(periscope(&config).arg("whoami"));
    out.code(2);
}

#[test]
fn audit_tail_follow_prints_new_events_until_interrupted() {
    let w = World::start();
    let mut child = w
        .as_token(&w.admin)
        .args(["audit", "tail", "-n", "1", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| {
        rx.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no line for {what} within 20s"))
    };
    let first = next_line("the initial tail");
    assert!(first.trim_start().starts_with(char::is_numeric), "{first}");

    w.user("zoe", &["dev"]);
    loop {
        let line = next_line("zoe's creation");
        if line.contains("admin.user_add") {
            assert!(line.contains("zoe"), "{line}");
            break;
        }
    }

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends --follow cleanly");
}
