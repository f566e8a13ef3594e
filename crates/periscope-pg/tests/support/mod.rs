//! A shielded proxy for tests: [`ShieldedSession`] hooks behind a test
//! authenticator (a fixed token, a policy from TOML, grants given by the
//! test) and an in-memory audit sink whose latency and failures the test
//! controls, in front of a real PostgreSQL seeded with the shop fixtures.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use periscope_audit::{AuditTime, EventDraft};
use periscope_pg::{PgCatalog, SessionSetup, ShieldedSession};
use periscope_pg_wire::{
    AuthRejection, AuthRequest, Authenticated, Authenticator, ClientTls, PgError, PgListener,
    ProxyConfig, ProxyMetrics, SessionTarget, UpstreamSession, UpstreamTls,
};
use periscope_policy::{Grant, Identity, Policy, PolicyInput, decide};
use periscope_shield::catalog::CatalogCache;
use periscope_shield::grants::SessionCut;
use periscope_shield::record::{AuditAck, AuditFailure, AuditSink};
use periscope_sql::AnalysisCache;
use periscope_testkit::fixtures::{self, Customer};
use periscope_testkit::{PgCluster, SUPERUSER, SUPERUSER_PASSWORD};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// The token alice presents.
pub const TOKEN: &str = "good-token";
/// The connection of the tests.
pub const CONNECTION: &str = "pg-test";
/// The identity of the tests.
pub const USER: &str = "alice";

/// The audit log of the tests: events in submission order.
#[derive(Default)]
pub struct MemoryAudit {
    pub events: Mutex<Vec<EventDraft>>,
    /// How long each append takes to become "durable".
    pub delay: Mutex<Duration>,
    /// Fail every append from now on.
    pub fail: AtomicBool,
    /// When each `query` event was acknowledged.
    pub query_acks: Mutex<Vec<Instant>>,
    /// When each `query.refused` event was acknowledged.
    pub refusal_acks: Mutex<Vec<Instant>>,
    pub cuts: Mutex<Option<mpsc::UnboundedSender<Arc<dyn SessionCut>>>>,
}

impl MemoryAudit {
    pub fn actions(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.action.clone())
            .collect()
    }

    pub fn with_action(&self, action: &str) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.details.clone())
            .collect()
    }

    /// Everything recorded, as one string (to search for raw values).
    pub fn dump(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e.action, e.target, e.details))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One session's handle on the shared memory log.
pub struct SinkHandle(pub Arc<MemoryAudit>);

impl AuditSink for SinkHandle {
    fn draft(&self, action: periscope_audit::actions::Action) -> EventDraft {
        let now = AuditTime::from_datetime(time::OffsetDateTime::now_utc()).unwrap();
        EventDraft::new(now, USER, action, CONNECTION)
    }

    fn submit(&self, draft: EventDraft) -> AuditAck {
        let audit = Arc::clone(&self.0);
        let is_query = draft.action == "query";
        let is_refusal = draft.action == "query.refused";
        let seq = {
            let mut events = audit.events.lock().unwrap();
            events.push(draft);
            events.len() as u64
        };
        let delay = *audit.delay.lock().unwrap();
        Box::pin(async move {
            if !delay.is_zero() {
                // Simulated audit latency (the test measures against it).
                tokio::time::sleep(delay).await;
            }
            if audit.fail.load(Ordering::SeqCst) {
                return Err(AuditFailure("the test log refuses appends".into()));
            }
            if is_query {
                audit.query_acks.lock().unwrap().push(Instant::now());
            }
            if is_refusal {
                audit.refusal_acks.lock().unwrap().push(Instant::now());
            }
            Ok(seq)
        })
    }

    fn session_started(&self, cut: Arc<dyn SessionCut>) {
        if let Some(tx) = self.0.cuts.lock().unwrap().as_ref() {
            let _ = tx.send(cut);
        }
    }
}

/// The policy of the tests: connection `pg-test`, role `dev` for alice.
pub fn policy_toml(data_policy: &str) -> String {
    format!(
        r#"
[[connection]]
name = "{CONNECTION}"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"
{data_policy}

[[role]]
name = "dev"
connections = ["{CONNECTION}"]
may_lift = ["unmask:*", "write", "unbounded-write", "ddl", "table:public.payments", "function:pg_read_file"]
max_duration = "1h"
approvers = ["lead"]

[[role]]
name = "lead"
"#
    )
}

/// A grant of `lifts` to alice, active now.
pub fn grant(id: &str, lifts: &[&str]) -> Grant {
    let now = time::OffsetDateTime::now_utc();
    Grant {
        id: id.into(),
        request_id: format!("req_{id}"),
        identity: USER.into(),
        connection: CONNECTION.into(),
        lifts: lifts.iter().map(|s| s.parse().unwrap()).collect(),
        role: "dev".into(),
        starts_at: now - time::Duration::minutes(1),
        expires_at: now + time::Duration::hours(1),
        revoked_at: None,
        revoked_by: None,
        break_glass: false,
        reason: "INC-1: test".into(),
        approvers: vec![],
    }
}

pub struct ShieldAuth {
    port: u16,
    policy: Policy,
    grants: Mutex<Vec<Grant>>,
    catalogs: CatalogCache<PgCatalog>,
    analyses: Arc<AnalysisCache>,
    pub audit: Arc<MemoryAudit>,
}

impl Authenticator for ShieldAuth {
    type Hooks = ShieldedSession<SinkHandle>;

    async fn authenticate(
        &self,
        request: &AuthRequest,
    ) -> Result<Authenticated<Self::Hooks>, AuthRejection> {
        if request.password.expose_secret() != TOKEN {
            return Err(AuthRejection::bad_password("invalid Periscope token"));
        }
        let grants = self.grants.lock().unwrap().clone();
        let decision = decide(&PolicyInput {
            policy: &self.policy,
            identity: &Identity::new(USER, ["dev"]),
            connection: &request.database,
            grants: &grants,
            now: time::OffsetDateTime::now_utc(),
        });
        let allowance = decision
            .allowance()
            .cloned()
            .ok_or_else(|| AuthRejection::unknown_connection("no such connection"))?;
        let mut parameters = Vec::new();
        if allowance.shields().blocks_write() {
            parameters.push(("default_transaction_read_only".into(), "on".into()));
        }
        let setup = SessionSetup {
            identity: USER.into(),
            connection: CONNECTION.into(),
            allowance,
            token_key: Some(periscope_redact::TokenKey::from_bytes([7; 32])),
            analyses: Arc::clone(&self.analyses),
            sample: None,
        };
        Ok(Authenticated {
            target: SessionTarget {
                host: "127.0.0.1".into(),
                port: self.port,
                database: "shop".into(),
                user: SUPERUSER.into(),
                password: SUPERUSER_PASSWORD.into(),
                tls: UpstreamTls::Disable,
                parameters,
            },
            hooks: ShieldedSession::new(setup, SinkHandle(Arc::clone(&self.audit))),
        })
    }

    async fn prepare(
        &self,
        hooks: &mut Self::Hooks,
        upstream: &mut UpstreamSession<'_>,
    ) -> Result<(), PgError> {
        let catalog = self
            .catalogs
            .get_or_load(CONNECTION, || PgCatalog::load(upstream))
            .await
            .map_err(|e| PgError::fatal("08004", e.to_string()))?;
        hooks.attach(catalog, "ses_test", upstream.upstream_user());
        Ok(())
    }
}

/// The seeded upstream: shop schema, `n` customers, a view and a view of a
/// view, JSON events.
pub fn seeded_cluster(n: usize) -> (PgCluster, Vec<Customer>) {
    let cluster = PgCluster::start().expect("a throwaway PostgreSQL cluster");
    cluster.create_database("shop").unwrap();
    let customers = fixtures::customers(n, 11);
    cluster.psql("shop", fixtures::SHOP_SCHEMA).unwrap();
    cluster
        .psql("shop", &fixtures::insert_sql(&customers))
        .unwrap();
    cluster
        .psql(
            "shop",
            "CREATE VIEW contacts AS SELECT id, name, email, phone FROM customers;\n\
             CREATE VIEW contact_mails AS SELECT id, email AS mail FROM contacts;\n\
             CREATE TABLE events (id bigint PRIMARY KEY, payload jsonb NOT NULL);\n\
             INSERT INTO events SELECT id, jsonb_build_object('to', email, 'kind', 'signup') FROM customers;",
        )
        .unwrap();
    (cluster, customers)
}

/// Every customer's sensitive values.
pub fn raw_values(customers: &[Customer]) -> Vec<String> {
    customers
        .iter()
        .flat_map(|c| c.sensitive_values().into_iter().map(str::to_string))
        .collect()
}

#[track_caller]
pub fn assert_no_raw(received: &str, raw: &[String]) {
    for value in raw {
        assert!(
            !received.contains(value.as_str()),
            "a raw sensitive value reached the client: {value:?}\nin:\n{received}"
        );
    }
}

/// The shielded proxy on a free loopback port (plaintext allowed: tests).
pub struct Shielded {
    pub addr: SocketAddr,
    pub audit: Arc<MemoryAudit>,
    pub metrics: Arc<ProxyMetrics>,
    _stop: oneshot::Sender<()>,
}

impl Shielded {
    pub async fn start(cluster: &PgCluster, data_policy: &str, grants: Vec<Grant>) -> Shielded {
        let policy = Policy::parse(&policy_toml(data_policy), "test.toml").unwrap();
        let audit = Arc::new(MemoryAudit::default());
        let auth = ShieldAuth {
            port: cluster.port(),
            policy,
            grants: Mutex::new(grants),
            catalogs: CatalogCache::new(Duration::from_secs(300)),
            analyses: Arc::new(AnalysisCache::new(256)),
            audit: Arc::clone(&audit),
        };
        let mut config = ProxyConfig::new(ClientTls::Disabled);
        config.allow_plaintext_password = true;
        let listener = PgListener::bind("127.0.0.1:0", config, auth).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = listener.metrics();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(listener.serve(async move {
            let _ = rx.await;
        }));
        Shielded {
            addr,
            audit,
            metrics,
            _stop: tx,
        }
    }

    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} password={TOKEN} dbname={CONNECTION} sslmode=disable",
            self.addr.port()
        )
    }

    pub async fn connect(
        &self,
    ) -> (
        tokio_postgres::Client,
        oneshot::Receiver<Result<(), tokio_postgres::Error>>,
    ) {
        let (client, connection) = tokio_postgres::connect(&self.conninfo(), tokio_postgres::NoTls)
            .await
            .expect("connect through the shielded proxy");
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tx.send(connection.await);
        });
        (client, rx)
    }
}
