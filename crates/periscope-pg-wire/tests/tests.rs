//! The integration tests of the PostgreSQL wire crate, as one binary (one
//! build, one link): a real PostgreSQL (periscope-testkit), the relay with
//! test hooks on a free loopback port, and real clients (tokio-postgres,
//! psql) or a raw protocol client for what drivers do not expose.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The harness: cluster, proxy with test hooks, raw client, message builders.
mod support;

/// Properties of the codec over generated input.
mod codec;
/// Session control: cancel, refusals, termination, back-pressure, limits.
mod control;
/// Refusals inside extended batches: answered at once, batch failed.
mod refused_batches;
/// Every part of the protocol a client relies on, relayed.
mod relay;
/// Client TLS, token checks, upstream authentication and TLS, hostile startups.
mod security;
