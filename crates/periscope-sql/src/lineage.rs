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
use crate::catalog::{Catalog, Relation, RelationKind, TableName};
use crate::error::AnalyzeError;
use crate::model::{ColumnRef, Lineage, RowEncoding, RowField};

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
                let mut e = Env {
                    ctes: vec![(
                        name.to_owned(),
                        Err(format!("recursive CTE {name} referenced in its own anchor")),
                    )],
                    parent: Some(env),
                };
                let _ = &mut e;
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
                    schema: t.schema_name.as_ref().map(|s| fold_str(self.dialect, s)),
                    name: t
                        .table_name
                        .as_ref()
                        .map(|s| fold_str(self.dialect, s))
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

    // ----- FROM --------------------------------------------------------------

    fn scope_of_from(
        &mut self,
        from: &[TableWithJoins],
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<FromScope, AnalyzeError> {
        let mut acc = FromScope::default();
        for twj in from {
            let item = self.table_with_joins(twj, env, outer, &[&acc])?;
            acc.extend(item);
        }
        Ok(acc)
    }

    fn table_with_joins(
        &mut self,
        twj: &TableWithJoins,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
        left: &[&FromScope],
    ) -> Result<FromScope, AnalyzeError> {
        let mut acc = self.table_factor(&twj.relation, env, outer, left)?;
        for join in &twj.joins {
            let mut visible: Vec<&FromScope> = left.to_vec();
            visible.push(&acc);
            let right = self.table_factor(&join.relation, env, outer, &visible)?;
            let constraint = join_constraint(&join.join_operator);
            match constraint {
                Some(JoinConstraint::Using(names)) | Some(JoinConstraint::UsingAlias(names, _)) => {
                    let names: Vec<String> = names
                        .iter()
                        .filter_map(|n| self.name_parts(n).pop())
                        .collect();
                    acc = join_using(acc, right, &names);
                }
                Some(JoinConstraint::Natural) => {
                    let left_names: BTreeSet<String> = acc
                        .star
                        .iter()
                        .filter_map(|s| match s {
                            StarItem::Col(c) => Some(c.name.clone()),
                            StarItem::Unknown(_) => None,
                        })
                        .collect();
                    let names: Vec<String> = right
                        .star
                        .iter()
                        .filter_map(|s| match s {
                            StarItem::Col(c) if left_names.contains(&c.name) => {
                                Some(c.name.clone())
                            }
                            _ => None,
                        })
                        .collect();
                    acc = join_using(acc, right, &names);
                }
                Some(JoinConstraint::On(e)) => {
                    acc.extend(right);
                    let mut visible: Vec<&FromScope> = left.to_vec();
                    visible.push(&acc);
                    let scope = Scope {
                        from: visible,
                        parent: outer,
                        env,
                    };
                    self.filter(e, &scope)?;
                }
                Some(JoinConstraint::None) | None => acc.extend(right),
            }
            if let JoinOperator::AsOf {
                match_condition, ..
            } = &join.join_operator
            {
                let scope = Scope {
                    from: vec![&acc],
                    parent: outer,
                    env,
                };
                self.filter(match_condition, &scope)?;
            }
        }
        Ok(acc)
    }

    #[recursive::recursive]
    fn table_factor(
        &mut self,
        tf: &TableFactor,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
        left: &[&FromScope],
    ) -> Result<FromScope, AnalyzeError> {
        self.enter()?;
        let r = self.table_factor_inner(tf, env, outer, left);
        self.leave();
        r
    }

    fn table_factor_inner(
        &mut self,
        tf: &TableFactor,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
        left: &[&FromScope],
    ) -> Result<FromScope, AnalyzeError> {
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if let Some(args) = args {
                    let fname = self.name_parts(name).join(".");
                    return self.table_function(
                        &fname,
                        &args.args,
                        false,
                        alias.as_ref(),
                        env,
                        outer,
                        left,
                    );
                }
                let tn = self.table_name(name);
                Ok(self.named_relation(&tn, alias.as_ref(), env))
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                let cols = if *lateral {
                    let scope = Scope {
                        from: left.to_vec(),
                        parent: outer,
                        env,
                    };
                    self.query(subquery, env, Some(&scope))?
                } else {
                    self.query(subquery, env, outer)?
                };
                Ok(self.aliased(cols, alias.as_ref(), None, None))
            }
            TableFactor::Function {
                name,
                args,
                alias,
                with_ordinality,
                ..
            } => {
                let fname = self.name_parts(name).join(".");
                self.table_function(
                    &fname,
                    args,
                    *with_ordinality,
                    alias.as_ref(),
                    env,
                    outer,
                    left,
                )
            }
            TableFactor::TableFunction { expr, alias } => {
                let scope = Scope {
                    from: left.to_vec(),
                    parent: outer,
                    env,
                };
                let l = self.expr(expr, &scope)?.transformed();
                let col = Col {
                    name: self.column_name(expr),
                    lineage: l,
                };
                Ok(self.aliased(vec![col], alias.as_ref(), None, None))
            }
            TableFactor::UNNEST {
                alias,
                array_exprs,
                with_ordinality,
                ..
            } => {
                let scope = Scope {
                    from: left.to_vec(),
                    parent: outer,
                    env,
                };
                let mut cols = Vec::new();
                for e in array_exprs {
                    cols.push(Col {
                        name: "unnest".to_owned(),
                        lineage: self.expr(e, &scope)?.transformed(),
                    });
                }
                if let Some(a) = alias
                    && a.columns.is_empty()
                    && cols.len() == 1
                {
                    cols[0].name = self.ident(&a.name);
                }
                if *with_ordinality {
                    cols.push(Col {
                        name: "ordinality".to_owned(),
                        lineage: Lineage::Constant,
                    });
                }
                Ok(self.aliased(cols, alias.as_ref(), Some("unnest".to_owned()), None))
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let inner = self.table_with_joins(table_with_joins, env, outer, left)?;
                match alias {
                    None => Ok(inner),
                    Some(a) => {
                        if inner.star.iter().any(|s| matches!(s, StarItem::Unknown(_))) {
                            let reason = "aliased join over a relation of unknown columns";
                            return Ok(unknown_rel(Some(self.ident(&a.name)), None, reason));
                        }
                        let cols = star_cols(&inner.star);
                        Ok(self.aliased(cols, Some(a), None, None))
                    }
                }
            }
            other => {
                let alias = table_factor_alias(other).map(|a| self.ident(&a.name));
                Ok(unknown_rel(
                    alias,
                    None,
                    "this kind of FROM item is not analysed",
                ))
            }
        }
    }

    /// A relation referenced by name: a CTE, a catalog relation (views
    /// expanded), or unknown.
    fn named_relation(
        &mut self,
        tn: &TableName,
        alias: Option<&TableAlias>,
        env: &Env<'_>,
    ) -> FromScope {
        if tn.schema.is_none()
            && let Some(cols) = env.lookup(&tn.name)
        {
            return match cols.clone() {
                Ok(cols) => self.aliased(cols, alias, Some(tn.name.clone()), None),
                Err(reason) => unknown_rel(
                    Some(alias.map_or_else(|| tn.name.clone(), |a| self.ident(&a.name))),
                    None,
                    &reason,
                ),
            };
        }
        match self.resolve_relation(tn) {
            Some(rel) => {
                self.facts.tables_read.insert(rel.table_name());
                let cols = self.relation_cols(&rel);
                let qualifier = Some(rel.name.clone());
                let schema = Some(rel.schema.clone());
                match cols {
                    Ok(cols) => self.aliased(cols, alias, qualifier, schema),
                    Err(reason) => unknown_rel(
                        Some(alias.map_or_else(|| rel.name.clone(), |a| self.ident(&a.name))),
                        if alias.is_some() { None } else { schema },
                        &reason,
                    ),
                }
            }
            None => {
                self.facts.tables_read.insert(tn.clone());
                unknown_rel(
                    Some(alias.map_or_else(|| tn.name.clone(), |a| self.ident(&a.name))),
                    if alias.is_some() {
                        None
                    } else {
                        tn.schema.clone()
                    },
                    &format!("relation {tn} is not in the catalog"),
                )
            }
        }
    }

    /// The columns of a catalog relation; views are expanded through their
    /// definition.
    fn relation_cols(&mut self, rel: &Relation) -> Cols {
        let is_view = matches!(
            rel.kind,
            RelationKind::View | RelationKind::MaterializedView
        );
        if !is_view {
            let schema: std::sync::Arc<str> = rel.schema.as_str().into();
            let table: std::sync::Arc<str> = rel.name.as_str().into();
            return Ok(rel
                .columns
                .iter()
                .map(|c| Col {
                    name: c.clone(),
                    lineage: Lineage::column(ColumnRef {
                        schema: schema.clone(),
                        table: table.clone(),
                        column: c.as_str().into(),
                    }),
                })
                .collect());
        }
        let name = rel.table_name();
        let Some(def) = &rel.definition else {
            return Err(format!("the definition of view {name} is not known"));
        };
        if self.views.contains(&name) {
            return Err(format!("view {name} refers to itself"));
        }
        if self.views.len() >= self.max_view_depth {
            return Err(format!(
                "views nest deeper than {} levels at {name}",
                self.max_view_depth
            ));
        }
        let dialect = self.dialect.parser_dialect();
        let parsed = Parser::new(dialect.as_ref())
            .with_recursion_limit(self.parser_recursion_limit)
            .try_with_sql(def)
            .and_then(|mut p| p.parse_statements());
        let query = match parsed.as_deref() {
            Ok([Statement::Query(q)]) => q.clone(),
            _ => return Err(format!("the definition of view {name} could not be parsed")),
        };
        collect_functions(&Statement::Query(query.clone()), self);
        self.views.push(name.clone());
        let cols = self.query(&query, &Env::root(), None);
        self.views.pop();
        let cols = match cols {
            Ok(c) => c,
            Err(AnalyzeError::TooDeep { .. }) => {
                return Err(format!("view {name} nests too deeply to analyse"));
            }
            Err(_) => return Err(format!("view {name} could not be analysed")),
        };
        if cols.len() != rel.columns.len() || has_unknown_star(&cols) {
            return Err(format!(
                "view {name} has {} columns in the catalog but its definition yields {}",
                rel.columns.len(),
                cols.len()
            ));
        }
        Ok(rel
            .columns
            .iter()
            .zip(cols)
            .map(|(n, c)| Col {
                name: n.clone(),
                lineage: c.lineage,
            })
            .collect())
    }

    /// Wraps columns as one FROM item, applying an alias and its column list.
    fn aliased(
        &self,
        cols: Vec<Col>,
        alias: Option<&TableAlias>,
        default_qualifier: Option<String>,
        schema: Option<String>,
    ) -> FromScope {
        let (qualifier, schema, cols) = match alias {
            Some(a) => (
                Some(self.ident(&a.name)),
                None,
                self.apply_column_aliases(cols, a),
            ),
            None => (default_qualifier, schema, cols),
        };
        FromScope {
            star: cols.iter().cloned().map(StarItem::Col).collect(),
            rels: vec![Rel {
                qualifier,
                schema,
                cols: Ok(cols),
            }],
        }
    }

    /// A function in FROM (`unnest`, `jsonb_each`, `generate_series`, ...).
    #[allow(clippy::too_many_arguments)]
    fn table_function(
        &mut self,
        fname: &str,
        args: &[FunctionArg],
        with_ordinality: bool,
        alias: Option<&TableAlias>,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
        left: &[&FromScope],
    ) -> Result<FromScope, AnalyzeError> {
        self.facts.functions.insert(fname.to_owned());
        let scope = Scope {
            from: left.to_vec(),
            parent: outer,
            env,
        };
        let mut arg_lineage = Lineage::Constant;
        for a in args {
            let l = self.function_arg(a, &scope)?;
            arg_lineage = arg_lineage.merge(l);
        }
        let derived = arg_lineage.transformed();
        let base = fname.rsplit('.').next().unwrap_or(fname);
        let alias_cols: Vec<String> = alias
            .map(|a| a.columns.iter().map(|c| self.ident(&c.name)).collect())
            .unwrap_or_default();
        let names: Option<Vec<String>> = match base {
            "unnest" if args.len() > 1 => Some(vec!["unnest".to_owned(); args.len()]),
            "unnest"
            | "generate_series"
            | "generate_subscripts"
            | "regexp_matches"
            | "regexp_split_to_table"
            | "string_to_table"
            | "jsonb_object_keys"
            | "json_object_keys"
            | "jsonb_path_query"
            | "jsonb_array_elements_text"
            | "json_array_elements_text" => Some(vec![base.to_owned()]),
            "jsonb_array_elements" | "json_array_elements" => Some(vec!["value".to_owned()]),
            "jsonb_each" | "json_each" | "jsonb_each_text" | "json_each_text" => {
                Some(vec!["key".to_owned(), "value".to_owned()])
            }
            "jsonb_to_record"
            | "json_to_record"
            | "jsonb_to_recordset"
            | "json_to_recordset"
            | "jsonb_populate_record"
            | "json_populate_record"
            | "jsonb_populate_recordset"
            | "json_populate_recordset"
                if !alias_cols.is_empty() =>
            {
                Some(alias_cols.clone())
            }
            _ => None,
        };
        let user_defined = self.catalog.is_user_function(fname, self.search_path);
        let Some(names) = names.filter(|_| !user_defined) else {
            let reason = format!("the columns of set-returning function {fname} are not known");
            if alias_cols.is_empty() {
                return Ok(unknown_rel(
                    alias.map(|a| self.ident(&a.name)),
                    None,
                    &reason,
                ));
            }
            let cols = alias_cols
                .into_iter()
                .map(|n| Col {
                    name: n,
                    lineage: Lineage::unknown(reason.clone()),
                })
                .collect();
            return Ok(self.aliased(cols, alias, None, None));
        };
        let single = names.len() == 1;
        let mut cols: Vec<Col> = names
            .into_iter()
            .map(|n| Col {
                name: n,
                lineage: derived.clone(),
            })
            .collect();
        if with_ordinality {
            cols.push(Col {
                name: "ordinality".to_owned(),
                lineage: Lineage::Constant,
            });
        }
        // A single-column function aliased without a column list names its
        // column after the alias (`unnest(x) AS e` gives column `e`).
        if let Some(a) = alias
            && a.columns.is_empty()
            && single
        {
            cols[0].name = self.ident(&a.name);
        }
        let default_qualifier = Some(base.to_owned());
        Ok(self.aliased(cols, alias, default_qualifier, None))
    }

    fn find_rel(&self, parts: &[String], scope: &Scope<'_>) -> Option<Cols> {
        let (schema, rel) = match parts {
            [.., s, r] => (Some(s.as_str()), r.as_str()),
            [r] => (None, r.as_str()),
            [] => return None,
        };
        let mut s = Some(scope);
        while let Some(sc) = s {
            if let Some(r) = sc.rels().find(|x| {
                x.qualifier.as_deref() == Some(rel)
                    && (schema.is_none() || x.schema.as_deref() == schema)
            }) {
                return Some(r.cols.clone());
            }
            s = sc.parent;
        }
        None
    }

    // ----- expressions -------------------------------------------------------

    /// Records the catalog columns a predicate reads.
    fn filter(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<(), AnalyzeError> {
        let l = self.expr(e, scope)?;
        self.record_filter(&l);
        Ok(())
    }

    fn record_filter(&mut self, l: &Lineage) {
        if self.views.is_empty() {
            self.facts
                .filter_columns
                .extend(l.all_sources().into_iter().cloned());
        }
    }

    /// The lineage of an expression's value.
    #[recursive::recursive]
    pub(crate) fn expr(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
        self.enter()?;
        let r = self.expr_inner(e, scope);
        self.leave();
        r
    }

    fn expr_inner(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
        Ok(match e {
            Expr::Identifier(i) => {
                let name = self.ident(i);
                match resolve_column(&[], &name, scope) {
                    Some(l) => l,
                    None => match self.find_rel(std::slice::from_ref(&name), scope) {
                        Some(cols) => whole_row(cols, RowEncoding::Composite),
                        None => Lineage::unknown(format!("column {name} is not in scope")),
                    },
                }
            }
            Expr::CompoundIdentifier(parts) => {
                let mut parts: Vec<String> = parts.iter().map(|i| self.ident(i)).collect();
                let col = parts.pop().unwrap_or_default();
                resolve_column(&parts, &col, scope).unwrap_or_else(|| {
                    Lineage::unknown(format!("column {}.{col} is not in scope", parts.join(".")))
                })
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                let base = self.expr(root, scope)?;
                let mut l = base;
                for acc in access_chain {
                    match acc {
                        ast::AccessExpr::Dot(Expr::Identifier(field)) => {
                            let key = self.ident(field);
                            l = match l {
                                Lineage::WholeRow { fields, .. } => {
                                    fields.into_iter().find(|f| f.key == key).map_or_else(
                                        || Lineage::unknown(format!("field {key} not found")),
                                        |f| f.lineage,
                                    )
                                }
                                other => other.transformed(),
                            };
                        }
                        ast::AccessExpr::Dot(other) => {
                            let x = self.expr(other, scope)?;
                            l = l.transformed().merge(x.transformed());
                        }
                        ast::AccessExpr::Subscript(sub) => {
                            let idx = match sub {
                                ast::Subscript::Index { index } => self.expr(index, scope)?,
                                ast::Subscript::Slice {
                                    lower_bound,
                                    upper_bound,
                                    stride,
                                } => {
                                    let mut x = Lineage::Constant;
                                    for b in
                                        [lower_bound, upper_bound, stride].into_iter().flatten()
                                    {
                                        x = x.merge(self.expr(b, scope)?);
                                    }
                                    x
                                }
                            };
                            l = l.transformed().merge(idx.transformed());
                        }
                    }
                }
                l
            }
            Expr::Nested(inner) => self.expr(inner, scope)?,
            Expr::Collate { expr, .. } => self.expr(expr, scope)?,
            Expr::Value(_) | Expr::TypedString(_) => Lineage::Constant,
            Expr::Cast { expr, .. } => self.expr(expr, scope)?.transformed(),
            Expr::BinaryOp { .. } => self.binary_chain(e, scope)?,
            Expr::UnaryOp { expr, .. } => self.expr(expr, scope)?.transformed(),
            Expr::Function(f) => self.function(f, scope)?,
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let mut cond = Lineage::Constant;
                if let Some(op) = operand {
                    cond = cond.merge(self.expr(op, scope)?);
                }
                let mut out = Lineage::Constant;
                for w in conditions {
                    cond = cond.merge(self.expr(&w.condition, scope)?);
                    out = out.merge(self.expr(&w.result, scope)?);
                }
                if let Some(e) = else_result {
                    out = out.merge(self.expr(e, scope)?);
                }
                self.record_filter(&cond);
                // The branch taken reveals the condition: both are sources.
                out.merge(cond).transformed()
            }
            Expr::Subquery(q) => {
                let cols = self.query(q, scope.env, Some(scope))?;
                match cols.as_slice() {
                    [c] if c.name != UNKNOWN_STAR || !c.lineage.has_unknown() => {
                        c.lineage.clone().transformed()
                    }
                    _ => Lineage::unknown("subquery of unknown width used as a value"),
                }
            }
            Expr::Exists { subquery, .. } => {
                // The result is a boolean about rows the subquery's predicates
                // select: those are recorded as filter columns.
                self.query(subquery, scope.env, Some(scope))?;
                Lineage::Constant
            }
            Expr::In { expr, target, .. } => {
                let mut l = self.expr(expr, scope)?;
                match target {
                    ast::InTarget::List(list) => {
                        for x in list {
                            l = l.merge(self.expr(x, scope)?);
                        }
                    }
                    ast::InTarget::Subquery(q) => {
                        let cols = self.query(q, scope.env, Some(scope))?;
                        for c in cols {
                            l = l.merge(c.lineage);
                        }
                    }
                    ast::InTarget::Unnest(x) => l = l.merge(self.expr(x, scope)?),
                    ast::InTarget::Table { .. } => {
                        l = l.merge(Lineage::unknown("IN over a table is not analysed"));
                    }
                }
                l.transformed()
            }
            Expr::Array(arr) => {
                let mut l = Lineage::Constant;
                for x in &arr.elem {
                    l = l.merge(self.expr(x, scope)?);
                }
                l.transformed()
            }
            Expr::Tuple(items) => {
                let mut fields = Vec::new();
                for (i, x) in items.iter().enumerate() {
                    fields.push(RowField {
                        key: format!("f{}", i + 1),
                        lineage: self.expr(x, scope)?,
                    });
                }
                Lineage::WholeRow {
                    encoding: RowEncoding::Composite,
                    fields,
                }
            }
            Expr::Wildcard(_) => Lineage::unknown("* used as a value"),
            Expr::QualifiedWildcard(name, _) => {
                let parts = self.name_parts(name);
                match self.find_rel(&parts, scope) {
                    Some(cols) => whole_row(cols, RowEncoding::Composite),
                    None => {
                        Lineage::unknown(format!("relation {} is not in scope", parts.join(".")))
                    }
                }
            }
            other => self.generic(other, scope)?,
        })
    }

    /// `a || b || c ...` and other operator chains, walked with an explicit
    /// stack so that long left-deep chains do not consume call depth.
    fn binary_chain(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
        let mut stack = vec![e];
        let mut l = Lineage::Constant;
        while let Some(x) = stack.pop() {
            match x {
                Expr::BinaryOp { left, right, .. } => {
                    stack.push(right);
                    stack.push(left);
                }
                leaf => l = l.merge(self.expr(leaf, scope)?),
            }
        }
        Ok(l.transformed())
    }

    /// Any other expression: the transformed union of every column it names.
    /// Subqueries inside make it unknown (this path does not bind them).
    fn generic(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
        struct Refs {
            refs: Vec<Expr>,
            subquery: bool,
        }
        impl Visitor for Refs {
            type Break = ();
            fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
                match e {
                    Expr::Identifier(_) | Expr::CompoundIdentifier(_) => self.refs.push(e.clone()),
                    Expr::Subquery(_) | Expr::Exists { .. } => {
                        self.subquery = true;
                        return ControlFlow::Break(());
                    }
                    Expr::In {
                        target: ast::InTarget::Subquery(_),
                        ..
                    } => {
                        self.subquery = true;
                        return ControlFlow::Break(());
                    }
                    _ => {}
                }
                ControlFlow::Continue(())
            }
        }
        let mut v = Refs {
            refs: Vec::new(),
            subquery: false,
        };
        let _ = e.visit(&mut v);
        if v.subquery {
            return Ok(Lineage::unknown(
                "subquery inside an expression this analysis does not bind",
            ));
        }
        let mut l = Lineage::Constant;
        for r in &v.refs {
            l = l.merge(self.expr(r, scope)?);
        }
        Ok(l.transformed())
    }

    fn function_arg(
        &mut self,
        a: &FunctionArg,
        scope: &Scope<'_>,
    ) -> Result<Lineage, AnalyzeError> {
        let arg = match a {
            FunctionArg::Named { arg, .. }
            | FunctionArg::ExprNamed { arg, .. }
            | FunctionArg::Unnamed(arg) => arg,
        };
        Ok(match arg {
            FunctionArgExpr::Expr(e) => self.expr(e, scope)?,
            FunctionArgExpr::QualifiedWildcard(name) => {
                let parts = self.name_parts(name);
                match self.find_rel(&parts, scope) {
                    Some(cols) => whole_row(cols, RowEncoding::Composite),
                    None => {
                        Lineage::unknown(format!("relation {} is not in scope", parts.join(".")))
                    }
                }
            }
            // `count(*)`: no column value flows out.
            FunctionArgExpr::Wildcard | FunctionArgExpr::WildcardWithOptions(_) => {
                Lineage::Constant
            }
        })
    }

    fn function(&mut self, f: &ast::Function, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
        let parts = self.name_parts(&f.name);
        let full = parts.join(".");
        let base = parts.last().cloned().unwrap_or_default();
        // Predicate-like parts of a call: recorded as filters, not sources.
        if let Some(filter) = &f.filter {
            self.filter(filter, scope)?;
        }
        if let Some(WindowType::WindowSpec(w)) = &f.over {
            for p in &w.partition_by {
                self.filter(p, scope)?;
            }
            for o in &w.order_by {
                self.filter(&o.expr, scope)?;
            }
        }
        // Ordered-set aggregates return a value of their WITHIN GROUP column.
        let mut within = Lineage::Constant;
        for o in &f.within_group {
            within = within.merge(self.expr(&o.expr, scope)?);
        }
        let mut args: Vec<Lineage> = Vec::new();
        let mut literal_keys: Vec<Option<String>> = Vec::new();
        match &f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(q) => {
                let cols = self.query(q, scope.env, Some(scope))?;
                let mut l = Lineage::Constant;
                for c in cols {
                    l = l.merge(c.lineage);
                }
                args.push(l);
                literal_keys.push(None);
            }
            FunctionArguments::List(list) => {
                for a in &list.args {
                    args.push(self.function_arg(a, scope)?);
                    literal_keys.push(string_literal(a));
                }
                for c in &list.clauses {
                    match c {
                        FunctionArgumentClause::Where(e) => self.filter(e, scope)?,
                        FunctionArgumentClause::OrderBy(obs) => {
                            for o in obs {
                                self.filter(&o.expr, scope)?;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        if self.catalog.is_user_function(&full, self.search_path) {
            return Ok(Lineage::unknown(format!(
                "user-defined function {full} may read any table"
            )));
        }
        if crate::facts::is_in(&full, crate::facts::TABLE_READING_FUNCTIONS) {
            return Ok(Lineage::unknown(format!(
                "{full} returns data from tables or files named in its arguments"
            )));
        }
        // JSON of a whole row: keep the keys.
        if JSON_ROW_FUNCTIONS.contains(&base.as_str())
            && args.len() == 1
            && within == Lineage::Constant
        {
            let a = args.pop().unwrap_or(Lineage::Constant);
            return Ok(match a {
                Lineage::WholeRow { fields, .. } => Lineage::WholeRow {
                    encoding: RowEncoding::Json,
                    fields,
                },
                other => other.transformed(),
            });
        }
        if matches!(base.as_str(), "json_build_object" | "jsonb_build_object")
            && args.len().is_multiple_of(2)
            && literal_keys.iter().step_by(2).all(Option::is_some)
        {
            let mut fields = Vec::new();
            let mut it = args.into_iter().zip(literal_keys);
            while let (Some((_, Some(key))), Some((value, _))) = (it.next(), it.next()) {
                fields.push(RowField {
                    key,
                    lineage: value,
                });
            }
            return Ok(Lineage::WholeRow {
                encoding: RowEncoding::Json,
                fields,
            });
        }
        if base == "row" {
            let fields = args
                .into_iter()
                .enumerate()
                .map(|(i, l)| RowField {
                    key: format!("f{}", i + 1),
                    lineage: l,
                })
                .collect();
            return Ok(Lineage::WholeRow {
                encoding: RowEncoding::Composite,
                fields,
            });
        }
        let mut l = within;
        for a in args {
            l = l.merge(a);
        }
        Ok(l.transformed())
    }

    // ----- DML ---------------------------------------------------------------

    /// INSERT/UPDATE/DELETE/MERGE (top level or in a CTE): facts, and the
    /// RETURNING columns.
    pub(crate) fn dml(
        &mut self,
        st: &Statement,
        env: &Env<'_>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        self.facts.writes = true;
        match st {
            Statement::Insert(ins) => {
                let target = match &ins.table {
                    ast::TableObject::TableName(n) => self.table_name(n),
                    ast::TableObject::TableFunction(f) => self.table_name(&f.name),
                    ast::TableObject::TableQuery(_) => TableName::bare("?"),
                };
                let (target_scope, resolved) =
                    self.target_scope(&target, ins.table_alias.as_ref().map(|a| &a.alias));
                self.facts.tables_written.insert(resolved);
                if let Some(src) = &ins.source {
                    self.query(src, env, outer)?;
                }
                let mut scope_from = target_scope.clone();
                if let Some(ast::OnInsert::OnConflict(oc)) = &ins.on {
                    // `excluded` is the proposed row: same columns as the target.
                    let mut excluded = target_scope.clone();
                    for r in &mut excluded.rels {
                        r.qualifier = Some("excluded".to_owned());
                        r.schema = None;
                    }
                    excluded.star.clear();
                    scope_from.extend(excluded);
                    if let ast::OnConflictAction::DoUpdate(du) = &oc.action {
                        let scope = Scope {
                            from: vec![&scope_from],
                            parent: outer,
                            env,
                        };
                        for a in &du.assignments {
                            self.expr(&a.value, &scope)?;
                        }
                        if let Some(sel) = &du.selection {
                            self.filter(sel, &scope)?;
                        }
                    }
                }
                for a in &ins.assignments {
                    let scope = Scope {
                        from: Vec::new(),
                        parent: outer,
                        env,
                    };
                    self.expr(&a.value, &scope)?;
                }
                let scope = Scope {
                    from: vec![&target_scope],
                    parent: outer,
                    env,
                };
                self.returning(ins.returning.as_deref(), &scope)
            }
            Statement::Update(u) => {
                let (mut from, alias) = match &u.table.relation {
                    TableFactor::Table { name, alias, .. } => {
                        let tn = self.table_name(name);
                        let (scope, resolved) =
                            self.target_scope(&tn, alias.as_ref().map(|a| &a.name));
                        self.facts.tables_written.insert(resolved);
                        (scope, alias.is_some())
                    }
                    other => (self.table_factor(other, env, outer, &[])?, false),
                };
                let _ = alias;
                for j in &u.table.joins {
                    let right = self.table_factor(&j.relation, env, outer, &[&from])?;
                    from.extend(right);
                }
                if let Some(kind) = &u.from {
                    let tables = match kind {
                        ast::UpdateTableFromKind::BeforeSet(t)
                        | ast::UpdateTableFromKind::AfterSet(t) => t,
                    };
                    let extra = self.scope_of_from(tables, env, outer)?;
                    from.extend(extra);
                }
                let scope = Scope {
                    from: vec![&from],
                    parent: outer,
                    env,
                };
                self.where_of_write(u.selection.as_ref(), &scope)?;
                for a in &u.assignments {
                    self.expr(&a.value, &scope)?;
                }
                self.returning(u.returning.as_deref(), &scope)
            }
            Statement::Delete(d) => {
                let tables = match &d.from {
                    ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t) => t,
                };
                let mut from = FromScope::default();
                for (i, twj) in tables.iter().enumerate() {
                    match (&twj.relation, i) {
                        (TableFactor::Table { name, alias, .. }, 0) => {
                            let tn = self.table_name(name);
                            let (scope, resolved) =
                                self.target_scope(&tn, alias.as_ref().map(|a| &a.name));
                            self.facts.tables_written.insert(resolved);
                            from.extend(scope);
                        }
                        _ => {
                            let item = self.table_with_joins(twj, env, outer, &[&from])?;
                            from.extend(item);
                        }
                    }
                }
                for n in &d.tables {
                    let tn = self.table_name(n);
                    let resolved = self.resolved_name(&tn);
                    self.facts.tables_written.insert(resolved);
                }
                if let Some(using) = &d.using {
                    let extra = self.scope_of_from(using, env, outer)?;
                    from.extend(extra);
                }
                let scope = Scope {
                    from: vec![&from],
                    parent: outer,
                    env,
                };
                self.where_of_write(d.selection.as_ref(), &scope)?;
                self.returning(d.returning.as_deref(), &scope)
            }
            Statement::Merge(m) => {
                let mut from = match &m.table {
                    TableFactor::Table { name, alias, .. } => {
                        let tn = self.table_name(name);
                        let (scope, resolved) =
                            self.target_scope(&tn, alias.as_ref().map(|a| &a.name));
                        self.facts.tables_written.insert(resolved);
                        scope
                    }
                    other => self.table_factor(other, env, outer, &[])?,
                };
                let source = self.table_factor(&m.source, env, outer, &[])?;
                from.extend(source);
                let scope = Scope {
                    from: vec![&from],
                    parent: outer,
                    env,
                };
                self.filter(&m.on, &scope)?;
                for c in &m.clauses {
                    if let Some(p) = &c.predicate {
                        self.filter(p, &scope)?;
                    }
                    match &c.action {
                        ast::MergeAction::Update(u) => {
                            if let ast::MergeUpdateKind::Set(assignments) = &u.kind {
                                for a in assignments {
                                    self.expr(&a.value, &scope)?;
                                }
                            }
                        }
                        ast::MergeAction::Insert(i) => {
                            if let ast::MergeInsertKind::Values(v) = &i.kind {
                                for row in &v.rows {
                                    for x in &row.content {
                                        self.expr(x, &scope)?;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The scope of a DML target (not counted as read), and its resolved name.
    fn target_scope(&mut self, tn: &TableName, alias: Option<&Ident>) -> (FromScope, TableName) {
        let alias_name = alias.map(|a| self.ident(a));
        match self.resolve_relation(tn) {
            Some(rel) => {
                let cols = self.relation_cols(&rel);
                let (qualifier, schema) = match &alias_name {
                    Some(a) => (Some(a.clone()), None),
                    None => (Some(rel.name.clone()), Some(rel.schema.clone())),
                };
                let scope = match cols {
                    Ok(cols) => self.aliased(cols, None, qualifier, schema),
                    Err(reason) => unknown_rel(qualifier, schema, &reason),
                };
                (scope, rel.table_name())
            }
            None => (
                unknown_rel(
                    Some(alias_name.unwrap_or_else(|| tn.name.clone())),
                    None,
                    &format!("relation {tn} is not in the catalog"),
                ),
                tn.clone(),
            ),
        }
    }

    fn where_of_write(
        &mut self,
        selection: Option<&Expr>,
        scope: &Scope<'_>,
    ) -> Result<(), AnalyzeError> {
        match selection {
            None => self.facts.unbounded_write = true,
            Some(e) => {
                if is_constant_true(e) {
                    self.facts.unbounded_write = true;
                }
                self.filter(e, scope)?;
            }
        }
        Ok(())
    }

    fn returning(
        &mut self,
        items: Option<&[SelectItem]>,
        scope: &Scope<'_>,
    ) -> Result<Vec<Col>, AnalyzeError> {
        let Some(items) = items else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) => out.push(Col {
                    name: self.column_name(e),
                    lineage: self.expr(e, scope)?,
                }),
                SelectItem::ExprWithAlias { expr, alias } => out.push(Col {
                    name: self.ident(alias),
                    lineage: self.expr(expr, scope)?,
                }),
                SelectItem::Wildcard(_) => {
                    // `RETURNING *`: the target's columns and those of the
                    // FROM/USING relations, as PostgreSQL returns them.
                    let star: Vec<StarItem> = scope.star().cloned().collect();
                    out.extend(star_cols(&star));
                }
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(n),
                    _,
                ) => {
                    let parts = self.name_parts(n);
                    match self.find_rel(&parts, scope) {
                        Some(Ok(c)) => out.extend(c),
                        Some(Err(reason)) => out.push(unknown_star(&reason)),
                        None => out.push(unknown_star("relation not in scope")),
                    }
                }
                _ => out.push(unknown_star("RETURNING item not analysed")),
            }
        }
        Ok(out)
    }

    /// The columns `COPY table [(cols)] TO` sends: the table's, like `SELECT *`.
    pub(crate) fn copy_table_cols(&mut self, name: &ObjectName, columns: &[Ident]) -> Vec<Col> {
        let tn = self.table_name(name);
        let scope = self.named_relation(&tn, None, &Env::root());
        let all = star_cols(&scope.star);
        if columns.is_empty() || has_unknown_star(&all) {
            return all;
        }
        columns
            .iter()
            .map(|c| {
                let n = self.ident(c);
                all.iter().find(|x| x.name == n).cloned().unwrap_or(Col {
                    lineage: Lineage::unknown(format!("column {n} not found in {tn}")),
                    name: n,
                })
            })
            .collect()
    }

    // ----- names of output columns -------------------------------------------

    /// The column name PostgreSQL gives an unaliased expression (its
    /// `FigureColname` rules, best effort).
    pub(crate) fn column_name(&self, e: &Expr) -> String {
        self.figure_name(e).unwrap_or_else(|| "?column?".to_owned())
    }

    fn figure_name(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Identifier(i) => Some(self.ident(i)),
            Expr::CompoundIdentifier(parts) => parts.last().map(|i| self.ident(i)),
            Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last() {
                Some(ast::AccessExpr::Dot(Expr::Identifier(i))) => Some(self.ident(i)),
                _ => None,
            },
            Expr::Nested(inner) => self.figure_name(inner),
            Expr::Function(f) => self.name_parts(&f.name).pop(),
            Expr::Cast {
                expr, data_type, ..
            } => self
                .figure_name(expr)
                .or_else(|| Some(type_name(data_type))),
            Expr::Collate { expr, .. } => self.figure_name(expr),
            Expr::Case { .. } => Some("case".to_owned()),
            Expr::Array(_) => Some("array".to_owned()),
            Expr::Exists { .. } => Some("exists".to_owned()),
            Expr::Tuple(_) => Some("row".to_owned()),
            Expr::Substring { shorthand, .. } => {
                Some(if *shorthand { "substr" } else { "substring" }.to_owned())
            }
            Expr::Position { .. } => Some("position".to_owned()),
            Expr::Overlay { .. } => Some("overlay".to_owned()),
            Expr::Trim { .. } => Some("btrim".to_owned()),
            Expr::Extract { .. } => Some("extract".to_owned()),
            Expr::Ceil { .. } => Some("ceil".to_owned()),
            Expr::Floor { .. } => Some("floor".to_owned()),
            Expr::Interval(_) => Some("interval".to_owned()),
            Expr::AtTimeZone { .. } => Some("timezone".to_owned()),
            Expr::TypedString(t) => Some(type_name(&t.data_type)),
            Expr::Subquery(q) => match q.body.as_ref() {
                SetExpr::Select(s) => match s.projection.first() {
                    Some(SelectItem::ExprWithAlias { alias, .. }) => Some(self.ident(alias)),
                    Some(SelectItem::UnnamedExpr(e)) => self.figure_name(e),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        }
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

fn fold_str(dialect: SqlDialect, i: &Ident) -> String {
    fold_ident(dialect, i)
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
                        found.unwrap_or_else(|| {
                            Lineage::unknown(format!("column {rel}.{col} does not exist"))
                        })
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
