//! Requests, approvals and grants on both backends, driven by the policy's pure
//! workflow functions as the gateway drives them.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{TestDb, TestResult};
use periscope_policy::{
    ApprovalOutcome, Grant, Identity, Opened, Request, RequestPlan, RequestStatus, Shield,
    apply_approval, cancel_request, deny_request,
};
use periscope_store::{AuditTime, EventDraft, GrantFilter, RequestFilter, StoreError};
use time::OffsetDateTime;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_928_400 + secs).unwrap()
}

fn audit(secs: i64, actor: &str, action: &str, target: &str) -> Vec<EventDraft> {
    let time = AuditTime::from_datetime(at(secs)).unwrap();
    vec![EventDraft::new(time, actor, action, target)]
}

fn who(name: &str, roles: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        roles: roles.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>(),
    }
}

/// Alice asks for `write` on pg-prod for an hour; `approvals` leads must agree.
fn plan(approvals: u32) -> RequestPlan {
    RequestPlan {
        requester: "alice".into(),
        connection: "pg-prod".into(),
        lifts: vec![Shield::Write],
        duration: Duration::from_secs(3600),
        reason: "INC-4411: refund stuck".into(),
        role: "dev".into(),
        approvals_required: approvals,
        approver_roles: vec!["lead".into()],
        break_glass: false,
        created_at: at(0),
        pending_until: at(600),
    }
}

fn pending(id: &str, approvals: u32) -> Request {
    match plan(approvals).open(id) {
        Opened::Pending(request) => request,
        Opened::Granted { .. } => panic!("a request needing approvals starts pending"),
    }
}

async fn approvals_grant_atomically(db: TestDb) -> TestResult {
    let store = &db.store;
    let request = pending("req_1", 2);
    store
        .create_request(&request, None, audit(0, "alice", "request.create", "req_1"))
        .await?;
    let dup = store
        .create_request(&request, None, vec![])
        .await
        .unwrap_err();
    assert_eq!(dup.to_string(), "request req_1 already exists");

    // First approval: still pending.
    let bob = who("bob", &["lead"]);
    let ApprovalOutcome::Pending { request: after, .. } = apply_approval(&request, &bob, at(10))?
    else {
        panic!("one of two approvals leaves it pending");
    };
    store
        .update_request(
            &request,
            &after,
            None,
            audit(10, "bob", "request.approve", "req_1"),
        )
        .await?;
    let stored = store.get_request("req_1").await?;
    assert_eq!(stored, after);

    // Bob again, through a stale read (another replica): refused by the database.
    let again = {
        let mut twice = after.clone();
        twice.approvals.push(twice.approvals[0].clone());
        twice
    };
    let err = store
        .update_request(&after, &again, None, vec![])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "approval by bob of request req_1 already exists"
    );

    // Second approval grants; request, grant and audit commit together.
    let carol = who("carol", &["lead"]);
    let ApprovalOutcome::Granted {
        request: approved,
        grant,
    } = apply_approval(&stored, &carol, at(20))?
    else {
        panic!("the second approval grants");
    };
    let grant = grant.into_grant("gr_1");
    let mut events = audit(20, "carol", "request.approve", "req_1");
    events.extend(audit(20, "periscope", "grant.start", "gr_1"));
    store
        .update_request(&stored, &approved, Some(&grant), events)
        .await?;
    assert_eq!(
        store.get_request("req_1").await?.status,
        RequestStatus::Approved
    );
    assert_eq!(store.get_grant("gr_1").await?, grant);
    assert_eq!(
        store.active_grants(at(30), Some("alice")).await?,
        vec![grant.clone()]
    );
    assert!(store.active_grants(at(30), Some("bob")).await?.is_empty());
    assert!(
        store.active_grants(at(3620), None).await?.is_empty(),
        "expired by time"
    );

    // A late denial, computed from a stale read, names what happened.
    let late = deny_request(
        &stored,
        &who("dave", &["lead"]),
        "not during the freeze",
        at(25),
    )?;
    let err = store
        .update_request(&stored, &late, None, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "request req_1 is approved, so it cannot be denied"
    );

    let actions: Vec<String> = store
        .audit_tail(10)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "request.create",
            "request.approve",
            "request.approve",
            "grant.start"
        ]
    );
    Ok(())
}

async fn concurrent_approvals_conflict(db: TestDb) -> TestResult {
    let store = &db.store;
    let request = pending("req_2", 2);
    store.create_request(&request, None, vec![]).await?;
    let replica = db.replica().await;
    let from_bob = match apply_approval(&request, &who("bob", &["lead"]), at(5))? {
        ApprovalOutcome::Pending { request, .. } => request,
        other => panic!("{other:?}"),
    };
    let from_carol = match apply_approval(&request, &who("carol", &["lead"]), at(5))? {
        ApprovalOutcome::Pending { request, .. } => request,
        other => panic!("{other:?}"),
    };
    let (a, b) = tokio::join!(
        store.update_request(
            &request,
            &from_bob,
            None,
            audit(5, "bob", "request.approve", "req_2")
        ),
        replica.update_request(
            &request,
            &from_carol,
            None,
            audit(5, "carol", "request.approve", "req_2")
        ),
    );
    let outcomes = [a, b];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let loser = outcomes.into_iter().find_map(Result::err).unwrap();
    assert!(matches!(loser, StoreError::Conflict { .. }), "{loser:?}");
    // The loser's approval and audit were rolled back with it.
    assert_eq!(store.get_request("req_2").await?.approvals.len(), 1);
    assert_eq!(store.audit_head().await?.seq, 1);
    Ok(())
}

async fn immediate_grant_deny_cancel_and_lists(db: TestDb) -> TestResult {
    let store = &db.store;
    let Opened::Granted { request, grant } = plan(0).open("req_0") else {
        panic!("no approvals needed: granted at once");
    };
    let grant = grant.into_grant("gr_0");
    store.create_request(&request, Some(&grant), vec![]).await?;
    let missing_grant = store
        .create_request(&request, None, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(missing_grant, StoreError::Invalid(_)),
        "{missing_grant:?}"
    );

    let to_deny = pending("req_d", 1);
    store.create_request(&to_deny, None, vec![]).await?;
    let denied = deny_request(&to_deny, &who("bob", &["lead"]), "not now", at(3))?;
    store
        .update_request(&to_deny, &denied, None, vec![])
        .await?;

    let to_cancel = pending("req_c", 1);
    store.create_request(&to_cancel, None, vec![]).await?;
    let cancelled = cancel_request(&to_cancel, &who("alice", &["dev"]), at(4))?;
    store
        .update_request(&to_cancel, &cancelled, None, vec![])
        .await?;

    let mut open = pending("req_p", 1);
    open.requester = "erin".into();
    store.create_request(&open, None, vec![]).await?;

    let statuses = |list: Vec<Request>| {
        list.into_iter()
            .map(|r| (r.id, r.status))
            .collect::<Vec<_>>()
    };
    let inbox = store
        .list_requests(&RequestFilter {
            status: Some(RequestStatus::Pending),
            ..RequestFilter::default()
        })
        .await?;
    assert_eq!(
        statuses(inbox),
        [("req_p".to_string(), RequestStatus::Pending)]
    );
    let alices = store
        .list_requests(&RequestFilter {
            requester: Some("alice".into()),
            ..RequestFilter::default()
        })
        .await?;
    assert_eq!(alices.len(), 3);
    let everything = store.list_requests(&RequestFilter::default()).await?;
    assert_eq!(everything.len(), 4);
    assert_eq!(
        store.get_request("req_d").await?.decision_reason.as_deref(),
        Some("not now")
    );
    assert!(matches!(
        store.get_request("nope").await,
        Err(StoreError::NotFound { .. })
    ));

    let grants = store.list_grants(&GrantFilter::default()).await?;
    assert_eq!(grants, vec![grant]);
    Ok(())
}

async fn pending_requests_expire_once(db: TestDb) -> TestResult {
    let store = &db.store;
    for i in 0..5 {
        let mut request = pending(&format!("req_{i}"), 1);
        request.pending_until = at(100 + i);
        store.create_request(&request, None, vec![]).await?;
    }
    let replica = db.replica().await;
    let each = |r: &Request| audit(200, "periscope", "request.expire", &r.id);
    let (a, b) = tokio::join!(
        store.expire_pending_requests(at(103), each),
        replica.expire_pending_requests(at(103), each),
    );
    let mut ids: Vec<String> = a?.into_iter().chain(b?).map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, ["req_0", "req_1", "req_2", "req_3"]);
    assert_eq!(store.audit_head().await?.seq, 4, "each expiry audited once");
    assert_eq!(
        store.get_request("req_0").await?.status,
        RequestStatus::Expired
    );
    assert_eq!(
        store.get_request("req_4").await?.status,
        RequestStatus::Pending
    );
    Ok(())
}

async fn grants_end_once(db: TestDb) -> TestResult {
    let store = &db.store;
    let mut grants = Vec::new();
    for i in 0..6 {
        let Opened::Granted { request, grant } = plan(0).open(format!("req_{i}")) else {
            panic!("granted at once");
        };
        let mut grant: Grant = grant.into_grant(format!("gr_{i}"));
        grant.expires_at = at(100 + i);
        store.create_request(&request, Some(&grant), vec![]).await?;
        grants.push(grant);
    }

    // Revocation: once, with its audit, and only while in force.
    assert!(
        store
            .revoke_grant(
                "gr_5",
                "bob",
                at(50),
                audit(50, "bob", "grant.revoke", "gr_5")
            )
            .await?
    );
    assert!(
        !store
            .revoke_grant(
                "gr_5",
                "bob",
                at(51),
                audit(51, "bob", "grant.revoke", "gr_5")
            )
            .await?
    );
    let revoked = store.get_grant("gr_5").await?;
    assert_eq!(
        (revoked.revoked_at, revoked.revoked_by.as_deref()),
        (Some(at(50)), Some("bob"))
    );
    assert_eq!(store.active_grants(at(52), None).await?.len(), 5);
    assert!(matches!(
        store.revoke_grant("nope", "bob", at(50), vec![]).await,
        Err(StoreError::NotFound { .. })
    ));

    // Two replicas sweep at once: each due grant expires exactly once.
    let replica = db.replica().await;
    let each = |g: &Grant| audit(200, "periscope", "grant.expire", &g.id);
    let (a, b) = tokio::join!(
        store.expire_due_grants(at(103), each),
        replica.expire_due_grants(at(103), each),
    );
    let mut ids: Vec<String> = a?.into_iter().chain(b?).map(|g| g.id).collect();
    ids.sort();
    assert_eq!(ids, ["gr_0", "gr_1", "gr_2", "gr_3"]);
    // One revoke + four expiries.
    assert_eq!(store.audit_head().await?.seq, 5);
    assert!(store.expire_due_grants(at(103), each).await?.is_empty());
    assert!(
        !store.revoke_grant("gr_0", "bob", at(104), vec![]).await?,
        "an expired grant cannot be revoked"
    );
    let active: Vec<String> = store
        .active_grants(at(103), None)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(active, ["gr_4"]);
    Ok(())
}

both_backends!(
    approvals_grant_atomically,
    concurrent_approvals_conflict,
    immediate_grant_deny_cancel_and_lists,
    pending_requests_expire_once,
    grants_end_once,
);
