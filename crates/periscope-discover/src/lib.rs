//! Sensitive data discovery: which columns hold an entity, from a bounded
//! sample of their values, whatever they are called.
//!
//! A nine-digit number alone is ambiguous; a column in which nearly every
//! value is a valid national identifier is not. This crate turns a column's
//! sampled values into **column-level evidence** (for each entity, how many
//! values validate, against the share random look-alikes would reach) and a
//! decision with its reason. It is pure: no I/O, no async, no clock. The
//! gateway samples PostgreSQL, stores tags and renders reports around it.
//!
//! ```
//! use periscope_discover::{ColumnPath, DiscoverConfig, Discoverer};
//! use periscope_redact::Entity;
//!
//! let engine = Discoverer::new(DiscoverConfig::new(2025));
//! // Canadian SINs under a neutral name, stored without separators.
//! let sins = ["130456122", "271938466", "912345675", "512345679"];
//! let values = sins.iter().cycle().take(40).map(|s| Some(*s));
//! let verdicts = engine.discover_column(ColumnPath::new("public", "customers", "ref"), "text", values);
//! assert_eq!(verdicts[0].proposed, Some(Entity::NationalId));
//! println!("{}", verdicts[0].reason); // 100.0% of 40 values pass the sin check (chance 8.0%)
//! ```
//!
//! * [`Discoverer`] / [`ColumnProfile`]: values in (as PostgreSQL prints
//!   them, NULLs as `None`), one at a time; [`ColumnVerdict`]s out, one for
//!   the column and one per JSON field found in it ([`FieldPath`]).
//! * [`Check`]: the per-value checks and their chance rates
//!   ([`Check::chance`]).
//! * [`Thresholds`]: the decision rule's bars. The rule itself, the table of
//!   checks and the measured accuracy are in `docs/discovery.md`.
//! * [`render_tags`]: the `data_policy.tags` snippet for accepted verdicts.
//! * `corpus` (feature `corpus`): the labelled schema corpus, its accuracy
//!   measurement and its SQL text.
//!
//! Verdicts hold counts, shares, entities and paths only; see [`verdict`].

mod array;
mod checks;
mod decide;
mod json;
mod names;
mod path;
mod profile;
mod snippet;
mod tally;
mod types;
pub mod verdict;

#[cfg(feature = "corpus")]
pub mod corpus;

pub use checks::Check;
pub use decide::Thresholds;
pub use path::{ColumnPath, FieldPath, JsonStep, ParsePathError, is_name_like};
pub use profile::{ColumnProfile, DEFAULT_SAMPLE_SIZE, DiscoverConfig, Discoverer};
pub use snippet::render_tags;
pub use types::{DeclaredType, TypeClass};
pub use verdict::{Basis, ColumnVerdict, EntityEvidence, Reason, Shortfall};
