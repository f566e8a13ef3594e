//! The PostgreSQL side of the Periscope gateway: the wire codec, the client
//! and upstream handshakes, and the session relay that the masking and
//! guardrail stages plug into.
//!
//! Layers, bottom up:
//!
//! - [`codec`]: framing with validated lengths ([`codec::Frame`],
//!   [`codec::StartupPacket`], [`codec::Limits`]); borrowed views, no copies.
//! - [`frontend`] / [`backend`]: typed views of every message each side sends,
//!   and encoders for what the proxy sends itself.
//! - [`error`]: [`ProtocolError`] for bad bytes, [`PgError`] for what a client
//!   is told, [`SessionError`] for why a session ended.

pub mod backend;
pub mod codec;
pub mod error;
pub mod frontend;

pub use error::{PgError, ProtocolError, SessionError, Severity, sqlstate};
