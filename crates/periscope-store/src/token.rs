//! API tokens and `periscope connect` session secrets.
//!
//! Both are one table: a secret the gateway hands out once, of which the store keeps
//! only the gateway's keyed hash. They differ by [`TokenScope`]: an API token
//! authenticates its identity anywhere, a connect secret only for one connection and
//! usually for minutes. The gateway compares hashes in constant time; the store only
//! finds the row by its public token id.

use periscope_audit::{AuditTime, EventDraft};
use sqlx::any::AnyRow;

use crate::audit::append_in_tx;
use crate::error::{StoreError, is_unique_violation};
use crate::identity::Identity;
use crate::sql::{self, check_name};
use crate::store::{Store, WriteTx};

/// How rarely `last_used_at` is refreshed: a busy token is written at most once a
/// minute, not once per request.
pub const LAST_USED_GRANULARITY_SECS: i64 = 60;

/// What a token may be used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenScope {
    /// The identity's API and CLI token.
    Api,
    /// A short-lived secret minted by `periscope connect`, valid only for this
    /// connection name.
    Connect {
        /// The connection (`pg-prod`) it opens.
        connection: String,
    },
}

/// What [`Store::create_token`] needs. Built by the gateway after it has generated
/// the secret and hashed it with its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewToken {
    /// Public, unique id (the part of the token that is not secret).
    pub token_id: String,
    /// Owner.
    pub identity: String,
    /// What it may be used for.
    pub scope: TokenScope,
    /// The gateway's keyed hash of the secret, never the secret itself.
    pub secret_hash: Vec<u8>,
    /// Free text shown in listings (`laptop`, `ci`...).
    pub description: String,
    /// Creation time.
    pub created_at: AuditTime,
    /// When it stops working; `None` for never (API tokens only, by policy).
    pub expires_at: Option<AuditTime>,
}

/// A token as the authentication path needs it: with its hash and its owner.
/// Never hand this to API responses; use [`TokenSummary`].
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id.
    pub token_id: String,
    /// The owner, as stored now (roles and disabled state included).
    pub identity: Identity,
    /// What it may be used for.
    pub scope: TokenScope,
    /// The stored keyed hash, to compare in constant time.
    pub secret_hash: Vec<u8>,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: AuditTime,
    /// Expiry, if any.
    pub expires_at: Option<AuditTime>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<AuditTime>,
    /// Last recorded use (to the minute, see [`LAST_USED_GRANULARITY_SECS`]).
    pub last_used_at: Option<AuditTime>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not the secret, but it is all an offline guesser needs: keep
        // it out of logs.
        f.debug_struct("TokenRecord")
            .field("token_id", &self.token_id)
            .field("identity", &self.identity.name)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl TokenRecord {
    /// Whether the token may authenticate at `now`: not revoked, not expired, owner
    /// enabled. (The secret itself is the gateway's to check.)
    pub fn is_usable(&self, now: &AuditTime) -> bool {
        self.revoked_at.is_none()
            && self.identity.is_enabled()
            && self.expires_at.as_ref().is_none_or(|expiry| now < expiry)
    }

    /// Whether [`Store::touch_token`] would write: the last recorded use is older
    /// than a minute. Lets the hot path skip the call (and the write) entirely.
    pub fn needs_touch(&self, now: &AuditTime) -> bool {
        match (&self.last_used_at, touch_threshold(now)) {
            (None, _) => true,
            (Some(last), Some(threshold)) => *last <= threshold,
            (Some(_), None) => false,
        }
    }

    /// The same token without its hash, for API layers.
    pub fn summary(&self) -> TokenSummary {
        TokenSummary {
            token_id: self.token_id.clone(),
            identity: self.identity.name.clone(),
            scope: self.scope.clone(),
            description: self.description.clone(),
            created_at: self.created_at.clone(),
            expires_at: self.expires_at.clone(),
            revoked_at: self.revoked_at.clone(),
            last_used_at: self.last_used_at.clone(),
        }
    }
}

/// A token as listings show it: everything but the hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSummary {
    /// Public id.
    pub token_id: String,
    /// Owner's name.
    pub identity: String,
    /// What it may be used for.
    pub scope: TokenScope,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: AuditTime,
    /// Expiry, if any.
    pub expires_at: Option<AuditTime>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<AuditTime>,
    /// Last recorded use.
    pub last_used_at: Option<AuditTime>,
}

const RECORD_QUERY: &str = "SELECT t.token_id, t.scope, t.connection, t.secret_hash, \
     t.description, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, \
     i.name, i.roles, i.created_at AS identity_created_at, i.disabled_at \
     FROM tokens t JOIN identities i ON i.name = t.identity WHERE t.token_id = $1";

const SUMMARY_COLUMNS: &str = "token_id, identity, scope, connection, description, \
     created_at, expires_at, revoked_at, last_used_at";

impl Store {
    /// Stores a new token with its audit events. [`StoreError::NotFound`] if the
    /// identity does not exist, [`StoreError::AlreadyExists`] if the id is taken.
    pub async fn create_token(
        &self,
        token: NewToken,
        audit: Vec<EventDraft>,
    ) -> Result<TokenSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        let summary = insert_token(&mut tx, token).await?;
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Looks a token up by id for authentication: `None` if there is no such token
    /// (the caller answers exactly as for a wrong secret).
    pub async fn find_token(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        sqlx::query(RECORD_QUERY)
            .bind(token_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_of)
            .transpose()
    }

    /// An identity's tokens, newest first, without hashes.
    pub async fn list_tokens(&self, identity: &str) -> Result<Vec<TokenSummary>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SUMMARY_COLUMNS} FROM tokens WHERE identity = $1 \
             ORDER BY created_at DESC, token_id"
        )))
        .bind(identity.to_owned())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(summary_of)
        .collect()
    }

    /// Revokes a token at `at`. Returns `false`, writing nothing, if it was already
    /// revoked; [`StoreError::NotFound`] if it does not exist.
    pub async fn revoke_token(
        &self,
        token_id: &str,
        at: &AuditTime,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let revoked = sqlx::query(
            "UPDATE tokens SET revoked_at = $1 WHERE token_id = $2 AND revoked_at IS NULL",
        )
        .bind(at.as_str().to_owned())
        .bind(token_id.to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected()
            == 1;
        if !revoked {
            let exists: Option<String> =
                sqlx::query_scalar("SELECT token_id FROM tokens WHERE token_id = $1")
                    .bind(token_id.to_owned())
                    .fetch_optional(&mut *tx.tx)
                    .await?;
            return match exists {
                Some(_) => Ok(false),
                None => Err(StoreError::not_found("token", token_id)),
            };
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a use at `now` if the last recorded one is older than a minute;
    /// returns whether it wrote. Check [`TokenRecord::needs_touch`] first to skip
    /// the round trip on the hot path.
    pub async fn touch_token(&self, token_id: &str, now: &AuditTime) -> Result<bool, StoreError> {
        let Some(threshold) = touch_threshold(now) else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let touched = sqlx::query(
            "UPDATE tokens SET last_used_at = $1 WHERE token_id = $2 \
             AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(now.as_str().to_owned())
        .bind(token_id.to_owned())
        .bind(threshold.as_str().to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(touched)
    }

    /// Deletes connect secrets that expired before `before` (they are useless and
    /// pile up, one per `periscope connect`); API tokens are kept for the record.
    /// Returns how many were deleted.
    pub async fn purge_expired_connect_secrets(
        &self,
        before: &AuditTime,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM tokens WHERE scope = 'connect' AND expires_at IS NOT NULL \
             AND expires_at < $1",
        )
        .bind(before.as_str().to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

pub(crate) async fn insert_token(
    tx: &mut WriteTx,
    token: NewToken,
) -> Result<TokenSummary, StoreError> {
    check_name("token id", &token.token_id)?;
    if token.secret_hash.is_empty() {
        return Err(StoreError::Invalid(format!(
            "token {} has an empty secret hash",
            token.token_id
        )));
    }
    let (scope, connection) = match &token.scope {
        TokenScope::Api => ("api", None),
        TokenScope::Connect { connection } => {
            check_name("connection", connection)?;
            ("connect", Some(connection.clone()))
        }
    };
    let owner: Option<String> = sqlx::query_scalar("SELECT name FROM identities WHERE name = $1")
        .bind(token.identity.clone())
        .fetch_optional(&mut *tx.tx)
        .await?;
    if owner.is_none() {
        return Err(StoreError::not_found("identity", token.identity));
    }
    let inserted = sqlx::query(
        "INSERT INTO tokens (token_id, identity, scope, connection, secret_hash, description, \
         created_at, expires_at, revoked_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
    )
    .bind(token.token_id.clone())
    .bind(token.identity.clone())
    .bind(scope)
    .bind(connection)
    .bind(hex::encode(&token.secret_hash))
    .bind(token.description.clone())
    .bind(token.created_at.as_str().to_owned())
    .bind(token.expires_at.as_ref().map(|t| t.as_str().to_owned()))
    .execute(&mut *tx.tx)
    .await;
    match inserted {
        Ok(_) => Ok(TokenSummary {
            token_id: token.token_id,
            identity: token.identity,
            scope: token.scope,
            description: token.description,
            created_at: token.created_at,
            expires_at: token.expires_at,
            revoked_at: None,
            last_used_at: None,
        }),
        Err(err) if is_unique_violation(&err) => {
            Err(StoreError::already_exists("token", token.token_id))
        }
        Err(err) => Err(err.into()),
    }
}

/// `now` minus the touch granularity; `None` only near year 0.
fn touch_threshold(now: &AuditTime) -> Option<AuditTime> {
    let micros = now
        .unix_micros()
        .checked_sub(LAST_USED_GRANULARITY_SECS * 1_000_000)?;
    AuditTime::from_unix_micros(micros).ok()
}

fn scope_of(row: &AnyRow, token_id: &str) -> Result<TokenScope, StoreError> {
    match (
        sql::text(row, "scope")?.as_str(),
        sql::opt_text(row, "connection")?,
    ) {
        ("api", None) => Ok(TokenScope::Api),
        ("connect", Some(connection)) => Ok(TokenScope::Connect { connection }),
        (other, _) => Err(StoreError::corrupt(
            format!("token {token_id} scope"),
            format!("unknown scope {other:?} or connection mismatch"),
        )),
    }
}

fn summary_of(row: &AnyRow) -> Result<TokenSummary, StoreError> {
    let token_id = sql::text(row, "token_id")?;
    let what = |field: &str| format!("token {token_id} {field}");
    Ok(TokenSummary {
        identity: sql::text(row, "identity")?,
        scope: scope_of(row, &token_id)?,
        description: sql::text(row, "description")?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        expires_at: sql::opt_time(sql::opt_text(row, "expires_at")?, || what("expires_at"))?,
        revoked_at: sql::opt_time(sql::opt_text(row, "revoked_at")?, || what("revoked_at"))?,
        last_used_at: sql::opt_time(sql::opt_text(row, "last_used_at")?, || what("last_used_at"))?,
        token_id,
    })
}

fn record_of(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    let token_id = sql::text(row, "token_id")?;
    let what = |field: &str| format!("token {token_id} {field}");
    let name = sql::text(row, "name")?;
    let identity = Identity {
        roles: serde_json::from_str(&sql::text(row, "roles")?)
            .map_err(|e| StoreError::corrupt(format!("identity {name} roles"), e))?,
        created_at: sql::time(&sql::text(row, "identity_created_at")?, || {
            format!("identity {name} created_at")
        })?,
        disabled_at: sql::opt_time(sql::opt_text(row, "disabled_at")?, || {
            format!("identity {name} disabled_at")
        })?,
        name: name.clone(),
    };
    Ok(TokenRecord {
        scope: scope_of(row, &token_id)?,
        secret_hash: hex::decode(sql::text(row, "secret_hash")?)
            .map_err(|e| StoreError::corrupt(what("secret_hash"), e))?,
        description: sql::text(row, "description")?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        expires_at: sql::opt_time(sql::opt_text(row, "expires_at")?, || what("expires_at"))?,
        revoked_at: sql::opt_time(sql::opt_text(row, "revoked_at")?, || what("revoked_at"))?,
        last_used_at: sql::opt_time(sql::opt_text(row, "last_used_at")?, || what("last_used_at"))?,
        identity,
        token_id,
    })
}
