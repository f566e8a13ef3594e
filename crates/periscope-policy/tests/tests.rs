//! The integration tests of the policy engine, as one binary: configuration,
//! decisions and grants.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Shared fixtures and helpers.
mod common;

/// Configuration parsing and its precise errors.
mod config;
/// Decisions for statements, tables and functions.
mod decide;
/// Grant requests, approvals and what they lift.
mod grants;
