//! Mask plans: what happens to each output column of a result, decided once
//! per RowDescription (or per COPY) and applied to every row as it streams.
//!
//! A column's plan comes from two sources joined together: the statement's
//! lineage ([`periscope_sql::Lineage`]: which catalog columns the value
//! derives from, and whether it was transformed) and the RowDescription
//! (table OID and attribute number of a plain column reference). Then:
//!
//! | sources | plan |
//! |---|---|
//! | none sensitive (or every shield lifted) | content-scan text values |
//! | one sensitive column, passed through | its entity's operator (`partial`, `token`, ...) |
//! | transformed, or several sensitive columns | replaced whole: `[email]`, `[tag]` |
//! | whole row as JSON | sensitive keys masked inside the JSON, the rest scanned |
//! | whole row as a composite with a sensitive field | replaced whole |
//! | unknown lineage | replaced whole: `[masked]` |
//!
//! Columns replaced whole are re-described as `text` (OID 25) so every
//! driver accepts the placeholder in text and binary formats. Values are
//! masked one row at a time: a row that needs no change is forwarded as
//! received (no copy), a changed one is rebuilt into a reused buffer.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use periscope_policy::ShieldSet;
use periscope_redact::{Counts, Entity, Masker, Operator};
use periscope_sql::{ColumnRef, Lineage, OutputColumn, RowEncoding};
use serde_json::Value;

use crate::backend::{DataRow, DataRowWriter, FieldDescription, RowDescription, encode};
use crate::catalog::{
    ColumnInfo, PgCatalog, Sensitivity, UNKNOWN_KEY, UNKNOWN_PLACEHOLDER, column_shield,
};
use crate::error::ProtocolError;

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

/// Which audit counter a masked value increments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CountKey {
    Entity(Entity),
    Other(Arc<str>),
}

impl CountKey {
    fn of(sensitivity: &Sensitivity) -> CountKey {
        match sensitivity {
            Sensitivity::Entity(e) => CountKey::Entity(*e),
            other => CountKey::Other(other.count_key().into()),
        }
    }

    fn unknown() -> CountKey {
        CountKey::Other(UNKNOWN_KEY.into())
    }
}

/// Masked values per entity, tag, or `unknown`: what outcome events record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskCounts {
    entities: Counts,
    other: BTreeMap<Arc<str>, u64>,
}

impl MaskCounts {
    pub(crate) fn add(&mut self, key: &CountKey) {
        match key {
            CountKey::Entity(e) => self.entities.add(*e),
            CountKey::Other(k) => *self.other.entry(Arc::clone(k)).or_insert(0) += 1,
        }
    }

    pub(crate) fn merge_entities(&mut self, counts: &Counts) {
        self.entities.merge(counts);
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: &MaskCounts) {
        self.entities.merge(&other.entities);
        for (k, n) in &other.other {
            *self.other.entry(Arc::clone(k)).or_insert(0) += n;
        }
    }

    /// Total masked values.
    pub fn total(&self) -> u64 {
        self.entities.total() + self.other.values().sum::<u64>()
    }

    /// Masked values of one entity.
    pub fn entity(&self, entity: Entity) -> u64 {
        u64::from(self.entities.get(entity))
    }

    /// Masked values counted under a tag or `unknown`.
    pub fn other(&self, key: &str) -> u64 {
        self.other.get(key).copied().unwrap_or(0)
    }

    /// `{"email": 3, "unknown": 1}`: counts, never values.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for (e, n) in self.entities.iter() {
            map.insert(e.name().to_string(), Value::from(n));
        }
        for (k, n) in &self.other {
            map.insert(k.to_string(), Value::from(*n));
        }
        Value::Object(map)
    }
}

/// What happens to the values of one output column.
#[derive(Debug, Clone)]
pub(crate) enum ColumnAction {
    /// Not known to be sensitive: text values are content-scanned.
    Scan,
    /// A sensitive column passed through unchanged: the entity's operator
    /// (set on the session's masker) renders the value.
    Operator { entity: Entity },
    /// Replaced whole.
    Replace { text: Arc<str>, count: CountKey },
    /// A whole row as JSON: keys masked per their own plan, the rest scanned.
    Json(Arc<JsonPlan>),
}

impl ColumnAction {
    fn replace(sensitivity: &Sensitivity) -> ColumnAction {
        ColumnAction::Replace {
            text: sensitivity.placeholder().into(),
            count: CountKey::of(sensitivity),
        }
    }

    fn unknown() -> ColumnAction {
        ColumnAction::Replace {
            text: UNKNOWN_PLACEHOLDER.into(),
            count: CountKey::unknown(),
        }
    }

    /// Whether the value is replaced by text whatever its type, so the
    /// column is re-described as `text`.
    fn retypes(&self) -> bool {
        matches!(
            self,
            ColumnAction::Operator { .. } | ColumnAction::Replace { .. }
        )
    }
}

/// Per-key plan of a whole-row JSON value.
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonPlan {
    fields: Vec<(String, ColumnAction)>,
}

/// One column of a plan.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPlan {
    pub(crate) action: ColumnAction,
    /// Type as the upstream described it (0 when unknown, e.g. COPY of an
    /// expression).
    pub(crate) type_oid: u32,
    pub(crate) binary: bool,
}

/// The plan of one result: one entry per column, in order.
#[derive(Debug, Clone, Default)]
pub struct RowPlan {
    pub(crate) columns: Vec<ColumnPlan>,
}

impl RowPlan {
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

    /// A plan that masks every value whole: for rows whose shape is unknown.
    pub(crate) fn all_unknown(n: usize) -> RowPlan {
        RowPlan {
            columns: (0..n)
                .map(|_| ColumnPlan {
                    action: ColumnAction::unknown(),
                    type_oid: 0,
                    binary: false,
                })
                .collect(),
        }
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
}

/// The masking context of one session: the shields in force, the catalog
/// and the engine that scans content.
#[derive(Debug, Clone)]
pub struct Masking {
    masker: Masker,
    shields: ShieldSet,
    catalog: Arc<PgCatalog>,
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

/// What the upstream said about one COPY column: its type when known.
fn unknown_column(schema: &str, table: &str, column: &str) -> ColumnInfo {
    ColumnInfo {
        schema: schema.to_string(),
        table: table.to_string(),
        column: column.to_string(),
        type_oid: 0,
        type_name: String::new(),
        comment_tag: None,
    }
}

impl Masking {
    /// A context for one session. `masker` must already reflect the
    /// session's shields (lifted entities not detected, operators set).
    pub fn new(masker: Masker, shields: ShieldSet, catalog: Arc<PgCatalog>) -> Masking {
        Masking {
            masker,
            shields,
            catalog,
        }
    }

    /// The content-scanning engine.
    pub fn masker(&self) -> &Masker {
        &self.masker
    }

    /// The catalog the plans read.
    pub fn catalog(&self) -> &Arc<PgCatalog> {
        &self.catalog
    }

    /// The shield state of a lineage source column.
    fn source_shield(&self, c: &ColumnRef) -> Option<crate::catalog::ColumnShield> {
        match self.catalog.column(&c.schema, &c.table, &c.column) {
            Some(info) => column_shield(info, &self.shields),
            None => column_shield(
                &unknown_column(&c.schema, &c.table, &c.column),
                &self.shields,
            ),
        }
    }

    /// The action for one column from its lineage and, when the
    /// RowDescription names one, its source column.
    fn action(&self, lineage: &Lineage, described: Option<&ColumnInfo>) -> ColumnAction {
        let (columns, transformed) = match lineage {
            Lineage::Unknown { .. } => return ColumnAction::unknown(),
            Lineage::Constant => (None, false),
            Lineage::Sources {
                columns,
                transformed,
            } => (Some(columns), *transformed),
            Lineage::WholeRow { encoding, fields } => {
                return self.whole_row(*encoding, fields);
            }
        };
        let mut shields = Vec::new();
        if let Some(columns) = columns {
            shields.extend(columns.iter().filter_map(|c| self.source_shield(c)));
        }
        if let Some(info) = described
            && let Some(s) = column_shield(info, &self.shields)
        {
            shields.push(s);
        }
        shields.sort_by(|a, b| a.sensitivity.cmp(&b.sensitivity));
        shields.dedup_by(|a, b| a.sensitivity == b.sensitivity);
        match shields.as_slice() {
            [] => ColumnAction::Scan,
            [one] if !transformed => match (&one.sensitivity, one.operator) {
                (Sensitivity::Entity(e), Operator::Partial | Operator::Token) => {
                    ColumnAction::Operator { entity: *e }
                }
                (s, Operator::Drop) => ColumnAction::Replace {
                    text: "".into(),
                    count: CountKey::of(s),
                },
                (s, _) => ColumnAction::replace(s),
            },
            several => {
                let strongest = several
                    .iter()
                    .max_by_key(|s| s.sensitivity.rank())
                    .map(|s| &s.sensitivity);
                strongest.map_or_else(ColumnAction::unknown, ColumnAction::replace)
            }
        }
    }

    fn whole_row(&self, encoding: RowEncoding, fields: &[periscope_sql::RowField]) -> ColumnAction {
        let plan = JsonPlan {
            fields: fields
                .iter()
                .map(|f| (f.key.clone(), self.action(&f.lineage, None)))
                .collect(),
        };
        let sensitive: Vec<&ColumnAction> = plan
            .fields
            .iter()
            .map(|(_, a)| a)
            .filter(|a| !matches!(a, ColumnAction::Scan))
            .collect();
        if sensitive.is_empty() {
            return ColumnAction::Scan;
        }
        match encoding {
            RowEncoding::Json => ColumnAction::Json(Arc::new(plan)),
            // The record text form is not parsed: one sensitive field masks
            // the whole value, counted under its strongest field.
            RowEncoding::Composite => strongest_replace(&sensitive),
        }
    }

    /// The plan of a result described by `fields`, whose statement's
    /// outputs are `outputs` (`None` when the statement is unknown or its
    /// outputs cannot be matched by position: every column is then masked
    /// whole).
    pub fn plan(&self, outputs: Option<&[OutputColumn]>, fields: &[FieldInfo]) -> RowPlan {
        let outputs = outputs.filter(|o| o.len() == fields.len());
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let described = (f.table_oid != 0 && f.column_id > 0)
                    .then(|| self.catalog.column_by_attr(f.table_oid, f.column_id))
                    .flatten();
                let action = match outputs {
                    Some(outputs) => self.action(&outputs[i].lineage, described),
                    None => ColumnAction::unknown(),
                };
                ColumnPlan {
                    action,
                    type_oid: f.type_oid,
                    binary: f.binary,
                }
            })
            .collect();
        RowPlan { columns }
    }

    /// The plan of a `COPY ... TO STDOUT` (text or CSV): the statement's
    /// outputs by position, types from the catalog where a column passes
    /// through unchanged.
    pub fn copy_plan(&self, outputs: Option<&[OutputColumn]>, columns: usize) -> RowPlan {
        let outputs = outputs.filter(|o| o.len() == columns);
        let columns = (0..columns)
            .map(|i| {
                let Some(outputs) = outputs else {
                    return ColumnPlan {
                        action: ColumnAction::unknown(),
                        type_oid: 0,
                        binary: false,
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
                        .and_then(|c| self.catalog.column(&c.schema, &c.table, &c.column))
                        .map_or(0, |c| c.type_oid),
                    _ => 0,
                };
                ColumnPlan {
                    action: self.action(lineage, None),
                    type_oid,
                    binary: false,
                }
            })
            .collect();
        RowPlan { columns }
    }

    /// Masks one DataRow. Returns the length of the rebuilt row appended to
    /// `out`, or `None` when the row needs no change (forward it as is).
    pub fn mask_row(
        &self,
        plan: &RowPlan,
        row: &DataRow<'_>,
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<Option<usize>, ProtocolError> {
        if row.len() != plan.columns.len() {
            // A row that does not match its description: mask everything.
            let fallback = RowPlan::all_unknown(row.len());
            return self.rebuild(&fallback, row, out, counts).map(Some);
        }
        let changes =
            row.fields()
                .zip(plan.columns.iter())
                .any(|(value, col)| match (value, &col.action) {
                    (None, _) => false,
                    (Some(_), ColumnAction::Scan) => {
                        self.needs_scan_change(col, value.unwrap_or(b""))
                    }
                    (Some(_), _) => true,
                });
        if !changes {
            return Ok(None);
        }
        self.rebuild(plan, row, out, counts).map(Some)
    }

    fn rebuild(
        &self,
        plan: &RowPlan,
        row: &DataRow<'_>,
        out: &mut BytesMut,
        counts: &mut MaskCounts,
    ) -> Result<usize, ProtocolError> {
        let mut writer = DataRowWriter::new(out);
        for (value, col) in row.fields().zip(plan.columns.iter()) {
            match value {
                None => writer.push(None)?,
                Some(v) => match self.mask_value(col, v, counts) {
                    Some(masked) => writer.push(Some(&masked))?,
                    None => writer.push(Some(v))?,
                },
            }
        }
        writer.finish()
    }

    /// Cheap check for a scanned column: would masking change the value?
    fn needs_scan_change(&self, col: &ColumnPlan, value: &[u8]) -> bool {
        if value.is_empty() || self.skips_type(col.type_oid) {
            return false;
        }
        match scannable_text(col, value) {
            Some(Cow::Borrowed(text))
                if col.type_oid != oid::JSON && col.type_oid != oid::JSONB =>
            {
                self.masker.scanner().contains_any(text)
            }
            // JSON (key names classify values), bytea, binary arrays and
            // anything decoded: decide by masking.
            _ => self
                .mask_value(col, value, &mut MaskCounts::default())
                .is_some(),
        }
    }

    fn skips_type(&self, type_oid: u32) -> bool {
        if type_oid == oid::UUID {
            return !self.masker.scanner().detects(Entity::Uuid);
        }
        is_scalar_without_text(type_oid)
    }

    /// The masked bytes of one non-NULL value, or `None` when unchanged.
    /// A whole-column replacement is borrowed from the plan: no allocation
    /// per row for the most common masking.
    pub(crate) fn mask_value<'p>(
        &self,
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
                counts.add(&CountKey::Entity(*entity));
                let text = if col.binary && !is_text_like(col.type_oid) {
                    // A binary number or date has no text to keep a part of.
                    None
                } else {
                    std::str::from_utf8(value).ok()
                };
                Some(match text {
                    Some(t) => self.masker.mask_value_as(*entity, t).into_bytes(),
                    None => format!("[{}]", entity.name()).into_bytes(),
                })
            }
            ColumnAction::Json(plan) => {
                Some(self.mask_json_value(col, value, Some(plan), counts).0)
            }
            ColumnAction::Scan => self.scan_value(col, value, counts),
        };
        owned.map(Cow::Owned)
    }

    fn scan_value(
        &self,
        col: &ColumnPlan,
        value: &[u8],
        counts: &mut MaskCounts,
    ) -> Option<Vec<u8>> {
        if value.is_empty() || self.skips_type(col.type_oid) {
            return None;
        }
        match col.type_oid {
            oid::JSON | oid::JSONB => {
                let (masked, changed) = self.mask_json_value(col, value, None, counts);
                changed.then_some(masked)
            }
            oid::BYTEA => self.scan_bytea(col.binary, value, counts),
            t if col.binary && !is_text_like(t) => self.scan_binary(t, value, counts),
            _ => {
                let text = utf8_lossy(value);
                let masked = self.masker.mask_str(&text);
                if masked.counts.is_empty() {
                    return None;
                }
                counts.merge_entities(&masked.counts);
                Some(masked.text.into_owned().into_bytes())
            }
        }
    }

    /// A bytea value holding text (`convert_to(notes, 'UTF8')`, `notes::bytea`)
    /// is decoded and scanned; the masked text goes back as bytea.
    fn scan_bytea(&self, binary: bool, value: &[u8], counts: &mut MaskCounts) -> Option<Vec<u8>> {
        let raw: Cow<'_, [u8]> = if binary {
            Cow::Borrowed(value)
        } else {
            let hex = value.strip_prefix(b"\\x")?;
            Cow::Owned(decode_hex(hex)?)
        };
        let text = utf8_lossy(&raw);
        let masked = self.masker.mask_str(&text);
        if masked.counts.is_empty() {
            return None;
        }
        counts.merge_entities(&masked.counts);
        let bytes = masked.text.as_bytes();
        Some(if binary {
            bytes.to_vec()
        } else {
            let mut out = Vec::with_capacity(2 + bytes.len() * 2);
            out.extend_from_slice(b"\\x");
            for b in bytes {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
            out
        })
    }

    /// Binary arrays and records are walked element by element; other
    /// binary values of unknown types are scanned when they are UTF-8.
    fn scan_binary(&self, type_oid: u32, value: &[u8], counts: &mut MaskCounts) -> Option<Vec<u8>> {
        if is_text_array(type_oid) || type_oid == oid::RECORD {
            let walked = if type_oid == oid::RECORD {
                self.walk_binary_record(value, counts)
            } else {
                self.walk_binary_array(value, counts)
            };
            return match walked {
                Ok(changed) => changed,
                // Not what the type promised: fail closed.
                Err(()) => {
                    counts.add(&CountKey::unknown());
                    Some(UNKNOWN_PLACEHOLDER.as_bytes().to_vec())
                }
            };
        }
        let text = std::str::from_utf8(value).ok()?;
        let masked = self.masker.mask_str(text);
        if masked.counts.is_empty() {
            return None;
        }
        counts.merge_entities(&masked.counts);
        Some(masked.text.into_owned().into_bytes())
    }

    fn element(&self, type_oid: u32, v: &[u8], counts: &mut MaskCounts) -> Option<Vec<u8>> {
        let col = ColumnPlan {
            action: ColumnAction::Scan,
            type_oid,
            binary: true,
        };
        self.scan_value(&col, v, counts)
    }

    fn walk_binary_array(
        &self,
        value: &[u8],
        counts: &mut MaskCounts,
    ) -> Result<Option<Vec<u8>>, ()> {
        let mut r = BinReader(value);
        let ndim = r.i32()?;
        let _flags = r.i32()?;
        let elem = r.u32()?;
        if !(0..=6).contains(&ndim) {
            return Err(());
        }
        let mut total: usize = if ndim == 0 { 0 } else { 1 };
        for _ in 0..ndim {
            let len = usize::try_from(r.i32()?).map_err(|_| ())?;
            let _lbound = r.i32()?;
            total = total.checked_mul(len).ok_or(())?;
        }
        let mut out: Option<Vec<u8>> = None;
        for _ in 0..total {
            let at = value.len() - r.0.len();
            let item = r.value()?;
            let masked = item.and_then(|v| self.element(elem, v, counts));
            if let Some(m) = masked {
                let buf = out.get_or_insert_with(|| value[..at].to_vec());
                buf.put_i32(i32::try_from(m.len()).map_err(|_| ())?);
                buf.extend_from_slice(&m);
            } else if let Some(buf) = out.as_mut() {
                let end = value.len() - r.0.len();
                buf.extend_from_slice(&value[at..end]);
            }
        }
        if !r.0.is_empty() {
            return Err(());
        }
        Ok(out)
    }

    fn walk_binary_record(
        &self,
        value: &[u8],
        counts: &mut MaskCounts,
    ) -> Result<Option<Vec<u8>>, ()> {
        let mut r = BinReader(value);
        let n = usize::try_from(r.i32()?).map_err(|_| ())?;
        let mut out: Option<Vec<u8>> = None;
        for _ in 0..n {
            let at = value.len() - r.0.len();
            let type_oid = r.u32()?;
            let item = r.value()?;
            let masked = item.and_then(|v| self.element(type_oid, v, counts));
            if let Some(m) = masked {
                let buf = out.get_or_insert_with(|| value[..at].to_vec());
                buf.put_u32(type_oid);
                buf.put_i32(i32::try_from(m.len()).map_err(|_| ())?);
                buf.extend_from_slice(&m);
            } else if let Some(buf) = out.as_mut() {
                let end = value.len() - r.0.len();
                buf.extend_from_slice(&value[at..end]);
            }
        }
        if !r.0.is_empty() {
            return Err(());
        }
        Ok(out)
    }

    /// Masks a JSON value: with a whole-row plan, its keys first; then every
    /// other string is scanned and keys classify nested values. A value that
    /// does not parse is replaced whole by a JSON string. Also says whether
    /// anything was masked (an unchanged value is forwarded as received,
    /// keeping its formatting).
    fn mask_json_value(
        &self,
        col: &ColumnPlan,
        value: &[u8],
        plan: Option<&JsonPlan>,
        counts: &mut MaskCounts,
    ) -> (Vec<u8>, bool) {
        let before = counts.total();
        let jsonb_binary = col.binary && col.type_oid == oid::JSONB;
        let body = if jsonb_binary {
            match value.split_first() {
                Some((1, rest)) => rest,
                _ => &[],
            }
        } else {
            value
        };
        let parsed = std::str::from_utf8(body)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(t).ok());
        let text = match parsed {
            Some(mut doc) => {
                match plan {
                    Some(plan) => self.apply_json_plan(plan, &mut doc, counts),
                    None => counts.merge_entities(&self.masker.mask_json(&mut doc)),
                }
                doc.to_string()
            }
            None => {
                counts.add(&CountKey::unknown());
                format!("\"{UNKNOWN_PLACEHOLDER}\"")
            }
        };
        let mut out = Vec::with_capacity(text.len() + 1);
        if jsonb_binary {
            out.push(1);
        }
        out.extend_from_slice(text.as_bytes());
        let changed = plan.is_some() || counts.total() > before;
        (out, changed)
    }

    fn apply_json_plan(&self, plan: &JsonPlan, doc: &mut Value, counts: &mut MaskCounts) {
        match doc {
            Value::Array(items) => {
                for item in items {
                    self.apply_json_plan(plan, item, counts);
                }
            }
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    let action = plan.fields.iter().find(|(k, _)| k == key).map(|(_, a)| a);
                    match action {
                        Some(action) => self.apply_json_field(action, value, counts),
                        None => counts.merge_entities(&self.masker.mask_json(value)),
                    }
                }
            }
            other => counts.merge_entities(&self.masker.mask_json(other)),
        }
    }

    fn apply_json_field(&self, action: &ColumnAction, value: &mut Value, counts: &mut MaskCounts) {
        if value.is_null() {
            return;
        }
        match action {
            ColumnAction::Scan => counts.merge_entities(&self.masker.mask_json(value)),
            ColumnAction::Replace { text, count } => {
                counts.add(count);
                *value = Value::String(text.to_string());
            }
            ColumnAction::Operator { entity } => {
                counts.add(&CountKey::Entity(*entity));
                let rendered = match value {
                    Value::String(s) => self.masker.mask_value_as(*entity, s),
                    Value::Number(n) => self.masker.mask_value_as(*entity, &n.to_string()),
                    _ => format!("[{}]", entity.name()),
                };
                *value = Value::String(rendered);
            }
            ColumnAction::Json(plan) => match value {
                Value::Object(_) | Value::Array(_) => self.apply_json_plan(plan, value, counts),
                _ => {
                    counts.add(&CountKey::unknown());
                    *value = Value::String(UNKNOWN_PLACEHOLDER.to_string());
                }
            },
        }
    }
}

fn strongest_replace(actions: &[&ColumnAction]) -> ColumnAction {
    // Composite rows: name the most sensitive field kind in the placeholder.
    let mut best: Option<(u8, ColumnAction)> = None;
    for a in actions {
        let (rank, action) = match a {
            ColumnAction::Replace {
                count: CountKey::Entity(e),
                ..
            }
            | ColumnAction::Operator { entity: e, .. } => (
                Sensitivity::Entity(*e).rank(),
                ColumnAction::replace(&Sensitivity::Entity(*e)),
            ),
            ColumnAction::Replace { text, count } => (
                if text.as_ref() == UNKNOWN_PLACEHOLDER {
                    5
                } else {
                    3
                },
                ColumnAction::Replace {
                    text: Arc::clone(text),
                    count: count.clone(),
                },
            ),
            ColumnAction::Json(_) => (5, ColumnAction::unknown()),
            ColumnAction::Scan => continue,
        };
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, action));
        }
    }
    best.map_or_else(ColumnAction::unknown, |(_, a)| a)
}

/// The text of a value when its type is text on the wire, borrowed when it
/// needs no decoding.
fn scannable_text<'a>(col: &ColumnPlan, value: &'a [u8]) -> Option<Cow<'a, str>> {
    if col.type_oid == oid::BYTEA || (col.binary && !is_text_like(col.type_oid)) {
        return None;
    }
    Some(utf8_lossy(value))
}

/// `value` as text, borrowed when it is valid UTF-8 (nearly always): the
/// standard validator checks eight bytes at a time, which the lossy
/// decoder does not, and it runs on every scanned value.
fn utf8_lossy(value: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    }
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    hex.chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// A bounds-checked reader of binary array and record values.
struct BinReader<'a>(&'a [u8]);

impl<'a> BinReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        if self.0.len() < n {
            return Err(());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, ()> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u32(&mut self) -> Result<u32, ()> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn value(&mut self) -> Result<Option<&'a [u8]>, ()> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| ())?;
        self.take(len).map(Some)
    }
}
