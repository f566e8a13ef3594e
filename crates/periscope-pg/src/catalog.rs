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
use periscope_shield::catalog::{
    Cached, CatalogBuilder, ColumnInfo, DataCatalog, SystemCatalog, SystemColumn,
};
use periscope_sql::{FunctionOutputs, RelationKind};

/// PostgreSQL's system catalog for the shield stage: `pg_catalog` and
/// `information_schema` are the server's own (their columns, and the output
/// columns of their functions, are metadata: not classified by name,
/// content-scanned), except the few listed here.
///
/// - Sampled copies of other columns' values (`pg_statistic.stavalues*` and
///   the views over it) and large objects' bytes: user data of no known
///   class, always masked whole.
/// - Credentials: password hashes (`pg_authid`, `pg_shadow`), foreign
///   servers' user mapping options (they hold passwords), subscription
///   connection strings.
/// - Other sessions' statement text (`pg_stat_activity.query`, which the
///   view reads from `pg_stat_get_activity()`): the literals in it may be
///   anything a detector misses.
pub const SYSTEM: SystemCatalog = SystemCatalog {
    schemas: &["pg_catalog", "information_schema"],
    columns: &[
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
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_stats",
            &["most_common_vals", "histogram_bounds", "most_common_elems"],
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_stats_ext",
            &["most_common_vals"],
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_stats_ext_exprs",
            &["most_common_vals", "histogram_bounds", "most_common_elems"],
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_statistic_ext_data",
            &["stxdmcv", "stxdexpr"],
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_largeobject",
            &["data"],
            SystemColumn::Samples,
        ),
        (
            "pg_catalog",
            "pg_authid",
            &["rolpassword"],
            SystemColumn::Secret,
        ),
        ("pg_catalog", "pg_shadow", &["passwd"], SystemColumn::Secret),
        (
            "pg_catalog",
            "pg_user_mapping",
            &["umoptions"],
            SystemColumn::Secret,
        ),
        (
            "pg_catalog",
            "pg_user_mappings",
            &["umoptions"],
            SystemColumn::Secret,
        ),
        (
            "information_schema",
            "_pg_user_mappings",
            &["umoptions"],
            SystemColumn::Secret,
        ),
        (
            "information_schema",
            "user_mapping_options",
            &["option_value"],
            SystemColumn::Secret,
        ),
        (
            "pg_catalog",
            "pg_subscription",
            &["subconninfo"],
            SystemColumn::Secret,
        ),
        (
            "pg_catalog",
            "pg_stat_get_activity",
            &["query"],
            SystemColumn::QueryText,
        ),
        (
            "pg_catalog",
            "pg_stat_activity",
            &["query"],
            SystemColumn::QueryText,
        ),
    ],
};

/// The catalog of one upstream database, with PostgreSQL's column index.
#[derive(Debug)]
pub struct PgCatalog {
    data: Arc<DataCatalog>,
    by_attr: HashMap<(u32, i16), Arc<ColumnInfo>>,
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

/// The outputs of the functions of the system schemas (plain functions,
/// not aggregates or procedures), one row per overload: `c` and the output
/// column names for `OUT`/`TABLE` parameters or a composite return type,
/// `s` for a base type, `u` for a polymorphic or pseudo-type result whose
/// columns depend on the call. Names are joined with commas (no built-in
/// output name holds one).
const BUILTINS_SQL: &str = "\
SELECT n.nspname, p.proname, \
       CASE WHEN o.outs > 0 AND o.named = o.outs THEN 'c' \
            WHEN o.outs > 0 THEN 'u' \
            WHEN t.typrelid <> 0 THEN 'c' \
            WHEN t.typtype IN ('b', 'd', 'e', 'r', 'm') THEN 's' \
            ELSE 'u' END, \
       CASE WHEN o.outs > 0 THEN o.names \
            WHEN t.typrelid <> 0 THEN \
                 (SELECT pg_catalog.string_agg(at.attname, ',' ORDER BY at.attnum) \
                    FROM pg_catalog.pg_attribute at \
                   WHERE at.attrelid = t.typrelid AND at.attnum > 0 AND NOT at.attisdropped) \
       END \
  FROM pg_catalog.pg_proc p \
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
  JOIN pg_catalog.pg_type t ON t.oid = p.prorettype \
  LEFT JOIN LATERAL \
       (SELECT pg_catalog.count(*) AS outs, \
               pg_catalog.count(NULLIF(a.name, '')) AS named, \
               pg_catalog.string_agg(a.name, ',' ORDER BY a.i) AS names \
          FROM ROWS FROM (pg_catalog.unnest(p.proargmodes), pg_catalog.unnest(p.proargnames)) \
               WITH ORDINALITY AS a(mode, name, i) \
         WHERE a.mode IN ('o', 'b', 't')) o ON true \
 WHERE n.nspname IN ('pg_catalog', 'information_schema') AND p.prokind = 'f'";

/// What a row of [`BUILTINS_SQL`] says a function returns; `None` when its
/// columns depend on the call.
fn builtin_outputs(kind: &str, columns: Option<&str>) -> FunctionOutputs {
    match (kind, columns) {
        ("s", _) => FunctionOutputs::Scalar,
        ("c", Some(names)) if !names.is_empty() => {
            FunctionOutputs::Columns(names.split(',').map(str::to_string).collect())
        }
        _ => FunctionOutputs::Dynamic,
    }
}

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
        let sql = format!("{RELATIONS_SQL}; {COLUMNS_SQL}; {FUNCTIONS_SQL}; {BUILTINS_SQL}");
        let results = upstream.simple_query(&sql).await?;
        let [relations, columns, functions, builtins] = <[Vec<TextRow>; 4]>::try_from(results)
            .map_err(|_| CatalogError::Shape("four result sets"))?;

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
        for row in &builtins {
            let kind = text(row, 2, "function result kind")?;
            let columns = row.get(3).cloned().flatten();
            builder.builtin_function(
                &text(row, 0, "schema")?,
                &text(row, 1, "function")?,
                builtin_outputs(&kind, columns.as_deref()),
            );
        }
        Ok(builder.build())
    }

    /// A catalog built in memory (tests, or a gateway that knows the schema).
    pub fn builder() -> PgCatalogBuilder {
        PgCatalogBuilder {
            inner: DataCatalog::builder(SYSTEM),
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

    /// Declares a built-in function's outputs (one call per overload).
    pub fn builtin_function(
        &mut self,
        schema: &str,
        name: &str,
        outputs: FunctionOutputs,
    ) -> &mut Self {
        self.inner.builtin_function(schema, name, outputs);
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
    use periscope_sql::{Catalog, TableName};

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
            .data()
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
        assert!(!c.column_by_attr(2619, 1).unwrap().holds_samples());
        assert!(c.column_by_attr(2619, 22).unwrap().holds_samples());
        assert!(
            c.data()
                .unlisted_column("pg_catalog", "pg_stats", "most_common_vals")
                .holds_samples()
        );
    }
}
