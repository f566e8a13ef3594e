//! Where the CLI finds its gateway, token and CA (flags, then environment, then the
//! saved profile), and the errors a user gets before any gateway answers: nothing
//! configured, gateway unreachable, bad input. No gateway runs in these tests.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::support::cli::{closed_port, closed_ports, periscope, run};

const TOKEN: &str = "psk_test_DoNotPrintMe_4242";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a profile as `periscope login` would.
    fn profile(&self, url: &str, token: &str, ca_file: Option<&Path>) {
        std::fs::create_dir_all(self.config()).unwrap();
        let mut text = format!("url = {url:?}\ntoken = {token:?}\n");
        if let Some(ca) = ca_file {
            text.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        std::fs::write(self.config().join("profile.toml"), text).unwrap();
        set_mode(&self.config().join("profile.toml"), 0o600);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn url(port: u16) -> String {
    format!("https://127.0.0.1:{port}")
}

#[test]
fn nothing_configured_is_a_usage_error_that_says_what_to_do() {
    let env = Env::new();
    for args in [
        &["whoami"][..],
        &["grants"],
        &["audit", "tail"],
        &["admin", "user", "list"],
    ] {
        let out = run(periscope(&env.config()).args(args));
        out.code(2);
        assert!(
            out.stderr.starts_with(
                "periscope: error: no gateway URL is configured\nhint: run `periscope login"
            ),
            "{args:?}: {}",
            out.both()
        );
    }
    let out = run(periscope(&env.config()).args(["whoami", "--url", &url(1)]));
    out.code(2);
    assert!(
        out.stderr
            .contains("no API token is configured for https://127.0.0.1:1"),
        "{}",
        out.both()
    );
}

#[test]
fn an_unreachable_gateway_exits_3_naming_the_url() {
    let env = Env::new();
    let port = closed_port();
    let out =
        run(periscope(&env.config()).args(["requests", "--url", &url(port), "--token", TOKEN]));
    out.code(3);
    assert!(
        out.stderr.starts_with(&format!(
            "periscope: error: cannot reach the gateway at https://127.0.0.1:{port}: "
        )),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.both());
    assert!(out.stderr.contains("hint: "), "{}", out.both());
    assert!(out.stderr.contains("--ca-file"), "{}", out.both());
    assert!(
        !out.both().contains(TOKEN),
        "the token leaked: {}",
        out.both()
    );
}

#[test]
fn the_url_comes_from_the_flag_then_the_environment_then_the_profile() {
    let env = Env::new();
    let [p1, p2, p3] = closed_ports::<3>();
    env.profile(&url(p1), TOKEN, None);
    let names = |out: &crate::support::cli::Run, port: u16| {
        out.code(3);
        assert!(
            out.stderr.contains(&format!(
                "cannot reach the gateway at https://127.0.0.1:{port}: "
            )),
            "expected port {port}: {}",
            out.both()
        );
    };
    names(&run(periscope(&env.config()).arg("whoami")), p1);
    names(
        &run(periscope(&env.config())
            .arg("whoami")
            .env("PERISCOPE_URL", url(p2))
            .env("PERISCOPE_TOKEN", "other")),
        p2,
    );
    names(
        &run(periscope(&env.config())
            .args(["whoami", "--url", &url(p3), "--token", "other"])
            .env("PERISCOPE_URL", url(p2))
            .env("PERISCOPE_TOKEN", "other")),
        p3,
    );
}

#[test]
fn the_ca_file_comes_from_the_flag_then_the_environment_then_the_profile() {
    let env = Env::new();
    let port = closed_port();
    env.profile(&url(port), TOKEN, Some(&env.path("profile-ca.pem")));
    let names = |out: &crate::support::cli::Run, file: &str| {
        out.code(2);
        assert!(
            out.stderr.contains("cannot read the CA file") && out.stderr.contains(file),
            "expected {file}: {}",
            out.both()
        );
    };
    names(
        &run(periscope(&env.config()).arg("connections")),
        "profile-ca.pem",
    );
    names(
        &run(periscope(&env.config())
            .arg("connections")
            .env("PERISCOPE_CA_FILE", env.path("env-ca.pem"))),
        "env-ca.pem",
    );
    names(
        &run(periscope(&env.config())
            .arg("connections")
            .arg("--ca-file")
            .arg(env.path("flag-ca.pem"))
            .env("PERISCOPE_CA_FILE", env.path("env-ca.pem"))),
        "flag-ca.pem",
    );
}

#[test]
fn the_profile_token_and_ca_are_never_used_for_another_gateway() {
    let env = Env::new();
    let [saved, other] = closed_ports::<2>();
    env.profile(&url(saved), TOKEN, Some(&env.path("profile-ca.pem")));

    // Another URL and no token: refused instead of sending the saved token there.
    let out = run(periscope(&env.config()).args(["whoami", "--url", &url(other)]));
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "no API token for https://127.0.0.1:{other} (the saved profile is for https://127.0.0.1:{saved},"
        )),
        "{}",
        out.both()
    );

    // Another URL with its own token: the saved CA is not applied either.
    let out = run(periscope(&env.config())
        .args(["whoami", "--url", &url(other)])
        .env("PERISCOPE_TOKEN", "another-token"));
    out.code(3);
    assert!(!out.stderr.contains("profile-ca.pem"), "{}", out.both());

    // The same URL spelled with a trailing slash is the same gateway.
    let out = run(periscope(&env.config()).args(["whoami", "--url", &format!("{}/", url(saved))]));
    out.code(2);
    assert!(out.stderr.contains("profile-ca.pem"), "{}", out.both());
}

#[test]
fn tokens_never_appear_in_errors_or_help() {
    let env = Env::new();
    env.profile(
        &url(closed_port()),
        TOKEN,
        Some(&env.path("missing-ca.pem")),
    );
    let runs = [
        run(periscope(&env.config()).arg("whoami")),
        run(periscope(&env.config()).args([
            "grants",
            "--token",
            TOKEN,
            "--url",
            &url(closed_port()),
        ])),
        run(periscope(&env.config())
            .args(["whoami", "--help"])
            .env("PERISCOPE_TOKEN", TOKEN)),
        run(periscope(&env.config())
            .args(["audit", "tail", "--help"])
            .env("PERISCOPE_TOKEN", TOKEN)),
    ];
    for out in &runs {
        assert!(
            !out.both().contains(TOKEN),
            "the token leaked: {}",
            out.both()
        );
        assert!(
            !out.both().contains("DoNotPrintMe"),
            "the token leaked: {}",
            out.both()
        );
    }
    // The help still says where the token comes from.
    assert!(
        runs[2].stdout.contains("PERISCOPE_TOKEN"),
        "{}",
        runs[2].both()
    );
}

#[test]
fn a_plain_http_url_is_refused() {
    let env = Env::new();
    let out = run(periscope(&env.config()).args([
        "whoami",
        "--url",
        "http://127.0.0.1:8443",
        "--token",
        TOKEN,
    ]));
    out.code(2);
    assert!(
        out.stderr
            .contains("does not use https: tokens must not travel in clear text"),
        "{}",
        out.both()
    );
    let out =
        run(periscope(&env.config()).args(["whoami", "--url", "not a url", "--token", TOKEN]));
    out.code(2);
    assert!(
        out.stderr
            .contains("\"not a url\" is not a valid gateway URL"),
        "{}",
        out.both()
    );
}

#[test]
fn a_broken_profile_is_named_and_logout_removes_it() {
    let env = Env::new();
    std::fs::create_dir_all(env.config()).unwrap();
    let profile = env.config().join("profile.toml");
    std::fs::write(&profile, "url = \"https://127.0.0.1:1\"\ntoken = 42\n").unwrap();
    set_mode(&profile, 0o600);
    let out = run(periscope(&env.config()).arg("whoami"));
    out.code(2);
    assert!(
        out.stderr
            .contains(&format!("the profile {} is not valid", profile.display())),
        "{}",
        out.both()
    );
    assert!(out.stderr.contains("periscope logout"), "{}", out.both());

    let out = run(periscope(&env.config()).arg("logout"));
    assert!(out.ok().contains("Logged out: removed"), "{}", out.both());
    assert!(!profile.exists());
    let out = run(periscope(&env.config()).arg("logout"));
    assert!(out.ok().contains("Not logged in"), "{}", out.both());
}

#[test]
fn a_profile_readable_by_others_draws_a_warning() {
    let env = Env::new();
    env.profile(&url(closed_port()), TOKEN, None);
    set_mode(&env.config().join("profile.toml"), 0o644);
    let out = run(periscope(&env.config()).arg("whoami"));
    out.code(3);
    assert!(
        out.stderr
            .contains("holds a token but other users may read it; run `chmod 600"),
        "{}",
        out.both()
    );
}

#[test]
fn a_ca_file_without_a_certificate_is_refused() {
    let env = Env::new();
    let ca = env.path("ca.pem");
    std::fs::write(&ca, "this is not a certificate\n").unwrap();
    let out = run(periscope(&env.config())
        .args([
            "whoami",
            "--url",
            &url(closed_port()),
            "--token",
            TOKEN,
            "--ca-file",
        ])
        .arg(&ca));
    out.code(2);
    assert!(
        out.stderr.contains(&format!(
            "the CA file {} holds no PEM certificate",
            ca.display()
        )),
        "{}",
        out.both()
    );
}

#[test]
fn bad_arguments_are_refused_before_any_call() {
    let env = Env::new();
    // No gateway is configured at all: these fail in the argument parser (exit 2)
    // with the argument named, not with "no gateway URL".
    let out = run(periscope(&env.config()).args(["deny", "req_1"]));
    out.code(2);
    assert!(out.stderr.contains("--reason <TEXT>"), "{}", out.both());

    let out = run(periscope(&env.config()).args([
        "request",
        "pg-prod",
        "--lift",
        "unmask:email",
        "--for",
        "soon",
        "--reason",
        "INC-1",
    ]));
    out.code(2);
    assert!(
        out.stderr
            .contains("invalid value 'soon' for '--for <DURATION>'"),
        "{}",
        out.both()
    );

    let out =
        run(periscope(&env.config())
            .args(["request", "pg-prod", "--for", "30m", "--reason", "INC-1"]));
    out.code(2);
    assert!(out.stderr.contains("--lift <SHIELD>"), "{}", out.both());

    let out = run(periscope(&env.config()).args(["audit", "search", "--since", "yesterday"]));
    out.code(2);
    assert!(
        out.stderr.contains("expected an RFC 3339 time"),
        "{}",
        out.both()
    );

    let out = run(periscope(&env.config()).args(["requests", "--status", "maybe"]));
    out.code(2);
    assert!(
        out.stderr.contains("possible values: pending"),
        "{}",
        out.both()
    );
}

#[test]
fn login_needs_a_url_and_a_token() {
    let env = Env::new();
    let out = run(periscope(&env.config()).args(["login", "--url", &url(1)]));
    out.code(2);
    assert!(
        out.stderr
            .contains("`periscope login` needs --url and --token"),
        "{}",
        out.both()
    );
    // An unreachable gateway: nothing is saved.
    let out = run(periscope(&env.config()).args([
        "login",
        "--url",
        &url(closed_port()),
        "--token",
        TOKEN,
    ]));
    out.code(3);
    assert!(!env.config().join("profile.toml").exists());
}
