//! Starting and stopping the gateway: listeners, background tasks, and the
//! seam protocol proxies plug into.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use periscope_audit::actions;
use periscope_policy::{ADMIN_ROLE, Config, StoreUrl};
use periscope_store::{
    AuditWriter, AuditWriterConfig, NewIdentity, Store, StoreError, StoreOptions, TokenScope,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock, TestClock, store_clock};
use crate::config::{ConfigSource, LoadedConfig, read_secret};
use crate::datadir;
use crate::error::StartError;
use crate::gateway::{Endpoints, Gateway, Inner, SYSTEM_ACTOR, ServerOverrides};
use crate::identity::{LocalTokens, TokenHasher};
use crate::sessions::SessionRegistry;
use crate::webhook::{RetryPolicy, WebhookSender};
use crate::{api, expiry, metrics};
use periscope_shield::grants::GrantBus;

/// Name of the bootstrap administrator created at first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Fires once when the gateway begins to shut down; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Resolves when shutdown has begun (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which also means "stop".
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }
}

/// A protocol front end (the PostgreSQL proxy, later MySQL...) that the
/// gateway starts beside its API.
///
/// The gateway binds the socket (so port 0 works and the ready line shows the
/// real port) and hands it over with the shared [`Gateway`] handle. `serve`
/// runs until `shutdown` fires, then stops accepting and returns once its
/// sessions ended or were cut (the gateway waits a bounded time for it).
pub trait ProtocolListener: Send + 'static {
    /// Short name, used in logs and the ready line (`pg`).
    fn name(&self) -> &'static str;

    /// Where to listen, from the configuration in force at start
    /// (e.g. `server.pg_listen`).
    fn listen_addr(&self, config: &Config) -> SocketAddr;

    /// Serves connections on `listener` until `shutdown`.
    fn serve(
        self: Box<Self>,
        listener: TcpListener,
        gateway: Gateway,
        shutdown: Shutdown,
    ) -> BoxFuture<'static, ()>;
}

/// How to start a gateway.
pub struct GatewayOptions {
    /// Where the configuration comes from.
    pub config: ConfigSource,
    /// Overrides `server.data_dir`.
    pub data_dir: Option<PathBuf>,
    /// Override listener addresses.
    pub overrides: ServerOverrides,
    /// Use a [`TestClock`] and serve `POST /v1/test/clock`. Never in production.
    pub test_clock: bool,
    /// Protocol front ends to start beside the API.
    pub listeners: Vec<Box<dyn ProtocolListener>>,
    /// How long shutdown waits for in-flight requests and sessions.
    pub shutdown_grace: Duration,
    /// Webhook retries.
    pub webhook_retry: RetryPolicy,
    /// Reload the configuration on `SIGHUP`.
    pub reload_on_sighup: bool,
}

impl std::fmt::Debug for GatewayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayOptions")
            .field("config", &self.config)
            .field("data_dir", &self.data_dir)
            .field("overrides", &self.overrides)
            .field("test_clock", &self.test_clock)
            .field(
                "listeners",
                &self.listeners.iter().map(|l| l.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl GatewayOptions {
    /// Options with defaults: the given config, no protocol listener.
    pub fn new(config: ConfigSource) -> GatewayOptions {
        GatewayOptions {
            config,
            data_dir: None,
            overrides: ServerOverrides::default(),
            test_clock: false,
            listeners: Vec::new(),
            shutdown_grace: Duration::from_secs(10),
            webhook_retry: RetryPolicy::default(),
            reload_on_sighup: false,
        }
    }
}

/// The bootstrap administrator's token: printed once at first start, never
/// again (only its hash is stored).
pub struct Bootstrap {
    /// The identity (`admin`).
    pub identity: String,
    /// Its API token.
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A started gateway.
#[derive(Debug)]
pub struct Running {
    gateway: Gateway,
    bootstrap: Option<Bootstrap>,
    stop: watch::Sender<bool>,
    api_task: JoinHandle<()>,
    protocol_tasks: Vec<(String, JoinHandle<()>)>,
    background: Vec<JoinHandle<()>>,
    grace: Duration,
    _sqlite_lock: Option<datadir::SqliteLock>,
}

impl Running {
    /// The shared state, for in-process users (tests, embedding).
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// Where the listeners are.
    pub fn endpoints(&self) -> Endpoints {
        self.gateway.endpoints()
    }

    /// The API address (port 0 resolved).
    pub fn api_addr(&self) -> SocketAddr {
        self.gateway
            .endpoints()
            .api
            .expect("the API listener is bound before start returns")
    }

    /// The bootstrap token, on the first start of a store only.
    pub fn take_bootstrap(&mut self) -> Option<Bootstrap> {
        self.bootstrap.take()
    }

    /// A future that resolves when shutdown begins (e.g. for a caller that
    /// waits on signals itself).
    pub fn shutdown_signal(&self) -> Shutdown {
        Shutdown(self.stop.subscribe())
    }

    /// Stops accepting, lets in-flight requests and sessions finish (bounded
    /// by the grace period), drains the audit writer and writes a final signed
    /// checkpoint.
    pub async fn shutdown(self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        let grace = self.grace;
        let deadline = tokio::time::Instant::now() + grace;
        if tokio::time::timeout_at(deadline, self.api_task)
            .await
            .is_err()
        {
            tracing::warn!(grace = %humantime::format_duration(grace), "in-flight API requests did not finish in time; they were cut");
        }
        for (name, task) in self.protocol_tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(
                    listener = name,
                    "protocol sessions did not end in time; they were cut"
                );
            }
        }
        for task in self.background {
            task.abort();
        }
        let checkpoint = self.gateway.audit_writer().shutdown().await;
        let stats = self.gateway.audit_writer().stats();
        tracing::info!(
            events = stats.events,
            commits = stats.batches,
            failed_commits = stats.failed_batches,
            "audit writer stopped"
        );
        let result = match checkpoint {
            Ok(Some(cp)) => {
                tracing::info!(seq = cp.seq, key_id = %cp.key_id, "final audit checkpoint written");
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.gateway.store().close().await;
        result
    }
}

/// The store URL to open, with the password read from its reference.
fn store_url(config: &Config, data_dir: &Path) -> Result<String, StartError> {
    match &config.store.url {
        None => Ok(periscope_store::sqlite_url(
            &data_dir.join(periscope_store::SQLITE_FILE_NAME),
        )?),
        Some(StoreUrl::Sqlite { path }) => Ok(periscope_store::sqlite_url(path)?),
        Some(StoreUrl::Postgres { url, password }) => match password {
            None => Ok(url.clone()),
            Some(secret) => {
                let password = read_secret(secret).map_err(|detail| {
                    StartError::Config(crate::config::ConfigLoadError::Secret {
                        what: "the store password",
                        source_ref: secret.to_string(),
                        detail,
                    })
                })?;
                Ok(with_password(url, password.expose()))
            }
        },
    }
}

/// Inserts a percent-encoded password into a `postgres://user@host/db` URL.
fn with_password(url: &str, password: &str) -> String {
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user, host)) => format!("{scheme}://{user}:{encoded}@{host}{tail}"),
        // No user in the URL: the driver's default user, with this password.
        None => format!("{scheme}://:{encoded}@{authority}{tail}"),
    }
}

/// Host names and addresses the server certificate must name.
fn certificate_hosts(config: &Config) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Some(host) = &config.server.public_host {
        hosts.push(host.clone());
    }
    for addr in [config.server.api_listen, config.server.pg_listen] {
        let ip = addr.ip();
        if !ip.is_unspecified() && !ip.is_loopback() {
            hosts.push(ip.to_string());
        }
    }
    hosts
}

/// Starts a gateway: configuration, data directory, store, bootstrap,
/// listeners and background tasks. Returns once every listener is bound.
pub async fn start(options: GatewayOptions) -> Result<Running, StartError> {
    metrics::install();
    // reqwest (webhooks) uses the process default; ring is this binary's one
    // crypto provider. Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut loaded = LoadedConfig::load(options.config)?;
    options.overrides.apply(&mut loaded.config);
    // Bind first: an address in use fails the start before anything is
    // created, so a first start never loses the bootstrap token it minted.
    let api_addr = loaded.config.server.api_listen;
    let api_listener = TcpListener::bind(api_addr)
        .await
        .map_err(|source| StartError::Bind {
            what: "api".into(),
            addr: api_addr,
            source,
        })?;
    let mut endpoints = Endpoints {
        api: Some(
            api_listener
                .local_addr()
                .map_err(|source| StartError::Bind {
                    what: "api".into(),
                    addr: api_addr,
                    source,
                })?,
        ),
        protocols: Vec::new(),
    };
    let mut bound = Vec::new();
    for listener in options.listeners {
        let addr = listener.listen_addr(&loaded.config);
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                what: listener.name().into(),
                addr,
                source,
            })?;
        let local = tcp.local_addr().map_err(|source| StartError::Bind {
            what: listener.name().into(),
            addr,
            source,
        })?;
        endpoints
            .protocols
            .push((listener.name().to_string(), local));
        bound.push((listener, tcp));
    }
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| loaded.config.server.data_dir.clone());
    let prepared = {
        let data_dir = data_dir.clone();
        let hosts = certificate_hosts(&loaded.config);
        tokio::task::spawn_blocking(move || datadir::prepare(&data_dir, &hosts))
            .await
            .map_err(|e| {
                StartError::DataDir(datadir::DataDirError::Generate {
                    what: "the data directory",
                    reason: e.to_string(),
                })
            })??
    };
    for path in &prepared.created {
        tracing::info!(file = %path.display(), "created");
    }
    let sqlite_file = match &loaded.config.store.url {
        None => Some(prepared.root.join(periscope_store::SQLITE_FILE_NAME)),
        Some(StoreUrl::Sqlite { path }) => Some(path.clone()),
        Some(StoreUrl::Postgres { .. }) => None,
    };
    let sqlite_lock = sqlite_file
        .as_deref()
        .map(datadir::claim_sqlite)
        .transpose()?;
    let url = store_url(&loaded.config, &prepared.root)?;
    let store_options = StoreOptions {
        durability: loaded.config.audit.durability,
        ..StoreOptions::default()
    };
    let store = Store::open(&url, &store_options).await?;
    tracing::info!(backend = ?store.backend(), durability = ?store_options.durability, "store open");

    let test_clock = options.test_clock.then(|| Arc::new(TestClock::new()));
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(t) => t.clone(),
        None => Arc::new(SystemClock),
    };
    if test_clock.is_some() {
        tracing::warn!(
            "TEST CLOCK ENABLED: time can be moved by POST /v1/test/clock; never run this in production"
        );
    }
    let key_id = prepared.audit_verifier.key_id();
    // A second handle on the same key, for the periodic time-based checkpoints.
    let checkpoint_signer = periscope_audit::AuditSigner::from_pem(&prepared.audit_signer.to_pem())
        .map_err(|e| {
            StartError::DataDir(datadir::DataDirError::Generate {
                what: "a copy of the audit signing key",
                reason: e.to_string(),
            })
        })?;
    let writer = AuditWriter::spawn(
        store.clone(),
        prepared.audit_signer,
        store_clock(clock.clone()),
        AuditWriterConfig {
            checkpoint_every: loaded.config.audit.checkpoint_every,
            ..AuditWriterConfig::default()
        },
    );
    let hasher = TokenHasher::new(prepared.token_hmac);
    let gateway = Gateway {
        inner: Arc::new(Inner {
            config: ArcSwap::from_pointee(loaded),
            overrides: options.overrides,
            reload_lock: tokio::sync::Mutex::new(()),
            identity: Arc::new(LocalTokens::new(store.clone(), hasher.clone())),
            store,
            writer,
            clock,
            test_clock,
            hasher,
            audit_verifier: prepared.audit_verifier,
            checkpoint_signer,
            mask_token: prepared.mask_token,
            tls: prepared.tls,
            data_dir: prepared.root,
            ca_file: prepared.ca_file,
            bus: GrantBus::new(),
            sessions: SessionRegistry::new(),
            webhook: WebhookSender::spawn(options.webhook_retry),
            endpoints: RwLock::new(Endpoints::default()),
            ended: Default::default(),
            audit_in_transactions: Default::default(),
        }),
    };

    let bootstrap = bootstrap(&gateway).await?;
    let config = gateway.config();
    let load = gateway
        .draft(
            SYSTEM_ACTOR,
            actions::CONFIG_LOAD,
            config.source.to_string(),
        )
        .with_details(json!({
            "connections": config.config.connections.len(),
            "roles": config.config.roles.len(),
            "store": format!("{:?}", gateway.store().backend()).to_lowercase(),
            "data_dir": gateway.data_dir().display().to_string(),
            "audit_key_id": key_id.to_string(),
            "test_clock": gateway.test_clock().is_some(),
        }));
    gateway.audit(load).await?;
    if gateway.test_clock().is_some() {
        let draft = gateway
            .draft(SYSTEM_ACTOR, crate::api::CLOCK_TEST_MODE, "")
            .with_details(json!({ "warning": "time can be moved through the API" }));
        gateway.audit(draft).await?;
    }

    let (stop, stop_rx) = watch::channel(false);
    let shutdown = Shutdown(stop_rx);

    gateway.set_endpoints(endpoints);

    let router = api::router(gateway.clone());
    let api_task = tokio::spawn(serve_api(
        api_listener,
        gateway.tls_config(),
        router,
        shutdown.clone(),
    ));
    let mut protocol_tasks = Vec::new();
    for (listener, tcp) in bound {
        let name = listener.name().to_string();
        let task = tokio::spawn(listener.serve(tcp, gateway.clone(), shutdown.clone()));
        protocol_tasks.push((name, task));
    }
    let mut background = vec![tokio::spawn(expiry::run(gateway.clone(), shutdown.clone()))];
    if options.reload_on_sighup {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(StartError::Signals)?;
        let gw = gateway.clone();
        let mut stop = shutdown.clone();
        background.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hup.recv() => {
                        if got.is_none() { return; }
                        tracing::info!("SIGHUP: reloading the configuration");
                        let _ = gw.reload(SYSTEM_ACTOR).await;
                    }
                    () = stop.wait() => return,
                }
            }
        }));
    }
    Ok(Running {
        gateway,
        bootstrap,
        stop,
        api_task,
        protocol_tasks,
        background,
        grace: options.shutdown_grace,
        _sqlite_lock: sqlite_lock,
    })
}

/// Creates the `admin` identity and its token, once per store (even when
/// replicas start together: the store arbitrates).
async fn bootstrap(gateway: &Gateway) -> Result<Option<Bootstrap>, StoreError> {
    if gateway.store().bootstrap_admin_name().await?.is_some() {
        return Ok(None);
    }
    let now = gateway.clock().audit_now();
    let minted = gateway.hasher().mint(
        BOOTSTRAP_ADMIN,
        TokenScope::Api,
        "bootstrap token, printed once at first start".to_string(),
        now.clone(),
        None,
    );
    let audit = vec![
        gateway
            .draft(SYSTEM_ACTOR, actions::AUDIT_INIT, "")
            .with_details(json!({
                "audit_key_id": gateway.audit_verifier_key().key_id().to_string(),
                "public_key": gateway.audit_verifier_key().to_hex(),
            })),
        gateway
            .draft(SYSTEM_ACTOR, actions::ADMIN_USER_ADD, BOOTSTRAP_ADMIN)
            .with_details(json!({ "roles": [ADMIN_ROLE], "bootstrap": true })),
        gateway
            .draft(SYSTEM_ACTOR, actions::TOKEN_CREATE, &minted.record.token_id)
            .with_details(
                json!({ "identity": BOOTSTRAP_ADMIN, "scope": "api", "bootstrap": true }),
            ),
    ];
    let created = gateway
        .store()
        .bootstrap_admin(
            NewIdentity {
                name: BOOTSTRAP_ADMIN.to_string(),
                roles: vec![ADMIN_ROLE.to_string()],
                created_at: now,
            },
            minted.record,
            audit,
        )
        .await?;
    Ok(created.then(|| Bootstrap {
        identity: BOOTSTRAP_ADMIN.to_string(),
        token: minted.token,
    }))
}

/// The client address of an API connection (TLS listeners have no
/// `SocketAddr` connect info of their own in axum).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

struct TlsIncoming {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor stopped (shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsIncoming>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsIncoming>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Accepts TCP, completes TLS handshakes concurrently (a slow client delays
/// only itself), and serves the router until `shutdown`.
async fn serve_api(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: Shutdown,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "API listener has no address");
            return;
        }
    };
    let (ready_tx, ready_rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
    let mut stop_accepting = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = stop_accepting.wait() => return,
            };
            let acceptor = acceptor.clone();
            let ready = ready_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = ready.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = TlsIncoming {
        ready: ready_rx,
        local,
    };
    let mut stop = shutdown;
    let served = axum::serve(
        incoming,
        router.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(async move { stop.wait().await })
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "API server failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_percent_encoded_into_the_url() {
        assert_eq!(
            with_password(
                "postgres://periscope@db:5432/p?sslmode=require",
                "p@ss:w/rd"
            ),
            "postgres://periscope:p%40ss%3Aw%2Frd@db:5432/p?sslmode=require"
        );
        assert_eq!(
            with_password("postgresql://db/p", "x"),
            "postgresql://:x@db/p"
        );
    }
}
