//! Mask plans and value masking: what happens to each output column of a
//! result, decided once per result shape and applied to every value as it
//! streams, whatever the protocol.
//!
//! A column's action comes from two sources joined together: the statement's
//! lineage ([`periscope_sql::Lineage`]: which catalog columns the value
//! derives from, and whether it was transformed) and, when the protocol
//! names it, the column the server says the value comes from. Then:
//!
//! | sources | action |
//! |---|---|
//! | none sensitive (or every shield lifted) | content-scan text values |
//! | one sensitive column, passed through | its entity's operator (`partial`, `token`, ...) |
//! | transformed, or several sensitive columns | replaced whole: `[email]`, `[tag]` |
//! | whole row as JSON | sensitive keys masked inside the JSON, the rest scanned |
//! | whole row as a composite with a sensitive field | replaced whole |
//! | unknown lineage | replaced whole: `[masked]` |
//!
//! The protocol's glue owns the wire: which types carry text, how binary
//! values are laid out, how a row is rebuilt. It hands text to the functions
//! here ([`Masking::scan_text`], [`Masking::operator_text`],
//! [`Masking::mask_json_text`]) and counts what they masked in
//! [`MaskCounts`], which the outcome events record.

use std::collections::BTreeMap;
use std::sync::Arc;

use periscope_policy::{Allowance, MaskTarget, Shield, ShieldSet};
use periscope_redact::{Counts, Entity, Masker, Operator, ScanConfig, Tier, TokenKey};
use periscope_sql::{ColumnRef, Lineage, RowEncoding};
use serde_json::Value;

use crate::catalog::{
    ColumnInfo, ColumnShield, DataCatalog, Sensitivity, UNKNOWN_KEY, UNKNOWN_PLACEHOLDER,
    column_shield,
};

/// The masking engine of a session: lifted entities are neither detected
/// nor masked by name; optional entities in force are detected; operators
/// are the connection's. `token` needs the deployment's key (without one it
/// falls back to `redact`).
pub fn session_masker(allowance: &Allowance, token_key: Option<&TokenKey>) -> Masker {
    let shields = allowance.shields();
    let mut config = ScanConfig::new();
    for &entity in Entity::ALL {
        if shields
            .lifted()
            .contains_key(&Shield::Unmask(MaskTarget::Entity(entity)))
        {
            config = config.disable(entity);
        } else if entity.tier() == Tier::Optional && shields.mask_operator(entity).is_some() {
            config = config.enable(entity);
        }
    }
    let scanner = config.build();
    let mut masker = Masker::new(scanner.clone());
    for (entity, op) in shields.masked_entities() {
        masker = masker.with_operator(entity, op);
    }
    if let Some(key) = token_key {
        masker = masker.with_token_key(key);
    }
    masker.check().unwrap_or_else(|_| Masker::new(scanner))
}

/// Which audit counter a masked value increments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CountKey {
    /// A detected or classified entity.
    Entity(Entity),
    /// A tag, or `unknown` for values of unknown origin.
    Other(Arc<str>),
}

impl CountKey {
    /// The counter of values masked for `sensitivity`.
    pub fn of(sensitivity: &Sensitivity) -> CountKey {
        match sensitivity {
            Sensitivity::Entity(e) => CountKey::Entity(*e),
            other => CountKey::Other(other.count_key().into()),
        }
    }

    /// The counter of values masked because their origin is unknown.
    pub fn unknown() -> CountKey {
        CountKey::Other(UNKNOWN_KEY.into())
    }
}

/// Masked values per entity, tag, or `unknown`: what outcome events record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskCounts {
    entities: Counts,
    other: BTreeMap<Arc<str>, u64>,
    /// What content scans masked in values that come unchanged from one
    /// untagged column (`schema.table.column`): the evidence that run-time
    /// learning weighs (a column whose values keep hitting detectors is
    /// suspected). Not part of the audit event.
    found_in: BTreeMap<Arc<str>, Counts>,
}

impl MaskCounts {
    /// Counts one masked value.
    pub fn add(&mut self, key: &CountKey) {
        match key {
            CountKey::Entity(e) => self.entities.add(*e),
            CountKey::Other(k) => *self.other.entry(Arc::clone(k)).or_insert(0) += 1,
        }
    }

    /// Adds what a content scan masked.
    pub fn merge_entities(&mut self, counts: &Counts) {
        self.entities.merge(counts);
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: &MaskCounts) {
        self.entities.merge(&other.entities);
        for (k, n) in &other.other {
            *self.other.entry(Arc::clone(k)).or_insert(0) += n;
        }
        for (column, counts) in &other.found_in {
            self.found_in
                .entry(Arc::clone(column))
                .or_default()
                .merge(counts);
        }
    }

    /// Records that a content scan masked `found` in one value of
    /// `column` (an untagged column the value comes from unchanged); the
    /// tally itself is added separately ([`MaskCounts::merge`]).
    pub fn add_found_in(&mut self, column: &Arc<str>, found: &Counts) {
        self.found_in
            .entry(Arc::clone(column))
            .or_default()
            .merge(found);
    }

    /// What content scans masked per untagged source column.
    pub fn found_in(&self) -> &BTreeMap<Arc<str>, Counts> {
        &self.found_in
    }

    /// The entities counted (content scans and classified columns).
    pub fn entities(&self) -> &Counts {
        &self.entities
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
pub enum ColumnAction {
    /// Not known to be sensitive: text values are content-scanned.
    Scan,
    /// A sensitive column passed through unchanged: the entity's operator
    /// (set on the session's masker) renders the value.
    Operator {
        /// The entity whose operator renders the value.
        entity: Entity,
    },
    /// Replaced whole.
    Replace {
        /// The placeholder (`[email]`, `[masked]`, or empty for `drop`).
        text: Arc<str>,
        /// What it counts as.
        count: CountKey,
    },
    /// A whole row as JSON: keys masked per their own plan, the rest scanned.
    Json(Arc<JsonPlan>),
}

impl ColumnAction {
    /// Replaced whole by the placeholder of `sensitivity`.
    pub fn replace(sensitivity: &Sensitivity) -> ColumnAction {
        ColumnAction::Replace {
            text: sensitivity.placeholder().into(),
            count: CountKey::of(sensitivity),
        }
    }

    /// Replaced whole because the value's origin is unknown (fail closed).
    pub fn unknown() -> ColumnAction {
        ColumnAction::Replace {
            text: UNKNOWN_PLACEHOLDER.into(),
            count: CountKey::unknown(),
        }
    }

    /// Whether the value is replaced by text whatever its type, so the
    /// protocol must describe the column as text.
    pub fn retypes(&self) -> bool {
        matches!(
            self,
            ColumnAction::Operator { .. } | ColumnAction::Replace { .. }
        )
    }
}

/// Per-key plan of a whole-row JSON value.
#[derive(Debug, Clone, Default)]
pub struct JsonPlan {
    fields: Vec<(String, ColumnAction)>,
}

/// The masking context of one session: the shields in force, the catalog
/// and the engine that scans content.
#[derive(Debug, Clone)]
pub struct Masking {
    masker: Masker,
    shields: ShieldSet,
    catalog: Arc<DataCatalog>,
}

impl Masking {
    /// A context for one session. `masker` must already reflect the
    /// session's shields (lifted entities not detected, operators set).
    pub fn new(masker: Masker, shields: ShieldSet, catalog: Arc<DataCatalog>) -> Masking {
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
    pub fn catalog(&self) -> &Arc<DataCatalog> {
        &self.catalog
    }

    /// The shield state of a lineage source column.
    fn source_shield(&self, c: &ColumnRef) -> Option<ColumnShield> {
        match self.catalog.column(&c.schema, &c.table, &c.column) {
            Some(info) => column_shield(info, &self.shields),
            None => column_shield(
                &self.catalog.unlisted_column(&c.schema, &c.table, &c.column),
                &self.shields,
            ),
        }
    }

    /// The action for one column from its lineage and, when the protocol
    /// names it (PostgreSQL's RowDescription gives a table and column
    /// number), the column the server says it comes from.
    pub fn action(&self, lineage: &Lineage, described: Option<&ColumnInfo>) -> ColumnAction {
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

    /// Whether a content scan of `text` would mask anything: the cheap
    /// check that lets an unchanged value be forwarded as received.
    pub fn might_mask(&self, text: &str) -> bool {
        self.masker.scanner().contains_any(text)
    }

    /// Whether the session's scanner looks for `entity` (a lifted entity is
    /// not looked for).
    pub fn detects(&self, entity: Entity) -> bool {
        self.masker.scanner().detects(entity)
    }

    /// A content scan of `text`: the masked text, or `None` when nothing
    /// was found.
    pub fn scan_text(&self, text: &str, counts: &mut MaskCounts) -> Option<String> {
        let masked = self.masker.mask_str(text);
        if masked.counts.is_empty() {
            return None;
        }
        counts.merge_entities(&masked.counts);
        Some(masked.text.into_owned())
    }

    /// A sensitive value passed through unchanged, rendered by its entity's
    /// operator (`partial` keeps a harmless part); `None` for a value with no
    /// text to keep a part of (a binary number): the placeholder.
    pub fn operator_text(
        &self,
        entity: Entity,
        text: Option<&str>,
        counts: &mut MaskCounts,
    ) -> String {
        counts.add(&CountKey::Entity(entity));
        match text {
            Some(t) => self.masker.mask_value_as(entity, t),
            None => format!("[{}]", entity.name()),
        }
    }

    /// Masks a JSON text: with a whole-row plan, its keys first; then every
    /// other string is scanned and keys classify nested values. Text that is
    /// not JSON (or not UTF-8: `None`) is replaced whole by a JSON string.
    /// Also says whether anything was masked (an unchanged value is
    /// forwarded as received, keeping its formatting).
    pub fn mask_json_text(
        &self,
        text: Option<&str>,
        plan: Option<&JsonPlan>,
        counts: &mut MaskCounts,
    ) -> (String, bool) {
        let before = counts.total();
        let parsed = text.and_then(|t| serde_json::from_str::<Value>(t).ok());
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
        let changed = plan.is_some() || counts.total() > before;
        (text, changed)
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

/// `value` as text, borrowed when it is valid UTF-8 (nearly always): the
/// standard validator checks eight bytes at a time, which the lossy
/// decoder does not, and it runs on every scanned value.
pub fn utf8_lossy(value: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(value) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value),
    }
}
