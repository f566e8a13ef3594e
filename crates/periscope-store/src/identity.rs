//! Identities (users and service accounts) and the one-time bootstrap of the first
//! admin.

use periscope_audit::{AuditTime, EventDraft};
use sqlx::any::AnyRow;

use crate::audit::append_in_tx;
use crate::error::{StoreError, is_unique_violation};
use crate::sql::{self, check_name};
use crate::store::{Store, WriteTx};
use crate::token::{NewToken, insert_token};

/// Meta key claimed by the first gateway that bootstraps the database.
const BOOTSTRAP_KEY: &str = "bootstrap_admin";

/// A user or service account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Unique name, as used in config, grants and audit records.
    pub name: String,
    /// Role names, in the order given; the policy resolves them.
    pub roles: Vec<String>,
    /// When it was created.
    pub created_at: AuditTime,
    /// When it was disabled; a disabled identity's tokens stop working.
    pub disabled_at: Option<AuditTime>,
}

impl Identity {
    /// Whether the identity may authenticate.
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// What [`Store::create_identity`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIdentity {
    /// Unique name: non-empty, no whitespace or control characters.
    pub name: String,
    /// Role names.
    pub roles: Vec<String>,
    /// Creation time, from the gateway's clock.
    pub created_at: AuditTime,
}

impl Store {
    /// Creates an identity together with its audit events. Fails with
    /// [`StoreError::AlreadyExists`] if the name is taken.
    pub async fn create_identity(
        &self,
        identity: NewIdentity,
        audit: Vec<EventDraft>,
    ) -> Result<Identity, StoreError> {
        let mut tx = self.begin_write().await?;
        let created = insert_identity(&mut tx, identity).await?;
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// One identity by name.
    pub async fn get_identity(&self, name: &str) -> Result<Identity, StoreError> {
        sqlx::query("SELECT name, roles, created_at, disabled_at FROM identities WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(identity_of)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("identity", name))
    }

    /// Every identity, by name.
    pub async fn list_identities(&self) -> Result<Vec<Identity>, StoreError> {
        sqlx::query("SELECT name, roles, created_at, disabled_at FROM identities ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(identity_of)
            .collect()
    }

    /// Disables an identity at `at`, ending its browser sessions. Returns
    /// `false`, writing nothing (not even the audit events), if it was already
    /// disabled.
    pub async fn disable_identity(
        &self,
        name: &str,
        at: &AuditTime,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        self.set_disabled(name, Some(at), audit).await
    }

    /// Enables a disabled identity again. Returns `false`, writing nothing, if it
    /// was enabled.
    pub async fn enable_identity(
        &self,
        name: &str,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        self.set_disabled(name, None, audit).await
    }

    /// Replaces an identity's roles.
    pub async fn update_identity_roles(
        &self,
        name: &str,
        roles: Vec<String>,
        audit: Vec<EventDraft>,
    ) -> Result<Identity, StoreError> {
        for role in &roles {
            check_name("role", role)?;
        }
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE identities SET roles = $1 WHERE name = $2 \
             RETURNING name, roles, created_at, disabled_at",
        )
        .bind(roles_json(&roles)?)
        .bind(name.to_owned())
        .fetch_optional(&mut *tx.tx)
        .await?
        .ok_or_else(|| StoreError::not_found("identity", name))?;
        let identity = identity_of(&row)?;
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(identity)
    }

    /// Creates the first admin and its token, exactly once per database, even when
    /// several replicas start at the same moment: the first transaction to claim the
    /// bootstrap marker does it, the others find it claimed. Returns whether this
    /// call did it (if not, the caller discards the token it prepared).
    pub async fn bootstrap_admin(
        &self,
        admin: NewIdentity,
        token: NewToken,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO periscope_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(BOOTSTRAP_KEY)
        .bind(admin.name.clone())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        insert_identity(&mut tx, admin).await?;
        insert_token(&mut tx, token).await?;
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether the bootstrap admin has been created, and its name.
    pub async fn bootstrap_admin_name(&self) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT value FROM periscope_meta WHERE key = $1")
            .bind(BOOTSTRAP_KEY)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from)
    }

    async fn set_disabled(
        &self,
        name: &str,
        at: Option<&AuditTime>,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        // The condition makes the change happen once: a second call matches no row.
        let statement = if at.is_some() {
            "UPDATE identities SET disabled_at = $1 WHERE name = $2 AND disabled_at IS NULL"
        } else {
            "UPDATE identities SET disabled_at = $1 WHERE name = $2 AND disabled_at IS NOT NULL"
        };
        let changed = sqlx::query(statement)
            .bind(at.map(|t| t.as_str().to_owned()))
            .bind(name.to_owned())
            .execute(&mut *tx.tx)
            .await?
            .rows_affected()
            == 1;
        if changed && let Some(at) = at {
            // A disabled identity's browser sessions end with it (lookups
            // also check the identity, so this is the record of it).
            sqlx::query(
                "UPDATE web_sessions SET ended_at = $1, end_reason = 'identity_disabled' \
                 WHERE identity = $2 AND ended_at IS NULL",
            )
            .bind(at.as_str().to_owned())
            .bind(name.to_owned())
            .execute(&mut *tx.tx)
            .await?;
        }
        if !changed {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT name FROM identities WHERE name = $1")
                    .bind(name.to_owned())
                    .fetch_optional(&mut *tx.tx)
                    .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(StoreError::not_found("identity", name)),
            };
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(crate) async fn insert_identity(
    tx: &mut WriteTx,
    identity: NewIdentity,
) -> Result<Identity, StoreError> {
    check_name("identity", &identity.name)?;
    for role in &identity.roles {
        check_name("role", role)?;
    }
    let inserted = sqlx::query(
        "INSERT INTO identities (name, roles, created_at, disabled_at) VALUES ($1, $2, $3, NULL)",
    )
    .bind(identity.name.clone())
    .bind(roles_json(&identity.roles)?)
    .bind(identity.created_at.as_str().to_owned())
    .execute(&mut *tx.tx)
    .await;
    match inserted {
        Ok(_) => Ok(Identity {
            name: identity.name,
            roles: identity.roles,
            created_at: identity.created_at,
            disabled_at: None,
        }),
        Err(err) if is_unique_violation(&err) => {
            Err(StoreError::already_exists("identity", identity.name))
        }
        Err(err) => Err(err.into()),
    }
}

fn roles_json(roles: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(roles).map_err(|e| StoreError::Invalid(format!("roles: {e}")))
}

pub(crate) fn identity_of(row: &AnyRow) -> Result<Identity, StoreError> {
    let name = sql::text(row, "name")?;
    let what = |field: &str| format!("identity {name} {field}");
    Ok(Identity {
        roles: serde_json::from_str(&sql::text(row, "roles")?)
            .map_err(|e| StoreError::corrupt(what("roles"), e))?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        disabled_at: sql::opt_time(sql::opt_text(row, "disabled_at")?, || what("disabled_at"))?,
        name,
    })
}

impl From<&Identity> for periscope_policy::Identity {
    /// The policy's view of an identity: its name and roles, for `decide()` and the
    /// request workflow rules.
    fn from(identity: &Identity) -> Self {
        periscope_policy::Identity {
            name: identity.name.clone(),
            roles: identity.roles.iter().cloned().collect(),
        }
    }
}
