//! Browser sessions: what the console's cookie stands for.
//!
//! The cookie carries `<session_id>.<secret>`; this table keeps the public id,
//! the gateway's keyed hash of the secret, the identity, and the two clocks
//! that end a session (an absolute expiry and an idle timeout). Sessions live
//! in the store so every replica sees them and an administrator can end them.
//! An ended session keeps its row (with why it ended) until it is purged.

use periscope_audit::{AuditTime, EventDraft};
use sqlx::any::AnyRow;

use crate::audit::append_in_tx;
use crate::error::StoreError;
use crate::identity::Identity;
use crate::sql::{self, check_name};
use crate::store::Store;
use crate::token::LAST_USED_GRANULARITY_SECS;

/// What [`Store::create_web_session`] needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebSession {
    /// Public id (`ws_...`).
    pub session_id: String,
    /// The gateway's keyed hash of the cookie's secret.
    pub secret_hash: Vec<u8>,
    /// Whose session it is.
    pub identity: String,
    /// How it signed in (`sso:okta`, `token`).
    pub method: String,
    /// Creation time.
    pub created_at: AuditTime,
    /// Absolute end.
    pub expires_at: AuditTime,
    /// Idle timeout, in seconds.
    pub idle_secs: i64,
}

/// A browser session as the lookup path needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSessionRecord {
    /// Public id.
    pub session_id: String,
    /// Stored keyed hash of the secret, to compare in constant time.
    pub secret_hash: Vec<u8>,
    /// The owner as stored now (roles and disabled state included).
    pub identity: Identity,
    /// How it signed in.
    pub method: String,
    /// Creation time.
    pub created_at: AuditTime,
    /// Last recorded use (to the minute).
    pub last_seen_at: AuditTime,
    /// Absolute end.
    pub expires_at: AuditTime,
    /// Idle timeout, in seconds.
    pub idle_secs: i64,
    /// When it ended, if it did.
    pub ended_at: Option<AuditTime>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

impl std::fmt::Debug for WebSessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSessionRecord")
            .field("session_id", &self.session_id)
            .field("identity", &self.identity.name)
            .field("method", &self.method)
            .field("expires_at", &self.expires_at)
            .field("ended_at", &self.ended_at)
            .finish_non_exhaustive()
    }
}

impl WebSessionRecord {
    /// When it ends if unused from now on: its last use plus the idle
    /// timeout, or its absolute expiry, whichever comes first.
    pub fn idle_deadline(&self) -> Option<AuditTime> {
        let micros = self
            .last_seen_at
            .unix_micros()
            .checked_add(self.idle_secs.checked_mul(1_000_000)?)?;
        AuditTime::from_unix_micros(micros).ok()
    }

    /// Whether [`Store::touch_web_session`] would write now.
    pub fn needs_touch(&self, now: &AuditTime) -> bool {
        now.unix_micros() - self.last_seen_at.unix_micros()
            >= LAST_USED_GRANULARITY_SECS * 1_000_000
    }
}

const RECORD_QUERY: &str = "SELECT w.session_id, w.secret_hash, w.method, w.created_at, \
     w.last_seen_at, w.expires_at, w.idle_secs, w.ended_at, w.end_reason, \
     i.name, i.roles, i.created_at AS identity_created_at, i.disabled_at \
     FROM web_sessions w JOIN identities i ON i.name = w.identity WHERE w.session_id = $1";

impl Store {
    /// Stores a new browser session with its audit events.
    /// [`StoreError::NotFound`] if the identity does not exist.
    pub async fn create_web_session(
        &self,
        session: NewWebSession,
        audit: Vec<EventDraft>,
    ) -> Result<(), StoreError> {
        check_name("session id", &session.session_id)?;
        if session.secret_hash.is_empty() || session.idle_secs <= 0 {
            return Err(StoreError::Invalid(format!(
                "web session {} has an empty secret hash or no idle timeout",
                session.session_id
            )));
        }
        let mut tx = self.begin_write().await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT name FROM identities WHERE name = $1")
                .bind(session.identity.clone())
                .fetch_optional(&mut *tx.tx)
                .await?;
        if owner.is_none() {
            return Err(StoreError::not_found("identity", session.identity));
        }
        sqlx::query(
            "INSERT INTO web_sessions (session_id, secret_hash, identity, method, created_at, \
             last_seen_at, expires_at, idle_secs, ended_at, end_reason) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $7, NULL, NULL)",
        )
        .bind(session.session_id)
        .bind(hex::encode(&session.secret_hash))
        .bind(session.identity)
        .bind(session.method)
        .bind(session.created_at.as_str().to_owned())
        .bind(session.expires_at.as_str().to_owned())
        .bind(session.idle_secs)
        .execute(&mut *tx.tx)
        .await?;
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A browser session by its public id, with its owner as stored now.
    pub async fn find_web_session(
        &self,
        session_id: &str,
    ) -> Result<Option<WebSessionRecord>, StoreError> {
        sqlx::query(RECORD_QUERY)
            .bind(session_id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_of)
            .transpose()
    }

    /// Records a use at `now` unless one was recorded within the last minute;
    /// returns whether it wrote.
    pub async fn touch_web_session(
        &self,
        session_id: &str,
        now: &AuditTime,
    ) -> Result<bool, StoreError> {
        let Some(threshold) = now
            .unix_micros()
            .checked_sub(LAST_USED_GRANULARITY_SECS * 1_000_000)
            .and_then(|m| AuditTime::from_unix_micros(m).ok())
        else {
            return Ok(false);
        };
        let mut tx = self.begin_write().await?;
        let touched = sqlx::query(
            "UPDATE web_sessions SET last_seen_at = $1 WHERE session_id = $2 \
             AND ended_at IS NULL AND last_seen_at <= $3",
        )
        .bind(now.as_str().to_owned())
        .bind(session_id.to_owned())
        .bind(threshold.as_str().to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(touched)
    }

    /// Ends one session at `at` for `reason`, with its audit events. Returns
    /// `false`, writing nothing, if it had already ended or does not exist.
    pub async fn end_web_session(
        &self,
        session_id: &str,
        at: &AuditTime,
        reason: &str,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query(
            "UPDATE web_sessions SET ended_at = $1, end_reason = $2 \
             WHERE session_id = $3 AND ended_at IS NULL",
        )
        .bind(at.as_str().to_owned())
        .bind(reason.to_owned())
        .bind(session_id.to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected()
            == 1;
        if !ended {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The ids of `identity`'s live (not ended) browser sessions.
    pub async fn live_web_sessions(&self, identity: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT session_id FROM web_sessions WHERE identity = $1 AND ended_at IS NULL \
             ORDER BY created_at, session_id",
        )
        .bind(identity.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Deletes sessions that ended, or expired, before `before`; returns how
    /// many.
    pub async fn purge_web_sessions(&self, before: &AuditTime) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM web_sessions WHERE (ended_at IS NOT NULL AND ended_at < $1) \
             OR expires_at < $1",
        )
        .bind(before.as_str().to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

fn record_of(row: &AnyRow) -> Result<WebSessionRecord, StoreError> {
    let session_id = sql::text(row, "session_id")?;
    let what = |field: &str| format!("web session {session_id} {field}");
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
        name,
    };
    Ok(WebSessionRecord {
        secret_hash: hex::decode(sql::text(row, "secret_hash")?)
            .map_err(|e| StoreError::corrupt(what("secret_hash"), e))?,
        method: sql::text(row, "method")?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        last_seen_at: sql::time(&sql::text(row, "last_seen_at")?, || what("last_seen_at"))?,
        expires_at: sql::time(&sql::text(row, "expires_at")?, || what("expires_at"))?,
        idle_secs: sqlx::Row::try_get::<i64, _>(row, "idle_secs")?,
        ended_at: sql::opt_time(sql::opt_text(row, "ended_at")?, || what("ended_at"))?,
        end_reason: sql::opt_text(row, "end_reason")?,
        identity,
        session_id,
    })
}
