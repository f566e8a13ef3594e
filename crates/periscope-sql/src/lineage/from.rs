//! FROM items: tables, views, CTE references, subqueries, joins and
//! set-returning functions, each becoming named columns with lineage.

use super::*;

impl Walker<'_> {
    // ----- FROM --------------------------------------------------------------

    pub(super) fn scope_of_from(
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

    pub(super) fn table_with_joins(
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
    pub(super) fn table_factor(
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

    pub(super) fn table_factor_inner(
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
    pub(super) fn named_relation(
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
                let stored = !matches!(rel.kind, RelationKind::View | RelationKind::Other);
                match cols {
                    Ok(cols) => {
                        let mut scope = self.aliased(cols, alias, qualifier, schema);
                        for r in &mut scope.rels {
                            r.system_columns = stored;
                        }
                        scope
                    }
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
    pub(super) fn relation_cols(&mut self, rel: &Relation) -> Cols {
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
        // The definition is text from the catalog, which a DDL grant could
        // have shaped: it gets the same bounds as the user's own SQL.
        let toks = crate::lexer::lex(def, self.dialect);
        if crate::lexer::longest_operator_chain(def, &toks) > self.max_operator_chain {
            return Err(format!(
                "the definition of view {name} is too deeply nested"
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
    pub(super) fn aliased(
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
                system_columns: false,
            }],
        }
    }

    /// A function in FROM (`unnest`, `jsonb_each`, `generate_series`, ...).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn table_function(
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
        if names.is_none()
            && !user_defined
            && !crate::facts::is_opaque_builtin(fname)
            && let Some(builtin) = self.catalog.builtin_function(fname, self.search_path)
        {
            return Ok(self.builtin_function_rel(&builtin, &derived, with_ordinality, alias));
        }
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

    /// A built-in function in FROM whose outputs the catalog knows: each
    /// column derives from the function's own output column (server
    /// metadata, which the proxy classifies like a system column) and from
    /// its arguments (`pg_options_to_table(attfdwoptions)` returns what its
    /// argument holds).
    fn builtin_function_rel(
        &self,
        f: &BuiltinFunction,
        args: &Lineage,
        with_ordinality: bool,
        alias: Option<&TableAlias>,
    ) -> FromScope {
        let schema: std::sync::Arc<str> = f.schema.as_str().into();
        let table: std::sync::Arc<str> = f.name.as_str().into();
        let names = match &f.outputs {
            FunctionOutputs::Scalar => vec![f.name.clone()],
            FunctionOutputs::Columns(c) => c.clone(),
            FunctionOutputs::Dynamic => {
                let reason = format!("the columns of {} depend on the call", f.name);
                return unknown_rel(alias.map(|a| self.ident(&a.name)), None, &reason);
            }
        };
        let mut cols: Vec<Col> = names
            .into_iter()
            .map(|n| {
                let own = Lineage::column(ColumnRef {
                    schema: schema.clone(),
                    table: table.clone(),
                    column: n.as_str().into(),
                });
                Col {
                    name: n,
                    lineage: own.merge(args.clone()),
                }
            })
            .collect();
        let single = cols.len() == 1 && f.outputs == FunctionOutputs::Scalar;
        if with_ordinality {
            cols.push(Col {
                name: "ordinality".to_owned(),
                lineage: Lineage::Constant,
            });
        }
        if let Some(a) = alias
            && a.columns.is_empty()
            && single
        {
            cols[0].name = self.ident(&a.name);
        }
        self.aliased(cols, alias, Some(f.name.clone()), None)
    }

    pub(super) fn find_rel(&self, parts: &[String], scope: &Scope<'_>) -> Option<Cols> {
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
}
