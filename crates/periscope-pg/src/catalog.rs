//! The upstream catalog: which relations exist (for lineage through `*`,
//! views and unqualified names), which columns hold what (for masking), and
//! which functions are user-defined (their results have unknown lineage).
//!
//! It is read over the session's own upstream connection, before the relay
//! starts ([`PgCatalog::load`]), and shared by every session of a connection
//! through a [`CatalogCache`]: loaded once, reloaded when older than its TTL
//! or after a DDL statement went through (see [`PgCatalog::mark_stale`]).
//!
//! A column is classified, in priority order, by:
//!
//! 1. the system relations that hold copies of other columns' values
//!    (`pg_statistic.stavalues*`, `pg_stats.most_common_vals`, ...): always
//!    masked whole, whatever the grants (see [`Sensitivity::Sampled`]);
//! 2. the connection's configured `tags` (`schema.table.column = "TAG"`);
//! 3. a `periscope:<entity or tag>` marker in the column's comment;
//! 4. its type (`inet`/`cidr` hold IP addresses, `macaddr` MAC addresses);
//! 5. its name ([`periscope_redact::classify_name`]), including optional
//!    entities whose detector is off (a column named `dob` is masked).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use periscope_policy::{MaskTarget, Shield, ShieldSet};
use periscope_redact::{Entity, Operator, classify_name};
use periscope_sql::{Catalog, Relation, RelationKind, StaticCatalog, TableName};

use crate::upstream::{TextRow, UpstreamQueryError, UpstreamSession};

/// One catalog column, with what the masking stage needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Schema of its relation.
    pub schema: String,
    /// Its relation.
    pub table: String,
    /// Its name.
    pub column: String,
    /// Type OID (`pg_attribute.atttypid`).
    pub type_oid: u32,
    /// Type name (`pg_type.typname`).
    pub type_name: String,
    /// A `periscope:<entity or tag>` marker found in the column's comment.
    pub comment_tag: Option<MaskTarget>,
}

/// Why a column's values are sensitive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sensitivity {
    /// Values of this entity (masked with its operator, lifted by
    /// `unmask:<entity>`).
    Entity(Entity),
    /// A custom tag from the configuration or a comment (masked whole as
    /// `[tag]`, lifted by `unmask:<tag>`).
    Tag(String),
    /// Sampled copies of other columns' values (`pg_statistic`, `pg_stats`):
    /// their origin is unknown, so they are always masked whole.
    Sampled,
}

impl Sensitivity {
    /// The placeholder a whole masked value becomes (`[email]`, `[tag]`,
    /// `[masked]`).
    pub fn placeholder(&self) -> String {
        match self {
            Sensitivity::Entity(e) => format!("[{}]", e.name()),
            Sensitivity::Tag(t) => format!("[{t}]"),
            Sensitivity::Sampled => UNKNOWN_PLACEHOLDER.to_string(),
        }
    }

    /// The key under which masked values are counted in audit events.
    pub fn count_key(&self) -> String {
        match self {
            Sensitivity::Entity(e) => e.name().to_string(),
            Sensitivity::Tag(t) => t.clone(),
            Sensitivity::Sampled => UNKNOWN_KEY.to_string(),
        }
    }

    /// Strength order when one value may come from several sensitive
    /// columns: the placeholder shown is the strongest one's.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Sensitivity::Sampled => 5,
            Sensitivity::Entity(e) if e.is_secret() => 4,
            Sensitivity::Tag(_) => 3,
            Sensitivity::Entity(e) if e.tier() == periscope_redact::Tier::Pii => 2,
            Sensitivity::Entity(_) => 1,
        }
    }
}

/// What a value of unknown origin is replaced with.
pub const UNKNOWN_PLACEHOLDER: &str = "[masked]";
/// The audit count key of values masked because their origin is unknown.
pub const UNKNOWN_KEY: &str = "unknown";

/// A column masked in this session, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnShield {
    /// Why it is sensitive.
    pub sensitivity: Sensitivity,
    /// How a value passed through unchanged is rendered (`partial` keeps a
    /// harmless part); transformed values are always replaced whole.
    pub operator: Operator,
}

/// Columns of system relations that hold sampled copies of other columns'
/// values: the lineage of those values is lost, so they are masked whole.
const SAMPLED: &[(&str, &[&str])] = &[
    (
        "pg_statistic",
        &[
            "stavalues1",
            "stavalues2",
            "stavalues3",
            "stavalues4",
            "stavalues5",
        ],
    ),
    (
        "pg_stats",
        &["most_common_vals", "histogram_bounds", "most_common_elems"],
    ),
    ("pg_stats_ext", &["most_common_vals"]),
    (
        "pg_stats_ext_exprs",
        &["most_common_vals", "histogram_bounds", "most_common_elems"],
    ),
    ("pg_statistic_ext_data", &["stxdmcv", "stxdexpr"]),
];

fn is_sampled(schema: &str, table: &str, column: &str) -> bool {
    schema == "pg_catalog"
        && SAMPLED
            .iter()
            .any(|(t, cols)| *t == table && cols.contains(&column))
}

/// The shield state of one column in a session: `None` when it is not
/// sensitive or a grant lifted its shield. `shields` carries the
/// connection's configured tags and the grants.
pub fn column_shield(column: &ColumnInfo, shields: &ShieldSet) -> Option<ColumnShield> {
    if is_sampled(&column.schema, &column.table, &column.column) {
        return Some(ColumnShield {
            sensitivity: Sensitivity::Sampled,
            operator: Operator::Redact,
        });
    }
    let key = periscope_policy::ColumnRef {
        table: periscope_policy::TableName::new(&column.schema, &column.table),
        column: column.column.clone(),
    };
    if shields.column_tags().contains_key(&key) {
        // A configured tag decides alone; `None` means its shield is lifted.
        return shields.column_mask(&key).map(|(target, op)| ColumnShield {
            sensitivity: target_sensitivity(target),
            operator: op,
        });
    }
    if let Some(target) = &column.comment_tag {
        return target_shield(target, shields);
    }
    let by_type = match column.type_name.as_str() {
        "inet" | "cidr" => Some(Entity::Ip),
        "macaddr" | "macaddr8" => Some(Entity::MacAddress),
        _ => None,
    };
    let entity = by_type.or_else(|| classify_name(&column.column))?;
    entity_shield(entity, shields)
}

fn target_sensitivity(target: &MaskTarget) -> Sensitivity {
    match target {
        MaskTarget::Entity(e) => Sensitivity::Entity(*e),
        MaskTarget::Tag(t) => Sensitivity::Tag(t.clone()),
    }
}

fn target_shield(target: &MaskTarget, shields: &ShieldSet) -> Option<ColumnShield> {
    match target {
        MaskTarget::Entity(e) => entity_shield(*e, shields),
        MaskTarget::Tag(t) => {
            let lifted = shields
                .lifted()
                .contains_key(&Shield::Unmask(MaskTarget::Tag(t.clone())));
            (!lifted).then(|| ColumnShield {
                sensitivity: Sensitivity::Tag(t.clone()),
                operator: Operator::Redact,
            })
        }
    }
}

/// An entity column is masked unless a grant lifted `unmask:<entity>` (the
/// policy honours a secret's lift only from a break-glass grant). An
/// optional entity whose detector is off is still masked by name, with
/// `redact`.
pub(crate) fn entity_shield(entity: Entity, shields: &ShieldSet) -> Option<ColumnShield> {
    if shields
        .lifted()
        .contains_key(&Shield::Unmask(MaskTarget::Entity(entity)))
    {
        return None;
    }
    Some(ColumnShield {
        sensitivity: Sensitivity::Entity(entity),
        operator: shields.mask_operator(entity).unwrap_or(Operator::Redact),
    })
}

/// Extracts `periscope:<target>` from a column comment.
fn comment_tag(comment: &str) -> Option<MaskTarget> {
    let at = comment.find("periscope:")?;
    let rest = &comment[at + "periscope:".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The catalog of one upstream database, as the masking and analysis stages
/// need it.
#[derive(Debug)]
pub struct PgCatalog {
    relations: StaticCatalog,
    by_attr: HashMap<(u32, i16), Arc<ColumnInfo>>,
    by_name: HashMap<(String, String, String), Arc<ColumnInfo>>,
    loaded_at: Instant,
    stale: AtomicBool,
}

impl Catalog for PgCatalog {
    fn resolve(&self, name: &TableName, search_path: &[String]) -> Option<Arc<Relation>> {
        self.relations.resolve(name, search_path)
    }

    fn version(&self) -> u64 {
        self.relations.version()
    }

    fn is_user_function(&self, name: &str, search_path: &[String]) -> bool {
        self.relations.is_user_function(name, search_path)
    }
}

/// Relations the catalog reads: tables, partitioned tables, views,
/// materialized views, foreign tables, sequences and composite types, in
/// every schema but TOAST and other sessions' temporary ones.
const RELATIONS_SQL: &str = "\
SELECT c.oid::pg_catalog.int8, n.nspname, c.relname, c.relkind::pg_catalog.text, \
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END \
  FROM pg_catalog.pg_class c \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') \
   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'";

const COLUMNS_SQL: &str = "\
SELECT a.attrelid::pg_catalog.int8, a.attnum::pg_catalog.int4, a.attname, \
       a.atttypid::pg_catalog.int8, t.typname, d.description \
  FROM pg_catalog.pg_attribute a \
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
  LEFT JOIN pg_catalog.pg_description d \
         ON d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass \
        AND d.objoid = a.attrelid AND d.objsubid = a.attnum \
 WHERE a.attnum > 0 AND NOT a.attisdropped \
   AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') \
   AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)' \
 ORDER BY a.attrelid, a.attnum";

const FUNCTIONS_SQL: &str = "\
SELECT DISTINCT n.nspname, p.proname \
  FROM pg_catalog.pg_proc p \
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')";

/// Why the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The upstream refused a catalog query or the connection failed.
    #[error(transparent)]
    Query(#[from] UpstreamQueryError),
    /// A row had an unexpected shape (a server that is not PostgreSQL?).
    #[error("unexpected catalog row: {0}")]
    Shape(&'static str),
}

fn text(row: &TextRow, i: usize, what: &'static str) -> Result<String, CatalogError> {
    row.get(i)
        .cloned()
        .flatten()
        .ok_or(CatalogError::Shape(what))
}

fn number<T: std::str::FromStr>(
    row: &TextRow,
    i: usize,
    what: &'static str,
) -> Result<T, CatalogError> {
    text(row, i, what)?
        .parse()
        .map_err(|_| CatalogError::Shape(what))
}

impl PgCatalog {
    /// Reads the catalog over an upstream session (three queries in one
    /// round trip).
    pub async fn load(upstream: &mut UpstreamSession<'_>) -> Result<PgCatalog, CatalogError> {
        let sql = format!("{RELATIONS_SQL}; {COLUMNS_SQL}; {FUNCTIONS_SQL}");
        let results = upstream.simple_query(&sql).await?;
        let [relations, columns, functions] = <[Vec<TextRow>; 3]>::try_from(results)
            .map_err(|_| CatalogError::Shape("three result sets"))?;

        let mut builder = CatalogBuilder::default();
        for row in &relations {
            let oid: u32 = number(row, 0, "relation oid")?;
            let kind = text(row, 3, "relkind")?;
            builder.relation(
                oid,
                &text(row, 1, "schema")?,
                &text(row, 2, "relation name")?,
                RelationKind::from_relkind(kind.chars().next().unwrap_or('?')),
                row.get(4).cloned().flatten(),
            );
        }
        for row in &columns {
            builder.column(
                number(row, 0, "attrelid")?,
                number(row, 1, "attnum")?,
                &text(row, 2, "attname")?,
                number(row, 3, "atttypid")?,
                &text(row, 4, "typname")?,
                row.get(5).cloned().flatten().as_deref(),
            );
        }
        for row in &functions {
            builder.user_function(&text(row, 0, "schema")?, &text(row, 1, "function")?);
        }
        Ok(builder.build())
    }

    /// A catalog built in memory (tests, or a gateway that knows the schema).
    pub fn builder() -> CatalogBuilder {
        CatalogBuilder::default()
    }

    /// The column a RowDescription field names (table OID and attribute
    /// number), when it is a catalog column.
    pub fn column_by_attr(&self, table_oid: u32, attnum: i16) -> Option<&ColumnInfo> {
        self.by_attr.get(&(table_oid, attnum)).map(Arc::as_ref)
    }

    /// A column by schema, relation and name (what lineage reports).
    pub fn column(&self, schema: &str, table: &str, column: &str) -> Option<&ColumnInfo> {
        self.by_name
            .get(&(schema.to_string(), table.to_string(), column.to_string()))
            .map(Arc::as_ref)
    }

    /// How many relations are known.
    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    /// Marks the catalog out of date (a DDL statement went through): the
    /// next session of the connection reloads it.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Whether it is younger than `ttl` and no DDL made it stale.
    pub fn is_fresh(&self, ttl: Duration) -> bool {
        !self.stale.load(Ordering::Relaxed) && self.loaded_at.elapsed() < ttl
    }
}

/// Builds a [`PgCatalog`] from relation and column rows.
#[derive(Debug, Default)]
pub struct CatalogBuilder {
    relations: HashMap<u32, Relation>,
    order: Vec<u32>,
    columns: Vec<(u32, i16, ColumnInfo)>,
    functions: Vec<(String, String)>,
}

impl CatalogBuilder {
    /// Adds a relation; its columns follow with [`CatalogBuilder::column`].
    pub fn relation(
        &mut self,
        oid: u32,
        schema: &str,
        name: &str,
        kind: RelationKind,
        definition: Option<String>,
    ) -> &mut Self {
        if self
            .relations
            .insert(
                oid,
                Relation {
                    schema: schema.to_string(),
                    name: name.to_string(),
                    kind,
                    columns: Vec::new(),
                    definition,
                },
            )
            .is_none()
        {
            self.order.push(oid);
        }
        self
    }

    /// Adds a column of relation `oid` (in attribute order), with its
    /// comment if any.
    pub fn column(
        &mut self,
        oid: u32,
        attnum: i16,
        name: &str,
        type_oid: u32,
        type_name: &str,
        comment: Option<&str>,
    ) -> &mut Self {
        let Some(relation) = self.relations.get_mut(&oid) else {
            return self;
        };
        relation.columns.push(name.to_string());
        self.columns.push((
            oid,
            attnum,
            ColumnInfo {
                schema: relation.schema.clone(),
                table: relation.name.clone(),
                column: name.to_string(),
                type_oid,
                type_name: type_name.to_string(),
                comment_tag: comment.and_then(comment_tag),
            },
        ));
        self
    }

    /// Declares a user-defined function (its results have unknown lineage).
    pub fn user_function(&mut self, schema: &str, name: &str) -> &mut Self {
        self.functions.push((schema.to_string(), name.to_string()));
        self
    }

    /// The catalog.
    pub fn build(&mut self) -> PgCatalog {
        let mut relations = StaticCatalog::new();
        for oid in &self.order {
            if let Some(r) = self.relations.remove(oid) {
                relations.insert(r);
            }
        }
        for (schema, name) in self.functions.drain(..) {
            relations.add_user_function(&schema, &name);
        }
        let mut by_attr = HashMap::with_capacity(self.columns.len());
        let mut by_name = HashMap::with_capacity(self.columns.len());
        for (oid, attnum, info) in self.columns.drain(..) {
            let info = Arc::new(info);
            by_name.insert(
                (info.schema.clone(), info.table.clone(), info.column.clone()),
                Arc::clone(&info),
            );
            by_attr.insert((oid, attnum), info);
        }
        self.order.clear();
        PgCatalog {
            relations,
            by_attr,
            by_name,
            loaded_at: Instant::now(),
            stale: AtomicBool::new(false),
        }
    }
}

/// Catalogs by connection name, shared by the sessions of each connection.
#[derive(Debug)]
pub struct CatalogCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Arc<PgCatalog>>>,
    /// One load at a time per connection: sessions that arrive while the
    /// catalog is being read wait for that read instead of each starting
    /// their own (a burst of clients after a start would otherwise read it
    /// once per session, slowing every one of them down).
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How long a catalog serves new sessions before it is read again.
pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(5 * 60);

impl CatalogCache {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> CatalogCache {
        CatalogCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PgCatalog>>> {
        // Every critical section is one get or insert.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, connection: &str) -> Option<Arc<PgCatalog>> {
        self.lock()
            .get(connection)
            .filter(|c| c.is_fresh(self.ttl))
            .map(Arc::clone)
    }

    /// The catalog of `connection`: the cached one while fresh, else read
    /// over `upstream` (the new session's own connection) and cached; when
    /// another session is already reading it, wait for that read.
    pub async fn get_or_load(
        &self,
        connection: &str,
        upstream: &mut UpstreamSession<'_>,
    ) -> Result<Arc<PgCatalog>, CatalogError> {
        if let Some(cached) = self.fresh(connection) {
            return Ok(cached);
        }
        let gate = Arc::clone(
            self.loading
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(connection.to_string())
                .or_default(),
        );
        let _loading = gate.lock().await;
        // Loaded by another session while this one waited?
        if let Some(cached) = self.fresh(connection) {
            return Ok(cached);
        }
        let started = Instant::now();
        let loaded = Arc::new(PgCatalog::load(upstream).await?);
        tracing::info!(
            connection,
            relations = loaded.relation_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upstream catalog loaded"
        );
        self.lock()
            .insert(connection.to_string(), Arc::clone(&loaded));
        Ok(loaded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_policy::{Identity, Policy, PolicyInput, decide};

    fn shields(policy_toml: &str) -> ShieldSet {
        let policy = Policy::parse(policy_toml, "t.toml").unwrap();
        let decision = decide(&PolicyInput {
            policy: &policy,
            identity: &Identity::new("alice", ["dev"]),
            connection: "pg",
            grants: &[],
            now: time::OffsetDateTime::UNIX_EPOCH,
        });
        decision.allowance().unwrap().shields().clone()
    }

    const BASE: &str = r#"
[[connection]]
name = "pg"
kind = "postgres"
host = "db"
database = "shop"
user = "u"
[[role]]
name = "dev"
connections = ["pg"]
"#;

    fn col(table: &str, column: &str, ty: &str, comment: Option<&str>) -> ColumnInfo {
        ColumnInfo {
            schema: if table.starts_with("pg_") {
                "pg_catalog".into()
            } else {
                "public".into()
            },
            table: table.into(),
            column: column.into(),
            type_oid: 25,
            type_name: ty.into(),
            comment_tag: comment.and_then(comment_tag),
        }
    }

    #[test]
    fn classification_priority() {
        let tagged = format!(
            "{BASE}[connection.data_policy]\ntags = {{ \"public.customers.notes\" = \"confidential\", \"public.customers.email\" = \"confidential\" }}\noperators = {{ phone = \"partial\" }}\n"
        );
        let s = shields(&tagged);
        let sens = |c: &ColumnInfo| column_shield(c, &s).map(|m| m.sensitivity);
        assert_eq!(
            sens(&col("customers", "notes", "text", None)),
            Some(Sensitivity::Tag("confidential".into()))
        );
        // The configured tag decides alone, before the name.
        assert_eq!(
            sens(&col("customers", "email", "text", None)),
            Some(Sensitivity::Tag("confidential".into()))
        );
        assert_eq!(
            sens(&col(
                "customers",
                "remark",
                "text",
                Some("free text; periscope:ssn")
            )),
            Some(Sensitivity::Entity(Entity::Ssn))
        );
        assert_eq!(
            sens(&col("sessions", "origin", "inet", None)),
            Some(Sensitivity::Entity(Entity::Ip))
        );
        assert_eq!(
            column_shield(&col("customers", "phone", "text", None), &s),
            Some(ColumnShield {
                sensitivity: Sensitivity::Entity(Entity::Phone),
                operator: Operator::Partial
            })
        );
        // Optional entity, detector off: still masked by name, with redact.
        assert_eq!(
            column_shield(&col("customers", "dob", "date", None), &s),
            Some(ColumnShield {
                sensitivity: Sensitivity::Entity(Entity::DateOfBirth),
                operator: Operator::Redact
            })
        );
        assert_eq!(
            sens(&col("pg_statistic", "stavalues1", "anyarray", None)),
            Some(Sensitivity::Sampled)
        );
        assert_eq!(sens(&col("customers", "name", "text", None)), None);
        assert_eq!(sens(&col("orders", "amount_cents", "int8", None)), None);
    }

    #[test]
    fn comment_tags_parse() {
        assert_eq!(
            comment_tag("holds periscope:email, see docs"),
            Some(MaskTarget::Entity(Entity::Email))
        );
        assert_eq!(
            comment_tag("periscope:internal-notes"),
            Some(MaskTarget::Tag("internal-notes".into()))
        );
        assert_eq!(comment_tag("nothing here"), None);
        assert_eq!(comment_tag("periscope:"), None);
    }

    #[test]
    fn builder_maps_attributes_to_columns() {
        let mut b = PgCatalog::builder();
        b.relation(16384, "public", "customers", RelationKind::Table, None)
            .column(16384, 1, "id", 20, "int8", None)
            .column(16384, 3, "email", 25, "text", Some("periscope:email"));
        let c = b.build();
        assert_eq!(c.column_by_attr(16384, 3).unwrap().column, "email");
        assert!(c.column_by_attr(16384, 2).is_none());
        assert_eq!(c.column("public", "customers", "id").unwrap().type_oid, 20);
        let rel = c
            .resolve(&TableName::bare("customers"), &["public".to_string()])
            .unwrap();
        assert_eq!(rel.columns, ["id", "email"]);
        assert!(c.is_fresh(Duration::from_secs(60)));
        c.mark_stale();
        assert!(!c.is_fresh(Duration::from_secs(60)));
    }
}
