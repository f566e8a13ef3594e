//! Column lineage: for each output column, the catalog columns it derives from.
//!
//! The walker evaluates a query bottom-up the way PostgreSQL's analyser binds
//! names: every FROM item becomes a relation in scope with named columns whose
//! lineage is known (a catalog table's columns are their own sources), CTEs are
//! bound in an environment, subqueries see their enclosing scopes (correlation,
//! LATERAL), and each expression's lineage is computed from the lineages of
//! the columns it references. Whenever a name cannot be bound for certain, the
//! result is [`Lineage::Unknown`]: the proxy then masks or refuses (fail closed).
//!
//! Recursion is bounded twice: the parser refuses deeper nesting than its
//! recursion limit, and this walker counts its own depth (views expand into new
//! trees, so the parser's limit alone does not bound it).

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    self, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentClause,
    FunctionArguments, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query,
    Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableAlias,
    TableFactor, TableWithJoins, Value, Visit, Visitor, WindowType,
};
use sqlparser::parser::Parser;

use crate::SqlDialect;
use crate::catalog::{
    BuiltinFunction, Catalog, FunctionOutputs, Relation, RelationKind, TableName,
};
use crate::error::AnalyzeError;
use crate::model::{ColumnRef, Lineage, RowEncoding, RowField};

mod dml;
mod expr;
mod from;

/// A named column with its lineage, as it flows between query levels.
#[derive(Debug, Clone)]
pub(crate) struct Col {
    pub(crate) name: String,
    pub(crate) lineage: Lineage,
}

/// The name given to the single output entry that stands for the expansion of
/// `*` over a relation whose columns are unknown.
pub(crate) const UNKNOWN_STAR: &str = "*";

/// Columns of a relation: known, or unknown with the reason.
type Cols = Result<Vec<Col>, String>;

/// One entry of a FROM clause's `*` expansion.
#[derive(Debug, Clone)]
enum StarItem {
    Col(Col),
    /// A relation whose columns are unknown: its expansion has unknown width.
    Unknown(String),
}

/// A relation visible by name in a FROM clause.
#[derive(Debug, Clone)]
struct Rel {
    /// Alias, or the relation's own name when it has none.
    qualifier: Option<String>,
    /// The schema, when the relation is referenced without alias (`s.t.col`).
    schema: Option<String>,
    cols: Cols,
    /// A stored relation of the catalog, which has PostgreSQL's system
    /// columns ([`SYSTEM_COLUMNS`]) besides its own.
    system_columns: bool,
}

/// PostgreSQL's system columns: transaction ids, command ids, the tuple's
/// address and the table's oid. Every stored relation has them, hidden
/// from `*`; their values describe rows, they never hold stored data.
const SYSTEM_COLUMNS: &[&str] = &["tableoid", "xmin", "xmax", "cmin", "cmax", "ctid"];

/// Whether `col` is a system column of a relation in scope that has them.
fn system_column<'r>(col: &str, mut rels: impl Iterator<Item = &'r Rel>) -> bool {
    SYSTEM_COLUMNS.contains(&col) && rels.any(|r| r.system_columns)
}

/// What one FROM clause (or join tree) makes visible.
#[derive(Debug, Clone, Default)]
struct FromScope {
    rels: Vec<Rel>,
    /// The `*` expansion in order; USING/NATURAL columns appear once, merged.
    star: Vec<StarItem>,
}

impl FromScope {
    fn extend(&mut self, other: FromScope) {
        self.rels.extend(other.rels);
        self.star.extend(other.star);
    }
}

/// CTEs visible at some point, innermost first.
pub(crate) struct Env<'p> {
    ctes: Vec<(String, Cols)>,
    parent: Option<&'p Env<'p>>,
}

impl<'p> Env<'p> {
    pub(crate) fn root() -> Env<'static> {
        Env {
            ctes: Vec::new(),
            parent: None,
        }
    }

    fn lookup(&self, name: &str) -> Option<&Cols> {
        self.ctes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c)
            .or_else(|| self.parent.and_then(|p| p.lookup(name)))
    }
}

/// A name-resolution scope: one FROM clause plus the enclosing ones.
pub(crate) struct Scope<'p> {
    /// The FROM items visible here, searched in order (borrowed, so nested
    /// joins and LATERAL items see their left side without copying it).
    from: Vec<&'p FromScope>,
    parent: Option<&'p Scope<'p>>,
    env: &'p Env<'p>,
}

impl Scope<'_> {
    fn star(&self) -> impl Iterator<Item = &StarItem> {
        self.from.iter().flat_map(|f| f.star.iter())
    }

    fn rels(&self) -> impl Iterator<Item = &Rel> {
        self.from.iter().flat_map(|f| f.rels.iter())
    }
}

/// Facts gathered while walking, beyond lineage.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) tables_read: BTreeSet<TableName>,
    pub(crate) tables_written: BTreeSet<TableName>,
    pub(crate) filter_columns: BTreeSet<ColumnRef>,
    pub(crate) functions: BTreeSet<String>,
    pub(crate) writes: bool,
    pub(crate) locks: bool,
    pub(crate) unbounded_write: bool,
}

/// Functions that turn a whole row (or any value) into JSON.
const JSON_ROW_FUNCTIONS: &[&str] = &[
    "row_to_json",
    "to_json",
    "to_jsonb",
    "json_agg",
    "jsonb_agg",
    "json_agg_strict",
    "jsonb_agg_strict",
];

/// The walker: one per statement.
pub(crate) struct Walker<'a> {
    pub(crate) catalog: &'a dyn Catalog,
    pub(crate) search_path: &'a [String],
    pub(crate) dialect: SqlDialect,
    pub(crate) max_depth: usize,
    pub(crate) max_view_depth: usize,
    pub(crate) max_operator_chain: usize,
    pub(crate) parser_recursion_limit: usize,
    depth: usize,
    views: Vec<TableName>,
    pub(crate) facts: Facts,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(
        catalog: &'a dyn Catalog,
        search_path: &'a [String],
        opts: &crate::AnalyzeOptions,
    ) -> Self {
        Walker {
            catalog,
            search_path,
            dialect: opts.dialect,
            max_depth: opts.max_depth,
            max_view_depth: opts.max_view_depth,
            max_operator_chain: opts.max_operator_chain,
            parser_recursion_limit: opts.parser_recursion_limit,
            depth: 0,
            views: Vec::new(),
            facts: Facts::default(),
        }
    }

    // ----- names -------------------------------------------------------------

    /// Folds an identifier the way the dialect does (PostgreSQL: unquoted
    /// names are lowercased).
    pub(crate) fn ident(&self, i: &Ident) -> String {
        fold_ident(self.dialect, i)
    }

    fn name_parts(&self, name: &ObjectName) -> Vec<String> {
        name.0
            .iter()
            .map(|p| match p {
                ObjectNamePart::Identifier(i) => self.ident(i),
                ObjectNamePart::Function(f) => self.ident(&f.name),
            })
            .collect()
    }

    /// A relation name as written (`[db.]schema.name` or `name`).
    pub(crate) fn table_name(&self, name: &ObjectName) -> TableName {
        let mut parts = self.name_parts(name);
        let last = parts.pop().unwrap_or_default();
        TableName {
            schema: parts.pop(),
            name: last,
        }
    }

    /// Resolves a relation through the catalog.
    pub(crate) fn resolve_relation(&self, name: &TableName) -> Option<std::sync::Arc<Relation>> {
        self.catalog.resolve(name, self.search_path)
    }

    /// The resolved name of a relation, or the name as written.
    pub(crate) fn resolved_name(&self, name: &TableName) -> TableName {
        self.resolve_relation(name)
            .map_or_else(|| name.clone(), |r| r.table_name())
    }

    // ----- depth -------------------------------------------------------------

    fn enter(&mut self) -> Result<(), AnalyzeError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(AnalyzeError::TooDeep {
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ----- queries -----------------------------------------------------------

    /// The output columns of a query.
    #[recursive::recursive]
    pub(crate) fn query(
        &mut self,
        q: &Query,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        self.enter()?;
        let r = self.query_inner(q, env, outer);
        self.leave();
        r
    }

    fn query_inner(
        &mut self,
        q: &Query,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        if !q.locks.is_empty() {
            self.facts.locks = true;
        }
        let mut local = Env {
            ctes: Vec::new(),
            parent: Some(env),
        };
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                let name = self.ident(&cte.alias.name);
                let cols = if with.recursive {
                    self.recursive_cte(&name, cte, &local, outer)?
                } else {
                    let cols = self.query(&cte.query, &local, outer)?;
                    self.apply_column_aliases(cols, &cte.alias)
                };
                local.ctes.push((name, Ok(cols)));
            }
        }
        let order_by: &[ast::OrderByExpr] = match &q.order_by {
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(exprs),
                ..
            }) => exprs,
            _ => &[],
        };
        match q.body.as_ref() {
            SetExpr::Select(sel) => self.select(sel, &local, outer, order_by),
            body => {
                let cols = self.set_expr(body, &local, outer)?;
                self.record_ordering(order_by, &cols, None)?;
                Ok(cols)
            }
        }
    }

    /// A recursive CTE's columns: the fixpoint of evaluating its body with its
    /// own name bound to the lineage found so far (sources only grow, so it
    /// converges; a bounded number of rounds guards against surprises).
    fn recursive_cte(
        &mut self,
        name: &str,
        cte: &ast::Cte,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        // Round 0: the non-recursive branch alone, with the name unbound.
        let anchor = match cte.query.body.as_ref() {
            SetExpr::SetOperation { left, .. } => {
                let e = Env {
                    ctes: vec![(
                        name.to_owned(),
                        Err(format!("recursive CTE {name} referenced in its own anchor")),
                    )],
                    parent: Some(env),
                };
                self.set_expr(left, &e, outer)?
            }
            _ => self.query(&cte.query, env, outer)?,
        };
        let mut current = self.apply_column_aliases(anchor, &cte.alias);
        for _ in 0..8 {
            let e = Env {
                ctes: vec![(name.to_owned(), Ok(current.clone()))],
                parent: Some(env),
            };
            let next = self.query(&cte.query, &e, outer)?;
            let next = self.apply_column_aliases(next, &cte.alias);
            let merged = merge_by_position(current.clone(), next);
            if same_lineage(&merged, &current) {
                return Ok(merged);
            }
            current = merged;
        }
        Ok(current
            .into_iter()
            .map(|c| Col {
                name: c.name,
                lineage: Lineage::unknown(format!("recursive CTE {name} did not converge")),
            })
            .collect())
    }

    fn apply_column_aliases(&self, cols: Vec<Col>, alias: &TableAlias) -> Vec<Col> {
        let mut cols = cols;
        for (c, a) in cols.iter_mut().zip(&alias.columns) {
            c.name = self.ident(&a.name);
        }
        cols
    }

    #[recursive::recursive]
    fn set_expr(
        &mut self,
        s: &SetExpr,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        self.enter()?;
        let r = match s {
            SetExpr::Select(sel) => self.select(sel, env, outer, &[]),
            SetExpr::Query(q) => self.query(q, env, outer),
            SetExpr::SetOperation { left, right, .. } => {
                let l = self.set_expr(left, env, outer)?;
                let r = self.set_expr(right, env, outer)?;
                if l.len() == r.len() && !has_unknown_star(&l) && !has_unknown_star(&r) {
                    Ok(merge_by_position(l, r))
                } else {
                    let reason = "set operation over inputs of unknown width".to_owned();
                    Ok(vec![Col {
                        name: UNKNOWN_STAR.to_owned(),
                        lineage: Lineage::unknown(reason),
                    }])
                }
            }
            SetExpr::Values(v) => self.values(v, env, outer),
            SetExpr::Insert(st)
            | SetExpr::Update(st)
            | SetExpr::Delete(st)
            | SetExpr::Merge(st) => self.dml(st, env, outer),
            SetExpr::Table(t) => {
                let name = TableName {
                    schema: t.schema_name.as_ref().map(|s| fold_ident(self.dialect, s)),
                    name: t
                        .table_name
                        .as_ref()
                        .map(|s| fold_ident(self.dialect, s))
                        .unwrap_or_default(),
                };
                let scope = self.named_relation(&name, None, env);
                Ok(star_cols(&scope.star))
            }
        };
        self.leave();
        r
    }

    fn values(
        &mut self,
        v: &ast::Values,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        let scope = Scope {
            from: Vec::new(),
            parent: outer,
            env,
        };
        let mut cols: Vec<Col> = Vec::new();
        for row in &v.rows {
            for (i, e) in row.content.iter().enumerate() {
                let l = self.expr(e, &scope)?;
                if let Some(c) = cols.get_mut(i) {
                    let old = std::mem::replace(&mut c.lineage, Lineage::Constant);
                    c.lineage = old.merge(l);
                } else {
                    cols.push(Col {
                        name: format!("column{}", i + 1),
                        lineage: l,
                    });
                }
            }
        }
        Ok(cols)
    }

    fn select(
        &mut self,
        s: &Select,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
        order_by: &[ast::OrderByExpr],
    ) -> Result<Vec<Col>, AnalyzeError> {
        let from = self.scope_of_from(&s.from, env, outer)?;
        let scope = Scope {
            from: vec![&from],
            parent: outer,
            env,
        };
        for pred in [&s.selection, &s.having, &s.qualify, &s.prewhere]
            .into_iter()
            .flatten()
        {
            self.filter(pred, &scope)?;
        }
        if let ast::GroupByExpr::Expressions(exprs, _) = &s.group_by {
            for e in exprs {
                // Grouping keeps each output's sources; walk only for subqueries' facts.
                self.expr(e, &scope)?;
            }
        }
        if s.into.is_some() {
            self.facts.writes = true;
        }
        let mut out = Vec::new();
        for item in &s.projection {
            match item {
                SelectItem::UnnamedExpr(e) => out.push(Col {
                    name: self.column_name(e),
                    lineage: self.expr(e, &scope)?,
                }),
                SelectItem::ExprWithAlias { expr, alias } => out.push(Col {
                    name: self.ident(alias),
                    lineage: self.expr(expr, &scope)?,
                }),
                SelectItem::ExprWithAliases { expr, aliases } => {
                    let l = self.expr(expr, &scope)?;
                    for a in aliases {
                        out.push(Col {
                            name: self.ident(a),
                            lineage: l.clone(),
                        });
                    }
                }
                SelectItem::Wildcard(_) => {
                    if from.star.is_empty() {
                        // `SELECT *` without FROM is an error in PostgreSQL.
                        out.push(unknown_star("SELECT * without FROM"));
                    }
                    out.extend(star_cols(&from.star));
                }
                SelectItem::QualifiedWildcard(kind, _) => match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(name) => {
                        let parts = self.name_parts(name);
                        match self.find_rel(&parts, &scope) {
                            Some(Ok(cols)) => out.extend(cols),
                            Some(Err(reason)) => out.push(unknown_star(&reason)),
                            None => out.push(unknown_star(&format!(
                                "relation {} is not in scope",
                                parts.join(".")
                            ))),
                        }
                    }
                    SelectItemQualifiedWildcardKind::Expr(e) => match self.expr(e, &scope)? {
                        Lineage::WholeRow { fields, .. } => {
                            out.extend(fields.into_iter().map(|f| Col {
                                name: f.key,
                                lineage: f.lineage,
                            }));
                        }
                        _ => out.push(unknown_star("expansion of a composite value")),
                    },
                },
            }
        }
        for ast::NamedWindowDefinition(_, def) in &s.named_window {
            if let ast::NamedWindowExpr::WindowSpec(w) = def {
                for p in &w.partition_by {
                    self.filter(p, &scope)?;
                }
                for o in &w.order_by {
                    self.filter(&o.expr, &scope)?;
                }
            }
        }
        if let Some(ast::Distinct::On(exprs)) = &s.distinct {
            for e in exprs {
                self.filter(e, &scope)?;
            }
        }
        self.record_ordering(order_by, &out, Some(&scope))?;
        Ok(out)
    }

    /// ORDER BY reveals the order of values it sorts by (with LIMIT/OFFSET, an
    /// oracle like a predicate): its columns are recorded as filter columns.
    /// Names and positions refer to output columns first, as in PostgreSQL.
    fn record_ordering(
        &mut self,
        order_by: &[ast::OrderByExpr],
        outputs: &[Col],
        scope: Option<&Scope<'_>>,
    ) -> Result<(), AnalyzeError> {
        for o in order_by {
            let by_output = match &o.expr {
                Expr::Identifier(i) => {
                    let name = self.ident(i);
                    outputs
                        .iter()
                        .find(|c| c.name == name)
                        .map(|c| c.lineage.clone())
                }
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => n
                        .parse::<usize>()
                        .ok()
                        .and_then(|n| n.checked_sub(1))
                        .and_then(|i| outputs.get(i))
                        .map(|c| c.lineage.clone()),
                    _ => None,
                },
                _ => None,
            };
            match (by_output, scope) {
                (Some(l), _) => self.record_filter(&l),
                (None, Some(scope)) => self.filter(&o.expr, scope)?,
                (None, None) => {}
            }
        }
        Ok(())
    }
}

/// Folds an identifier: quoted names keep their case, unquoted are lowercased.
pub(crate) fn fold_ident(dialect: SqlDialect, i: &Ident) -> String {
    match dialect {
        SqlDialect::PostgreSql => {
            if i.quote_style.is_some() {
                i.value.clone()
            } else {
                i.value.to_lowercase()
            }
        }
    }
}

/// PostgreSQL's name for a type in column headers (`int` is `int4`).
fn type_name(t: &ast::DataType) -> String {
    let s = t.to_string().to_lowercase();
    let base = s.split('(').next().unwrap_or(&s).trim();
    let base = base.rsplit('.').next().unwrap_or(base).trim_matches('"');
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float" | "float8" => "float8",
        "boolean" | "bool" => "bool",
        "decimal" | "numeric" => "numeric",
        "character varying" | "varchar" => "varchar",
        "character" | "char" | "bpchar" => "bpchar",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp without time zone" | "timestamp" => "timestamp",
        "time with time zone" | "timetz" => "timetz",
        "time without time zone" | "time" => "time",
        other => other,
    }
    .to_owned()
}

fn string_literal(a: &FunctionArg) -> Option<String> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) => match &v.value {
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(s.clone()),
            Value::DollarQuotedString(d) => Some(d.value.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a WHERE clause selects every row: `true`, `1 = 1`, `'a' = 'a'`,
/// `NOT false`, possibly parenthesised or OR-ed with anything.
pub(crate) fn is_constant_true(e: &Expr) -> bool {
    match e {
        Expr::Nested(x) => is_constant_true(x),
        Expr::Value(v) => matches!(v.value, Value::Boolean(true)),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Value(a), Expr::Value(b)) => a.value == b.value && a.value != Value::Null,
            _ => false,
        },
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Or,
            right,
        } => is_constant_true(left) || is_constant_true(right),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => is_constant_true(left) && is_constant_true(right),
        Expr::UnaryOp {
            op: ast::UnaryOperator::Not,
            expr,
        } => matches!(expr.as_ref(), Expr::Value(v) if v.value == Value::Boolean(false)),
        Expr::IsNotNull(x) => matches!(x.as_ref(), Expr::Value(v) if v.value != Value::Null),
        _ => false,
    }
}

fn join_constraint(op: &JoinOperator) -> Option<&JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::CrossJoin(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c)
        | JoinOperator::StraightJoin(c) => Some(c),
        JoinOperator::AsOf { constraint, .. } => Some(constraint),
        _ => None,
    }
}

/// `left JOIN right USING (names)`: the named columns appear once, first, with
/// the lineage of both sides; the rest follow, left then right.
fn join_using(left: FromScope, right: FromScope, names: &[String]) -> FromScope {
    let find = |star: &[StarItem], n: &str| -> Option<Lineage> {
        star.iter().find_map(|s| match s {
            StarItem::Col(c) if c.name == n => Some(c.lineage.clone()),
            _ => None,
        })
    };
    let unknown_reason = |star: &[StarItem]| -> Option<String> {
        star.iter().find_map(|s| match s {
            StarItem::Unknown(r) => Some(r.clone()),
            StarItem::Col(_) => None,
        })
    };
    let mut star = Vec::new();
    for n in names {
        let l = match (find(&left.star, n), find(&right.star, n)) {
            (Some(a), Some(b)) => a.merge(b),
            (a, b) => {
                let reason = unknown_reason(&left.star)
                    .or_else(|| unknown_reason(&right.star))
                    .unwrap_or_else(|| format!("join column {n} not found"));
                let known = a.or(b).unwrap_or(Lineage::Constant);
                known.merge(Lineage::unknown(reason))
            }
        };
        star.push(StarItem::Col(Col {
            name: n.clone(),
            lineage: l,
        }));
    }
    let keep = |s: &StarItem| !matches!(s, StarItem::Col(c) if names.contains(&c.name));
    star.extend(left.star.into_iter().filter(keep));
    star.extend(right.star.into_iter().filter(keep));
    let mut rels = left.rels;
    rels.extend(right.rels);
    FromScope { rels, star }
}

/// Resolves a column by (optional) qualifier through the scope chain.
/// `None` means no such name anywhere (the caller may try a whole-row
/// reference); an unknown relation in the way gives `Some(Unknown)`.
fn resolve_column(qualifier: &[String], col: &str, scope: &Scope<'_>) -> Option<Lineage> {
    let mut s = Some(scope);
    while let Some(sc) = s {
        if qualifier.is_empty() {
            let mut found: Option<Lineage> = None;
            for item in sc.star() {
                if let StarItem::Col(c) = item
                    && c.name == col
                {
                    found = Some(match found {
                        Some(f) => f.merge(c.lineage.clone()),
                        None => c.lineage.clone(),
                    });
                }
            }
            // Columns hidden from `*` (the right side of USING, `excluded`)
            // are reachable qualified only; unqualified they resolve above.
            if let Some(l) = found {
                return Some(l);
            }
            if let Some(reason) = sc.star().find_map(|i| match i {
                StarItem::Unknown(r) => Some(r.clone()),
                StarItem::Col(_) => None,
            }) {
                return Some(Lineage::unknown(format!(
                    "column {col} may come from a relation whose columns are unknown: {reason}"
                )));
            }
            if system_column(col, sc.rels()) {
                return Some(Lineage::Constant);
            }
        } else {
            let (schema, rel) = match qualifier {
                [.., s, r] => (Some(s.as_str()), r.as_str()),
                [r] => (None, r.as_str()),
                [] => return None,
            };
            if let Some(r) = sc.rels().find(|x| {
                x.qualifier.as_deref() == Some(rel)
                    && (schema.is_none() || x.schema.as_deref() == schema)
            }) {
                return Some(match &r.cols {
                    Err(reason) => Lineage::unknown(reason.clone()),
                    Ok(cols) => {
                        let mut found: Option<Lineage> = None;
                        for c in cols.iter().filter(|c| c.name == col) {
                            found = Some(match found {
                                Some(f) => f.merge(c.lineage.clone()),
                                None => c.lineage.clone(),
                            });
                        }
                        match found {
                            Some(l) => l,
                            None if system_column(col, std::iter::once(r)) => Lineage::Constant,
                            None => Lineage::unknown(format!("column {rel}.{col} does not exist")),
                        }
                    }
                });
            }
        }
        s = sc.parent;
    }
    None
}

fn whole_row(cols: Cols, encoding: RowEncoding) -> Lineage {
    match cols {
        Err(reason) => Lineage::unknown(reason),
        Ok(cols) if has_unknown_star(&cols) => Lineage::unknown("row of unknown width"),
        Ok(cols) => Lineage::WholeRow {
            encoding,
            fields: cols
                .into_iter()
                .map(|c| RowField {
                    key: c.name,
                    lineage: c.lineage,
                })
                .collect(),
        },
    }
}

fn unknown_star(reason: &str) -> Col {
    Col {
        name: UNKNOWN_STAR.to_owned(),
        lineage: Lineage::unknown(reason),
    }
}

fn unknown_rel(qualifier: Option<String>, schema: Option<String>, reason: &str) -> FromScope {
    FromScope {
        rels: vec![Rel {
            qualifier,
            schema,
            cols: Err(reason.to_owned()),
            system_columns: false,
        }],
        star: vec![StarItem::Unknown(reason.to_owned())],
    }
}

fn star_cols(star: &[StarItem]) -> Vec<Col> {
    star.iter()
        .map(|s| match s {
            StarItem::Col(c) => c.clone(),
            StarItem::Unknown(reason) => unknown_star(reason),
        })
        .collect()
}

pub(crate) fn has_unknown_star(cols: &[Col]) -> bool {
    cols.iter()
        .any(|c| c.name == UNKNOWN_STAR && matches!(c.lineage, Lineage::Unknown { .. }))
}

fn merge_by_position(l: Vec<Col>, r: Vec<Col>) -> Vec<Col> {
    let mut r = r.into_iter();
    l.into_iter()
        .map(|c| {
            let other = r.next().map_or(Lineage::Constant, |x| x.lineage);
            Col {
                name: c.name,
                lineage: c.lineage.merge(other),
            }
        })
        .collect()
}

fn same_lineage(a: &[Col], b: &[Col]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.lineage == y.lineage)
}

fn table_factor_alias(tf: &TableFactor) -> Option<&TableAlias> {
    match tf {
        TableFactor::Pivot { alias, .. }
        | TableFactor::Unpivot { alias, .. }
        | TableFactor::JsonTable { alias, .. }
        | TableFactor::XmlTable { alias, .. }
        | TableFactor::MatchRecognize { alias, .. }
        | TableFactor::OpenJsonTable { alias, .. } => alias.as_ref(),
        _ => None,
    }
}

/// Adds every function called in `st` to the walker's facts (used for view
/// bodies; the statement itself is scanned by the analysis driver).
fn collect_functions(st: &Statement, w: &mut Walker<'_>) {
    let mut names = BTreeSet::new();
    crate::facts::function_names(st, w.dialect, &mut names);
    w.facts.functions.extend(names);
}

#[cfg(test)]
mod tests {
    use crate::{AnalyzeOptions, ColumnRef, Lineage, StaticCatalog, analyze};

    fn catalog() -> StaticCatalog {
        let mut c = StaticCatalog::new();
        c.add_table("public", "customers", &["id", "email"]);
        c.add_table("public", "odd", &["xmin"]);
        c.add_view(
            "public",
            "v",
            &["email"],
            "SELECT customers.email FROM customers",
        );
        c.add_table("pg_catalog", "pg_roles", &["oid", "rolname"]);
        c.add_table("pg_catalog", "pg_auth_members", &["roleid", "member"]);
        c
    }

    fn outputs(sql: &str) -> Vec<Lineage> {
        let a = analyze(sql, &catalog(), &AnalyzeOptions::default()).unwrap();
        a.statements[0]
            .outputs
            .iter()
            .map(|o| o.lineage.clone())
            .collect()
    }

    #[test]
    fn system_columns_of_stored_relations_are_constant() {
        // DataGrip reads `xmin` in every introspection query, pg_dump
        // `tableoid`.
        assert_eq!(
            outputs(
                "SELECT xmin AS state_number, c.tableoid, ctid, c.cmin, cmax, xmax \
                 FROM customers c"
            ),
            vec![Lineage::Constant; 6]
        );
        assert_eq!(
            outputs("SELECT public.customers.xmin::text::int8 FROM public.customers"),
            [Lineage::Constant]
        );
    }

    #[test]
    fn system_column_names_stay_fail_closed_elsewhere() {
        // A real column of that name is the column.
        assert_eq!(
            outputs("SELECT xmin FROM odd"),
            [Lineage::column(ColumnRef::new("public", "odd", "xmin"))]
        );
        // Views, subqueries and relations of unknown columns have no
        // system columns the analysis can vouch for.
        for sql in [
            "SELECT xmin FROM v",
            "SELECT x.tableoid FROM (SELECT 1) x",
            "SELECT xmin FROM customers, not_in_catalog",
            "SELECT xmin FROM (SELECT email FROM customers) s",
        ] {
            let out = outputs(sql);
            assert!(out[0].has_unknown(), "{sql}: {out:?}");
        }
    }

    #[test]
    fn any_and_all_have_the_lineage_of_both_sides() {
        // pgAdmin's user-info query at connect.
        let roles = ColumnRef::new("pg_catalog", "pg_roles", "rolname");
        assert_eq!(
            outputs(
                "SELECT 'pg_signal_backend' = ANY(ARRAY(SELECT pg_catalog.pg_roles.rolname \
                 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles \
                 ON (m.roleid = pg_catalog.pg_roles.oid) WHERE m.member = 10)) \
                 AS can_signal_backend"
            ),
            [Lineage::Sources {
                columns: [roles].into(),
                transformed: true
            }]
        );
        let email = ColumnRef::new("public", "customers", "email");
        let id = ColumnRef::new("public", "customers", "id");
        assert_eq!(
            outputs("SELECT id < ALL(SELECT id FROM customers) FROM customers"),
            [Lineage::Sources {
                columns: [id.clone()].into(),
                transformed: true
            }]
        );
        assert_eq!(
            outputs("SELECT 'a@b.c' = ANY(ARRAY(SELECT email FROM customers))"),
            [Lineage::Sources {
                columns: [email].into(),
                transformed: true
            }]
        );
        assert_eq!(
            outputs("SELECT id = ANY($1) FROM customers"),
            [Lineage::Sources {
                columns: [id].into(),
                transformed: true
            }]
        );
    }
}

#[cfg(test)]
mod builtin_function_tests {
    use crate::{AnalyzeOptions, ColumnRef, FunctionOutputs, Lineage, StaticCatalog, analyze};

    fn catalog() -> StaticCatalog {
        let mut c = StaticCatalog::new();
        let cols = |names: &[&str]| {
            FunctionOutputs::Columns(names.iter().map(|s| (*s).to_owned()).collect())
        };
        c.add_builtin_function(
            "pg_catalog",
            "pg_show_all_settings",
            cols(&["name", "setting"]),
        );
        c.add_builtin_function("pg_catalog", "pg_get_keywords", cols(&["word", "catcode"]));
        c.add_builtin_function(
            "pg_catalog",
            "pg_options_to_table",
            cols(&["option_name", "option_value"]),
        );
        c.add_builtin_function(
            "pg_catalog",
            "pg_indexam_has_property",
            FunctionOutputs::Scalar,
        );
        c.add_builtin_function(
            "pg_catalog",
            "pg_stat_get_activity",
            cols(&["pid", "query"]),
        );
        c.add_builtin_function("pg_catalog", "ts_stat", cols(&["word", "ndoc"]));
        c.add_builtin_function("pg_catalog", "pg_ls_dir", FunctionOutputs::Scalar);
        c.add_builtin_function("pg_catalog", "twice", cols(&["a"]));
        c.add_builtin_function("pg_catalog", "twice", cols(&["b"]));
        c.add_view(
            "pg_catalog",
            "pg_settings",
            &["name", "setting"],
            "SELECT a.name, a.setting FROM pg_show_all_settings() a(name, setting)",
        );
        c.add_table("pg_catalog", "pg_attribute", &["attname", "attfdwoptions"]);
        c
    }

    fn outputs(sql: &str) -> Vec<(String, Lineage)> {
        let a = analyze(sql, &catalog(), &AnalyzeOptions::default()).unwrap();
        a.statements[0]
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.lineage.clone()))
            .collect()
    }

    fn own(f: &str, c: &str) -> Lineage {
        Lineage::column(ColumnRef::new("pg_catalog", f, c))
    }

    #[test]
    fn views_over_builtin_functions_have_known_columns() {
        // pgjdbc's getImportedKeys reads max_index_keys from pg_settings.
        assert_eq!(
            outputs("SELECT setting FROM pg_catalog.pg_settings WHERE name='max_index_keys'"),
            [("setting".to_owned(), own("pg_show_all_settings", "setting"))]
        );
        assert_eq!(
            outputs("SELECT * FROM pg_get_keywords()"),
            [
                ("word".to_owned(), own("pg_get_keywords", "word")),
                ("catcode".to_owned(), own("pg_get_keywords", "catcode")),
            ]
        );
        // A scalar function in FROM is one column named by its alias.
        assert_eq!(
            outputs("SELECT can_order FROM pg_indexam_has_property(403, 'can_order') AS can_order"),
            [(
                "can_order".to_owned(),
                own("pg_indexam_has_property", "pg_indexam_has_property")
            )]
        );
        // Arguments flow into the rows.
        let (_, l) = &outputs(
            "SELECT o.option_value FROM pg_attribute a, pg_options_to_table(a.attfdwoptions) o",
        )[0];
        assert_eq!(
            l.all_sources().into_iter().cloned().collect::<Vec<_>>(),
            [
                ColumnRef::new("pg_catalog", "pg_attribute", "attfdwoptions"),
                ColumnRef::new("pg_catalog", "pg_options_to_table", "option_value"),
            ]
        );
    }

    #[test]
    fn composite_results_in_the_select_list_carry_every_output() {
        let (_, l) = &outputs("SELECT pg_stat_get_activity(NULL)")[0];
        assert!(l.all_sources().contains(&ColumnRef::new(
            "pg_catalog",
            "pg_stat_get_activity",
            "query"
        )));
        let (_, l) = &outputs("SELECT pg_stat_get_backend_activity(1)")[0];
        assert!(l.all_sources().contains(&ColumnRef::new(
            "pg_catalog",
            "pg_stat_get_activity",
            "query"
        )));
    }

    #[test]
    fn data_reading_and_ambiguous_functions_stay_unknown() {
        for sql in [
            "SELECT * FROM ts_stat('SELECT to_tsvector(email) FROM customers')",
            "SELECT * FROM pg_ls_dir('.')",
            "SELECT * FROM twice()",
            "SELECT * FROM not_a_function()",
        ] {
            let a = analyze(sql, &catalog(), &AnalyzeOptions::default()).unwrap();
            assert!(a.statements[0].has_unknown_outputs(), "{sql}");
        }
    }
}
