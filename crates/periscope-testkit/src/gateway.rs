//! Real `periscope up` processes for tests, and (with the `http-client`
//! feature) an HTTPS JSON client that trusts the gateway's own CA.
//!
//! The harness knows nothing of the gateway's code: the test passes the path
//! of the binary (`env!("CARGO_BIN_EXE_periscope")`), the harness writes the
//! configuration, starts the process, and waits for its one machine-readable
//! line (`periscope: ready api=... pg=... data_dir=...`) with a timeout,
//! never a sleep. Stdout and stderr are captured line by line (and echoed to
//! the test's stderr, so a failing test shows the gateway's log).
//!
//! ```no_run
//! use periscope_testkit::{GatewayOptions, GatewayProcess};
//!
//! let mut gw = GatewayProcess::start(
//!     env!("CARGO_MANIFEST_DIR"), // the test passes env!("CARGO_BIN_EXE_periscope")
//!     GatewayOptions::default().test_clock(true),
//! )?;
//! let token = gw.bootstrap_token().expect("first start prints the admin token");
//! println!("{} {}", gw.api_url(), token);
//! gw.stop()?; // SIGTERM, waits for a clean exit
//! gw.restart()?; // same data directory: keys, CA and store are reused
//! # Ok::<(), periscope_testkit::TestkitError>(())
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// How long a gateway may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`GatewayProcess::stop`] waits for a clean exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a gateway.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// `periscope.toml` content; `None` starts with built-in defaults.
    pub config_toml: Option<String>,
    /// Data directory; `None` uses a fresh one inside the harness's temp dir.
    /// Give the same directory to two processes to make replicas share keys.
    pub data_dir: Option<PathBuf>,
    /// Start with `--test-clock`.
    pub test_clock: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Pass `--api-listen 127.0.0.1:0 --pg-listen 127.0.0.1:0`, so parallel
    /// tests never collide (default). Turn off to test `[server]` itself.
    pub ephemeral_ports: bool,
    /// Extra command-line arguments after `up`.
    pub args: Vec<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            config_toml: None,
            data_dir: None,
            test_clock: false,
            env: Vec::new(),
            ephemeral_ports: true,
            args: Vec::new(),
        }
    }
}

impl GatewayOptions {
    /// Sets the configuration text.
    pub fn config(mut self, toml: impl Into<String>) -> Self {
        self.config_toml = Some(toml.into());
        self
    }

    /// Sets the data directory.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Enables the test clock.
    pub fn test_clock(mut self, on: bool) -> Self {
        self.test_clock = on;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

/// Output lines captured from one stream, with a way to wait for a line.
#[derive(Debug, Default)]
struct Captured {
    state: Mutex<CapturedState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CapturedState {
    lines: Vec<String>,
    closed: bool,
}

impl Captured {
    fn lock(&self) -> std::sync::MutexGuard<'_, CapturedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: String) {
        self.lock().lines.push(line);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn text(&self) -> String {
        let state = self.lock();
        let mut out = state.lines.join("\n");
        if !state.lines.is_empty() {
            out.push('\n');
        }
        out
    }

    /// The first line after `from` containing `needle`; `None` on timeout or
    /// when the stream ended without one.
    fn wait_for(&self, needle: &str, from: usize, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if let Some(line) = state.lines.iter().skip(from).find(|l| l.contains(needle)) {
                return Some(line.clone());
            }
            if state.closed {
                return None;
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the stream ended (the process closed it).
    fn wait_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while !state.closed {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn len(&self) -> usize {
        self.lock().lines.len()
    }
}

/// What a gateway that exited (or refused to start) left behind.
#[derive(Debug, Clone)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

struct Started {
    pid: u32,
    exited: Receiver<ExitStatus>,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
}

/// A running `periscope up` process. Killed (SIGKILL) when dropped.
pub struct GatewayProcess {
    binary: PathBuf,
    options: GatewayOptions,
    root: tempfile::TempDir,
    data_dir: PathBuf,
    config_path: Option<PathBuf>,
    running: Option<Started>,
    api_url: String,
    pg_addr: Option<SocketAddr>,
    bootstrap_token: Option<String>,
}

impl std::fmt::Debug for GatewayProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayProcess")
            .field("api_url", &self.api_url)
            .field("data_dir", &self.data_dir)
            .field("pid", &self.running.as_ref().map(|r| r.pid))
            .finish_non_exhaustive()
    }
}

fn spawn_reader<R: std::io::Read + Send + 'static>(
    stream: R,
    into: Arc<Captured>,
    label: &'static str,
    pid: u32,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[gateway {pid} {label}] {line}");
            into.push(line);
        }
        into.close();
    });
}

impl GatewayProcess {
    /// Starts `binary up` and waits for its ready line.
    pub fn start(binary: impl AsRef<Path>, options: GatewayOptions) -> Result<Self, TestkitError> {
        let (gateway, outcome) = GatewayProcess::launch_new(binary.as_ref(), options)?;
        match outcome {
            Ok(()) => Ok(gateway),
            Err(exited) => Err(refused(&exited)),
        }
    }

    /// Starts `binary up` expecting it to refuse to start, and returns what it
    /// printed and its exit status.
    pub fn start_expecting_failure(
        binary: impl AsRef<Path>,
        options: GatewayOptions,
    ) -> Result<Exited, TestkitError> {
        let (mut gateway, outcome) = GatewayProcess::launch_new(binary.as_ref(), options)?;
        match outcome {
            Err(exited) => Ok(exited),
            Ok(()) => {
                gateway.kill()?;
                Err(TestkitError::CommandFailed {
                    what: "periscope up".into(),
                    detail: "it started, but the test expected it to refuse".into(),
                })
            }
        }
    }

    fn launch_new(
        binary: &Path,
        options: GatewayOptions,
    ) -> Result<(GatewayProcess, Result<(), Exited>), TestkitError> {
        let root = tempfile::Builder::new()
            .prefix("periscope-gateway-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the gateway temp dir", e))?;
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| root.path().join("data"));
        let mut gateway = GatewayProcess {
            binary: binary.to_path_buf(),
            options,
            config_path: None,
            root,
            data_dir,
            running: None,
            api_url: String::new(),
            pg_addr: None,
            bootstrap_token: None,
        };
        if let Some(toml) = gateway.options.config_toml.clone() {
            gateway.write_config(&toml)?;
        }
        let outcome = gateway.launch()?;
        Ok((gateway, outcome))
    }

    /// Replaces the configuration file (e.g. before a reload).
    pub fn write_config(&mut self, toml: &str) -> Result<(), TestkitError> {
        let path = self.root.path().join("periscope.toml");
        std::fs::write(&path, toml).map_err(|e| TestkitError::io("writing periscope.toml", e))?;
        self.config_path = Some(path);
        Ok(())
    }

    /// The configuration file, when there is one.
    pub fn config_path(&self) -> Option<&Path> {
        self.config_path.as_deref()
    }

    fn launch(&mut self) -> Result<Result<(), Exited>, TestkitError> {
        let mut command = Command::new(&self.binary);
        command.arg("up").arg("--data-dir").arg(&self.data_dir);
        if let Some(path) = &self.config_path {
            command.arg("--config").arg(path);
        }
        if self.options.ephemeral_ports {
            command.args(["--api-listen", "127.0.0.1:0", "--pg-listen", "127.0.0.1:0"]);
        }
        if self.options.test_clock {
            command.arg("--test-clock");
        }
        command.args(&self.options.args);
        command
            .current_dir(self.root.path())
            .env_remove("PERISCOPE_CONFIG")
            .env_remove("PERISCOPE_DATA_DIR")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child: Child = command
            .spawn()
            .map_err(|e| TestkitError::io(&format!("starting {}", self.binary.display()), e))?;
        let pid = child.id();
        let stdout = Arc::new(Captured::default());
        let stderr = Arc::new(Captured::default());
        if let Some(out) = child.stdout.take() {
            spawn_reader(out, stdout.clone(), "out", pid);
        }
        if let Some(err) = child.stderr.take() {
            spawn_reader(err, stderr.clone(), "err", pid);
        }
        let (exited_tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = exited_tx.send(status);
            }
        });
        let started = Started {
            pid,
            exited,
            stdout,
            stderr,
        };
        // The ready line, or the end of stdout (the process exited).
        let ready = match started
            .stdout
            .wait_for("periscope: ready ", 0, READY_TIMEOUT)
        {
            Some(line) => line,
            None => {
                return match started.exited.recv_timeout(STOP_TIMEOUT) {
                    Ok(status) => {
                        started.stderr.wait_closed(STOP_TIMEOUT);
                        Ok(Err(Exited {
                            status,
                            stdout: started.stdout.text(),
                            stderr: started.stderr.text(),
                        }))
                    }
                    Err(_) => {
                        let _ = kill_pid(pid, "KILL");
                        Err(TestkitError::CommandFailed {
                            what: "periscope up".into(),
                            detail: format!(
                                "no ready line within {READY_TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                                started.stdout.text(),
                                started.stderr.text()
                            ),
                        })
                    }
                };
            }
        };
        let field = |name: &str| {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        };
        self.api_url = field("api").unwrap_or_default();
        self.pg_addr = field("pg").and_then(|p| p.parse().ok());
        self.bootstrap_token = started
            .stdout
            .text()
            .lines()
            .find_map(|l| l.trim().strip_prefix("admin token: ").map(str::to_owned));
        self.running = Some(started);
        Ok(Ok(()))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The PostgreSQL listener, when the build starts one.
    pub fn pg_addr(&self) -> Option<SocketAddr> {
        self.pg_addr
    }

    /// The bootstrap token, when this start was the store's first.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `<data-dir>/tls/ca.pem`, the certificate clients trust.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// Everything printed on stdout by the current (or last) process.
    pub fn stdout(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.stdout.text())
            .unwrap_or_default()
    }

    /// Everything printed on stderr by the current (or last) process.
    pub fn stderr(&self) -> String {
        self.running
            .as_ref()
            .map(|r| r.stderr.text())
            .unwrap_or_default()
    }

    /// How many stderr lines were printed so far: pass it to
    /// [`GatewayProcess::wait_for_log`] to wait only for newer lines.
    pub fn log_mark(&self) -> usize {
        self.running.as_ref().map_or(0, |r| r.stderr.len())
    }

    /// Waits until a stderr line after `mark` contains `needle`.
    pub fn wait_for_log(
        &self,
        needle: &str,
        mark: usize,
        timeout: Duration,
    ) -> Result<String, TestkitError> {
        let running = self
            .running
            .as_ref()
            .ok_or_else(|| TestkitError::CommandFailed {
                what: "waiting for a log line".into(),
                detail: "the gateway is not running".into(),
            })?;
        running
            .stderr
            .wait_for(needle, mark, timeout)
            .ok_or_else(|| TestkitError::CommandFailed {
                what: format!("waiting for a log line containing {needle:?}"),
                detail: format!(
                    "not seen within {timeout:?}; stderr:\n{}",
                    running.stderr.text()
                ),
            })
    }

    /// Sends a signal by name (`HUP`, `TERM`, `KILL`) to the process.
    pub fn signal(&self, name: &str) -> Result<(), TestkitError> {
        let pid = self.pid().ok_or_else(|| TestkitError::CommandFailed {
            what: format!("kill -{name}"),
            detail: "the gateway is not running".into(),
        })?;
        kill_pid(pid, name)
    }

    fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, TestkitError> {
        let Some(running) = self.running.as_ref() else {
            return Err(TestkitError::CommandFailed {
                what: "waiting for the gateway to exit".into(),
                detail: "it is not running".into(),
            });
        };
        let status = match running.exited.recv_timeout(timeout) {
            Ok(status) => status,
            Err(RecvTimeoutError::Timeout) => {
                return Err(TestkitError::CommandFailed {
                    what: "waiting for the gateway to exit".into(),
                    detail: format!("still running after {timeout:?}"),
                });
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TestkitError::CommandFailed {
                    what: "waiting for the gateway to exit".into(),
                    detail: "lost track of the process".into(),
                });
            }
        };
        // Keep the captured output for inspection, forget the pid.
        if let Some(r) = self.running.as_mut() {
            r.pid = 0;
        }
        Ok(status)
    }

    /// SIGTERM, then waits for the exit (a clean stop exits 0).
    pub fn stop(&mut self) -> Result<ExitStatus, TestkitError> {
        if self.is_running() {
            self.signal("TERM")?;
        }
        self.wait_exit(STOP_TIMEOUT)
    }

    /// SIGKILL, then waits for the process to be gone.
    pub fn kill(&mut self) -> Result<ExitStatus, TestkitError> {
        if self.is_running() {
            self.signal("KILL")?;
        }
        self.wait_exit(STOP_TIMEOUT)
    }

    /// Whether the process is (still) running.
    pub fn is_running(&self) -> bool {
        self.running.as_ref().is_some_and(|r| r.pid != 0)
    }

    /// Starts the process again on the same data directory and configuration
    /// (stop or kill it first). The bootstrap token is not printed again.
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        if self.is_running() {
            self.stop()?;
        }
        self.launch()?.map_err(|exited| refused(&exited))
    }

    /// Starts the process again expecting it to refuse (e.g. after a key file
    /// was damaged), and returns what it printed.
    pub fn restart_expecting_failure(&mut self) -> Result<Exited, TestkitError> {
        if self.is_running() {
            self.stop()?;
        }
        match self.launch()? {
            Err(exited) => Ok(exited),
            Ok(()) => {
                self.kill()?;
                Err(TestkitError::CommandFailed {
                    what: "periscope up".into(),
                    detail: "it started, but the test expected it to refuse".into(),
                })
            }
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.kill();
        }
    }
}

fn refused(exited: &Exited) -> TestkitError {
    TestkitError::CommandFailed {
        what: "periscope up".into(),
        detail: format!(
            "exited with {} before it was ready\nstdout:\n{}\nstderr:\n{}",
            exited.status, exited.stdout, exited.stderr
        ),
    }
}

fn kill_pid(pid: u32, signal: &str) -> Result<(), TestkitError> {
    if pid == 0 {
        return Ok(());
    }
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| TestkitError::io("running kill", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(TestkitError::CommandFailed {
            what: format!("kill -{signal} {pid}"),
            detail: format!("exited with {status}"),
        })
    }
}

#[cfg(feature = "http-client")]
pub use client::{ApiClient, ApiResponse};

#[cfg(feature = "http-client")]
mod client {
    use std::path::Path;
    use std::sync::Arc;

    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use crate::TestkitError;

    /// A response, read whole.
    #[derive(Debug, Clone)]
    pub struct ApiResponse {
        /// HTTP status.
        pub status: u16,
        /// Headers, lowercase names.
        pub headers: Vec<(String, String)>,
        /// The body as text.
        pub body: String,
    }

    impl ApiResponse {
        /// The body as JSON (`Null` when it is not JSON).
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
        }

        /// The body as `T`.
        pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, TestkitError> {
            serde_json::from_str(&self.body).map_err(|e| TestkitError::CommandFailed {
                what: "decoding an API response".into(),
                detail: format!("{e}: status {} body {}", self.status, self.body),
            })
        }

        /// `error.code` of an error body.
        pub fn error_code(&self) -> Option<String> {
            self.json()["error"]["code"].as_str().map(str::to_owned)
        }

        /// `error.message` of an error body.
        pub fn error_message(&self) -> String {
            self.json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        /// A header's value.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A JSON client for the gateway API, trusting only the gateway's CA.
    #[derive(Debug, Clone)]
    pub struct ApiClient {
        http: reqwest::Client,
        base: String,
        token: Option<String>,
        headers: Vec<(String, String)>,
    }

    impl ApiClient {
        /// A client for `base` (`https://127.0.0.1:PORT`) trusting `ca_file`.
        pub fn new(base: &str, ca_file: &Path, token: Option<&str>) -> Result<Self, TestkitError> {
            let fail = |detail: String| TestkitError::CommandFailed {
                what: "building the API client".into(),
                detail,
            };
            let mut roots = rustls::RootCertStore::empty();
            let ca = CertificateDer::from_pem_file(ca_file)
                .map_err(|e| fail(format!("{}: {e}", ca_file.display())))?;
            roots.add(ca).map_err(|e| fail(e.to_string()))?;
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let http = reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            Ok(ApiClient {
                http,
                base: base.trim_end_matches('/').to_owned(),
                token: token.map(str::to_owned),
                headers: Vec::new(),
            })
        }

        /// The same client with another bearer token (or none).
        pub fn with_token(&self, token: Option<&str>) -> ApiClient {
            ApiClient {
                token: token.map(str::to_owned),
                ..self.clone()
            }
        }

        /// The same client sending one more header on every request.
        pub fn with_header(&self, name: &str, value: &str) -> ApiClient {
            let mut client = self.clone();
            client.headers.push((name.to_owned(), value.to_owned()));
            client
        }

        /// Sends a request with a raw body and content type (for malformed-input tests).
        pub async fn send_raw(
            &self,
            method: &str,
            path: &str,
            content_type: &str,
            body: &str,
        ) -> Result<ApiResponse, TestkitError> {
            let client = self.with_header("content-type", content_type);
            client.send_body(method, path, Some(body.to_owned())).await
        }

        /// Sends a request; `body` is sent as JSON when given.
        pub async fn send(
            &self,
            method: &str,
            path: &str,
            body: Option<&serde_json::Value>,
        ) -> Result<ApiResponse, TestkitError> {
            match body {
                Some(json) => {
                    self.with_header("content-type", "application/json")
                        .send_body(method, path, Some(json.to_string()))
                        .await
                }
                None => self.send_body(method, path, None).await,
            }
        }

        async fn send_body(
            &self,
            method: &str,
            path: &str,
            body: Option<String>,
        ) -> Result<ApiResponse, TestkitError> {
            let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| {
                TestkitError::CommandFailed {
                    what: "building a request".into(),
                    detail: e.to_string(),
                }
            })?;
            let mut request = self.http.request(method, format!("{}{path}", self.base));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| TestkitError::CommandFailed {
                    what: format!("calling {path}"),
                    detail: format!("{e:?}"),
                })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let body = response
                .text()
                .await
                .map_err(|e| TestkitError::CommandFailed {
                    what: format!("reading the answer of {path}"),
                    detail: e.to_string(),
                })?;
            Ok(ApiResponse {
                status,
                headers,
                body,
            })
        }

        /// `GET path`.
        pub async fn get(&self, path: &str) -> Result<ApiResponse, TestkitError> {
            self.send("GET", path, None).await
        }

        /// `POST path` with a JSON body.
        pub async fn post(
            &self,
            path: &str,
            body: &serde_json::Value,
        ) -> Result<ApiResponse, TestkitError> {
            self.send("POST", path, Some(body)).await
        }

        /// `PATCH path` with a JSON body.
        pub async fn patch(
            &self,
            path: &str,
            body: &serde_json::Value,
        ) -> Result<ApiResponse, TestkitError> {
            self.send("PATCH", path, Some(body)).await
        }

        /// `DELETE path`.
        pub async fn delete(&self, path: &str) -> Result<ApiResponse, TestkitError> {
            self.send("DELETE", path, None).await
        }
    }

    impl super::GatewayProcess {
        /// A client for this gateway's API with `token`.
        pub fn client(&self, token: Option<&str>) -> Result<ApiClient, TestkitError> {
            ApiClient::new(self.api_url(), &self.ca_file(), token)
        }
    }
}
