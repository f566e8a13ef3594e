//! What a declared column type says about how to read its sampled text.
//!
//! The sampler hands every value over as PostgreSQL's text output, so the
//! type only decides how that text is read: as text, as an integer (whose
//! leading zeros the database dropped), as JSON documents to walk, as an
//! array literal whose elements are pooled, or not at all for types that
//! cannot hold an identifier (booleans, floats, timestamps with time zones
//! are still read: a date of birth may be stored as a timestamp at
//! midnight). Unknown names (domains, enums, extension types) are read as
//! text: when in doubt, look.

use serde::Serialize;

/// How the values of a column are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeClass {
    /// Text as is (`text`, `varchar`, `char`, `citext`, unknown types).
    Text,
    /// Integers and numerics: leading zeros were dropped on the way in
    /// (`012345678` stored as `12345678`), so fixed-length checks also try
    /// the value padded back with up to two zeros.
    Integer,
    /// Dates and timestamps: only the date-of-birth check applies.
    Temporal,
    /// `json`/`jsonb`: documents walked key by key.
    Json,
    /// Types that never hold an identifier (`bool`, `float8`, `uuid`,
    /// `bytea`, `inet`, geometric types...): not profiled. `inet` and
    /// `macaddr` are classified by type elsewhere, before discovery.
    Skipped,
}

impl TypeClass {
    /// The lowercase name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            TypeClass::Text => "text",
            TypeClass::Integer => "integer",
            TypeClass::Temporal => "temporal",
            TypeClass::Json => "json",
            TypeClass::Skipped => "skipped",
        }
    }
}

/// A declared type: its class, and whether it is an array of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DeclaredType {
    /// How one element is read.
    pub class: TypeClass,
    /// Values are array literals (`{a,b}`), elements pooled.
    pub array: bool,
}

impl DeclaredType {
    /// Reads a type name as the catalog spells it (`int8`, `bigint`,
    /// `character varying(32)`, `_text`, `text[]`, `pg_catalog.jsonb`).
    pub fn parse(name: &str) -> DeclaredType {
        let mut n = name.trim().to_ascii_lowercase();
        // A schema prefix (`pg_catalog.`), not a dot inside a modifier.
        if let Some(dot) = n.find('.')
            && n.find('(').is_none_or(|paren| dot < paren)
        {
            n = n[dot + 1..].to_string();
        }
        let mut array = false;
        if let Some(inner) = n.strip_suffix("[]") {
            n = inner.trim_end().to_string();
            array = true;
        } else if let Some(inner) = n.strip_prefix('_') {
            n = inner.to_string();
            array = true;
        }
        if let Some(paren) = n.find('(') {
            n.truncate(paren);
        }
        let base = n.trim();
        let class = match base {
            "int2" | "int4" | "int8" | "smallint" | "integer" | "int" | "bigint" | "numeric"
            | "decimal" | "serial" | "bigserial" | "smallserial" | "serial4" | "serial8"
            | "oid" => TypeClass::Integer,
            "date"
            | "timestamp"
            | "timestamptz"
            | "timestamp without time zone"
            | "timestamp with time zone" => TypeClass::Temporal,
            "json" | "jsonb" => TypeClass::Json,
            "bool"
            | "boolean"
            | "float4"
            | "float8"
            | "real"
            | "double precision"
            | "money"
            | "uuid"
            | "bytea"
            | "inet"
            | "cidr"
            | "macaddr"
            | "macaddr8"
            | "interval"
            | "time"
            | "timetz"
            | "time without time zone"
            | "time with time zone"
            | "point"
            | "line"
            | "lseg"
            | "box"
            | "path"
            | "polygon"
            | "circle"
            | "tsvector"
            | "tsquery"
            | "bit"
            | "varbit"
            | "bit varying"
            | "int4range"
            | "int8range"
            | "numrange"
            | "tsrange"
            | "tstzrange"
            | "daterange"
            | "pg_lsn"
            | "txid_snapshot"
            | "regclass"
            | "regtype"
            | "regproc"
            | "xid"
            | "cid"
            | "tid" => TypeClass::Skipped,
            _ => TypeClass::Text,
        };
        DeclaredType { class, array }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_spellings() {
        let cases = [
            ("text", TypeClass::Text, false),
            ("character varying(32)", TypeClass::Text, false),
            ("citext", TypeClass::Text, false),
            ("my_domain", TypeClass::Text, false),
            ("int8", TypeClass::Integer, false),
            ("bigint", TypeClass::Integer, false),
            ("numeric(11,0)", TypeClass::Integer, false),
            ("pg_catalog.numeric(10,2)", TypeClass::Integer, false),
            ("timestamp(3) without time zone", TypeClass::Temporal, false),
            ("character varying(32)[]", TypeClass::Text, true),
            ("_int8", TypeClass::Integer, true),
            ("text[]", TypeClass::Text, true),
            ("_varchar", TypeClass::Text, true),
            ("pg_catalog.jsonb", TypeClass::Json, false),
            ("JSON", TypeClass::Json, false),
            ("_jsonb", TypeClass::Json, true),
            ("date", TypeClass::Temporal, false),
            ("timestamp with time zone", TypeClass::Temporal, false),
            ("uuid", TypeClass::Skipped, false),
            ("bool", TypeClass::Skipped, false),
            ("double precision", TypeClass::Skipped, false),
        ];
        for (name, class, array) in cases {
            assert_eq!(
                DeclaredType::parse(name),
                DeclaredType { class, array },
                "{name}"
            );
        }
    }
}
