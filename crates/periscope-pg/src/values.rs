//! Masking one PostgreSQL value: which types can hold text, how text hides
//! in `bytea`, `jsonb`'s binary version byte, binary arrays and records; the
//! text itself goes to the shield stage ([`periscope_shield::masking`]).

use std::borrow::Cow;

use periscope_redact::Entity;
use periscope_shield::catalog::UNKNOWN_PLACEHOLDER;
use periscope_shield::masking::{ColumnAction, CountKey, MaskCounts, Masking, utf8_lossy};

use crate::binary;
use crate::plan::ColumnPlan;

/// Type OIDs the plans need by name.
pub mod oid {
    /// `bool`.
    pub const BOOL: u32 = 16;
    /// `bytea`.
    pub const BYTEA: u32 = 17;
    /// `"char"` (one byte).
    pub const CHAR: u32 = 18;
    /// `name`.
    pub const NAME: u32 = 19;
    /// `text`.
    pub const TEXT: u32 = 25;
    /// `json`.
    pub const JSON: u32 = 114;
    /// `xml`.
    pub const XML: u32 = 142;
    /// `unknown` (untyped literals).
    pub const UNKNOWN: u32 = 705;
    /// `bpchar`.
    pub const BPCHAR: u32 = 1042;
    /// `varchar`.
    pub const VARCHAR: u32 = 1043;
    /// `refcursor`.
    pub const REFCURSOR: u32 = 1790;
    /// `record` (anonymous row).
    pub const RECORD: u32 = 2249;
    /// `uuid`.
    pub const UUID: u32 = 2950;
    /// `jsonb`.
    pub const JSONB: u32 = 3802;
}

/// Types whose values are text on the wire in both formats (binary `jsonb`
/// adds a version byte).
fn is_text_like(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::UNKNOWN
            | oid::JSON
            | oid::JSONB
            | oid::XML
            | oid::REFCURSOR
    )
}

/// Arrays whose elements are text-like, in binary format.
fn is_text_array(type_oid: u32) -> bool {
    // _text, _varchar, _bpchar, _name, _json, _jsonb, _xml, _refcursor
    matches!(
        type_oid,
        1009 | 1015 | 1014 | 1003 | 199 | 3807 | 143 | 2201
    )
}

/// Types that cannot hold free text: numbers, booleans, dates and times,
/// object identifiers, bit strings, and arrays of those. Their values are
/// not scanned (a card number stored in a `bigint` column is masked by the
/// column's name or tag, not by content).
fn is_scalar_without_text(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::BOOL
            | oid::CHAR
            | 20 | 21 | 22 | 23 | 24 | 26 | 27 | 28 | 29 | 30
            | 700 | 701 | 790 | 1700
            | 1082 | 1083 | 1114 | 1184 | 1186 | 1266
            | 1560 | 1562
            | 2202 | 2203 | 2204 | 2205 | 2206 | 3734 | 3769 | 4089 | 4096
            | 3220 | 5069 | 2278
            // arrays of the above
            | 1000 | 1005 | 1006 | 1007 | 1016 | 1021 | 1022 | 1028 | 1231
            | 1182 | 1183 | 1115 | 1185 | 1187 | 1270
    )
}

/// Cheap check for a scanned column: would masking change the value?
pub(crate) fn needs_scan_change(masking: &Masking, col: &ColumnPlan, value: &[u8]) -> bool {
    if value.is_empty() || skips_type(masking, col.type_oid) {
        return false;
    }
    match scannable_text(col, value) {
        Some(Cow::Borrowed(text)) if col.type_oid != oid::JSON && col.type_oid != oid::JSONB => {
            masking.might_mask(text)
        }
        // JSON (key names classify values), bytea, binary arrays and
        // anything decoded: decide by masking.
        _ => mask_value(masking, col, value, &mut MaskCounts::default()).is_some(),
    }
}

fn skips_type(masking: &Masking, type_oid: u32) -> bool {
    if type_oid == oid::UUID {
        return !masking.detects(Entity::Uuid);
    }
    is_scalar_without_text(type_oid)
}

/// The masked bytes of one non-NULL value, or `None` when unchanged.
/// A whole-column replacement is borrowed from the plan: no allocation
/// per row for the most common masking.
pub(crate) fn mask_value<'p>(
    masking: &Masking,
    col: &'p ColumnPlan,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Option<Cow<'p, [u8]>> {
    let owned = match &col.action {
        ColumnAction::Replace { text, count } => {
            counts.add(count);
            return Some(Cow::Borrowed(text.as_bytes()));
        }
        ColumnAction::Operator { entity } => {
            let text = if col.binary && !is_text_like(col.type_oid) {
                // A binary number or date has no text to keep a part of.
                None
            } else {
                std::str::from_utf8(value).ok()
            };
            Some(masking.operator_text(*entity, text, counts).into_bytes())
        }
        ColumnAction::Json(plan) => {
            Some(mask_json_value(masking, col, value, Some(plan), counts).0)
        }
        ColumnAction::Scan => scan_value(masking, col, value, counts),
    };
    owned.map(Cow::Owned)
}

fn scan_value(
    masking: &Masking,
    col: &ColumnPlan,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Option<Vec<u8>> {
    if value.is_empty() || skips_type(masking, col.type_oid) {
        return None;
    }
    match col.type_oid {
        oid::JSON | oid::JSONB => {
            let (masked, changed) = mask_json_value(masking, col, value, None, counts);
            changed.then_some(masked)
        }
        oid::BYTEA => scan_bytea(masking, col.binary, value, counts),
        t if col.binary && !is_text_like(t) => scan_binary(masking, t, value, counts),
        _ => masking
            .scan_text(&utf8_lossy(value), counts)
            .map(String::into_bytes),
    }
}

/// A bytea value holding text (`convert_to(notes, 'UTF8')`, `notes::bytea`)
/// is decoded and scanned; the masked text goes back as bytea.
fn scan_bytea(
    masking: &Masking,
    binary: bool,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Option<Vec<u8>> {
    let raw: Cow<'_, [u8]> = if binary {
        Cow::Borrowed(value)
    } else {
        let hex_digits = value.strip_prefix(b"\\x")?;
        Cow::Owned(hex::decode(hex_digits).ok()?)
    };
    let masked = masking.scan_text(&utf8_lossy(&raw), counts)?;
    let bytes = masked.as_bytes();
    Some(if binary {
        bytes.to_vec()
    } else {
        let mut out = Vec::with_capacity(2 + bytes.len() * 2);
        out.extend_from_slice(b"\\x");
        out.extend_from_slice(hex::encode(bytes).as_bytes());
        out
    })
}

/// Binary arrays and records are walked element by element; other
/// binary values of unknown types are scanned when they are UTF-8.
fn scan_binary(
    masking: &Masking,
    type_oid: u32,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Option<Vec<u8>> {
    if is_text_array(type_oid) || type_oid == oid::RECORD {
        let mut element = |elem_type: u32, v: &[u8]| {
            let col = ColumnPlan {
                action: ColumnAction::Scan,
                type_oid: elem_type,
                binary: true,
                source: None,
            };
            scan_value(masking, &col, v, counts)
        };
        let walked = if type_oid == oid::RECORD {
            binary::map_record(value, &mut element)
        } else {
            binary::map_array(value, &mut element)
        };
        return match walked {
            Ok(changed) => changed,
            // Not what the type promised: fail closed.
            Err(_) => {
                counts.add(&CountKey::unknown());
                Some(UNKNOWN_PLACEHOLDER.as_bytes().to_vec())
            }
        };
    }
    let text = std::str::from_utf8(value).ok()?;
    masking.scan_text(text, counts).map(String::into_bytes)
}

/// Masks a JSON value (`json`, or `jsonb` in text or binary format): see
/// [`Masking::mask_json_text`]. Also says whether anything was masked.
fn mask_json_value(
    masking: &Masking,
    col: &ColumnPlan,
    value: &[u8],
    plan: Option<&periscope_shield::masking::JsonPlan>,
    counts: &mut MaskCounts,
) -> (Vec<u8>, bool) {
    let jsonb_binary = col.binary && col.type_oid == oid::JSONB;
    let body = if jsonb_binary {
        // Binary jsonb: a version byte (1), then the text.
        match value.split_first() {
            Some((1, rest)) => rest,
            _ => &[],
        }
    } else {
        value
    };
    let (text, changed) = masking.mask_json_text(std::str::from_utf8(body).ok(), plan, counts);
    let mut out = Vec::with_capacity(text.len() + 1);
    if jsonb_binary {
        out.push(1);
    }
    out.extend_from_slice(text.as_bytes());
    (out, changed)
}

/// The text of a value when its type is text on the wire, borrowed when it
/// needs no decoding.
fn scannable_text<'a>(col: &ColumnPlan, value: &'a [u8]) -> Option<Cow<'a, str>> {
    if col.type_oid == oid::BYTEA || (col.binary && !is_text_like(col.type_oid)) {
        return None;
    }
    Some(utf8_lossy(value))
}
