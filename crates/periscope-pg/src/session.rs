//! The shielded session: [`SessionHooks`] that analyse every statement,
//! refuse what a shield blocks, audit what runs, and mask what comes back.
//!
//! # Following the protocol
//!
//! Every message forwarded upstream that the server answers is recorded, in
//! order, as a [`Pending`] entry; every backend message is matched to the
//! entry at the front. That is what lets rows be masked with the right plan
//! in the extended protocol, where a driver learns the row shape from
//! `Describe(statement)` and later receives DataRows after `Execute` with no
//! RowDescription of their own:
//!
//! - Parse: analysed and guarded; the analysis is kept by statement name.
//! - Bind: the portal remembers its statement and result formats.
//! - Describe: the RowDescription answering it is rewritten (masked columns
//!   become `text`) and, for a portal, gives the portal its plan.
//! - Execute of a portal nobody described: the proxy sends a Describe of the
//!   portal first and drops its answer, so every row is masked with a plan
//!   built from the real row shape and formats.
//! - An ErrorResponse skips the failed batch's entries up to its Sync, as
//!   the server does; ReadyForQuery closes a Query or Sync.
//!
//! # Audit
//!
//! A statement's `query` event is submitted when the statement is received,
//! the statement goes upstream at once, and the relay holds its results
//! until the event is durable ([`crate::hooks::BackendHold`]); an audit
//! failure ends the session. Outcomes (`query.result`, with rows, duration
//! and masked counts per entity) and refusals (`query.refused`, with the
//! shield) are not waited for.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use periscope_policy::{Allowance, MaskTarget, Shield};
use periscope_redact::{Entity, Masker, ScanConfig, Tier, TokenKey};
use periscope_sql::{
    Analysis, AnalysisCache, AnalyzeOptions, OutputColumn, SqlDialect, StatementAnalysis,
    StatementClass, scrub_literals,
};
use serde_json::{Value, json};

use crate::audit::{AuditAck, AuditFailure, AuditSink};
use crate::backend::{BackendMessage, NoticeFields, tag as btag};
use crate::catalog::PgCatalog;
use crate::codec::Frame;
use crate::copy::{CopyMasker, copy_format};
use crate::error::{PgError, sqlstate};
use crate::frontend::{FrontendMessage, Target, put_cstr, put_frame, tag as ftag};
use crate::guard::{self, Refused};
use crate::hooks::{
    BackendAction, BackendHold, FrontendAction, ProtocolState, SessionEnd, SessionHooks,
    SessionInfo,
};
use crate::plan::{FieldInfo, MaskCounts, Masking, RowPlan};
use crate::relay::SessionHandle;

/// Size of the buffer masked rows are written into (see `scratch`).
const SCRATCH_CAPACITY: usize = 16 * 1024;

/// How long a statement's results wait for its audit event before the
/// session is ended instead.
pub const AUDIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `query` event of a statement.
pub const QUERY: &str = periscope_audit::actions::QUERY;
/// A statement refused by a shield or because it could not be analysed.
pub const QUERY_REFUSED: &str = periscope_audit::actions::QUERY_REFUSED;
/// The outcome of a statement that ran.
pub const QUERY_RESULT: &str = "query.result";
/// The session ended.
pub const SESSION_END: &str = periscope_audit::actions::SESSION_END;

/// The masking engine of a session: lifted entities are neither detected
/// nor masked by name; optional entities in force are detected; operators
/// are the connection's. `token` needs the deployment's key (without one it
/// falls back to `redact`).
pub fn session_masker(allowance: &Allowance, token_key: Option<&TokenKey>) -> Masker {
    let shields = allowance.shields();
    let mut config = ScanConfig::new();
    for &entity in Entity::ALL {
        if shields
            .lifted()
            .contains_key(&Shield::Unmask(MaskTarget::Entity(entity)))
        {
            config = config.disable(entity);
        } else if entity.tier() == Tier::Optional && shields.mask_operator(entity).is_some() {
            config = config.enable(entity);
        }
    }
    let scanner = config.build();
    let mut masker = Masker::new(scanner.clone());
    for (entity, op) in shields.masked_entities() {
        masker = masker.with_operator(entity, op);
    }
    if let Some(key) = token_key {
        masker = masker.with_token_key(key);
    }
    masker.check().unwrap_or_else(|_| Masker::new(scanner))
}

/// One statement of an analysed query string.
#[derive(Debug, Clone)]
struct StatementRef {
    analysis: Arc<Analysis>,
    index: usize,
    sql: Arc<str>,
}

impl StatementRef {
    fn get(&self) -> Option<&StatementAnalysis> {
        self.analysis.statements.get(self.index)
    }

    fn text(&self) -> &str {
        self.get()
            .and_then(|st| self.sql.get(st.range.clone()))
            .unwrap_or("")
    }
}

/// A statement's run: what its outcome event reports.
#[derive(Debug)]
struct Run {
    stmt: Option<StatementRef>,
    started: Instant,
    rows: u64,
    counts: MaskCounts,
    query_seq: Arc<AtomicU64>,
    plan: Option<Arc<RowPlan>>,
    copy: Option<CopyMasker>,
}

impl Run {
    fn new(stmt: Option<StatementRef>, query_seq: Arc<AtomicU64>) -> Run {
        Run {
            stmt,
            started: Instant::now(),
            rows: 0,
            counts: MaskCounts::default(),
            query_seq,
            plan: None,
            copy: None,
        }
    }
}

/// A simple Query in flight.
#[derive(Debug)]
struct QueryRun {
    analysis: Option<Arc<Analysis>>,
    sql: Arc<str>,
    seqs: Vec<Arc<AtomicU64>>,
    index: usize,
    run: Run,
    failed: bool,
}

/// A prepared statement of the extended protocol.
#[derive(Debug, Clone)]
struct Prepared {
    stmt: Option<StatementRef>,
}

/// A portal: its statement, and its plan once described.
#[derive(Debug, Clone)]
struct Portal {
    name_of_statement: String,
    stmt: Option<StatementRef>,
    plan: Option<Arc<RowPlan>>,
}

/// What the server owes for a message sent upstream, in order.
#[derive(Debug)]
enum Pending {
    Query(Box<QueryRun>),
    Parse,
    Bind,
    DescribeStatement { name: String },
    DescribePortal { name: String, injected: bool },
    Execute { portal: String, run: Box<Run> },
    Close,
    Sync,
}

/// What a session is set up with, before its catalog is known.
#[derive(Debug, Clone)]
pub struct SessionSetup {
    /// The identity.
    pub identity: String,
    /// The connection name.
    pub connection: String,
    /// The decision the session runs under (shields, grants, refusal hints).
    pub allowance: Allowance,
    /// The deployment's key for the `token` operator.
    pub token_key: Option<TokenKey>,
    /// Analyses shared by the sessions of the connection.
    pub analyses: Arc<AnalysisCache>,
}

/// The hooks of one shielded session. See the module documentation.
pub struct ShieldedSession<A: AuditSink> {
    audit: A,
    setup: SessionSetup,
    grant_ids: Vec<String>,
    session_id: String,
    masking: Option<Masking>,
    catalog: Option<Arc<PgCatalog>>,
    options: AnalyzeOptions,
    upstream_user: String,
    pending: VecDeque<Pending>,
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Portal>,
    sql_prepared: HashMap<String, StatementRef>,
    sql_cursors: HashMap<String, StatementRef>,
    batch_forwarded: bool,
    hold: Option<BackendHold>,
    scratch: BytesMut,
    started: Instant,
    /// Where the client connected from, for `session.end` (set at start).
    client: Option<(std::net::SocketAddr, Option<String>)>,
    statement_count: u64,
    refused_count: u64,
    totals: MaskCounts,
}

impl<A: AuditSink> std::fmt::Debug for ShieldedSession<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShieldedSession")
            .field("session", &self.session_id)
            .field("identity", &self.setup.identity)
            .field("connection", &self.setup.connection)
            .finish_non_exhaustive()
    }
}

fn default_search_path(user: &str) -> Vec<String> {
    vec![user.to_string(), "public".to_string()]
}

impl<A: AuditSink> ShieldedSession<A> {
    /// A session that refuses every statement until [`ShieldedSession::attach`]
    /// gives it a catalog (fail closed).
    pub fn new(setup: SessionSetup, audit: A) -> ShieldedSession<A> {
        let grant_ids = setup
            .allowance
            .shields()
            .grant_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        ShieldedSession {
            audit,
            setup,
            grant_ids,
            session_id: String::new(),
            masking: None,
            catalog: None,
            options: AnalyzeOptions::default(),
            upstream_user: String::new(),
            pending: VecDeque::new(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            sql_prepared: HashMap::new(),
            sql_cursors: HashMap::new(),
            batch_forwarded: false,
            hold: None,
            // Rows are rewritten into this buffer and split off one by one;
            // starting it (and so every later refill) at 16 KiB makes one
            // allocation serve dozens of rows instead of one each.
            scratch: BytesMut::with_capacity(SCRATCH_CAPACITY),
            started: Instant::now(),
            client: None,
            statement_count: 0,
            refused_count: 0,
            totals: MaskCounts::default(),
        }
    }

    /// Gives the session its catalog, its id (in audit events) and the
    /// upstream role (what `$user` means in the `search_path`).
    pub fn attach(&mut self, catalog: Arc<PgCatalog>, session_id: &str, upstream_user: &str) {
        let masker = session_masker(&self.setup.allowance, self.setup.token_key.as_ref());
        self.masking = Some(Masking::new(
            masker,
            self.setup.allowance.shields().clone(),
            Arc::clone(&catalog),
        ));
        self.catalog = Some(catalog);
        self.session_id = session_id.to_string();
        self.upstream_user = upstream_user.to_string();
        self.options.search_path = default_search_path(upstream_user);
    }

    /// The grants this session relies on.
    pub fn grant_ids(&self) -> &[String] {
        &self.grant_ids
    }

    /// The audit sink.
    pub fn sink(&self) -> &A {
        &self.audit
    }

    /// The session id given at [`ShieldedSession::attach`].
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    fn draft(&self, action: &str, details: Value) -> periscope_audit::EventDraft {
        let mut draft = self.audit.draft(action).with_details(details);
        for g in &self.grant_ids {
            draft = draft.with_grant(g.clone());
        }
        draft
    }

    fn analyze(&self, sql: &str) -> Result<Arc<Analysis>, periscope_sql::AnalyzeError> {
        match &self.catalog {
            Some(catalog) => {
                self.setup
                    .analyses
                    .get_or_analyze(sql, catalog.as_ref(), &self.options)
            }
            None => Err(periscope_sql::AnalyzeError::Unsupported(
                "the upstream catalog is not loaded".into(),
            )),
        }
    }

    /// Guards a whole query string: the first statement a shield stops
    /// refuses all of it.
    fn guard(&mut self, sql: &str) -> Result<Option<Arc<Analysis>>, Box<Refused>> {
        if self.catalog.is_none() {
            return Err(Box::new(Refused {
                error: PgError::error(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    "the session is not ready: the upstream catalog is not loaded",
                ),
                shield: None,
            }));
        }
        let analysis = match self.analyze(sql) {
            Ok(a) => a,
            Err(e) if self.setup.allowance.shields().refuses_unanalysable() => {
                return Err(Box::new(guard::unanalysable(&e)));
            }
            // Refusal is off: the statement goes through with every output
            // masked whole (its lineage is unknown).
            Err(_) => return Ok(None),
        };
        let n = analysis.statements.len();
        for (i, st) in analysis.statements.iter().enumerate() {
            let suffix = if n > 1 {
                format!(" (statement {} of {n})", i + 1)
            } else {
                String::new()
            };
            guard::check(st, sql, &self.setup.allowance, &suffix)?;
        }
        Ok(Some(analysis))
    }

    fn statement_details(
        &self,
        stmt: Option<&StatementRef>,
        sql: &str,
    ) -> serde_json::Map<String, Value> {
        let mut d = serde_json::Map::new();
        d.insert("session".into(), Value::from(self.session_id.clone()));
        match stmt.and_then(|s| s.get().map(|st| (s, st))) {
            Some((s, st)) => {
                d.insert("text".into(), Value::from(st.normalized.clone()));
                d.insert("class".into(), Value::from(st.class.name()));
                let tables: Vec<String> = st
                    .tables_read
                    .iter()
                    .chain(st.tables_written.iter())
                    .map(|t| t.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                d.insert("tables".into(), json!(tables));
                d.insert(
                    "fingerprint".into(),
                    Value::from(format!("{:016x}", st.fingerprint)),
                );
                if s.analysis.statements.len() > 1 {
                    d.insert("statement_index".into(), Value::from(s.index + 1));
                }
            }
            None => {
                d.insert(
                    "text".into(),
                    Value::from(scrub_literals(sql, SqlDialect::PostgreSql)),
                );
                d.insert("class".into(), Value::from("unanalysed"));
            }
        }
        d
    }

    fn audit_refusal(&mut self, sql: &str, refused: &Refused) {
        self.refused_count += 1;
        let mut d = self.statement_details(None, sql);
        // The analysis (when it exists) gives the literal-free text.
        if let Ok(analysis) = self.analyze(sql) {
            d.insert("text".into(), Value::from(analysis.normalized()));
        }
        d.insert(
            "shield".into(),
            refused
                .shield
                .as_ref()
                .map_or(Value::Null, |s| Value::from(s.to_string())),
        );
        d.insert("message".into(), Value::from(refused.error.message.clone()));
        let draft = self.draft(QUERY_REFUSED, Value::Object(d));
        // The refusal is shown only once its event is durable, like a
        // statement's results: a client never sees what the log may lose, and
        // a client pipelining refused statements waits for the log.
        let ack = self.audit.submit(draft);
        self.hold_until_recorded(
            async move { ack.await.map(|_| ()) },
            "the refusal",
            "the statement was refused, and the session was closed",
        );
    }

    /// Makes the relay wait, after any hold already pending, until `recorded`
    /// says the audit log holds `what`, before it shows anything more. If the
    /// log fails or takes longer than [`AUDIT_TIMEOUT`], the session ends with
    /// a FATAL that says so and that `withheld` was not shown.
    fn hold_until_recorded(
        &mut self,
        recorded: impl Future<Output = Result<(), AuditFailure>> + Send + 'static,
        what: &'static str,
        withheld: &'static str,
    ) {
        let hold: BackendHold = Box::pin(async move {
            match tokio::time::timeout(AUDIT_TIMEOUT, recorded).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(PgError::fatal(
                    sqlstate::INTERNAL_ERROR,
                    format!("{e}; {withheld}"),
                )),
                Err(_) => Err(PgError::fatal(
                    sqlstate::INTERNAL_ERROR,
                    format!("the audit log did not record {what} in time; {withheld}"),
                )),
            }
        });
        self.hold = Some(match self.hold.take() {
            None => hold,
            Some(previous) => Box::pin(async move {
                previous.await?;
                hold.await
            }),
        });
    }

    /// Submits `query` events and makes the relay hold the results until
    /// they are durable.
    fn submit_queries(&mut self, events: Vec<(serde_json::Map<String, Value>, Arc<AtomicU64>)>) {
        let mut acks: Vec<(AuditAck, Arc<AtomicU64>)> = Vec::with_capacity(events.len());
        for (details, seq) in events {
            self.statement_count += 1;
            let draft = self.draft(QUERY, Value::Object(details));
            acks.push((self.audit.submit(draft), seq));
        }
        if acks.is_empty() {
            return;
        }
        let recorded = async move {
            for (ack, seq) in acks {
                seq.store(ack.await?, Ordering::Relaxed);
            }
            Ok(())
        };
        self.hold_until_recorded(
            recorded,
            "the statement",
            "the statement's results were not shown and the session was closed",
        );
    }

    fn outputs_of<'a>(&'a self, stmt: &'a StatementAnalysis) -> Option<&'a [OutputColumn]> {
        let via = match &stmt.class {
            StatementClass::Execute { name } => self.sql_prepared.get(name),
            StatementClass::Fetch { cursor } => self.sql_cursors.get(cursor),
            _ => return stmt.outputs_exact.then_some(stmt.outputs.as_slice()),
        };
        via.and_then(StatementRef::get)
            .filter(|st| st.outputs_exact)
            .map(|st| st.outputs.as_slice())
    }

    /// Remembers SQL-level PREPARE and DECLARE (whose shapes EXECUTE and
    /// FETCH reuse) and forgets DEALLOCATE and CLOSE.
    fn track_sql_names(&mut self, analysis: &Arc<Analysis>, sql: &Arc<str>) {
        for (index, st) in analysis.statements.iter().enumerate() {
            let r = || StatementRef {
                analysis: Arc::clone(analysis),
                index,
                sql: Arc::clone(sql),
            };
            match &st.class {
                StatementClass::Prepare { name, .. } => {
                    self.sql_prepared.insert(name.clone(), r());
                }
                StatementClass::Declare { name, .. } => {
                    self.sql_cursors.insert(name.clone(), r());
                }
                _ => {}
            }
        }
    }

    fn on_query(&mut self, sql: &str, state: &ProtocolState) -> FrontendAction {
        let analysis = match self.guard(sql) {
            Ok(a) => a,
            Err(refused) => return self.refuse(sql, refused, state, false),
        };
        let sql: Arc<str> = sql.into();
        let mut events = Vec::new();
        let mut seqs = Vec::new();
        match &analysis {
            Some(a) => {
                self.track_sql_names(a, &sql);
                for index in 0..a.statements.len() {
                    let r = StatementRef {
                        analysis: Arc::clone(a),
                        index,
                        sql: Arc::clone(&sql),
                    };
                    let seq = Arc::new(AtomicU64::new(0));
                    events.push((self.statement_details(Some(&r), &sql), Arc::clone(&seq)));
                    seqs.push(seq);
                }
            }
            None => {
                let seq = Arc::new(AtomicU64::new(0));
                events.push((self.statement_details(None, &sql), Arc::clone(&seq)));
                seqs.push(seq);
            }
        }
        self.submit_queries(events);
        let first = analysis.as_ref().map(|a| StatementRef {
            analysis: Arc::clone(a),
            index: 0,
            sql: Arc::clone(&sql),
        });
        let run = Run::new(first, seqs.first().cloned().unwrap_or_default());
        self.pending.push_back(Pending::Query(Box::new(QueryRun {
            analysis,
            sql,
            seqs,
            index: 0,
            run,
            failed: false,
        })));
        FrontendAction::Forward
    }

    fn refuse(
        &mut self,
        sql: &str,
        refused: Box<Refused>,
        state: &ProtocolState,
        extended: bool,
    ) -> FrontendAction {
        self.audit_refusal(sql, &refused);
        if (extended || state.in_extended_batch) && self.batch_forwarded {
            // The relay forwards this batch's Sync so the server closes it.
            self.pending.push_back(Pending::Sync);
            self.batch_forwarded = false;
        }
        FrontendAction::Refuse(refused.error)
    }

    fn on_parse(&mut self, name: &str, sql: &str, state: &ProtocolState) -> FrontendAction {
        let analysis = match self.guard(sql) {
            Ok(a) => a,
            Err(refused) => return self.refuse(sql, refused, state, true),
        };
        let sql: Arc<str> = sql.into();
        if let Some(a) = &analysis {
            self.track_sql_names(a, &sql);
        }
        let stmt = analysis.map(|analysis| StatementRef {
            analysis,
            index: 0,
            sql,
        });
        self.statements.insert(name.to_string(), Prepared { stmt });
        self.batch_forwarded = true;
        self.pending.push_back(Pending::Parse);
        FrontendAction::Forward
    }

    fn statement_named(&self, name: &str) -> Option<StatementRef> {
        match self.statements.get(name) {
            Some(p) => p.stmt.clone(),
            None => self.sql_prepared.get(name).cloned(),
        }
    }

    fn on_execute(&mut self, portal: &str, frame: Frame<'_>) -> FrontendAction {
        let known = self.portals.get(portal).cloned();
        let (stmt, statement_name, described) = match &known {
            Some(p) => (
                p.stmt.clone(),
                p.name_of_statement.clone(),
                p.plan.is_some(),
            ),
            None => (None, String::new(), false),
        };
        let seq = Arc::new(AtomicU64::new(0));
        let sql = stmt
            .as_ref()
            .map(|s| s.text().to_string())
            .unwrap_or_default();
        let mut details = self.statement_details(stmt.as_ref(), &sql);
        details.insert("protocol".into(), Value::from("extended"));
        details.insert("statement".into(), Value::from(statement_name));
        details.insert("portal".into(), Value::from(portal.to_string()));
        self.submit_queries(vec![(details, Arc::clone(&seq))]);
        self.batch_forwarded = true;
        let run = Box::new(Run::new(stmt, seq));
        if described {
            self.pending.push_back(Pending::Execute {
                portal: portal.to_string(),
                run,
            });
            return FrontendAction::Forward;
        }
        // Nobody described this portal: describe it ourselves so its rows
        // are masked with the real shape, and drop the answer.
        self.scratch.clear();
        put_frame(&mut self.scratch, ftag::DESCRIBE, |o| {
            o.put_u8(b'P');
            put_cstr(o, portal);
        });
        self.scratch.extend_from_slice(frame.as_bytes());
        let bytes = self.scratch.split().freeze();
        self.pending.push_back(Pending::DescribePortal {
            name: portal.to_string(),
            injected: true,
        });
        self.pending.push_back(Pending::Execute {
            portal: portal.to_string(),
            run,
        });
        FrontendAction::Replace(bytes)
    }

    fn handle_frontend(&mut self, frame: Frame<'_>, state: &ProtocolState) -> FrontendAction {
        let msg = match FrontendMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                return FrontendAction::Terminate(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid message: {e}"),
                ));
            }
        };
        match msg {
            FrontendMessage::Query { sql } => self.on_query(sql, state),
            FrontendMessage::Parse { name, sql, .. } => self.on_parse(name, sql, state),
            FrontendMessage::Bind(bind) => {
                let stmt = self.statement_named(bind.statement);
                self.portals.insert(
                    bind.portal.to_string(),
                    Portal {
                        name_of_statement: bind.statement.to_string(),
                        stmt,
                        plan: None,
                    },
                );
                self.batch_forwarded = true;
                self.pending.push_back(Pending::Bind);
                FrontendAction::Forward
            }
            FrontendMessage::Describe { target, name } => {
                self.batch_forwarded = true;
                self.pending.push_back(match target {
                    Target::Statement => Pending::DescribeStatement {
                        name: name.to_string(),
                    },
                    Target::Portal => Pending::DescribePortal {
                        name: name.to_string(),
                        injected: false,
                    },
                });
                FrontendAction::Forward
            }
            FrontendMessage::Execute { portal, .. } => self.on_execute(portal, frame),
            FrontendMessage::Close { target, name } => {
                match target {
                    Target::Statement => {
                        self.statements.remove(name);
                    }
                    Target::Portal => {
                        self.portals.remove(name);
                    }
                }
                self.batch_forwarded = true;
                self.pending.push_back(Pending::Close);
                FrontendAction::Forward
            }
            FrontendMessage::Sync => {
                self.batch_forwarded = false;
                // The server ignores Sync while COPY FROM STDIN runs.
                if state.copy != crate::hooks::CopyState::In {
                    self.pending.push_back(Pending::Sync);
                }
                FrontendAction::Forward
            }
            FrontendMessage::FunctionCall(_) => {
                let refused = guard::function_call();
                self.audit_refusal("<fast-path function call>", &refused);
                FrontendAction::Refuse(refused.error)
            }
            _ => FrontendAction::Forward,
        }
    }

    // ---- backend side ----

    fn outcome(&mut self, run: &Run, error: Option<&str>, tag: Option<&str>) {
        let mut d = serde_json::Map::new();
        d.insert("session".into(), Value::from(self.session_id.clone()));
        d.insert(
            "query_seq".into(),
            Value::from(run.query_seq.load(Ordering::Relaxed)),
        );
        if let Some(st) = run.stmt.as_ref().and_then(StatementRef::get) {
            d.insert("class".into(), Value::from(st.class.name()));
            d.insert(
                "fingerprint".into(),
                Value::from(format!("{:016x}", st.fingerprint)),
            );
        }
        let rows = tag
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(run.rows);
        d.insert("rows".into(), Value::from(rows));
        d.insert(
            "duration_us".into(),
            Value::from(u64::try_from(run.started.elapsed().as_micros()).unwrap_or(u64::MAX)),
        );
        d.insert("masked".into(), run.counts.to_json());
        match error {
            Some(code) => {
                d.insert("outcome".into(), Value::from("error"));
                d.insert("sqlstate".into(), Value::from(code));
            }
            None => {
                d.insert("outcome".into(), Value::from("ok"));
            }
        }
        self.totals.merge(&run.counts);
        let draft = self.draft(QUERY_RESULT, Value::Object(d));
        // Nothing waits for an outcome: it can share a commit with the
        // session's next statement instead of costing one of its own.
        self.audit.submit_later(draft);
    }

    /// Statements still running when the session ends get their outcome too,
    /// so that every `query` event that ran upstream has a `query.result`:
    /// an error with the SQLSTATE a client would see for the cause.
    fn interrupted_outcomes(&mut self, end: &SessionEnd) {
        let code = match end {
            SessionEnd::UpstreamLost(_) => sqlstate::CONNECTION_FAILURE,
            SessionEnd::ClientClosed => sqlstate::CONNECTION_DOES_NOT_EXIST,
            SessionEnd::Terminated(_) => sqlstate::ADMIN_SHUTDOWN,
            SessionEnd::Failed(_) => sqlstate::INTERNAL_ERROR,
        };
        for pending in std::mem::take(&mut self.pending) {
            match pending {
                // A query string's current statement, unless it already
                // failed (the server skips the rest) or all have finished.
                Pending::Query(q) if !q.failed && q.index < q.seqs.len() => {
                    self.outcome(&q.run, Some(code), None);
                }
                Pending::Execute { run, .. } => self.outcome(&run, Some(code), None),
                _ => {}
            }
        }
    }

    fn after_success(&mut self, run: &Run) {
        let Some(st) = run.stmt.as_ref().and_then(StatementRef::get) else {
            return;
        };
        if st.is_ddl()
            && let Some(c) = &self.catalog
        {
            c.mark_stale();
        }
        match &st.class {
            StatementClass::Set { variable } if variable == "search_path" => {
                if let Some(path) = search_path_of(run.stmt.as_ref().map_or("", |s| s.text())) {
                    self.options.search_path = path
                        .into_iter()
                        .map(|p| {
                            if p == "$user" {
                                self.upstream_user.clone()
                            } else {
                                p
                            }
                        })
                        .collect();
                }
            }
            StatementClass::Reset | StatementClass::Discard => {
                let upper = st.normalized.to_ascii_uppercase();
                if upper.contains("ALL") || upper.contains("SEARCH_PATH") {
                    self.options.search_path = default_search_path(&self.upstream_user);
                }
            }
            StatementClass::Deallocate => {
                let upper = st.normalized.to_ascii_uppercase();
                if upper.contains("ALL") {
                    self.sql_prepared.clear();
                }
            }
            _ => {}
        }
    }

    fn plan_for(&self, stmt: Option<&StatementRef>, fields: &[FieldInfo]) -> RowPlan {
        let Some(masking) = &self.masking else {
            return RowPlan::all_unknown(fields.len());
        };
        let outputs = stmt
            .and_then(StatementRef::get)
            .and_then(|st| self.outputs_of(st));
        masking.plan(outputs, fields)
    }

    fn rewrite_description(&mut self, frame: Frame<'_>, plan: &RowPlan) -> BackendAction {
        let Ok(BackendMessage::RowDescription(desc)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("RowDescription"));
        };
        self.scratch.clear();
        match plan.rewrite_description(&desc, &mut self.scratch) {
            Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
            Ok(None) => BackendAction::Forward,
            Err(_) => BackendAction::Terminate(bad_upstream("RowDescription")),
        }
    }

    fn fields_of(frame: Frame<'_>) -> Option<Vec<FieldInfo>> {
        match BackendMessage::decode(frame) {
            Ok(BackendMessage::RowDescription(desc)) => {
                Some(desc.fields().map(|f| FieldInfo::of(&f)).collect())
            }
            _ => None,
        }
    }

    fn on_row_description(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(fields) = Self::fields_of(frame) else {
            return BackendAction::Terminate(bad_upstream("RowDescription"));
        };
        match self.pending.front() {
            Some(Pending::Query(q)) => {
                let stmt = q.run.stmt.clone();
                let plan = Arc::new(self.plan_for(stmt.as_ref(), &fields));
                let action = self.rewrite_description(frame, &plan);
                if let Some(Pending::Query(q)) = self.pending.front_mut() {
                    q.run.plan = Some(plan);
                }
                action
            }
            Some(Pending::DescribeStatement { name }) => {
                let stmt = self.statements.get(name).and_then(|p| p.stmt.clone());
                let plan = self.plan_for(stmt.as_ref(), &fields);
                self.pending.pop_front();
                self.rewrite_description(frame, &plan)
            }
            Some(Pending::DescribePortal { name, injected }) => {
                let (name, injected) = (name.clone(), *injected);
                let stmt = self.portals.get(&name).and_then(|p| p.stmt.clone());
                let plan = Arc::new(self.plan_for(stmt.as_ref(), &fields));
                self.pending.pop_front();
                let action = if injected {
                    BackendAction::Drop
                } else {
                    self.rewrite_description(frame, &plan)
                };
                if let Some(p) = self.portals.get_mut(&name) {
                    p.plan = Some(plan);
                } else {
                    // A portal this session never bound (a SQL cursor used
                    // as a portal): its lineage is unknown.
                    self.portals.insert(
                        name,
                        Portal {
                            name_of_statement: String::new(),
                            stmt: None,
                            plan: Some(Arc::new(RowPlan::all_unknown(fields.len()))),
                        },
                    );
                }
                action
            }
            _ => {
                // Unexpected: mask whatever this describes.
                let plan = RowPlan::all_unknown(fields.len());
                self.rewrite_description(frame, &plan)
            }
        }
    }

    fn on_data_row(&mut self, frame: Frame<'_>) -> BackendAction {
        let Ok(BackendMessage::DataRow(row)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("DataRow"));
        };
        let Some(masking) = self.masking.as_ref() else {
            return BackendAction::Terminate(bad_upstream("DataRow before the catalog"));
        };
        let fallback;
        let (plan, run): (&RowPlan, &mut Run) = match self.pending.front_mut() {
            Some(Pending::Query(q)) => {
                let run = &mut q.run;
                match run.plan.clone() {
                    Some(p) => {
                        fallback = p;
                        (&fallback, run)
                    }
                    None => {
                        fallback = Arc::new(RowPlan::all_unknown(row.len()));
                        (&fallback, run)
                    }
                }
            }
            Some(Pending::Execute { portal, run }) => {
                match self
                    .portals
                    .get(portal.as_str())
                    .and_then(|p| p.plan.clone())
                {
                    Some(p) => {
                        fallback = p;
                        (&fallback, run.as_mut())
                    }
                    None => {
                        fallback = Arc::new(RowPlan::all_unknown(row.len()));
                        (&fallback, run.as_mut())
                    }
                }
            }
            _ => {
                // A row nobody asked for: nothing of it is shown unmasked.
                let plan = RowPlan::all_unknown(row.len());
                let mut counts = MaskCounts::default();
                self.scratch.clear();
                return match masking.mask_row(&plan, &row, &mut self.scratch, &mut counts) {
                    Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
                    Ok(None) => BackendAction::Forward,
                    Err(_) => BackendAction::Terminate(bad_upstream("DataRow")),
                };
            }
        };
        run.rows += 1;
        self.scratch.clear();
        match masking.mask_row(plan, &row, &mut self.scratch, &mut run.counts) {
            Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
            Ok(None) => BackendAction::Forward,
            Err(_) => BackendAction::Terminate(bad_upstream("DataRow")),
        }
    }

    fn on_copy_out(&mut self, frame: Frame<'_>) -> BackendAction {
        let Ok(BackendMessage::CopyOutResponse(resp)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("CopyOutResponse"));
        };
        if resp.binary {
            return BackendAction::Terminate(PgError::fatal(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "binary COPY output cannot be masked; the session was closed",
            ));
        }
        let columns = resp.column_formats().count();
        let run = match self.pending.front_mut() {
            Some(Pending::Query(q)) => &mut q.run,
            Some(Pending::Execute { run, .. }) => run.as_mut(),
            _ => {
                return BackendAction::Terminate(bad_upstream("CopyOutResponse"));
            }
        };
        let stmt = run.stmt.clone();
        let format = stmt.as_ref().map(|s| copy_format(s.text()));
        let plan = match (&self.masking, stmt.as_ref().and_then(StatementRef::get)) {
            (Some(m), Some(st)) => m.copy_plan(self.outputs_of(st), columns),
            _ => RowPlan::all_unknown(columns),
        };
        match format {
            Some(Ok(format)) => {
                if let Some(run) = self.current_run() {
                    run.copy = Some(CopyMasker::new(format, plan));
                }
                BackendAction::Forward
            }
            _ => BackendAction::Terminate(PgError::fatal(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "the format of this COPY output cannot be read by the masking stage; the session was closed",
            )),
        }
    }

    fn current_run(&mut self) -> Option<&mut Run> {
        match self.pending.front_mut() {
            Some(Pending::Query(q)) => Some(&mut q.run),
            Some(Pending::Execute { run, .. }) => Some(run.as_mut()),
            _ => None,
        }
    }

    fn on_copy_data(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = self.masking.clone() else {
            return BackendAction::Terminate(bad_upstream("CopyData"));
        };
        let Some(run) = self.current_run() else {
            return BackendAction::Terminate(bad_upstream("CopyData"));
        };
        let Some(copy) = run.copy.as_mut() else {
            return BackendAction::Terminate(bad_upstream("CopyData without CopyOutResponse"));
        };
        let masked = copy.mask_row(&masking, frame.body(), &mut run.counts);
        run.rows += 1;
        match masked {
            None => BackendAction::Forward,
            Some(body) => {
                self.scratch.clear();
                put_frame(&mut self.scratch, btag::COPY_DATA, |o| {
                    o.extend_from_slice(&body)
                });
                BackendAction::Rewrite(self.scratch.split().freeze())
            }
        }
    }

    fn on_command_complete(&mut self, frame: Frame<'_>) -> BackendAction {
        let tag = match BackendMessage::decode(frame) {
            Ok(BackendMessage::CommandComplete { tag }) => tag.to_string(),
            _ => return BackendAction::Terminate(bad_upstream("CommandComplete")),
        };
        match self.pending.front_mut() {
            Some(Pending::Query(q)) => {
                let next_index = q.index + 1;
                let next = q.analysis.as_ref().map(|a| StatementRef {
                    analysis: Arc::clone(a),
                    index: next_index,
                    sql: Arc::clone(&q.sql),
                });
                let seq = q.seqs.get(next_index).cloned().unwrap_or_default();
                let finished = std::mem::replace(&mut q.run, Run::new(next, seq));
                q.index = next_index;
                self.after_success(&finished);
                self.outcome(&finished, None, Some(&tag));
            }
            Some(Pending::Execute { .. }) => {
                if let Some(Pending::Execute { run, .. }) = self.pending.pop_front() {
                    self.after_success(&run);
                    self.outcome(&run, None, Some(&tag));
                }
            }
            _ => {}
        }
        BackendAction::Forward
    }

    fn on_error(&mut self, frame: Frame<'_>) -> BackendAction {
        let code = match BackendMessage::decode(frame) {
            Ok(BackendMessage::ErrorResponse(fields)) => fields.code().unwrap_or("").to_string(),
            _ => return BackendAction::Terminate(bad_upstream("ErrorResponse")),
        };
        match self.pending.front_mut() {
            Some(Pending::Query(q)) if !q.failed => {
                q.failed = true;
                let run = std::mem::replace(&mut q.run, Run::new(None, Arc::default()));
                self.outcome(&run, Some(&code), None);
            }
            Some(Pending::Query(_)) => {}
            Some(_) => {
                // The failed message and the rest of its batch are skipped
                // by the server until Sync.
                while let Some(front) = self.pending.front() {
                    if matches!(front, Pending::Sync | Pending::Query(_)) {
                        break;
                    }
                    if let Some(Pending::Execute { run, .. }) = self.pending.pop_front() {
                        self.outcome(&run, Some(&code), None);
                    }
                }
            }
            None => {}
        }
        self.scan_notice(frame)
    }

    fn on_ready(&mut self) {
        while let Some(front) = self.pending.pop_front() {
            if matches!(front, Pending::Sync | Pending::Query(_)) {
                break;
            }
        }
        // The unnamed portal does not survive the end of a batch.
        self.portals.remove("");
    }

    /// Errors and notices can quote values (`Key (email)=(...) already
    /// exists`): every text field is scanned.
    fn scan_notice(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = &self.masking else {
            return BackendAction::Forward;
        };
        let fields: NoticeFields<'_> = match BackendMessage::decode(frame) {
            Ok(BackendMessage::ErrorResponse(f) | BackendMessage::NoticeResponse(f)) => f,
            _ => return BackendAction::Forward,
        };
        let scanner = masking.masker().scanner();
        let touched = |code: u8| !matches!(code, b'S' | b'V' | b'C');
        if !fields
            .iter()
            .any(|(code, value)| touched(code) && scanner.contains_any(value))
        {
            return BackendAction::Forward;
        }
        let masker = masking.masker().clone();
        self.scratch.clear();
        put_frame(&mut self.scratch, frame.tag(), |o| {
            for (code, value) in fields.iter() {
                o.put_u8(code);
                if touched(code) {
                    put_cstr(o, &masker.mask_str(value).text);
                } else {
                    put_cstr(o, value);
                }
            }
            o.put_u8(0);
        });
        BackendAction::Rewrite(self.scratch.split().freeze())
    }

    fn on_notification(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = &self.masking else {
            return BackendAction::Forward;
        };
        let Ok(BackendMessage::NotificationResponse {
            process_id,
            channel,
            payload,
        }) = BackendMessage::decode(frame)
        else {
            return BackendAction::Terminate(bad_upstream("NotificationResponse"));
        };
        let masked = masking.masker().mask_str(payload);
        if masked.counts.is_empty() {
            return BackendAction::Forward;
        }
        let text = masked.text.into_owned();
        self.scratch.clear();
        put_frame(&mut self.scratch, btag::NOTIFICATION_RESPONSE, |o| {
            o.put_i32(process_id);
            put_cstr(o, channel);
            put_cstr(o, &text);
        });
        BackendAction::Rewrite(self.scratch.split().freeze())
    }

    fn handle_backend(&mut self, frame: Frame<'_>) -> BackendAction {
        match frame.tag() {
            btag::DATA_ROW => self.on_data_row(frame),
            btag::ROW_DESCRIPTION => self.on_row_description(frame),
            btag::COMMAND_COMPLETE => self.on_command_complete(frame),
            btag::COPY_DATA => self.on_copy_data(frame),
            btag::COPY_OUT_RESPONSE => self.on_copy_out(frame),
            btag::ERROR_RESPONSE => self.on_error(frame),
            btag::NOTICE_RESPONSE => self.scan_notice(frame),
            btag::NOTIFICATION_RESPONSE => self.on_notification(frame),
            btag::READY_FOR_QUERY => {
                self.on_ready();
                BackendAction::Forward
            }
            btag::NO_DATA => match self.pending.front() {
                Some(Pending::DescribePortal { injected, .. }) => {
                    let injected = *injected;
                    self.pending.pop_front();
                    if injected {
                        BackendAction::Drop
                    } else {
                        BackendAction::Forward
                    }
                }
                Some(Pending::DescribeStatement { .. }) => {
                    self.pending.pop_front();
                    BackendAction::Forward
                }
                _ => BackendAction::Forward,
            },
            btag::PARSE_COMPLETE | btag::BIND_COMPLETE | btag::CLOSE_COMPLETE => {
                if matches!(
                    self.pending.front(),
                    Some(Pending::Parse | Pending::Bind | Pending::Close)
                ) {
                    self.pending.pop_front();
                }
                BackendAction::Forward
            }
            btag::EMPTY_QUERY_RESPONSE | btag::PORTAL_SUSPENDED => {
                if let Some(Pending::Execute { .. }) = self.pending.front() {
                    if let Some(Pending::Execute { run, .. }) = self.pending.pop_front() {
                        self.outcome(&run, None, None);
                    }
                } else if let Some(Pending::Query(q)) = self.pending.front_mut() {
                    q.index += 1;
                }
                BackendAction::Forward
            }
            _ => BackendAction::Forward,
        }
    }
}

fn bad_upstream(what: &str) -> PgError {
    PgError::fatal(
        sqlstate::PROTOCOL_VIOLATION,
        format!("the upstream server sent an unexpected {what}; the session was closed"),
    )
}

/// The `search_path` a `SET search_path ...` statement sets (`$user` kept
/// as written), or `None` when it cannot be read.
fn search_path_of(sql: &str) -> Option<Vec<String>> {
    use sqlparser::ast::{Expr, Set, Statement, Value as SqlValue};
    let statements =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::PostgreSqlDialect {}, sql)
            .ok()?;
    let Some(Statement::Set(Set::SingleAssignment { values, .. })) = statements.first() else {
        return None;
    };
    let mut path = Vec::new();
    for v in values {
        match v {
            Expr::Identifier(i) if i.quote_style.is_some() => path.push(i.value.clone()),
            Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default") => {
                return Some(vec!["$user".into(), "public".into()]);
            }
            Expr::Identifier(i) => path.push(i.value.to_lowercase()),
            Expr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) => path.extend(
                    s.split(',')
                        .map(|p| p.trim().trim_matches('"').to_string())
                        .filter(|p| !p.is_empty()),
                ),
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(path)
}

impl<A: AuditSink> SessionHooks for ShieldedSession<A> {
    fn on_start(&mut self, info: &SessionInfo, handle: &SessionHandle) {
        self.started = Instant::now();
        self.client = Some((info.client_addr, info.application_name.clone()));
        self.audit.session_started(handle);
    }

    fn on_frontend(&mut self, frame: Frame<'_>, state: &ProtocolState) -> FrontendAction {
        match frame.tag() {
            // COPY FROM STDIN data and the end of a session carry no
            // statement.
            ftag::COPY_DATA | ftag::COPY_DONE | ftag::COPY_FAIL | ftag::TERMINATE | ftag::FLUSH => {
                FrontendAction::Forward
            }
            _ => self.handle_frontend(frame, state),
        }
    }

    fn take_backend_hold(&mut self) -> Option<BackendHold> {
        self.hold.take()
    }

    fn on_backend(&mut self, frame: Frame<'_>, _state: &ProtocolState) -> BackendAction {
        self.handle_backend(frame)
    }

    fn on_end(&mut self, end: &SessionEnd) {
        self.interrupted_outcomes(end);
        let reason = match end {
            SessionEnd::ClientClosed => "client closed the session".to_string(),
            SessionEnd::UpstreamLost(r) => format!("upstream lost: {r}"),
            SessionEnd::Terminated(m) => format!("terminated: {m}"),
            SessionEnd::Failed(m) => format!("failed: {m}"),
        };
        let (client_addr, application_name) = match &self.client {
            Some((addr, app)) => (Some(addr.to_string()), app.clone()),
            None => (None, None),
        };
        let details = json!({
            "session": self.session_id,
            "client_addr": client_addr,
            "application_name": application_name,
            "reason": reason,
            "duration_us": u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "statements": self.statement_count,
            "refused": self.refused_count,
            "masked": self.totals.to_json(),
        });
        let draft = self.draft(SESSION_END, details);
        drop(self.audit.submit(draft));
    }
}

/// Bytes of a frame the session writes itself, for tests of the wire form.
#[doc(hidden)]
pub fn describe_portal_frame(portal: &str) -> Bytes {
    let mut out = BytesMut::new();
    put_frame(&mut out, ftag::DESCRIBE, |o| {
        o.put_u8(b'P');
        put_cstr(o, portal);
    });
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_paths_are_read_from_set() {
        assert_eq!(
            search_path_of("SET search_path TO app, \"Mixed\", public"),
            Some(vec!["app".into(), "Mixed".into(), "public".into()])
        );
        assert_eq!(
            search_path_of("set search_path = '$user', public"),
            Some(vec!["$user".into(), "public".into()])
        );
        assert_eq!(
            search_path_of("SET search_path TO DEFAULT"),
            Some(vec!["$user".into(), "public".into()])
        );
        assert_eq!(search_path_of("SELECT 1"), None);
    }

    #[test]
    fn describe_frames_are_well_formed() {
        let bytes = describe_portal_frame("p1");
        let frame = Frame::parse(&bytes, 1 << 20).unwrap().unwrap();
        assert_eq!(
            FrontendMessage::decode(frame).unwrap(),
            FrontendMessage::Describe {
                target: Target::Portal,
                name: "p1"
            }
        );
    }
}
