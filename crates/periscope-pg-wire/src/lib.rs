//! The PostgreSQL wire protocol of the Periscope gateway: the codec, the
//! client and upstream handshakes, cancel-key mapping, and the session relay
//! that a shielding stage plugs into through [`SessionHooks`].
//!
//! This crate knows nothing of policies, redaction or SQL: it moves and
//! validates messages. `periscope-pg` puts the shield pipeline on top of it,
//! and tests and tools can run it alone with [`PassThrough`] hooks.
//!
//! Layers, bottom up:
//!
//! - [`codec`]: framing with validated lengths ([`codec::Frame`],
//!   [`codec::StartupPacket`], [`codec::Limits`]); borrowed views, no copies.
//! - [`frontend`] / [`backend`]: typed views of every message each side sends,
//!   and encoders for what the proxy sends itself.
//! - [`auth`]: the [`Authenticator`] seam the gateway implements, and the
//!   [`SessionTarget`] with the injected upstream credentials.
//! - [`hooks`]: [`SessionHooks`], the interception points of the relay.
//! - [`relay`]: the per-session relay loop and its [`SessionHandle`].
//! - [`listener`]: [`PgListener`], accepting and serving sessions.
//!
//! A minimal proxy:
//!
//! ```no_run
//! use secrecy::ExposeSecret;
//! use periscope_pg_wire::{
//!     AuthRejection, AuthRequest, Authenticated, Authenticator, ClientTls, PassThrough,
//!     PgListener, ProxyConfig, SessionTarget, UpstreamTls,
//! };
//!
//! struct OneDatabase;
//!
//! impl Authenticator for OneDatabase {
//!     type Hooks = PassThrough;
//!     async fn authenticate(
//!         &self,
//!         request: &AuthRequest,
//!     ) -> Result<Authenticated<PassThrough>, AuthRejection> {
//!         if request.password.expose_secret() != "token" {
//!             return Err(AuthRejection::bad_password("invalid token"));
//!         }
//!         Ok(Authenticated {
//!             target: SessionTarget {
//!                 host: "127.0.0.1".into(),
//!                 port: 5432,
//!                 database: "shop".into(),
//!                 user: "periscope_ro".into(),
//!                 password: "injected".into(),
//!                 tls: UpstreamTls::Prefer,
//!                 parameters: Vec::new(),
//!             },
//!             hooks: PassThrough,
//!         })
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let mut config = ProxyConfig::new(ClientTls::Disabled);
//! config.allow_plaintext_password = true; // loopback demo only
//! let listener = PgListener::bind("127.0.0.1:15432", config, OneDatabase).await?;
//! listener.serve(std::future::pending()).await
//! # }
//! ```

pub mod auth;
pub mod backend;
pub mod cancel;
mod client;
pub mod codec;
pub mod error;
pub mod frontend;
pub mod hooks;
pub mod listener;
pub mod relay;
pub mod stream;
mod tcp;
mod upstream;

pub use auth::{
    AuthRejection, AuthRequest, Authenticated, Authenticator, SessionTarget, UpstreamTls,
};
pub use codec::{Frame, Limits};
pub use error::{PgError, ProtocolError, SessionError, Severity, sqlstate};
pub use hooks::{
    BackendAction, CopyState, FrontendAction, PassThrough, ProtocolState, SessionEnd, SessionHooks,
    SessionInfo,
};
pub use listener::{ClientTls, DEFAULT_PORT, PgListener, ProxyConfig, ProxyMetrics, SessionList};
pub use relay::{SessionHandle, SessionStats};
pub use upstream::{
    TextRow, UpstreamConnection, UpstreamError, UpstreamQueryError, UpstreamSession,
};
