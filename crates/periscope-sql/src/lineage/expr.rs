//! Expressions: the lineage of a value from the columns it reads, and the
//! name PostgreSQL gives an unaliased output column.

use super::*;

impl Walker<'_> {
    // ----- expressions -------------------------------------------------------

    /// Records the catalog columns a predicate reads.
    pub(super) fn filter(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<(), AnalyzeError> {
        let l = self.expr(e, scope)?;
        self.record_filter(&l);
        Ok(())
    }

    pub(super) fn record_filter(&mut self, l: &Lineage) {
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

    pub(super) fn expr_inner(
        &mut self,
        e: &Expr,
        scope: &Scope<'_>,
    ) -> Result<Lineage, AnalyzeError> {
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
            // `x = ANY(ARRAY(SELECT ...))`, `x < ALL(array_col)`: like IN,
            // the result tells about both sides.
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                let l = self.expr(left, scope)?;
                l.merge(self.expr(right, scope)?).transformed()
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
    pub(super) fn binary_chain(
        &mut self,
        e: &Expr,
        scope: &Scope<'_>,
    ) -> Result<Lineage, AnalyzeError> {
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
    pub(super) fn generic(&mut self, e: &Expr, scope: &Scope<'_>) -> Result<Lineage, AnalyzeError> {
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

    pub(super) fn function_arg(
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

    pub(super) fn function(
        &mut self,
        f: &ast::Function,
        scope: &Scope<'_>,
    ) -> Result<Lineage, AnalyzeError> {
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
        // A built-in returning a composite (`pg_stat_get_activity(pid)` in
        // the select list) returns all of its output columns at once.
        if let Some(b) = self.catalog.builtin_function(&full, self.search_path)
            && let FunctionOutputs::Columns(cols) = &b.outputs
            && !crate::facts::is_opaque_builtin(&full)
        {
            for c in cols {
                l = l.merge(Lineage::column(ColumnRef::new(&b.schema, &b.name, c)));
            }
        }
        // Another session's statement text, as `pg_stat_activity.query`
        // shows it.
        if base == "pg_stat_get_backend_activity" {
            l = l.merge(Lineage::column(ColumnRef::new(
                "pg_catalog",
                "pg_stat_get_activity",
                "query",
            )));
        }
        Ok(l.transformed())
    }

    // ----- names of output columns -------------------------------------------

    /// The column name PostgreSQL gives an unaliased expression (its
    /// `FigureColname` rules, best effort).
    pub(crate) fn column_name(&self, e: &Expr) -> String {
        self.figure_name(e).unwrap_or_else(|| "?column?".to_owned())
    }

    pub(super) fn figure_name(&self, e: &Expr) -> Option<String> {
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
