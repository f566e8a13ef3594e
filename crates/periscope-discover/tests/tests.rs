//! The integration tests of the discovery engine, as one binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Recall and precision over the generated corpus.
mod corpus;
/// Column decisions from sampled evidence.
mod engine;
