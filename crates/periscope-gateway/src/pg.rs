//! The PostgreSQL front end: [`PgProxy`] plugs `periscope-pg` into the
//! gateway.
//!
//! - **Authentication** ([`Authenticator`]): the password is an API token or
//!   a `periscope connect` session secret ([`Gateway::authenticate_password`],
//!   failures audited as `auth.login_failed`, answered 28P01); the decision
//!   comes from [`Gateway::authorize`] (refusals audited as
//!   `session.refused`, answered 3D000 for an unknown or uncovered
//!   connection and 42501 for an identity with no role). The upstream
//!   password is read from `password_env`/`password_file` at connect time,
//!   never logged.
//! - **Preparation** ([`Authenticator::prepare`]): the connection's catalog
//!   (cached per connection, reloaded after its TTL or a DDL), the session
//!   registered (`/v1/sessions`, `periscope_sessions_active`), and
//!   `session.start` audited durably before the client is told it is in.
//! - **The session** is a [`ShieldedSession`] whose audit sink appends this
//!   session's events in order through the group-commit writer.
//! - **Grant ends**: a session that relies on grants watches the grant bus;
//!   when one of its grants expires or is revoked it is terminated (FATAL
//!   57P01 with the grant, the reason and the command to request again)
//!   within the expiry job's period (250 ms). A session is bound to the
//!   grants it started with: a grant approved later needs a new session.
//! - **TLS** towards clients uses the gateway's certificate; a connection
//!   with `client_tls = "required"` (the default) refuses plaintext before
//!   the password is asked for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use periscope_audit::{EventDraft, actions};
use periscope_pg::audit::{AuditAck, AuditFailure, AuditSink};
use periscope_pg::catalog::{CatalogCache, DEFAULT_CATALOG_TTL};
use periscope_pg::session::{SessionSetup, ShieldedSession};
use periscope_pg::{
    AuthRejection, AuthRequest, Authenticated as PgAuthenticated, Authenticator, ClientTls,
    PgError, PgListener, ProxyConfig, Secret, SessionHandle, SessionTarget, UpstreamSession,
    UpstreamTls, sqlstate,
};
use periscope_policy::{
    Allowance, ClientTls as ConnectionTls, Config, DenyReason, Shield, UpstreamTls as ConfigTls,
};
use periscope_sql::AnalysisCache;
use periscope_store::{EnqueuedUnit, StoreError};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::time::Instant;

use crate::bus::{EndReason, GrantEnded, GrantEvent};
use crate::config::read_secret;
use crate::gateway::Gateway;
use crate::identity::AuthFailure;
use crate::server::{ProtocolListener, Shutdown};
use crate::sessions::{NewSession, SessionGuard};

/// Statements whose analyses each connection keeps.
const ANALYSIS_CACHE_SIZE: usize = 2048;

/// The PostgreSQL listener of the gateway (`server.pg_listen`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PgProxy;

impl ProtocolListener for PgProxy {
    fn name(&self) -> &'static str {
        "pg"
    }

    fn listen_addr(&self, config: &Config) -> SocketAddr {
        config.server.pg_listen
    }

    fn serve(
        self: Box<Self>,
        listener: TcpListener,
        gateway: Gateway,
        mut shutdown: Shutdown,
    ) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut config = ProxyConfig::new(ClientTls::Optional(gateway.tls_config()));
            // Per connection: `client_tls = "optional"` lets plaintext in
            // (asked through `allows_plaintext`, before the password).
            config.allow_plaintext_password = gateway
                .config()
                .config
                .connections
                .iter()
                .any(|c| c.client_tls == ConnectionTls::Optional);
            let auth = GatewayAuth {
                gateway: gateway.clone(),
                catalogs: CatalogCache::new(DEFAULT_CATALOG_TTL),
                analyses: Mutex::new(HashMap::new()),
            };
            let listener = match PgListener::from_listener(listener, config, auth) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "PostgreSQL listener failed");
                    return;
                }
            };
            if let Err(e) = listener.serve(async move { shutdown.wait().await }).await {
                tracing::error!(error = %e, "PostgreSQL listener failed");
            }
        })
    }
}

/// The gateway's [`Authenticator`].
struct GatewayAuth {
    gateway: Gateway,
    catalogs: CatalogCache,
    analyses: Mutex<HashMap<String, Arc<AnalysisCache>>>,
}

fn auth_rejection(e: AuthFailure) -> AuthRejection {
    match e {
        AuthFailure::Unavailable(_) => AuthRejection {
            code: "57P03",
            message: "the gateway cannot check credentials right now; try again shortly".into(),
        },
        AuthFailure::WrongScope { message, .. } => AuthRejection::bad_password(message),
        AuthFailure::Expired { .. }
        | AuthFailure::Revoked { .. }
        | AuthFailure::Disabled { .. } => AuthRejection::bad_password(e.to_string()),
        _ => AuthRejection::bad_password(
            "password authentication failed: give a Periscope API token or a session secret \
             from `periscope connect CONNECTION` as the password",
        ),
    }
}

fn deny_rejection(reason: &DenyReason) -> AuthRejection {
    match reason {
        DenyReason::NoRole { .. } => AuthRejection::not_authorised(reason.user_message()),
        DenyReason::UnknownIdentity { .. } => AuthRejection::bad_password(reason.user_message()),
        _ => AuthRejection::unknown_connection(reason.user_message()),
    }
}

fn unavailable(what: &str) -> AuthRejection {
    AuthRejection {
        code: "57P03",
        message: format!("the gateway cannot {what} right now; try again shortly"),
    }
}

impl GatewayAuth {
    fn analyses_for(&self, connection: &str) -> Arc<AnalysisCache> {
        let mut map = self.analyses.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            map.entry(connection.to_string())
                .or_insert_with(|| Arc::new(AnalysisCache::new(ANALYSIS_CACHE_SIZE))),
        )
    }
}

impl Authenticator for GatewayAuth {
    type Hooks = ShieldedSession<GatewaySink>;

    async fn authenticate(
        &self,
        request: &AuthRequest,
    ) -> Result<PgAuthenticated<Self::Hooks>, AuthRejection> {
        // Subscribed before the decision reads the grants, so a grant that
        // ends from now on cannot be missed.
        let bus = self.gateway.subscribe();
        let who = self
            .gateway
            .authenticate_password(
                &request.user,
                &request.database,
                request.password.expose(),
                Some(request.client_addr),
            )
            .await
            .map_err(auth_rejection)?;
        let identity = who.policy_identity();
        let decision = self
            .gateway
            .authorize(&identity, &request.database, "pg")
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot decide a PostgreSQL session");
                unavailable("decide")
            })?
            .map_err(|reason| deny_rejection(&reason))?;
        let Some(allowance) = decision.allowance().cloned() else {
            return Err(unavailable("decide"));
        };
        let config = self.gateway.config();
        let Some(conn) = config.config.connection(&request.database) else {
            return Err(AuthRejection::unknown_connection(format!(
                "connection `{}` does not exist",
                request.database
            )));
        };
        if conn.client_tls == ConnectionTls::Required && !request.tls {
            return Err(AuthRejection {
                code: sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                message: "this connection requires TLS: connect with sslmode=require".into(),
            });
        }
        let password = match &conn.password {
            Some(reference) => match read_secret(reference) {
                Ok(v) => Secret::new(v.expose()),
                Err(detail) => {
                    tracing::error!(connection = %conn.name, source = %reference, %detail, "cannot read the upstream password");
                    return Err(AuthRejection {
                        code: sqlstate::SERVER_REJECTED_CONNECTION,
                        message: format!(
                            "the upstream credentials of connection \"{}\" are not available; ask an administrator",
                            conn.name
                        ),
                    });
                }
            },
            None => Secret::new(""),
        };
        let tls = match conn.upstream_tls {
            ConfigTls::Disable => UpstreamTls::Disable,
            ConfigTls::Prefer => UpstreamTls::Prefer,
            ConfigTls::Require => UpstreamTls::Require,
            ConfigTls::VerifyFull => match &conn.upstream_ca_file {
                Some(ca) => UpstreamTls::VerifyFull {
                    ca_file: ca.clone(),
                },
                None => {
                    tracing::error!(connection = %conn.name, "upstream_tls = verify-full needs upstream_ca_file");
                    return Err(AuthRejection {
                        code: sqlstate::UNABLE_TO_CONNECT,
                        message: format!(
                            "could not connect to the upstream of connection \"{}\"; ask an administrator",
                            conn.name
                        ),
                    });
                }
            },
        };
        let mut parameters = Vec::new();
        if allowance.shields().blocks_write() {
            // The backstop behind the guardrails: a write hidden where the
            // analysis cannot see (inside a function) still fails upstream.
            parameters.push(("default_transaction_read_only".into(), "on".into()));
        }
        let target = SessionTarget {
            host: conn.host.clone(),
            port: conn.port,
            database: conn.database.clone(),
            user: conn.user.clone(),
            password,
            tls,
            parameters,
        };
        let grants: Vec<String> = allowance
            .shields()
            .grant_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        let sink = GatewaySink::new(SinkContext {
            gateway: self.gateway.clone(),
            identity: who.identity.name.clone(),
            connection: conn.name.clone(),
            client_addr: request.client_addr,
            application_name: request.application_name.clone(),
            client_tls: request.tls,
            credential: if who.session_secret {
                "session_secret"
            } else {
                "api_token"
            },
            token_id: who.token_id.clone(),
            roles: allowance
                .role_names()
                .iter()
                .map(|r| r.to_string())
                .collect(),
            grants,
            allowance: allowance.clone(),
            bus: Mutex::new(Some(bus)),
        });
        let setup = SessionSetup {
            identity: who.identity.name.clone(),
            connection: conn.name.clone(),
            allowance,
            token_key: Some(self.gateway.mask_token_key().clone()),
            analyses: self.analyses_for(&conn.name),
        };
        Ok(PgAuthenticated {
            target,
            hooks: ShieldedSession::new(setup, sink),
        })
    }

    async fn prepare(
        &self,
        hooks: &mut Self::Hooks,
        upstream: &mut UpstreamSession<'_>,
    ) -> Result<(), PgError> {
        let ctx = Arc::clone(&hooks.sink().ctx);
        let catalog = self
            .catalogs
            .get_or_load(&ctx.connection, upstream)
            .await
            .map_err(|e| {
                tracing::error!(connection = %ctx.connection, error = %e, "cannot read the upstream catalog");
                PgError::fatal(
                    sqlstate::SERVER_REJECTED_CONNECTION,
                    format!(
                        "the gateway could not read the catalog of connection \"{}\", which masking needs; ask an administrator",
                        ctx.connection
                    ),
                )
            })?;
        let guard = self.gateway.sessions().register(NewSession {
            identity: ctx.identity.clone(),
            connection: ctx.connection.clone(),
            grants: ctx.grants.clone(),
            client_addr: ctx.client_addr,
            application_name: ctx.application_name.clone(),
            started_at: self.gateway.now(),
        });
        hooks.attach(catalog, guard.id(), upstream.upstream_user());
        let draft = self
            .gateway
            .draft(&ctx.identity, actions::SESSION_START, &ctx.connection)
            .with_details(json!({
                "session": guard.id(),
                "via": "pg",
                "client_addr": ctx.client_addr.to_string(),
                "application_name": ctx.application_name,
                "client_tls": ctx.client_tls,
                "credential": ctx.credential,
                "token_id": ctx.token_id,
                "roles": ctx.roles,
                "grants": ctx.grants,
                "read_only": ctx.allowance.shields().blocks_write(),
            }));
        let draft = ctx
            .grants
            .iter()
            .fold(draft, |d, g| d.with_grant(g.clone()));
        // Durable before the client is told the session started.
        hooks.sink().submit(draft).await.map_err(|e| {
            PgError::fatal(
                sqlstate::INTERNAL_ERROR,
                format!("{e}; the session was not opened"),
            )
        })?;
        hooks.sink().keep(guard);
        Ok(())
    }

    fn allows_plaintext(&self, database: &str) -> bool {
        self.gateway
            .config()
            .config
            .connection(database)
            .is_some_and(|c| c.client_tls == ConnectionTls::Optional)
    }
}

/// What a session's sink knows about it.
struct SinkContext {
    gateway: Gateway,
    identity: String,
    connection: String,
    client_addr: SocketAddr,
    application_name: Option<String>,
    client_tls: bool,
    credential: &'static str,
    token_id: String,
    roles: Vec<String>,
    grants: Vec<String>,
    allowance: Allowance,
    bus: Mutex<Option<broadcast::Receiver<GrantEvent>>>,
}

/// Longest a statement's outcome event waits for the session's next event
/// to share its commit. It bounds how stale the audit log can be for an
/// idle session, and what a crash of the gateway can lose: outcomes not yet
/// written, never an event a client's results waited for.
const OUTCOME_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

/// Held outcomes beyond which they are written without waiting (a session
/// streaming many quick statements, each with its own outcome).
const MAX_HELD: usize = 64;

/// One session's audit sink: events are handed to the group-commit writer
/// in submission order (committed with other sessions' events), and the
/// session's registry entry and grant watcher live as long as it does.
///
/// A statement's event is handed to the writer from the session's own task,
/// and the writer's answer wakes that task directly: no other task stands
/// between a statement and its commit. Outcomes are held back (see
/// [`AuditSink::submit_later`]) so that they share the next statement's
/// commit; a timer task writes those the next statement does not take.
pub struct GatewaySink {
    ctx: Arc<SinkContext>,
    held: Arc<HeldOutcomes>,
    guard: Mutex<Option<SessionGuard>>,
    /// Dropping it stops the grant watcher.
    _stop: oneshot::Sender<()>,
    stop_rx: Mutex<Option<oneshot::Receiver<()>>>,
}

/// A session's outcome events not yet handed to the writer, shared by the
/// session and its timer task.
struct HeldOutcomes {
    gateway: Gateway,
    state: Mutex<Held>,
    /// Arms the timer task (the held list went from empty to not empty) or
    /// tells it the session ended.
    wake: Notify,
}

#[derive(Default)]
struct Held {
    drafts: Vec<EventDraft>,
    /// When the oldest of `drafts` was held.
    since: Option<Instant>,
    /// The timer task is counting down (it need not be woken).
    armed: bool,
    /// The session ended: the timer task stops.
    closed: bool,
}

impl Held {
    /// The held drafts, leaving none (and no deadline).
    fn take(&mut self) -> Vec<EventDraft> {
        self.since = None;
        std::mem::take(&mut self.drafts)
    }
}

impl std::fmt::Debug for GatewaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySink")
            .field("identity", &self.ctx.identity)
            .field("connection", &self.ctx.connection)
            .finish_non_exhaustive()
    }
}

impl GatewaySink {
    fn new(ctx: SinkContext) -> GatewaySink {
        let ctx = Arc::new(ctx);
        let held = Arc::new(HeldOutcomes {
            gateway: ctx.gateway.clone(),
            state: Mutex::new(Held::default()),
            wake: Notify::new(),
        });
        tokio::spawn(write_held_outcomes(Arc::clone(&held)));
        let (stop, stop_rx) = oneshot::channel();
        GatewaySink {
            ctx,
            held,
            guard: Mutex::new(None),
            _stop: stop,
            stop_rx: Mutex::new(Some(stop_rx)),
        }
    }

    fn keep(&self, guard: SessionGuard) {
        *self.guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    }
}

impl HeldOutcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `drafts` to the writer as one unit (one commit). Called with the
    /// state locked, so that the session's events keep their order.
    fn hand_over(&self, drafts: Vec<EventDraft>) -> Result<EnqueuedUnit, StoreError> {
        self.gateway.audit_writer().enqueue_unit_now(drafts)
    }

    /// Writes what is held, with nobody waiting for it: a failure is logged
    /// here (the writer logs a failed commit itself).
    fn write_held(&self, held: &mut Held) {
        let drafts = held.take();
        if drafts.is_empty() {
            return;
        }
        let events = drafts.len();
        if let Err(e) = self.hand_over(drafts) {
            tracing::error!(error = %e, events, "a session's audit events were not recorded");
        }
    }
}

/// The timer of one session's held outcomes: once armed, it writes them when
/// the oldest has waited [`OUTCOME_DELAY`], unless the session's next event
/// took them first; it disarms when nothing is held. A busy session thus
/// wakes it about once per delay, not once per statement.
async fn write_held_outcomes(held: Arc<HeldOutcomes>) {
    loop {
        held.wake.notified().await;
        loop {
            let deadline = {
                let mut state = held.lock();
                if state.closed {
                    return;
                }
                match state.since {
                    None => {
                        state.armed = false;
                        break;
                    }
                    Some(since) if since.elapsed() >= OUTCOME_DELAY => {
                        held.write_held(&mut state);
                        state.armed = false;
                        break;
                    }
                    Some(since) => since + OUTCOME_DELAY,
                }
            };
            tokio::time::sleep_until(deadline).await;
        }
    }
}

impl Drop for GatewaySink {
    fn drop(&mut self) {
        // The session is gone: what it held is written now.
        let mut state = self.held.lock();
        self.held.write_held(&mut state);
        state.closed = true;
        drop(state);
        self.held.wake.notify_one();
    }
}

impl AuditSink for GatewaySink {
    fn draft(&self, action: &str) -> EventDraft {
        self.ctx
            .gateway
            .draft(&self.ctx.identity, action, &self.ctx.connection)
    }

    fn submit(&self, draft: EventDraft) -> AuditAck {
        let started = Instant::now();
        let enqueued = {
            let mut state = self.held.lock();
            // The held outcomes and this event: one unit, one commit.
            let mut drafts = state.take();
            drafts.push(draft);
            self.held.hand_over(drafts)
        };
        Box::pin(async move {
            let outcome = enqueued
                .map_err(|e| recorded_failure(&e))?
                .committed()
                .await
                .map_err(|e| recorded_failure(&e))?;
            crate::metrics::audit_waited(started.elapsed());
            let mut last = Err(AuditFailure(StoreError::WriterClosed.to_string()));
            for result in outcome {
                last = result.map_err(|e| recorded_failure(&e));
            }
            last
        })
    }

    fn submit_later(&self, draft: EventDraft) {
        let mut state = self.held.lock();
        state.drafts.push(draft);
        if state.drafts.len() >= MAX_HELD {
            self.held.write_held(&mut state);
            return;
        }
        if state.since.is_none() {
            state.since = Some(Instant::now());
        }
        if !state.armed {
            state.armed = true;
            drop(state);
            self.held.wake.notify_one();
        }
    }

    fn session_started(&self, handle: &SessionHandle) {
        if self.ctx.grants.is_empty() {
            // Bound to no grant: nothing can end it early.
            return;
        }
        let bus = self
            .ctx
            .bus
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let stop = self
            .stop_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let (Some(bus), Some(stop)) = (bus, stop) else {
            return;
        };
        tokio::spawn(watch_grants(
            Arc::clone(&self.ctx),
            handle.clone(),
            bus,
            stop,
        ));
    }
}

/// A session event that was not recorded, logged.
fn recorded_failure(e: &StoreError) -> AuditFailure {
    tracing::error!(error = %e, "a session's audit event was not recorded");
    AuditFailure(e.to_string())
}

/// The FATAL a session gets when a grant it relies on ends.
fn grant_end_error(ctx: &SinkContext, ended: &GrantEnded) -> PgError {
    let why = match &ended.reason {
        EndReason::Expired => "expired".to_string(),
        EndReason::Revoked { by } => format!("was revoked by {by}"),
    };
    let lifts: Vec<&Shield> = ctx
        .allowance
        .shields()
        .lifted()
        .iter()
        .filter(|(_, l)| l.grant_id == ended.grant_id)
        .map(|(s, _)| s)
        .collect();
    let names: Vec<String> = lifts.iter().map(|s| s.to_string()).collect();
    let command = format!(
        "periscope request {}{} --for 30m --reason \"...\"",
        ctx.connection,
        names
            .iter()
            .map(|s| format!(" --lift {s}"))
            .collect::<String>()
    );
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        format!(
            "grant {} {why}: this session relied on it ({}) and was closed",
            ended.grant_id,
            names.join(", ")
        ),
    )
    .with_detail("a session keeps the grants it started with; the shields they lifted are back")
    .with_hint(format!(
        "to request it again: {command}, then open a new session"
    ))
}

async fn watch_grants(
    ctx: Arc<SinkContext>,
    handle: SessionHandle,
    mut bus: broadcast::Receiver<GrantEvent>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            event = bus.recv() => match event {
                Ok(GrantEvent::Ended(ended)) if ctx.grants.contains(&ended.grant_id) => {
                    tracing::info!(session = handle.id(), grant = %ended.grant_id, "a grant the session relied on ended: terminating it");
                    handle.terminate_with(grant_end_error(&ctx, &ended));
                    return;
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Events were missed: ask the store which grants still hold.
                    let identity = periscope_policy::Identity::new(
                        ctx.identity.clone(),
                        ctx.allowance.role_names(),
                    );
                    if let Ok(decision) = ctx.gateway.decide(&identity, &ctx.connection).await {
                        let live: Vec<String> = decision
                            .allowance()
                            .map(|a| a.shields().grant_ids().into_iter().map(str::to_string).collect())
                            .unwrap_or_default();
                        if let Some(gone) = ctx.grants.iter().find(|g| !live.contains(g)) {
                            // The event itself was missed: the store says
                            // whether it was revoked (and by whom) or expired.
                            let reason = match ctx.gateway.store().get_grant(gone).await {
                                Ok(grant) => EndReason::of(&grant, ctx.gateway.now()),
                                Err(_) => None,
                            };
                            let ended = GrantEnded {
                                grant_id: gone.clone(),
                                identity: ctx.identity.clone(),
                                connection: ctx.connection.clone(),
                                reason: reason.unwrap_or(EndReason::Expired),
                            };
                            handle.terminate_with(grant_end_error(&ctx, &ended));
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
