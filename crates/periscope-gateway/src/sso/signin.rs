//! From verified claims to an identity: the email and domain checks, the
//! name, the roles, the just-in-time identity, and their audit events.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use periscope_audit::{EventDraft, actions};
use periscope_policy::SsoProvider;
use periscope_shield::grants::CutNotice;
use periscope_store::{Identity, SsoSignIn, SsoSignInOutcome, SsoSubject};
use serde_json::{Value, json};

use super::Refusal;
use super::oidc::Claims;
use crate::gateway::Gateway;

/// Longest identity name a sign-in may create.
pub(crate) const MAX_SSO_NAME: usize = 128;

/// How a sign-in reached the gateway, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// A browser, ending in a browser session.
    Web,
    /// `periscope login --sso`, through a browser.
    Cli,
    /// `periscope login --sso --device`.
    Device,
}

impl Via {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Via::Web => "web",
            Via::Cli => "cli",
            Via::Device => "device",
        }
    }
}

/// What the claims say, before any policy.
#[derive(Debug)]
struct Presented {
    subject: String,
    email: Option<String>,
    email_verified: Option<bool>,
    username: Option<String>,
    groups: Option<Vec<String>>,
}

fn presented(provider: &SsoProvider, claims: &Claims) -> Presented {
    let extra = &claims.additional_claims().claims;
    let string_claim = |name: &str| extra.get(name).and_then(Value::as_str).map(str::to_string);
    let subject = claims.subject().as_str().to_string();
    let email = claims.email().map(|e| e.as_str().to_string());
    let username = match provider.username_claim.as_str() {
        "sub" => Some(subject.clone()),
        "email" => email.clone(),
        "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_string()),
        other => string_claim(other),
    };
    let groups = extra.get(&provider.groups_claim).map(|v| match v {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    });
    Presented {
        subject,
        email_verified: claims.email_verified(),
        email,
        username,
        groups,
    }
}

/// The identity name a username claim's value gives: lowercase letters,
/// digits and `._@+-`, starting with a letter or digit; `None` if the value
/// cannot be one (it is refused rather than mangled into someone else's).
pub(crate) fn identity_name(value: &str) -> Option<String> {
    let name = value.trim().to_lowercase();
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._@+-".contains(c));
    (first_ok && rest_ok && name.len() <= MAX_SSO_NAME).then_some(name)
}

/// Checks the claims against the provider's rules; on success the name,
/// groups and roles.
fn admit(
    provider: &SsoProvider,
    p: &Presented,
) -> Result<(String, Vec<String>, Vec<String>), Refusal> {
    if provider.needs_verified_email() {
        let Some(email) = &p.email else {
            return Err(Refusal::denied(
                "missing_email",
                format!(
                    "the provider `{}` sent no email address; ask for the `email` scope",
                    provider.name
                ),
            ));
        };
        if p.email_verified != Some(true) {
            return Err(Refusal::denied(
                "email_not_verified",
                format!("the provider has not verified the address {email}"),
            ));
        }
        if !provider.email_domain_allowed(email) {
            let allowed: Vec<&str> = provider
                .allowed_email_domains
                .iter()
                .map(String::as_str)
                .collect();
            return Err(Refusal::denied(
                "domain_not_allowed",
                format!(
                    "the address {email} is not in an allowed domain ({}); sign in with your \
                     work account",
                    allowed.join(", ")
                ),
            ));
        }
    }
    let Some(value) = &p.username else {
        return Err(Refusal::denied(
            "missing_username",
            format!(
                "the ID token carries no `{}` claim to name you by",
                provider.username_claim
            ),
        ));
    };
    let Some(name) = identity_name(value) else {
        return Err(Refusal::denied(
            "bad_username",
            format!(
                "the `{}` claim ({value:?}) cannot be an identity name (letters, digits and \
                 `._@+-`, at most {MAX_SSO_NAME} characters)",
                provider.username_claim
            ),
        ));
    };
    let groups = p.groups.clone().unwrap_or_default();
    let roles = provider.roles_for(groups.iter().map(String::as_str));
    Ok((name, groups, roles))
}

impl Gateway {
    /// Signs in the person the verified `claims` describe: checks, then the
    /// just-in-time identity and its recomputed roles, audited together.
    /// A refusal is audited here too.
    pub(crate) async fn sso_sign_in(
        &self,
        provider: &SsoProvider,
        claims: &Claims,
        via: Via,
        client: Option<SocketAddr>,
    ) -> Result<Identity, Refusal> {
        let p = presented(provider, claims);
        let (name, groups, roles) = match admit(provider, &p) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                let actor = p.username.as_deref().and_then(identity_name);
                self.sso_refused(
                    &refusal,
                    Some(&provider.name),
                    via,
                    actor.as_deref(),
                    client,
                )
                .await;
                return Err(refusal);
            }
        };
        let no_role = roles.is_empty();
        let no_role_refusal = || {
            let why = match &p.groups {
                None => format!("the ID token carries no `{}` claim", provider.groups_claim),
                Some(g) if g.is_empty() => "you are in no group".to_string(),
                Some(g) => format!("your groups ({}) map to none", g.join(", ")),
            };
            Refusal::denied(
                "no_role",
                format!(
                    "no role for you at this gateway: {why}; ask an administrator to add your \
                     group to `role_map` of provider `{}`",
                    provider.name
                ),
            )
        };
        let sign_in = SsoSignIn {
            name: name.clone(),
            subject: SsoSubject {
                provider: provider.name.clone(),
                issuer: provider.issuer.clone(),
                subject: p.subject.clone(),
            },
            groups: groups.clone(),
            roles: roles.clone(),
            create: !no_role,
            at: self.clock().audit_now(),
        };
        let events = |outcome: &SsoSignInOutcome| -> Vec<EventDraft> {
            let base = json!({
                "provider": provider.name,
                "via": via.as_str(),
                "subject": p.subject,
                "groups": groups,
                "client_addr": client.map(|a| a.to_string()),
            });
            let with = |extra: Value| {
                let mut details = base.clone();
                if let (Value::Object(d), Value::Object(e)) = (&mut details, extra) {
                    d.extend(e);
                }
                details
            };
            let refused = |actor: &str, refusal: &Refusal| {
                self.draft(actor, actions::AUTH_SSO_REFUSED, &provider.name)
                    .with_details(with(json!({
                        "reason": refusal.code(),
                        "detail": refusal.to_string(),
                    })))
            };
            match outcome {
                SsoSignInOutcome::Created(identity) => vec![
                    self.draft(
                        &identity.name,
                        actions::AUTH_SSO_IDENTITY_CREATE,
                        &identity.name,
                    )
                    .with_details(with(json!({ "roles": identity.roles }))),
                    self.draft(&identity.name, actions::AUTH_SSO_ROLES, &identity.name)
                        .with_details(with(json!({ "before": [], "after": identity.roles }))),
                    self.draft(&identity.name, actions::AUTH_SSO_LOGIN, &provider.name)
                        .with_details(with(json!({ "roles": identity.roles, "created": true }))),
                ],
                SsoSignInOutcome::Updated {
                    identity,
                    roles_before,
                } => {
                    let mut out = Vec::new();
                    if *roles_before != identity.roles {
                        out.push(
                            self.draft(&identity.name, actions::AUTH_SSO_ROLES, &identity.name)
                                .with_details(with(json!({
                                    "before": roles_before,
                                    "after": identity.roles,
                                }))),
                        );
                    }
                    if no_role {
                        out.push(refused(&identity.name, &no_role_refusal()));
                    } else {
                        out.push(
                            self.draft(&identity.name, actions::AUTH_SSO_LOGIN, &provider.name)
                                .with_details(with(json!({
                                    "roles": identity.roles,
                                    "created": false,
                                }))),
                        );
                    }
                    out
                }
                SsoSignInOutcome::Missing => vec![refused(&name, &no_role_refusal())],
                SsoSignInOutcome::Disabled(identity) => vec![refused(
                    &identity.name,
                    &Refusal::denied("disabled", "disabled"),
                )],
                SsoSignInOutcome::NameTaken { .. } => {
                    vec![refused(&name, &Refusal::denied("name_taken", "name taken"))]
                }
            }
        };
        let started = std::time::Instant::now();
        let outcome = match self.store().sso_sign_in(sign_in, events).await {
            Ok(outcome) => outcome,
            Err(e) => {
                let refusal = Refusal::Store(e);
                tracing::error!(error = %refusal, "a sign-in could not be recorded");
                return Err(refusal);
            }
        };
        self.count_audit(1, started);
        match outcome {
            SsoSignInOutcome::Created(identity) => {
                tracing::info!(identity = %identity.name, provider = %provider.name, via = via.as_str(), "identity created by single sign-on");
                Ok(identity)
            }
            SsoSignInOutcome::Updated {
                identity,
                roles_before,
            } => {
                let kept: BTreeSet<&String> = identity.roles.iter().collect();
                let lost: Vec<&String> =
                    roles_before.iter().filter(|r| !kept.contains(r)).collect();
                if !lost.is_empty() {
                    let lost: Vec<String> = lost.into_iter().cloned().collect();
                    self.cut_sessions_of(
                        &identity.name,
                        CutNotice {
                            message: format!(
                                "your roles changed at sign-in ({} removed): this session ran \
                                 under them and was closed",
                                lost.join(", ")
                            ),
                            detail: Some(
                                "roles are recomputed from your groups at every sign-in".into(),
                            ),
                            hint: Some("open a new session".into()),
                        },
                    );
                }
                if no_role {
                    return Err(no_role_refusal());
                }
                Ok(identity)
            }
            SsoSignInOutcome::Missing => Err(no_role_refusal()),
            SsoSignInOutcome::Disabled(identity) => Err(Refusal::denied(
                "disabled",
                format!(
                    "identity `{}` is disabled at this gateway; ask an administrator",
                    identity.name
                ),
            )),
            SsoSignInOutcome::NameTaken { holder_provider } => {
                let holder = match holder_provider {
                    None => "a local identity".to_string(),
                    Some(p) => format!("another person of provider `{p}`"),
                };
                Err(Refusal::denied(
                    "name_taken",
                    format!("the name `{name}` already belongs to {holder}; ask an administrator"),
                ))
            }
        }
    }

    /// Audits a refused sign-in (`auth.sso.refused`), durably: the caller
    /// answers once it is recorded. Never with a code or token.
    pub(crate) async fn sso_refused(
        &self,
        refusal: &Refusal,
        provider: Option<&str>,
        via: Via,
        actor: Option<&str>,
        client: Option<SocketAddr>,
    ) {
        if matches!(refusal, Refusal::Store(_)) {
            return;
        }
        let draft = self
            .draft(
                actor.unwrap_or("anonymous"),
                actions::AUTH_SSO_REFUSED,
                provider.unwrap_or(""),
            )
            .with_details(json!({
                "provider": provider,
                "via": via.as_str(),
                "reason": refusal.code(),
                "detail": refusal.to_string(),
                "client_addr": client.map(|a| a.to_string()),
            }));
        tracing::info!(
            reason = refusal.code(),
            provider,
            via = via.as_str(),
            "sign-in refused"
        );
        if let Err(e) = self.audit(draft).await {
            tracing::error!(error = %e, "could not audit a refused sign-in");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_checked() {
        assert_eq!(
            identity_name("Alice@Example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(identity_name("bob.smith").as_deref(), Some("bob.smith"));
        for bad in ["", " ", "-x", "a b", "ali\u{0441}e", "a;b", "a\"b"] {
            assert_eq!(identity_name(bad), None, "{bad:?}");
        }
        assert_eq!(identity_name(&"a".repeat(129)), None);
    }
}
