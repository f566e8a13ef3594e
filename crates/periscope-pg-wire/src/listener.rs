//! The PostgreSQL listener: accepts connections, runs one task per session
//! under a session limit, exposes counters, and shuts down gracefully.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::auth::Authenticator;
use crate::cancel::CancelRegistry;
use crate::client::{self, Negotiated};
use crate::codec::Limits;
use crate::error::{PgError, sqlstate};
use crate::relay::SessionHandle;

/// Default listener port of the gateway's PostgreSQL endpoint.
pub const DEFAULT_PORT: u16 = 15432;

/// TLS towards clients.
#[derive(Debug, Clone)]
pub enum ClientTls {
    /// No TLS: SSLRequest is answered `N`. Only useful with
    /// [`ProxyConfig::allow_plaintext_password`] (loopback, tests, or a
    /// TLS-terminating sidecar).
    Disabled,
    /// TLS offered; plaintext clients are subject to
    /// [`ProxyConfig::allow_plaintext_password`].
    Optional(Arc<ServerConfig>),
    /// TLS offered and required: a plaintext session gets FATAL 28000 asking
    /// for `sslmode=require`. The production setting.
    Required(Arc<ServerConfig>),
}

impl ClientTls {
    pub(crate) fn server_config(&self) -> Option<&Arc<ServerConfig>> {
        match self {
            ClientTls::Disabled => None,
            ClientTls::Optional(c) | ClientTls::Required(c) => Some(c),
        }
    }
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// TLS towards clients.
    pub client_tls: ClientTls,
    /// Whether a client on an unencrypted connection may send its token.
    /// Off by default: the token is a bearer credential.
    pub allow_plaintext_password: bool,
    /// Message size limits.
    pub limits: Limits,
    /// Receive buffer per direction of a session; memory per session is
    /// about twice this (plus one message larger than it, if any).
    pub relay_buffer_size: usize,
    /// Most sessions at once; further clients get FATAL 53300.
    pub max_sessions: usize,
    /// Time allowed from accept to the start of the relay (TLS, startup,
    /// password, authenticator, upstream).
    pub handshake_timeout: Duration,
    /// Time allowed for the TCP connect to the upstream.
    pub upstream_connect_timeout: Duration,
}

impl ProxyConfig {
    /// Defaults around a TLS choice: 64 MiB messages, 64 KiB buffers, 1000
    /// sessions, 30 s handshakes, 10 s upstream connects, no plaintext
    /// passwords.
    pub fn new(client_tls: ClientTls) -> Self {
        Self {
            client_tls,
            allow_plaintext_password: false,
            limits: Limits::DEFAULT,
            relay_buffer_size: 64 * 1024,
            max_sessions: 1000,
            handshake_timeout: Duration::from_secs(30),
            upstream_connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Listener counters, for metrics.
#[derive(Debug, Default)]
pub struct ProxyMetrics {
    pub(crate) active_sessions: AtomicUsize,
    pub(crate) sessions_total: AtomicU64,
    pub(crate) refused_over_limit: AtomicU64,
    pub(crate) handshake_failures: AtomicU64,
    pub(crate) auth_rejections: AtomicU64,
    pub(crate) upstream_failures: AtomicU64,
    pub(crate) cancels_forwarded: AtomicU64,
    pub(crate) buffer_high_water: Arc<AtomicUsize>,
}

impl ProxyMetrics {
    /// Sessions relaying right now.
    pub fn active_sessions(&self) -> usize {
        self.active_sessions.load(Ordering::Relaxed)
    }

    /// Sessions that reached the relay since start.
    pub fn sessions_total(&self) -> u64 {
        self.sessions_total.load(Ordering::Relaxed)
    }

    /// Connections refused because the session limit was reached.
    pub fn refused_over_limit(&self) -> u64 {
        self.refused_over_limit.load(Ordering::Relaxed)
    }

    /// Connections that ended before a session started (bad packets, TLS
    /// failures, timeouts, refusals).
    pub fn handshake_failures(&self) -> u64 {
        self.handshake_failures.load(Ordering::Relaxed)
    }

    /// Sessions the authenticator refused.
    pub fn auth_rejections(&self) -> u64 {
        self.auth_rejections.load(Ordering::Relaxed)
    }

    /// Sessions whose upstream could not be opened.
    pub fn upstream_failures(&self) -> u64 {
        self.upstream_failures.load(Ordering::Relaxed)
    }

    /// Cancel requests whose key matched a live session, forwarded upstream.
    pub fn cancels_forwarded(&self) -> u64 {
        self.cancels_forwarded.load(Ordering::Relaxed)
    }

    /// The most bytes any one session held in relay buffers at once.
    pub fn buffer_high_water(&self) -> usize {
        self.buffer_high_water.load(Ordering::Relaxed)
    }
}

/// State shared by the listener and its connection tasks.
pub(crate) struct Shared<A> {
    pub(crate) config: ProxyConfig,
    pub(crate) auth: A,
    pub(crate) cancels: Arc<CancelRegistry>,
    pub(crate) metrics: Arc<ProxyMetrics>,
    sessions: Mutex<HashMap<u64, SessionHandle>>,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
}

impl<A> Shared<A> {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, SessionHandle>> {
        // Single inserts/removes cannot leave the map inconsistent.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register_session(&self) -> SessionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let handle = SessionHandle::new(id, Arc::clone(&self.metrics.buffer_high_water));
        self.sessions().insert(id, handle.clone());
        self.metrics.active_sessions.fetch_add(1, Ordering::Relaxed);
        if self.shutting_down.load(Ordering::SeqCst) {
            handle.terminate(SHUTDOWN_MESSAGE);
        }
        handle
    }

    pub(crate) fn unregister_session(&self, handle: &SessionHandle) {
        if self.sessions().remove(&handle.id()).is_some() {
            self.metrics.active_sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

const SHUTDOWN_MESSAGE: &str = "the Periscope gateway is shutting down";

/// A bound PostgreSQL listener.
pub struct PgListener<A> {
    listener: TcpListener,
    shared: Arc<Shared<A>>,
}

impl<A> std::fmt::Debug for PgListener<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgListener")
            .field("addr", &self.listener.local_addr().ok())
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> PgListener<A> {
    /// Binds the listening socket. Serving starts with [`PgListener::serve`].
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: ProxyConfig,
        authenticator: A,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Self::from_listener(listener, config, authenticator)
    }

    /// Serves on a socket bound elsewhere (the gateway binds every listener
    /// before it starts anything, so an address in use fails the start).
    pub fn from_listener(
        listener: TcpListener,
        config: ProxyConfig,
        authenticator: A,
    ) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        if matches!(
            config.client_tls,
            ClientTls::Disabled | ClientTls::Optional(_)
        ) && config.allow_plaintext_password
            && !local.ip().is_loopback()
        {
            tracing::warn!(
                addr = %local,
                "tokens may cross the network unencrypted: plaintext passwords are allowed on a non-loopback address"
            );
        }
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                config,
                auth: authenticator,
                cancels: CancelRegistry::new(),
                metrics: Arc::new(ProxyMetrics::default()),
                sessions: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                shutting_down: AtomicBool::new(false),
            }),
        })
    }

    /// The bound address (useful after binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Live counters.
    pub fn metrics(&self) -> Arc<ProxyMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// A handle to query live sessions while serving (the listener itself
    /// moves into [`PgListener::serve`]).
    pub fn sessions(&self) -> SessionList {
        SessionList {
            shared: Arc::clone(&self.shared) as Arc<dyn SessionSource>,
        }
    }

    /// Accepts connections until `shutdown` completes, then ends every live
    /// session with a FATAL 57P01 ("the gateway is shutting down") and waits
    /// for them (at most a few seconds) before returning.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let limit = self.shared.config.max_sessions;
        let sessions = Arc::new(Semaphore::new(limit));
        // Refusing also costs a task (TLS, reading the startup packet, and
        // serving cancels, which must work when the gateway is full); bound it.
        let refusals = Arc::new(Semaphore::new(limit.clamp(16, 1024)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors and the like: back off
                            // briefly instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let shared = Arc::clone(&self.shared);
                    if let Ok(permit) = Arc::clone(&sessions).try_acquire_owned() {
                        tasks.spawn(async move {
                            client::serve_connection(shared, tcp, peer).await;
                            drop(permit);
                        });
                    } else if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                        self.shared.metrics.refused_over_limit.fetch_add(1, Ordering::Relaxed);
                        tasks.spawn(async move {
                            refuse_over_limit(&shared, tcp, limit).await;
                            drop(permit);
                        });
                    } else {
                        self.shared.metrics.refused_over_limit.fetch_add(1, Ordering::Relaxed);
                        drop(tcp);
                    }
                }
            }
        }

        tracing::info!("PostgreSQL listener shutting down");
        self.shared.shutting_down.store(true, Ordering::SeqCst);
        let live: Vec<SessionHandle> = self.shared.sessions().values().cloned().collect();
        for handle in live {
            handle.terminate(SHUTDOWN_MESSAGE);
        }
        drop(self.listener);
        let drained = tokio::time::timeout(Duration::from_secs(3), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Handshakes still waiting on a slow peer.
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        Ok(())
    }
}

async fn refuse_over_limit<A: Authenticator>(shared: &Shared<A>, tcp: TcpStream, limit: usize) {
    let work = async {
        if let Ok(Negotiated::Startup(mut wire, _)) = client::negotiate(shared, tcp).await {
            let err = PgError::fatal(
                sqlstate::TOO_MANY_CONNECTIONS,
                format!(
                    "the Periscope gateway has reached its limit of {limit} sessions; try again later"
                ),
            );
            let mut out = bytes::BytesMut::new();
            crate::backend::encode::error_response(&mut out, &err);
            let _ = wire.send(&mut out).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), work).await;
}

trait SessionSource: Send + Sync {
    fn snapshot(&self) -> Vec<SessionHandle>;
}

impl<A: Send + Sync> SessionSource for Shared<A> {
    fn snapshot(&self) -> Vec<SessionHandle> {
        let mut handles: Vec<SessionHandle> = self.sessions().values().cloned().collect();
        handles.sort_by_key(SessionHandle::id);
        handles
    }
}

/// The live sessions of a listener, queryable while it serves (e.g. to end
/// every session of a revoked grant).
#[derive(Clone)]
pub struct SessionList {
    shared: Arc<dyn SessionSource>,
}

impl std::fmt::Debug for SessionList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionList").finish_non_exhaustive()
    }
}

impl SessionList {
    /// Handles of the sessions relaying now, oldest first.
    pub fn snapshot(&self) -> Vec<SessionHandle> {
        self.shared.snapshot()
    }
}
