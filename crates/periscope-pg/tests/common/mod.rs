//! Shared harness of the periscope-pg integration tests: a real PostgreSQL
//! cluster (periscope-testkit), the proxy listening on a free loopback port,
//! a test `Authenticator` (the gateway's seam: a fixed token mapped to the
//! cluster), and a raw protocol client for what drivers do not expose.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, missing_docs)]

pub mod shield;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use periscope_pg::backend::{BackendMessage, DataRowWriter, NoticeFields};
use periscope_pg::frontend::{self, FrontendMessage};
use periscope_pg::{
    AuthRejection, AuthRequest, Authenticated, Authenticator, BackendAction, ClientTls, Frame,
    FrontendAction, PgError, PgListener, ProtocolState, ProxyConfig, ProxyMetrics, SessionHandle,
    SessionHooks, SessionInfo, SessionList, SessionTarget, UpstreamTls, sqlstate,
};
use periscope_testkit::{PgCluster, SUPERUSER, SUPERUSER_PASSWORD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

pub const TOKEN: &str = "good-token";
pub const CONNECTION: &str = "pg-test";
pub const USER: &str = "alice";

/// Where the test authenticator sends sessions.
#[derive(Clone, Debug)]
pub struct Upstream {
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
}

impl Upstream {
    pub fn superuser(cluster: &PgCluster) -> Self {
        Self {
            port: cluster.port(),
            database: "postgres".into(),
            user: SUPERUSER.into(),
            password: SUPERUSER_PASSWORD.into(),
        }
    }
}

/// Test hooks: refuse statements mentioning a word, and hand the session
/// handle to the test.
#[derive(Clone, Default)]
pub struct HookConfig {
    pub refuse_word: Option<String>,
    pub handles: Option<mpsc::UnboundedSender<SessionHandle>>,
    /// Replace every DataRow value containing `@` with `[email]`, and drop
    /// NoticeResponses: the seam the masking stage will use.
    pub mask_emails: bool,
}

pub struct TestHooks {
    config: HookConfig,
    scratch: BytesMut,
}

impl SessionHooks for TestHooks {
    fn on_start(&mut self, _info: &SessionInfo, handle: &SessionHandle) {
        if let Some(tx) = &self.config.handles {
            let _ = tx.send(handle.clone());
        }
    }

    fn on_backend(&mut self, frame: Frame<'_>, _state: &ProtocolState) -> BackendAction {
        if !self.config.mask_emails {
            return BackendAction::Forward;
        }
        match BackendMessage::decode(frame) {
            Ok(BackendMessage::NoticeResponse(_)) => BackendAction::Drop,
            Ok(BackendMessage::DataRow(row)) => {
                if !row.fields().flatten().any(|v| v.contains(&b'@')) {
                    return BackendAction::Forward;
                }
                let mut writer = DataRowWriter::new(&mut self.scratch);
                for value in row.fields() {
                    let masked = value.map(|v| {
                        if v.contains(&b'@') {
                            &b"[email]"[..]
                        } else {
                            v
                        }
                    });
                    writer.push(masked).unwrap();
                }
                writer.finish().unwrap();
                BackendAction::Rewrite(self.scratch.split().freeze())
            }
            _ => BackendAction::Forward,
        }
    }

    fn on_frontend(&mut self, frame: Frame<'_>, _state: &ProtocolState) -> FrontendAction {
        let Some(word) = &self.config.refuse_word else {
            return FrontendAction::Forward;
        };
        let sql = match FrontendMessage::decode(frame) {
            Ok(FrontendMessage::Query { sql }) | Ok(FrontendMessage::Parse { sql, .. }) => sql,
            _ => return FrontendAction::Forward,
        };
        if sql.contains(word.as_str()) {
            FrontendAction::Refuse(
                PgError::error(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    format!("access to {word} is shielded"),
                )
                .with_hint(format!(
                    "periscope request {CONNECTION} --lift table:{word}"
                )),
            )
        } else {
            FrontendAction::Forward
        }
    }
}

pub struct TestAuth {
    upstream: Upstream,
    tls: UpstreamTls,
    hooks: HookConfig,
}

impl Authenticator for TestAuth {
    type Hooks = TestHooks;

    async fn authenticate(
        &self,
        request: &AuthRequest,
    ) -> Result<Authenticated<TestHooks>, AuthRejection> {
        if request.password.expose() != TOKEN {
            return Err(AuthRejection::bad_password("invalid Periscope token"));
        }
        if request.database != CONNECTION {
            return Err(AuthRejection::unknown_connection(format!(
                "no connection named \"{}\"",
                request.database
            )));
        }
        Ok(Authenticated {
            target: SessionTarget {
                host: "127.0.0.1".into(),
                port: self.upstream.port,
                database: self.upstream.database.clone(),
                user: self.upstream.user.clone(),
                password: self.upstream.password.as_str().into(),
                tls: self.tls.clone(),
                parameters: Vec::new(),
            },
            hooks: TestHooks {
                config: self.hooks.clone(),
                scratch: BytesMut::new(),
            },
        })
    }
}

/// A running proxy on a free loopback port.
pub struct Gateway {
    pub addr: SocketAddr,
    pub metrics: Arc<ProxyMetrics>,
    pub sessions: SessionList,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<tokio::task::JoinHandle<std::io::Result<()>>>>,
}

pub struct GatewayBuilder {
    upstream: Upstream,
    config: ProxyConfig,
    tls: UpstreamTls,
    hooks: HookConfig,
}

impl GatewayBuilder {
    pub fn config(mut self, f: impl FnOnce(&mut ProxyConfig)) -> Self {
        f(&mut self.config);
        self
    }

    pub fn hooks(mut self, hooks: HookConfig) -> Self {
        self.hooks = hooks;
        self
    }

    pub fn upstream_tls(mut self, tls: UpstreamTls) -> Self {
        self.tls = tls;
        self
    }

    pub async fn start(self) -> Gateway {
        let auth = TestAuth {
            upstream: self.upstream,
            tls: self.tls,
            hooks: self.hooks,
        };
        let listener = PgListener::bind("127.0.0.1:0", self.config, auth)
            .await
            .expect("bind the proxy on loopback");
        let addr = listener.local_addr().unwrap();
        let metrics = listener.metrics();
        let sessions = listener.sessions();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(listener.serve(async move {
            let _ = rx.await;
        }));
        Gateway {
            addr,
            metrics,
            sessions,
            shutdown: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
        }
    }
}

impl Gateway {
    /// A plaintext gateway that accepts tokens without TLS (tests only).
    pub fn plaintext(upstream: Upstream) -> GatewayBuilder {
        let mut config = ProxyConfig::new(ClientTls::Disabled);
        config.allow_plaintext_password = true;
        GatewayBuilder {
            upstream,
            config,
            tls: UpstreamTls::Disable,
            hooks: HookConfig::default(),
        }
    }

    pub fn with_config(upstream: Upstream, config: ProxyConfig) -> GatewayBuilder {
        GatewayBuilder {
            upstream,
            config,
            tls: UpstreamTls::Disable,
            hooks: HookConfig::default(),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// libpq conninfo for the gateway (plaintext).
    pub fn conninfo(&self) -> String {
        self.conninfo_with(TOKEN, CONNECTION)
    }

    pub fn conninfo_with(&self, password: &str, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} password={password} dbname={dbname} sslmode=disable",
            self.port()
        )
    }

    /// Connects tokio-postgres through the gateway; the connection task's
    /// outcome comes back on the returned receiver.
    pub async fn connect(
        &self,
    ) -> (
        tokio_postgres::Client,
        oneshot::Receiver<Result<(), tokio_postgres::Error>>,
    ) {
        connect(&self.conninfo())
            .await
            .expect("connect through the gateway")
    }

    /// Stops accepting, ends live sessions, waits for the serve task.
    pub async fn shutdown(&self) {
        let tx = self.shutdown.lock().unwrap().take();
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.await.unwrap().unwrap();
        }
    }
}

pub async fn connect(
    conninfo: &str,
) -> Result<
    (
        tokio_postgres::Client,
        oneshot::Receiver<Result<(), tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let _ = tx.send(connection.await);
    });
    Ok((client, rx))
}

pub fn start_cluster() -> PgCluster {
    PgCluster::start().expect("start a throwaway PostgreSQL cluster")
}

/// Output of a psql run.
#[derive(Debug)]
pub struct PsqlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `psql` with a conninfo string (asynchronously: the gateway
/// runs on the same runtime).
pub async fn psql(cluster: &PgCluster, conninfo: &str, sql: &str) -> PsqlOutput {
    psql_in(cluster, conninfo, sql, None).await
}

pub async fn psql_in(
    cluster: &PgCluster,
    conninfo: &str,
    sql: &str,
    cwd: Option<&Path>,
) -> PsqlOutput {
    let mut cmd = tokio::process::Command::new(cluster.binaries().path("psql"));
    cmd.args([
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-d",
        conninfo,
        "-c",
        sql,
    ])
    .env("PGCONNECT_TIMEOUT", "10")
    .env_remove("PGPASSWORD")
    .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("psql finished within a minute")
        .expect("run psql");
    PsqlOutput {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// A message received by [`RawClient`].
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub raw: Vec<u8>,
}

impl Msg {
    pub fn decode(&self) -> BackendMessage<'_> {
        let frame = Frame::parse(&self.raw, usize::MAX).unwrap().unwrap();
        BackendMessage::decode(frame).unwrap()
    }

    pub fn error(&self) -> Option<NoticeFields<'_>> {
        match self.decode() {
            BackendMessage::ErrorResponse(f) => Some(f),
            _ => None,
        }
    }
}

/// A hand-driven protocol client built on this crate's own codec, for
/// checking message order and what drivers hide.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Connects, starts up and authenticates; returns the startup messages
    /// up to ReadyForQuery.
    pub async fn login(addr: SocketAddr, params: &[(&str, &str)]) -> (Self, Vec<Msg>) {
        let mut client = Self::connect(addr).await;
        let mut out = BytesMut::new();
        let mut all = vec![("user", USER), ("database", CONNECTION)];
        all.extend_from_slice(params);
        frontend::encode::startup_message(&mut out, all);
        client.send(&out).await;
        let auth = client.recv().await;
        assert_eq!(auth.tag, b'R', "expected an authentication request");
        let mut out = BytesMut::new();
        frontend::encode::password(&mut out, TOKEN);
        client.send(&out).await;
        let msgs = client.until_ready().await;
        (client, msgs)
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn query(&mut self, sql: &str) {
        let mut out = BytesMut::new();
        frontend::encode::query(&mut out, sql);
        self.send(&out).await;
    }

    /// Next message, or `None` at EOF; bounded by 10 s.
    pub async fn try_recv(&mut self) -> Option<Msg> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(frame) = Frame::parse(&self.buf, usize::MAX).unwrap() {
                    let len = frame.len();
                    let raw = self.buf.split_to(len).to_vec();
                    return Some(Msg { tag: raw[0], raw });
                }
                let n = self.stream.read_buf(&mut self.buf).await.ok()?;
                if n == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("a message within 10 s")
    }

    pub async fn recv(&mut self) -> Msg {
        self.try_recv().await.expect("a message, not EOF")
    }

    /// Everything up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        loop {
            let msg = self.recv().await;
            let done = msg.tag == b'Z';
            msgs.push(msg);
            if done {
                return msgs;
            }
        }
    }

    /// Reads whatever the server says until it closes the connection.
    pub async fn until_eof(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        while let Some(msg) = self.try_recv().await {
            msgs.push(msg);
        }
        msgs
    }
}

/// Extended-protocol message builders for raw tests.
pub fn parse_msg(out: &mut BytesMut, name: &str, sql: &str) {
    frame(out, b'P', |o| {
        cstr(o, name);
        cstr(o, sql);
        o.put_i16(0);
    });
}

pub fn bind_msg(out: &mut BytesMut, portal: &str, statement: &str) {
    frame(out, b'B', |o| {
        cstr(o, portal);
        cstr(o, statement);
        o.put_i16(0);
        o.put_i16(0);
        o.put_i16(0);
    });
}

pub fn execute_msg(out: &mut BytesMut, portal: &str, max_rows: i32) {
    frame(out, b'E', |o| {
        cstr(o, portal);
        o.put_i32(max_rows);
    });
}

pub fn sync_msg(out: &mut BytesMut) {
    frame(out, b'S', |_| {});
}

fn cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

fn frame(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_i32(0);
    body(out);
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Waits (bounded) until the cluster shows a statement matching `pattern` as
/// active, so a test acts while the statement really runs.
pub async fn wait_until_active(cluster: &PgCluster, pattern: &str) {
    let (client, _conn) = connect(&cluster.conninfo("postgres")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = client
            .query(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()",
                &[&pattern],
            )
            .await
            .unwrap();
        let n: i64 = rows[0].get(0);
        if n > 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "statement {pattern:?} never became active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
