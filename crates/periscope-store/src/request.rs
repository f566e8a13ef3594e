//! Access requests, their approvals, and the grants they produce.
//!
//! The workflow rules live in `periscope-policy` as pure functions (`apply_approval`,
//! `deny_request`, `revoke_grant`...): the gateway reads the current object, lets
//! the policy compute the next one, and hands both to the store. The store writes
//! the change, its grant and its audit events in one transaction, but only if the
//! object is still as the caller read it; otherwise it answers
//! [`StoreError::Conflict`] (retry) or [`StoreError::InvalidState`] (someone decided
//! first). So two approvers, or two replicas, can never both win.

use periscope_audit::{AuditTime, EventDraft};
use periscope_policy::{Grant, Request, RequestStatus};
use sqlx::Row;
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use crate::audit::append_in_tx;
use crate::error::{StoreError, is_unique_violation};
use crate::sql::{self, Sql, check_name};
use crate::store::{Store, WriteTx};

/// Filters for [`Store::list_requests`]; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// Only requests in this status (e.g. pending, for the approvers' inbox).
    pub status: Option<RequestStatus>,
    /// Only this requester's.
    pub requester: Option<String>,
    /// Only for this connection.
    pub connection: Option<String>,
    /// Most requests returned (newest first); 0 means 100.
    pub limit: u32,
}

/// Filters for [`Store::list_grants`]; `None` matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// Only grants in force at this instant (started, not expired, not revoked).
    pub active_at: Option<OffsetDateTime>,
    /// Only this identity's.
    pub identity: Option<String>,
    /// Only for this connection.
    pub connection: Option<String>,
    /// Most grants returned (newest first); 0 means 100.
    pub limit: u32,
}

const REQUEST_COLUMNS: &str = "id, body";
const GRANT_COLUMNS: &str = "id, state, body";

impl Store {
    /// Stores a new request (as returned by the policy's `RequestPlan::open`), with
    /// its grant when the role needed no approval, and their audit events.
    pub async fn create_request(
        &self,
        request: &Request,
        grant: Option<&Grant>,
        audit: Vec<EventDraft>,
    ) -> Result<(), StoreError> {
        check_name("request id", &request.id)?;
        match (request.status, grant) {
            (RequestStatus::Pending, None) => {}
            (RequestStatus::Approved, Some(grant)) => check_grant_of(request, grant)?,
            (status, grant) => {
                return Err(StoreError::Invalid(format!(
                    "a new request is stored pending without a grant, or approved with one; \
                     request {} is {status} {} a grant",
                    request.id,
                    if grant.is_some() { "with" } else { "without" }
                )));
            }
        }
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO requests (id, requester, connection, status, approvals_count, \
             created_at, pending_until, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(request.id.clone())
        .bind(request.requester.clone())
        .bind(request.connection.clone())
        .bind(request.status.name())
        .bind(approvals_count(request))
        .bind(text_time(request.created_at)?)
        .bind(text_time(request.pending_until)?)
        .bind(to_json(request)?)
        .execute(&mut *tx.tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::already_exists("request", request.id.clone()));
            }
            Err(err) => return Err(err.into()),
        }
        insert_approvals(&mut tx, request, 0).await?;
        if let Some(grant) = grant {
            insert_grant(&mut tx, grant).await?;
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await
    }

    /// One request by id.
    pub async fn get_request(&self, id: &str) -> Result<Request, StoreError> {
        let row = sqlx::query("SELECT id, body FROM requests WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("request", id))?;
        request_of(&row)
    }

    /// Requests matching `filter`, newest first.
    pub async fn list_requests(&self, filter: &RequestFilter) -> Result<Vec<Request>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(REQUEST_COLUMNS).push(" FROM requests WHERE 1 = 1");
        if let Some(status) = filter.status {
            sql.push(" AND status = ").bind(status.name().to_owned());
        }
        if let Some(requester) = &filter.requester {
            sql.push(" AND requester = ").bind(requester.clone());
        }
        if let Some(connection) = &filter.connection {
            sql.push(" AND connection = ").bind(connection.clone());
        }
        sql.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(limit(filter.limit));
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(request_of)
            .collect()
    }

    /// Records a pending request's next state, computed by the policy from `before`
    /// (as read from the store): one more approval (`apply_approval`), with the
    /// grant when it was the last one needed; a denial (`deny_request`); a
    /// cancellation (`cancel_request`). Written with `audit` only if the request is
    /// still exactly as `before` (status and approvals).
    ///
    /// Errors: [`StoreError::AlreadyExists`] if an approver approves twice (even
    /// through two replicas), [`StoreError::InvalidState`] if the request was decided
    /// meanwhile, [`StoreError::Conflict`] if another approval landed first (reload
    /// and apply the policy again).
    pub async fn update_request(
        &self,
        before: &Request,
        after: &Request,
        grant: Option<&Grant>,
        audit: Vec<EventDraft>,
    ) -> Result<(), StoreError> {
        if before.id != after.id {
            return Err(StoreError::Invalid(format!(
                "request {} cannot be updated with the content of request {}",
                before.id, after.id
            )));
        }
        if before.status != RequestStatus::Pending {
            return Err(invalid_request_state(
                &before.id,
                before.status,
                after.status,
            ));
        }
        match (after.status, grant) {
            (RequestStatus::Approved, Some(grant)) => check_grant_of(after, grant)?,
            (RequestStatus::Approved, None) => {
                return Err(StoreError::Invalid(format!(
                    "request {} is approved without a grant",
                    after.id
                )));
            }
            (_, Some(_)) => {
                return Err(StoreError::Invalid(format!(
                    "request {} is {} but a grant was given",
                    after.id, after.status
                )));
            }
            (_, None) => {}
        }
        if after.approvals.len() < before.approvals.len()
            || after.approvals[..before.approvals.len()] != before.approvals[..]
        {
            return Err(StoreError::Invalid(format!(
                "request {}: approvals can only be added, never changed or removed",
                after.id
            )));
        }
        let mut tx = self.begin_write().await?;
        // Approvals first: the primary key refuses a second one by the same approver
        // with a precise error, before the request row is even looked at.
        insert_approvals(&mut tx, after, before.approvals.len()).await?;
        let updated = sqlx::query(
            "UPDATE requests SET status = $1, approvals_count = $2, body = $3 \
             WHERE id = $4 AND status = 'pending' AND approvals_count = $5",
        )
        .bind(after.status.name())
        .bind(approvals_count(after))
        .bind(to_json(after)?)
        .bind(after.id.clone())
        .bind(approvals_count(before))
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if updated != 1 {
            let current: Option<String> =
                sqlx::query_scalar("SELECT status FROM requests WHERE id = $1")
                    .bind(after.id.clone())
                    .fetch_optional(&mut *tx.tx)
                    .await?;
            return Err(match current.as_deref().map(str::parse::<RequestStatus>) {
                None => StoreError::not_found("request", after.id.clone()),
                Some(Ok(RequestStatus::Pending)) => StoreError::Conflict {
                    kind: "request",
                    id: after.id.clone(),
                },
                Some(Ok(status)) => invalid_request_state(&after.id, status, after.status),
                Some(Err(e)) => StoreError::corrupt(format!("request {} status", after.id), e),
            });
        }
        if let Some(grant) = grant {
            insert_grant(&mut tx, grant).await?;
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await
    }

    /// Expires every pending request whose deadline is at or before `now`, exactly
    /// once even when replicas sweep at the same time; `audit_for_each` gives the
    /// events recording each one. Returns the requests this call expired.
    pub async fn expire_pending_requests(
        &self,
        now: OffsetDateTime,
        audit_for_each: impl Fn(&Request) -> Vec<EventDraft>,
    ) -> Result<Vec<Request>, StoreError> {
        let mut tx = self.begin_write().await?;
        let due = sqlx::query(
            "SELECT id, body FROM requests WHERE status = 'pending' AND pending_until <= $1 \
             ORDER BY pending_until, id",
        )
        .bind(text_time(now)?)
        .fetch_all(&mut *tx.tx)
        .await?;
        let mut expired = Vec::new();
        let mut audit = Vec::new();
        for row in &due {
            let request = request_of(row)?;
            let Some(after) = periscope_policy::expire_request(&request, now) else {
                continue;
            };
            // Conditional: a replica sweeping concurrently changes no row twice.
            let changed = sqlx::query(
                "UPDATE requests SET status = $1, body = $2 WHERE id = $3 AND status = 'pending'",
            )
            .bind(after.status.name())
            .bind(to_json(&after)?)
            .bind(after.id.clone())
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
            if changed == 1 {
                audit.extend(audit_for_each(&after));
                expired.push(after);
            }
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(expired)
    }

    /// One grant by id.
    pub async fn get_grant(&self, id: &str) -> Result<Grant, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::not_found("grant", id))?;
        grant_of(&row)
    }

    /// Grants in force at `now` (started, not expired, not revoked), optionally for
    /// one identity: what the gateway loads to decide a session's shields.
    pub async fn active_grants(
        &self,
        now: OffsetDateTime,
        identity: Option<&str>,
    ) -> Result<Vec<Grant>, StoreError> {
        self.list_grants(&GrantFilter {
            active_at: Some(now),
            identity: identity.map(str::to_owned),
            limit: u32::MAX,
            ..GrantFilter::default()
        })
        .await
    }

    /// Grants matching `filter`, newest first.
    pub async fn list_grants(&self, filter: &GrantFilter) -> Result<Vec<Grant>, StoreError> {
        let mut sql = Sql::new("SELECT ");
        sql.push(GRANT_COLUMNS).push(" FROM grants WHERE 1 = 1");
        if let Some(now) = filter.active_at {
            let now = text_time(now)?;
            sql.push(" AND state = 'active' AND starts_at <= ")
                .bind(now.clone());
            sql.push(" AND expires_at > ").bind(now);
        }
        if let Some(identity) = &filter.identity {
            sql.push(" AND identity = ").bind(identity.clone());
        }
        if let Some(connection) = &filter.connection {
            sql.push(" AND connection = ").bind(connection.clone());
        }
        sql.push(" ORDER BY starts_at DESC, id DESC LIMIT ")
            .bind(limit(filter.limit));
        sql.query()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(grant_of)
            .collect()
    }

    /// Revokes a grant at `now` on behalf of `by` (the policy's `revoke_grant` has
    /// checked that `by` may), with its audit events. Returns whether it was in
    /// force: `false` (nothing written, no audit) if it had already expired or been
    /// revoked, e.g. by another admin a moment earlier.
    pub async fn revoke_grant(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
        audit: Vec<EventDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"
        )))
        .bind(id.to_owned())
        .fetch_optional(&mut *tx.tx)
        .await?
        .ok_or_else(|| StoreError::not_found("grant", id))?;
        let mut grant = grant_of(&row)?;
        grant.revoked_at = Some(now);
        grant.revoked_by = Some(by.to_owned());
        let now_text = text_time(now)?;
        let changed = sqlx::query(
            "UPDATE grants SET state = 'revoked', revoked_at = $1, body = $2 \
             WHERE id = $3 AND state = 'active' AND expires_at > $1",
        )
        .bind(now_text)
        .bind(to_json(&grant)?)
        .bind(id.to_owned())
        .execute(&mut *tx.tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Ok(false);
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks every active grant whose `expires_at` is at or before `now` as
    /// expired, exactly once even when several replicas sweep at the same time (the
    /// update is conditional on the grant still being active, and a concurrent
    /// sweeper waits for the row, then finds it changed). `audit_for_each` gives the
    /// events recording each expiry; they commit with it. Returns the grants this
    /// call expired, so the caller can end the sessions that depended on them.
    pub async fn expire_due_grants(
        &self,
        now: OffsetDateTime,
        audit_for_each: impl Fn(&Grant) -> Vec<EventDraft>,
    ) -> Result<Vec<Grant>, StoreError> {
        let now_text = text_time(now)?;
        let mut tx = self.begin_write().await?;
        let due = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE state = 'active' AND expires_at <= $1 \
             ORDER BY expires_at, id"
        )))
        .bind(now_text.clone())
        .fetch_all(&mut *tx.tx)
        .await?;
        let mut expired = Vec::new();
        let mut audit = Vec::new();
        for row in &due {
            let grant = grant_of(row)?;
            let changed = sqlx::query(
                "UPDATE grants SET state = 'expired' WHERE id = $1 AND state = 'active'",
            )
            .bind(grant.id.clone())
            .execute(&mut *tx.tx)
            .await?
            .rows_affected();
            if changed == 1 {
                audit.extend(audit_for_each(&grant));
                expired.push(grant);
            }
        }
        append_in_tx(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(expired)
    }
}

async fn insert_approvals(
    tx: &mut WriteTx,
    request: &Request,
    skip: usize,
) -> Result<(), StoreError> {
    for approval in request.approvals.iter().skip(skip) {
        let inserted = sqlx::query(
            "INSERT INTO request_approvals (request_id, approver, role, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(request.id.clone())
        .bind(approval.approver.clone())
        .bind(approval.role.clone())
        .bind(text_time(approval.at)?)
        .execute(&mut *tx.tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => {
                return Err(StoreError::already_exists(
                    "approval",
                    format!("by {} of request {}", approval.approver, request.id),
                ));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

async fn insert_grant(tx: &mut WriteTx, grant: &Grant) -> Result<(), StoreError> {
    check_name("grant id", &grant.id)?;
    let inserted = sqlx::query(
        "INSERT INTO grants (id, request_id, identity, connection, state, starts_at, \
         expires_at, revoked_at, body) VALUES ($1, $2, $3, $4, 'active', $5, $6, NULL, $7)",
    )
    .bind(grant.id.clone())
    .bind(grant.request_id.clone())
    .bind(grant.identity.clone())
    .bind(grant.connection.clone())
    .bind(text_time(grant.starts_at)?)
    .bind(text_time(grant.expires_at)?)
    .bind(to_json(grant)?)
    .execute(&mut *tx.tx)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => {
            Err(StoreError::already_exists("grant", grant.id.clone()))
        }
        Err(err) => Err(err.into()),
    }
}

fn check_grant_of(request: &Request, grant: &Grant) -> Result<(), StoreError> {
    if grant.request_id != request.id {
        return Err(StoreError::Invalid(format!(
            "grant {} belongs to request {}, not {}",
            grant.id, grant.request_id, request.id
        )));
    }
    Ok(())
}

fn invalid_request_state(id: &str, from: RequestStatus, to: RequestStatus) -> StoreError {
    StoreError::InvalidState {
        kind: "request",
        id: id.to_owned(),
        from: from.name().to_owned(),
        to: to.name().to_owned(),
    }
}

fn approvals_count(request: &Request) -> i64 {
    i64::try_from(request.approvals.len()).unwrap_or(i64::MAX)
}

fn limit(limit: u32) -> i64 {
    if limit == 0 { 100 } else { i64::from(limit) }
}

/// A policy time as the fixed-width text the columns hold.
fn text_time(time: OffsetDateTime) -> Result<String, StoreError> {
    AuditTime::from_datetime(time)
        .map(|t| t.as_str().to_owned())
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn request_of(row: &AnyRow) -> Result<Request, StoreError> {
    let id = sql::text(row, "id")?;
    serde_json::from_str(&sql::text(row, "body")?)
        .map_err(|e| StoreError::corrupt(format!("request {id}"), e))
}

fn grant_of(row: &AnyRow) -> Result<Grant, StoreError> {
    let id = sql::text(row, "id")?;
    let mut grant: Grant = serde_json::from_str(&sql::text(row, "body")?)
        .map_err(|e| StoreError::corrupt(format!("grant {id}"), e))?;
    // The state column is the lifecycle marker; the body's revocation fields are
    // written with it, so they agree. Nothing to merge, but check.
    let state: String = row.try_get("state")?;
    if (state == "revoked") != grant.revoked_at.is_some() {
        return Err(StoreError::corrupt(
            format!("grant {id}"),
            format!("state {state} disagrees with its revocation time"),
        ));
    }
    grant.id = id;
    Ok(grant)
}
