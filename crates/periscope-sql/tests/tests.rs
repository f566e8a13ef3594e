//! The integration tests of the SQL analysis, as one binary: statements,
//! lineage, normalisation, the cache and limits.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Shared fixtures and helpers.
mod common;

/// The analysis cache.
mod cache;
/// Limits on depth and size, and what they fall back to.
mod limits;
/// Column lineage through every construct.
mod lineage;
/// Normalised statement text and fingerprints.
mod normalize;
/// Statement classes and session effects.
mod statements;
