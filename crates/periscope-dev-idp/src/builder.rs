//! Configuring a provider before it listens.

use std::collections::HashSet;
use std::time::Duration;

use crate::IdpError;
use crate::keys::{SigningAlg, SigningKey};
use crate::model::{Client, User};
use crate::server::RunningIdp;
use crate::state::{Inner, Settings};

/// Clients, users, lifetimes and the first signing key's algorithm; `start`
/// checks them all and binds the port.
#[derive(Debug, Default)]
pub struct DevIdpBuilder {
    clients: Vec<Client>,
    users: Vec<User>,
    alg: SigningAlg,
    port: u16,
    settings: Settings,
}

impl DevIdpBuilder {
    /// Registers a confidential client (authenticates with `client_secret_basic`
    /// or `client_secret_post`), such as the gateway.
    pub fn client<I, S>(mut self, id: &str, secret: &str, redirect_uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clients.push(Client {
            id: id.to_string(),
            secret: Some(secret.to_string()),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Registers a public client (no secret; PKCE protects its codes), such
    /// as a CLI using a loopback redirect or the device flow.
    pub fn public_client<I, S>(mut self, id: &str, redirect_uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.clients.push(Client {
            id: id.to_string(),
            secret: None,
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
        });
        self
    }

    /// Adds a user who can sign in.
    pub fn user(mut self, user: User) -> Self {
        self.users.push(user);
        self
    }

    /// The first signing key's algorithm (RS256 unless told).
    pub fn signing_alg(mut self, alg: SigningAlg) -> Self {
        self.alg = alg;
        self
    }

    /// Listens on this loopback port instead of a free one the system picks,
    /// so the issuer URL stays the same across runs (the demo).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long an authorization code may wait for its exchange (60 s).
    pub fn code_ttl(mut self, ttl: Duration) -> Self {
        self.settings.code_ttl = ttl;
        self
    }

    /// Access token lifetime (10 min).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.settings.access_token_ttl = ttl;
        self
    }

    /// ID token lifetime, its `exp - iat` (10 min).
    pub fn id_token_ttl(mut self, ttl: Duration) -> Self {
        self.settings.id_token_ttl = ttl;
        self
    }

    /// Refresh token lifetime (24 h).
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.settings.refresh_token_ttl = ttl;
        self
    }

    /// How long a device code waits for approval (10 min).
    pub fn device_code_ttl(mut self, ttl: Duration) -> Self {
        self.settings.device_code_ttl = ttl;
        self
    }

    /// The device flow's minimum polling interval, whole seconds (5 s, the
    /// RFC 8628 default; tests use 1 s).
    pub fn device_poll_interval(mut self, interval: Duration) -> Self {
        self.settings.device_poll_interval = interval;
        self
    }

    /// Checks the configuration, generates the first signing key, binds
    /// `127.0.0.1` and starts serving.
    pub async fn start(self) -> Result<RunningIdp, IdpError> {
        self.validate()?;
        let alg = self.alg;
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .map_err(|e| IdpError::Key(format!("key generation task failed: {e}")))??;
        let inner = Inner::new(self.users, self.clients, key);
        RunningIdp::start(self.port, self.settings, inner).await
    }

    fn validate(&self) -> Result<(), IdpError> {
        let mut ids = HashSet::new();
        for client in &self.clients {
            client.validate()?;
            if !ids.insert(&client.id) {
                return Err(IdpError::Config(format!(
                    "client {:?} registered twice",
                    client.id
                )));
            }
        }
        let (mut names, mut subs) = (HashSet::new(), HashSet::new());
        for user in &self.users {
            user.validate()?;
            if !names.insert(&user.username) || !subs.insert(&user.sub) {
                return Err(IdpError::Config(format!(
                    "user {:?} (sub {:?}) registered twice",
                    user.username, user.sub
                )));
            }
        }
        let s = &self.settings;
        for (name, ttl) in [
            ("code_ttl", s.code_ttl),
            ("access_token_ttl", s.access_token_ttl),
            ("id_token_ttl", s.id_token_ttl),
            ("refresh_token_ttl", s.refresh_token_ttl),
            ("device_code_ttl", s.device_code_ttl),
        ] {
            if ttl < Duration::from_secs(1) {
                return Err(IdpError::Config(format!(
                    "{name} must be at least one second, not {ttl:?}"
                )));
            }
        }
        let interval = s.device_poll_interval;
        if interval < Duration::from_secs(1) || interval.subsec_nanos() != 0 {
            return Err(IdpError::Config(format!(
                "device_poll_interval is advertised in whole seconds and must be at least 1 s, \
                 not {interval:?}"
            )));
        }
        Ok(())
    }
}
