//! Canonical JSON: the one byte sequence a JSON value hashes as.
//!
//! Written out here rule by rule instead of relying on `serde_json::to_string`, whose
//! key order depends on a crate feature (`preserve_order`) that any crate in the
//! workspace could switch on, and whose float spelling has changed between releases.
//! The rules are those of RFC 8785 (JSON Canonicalization Scheme, "JCS"), with one
//! deliberate difference: integers are exact up to 64 bits instead of being rounded to
//! a double. So any JCS library reproduces the bytes of details whose integers stay
//! within ±2^53. The rules, also given in `docs/audit.md`:
//!
//! - objects: members sorted by key, comparing keys as sequences of UTF-16 code
//!   units (as JCS does; for keys without characters above U+FFFF this is plain
//!   code point order); `{`, `:`, `,`, `}` with no whitespace anywhere;
//! - arrays: elements in their order, `[`, `,`, `]`;
//! - strings: UTF-8, with `"` and `\` escaped as `\"` and `\\`, the controls
//!   U+0008, U+0009, U+000A, U+000C, U+000D as `\b \t \n \f \r`, every other control
//!   below U+0020 as `\u00XX` with lowercase hex, and nothing else escaped;
//! - integers that fit in an `i64` or `u64` (JSON numbers without fraction or
//!   exponent): plain decimal (`-12`, `18446744073709551615`);
//! - every other number is an IEEE double written as ECMAScript's
//!   `Number.prototype.toString` does: shortest round-trip digits, plain decimal for
//!   magnitudes in [1e-6, 1e21), otherwise `d.ddde+N` / `d.ddde-N`; `-0` is `0`
//!   (`0.5`, `1.0` → `1`, `1e2` → `100`, `1e21` → `1e+21`, `1.5e-7`);
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
            out.push("{");
            // serde_json's default map iterates in byte order, which equals UTF-16
            // order unless keys hold characters from U+E000 up; sort only if needed.
            let in_order = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| utf16_cmp(a, b).is_lt());
            if in_order {
                write_members(out, map.iter());
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                members.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
                write_members(out, members.into_iter());
            }
            out.push("}");
        }
    }
}

fn write_members<'a>(out: &mut impl Sink, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, item)) in members.enumerate() {
        if i > 0 {
            out.push(",");
        }
        write_string(out, key);
        out.push(":");
        write_value(out, item);
    }
}

/// Key order of JCS: lexicographic over UTF-16 code units.
fn utf16_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_number(out: &mut impl Sink, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        out.push(&i.to_string());
    } else if let Some(u) = n.as_u64() {
        out.push(&u.to_string());
    } else if let Some(f) = n.as_f64() {
        out.push(&format_double(f));
    } else {
        // Only reachable with serde_json's `arbitrary_precision` for numbers that are
        // not even a double; keep them as written rather than guess.
        out.push(&n.to_string());
    }
}

/// ECMAScript `Number.prototype.toString(x)` for a double (the number form of JCS):
/// shortest round-trip digits, the closest of them, ties to even. `ryu-js` implements
/// exactly that; Rust's own `{:e}` breaks ties the other way, and serde_json's float
/// spelling is neither stable across its releases nor ECMAScript's.
pub(crate) fn format_double(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned(); // both zeros
    }
    if !x.is_finite() {
        return "null".to_owned(); // JSON cannot hold them; serde_json never makes them
    }
    ryu_js::Buffer::new().format_finite(x).to_owned()
}

pub(crate) fn write_string(out: &mut impl Sink, s: &str) {
    out.push("\"");
    // Every byte that needs escaping is ASCII, so slicing around it keeps UTF-8 intact.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push(&s[start..i]);
        if escape.is_empty() {
            out.push(&format!("\\u{b:04x}"));
        } else {
            out.push(escape);
        }
        start = i + 1;
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
    fn key_order_is_utf16_code_unit_order() {
        // U+00E9 sorts after 'z'; U+1F600 (surrogates D83D DE00) sorts before U+FF21,
        // unlike in code point order: that is JCS's rule.
        let v = json!({"é": 1, "z": 2, "\u{1F600}": 3, "\u{FF21}": 4, "": 5});
        assert_eq!(
            canonical_json(&v),
            "{\"\":5,\"z\":2,\"é\":1,\"\u{1F600}\":3,\"\u{FF21}\":4}"
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
            "[0, -0, 12, -12, 18446744073709551615, -9223372036854775808, 18446744073709551616, \
             0.5, 1.0, -1.0, 1e2, 123.456, 1e16, 1e20, 1e21, 1.5e-7, 0.000001, 0.0000012, 1e-7, \
             -0.0, 5e-324, 1.7976931348623157e308]",
        )
        .unwrap();
        assert_eq!(
            canonical_json(&v),
            "[0,0,12,-12,18446744073709551615,-9223372036854775808,18446744073709552000,\
             0.5,1,-1,100,123.456,10000000000000000,100000000000000000000,1e+21,1.5e-7,0.000001,\
             0.0000012,1e-7,0,5e-324,1.7976931348623157e+308]"
        );
    }

    #[test]
    fn doubles_match_ecmascript() {
        // Expected strings from Node.js `JSON.stringify(x)`; the first ones are exact
        // ties between two shortest spellings, which ECMAScript resolves to even.
        let cases = [
            (0x4308_ec79_b92c_9bb2_u64, "876925872870262.2"),
            (0x42bb_ea14_2cba_d3d0, "30692174772947.812"),
            (0x42ed_1225_ff76_0604, "255710272925744.12"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0x3eb9_2a73_7110_e454, "0.0000015"),
            (0x3e80_0000_0000_0000, "1.1920928955078125e-7"),
        ];
        for (bits, expected) in cases {
            assert_eq!(format_double(f64::from_bits(bits)), expected, "{bits:#x}");
        }
    }

    #[test]
    fn doubles_read_back_exactly() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                let text = format_double(f);
                assert_eq!(text.parse::<f64>().unwrap(), f, "{text}");
            }
        }
    }

    #[test]
    fn matches_serde_json_compact_output_for_sorted_input() {
        // Keys already in sorted order, so serde_json's output does not depend on its
        // map type; this guards the escaping and number rules against drift.
        let v = json!({"a": null, "k": ["x\u{01}y", 3.25, -7, {"n": "ü\"\\"}]});
        assert_eq!(canonical_json(&v), serde_json::to_string(&v).unwrap());
    }
}
