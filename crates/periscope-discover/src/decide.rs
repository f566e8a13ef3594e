//! The decision rule: when a column's evidence makes it an entity.
//!
//! A check's evidence **passes** when all of these hold:
//!
//! 1. **Enough values**: at least `min_values` (20) non-null, non-blank
//!    values were sampled.
//! 2. **Share**: at least `required = max(base_share, chance + gap_closed ×
//!    (1 − chance))` of them validate; with the defaults (0.90, 0.80) that is
//!    90% for every checksum (chance ≤ 10%: real data has typos, test rows
//!    and placeholders), 91.0% for the suffix-less NINO shape (chance 55%) and
//!    97.8% for the SSN rules (chance 89%: a column of random 9-digit numbers
//!    reaches 89% by itself). Dates of birth need 95%.
//! 3. **Significance**: the share is improbable for random values of the
//!    check's shape at this sample size: by the Chernoff bound,
//!    `P(≥ matched | sampled, chance) ≤ exp(−sampled × KL(share ‖ chance))`,
//!    and that must be ≤ `alpha` (10⁻⁶). This is what asks weak checks for
//!    more values: an all-valid SSN column needs 118 values (0.889ⁿ ≤ 10⁻⁶),
//!    a NINO column 24, a CPF column 3 (so the 20-value minimum decides).
//! 4. **For weak checks** (SSN, NINO, date of birth), also **spread**: the
//!    matches cover at least 10 SSN areas, 5 NINO prefixes or 15 birth years
//!    (sequential ids share an area; sign-up dates span a few recent years);
//!    at most half of the matches relying on leading zeros restored to an
//!    integer (an SSN stored as an integer loses its zeros one time in nine;
//!    8-digit order numbers padded to 9 pass the SSN rules 99% of the time);
//!    and **no contradicting name** ([`crate::names`]).
//!
//! Among passing checks the most specific wins (lowest chance: a column of
//! routing numbers also passes the SSN rules, a column of SINs passes them
//! 87% of the time). The name's entity, from the classifier, stands when the
//! content decides nothing, and wins over the content only when its tier is
//! more sensitive (a column named `api_token` whose values happen to be
//! emails stays a secret). With 1,000 values (the default sample), one
//! percentage point of share is about three standard errors at 90%, so the
//! bars sit well clear of both real data and random look-alikes.

use periscope_redact::Entity;
use serde::Serialize;

use crate::checks::{Check, VALUE_CHECKS, WEAK_CHECKS};
use crate::names;
use crate::path::FieldPath;
use crate::tally::Tally;
use crate::types::TypeClass;
use crate::verdict::{Basis, ColumnVerdict, EntityEvidence, Reason, Shortfall};

/// The bars of the decision rule (module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Fewest non-null, non-blank values to decide on content.
    pub min_values: u32,
    /// The share every check must reach at least.
    pub base_share: f64,
    /// How much of the gap between chance and 100% the share must close.
    pub gap_closed: f64,
    /// The share dates of birth must reach.
    pub birth_date_share: f64,
    /// The largest probability, for random values of a check's shape, of a
    /// share at least as high as the one observed.
    pub alpha: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            min_values: 20,
            base_share: 0.90,
            gap_closed: 0.80,
            birth_date_share: 0.95,
            alpha: 1e-6,
        }
    }
}

impl Thresholds {
    /// The share `check` must reach.
    pub fn required_share(&self, check: Check) -> f64 {
        if check == Check::BirthDate {
            return self.birth_date_share;
        }
        let chance = check.chance();
        self.base_share
            .max(chance + self.gap_closed * (1.0 - chance))
    }

    /// Whether `matched` of `sampled` is improbable enough for random values
    /// passing at `chance` (Chernoff bound on the binomial tail).
    pub fn significant(&self, matched: u32, sampled: u32, chance: f64) -> bool {
        if sampled == 0 || matched == 0 {
            return false;
        }
        let n = f64::from(sampled);
        let share = f64::from(matched) / n;
        if chance <= 0.0 {
            return true;
        }
        if share <= chance {
            return false;
        }
        let kl = share * (share / chance).ln()
            + if share < 1.0 {
                (1.0 - share) * ((1.0 - share) / (1.0 - chance)).ln()
            } else {
                0.0
            };
        n * kl >= (1.0 / self.alpha).ln()
    }

    /// The fewest values for which an all-valid column passes the
    /// significance test: what a check asks of a sample.
    pub fn min_values_for(&self, check: Check) -> u32 {
        let chance = check.chance();
        let needed = if chance <= 0.0 {
            1
        } else {
            ((1.0 / self.alpha).ln() / (1.0 / chance).ln()).ceil() as u32
        };
        needed.max(self.min_values)
    }
}

/// Builds the verdict of one field from its tally.
pub(crate) fn decide(
    path: FieldPath,
    tally: &Tally,
    class: TypeClass,
    t: &Thresholds,
) -> ColumnVerdict {
    let by_name = names::by_name(&path);
    let contradicting = names::contradicting_word(&path);
    let mut evidence = Vec::new();
    if class != TypeClass::Skipped {
        for check in VALUE_CHECKS {
            let matched = tally.matched[check.index()];
            if matched > 0
                && let Some(entity) = check.entity()
            {
                evidence.push(weigh(entity, check, matched, tally, contradicting, t));
            }
        }
        for &entity in Entity::ALL {
            let matched = tally.formats[entity.index()];
            if matched > 0 {
                evidence.push(weigh(
                    entity,
                    Check::Format,
                    matched,
                    tally,
                    contradicting,
                    t,
                ));
            }
        }
    }
    // Strongest first: passing, then higher share, then more specific.
    evidence.sort_by(|a, b| {
        b.passed()
            .cmp(&a.passed())
            .then(b.share.total_cmp(&a.share))
            .then(a.chance.total_cmp(&b.chance))
    });
    evidence.truncate(8);

    let content = evidence.iter().filter(|e| e.passed()).min_by(|a, b| {
        a.chance
            .total_cmp(&b.chance)
            .then(b.share.total_cmp(&a.share))
    });
    let (proposed, basis, reason) = match (by_name, content) {
        (Some(n), Some(c)) if n != c.entity && n.tier() < c.entity.tier() => (
            Some(n),
            Some(Basis::Name),
            Reason::NameOverContent { content: c.entity },
        ),
        (n, Some(c)) => (
            Some(c.entity),
            Some(if n == Some(c.entity) {
                Basis::NameAndContent
            } else {
                Basis::Content
            }),
            Reason::Content {
                check: c.check,
                entity: c.entity,
                share: c.share,
                sampled: c.sampled,
                overrode_name: n.filter(|&n| n != c.entity),
            },
        ),
        (Some(n), None) => (Some(n), Some(Basis::Name), Reason::Name),
        (None, None) => (None, None, why_not(class, tally, &evidence, t)),
    };
    ColumnVerdict {
        path,
        sampled: tally.values,
        nulls: tally.nulls,
        blanks: tally.blanks,
        by_name,
        evidence,
        proposed,
        basis,
        reason,
    }
}

fn weigh(
    entity: Entity,
    check: Check,
    matched: u32,
    tally: &Tally,
    contradicting: Option<&'static str>,
    t: &Thresholds,
) -> EntityEvidence {
    let sampled = tally.values;
    let share = f64::from(matched) / f64::from(sampled.max(1));
    let required = t.required_share(check);
    let spread = WEAK_CHECKS
        .iter()
        .position(|&c| c == check)
        .map(|i| tally.spread[i].len());
    let shortfall = if sampled < t.min_values {
        Some(Shortfall::TooFewValues {
            needed: t.min_values,
        })
    } else if share < required {
        Some(Shortfall::Share)
    } else if !t.significant(matched, sampled, check.chance()) {
        Some(Shortfall::NotSignificant)
    } else if check.is_weak() && tally.padded[check.index()] * 2 > matched {
        Some(Shortfall::MostlyPadded)
    } else if spread.is_some_and(|s| s < check.min_spread()) {
        Some(Shortfall::Clustered {
            needed: check.min_spread(),
        })
    } else {
        contradicting
            .filter(|_| check.is_weak())
            .map(|word| Shortfall::ContradictingName { word })
    };
    EntityEvidence {
        entity,
        check,
        matched,
        sampled,
        share,
        chance: check.chance(),
        required,
        spread,
        shortfall,
    }
}

fn why_not(class: TypeClass, tally: &Tally, evidence: &[EntityEvidence], t: &Thresholds) -> Reason {
    if class == TypeClass::Skipped {
        return Reason::NotProfiled { class };
    }
    if tally.values == 0 {
        return Reason::NoValues;
    }
    if tally.values < t.min_values {
        return Reason::TooFewValues {
            sampled: tally.values,
            needed: t.min_values,
        };
    }
    match evidence.first() {
        Some(e) => Reason::Shortfall {
            check: e.check,
            entity: e.entity,
            share: e.share,
            required: e.required,
            shortfall: e.shortfall.unwrap_or(Shortfall::Share),
        },
        None => Reason::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_shares() {
        let t = Thresholds::default();
        assert_eq!(t.required_share(Check::Cpf), 0.90);
        assert_eq!(t.required_share(Check::Sin), 0.90);
        assert!((t.required_share(Check::Ssn) - 0.9778).abs() < 1e-4);
        assert!((t.required_share(Check::Nino) - 0.9102).abs() < 1e-4);
        assert_eq!(t.required_share(Check::BirthDate), 0.95);
        assert_eq!(t.required_share(Check::Format), 0.90);
    }

    #[test]
    fn significance_asks_weak_checks_for_more_values() {
        let t = Thresholds::default();
        assert_eq!(t.min_values_for(Check::Ssn), 118);
        assert_eq!(t.min_values_for(Check::Nino), 24);
        assert_eq!(t.min_values_for(Check::Cpf), 20);
        assert!(!t.significant(117, 117, Check::Ssn.chance()));
        assert!(t.significant(118, 118, Check::Ssn.chance()));
        // 89% of 1,000: what random 9-digit numbers do.
        assert!(!t.significant(890, 1000, Check::Ssn.chance()));
        assert!(t.significant(18, 20, Check::Sin.chance()));
        assert!(!t.significant(0, 20, 0.0));
        assert!(t.significant(1, 20, 0.0));
    }
}
