//! The shield stage of the Periscope gateway, once for every protocol.
//!
//! Every data plane (PostgreSQL today; commands and logs, MySQL and HTTP
//! next) relays what an engineer sends and what comes back; this crate
//! decides and records what happens in between, so that a new protocol is a
//! wire crate plus a thin glue layer, never a copy of the shields:
//!
//! - [`statement`]: the decision for a SQL statement (guardrails: writes,
//!   DDL, dangerous functions, sensitive tables, unanalysable SQL), as a
//!   protocol-neutral [`statement::Refusal`] the glue renders;
//! - [`catalog`]: what is known of the upstream's data at rest and how each
//!   column is classified, shared per connection ([`catalog::CatalogCache`]);
//! - [`masking`]: the action for each output column (lineage + the column
//!   the server names + content scanning) and masking of text and JSON
//!   values, with counts per entity;
//! - [`record`]: a session's audit events in order ([`record::SessionRecorder`]
//!   over the gateway's [`record::AuditSink`]), with the holds that keep
//!   results back until their events are durable;
//! - [`grants`]: the grant event bus, and the watcher that cuts a session
//!   ([`grants::SessionCut`]) when a grant it relies on ends.
//!
//! It knows no wire format: type identifiers, binary layouts, row framing
//! and error codes belong to each protocol's glue (`periscope-pg`).

pub mod catalog;
pub mod grants;
pub mod masking;
pub mod record;
pub mod statement;
