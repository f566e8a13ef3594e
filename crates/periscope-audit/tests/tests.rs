//! The integration tests of the audit chain, as one binary: tamper detection,
//! failure reports, the JSONL export and the published test vector.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Shared fixtures and helpers.
mod common;

/// Every way a chain can be broken, reported precisely.
mod failures;
/// The JSONL export read back.
mod jsonl;
/// Tampering properties over generated chains.
mod tamper_props;
/// The published verification test vector.
mod vector;
