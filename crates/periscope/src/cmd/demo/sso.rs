//! `periscope demo --sso`: the demo with its own identity provider, so a
//! newcomer sees single sign-on without any account anywhere.
//!
//! The provider is `periscope-dev-idp` in this process, on a loopback port
//! (`127.0.0.1:8444`, or a free one), with two people who sign in without a
//! password: carol (group `engineering`, role developer) and dan (group
//! `eng-leads`, role approver). The gateway is configured with it like with
//! any provider (`[sso]`, client secret in a 0600 file); the provider learns
//! the gateway's redirect URL once the gateway listens.

use std::net::SocketAddr;

use anyhow::{Context as _, anyhow};
use periscope_dev_idp::{Client, DevIdp, IdpError, RunningIdp, User};

use super::DemoDir;

/// Where the provider listens when the port is free.
const DEFAULT_IDP: &str = "127.0.0.1:8444";
/// The gateway's client id at the provider.
const CLIENT_ID: &str = "periscope-demo";
/// The client secret, shared by the provider and the gateway's config.
pub(super) const SECRET_FILE: &str = "secrets/sso-client.secret";
/// The people who can sign in: (name, group, role).
pub(super) const PEOPLE: [(&str, &str, &str); 2] = [
    ("carol", "engineering", "developer"),
    ("dan", "eng-leads", "approver"),
];

/// The running provider and what the tour says about it.
pub(super) struct DemoIdp {
    /// The provider; stops when dropped.
    pub idp: RunningIdp,
    /// A note when the default port was taken.
    pub note: Option<String>,
    secret: String,
}

/// Starts the provider, with the client secret from a resumed directory or
/// a new one (written 0600).
pub(super) async fn start(dir: &DemoDir) -> anyhow::Result<DemoIdp> {
    let secret = client_secret(dir)?;
    let mut builder = DevIdp::builder();
    for (name, group, _) in PEOPLE {
        builder = builder.user(User::new(name).with_groups([group]));
    }
    let default: SocketAddr = DEFAULT_IDP.parse()?;
    let (idp, note) = match builder.port(default.port()).start().await {
        Ok(idp) => (idp, None),
        Err(IdpError::Bind { .. }) => {
            let mut builder = DevIdp::builder();
            for (name, group, _) in PEOPLE {
                builder = builder.user(User::new(name).with_groups([group]));
            }
            let idp = builder
                .start()
                .await
                .context("cannot start the test identity provider")?;
            let note = format!(
                "{DEFAULT_IDP} is in use: the test identity provider listens on {} instead",
                idp.addr()
            );
            (idp, Some(note))
        }
        Err(e) => return Err(anyhow!("cannot start the test identity provider: {e}")),
    };
    Ok(DemoIdp { idp, note, secret })
}

impl DemoIdp {
    /// Registers the gateway (its redirect URL is known once it listens).
    pub(super) fn register(&self, redirect_url: &str) -> anyhow::Result<()> {
        self.idp
            .register_client(Client {
                id: CLIENT_ID.to_string(),
                secret: Some(self.secret.clone()),
                redirect_uris: vec![redirect_url.to_string()],
            })
            .map_err(|e| anyhow!("cannot register the gateway with the test provider: {e}"))
    }

    /// The `[sso]` section of the gateway's configuration.
    pub(super) fn config_toml(&self, dir: &DemoDir) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut text = format!(
            "\n# Single sign-on with the demo's own test provider (`--sso`).\n\
             [sso]\n\
             \n\
             [[sso.provider]]\n\
             name = \"demo\"\n\
             display_name = \"Periscope demo provider\"\n\
             issuer = {issuer}\n\
             client_id = {client}\n\
             client_secret_file = {secret}\n\
             scopes = [\"openid\", \"email\", \"profile\", \"groups\"]\n\
             username_claim = \"preferred_username\"\n\
             allowed_email_domains = [\"example.com\"]\n\
             \n\
             [sso.provider.role_map]\n",
            issuer = q(self.idp.issuer_url()),
            client = q(CLIENT_ID),
            secret = q(&dir.join(SECRET_FILE).display().to_string()),
        );
        for (_, group, role) in PEOPLE {
            text.push_str(&format!("{} = [{}]\n", q(group), q(role)));
        }
        text
    }
}

/// The client secret: the one a kept directory holds, else a new one.
fn client_secret(dir: &DemoDir) -> anyhow::Result<String> {
    let path = dir.join(SECRET_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let text = text.trim().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("the random source failed: {e}"))?;
    let secret = hex::encode(bytes);
    super::files::write_file(&path, &secret, 0o600)?;
    Ok(secret)
}
