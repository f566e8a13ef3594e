//! Canonical JSON: the one byte sequence a JSON value hashes as.
//!
//! Written out here rule by rule instead of relying on `serde_json::to_string`, whose
//! key order depends on a crate feature (`preserve_order`) that any crate in the
//! workspace could switch on. The rules, also given in `docs/audit.md`:
//!
//! - objects: members sorted by key, comparing keys as UTF-8 bytes (= Unicode code
//!   point order); `{`, `:`, `,`, `}` with no whitespace anywhere;
//! - arrays: elements in their order, `[`, `,`, `]`;
//! - strings: UTF-8, with `"` and `\` escaped as `\"` and `\\`, the controls
//!   U+0008, U+0009, U+000A, U+000C, U+000D as `\b \t \n \f \r`, every other control
//!   below U+0020 as `\u00XX` with lowercase hex, and nothing else escaped;
//! - integers that fit in 64 bits: plain decimal (`-12`, `18446744073709551615`);
//! - other numbers: the shortest decimal that reads back as the same `f64`, as
//!   `serde_json` writes it (`0.5`, `1.0`, `-0.0`, `1e+16`, `1.5e-7`);
//! - `true`, `false`, `null` as such.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Something canonical text can be written into: a `String` to look at, or a running
/// SHA-256 so hashing an event needs no intermediate allocation.
pub(crate) trait Sink {
    /// Appends `text`.
    fn push(&mut self, text: &str);
}

impl Sink for String {
    fn push(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl Sink for Sha256 {
    fn push(&mut self, text: &str) {
        self.update(text.as_bytes());
    }
}

/// The canonical JSON text of `value`, as hashed in an event's `details`.
///
/// Public so that tools (and tests) can show an auditor exactly which bytes were hashed.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

pub(crate) fn write_value(out: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => out.push("null"),
        Value::Bool(true) => out.push("true"),
        Value::Bool(false) => out.push("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push("[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(",");
                }
                write_value(out, item);
            }
            out.push("]");
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push("{");
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(",");
                }
                write_string(out, key);
                out.push(":");
                write_value(out, item);
            }
            out.push("}");
        }
    }
}

fn write_number(out: &mut impl Sink, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        out.push(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push(&u.to_string());
    } else if let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
        // A finite f64 re-wrapped, so the spelling is serde_json's shortest round-trip
        // form whatever the `arbitrary_precision` feature kept from the input.
        out.push(&f.to_string());
    } else {
        out.push(&n.to_string());
    }
}

pub(crate) fn write_string(out: &mut impl Sink, s: &str) {
    out.push("\"");
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{08}' => Some("\\b"),
            '\t' => Some("\\t"),
            '\n' => Some("\\n"),
            '\u{0c}' => Some("\\f"),
            '\r' => Some("\\r"),
            c if u32::from(c) < 0x20 => None,
            _ => continue,
        };
        out.push(&s[start..i]);
        match escape {
            Some(e) => out.push(e),
            None => out.push(&format!("\\u{:04x}", u32::from(c))),
        }
        start = i + c.len_utf8();
    }
    out.push(&s[start..]);
    out.push("\"");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_without_whitespace() {
        let v = json!({"b": 1, "a": {"z": [3, {"y": true, "x": null}], "m": "n"}, "A": false});
        assert_eq!(
            canonical_json(&v),
            r#"{"A":false,"a":{"m":"n","z":[3,{"x":null,"y":true}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_is_utf8_byte_order() {
        // U+00E9 (0xC3 0xA9) sorts after 'z'; U+1F600 (0xF0...) after U+FF21 (0xEF...),
        // where UTF-16 order would put it first.
        let v = json!({"é": 1, "z": 2, "\u{1F600}": 3, "\u{FF21}": 4, "": 5});
        assert_eq!(
            canonical_json(&v),
            "{\"\":5,\"z\":2,\"é\":1,\"\u{FF21}\":4,\"\u{1F600}\":3}"
        );
    }

    #[test]
    fn escapes_only_what_json_requires() {
        let v = json!("q\"b\\s/\u{08}\t\n\u{0c}\r\u{00}\u{1f}\u{7f}é\u{2028}😀");
        assert_eq!(
            canonical_json(&v),
            "\"q\\\"b\\\\s/\\b\\t\\n\\f\\r\\u0000\\u001f\u{7f}é\u{2028}😀\""
        );
    }

    #[test]
    fn numbers() {
        let v: Value = serde_json::from_str(
            "[0, -0, 12, -12, 18446744073709551615, -9223372036854775808, 0.5, 1.0, 1e2, 1e16, 1.5e-7, -0.0]",
        )
        .unwrap();
        assert_eq!(
            canonical_json(&v),
            "[0,-0.0,12,-12,18446744073709551615,-9223372036854775808,0.5,1.0,100.0,1e+16,1.5e-7,-0.0]"
        );
    }

    #[test]
    fn matches_serde_json_compact_output_for_sorted_input() {
        // Keys already in sorted order, so serde_json's output does not depend on its
        // map type; this guards the escaping and number rules against drift.
        let v = json!({"a": null, "k": ["x\u{01}y", 3.25, -7, {"n": "ü\"\\"}]});
        assert_eq!(canonical_json(&v), serde_json::to_string(&v).unwrap());
    }
}
