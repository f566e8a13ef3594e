//! The scanner: finds sensitive values in text in one pass over its bytes,
//! validating only the candidates.
//!
//! This file holds what callers see: the [`ScanConfig`] builder, the
//! [`Scanner`] it builds, the [`EntitySet`] both use and the [`Finding`]s a
//! scan returns. The work behind [`Scanner::scan`] is cut by concern into
//! submodules that only this module reaches:
//!
//! * [`walk`]: the one pass over the text, and which detectors each byte
//!   wakes. How the scanner stays fast is explained there.
//! * [`sink`]: where detectors put what they find, and how overlapping
//!   findings become the sorted, disjoint list that callers get.
//! * The detectors, grouped by what they read: [`secrets`] (keys, tokens and
//!   credentials), [`numbers`] (runs of digit groups: cards, phones, dates,
//!   and the timestamps skipped on the way) and [`ids`] (identifiers with a
//!   shape of their own: emails, IP and MAC addresses, UUIDs, IBANs, wallets,
//!   person names). Each is a set of `impl Scanner` methods called by the walk
//!   at a candidate position; it pushes what it finds into the sink and returns
//!   where the walk resumes.
//! * [`bytes`]: byte classes and word ends, shared by all of the above.
//!
//! The cut follows how the code changes: detectors grow (a new token prefix,
//! a new national phone format) without touching the walk or the sink, and a
//! change to the walk, where speed is won or lost, reads and benchmarks
//! without the detectors in the way.
//!
//! All spans start and end at ASCII bytes (or the ends of the text), so they
//! are always valid `str` boundaries.

use std::ops::Range;

use self::sink::{Sink, resolve};
use crate::{Entity, Tier};

mod bytes;
mod ids;
mod numbers;
mod secrets;
mod sink;
mod walk;

pub(crate) use self::secrets::{pem_end, pem_unterminated};

/// One sensitive value found in a text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What was found; its tier is `entity.tier()`.
    pub entity: Entity,
    /// Byte range in the scanned text; always on `char` boundaries.
    pub span: Range<usize>,
}

/// A set of entities, as a bit set so that checks on the hot path are one `and`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EntitySet(u64);

impl EntitySet {
    /// No entity.
    pub const EMPTY: EntitySet = EntitySet(0);

    /// Every entity.
    pub fn all() -> EntitySet {
        Entity::ALL.iter().copied().collect()
    }

    /// Every entity of a tier.
    pub fn tier(tier: Tier) -> EntitySet {
        Entity::ALL
            .iter()
            .copied()
            .filter(|e| e.tier() == tier)
            .collect()
    }

    /// What is detected when nothing is configured: secrets and PII.
    pub fn defaults() -> EntitySet {
        EntitySet::tier(Tier::Secret).union(EntitySet::tier(Tier::Pii))
    }

    /// Whether `entity` is in the set.
    pub fn contains(self, entity: Entity) -> bool {
        self.0 & (1 << entity.index()) != 0
    }

    /// Adds `entity`.
    pub fn insert(&mut self, entity: Entity) {
        self.0 |= 1 << entity.index();
    }

    /// Removes `entity`.
    pub fn remove(&mut self, entity: Entity) {
        self.0 &= !(1 << entity.index());
    }

    /// Entities in either set.
    pub fn union(self, other: EntitySet) -> EntitySet {
        EntitySet(self.0 | other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The entities in the set, in [`Entity::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Entity> {
        Entity::ALL
            .iter()
            .copied()
            .filter(move |&e| self.contains(e))
    }
}

impl FromIterator<Entity> for EntitySet {
    fn from_iter<I: IntoIterator<Item = Entity>>(iter: I) -> Self {
        let mut set = EntitySet::EMPTY;
        for e in iter {
            set.insert(e);
        }
        set
    }
}

/// What to look for; built once, then turned into a [`Scanner`].
///
/// Two sets matter: entities *detected* in content, and entities *lifted* (not
/// masked at all, even when a column or key is named after them). By default
/// secrets and PII are detected, optional entities are not detected but are
/// still masked by name (a column named `dob` is sensitive), and nothing is
/// lifted.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    detect: EntitySet,
    lifted: EntitySet,
    person_names: Vec<String>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            detect: EntitySet::defaults(),
            lifted: EntitySet::EMPTY,
            person_names: Vec::new(),
        }
    }
}

impl ScanConfig {
    /// The default configuration: secrets and PII detected, optional entities off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Detects `entity` in content (and masks it by name).
    pub fn enable(mut self, entity: Entity) -> Self {
        self.detect.insert(entity);
        self.lifted.remove(entity);
        self
    }

    /// Neither detects nor masks `entity`: the shield for it is lifted.
    pub fn disable(mut self, entity: Entity) -> Self {
        self.detect.remove(entity);
        self.lifted.insert(entity);
        self
    }

    /// Detects exactly `entities` and lifts every other one.
    pub fn only(mut self, entities: EntitySet) -> Self {
        self.detect = entities;
        self.lifted = EntitySet(!entities.0 & EntitySet::all().0);
        self
    }

    /// Adds first names to the built-in dictionary used by `person_name`.
    pub fn with_person_names<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.person_names.extend(names.into_iter().map(Into::into));
        self
    }

    /// The entities detected in content.
    pub fn detected(&self) -> EntitySet {
        self.detect
    }

    /// Builds the scanner.
    pub fn build(self) -> Scanner {
        let mut names: Vec<Vec<u8>> = crate::names::FIRST_NAMES
            .iter()
            .map(|n| n.as_bytes().to_vec())
            .chain(
                self.person_names
                    .iter()
                    .map(|n| n.trim().to_ascii_lowercase().into_bytes()),
            )
            .filter(|n| n.len() >= 2)
            .collect();
        names.sort();
        names.dedup();
        Scanner {
            names_on: self.detect.contains(Entity::PersonName),
            hex_optional: self.detect.contains(Entity::Uuid)
                || self.detect.contains(Entity::MacAddress),
            hex_colon: self.detect.contains(Entity::Ip)
                || self.detect.contains(Entity::Uuid)
                || self.detect.contains(Entity::MacAddress),
            detect: self.detect,
            lifted: self.lifted,
            first_names: names,
        }
    }
}

/// Finds sensitive values in text. Built once from a [`ScanConfig`]; cheap to
/// share (`&Scanner` is all a caller needs, across threads too).
#[derive(Debug, Clone)]
pub struct Scanner {
    detect: EntitySet,
    /// Person names need every capitalised word; cached from `detect`.
    names_on: bool,
    /// UUID or MAC detection is on: hex words before `-`/`.` need a look.
    hex_optional: bool,
    /// IPv6, UUID or MAC detection is on: hex words before `:` need a look.
    hex_colon: bool,
    lifted: EntitySet,
    first_names: Vec<Vec<u8>>,
}

impl Default for Scanner {
    fn default() -> Self {
        ScanConfig::default().build()
    }
}

impl Scanner {
    /// Whether content detection is on for `entity`.
    pub fn detects(&self, entity: Entity) -> bool {
        self.detect.contains(entity)
    }

    /// Whether a value known to be of `entity` (by column or key name) is masked.
    pub fn masks_by_name(&self, entity: Entity) -> bool {
        !self.lifted.contains(entity)
    }

    /// [`crate::classify_name`], minus the entities whose shield is lifted.
    pub fn classify_name(&self, name: &str) -> Option<Entity> {
        crate::classify_name(name).filter(|&e| self.masks_by_name(e))
    }

    /// All findings in `text`: non-overlapping and sorted by position. On overlap
    /// the same span keeps the more specific entity, a span containing another
    /// wins, and otherwise the higher tier wins.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut sink = Sink::new(self.detect, false);
        self.run(text.as_bytes(), &mut sink);
        resolve(sink.found)
    }

    /// Whether `text` holds anything to mask; stops at the first finding. The
    /// fast path for callers that usually find nothing.
    pub fn contains_any(&self, text: &str) -> bool {
        let mut sink = Sink::new(self.detect, true);
        self.run(text.as_bytes(), &mut sink);
        !sink.found.is_empty()
    }
}
