//! What a shield stage knows of an upstream's data at rest: which relations
//! exist (for lineage through `*`, views and unqualified names), which
//! columns hold what (for masking), which functions are user-defined (their
//! results have unknown lineage), and, per session, whether a column's shield
//! is in force.
//!
//! A protocol's glue reads the catalog from its upstream (PostgreSQL:
//! `pg_catalog`) and builds a [`DataCatalog`] with a [`CatalogBuilder`]; the
//! sessions of a connection share it through a [`CatalogCache`]: loaded once,
//! reloaded when older than its TTL or after a DDL statement went through
//! (see [`DataCatalog::mark_stale`]).
//!
//! A column is classified, in priority order, by:
//!
//! 1. the system columns that hold copies of other columns' values or user
//!    data of no known class (PostgreSQL's `pg_statistic.stavalues*`,
//!    `pg_stats.most_common_vals`, `pg_largeobject.data`...), named by the
//!    glue ([`SystemCatalog`]): always masked whole, whatever the grants (see
//!    [`Sensitivity::Sampled`]);
//! 2. the connection's configured `tags` (`schema.table.column = "TAG"`);
//! 3. a `periscope:<entity or tag>` marker in the column's comment;
//! 4. for the system's own relations (PostgreSQL: `pg_catalog`,
//!    `information_schema`, and the output columns of their functions), the
//!    glue's short list of the columns that hold secrets (`secret`:
//!    `pg_authid.rolpassword`, FDW user mapping options, subscription
//!    connection strings) or other sessions' statement text (the tag
//!    [`QUERY_TEXT_TAG`]), and nothing by name: catalog names are not data
//!    (`pg_ts_parser.prstoken` is a function oid, not a token), and their
//!    text values are content-scanned like any other;
//! 5. its type (`inet`/`cidr` hold IP addresses, `macaddr` MAC addresses);
//! 6. its name ([`periscope_redact::classify_name`]), including optional
//!    entities whose detector is off (a column named `dob` is masked).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use periscope_policy::{MaskTarget, Shield, ShieldSet};
use periscope_redact::{Entity, Operator, classify_name};
use periscope_sql::{
    BuiltinFunction, Catalog, FunctionOutputs, Relation, RelationKind, StaticCatalog, TableName,
};

/// One catalog column, with what the masking stage needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Schema of its relation.
    pub schema: String,
    /// Its relation.
    pub table: String,
    /// Its name.
    pub column: String,
    /// The protocol's identifier of its type (PostgreSQL: the type OID), 0
    /// when unknown; the glue reads it back when it encodes values.
    pub type_id: u32,
    /// Type name (PostgreSQL: `pg_type.typname`).
    pub type_name: String,
    /// A `periscope:<entity or tag>` marker found in the column's comment.
    pub comment_tag: Option<MaskTarget>,
    /// What the glue's [`SystemCatalog`] says of it: `None` outside the
    /// system's own schemas.
    pub system: Option<SystemColumn>,
}

impl ColumnInfo {
    /// Whether it holds sampled copies of other columns' values (or user
    /// data of no known class): always masked whole.
    pub fn holds_samples(&self) -> bool {
        self.system == Some(SystemColumn::Samples)
    }
}

/// The class of a column of the system's own relations (or of a system
/// function's output), as the glue's [`SystemCatalog`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SystemColumn {
    /// Server metadata: not classified by name, content-scanned.
    Plain,
    /// Sampled copies of other columns' values, or user data of no known
    /// class: always masked whole ([`Sensitivity::Sampled`]).
    Samples,
    /// Credentials (password hashes, connection strings with passwords):
    /// the `secret` entity.
    Secret,
    /// Other sessions' statement text, which can hold any literal a
    /// detector misses (a name): masked whole as the tag
    /// [`QUERY_TEXT_TAG`], lifted by `unmask:query_text` where a
    /// connection's configuration names that tag.
    QueryText,
}

/// The tag other sessions' statement text is masked as.
pub const QUERY_TEXT_TAG: &str = "query_text";

/// What a protocol's glue says of its system catalog: which schemas are the
/// system's own, and the few of their columns that are not plain metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemCatalog {
    /// Schemas whose relations (and functions' outputs) are the system's
    /// own (PostgreSQL: `pg_catalog`, `information_schema`).
    pub schemas: &'static [&'static str],
    /// `(schema, relation or function, columns, class)`.
    pub columns: &'static [(
        &'static str,
        &'static str,
        &'static [&'static str],
        SystemColumn,
    )],
}

impl SystemCatalog {
    /// A catalog with no system schema: every column is classified as user
    /// data (tests, and protocols without a system catalog).
    pub const NONE: SystemCatalog = SystemCatalog {
        schemas: &[],
        columns: &[],
    };

    /// The class of a column, `None` outside the system schemas.
    pub fn classify(&self, schema: &str, table: &str, column: &str) -> Option<SystemColumn> {
        let listed = self.columns.iter().find_map(|(s, t, cols, class)| {
            (*s == schema && *t == table && cols.contains(&column)).then_some(*class)
        });
        match listed {
            Some(class) => Some(class),
            None if self.schemas.contains(&schema) => Some(SystemColumn::Plain),
            None => None,
        }
    }
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
    pub fn rank(&self) -> u8 {
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

/// The shield state of one column in a session: `None` when it is not
/// sensitive or a grant lifted its shield. `shields` carries the
/// connection's configured tags and the grants.
pub fn column_shield(column: &ColumnInfo, shields: &ShieldSet) -> Option<ColumnShield> {
    if column.holds_samples() {
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
    match column.system {
        Some(SystemColumn::Secret) => return entity_shield(Entity::Secret, shields),
        Some(SystemColumn::QueryText) => {
            return target_shield(&MaskTarget::Tag(QUERY_TEXT_TAG.to_string()), shields);
        }
        Some(SystemColumn::Plain | SystemColumn::Samples) | None => {}
    }
    let by_type = match column.type_name.as_str() {
        "inet" | "cidr" => Some(Entity::Ip),
        "macaddr" | "macaddr8" => Some(Entity::MacAddress),
        _ => None,
    };
    let by_name = || {
        if column.system.is_some() {
            None
        } else {
            classify_name(&column.column)
        }
    };
    let entity = by_type.or_else(by_name)?;
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
pub fn entity_shield(entity: Entity, shields: &ShieldSet) -> Option<ColumnShield> {
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
pub fn comment_tag(comment: &str) -> Option<MaskTarget> {
    let at = comment.find("periscope:")?;
    let rest = &comment[at + "periscope:".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The catalog of one upstream database, as the analysis and masking stages
/// need it.
#[derive(Debug)]
pub struct DataCatalog {
    relations: StaticCatalog,
    by_name: HashMap<(String, String, String), Arc<ColumnInfo>>,
    system: SystemCatalog,
    loaded_at: Instant,
    stale: AtomicBool,
}

impl Catalog for DataCatalog {
    fn resolve(&self, name: &TableName, search_path: &[String]) -> Option<Arc<Relation>> {
        self.relations.resolve(name, search_path)
    }

    fn version(&self) -> u64 {
        self.relations.version()
    }

    fn is_user_function(&self, name: &str, search_path: &[String]) -> bool {
        self.relations.is_user_function(name, search_path)
    }

    fn builtin_function(&self, name: &str, search_path: &[String]) -> Option<Arc<BuiltinFunction>> {
        self.relations.builtin_function(name, search_path)
    }
}

impl DataCatalog {
    /// A catalog built in memory: from rows the glue read upstream, or in
    /// tests.
    pub fn builder(system: SystemCatalog) -> CatalogBuilder {
        CatalogBuilder {
            system,
            ..CatalogBuilder::default()
        }
    }

    /// A column by schema, relation and name (what lineage reports).
    pub fn column(&self, schema: &str, table: &str, column: &str) -> Option<&ColumnInfo> {
        self.by_name
            .get(&(schema.to_string(), table.to_string(), column.to_string()))
            .map(Arc::as_ref)
    }

    /// What is known of a column the catalog does not list (a lineage source
    /// in a relation read after the catalog was loaded, or an output column
    /// of a system function): its names, and its system class.
    pub fn unlisted_column(&self, schema: &str, table: &str, column: &str) -> ColumnInfo {
        ColumnInfo {
            schema: schema.to_string(),
            table: table.to_string(),
            column: column.to_string(),
            type_id: 0,
            type_name: String::new(),
            comment_tag: None,
            system: self.system.classify(schema, table, column),
        }
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

/// Builds a [`DataCatalog`] from relation and column rows.
#[derive(Debug, Default)]
pub struct CatalogBuilder {
    system: SystemCatalog,
    relations: HashMap<u32, Relation>,
    order: Vec<u32>,
    columns: Vec<Option<ColumnInfo>>,
    functions: Vec<(String, String)>,
    builtins: Vec<(String, String, FunctionOutputs)>,
}

/// A built catalog and its columns in the order they were added, so the glue
/// can index them by its protocol's own column identifiers.
#[derive(Debug)]
pub struct BuiltCatalog {
    /// The catalog.
    pub catalog: DataCatalog,
    /// Every column added, in order (`None` for a column of a relation that
    /// was never added).
    pub columns: Vec<Option<Arc<ColumnInfo>>>,
}

impl CatalogBuilder {
    /// Adds a relation, identified by `id` (PostgreSQL: its OID) for the
    /// columns that follow with [`CatalogBuilder::column`].
    pub fn relation(
        &mut self,
        id: u32,
        schema: &str,
        name: &str,
        kind: RelationKind,
        definition: Option<String>,
    ) -> &mut Self {
        if self
            .relations
            .insert(
                id,
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
            self.order.push(id);
        }
        self
    }

    /// Adds a column of relation `id` (in column order), with its comment if
    /// any. A column of an unknown relation is ignored (its entry in
    /// [`BuiltCatalog::columns`] is `None`).
    pub fn column(
        &mut self,
        id: u32,
        name: &str,
        type_id: u32,
        type_name: &str,
        comment: Option<&str>,
    ) -> &mut Self {
        let info = self.relations.get_mut(&id).map(|relation| {
            relation.columns.push(name.to_string());
            ColumnInfo {
                schema: relation.schema.clone(),
                table: relation.name.clone(),
                column: name.to_string(),
                type_id,
                type_name: type_name.to_string(),
                comment_tag: comment.and_then(comment_tag),
                system: self.system.classify(&relation.schema, &relation.name, name),
            }
        });
        self.columns.push(info);
        self
    }

    /// Declares a user-defined function (its results have unknown lineage).
    pub fn user_function(&mut self, schema: &str, name: &str) -> &mut Self {
        self.functions.push((schema.to_string(), name.to_string()));
        self
    }

    /// Declares a built-in function's outputs (one call per overload), so
    /// the analysis knows its columns in FROM.
    pub fn builtin_function(
        &mut self,
        schema: &str,
        name: &str,
        outputs: FunctionOutputs,
    ) -> &mut Self {
        self.builtins
            .push((schema.to_string(), name.to_string(), outputs));
        self
    }

    /// The catalog alone.
    pub fn build(&mut self) -> DataCatalog {
        self.build_with_columns().catalog
    }

    /// The catalog and its columns in the order they were added.
    pub fn build_with_columns(&mut self) -> BuiltCatalog {
        let mut relations = StaticCatalog::new();
        for id in &self.order {
            if let Some(r) = self.relations.remove(id) {
                relations.insert(r);
            }
        }
        for (schema, name) in self.functions.drain(..) {
            relations.add_user_function(&schema, &name);
        }
        for (schema, name, outputs) in self.builtins.drain(..) {
            relations.add_builtin_function(&schema, &name, outputs);
        }
        let mut by_name = HashMap::with_capacity(self.columns.len());
        let mut columns = Vec::with_capacity(self.columns.len());
        for info in self.columns.drain(..) {
            let Some(info) = info else {
                columns.push(None);
                continue;
            };
            let info = Arc::new(info);
            by_name.insert(
                (info.schema.clone(), info.table.clone(), info.column.clone()),
                Arc::clone(&info),
            );
            columns.push(Some(info));
        }
        self.order.clear();
        BuiltCatalog {
            catalog: DataCatalog {
                relations,
                by_name,
                system: self.system,
                loaded_at: Instant::now(),
                stale: AtomicBool::new(false),
            },
            columns,
        }
    }
}

/// What a [`CatalogCache`] needs of the catalogs it keeps.
pub trait Cached: Send + Sync + 'static {
    /// Whether it may still serve new sessions.
    fn is_fresh(&self, ttl: Duration) -> bool;
    /// How many relations it knows (for the load log line).
    fn relation_count(&self) -> usize;
}

impl Cached for DataCatalog {
    fn is_fresh(&self, ttl: Duration) -> bool {
        DataCatalog::is_fresh(self, ttl)
    }

    fn relation_count(&self) -> usize {
        DataCatalog::relation_count(self)
    }
}

/// Catalogs by connection name, shared by the sessions of each connection.
#[derive(Debug)]
pub struct CatalogCache<C> {
    ttl: Duration,
    entries: Mutex<HashMap<String, Arc<C>>>,
    /// One load at a time per connection: sessions that arrive while the
    /// catalog is being read wait for that read instead of each starting
    /// their own (a burst of clients after a start would otherwise read it
    /// once per session, slowing every one of them down).
    loading: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// How long a catalog serves new sessions before it is read again.
pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(5 * 60);

impl<C: Cached> CatalogCache<C> {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> CatalogCache<C> {
        CatalogCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            loading: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<C>>> {
        // Every critical section is one get or insert.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, connection: &str) -> Option<Arc<C>> {
        self.lock()
            .get(connection)
            .filter(|c| c.is_fresh(self.ttl))
            .map(Arc::clone)
    }

    /// The catalog of `connection`: the cached one while fresh, else read by
    /// `load` (over the new session's own upstream connection) and cached;
    /// when another session is already reading it, wait for that read.
    pub async fn get_or_load<F, Fut, E>(&self, connection: &str, load: F) -> Result<Arc<C>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<C, E>>,
    {
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
        let loaded = Arc::new(load().await?);
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

    const SYSTEM: SystemCatalog = SystemCatalog {
        schemas: &["pg_catalog"],
        columns: &[
            (
                "pg_catalog",
                "pg_statistic",
                &["stavalues1"],
                SystemColumn::Samples,
            ),
            (
                "pg_catalog",
                "pg_authid",
                &["rolpassword"],
                SystemColumn::Secret,
            ),
            (
                "pg_catalog",
                "pg_stat_get_activity",
                &["query"],
                SystemColumn::QueryText,
            ),
        ],
    };

    fn col(table: &str, column: &str, ty: &str, comment: Option<&str>) -> ColumnInfo {
        let mut b = DataCatalog::builder(SYSTEM);
        let schema = if table.starts_with("pg_") {
            "pg_catalog"
        } else {
            "public"
        };
        b.relation(1, schema, table, RelationKind::Table, None)
            .column(1, column, 25, ty, comment);
        let built = b.build_with_columns();
        built.columns[0].as_deref().unwrap().clone()
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
    fn system_columns_follow_the_curated_list_not_their_names() {
        let s = shields(BASE);
        let sens = |c: &ColumnInfo| column_shield(c, &s).map(|m| m.sensitivity);
        // pg_dump reads prstoken (a function oid); a name is not data there.
        assert_eq!(sens(&col("pg_ts_parser", "prstoken", "oid", None)), None);
        assert_eq!(sens(&col("pg_roles", "rolpassword", "text", None)), None);
        assert_eq!(
            sens(&col("pg_authid", "rolpassword", "text", None)),
            Some(Sensitivity::Entity(Entity::Secret))
        );
        // Outside the system schemas, names still classify.
        assert_eq!(
            sens(&col("parsers", "prstoken", "text", None)),
            Some(Sensitivity::Entity(Entity::Secret))
        );
        // A system function's output column, as lineage names it.
        let c = DataCatalog::builder(SYSTEM).build();
        assert_eq!(
            sens(&c.unlisted_column("pg_catalog", "pg_stat_get_activity", "query")),
            Some(Sensitivity::Tag(QUERY_TEXT_TAG.into()))
        );
        assert_eq!(
            sens(&c.unlisted_column("pg_catalog", "pg_show_all_settings", "setting")),
            None
        );
        assert_eq!(
            sens(&c.unlisted_column("pg_catalog", "pg_get_keywords", "word")),
            None
        );
        // Types still classify system columns (other sessions' addresses).
        assert_eq!(
            sens(&col("pg_stat_ssl", "client_addr", "inet", None)),
            Some(Sensitivity::Entity(Entity::Ip))
        );
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
    fn builder_lists_columns_in_order_and_by_name() {
        let mut b = DataCatalog::builder(SYSTEM);
        b.relation(16384, "public", "customers", RelationKind::Table, None)
            .column(16384, "id", 20, "int8", None)
            .column(99, "orphan", 25, "text", None)
            .column(16384, "email", 25, "text", Some("periscope:email"));
        let built = b.build_with_columns();
        let names: Vec<Option<&str>> = built
            .columns
            .iter()
            .map(|c| c.as_ref().map(|c| c.column.as_str()))
            .collect();
        assert_eq!(names, [Some("id"), None, Some("email")]);
        let c = built.catalog;
        assert_eq!(c.column("public", "customers", "id").unwrap().type_id, 20);
        assert_eq!(
            c.column("public", "customers", "email")
                .unwrap()
                .comment_tag,
            Some(MaskTarget::Entity(Entity::Email))
        );
        let rel = c
            .resolve(&TableName::bare("customers"), &["public".to_string()])
            .unwrap();
        assert_eq!(rel.columns, ["id", "email"]);
        assert!(
            c.unlisted_column("pg_catalog", "pg_statistic", "stavalues1")
                .holds_samples()
        );
        assert!(
            !c.unlisted_column("public", "customers", "notes")
                .holds_samples()
        );
        assert!(c.is_fresh(Duration::from_secs(60)));
        c.mark_stale();
        assert!(!c.is_fresh(Duration::from_secs(60)));
    }
}
