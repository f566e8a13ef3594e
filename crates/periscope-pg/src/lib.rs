//! The PostgreSQL data plane of the Periscope gateway: the shield stage
//! ([`periscope_shield`]) put on PostgreSQL's wire ([`periscope_pg_wire`]).
//!
//! The wire crate relays and validates messages; the shield crate decides,
//! masks and records, knowing no wire format. This crate is the glue between
//! them and holds only what is PostgreSQL's own:
//!
//! - [`session`]: [`ShieldedSession`], the relay hooks that follow the
//!   protocol (simple and extended, COPY) so each statement is guarded and
//!   audited and each row masked with the plan of its statement;
//! - [`catalog`]: reading `pg_catalog` into the shield's catalog, and the
//!   index from a RowDescription field to its column;
//! - [`plan`]: row plans bound to PostgreSQL types and formats, RowDescription
//!   rewriting, DataRow masking;
//! - [`values`] and [`binary`]: one value by type (`bytea`, `jsonb`, binary
//!   arrays and records);
//! - [`copy`]: `COPY ... TO STDOUT` rows in text and CSV;
//! - [`sample`]: the first masked rows of each result, kept for the session
//!   recording and decoded to text off the result path;
//! - [`refusal`]: refusals, failed audit holds and session cuts as
//!   ErrorResponses.

pub mod binary;
pub mod catalog;
pub mod copy;
pub mod plan;
pub mod refusal;
pub mod sample;
pub mod session;
pub mod values;

pub use catalog::{CatalogError, PgCatalog};
pub use refusal::{PgSessionCut, refusal_error};
pub use session::{SessionSetup, ShieldedSession};
