//! What the provider knows: users, clients, and the faults a test can ask for.

use serde_json::{Map, Value};

use crate::IdpError;

/// Claims the provider sets itself; an extra claim may not override them, or
/// a test meaning to change a user's data would silently change the token's
/// validity instead.
pub(crate) const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "auth_time",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "jti",
    "email",
    "email_verified",
    "name",
    "preferred_username",
    "groups",
];

/// A person who can sign in, and the claims the provider reports for them.
///
/// Fields are public so tests can write a literal; [`User::new`] fills
/// plausible defaults from a user name. `sub` deliberately differs from the
/// user name by default (`sub-<name>`), so a relying party that keys
/// identities on the wrong claim is caught.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// The stable subject identifier (`sub`).
    pub sub: String,
    /// The name used to pick this user (`login_hint`, the pickers) and
    /// reported as `preferred_username` (scope `profile`).
    pub username: String,
    /// Display name (`name`, scope `profile`); omitted when `None`.
    pub name: Option<String>,
    /// Email address (`email`, scope `email`); omitted when `None`.
    pub email: Option<String>,
    /// Reported as `email_verified` (scope `email`).
    pub email_verified: bool,
    /// Group names (`groups`, scope `groups`), an array even when empty.
    pub groups: Vec<String>,
    /// Any other claims, put in the ID token and userinfo whatever the
    /// scope. Names in the reserved set (`iss`, `sub`, `email`...) are
    /// refused when the user is registered.
    pub extra_claims: Map<String, Value>,
}

impl User {
    /// A user named `username` with `sub-<username>` as subject, a verified
    /// `<username>@example.com` address, the name as display name and no groups.
    pub fn new(username: &str) -> Self {
        User {
            sub: format!("sub-{username}"),
            username: username.to_string(),
            name: Some(username.to_string()),
            email: Some(format!("{username}@example.com")),
            email_verified: true,
            groups: Vec::new(),
            extra_claims: Map::new(),
        }
    }

    /// Sets the subject identifier.
    pub fn with_sub(mut self, sub: &str) -> Self {
        self.sub = sub.to_string();
        self
    }

    /// Sets (or with `None` removes) the email address.
    pub fn with_email(mut self, email: Option<&str>, verified: bool) -> Self {
        self.email = email.map(str::to_string);
        self.email_verified = verified;
        self
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Replaces the groups.
    pub fn with_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one extra claim.
    pub fn with_claim(mut self, name: &str, value: Value) -> Self {
        self.extra_claims.insert(name.to_string(), value);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), IdpError> {
        if self.sub.is_empty() || self.username.is_empty() {
            return Err(IdpError::Config(format!(
                "user {:?}: sub and username must not be empty",
                self.username
            )));
        }
        if let Some(name) = self
            .extra_claims
            .keys()
            .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
        {
            return Err(IdpError::Config(format!(
                "user {:?}: extra claim {name:?} is set by the provider itself; \
                 use the User field instead (or a fault to make it wrong)",
                self.username
            )));
        }
        Ok(())
    }
}

/// A relying party registered with the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    /// `client_id`.
    pub id: String,
    /// `client_secret` for `client_secret_basic`/`client_secret_post`;
    /// `None` makes a public client (PKCE only, `token_endpoint_auth_method`
    /// `none`), such as a CLI.
    pub secret: Option<String>,
    /// Exact redirect URIs. An `http://127.0.0.1/...` or `http://[::1]/...`
    /// URI registered without a port accepts any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
}

impl Client {
    pub(crate) fn validate(&self) -> Result<(), IdpError> {
        if self.id.is_empty() {
            return Err(IdpError::Config("a client id must not be empty".into()));
        }
        if self.secret.as_deref() == Some("") {
            return Err(IdpError::Config(format!(
                "client {:?}: an empty secret; use a public client instead",
                self.id
            )));
        }
        for uri in &self.redirect_uris {
            let parsed = url::Url::parse(uri).map_err(|e| {
                IdpError::Config(format!(
                    "client {:?}: redirect URI {uri:?} is not an absolute URL: {e}",
                    self.id
                ))
            })?;
            if parsed.fragment().is_some() {
                return Err(IdpError::Config(format!(
                    "client {:?}: redirect URI {uri:?} has a fragment (RFC 6749 §3.1.2)",
                    self.id
                )));
            }
        }
        Ok(())
    }

    /// Whether `asked` is one of this client's redirect URIs.
    pub(crate) fn accepts_redirect(&self, asked: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| registered == asked || loopback_any_port(registered, asked))
    }
}

/// RFC 8252 §7.3: a native app listens on an ephemeral loopback port, so a
/// loopback redirect registered without a port matches any port.
fn loopback_any_port(registered: &str, asked: &str) -> bool {
    let (Ok(reg), Ok(ask)) = (url::Url::parse(registered), url::Url::parse(asked)) else {
        return false;
    };
    let loopback = |u: &url::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
    };
    loopback(&reg)
        && reg.port().is_none()
        && loopback(&ask)
        && reg.host_str() == ask.host_str()
        && reg.path() == ask.path()
        && reg.query() == ask.query()
}

/// One way to make the next ID token(s) wrong, for a relying party's
/// bad-input tests. Each names the check it should trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// `iss` is another issuer's URL.
    WrongIssuer,
    /// `aud` (and `azp`) name another client.
    WrongAudience,
    /// `aud` also names another, untrusted audience (no `azp` change).
    ExtraAudience,
    /// `exp` lies an hour in the past (and `iat` before it).
    Expired,
    /// `iat` and `nbf` lie an hour in the future.
    NotYetValid,
    /// The signature does not match the content (one bit flipped).
    BadSignature,
    /// The header names a `kid` that is not in the JWKS (validly signed with
    /// the current key otherwise).
    UnknownKid,
    /// Signed HS256 with the current RSA key's public modulus as the MAC
    /// key: the algorithm-confusion attack.
    AlgConfusion,
    /// `alg: none` and no signature.
    Unsigned,
    /// `nonce` is not the one the client sent.
    NonceMismatch,
    /// No `nonce` although the client sent one.
    MissingNonce,
    /// No `email` claim.
    MissingEmail,
    /// `email_verified` is false.
    EmailNotVerified,
    /// No `groups` claim.
    MissingGroups,
}

/// What becomes of the previous signing key when a new one takes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviousKey {
    /// Still published in the JWKS (tokens it signed stay verifiable): how
    /// providers rotate in practice.
    Keep,
    /// Removed from the JWKS at once: tokens it signed no longer verify.
    Retire,
}
