//! Facts found by visiting every node of a statement, whatever its position.
//!
//! The lineage walker only follows the paths that shape output columns. A
//! dangerous function or a table can hide anywhere else (a DEFAULT, ORDER BY,
//! a cast argument, an index expression), so functions, relation names, row
//! locks and nested data-modifying statements are collected with sqlparser's
//! visitor, which reaches every expression of every statement kind.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, ObjectName, ObjectNamePart, Query, Statement, TableFactor, Visit, Visitor,
};

use crate::SqlDialect;
use crate::catalog::TableName;
use crate::lineage::fold_ident;

/// What the visitor found in one statement.
#[derive(Debug, Default)]
pub(crate) struct VisitFacts {
    pub(crate) functions: BTreeSet<String>,
    /// Relation names as written, excluding table functions.
    pub(crate) relations: Vec<TableName>,
    /// Names bound by WITH anywhere in the statement.
    pub(crate) cte_names: BTreeSet<String>,
    pub(crate) locks: bool,
    /// A nested INSERT/UPDATE/DELETE/MERGE (data-modifying CTE).
    pub(crate) nested_write: bool,
}

struct FactVisitor {
    dialect: SqlDialect,
    facts: VisitFacts,
    /// The next relation visited is a table function's name, not a relation.
    skip_next_relation: bool,
    depth: usize,
}

fn object_name(dialect: SqlDialect, name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => fold_ident(dialect, i),
            ObjectNamePart::Function(f) => fold_ident(dialect, &f.name),
        })
        .collect()
}

/// A function's name as recorded: lowercased (unless quoted), with its schema
/// when written.
pub(crate) fn function_name(dialect: SqlDialect, name: &ObjectName) -> String {
    let parts = object_name(dialect, name);
    let n = parts.len();
    parts[n.saturating_sub(2)..].join(".")
}

impl Visitor for FactVisitor {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            self.facts
                .functions
                .insert(function_name(self.dialect, &f.name));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Function { name, .. } => {
                self.facts
                    .functions
                    .insert(function_name(self.dialect, name));
            }
            TableFactor::Table {
                name,
                args: Some(_),
                ..
            } => {
                self.facts
                    .functions
                    .insert(function_name(self.dialect, name));
                self.skip_next_relation = true;
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, r: &ObjectName) -> ControlFlow<()> {
        if std::mem::take(&mut self.skip_next_relation) {
            return ControlFlow::Continue(());
        }
        let mut parts = object_name(self.dialect, r);
        let name = parts.pop().unwrap_or_default();
        self.facts.relations.push(TableName {
            schema: parts.pop(),
            name,
        });
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if !q.locks.is_empty() {
            self.facts.locks = true;
        }
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.facts
                    .cte_names
                    .insert(fold_ident(self.dialect, &cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, st: &Statement) -> ControlFlow<()> {
        self.depth += 1;
        if self.depth > 1
            && matches!(
                st,
                Statement::Insert(_)
                    | Statement::Update(_)
                    | Statement::Delete(_)
                    | Statement::Merge(_)
            )
        {
            self.facts.nested_write = true;
        }
        if let Statement::Call(f) = st {
            self.facts
                .functions
                .insert(function_name(self.dialect, &f.name));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, _st: &Statement) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// Visits the whole statement.
pub(crate) fn visit(st: &Statement, dialect: SqlDialect) -> VisitFacts {
    let mut v = FactVisitor {
        dialect,
        facts: VisitFacts::default(),
        skip_next_relation: false,
        depth: 0,
    };
    let _ = st.visit(&mut v);
    v.facts
}

/// Only the function names of a statement.
pub(crate) fn function_names(st: &Statement, dialect: SqlDialect, out: &mut BTreeSet<String>) {
    out.extend(visit(st, dialect).functions);
}

/// Functions that modify data or persistent state when merely selected.
/// (The proxy's denylist of dangerous functions is a separate, policy matter.)
pub(crate) const WRITING_FUNCTIONS: &[&str] = &[
    "nextval",
    "setval",
    "lo_create",
    "lo_creat",
    "lo_import",
    "lo_unlink",
    "lo_put",
    "lo_from_bytea",
    "lowrite",
    "lo_truncate",
    "lo_truncate64",
    "dblink_exec",
    "pg_create_restore_point",
    "pg_switch_wal",
    "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot",
    "pg_drop_replication_slot",
];

/// Built-in functions whose result comes from tables (or files, or large
/// objects) named in their arguments rather than from the arguments' values:
/// their lineage is unknown. `query_to_xml('select email from customers', ..)`
/// passes only a literal, yet returns e-mail addresses.
pub(crate) const TABLE_READING_FUNCTIONS: &[&str] = &[
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "cursor_to_xml",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "ts_stat",
    "dblink",
    "dblink_fetch",
    "dblink_get_result",
    "lo_get",
    "loread",
    "pg_read_file",
    "pg_read_binary_file",
];

/// Prefixes of built-in function families whose rows are not server
/// metadata: files and directory listings, decoded WAL changes of any table,
/// other servers' rows, large objects. In FROM their columns stay unknown
/// whatever the catalog says of their outputs (most are also refused by the
/// proxy's function shields).
const OPAQUE_PREFIXES: &[&str] = &[
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_logical_slot_",
    "pg_logical_emit_",
    "dblink",
    "lo_",
];

/// Whether a built-in function's rows may hold table data, files or other
/// servers' values (see [`OPAQUE_PREFIXES`] and [`TABLE_READING_FUNCTIONS`]).
pub(crate) fn is_opaque_builtin(name: &str) -> bool {
    let base = name.rsplit('.').next().unwrap_or(name);
    is_in(base, TABLE_READING_FUNCTIONS) || OPAQUE_PREFIXES.iter().any(|p| base.starts_with(p))
}

/// Whether a recorded function name (possibly schema-qualified) is in `list`.
pub(crate) fn is_in(name: &str, list: &[&str]) -> bool {
    let base = name.rsplit('.').next().unwrap_or(name);
    list.contains(&base)
}
