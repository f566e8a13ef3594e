//! Small helpers shared by the table modules: dynamic statements with numbered
//! placeholders, and decoding of the text columns.

use periscope_audit::AuditTime;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, Encode, Row, Type};

use crate::error::StoreError;

/// A statement built at run time (optional filters, multi-row inserts).
///
/// Placeholders are written `$1, $2...`: PostgreSQL requires that form and SQLite
/// accepts it, so one text serves both backends. Only placeholders are ever pushed
/// for values; the SQL text itself comes from constants in this crate.
pub(crate) struct Sql {
    text: String,
    args: AnyArguments,
    count: usize,
}

impl Sql {
    pub(crate) fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: AnyArguments::default(),
            count: 0,
        }
    }

    /// Appends SQL text (a constant of this crate, never caller input).
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Binds a value and appends its placeholder.
    pub(crate) fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> Encode<'q, Any> + Type<Any>,
    {
        self.count += 1;
        self.text.push('$');
        self.text.push_str(&self.count.to_string());
        // Encoding the plain types used here (integers, text, options) cannot fail.
        self.args
            .add(value)
            .expect("encoding an integer or text argument cannot fail");
        self
    }

    /// The statement, ready to execute.
    pub(crate) fn query(self) -> sqlx::query::Query<'static, Any, AnyArguments> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
    }
}

/// Reads a required text column.
pub(crate) fn text(row: &AnyRow, column: &str) -> Result<String, StoreError> {
    row.try_get::<String, _>(column).map_err(StoreError::from)
}

/// Reads an optional text column.
pub(crate) fn opt_text(row: &AnyRow, column: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(column)
        .map_err(StoreError::from)
}

/// Parses a stored time, naming the row if it is not the fixed form.
pub(crate) fn time(value: &str, what: impl Fn() -> String) -> Result<AuditTime, StoreError> {
    AuditTime::parse(value).map_err(|e| StoreError::corrupt(what(), e))
}

/// Parses an optional stored time.
pub(crate) fn opt_time(
    value: Option<String>,
    what: impl Fn() -> String,
) -> Result<Option<AuditTime>, StoreError> {
    value.map(|v| time(&v, what)).transpose()
}

/// Converts a stored BIGINT that must be a non-negative count or seq.
pub(crate) fn to_u64(value: i64, what: impl Fn() -> String) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(what(), format!("negative value {value}")))
}

/// Converts a seq or count for a BIGINT column; above `i64::MAX` there is nothing to
/// find, so callers clamp instead of failing.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Refuses names that would be ambiguous in listings, logs and audit records.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{kind} name must not be empty"
        )));
    }
    if name.chars().count() > 200 {
        return Err(StoreError::Invalid(format!(
            "{kind} name {:?}... is longer than 200 characters",
            name.chars().take(40).collect::<String>()
        )));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(StoreError::Invalid(format!(
            "{kind} name {name:?} contains whitespace or control characters"
        )));
    }
    Ok(())
}
