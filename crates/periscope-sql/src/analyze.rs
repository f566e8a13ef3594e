//! The driver: split a query string into statements, parse, classify, walk.

use std::collections::BTreeSet;

use sqlparser::ast::{self, Expr, ObjectType, Statement, Value};
use sqlparser::parser::{Parser, ParserError};

use crate::catalog::{Catalog, TableName};
use crate::copy;
use crate::effects::{self, SessionEffect};
use crate::error::AnalyzeError;
use crate::facts::{self, WRITING_FUNCTIONS};
use crate::lexer::{self, Piece, TokKind};
use crate::lineage::{self, Col, Env, Walker};
use crate::model::{
    Analysis, CopySource, CopyTarget, Lineage, LockMode, OutputColumn, StatementAnalysis,
    StatementClass,
};
use crate::settings;
use crate::{AnalyzeOptions, SqlDialect};

/// Analyses a query string that may hold several statements.
///
/// Each statement is parsed on its own, so one the parser does not know but
/// that is recognised by its leading keywords (`DO`, `CHECKPOINT`, `ALTER
/// SYSTEM`, ...) still gets a class (with `parsed == false`). Any other parse
/// failure fails the whole string: the proxy refuses what it cannot analyse.
///
/// # Errors
///
/// [`AnalyzeError::Parse`] with the position in the whole string,
/// [`AnalyzeError::TooDeep`] when nesting exceeds the limits of `opts`,
/// [`AnalyzeError::Unsupported`] for statements of other dialects.
pub fn analyze(
    sql: &str,
    catalog: &dyn Catalog,
    opts: &AnalyzeOptions,
) -> Result<Analysis, AnalyzeError> {
    let toks = lexer::lex(sql, opts.dialect);
    let pieces = lexer::split_statements(sql, &toks);
    let mut search_path = opts.search_path.clone();
    let mut statements = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let st = analyze_piece(sql, piece, i + 1, catalog, opts, &search_path)?;
        // Later statements of the string resolve names through the path the
        // earlier ones set.
        for effect in &st.effects {
            match effect {
                SessionEffect::SearchPath { path, .. } => search_path = path.clone(),
                SessionEffect::SearchPathReset { .. } => search_path = opts.search_path.clone(),
                _ => {}
            }
        }
        statements.push(st);
    }
    Ok(Analysis { statements })
}

fn analyze_piece(
    sql: &str,
    piece: &Piece,
    index: usize,
    catalog: &dyn Catalog,
    opts: &AnalyzeOptions,
    search_path: &[String],
) -> Result<StatementAnalysis, AnalyzeError> {
    let text = &sql[piece.start..piece.end];
    let normalized = lexer::render_normalized(sql, &piece.toks);
    let fingerprint = lexer::fnv1a(normalized.as_bytes());
    let words = lexer::leading_words(sql, &piece.toks, 3);

    // `TABLE name` is `SELECT * FROM name`; the parser lacks the short form.
    let rewritten;
    let parse_text = if words.first().map(String::as_str) == Some("table") {
        let after = piece.toks[0].end;
        rewritten = format!("SELECT * FROM{}", &sql[after..piece.end]);
        rewritten.as_str()
    } else {
        text
    };
    // `a OPERATOR(pg_catalog.=) ANY (b)` (pg_dump's table patterns): the
    // parser knows qualified operators but not before ANY/ALL; the built-in
    // operator is the plain one, which the lineage treats alike.
    let unqualified;
    let parse_text = match unqualify_builtin_operators(parse_text, opts.dialect) {
        Some(t) => {
            unqualified = t;
            unqualified.as_str()
        }
        None => parse_text,
    };

    if lexer::longest_operator_chain(sql, &piece.toks) > opts.max_operator_chain {
        return Err(AnalyzeError::TooDeep {
            limit: opts.max_operator_chain,
        });
    }
    let dialect = opts.dialect.parser_dialect();
    let parsed = Parser::new(dialect.as_ref())
        .with_recursion_limit(opts.parser_recursion_limit)
        .try_with_sql(parse_text)
        .and_then(|mut p| p.parse_statements());
    let mut base = StatementAnalysis {
        class: StatementClass::Other(String::new()),
        parsed: true,
        writes: false,
        locks: false,
        unbounded_write: false,
        tables_read: BTreeSet::new(),
        tables_written: BTreeSet::new(),
        functions: BTreeSet::new(),
        outputs: Vec::new(),
        outputs_exact: true,
        filter_columns: BTreeSet::new(),
        normalized,
        fingerprint,
        effects: Vec::new(),
        lifts_read_only: false,
        settings: Vec::new(),
        range: piece.start..piece.end,
    };
    let statement = match parsed {
        Ok(mut stmts) if stmts.len() == 1 => stmts.remove(0),
        Ok(stmts) => {
            return Err(AnalyzeError::Unsupported(format!(
                "statement {index} parsed as {} statements",
                stmts.len()
            )));
        }
        Err(e) => {
            if let Some(class) =
                classify_words(&words).filter(|_| !matches!(e, ParserError::RecursionLimitExceeded))
            {
                base.parsed = false;
                base.writes = class.is_data_write();
                base.outputs_exact = !matches!(class, StatementClass::Show);
                base.functions = lexical_functions(sql, &piece.toks, opts.dialect);
                base.lifts_read_only = effects::lifts_read_only(&class, &base.normalized);
                base.class = class;
                return Ok(base);
            }
            return Err(parse_error(
                e,
                sql,
                piece,
                index,
                opts.parser_recursion_limit,
            ));
        }
    };

    let mut walker = Walker::new(catalog, search_path, opts);
    let walked = walk_statement(&mut walker, &statement, &words)?;
    let visited = facts::visit(&statement, opts.dialect);

    let mut functions = visited.functions;
    functions.extend(std::mem::take(&mut walker.facts.functions));
    let mut written: BTreeSet<TableName> = std::mem::take(&mut walker.facts.tables_written);
    for t in &walked.written {
        written.insert(walker.resolved_name(t));
    }
    let mut read = std::mem::take(&mut walker.facts.tables_read);
    for r in visited.relations {
        if r.schema.is_none() && visited.cte_names.contains(&r.name) {
            continue;
        }
        let resolved = walker.resolved_name(&r);
        if !written.contains(&resolved) {
            read.insert(resolved);
        }
    }

    let executes = walked.executes;
    base.writes = executes
        && (walked.class.is_data_write()
            || walker.facts.writes
            || visited.nested_write
            || walked.writes
            || functions.iter().any(|f| facts::is_in(f, WRITING_FUNCTIONS)));
    base.locks = executes
        && (walker.facts.locks
            || visited.locks
            || matches!(walked.class, StatementClass::Lock { mode } if !mode.is_read()));
    base.unbounded_write = executes && (walker.facts.unbounded_write || walked.unbounded);
    base.outputs_exact = walked.exact && !lineage::has_unknown_star(&walked.outputs);
    base.outputs = walked
        .outputs
        .into_iter()
        .map(|c| OutputColumn {
            name: c.name,
            lineage: c.lineage,
        })
        .collect();
    base.lifts_read_only = effects::lifts_read_only(&walked.class, &base.normalized);
    base.class = walked.class;
    base.tables_read = read;
    base.tables_written = written;
    base.functions = functions;
    base.filter_columns = std::mem::take(&mut walker.facts.filter_columns);
    base.effects = effects::of(&statement, opts.dialect);
    if let Some(changes) = settings::of(&statement, opts.dialect) {
        base.effects.extend(settings::effects(&changes));
        base.lifts_read_only |= changes.iter().any(|c| {
            matches!(
                c.name.as_str(),
                "default_transaction_read_only" | "transaction_read_only"
            )
        });
        base.settings = changes;
    }
    Ok(base)
}

/// What walking one statement found, beyond the walker's facts.
struct Walked {
    class: StatementClass,
    outputs: Vec<Col>,
    exact: bool,
    written: Vec<TableName>,
    writes: bool,
    unbounded: bool,
    /// False for plain `EXPLAIN`: the inner statement is planned, not run.
    executes: bool,
}

impl Walked {
    fn new(class: StatementClass) -> Self {
        Walked {
            class,
            outputs: Vec::new(),
            exact: true,
            written: Vec::new(),
            writes: false,
            unbounded: false,
            executes: true,
        }
    }
}

fn walk_statement(
    w: &mut Walker<'_>,
    st: &Statement,
    words: &[String],
) -> Result<Walked, AnalyzeError> {
    let env = Env::root();
    Ok(match st {
        Statement::Query(q) => {
            let outputs = w.query(q, &env, None)?;
            match select_into(q) {
                Some(target) => {
                    let mut r = Walked::new(StatementClass::Ddl);
                    r.written.push(target);
                    r.writes = true;
                    r
                }
                None => {
                    // `WITH ... INSERT/UPDATE/DELETE/MERGE` parses as a query
                    // whose body is the data-modifying statement.
                    let class = match q.body.as_ref() {
                        ast::SetExpr::Insert(_) => StatementClass::Insert,
                        ast::SetExpr::Update(_) => StatementClass::Update,
                        ast::SetExpr::Delete(_) => StatementClass::Delete,
                        ast::SetExpr::Merge(_) => StatementClass::Merge,
                        _ => StatementClass::Select,
                    };
                    let mut r = Walked::new(class);
                    r.outputs = outputs;
                    r
                }
            }
        }
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_) => {
            let class = match st {
                Statement::Insert(_) => StatementClass::Insert,
                Statement::Update(_) => StatementClass::Update,
                Statement::Delete(_) => StatementClass::Delete,
                _ => StatementClass::Merge,
            };
            let mut r = Walked::new(class);
            r.outputs = w.dml(st, &env, None)?;
            r
        }
        Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } => {
            if *to {
                let target = match target {
                    ast::CopyTarget::File { .. } => CopyTarget::File,
                    ast::CopyTarget::Program { .. } => CopyTarget::Program,
                    ast::CopyTarget::Stdout | ast::CopyTarget::Stdin => CopyTarget::Stdout,
                };
                let format = copy::format_of(options, legacy_options);
                let mut r = Walked::new(StatementClass::CopyTo { target, format });
                r.outputs = match source {
                    ast::CopySource::Table {
                        table_name,
                        columns,
                    } => w.copy_table_cols(table_name, columns),
                    ast::CopySource::Query(q) => w.query(q, &env, None)?,
                };
                r
            } else {
                let from = match target {
                    ast::CopyTarget::File { .. } => CopySource::File,
                    ast::CopyTarget::Program { .. } => CopySource::Program,
                    ast::CopyTarget::Stdin | ast::CopyTarget::Stdout => CopySource::Stdin,
                };
                let mut r = Walked::new(StatementClass::CopyFrom { source: from });
                if let ast::CopySource::Table { table_name, .. } = source {
                    r.written.push(w.table_name(table_name));
                }
                r
            }
        }
        Statement::Explain {
            analyze,
            statement,
            options,
            ..
        } => {
            let analyze = *analyze || explain_option_analyze(options.as_deref());
            let inner_words: Vec<String> = Vec::new();
            let inner = walk_statement(w, statement, &inner_words)?;
            let mut r = Walked::new(StatementClass::Explain {
                analyze,
                inner: Box::new(inner.class),
            });
            // The plan text carries no row values; what EXPLAIN ANALYZE runs
            // is judged through the inner class and the facts.
            r.outputs = vec![Col {
                name: "QUERY PLAN".to_owned(),
                lineage: Lineage::Constant,
            }];
            r.written = inner.written;
            r.writes = inner.writes;
            r.unbounded = inner.unbounded;
            r.executes = analyze && inner.executes;
            r
        }
        Statement::Prepare {
            name, statement, ..
        } => {
            let inner = walk_statement(w, statement, &[])?;
            let mut r = Walked::new(StatementClass::Prepare {
                name: w.ident(name),
                inner: Box::new(inner.class),
            });
            r.outputs = inner.outputs;
            r.exact = inner.exact;
            r.written = inner.written;
            r.writes = inner.writes;
            r.unbounded = inner.unbounded;
            r
        }
        Statement::Execute { name, .. } => {
            let name = name
                .as_ref()
                .map(|n| w.table_name(n).name)
                .unwrap_or_default();
            let mut r = Walked::new(StatementClass::Execute { name });
            r.exact = false;
            r
        }
        Statement::Deallocate { .. } => Walked::new(StatementClass::Deallocate),
        Statement::Declare { stmts, .. } => {
            let mut r = Walked::new(StatementClass::Other("declare".to_owned()));
            for d in stmts {
                if let Some(q) = &d.for_query {
                    r.outputs = w.query(q, &env, None)?;
                    r.class = StatementClass::Declare {
                        name: d.names.first().map(|n| w.ident(n)).unwrap_or_default(),
                        inner: Box::new(StatementClass::Select),
                    };
                }
            }
            r
        }
        Statement::Fetch { name, .. } => {
            let mut r = Walked::new(StatementClass::Fetch {
                cursor: w.ident(name),
            });
            r.exact = false;
            r
        }
        Statement::Close { .. } => Walked::new(StatementClass::Close),
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => Walked::new(StatementClass::Transaction),
        Statement::Set(s) => Walked::new(StatementClass::Set {
            variable: set_variable(s, w),
        }),
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| w.ident(i))
                .collect::<Vec<_>>()
                .join(" ");
            let mut r = Walked::new(StatementClass::Show);
            let names: Vec<&str> = if name == "all" {
                vec!["name", "setting", "description"]
            } else {
                vec![name.as_str()]
            };
            r.outputs = names
                .into_iter()
                .map(|n| Col {
                    name: n.to_owned(),
                    lineage: Lineage::Constant,
                })
                .collect();
            r
        }
        Statement::Reset(_) => Walked::new(StatementClass::Reset),
        Statement::Call(_) => Walked::new(StatementClass::Call),
        Statement::LISTEN { .. } | Statement::UNLISTEN { .. } => {
            Walked::new(StatementClass::Listen)
        }
        Statement::NOTIFY { .. } => Walked::new(StatementClass::Notify),
        Statement::Vacuum(_) => Walked::new(StatementClass::Vacuum),
        Statement::Analyze(_) => Walked::new(StatementClass::Analyze),
        Statement::Discard { .. } => Walked::new(StatementClass::Discard),
        Statement::Lock(lock) => Walked::new(StatementClass::Lock {
            mode: lock
                .lock_mode
                .as_ref()
                .map_or(LockMode::AccessExclusive, lock_mode),
        }),
        // PostgreSQL's LOAD loads a shared library into the server.
        Statement::Load { .. } => Walked::new(StatementClass::Other("load".to_owned())),
        Statement::Grant(_)
        | Statement::Revoke(_)
        | Statement::GrantRole(_)
        | Statement::RevokeRole(_)
        | Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::CreateUser(_)
        | Statement::AlterUser(_)
        | Statement::AlterDefaultPrivileges(_) => Walked::new(StatementClass::Dcl),
        Statement::Drop {
            object_type, names, ..
        } => match object_type {
            ObjectType::Role | ObjectType::User => Walked::new(StatementClass::Dcl),
            ObjectType::Table | ObjectType::View | ObjectType::MaterializedView => {
                let mut r = Walked::new(StatementClass::Ddl);
                r.written = names.iter().map(|n| w.table_name(n)).collect();
                r
            }
            _ => Walked::new(StatementClass::Ddl),
        },
        Statement::Truncate(t) => {
            let mut r = Walked::new(StatementClass::Ddl);
            r.written = t
                .table_names
                .iter()
                .map(|n| w.table_name(&n.name))
                .collect();
            r.writes = true;
            r.unbounded = true;
            r
        }
        Statement::CreateTable(ct) => {
            let mut r = Walked::new(StatementClass::Ddl);
            r.written.push(w.table_name(&ct.name));
            if let Some(q) = &ct.query {
                w.query(q, &env, None)?;
                r.writes = true;
            }
            r
        }
        Statement::CreateView(cv) => {
            let mut r = Walked::new(StatementClass::Ddl);
            r.written.push(w.table_name(&cv.name));
            w.query(&cv.query, &env, None)?;
            r
        }
        Statement::AlterTable(at) => {
            let mut r = Walked::new(StatementClass::Ddl);
            r.written.push(w.table_name(&at.name));
            r
        }
        Statement::CopyIntoSnowflake { .. }
        | Statement::Msck(_)
        | Statement::Install { .. }
        | Statement::Directory { .. }
        | Statement::LockTables { .. }
        | Statement::UnlockTables
        | Statement::Use(_)
        | Statement::Pragma { .. }
        | Statement::Kill { .. }
        | Statement::AttachDatabase { .. }
        | Statement::AttachDuckDBDatabase { .. }
        | Statement::DetachDuckDBDatabase { .. } => {
            return Err(AnalyzeError::Unsupported(format!(
                "{} is not a PostgreSQL statement",
                words.join(" ").to_uppercase()
            )));
        }
        _ => Walked::new(
            classify_words(words).unwrap_or_else(|| StatementClass::Other(words.join(" "))),
        ),
    })
}

/// `OPERATOR(pg_catalog.op)` written as `op`, outside literals and
/// comments; `None` when the text has none.
fn unqualify_builtin_operators(text: &str, dialect: SqlDialect) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !lower.contains("operator") {
        return None;
    }
    let toks = lexer::lex(text, dialect);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for t in toks.iter().filter(|t| t.kind == TokKind::Word) {
        if !text[t.start..t.end].eq_ignore_ascii_case("operator") || t.start < copied {
            continue;
        }
        let rest = &text[t.end..];
        let Some(inner_start) = rest.find(|c: char| !c.is_whitespace()) else {
            continue;
        };
        if !rest[inner_start..].starts_with('(') {
            continue;
        }
        let Some(close) = rest[inner_start..].find(')') else {
            continue;
        };
        let inner = rest[inner_start + 1..inner_start + close].trim();
        let Some((schema, op)) = inner.split_once('.') else {
            continue;
        };
        let op = op.trim();
        let is_operator = !op.is_empty() && op.chars().all(|c| "+-*/<>=~!@#%^&|`?".contains(c));
        if !schema.trim().eq_ignore_ascii_case("pg_catalog") || !is_operator {
            continue;
        }
        out.push_str(&text[copied..t.start]);
        out.push(' ');
        out.push_str(op);
        out.push(' ');
        copied = t.end + inner_start + close + 1;
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

fn lock_mode(m: &ast::LockTableMode) -> LockMode {
    match m {
        ast::LockTableMode::AccessShare => LockMode::AccessShare,
        ast::LockTableMode::RowShare => LockMode::RowShare,
        ast::LockTableMode::RowExclusive => LockMode::RowExclusive,
        ast::LockTableMode::ShareUpdateExclusive => LockMode::ShareUpdateExclusive,
        ast::LockTableMode::Share => LockMode::Share,
        ast::LockTableMode::ShareRowExclusive => LockMode::ShareRowExclusive,
        ast::LockTableMode::Exclusive => LockMode::Exclusive,
        ast::LockTableMode::AccessExclusive => LockMode::AccessExclusive,
    }
}

/// `SELECT ... INTO t`: the target table, as written.
fn select_into(q: &ast::Query) -> Option<TableName> {
    let ast::SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let into = s.into.as_ref()?;
    into.targets.iter().find_map(|e| match e {
        Expr::Identifier(i) => Some(TableName::bare(&lineage::fold_ident(
            SqlDialect::PostgreSql,
            i,
        ))),
        Expr::CompoundIdentifier(parts) => {
            let mut names: Vec<String> = parts
                .iter()
                .map(|i| lineage::fold_ident(SqlDialect::PostgreSql, i))
                .collect();
            let name = names.pop()?;
            Some(TableName {
                schema: names.pop(),
                name,
            })
        }
        _ => None,
    })
}

/// Whether `EXPLAIN (...)` options turn ANALYZE on.
fn explain_option_analyze(options: Option<&[ast::UtilityOption]>) -> bool {
    options.unwrap_or_default().iter().any(|o| {
        o.name.value.eq_ignore_ascii_case("analyze")
            && match &o.arg {
                None => true,
                Some(Expr::Value(v)) => match &v.value {
                    Value::Boolean(b) => *b,
                    Value::Number(n, _) => n != "0",
                    Value::SingleQuotedString(s) => !matches!(
                        s.to_ascii_lowercase().as_str(),
                        "false" | "off" | "0" | "no"
                    ),
                    _ => true,
                },
                Some(Expr::Identifier(i)) => !matches!(
                    i.value.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no"
                ),
                Some(_) => true,
            }
    })
}

fn set_variable(s: &ast::Set, w: &Walker<'_>) -> String {
    match s {
        ast::Set::SingleAssignment { variable, .. } => w.table_name(variable).to_string(),
        ast::Set::ParenthesizedAssignments { .. } | ast::Set::MultipleAssignments { .. } => {
            "several".to_owned()
        }
        ast::Set::SetSessionAuthorization(_) => "session authorization".to_owned(),
        ast::Set::SetRole { .. } => "role".to_owned(),
        ast::Set::SetTimeZone { .. } => "timezone".to_owned(),
        ast::Set::SetNames { .. } | ast::Set::SetNamesDefault {} => "names".to_owned(),
        ast::Set::SetTransaction { .. } => "transaction".to_owned(),
        ast::Set::SetSessionParam(_) => "session".to_owned(),
    }
}

/// Classes recognised by leading keywords: the long tail of DDL the parser
/// represents in many shapes, and statements it cannot parse at all.
fn classify_words(words: &[String]) -> Option<StatementClass> {
    let w0 = words.first().map_or("", String::as_str);
    let w1 = words.get(1).map_or("", String::as_str);
    Some(match w0 {
        "create" | "alter" | "drop" => match w1 {
            "role" | "user" | "group" | "owned" | "default" => StatementClass::Dcl,
            _ => StatementClass::Ddl,
        },
        "comment" | "truncate" | "refresh" | "reindex" | "cluster" | "security" | "import" => {
            StatementClass::Ddl
        }
        "grant" | "revoke" | "reassign" => StatementClass::Dcl,
        "do" => StatementClass::Do,
        "vacuum" => StatementClass::Vacuum,
        "analyze" | "analyse" => StatementClass::Analyze,
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" => {
            StatementClass::Transaction
        }
        "prepare" if w1 == "transaction" => StatementClass::Transaction,
        "listen" | "unlisten" => StatementClass::Listen,
        "notify" => StatementClass::Notify,
        "discard" => StatementClass::Discard,
        // Unparsed: the mode is not known, so the strongest (fail closed).
        "lock" => StatementClass::Lock {
            mode: LockMode::AccessExclusive,
        },
        "reset" => StatementClass::Reset,
        "show" => StatementClass::Show,
        "set" => StatementClass::Set {
            variable: w1.to_owned(),
        },
        "call" => StatementClass::Call,
        "checkpoint" | "load" => StatementClass::Other(w0.to_owned()),
        _ => return None,
    })
}

/// Words directly followed by `(` in an unparsed statement: its likely
/// function calls, so a dangerous one is still seen.
fn lexical_functions(sql: &str, toks: &[lexer::Tok], dialect: SqlDialect) -> BTreeSet<String> {
    const NOT_FUNCTIONS: &[&str] = &[
        "values",
        "in",
        "exists",
        "as",
        "over",
        "filter",
        "table",
        "using",
        "on",
        "and",
        "or",
        "not",
        "select",
        "from",
        "where",
        "into",
        "with",
        "any",
        "all",
        "some",
        "array",
        "row",
        "cast",
        "by",
        "partition",
        "returns",
        "function",
        "procedure",
        "index",
        "key",
        "check",
        "unique",
        "references",
        "default",
        "options",
        "window",
        "set",
        "within",
        "group",
        "language",
        "is",
        "then",
        "else",
        "when",
        "case",
    ];
    let sig: Vec<&lexer::Tok> = toks
        .iter()
        .filter(|t| !matches!(t.kind, TokKind::Space | TokKind::Comment))
        .collect();
    let mut out = BTreeSet::new();
    for (i, t) in sig.iter().enumerate() {
        let next_is_paren = sig
            .get(i + 1)
            .is_some_and(|n| n.kind == TokKind::Other && &sql[n.start..n.end] == "(");
        if !next_is_paren || !matches!(t.kind, TokKind::Word | TokKind::QuotedIdent) {
            continue;
        }
        let name = token_ident(sql, t, dialect);
        if NOT_FUNCTIONS.contains(&name.as_str()) {
            continue;
        }
        let qualified = match (
            i.checked_sub(2).and_then(|j| sig.get(j)),
            i.checked_sub(1).and_then(|j| sig.get(j)),
        ) {
            (Some(s), Some(dot))
                if &sql[dot.start..dot.end] == "."
                    && matches!(s.kind, TokKind::Word | TokKind::QuotedIdent) =>
            {
                format!("{}.{name}", token_ident(sql, s, dialect))
            }
            _ => name,
        };
        out.insert(qualified);
    }
    out
}

fn token_ident(sql: &str, t: &lexer::Tok, dialect: SqlDialect) -> String {
    let raw = &sql[t.start..t.end];
    match (t.kind, dialect) {
        (TokKind::QuotedIdent, _) => raw.trim_matches('"').replace("\"\"", "\""),
        (_, SqlDialect::PostgreSql) => raw.to_lowercase(),
    }
}

/// Maps a parser error to a position in the whole query string.
fn parse_error(
    e: ParserError,
    sql: &str,
    piece: &Piece,
    index: usize,
    limit: usize,
) -> AnalyzeError {
    let msg = match e {
        ParserError::RecursionLimitExceeded => return AnalyzeError::TooDeep { limit },
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
    };
    let (message, pos) = match msg.rfind(" at Line: ") {
        Some(at) => {
            let tail = &msg[at + " at Line: ".len()..];
            let mut nums = tail
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse::<usize>().ok());
            let pos = match (nums.next(), nums.next()) {
                (Some(l), Some(c)) => Some((l, c)),
                _ => None,
            };
            (msg[..at].to_owned(), pos)
        }
        None => (msg, None),
    };
    let message = message
        .replace("Expected: ", "expected ")
        .replace(", found: ", ", found ");
    let (line, column) = match pos {
        // At the end of input the parser gives no position: point just past
        // the statement's last character.
        _ if message.ends_with("found EOF") => lexer::line_col(sql, piece.end),
        Some((1, c)) => (piece.line, piece.column + c.saturating_sub(1)),
        Some((l, c)) => (piece.line + l - 1, c),
        None => (piece.line, piece.column),
    };
    let mut chars = message.chars();
    let message = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => message,
    };
    AnalyzeError::Parse {
        statement: index,
        line,
        column,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StaticCatalog;

    #[test]
    fn lock_reports_its_mode_and_only_access_share_is_a_read() {
        let cat = StaticCatalog::new();
        let opts = AnalyzeOptions::default();
        let lock = |sql: &str| {
            let st = analyze(sql, &cat, &opts).unwrap().statements.remove(0);
            (st.class, st.locks)
        };
        assert_eq!(
            lock("LOCK TABLE public.customers IN ACCESS SHARE MODE"),
            (
                StatementClass::Lock {
                    mode: LockMode::AccessShare
                },
                false
            )
        );
        for (sql, mode) in [
            ("LOCK TABLE t IN ROW SHARE MODE", LockMode::RowShare),
            ("LOCK TABLE t IN SHARE MODE NOWAIT", LockMode::Share),
            ("LOCK TABLE t IN EXCLUSIVE MODE", LockMode::Exclusive),
            // No mode written: ACCESS EXCLUSIVE, as the server takes it.
            ("LOCK t", LockMode::AccessExclusive),
        ] {
            assert_eq!(lock(sql), (StatementClass::Lock { mode }, true), "{sql}");
        }
        let st = analyze(
            "LOCK TABLE public.customers IN ACCESS SHARE MODE",
            &cat,
            &opts,
        )
        .unwrap()
        .statements
        .remove(0);
        assert_eq!(
            st.tables_read
                .iter()
                .next()
                .map(ToString::to_string)
                .as_deref(),
            Some("public.customers")
        );
    }

    #[test]
    fn builtin_qualified_operators_parse_before_any() {
        let mut cat = StaticCatalog::new();
        cat.add_table("pg_catalog", "pg_class", &["oid", "relname"]);
        // pg_dump --table.
        let a = analyze(
            "SELECT c.oid FROM pg_catalog.pg_class c \
             WHERE c.relname OPERATOR(pg_catalog.=) ANY (ARRAY['orders']) \
             AND c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default",
            &cat,
            &AnalyzeOptions::default(),
        )
        .unwrap();
        let st = &a.statements[0];
        assert!(!st.has_unknown_outputs());
        // The audit text keeps what was written.
        assert!(
            st.normalized.contains("OPERATOR(pg_catalog.=)"),
            "{}",
            st.normalized
        );
        // Literals and other schemas' operators are left alone.
        assert_eq!(
            unqualify_builtin_operators("SELECT 'OPERATOR(pg_catalog.=)'", SqlDialect::PostgreSql),
            None
        );
        assert_eq!(
            unqualify_builtin_operators("SELECT 1 OPERATOR(my.=) 1", SqlDialect::PostgreSql),
            None
        );
    }

    #[test]
    fn parse_errors_point_into_the_whole_string() {
        let cat = StaticCatalog::new();
        let err = analyze(
            "SELECT 1;\n  SELECT FROM WHERE",
            &cat,
            &AnalyzeOptions::default(),
        );
        match err {
            Err(AnalyzeError::Parse {
                statement,
                line,
                column,
                message,
            }) => {
                assert_eq!((statement, line), (2, 2));
                assert!(column >= 10, "column {column}");
                assert!(message.contains("expected"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
