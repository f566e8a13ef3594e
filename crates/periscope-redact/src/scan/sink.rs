//! Where findings go during the walk, and how they become the answer.
//!
//! Every detector pushes into a [`Sink`] and asks it first whether its entity
//! is wanted at all (the cheap check before any work). For
//! [`Scanner::contains_any`](super::Scanner::contains_any) the sink stops the
//! walk at the first finding. After the walk, [`resolve`] sorts the findings
//! and settles overlaps, so that callers get a sorted, disjoint list.
//!
//! Cut here because this is the one place that decides what a caller gets,
//! whatever detector found it: the rules for overlaps (same span, contained
//! span, tier) read in one screen, apart from the detectors that feed them.

use super::EntitySet;
use super::Finding;
use crate::{Entity, Tier};

/// The findings of one scan, in the order the walk makes them.
pub(super) struct Sink {
    /// Unsorted and possibly overlapping until [`resolve`] is done with them.
    pub(super) found: Vec<Finding>,
    /// Stop at the first finding (`contains_any`).
    first_only: bool,
    /// Set by the first finding when `first_only`: the walk returns.
    pub(super) stop: bool,
    /// The entities detected, which [`Sink::wants`] answers from.
    enabled: EntitySet,
}

impl Sink {
    pub(super) fn new(enabled: EntitySet, first_only: bool) -> Sink {
        Sink {
            found: Vec::new(),
            first_only,
            stop: false,
            enabled,
        }
    }

    pub(super) fn push(&mut self, entity: Entity, start: usize, end: usize) {
        if start < end {
            self.found.push(Finding {
                entity,
                span: start..end,
            });
            if self.first_only {
                self.stop = true;
            }
        }
    }

    /// Whether the scanner detects `entity`: the cheap check every detector
    /// makes before doing any work.
    pub(super) fn wants(&self, entity: Entity) -> bool {
        self.enabled.contains(entity)
    }
}

/// How specific an entity is when two findings cover exactly the same bytes.
fn rank(entity: Entity) -> u8 {
    match entity {
        Entity::AuthHeader | Entity::UrlCredentials | Entity::Secret => 1,
        e => match e.tier() {
            Tier::Secret => 0,
            Tier::Pii => 2,
            Tier::Optional => 3,
        },
    }
}

/// The findings sorted by position and disjoint, by the overlap rules that
/// [`Scanner::scan`](super::Scanner::scan) documents.
pub(super) fn resolve(mut found: Vec<Finding>) -> Vec<Finding> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by(|a, b| {
        a.span
            .start
            .cmp(&b.span.start)
            .then(b.span.end.cmp(&a.span.end))
    });
    let mut out: Vec<Finding> = Vec::with_capacity(found.len());
    for f in found {
        let Some(last) = out.last_mut() else {
            out.push(f);
            continue;
        };
        if f.span.start >= last.span.end {
            out.push(f);
            continue;
        }
        let same = f.span == last.span;
        let contained = f.span.end <= last.span.end;
        let f_wins = if same {
            rank(f.entity) < rank(last.entity)
        } else if contained {
            false
        } else {
            rank(f.entity) < rank(last.entity)
        };
        if f_wins {
            *last = f;
        }
    }
    out
}
