//! The Periscope gateway: the composition root that turns the pure crates
//! (policy, audit) and the store into a running service.
//!
//! - [`start`] loads the configuration (refused with file:line:col when
//!   invalid), prepares the data directory (TLS CA and certificate, audit
//!   signing key, token and masking keys; see [`datadir`]), opens the store,
//!   bootstraps the first administrator once per store, binds the HTTPS API
//!   and any [`ProtocolListener`], and starts the expiry task.
//! - [`Gateway`] is the cheap-to-clone handle everything shares: the policy
//!   snapshot (swapped atomically on reload), authentication, decisions with
//!   the identity's grants, the durable audit writer, the [`Clock`], the
//!   grant event bus ([`GrantEvent`]), the session registry and the keys.
//! - The HTTP API (`docs/api.md`) is JSON over HTTPS with bearer tokens, one
//!   error shape and request ids; see the `api` module.
//!
//! A protocol proxy plugs in by implementing [`ProtocolListener`] and passing
//! it in [`GatewayOptions::listeners`]: the gateway binds its socket, and the
//! proxy authenticates with [`Gateway::authenticate_password`], decides with
//! [`Gateway::authorize`], registers sessions with [`SessionRegistry`], audits
//! with [`Gateway::audit`] and cuts sessions on [`GrantEvent::Ended`] from
//! [`Gateway::subscribe`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use periscope_gateway::{ConfigSource, GatewayOptions, start};
//!
//! let mut options = GatewayOptions::new(ConfigSource::Builtin);
//! options.data_dir = Some("./periscope-data".into());
//! let mut running = start(options).await?;
//! if let Some(bootstrap) = running.take_bootstrap() {
//!     println!("admin token (shown once): {}", bootstrap.token.as_str());
//! }
//! println!("API on https://{}", running.api_addr());
//! running.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod api;
mod audit_sink;
mod client_addr;
pub mod clock;
pub mod config;
mod console;
pub mod convert;
pub mod datadir;
pub mod discover;
mod discovery_state;
mod error;
mod expiry;
mod gateway;
mod grants;
mod https;
pub mod identity;
mod listener;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod pg;
pub mod recordings;
mod server;
pub mod sessions;
mod shutdown;
pub mod sql_client;
pub mod sso;
mod upstream;
pub mod webhook;
pub mod websession;

pub use api::Failure;
pub use audit_sink::{GatewaySink, SessionContext};
pub use client_addr::ClientAddr;
pub use clock::{Clock, SystemClock, TestClock};
pub use config::{ConfigLoadError, ConfigSource, LoadedConfig, ReloadSummary};
pub use error::StartError;
pub use expiry::{CHECKPOINT_INTERVAL, Swept, TICK};
pub use gateway::{
    Authenticated, Caller, ConnectError, Endpoints, Gateway, LastVerify, SESSION_SECRET_TTL,
    SYSTEM_ACTOR, ServerOverrides,
};
pub use grants::{GrantError, LIST_LIMIT, RequestStatusFilter, parse_duration};
pub use identity::{AuthFailure, IdentityProvider};
pub use listener::ProtocolListener;
pub use periscope_shield::grants::{EndReason, GrantBus, GrantEnded, GrantEvent, GrantStarted};
pub use pg::PgProxy;
pub use server::{BOOTSTRAP_ADMIN, Bootstrap, GatewayOptions, Running, start};
pub use sessions::{NewSession, SessionGuard, SessionRegistry};
pub use shutdown::Shutdown;
