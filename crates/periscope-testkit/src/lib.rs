//! Test harness shared by every Periscope test: throwaway PostgreSQL clusters
//! ([`PgCluster`]), seeded fixtures ([`fixtures`]), real gateway processes
//! ([`GatewayProcess`]; with the `http-client` feature also `ApiClient`, an
//! HTTPS JSON client trusting the gateway's own CA; with the `idp` feature
//! also `idp`, an OpenID Connect provider on a loopback port), the one
//! `psql` runner ([`Psql`]) and a raw protocol client ([`pgraw`]).
//!
//! Tests talk to real components. When a prerequisite is missing, the harness
//! fails with a message that says what to install instead of skipping.
//!
//! The clusters and the fixtures are the production crate
//! `periscope-localpg` (which `periscope demo` ships), re-exported here under
//! their historical names so tests keep one import path.

pub mod gateway;
pub mod pgraw;
pub mod psql;

/// The development OpenID Connect provider (`periscope-dev-idp`, which
/// `periscope demo --sso` ships): SSO tests start one with
/// `idp::DevIdp::builder()...start().await` and bend it with its knobs
/// (key rotation, user changes, ID token faults, stop/restart).
#[cfg(feature = "idp")]
pub use periscope_dev_idp as idp;

#[cfg(feature = "http-client")]
pub use gateway::{ApiClient, ApiResponse};
pub use gateway::{Exited, GatewayOptions, GatewayProcess};
/// Seeded fake shop data; the same generator `periscope demo` seeds with.
pub use periscope_localpg::seed as fixtures;
pub use periscope_localpg::{
    INSTALL_HINT, LocalPgError, PasswordMethod, PgBinaries, PgCluster, PgClusterBuilder, SUPERUSER,
    SUPERUSER_PASSWORD, quote_ident, quote_literal,
};
pub use psql::{Psql, PsqlOutput};

/// Why the harness could not provide what a test needs.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A PostgreSQL cluster could not be provided (not installed, no
    /// `postgres` user, a failing `initdb`...).
    #[error(transparent)]
    LocalPg(#[from] LocalPgError),
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An external command exited with an error.
    #[error("{what} failed: {detail}")]
    CommandFailed {
        /// The command.
        what: String,
        /// Its stderr/stdout or a diagnosis.
        detail: String,
    },
}

impl TestkitError {
    pub(crate) fn io(what: &str, source: std::io::Error) -> Self {
        TestkitError::Io {
            what: what.to_string(),
            source,
        }
    }
}
