//! `periscope demo` end to end: the real binary, a real throwaway PostgreSQL,
//! real `psql`, and the tour's own commands, run as printed.
//!
//! The demo prints every tour command alone on a line after `$ ` and a
//! `periscope: ready ...` line; the test reads them from its stdout, runs them
//! with `bash` (the env files are sourced as the tour says) and checks what a
//! newcomer is told they will see. Time is moved with the gateway's test
//! clock, never waited for.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use periscope_testkit::ApiClient;
use periscope_testkit::fixtures::{Customer, DEMO_SEED, customers, external_ref};

/// A debug build seeds, starts PostgreSQL and the gateway in a few seconds;
/// leave room for a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of one output stream, and a way to wait for one.
#[derive(Default)]
struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl Lines {
    fn follow(stream: impl std::io::Read + Send + 'static, echo: &'static str) -> Arc<Lines> {
        let lines = Arc::new(Lines::default());
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                eprintln!("[{echo}] {line}");
                sink.state.lock().unwrap().0.push(line);
                sink.changed.notify_all();
            }
            sink.state.lock().unwrap().1 = true;
            sink.changed.notify_all();
        });
        lines
    }

    /// Waits for a line after the first `from` lines containing `needle`.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(line) = state.0.iter().skip(from).find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            let now = Instant::now();
            if state.1 || now >= deadline {
                return None;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    /// Waits until the stream is closed (the process exited and it was read whole).
    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap().0;
        }
    }

    fn len(&self) -> usize {
        self.state.lock().unwrap().0.len()
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().0.join("\n")
    }
}

/// A running `periscope demo`.
struct Demo {
    pid: u32,
    exited: mpsc::Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
    config_dir: PathBuf,
}

impl Demo {
    fn start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)], config_dir: &Path) -> Demo {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_periscope"));
        cmd.arg("demo")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--api-listen", "127.0.0.1:0", "--pg-listen", "127.0.0.1:0"])
            .args(extra)
            .envs(env.iter().copied())
            .env_remove("PERISCOPE_URL")
            .env_remove("PERISCOPE_TOKEN")
            .env_remove("PERISCOPE_CA_FILE")
            .env("PERISCOPE_CONFIG_DIR", config_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the periscope binary starts");
        let stdout = Lines::follow(child.stdout.take().unwrap(), "demo");
        let stderr = Lines::follow(child.stderr.take().unwrap(), "demo err");
        let pid = child.id();
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        Demo {
            pid,
            exited,
            status: None,
            stdout,
            stderr,
            config_dir: config_dir.to_path_buf(),
        }
    }

    /// Waits for the ready line and returns the tour.
    fn ready(&self) -> Tour {
        let ready = self
            .stdout
            .wait_for("periscope: ready ", 0, READY_TIMEOUT)
            .unwrap_or_else(|| {
                panic!(
                    "no ready line\nstdout:\n{}\nstderr:\n{}",
                    self.stdout.text(),
                    self.stderr.text()
                )
            });
        Tour::parse(&self.stdout.text(), &ready)
    }

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status();
    }

    /// SIGINT, as Ctrl-C; returns the exit status.
    fn interrupt(&mut self) -> ExitStatus {
        self.signal("INT");
        self.wait_exit()
    }

    /// Waits for the process to exit and its output to be read whole.
    fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        let status = self.exited.recv_timeout(EXIT_TIMEOUT).unwrap_or_else(|_| {
            panic!(
                "the demo did not exit
{}",
                self.stdout.text()
            )
        });
        self.stdout.wait_closed(EXIT_TIMEOUT);
        self.stderr.wait_closed(EXIT_TIMEOUT);
        self.status = Some(status);
        status
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.status.is_none() {
            // Ctrl-C first, so the demo removes what it made; then for sure.
            self.signal("INT");
            if self.exited.recv_timeout(EXIT_TIMEOUT).is_err() {
                self.signal("KILL");
            }
        }
    }
}

/// One tour step: its text and its commands.
#[derive(Debug, Clone)]
struct Step {
    text: String,
    commands: Vec<String>,
    typed: Vec<String>,
}

/// What the demo printed.
#[derive(Debug)]
struct Tour {
    steps: Vec<Step>,
    api_url: String,
    data_dir: PathBuf,
}

impl Tour {
    fn parse(stdout: &str, ready: &str) -> Tour {
        let mut steps: Vec<Step> = Vec::new();
        for line in stdout.lines() {
            let trimmed = line.trim_start();
            if let Some((number, text)) = line.split_once(". ")
                && !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit())
            {
                assert_eq!(number.parse::<usize>().unwrap(), steps.len() + 1, "{line}");
                steps.push(Step {
                    text: text.to_string(),
                    commands: Vec::new(),
                    typed: Vec::new(),
                });
            } else if let Some(step) = steps.last_mut() {
                if let Some(command) = trimmed.strip_prefix("$ ") {
                    step.commands.push(command.to_string());
                } else if let Some(sql) = trimmed.strip_prefix("shop-prod=> ") {
                    step.typed.push(sql.to_string());
                } else if line.starts_with("   ") && step.commands.is_empty() {
                    step.text.push(' ');
                    step.text.push_str(trimmed);
                }
            }
        }
        let field = |name: &str| {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {ready}"))
                .to_string()
        };
        Tour {
            steps,
            api_url: field("api"),
            data_dir: PathBuf::from(field("data_dir")),
        }
    }

    /// The step whose text contains `words`.
    fn step(&self, words: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.text.contains(words))
            .unwrap_or_else(|| panic!("no tour step about {words:?}: {:#?}", self.steps))
    }
}

/// What one shell run of tour commands printed.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn both(&self) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs tour commands as a user pasting them into one fresh shell: an env
/// file sourced in an earlier step is sourced again first.
struct Shell {
    config_dir: PathBuf,
    env_line: Option<String>,
}

impl Shell {
    fn command(&mut self, lines: &[String]) -> Command {
        let mut script = String::from("set -e\n");
        if let Some(first) = lines.first()
            && !first.starts_with(". ")
            && let Some(env) = &self.env_line
        {
            script.push_str(env);
            script.push('\n');
        }
        for line in lines {
            if line.starts_with(". ") {
                self.env_line = Some(line.clone());
            }
            script.push_str(line);
            script.push('\n');
        }
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(script);
        for var in [
            "PERISCOPE_URL",
            "PERISCOPE_TOKEN",
            "PERISCOPE_CA_FILE",
            "PGPASSWORD",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGSERVICE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("PERISCOPE_CONFIG_DIR", &self.config_dir)
            .env("PSQLRC", "/dev/null")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&mut self, lines: &[String]) -> Ran {
        let out = self.command(lines).output().expect("bash runs");
        let ran = Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        eprintln!("$ {}\n{}", lines.join("\n$ "), ran.both());
        ran
    }
}

fn demo_customers() -> Vec<Customer> {
    customers(5, DEMO_SEED)
}

/// A classic GitHub token or a Stripe live key in clear.
fn raw_secret(text: &str) -> Option<&str> {
    for (prefix, len) in [("ghp_", 36), ("sk_live_", 24), ("xoxb-", 12)] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            let run = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if run >= len {
                return Some(&rest[at..at + prefix.len() + run]);
            }
            rest = after;
        }
    }
    None
}

/// A temp dir the `postgres` user can traverse (the demo runs PostgreSQL as
/// that user when the tests run as root).
fn traversable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    dir
}

fn env_value(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")))
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
        .trim_matches('\'')
        .to_string()
}

/// A psql session kept open, fed statements on stdin.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Lines>,
    stderr: Arc<Lines>,
}

impl Session {
    fn send(&mut self, sql: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{sql}").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_tour_shows_masking_a_refused_write_a_grant_its_expiry_and_a_verified_audit() {
    let tmp = traversable_tempdir();
    let config_dir = tmp.path().join("config");
    let data_dir = tmp.path().join("demo");
    let mut demo = Demo::start(&data_dir, &["--test-clock"], &[], &config_dir);
    let tour = demo.ready();
    assert_eq!(tour.data_dir, data_dir);
    let printed = demo.stdout.text();
    assert!(
        printed.contains(&format!("Web console: {}/ ", tour.api_url)),
        "the tour names the web console: {printed}"
    );
    assert!(
        tour.steps.len() >= 8,
        "a tour of the whole story: {:#?}",
        tour.steps
    );
    let seeded = demo_customers();
    let mut shell = Shell {
        config_dir: demo.config_dir.clone(),
        env_line: None,
    };

    // alice's env file, then customers: personal data arrives masked.
    let become_alice = &tour.step("Act as alice").commands;
    assert!(become_alice[0].starts_with(". "), "{become_alice:?}");
    shell.run(become_alice);
    let read = shell.run(&tour.step("Read customers").commands);
    assert_eq!(read.code, Some(0), "{}", read.both());
    for c in &seeded {
        assert!(
            read.stdout.contains(&format!(" {} |", c.id)),
            "customer {} is listed\n{}",
            c.id,
            read.both()
        );
        for value in [&c.email, &c.card_number, &c.phone, &external_ref(c.id)] {
            assert!(
                !read.stdout.contains(value.as_str()),
                "{value} leaked\n{}",
                read.both()
            );
        }
    }
    // external_ref's name says nothing and its values are bare nine-digit
    // numbers: masked whole because the gateway's background profile found
    // them to be national ids before the tour began.
    assert_eq!(
        read.stdout.matches("[national_id]").count(),
        seeded.len(),
        "{}",
        read.both()
    );

    // Secrets are masked (and would stay so under any grant of this role).
    let secrets = shell.run(&tour.step("Secrets stay masked").commands);
    assert_eq!(secrets.code, Some(0), "{}", secrets.both());
    assert!(secrets.stdout.lines().count() >= 5, "{}", secrets.both());
    assert_eq!(raw_secret(&secrets.stdout), None, "{}", secrets.both());

    // A write is refused with 42501 and a hint naming the request command.
    let write = shell.run(&tour.step("Try to change data").commands);
    assert_ne!(write.code, Some(0), "{}", write.both());
    assert!(write.stderr.contains("42501"), "{}", write.both());
    assert!(write.stderr.contains("HINT"), "{}", write.both());
    assert!(
        write
            .stderr
            .contains("periscope request shop-prod --lift write"),
        "{}",
        write.both()
    );

    // The request, as alice.
    let request = shell.run(&tour.step("Ask to see emails").commands);
    assert_eq!(request.code, Some(0), "{}", request.both());
    let request_id = request
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("req_"))
        .unwrap_or_else(|| panic!("no request id\n{}", request.both()))
        .trim_end_matches([':', '.'])
        .to_string();
    assert!(
        request.stdout.contains("periscope approve"),
        "{}",
        request.both()
    );

    // bob approves it: the tour's commands with the id put in.
    let approve_step = tour.step("Act as bob");
    let approve: Vec<String> = approve_step
        .commands
        .iter()
        .map(|c| c.replace("REQUEST_ID", &request_id))
        .collect();
    assert!(approve.iter().any(|c| c.contains(&request_id)));
    let approved = shell.run(&approve);
    assert_eq!(approved.code, Some(0), "{}", approved.both());
    assert!(
        approved
            .stdout
            .contains(&format!("Approved {request_id}: grant gr_")),
        "{}",
        approved.both()
    );
    demo.stdout
        .wait_for(" started: alice", 0, Duration::from_secs(10))
        .expect("the demo tells the grant started");

    // Back as alice, a new session: emails in clear, cards and phones masked.
    let unmasked = shell.run(&tour.step("Back as alice").commands);
    assert_eq!(unmasked.code, Some(0), "{}", unmasked.both());
    for c in &seeded {
        assert!(
            unmasked.stdout.contains(&c.email),
            "{} is shown under the grant\n{}",
            c.email,
            unmasked.both()
        );
        for value in [&c.card_number, &c.phone] {
            assert!(
                !unmasked.stdout.contains(value.as_str()),
                "{value} leaked\n{}",
                unmasked.both()
            );
        }
    }

    // A session kept open while the grant expires is ended with FATAL.
    let expiry = tour.step("let the grant expire");
    assert_eq!(expiry.commands.len(), 1, "{expiry:?}");
    let sql = expiry.typed.first().expect("a statement to type").clone();
    let mut open = shell.command(&[format!("exec {}", expiry.commands[0])]);
    open.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = open.spawn().unwrap();
    let mut session = Session {
        stdin: child.stdin.take(),
        stdout: Lines::follow(child.stdout.take().unwrap(), "psql"),
        stderr: Lines::follow(child.stderr.take().unwrap(), "psql err"),
        child,
    };
    session.send(&sql);
    let first = &seeded[0];
    session
        .stdout
        .wait_for(&first.email, 0, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the open session sees the email\n{}", session.stderr.text()));

    let admin_env = data_dir.join("env/admin.env");
    let admin_token = env_value(&admin_env, "PERISCOPE_TOKEN");
    let ca_file = PathBuf::from(env_value(&admin_env, "PERISCOPE_CA_FILE"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api = ApiClient::new(&tour.api_url, &ca_file, Some(&admin_token)).unwrap();
    let mark = demo.stdout.len();
    let moved = runtime
        .block_on(api.send(
            "POST",
            "/v1/test/clock",
            Some(&serde_json::json!({ "advance": "2m1s" })),
        ))
        .unwrap();
    assert_eq!(moved.status, 200, "{}", moved.body);
    demo.stdout
        .wait_for(" expired: ", mark, Duration::from_secs(10))
        .expect("the demo tells the grant expired");
    // The proxy cuts the session on that same event. The only thing to wait
    // on is the gateway's own list of sessions: poll it until alice's is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = runtime
            .block_on(api.send("GET", "/v1/sessions", None))
            .unwrap();
        if !sessions.body.contains("\"alice\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alice's session still listed: {}",
            sessions.body
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    session.send(&sql);
    let fatal = session
        .stderr
        .wait_for("FATAL", 0, Duration::from_secs(30))
        .unwrap_or_else(|| {
            panic!(
                "the next statement gets FATAL\nstdout:\n{}\nstderr:\n{}",
                session.stdout.text(),
                session.stderr.text()
            )
        });
    assert!(
        fatal.contains("grant") || fatal.contains("expired"),
        "{fatal}"
    );
    drop(session);
    // A new session sees masked emails again.
    let again = shell.run(&tour.step("Read customers").commands);
    assert_eq!(again.code, Some(0), "{}", again.both());
    assert!(!again.stdout.contains(&first.email), "{}", again.both());

    // The logs connection: the shop's log arrives masked; --grep sees the
    // masked text.
    let raw_log_values = [
        "maria.garcia@example.com",
        "li.wei@example.org",
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "7f3c9a1e5b2d4c8f",
    ];
    let logs = shell.run(&tour.step("Read the shop's application log").commands);
    assert_eq!(logs.code, Some(0), "{}", logs.both());
    for raw in raw_log_values {
        assert!(
            !logs.stdout.contains(raw),
            "`{raw}` leaked:\n{}",
            logs.both()
        );
    }
    assert!(
        logs.stdout
            .contains("checkout ok order=1042 user=[email] card=[card]"),
        "{}",
        logs.both()
    );
    assert!(logs.stdout.contains("[aws_access_key]"), "{}", logs.both());
    // The second command (--grep checkout) printed the two checkout lines only.
    assert_eq!(
        logs.stdout.matches("checkout").count(),
        4,
        "{}",
        logs.both()
    );
    // The exec connection: an allowed command, its output masked.
    let exec = shell.run(&tour.step("Run a command through the gateway").commands);
    assert_eq!(exec.code, Some(0), "{}", exec.both());
    for raw in raw_log_values {
        assert!(
            !exec.stdout.contains(raw),
            "`{raw}` leaked:\n{}",
            exec.both()
        );
    }
    assert!(exec.stdout.contains("user=[email]"), "{}", exec.both());
    // A sensitive command: refused, with the command that requests it.
    let refused = shell.run(&tour.step("A sensitive command is refused").commands);
    assert_eq!(refused.code, Some(1), "{}", refused.both());
    assert!(
        refused
            .stderr
            .contains("command blocked by shield `command:/etc/*` on connection `shop-tools`"),
        "{}",
        refused.both()
    );
    assert!(
        refused
            .stderr
            .contains("periscope request shop-tools --lift 'command:/etc/*'"),
        "{}",
        refused.both()
    );

    // The recordings: alice lists her SQL sessions and plays the newest
    // back, instantly: statements with their masked samples, no raw value.
    let recordings = tour.step("Every session is recorded as you saw it");
    assert_eq!(recordings.commands.len(), 2, "{recordings:?}");
    let listed = shell.run(&recordings.commands[..1]);
    assert_eq!(listed.code, Some(0), "{}", listed.both());
    let newest = listed
        .stdout
        .lines()
        .rev()
        .filter_map(|l| l.split_whitespace().next())
        .find(|id| id.starts_with("ses_"))
        .unwrap_or_else(|| panic!("no recording listed\n{}", listed.both()))
        .to_string();
    assert!(listed.stdout.contains("sql"), "{}", listed.both());
    let play = recordings.commands[1].replace("RECORDING_ID", &newest);
    let played = shell.run(&[play]);
    assert_eq!(played.code, Some(0), "{}", played.both());
    assert!(
        played
            .stdout
            .contains("shop-prod=> SELECT id, name, email, phone, card_number"),
        "{}",
        played.both()
    );
    assert!(played.stdout.contains("[email]"), "{}", played.both());
    assert!(played.stdout.contains("[card]"), "{}", played.both());
    for c in &seeded {
        for value in [&c.email, &c.card_number, &c.phone, &external_ref(c.id)] {
            assert!(
                !played.stdout.contains(value.as_str()),
                "{value} leaked in the recording\n{}",
                played.both()
            );
        }
    }

    // The audit trail, as the administrator: tail and verify.
    let audit = &tour.step("Check the trail").commands;
    let (env, rest) = audit.split_first().unwrap();
    assert!(env.starts_with(". "), "{audit:?}");
    for command in rest {
        let ran = shell.run(&[env.clone(), command.clone()]);
        assert_eq!(ran.code, Some(0), "{}", ran.both());
        if command.contains("verify") {
            assert!(ran.stdout.contains("chain intact"), "{}", ran.both());
            assert!(ran.stdout.contains("recordings intact"), "{}", ran.both());
        } else {
            assert!(ran.stdout.contains("grant.expire"), "{}", ran.both());
        }
    }

    // Why external_ref is masked: the evidence, never a value.
    let review = shell.run(&[
        env.clone(),
        tour.step("see why external_ref is masked").commands[0].clone(),
    ]);
    assert_eq!(review.code, Some(0), "{}", review.both());
    assert!(
        review
            .stdout
            .contains("public.customers.external_ref = national_id [masked]"),
        "{}",
        review.both()
    );
    assert!(review.stdout.contains("sin"), "{}", review.both());
    for c in &seeded {
        assert!(
            !review.stdout.contains(&external_ref(c.id)),
            "{}",
            review.both()
        );
    }

    // Ctrl-C: a clean exit, and nothing left behind.
    let status = demo.interrupt();
    assert_eq!(status.code(), Some(0), "{}", demo.stdout.text());
    assert!(
        !data_dir.exists(),
        "{} is removed on exit",
        data_dir.display()
    );
}

#[test]
fn with_keep_the_directory_stays_and_a_second_run_resumes_it() {
    let tmp = traversable_tempdir();
    let config_dir = tmp.path().join("config");
    let data_dir = tmp.path().join("kept");
    let mut demo = Demo::start(&data_dir, &["--keep", "--rows", "50"], &[], &config_dir);
    let tour = demo.ready();
    let alice_token = env_value(&data_dir.join("env/alice.env"), "PERISCOPE_TOKEN");
    let status = demo.interrupt();
    assert_eq!(status.code(), Some(0), "{}", demo.stdout.text());
    let out = demo.stdout.text();
    assert!(out.contains("kept"), "{out}");
    assert!(
        out.contains(&format!("periscope demo --data-dir {}", data_dir.display())),
        "{out}"
    );
    assert!(data_dir.join("demo.toml").is_file());
    drop(demo);

    // Resumed: same tokens, same data, nothing seeded again.
    let mut resumed = Demo::start(&data_dir, &[], &[], &config_dir);
    let tour_again = resumed.ready();
    assert_eq!(tour_again.steps.len(), tour.steps.len());
    assert_eq!(
        env_value(&data_dir.join("env/alice.env"), "PERISCOPE_TOKEN"),
        alice_token
    );
    assert!(!resumed.stderr.text().contains("seeding"));
    let mut shell = Shell {
        config_dir: config_dir.clone(),
        env_line: None,
    };
    shell.run(&tour_again.step("Act as alice").commands);
    let read = shell.run(&tour_again.step("Read customers").commands);
    assert_eq!(read.code, Some(0), "{}", read.both());
    assert!(read.stdout.contains("(5 rows)"), "{}", read.both());
    let status = resumed.interrupt();
    assert_eq!(status.code(), Some(0));
    assert!(
        data_dir.join("demo.toml").is_file(),
        "a resumed directory is kept"
    );
}

#[test]
fn without_postgresql_the_demo_says_which_package_to_install() {
    let tmp = traversable_tempdir();
    let empty = tmp.path().join("no-postgres-here");
    std::fs::create_dir(&empty).unwrap();
    let data_dir = tmp.path().join("demo");
    let mut demo = Demo::start(
        &data_dir,
        &[],
        &[("PERISCOPE_PG_BINDIR", empty.to_str().unwrap())],
        &tmp.path().join("config"),
    );
    let status = demo.wait_exit();
    assert_eq!(status.code(), Some(1));
    let err = demo.stderr.text();
    for words in [
        "apt-get install postgresql",
        "dnf install postgresql-server",
        "brew install postgresql",
        "PERISCOPE_PG_BINDIR",
    ] {
        assert!(err.contains(words), "{words:?} missing from:\n{err}");
    }
    assert!(!data_dir.exists(), "a failed start removes what it created");
}

/// The arguments after `--` of the README quick start's `cargo run` line,
/// which must build this crate's binary.
fn readme_quick_start_args() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let section = readme
        .split("## Quick start")
        .nth(1)
        .expect("README.md has a Quick start section");
    let line = section
        .lines()
        .find(|l| l.starts_with("cargo run"))
        .expect("the quick start has a `cargo run` command");
    let (cargo, args) = line
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("`{line}` passes arguments after --"));
    assert!(
        cargo
            .split_whitespace()
            .collect::<Vec<_>>()
            .ends_with(&["-p", "periscope"]),
        "the quick start runs this crate's binary: {line}"
    );
    args.split_whitespace().map(String::from).collect()
}

#[test]
fn the_readme_quick_start_reaches_a_masked_row() {
    let args = readme_quick_start_args();
    assert_eq!(args.first().map(String::as_str), Some("demo"), "{args:?}");
    let tmp = traversable_tempdir();
    let config_dir = tmp.path().join("config");
    let data_dir = tmp.path().join("demo");
    // The README's arguments, then only where to listen and keep files, so
    // parallel tests do not collide.
    let extra: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let demo = Demo::start(&data_dir, &extra, &[], &config_dir);
    let tour = demo.ready();
    let mut shell = Shell {
        config_dir: demo.config_dir.clone(),
        env_line: None,
    };
    shell.run(&tour.step("Act as alice").commands);
    let read = shell.run(&tour.step("Read customers").commands);
    assert_eq!(read.code, Some(0), "{}", read.both());
    let first = &demo_customers()[0];
    let row = read
        .stdout
        .lines()
        .find(|l| l.contains(&format!(" {} |", first.id)))
        .unwrap_or_else(|| panic!("customer {} is listed\n{}", first.id, read.both()));
    assert!(row.contains("[email]"), "the email is masked: {row}");
    assert!(!row.contains(first.email.as_str()), "{row}");
}
