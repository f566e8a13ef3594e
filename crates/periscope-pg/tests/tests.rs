//! The integration tests of the PostgreSQL data plane, as one binary: the
//! shielded session against a real PostgreSQL, with an in-memory audit sink
//! whose latency and failures the tests control.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

/// The shielded proxy, the seeded upstream and the memory audit log.
mod support;

/// Masking through every transformation, guardrails, the audit hold, the
/// extended protocol and COPY.
mod shielded;

/// What client tools send at connect and while browsing (issue 18).
mod client_tools;
