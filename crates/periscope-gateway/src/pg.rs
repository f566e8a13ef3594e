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
//! - **The session** is a [`ShieldedSession`] whose audit sink
//!   ([`GatewaySink`], shared by every protocol) appends this session's
//!   events in order through the group-commit writer.
//! - **Grant ends**: a session that relies on grants watches the grant bus;
//!   when one of its grants expires or is revoked it is terminated (FATAL
//!   57P01 with the grant, the reason and the command to request again)
//!   within the expiry job's period (250 ms). A session is bound to the
//!   grants it started with: a grant approved later needs a new session.
//! - **Recording**: with `[recordings] enabled` and `sql` (the defaults),
//!   each statement is recorded with a sample of its masked result
//!   (`recordings::sql`, off the statement's path) and the file sealed into
//!   the audit chain before `session.end`.
//! - **TLS** towards clients uses the gateway's certificate; a connection
//!   with `client_tls = "required"` (the default) refuses plaintext before
//!   the password is asked for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use periscope_audit::actions;
use periscope_pg::{PgCatalog, SessionSetup, ShieldedSession};
use periscope_pg_wire::{
    AuthRejection, AuthRequest, Authenticated as PgAuthenticated, Authenticator, ClientTls,
    PgError, PgListener, ProxyConfig, UpstreamSession, sqlstate,
};
use periscope_policy::{ClientTls as ConnectionTls, Config, DenyReason};
use periscope_shield::catalog::{CatalogCache, DEFAULT_CATALOG_TTL};
use periscope_shield::record::{AuditSink, SampleLimits};
use periscope_sql::AnalysisCache;
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::net::TcpListener;

use crate::audit_sink::{GatewaySink, SessionContext};
use crate::gateway::Gateway;
use crate::identity::AuthFailure;
use crate::listener::ProtocolListener;
use crate::sessions::NewSession;
use crate::shutdown::Shutdown;
use crate::upstream::{TargetError, upstream_target};

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
    catalogs: CatalogCache<PgCatalog>,
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
                request.password.expose_secret(),
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
        if conn.kind != periscope_policy::ConnectionKind::Postgres {
            return Err(AuthRejection::unknown_connection(format!(
                "connection \"{}\" is not a PostgreSQL connection: run its commands with `periscope exec {} -- ARGS`",
                conn.name, conn.name
            )));
        }
        if conn.client_tls == ConnectionTls::Required && !request.tls {
            return Err(AuthRejection {
                code: sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
                message: "this connection requires TLS: connect with sslmode=require".into(),
            });
        }
        let mut parameters = Vec::new();
        if allowance.shields().blocks_write() {
            // The backstop behind the guardrails: a write hidden where the
            // analysis cannot see (inside a function) still fails upstream.
            parameters.push(("default_transaction_read_only".into(), "on".into()));
        }
        let target = upstream_target(conn, parameters).map_err(|e| match e {
            TargetError::Password => AuthRejection {
                code: sqlstate::SERVER_REJECTED_CONNECTION,
                message: format!(
                    "the upstream credentials of connection \"{}\" are not available; ask an administrator",
                    conn.name
                ),
            },
            TargetError::CaFile => AuthRejection {
                code: sqlstate::UNABLE_TO_CONNECT,
                message: format!(
                    "could not connect to the upstream of connection \"{}\"; ask an administrator",
                    conn.name
                ),
            },
        })?;
        let grants: Vec<String> = allowance
            .shields()
            .grant_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        let agent = self.gateway.agent_at(request.client_addr);
        let sink = GatewaySink::new(SessionContext {
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
            agent,
        });
        let recordings = &config.config.recordings;
        let setup = SessionSetup {
            identity: who.identity.name.clone(),
            connection: conn.name.clone(),
            allowance,
            token_key: Some(self.gateway.mask_token_key().clone()),
            analyses: self.analyses_for(&conn.name),
            sample: (recordings.enabled && recordings.sql).then_some(SampleLimits {
                rows: recordings.sql_sample_rows,
                bytes: recordings.sql_sample_bytes,
            }),
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
        let ctx = Arc::clone(hooks.sink().context());
        let catalog = self
            .catalogs
            .get_or_load(&ctx.connection, || PgCatalog::load(upstream))
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
        // The first session served on a connection starts its background
        // profile (unless it opts out); this session is not delayed.
        crate::discover::on_first_serve(&self.gateway, &ctx.connection);
        let draft = self
            .gateway
            .draft(&ctx.identity, actions::SESSION_START, &ctx.connection)
            .with_details(json!({
                "session": guard.id(),
                "via": ctx.agent.as_ref().map_or("pg", |a| a.via),
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
        // Recorded from here on: every statement with a sample of its
        // masked result, sealed before `session.end`.
        if let Some((recorder, started_at)) =
            crate::recordings::start_sql(&self.gateway, &ctx, guard.id())
        {
            hooks.sink().record_sql(recorder, guard.id(), started_at);
        }
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
