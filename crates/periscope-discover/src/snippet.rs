//! The `data_policy.tags` snippet for accepted verdicts.
//!
//! The configuration names tagged columns as `"schema.table.column" =
//! "entity"` under `[connection.data_policy]` (see
//! `docs/configuration.md`). The snippet uses the sub-table form, one line
//! per field, with the evidence as a comment, so it can be pasted under the
//! connection's `[[connection]]` table or merged into an existing inline
//! `tags = { … }` by hand:
//!
//! ```toml
//! [connection.data_policy.tags]
//! "public.customers.ref" = "national_id"  # content: 99.8% of 1000 values pass the sin check (chance 8.0%)
//! "public.orders.payload.$.customer.tax_id" = "tax_id"  # name and content: …
//! ```
//!
//! JSON fields use the field-path syntax of [`crate::path`]. Columns whose
//! names the configuration cannot write (mixed case, quoted identifiers) are
//! rendered commented out, with the reason, so pasting the snippet never
//! breaks the file.

use std::fmt::Write as _;

use crate::verdict::{Basis, ColumnVerdict};

/// Renders the tags of the given verdicts that propose an entity; verdicts
/// without a proposal are skipped. The caller chooses which verdicts are
/// accepted (all, content only, those an administrator confirmed).
pub fn render_tags<'a>(verdicts: impl IntoIterator<Item = &'a ColumnVerdict>) -> String {
    let mut accepted: Vec<&ColumnVerdict> = verdicts
        .into_iter()
        .filter(|v| v.proposed.is_some())
        .collect();
    accepted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = String::new();
    out.push_str("# Proposed by periscope discover: each field is masked whole as the entity,\n");
    out.push_str("# lifted by `unmask:<entity>`. Evidence is counts and shares only.\n");
    out.push_str("[connection.data_policy.tags]\n");
    for v in accepted {
        let Some(entity) = v.proposed else { continue };
        let key = toml_string(&v.path.to_string());
        let basis = match v.basis {
            Some(Basis::Content) => "content",
            Some(Basis::NameAndContent) => "name and content",
            Some(Basis::Name) | None => "name",
        };
        let comment = format!("{basis}: {}", v.reason);
        if v.path.column.is_config_expressible() {
            let _ = writeln!(out, "{key} = \"{}\"  # {comment}", entity.name());
        } else {
            let _ = writeln!(
                out,
                "# {key} = \"{}\"  # not writable: configuration names are lowercase unquoted identifiers; {comment}",
                entity.name()
            );
        }
    }
    out
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape() {
        assert_eq!(toml_string(r#"a."b\c"#), r#""a.\"b\\c""#);
        assert_eq!(toml_string("a\nb"), r#""a\u000Ab""#);
    }
}
