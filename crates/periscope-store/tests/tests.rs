//! The integration tests of the store, as one binary, on SQLite and on a
//! throwaway PostgreSQL: audit, crash safety, identities, requests, SSO.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// Shared fixtures and helpers.
#[macro_use]
mod common;

/// The audit writer and chain on both backends.
mod audit;
/// Crash safety of acknowledged writes.
mod crash;
/// Identities and tokens.
mod identities;
/// Requests and grants.
mod requests;
/// SSO identities and web sessions.
mod sso;
