//! What discovery says about one field, and why.
//!
//! Every type here holds counts, shares, entities, check names and the
//! field's path, and nothing else: there is no field a sampled value could be
//! put in. Paths are catalog names and JSON keys that read like names (see
//! [`FieldPath`]). That is what lets the verdicts go to the CLI, the API,
//! the audit log and a review screen without masking.

use std::fmt;

use periscope_redact::Entity;
use serde::{Serialize, Serializer};

use crate::checks::Check;
use crate::path::FieldPath;
use crate::types::TypeClass;

fn ser_entity<S: Serializer>(e: &Entity, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.name())
}

fn ser_opt_entity<S: Serializer>(e: &Option<Entity>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_some(e.name()),
        None => s.serialize_none(),
    }
}

/// Shares and rates to four decimals: enough to read, and reports stay free
/// of long digit runs.
fn ser_rate<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((x * 10_000.0).round() / 10_000.0)
}

/// How often the sampled values of a field validate as one entity, by one
/// check, against the bars that check must clear.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityEvidence {
    /// The entity the check validates.
    #[serde(serialize_with = "ser_entity")]
    pub entity: Entity,
    /// The check (`sin`, `ssn`, `format`...).
    pub check: Check,
    /// Values that validated.
    pub matched: u32,
    /// Non-null, non-blank values sampled.
    pub sampled: u32,
    /// `matched / sampled`.
    #[serde(serialize_with = "ser_rate")]
    pub share: f64,
    /// The share random values of the same shape reach.
    #[serde(serialize_with = "ser_rate")]
    pub chance: f64,
    /// The share this check must reach here.
    #[serde(serialize_with = "ser_rate")]
    pub required: f64,
    /// For weak checks: distinct SSN areas, NINO prefixes or birth years
    /// among the matches.
    pub spread: Option<u32>,
    /// Why the evidence is not enough, or `None` when it is.
    pub shortfall: Option<Shortfall>,
}

impl EntityEvidence {
    /// Whether this evidence alone would make the field `entity`.
    pub fn passed(&self) -> bool {
        self.shortfall.is_none()
    }
}

/// Why one piece of evidence does not decide.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shortfall {
    /// Fewer non-null values than the minimum.
    TooFewValues {
        /// The minimum.
        needed: u32,
    },
    /// The share is below the check's bar.
    Share,
    /// The share is above the bar but not improbable enough for random data
    /// of the same shape at this sample size.
    NotSignificant,
    /// A weak check whose matches cluster (sequential ids, recent dates).
    Clustered {
        /// The fewest distinct keys required.
        needed: u32,
    },
    /// A weak check that most values pass only once the leading zeros an
    /// integer column dropped are restored: the values are shorter numbers
    /// (8-digit order numbers read as SSNs of areas 001-099), not
    /// identifiers that lost a zero now and then.
    MostlyPadded,
    /// A weak check, and the name says the values are something else.
    ContradictingName {
        /// The word of the name that contradicts.
        word: &'static str,
    },
}

/// What the proposal rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The name only (the content was not conclusive, or not sampled).
    Name,
    /// The content only (a neutral name: what discovery is for).
    Content,
    /// Both agree.
    NameAndContent,
}

/// Why a field got its proposal, or none; rendered for people by `Display`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The content decided (the name said nothing, or agreed, or named a
    /// less sensitive entity).
    Content {
        /// The deciding check.
        check: Check,
        /// The entity it found.
        #[serde(serialize_with = "ser_entity")]
        entity: Entity,
        /// Its evidence's share.
        #[serde(serialize_with = "ser_rate")]
        share: f64,
        /// Values sampled.
        sampled: u32,
        /// The entity the name suggested, if different.
        #[serde(serialize_with = "ser_opt_entity")]
        overrode_name: Option<Entity>,
    },
    /// The name decided, the content did not.
    Name,
    /// The name names a more sensitive tier than the content's entity.
    NameOverContent {
        /// What the content said.
        #[serde(serialize_with = "ser_entity")]
        content: Entity,
    },
    /// The declared type never holds identifiers.
    NotProfiled {
        /// How the type was read.
        class: TypeClass,
    },
    /// Only nulls and blanks.
    NoValues,
    /// JSON documents (objects or arrays) only: their fields have verdicts
    /// of their own.
    Documents {
        /// Documents walked.
        documents: u32,
    },
    /// Too few values to decide.
    TooFewValues {
        /// Non-null, non-blank values.
        sampled: u32,
        /// The minimum.
        needed: u32,
    },
    /// The best candidate fell short.
    Shortfall {
        /// Its check.
        check: Check,
        /// Its entity.
        #[serde(serialize_with = "ser_entity")]
        entity: Entity,
        /// Its share.
        #[serde(serialize_with = "ser_rate")]
        share: f64,
        /// The share it needed.
        #[serde(serialize_with = "ser_rate")]
        required: f64,
        /// Why.
        shortfall: Shortfall,
    },
    /// No value validated as anything.
    NoMatch,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Content {
                check,
                entity,
                share,
                sampled,
                overrode_name,
            } => {
                if *check == Check::Format {
                    write!(
                        f,
                        "{} of {sampled} values are each one {entity} (text scanner)",
                        pct(*share)
                    )?;
                } else {
                    write!(
                        f,
                        "{} of {sampled} values pass the {} check (chance {})",
                        pct(*share),
                        check.name(),
                        pct(check.chance())
                    )?;
                }
                if let Some(n) = overrode_name {
                    write!(f, "; the name suggested {n}")?;
                }
                Ok(())
            }
            Reason::Name => f.write_str("the name says so; the content did not decide"),
            Reason::NameOverContent { content } => {
                write!(f, "the name says so and outranks the content's {content}")
            }
            Reason::NotProfiled { class } => {
                write!(f, "type not profiled ({})", class.name())
            }
            Reason::NoValues => f.write_str("no values sampled"),
            Reason::Documents { documents } => write!(
                f,
                "{documents} JSON documents: their fields are judged one by one"
            ),
            Reason::TooFewValues { sampled, needed } => {
                write!(f, "{sampled} values sampled, {needed} needed")
            }
            Reason::Shortfall {
                check,
                entity,
                share,
                required,
                shortfall,
            } => {
                write!(f, "best candidate {entity} ({} check): ", check.name())?;
                match shortfall {
                    Shortfall::TooFewValues { needed } => write!(f, "fewer than {needed} values"),
                    Shortfall::Share => write!(f, "{} < {} required", pct(*share), pct(*required)),
                    Shortfall::NotSignificant => write!(
                        f,
                        "{} is not improbable enough against chance {} at this sample size",
                        pct(*share),
                        pct(check.chance())
                    ),
                    Shortfall::Clustered { needed } => write!(
                        f,
                        "matches cluster in fewer than {needed} distinct keys (sequential or recent values)"
                    ),
                    Shortfall::MostlyPadded => f.write_str(
                        "most matches need leading zeros restored: shorter numbers, not identifiers",
                    ),
                    Shortfall::ContradictingName { word } => {
                        write!(f, "the name says `{word}`, and the check is weak")
                    }
                }
            }
            Reason::NoMatch => f.write_str("no value validates as any entity"),
        }
    }
}

/// Discovery's answer for one field: the proposed tag, with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnVerdict {
    /// The column, or the JSON path within it.
    pub path: FieldPath,
    /// Non-null, non-blank values sampled (array elements pooled).
    pub sampled: u32,
    /// Nulls sampled.
    pub nulls: u32,
    /// Empty or whitespace-only strings sampled.
    pub blanks: u32,
    /// What the name alone says.
    #[serde(serialize_with = "ser_opt_entity")]
    pub by_name: Option<Entity>,
    /// Every check some value passed, strongest first.
    pub evidence: Vec<EntityEvidence>,
    /// The tag discovery proposes: the field masked whole as this entity.
    #[serde(serialize_with = "ser_opt_entity")]
    pub proposed: Option<Entity>,
    /// What the proposal rests on.
    pub basis: Option<Basis>,
    /// Why, in terms of the evidence.
    pub reason: Reason,
}

impl ColumnVerdict {
    /// The evidence behind the proposal, when the content decided.
    pub fn deciding_evidence(&self) -> Option<&EntityEvidence> {
        match &self.reason {
            Reason::Content { check, .. } => self
                .evidence
                .iter()
                .find(|e| e.check == *check && Some(e.entity) == self.proposed),
            _ => None,
        }
    }
}
