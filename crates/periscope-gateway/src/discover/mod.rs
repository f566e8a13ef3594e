//! Sensitive data discovery against a connection's upstream: read the
//! catalog, sample each column that can hold an identifier with bounded
//! reads, and let `periscope-discover` decide per column; then, on request,
//! store the proposed tags so masking uses them at once.
//!
//! How the upstream is spared:
//!
//! - one connection, as the connection's injected upstream role, tables one
//!   after the other (never in parallel), `application_name =
//!   periscope-discover`;
//! - each table in its own `READ ONLY` transaction with a
//!   `statement_timeout` ([`STATEMENT_TIMEOUT`]) and a short `lock_timeout`
//!   ([`LOCK_TIMEOUT`]): a sample never queues behind a DDL lock (and so
//!   never blocks the sessions that would queue behind it); a table that
//!   times out or is locked is skipped and reported;
//! - large tables are read with `TABLESAMPLE SYSTEM` (random pages, a few
//!   times the rows asked for) and every read has a `LIMIT`; small tables
//!   (or never analysed ones) with `LIMIT` alone;
//! - values are cut to [`MAX_TEXT`] characters (JSON documents longer than
//!   [`MAX_JSON`] bytes are counted as absent): whole-value identifiers are
//!   short, and the gateway's memory stays bounded whatever the data.
//!
//! Sampled values go from the wire into the engine's counters and are
//! dropped: they are never logged, returned, audited or stored. Errors
//! carry SQLSTATEs, never the server's message (which can quote a value).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use periscope_discover::{
    Basis, ColumnPath, ColumnProfile, ColumnVerdict, DEFAULT_SAMPLE_SIZE, DeclaredType,
    DiscoverConfig, Discoverer, FieldPath, TypeClass, render_tags,
};
use periscope_pg_wire::{Limits, UpstreamConnection, UpstreamQueryError, UpstreamSession};
use periscope_policy::{ColumnRef, ConnectionConfig, MaskTarget};
use periscope_redact::{Entity, Tier};

use periscope_api as api;
use periscope_audit::actions;
use periscope_store::StoreError;
use serde_json::json;

use crate::gateway::{Gateway, SYSTEM_ACTOR};
use crate::upstream::{TargetError, upstream_target};

mod background;
pub mod suspect;
mod tags;

pub use background::{background, on_first_serve, profile_now};
pub use tags::{DISMISSED, TagChange, store_tags};

/// Longest a sampling statement may run upstream.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a sampling statement waits for a lock before the table is skipped.
pub const LOCK_TIMEOUT: Duration = Duration::from_millis(200);
/// Characters of a non-JSON value read (longer values are free text, not
/// whole-value identifiers).
pub const MAX_TEXT: usize = 512;
/// Bytes of a JSON document read; longer documents are counted as NULL.
pub const MAX_JSON: usize = 16 * 1024;
/// Non-JSON columns sampled by one statement.
const COLUMNS_PER_QUERY: usize = 32;
/// Fewest and most rows per column an administrator may ask for.
pub const SAMPLE_RANGE: (u32, u32) = (10, 100_000);
/// Connect and handshake bound for the sampling connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoverOptions {
    /// Only this schema.
    pub schema: Option<String>,
    /// Rows per column.
    pub sample: u32,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        DiscoverOptions {
            schema: None,
            sample: u32::try_from(DEFAULT_SAMPLE_SIZE).unwrap_or(1_000),
        }
    }
}

/// Why discovery could not run. Texts name SQLSTATEs and settings, never a
/// value or a secret.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// The options are out of range.
    #[error("{0}")]
    Invalid(String),
    /// The connection's upstream target could not be built.
    #[error(
        "the upstream credentials or TLS settings of connection `{0}` are not usable; see the gateway log"
    )]
    Target(String),
    /// The upstream could not be reached or refused the sampling session.
    #[error("cannot open the sampling session on the upstream of `{connection}`: {reason}")]
    Upstream {
        /// The connection.
        connection: String,
        /// Why (no secret, no value).
        reason: String,
    },
}

/// One table's columns to sample.
#[derive(Debug, Clone)]
struct TablePlan {
    schema: String,
    table: String,
    /// The planner's row estimate (`reltuples`), negative when unknown.
    estimate: f64,
    columns: Vec<(String, String)>,
}

/// What a run found.
#[derive(Debug)]
pub struct Discovery {
    /// Tables sampled.
    pub tables: u32,
    /// Columns profiled.
    pub columns: u32,
    /// Rows read, all statements together.
    pub rows: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Every verdict: per column, the column's then its JSON fields'.
    pub verdicts: Vec<ColumnVerdict>,
    /// Tables skipped, with an SQLSTATE-only reason.
    pub skipped: Vec<(String, String)>,
}

/// A column tag proposed from the verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The column.
    pub column: ColumnPath,
    /// The entity it is masked whole as.
    pub entity: Entity,
    /// The fields behind it (`schema.table.column` or JSON paths).
    pub from: Vec<String>,
}

/// Samples `conn`'s upstream and profiles every column that can hold an
/// identifier. `as_of_year` is the current year (ages of dates of birth).
pub async fn run(
    conn: &ConnectionConfig,
    options: &DiscoverOptions,
    as_of_year: i32,
) -> Result<Discovery, DiscoverError> {
    let (min, max) = SAMPLE_RANGE;
    if !(min..=max).contains(&options.sample) {
        return Err(DiscoverError::Invalid(format!(
            "--sample must be between {min} and {max} rows per column"
        )));
    }
    if let Some(schema) = &options.schema
        && !is_plain_name(schema)
    {
        return Err(DiscoverError::Invalid(format!(
            "invalid schema name `{schema}`: letters, digits, `_` and `$`"
        )));
    }
    let started = Instant::now();
    let target = upstream_target(
        conn,
        vec![("default_transaction_read_only".into(), "on".into())],
    )
    .map_err(|e| match e {
        TargetError::Password | TargetError::CaFile => DiscoverError::Target(conn.name.clone()),
    })?;
    let upstream_error = |reason: String| DiscoverError::Upstream {
        connection: conn.name.clone(),
        reason,
    };
    let mut upstream = UpstreamConnection::open(
        &target,
        &[("application_name", "periscope-discover")],
        CONNECT_TIMEOUT,
        Limits::DEFAULT,
    )
    .await
    .map_err(|e| upstream_error(e.to_string()))?;

    let engine = Discoverer::new(DiscoverConfig::new(as_of_year));
    let outcome = sample_all(&mut upstream.session(), &engine, options).await;
    upstream.close().await;
    let mut discovery = outcome.map_err(|e| upstream_error(query_error(&e)))?;
    discovery.elapsed = started.elapsed();
    Ok(discovery)
}

async fn sample_all(
    session: &mut UpstreamSession<'_>,
    engine: &Discoverer,
    options: &DiscoverOptions,
) -> Result<Discovery, UpstreamQueryError> {
    let plans = read_catalog(session, options.schema.as_deref()).await?;
    let mut out = Discovery {
        tables: 0,
        columns: 0,
        rows: 0,
        elapsed: Duration::ZERO,
        verdicts: Vec::new(),
        skipped: Vec::new(),
    };
    let total = plans.len();
    for (i, plan) in plans.into_iter().enumerate() {
        tracing::info!(
            table = %format!("{}.{}", plan.schema, plan.table),
            columns = plan.columns.len(),
            "discovery: sampling table {} of {total}",
            i + 1
        );
        let mut profiles: Vec<ColumnProfile<'_>> = plan
            .columns
            .iter()
            .map(|(name, ty)| {
                engine.profile(
                    ColumnPath::new(plan.schema.as_str(), plan.table.as_str(), name.as_str()),
                    ty,
                )
            })
            .collect();
        match sample_table(session, &plan, options.sample, &mut profiles).await {
            Ok(rows) => {
                out.tables += 1;
                out.rows += rows;
                out.columns += u32::try_from(profiles.len()).unwrap_or(u32::MAX);
                for profile in profiles {
                    out.verdicts.extend(profile.finish());
                }
            }
            Err(UpstreamQueryError::Server { code, .. }) => {
                out.skipped.push((
                    format!("{}.{}", plan.schema, plan.table),
                    sqlstate_reason(&code),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The columns worth sampling, table by table.
async fn read_catalog(
    session: &mut UpstreamSession<'_>,
    schema: Option<&str>,
) -> Result<Vec<TablePlan>, UpstreamQueryError> {
    let filter = match schema {
        Some(s) => format!("AND n.nspname = {}", literal(s)),
        None => String::new(),
    };
    let sql = format!(
        "SELECT n.nspname, c.relname, a.attname, \
                pg_catalog.format_type(a.atttypid, a.atttypmod), c.reltuples::float8 \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'm') AND NOT c.relispartition \
           AND a.attnum > 0 AND NOT a.attisdropped \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
           AND pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT') {filter} \
         ORDER BY n.nspname, c.relname, a.attnum"
    );
    let rows = session
        .simple_query(&sql)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut plans: Vec<TablePlan> = Vec::new();
    for row in rows {
        let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (schema, table, column, ty) = (get(0), get(1), get(2), get(3));
        if DeclaredType::parse(&ty).class == TypeClass::Skipped {
            continue;
        }
        let estimate = get(4).parse::<f64>().unwrap_or(-1.0);
        match plans.last_mut() {
            Some(p) if p.schema == schema && p.table == table => p.columns.push((column, ty)),
            _ => plans.push(TablePlan {
                schema,
                table,
                estimate,
                columns: vec![(column, ty)],
            }),
        }
    }
    Ok(plans)
}

/// Samples one table into its profiles; returns the rows read.
async fn sample_table(
    session: &mut UpstreamSession<'_>,
    plan: &TablePlan,
    sample: u32,
    profiles: &mut [ColumnProfile<'_>],
) -> Result<u64, UpstreamQueryError> {
    // JSON columns alone (their documents are the large values), the
    // others in groups: each statement's rows stay bounded.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut plain = Vec::new();
    for (i, (_, ty)) in plan.columns.iter().enumerate() {
        if DeclaredType::parse(ty).class == TypeClass::Json {
            groups.push(vec![i]);
        } else {
            plain.push(i);
        }
    }
    groups.extend(plain.chunks(COLUMNS_PER_QUERY).map(<[usize]>::to_vec));

    let relation = format!("{}.{}", ident(&plan.schema), ident(&plan.table));
    let limit = u64::from(sample);
    // A few times the rows asked for, in random pages: TABLESAMPLE SYSTEM
    // reads only those pages. Small or never analysed tables: LIMIT alone.
    let from = if plan.estimate > (limit * 10) as f64 {
        let percent = (400.0 * limit as f64 / plan.estimate).clamp(0.0001, 100.0);
        format!("{relation} TABLESAMPLE SYSTEM ({percent:.4})")
    } else {
        relation
    };
    let mut rows_read = 0;
    for group in groups {
        let select: Vec<String> = group
            .iter()
            .map(|&i| {
                let (name, ty) = &plan.columns[i];
                let col = ident(name);
                if DeclaredType::parse(ty).class == TypeClass::Json {
                    format!(
                        "CASE WHEN pg_catalog.octet_length({col}::text) <= {MAX_JSON} THEN {col}::text END"
                    )
                } else {
                    format!("pg_catalog.left({col}::text, {MAX_TEXT})")
                }
            })
            .collect();
        let sql = format!(
            "BEGIN READ ONLY; \
             SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = {}; \
             SELECT {} FROM {from} LIMIT {limit}; COMMIT",
            STATEMENT_TIMEOUT.as_millis(),
            LOCK_TIMEOUT.as_millis(),
            select.join(", "),
        );
        let results = match session.simple_query(&sql).await {
            Ok(r) => r,
            Err(e) => {
                // The failed statement left the transaction aborted.
                let _ = session.simple_query("ROLLBACK").await;
                return Err(e);
            }
        };
        // BEGIN, SET, SET, SELECT, COMMIT: the rows are the SELECT's.
        let rows = results
            .into_iter()
            .find(|r| !r.is_empty())
            .unwrap_or_default();
        rows_read += rows.len() as u64;
        for row in rows {
            for (slot, &i) in group.iter().enumerate() {
                let value = row.get(slot).and_then(Option::as_deref);
                profiles[i].push(value);
            }
        }
    }
    Ok(rows_read)
}

/// Folds the verdicts into one proposed tag per column: a column's own
/// proposal, or else the most sensitive of its JSON fields' (tags name
/// columns, so a JSON column is masked whole). Among fields, an entity the
/// content scanner cannot catch on its own (national ids, tax ids,
/// passports, driver licences) ranks above one it can (cards, emails),
/// so lifting the column's tag leaves the scanner masking the rest.
pub fn proposals(verdicts: &[ColumnVerdict]) -> Vec<Proposal> {
    let mut by_column: BTreeMap<ColumnPath, Vec<&ColumnVerdict>> = BTreeMap::new();
    for v in verdicts.iter().filter(|v| v.proposed.is_some()) {
        by_column.entry(v.path.column.clone()).or_default().push(v);
    }
    let mut out = Vec::new();
    for (column, list) in by_column {
        let own = list.iter().find(|v| v.path.json.is_empty());
        let chosen = match own {
            Some(v) => v.proposed,
            None => list
                .iter()
                .filter_map(|v| v.proposed)
                .max_by_key(|e| entity_rank(*e)),
        };
        let Some(entity) = chosen else { continue };
        let from = list
            .iter()
            .filter(|v| own.is_none() || v.path.json.is_empty())
            .map(|v| v.path.to_string())
            .collect();
        out.push(Proposal {
            column,
            entity,
            from,
        });
    }
    out
}

fn entity_rank(e: Entity) -> u8 {
    match e {
        e if e.tier() == Tier::Secret => 4,
        Entity::NationalId | Entity::TaxId | Entity::Passport | Entity::DriverLicense => 3,
        e if e.tier() == Tier::Pii => 2,
        _ => 1,
    }
}

/// The `data_policy.tags` snippet for the proposals (column keys only: the
/// configuration names columns, not JSON paths).
pub fn snippet(verdicts: &[ColumnVerdict], proposals: &[Proposal]) -> String {
    let folded: Vec<ColumnVerdict> = proposals
        .iter()
        .filter_map(|p| {
            let own = verdicts
                .iter()
                .find(|v| v.path.column == p.column && v.path.json.is_empty());
            let field = verdicts
                .iter()
                .find(|v| v.path.column == p.column && v.proposed == Some(p.entity));
            let mut v = field.or(own)?.clone();
            v.path = FieldPath::column(p.column.clone());
            v.proposed = Some(p.entity);
            Some(v)
        })
        .collect();
    render_tags(&folded)
}

/// The configuration's key for a column, when it can name it.
pub fn column_ref(column: &ColumnPath) -> Option<ColumnRef> {
    format!("{}.{}.{}", column.schema, column.table, column.column)
        .parse()
        .ok()
}

/// The tag a column gets: its entity.
pub fn mask_target(entity: Entity) -> MaskTarget {
    MaskTarget::Entity(entity)
}

/// `basis` as the API spells it.
pub fn basis_name(basis: Basis) -> &'static str {
    match basis {
        Basis::Name => "name",
        Basis::Content => "content",
        Basis::NameAndContent => "name_and_content",
    }
}

fn query_error(e: &UpstreamQueryError) -> String {
    match e {
        UpstreamQueryError::Server { code, .. } => sqlstate_reason(code),
        UpstreamQueryError::Session(s) => s.to_string(),
    }
}

/// An SQLSTATE with its meaning; the server's message is left out because
/// it can quote a value.
fn sqlstate_reason(code: &str) -> String {
    let meaning = match code {
        "57014" => "statement timeout",
        "55P03" => "lock not available (the table is locked; skipped rather than waiting)",
        "42501" => "insufficient privilege",
        "42P01" => "the table no longer exists",
        "25006" => "read-only transaction",
        _ => "server error",
    };
    format!("SQLSTATE {code}: {meaning}")
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal (standard conforming strings; callers pass plain names).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Why [`report`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// No such connection.
    #[error("no connection named `{0}`")]
    UnknownConnection(String),
    /// Discovery samples database columns; this connection runs commands.
    #[error("connection `{0}` is not a PostgreSQL connection: discovery samples database columns")]
    NotADatabase(String),
    /// Sampling failed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The `discovery.run` event could not be recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs discovery on `connection` for `actor`, records `discovery.run`
/// (counts per entity, never a value) and builds the report. `apply` is
/// only recorded here; the caller stores the tags.
pub async fn report(
    gateway: &Gateway,
    connection: &str,
    options: &DiscoverOptions,
    actor: &str,
    apply: bool,
) -> Result<api::DiscoverResponse, ReportError> {
    let config = gateway.config();
    let conn = config
        .config
        .connection(connection)
        .ok_or_else(|| ReportError::UnknownConnection(connection.to_string()))?;
    if conn.kind != periscope_policy::ConnectionKind::Postgres {
        return Err(ReportError::NotADatabase(connection.to_string()));
    }
    let found = run(conn, options, gateway.now().year()).await?;
    let proposals = proposals(&found.verdicts);
    let snippet = snippet(&found.verdicts, &proposals);
    // The policy in force now (after the sampling): which columns the
    // configuration itself tags.
    let config = gateway.config();
    let policy_conn = config.policy.connection(connection);
    let proposed: Vec<api::ProposedTag> = proposals
        .iter()
        .map(|p| {
            let configured = column_ref(&p.column).and_then(|c| {
                let conn = policy_conn?;
                if conn.discovered.contains(&c) {
                    return None;
                }
                conn.data.tags.get(&c).map(ToString::to_string)
            });
            api::ProposedTag {
                column: p.column.to_string(),
                entity: p.entity.name().to_string(),
                from: p.from.clone(),
                configured,
            }
        })
        .collect();
    let mut per_entity: BTreeMap<&str, u32> = BTreeMap::new();
    for p in &proposals {
        *per_entity.entry(p.entity.name()).or_default() += 1;
    }
    let elapsed_ms = u64::try_from(found.elapsed.as_millis()).unwrap_or(u64::MAX);
    let draft = gateway
        .draft(actor, actions::DISCOVERY_RUN, connection)
        .with_details(json!({
            "schema": options.schema,
            "sample": options.sample,
            "tables": found.tables,
            "columns": found.columns,
            "rows_sampled": found.rows,
            "skipped_tables": found.skipped.len(),
            "proposed": per_entity,
            "elapsed_ms": elapsed_ms,
            "apply": apply,
            "background": actor == SYSTEM_ACTOR,
        }));
    gateway.audit(draft).await?;
    Ok(api::DiscoverResponse {
        connection: connection.to_string(),
        schema: options.schema.clone(),
        sample: options.sample,
        tables: found.tables,
        columns: found.columns,
        rows_sampled: found.rows,
        elapsed_ms,
        fields: found.verdicts.iter().map(field).collect(),
        proposed,
        skipped: found
            .skipped
            .into_iter()
            .map(|(table, reason)| api::SkippedTable { table, reason })
            .collect(),
        snippet,
        applied: None,
    })
}

fn field(v: &ColumnVerdict) -> api::DiscoveredField {
    let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
    api::DiscoveredField {
        path: v.path.to_string(),
        sampled: v.sampled,
        nulls: v.nulls,
        by_name: v.by_name.map(|e| e.name().to_string()),
        proposed: v.proposed.map(|e| e.name().to_string()),
        basis: v.basis.map(|b| basis_name(b).to_string()),
        reason: v.reason.to_string(),
        evidence: v
            .evidence
            .iter()
            .map(|e| api::FieldEvidence {
                entity: e.entity.name().to_string(),
                check: e.check.name().to_string(),
                matched: e.matched,
                sampled: e.sampled,
                share: round(e.share),
                chance: round(e.chance),
                required: round(e.required),
                passed: e.passed(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(literal("o'k"), "'o''k'");
        assert!(is_plain_name("public"));
        assert!(!is_plain_name("x'; DROP"));
    }

    #[test]
    fn json_fields_fold_into_the_column_with_the_least_detectable_entity() {
        let engine = Discoverer::new(DiscoverConfig::new(2026));
        let docs: Vec<String> = (0..60)
            .map(|i| {
                let sin = ["130456122", "271938466", "912345675", "512345679"][i % 4];
                format!(r#"{{"a": "{sin}", "b": "person{i}@example.com"}}"#)
            })
            .collect();
        let verdicts = engine.discover_column(
            ColumnPath::new("public", "t", "doc"),
            "jsonb",
            docs.iter().map(|d| Some(d.as_str())),
        );
        let p = proposals(&verdicts);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].entity, Entity::NationalId);
        assert_eq!(p[0].from.len(), 2);
        let text = snippet(&verdicts, &p);
        assert!(
            text.contains("\"public.t.doc\" = \"national_id\""),
            "{text}"
        );
    }
}
