//! The state of background discovery on this gateway (a leaf, so the
//! shared [`crate::gateway::Gateway`] state can hold it without depending on
//! `discover`, which uses the gateway).

use std::collections::{HashMap, HashSet};

use periscope_api as api;

/// Background profiles on this gateway: which connections were started,
/// and each one's state and report.
#[derive(Debug, Default)]
pub struct BackgroundState {
    /// Connections whose profile started (once per gateway process).
    pub(crate) started: HashSet<String>,
    /// Each one's state and report.
    pub(crate) runs: HashMap<String, api::BackgroundDiscovery>,
}
