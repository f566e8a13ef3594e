//! The integration tests of the redaction engine, as one binary: the labelled
//! corpus, each detector, and properties over generated input.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The labelled corpus reader.
mod support;

/// Recall and precision over the labelled corpus.
mod corpus;
/// Each detector on its own.
mod detectors;
/// Properties over generated input.
mod properties;
