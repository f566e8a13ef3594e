//! Persistence for Periscope: identities, tokens, requests, grants and the audit
//! chain, in SQLite (one embedded file, the default) or PostgreSQL (shared by
//! several gateway replicas), with one migration set for both.
//!
//! Two rules shape every method:
//!
//! - **An action and its audit events commit together.** Every method that changes
//!   state takes the [`EventDraft`]s that record it and writes them in the same
//!   transaction, so nothing is acknowledged that the audit log does not hold, and
//!   nothing is in the log that did not happen.
//! - **The audit chain stays one chain** whatever the number of writers: appends are
//!   serialised in the database itself (a PostgreSQL advisory lock, or SQLite's
//!   single writer), so replicas need no coordination of their own.
//!
//! High-rate events (one per proxied SQL statement) go through the [`AuditWriter`],
//! which group-commits concurrent appends and signs periodic checkpoints.
//!
//! The store never reads the system clock: every time comes from the caller, as an
//! [`AuditTime`] (fixed-width UTC text, so the database orders it correctly).
//!
//! See `docs/store.md` for backends, durability settings, the schema and HA notes.

mod audit;
mod discovery;
mod error;
mod identity;
mod live_chain;
mod request;
mod sql;
mod sqlite_chain;
mod sso;
mod store;
mod token;
mod web_session;
mod writer;

pub use audit::{AuditQuery, ExportFrom, SessionEvents};
pub use discovery::DiscoveredTagSet;
pub use error::StoreError;
pub use identity::{Identity, NewIdentity};
pub use request::{GrantFilter, RequestFilter};
pub use sso::{SsoBinding, SsoFlow, SsoFlowKind, SsoSignIn, SsoSignInOutcome, SsoSubject};
pub use store::{Backend, SQLITE_FILE_NAME, Store, StoreOptions, sqlite_url};
pub use token::{LAST_USED_GRANULARITY_SECS, NewToken, TokenRecord, TokenScope, TokenSummary};
pub use web_session::{NewWebSession, WebSessionRecord};
pub use writer::{AuditWriter, AuditWriterConfig, Clock, EnqueuedUnit, UnitOutcome, WriterStats};

pub use periscope_audit::{AuditTime, EventDraft};
