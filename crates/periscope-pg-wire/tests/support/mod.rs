//! Shared harness of the periscope-pg-wire integration tests: a real PostgreSQL
//! cluster (periscope-testkit), the proxy listening on a free loopback port,
//! a test `Authenticator` (the gateway's seam: a fixed token mapped to the
//! cluster), and a raw protocol client for what drivers do not expose.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use periscope_pg_wire::backend::{BackendMessage, DataRowWriter, NoticeFields};
use periscope_pg_wire::frontend::FrontendMessage;
use periscope_pg_wire::{
    AuthRejection, AuthRequest, Authenticated, Authenticator, BackendAction, ClientTls, Frame,
    FrontendAction, PgError, PgListener, ProtocolState, ProxyConfig, ProxyMetrics, SessionHandle,
    SessionHooks, SessionInfo, SessionList, SessionTarget, UpstreamTls, sqlstate,
};
pub use periscope_testkit::pgraw::{Message as Msg, RawClient, build};
use periscope_testkit::{PgCluster, Psql, PsqlOutput, SUPERUSER, SUPERUSER_PASSWORD};
use secrecy::ExposeSecret;
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
        if request.password.expose_secret() != TOKEN {
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

/// Runs the real `psql` (asynchronously: the gateway runs on the same
/// runtime).
pub async fn psql(cluster: &PgCluster, conninfo: &str, sql: &str) -> PsqlOutput {
    Psql::new(cluster.binaries(), conninfo).run(sql).await
}

/// A raw client logged in as alice on the test connection with the test
/// token, plus `params`.
pub async fn raw_login(addr: SocketAddr, params: &[(&str, &str)]) -> (RawClient, Vec<Msg>) {
    let mut all = vec![("user", USER), ("database", CONNECTION)];
    all.extend_from_slice(params);
    RawClient::login(addr, &all, TOKEN).await
}

/// A raw message read with this crate's codec.
pub trait Decoded {
    /// The message, typed.
    fn decode(&self) -> BackendMessage<'_>;
    /// The fields of an ErrorResponse.
    fn error(&self) -> Option<NoticeFields<'_>>;
}

impl Decoded for Msg {
    fn decode(&self) -> BackendMessage<'_> {
        let frame = Frame::parse(&self.raw, usize::MAX).unwrap().unwrap();
        BackendMessage::decode(frame).unwrap()
    }

    fn error(&self) -> Option<NoticeFields<'_>> {
        match self.decode() {
            BackendMessage::ErrorResponse(f) => Some(f),
            _ => None,
        }
    }
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
