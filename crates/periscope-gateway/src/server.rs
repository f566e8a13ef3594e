//! Starting and stopping the gateway, step by step: configuration, bound
//! sockets, data directory, store, shared state, bootstrap, the start's
//! audit events, then the API, the protocol listeners and the background
//! jobs; and a bounded, audited shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use periscope_audit::actions;
use periscope_policy::{ADMIN_ROLE, Config, StoreUrl};
use periscope_store::{
    AuditWriter, AuditWriterConfig, NewIdentity, Store, StoreError, StoreOptions, TokenScope,
};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::clock::{Clock, SystemClock, TestClock, store_clock};
use crate::config::{ConfigSource, LoadedConfig, read_secret};
use crate::datadir;
use crate::error::StartError;
use crate::gateway::{Endpoints, Gateway, Inner, SYSTEM_ACTOR, ServerOverrides};
use crate::identity::{LocalTokens, TokenHasher};
use crate::listener::ProtocolListener;
use crate::sessions::SessionRegistry;
use crate::shutdown::Shutdown;
use crate::webhook::{RetryPolicy, WebhookSender};
use crate::{api, expiry, metrics};
use periscope_shield::grants::GrantBus;

/// Name of the bootstrap administrator created at first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

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
        Shutdown::new(self.stop.subscribe())
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
        // Sessions that ended are sealing their recordings: their seals
        // and end events belong in the log before the final checkpoint.
        if tokio::time::timeout_at(deadline, self.gateway.sealing().wait())
            .await
            .is_err()
        {
            tracing::warn!("recordings were still being sealed at shutdown");
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
                Ok(with_password(url, password.expose_secret()))
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
    install_process_defaults();
    let mut loaded = LoadedConfig::load(options.config)?;
    options.overrides.apply(&mut loaded.config);
    // Bind first: an address in use fails the start before anything is
    // created, so a first start never loses the bootstrap token it minted.
    let bound = bind_listeners(&loaded.config, options.listeners).await?;
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| loaded.config.server.data_dir.clone());
    let prepared = prepare_data_dir(&loaded.config, data_dir).await?;
    let (store, sqlite_lock) = open_store(&loaded.config, &prepared.root).await?;
    let (clock, test_clock) = choose_clock(options.test_clock);
    let gateway = assemble(
        loaded,
        options.overrides,
        store,
        (clock, test_clock),
        prepared,
        options.webhook_retry,
    )?;
    let bootstrap = bootstrap(&gateway).await?;
    // Tags stored by `periscope discover --apply` mask from the first session.
    gateway.refresh_discovered_tags().await?;
    record_start(&gateway).await?;

    let (stop, stop_rx) = watch::channel(false);
    let shutdown = Shutdown::new(stop_rx);
    gateway.set_endpoints(bound.endpoints.clone());
    let tasks = spawn_tasks(&gateway, bound, &shutdown, options.reload_on_sighup)?;
    Ok(Running {
        gateway,
        bootstrap,
        stop,
        api_task: tasks.api,
        protocol_tasks: tasks.protocols,
        background: tasks.background,
        grace: options.shutdown_grace,
        _sqlite_lock: sqlite_lock,
    })
}

/// Process-wide defaults the gateway relies on: its metrics recorder, and
/// ring as the one crypto provider (reqwest for webhooks uses the process
/// default). Already installed is fine.
fn install_process_defaults() {
    metrics::install();
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The sockets of the API and of each protocol front end, bound, with the
/// addresses they got (port 0 resolved).
struct Bound {
    api: TcpListener,
    protocols: Vec<(Box<dyn ProtocolListener>, TcpListener)>,
    endpoints: Endpoints,
}

fn bind_error(what: &str, addr: SocketAddr) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |source| StartError::Bind {
        what: what.into(),
        addr,
        source,
    }
}

async fn bind_listeners(
    config: &Config,
    listeners: Vec<Box<dyn ProtocolListener>>,
) -> Result<Bound, StartError> {
    let api_addr = config.server.api_listen;
    let api = TcpListener::bind(api_addr)
        .await
        .map_err(bind_error("api", api_addr))?;
    let mut endpoints = Endpoints {
        api: Some(api.local_addr().map_err(bind_error("api", api_addr))?),
        protocols: Vec::new(),
    };
    let mut protocols = Vec::new();
    for listener in listeners {
        let addr = listener.listen_addr(config);
        let tcp = TcpListener::bind(addr)
            .await
            .map_err(bind_error(listener.name(), addr))?;
        let local = tcp
            .local_addr()
            .map_err(bind_error(listener.name(), addr))?;
        endpoints
            .protocols
            .push((listener.name().to_string(), local));
        protocols.push((listener, tcp));
    }
    Ok(Bound {
        api,
        protocols,
        endpoints,
    })
}

/// The data directory: CA and certificate, audit signing key, token and
/// masking keys, created on first start (see [`datadir`]).
async fn prepare_data_dir(
    config: &Config,
    data_dir: PathBuf,
) -> Result<datadir::Prepared, StartError> {
    let hosts = certificate_hosts(config);
    let prepared = tokio::task::spawn_blocking(move || datadir::prepare(&data_dir, &hosts))
        .await
        .map_err(|e| {
            StartError::DataDir(datadir::DataDirError::Generate {
                what: "the data directory",
                reason: e.to_string(),
            })
        })??;
    for path in &prepared.created {
        tracing::info!(file = %path.display(), "created");
    }
    Ok(prepared)
}

/// The store, and on SQLite the claim on its file (one gateway per file).
async fn open_store(
    config: &Config,
    data_dir: &Path,
) -> Result<(Store, Option<datadir::SqliteLock>), StartError> {
    let sqlite_file = match &config.store.url {
        None => Some(data_dir.join(periscope_store::SQLITE_FILE_NAME)),
        Some(StoreUrl::Sqlite { path }) => Some(path.clone()),
        Some(StoreUrl::Postgres { .. }) => None,
    };
    let sqlite_lock = sqlite_file
        .as_deref()
        .map(datadir::claim_sqlite)
        .transpose()?;
    let url = store_url(config, data_dir)?;
    let store_options = StoreOptions {
        durability: config.audit.durability,
        ..StoreOptions::default()
    };
    let store = Store::open(&url, &store_options).await?;
    tracing::info!(backend = ?store.backend(), durability = ?store_options.durability, "store open");
    Ok((store, sqlite_lock))
}

/// The system clock, or a test clock the API can move (`--test-clock`).
fn choose_clock(test: bool) -> (Arc<dyn Clock>, Option<Arc<TestClock>>) {
    let test_clock = test.then(|| Arc::new(TestClock::new()));
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(t) => t.clone(),
        None => Arc::new(SystemClock),
    };
    if test_clock.is_some() {
        tracing::warn!(
            "TEST CLOCK ENABLED: time can be moved by POST /v1/test/clock; never run this in production"
        );
    }
    (clock, test_clock)
}

/// The shared state: configuration, store and audit writer, keys, clock,
/// identity provider, grant bus, session registry, webhook sender.
fn assemble(
    loaded: LoadedConfig,
    overrides: ServerOverrides,
    store: Store,
    (clock, test_clock): (Arc<dyn Clock>, Option<Arc<TestClock>>),
    prepared: datadir::Prepared,
    webhook_retry: RetryPolicy,
) -> Result<Gateway, StartError> {
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
    Ok(Gateway {
        inner: Arc::new(Inner {
            config: ArcSwap::from_pointee(loaded),
            overrides,
            reload_lock: tokio::sync::Mutex::new(()),
            discovered: std::sync::Mutex::new(Vec::new()),
            background: std::sync::Mutex::new(crate::discovery_state::BackgroundState::default()),
            background_gate: tokio::sync::Semaphore::new(1),
            identity: Arc::new(LocalTokens::new(store.clone(), hasher.clone())),
            store,
            writer,
            clock,
            test_clock,
            hasher,
            sso: crate::sso::Sso::new().map_err(|e| {
                StartError::DataDir(datadir::DataDirError::Generate {
                    what: "the SSO HTTP client",
                    reason: e.to_string(),
                })
            })?,
            audit_verifier: prepared.audit_verifier,
            checkpoint_signer,
            mask_token: prepared.mask_token,
            tls: prepared.tls,
            data_dir: prepared.root,
            ca_file: prepared.ca_file,
            bus: GrantBus::new(),
            sessions: SessionRegistry::new(),
            sealing: Default::default(),
            webhook: WebhookSender::spawn(webhook_retry),
            endpoints: RwLock::new(Endpoints::default()),
            ended: Default::default(),
            audit_in_transactions: Default::default(),
            last_verify: Default::default(),
            agent_peers: Default::default(),
        }),
    })
}

/// Audits the start: `config.load` with what was loaded, and a loud
/// `clock.test_mode` when the test clock is on.
async fn record_start(gateway: &Gateway) -> Result<(), StoreError> {
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
            "audit_key_id": gateway.audit_verifier_key().key_id().to_string(),
            "test_clock": gateway.test_clock().is_some(),
        }));
    gateway.audit(load).await?;
    if gateway.test_clock().is_some() {
        let draft = gateway
            .draft(SYSTEM_ACTOR, actions::CLOCK_TEST_MODE, "")
            .with_details(json!({ "warning": "time can be moved through the API" }));
        gateway.audit(draft).await?;
    }
    Ok(())
}

/// What runs until shutdown.
struct Tasks {
    api: JoinHandle<()>,
    protocols: Vec<(String, JoinHandle<()>)>,
    background: Vec<JoinHandle<()>>,
}

/// Serves the API and every protocol listener, and starts the background
/// jobs: the expiry job, and the `SIGHUP` reload when asked for.
fn spawn_tasks(
    gateway: &Gateway,
    bound: Bound,
    shutdown: &Shutdown,
    reload_on_sighup: bool,
) -> Result<Tasks, StartError> {
    // The MCP server's routes and its OAuth authorization server go in
    // beside the console's: the API knows nothing of them.
    let router = api::router(
        gateway.clone(),
        crate::console::routes()
            .merge(crate::mcp::router(gateway.clone(), shutdown.clone()))
            .merge(crate::oauth::router()),
    );
    let api = tokio::spawn(crate::https::serve_api(
        bound.api,
        gateway.tls_config(),
        router,
        shutdown.clone(),
    ));
    let protocols = bound
        .protocols
        .into_iter()
        .map(|(listener, tcp)| {
            let name = listener.name().to_string();
            let task = tokio::spawn(listener.serve(tcp, gateway.clone(), shutdown.clone()));
            (name, task)
        })
        .collect();
    let mut background = vec![
        tokio::spawn(expiry::run(gateway.clone(), shutdown.clone())),
        tokio::spawn(crate::recordings::sweep::run(
            gateway.clone(),
            shutdown.clone(),
        )),
    ];
    if reload_on_sighup {
        background.push(spawn_sighup_reload(gateway.clone(), shutdown.clone())?);
    }
    Ok(Tasks {
        api,
        protocols,
        background,
    })
}

/// Reloads the configuration on every `SIGHUP` until shutdown.
fn spawn_sighup_reload(gateway: Gateway, mut stop: Shutdown) -> Result<JoinHandle<()>, StartError> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(StartError::Signals)?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                got = hup.recv() => {
                    if got.is_none() { return; }
                    tracing::info!("SIGHUP: reloading the configuration");
                    let _ = gateway.reload(SYSTEM_ACTOR).await;
                }
                () = stop.wait() => return,
            }
        }
    }))
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
