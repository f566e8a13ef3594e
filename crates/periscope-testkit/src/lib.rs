//! Test harness shared by every Periscope test: throwaway PostgreSQL clusters
//! ([`PgCluster`]), seeded fixtures ([`fixtures`]) and real gateway processes
//! ([`GatewayProcess`]; with the `http-client` feature also `ApiClient`, an
//! HTTPS JSON client trusting the gateway's own CA).
//!
//! Tests talk to real components. When a prerequisite is missing, the harness
//! fails with a message that says what to install instead of skipping.

mod cluster;
pub mod fixtures;
pub mod gateway;

pub use cluster::{
    PasswordMethod, PgBinaries, PgCluster, PgClusterBuilder, SUPERUSER, SUPERUSER_PASSWORD,
    quote_ident, quote_literal,
};
#[cfg(feature = "http-client")]
pub use gateway::{ApiClient, ApiResponse};
pub use gateway::{Exited, GatewayOptions, GatewayProcess};

/// Why the harness could not provide what a test needs.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The PostgreSQL server binaries are not installed.
    #[error(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: \
         install them (Debian/Ubuntu: `apt-get install postgresql`) \
         or point PERISCOPE_PG_BINDIR at a directory holding initdb and pg_ctl"
    )]
    PostgresNotInstalled,
    /// Tests run as root but there is no `postgres` user to run the server as.
    #[error(
        "tests run as root, and PostgreSQL refuses to: a `postgres` system user is needed \
         (the Debian `postgresql` package creates it), or run the tests as a normal user"
    )]
    NoPostgresUser,
    /// No free TCP port could be bound on loopback.
    #[error("no free TCP port on 127.0.0.1 after several attempts")]
    NoFreePort,
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
