//! `set_config(name, value, is_local)` calls that are a `SET` in disguise.
//!
//! Tools change settings with `set_config` where `SET` cannot be used: in a
//! query that also reads something (asyncpg: `SELECT current_setting('jit'),
//! set_config('jit', 'off', false)`), or restricted to one row of
//! `pg_settings` (pg_dump: `SELECT set_config(name, 'view, foreign-table',
//! false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'`;
//! pgAdmin: the same over `pg_show_all_settings()`). When every argument is
//! a constant (a literal, a `$n` parameter, or a cast of one), such a call
//! carries only what the client typed, exactly like `SET name = value`, so
//! the analysis reports it as a [`SettingChange`] and the guard applies the
//! rules of `SET` to it.
//!
//! Recognised only where it is plainly a `SET`: a call that is a whole
//! output column of a top-level `SELECT` without `FROM`, or whose `FROM` is
//! `pg_settings` / `pg_show_all_settings()` alone with `WHERE name =
//! '<literal>'` and nothing else (its `name` argument may then be that
//! column). Any other call, or any call whose name or value comes from a
//! column, a subquery or a function, makes the whole statement
//! unrecognised: `set_config('x.y', (SELECT email ...), false)` followed by
//! `current_setting('x.y')` would carry data past the masking.
//!
//! The setting's name must be a literal: a `$n` name is known only at Bind,
//! after the decision. A `search_path` value must be a literal too, so that
//! the proxy can track the path names resolve through.

use std::ops::ControlFlow;

use sqlparser::ast::{
    self, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart,
    SelectItem, SetExpr, Statement, TableFactor, Value, Visit, Visitor,
};

use crate::SqlDialect;
use crate::effects::{SessionEffect, search_path_text};
use crate::lineage::fold_ident;

/// A setting changed by a `set_config` call with constant arguments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SettingChange {
    /// The setting's name, lowercased as the server looks it up
    /// (`search_path`, `jit`, `app.tenant`).
    pub name: String,
    /// The new value.
    pub value: SettingValue,
    /// `is_local`: `Some(true)` lasts until the end of the transaction
    /// (`SET LOCAL`), `None` when it is a parameter.
    pub local: Option<bool>,
}

/// The value a [`SettingChange`] sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SettingValue {
    /// A literal, as text.
    Literal(String),
    /// A `$n` parameter of the extended protocol.
    Parameter(usize),
}

/// Whether a function name (as written, folded) is PostgreSQL's
/// `set_config`: bare (`pg_catalog` comes first on every path) or
/// `pg_catalog.set_config`.
fn is_set_config(name: &ast::ObjectName, dialect: SqlDialect) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => fold_ident(dialect, i),
            ObjectNamePart::Function(f) => fold_ident(dialect, &f.name),
        })
        .collect();
    match parts.as_slice() {
        [n] => n == "set_config",
        [s, n] => s == "pg_catalog" && n == "set_config",
        _ => false,
    }
}

/// Counts every call of `set_config` in a statement, wherever it is
/// (scalar, in FROM, in a view-free subquery...).
struct CountCalls {
    dialect: SqlDialect,
    calls: usize,
}

impl Visitor for CountCalls {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e
            && is_set_config(&f.name, self.dialect)
        {
            self.calls += 1;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Function { name, .. }
            | TableFactor::Table {
                name,
                args: Some(_),
                ..
            } if is_set_config(name, self.dialect) => self.calls += 1,
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// A constant: a literal, a `$n` parameter, a cast of one, in parentheses or
/// not.
enum Constant {
    Text(String),
    Bool(bool),
    Parameter(usize),
}

fn constant(e: &Expr) -> Option<Constant> {
    match e {
        Expr::Nested(x) => constant(x),
        Expr::Cast { expr, .. } => constant(expr),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => Some(Constant::Text(s.clone())),
            Value::DollarQuotedString(d) => Some(Constant::Text(d.value.clone())),
            Value::Number(n, _) => Some(Constant::Text(n.clone())),
            Value::Boolean(b) => Some(Constant::Bool(*b)),
            Value::Placeholder(p) => p
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .map(Constant::Parameter),
            _ => None,
        },
        _ => None,
    }
}

fn arg_expr(a: &FunctionArg) -> Option<&Expr> {
    match a {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

/// `set_config(name, value, is_local)` with constant arguments. `row_name`
/// is the literal the narrow `FROM pg_settings WHERE name = '...'` shape
/// gives the `name` column, when the statement has that shape.
fn constant_call(
    f: &ast::Function,
    dialect: SqlDialect,
    row_name: Option<&str>,
) -> Option<SettingChange> {
    if !is_set_config(&f.name, dialect)
        || f.filter.is_some()
        || f.over.is_some()
        || !f.within_group.is_empty()
    {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if !list.clauses.is_empty() || list.duplicate_treatment.is_some() {
        return None;
    }
    let [name, value, local] = list.args.as_slice() else {
        return None;
    };
    let name = match arg_expr(name)? {
        Expr::Identifier(i) if fold_ident(dialect, i) == "name" => row_name?.to_owned(),
        e => match constant(e)? {
            Constant::Text(s) => s,
            _ => return None,
        },
    };
    let value = match constant(arg_expr(value)?)? {
        Constant::Text(s) => SettingValue::Literal(s),
        Constant::Bool(b) => SettingValue::Literal(b.to_string()),
        Constant::Parameter(n) => SettingValue::Parameter(n),
    };
    let local = match constant(arg_expr(local)?)? {
        Constant::Bool(b) => Some(b),
        Constant::Text(s) => match s.to_ascii_lowercase().as_str() {
            "t" | "true" | "on" | "yes" | "1" => Some(true),
            "f" | "false" | "off" | "no" | "0" => Some(false),
            _ => return None,
        },
        Constant::Parameter(_) => None,
    };
    Some(SettingChange {
        name: name.to_ascii_lowercase(),
        value,
        local,
    })
}

/// The literal of `WHERE name = '<literal>'` (either side).
fn name_equals(e: &Expr, dialect: SqlDialect) -> Option<String> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = e
    else {
        return None;
    };
    let is_name = |x: &Expr| matches!(x, Expr::Identifier(i) if fold_ident(dialect, i) == "name");
    let literal = |x: &Expr| match x {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    if is_name(left) {
        literal(right)
    } else if is_name(right) {
        literal(left)
    } else {
        None
    }
}

/// Whether a FROM item is `pg_settings` or `pg_show_all_settings()`
/// (bare or in `pg_catalog`), without alias.
fn is_settings_relation(tf: &TableFactor, dialect: SqlDialect) -> bool {
    let name_is = |name: &ast::ObjectName, wanted: &str| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(|i| fold_ident(dialect, i)))
            .collect();
        match parts.as_slice() {
            [n] => n == wanted,
            [s, n] => s == "pg_catalog" && n == wanted,
            _ => false,
        }
    };
    let no_args = |args: &[FunctionArg]| args.is_empty();
    match tf {
        TableFactor::Table {
            name,
            alias: None,
            args: None,
            with_hints,
            version: None,
            partitions,
            ..
        } => with_hints.is_empty() && partitions.is_empty() && name_is(name, "pg_settings"),
        TableFactor::Table {
            name,
            alias: None,
            args: Some(args),
            ..
        } => no_args(&args.args) && name_is(name, "pg_show_all_settings"),
        TableFactor::Function {
            lateral: false,
            name,
            args,
            alias: None,
            ..
        } => no_args(args) && name_is(name, "pg_show_all_settings"),
        _ => false,
    }
}

/// The settings a statement changes through `set_config`, when it calls
/// `set_config` and every call is a recognised constant one (see the
/// module documentation); `None` otherwise, including when it never calls
/// it.
pub(crate) fn of(st: &Statement, dialect: SqlDialect) -> Option<Vec<SettingChange>> {
    let mut counter = CountCalls { dialect, calls: 0 };
    let _ = st.visit(&mut counter);
    if counter.calls == 0 {
        return None;
    }
    let Statement::Query(q) = st else {
        return None;
    };
    if q.with.is_some() || !q.locks.is_empty() {
        return None;
    }
    let SetExpr::Select(sel) = q.body.as_ref() else {
        return None;
    };
    if sel.into.is_some() {
        return None;
    }
    let row_name = match sel.from.as_slice() {
        [] => {
            if sel.selection.is_some() {
                return None;
            }
            None
        }
        [only] if only.joins.is_empty() && is_settings_relation(&only.relation, dialect) => {
            let grouped = match &sel.group_by {
                ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
                ast::GroupByExpr::All(_) => true,
            };
            if grouped || sel.having.is_some() {
                return None;
            }
            Some(name_equals(sel.selection.as_ref()?, dialect)?)
        }
        _ => return None,
    };
    let mut changes = Vec::new();
    for item in &sel.projection {
        let e = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        if let Expr::Function(f) = e
            && is_set_config(&f.name, dialect)
        {
            changes.push(constant_call(f, dialect, row_name.as_deref())?);
        }
    }
    if changes.len() != counter.calls {
        return None;
    }
    // The path names resolve through must stay known.
    if changes
        .iter()
        .any(|c| c.name == "search_path" && !matches!(c.value, SettingValue::Literal(_)))
    {
        return None;
    }
    Some(changes)
}

/// The session effects of recognised changes: the `search_path` ones.
pub(crate) fn effects(changes: &[SettingChange]) -> Vec<SessionEffect> {
    changes
        .iter()
        .filter(|c| c.name == "search_path")
        .filter_map(|c| match &c.value {
            SettingValue::Literal(text) => Some(SessionEffect::SearchPath {
                path: search_path_text(text),
                local: c.local.unwrap_or(false),
            }),
            SettingValue::Parameter(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnalyzeOptions, StaticCatalog, analyze};

    fn settings(sql: &str) -> Vec<SettingChange> {
        let catalog = StaticCatalog::new();
        let a = analyze(sql, &catalog, &AnalyzeOptions::default()).unwrap();
        a.statements[0].settings.clone()
    }

    fn change(name: &str, value: SettingValue, local: Option<bool>) -> SettingChange {
        SettingChange {
            name: name.into(),
            value,
            local,
        }
    }

    fn lit(s: &str) -> SettingValue {
        SettingValue::Literal(s.into())
    }

    #[test]
    fn the_clients_constant_calls_are_settings() {
        // pg_dump's first statement.
        assert_eq!(
            settings("SELECT pg_catalog.set_config('search_path', '', false);"),
            [change("search_path", lit(""), Some(false))]
        );
        // asyncpg's type introspection, literal then parameter.
        assert_eq!(
            settings(
                "SELECT current_setting('jit') AS cur, set_config('jit', 'off', false) AS new"
            ),
            [change("jit", lit("off"), Some(false))]
        );
        assert_eq!(
            settings("SELECT set_config('jit', $1, false)"),
            [change("jit", SettingValue::Parameter(1), Some(false))]
        );
        // Casts of constants, SET LOCAL, case folding of the name.
        assert_eq!(
            settings("SELECT set_config('Statement_Timeout'::text, 5000::text, 'true'::bool)"),
            [change("statement_timeout", lit("5000"), Some(true))]
        );
        // pg_dump >= 15.8: the name from the single row of pg_settings.
        assert_eq!(
            settings(
                "SELECT set_config(name, 'view, foreign-table', false) FROM pg_settings \
                 WHERE name = 'restrict_nonsystem_relation_kind'"
            ),
            [change(
                "restrict_nonsystem_relation_kind",
                lit("view, foreign-table"),
                Some(false)
            )]
        );
        // pgAdmin's connect string, over pg_show_all_settings().
        assert_eq!(
            settings(
                "SELECT set_config('bytea_output','hex',false) FROM pg_show_all_settings() \
                 WHERE name = 'bytea_output'"
            ),
            [change("bytea_output", lit("hex"), Some(false))]
        );
    }

    #[test]
    fn calls_that_can_carry_data_are_not_settings() {
        for sql in [
            // Values from a subquery, a column, a function.
            "SELECT set_config('x.y', (SELECT 'a'), false)",
            "SELECT set_config('x.y', setting, false) FROM pg_settings WHERE name = 'jit'",
            "SELECT set_config('x.y', current_user, false)",
            "SELECT set_config('x.y', upper('a'), false)",
            // Any FROM but the narrow settings shape.
            "SELECT set_config('jit', 'off', false) FROM t",
            "SELECT set_config('jit', 'off', false) FROM pg_settings",
            "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name LIKE 'j%'",
            "SELECT set_config(name, 'off', false) FROM pg_settings s WHERE name = 'jit'",
            "SELECT set_config('jit', 'off', false) WHERE true",
            // A call that is not a whole output column, or a second,
            // unrecognised one.
            "SELECT upper(set_config('jit', 'off', false))",
            "SELECT set_config('jit', 'off', false), set_config('x.y', (SELECT 'a'), false)",
            "SELECT * FROM set_config('jit', 'off', false)",
            "SELECT 1 WHERE set_config('jit', 'off', false) = 'off'",
            // The name known only at Bind; a search_path the proxy cannot
            // follow; another schema's set_config.
            "SELECT set_config($1, 'off', false)",
            "SELECT set_config('search_path', $1, false)",
            "SELECT public.set_config('jit', 'off', false)",
            // Not a plain SELECT.
            "WITH c AS (SELECT 1) SELECT set_config('jit', 'off', false)",
            "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'jit' FOR UPDATE",
        ] {
            assert_eq!(settings(sql), [], "{sql}");
        }
        assert_eq!(settings("SELECT current_setting('jit')"), []);
    }

    #[test]
    fn a_constant_search_path_is_a_session_effect() {
        let catalog = StaticCatalog::new();
        let a = analyze(
            "SELECT pg_catalog.set_config('search_path', '\"$user\", sales', true)",
            &catalog,
            &AnalyzeOptions::default(),
        )
        .unwrap();
        assert_eq!(
            a.statements[0].effects,
            [SessionEffect::SearchPath {
                path: vec!["$user".into(), "sales".into()],
                local: true
            }]
        );
        // Later statements of the string resolve through it.
        let mut catalog = StaticCatalog::new();
        catalog.add_table("sales", "t", &["a"]);
        let a = analyze(
            "SELECT set_config('search_path', 'sales', false); SELECT a FROM t",
            &catalog,
            &AnalyzeOptions::default(),
        )
        .unwrap();
        assert_eq!(
            a.statements[1]
                .tables_read
                .iter()
                .next()
                .unwrap()
                .to_string(),
            "sales.t"
        );
    }

    #[test]
    fn turning_read_only_off_through_set_config_lifts_the_backstop() {
        let catalog = StaticCatalog::new();
        for sql in [
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            "SELECT set_config('transaction_read_only', $1, true)",
        ] {
            let a = analyze(sql, &catalog, &AnalyzeOptions::default()).unwrap();
            assert!(a.statements[0].lifts_read_only, "{sql}");
        }
        let a = analyze(
            "SELECT set_config('jit', 'off', false)",
            &catalog,
            &AnalyzeOptions::default(),
        )
        .unwrap();
        assert!(!a.statements[0].lifts_read_only);
    }
}
