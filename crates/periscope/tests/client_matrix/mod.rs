//! The client compatibility matrix (issue 18, docs/clients.md): real
//! PostgreSQL clients against a real gateway (`periscope up`) in front of a
//! throwaway cluster, each compared with a direct connection. Harmless
//! results must be equal, customer data masked, and refusals only where a
//! shield refuses on purpose.
//!
//! The Python, Node and Java clients come from `scripts/install-client-matrix`
//! (a virtualenv and node modules under `$PERISCOPE_CLIENTS_DIR`, Debian
//! packages); a missing one fails its test with that command.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The shop cluster, the gateway in front of it and the clients' paths.
mod world;

/// Drivers: psycopg 3, psycopg2, asyncpg, node-postgres, pgjdbc,
/// tokio-postgres.
mod drivers;
/// Every fixture of tests/fixtures/clients replayed both ways.
mod fixtures;
/// Tools: psql meta-commands, pg_dump, pgbench.
mod tools;
