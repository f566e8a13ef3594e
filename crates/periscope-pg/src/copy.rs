//! `COPY ... TO STDOUT`: masking one row of its text or CSV output with the
//! same plan as a `SELECT`.
//!
//! The server sends one CopyData message per row (plus one for a CSV
//! header), so rows are masked one message at a time, as they stream. The
//! format comes from the statement's analysis ([`periscope_sql::CopyFormat`]);
//! binary COPY is refused before it runs, because its values carry no type
//! information to mask by.

use std::borrow::Cow;

use periscope_shield::masking::{MaskCounts, Masking};
use periscope_sql::CopyRowFormat;

use crate::plan::RowPlan;
use crate::values;

/// One field of a COPY row: its value (`None` = NULL) and where its raw
/// text is in the row, so an unchanged field is written back as received.
type CopyField = (Option<Vec<u8>>, std::ops::Range<usize>);

/// Splits a text-format row into its fields, unescaped.
fn text_fields(line: &[u8], f: &CopyRowFormat) -> Vec<CopyField> {
    let mut start = 0;
    line.split(|&b| b == f.delimiter)
        .map(|raw| {
            let range = start..start + raw.len();
            start = range.end + 1;
            (unescape_text(raw, f), range)
        })
        .collect()
}

fn unescape_text(raw: &[u8], f: &CopyRowFormat) -> Option<Vec<u8>> {
    if raw == f.null.as_bytes() {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'\\' || i + 1 == raw.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = raw[i + 1];
        i += 2;
        match next {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(next - b'0');
                let mut n = 1;
                while n < 3 && i < raw.len() && (b'0'..=b'7').contains(&raw[i]) {
                    v = v * 8 + u32::from(raw[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if i < raw.len() && raw[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                let mut n = 0;
                while n < 2 && i < raw.len() && raw[i].is_ascii_hexdigit() {
                    v = v * 16 + char::from(raw[i]).to_digit(16).unwrap_or(0);
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

fn put_text_field(out: &mut Vec<u8>, value: &[u8], f: &CopyRowFormat) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' if f.delimiter == b'\t' => out.extend_from_slice(b"\\t"),
            d if d == f.delimiter => {
                out.push(b'\\');
                out.push(d);
            }
            other => out.push(other),
        }
    }
}

/// Splits a CSV row into its fields (`None` = NULL, i.e. the unquoted
/// NULL string).
fn csv_fields(line: &[u8], f: &CopyRowFormat) -> Option<Vec<CopyField>> {
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut value = Vec::new();
        let mut quoted = false;
        if i < line.len() && line[i] == f.quote {
            quoted = true;
            i += 1;
            loop {
                let b = *line.get(i)?;
                if b == f.escape
                    && f.escape != f.quote
                    && i + 1 < line.len()
                    && (line[i + 1] == f.quote || line[i + 1] == f.escape)
                {
                    value.push(line[i + 1]);
                    i += 2;
                } else if b == f.quote {
                    if f.escape == f.quote && line.get(i + 1) == Some(&f.quote) {
                        value.push(f.quote);
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    value.push(b);
                    i += 1;
                }
            }
        }
        while i < line.len() && line[i] != f.delimiter {
            value.push(line[i]);
            i += 1;
        }
        let is_null = !quoted && value == f.null.as_bytes();
        fields.push(((!is_null).then_some(value), start..i));
        if i >= line.len() {
            return Some(fields);
        }
        i += 1; // the delimiter
    }
}

fn put_csv_field(out: &mut Vec<u8>, value: &[u8], f: &CopyRowFormat) {
    out.push(f.quote);
    for &b in value {
        if b == f.quote || b == f.escape {
            out.push(f.escape);
        }
        out.push(b);
    }
    out.push(f.quote);
}

/// Masking state of one running COPY.
#[derive(Debug)]
pub(crate) struct CopyMasker {
    pub(crate) format: CopyRowFormat,
    pub(crate) plan: RowPlan,
    header_pending: bool,
}

impl CopyMasker {
    pub(crate) fn new(format: CopyRowFormat, plan: RowPlan) -> CopyMasker {
        CopyMasker {
            header_pending: format.header,
            format,
            plan,
        }
    }

    /// Masks one CopyData row; `None` when it needs no change.
    pub(crate) fn mask_row(
        &mut self,
        masking: &Masking,
        data: &[u8],
        counts: &mut MaskCounts,
    ) -> Option<Vec<u8>> {
        if std::mem::take(&mut self.header_pending) {
            // Column names, not values.
            return None;
        }
        let (line, end) = match data.strip_suffix(b"\r\n") {
            Some(l) => (l, &b"\r\n"[..]),
            None => match data.strip_suffix(b"\n") {
                Some(l) => (l, &b"\n"[..]),
                None => (data, &b""[..]),
            },
        };
        let fields = if self.format.csv {
            csv_fields(line, &self.format)
        } else {
            Some(text_fields(line, &self.format))
        };
        let fallback;
        let (fields, plan) = match fields {
            Some(fields) if fields.len() == self.plan.len() => (fields, &self.plan),
            Some(fields) => {
                fallback = RowPlan::all_unknown(fields.len());
                (fields, &fallback)
            }
            // An unterminated quote: the row cannot be read, so nothing of
            // it is shown.
            None => {
                fallback = RowPlan::all_unknown(1);
                (vec![(Some(line.to_vec()), 0..line.len())], &fallback)
            }
        };
        let masked: Vec<Option<Cow<'_, [u8]>>> = fields
            .iter()
            .zip(plan.columns.iter())
            .map(|((value, _), col)| {
                value
                    .as_deref()
                    .and_then(|v| values::mask_value(masking, col, v, counts))
            })
            .collect();
        if masked.iter().all(Option::is_none) {
            return None;
        }
        let mut out = Vec::with_capacity(data.len() + 16);
        for (i, ((_, raw), m)) in fields.iter().zip(masked.iter()).enumerate() {
            if i > 0 {
                out.push(self.format.delimiter);
            }
            match m {
                // Unchanged: exactly as the server wrote it.
                None => out.extend_from_slice(line.get(raw.clone()).unwrap_or_default()),
                Some(v) if self.format.csv => put_csv_field(&mut out, v, &self.format),
                Some(v) => put_text_field(&mut out, v, &self.format),
            }
        }
        out.extend_from_slice(end);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_unescape_and_round_trip() {
        let f = CopyRowFormat::text();
        let fields: Vec<_> = text_fields(b"1\ta\\tb\\\\c\\n\t\\N\t\\101", &f)
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        assert_eq!(
            fields,
            vec![
                Some(b"1".to_vec()),
                Some(b"a\tb\\c\n".to_vec()),
                None,
                Some(b"A".to_vec())
            ]
        );
        let mut out = Vec::new();
        put_text_field(&mut out, b"a\tb\\c\n", &f);
        assert_eq!(out, b"a\\tb\\\\c\\n");
    }

    #[test]
    fn csv_fields_handle_quotes_and_nulls() {
        let f = CopyRowFormat::csv();
        let parsed = csv_fields(b"1,\"a,\"\"b\"\"\",,\"\"", &f).unwrap();
        assert_eq!(parsed[1].1, 2..11);
        let fields: Vec<_> = parsed.into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            fields,
            vec![
                Some(b"1".to_vec()),
                Some(b"a,\"b\"".to_vec()),
                None,
                Some(Vec::new())
            ]
        );
        assert_eq!(csv_fields(b"\"unterminated", &f), None);
        let mut out = Vec::new();
        put_csv_field(&mut out, b"say \"hi\"", &f);
        assert_eq!(out, b"\"say \"\"hi\"\"\"");
    }
}
