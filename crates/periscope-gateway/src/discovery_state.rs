//! The state of background discovery on this gateway (a leaf, so the
//! shared [`crate::gateway::Gateway`] state can hold it without depending on
//! `discover`, which uses the gateway).

use std::collections::{BTreeMap, HashMap, HashSet};

use periscope_api as api;
use periscope_redact::{Counts, Entity};

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
    /// Run-time learning: per connection, what results showed about each
    /// untagged column (`schema.table.column`).
    pub(crate) suspects: HashMap<String, BTreeMap<String, Evidence>>,
}

/// What results showed about one untagged column (run-time learning in
/// `discover::suspect`).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// Masked values, per entity.
    pub(crate) found: Counts,
    /// Statements whose results had some.
    pub(crate) statements: u32,
    /// When it became suspected, once it has.
    pub(crate) suspected_at: Option<String>,
    /// Whether `auto_tag` tagged it.
    pub(crate) tagged: bool,
}

impl Evidence {
    /// The entity most of its masked values were.
    pub(crate) fn entity(&self) -> Option<Entity> {
        self.found
            .iter()
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
            .map(|(e, _)| e)
    }
}
