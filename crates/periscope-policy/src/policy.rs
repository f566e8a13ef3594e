//! The compiled policy: what [`crate::decide`] reads on every session start.
//!
//! Built once from a checked [`Config`] and immutable afterwards, so the gateway
//! can share it behind an `Arc` and swap it atomically on reload; sessions keep
//! the policy they started with until they re-decide.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::command::CommandPattern;
use crate::config::{
    ADMIN_ROLE, Config, ConfigError, ConnectionConfig, ConnectionKind, DataPolicy, RoleConfig,
};
use crate::names::ColumnRef;
use crate::shield::MaskTarget;

/// Who is asking: an authenticated identity and the role names the store holds
/// for it.
///
/// Role names the current policy does not know (a role removed by a reload) are
/// ignored, never an error, so a reload cannot lock the store out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identity's unique name (`alice`, `svc-reporting`).
    pub name: String,
    /// Names of the roles it holds.
    pub roles: BTreeSet<String>,
}

impl Identity {
    /// An identity holding `roles`.
    pub fn new<I, R>(name: impl Into<String>, roles: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<String>,
    {
        Identity {
            name: name.into(),
            roles: roles.into_iter().map(Into::into).collect(),
        }
    }
}

/// A connection as the decision needs it: its data policy and the roles that
/// cover it, resolved once at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// The connection's name.
    pub name: String,
    /// The connection's labels.
    pub labels: BTreeMap<String, String>,
    /// The data policy in force (defaults when none is declared).
    pub data: DataPolicy,
    /// Whether the config declared a data policy at all (for explanations).
    pub declared_data_policy: bool,
    /// Names of the roles that cover this connection, sorted.
    pub roles: BTreeSet<String>,
    /// The connection's data plane.
    pub kind: ConnectionKind,
    /// On an `exec` connection, the sensitive argument patterns: each one a
    /// `command:<pattern>` shield in force until a grant lifts it.
    pub sensitive_commands: BTreeSet<CommandPattern>,
    /// The columns of `data.tags` that discovery tagged (`periscope discover
    /// --apply`) rather than the configuration, for explanations.
    pub discovered: BTreeSet<ColumnRef>,
}

/// The compiled, immutable policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    connections: BTreeMap<String, ConnectionPolicy>,
    roles: BTreeMap<String, RoleConfig>,
    pending_ttl: Duration,
}

impl Policy {
    /// Compiles a checked configuration; cannot fail because [`Config::parse`]
    /// already refused everything that would not compile.
    pub fn new(config: &Config) -> Policy {
        let mut roles: BTreeMap<String, RoleConfig> = config
            .roles
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        roles.insert(ADMIN_ROLE.to_string(), RoleConfig::builtin_admin());
        let connections = config
            .connections
            .iter()
            .map(|c| (c.name.clone(), compile_connection(c, &roles)))
            .collect();
        Policy {
            connections,
            roles,
            pending_ttl: config.requests.pending_ttl,
        }
    }

    /// Parses and compiles in one step, for callers that need nothing else from
    /// the file.
    pub fn parse(text: &str, file: &str) -> Result<Policy, ConfigError> {
        Ok(Policy::new(&Config::parse(text, file)?))
    }

    /// The connection called `name`, if it exists.
    pub fn connection(&self, name: &str) -> Option<&ConnectionPolicy> {
        self.connections.get(name)
    }

    /// Every connection, by name.
    pub fn connections(&self) -> impl Iterator<Item = &ConnectionPolicy> {
        self.connections.values()
    }

    /// Merges tags found by discovery into `connection`'s data policy, where
    /// they mask like configured tags (and `unmask:<entity>` lifts them). A
    /// column the configuration tags keeps its configured tag. Returns how
    /// many tags were added; an unknown connection adds none.
    pub fn add_discovered_tags(
        &mut self,
        connection: &str,
        tags: impl IntoIterator<Item = (ColumnRef, MaskTarget)>,
    ) -> usize {
        let Some(conn) = self.connections.get_mut(connection) else {
            return 0;
        };
        let mut added = 0;
        for (column, target) in tags {
            if let std::collections::btree_map::Entry::Vacant(slot) =
                conn.data.tags.entry(column.clone())
            {
                slot.insert(target);
                conn.discovered.insert(column);
                added += 1;
            }
        }
        added
    }

    /// The role called `name`, including the built-in `admin`.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.get(name)
    }

    /// Every role, by name, including the built-in `admin`.
    pub fn roles(&self) -> impl Iterator<Item = &RoleConfig> {
        self.roles.values()
    }

    /// How long a request may wait for a decision.
    pub fn pending_ttl(&self) -> Duration {
        self.pending_ttl
    }

    /// Whether `identity` may manage identities, tokens and configuration and
    /// read the whole audit.
    pub fn is_admin(&self, identity: &Identity) -> bool {
        self.known_roles(identity).any(|r| r.admin)
    }

    /// The identity's roles that this policy knows, by name.
    pub fn known_roles<'a>(
        &'a self,
        identity: &'a Identity,
    ) -> impl Iterator<Item = &'a RoleConfig> + 'a {
        identity
            .roles
            .iter()
            .filter_map(|name| self.roles.get(name))
    }

    /// The identity's roles that cover `connection`, by name; empty when the
    /// connection is unknown.
    pub fn covering_roles<'a>(
        &'a self,
        identity: &'a Identity,
        connection: &str,
    ) -> Vec<&'a RoleConfig> {
        let Some(conn) = self.connections.get(connection) else {
            return Vec::new();
        };
        identity
            .roles
            .iter()
            .filter(|name| conn.roles.contains(*name))
            .filter_map(|name| self.roles.get(name))
            .collect()
    }
}

fn compile_connection(
    c: &ConnectionConfig,
    roles: &BTreeMap<String, RoleConfig>,
) -> ConnectionPolicy {
    ConnectionPolicy {
        name: c.name.clone(),
        labels: c.labels.clone(),
        data: c.effective_data_policy(),
        declared_data_policy: c.data_policy.is_some(),
        roles: roles
            .values()
            .filter(|r| r.covers(c))
            .map(|r| r.name.clone())
            .collect(),
        kind: c.kind,
        sensitive_commands: c
            .exec
            .iter()
            .flat_map(|e| e.sensitive.iter().cloned())
            .collect(),
        discovered: BTreeSet::new(),
    }
}
