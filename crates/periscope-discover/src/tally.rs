//! Per-field counters: what the evidence is made of.
//!
//! A tally holds counts and sets of small keys (SSN areas, NINO prefixes,
//! birth years), never a value, so nothing a profile keeps could leak one.
//! Tallies add up, which lets the JSON walker merge the fields of a map's
//! entries into one `.*` field.

use periscope_redact::Entity;

use crate::checks::{CHECK_COUNT, SPREAD_KEYS, VALUE_CHECKS, ValueMatch, WEAK_CHECKS};

/// A set of spread keys below [`SPREAD_KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeySet([u64; SPREAD_KEYS / 64]);

impl Default for KeySet {
    fn default() -> Self {
        KeySet([0; SPREAD_KEYS / 64])
    }
}

impl KeySet {
    fn insert(&mut self, key: u16) {
        let k = usize::from(key) % SPREAD_KEYS;
        self.0[k / 64] |= 1 << (k % 64);
    }

    /// How many distinct keys.
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    fn union(&mut self, other: &KeySet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }
}

/// Counts for one field (a column, or a JSON path within it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Non-null, non-blank values: the denominator of every share.
    pub values: u32,
    /// SQL or JSON nulls, and unquoted `NULL` array elements.
    pub nulls: u32,
    /// Empty or whitespace-only strings: "no value" in many schemas, so
    /// they are counted apart instead of diluting the evidence.
    pub blanks: u32,
    /// Values passing each check, indexed by `Check::index()`.
    pub matched: [u32; CHECK_COUNT],
    /// Of `matched`, values that passed only with leading zeros restored.
    pub padded: [u32; CHECK_COUNT],
    /// Values that are wholly one scanner finding, per entity.
    pub formats: [u32; Entity::COUNT],
    /// Distinct spread keys of each weak check, in `WEAK_CHECKS` order.
    pub spread: [KeySet; WEAK_CHECKS.len()],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            values: 0,
            nulls: 0,
            blanks: 0,
            matched: [0; CHECK_COUNT],
            padded: [0; CHECK_COUNT],
            formats: [0; Entity::COUNT],
            spread: [KeySet::default(); WEAK_CHECKS.len()],
        }
    }
}

impl Tally {
    /// Counts one checked value.
    pub fn record(&mut self, m: &ValueMatch) {
        self.values += 1;
        for check in VALUE_CHECKS {
            if m.passed(check) {
                self.matched[check.index()] += 1;
                if m.padded & (1 << check.index()) != 0 {
                    self.padded[check.index()] += 1;
                }
            }
        }
        for (i, check) in WEAK_CHECKS.into_iter().enumerate() {
            if m.passed(check) {
                self.spread[i].insert(m.spread[i]);
            }
        }
        if let Some(e) = m.format {
            self.formats[e.index()] += 1;
        }
    }

    /// Whether anything at all was seen here.
    pub fn is_empty(&self) -> bool {
        self.values == 0 && self.nulls == 0 && self.blanks == 0
    }

    /// Adds another field's counts (map entries merged into `.*`).
    pub fn merge(&mut self, other: &Tally) {
        self.values += other.values;
        self.nulls += other.nulls;
        self.blanks += other.blanks;
        for (a, b) in self.matched.iter_mut().zip(other.matched) {
            *a += b;
        }
        for (a, b) in self.padded.iter_mut().zip(other.padded) {
            *a += b;
        }
        for (a, b) in self.formats.iter_mut().zip(other.formats) {
            *a += b;
        }
        for (a, b) in self.spread.iter_mut().zip(&other.spread) {
            a.union(b);
        }
    }
}
