//! Single sign-on: identities bound to a provider's subject, and sign-ins in
//! progress.
//!
//! An identity created by a sign-in is bound to `(issuer, subject)`: the
//! provider's stable key for the person. Its name (from the configured
//! username claim) is fixed at creation, so a changed email at the provider
//! does not rename it nor hand it to someone else, and a name already taken
//! (by a local identity or another subject) is never taken over.
//!
//! A sign-in in progress is a row keyed by the hash of a secret handle that
//! only the party continuing the flow holds (the OIDC `state`, a device code,
//! a one-time hand-off code); [`Store::take_sso_flow`] deletes it as it reads
//! it, so a replayed handle finds nothing.

use periscope_audit::{AuditTime, EventDraft};
use sqlx::any::AnyRow;

use crate::NewIdentity;
use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::identity::{Identity, identity_of, insert_identity};
use crate::sql::{self, check_name};
use crate::store::Store;

/// Who a provider says signed in: its stable key for the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSubject {
    /// The configured provider's name (`okta`).
    pub provider: String,
    /// The issuer URL (`iss`).
    pub issuer: String,
    /// The subject (`sub`), unique per issuer.
    pub subject: String,
}

/// A verified sign-in, as the gateway hands it to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoSignIn {
    /// The name a new identity gets (from the username claim).
    pub name: String,
    /// Who signed in.
    pub subject: SsoSubject,
    /// The groups the provider reported.
    pub groups: Vec<String>,
    /// The roles those groups map to now (may be empty).
    pub roles: Vec<String>,
    /// Create the identity when it does not exist yet (the gateway says no
    /// when the sign-in is refused anyway, so a refusal creates nothing).
    pub create: bool,
    /// When, by the gateway's clock.
    pub at: AuditTime,
}

/// What [`Store::sso_sign_in`] found or did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SsoSignInOutcome {
    /// A new identity was created with the sign-in's roles.
    Created(Identity),
    /// The identity bound to this subject now holds the sign-in's roles.
    Updated {
        /// The identity as it is now.
        identity: Identity,
        /// Its roles before this sign-in.
        roles_before: Vec<String>,
    },
    /// No identity is bound to the subject, and none was created.
    Missing,
    /// The identity bound to the subject is disabled: nothing changed.
    Disabled(Identity),
    /// The name is held by a local identity or another subject: nothing
    /// changed.
    NameTaken {
        /// Who holds it: `None` for a local identity, else that identity's
        /// provider.
        holder_provider: Option<String>,
    },
}

impl SsoSignInOutcome {
    /// The identity when the sign-in may go on (created or updated).
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            SsoSignInOutcome::Created(i) | SsoSignInOutcome::Updated { identity: i, .. } => Some(i),
            _ => None,
        }
    }
}

/// How an identity is bound to a provider, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoBinding {
    /// The identity.
    pub identity: String,
    /// Who it is at the provider.
    pub subject: SsoSubject,
    /// The groups of its last sign-in.
    pub groups: Vec<String>,
    /// Its last sign-in.
    pub last_sign_in_at: Option<AuditTime>,
}

/// What kind of sign-in a flow row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SsoFlowKind {
    /// A browser sign-in: the handle is the OIDC `state`.
    Web,
    /// `periscope login --sso` through a browser: the handle is the `state`.
    Cli,
    /// `periscope login --sso --device`: the handle is the device code.
    Device,
    /// A finished CLI sign-in waiting for the CLI to collect its token: the
    /// handle is the one-time code sent to the CLI's loopback address.
    Handoff,
}

impl SsoFlowKind {
    fn as_str(self) -> &'static str {
        match self {
            SsoFlowKind::Web => "web",
            SsoFlowKind::Cli => "cli",
            SsoFlowKind::Device => "device",
            SsoFlowKind::Handoff => "handoff",
        }
    }

    fn parse(text: &str) -> Option<SsoFlowKind> {
        Some(match text {
            "web" => SsoFlowKind::Web,
            "cli" => SsoFlowKind::Cli,
            "device" => SsoFlowKind::Device,
            "handoff" => SsoFlowKind::Handoff,
            _ => return None,
        })
    }
}

/// A sign-in in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoFlow {
    /// The keyed hash of the handle (never the handle).
    pub flow_id: String,
    /// What kind of sign-in.
    pub kind: SsoFlowKind,
    /// The provider's name.
    pub provider: String,
    /// The callback URL the provider was given (must be sent again with the
    /// code).
    pub redirect_uri: String,
    /// Web: the page to land on. CLI: the loopback URL to hand the result to.
    pub return_to: Option<String>,
    /// CLI and hand-off: the S256 challenge of the CLI's own verifier.
    pub cli_challenge: Option<String>,
    /// Device: the provider's polling interval, in seconds.
    pub poll_secs: Option<i64>,
    /// Hand-off: who signed in.
    pub identity: Option<String>,
    /// Creation time.
    pub created_at: AuditTime,
    /// After this the handle is worthless.
    pub expires_at: AuditTime,
}

const IDENTITY_COLUMNS: &str = "name, roles, created_at, disabled_at";
const FLOW_COLUMNS: &str = "flow_id, kind, provider, redirect_uri, return_to, cli_challenge, \
     poll_secs, identity, created_at, expires_at";

impl Store {
    /// Applies a verified sign-in in one transaction: finds the identity bound
    /// to the subject, or creates it (when `create` and the name is free),
    /// sets its roles and last seen groups, and commits the audit events that
    /// `audit` returns for the outcome (none for an outcome that changes
    /// nothing, if it so chooses).
    pub async fn sso_sign_in(
        &self,
        sign_in: SsoSignIn,
        audit: impl FnOnce(&SsoSignInOutcome) -> Vec<EventDraft>,
    ) -> Result<SsoSignInOutcome, StoreError> {
        check_name("identity", &sign_in.name)?;
        for role in &sign_in.roles {
            check_name("role", role)?;
        }
        let groups = serde_json::to_string(&sign_in.groups)
            .map_err(|e| StoreError::Invalid(format!("groups: {e}")))?;
        let roles = serde_json::to_string(&sign_in.roles)
            .map_err(|e| StoreError::Invalid(format!("roles: {e}")))?;
        let mut tx = self.begin_write().await?;
        let bound = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE sso_issuer = $1 AND sso_subject = $2"
        )))
        .bind(sign_in.subject.issuer.clone())
        .bind(sign_in.subject.subject.clone())
        .fetch_optional(&mut *tx.tx)
        .await?
        .as_ref()
        .map(identity_of)
        .transpose()?;
        let outcome = match bound {
            Some(identity) if !identity.is_enabled() => SsoSignInOutcome::Disabled(identity),
            Some(before) => {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE identities SET roles = $1, sso_groups = $2, last_sign_in_at = $3, \
                     sso_provider = $4 WHERE name = $5 RETURNING {IDENTITY_COLUMNS}"
                )))
                .bind(roles)
                .bind(groups)
                .bind(sign_in.at.as_str().to_owned())
                .bind(sign_in.subject.provider.clone())
                .bind(before.name.clone())
                .fetch_one(&mut *tx.tx)
                .await?;
                SsoSignInOutcome::Updated {
                    identity: identity_of(&row)?,
                    roles_before: before.roles,
                }
            }
            None => {
                let holder: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT sso_provider FROM identities WHERE name = $1")
                        .bind(sign_in.name.clone())
                        .fetch_optional(&mut *tx.tx)
                        .await?;
                match holder {
                    Some((holder_provider,)) => SsoSignInOutcome::NameTaken { holder_provider },
                    None if !sign_in.create => SsoSignInOutcome::Missing,
                    None => {
                        let created = insert_identity(
                            &mut tx,
                            NewIdentity {
                                name: sign_in.name.clone(),
                                roles: sign_in.roles.clone(),
                                created_at: sign_in.at.clone(),
                            },
                        )
                        .await?;
                        sqlx::query(
                            "UPDATE identities SET sso_provider = $1, sso_issuer = $2, \
                             sso_subject = $3, sso_groups = $4, last_sign_in_at = $5 \
                             WHERE name = $6",
                        )
                        .bind(sign_in.subject.provider.clone())
                        .bind(sign_in.subject.issuer.clone())
                        .bind(sign_in.subject.subject.clone())
                        .bind(groups)
                        .bind(sign_in.at.as_str().to_owned())
                        .bind(sign_in.name.clone())
                        .execute(&mut *tx.tx)
                        .await?;
                        SsoSignInOutcome::Created(created)
                    }
                }
            }
        };
        let events = audit(&outcome);
        if matches!(
            outcome,
            SsoSignInOutcome::Created(_) | SsoSignInOutcome::Updated { .. }
        ) || !events.is_empty()
        {
            append_in_tx(&mut tx, events).await?;
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// How `identity` is bound to a provider; `None` for a local identity.
    pub async fn sso_binding(&self, identity: &str) -> Result<Option<SsoBinding>, StoreError> {
        sqlx::query(
            "SELECT name, sso_provider, sso_issuer, sso_subject, sso_groups, last_sign_in_at \
             FROM identities WHERE name = $1 AND sso_subject IS NOT NULL",
        )
        .bind(identity.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(binding_of)
        .transpose()
    }

    /// Every identity bound to a provider, by name.
    pub async fn list_sso_bindings(&self) -> Result<Vec<SsoBinding>, StoreError> {
        sqlx::query(
            "SELECT name, sso_provider, sso_issuer, sso_subject, sso_groups, last_sign_in_at \
             FROM identities WHERE sso_subject IS NOT NULL ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(binding_of)
        .collect()
    }

    /// Records a sign-in in progress.
    pub async fn insert_sso_flow(&self, flow: &SsoFlow) -> Result<(), StoreError> {
        check_name("flow id", &flow.flow_id)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sso_flows ({FLOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        )))
        .bind(flow.flow_id.clone())
        .bind(flow.kind.as_str())
        .bind(flow.provider.clone())
        .bind(flow.redirect_uri.clone())
        .bind(flow.return_to.clone())
        .bind(flow.cli_challenge.clone())
        .bind(flow.poll_secs)
        .bind(flow.identity.clone())
        .bind(flow.created_at.as_str().to_owned())
        .bind(flow.expires_at.as_str().to_owned())
        .execute(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes the flow `flow_id` of `kind`: deletes it and returns it, so the
    /// same handle never works twice. `None` when there is none (never
    /// created, already taken, or purged). The caller checks the expiry.
    pub async fn take_sso_flow(
        &self,
        flow_id: &str,
        kind: SsoFlowKind,
    ) -> Result<Option<SsoFlow>, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM sso_flows WHERE flow_id = $1 AND kind = $2 RETURNING {FLOW_COLUMNS}"
        )))
        .bind(flow_id.to_owned())
        .bind(kind.as_str())
        .fetch_optional(&mut *tx.tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(flow_of).transpose()
    }

    /// Reads the flow `flow_id` of `kind` without taking it (a device flow is
    /// polled until the person approves).
    pub async fn get_sso_flow(
        &self,
        flow_id: &str,
        kind: SsoFlowKind,
    ) -> Result<Option<SsoFlow>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {FLOW_COLUMNS} FROM sso_flows WHERE flow_id = $1 AND kind = $2"
        )))
        .bind(flow_id.to_owned())
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(flow_of)
        .transpose()
    }

    /// Deletes flows that expired before `before`; returns how many.
    pub async fn purge_sso_flows(&self, before: &AuditTime) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM sso_flows WHERE expires_at < $1")
            .bind(before.as_str().to_owned())
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

fn binding_of(row: &AnyRow) -> Result<SsoBinding, StoreError> {
    let name = sql::text(row, "name")?;
    let what = |field: &str| format!("identity {name} {field}");
    let groups = match sql::opt_text(row, "sso_groups")? {
        None => Vec::new(),
        Some(text) => {
            serde_json::from_str(&text).map_err(|e| StoreError::corrupt(what("sso_groups"), e))?
        }
    };
    Ok(SsoBinding {
        subject: SsoSubject {
            provider: sql::opt_text(row, "sso_provider")?.unwrap_or_default(),
            issuer: sql::opt_text(row, "sso_issuer")?.unwrap_or_default(),
            subject: sql::opt_text(row, "sso_subject")?.unwrap_or_default(),
        },
        groups,
        last_sign_in_at: sql::opt_time(sql::opt_text(row, "last_sign_in_at")?, || {
            what("last_sign_in_at")
        })?,
        identity: name,
    })
}

fn flow_of(row: &AnyRow) -> Result<SsoFlow, StoreError> {
    let flow_id = sql::text(row, "flow_id")?;
    let what = |field: &str| format!("sso flow {field}");
    let kind_text = sql::text(row, "kind")?;
    let kind = SsoFlowKind::parse(&kind_text)
        .ok_or_else(|| StoreError::corrupt(what("kind"), format!("unknown kind {kind_text:?}")))?;
    Ok(SsoFlow {
        kind,
        provider: sql::text(row, "provider")?,
        redirect_uri: sql::text(row, "redirect_uri")?,
        return_to: sql::opt_text(row, "return_to")?,
        cli_challenge: sql::opt_text(row, "cli_challenge")?,
        poll_secs: sqlx::Row::try_get::<Option<i64>, _>(row, "poll_secs")?,
        identity: sql::opt_text(row, "identity")?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        expires_at: sql::time(&sql::text(row, "expires_at")?, || what("expires_at"))?,
        flow_id,
    })
}
