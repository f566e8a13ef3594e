//! Shared test support.

/// The labelled corpus: texts with the spans a detector must find.
pub mod labelled;
