//! The interactive shell end to end: the real `periscope up` running
//! `/bin/bash` on a PTY for a `shell` connection, driven over the
//! `GET /v1/shell` WebSocket (tokio-tungstenite over rustls, as the CLI
//! does) and through the real `periscope shell` binary with a piped stdin:
//! the `shell` shield and its request hint, masked output (colours around a
//! value included), resizes reaching the PTY, malformed frames answered
//! while the shell goes on, a revoked grant ending the shell within a
//! second, a client that leaves ending its shell, the recording and the
//! audit chain.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use periscope_testkit::{ApiClient, GatewayOptions, GatewayProcess};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::cli::{run, run_with_stdin};
use crate::support::gateway::{admin, audit, eventually, expect, start};

const CONFIG: &str = r#"
[[connection]]
name = "box"
kind = "shell"
command = ["/bin/bash", "--noprofile", "--norc"]
env = { PATH = "/usr/bin:/bin", TERM = "xterm", PS1 = "box$ " }
timeout = "10m"
idle_timeout = "5m"

[[connection]]
name = "tools"
kind = "exec"
command = ["/bin/echo"]
allow = ["*"]

[[role]]
name = "dev"
connections = ["box", "tools"]
may_lift = ["shell", "unmask:phone"]
max_duration = "1h"
approvals = 0
"#;

struct World {
    gw: GatewayProcess,
    admin: ApiClient,
    dev: ApiClient,
    dev_token: String,
    profile: tempfile::TempDir,
}

async fn world() -> World {
    let gw = start(GatewayOptions::default().config(CONFIG.to_string())).await;
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
        profile: tempfile::tempdir().unwrap(),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl World {
    fn cli(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = crate::support::cli::periscope(self.profile.path());
        cmd.args([args[0], "--url", self.gw.api_url(), "--ca-file"])
            .arg(self.gw.ca_file())
            .args(&args[1..])
            .env("PERISCOPE_TOKEN", &self.dev_token);
        cmd
    }

    async fn grant(&self, lift: &str) -> String {
        let body = expect(
            &self
                .dev
                .post(
                    "/v1/requests",
                    &json!({
                        "connection": "box",
                        "lifts": [lift],
                        "duration": "30m",
                        "reason": "INC-9 a wedged worker",
                    }),
                )
                .await
                .unwrap(),
            201,
        );
        body["grant_id"].as_str().unwrap().to_string()
    }

    /// Opens the shell's WebSocket as the CLI does: TLS with the gateway's
    /// CA, the bearer token in the handshake.
    async fn open(&self, query: &str) -> Socket {
        let url = self
            .gw
            .api_url()
            .replacen("https://", "wss://", 1)
            .trim_end_matches('/')
            .to_string()
            + "/v1/shell?"
            + query;
        let parsed = reqwest::Url::parse(&url).unwrap();
        let host = parsed.host_str().unwrap().to_string();
        let port = parsed.port().unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(self.gw.ca_file()).unwrap();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from(host).unwrap(), tcp)
            .await
            .unwrap();
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", self.dev_token).parse().unwrap(),
        );
        let (socket, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
        assert_eq!(response.status().as_u16(), 101);
        socket
    }

    fn recordings(&self) -> PathBuf {
        self.gw.data_dir().join("recordings")
    }
}

/// The next JSON frame from the gateway.
async fn frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a frame within 20 s")
            .expect("the socket is open")
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => continue,
        }
    }
}

/// Reads output frames until the output seen so far contains `wanted`;
/// returns everything seen (output text, and other frames as JSON lines).
async fn until(socket: &mut Socket, seen: &mut String, wanted: &str) {
    while !seen.contains(wanted) {
        let f = frame(socket).await;
        match f["type"].as_str().unwrap() {
            "output" => seen.push_str(f["data"].as_str().unwrap()),
            "end" => panic!("the shell ended while waiting for {wanted:?}: {f}\n{seen:?}"),
            _ => seen.push_str(&format!("\n<{f}>\n")),
        }
    }
}

async fn type_line(socket: &mut Socket, line: &str) {
    socket
        .send(Message::Binary(format!("{line}\n").into_bytes().into()))
        .await
        .unwrap();
}

/// Whether a process runs `sleep ARG`.
fn sleeping(arg: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .is_ok_and(|c| c.ends_with(format!("sleep\0{arg}\0").as_bytes()))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shell_is_refused_without_a_grant_with_the_request_hint() {
    let w = world().await;
    // The API: refused before any upgrade, an ordinary error.
    let refused = w.dev.get("/v1/shell?connection=box").await.unwrap();
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("shell blocked by shield `shell` on connection `box`"),
        "{}",
        refused.body
    );
    assert!(
        refused
            .body
            .contains("periscope request box --lift shell --for"),
        "{}",
        refused.body
    );
    // The CLI prints it with its hint, and never touches the terminal.
    let cli = run(&mut w.cli(&["shell", "box"]));
    cli.code(1);
    assert!(
        cli.stderr
            .contains("shell blocked by shield `shell` on connection `box`"),
        "{}",
        cli.both()
    );
    assert!(
        cli.stderr
            .contains("hint: to request it: periscope request box --lift shell --for"),
        "{}",
        cli.both()
    );
    // Another kind of connection is not a shell; a shell is not psql's.
    let exec = w.dev.get("/v1/shell?connection=tools").await.unwrap();
    assert_eq!(exec.status, 400, "{}", exec.body);
    assert!(exec.body.contains("periscope exec tools"), "{}", exec.body);
    let connect = w
        .dev
        .post("/v1/connect", &json!({ "connection": "box" }))
        .await
        .unwrap();
    assert_eq!(connect.status, 403, "{}", connect.body);
    assert!(
        connect.body.contains("periscope shell box"),
        "{}",
        connect.body
    );
    // No token, no shell.
    let anonymous = w.gw.client(None).unwrap();
    let no_token = anonymous.get("/v1/shell?connection=box").await.unwrap();
    assert_eq!(no_token.status, 401, "{}", no_token.body);

    let refusals = audit(&w.admin, "action=shell.refused").await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(refusals[0]["details"]["shield"], "shell");
    assert!(audit(&w.admin, "action=shell.start").await.is_empty());

    // With the grant, a request that is not a WebSocket says what it needs.
    w.grant("shell").await;
    let plain = w.dev.get("/v1/shell?connection=box").await.unwrap();
    assert_eq!(plain.status, 400, "{}", plain.body);
    assert!(plain.body.contains("is a WebSocket"), "{}", plain.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_granted_shell_is_masked_resizable_recorded_and_sealed() {
    let w = world().await;
    let grant = w.grant("shell").await;
    let mut socket = w.open("connection=box&cols=100&rows=30").await;
    let start = frame(&mut socket).await;
    assert_eq!(start["type"], "start", "{start}");
    let session = start["session"].as_str().unwrap().to_string();

    let mut seen = String::new();
    // The values are assembled by the shell, so only its output holds them
    // (the echo of the typed line does not).
    type_line(
        &mut socket,
        r"E=example.com; printf '\033[31mjane@%s\033[0m\n' $E; echo plain bob@$E; stty size",
    )
    .await;
    until(&mut socket, &mut seen, "30 100").await;
    assert!(
        seen.contains("\x1b[31m[email]\x1b[0m"),
        "colours pass, the value between them is masked: {seen:?}"
    );
    assert!(seen.contains("plain [email]"), "{seen:?}");

    // A resize reaches the PTY.
    socket
        .send(Message::Text(
            json!({"type": "resize", "cols": 132, "rows": 43})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    type_line(&mut socket, "stty size").await;
    until(&mut socket, &mut seen, "43 132").await;

    // Bad frames get a precise error; the shell goes on.
    socket
        .send(Message::Text("{not json".to_string().into()))
        .await
        .unwrap();
    let error = frame(&mut socket).await;
    assert_eq!(error["type"], "error", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("malformed frame:"),
        "{error}"
    );
    socket
        .send(Message::Text(
            json!({"type": "teleport", "to": "prod"}).to_string().into(),
        ))
        .await
        .unwrap();
    let error = frame(&mut socket).await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown frame type `teleport`"),
        "{error}"
    );
    socket
        .send(Message::Text(
            json!({"type": "resize", "cols": 0, "rows": 9000})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let error = frame(&mut socket).await;
    assert!(
        error["message"].as_str().unwrap().contains("1 to 1000"),
        "{error}"
    );
    type_line(&mut socket, "echo still-$((40+2))").await;
    until(&mut socket, &mut seen, "still-42").await;
    // Typed text as a JSON frame works too, and the gateway stays healthy.
    socket
        .send(Message::Text(
            json!({"type": "stdin", "data": "exit 3\n"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let end = loop {
        let f = frame(&mut socket).await;
        match f["type"].as_str().unwrap() {
            "output" => seen.push_str(f["data"].as_str().unwrap()),
            "end" => break f,
            other => panic!("unexpected {other}: {f}"),
        }
    };
    assert_eq!(end["reason"], "exited", "{end}");
    assert_eq!(end["exit_code"], 3, "{end}");
    assert!(end["masked"].as_u64().unwrap() >= 2, "{end}");
    assert!(!seen.contains("@example.com"), "{seen:?}");
    let health = w.gw.client(None).unwrap().get("/healthz").await.unwrap();
    assert_eq!(health.status, 200);

    // The audit: start (with the grant), end, and the seal before the end.
    let starts = audit(&w.admin, "action=shell.start").await;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["details"]["lifted_by"], grant.as_str());
    assert_eq!(starts[0]["details"]["session"], session.as_str());
    let ends = audit(&w.admin, "action=shell.end").await;
    assert_eq!(ends[0]["details"]["reason"], "exited", "{ends:?}");
    assert_eq!(ends[0]["details"]["exit_code"], 3, "{ends:?}");
    assert!(ends[0]["details"]["masked"]["email"].as_u64().unwrap() >= 2);
    let seals = audit(&w.admin, "action=recording.sealed").await;
    assert_eq!(seals.len(), 1, "{seals:?}");
    assert!(seals[0]["seq"].as_u64() < ends[0]["seq"].as_u64());
    assert_eq!(seals[0]["details"]["recording"], session.as_str());

    // The recording: asciicast v2 at the client's size, masked, sealed.
    let path = w.recordings().join(format!("{session}.cast"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        seals[0]["details"]["sha256"].as_str().unwrap(),
        hex::encode(Sha256::digest(&bytes))
    );
    let text = String::from_utf8(bytes).unwrap();
    let header: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(header["width"], 100, "{header}");
    assert_eq!(header["height"], 30, "{header}");
    assert!(!text.contains("@example.com"), "{text}");
    assert!(text.contains("[email]"), "{text}");
    let played = run(&mut w.cli(&["recordings", "play", &session, "--speed", "1000"]));
    assert!(played.ok().contains("plain [email]"), "{}", played.both());
    let verified = expect(
        &w.admin.post("/v1/audit/verify", &json!({})).await.unwrap(),
        200,
    );
    assert_eq!(verified["ok"], true, "{verified}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_grant_ends_the_shell_within_a_second() {
    let w = world().await;
    let grant = w.grant("shell").await;
    let mut socket = w.open("connection=box").await;
    assert_eq!(frame(&mut socket).await["type"], "start");
    let mut seen = String::new();
    // A job that ignores hangups and TERM: SIGKILL after the grace.
    type_line(
        &mut socket,
        "trap '' HUP TERM; echo READY-$((1+1)); /bin/sleep 312",
    )
    .await;
    until(&mut socket, &mut seen, "READY-2").await;
    eventually("the job to run", Duration::from_secs(10), || async {
        sleeping("312").then_some(())
    })
    .await;
    let at = Instant::now();
    expect(
        &w.dev
            .post(
                &format!("/v1/grants/{grant}/revoke"),
                &json!({ "reason": "done" }),
            )
            .await
            .unwrap(),
        200,
    );
    let end = loop {
        let f = frame(&mut socket).await;
        if f["type"] == "end" {
            break f;
        }
    };
    let took = at.elapsed();
    eprintln!("the shell ended {took:?} after the revocation");
    assert!(took < Duration::from_secs(1), "ended after {took:?}");
    assert_eq!(end["reason"], "cut", "{end}");
    assert!(
        end["message"].as_str().unwrap().contains("revoked"),
        "{end}"
    );
    assert!(
        end["hint"]
            .as_str()
            .unwrap()
            .contains("periscope request box --lift shell"),
        "{end}"
    );
    assert!(!sleeping("312"), "the whole session is gone");
    // Without the grant, refused again.
    let again = w.dev.get("/v1/shell?connection=box").await.unwrap();
    assert_eq!(again.status, 403, "{}", again.body);

    // A client that leaves ends its shell.
    w.grant("shell").await;
    let mut socket = w.open("connection=box").await;
    assert_eq!(frame(&mut socket).await["type"], "start");
    let mut seen = String::new();
    type_line(&mut socket, "echo GO-$((2+2)); /bin/sleep 311").await;
    until(&mut socket, &mut seen, "GO-4").await;
    eventually("the job to run", Duration::from_secs(10), || async {
        sleeping("311").then_some(())
    })
    .await;
    drop(socket);
    eventually("the shell to end", Duration::from_secs(5), || async {
        (!sleeping("311")).then_some(())
    })
    .await;
    let ends = eventually("shell.end", Duration::from_secs(5), || async {
        let ends = audit(&w.admin, "action=shell.end").await;
        (ends.len() == 2).then_some(ends)
    })
    .await;
    assert!(
        ends.iter().any(|e| e["details"]["reason"] == "client_gone"),
        "{ends:?}"
    );
    assert!(
        ends.iter().any(|e| e["details"]["reason"] == "cut"),
        "{ends:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_runs_a_piped_script_masked_with_its_exit_code() {
    let w = world().await;
    w.grant("shell").await;
    let out = run_with_stdin(
        &mut w.cli(&["shell", "box"]),
        b"E=example.com; echo \"mail kim@$E\"; exit 5\n",
    );
    assert_eq!(out.code, Some(5), "{}", out.both());
    assert!(out.stdout.contains("mail [email]"), "{}", out.both());
    assert!(!out.stdout.contains("kim@example.com"), "{}", out.both());
    // A script without `exit` ends at the end of its input (Ctrl-D).
    let out = run_with_stdin(&mut w.cli(&["shell", "box"]), b"echo last-$((3*3))\n");
    assert_eq!(out.code, Some(0), "{}", out.both());
    assert!(out.stdout.contains("last-9"), "{}", out.both());
}

/// Output of a program on a local PTY, read on a thread.
struct Terminal {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    /// Reads until the output since `from` contains `wanted`, at most `wait`.
    fn wait_for(&mut self, from: usize, wanted: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.seen[from..].contains(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(bytes) => self.seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => return false,
            }
        }
        true
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_on_a_terminal_goes_raw_follows_the_window_and_restores_the_terminal() {
    use portable_pty::{CommandBuilder, PtySize};
    let w = world().await;
    w.grant("shell").await;
    let size = |rows, cols| PtySize {
        rows,
        cols,
        pixel_width: 0,
        pixel_height: 0,
    };
    let pair = portable_pty::native_pty_system()
        .openpty(size(20, 50))
        .unwrap();
    let mut cmd = CommandBuilder::new("/bin/sh");
    cmd.args([
        "-c",
        "\"$PERISCOPE\" shell box --url \"$URL\" --ca-file \"$CA\"; echo \"CODE=$?\"; stty -a; echo DONE",
    ]);
    cmd.env("PERISCOPE", env!("CARGO_BIN_EXE_periscope"));
    cmd.env("URL", w.gw.api_url());
    cmd.env("CA", w.gw.ca_file());
    cmd.env("PERISCOPE_TOKEN", &w.dev_token);
    cmd.env("PERISCOPE_CONFIG_DIR", w.profile.path());
    cmd.env("PATH", "/usr/bin:/bin");
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut writer = pair.master.take_writer().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut reader, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut term = Terminal {
        rx,
        seen: String::new(),
    };
    let mut type_keys = |keys: &str| {
        std::io::Write::write_all(&mut writer, keys.as_bytes()).unwrap();
        std::io::Write::flush(&mut writer).unwrap();
    };
    let long = Duration::from_secs(20);
    assert!(term.wait_for(0, "box$ ", long), "{:?}", term.seen);

    // The window size at start reaches the remote PTY.
    let from = term.seen.len();
    type_keys("stty size\r");
    assert!(term.wait_for(from, "20 50", long), "{:?}", term.seen);

    // A resize of the local window follows (SIGWINCH, then a resize frame;
    // the signal races with the keys, so ask again until it shows).
    pair.master.resize(size(30, 90)).unwrap();
    let mut followed = false;
    for _ in 0..20 {
        let from = term.seen.len();
        type_keys("stty size\r");
        if term.wait_for(from, "30 90", Duration::from_millis(500)) {
            followed = true;
            break;
        }
    }
    assert!(followed, "{:?}", term.seen);

    // Ctrl-C is a byte in raw mode: it interrupts the remote job only.
    let from = term.seen.len();
    type_keys("/bin/sleep 97.5; echo not-reached\r");
    assert!(term.wait_for(from, "not-reached", long));
    eventually("the job to run", Duration::from_secs(10), || async {
        sleeping("97.5").then_some(())
    })
    .await;
    type_keys("\x03");
    type_keys("echo after-$((6*7))\r");
    assert!(term.wait_for(from, "after-42", long), "{:?}", term.seen);
    assert!(
        !term.seen[from..].contains("\nnot-reached"),
        "{:?}",
        term.seen
    );

    // The remote exit code is the CLI's, and the terminal is cooked again.
    let from = term.seen.len();
    type_keys("exit 4\r");
    assert!(term.wait_for(from, "DONE", long), "{:?}", term.seen);
    let after = &term.seen[from..];
    assert!(after.contains("CODE=4"), "{after:?}");
    let stty = &after[after.find("CODE=4").unwrap()..];
    assert!(
        stty.contains(" icanon") && stty.contains(" echo ") && !stty.contains("-icanon"),
        "{stty:?}"
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
}
