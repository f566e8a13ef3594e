//! Result samples for session recordings: the first rows of a statement's
//! masked result, exactly as the client received them, kept cheaply on the
//! result path and decoded to text later by the recording's writer.
//!
//! On the result path a sample is one buffer per statement: each DataRow as
//! sent (masked) is appended whole while it fits the row and byte limits,
//! and the row that crosses the byte limit is appended cut at it. Nothing
//! is decoded there. [`PgSample::decode`] (a [`ResultSample`], run by the
//! writer task) reads the RowDescription the client was sent, turns each
//! value into text by its type and format, and marks the cut.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use periscope_pg_wire::backend::{BackendMessage, tag as btag};
use periscope_pg_wire::codec::Frame;
use periscope_shield::masking::{ColumnAction, CountKey};
use periscope_shield::record::{DecodedSample, ResultSample, SampleColumn, SampleLimits};

use crate::plan::RowPlan;
use crate::values::oid;

/// Largest frame the decoder accepts (a RowDescription as sent).
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Marks a value cut at the byte limit.
pub const CUT: &str = "…";

/// The sample of one statement's result, being captured.
#[derive(Debug)]
pub struct PgSample {
    limits: SampleLimits,
    /// The plan the rows were masked with (its RowDescription as sent).
    plan: Option<Arc<RowPlan>>,
    /// DataRow frames as sent, one after the other; the last may be cut.
    rows: BytesMut,
    kept: usize,
    /// More rows came than were kept, or the last kept one was cut.
    truncated: bool,
    /// The rows are `COPY ... TO STDOUT` lines (each kept with a 4-byte
    /// length before it), not DataRows.
    copy: bool,
}

impl PgSample {
    /// An empty sample within `limits`.
    pub fn new(limits: SampleLimits) -> PgSample {
        PgSample {
            limits,
            plan: None,
            rows: BytesMut::new(),
            kept: 0,
            truncated: false,
            copy: false,
        }
    }

    /// Keeps the `COPY ... TO STDOUT` line `line` (a CopyData body as sent,
    /// masked), within the limits like a row.
    pub fn push_copy(&mut self, line: &[u8]) {
        if self.truncated {
            return;
        }
        self.copy = true;
        let room = self.limits.bytes.saturating_sub(self.rows.len());
        if self.kept >= self.limits.rows || room <= 4 {
            self.truncated = true;
            return;
        }
        let kept = line.len().min(room - 4);
        self.rows
            .extend_from_slice(&u32::try_from(kept).unwrap_or(u32::MAX).to_be_bytes());
        self.rows.extend_from_slice(&line[..kept]);
        if kept < line.len() {
            self.truncated = true;
        }
        self.kept += 1;
    }

    /// Keeps the DataRow frame `row` (as sent to the client), masked with
    /// `plan`, if the limits leave room; cheap: one copy of at most the
    /// byte limit per statement.
    pub fn push(&mut self, plan: &Arc<RowPlan>, row: &[u8]) {
        if self.truncated {
            return;
        }
        let room = self.limits.bytes.saturating_sub(self.rows.len());
        if self.kept >= self.limits.rows || room == 0 {
            self.truncated = true;
            return;
        }
        if self.plan.is_none() {
            self.plan = Some(Arc::clone(plan));
        }
        if self.rows.capacity() == 0 {
            self.rows.reserve(
                self.limits
                    .bytes
                    .min(row.len().saturating_mul(self.limits.rows)),
            );
        }
        if row.len() <= room {
            self.rows.extend_from_slice(row);
        } else {
            self.rows.extend_from_slice(&row[..room]);
            self.truncated = true;
        }
        self.kept += 1;
    }

    /// Whether any row was kept.
    pub fn is_empty(&self) -> bool {
        self.kept == 0
    }
}

impl ResultSample for PgSample {
    fn held_bytes(&self) -> usize {
        self.rows.len()
            + self
                .plan
                .as_ref()
                .and_then(|p| p.shown.as_ref())
                .map_or(0, |b| b.len())
    }

    fn decode(self: Box<Self>) -> DecodedSample {
        if self.copy {
            return decode_copy(&self);
        }
        let columns = self
            .plan
            .as_ref()
            .map(|plan| describe(plan))
            .unwrap_or_default();
        let types: Vec<(u32, bool)> = self
            .plan
            .as_ref()
            .map(|plan| shown_types(plan))
            .unwrap_or_default();
        let rows = parse_rows(&self.rows)
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .enumerate()
                    .map(|(i, cell)| {
                        cell.map(|(value, cut)| {
                            let (type_oid, binary) = types.get(i).copied().unwrap_or((0, false));
                            let mut text = if cut {
                                // A cut binary value cannot be decoded.
                                String::from_utf8_lossy(value).into_owned()
                            } else {
                                to_text(type_oid, binary, value)
                            };
                            if cut {
                                text.push_str(CUT);
                            }
                            text
                        })
                    })
                    .collect()
            })
            .collect();
        DecodedSample {
            columns,
            rows,
            truncated: self.truncated,
        }
    }
}

/// A sample of `COPY ... TO STDOUT` lines: one column, each line as sent
/// (its newline removed; a line cut at the byte limit ends with `…`).
fn decode_copy(sample: &PgSample) -> DecodedSample {
    let mut rows = Vec::new();
    let buf = &sample.rows[..];
    let mut at = 0;
    while at + 4 <= buf.len() {
        let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
        let end = (at + 4 + len).min(buf.len());
        let line = String::from_utf8_lossy(&buf[at + 4..end]);
        let mut text = line.strip_suffix('\n').unwrap_or(&line).to_string();
        if end == buf.len() && sample.truncated && !line.ends_with('\n') {
            text.push_str(CUT);
        }
        rows.push(vec![Some(text)]);
        at = end;
    }
    DecodedSample {
        columns: vec![SampleColumn {
            name: "COPY".to_string(),
            type_name: "text".to_string(),
            masked: None,
        }],
        rows,
        truncated: sample.truncated,
    }
}

/// The columns of the RowDescription the client was sent, with what each
/// was masked as when masked whole.
fn describe(plan: &RowPlan) -> Vec<SampleColumn> {
    let masked_as = |action: &ColumnAction| match action {
        ColumnAction::Operator { entity } => Some(entity.name().to_string()),
        ColumnAction::Replace { count, .. } => Some(match count {
            CountKey::Entity(e) => e.name().to_string(),
            CountKey::Other(k) => k.to_string(),
        }),
        ColumnAction::Scan | ColumnAction::Json(_) => None,
    };
    let fields = shown_fields(plan);
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (name, type_oid) = fields
                .get(i)
                .cloned()
                .unwrap_or_else(|| (format!("column{}", i + 1), c.type_oid));
            SampleColumn {
                name,
                type_name: type_name(type_oid).to_string(),
                masked: masked_as(&c.action),
            }
        })
        .collect()
}

/// Name and type of each field of the description as sent.
fn shown_fields(plan: &RowPlan) -> Vec<(String, u32)> {
    let Some(shown) = &plan.shown else {
        return Vec::new();
    };
    match Frame::parse(shown, MAX_FRAME) {
        Ok(Some(frame)) if frame.tag() == btag::ROW_DESCRIPTION => {
            match BackendMessage::decode(frame) {
                Ok(BackendMessage::RowDescription(desc)) => desc
                    .fields()
                    .map(|f| (f.name.to_string(), f.type_oid))
                    .collect(),
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// Type and format of each value as sent.
fn shown_types(plan: &RowPlan) -> Vec<(u32, bool)> {
    let sent: Vec<u32> = shown_fields(plan).into_iter().map(|(_, t)| t).collect();
    plan.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let type_oid = if c.action.retypes() {
                oid::TEXT
            } else {
                sent.get(i).copied().unwrap_or(c.type_oid)
            };
            (type_oid, c.binary)
        })
        .collect()
}

type Cell<'a> = Option<(&'a [u8], bool)>;

/// The rows of a buffer of DataRow frames whose last one may be cut: each
/// value, and whether it was cut. Reads leniently and stops at the cut.
fn parse_rows(buf: &[u8]) -> Vec<Vec<Cell<'_>>> {
    let mut rows = Vec::new();
    let mut at = 0;
    while at + 7 <= buf.len() && buf[at] == btag::DATA_ROW {
        let count = u16::from_be_bytes([buf[at + 5], buf[at + 6]]) as usize;
        let mut p = at + 7;
        let mut row = Vec::with_capacity(count);
        for _ in 0..count {
            if p + 4 > buf.len() {
                break;
            }
            let len = i32::from_be_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]);
            p += 4;
            if len < 0 {
                row.push(None);
                continue;
            }
            let end = p + len as usize;
            if end > buf.len() {
                row.push(Some((&buf[p..], true)));
                break;
            }
            row.push(Some((&buf[p..end], false)));
            p = end;
        }
        if !row.is_empty() {
            rows.push(row);
        }
        let frame_end = at
            + 1
            + u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if frame_end > buf.len() || frame_end <= at {
            break;
        }
        at = frame_end;
    }
    rows
}

/// The name of a common type, for the recording's column list.
fn type_name(type_oid: u32) -> &'static str {
    match type_oid {
        oid::BOOL => "bool",
        oid::BYTEA => "bytea",
        oid::CHAR => "char",
        oid::NAME => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        26 => "oid",
        oid::TEXT => "text",
        oid::JSON => "json",
        700 => "float4",
        701 => "float8",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1114 => "timestamp",
        1184 => "timestamptz",
        1700 => "numeric",
        oid::UUID => "uuid",
        oid::JSONB => "jsonb",
        0 => "unknown",
        _ => "other",
    }
}

/// A value as text: text format as is, binary decoded for common types
/// (others shown as `\x` and hex).
fn to_text(type_oid: u32, binary: bool, v: &[u8]) -> String {
    if !binary {
        return String::from_utf8_lossy(v).into_owned();
    }
    let be = |n: usize| -> Option<[u8; 8]> {
        (v.len() == n).then(|| {
            let mut b = [0u8; 8];
            b[8 - n..].copy_from_slice(v);
            b
        })
    };
    let decoded = match type_oid {
        oid::BOOL => v
            .first()
            .map(|b| if *b != 0 { "t" } else { "f" }.to_string()),
        21 => be(2).map(|b| i16::from_be_bytes([b[6], b[7]]).to_string()),
        23 => be(4).map(|b| i32::from_be_bytes([b[4], b[5], b[6], b[7]]).to_string()),
        26 => be(4).map(|b| u32::from_be_bytes([b[4], b[5], b[6], b[7]]).to_string()),
        20 => be(8).map(|b| i64::from_be_bytes(b).to_string()),
        700 => be(4).map(|b| f32::from_be_bytes([b[4], b[5], b[6], b[7]]).to_string()),
        701 => be(8).map(|b| f64::from_be_bytes(b).to_string()),
        oid::JSONB => v
            .split_first()
            .filter(|(version, _)| **version == 1)
            .map(|(_, rest)| String::from_utf8_lossy(rest).into_owned()),
        oid::UUID if v.len() == 16 => {
            let h = hex::encode(v);
            Some(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        1082 => be(4).map(|b| date(i64::from(i32::from_be_bytes([b[4], b[5], b[6], b[7]])))),
        1114 | 1184 => be(8).map(|b| timestamp(i64::from_be_bytes(b), type_oid == 1184)),
        t if is_text(t) => Some(String::from_utf8_lossy(v).into_owned()),
        _ => None,
    };
    decoded.unwrap_or_else(|| format!("\\x{}", hex::encode(v)))
}

fn is_text(type_oid: u32) -> bool {
    matches!(
        type_oid,
        oid::TEXT
            | oid::VARCHAR
            | oid::BPCHAR
            | oid::NAME
            | oid::UNKNOWN
            | oid::JSON
            | oid::XML
            | oid::CHAR
            | oid::REFCURSOR
    )
}

/// Days since 2000-01-01 as `YYYY-MM-DD` (proleptic Gregorian).
fn date(days: i64) -> String {
    let (y, m, d) = civil(days + 10_957);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Microseconds since 2000-01-01 00:00 as ISO text (UTC for `timestamptz`).
fn timestamp(micros: i64, tz: bool) -> String {
    let days = micros.div_euclid(86_400_000_000);
    let rest = micros.rem_euclid(86_400_000_000);
    let (h, mi, s, us) = (
        rest / 3_600_000_000,
        rest / 60_000_000 % 60,
        rest / 1_000_000 % 60,
        rest % 1_000_000,
    );
    let mut out = format!("{} {h:02}:{mi:02}:{s:02}", date(days));
    if us != 0 {
        out.push_str(&format!(".{us:06}"));
    }
    if tz {
        out.push_str("+00");
    }
    out
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The description frame a plan's rows were sent with, kept on the plan
/// when the session is recorded.
pub(crate) fn shown(frame: &[u8], rewritten: Option<&Bytes>) -> Bytes {
    match rewritten {
        Some(b) => b.clone(),
        None => Bytes::copy_from_slice(frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_pg_wire::backend::{DataRowWriter, FieldDescription, encode};

    fn plan_with(fields: &[(&str, u32, bool)]) -> Arc<RowPlan> {
        let mut out = BytesMut::new();
        encode::row_description(
            &mut out,
            fields.iter().map(|(name, t, binary)| FieldDescription {
                name,
                table_oid: 0,
                column_id: 0,
                type_oid: *t,
                type_size: -1,
                type_modifier: -1,
                binary: *binary,
            }),
        )
        .unwrap();
        let mut plan = RowPlan::scan_only(fields.iter().map(|(_, t, b)| (*t, *b)));
        plan.shown = Some(out.freeze());
        Arc::new(plan)
    }

    fn row(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let mut w = DataRowWriter::new(&mut out);
        for v in values {
            w.push(*v).unwrap();
        }
        w.finish().unwrap();
        out.to_vec()
    }

    #[test]
    fn keeps_rows_within_the_limits_and_decodes_them() {
        let plan = plan_with(&[("id", 23, true), ("email", oid::TEXT, false)]);
        let mut s = PgSample::new(SampleLimits {
            rows: 2,
            bytes: 1024,
        });
        for i in 0..3i32 {
            s.push(
                &plan,
                &row(&[Some(&i.to_be_bytes()[..]), Some(&b"[email]"[..])]),
            );
        }
        let d = Box::new(s).decode();
        assert_eq!(d.columns[0].name, "id");
        assert_eq!(d.columns[1].type_name, "text");
        assert_eq!(
            d.rows,
            vec![
                vec![Some("0".to_string()), Some("[email]".to_string())],
                vec![Some("1".to_string()), Some("[email]".to_string())],
            ]
        );
        assert!(d.truncated);
    }

    #[test]
    fn the_byte_limit_cuts_the_last_row() {
        let plan = plan_with(&[("note", oid::TEXT, false)]);
        let mut s = PgSample::new(SampleLimits {
            rows: 10,
            bytes: 30,
        });
        let long = "x".repeat(100);
        s.push(&plan, &row(&[Some(long.as_bytes())]));
        s.push(&plan, &row(&[None]));
        let d = Box::new(s).decode();
        assert_eq!(d.rows.len(), 1);
        let cell = d.rows[0][0].clone().unwrap();
        assert!(cell.ends_with(CUT) && cell.len() < 40, "{cell}");
        assert!(d.truncated);
    }

    #[test]
    fn copy_lines_are_kept_as_one_column() {
        let mut s = PgSample::new(SampleLimits { rows: 2, bytes: 64 });
        s.push_copy(b"1\t[email]\n");
        s.push_copy(b"2\t[email]\n");
        s.push_copy(b"3\t[email]\n");
        let d = Box::new(s).decode();
        assert_eq!(d.columns[0].name, "COPY");
        assert_eq!(
            d.rows,
            vec![
                vec![Some("1\t[email]".to_string())],
                vec![Some("2\t[email]".to_string())]
            ]
        );
        assert!(d.truncated);
        let mut s = PgSample::new(SampleLimits { rows: 9, bytes: 12 });
        s.push_copy(b"a long line of text\n");
        let d = Box::new(s).decode();
        assert_eq!(d.rows, vec![vec![Some("a long l…".to_string())]]);
    }

    #[test]
    fn binary_values_read_as_text() {
        assert_eq!(to_text(20, true, &(-5i64).to_be_bytes()), "-5");
        assert_eq!(to_text(oid::BOOL, true, &[1]), "t");
        assert_eq!(to_text(oid::JSONB, true, b"\x01{\"a\":1}"), "{\"a\":1}");
        assert_eq!(to_text(1082, true, &0i32.to_be_bytes()), "2000-01-01");
        assert_eq!(
            to_text(1184, true, &(86_400_000_000i64 + 1_500_000).to_be_bytes()),
            "2000-01-02 00:00:01.500000+00"
        );
        assert_eq!(to_text(1700, true, &[0, 1]), "\\x0001");
    }
}
