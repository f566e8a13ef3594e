//! SQL analysis for Periscope: what a statement does and where each of its
//! output columns comes from.
//!
//! The PostgreSQL proxy calls [`analyze`] for every query string an engineer
//! sends, before forwarding it upstream, to decide
//!
//! - whether it is blocked: its [`StatementClass`] (writes, DDL, COPY to a
//!   program, `DO` blocks...), data-modifying CTEs, `nextval`, row locks,
//!   `UPDATE`/`DELETE` without `WHERE`, and every function called anywhere;
//! - which output columns must be masked: each output column's [`Lineage`], the
//!   set of catalog columns it derives from through aliases, CTEs, subqueries,
//!   joins, set operations, views and any expression, or `Unknown` when that
//!   cannot be established (fail closed);
//! - what the audit log records: the statement with every literal replaced by
//!   `?` ([`StatementAnalysis::normalized`]), even for text that does not parse
//!   ([`scrub_literals`]).
//!
//! The crate is pure (no I/O, no async) and knows nothing of policies: the
//! [`Catalog`] trait supplies relations and view definitions, and the proxy
//! maps source columns to sensitive entities. It is a crate of its own, not part
//! of the PostgreSQL proxy, so that a MySQL proxy can reuse it with another
//! [`SqlDialect`].
//!
//! ```
//! use periscope_sql::{analyze, AnalyzeOptions, ColumnRef, Lineage, StaticCatalog};
//!
//! let mut catalog = StaticCatalog::new();
//! catalog.add_table("public", "customers", &["id", "email"]);
//! let a = analyze(
//!     "SELECT id, upper(email) AS e FROM customers WHERE id = 42",
//!     &catalog,
//!     &AnalyzeOptions::default(),
//! )?;
//! let st = &a.statements[0];
//! assert_eq!(st.normalized, "SELECT id, upper(email) AS e FROM customers WHERE id = ?");
//! assert_eq!(st.outputs[1].name, "e");
//! let email = ColumnRef::new("public", "customers", "email");
//! assert_eq!(
//!     st.outputs[1].lineage,
//!     Lineage::Sources { columns: [email].into(), transformed: true },
//! );
//! # Ok::<(), periscope_sql::AnalyzeError>(())
//! ```

mod analyze;
mod cache;
mod catalog;
mod copy;
mod effects;
mod error;
mod facts;
mod lexer;
mod lineage;
mod model;
mod settings;

pub use analyze::analyze;
pub use cache::{AnalysisCache, CacheStats};
pub use catalog::{
    BuiltinFunction, Catalog, FunctionOutputs, Relation, RelationKind, StaticCatalog, TableName,
};
pub use copy::{CopyFormat, CopyRowFormat};
pub use effects::SessionEffect;
pub use error::AnalyzeError;
pub use model::{
    Analysis, ColumnRef, CopySource, CopyTarget, Lineage, LockMode, OutputColumn, RowEncoding,
    RowField, StatementAnalysis, StatementClass,
};
pub use settings::{SettingChange, SettingValue};

/// The SQL dialect to parse and fold identifiers with.
///
/// Only PostgreSQL exists today; the MySQL proxy will add its variant (its
/// identifier folding, quoting and lexical rules differ), which is why every
/// dialect-dependent rule in this crate goes through this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SqlDialect {
    /// PostgreSQL, as spoken by `psql` and PostgreSQL drivers.
    #[default]
    PostgreSql,
}

impl SqlDialect {
    pub(crate) fn parser_dialect(self) -> Box<dyn sqlparser::dialect::Dialect> {
        match self {
            SqlDialect::PostgreSql => Box::new(sqlparser::dialect::PostgreSqlDialect {}),
        }
    }
}

/// How to analyse: dialect, name resolution and safety limits.
///
/// Part of the cache key: the same text under another `search_path` can read
/// other tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnalyzeOptions {
    /// The dialect of the query text.
    pub dialect: SqlDialect,
    /// The session's `search_path` at the start of the query string; a
    /// `SET search_path` inside the string applies to the statements after it.
    /// `$user` is handed to the catalog as is (the proxy knows the user;
    /// [`StaticCatalog`] skips it).
    pub search_path: Vec<String>,
    /// The parser's recursion limit (nesting of expressions and subqueries):
    /// deeper input is refused with [`AnalyzeError::TooDeep`].
    pub parser_recursion_limit: usize,
    /// The lineage walker's own depth limit, which also covers view expansion.
    pub max_depth: usize,
    /// The longest chain of operators at one nesting level (`a || b || ...`)
    /// accepted: such chains build trees as deep as they are long without
    /// tripping the parser's recursion limit.
    pub max_operator_chain: usize,
    /// How many views may nest inside one another before lineage gives up
    /// (their columns become unknown).
    pub max_view_depth: usize,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            dialect: SqlDialect::PostgreSql,
            search_path: vec!["$user".to_owned(), "public".to_owned()],
            parser_recursion_limit: 100,
            max_depth: 1000,
            max_operator_chain: 2000,
            max_view_depth: 16,
        }
    }
}

/// Replaces every literal in `sql` by `?`, drops comments and collapses
/// whitespace, without parsing.
///
/// For the audit log of text that did not parse (it must still be recorded,
/// without the personal data its literals may hold). It never fails: an
/// unterminated literal hides everything after its opening quote.
pub fn scrub_literals(sql: &str, dialect: SqlDialect) -> String {
    lexer::render_normalized(sql, &lexer::lex(sql, dialect))
}

/// The fingerprint [`StatementAnalysis::fingerprint`] uses, for callers that
/// need the same key for a [`scrub_literals`] text.
pub fn fingerprint(normalized: &str) -> u64 {
    lexer::fnv1a(normalized.as_bytes())
}
