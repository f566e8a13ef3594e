//! Row plans: the shield stage's action for each column of a result, bound
//! to what PostgreSQL says about the column (its type, text or binary
//! format), decided once per RowDescription (or per COPY) and applied to
//! every DataRow as it streams.
//!
//! Columns replaced whole are re-described as `text` (OID 25) so every
//! driver accepts the placeholder in text and binary formats. Values are
//! masked one row at a time: a row that needs no change is forwarded as
//! received (no copy), a changed one is rebuilt into a reused buffer.

use std::sync::Arc;

use bytes::BytesMut;
use periscope_pg_wire::ProtocolError;
use periscope_pg_wire::backend::{
    DataRow, DataRowWriter, FieldDescription, RowDescription, encode,
};
use periscope_shield::masking::{ColumnAction, MaskCounts, Masking};
use periscope_sql::{Lineage, OutputColumn};

use crate::catalog::PgCatalog;
use crate::values::{self, oid};

/// Masks one value, and when it comes from an untagged column that a
/// content scan found something in, counts that against the column.
fn mask_counted<'p>(
    masking: &Masking,
    col: &'p ColumnPlan,
    value: &[u8],
    counts: &mut MaskCounts,
) -> Option<std::borrow::Cow<'p, [u8]>> {
    let Some(source) = &col.source else {
        return values::mask_value(masking, col, value, counts);
    };
    // What the scan finds is also counted against the source column: the
    // difference of the tally's entity counts tells what that is, without
    // a tally built and dropped per value (a wide result scans millions).
    let before = *counts.entities();
    let masked = values::mask_value(masking, col, value, counts);
    if masked.is_some() {
        let found = counts.entities().since(&before);
        counts.add_found_in(source, &found);
    }
    masked
}

/// One column of a plan: what the shield does to its values, and how
/// PostgreSQL encodes them.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPlan {
    pub(crate) action: ColumnAction,
    /// Type as the upstream described it (0 when unknown, e.g. COPY of an
    /// expression).
    pub(crate) type_oid: u32,
    pub(crate) binary: bool,
    /// For a scanned column whose values come unchanged from one table
    /// column: that column (`schema.table.column`), so what scans find in
    /// it is counted against it (run-time learning).
    pub(crate) source: Option<Arc<str>>,
}

/// The one column a scanned output's values come from unchanged.
fn scanned_source(action: &ColumnAction, lineage: &Lineage) -> Option<Arc<str>> {
    if !matches!(action, ColumnAction::Scan) {
        return None;
    }
    match lineage {
        Lineage::Sources {
            columns,
            transformed: false,
        } if columns.len() == 1 => columns.iter().next().map(|c| Arc::from(c.to_string())),
        _ => None,
    }
}

/// The plan of one result: one entry per column, in order.
#[derive(Debug, Clone, Default)]
pub struct RowPlan {
    pub(crate) columns: Vec<ColumnPlan>,
    /// The RowDescription frame as sent to the client, kept only when the
    /// session is recorded (a result sample's column names and types).
    pub(crate) shown: Option<bytes::Bytes>,
}

/// An owned copy of one RowDescription field, kept for statements and
/// portals whose rows arrive later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Table OID, 0 when computed.
    pub table_oid: u32,
    /// Attribute number, 0 when computed.
    pub column_id: i16,
    /// Type OID.
    pub type_oid: u32,
    /// Binary format.
    pub binary: bool,
}

impl FieldInfo {
    /// Copies what the plan needs from a RowDescription field.
    pub fn of(f: &FieldDescription<'_>) -> FieldInfo {
        FieldInfo {
            table_oid: f.table_oid,
            column_id: f.column_id,
            type_oid: f.type_oid,
            binary: f.binary,
        }
    }
}

impl RowPlan {
    /// The plan of a result described by `fields`, whose statement's
    /// outputs are `outputs` (`None` when the statement is unknown or its
    /// outputs cannot be matched by position: every column is then masked
    /// whole).
    pub fn for_result(
        masking: &Masking,
        catalog: &PgCatalog,
        outputs: Option<&[OutputColumn]>,
        fields: &[FieldInfo],
    ) -> RowPlan {
        let outputs = outputs.filter(|o| o.len() == fields.len());
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let described = (f.table_oid != 0 && f.column_id > 0)
                    .then(|| catalog.column_by_attr(f.table_oid, f.column_id))
                    .flatten();
                let (action, source) = match outputs {
                    Some(outputs) => {
                        let action = masking.action(&outputs[i].lineage, described);
                        let source = scanned_source(&action, &outputs[i].lineage);
                        (action, source)
                    }
                    None => (ColumnAction::unknown(), None),
                };
                ColumnPlan {
                    action,
                    type_oid: f.type_oid,
                    binary: f.binary,
                    source,
                }
            })
            .collect();
        RowPlan {
            columns,
            shown: None,
        }
    }

    /// The plan of a `COPY ... TO STDOUT` (text or CSV): the statement's
    /// outputs by position, types from the catalog where a column passes
    /// through unchanged.
    pub fn for_copy(
        masking: &Masking,
        catalog: &PgCatalog,
        outputs: Option<&[OutputColumn]>,
        columns: usize,
    ) -> RowPlan {
        let outputs = outputs.filter(|o| o.len() == columns);
        let columns = (0..columns)
            .map(|i| {
                let Some(outputs) = outputs else {
                    return ColumnPlan {
                        action: ColumnAction::unknown(),
                        type_oid: 0,
                        binary: false,
                        source: None,
                    };
                };
                let lineage = &outputs[i].lineage;
                let type_oid = match lineage {
                    Lineage::Sources {
                        columns,
                        transformed: false,
                    } if columns.len() == 1 => columns
                        .iter()
                        .next()
                        .and_then(|c| catalog.column(&c.schema, &c.table, &c.column))
                        .map_or(0, |c| c.type_id),
                    _ => 0,
                };
                let action = masking.action(lineage, None);
                let source = scanned_source(&action, lineage);
                ColumnPlan {
                    action,
                    type_oid,
                    binary: false,
                    source,
                }
            })
            .collect();
        RowPlan {
            columns,
            shown: None,
        }
    }

    /// A plan that masks every value whole: for rows whose shape is unknown.
    pub(crate) fn all_unknown(n: usize) -> RowPlan {
        RowPlan {
            columns: (0..n)
                .map(|_| ColumnPlan {
                    action: ColumnAction::unknown(),
                    type_oid: 0,
                    binary: false,
                    source: None,
                })
                .collect(),
            shown: None,
        }
    }

    /// A plan that only scans, for tests of what reads plans.
    #[cfg(test)]
    pub(crate) fn scan_only(types: impl Iterator<Item = (u32, bool)>) -> RowPlan {
        RowPlan {
            columns: types
                .map(|(type_oid, binary)| ColumnPlan {
                    action: ColumnAction::Scan,
                    type_oid,
                    binary,
                    source: None,
                })
                .collect(),
            shown: None,
        }
    }

    /// Whether any column is masked by lineage (not only scanned).
    pub fn masks_by_lineage(&self) -> bool {
        self.columns
            .iter()
            .any(|c| !matches!(c.action, ColumnAction::Scan))
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True for a plan of no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Rewrites a RowDescription so that columns replaced by text are
    /// described as `text`; `None` when nothing changes (forward as is).
    pub fn rewrite_description(
        &self,
        desc: &RowDescription<'_>,
        out: &mut BytesMut,
    ) -> Result<Option<usize>, ProtocolError> {
        if !self.columns.iter().any(|c| c.action.retypes()) {
            return Ok(None);
        }
        let fields: Vec<FieldDescription<'_>> = desc
            .fields()
            .zip(self.columns.iter())
            .map(|(f, c)| {
                if c.action.retypes() {
                    FieldDescription {
                        type_oid: oid::TEXT,
                        type_size: -1,
                        type_modifier: -1,
                        ..f
                    }
                } else {
                    f
                }
            })
            .collect();
        let start = out.len();
        encode::row_description(out, fields.into_iter())?;
        Ok(Some(out.len() - start))
    }

    /// Masks one DataRow. Returns the length of the rebuilt row appended to
    /// `out`, or `None` when the row needs no change (forward it as is).
    pub fn mask_row(
        &self,
        masking: &Masking,
        row: &DataRow<'_>,
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<Option<usize>, ProtocolError> {
        if row.len() != self.columns.len() {
            // A row that does not match its description: mask everything.
            let fallback = RowPlan::all_unknown(row.len());
            return fallback.rebuild(masking, row, out, counts).map(Some);
        }
        let changes =
            row.fields()
                .zip(self.columns.iter())
                .any(|(value, col)| match (value, &col.action) {
                    (None, _) => false,
                    (Some(v), ColumnAction::Scan) => values::needs_scan_change(masking, col, v),
                    (Some(_), _) => true,
                });
        if !changes {
            return Ok(None);
        }
        self.rebuild(masking, row, out, counts).map(Some)
    }

    fn rebuild(
        &self,
        masking: &Masking,
        row: &DataRow<'_>,
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<usize, ProtocolError> {
        let mut writer = DataRowWriter::new(out);
        for (value, col) in row.fields().zip(self.columns.iter()) {
            match value {
                None => writer.push(None)?,
                Some(v) => match mask_counted(masking, col, v, counts) {
                    Some(masked) => writer.push(Some(&masked))?,
                    None => writer.push(Some(v))?,
                },
            }
        }
        writer.finish()
    }
}
