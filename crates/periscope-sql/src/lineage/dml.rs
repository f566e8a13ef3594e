//! INSERT, UPDATE, DELETE and MERGE, at top level or inside a CTE: targets,
//! predicates, unbounded writes and RETURNING columns.

use super::*;

impl Walker<'_> {
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
                let mut from = match &u.table.relation {
                    TableFactor::Table { name, alias, .. } => {
                        let tn = self.table_name(name);
                        let (scope, resolved) =
                            self.target_scope(&tn, alias.as_ref().map(|a| &a.name));
                        self.facts.tables_written.insert(resolved);
                        scope
                    }
                    other => self.table_factor(other, env, outer, &[])?,
                };
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
    pub(super) fn target_scope(
        &mut self,
        tn: &TableName,
        alias: Option<&Ident>,
    ) -> (FromScope, TableName) {
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

    pub(super) fn where_of_write(
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

    pub(super) fn returning(
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
}
