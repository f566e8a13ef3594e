//! The state of background discovery on this gateway (a leaf, so the
//! shared [`crate::gateway::Gateway`] state can hold it without depending on
//! `discover`, which uses the gateway).

use std::collections::{HashMap, HashSet};

use periscope_api as api;

/// The stored tag of a column an administrator dismissed: discovery's
/// finding is overridden, the column is not masked by a discovered tag and
/// later profiles leave it alone. (Here, in a leaf, because the policy
/// merge in `config` skips it.)
pub const DISMISSED: &str = api::DISMISSED_TAG;

/// Background profiles on this gateway: which connections were started,
/// and each one's state and report.
#[derive(Debug, Default)]
pub struct BackgroundState {
    /// Connections whose profile started (once per gateway process).
    pub(crate) started: HashSet<String>,
    /// Each one's state and report.
    pub(crate) runs: HashMap<String, api::BackgroundDiscovery>,
}
