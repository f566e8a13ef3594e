//! Validated names: connections, roles, tags, tables, columns and functions.
//!
//! Every name that appears in configuration, in a shield or on the command line
//! goes through one of these checks, so a typo is refused where it is typed
//! instead of silently matching nothing at query time.

use std::fmt;
use std::str::FromStr;

/// Why a name was refused; the message says what the name must look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{value}`: {rule}")]
pub struct InvalidName {
    /// What kind of name was expected (`connection name`, `table name`...).
    pub what: &'static str,
    /// The text that was refused.
    pub value: String,
    /// The rule it broke, phrased for a person.
    pub rule: &'static str,
}

fn is_lower_start(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// Checks a connection or role name: `[a-z0-9][a-z0-9-_]*`, at most 63 bytes.
///
/// Connection names travel as the PostgreSQL database name in `psql` and role
/// names on the command line, so they stay short, lowercase and shell-safe.
pub fn check_object_name(what: &'static str, value: &str) -> Result<(), InvalidName> {
    const RULE: &str = "use lowercase letters, digits, `-` and `_`, starting with a letter or digit (at most 63 characters)";
    let ok = value.len() <= 63
        && value.chars().next().is_some_and(is_lower_start)
        && value
            .chars()
            .all(|c| is_lower_start(c) || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            value: value.to_string(),
            rule: RULE,
        })
    }
}

/// Checks a custom column tag (`confidential`, `health-data`): `[a-z][a-z0-9_-]*`.
///
/// Tags become shields (`unmask:confidential`) and placeholders (`[confidential]`),
/// so they follow the same shape as entity names.
pub fn check_tag(value: &str) -> Result<(), InvalidName> {
    let ok = value.len() <= 63
        && value.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            what: "tag",
            value: value.to_string(),
            rule: "use lowercase letters, digits, `_` and `-`, starting with a letter",
        })
    }
}

/// One SQL identifier as PostgreSQL stores an unquoted name: `[a-z_][a-z0-9_$]*`.
///
/// Upper-case letters are refused rather than folded: `Payments` in the config
/// would otherwise look like it protects a quoted `"Payments"` table that the
/// analysis would never match.
fn is_identifier(part: &str) -> bool {
    part.len() <= 63
        && part
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
}

/// Splits `text` on dots into exactly `N` identifiers.
fn identifiers<const N: usize>(text: &str) -> Option<[String; N]> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != N || !parts.iter().all(|p| is_identifier(p)) {
        return None;
    }
    Some(std::array::from_fn(|i| parts[i].to_string()))
}

const IDENT_RULE: &str =
    "identifiers are lowercase letters, digits, `_` and `$`, starting with a letter or `_`";

/// A schema-qualified table, `schema.table`, as named in `sensitive_tables` and
/// in `table:` shields.
///
/// The schema is mandatory: `public.users` and `audit.users` are different
/// tables, and guessing the search path would make a shield miss.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    /// The schema (`public`, `payments`).
    pub schema: String,
    /// The table within the schema.
    pub table: String,
}

impl TableName {
    /// Builds a table name from parts already known to be valid identifiers.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl FromStr for TableName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let [schema, table] = identifiers::<2>(s).ok_or_else(|| InvalidName {
            what: "table name",
            value: s.to_string(),
            rule: "write `schema.table`; identifiers are lowercase letters, digits, `_` and `$`",
        })?;
        Ok(TableName { schema, table })
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A fully qualified column, `schema.table.column`, the key of a column tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnRef {
    /// The table holding the column.
    pub table: TableName,
    /// The column name.
    pub column: String,
}

impl FromStr for ColumnRef {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let [schema, table, column] = identifiers::<3>(s).ok_or_else(|| InvalidName {
            what: "column",
            value: s.to_string(),
            rule: "write `schema.table.column`; identifiers are lowercase letters, digits, `_` and `$`",
        })?;
        Ok(ColumnRef {
            table: TableName { schema, table },
            column,
        })
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.table, self.column)
    }
}

/// A SQL function, `name` or `schema.name` (`pg_read_file`, `dblink.dblink_exec`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName(String);

impl FunctionName {
    /// The name as written (`pg_read_file` or `schema.fn`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FunctionName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if identifiers::<1>(s).is_some() || identifiers::<2>(s).is_some() {
            Ok(FunctionName(s.to_string()))
        } else {
            Err(InvalidName {
                what: "function name",
                value: s.to_string(),
                rule: IDENT_RULE,
            })
        }
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serialises the name types as their text form, so stored and API values read
/// the same as in the config file.
macro_rules! text_serde {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

text_serde!(TableName, ColumnRef, FunctionName);
pub(crate) use text_serde;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        for ok in ["pg-prod", "a", "0db", "billing_ro"] {
            assert!(check_object_name("connection name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "Prod", "pg prod", "pg.prod", &"x".repeat(64)] {
            assert!(check_object_name("connection name", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tables_need_a_schema() {
        assert_eq!(
            "payments.cards".parse::<TableName>(),
            Ok(TableName::new("payments", "cards"))
        );
        for bad in ["cards", "a.b.c", "Payments.cards", "a..b", ".a", "a.1b"] {
            assert!(bad.parse::<TableName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn columns_have_three_parts() {
        let col: ColumnRef = "public.users.email".parse().unwrap();
        assert_eq!(col.table, TableName::new("public", "users"));
        assert_eq!(col.column, "email");
        assert_eq!(col.to_string(), "public.users.email");
        assert!("users.email".parse::<ColumnRef>().is_err());
    }

    #[test]
    fn functions_may_be_schema_qualified() {
        assert!("pg_read_file".parse::<FunctionName>().is_ok());
        assert!("dblink.dblink_exec".parse::<FunctionName>().is_ok());
        assert!("pg_read_file()".parse::<FunctionName>().is_err());
    }
}
