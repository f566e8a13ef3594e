//! The upstream catalog as PostgreSQL describes it: the relations, columns
//! and functions of `pg_catalog`, read over the session's own upstream
//! connection before the relay starts ([`PgCatalog::load`]), and the index
//! from a RowDescription field (table OID, attribute number) to the column
//! it names. What the columns hold, and how they are shared per connection,
//! is the shield stage's ([`periscope_shield::catalog`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use periscope_pg_wire::{TextRow, UpstreamQueryError, UpstreamSession};
use periscope_shield::catalog::{Cached, CatalogBuilder, ColumnInfo, DataCatalog, SampledColumns};
use periscope_sql::{Catalog, Relation, RelationKind, TableName};

/// PostgreSQL's system columns that hold sampled copies of other columns'
/// values: always masked whole, whatever the grants.
pub const SAMPLED: SampledColumns = &[
    (
        "pg_catalog",
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
        "pg_catalog",
        "pg_stats",
        &["most_common_vals", "histogram_bounds", "most_common_elems"],
    ),
    ("pg_catalog", "pg_stats_ext", &["most_common_vals"]),
    (
        "pg_catalog",
        "pg_stats_ext_exprs",
        &["most_common_vals", "histogram_bounds", "most_common_elems"],
    ),
    (
        "pg_catalog",
        "pg_statistic_ext_data",
        &["stxdmcv", "stxdexpr"],
    ),
];

/// The catalog of one upstream database, with PostgreSQL's column index.
#[derive(Debug)]
pub struct PgCatalog {
    data: Arc<DataCatalog>,
    by_attr: HashMap<(u32, i16), Arc<ColumnInfo>>,
}

impl Catalog for PgCatalog {
    fn resolve(&self, name: &TableName, search_path: &[String]) -> Option<Arc<Relation>> {
        self.data.resolve(name, search_path)
    }

    fn version(&self) -> u64 {
        self.data.version()
    }

    fn is_user_function(&self, name: &str, search_path: &[String]) -> bool {
        self.data.is_user_function(name, search_path)
    }
}

impl Cached for PgCatalog {
    fn is_fresh(&self, ttl: Duration) -> bool {
        self.data.is_fresh(ttl)
    }

    fn relation_count(&self) -> usize {
        self.data.relation_count()
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

        let mut builder = PgCatalog::builder();
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
    pub fn builder() -> PgCatalogBuilder {
        PgCatalogBuilder {
            inner: DataCatalog::builder(SAMPLED),
            attrs: Vec::new(),
        }
    }

    /// The protocol-neutral catalog the analysis and masking stages read.
    pub fn data(&self) -> &Arc<DataCatalog> {
        &self.data
    }

    /// The column a RowDescription field names (table OID and attribute
    /// number), when it is a catalog column.
    pub fn column_by_attr(&self, table_oid: u32, attnum: i16) -> Option<&ColumnInfo> {
        self.by_attr.get(&(table_oid, attnum)).map(Arc::as_ref)
    }

    /// A column by schema, relation and name (what lineage reports).
    pub fn column(&self, schema: &str, table: &str, column: &str) -> Option<&ColumnInfo> {
        self.data.column(schema, table, column)
    }

    /// Marks the catalog out of date (a DDL statement went through): the
    /// next session of the connection reloads it.
    pub fn mark_stale(&self) {
        self.data.mark_stale();
    }
}

/// Builds a [`PgCatalog`] from relation and column rows, keeping each
/// column's attribute number.
#[derive(Debug)]
pub struct PgCatalogBuilder {
    inner: CatalogBuilder,
    /// `(table OID, attribute number)` of each column, in the order added.
    attrs: Vec<(u32, i16)>,
}

impl PgCatalogBuilder {
    /// Adds a relation; its columns follow with [`PgCatalogBuilder::column`].
    pub fn relation(
        &mut self,
        oid: u32,
        schema: &str,
        name: &str,
        kind: RelationKind,
        definition: Option<String>,
    ) -> &mut Self {
        self.inner.relation(oid, schema, name, kind, definition);
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
        self.inner.column(oid, name, type_oid, type_name, comment);
        self.attrs.push((oid, attnum));
        self
    }

    /// Declares a user-defined function (its results have unknown lineage).
    pub fn user_function(&mut self, schema: &str, name: &str) -> &mut Self {
        self.inner.user_function(schema, name);
        self
    }

    /// The catalog.
    pub fn build(&mut self) -> PgCatalog {
        let built = self.inner.build_with_columns();
        let by_attr = self
            .attrs
            .drain(..)
            .zip(built.columns)
            .filter_map(|(attr, info)| Some((attr, info?)))
            .collect();
        PgCatalog {
            data: Arc::new(built.catalog),
            by_attr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_maps_attributes_to_columns() {
        let mut b = PgCatalog::builder();
        b.relation(16384, "public", "customers", RelationKind::Table, None)
            .column(16384, 1, "id", 20, "int8", None)
            .column(16384, 3, "email", 25, "text", Some("periscope:email"));
        let c = b.build();
        assert_eq!(c.column_by_attr(16384, 3).unwrap().column, "email");
        assert!(c.column_by_attr(16384, 2).is_none());
        assert_eq!(c.column("public", "customers", "id").unwrap().type_id, 20);
        let rel = c
            .resolve(&TableName::bare("customers"), &["public".to_string()])
            .unwrap();
        assert_eq!(rel.columns, ["id", "email"]);
        assert!(c.is_fresh(Duration::from_secs(60)));
        c.mark_stale();
        assert!(!c.is_fresh(Duration::from_secs(60)));
    }

    #[test]
    fn statistics_columns_hold_samples() {
        let mut b = PgCatalog::builder();
        b.relation(
            2619,
            "pg_catalog",
            "pg_statistic",
            RelationKind::Table,
            None,
        )
        .column(2619, 1, "starelid", 26, "oid", None)
        .column(2619, 22, "stavalues1", 2277, "anyarray", None);
        let c = b.build();
        assert!(!c.column_by_attr(2619, 1).unwrap().holds_samples);
        assert!(c.column_by_attr(2619, 22).unwrap().holds_samples);
        assert!(
            c.data()
                .unlisted_column("pg_catalog", "pg_stats", "most_common_vals")
                .holds_samples
        );
    }
}
