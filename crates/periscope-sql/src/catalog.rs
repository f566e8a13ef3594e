//! What the analysis needs to know about the database: relations and their columns.
//!
//! Lineage through `SELECT *`, views and unqualified column names is impossible
//! without the upstream schema, yet this crate does no I/O. The [`Catalog`] trait
//! is the seam: the PostgreSQL proxy implements it from `pg_catalog` queries
//! (read once per connection and refreshed), tests fill a [`StaticCatalog`].

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

/// A possibly schema-qualified relation name, as written or as resolved.
///
/// Names are already case-folded the way the dialect folds identifiers
/// (PostgreSQL: unquoted names lowercased, quoted names kept).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    /// The schema, when written or once resolved through the catalog.
    pub schema: Option<String>,
    /// The relation name.
    pub name: String,
}

impl TableName {
    /// A name with an explicit schema, as catalogs and tests mostly write them.
    pub fn qualified(schema: &str, name: &str) -> Self {
        TableName {
            schema: Some(schema.to_owned()),
            name: name.to_owned(),
        }
    }

    /// A name without a schema, resolved through the `search_path`.
    pub fn bare(name: &str) -> Self {
        TableName {
            schema: None,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// The kind of a relation, as `pg_class.relkind` tells it.
///
/// It matters because views and materialized views carry a definition that the
/// lineage goes through, while tables are where sources end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelationKind {
    /// An ordinary table (`r`).
    Table,
    /// A partitioned table (`p`).
    PartitionedTable,
    /// A view (`v`); its definition is expanded.
    View,
    /// A materialized view (`m`); its definition is expanded too, because its
    /// stored rows derive from the columns it was built from.
    MaterializedView,
    /// A foreign table (`f`).
    ForeignTable,
    /// A sequence (`S`); `SELECT * FROM seq` is legal.
    Sequence,
    /// Anything else that can appear in FROM (composite types, ...).
    Other,
}

impl RelationKind {
    /// Maps a `pg_class.relkind` letter, so the proxy's catalog query can pass it
    /// through without its own table.
    pub fn from_relkind(relkind: char) -> Self {
        match relkind {
            'r' => RelationKind::Table,
            'p' => RelationKind::PartitionedTable,
            'v' => RelationKind::View,
            'm' => RelationKind::MaterializedView,
            'f' => RelationKind::ForeignTable,
            'S' => RelationKind::Sequence,
            _ => RelationKind::Other,
        }
    }
}

/// One relation the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The schema it lives in.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Table, view, ...
    pub kind: RelationKind,
    /// Column names in attribute order (dropped columns excluded), which is the
    /// order `SELECT *` returns them in.
    pub columns: Vec<String>,
    /// For views and materialized views: the defining query as
    /// `pg_get_viewdef` prints it, so lineage can go through it.
    pub definition: Option<String>,
}

impl Relation {
    /// The relation's own qualified name.
    pub fn table_name(&self) -> TableName {
        TableName::qualified(&self.schema, &self.name)
    }
}

/// What a built-in function returns when it is used in `FROM`: the result
/// columns a query can name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FunctionOutputs {
    /// One value per row (a scalar or `SETOF` a base type): one column,
    /// named after the function or its alias.
    Scalar,
    /// Named columns, from `OUT`/`TABLE` parameters or a composite return
    /// type, in order.
    Columns(Vec<String>),
    /// Columns that depend on the call (a polymorphic or `record` result
    /// without `OUT` parameters): unknown.
    Dynamic,
}

/// A built-in function's outputs, as the catalog knows them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BuiltinFunction {
    /// The schema it lives in (`pg_catalog`), which lineage names as the
    /// source's schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// What it returns.
    pub outputs: FunctionOutputs,
}

/// Resolves relation names to relations.
///
/// Implementations must be cheap to call: the analysis calls `resolve` once per
/// relation reference. Returning `None` makes every column read from that name
/// [`Lineage::Unknown`](crate::Lineage::Unknown) (fail closed).
pub trait Catalog {
    /// Resolves `name` the way PostgreSQL would under `search_path`: a qualified
    /// name is looked up as is; a bare name in `pg_catalog` first (unless the path
    /// places it explicitly) and then in each schema of the path in order.
    fn resolve(&self, name: &TableName, search_path: &[String]) -> Option<Arc<Relation>>;

    /// A number that changes whenever the catalog's content changes, so cached
    /// analyses made against an older catalog are discarded.
    fn version(&self) -> u64 {
        0
    }

    /// Whether `name` (lowercase, possibly `schema.name`) is a user-defined
    /// function. Such a function can read any table, so a value it returns has
    /// unknown lineage. The proxy answers from `pg_proc` outside the system
    /// schemas; the default knows none.
    fn is_user_function(&self, name: &str, search_path: &[String]) -> bool {
        let _ = (name, search_path);
        false
    }

    /// The outputs of a built-in function (PostgreSQL: one in `pg_catalog`
    /// or `information_schema`) called in `FROM`, so the analysis knows
    /// which columns it gives (`pg_settings` is a view over
    /// `pg_show_all_settings()`). `None` when unknown (its columns then have
    /// unknown lineage) or when overloads of the name disagree. The proxy
    /// answers from `pg_proc`; the default knows none.
    fn builtin_function(&self, name: &str, search_path: &[String]) -> Option<Arc<BuiltinFunction>> {
        let _ = (name, search_path);
        None
    }
}

/// An in-memory catalog, for tests and for the proxy to fill from `pg_catalog`.
#[derive(Debug, Clone, Default)]
pub struct StaticCatalog {
    relations: HashMap<(String, String), Arc<Relation>>,
    user_functions: HashSet<(String, String)>,
    /// Built-in functions by (schema, name); `None` when overloads disagree.
    builtins: HashMap<(String, String), Option<Arc<BuiltinFunction>>>,
    version: u64,
}

impl StaticCatalog {
    /// An empty catalog: every relation is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a relation and bumps the version, so caches notice.
    pub fn insert(&mut self, relation: Relation) {
        self.relations.insert(
            (relation.schema.clone(), relation.name.clone()),
            Arc::new(relation),
        );
        self.version += 1;
    }

    /// Adds a table with the given columns: the common case in fixtures.
    pub fn add_table(&mut self, schema: &str, name: &str, columns: &[&str]) {
        self.insert(Relation {
            schema: schema.to_owned(),
            name: name.to_owned(),
            kind: RelationKind::Table,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            definition: None,
        });
    }

    /// Adds a view with its output columns and definition.
    pub fn add_view(&mut self, schema: &str, name: &str, columns: &[&str], definition: &str) {
        self.insert(Relation {
            schema: schema.to_owned(),
            name: name.to_owned(),
            kind: RelationKind::View,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            definition: Some(definition.to_owned()),
        });
    }

    /// Declares a user-defined function (its results get unknown lineage).
    pub fn add_user_function(&mut self, schema: &str, name: &str) {
        self.user_functions
            .insert((schema.to_owned(), name.to_owned()));
        self.version += 1;
    }

    /// Declares a built-in function's outputs. Called once per overload: when
    /// overloads of one name return different columns, the name's outputs
    /// become unknown (fail closed).
    pub fn add_builtin_function(&mut self, schema: &str, name: &str, outputs: FunctionOutputs) {
        let key = (schema.to_owned(), name.to_owned());
        let new = Arc::new(BuiltinFunction {
            schema: schema.to_owned(),
            name: name.to_owned(),
            outputs,
        });
        self.builtins
            .entry(key)
            .and_modify(|known| {
                if known.as_ref().is_some_and(|k| k.outputs != new.outputs) {
                    *known = None;
                }
            })
            .or_insert_with(|| Some(Arc::clone(&new)));
        self.version += 1;
    }

    /// Removes every relation and bumps the version (a catalog refresh starts so).
    pub fn clear(&mut self) {
        self.relations.clear();
        self.user_functions.clear();
        self.builtins.clear();
        self.version += 1;
    }

    /// How many relations are known.
    pub fn len(&self) -> usize {
        self.relations.len()
    }

    /// Whether no relation is known.
    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }

    fn get(&self, schema: &str, name: &str) -> Option<Arc<Relation>> {
        self.relations
            .get(&(schema.to_owned(), name.to_owned()))
            .cloned()
    }
}

impl Catalog for StaticCatalog {
    fn resolve(&self, name: &TableName, search_path: &[String]) -> Option<Arc<Relation>> {
        if let Some(schema) = &name.schema {
            return self.get(schema, &name.name);
        }
        let explicit_pg_catalog = search_path.iter().any(|s| s == "pg_catalog");
        if !explicit_pg_catalog && let Some(r) = self.get("pg_catalog", &name.name) {
            return Some(r);
        }
        search_path
            .iter()
            .filter(|s| s.as_str() != "$user")
            .find_map(|s| self.get(s, &name.name))
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn is_user_function(&self, name: &str, search_path: &[String]) -> bool {
        match name.rsplit_once('.') {
            Some((schema, n)) => {
                let schema = schema.rsplit('.').next().unwrap_or(schema);
                self.user_functions
                    .contains(&(schema.to_owned(), n.to_owned()))
            }
            None => search_path
                .iter()
                .any(|s| self.user_functions.contains(&(s.clone(), name.to_owned()))),
        }
    }

    fn builtin_function(&self, name: &str, search_path: &[String]) -> Option<Arc<BuiltinFunction>> {
        let get = |schema: &str, n: &str| {
            self.builtins
                .get(&(schema.to_owned(), n.to_owned()))
                .cloned()
                .flatten()
                .filter(|f| f.outputs != FunctionOutputs::Dynamic)
        };
        match name.rsplit_once('.') {
            Some((schema, n)) => get(schema.rsplit('.').next().unwrap_or(schema), n),
            // A user function of that name earlier on the path would win
            // (the analysis asks `is_user_function` first); pg_catalog comes
            // first unless the path places it.
            None => std::iter::once("pg_catalog")
                .chain(search_path.iter().map(String::as_str))
                .find_map(|s| get(s, name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_follow_the_search_path_with_pg_catalog_first() {
        let mut c = StaticCatalog::new();
        c.add_table("public", "t", &["a"]);
        c.add_table("app", "t", &["b"]);
        c.add_table("pg_catalog", "pg_class", &["oid"]);
        let path = |p: &[&str]| p.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let r = c.resolve(&TableName::bare("t"), &path(&["app", "public"]));
        assert_eq!(r.map(|r| r.schema.clone()).as_deref(), Some("app"));
        let r = c.resolve(&TableName::bare("t"), &path(&["$user", "public"]));
        assert_eq!(r.map(|r| r.schema.clone()).as_deref(), Some("public"));
        assert!(
            c.resolve(&TableName::bare("pg_class"), &path(&["public"]))
                .is_some()
        );
        assert!(
            c.resolve(&TableName::qualified("other", "t"), &path(&["public"]))
                .is_none()
        );
    }

    #[test]
    fn every_change_bumps_the_version() {
        let mut c = StaticCatalog::new();
        let v0 = c.version();
        c.add_table("public", "t", &["a"]);
        let v1 = c.version();
        c.clear();
        assert!(v0 < v1 && v1 < c.version());
    }
}
