//! Reading `periscope.toml` and the secrets it references, and comparing two
//! versions for a reload.
//!
//! A [`LoadedConfig`] is complete or does not exist: the file is parsed,
//! checked, compiled into a [`Policy`] and its referenced secrets are read
//! before anything is swapped in, so a reload applies whole or not at all.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use periscope_policy::{Config, ConfigError, Policy, SecretRef};
use secrecy::SecretString;
use zeroize::Zeroizing;

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file, re-read on every reload.
    File(PathBuf),
    /// No file: built-in defaults (no connection, only the `admin` role).
    Builtin,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "{}", path.display()),
            ConfigSource::Builtin => f.write_str("(built-in defaults)"),
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is invalid; every diagnostic carries file, line and column.
    #[error("{0}")]
    Invalid(#[from] ConfigError),
    /// A secret the file references cannot be read.
    #[error("{what} ({source_ref}) cannot be read: {detail}")]
    Secret {
        /// Which secret (`webhook secret`, `store password`).
        what: &'static str,
        /// Where it was looked for.
        source_ref: String,
        /// Why it failed.
        detail: String,
    },
}

impl ConfigLoadError {
    /// The first problem in one line (`file:line:col: message`), for logs and
    /// audit details.
    pub fn one_line(&self) -> String {
        match self {
            ConfigLoadError::Invalid(e) => {
                let d = e.first();
                format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message)
            }
            other => other.to_string(),
        }
    }
}

/// Reads a secret given by reference: an environment variable of the gateway,
/// or a file (one trailing newline stripped). Empty secrets are refused.
pub fn read_secret(secret: &SecretRef) -> Result<SecretString, String> {
    let value = match secret {
        SecretRef::Env(var) => match std::env::var(var) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("the environment variable {var} is not set"));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("the environment variable {var} is not UTF-8"));
            }
        },
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
    };
    let mut value = Zeroizing::new(value);
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    if value.is_empty() {
        return Err("it is empty".to_string());
    }
    Ok(SecretString::from(value.as_str()))
}

/// A configuration ready to be swapped in: checked, compiled, secrets read.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The checked model.
    pub config: Config,
    /// The compiled policy `decide()` reads.
    pub policy: Policy,
    /// Where it came from.
    pub source: ConfigSource,
    /// The webhook signing key, when a webhook is configured.
    pub webhook_secret: Option<SecretString>,
    /// Each SSO provider's client secret, by provider name (public clients
    /// have none).
    pub sso_secrets: std::collections::BTreeMap<String, SecretString>,
}

impl LoadedConfig {
    /// Loads from `source`.
    pub fn load(source: ConfigSource) -> Result<LoadedConfig, ConfigLoadError> {
        let config = match &source {
            ConfigSource::Builtin => Config::parse("", "(built-in defaults)")?,
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigLoadError::Read {
                    path: path.clone(),
                    source: e,
                })?;
                Config::parse(&text, &path.display().to_string())?
            }
        };
        Self::from_config(config, source)
    }

    /// Compiles an already parsed configuration and reads its secrets.
    pub fn from_config(config: Config, source: ConfigSource) -> Result<Self, ConfigLoadError> {
        let webhook_secret = match &config.webhook {
            None => None,
            Some(hook) => {
                Some(
                    read_secret(&hook.secret).map_err(|detail| ConfigLoadError::Secret {
                        what: "the webhook secret",
                        source_ref: hook.secret.to_string(),
                        detail,
                    })?,
                )
            }
        };
        let mut sso_secrets = std::collections::BTreeMap::new();
        for provider in config.sso.iter().flat_map(|s| s.providers.iter()) {
            if let Some(secret) = &provider.client_secret {
                let value = read_secret(secret).map_err(|detail| ConfigLoadError::Secret {
                    what: "an SSO client secret",
                    source_ref: format!("provider `{}`: {secret}", provider.name),
                    detail,
                })?;
                sso_secrets.insert(provider.name.clone(), value);
            }
        }
        let policy = Policy::new(&config);
        Ok(LoadedConfig {
            config,
            policy,
            source,
            webhook_secret,
            sso_secrets,
        })
    }

    /// The same configuration with its policy compiled again and `sets`
    /// (discovered tags) merged in; secrets are not read again.
    pub fn recompiled_with(&self, sets: &[periscope_store::DiscoveredTagSet]) -> LoadedConfig {
        let mut policy = Policy::new(&self.config);
        merge_discovered(&mut policy, sets);
        LoadedConfig {
            config: self.config.clone(),
            policy,
            source: self.source.clone(),
            webhook_secret: self.webhook_secret.clone(),
            sso_secrets: self.sso_secrets.clone(),
        }
    }

    /// Names of the configured roles, with the built-in `admin`, sorted: what
    /// an unknown role name is refused with.
    pub fn role_names(&self) -> Vec<String> {
        self.policy.roles().map(|r| r.name.clone()).collect()
    }
}

/// Merges discovered tags into a compiled policy (configured tags win).
/// Stored entries that no longer parse are skipped with a warning.
pub fn merge_discovered(policy: &mut Policy, sets: &[periscope_store::DiscoveredTagSet]) {
    for set in sets {
        let tags = set.tags.iter().filter_map(|(column, target)| {
            if target == crate::discovery_state::DISMISSED {
                return None;
            }
            match (column.parse(), target.parse()) {
                (Ok(c), Ok(t)) => Some((c, t)),
                _ => {
                    tracing::warn!(connection = %set.connection, %column, "ignoring a stored discovered tag that does not parse");
                    None
                }
            }
        });
        policy.add_discovered_tags(&set.connection, tags);
    }
}

/// What a reload changed, and what it could not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Connections added and removed.
    pub connections_added: Vec<String>,
    /// Connections removed.
    pub connections_removed: Vec<String>,
    /// Roles added.
    pub roles_added: Vec<String>,
    /// Roles removed.
    pub roles_removed: Vec<String>,
    /// Total connections now.
    pub connections: usize,
    /// Total declared roles now.
    pub roles: usize,
    /// Sections that changed but only take effect after a restart.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadSummary {
    /// Compares the configuration in force with the new one.
    pub fn between(old: &Config, new: &Config) -> ReloadSummary {
        let names = |c: &Config| -> BTreeSet<String> {
            c.connections.iter().map(|x| x.name.clone()).collect()
        };
        let roles =
            |c: &Config| -> BTreeSet<String> { c.roles.iter().map(|x| x.name.clone()).collect() };
        let (old_c, new_c) = (names(old), names(new));
        let (old_r, new_r) = (roles(old), roles(new));
        let mut needs_restart = Vec::new();
        if old.server != new.server {
            needs_restart.push("[server]");
        }
        if old.store != new.store {
            needs_restart.push("[store]");
        }
        if old.audit != new.audit {
            needs_restart.push("[audit]");
        }
        ReloadSummary {
            connections_added: new_c.difference(&old_c).cloned().collect(),
            connections_removed: old_c.difference(&new_c).cloned().collect(),
            roles_added: new_r.difference(&old_r).cloned().collect(),
            roles_removed: old_r.difference(&new_r).cloned().collect(),
            connections: new.connections.len(),
            roles: new.roles.len(),
            needs_restart,
        }
    }
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "configuration reloaded: {} connection{}, {} role{}",
            self.connections,
            if self.connections == 1 { "" } else { "s" },
            self.roles,
            if self.roles == 1 { "" } else { "s" },
        )?;
        let list = |v: &[String]| v.join(", ");
        for (what, v) in [
            ("connections added", &self.connections_added),
            ("connections removed", &self.connections_removed),
            ("roles added", &self.roles_added),
            ("roles removed", &self.roles_removed),
        ] {
            if !v.is_empty() {
                write!(f, "; {what}: {}", list(v))?;
            }
        }
        if !self.needs_restart.is_empty() {
            write!(
                f,
                "; changes to {} need a restart and were not applied",
                self.needs_restart.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn summary_names_changes_and_restart_sections() {
        let old = Config::parse(
            "[[connection]]\nname='a'\nkind='postgres'\nhost='h'\ndatabase='d'\nuser='u'\n",
            "t",
        )
        .unwrap();
        let new = Config::parse(
            "[server]\napi_listen='127.0.0.1:9999'\n[[connection]]\nname='b'\nkind='postgres'\nhost='h'\ndatabase='d'\nuser='u'\n[[role]]\nname='dev'\nconnections=['b']\n",
            "t",
        )
        .unwrap();
        let s = ReloadSummary::between(&old, &new);
        assert_eq!(s.connections_added, ["b"]);
        assert_eq!(s.connections_removed, ["a"]);
        assert_eq!(s.roles_added, ["dev"]);
        assert_eq!(s.needs_restart, ["[server]"]);
        let text = s.to_string();
        assert!(
            text.contains("changes to [server] need a restart"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_read_by_reference_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s");
        std::fs::write(&file, "hunter22\n").unwrap();
        let v = read_secret(&SecretRef::File(file)).unwrap();
        assert_eq!(v.expose_secret(), "hunter22");
        assert!(!format!("{v:?}").contains("hunter"));
        let err = read_secret(&SecretRef::Env("PERISCOPE_SURELY_UNSET_VAR".into())).unwrap_err();
        assert!(
            err.contains("PERISCOPE_SURELY_UNSET_VAR is not set"),
            "{err}"
        );
    }

    #[test]
    fn invalid_file_errors_carry_the_location() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("periscope.toml");
        std::fs::write(&path, "[server]\napi_listen = 'nope'\n").unwrap();
        let err = LoadedConfig::load(ConfigSource::File(path.clone())).unwrap_err();
        let line = err.one_line();
        assert!(
            line.starts_with(&format!("{}:2:14: ", path.display())),
            "{line}"
        );
    }
}
