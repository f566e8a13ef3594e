//! Why the gateway did not start.

use std::net::SocketAddr;

use periscope_store::StoreError;

use crate::config::ConfigLoadError;
use crate::datadir::DataDirError;

/// Why the gateway could not start. [`StartError::exit_code`] tells
/// `periscope up` how to exit: 2 for a configuration the operator must fix,
/// 1 for everything else.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid or unreadable.
    #[error("{0}")]
    Config(#[from] ConfigLoadError),
    /// The data directory cannot be used.
    #[error("{0}")]
    DataDir(#[from] DataDirError),
    /// The store cannot be opened or initialised.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A listener cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Which listener.
        what: String,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

impl StartError {
    /// The process exit code `periscope up` uses for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => 2,
            _ => 1,
        }
    }
}
