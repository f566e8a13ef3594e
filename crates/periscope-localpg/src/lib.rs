//! A private local PostgreSQL cluster, and fake data worth masking.
//!
//! `periscope demo` needs a database to put behind the gateway on a laptop that
//! has only the PostgreSQL packages installed, and the test suite needs the
//! same thing hundreds of times. Both use this crate, so the code that the
//! tests exercise every day is the code a newcomer runs first.
//!
//! - [`PgCluster`]: a server of its own (initdb and pg_ctl from the machine's
//!   PostgreSQL binaries), on a free loopback port, SCRAM authentication,
//!   run as the `postgres` system user when the caller is root, stopped when
//!   dropped. Either throwaway (a temp dir, deleted on drop, fast non-durable
//!   settings: tests) or kept in a directory of the caller's choosing
//!   ([`PgClusterBuilder::data_dir`]: the demo, which may resume it later).
//! - [`seed`]: deterministic, realistic fake customers, orders, payments and
//!   integrations (Luhn-valid cards, IBANs with valid check digits, notes that
//!   repeat an email or phone, API keys), as SQL.
//!
//! When PostgreSQL is missing, [`LocalPgError::PostgresNotInstalled`] names the
//! package to install on the usual systems instead of a bare "not found".

mod cluster;
pub mod seed;

pub use cluster::{
    PasswordMethod, PgBinaries, PgCluster, PgClusterBuilder, SUPERUSER, SUPERUSER_PASSWORD,
    quote_ident, quote_literal,
};

/// The packages that provide `initdb` and `pg_ctl`, by system, as one sentence
/// that error messages and docs can quote.
pub const INSTALL_HINT: &str = "install the PostgreSQL server: `apt-get install postgresql` \
     (Debian/Ubuntu), `dnf install postgresql-server` (Fedora), `brew install postgresql` (macOS)";

/// Why a local cluster could not be provided.
#[derive(Debug, thiserror::Error)]
pub enum LocalPgError {
    /// The PostgreSQL server binaries are not installed (or not where
    /// `PERISCOPE_PG_BINDIR` says).
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: {searched}. \
         {INSTALL_HINT}; or point PERISCOPE_PG_BINDIR at the directory holding initdb and pg_ctl"
    )]
    PostgresNotInstalled {
        /// Where they were looked for.
        searched: String,
    },
    /// The caller is root but there is no `postgres` user to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses to: a `postgres` system user is needed \
         (the Debian `postgresql` package creates it), or run as a normal user"
    )]
    NoPostgresUser,
    /// The caller is root, and the `postgres` user cannot reach the cluster's
    /// directory (a parent such as `/root` is closed to other users).
    #[error(
        "PostgreSQL runs as the `postgres` user (you are root), and that user cannot reach {}: \
         choose a directory under /tmp or /var/tmp, or let other users traverse its parents \
         (chmod o+x)",
        path.display()
    )]
    NotAccessible {
        /// The cluster directory.
        path: std::path::PathBuf,
    },
    /// A kept cluster directory holds something else than a cluster made here.
    #[error("{} is not a cluster directory made by periscope: {reason}", path.display())]
    NotACluster {
        /// The directory.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No free TCP port could be bound on loopback.
    #[error("no free TCP port on 127.0.0.1 after several attempts")]
    NoFreePort,
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
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

impl LocalPgError {
    pub(crate) fn io(what: &str, source: std::io::Error) -> Self {
        LocalPgError::Io {
            what: what.to_string(),
            source,
        }
    }
}
