//! The redaction engine: decides what is sensitive and how it is masked.
//!
//! Pure: no I/O, no async, so every protocol proxy can call it on its hot path.
//!
//! * [`Scanner`] finds [`Finding`]s (entity + byte span) in text, in one pass,
//!   validating candidates with the checksums in [`validate`].
//! * [`classify_name`] decides from a column or key name alone that its values
//!   are sensitive.
//! * [`Masker`] applies a per-entity [`Operator`] (`redact`, `partial`, `token`,
//!   `drop`) to strings ([`Masker::mask_str`]), whole values
//!   ([`Masker::mask_value_as`]) and JSON documents ([`Masker::mask_json`]).
//! * [`LineRedactor`] streams lines from a reader to a writer (the CLI).
//!
//! ```
//! use periscope_redact::{Masker, ScanConfig};
//!
//! let masker = Masker::new(ScanConfig::new().build());
//! let masked = masker.mask_str("user alice@example.com paid with 4111 1111 1111 1111");
//! assert_eq!(masked.text, "user [email] paid with [card]");
//! assert_eq!(masked.counts.total(), 2);
//! ```

mod classify;
mod entity;
mod json;
mod mask;
mod names;
mod scan;
mod stream;
pub mod validate;

pub use classify::classify_name;
pub use entity::{Entity, Tier, UnknownEntity};
pub use mask::{Counts, MaskError, Masked, Masker, Operator, TokenKey, UnknownOperator};
pub use scan::{EntitySet, Finding, ScanConfig, Scanner};
pub use stream::{LineFormat, LineRedactor, LineStats};
