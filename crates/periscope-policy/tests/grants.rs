//! The grant workflow: request rules, approvals, denial, cancellation, expiry and
//! revocation, and the full request → approve → use → expire cycle.

use std::time::Duration;

use crate::common::*;
use periscope_policy::{
    ApprovalError, ApprovalOutcome, GrantStatus, Opened, Request, RequestError, RequestPlan,
    RequestStatus, RevokeError, Shield, apply_approval, cancel_request, check_reason, deny_request,
    expire_request, grant_is_active, revoke_grant, validate_request,
};
use periscope_redact::Entity;

const REASON: &str = "INC-4411: refund stuck";

fn plan(
    roles: &[&str],
    conn: &str,
    lifts: &[&str],
    duration: Duration,
) -> Result<RequestPlan, RequestError> {
    validate_request(
        &policy(),
        &who("alice", roles),
        conn,
        &shields(lifts),
        duration,
        REASON,
        at(0),
    )
}

fn pending(roles: &[&str], lifts: &[&str]) -> Request {
    match plan(roles, "pg-prod", lifts, mins(30))
        .expect("the test request is valid")
        .open("req_1")
    {
        Opened::Pending(r) => r,
        Opened::Granted { .. } => panic!("expected a pending request"),
    }
}

#[test]
fn a_valid_request_records_the_role_and_its_approval_rules() {
    let p = plan(
        &["dev"],
        "pg-prod",
        &["write", "unmask:email", "write"],
        mins(30),
    )
    .unwrap();
    assert_eq!(p.role, "dev");
    assert_eq!(
        p.lifts,
        shields(&["unmask:email", "write"]),
        "sorted, deduplicated"
    );
    assert_eq!(p.approvals_required, 1);
    assert_eq!(p.approver_roles, ["lead"]);
    assert!(!p.break_glass);
    assert_eq!(p.reason, REASON);
    assert_eq!(p.created_at, at(0));
    assert_eq!(p.pending_until, at(24 * 3600), "default pending_ttl");
}

#[test]
fn a_reason_is_mandatory_and_not_trivial() {
    for bad in [
        "",
        "   ",
        "fix",
        "debugging",
        "...",
        "\"...\"",
        "n/a",
        "TODO!!!!!!!",
        "----------",
    ] {
        assert_eq!(check_reason(bad), Err(RequestError::Reason), "{bad:?}");
    }
    assert_eq!(check_reason("  INC-4411: refund stuck \n").unwrap(), REASON);
    assert!(check_reason(&"x".repeat(1001)).is_err());
    let err = validate_request(
        &policy(),
        &who("alice", &["dev"]),
        "pg-prod",
        &shields(&["write"]),
        mins(30),
        "fix",
        at(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("a reason is required"), "{err}");
}

#[test]
fn the_duration_is_capped_by_the_role() {
    let err = plan(&["dev"], "pg-prod", &["write"], mins(121)).unwrap_err();
    assert_eq!(
        err,
        RequestError::TooLong {
            requested: mins(121),
            max: mins(120),
            role: "dev".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "2h 1m is longer than role `dev` allows (at most 2h)"
    );
    assert!(plan(&["dev"], "pg-prod", &["write"], mins(120)).is_ok());
    assert_eq!(
        plan(&["dev"], "pg-prod", &["write"], Duration::from_secs(59)),
        Err(RequestError::TooShort)
    );
}

#[test]
fn a_longer_request_moves_to_a_role_that_allows_it() {
    // dev (2h, 1 approval) and lead (4h) both permit unmask:email; 3h only fits lead.
    let p = plan(&["dev", "lead"], "pg-prod", &["unmask:email"], mins(180)).unwrap();
    assert_eq!(p.role, "lead");
    let p = plan(&["dev", "lead"], "pg-prod", &["unmask:email"], mins(30)).unwrap();
    assert_eq!(p.role, "dev", "ties go to the name order");
}

#[test]
fn every_lift_must_be_permitted_by_a_covering_role() {
    assert_eq!(
        plan(&["dev"], "pg-prod", &["ddl"], mins(30)),
        Err(RequestError::NotPermitted {
            shield: Shield::Ddl,
            roles: vec!["dev".into()]
        })
    );
    assert_eq!(
        plan(&["analyst"], "pg-prod", &["write"], mins(30)),
        Err(RequestError::NotCovered("pg-prod".into()))
    );
    assert_eq!(
        plan(&["dev"], "pg-nope", &["write"], mins(30)),
        Err(RequestError::UnknownConnection("pg-nope".into()))
    );
    assert_eq!(
        plan(&["dev"], "pg-prod", &[], mins(30)),
        Err(RequestError::NothingRequested)
    );
    // Wildcards: dev may lift table:payments.*.
    assert!(plan(&["dev"], "pg-prod", &["table:payments.cards"], mins(30)).is_ok());
}

#[test]
fn lifts_must_name_shields_that_exist_on_the_connection() {
    for lift in ["table:public.orders", "unmask:uuid", "unmask:confidential"] {
        let err = plan(&["lead", "dev"], "pg-staging", &[lift], mins(30)).unwrap_err();
        assert!(
            matches!(err, RequestError::NotAShield { .. }),
            "{lift}: {err}"
        );
    }
    // Tagging a column with an optional entity makes it a shield.
    assert!(plan(&["lead"], "pg-prod", &["unmask:person_name"], mins(30)).is_ok());
}

#[test]
fn lifts_spread_over_roles_must_be_split() {
    // write comes from dev, unbounded-write only from writer.
    assert_eq!(
        plan(
            &["dev", "writer"],
            "pg-prod",
            &["unmask:email", "unbounded-write", "write"],
            mins(30)
        ),
        Err(RequestError::SplitRequired)
    );
}

#[test]
fn unbounded_write_needs_write() {
    assert_eq!(
        plan(&["writer"], "pg-prod", &["unbounded-write"], mins(30)),
        Err(RequestError::UnboundedWithoutWrite)
    );
    assert!(
        plan(
            &["writer"],
            "pg-prod",
            &["write", "unbounded-write"],
            mins(30)
        )
        .is_ok()
    );
}

#[test]
fn secrets_need_a_break_glass_role() {
    // lead's `unmask:*` matches, but lead is not break-glass.
    assert_eq!(
        plan(&["lead"], "pg-prod", &["unmask:stripe_key"], mins(30)),
        Err(RequestError::NeedsBreakGlass {
            shield: "unmask:stripe_key".parse().unwrap()
        })
    );
    let p = plan(
        &["lead", "breakglass"],
        "pg-prod",
        &["unmask:stripe_key", "unmask:email"],
        mins(30),
    )
    .unwrap();
    assert_eq!(p.role, "breakglass");
    assert!(p.break_glass, "the request is flagged for the audit");
    // Without a secret, the non-break-glass role is preferred even though the
    // break-glass one needs no approval.
    let p = plan(
        &["lead", "breakglass"],
        "pg-prod",
        &["unmask:email"],
        mins(30),
    )
    .unwrap();
    assert_eq!((p.role.as_str(), p.break_glass), ("lead", false));
}

#[test]
fn a_role_without_approvals_grants_at_once() {
    let p = plan(&["breakglass"], "pg-prod", &["unmask:jwt"], mins(15)).unwrap();
    match p.open("req_9") {
        Opened::Granted { request, grant } => {
            assert_eq!(request.status, RequestStatus::Approved);
            assert_eq!(request.decided_at, Some(at(0)));
            let grant = grant.into_grant("gr_9");
            assert_eq!(
                (grant.id.as_str(), grant.request_id.as_str()),
                ("gr_9", "req_9")
            );
            assert_eq!((grant.starts_at, grant.expires_at), (at(0), at(900)));
            assert!(grant.break_glass && grant.approvers.is_empty());
        }
        Opened::Pending(r) => panic!("pending: {r:?}"),
    }
}

#[test]
fn the_requester_can_never_approve_their_own_request() {
    let request = pending(&["dev", "lead"], &["unmask:email"]);
    // alice holds `lead`, an approver role of the request, and still may not.
    let alice = who("alice", &["dev", "lead"]);
    assert_eq!(
        apply_approval(&request, &alice, at(1)),
        Err(ApprovalError::OwnRequest)
    );
    assert_eq!(
        deny_request(&request, &alice, "no", at(1)),
        Err(ApprovalError::OwnRequest)
    );
}

#[test]
fn only_approver_roles_may_approve() {
    let request = pending(&["dev"], &["write"]);
    let erin = who("erin", &["dev", "writer"]);
    assert_eq!(
        apply_approval(&request, &erin, at(1)),
        Err(ApprovalError::NotAnApprover(vec!["lead".into()]))
    );
    let err = apply_approval(&request, &erin, at(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "only members of lead may decide this request"
    );
}

#[test]
fn one_approval_grants_for_the_requested_duration_from_approval() {
    let request = pending(&["dev"], &["write"]);
    let bob = who("bob", &["lead"]);
    // Approved 10 minutes after the request: the 30 minutes start then.
    match apply_approval(&request, &bob, at(600)).unwrap() {
        ApprovalOutcome::Granted { request, grant } => {
            assert_eq!(request.status, RequestStatus::Approved);
            assert_eq!(request.approvals.len(), 1);
            assert_eq!(request.approvals[0].approver, "bob");
            assert_eq!(request.approvals[0].role, "lead");
            let g = grant.into_grant("gr_1");
            assert_eq!((g.starts_at, g.expires_at), (at(600), at(600 + 1800)));
            assert_eq!(
                (g.identity.as_str(), g.connection.as_str()),
                ("alice", "pg-prod")
            );
            assert_eq!(g.lifts, shields(&["write"]));
            assert_eq!(g.reason, REASON);
            assert_eq!(g.approvers, request.approvals);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_approvals_are_required_when_the_role_says_so_and_the_same_approver_counts_once() {
    let request = pending(&["writer"], &["write", "unbounded-write"]);
    assert_eq!(request.approvals_required, 2);
    let bob = who("bob", &["lead"]);
    let carol = who("carol", &["lead"]);

    let request = match apply_approval(&request, &bob, at(1)).unwrap() {
        ApprovalOutcome::Pending { request, remaining } => {
            assert_eq!(remaining, 1);
            assert_eq!(request.status, RequestStatus::Pending);
            request
        }
        other => panic!("granted after one approval: {other:?}"),
    };
    assert_eq!(
        apply_approval(&request, &bob, at(2)),
        Err(ApprovalError::AlreadyApproved("bob".into()))
    );
    match apply_approval(&request, &carol, at(3)).unwrap() {
        ApprovalOutcome::Granted { grant, request } => {
            let g = grant.into_grant("gr_2");
            assert_eq!(g.starts_at, at(3));
            let names: Vec<_> = request
                .approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect();
            assert_eq!(names, ["bob", "carol"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn decided_and_overdue_requests_accept_no_more_decisions() {
    let request = pending(&["dev"], &["write"]);
    let bob = who("bob", &["lead"]);
    let carol = who("carol", &["lead"]);
    let approved = match apply_approval(&request, &bob, at(1)).unwrap() {
        ApprovalOutcome::Granted { request, .. } => request,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        apply_approval(&approved, &carol, at(2)),
        Err(ApprovalError::NotPending {
            id: "req_1".into(),
            status: RequestStatus::Approved
        })
    );
    let deadline = request.pending_until;
    assert_eq!(
        apply_approval(&request, &bob, deadline),
        Err(ApprovalError::Expired("req_1".into()))
    );
}

#[test]
fn denial_needs_an_approver_and_a_reason() {
    let request = pending(&["dev"], &["write"]);
    let bob = who("bob", &["lead"]);
    assert_eq!(
        deny_request(&request, &bob, "  ", at(1)),
        Err(ApprovalError::ReasonRequired)
    );
    assert_eq!(
        deny_request(&request, &who("erin", &["dev"]), "no", at(1)),
        Err(ApprovalError::NotAnApprover(vec!["lead".into()]))
    );
    let denied = deny_request(&request, &bob, "use staging", at(5)).unwrap();
    assert_eq!(denied.status, RequestStatus::Denied);
    assert_eq!(denied.decided_by.as_deref(), Some("bob"));
    assert_eq!(denied.decision_reason.as_deref(), Some("use staging"));
    assert_eq!(denied.decided_at, Some(at(5)));
    assert!(apply_approval(&denied, &who("carol", &["lead"]), at(6)).is_err());
}

#[test]
fn only_the_requester_cancels() {
    let request = pending(&["dev"], &["write"]);
    assert_eq!(
        cancel_request(&request, &who("bob", &["lead"]), at(1)),
        Err(ApprovalError::NotRequester)
    );
    let cancelled = cancel_request(&request, &who("alice", &["dev"]), at(1)).unwrap();
    assert_eq!(cancelled.status, RequestStatus::Cancelled);
}

#[test]
fn pending_requests_expire_at_their_deadline() {
    let request = pending(&["dev"], &["write"]);
    assert_eq!(
        expire_request(&request, request.pending_until - time::Duration::SECOND),
        None
    );
    let expired = expire_request(&request, at(100_000)).unwrap();
    assert_eq!(expired.status, RequestStatus::Expired);
    assert_eq!(expired.decided_at, Some(request.pending_until));
    assert_eq!(
        expire_request(&expired, at(200_000)),
        None,
        "only pending requests expire"
    );
}

#[test]
fn the_pending_deadline_comes_from_the_config() {
    let policy = periscope_policy::Policy::parse(
        &format!(
            "[requests]\npending_ttl = \"2h\"\n{}",
            crate::common::POLICY
        ),
        "p",
    )
    .unwrap();
    let p = validate_request(
        &policy,
        &who("alice", &["dev"]),
        "pg-prod",
        &shields(&["write"]),
        mins(30),
        REASON,
        at(0),
    )
    .unwrap();
    assert_eq!(p.pending_until, at(7200));
}

#[test]
fn revocation_rules() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let bob = who("bob", &["lead"]);
    let grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["write"],
        mins(30),
        &[&bob],
        at(0),
    );

    // A bystander may not; the grantee, an approver of the role and an admin may.
    assert_eq!(
        revoke_grant(&policy, &grant, &who("erin", &["dev"]), at(1)),
        Err(RevokeError::NotAllowed("dev".into()))
    );
    for by in [&alice, &bob, &who("root", &["admin"])] {
        let revoked = revoke_grant(&policy, &grant, by, at(10)).unwrap();
        assert_eq!(revoked.revoked_at, Some(at(10)));
        assert_eq!(revoked.revoked_by.as_deref(), Some(by.name.as_str()));
        assert_eq!(revoked.status(at(10)), GrantStatus::Revoked);
        assert!(!grant_is_active(&revoked, at(10)));
        assert_eq!(
            revoke_grant(&policy, &revoked, by, at(11)),
            Err(RevokeError::AlreadyEnded {
                id: "gr_1".into(),
                status: GrantStatus::Revoked
            })
        );
    }
    assert!(matches!(
        revoke_grant(&policy, &grant, &alice, at(1800)),
        Err(RevokeError::AlreadyEnded {
            status: GrantStatus::Expired,
            ..
        })
    ));
}

#[test]
fn grant_activity_window_is_half_open() {
    let policy = policy();
    let grant = granted(
        &policy,
        &who("alice", &["dev"]),
        "pg-prod",
        &["write"],
        mins(30),
        &[&who("bob", &["lead"])],
        at(0),
    );
    assert!(grant_is_active(&grant, at(0)));
    assert!(grant_is_active(&grant, at(1799)));
    assert!(!grant_is_active(&grant, at(1800)));
    assert!(!grant_is_active(&grant, at(-1)));
    assert_eq!(grant.status(at(-1)), GrantStatus::Scheduled);
}

#[test]
fn full_cycle_request_approve_use_expire() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let bob = who("bob", &["lead"]);
    let mut clock = at(0);

    let before = decide_at(&policy, &alice, "pg-prod", &[], clock);
    let refusal = before
        .allowance()
        .unwrap()
        .refusal(&"unmask:email".parse().unwrap(), "reading email");
    assert!(
        refusal
            .hint
            .contains("periscope request pg-prod --lift unmask:email")
    );

    let Opened::Pending(request) = validate_request(
        &policy,
        &alice,
        "pg-prod",
        &shields(&["unmask:email"]),
        mins(30),
        REASON,
        clock,
    )
    .unwrap()
    .open("req_1") else {
        panic!("dev needs an approval");
    };
    // Stored and read back by the store/API in JSON.
    let request: Request = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();

    clock += time::Duration::minutes(5);
    let ApprovalOutcome::Granted { grant, .. } = apply_approval(&request, &bob, clock).unwrap()
    else {
        panic!("one approval suffices");
    };
    let grant = grant.into_grant("gr_1");
    let stored = serde_json::to_value(&grant).unwrap();
    assert_eq!(stored["lifts"], serde_json::json!(["unmask:email"]));
    assert_eq!(stored["expires_at"], "2026-05-04T10:35:00Z");
    let grant = serde_json::from_value(stored).unwrap();
    let grants = [grant];

    clock += time::Duration::minutes(1);
    let during = decide_at(&policy, &alice, "pg-prod", &grants, clock);
    let shields = during.allowance().unwrap().shields();
    assert_eq!(shields.mask_operator(Entity::Email), None);
    let wake = shields.next_change().unwrap();
    assert_eq!(wake, at(35 * 60));

    // The proxy re-decides at `next_change`: the shield is back.
    let after = decide_at(&policy, &alice, "pg-prod", &grants, wake);
    assert!(
        after
            .allowance()
            .unwrap()
            .shields()
            .mask_operator(Entity::Email)
            .is_some()
    );
}
