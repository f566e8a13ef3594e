//! Where a verdict applies: a column, or a path inside a JSON column.
//!
//! # Syntax
//!
//! A field is written `schema.table.column`, as `data_policy.tags` names
//! columns today, optionally followed by `.` and a PostgreSQL `jsonpath`
//! (without `strict`/`lax`):
//!
//! ```text
//! public.customers.ref
//! public.orders.payload.$.customer.tax_id
//! public.orders.payload.$.items[*].tin
//! public.events.body.$.*.ssn
//! public.forms.data.$."Tax ID"
//! ```
//!
//! Why this form: an unquoted PostgreSQL identifier cannot start with `$`, so
//! the fourth dot-separated part starting with `$` unambiguously opens the
//! JSON path; and the path is PostgreSQL's own `jsonpath` syntax, so the
//! gateway can hand it to `jsonb_path_query` when sampling and an
//! administrator can paste it into `psql` to look. `[*]` pools the elements of
//! an array, `.*` stands for every key of an object whose keys are data (a
//! map keyed by user id) rather than names, and keys that are not plain
//! identifiers are double-quoted with `\` escapes.
//!
//! # Keys never carry values
//!
//! JSON keys come from the data, and some objects are maps keyed by data
//! (`{"alice@example.com": {...}}`). The walker keeps a key in a path only
//! when [`is_name_like`] says it reads like a field name, and it collapses
//! the children of an object to `.*` once more than a bounded number of
//! distinct keys appear under it; so paths, like the rest of a verdict, hold
//! no sampled value.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A column of a table, as the catalog names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ColumnPath {
    /// The schema (`public`).
    pub schema: String,
    /// The table or view.
    pub table: String,
    /// The column.
    pub column: String,
}

impl ColumnPath {
    /// A column from its three parts.
    pub fn new(
        schema: impl Into<String>,
        table: impl Into<String>,
        column: impl Into<String>,
    ) -> ColumnPath {
        ColumnPath {
            schema: schema.into(),
            table: table.into(),
            column: column.into(),
        }
    }

    /// Whether `data_policy.tags` can name this column today: its parts are
    /// lowercase unquoted identifiers (letters, digits, `_`, `$`, starting
    /// with a letter or `_`). Mixed-case or quoted names cannot be written
    /// there yet.
    pub fn is_config_expressible(&self) -> bool {
        [&self.schema, &self.table, &self.column]
            .iter()
            .all(|p| is_config_identifier(p))
    }
}

impl fmt::Display for ColumnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

fn is_config_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'$'))
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JsonStep {
    /// An object member whose key reads like a field name.
    Key(String),
    /// Every member of an object whose keys are data (`.*`).
    AnyKey,
    /// Every element of an array (`[*]`), pooled.
    Elements,
}

impl Serialize for JsonStep {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&StepDisplay(self))
    }
}

struct StepDisplay<'a>(&'a JsonStep);

impl fmt::Display for StepDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            JsonStep::Key(k) if is_plain_key(k) => write!(f, ".{k}"),
            JsonStep::Key(k) => {
                f.write_str(".\"")?;
                for c in k.chars() {
                    if matches!(c, '"' | '\\') {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")
            }
            JsonStep::AnyKey => f.write_str(".*"),
            JsonStep::Elements => f.write_str("[*]"),
        }
    }
}

/// Keys written without quotes in a `jsonpath`: ASCII identifier characters.
fn is_plain_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether a JSON key reads like a field name rather than a value, so that it
/// may appear in a path: 1 to 64 ASCII letters, digits, `_`, `-` or spaces,
/// starting with a letter or `_`, with at most four digits and, beyond three
/// characters, fewer digits than letters. `customer`, `tax_id`, `Tax ID`, `line2` pass; `4111…`,
/// `u_18273645`, `alice@example.com`, `8c6f…` do not. The walker also asks the
/// scanner, which rejects keys holding a detectable entity.
pub fn is_name_like(key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 64 || !(b[0].is_ascii_alphabetic() || b[0] == b'_') {
        return false;
    }
    let mut digits = 0;
    let mut letters = 0;
    for &c in b {
        match c {
            b'0'..=b'9' => digits += 1,
            b'a'..=b'z' | b'A'..=b'Z' => letters += 1,
            b'_' | b'-' | b' ' => {}
            _ => return false,
        }
    }
    // Short keys may carry a digit (`k1`, `x2`); longer ones need more
    // letters than digits (`a1b2c3d4` is an id).
    digits <= 4 && (digits < letters || b.len() <= 3)
}

/// A column, or a path inside a JSON column: what a verdict is about and what
/// a tag names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath {
    /// The column.
    pub column: ColumnPath,
    /// Steps inside the column's JSON documents; empty for the column itself.
    pub json: Vec<JsonStep>,
}

impl FieldPath {
    /// The column itself.
    pub fn column(column: ColumnPath) -> FieldPath {
        FieldPath {
            column,
            json: Vec::new(),
        }
    }

    /// The name that says what the field holds: the column name, or the last
    /// JSON key (skipping `[*]`); `None` under `.*`.
    pub fn leaf_name(&self) -> Option<&str> {
        if self.json.is_empty() {
            return Some(&self.column.column);
        }
        match self.json.iter().rev().find(|s| **s != JsonStep::Elements)? {
            JsonStep::Key(k) => Some(k),
            _ => None,
        }
    }

    /// The name one level up: the table for a column, the enclosing key for a
    /// JSON path (`customer` in `$.customer.sin`). Used as context for
    /// ambiguous leaf names.
    pub fn parent_name(&self) -> Option<&str> {
        if self.json.is_empty() {
            return Some(&self.column.table);
        }
        let mut keys = self.json.iter().rev().filter(|s| **s != JsonStep::Elements);
        keys.next()?;
        match keys.next() {
            Some(JsonStep::Key(k)) => Some(k),
            Some(_) => None,
            None => Some(&self.column.column),
        }
    }

    /// Whether `data_policy.tags` can name this field today (see
    /// [`ColumnPath::is_config_expressible`]; JSON paths need the syntax in
    /// the module documentation, which the configuration does not parse yet).
    pub fn is_config_expressible(&self) -> bool {
        self.column.is_config_expressible() && self.json.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.column)?;
        if !self.json.is_empty() {
            f.write_str(".$")?;
            for step in &self.json {
                write!(f, "{}", StepDisplay(step))?;
            }
        }
        Ok(())
    }
}

impl Serialize for FieldPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A field path that does not follow the syntax in the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsePathError {
    /// Why, in words.
    pub reason: &'static str,
}

impl fmt::Display for ParsePathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid field path: {} (write `schema.table.column` or `schema.table.column.$.key[*].key`)",
            self.reason
        )
    }
}

impl std::error::Error for ParsePathError {}

impl FromStr for FieldPath {
    type Err = ParsePathError;

    /// Parses the rendered form back. Only the first three dots separate the
    /// column's parts: a quoted JSON key may contain dots.
    fn from_str(s: &str) -> Result<FieldPath, ParsePathError> {
        let err = |reason| ParsePathError { reason };
        let mut parts = s.splitn(4, '.');
        let schema = parts.next().filter(|p| !p.is_empty());
        let table = parts.next().filter(|p| !p.is_empty());
        let column = parts.next().filter(|p| !p.is_empty());
        let (Some(schema), Some(table), Some(column)) = (schema, table, column) else {
            return Err(err("a column needs schema, table and column"));
        };
        if column.starts_with('$') {
            return Err(err("the column name is missing before the JSON path"));
        }
        let column = ColumnPath::new(schema, table, column);
        let Some(rest) = parts.next() else {
            return Ok(FieldPath::column(column));
        };
        let rest = rest
            .strip_prefix('$')
            .ok_or_else(|| err("after the column, a JSON path starts with `$`"))?;
        let json = parse_steps(rest).ok_or_else(|| err("malformed JSON path"))?;
        if json.is_empty() {
            return Err(err("an empty JSON path names the column: drop `.$`"));
        }
        Ok(FieldPath { column, json })
    }
}

fn parse_steps(mut rest: &str) -> Option<Vec<JsonStep>> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[*]") {
            steps.push(JsonStep::Elements);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(".*") {
            steps.push(JsonStep::AnyKey);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(".\"") {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => key.push(chars.next()?.1),
                    (i, '"') => break i,
                    (_, c) => key.push(c),
                }
            };
            steps.push(JsonStep::Key(key));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if !is_plain_key(&r[..end]) {
                return None;
            }
            steps.push(JsonStep::Key(r[..end].to_string()));
            rest = &r[end..];
        } else {
            return None;
        }
    }
    Some(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(json: Vec<JsonStep>) -> FieldPath {
        FieldPath {
            column: ColumnPath::new("public", "orders", "payload"),
            json,
        }
    }

    fn key(k: &str) -> JsonStep {
        JsonStep::Key(k.to_string())
    }

    #[test]
    fn renders_jsonpath_and_parses_it_back() {
        let cases = [
            (field(vec![]), "public.orders.payload"),
            (
                field(vec![key("customer"), key("tax_id")]),
                "public.orders.payload.$.customer.tax_id",
            ),
            (
                field(vec![key("items"), JsonStep::Elements, key("tin")]),
                "public.orders.payload.$.items[*].tin",
            ),
            (
                field(vec![JsonStep::AnyKey, key("ssn")]),
                "public.orders.payload.$.*.ssn",
            ),
            (
                field(vec![key("Tax ID"), key("a.b\"c\\")]),
                r#"public.orders.payload.$."Tax ID"."a.b\"c\\""#,
            ),
            (
                field(vec![JsonStep::Elements, JsonStep::Elements]),
                "public.orders.payload.$[*][*]",
            ),
        ];
        for (path, text) in cases {
            assert_eq!(path.to_string(), text);
            assert_eq!(text.parse::<FieldPath>(), Ok(path), "{text}");
        }
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [
            "public.orders",
            "public..payload",
            "public.orders.$.x",
            "public.orders.payload.customer",
            "public.orders.payload.$",
            "public.orders.payload.$.",
            "public.orders.payload.$.\"open",
            "public.orders.payload.$[1]",
        ] {
            assert!(bad.parse::<FieldPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_for_classification() {
        let p = field(vec![key("customer"), key("sin")]);
        assert_eq!(
            (p.leaf_name(), p.parent_name()),
            (Some("sin"), Some("customer"))
        );
        let p = field(vec![key("tins"), JsonStep::Elements]);
        assert_eq!(
            (p.leaf_name(), p.parent_name()),
            (Some("tins"), Some("payload"))
        );
        let p = field(vec![JsonStep::AnyKey]);
        assert_eq!(p.leaf_name(), None);
        let p = field(vec![]);
        assert_eq!(
            (p.leaf_name(), p.parent_name()),
            (Some("payload"), Some("orders"))
        );
    }

    #[test]
    fn keys_that_look_like_data_are_not_names() {
        for ok in [
            "customer",
            "tax_id",
            "Tax ID",
            "line2",
            "_meta",
            "x-request-id",
            "k1",
        ] {
            assert!(is_name_like(ok), "{ok}");
        }
        for bad in [
            "",
            "4111111111111111",
            "u_18273645",
            "alice@example.com",
            "a1b2c3d4",
            "9f86d081884c7d65",
            "192.168.0.1",
            &"k".repeat(65),
        ] {
            assert!(!is_name_like(bad), "{bad}");
        }
    }

    #[test]
    fn config_can_name_lowercase_columns_only() {
        assert!(ColumnPath::new("public", "users", "ssn$1").is_config_expressible());
        assert!(!ColumnPath::new("public", "Users", "ssn").is_config_expressible());
        assert!(!ColumnPath::new("public", "users", "1ssn").is_config_expressible());
    }
}
