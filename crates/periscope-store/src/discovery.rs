//! Tags found by discovery (`periscope discover CONNECTION --apply`),
//! versioned per connection.
//!
//! Each apply writes the connection's whole tag set as a new version (the
//! previous set merged with the new tags), in the same transaction as its
//! audit events; the current set is the highest version. Only column paths
//! and entity or tag names are stored, never a sampled value.

use std::collections::BTreeMap;

use periscope_audit::{AuditTime, EventDraft};
use sqlx::any::AnyRow;

use crate::audit::append_in_tx;
use crate::error::{StoreError, is_unique_violation};
use crate::sql::{self, check_name};
use crate::store::Store;

/// One version of a connection's discovered tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredTagSet {
    /// The connection the tags belong to.
    pub connection: String,
    /// 1 for the first apply, then one more per apply.
    pub version: i64,
    /// `"schema.table.column"` → entity or tag name.
    pub tags: BTreeMap<String, String>,
    /// When it was applied.
    pub created_at: AuditTime,
    /// Who applied it.
    pub created_by: String,
}

impl Store {
    /// Stores `tags` merged over the connection's current set as its next
    /// version, with `audit` in the same transaction. Fails with
    /// [`StoreError::AlreadyExists`] when another apply took the same version
    /// at the same time (the caller may retry).
    pub async fn apply_discovered_tags(
        &self,
        connection: &str,
        tags: BTreeMap<String, String>,
        created_by: &str,
        created_at: AuditTime,
        audit: Vec<EventDraft>,
    ) -> Result<DiscoveredTagSet, StoreError> {
        check_name("connection", connection)?;
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(
            "SELECT connection, version, tags, created_at, created_by FROM discovered_tags \
             WHERE connection = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(connection.to_owned())
        .fetch_optional(&mut *tx.tx)
        .await?
        .as_ref()
        .map(tag_set_of)
        .transpose()?;
        let (version, mut merged) = match current {
            Some(set) => (set.version + 1, set.tags),
            None => (1, BTreeMap::new()),
        };
        merged.extend(tags);
        let json = serde_json::to_string(&merged)
            .map_err(|e| StoreError::corrupt("discovered tags", e))?;
        let inserted = sqlx::query(
            "INSERT INTO discovered_tags (connection, version, tags, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(connection.to_owned())
        .bind(version)
        .bind(json)
        .bind(created_at.as_str().to_owned())
        .bind(created_by.to_owned())
        .execute(&mut *tx.tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::already_exists(
                    "discovered tags version",
                    format!("{connection} v{version}"),
                ));
            }
            Err(err) => return Err(err.into()),
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(DiscoveredTagSet {
            connection: connection.to_owned(),
            version,
            tags: merged,
            created_at,
            created_by: created_by.to_owned(),
        })
    }

    /// The current (highest) version of every connection's discovered tags,
    /// by connection name.
    pub async fn current_discovered_tags(&self) -> Result<Vec<DiscoveredTagSet>, StoreError> {
        sqlx::query(
            "SELECT d.connection, d.version, d.tags, d.created_at, d.created_by \
             FROM discovered_tags d \
             WHERE d.version = (SELECT MAX(v.version) FROM discovered_tags v \
                                WHERE v.connection = d.connection) \
             ORDER BY d.connection",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(tag_set_of)
        .collect()
    }

    /// Every version of one connection's discovered tags, newest first.
    pub async fn discovered_tag_history(
        &self,
        connection: &str,
    ) -> Result<Vec<DiscoveredTagSet>, StoreError> {
        sqlx::query(
            "SELECT connection, version, tags, created_at, created_by FROM discovered_tags \
             WHERE connection = $1 ORDER BY version DESC",
        )
        .bind(connection.to_owned())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(tag_set_of)
        .collect()
    }
}

fn tag_set_of(row: &AnyRow) -> Result<DiscoveredTagSet, StoreError> {
    let connection = sql::text(row, "connection")?;
    let version = sqlx::Row::try_get::<i64, _>(row, "version")?;
    let what = |field: &str| format!("discovered tags {connection} v{version} {field}");
    Ok(DiscoveredTagSet {
        tags: serde_json::from_str(&sql::text(row, "tags")?)
            .map_err(|e| StoreError::corrupt(what("tags"), e))?,
        created_at: sql::time(&sql::text(row, "created_at")?, || what("created_at"))?,
        created_by: sql::text(row, "created_by")?,
        version,
        connection,
    })
}
