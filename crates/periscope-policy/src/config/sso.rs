//! `[sso]`: single sign-on with OpenID Connect providers, and the pure rules
//! that turn a provider's claims into an identity name and roles.
//!
//! ```toml
//! [sso]
//! public_url = "https://periscope.example.com:8443"  # what browsers reach
//! session_lifetime = "12h"      # a browser session ends at the latest then
//! session_idle_timeout = "1h"   # ... or after this long unused
//! token_lifetime = "12h"        # gateway token of `periscope login --sso`
//!
//! [[sso.provider]]
//! name = "okta"
//! issuer = "https://example.okta.com/oauth2/default"
//! client_id = "0oa1b2c3d4"
//! client_secret_env = "OKTA_CLIENT_SECRET"
//! scopes = ["openid", "email", "profile", "groups"]
//! username_claim = "email"
//! groups_claim = "groups"
//! allowed_email_domains = ["example.com"]
//! [sso.provider.role_map]
//! "eng" = ["dev"]
//! "eng-leads" = ["dev", "lead"]
//! ```
//!
//! Deny by default: a sign-in whose groups map to no role is refused, so
//! being known to the provider is never enough to reach anything. The
//! mapping is recomputed at every sign-in; nothing here remembers groups.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::Reporter;
use super::raw::S;
use super::validate::{SecretKeys, duration, secret_ref};
use super::{ADMIN_ROLE, RoleConfig, SecretRef, ServerConfig};
use crate::names::check_object_name;

/// Browser session lifetime when `session_lifetime` is unset: a working day.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Idle timeout of a browser session when `session_idle_timeout` is unset.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(3600);
/// Lifetime of the gateway token `periscope login --sso` yields, by default.
pub const DEFAULT_SSO_TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Shortest session or token lifetime: below it a sign-in is pointless.
pub const MIN_SSO_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Longest session or token lifetime: an identity removed from its groups
/// keeps its roles at most this long through a token it already holds.
pub const MAX_SSO_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Shortest idle timeout.
pub const MIN_SESSION_IDLE: Duration = Duration::from_secs(60);
/// Scopes asked for when `scopes` is unset: every provider knows these.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// The claim that names the identity when `username_claim` is unset.
pub const DEFAULT_USERNAME_CLAIM: &str = "email";
/// The claim that carries group names when `groups_claim` is unset.
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";

/// `[sso]`: the providers and what a sign-in yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoConfig {
    /// The URL browsers use to reach the gateway's HTTPS port, without a
    /// trailing slash; the redirect URL to register with a provider is this
    /// plus `/sso/callback`. When unset, the gateway derives it from
    /// `server.public_host` (or the API address) and the API port.
    pub public_url: Option<String>,
    /// Absolute lifetime of a browser session.
    pub session_lifetime: Duration,
    /// A browser session unused for this long ends.
    pub session_idle_timeout: Duration,
    /// Lifetime of the gateway token a CLI sign-in yields.
    pub token_lifetime: Duration,
    /// The providers, in file order (the first is the default).
    pub providers: Vec<SsoProvider>,
}

impl SsoConfig {
    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&SsoProvider> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// `[[sso.provider]]`: one OpenID Connect provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoProvider {
    /// Short unique name (`okta`), used in URLs, audit records and
    /// `periscope login --sso --provider`.
    pub name: String,
    /// What the sign-in page calls it (default: the name).
    pub display_name: String,
    /// The issuer URL exactly as the provider writes it in `iss` (discovery
    /// is read from `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret, by reference; `None` for a public client (PKCE
    /// alone protects its codes).
    pub client_secret: Option<SecretRef>,
    /// Scopes asked for; always includes `openid`.
    pub scopes: Vec<String>,
    /// The claim whose value names the identity (`email`,
    /// `preferred_username`, `sub`...).
    pub username_claim: String,
    /// The claim holding the list of group names.
    pub groups_claim: String,
    /// Group name → roles its members get.
    pub role_map: BTreeMap<String, BTreeSet<String>>,
    /// When not empty, only these email domains (lowercase) may sign in,
    /// with a verified address.
    pub allowed_email_domains: BTreeSet<String>,
}

impl SsoProvider {
    /// The roles `groups` map to, sorted and without duplicates.
    pub fn roles_for<'a>(&self, groups: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut roles = BTreeSet::new();
        for group in groups {
            if let Some(mapped) = self.role_map.get(group) {
                roles.extend(mapped.iter().cloned());
            }
        }
        roles.into_iter().collect()
    }

    /// Whether an address may sign in under `allowed_email_domains` (any
    /// address when the list is empty). Compares the part after the last
    /// `@`, case-insensitively; sub-domains are not included.
    pub fn email_domain_allowed(&self, email: &str) -> bool {
        if self.allowed_email_domains.is_empty() {
            return true;
        }
        match email.rsplit_once('@') {
            Some((local, domain)) if !local.is_empty() => self
                .allowed_email_domains
                .contains(&domain.to_ascii_lowercase()),
            _ => false,
        }
    }

    /// Whether sign-ins must carry a verified email address: when domains
    /// are restricted or the email names the identity, an unverified
    /// address would let anyone claim someone else's.
    pub fn needs_verified_email(&self) -> bool {
        !self.allowed_email_domains.is_empty() || self.username_claim == "email"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSso {
    pub public_url: Option<S<String>>,
    pub session_lifetime: Option<S<String>>,
    pub session_idle_timeout: Option<S<String>>,
    pub token_lifetime: Option<S<String>>,
    #[serde(default, rename = "provider")]
    pub providers: Vec<RawSsoProvider>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsoProvider {
    pub name: S<String>,
    pub display_name: Option<String>,
    pub issuer: S<String>,
    pub client_id: S<String>,
    pub client_secret_env: Option<S<String>>,
    pub client_secret_file: Option<S<String>>,
    /// Present only to refuse it with a useful message.
    pub client_secret: Option<S<IgnoredAny>>,
    pub scopes: Option<Vec<S<String>>>,
    pub username_claim: Option<S<String>>,
    pub groups_claim: Option<S<String>>,
    #[serde(default)]
    pub role_map: BTreeMap<S<String>, Vec<S<String>>>,
    #[serde(default)]
    pub allowed_email_domains: Vec<S<String>>,
}

/// Checks `[sso]` against the declared roles.
pub(crate) fn validate(
    raw: S<RawSso>,
    roles: &[RoleConfig],
    server: &ServerConfig,
    r: &mut Reporter<'_>,
) -> SsoConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let public_url = raw.public_url.map(|url| {
        let text = url.get_ref().trim_end_matches('/');
        let host = text
            .strip_prefix("https://")
            .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
        if host.is_none_or(str::is_empty) || text.contains(['?', '#']) {
            r.error(
                url.span(),
                "`public_url` must be the `https://` URL browsers use to reach the gateway, \
                 such as `https://periscope.example.com:8443`",
            );
        }
        text.to_string()
    });
    if public_url.is_none()
        && server.public_host.is_none()
        && server.api_listen.ip().is_unspecified()
    {
        r.error(
            span.clone(),
            "the gateway listens on all interfaces and has no `public_host`: set `public_url` \
             in `[sso]` to the https:// URL browsers use, so providers can redirect back to it",
        );
    }
    let lifetime = |r: &mut Reporter<'_>, value: &Option<S<String>>, key: &str, default| {
        value
            .as_ref()
            .and_then(|v| duration(r, v, key, MIN_SSO_LIFETIME, MAX_SSO_LIFETIME))
            .unwrap_or(default)
    };
    let session_lifetime = lifetime(
        r,
        &raw.session_lifetime,
        "session_lifetime",
        DEFAULT_SESSION_LIFETIME,
    );
    let token_lifetime = lifetime(
        r,
        &raw.token_lifetime,
        "token_lifetime",
        DEFAULT_SSO_TOKEN_LIFETIME,
    );
    let session_idle_timeout = match &raw.session_idle_timeout {
        None => DEFAULT_SESSION_IDLE.min(session_lifetime),
        Some(v) => duration(
            r,
            v,
            "session_idle_timeout",
            MIN_SESSION_IDLE,
            session_lifetime,
        )
        .unwrap_or(DEFAULT_SESSION_IDLE.min(session_lifetime)),
    };
    if raw.providers.is_empty() {
        r.error(
            span,
            "`[sso]` names no provider: add a `[[sso.provider]]` with `name`, `issuer` and \
             `client_id` (see docs/sso.md)",
        );
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for p in raw.providers {
        let name = p.name.get_ref().clone();
        if let Err(e) = check_object_name("provider name", &name) {
            r.error(p.name.span(), e.to_string());
        }
        if let Some(&first) = seen.get(&name) {
            let line = r.line_of(first);
            r.error(
                p.name.span(),
                format!("duplicate provider name `{name}` (first defined on line {line})"),
            );
        } else {
            seen.insert(name.clone(), p.name.span().start);
        }
        providers.push(provider(p, name, roles, r));
    }
    SsoConfig {
        public_url,
        session_lifetime,
        session_idle_timeout,
        token_lifetime,
        providers,
    }
}

/// Whether `host` (of an `http://` URL) is a loopback name, where plain HTTP
/// is acceptable (development providers such as the demo's).
fn is_loopback_host(host: &str) -> bool {
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn provider(
    p: RawSsoProvider,
    name: String,
    roles: &[RoleConfig],
    r: &mut Reporter<'_>,
) -> SsoProvider {
    let issuer = p.issuer.get_ref().clone();
    let (scheme_ok, host) = match issuer.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let ok = scheme == "https" || (scheme == "http" && is_loopback_host(host));
            (ok, host.to_string())
        }
        None => (false, String::new()),
    };
    if !scheme_ok || host.is_empty() || issuer.contains(['?', '#']) {
        r.error(
            p.issuer.span(),
            "`issuer` must be the provider's `https://` issuer URL, exactly as in its ID tokens \
             (plain `http://` only on 127.0.0.1, localhost or [::1])",
        );
    }
    if p.client_id.get_ref().trim().is_empty() {
        r.error(p.client_id.span(), "`client_id` cannot be empty");
    }
    let client_secret = secret_ref(
        r,
        SecretKeys {
            env: p.client_secret_env,
            file: p.client_secret_file,
            inline: p.client_secret,
            env_key: "client_secret_env",
            file_key: "client_secret_file",
            inline_key: "client_secret",
        },
    );
    let scopes = match p.scopes {
        None => DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for s in &list {
                let scope = s.get_ref();
                if scope.is_empty() || scope.contains(|c: char| c.is_whitespace() || c == '"') {
                    r.error(s.span(), format!("`{scope}` is not a scope name"));
                } else if !out.contains(scope) {
                    out.push(scope.clone());
                }
            }
            if !out.iter().any(|s| s == "openid") {
                let span = list.first().map_or(p.name.span(), |s| s.span());
                r.error(
                    span,
                    "`scopes` must include `openid`: without it the provider issues no ID token",
                );
            }
            out
        }
    };
    let claim =
        |r: &mut Reporter<'_>, value: Option<S<String>>, key: &str, default: &str| match value {
            None => default.to_string(),
            Some(v) => {
                if v.get_ref().trim().is_empty() {
                    r.error(v.span(), format!("`{key}` cannot be empty"));
                }
                v.into_inner()
            }
        };
    let username_claim = claim(
        r,
        p.username_claim,
        "username_claim",
        DEFAULT_USERNAME_CLAIM,
    );
    let groups_claim = claim(r, p.groups_claim, "groups_claim", DEFAULT_GROUPS_CLAIM);
    let declared: BTreeSet<&str> = roles.iter().map(|role| role.name.as_str()).collect();
    let mut role_map = BTreeMap::new();
    for (group, mapped) in p.role_map {
        if group.get_ref().trim().is_empty() {
            r.error(group.span(), "a `role_map` group name cannot be empty");
        }
        if mapped.is_empty() {
            r.error(
                group.span(),
                format!(
                    "group `{}` maps to no role: give at least one, or remove it",
                    group.get_ref()
                ),
            );
        }
        let mut set = BTreeSet::new();
        for role in mapped {
            let n = role.get_ref();
            if n != ADMIN_ROLE && !declared.contains(n.as_str()) {
                let mut known: Vec<&str> = vec![ADMIN_ROLE];
                known.extend(declared.iter().copied());
                r.error(
                    role.span(),
                    format!("unknown role `{n}` (roles: {})", known.join(", ")),
                );
            }
            set.insert(role.into_inner());
        }
        role_map.insert(group.into_inner(), set);
    }
    if role_map.is_empty() {
        r.error(
            p.name.span(),
            format!(
                "provider `{name}` has no `role_map`: every sign-in would be refused (no group \
                 maps to a role); add `[sso.provider.role_map]` with `\"GROUP\" = [\"ROLE\"]`"
            ),
        );
    }
    let mut allowed_email_domains = BTreeSet::new();
    for d in p.allowed_email_domains {
        let domain = d.get_ref().trim().to_ascii_lowercase();
        let ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !ok {
            r.error(
                d.span(),
                format!(
                    "`{}` is not an email domain such as `example.com` (no `@`, no wildcard)",
                    d.get_ref()
                ),
            );
        }
        allowed_email_domains.insert(domain);
    }
    SsoProvider {
        display_name: p.display_name.unwrap_or_else(|| name.clone()),
        name,
        issuer,
        client_id: p.client_id.into_inner(),
        client_secret,
        scopes,
        username_claim,
        groups_claim,
        role_map,
        allowed_email_domains,
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    const ROLES: &str = "[[role]]\nname = 'dev'\n[[role]]\nname = 'lead'\n";

    fn parse(sso: &str) -> Result<Config, String> {
        Config::parse(&format!("{ROLES}{sso}"), "p.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_provider_with_defaults() {
        let c = parse(
            "[sso]\n[[sso.provider]]\nname = 'okta'\nissuer = 'https://example.okta.com'\n\
             client_id = 'abc'\nclient_secret_env = 'OKTA_SECRET'\n\
             allowed_email_domains = ['Example.COM']\n\
             [sso.provider.role_map]\neng = ['dev']\n'eng leads' = ['dev', 'lead']\n",
        )
        .unwrap();
        let sso = c.sso.unwrap();
        assert_eq!(sso.session_lifetime.as_secs(), 12 * 3600);
        assert_eq!(sso.session_idle_timeout.as_secs(), 3600);
        assert_eq!(sso.token_lifetime.as_secs(), 12 * 3600);
        let p = sso.provider("okta").unwrap();
        assert_eq!(p.scopes, ["openid", "email", "profile"]);
        assert_eq!(p.username_claim, "email");
        assert_eq!(p.groups_claim, "groups");
        assert_eq!(p.roles_for(["eng leads", "eng", "other"]), ["dev", "lead"]);
        assert!(p.roles_for(["other"]).is_empty());
        assert!(p.email_domain_allowed("a@example.com"));
        assert!(p.email_domain_allowed("a@EXAMPLE.com"));
        assert!(!p.email_domain_allowed("a@evil.example.com"));
        assert!(!p.email_domain_allowed("a@example.com.evil.org"));
        assert!(!p.email_domain_allowed("example.com"));
        assert!(p.needs_verified_email());
    }

    #[test]
    fn mistakes_are_located() {
        let err = parse(
            "[sso]\nsession_idle_timeout = '2d'\nsession_lifetime = '1d'\n\
             [[sso.provider]]\nname = 'okta'\nissuer = 'http://idp.example.com'\n\
             client_id = ''\nclient_secret = 'inline'\nscopes = ['email']\n\
             allowed_email_domains = ['@example.com']\n\
             [sso.provider.role_map]\neng = ['ops']\nnone = []\n",
        )
        .unwrap_err();
        for needle in [
            "p.toml:6:24: `session_idle_timeout` must be between 1m and 1day",
            "p.toml:10:10: `issuer` must be the provider's `https://` issuer URL",
            "p.toml:11:13: `client_id` cannot be empty",
            "p.toml:12:17: inline `client_secret` is refused",
            "p.toml:13:11: `scopes` must include `openid`",
            "p.toml:14:26: `@example.com` is not an email domain",
            "p.toml:16:8: unknown role `ops` (roles: admin, dev, lead)",
            "p.toml:17:1: group `none` maps to no role",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
    }

    #[test]
    fn a_provider_needs_a_role_map_and_sso_a_provider() {
        let err = parse(
            "[sso]\n[[sso.provider]]\nname = 'kc'\nissuer = 'http://127.0.0.1:8080/realms/x'\n\
             client_id = 'periscope'\n",
        )
        .unwrap_err();
        assert!(err.contains("provider `kc` has no `role_map`"), "{err}");
        let err = parse("[sso]\n").unwrap_err();
        assert!(err.contains("`[sso]` names no provider"), "{err}");
        let err = Config::parse(
            &format!(
                "[server]\napi_listen = '0.0.0.0:8443'\n{ROLES}[sso]\n[[sso.provider]]\n\
                 name = 'a'\nissuer = 'https://a.example'\nclient_id = 'x'\n\
                 role_map = {{ g = ['dev'] }}\n"
            ),
            "p.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("set `public_url` in `[sso]`"), "{err}");
        let err = parse(
            "[sso]\n[[sso.provider]]\nname = 'a'\nissuer = 'https://a.example'\nclient_id = 'x'\n\
             role_map = { g = ['dev'] }\n[[sso.provider]]\nname = 'a'\n\
             issuer = 'https://b.example'\nclient_id = 'y'\nrole_map = { g = ['dev'] }\n",
        )
        .unwrap_err();
        assert!(
            err.contains("duplicate provider name `a` (first defined on line 7)"),
            "{err}"
        );
    }
}
