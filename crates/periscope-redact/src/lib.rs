//! The redaction engine: decides what is sensitive and how it is masked.
//! Pure: no I/O, no async, so every protocol proxy can call it on its hot path.

mod entity;

pub use entity::{Entity, Tier, UnknownEntity};
