//! The [`Gateway`] handle: everything the API and the protocol proxies share.
//!
//! Cheap to clone (one `Arc`). Proxies get one through
//! [`crate::ProtocolListener::serve`] and use: [`Gateway::config`] (the policy
//! snapshot), [`Gateway::authenticate_password`], [`Gateway::authorize`]
//! (the decision with the identity's grants), [`Gateway::audit`],
//! [`Gateway::clock`], [`Gateway::subscribe`], [`Gateway::mask_token_key`],
//! [`Gateway::tls_config`] and [`Gateway::sessions`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use periscope_audit::actions::{self, Action};
use periscope_audit::{AuditVerifierKey, EventDraft};
use periscope_policy::{Decision, DenyReason, PolicyInput, Verdict, decide};
use periscope_redact::TokenKey;
use periscope_store::{AuditWriter, Identity, Store, StoreError, TokenScope};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::clock::{Clock, TestClock};
use crate::config::{ConfigLoadError, ConfigSource, LoadedConfig, ReloadSummary};
use crate::identity::{AuthFailure, IdentityProvider, TokenHasher, Verified};
use crate::metrics;
use crate::sessions::SessionRegistry;
use crate::webhook::WebhookSender;
use periscope_shield::grants::{GrantBus, GrantEvent};

/// The actor of events the gateway records on its own behalf.
pub const SYSTEM_ACTOR: &str = "periscope";

/// Listener addresses chosen at start that override `[server]` (so tests and
/// containers can use port 0 without editing the file). Applied to every
/// reload too, so they never read as a change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerOverrides {
    /// Overrides `server.api_listen`.
    pub api_listen: Option<SocketAddr>,
    /// Overrides `server.pg_listen`.
    pub pg_listen: Option<SocketAddr>,
}

impl ServerOverrides {
    pub(crate) fn apply(&self, config: &mut periscope_policy::Config) {
        if let Some(addr) = self.api_listen {
            config.server.api_listen = addr;
        }
        if let Some(addr) = self.pg_listen {
            config.server.pg_listen = addr;
        }
    }
}

/// Where the listeners really are (port 0 resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// The HTTPS API.
    pub api: Option<SocketAddr>,
    /// Protocol listeners by name (`pg`).
    pub protocols: Vec<(String, SocketAddr)>,
}

impl Endpoints {
    /// The address of the protocol listener called `name`.
    pub fn protocol(&self, name: &str) -> Option<SocketAddr> {
        self.protocols
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }
}

/// An identity whose credential was accepted for a proxy session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The identity as stored now.
    pub identity: Identity,
    /// The credential's public id.
    pub token_id: String,
    /// Whether a `periscope connect` session secret was used (else an API token).
    pub session_secret: bool,
}

impl Authenticated {
    /// The policy's view of the identity.
    pub fn policy_identity(&self) -> periscope_policy::Identity {
        periscope_policy::Identity::from(&self.identity)
    }
}

/// The API caller, once its bearer token checked out.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity as stored now.
    pub identity: Identity,
    /// The policy's view of it.
    pub policy_identity: periscope_policy::Identity,
    /// Token id used for this call.
    pub token_id: String,
    /// Expiry of that token.
    pub token_expires_at: Option<OffsetDateTime>,
}

impl Caller {
    /// The caller's name.
    pub fn name(&self) -> &str {
        &self.identity.name
    }
}

pub(crate) struct Inner {
    pub(crate) config: ArcSwap<LoadedConfig>,
    pub(crate) overrides: ServerOverrides,
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
    /// The discovered tags merged into the policy in force (the store's
    /// current versions), kept so a configuration reload merges them too.
    pub(crate) discovered: std::sync::Mutex<Vec<periscope_store::DiscoveredTagSet>>,
    /// Background discovery: connections profiled and their reports.
    pub(crate) background: std::sync::Mutex<crate::discovery_state::BackgroundState>,
    /// One background profile at a time.
    pub(crate) background_gate: tokio::sync::Semaphore,
    pub(crate) store: Store,
    pub(crate) writer: AuditWriter,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) test_clock: Option<Arc<TestClock>>,
    pub(crate) identity: Arc<dyn IdentityProvider>,
    pub(crate) hasher: TokenHasher,
    pub(crate) sso: crate::sso::Sso,
    pub(crate) audit_verifier: AuditVerifierKey,
    pub(crate) checkpoint_signer: periscope_audit::AuditSigner,
    pub(crate) mask_token: TokenKey,
    pub(crate) tls: Arc<rustls::ServerConfig>,
    pub(crate) data_dir: PathBuf,
    pub(crate) ca_file: PathBuf,
    pub(crate) bus: GrantBus,
    pub(crate) sessions: SessionRegistry,
    /// Recordings being sealed after their session ended.
    pub(crate) sealing: Arc<crate::shutdown::Sealing>,
    pub(crate) webhook: WebhookSender,
    pub(crate) endpoints: RwLock<Endpoints>,
    /// The grant ids already announced as ended on this replica (the expiry
    /// job announces each end once, whichever replica decided it).
    pub(crate) ended: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Audit events committed inside store transactions of their own (not
    /// through `writer`), for `periscope_audit_events_total`.
    pub(crate) audit_in_transactions: AtomicU64,
    /// The last chain verification run from the web console.
    pub(crate) last_verify: std::sync::Mutex<Option<LastVerify>>,
    /// Loopback peers of the gateway's own SQL client, by the agent they
    /// carry (see `agent`).
    pub(crate) agent_peers: crate::agent::AgentPeers,
}

/// The outcome of the last audit chain verification asked for in the web
/// console on this gateway process (shown on its audit page).
#[derive(Debug, Clone)]
pub struct LastVerify {
    /// When it ran.
    pub at: OffsetDateTime,
    /// Who asked.
    pub by: String,
    /// Whether the chain held.
    pub ok: bool,
    /// The verifier's summary (or the broken link).
    pub summary: String,
    /// The last event verified.
    pub last_seq: Option<u64>,
}

/// The shared gateway state; cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("data_dir", &self.inner.data_dir)
            .field("config", &self.inner.config.load().source)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The configuration and compiled policy in force. Take one snapshot per
    /// decision: a reload swaps in a new one atomically, never half of it.
    pub fn config(&self) -> Arc<LoadedConfig> {
        self.inner.config.load_full()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The clock every time-based rule reads.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Now, by [`Gateway::clock`].
    pub fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// The last chain verification asked for in the web console.
    pub fn last_verify(&self) -> Option<LastVerify> {
        self.inner
            .last_verify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records the outcome of a chain verification asked for in the console.
    pub fn set_last_verify(&self, outcome: LastVerify) {
        *self
            .inner
            .last_verify
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(outcome);
    }

    /// The test clock, when the gateway runs with `--test-clock`.
    pub fn test_clock(&self) -> Option<&Arc<TestClock>> {
        self.inner.test_clock.as_ref()
    }

    /// A new subscription to grant starts and ends.
    pub fn subscribe(&self) -> broadcast::Receiver<GrantEvent> {
        self.inner.bus.subscribe()
    }

    pub(crate) fn publish(&self, event: GrantEvent) {
        self.inner.bus.publish(event);
    }

    /// The agent behind a PostgreSQL session coming from `peer`, when the
    /// gateway's own SQL client opened it for one (see `agent`).
    pub fn agent_at(&self, peer: std::net::SocketAddr) -> Option<crate::agent::Agent> {
        self.inner.agent_peers.get(&peer)
    }

    /// Live proxy sessions.
    pub fn sessions(&self) -> &SessionRegistry {
        &self.inner.sessions
    }

    /// Recordings being sealed after their session ended (shutdown waits).
    pub fn sealing(&self) -> &Arc<crate::shutdown::Sealing> {
        &self.inner.sealing
    }

    /// The redaction engine's `token` operator key (`keys/mask-token.key`).
    pub fn mask_token_key(&self) -> &TokenKey {
        &self.inner.mask_token
    }

    /// The public key that verifies this gateway's audit checkpoints.
    pub fn audit_verifier_key(&self) -> &AuditVerifierKey {
        &self.inner.audit_verifier
    }

    /// TLS for protocol listeners (the server certificate from the data
    /// directory, no ALPN).
    pub fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.inner.tls.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// `tls/ca.pem`, the certificate clients must trust.
    pub fn ca_file(&self) -> &Path {
        &self.inner.ca_file
    }

    /// Where the listeners really are.
    pub fn endpoints(&self) -> Endpoints {
        self.inner
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_endpoints(&self, endpoints: Endpoints) {
        *self
            .inner
            .endpoints
            .write()
            .unwrap_or_else(|e| e.into_inner()) = endpoints;
    }

    pub(crate) fn webhook(&self) -> &WebhookSender {
        &self.inner.webhook
    }

    pub(crate) fn hasher(&self) -> &TokenHasher {
        &self.inner.hasher
    }

    pub(crate) fn sso(&self) -> &crate::sso::Sso {
        &self.inner.sso
    }

    /// Ends every live proxy session of `identity` on this replica at once
    /// (disabled, or roles lost at a sign-in), telling each client why.
    pub fn cut_sessions_of(&self, identity: &str, notice: periscope_shield::grants::CutNotice) {
        let cut = self.inner.sessions.cut_identity(identity, &notice);
        if cut > 0 {
            tracing::info!(identity, sessions = cut, reason = %notice.message, "live sessions ended");
        }
    }

    /// Ends the live proxy session `id` of this replica on administrator
    /// `by`'s decision: audited first (`session.ended_by_admin`, durable),
    /// then the session is cut with a message that says who ended it and
    /// why. The caller checks that `by` administers.
    pub async fn end_session(
        &self,
        by: &str,
        id: &str,
        reason: Option<&str>,
    ) -> Result<periscope_api::SessionSummary, crate::sessions::EndSessionError> {
        use crate::sessions::{CutSession, EndSessionError};
        let listed = self
            .inner
            .sessions
            .get(id)
            .ok_or_else(|| EndSessionError::Unknown(id.to_string()))?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let draft = self
            .draft(by, actions::SESSION_ENDED_BY_ADMIN, id)
            .with_details(json!({
                "session": id,
                "identity": listed.identity,
                "connection": listed.connection,
                "reason": reason,
            }));
        let draft = listed
            .grants
            .iter()
            .fold(draft, |d, g| d.with_grant(g.clone()));
        self.audit(draft).await?;
        let notice = periscope_shield::grants::CutNotice {
            message: match reason {
                Some(reason) => format!("session {id} was ended by administrator {by}: {reason}"),
                None => format!("session {id} was ended by administrator {by}"),
            },
            detail: Some("an administrator ended this session from the gateway".into()),
            hint: Some(format!("ask {by} why before opening a new session")),
        };
        match self.inner.sessions.cut_session(id, &notice) {
            CutSession::Cut(summary) => {
                tracing::info!(session = %id, identity = %summary.identity, by, "live session ended by an administrator");
                Ok(summary)
            }
            CutSession::Starting(_) => Err(EndSessionError::Starting(id.to_string())),
            CutSession::Unknown => Err(EndSessionError::Unknown(id.to_string())),
        }
    }

    /// The group-commit audit writer, for high-rate events (one per statement).
    pub fn audit_writer(&self) -> &AuditWriter {
        &self.inner.writer
    }

    /// Appends one audit event and resolves once it is durable, with its seq.
    /// An error means it was not recorded: refuse the action it describes.
    pub async fn audit(&self, draft: EventDraft) -> Result<u64, StoreError> {
        let started = Instant::now();
        let seq = self.inner.writer.append(draft).await?;
        metrics::audit_waited(started.elapsed());
        Ok(seq)
    }

    /// A draft stamped with the gateway's clock.
    pub fn draft(
        &self,
        actor: impl Into<String>,
        action: Action,
        target: impl Into<String>,
    ) -> EventDraft {
        EventDraft::new(self.inner.clock.audit_now(), actor, action, target)
    }

    /// Counts events that were committed inside a store transaction.
    pub(crate) fn count_audit(&self, events: usize, started: Instant) {
        if events > 0 {
            self.inner
                .audit_in_transactions
                .fetch_add(events as u64, Ordering::Relaxed);
            metrics::audit_waited(started.elapsed());
        }
    }

    /// Audit events committed inside other store transactions (not through
    /// the writer), for the metrics.
    pub(crate) fn audit_events_in_transactions(&self) -> u64 {
        self.inner.audit_in_transactions.load(Ordering::Relaxed)
    }

    /// Authenticates an API call: an API token (not a session secret), with
    /// the use recorded at most once a minute per token. Every failure is
    /// audited (`auth.login_failed`, never with the token).
    pub async fn authenticate_api(
        &self,
        bearer: Option<&str>,
        client: Option<SocketAddr>,
        request_id: &str,
    ) -> Result<Caller, AuthFailure> {
        let result = match bearer {
            None => Err(AuthFailure::Missing),
            Some(token) => self.inner.identity.verify(token, self.now()).await,
        };
        let verified = match result {
            Ok(v) => v,
            Err(e) => return Err(self.login_failed(e, "api", client, Some(request_id), None)),
        };
        if !matches!(verified.scope, TokenScope::Api) {
            let e = AuthFailure::WrongScope {
                owner: verified.identity.name.clone(),
                message: "a session secret from `periscope connect` only opens PostgreSQL \
                          sessions; use your API token for the API"
                    .to_string(),
            };
            return Err(self.login_failed(e, "api", client, Some(request_id), Some(&verified)));
        }
        if verified.needs_touch {
            self.record_token_use(&verified, client).await;
        }
        Ok(Caller {
            policy_identity: periscope_policy::Identity::from(&verified.identity),
            identity: verified.identity,
            token_id: verified.token_id,
            token_expires_at: verified.expires_at,
        })
    }

    /// Authenticates a protocol session: `user` must own `password`, an API
    /// token or a session secret minted for `connection`. Success is audited as
    /// `auth.login`, failure as `auth.login_failed`. Whether the identity may
    /// use the connection is [`Gateway::authorize`]'s question.
    pub async fn authenticate_password(
        &self,
        user: &str,
        connection: &str,
        password: &str,
        client: Option<SocketAddr>,
    ) -> Result<Authenticated, AuthFailure> {
        let verified = match self.inner.identity.verify(password, self.now()).await {
            Ok(v) => v,
            Err(e) => {
                let e = match e {
                    AuthFailure::Invalid { code, owner: None } => AuthFailure::Invalid {
                        code,
                        owner: Some(user.to_string()),
                    },
                    other => other,
                };
                return Err(self.login_failed(e, "pg", client, None, None));
            }
        };
        let refusal = if verified.identity.name != user {
            Some(AuthFailure::WrongUser {
                claimed: user.to_string(),
                owner: verified.identity.name.clone(),
            })
        } else {
            match &verified.scope {
                TokenScope::Connect { connection: c } if c != connection => {
                    Some(AuthFailure::WrongScope {
                        owner: verified.identity.name.clone(),
                        message: format!(
                            "this session secret was issued for `{c}`, not `{connection}`: \
                             run `periscope connect {connection}`"
                        ),
                    })
                }
                _ => None,
            }
        };
        if let Some(e) = refusal {
            return Err(self.login_failed(e, "pg", client, None, Some(&verified)));
        }
        let session_secret = matches!(verified.scope, TokenScope::Connect { .. });
        let agent = client.and_then(|c| self.agent_at(c));
        let draft = self
            .draft(&verified.identity.name, actions::AUTH_LOGIN, connection)
            .with_details(json!({
                "via": agent.as_ref().map_or("pg", |a| a.via),
                "agent": agent.as_ref().map(|a| a.client.clone()),
                "token_id": verified.token_id,
                "credential": if session_secret { "session_secret" } else { "api_token" },
                "client_addr": client.map(|a| a.to_string()),
            }));
        self.audit(draft).await.map_err(AuthFailure::Unavailable)?;
        if verified.needs_touch {
            let now = self.inner.clock.audit_now();
            if let Err(e) = self.inner.store.touch_token(&verified.token_id, &now).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        }
        Ok(Authenticated {
            identity: verified.identity,
            token_id: verified.token_id,
            session_secret,
        })
    }

    fn login_failed(
        &self,
        failure: AuthFailure,
        via: &'static str,
        client: Option<SocketAddr>,
        request_id: Option<&str>,
        verified: Option<&Verified>,
    ) -> AuthFailure {
        if matches!(failure, AuthFailure::Unavailable(_)) {
            return failure;
        }
        let actor = failure.owner().unwrap_or("anonymous").to_string();
        let draft = self
            .draft(actor, actions::AUTH_LOGIN_FAILED, "")
            .with_details(json!({
                "via": via,
                "reason": failure.code(),
                "token_id": verified.map(|v| v.token_id.clone()),
                "client_addr": client.map(|a| a.to_string()),
                "request_id": request_id,
            }));
        // Recorded in the background: a refused caller waits for nothing, and
        // a flood of bad tokens cannot hold API workers on audit commits.
        let gateway = self.clone();
        tokio::spawn(async move {
            if let Err(e) = gateway.audit(draft).await {
                tracing::error!(error = %e, "could not audit a failed login");
            }
        });
        tracing::info!(via, reason = failure.code(), "authentication refused");
        failure
    }

    async fn record_token_use(&self, verified: &Verified, client: Option<SocketAddr>) {
        let now = self.inner.clock.audit_now();
        match self.inner.store.touch_token(&verified.token_id, &now).await {
            Ok(true) => {
                let draft = self
                    .draft(
                        &verified.identity.name,
                        actions::TOKEN_USE,
                        &verified.token_id,
                    )
                    .with_details(json!({
                        "via": "api",
                        "client_addr": client.map(|a| a.to_string()),
                    }));
                if let Err(e) = self.audit(draft).await {
                    tracing::error!(error = %e, "could not audit a token use");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not record token use"),
        }
    }

    /// The decision for `identity` on `connection` now, with its active grants
    /// from the store, under the policy in force. Pure apart from that read.
    pub async fn decide(
        &self,
        identity: &periscope_policy::Identity,
        connection: &str,
    ) -> Result<Decision, StoreError> {
        let now = self.now();
        let grants = self
            .inner
            .store
            .active_grants(now, Some(&identity.name))
            .await?;
        let config = self.config();
        Ok(decide(&PolicyInput {
            policy: &config.policy,
            identity,
            connection,
            grants: &grants,
            now,
        }))
    }

    /// [`Gateway::decide`], auditing a refusal as `session.refused` (deny by
    /// default: unknown connection, no role, not covered). `Ok(Err(reason))`
    /// is a refusal that was recorded.
    pub async fn authorize(
        &self,
        identity: &periscope_policy::Identity,
        connection: &str,
        via: &str,
    ) -> Result<Result<Decision, DenyReason>, StoreError> {
        let decision = self.decide(identity, connection).await?;
        if let Verdict::Deny(reason) = &decision.verdict {
            let draft = self
                .draft(&identity.name, actions::SESSION_REFUSED, connection)
                .with_details(json!({
                    "via": via,
                    "reason": reason.code(),
                    "detail": reason.to_string(),
                }));
            self.audit(draft).await?;
            return Ok(Err(reason.clone()));
        }
        Ok(Ok(decision))
    }

    /// Mints a `periscope connect` session secret for `connection`, valid for
    /// [`SESSION_SECRET_TTL`], after checking (and auditing a refusal) that the
    /// caller may connect there. Returns the secret, shown once, and its expiry.
    pub async fn issue_session_secret(
        &self,
        caller: &Caller,
        connection: &str,
    ) -> Result<(zeroize::Zeroizing<String>, OffsetDateTime), ConnectError> {
        self.issue_session_secret_for(
            caller,
            connection,
            "api",
            format!("periscope connect {connection}"),
        )
        .await
    }

    /// [`Gateway::issue_session_secret`] for a front end of the gateway's
    /// own (`via`, e.g. the web console running a query through the
    /// PostgreSQL listener), with the token's `description`.
    pub async fn issue_session_secret_for(
        &self,
        caller: &Caller,
        connection: &str,
        via: &str,
        description: String,
    ) -> Result<(zeroize::Zeroizing<String>, OffsetDateTime), ConnectError> {
        if let Err(reason) = self
            .authorize(&caller.policy_identity, connection, via)
            .await?
        {
            return Err(ConnectError::Refused(reason.user_message()));
        }
        match self.config().config.connection(connection).map(|c| c.kind) {
            Some(periscope_policy::ConnectionKind::Exec) => {
                return Err(ConnectError::Refused(format!(
                    "connection `{connection}` is not a PostgreSQL connection: run its commands \
                     with `periscope exec {connection} -- ARGS`"
                )));
            }
            Some(periscope_policy::ConnectionKind::Logs) => {
                return Err(ConnectError::Refused(format!(
                    "connection `{connection}` is not a PostgreSQL connection: read its logs with \
                     `periscope logs {connection} [SOURCE]`"
                )));
            }
            Some(periscope_policy::ConnectionKind::Shell) => {
                return Err(ConnectError::Refused(format!(
                    "connection `{connection}` is not a PostgreSQL connection: open its shell \
                     with `periscope shell {connection}`"
                )));
            }
            Some(periscope_policy::ConnectionKind::Postgres) | None => {}
        }
        let expires_at = self.now() + SESSION_SECRET_TTL;
        let expires = periscope_audit::AuditTime::from_datetime(expires_at).map_err(|e| {
            ConnectError::Store(StoreError::Invalid(format!("session secret expiry: {e}")))
        })?;
        let minted = self.inner.hasher.mint(
            caller.name(),
            TokenScope::Connect {
                connection: connection.to_string(),
            },
            description,
            self.inner.clock.audit_now(),
            Some(expires),
        );
        let draft = self
            .draft(
                caller.name(),
                actions::TOKEN_CREATE,
                &minted.record.token_id,
            )
            .with_details(json!({
                "scope": "connect",
                "via": via,
                "connection": connection,
                "expires_in_secs": SESSION_SECRET_TTL.as_secs(),
            }));
        let started = Instant::now();
        self.inner
            .store
            .create_token(minted.record, vec![draft])
            .await?;
        self.count_audit(1, started);
        Ok((minted.token, expires_at))
    }

    /// Re-reads the configuration from its source and swaps it in whole, or
    /// keeps the one in force. Audited as `config.reload` either way.
    pub async fn reload(&self, actor: &str) -> Result<ReloadSummary, ConfigLoadError> {
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        let current = self.config();
        let loaded = LoadedConfig::load(current.source.clone()).map(|mut loaded| {
            // The policy does not read `[server]`, so it stays as compiled.
            self.inner.overrides.apply(&mut loaded.config);
            crate::config::merge_discovered(&mut loaded.policy, &self.discovered_sets());
            loaded
        });
        let (details, result) = match loaded {
            Ok(new) => {
                let summary = ReloadSummary::between(&current.config, &new.config);
                self.inner.config.store(Arc::new(new));
                tracing::info!(%actor, "{summary}");
                (
                    json!({
                        "outcome": "applied",
                        "summary": summary.to_string(),
                        "connections": summary.connections,
                        "roles": summary.roles,
                        "needs_restart": summary.needs_restart,
                    }),
                    Ok(summary),
                )
            }
            Err(e) => {
                tracing::error!(%actor, "configuration reload refused, the previous one stays in force:\n{e}");
                (
                    json!({ "outcome": "refused", "error": e.one_line() }),
                    Err(e),
                )
            }
        };
        let source = current.source.to_string();
        let draft = self
            .draft(actor, actions::CONFIG_RELOAD, source)
            .with_details(details);
        if let Err(e) = self.audit(draft).await {
            tracing::error!(error = %e, "could not audit the configuration reload");
        }
        result
    }

    /// The discovered tag sets merged into the policy in force.
    pub fn discovered_sets(&self) -> Vec<periscope_store::DiscoveredTagSet> {
        self.inner
            .discovered
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// Re-reads the discovered tags from the store and swaps in the policy
    /// recompiled with them: new sessions mask the tagged columns at once,
    /// without a restart. Called at start and after each apply.
    pub async fn refresh_discovered_tags(&self) -> Result<(), StoreError> {
        let sets = self.inner.store.current_discovered_tags().await?;
        let _one_at_a_time = self.inner.reload_lock.lock().await;
        if let Ok(mut cache) = self.inner.discovered.lock() {
            cache.clone_from(&sets);
        }
        let current = self.config();
        self.inner
            .config
            .store(Arc::new(current.recompiled_with(&sets)));
        Ok(())
    }

    /// Whether a reload has a file to read.
    pub fn config_source(&self) -> ConfigSource {
        self.config().source.clone()
    }
}

/// How long a `periscope connect` session secret stays valid for opening
/// sessions (sessions opened with it may outlive it).
pub const SESSION_SECRET_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Why a `periscope connect` session secret was not issued.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The policy refuses the caller this connection (already audited as
    /// `session.refused`); the message says why.
    #[error("{0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
