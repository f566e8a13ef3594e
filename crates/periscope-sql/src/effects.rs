//! What a statement changes in the session that later analyses depend on.
//!
//! A proxy analyses each statement against the session's state: unqualified
//! table names resolve through the `search_path`, `EXECUTE name` and `FETCH
//! cursor` reuse the shapes of an earlier `PREPARE` or `DECLARE`. The
//! statements that change that state are recognised here, from the parsed
//! statement, and reported as [`SessionEffect`]s; the proxy applies them once
//! the server confirmed the statement ran. Whether a statement switches the
//! session or its transaction to read-write (turning off the read-only
//! backstop) is recognised here too, for the same reason: this crate is the
//! only one that understands SQL.

use sqlparser::ast::{self, CloseCursor, ContextModifier, DiscardObject, Expr, Statement, Value};

use crate::SqlDialect;
use crate::lineage::fold_ident;
use crate::model::StatementClass;

/// A change to the session's state that the proxy must track.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SessionEffect {
    /// `SET [SESSION | LOCAL] search_path ...`: the new path, schema names as
    /// the server will use them (`$user` kept as written; the proxy knows
    /// which role it stands for).
    SearchPath {
        /// The schemas, in order.
        path: Vec<String>,
        /// `SET LOCAL`: lasts until the end of the transaction.
        local: bool,
    },
    /// `SET search_path TO DEFAULT`, `RESET search_path`, `RESET ALL`,
    /// `DISCARD ALL`: back to the role's default path.
    SearchPathReset {
        /// `SET LOCAL ... TO DEFAULT`.
        local: bool,
    },
    /// `DEALLOCATE name`: the SQL-level prepared statement is gone.
    Deallocate {
        /// Its name, folded as the server folds it.
        name: String,
    },
    /// `DEALLOCATE ALL`, `DISCARD ALL`: every prepared statement is gone.
    DeallocateAll,
    /// `CLOSE cursor`.
    CloseCursor {
        /// Its name, folded as the server folds it.
        name: String,
    },
    /// `CLOSE ALL`, `DISCARD ALL`: every cursor is gone.
    CloseAllCursors,
}

/// The session effects of one parsed statement, in the order they apply.
pub(crate) fn of(st: &Statement, dialect: SqlDialect) -> Vec<SessionEffect> {
    match st {
        Statement::Set(ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => {
            let is_path = variable
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("search_path"));
            if !is_path {
                return Vec::new();
            }
            let local = matches!(scope, Some(ContextModifier::Local));
            search_path(values, dialect, local).into_iter().collect()
        }
        Statement::Reset(r) => match &r.reset {
            ast::Reset::ALL => vec![SessionEffect::SearchPathReset { local: false }],
            ast::Reset::ConfigurationParameter(name)
                if name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("search_path")) =>
            {
                vec![SessionEffect::SearchPathReset { local: false }]
            }
            _ => Vec::new(),
        },
        Statement::Discard {
            object_type: DiscardObject::ALL,
        } => vec![
            SessionEffect::SearchPathReset { local: false },
            SessionEffect::DeallocateAll,
            SessionEffect::CloseAllCursors,
        ],
        Statement::Deallocate { name, .. } => {
            if name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all") {
                vec![SessionEffect::DeallocateAll]
            } else {
                vec![SessionEffect::Deallocate {
                    name: fold_ident(dialect, name),
                }]
            }
        }
        Statement::Close { cursor } => match cursor {
            CloseCursor::All => vec![SessionEffect::CloseAllCursors],
            CloseCursor::Specific { name } => vec![SessionEffect::CloseCursor {
                name: fold_ident(dialect, name),
            }],
        },
        _ => Vec::new(),
    }
}

/// The path a `SET search_path` value list gives, or nothing when a value is
/// not a plain name or string (the proxy then keeps what it had).
fn search_path(values: &[Expr], dialect: SqlDialect, local: bool) -> Option<SessionEffect> {
    let mut path = Vec::new();
    for v in values {
        match v {
            Expr::Identifier(i)
                if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default") =>
            {
                return Some(SessionEffect::SearchPathReset { local });
            }
            Expr::Identifier(i) => path.push(fold_ident(dialect, i)),
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) => path.extend(search_path_text(s)),
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(SessionEffect::SearchPath { path, local })
}

/// The schemas of a `search_path` given as one string (`'"$user", public'`,
/// `''`), as the server splits it.
pub(crate) fn search_path_text(s: &str) -> Vec<String> {
    s.split(',')
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether the statement would switch the session or its transaction to
/// read-write: `SET [LOCAL] default_transaction_read_only` or
/// `transaction_read_only` (to any value: only the backstop may set them),
/// `SET TRANSACTION` / `SET SESSION CHARACTERISTICS ... READ WRITE`, `BEGIN` /
/// `START TRANSACTION READ WRITE`.
pub(crate) fn lifts_read_only(class: &StatementClass, normalized: &str) -> bool {
    let upper = normalized.to_ascii_uppercase();
    match class {
        StatementClass::Set { variable } => match variable.as_str() {
            "default_transaction_read_only" | "transaction_read_only" => true,
            "transaction" | "session" | "several" => {
                upper.contains("READ WRITE") || upper.contains("READ_ONLY")
            }
            _ => false,
        },
        StatementClass::Transaction => upper.contains("READ WRITE"),
        _ => false,
    }
}
