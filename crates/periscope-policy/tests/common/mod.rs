//! A realistic policy shared by the integration tests, and small helpers.
#![allow(dead_code)]

use std::time::Duration;

use periscope_policy::{
    ApprovalOutcome, Decision, Grant, Identity, Opened, Policy, PolicyInput, Shield, decide,
    validate_request,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Three connections, roles selecting by name, by label and by `*`, a
/// two-approval role, a break-glass role with no approval.
pub const POLICY: &str = r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "db.internal"
database = "shop"
user = "periscope"
password_env = "PG_PROD_PASSWORD"
labels = { env = "prod", team = "payments" }

[connection.data_policy]
tags = { "public.customers.notes" = "confidential", "public.customers.full_name" = "person_name" }
sensitive_tables = ["payments.cards"]
blocked_functions = ["dblink_exec"]
operators = { email = "partial" }

[[connection]]
name = "pg-staging"
kind = "postgres"
host = "staging.internal"
database = "shop"
user = "periscope"
labels = { env = "staging", team = "payments" }

[[connection]]
name = "pg-analytics"
kind = "postgres"
host = "analytics.internal"
database = "dw"
user = "periscope"
labels = { env = "prod", team = "data" }

[[role]]
name = "dev"
connection_labels = { team = "payments" }
may_lift = ["unmask:email", "unmask:phone", "unmask:confidential", "write", "table:payments.*"]
max_duration = "2h"
approvers = ["lead"]

[[role]]
name = "writer"
connections = ["pg-prod"]
may_lift = ["write", "unbounded-write"]
max_duration = "1h"
approvals = 2
approvers = ["lead"]

[[role]]
name = "lead"
connections = ["pg-prod"]
may_lift = ["unmask:*"]
max_duration = "4h"
approvers = ["lead"]

[[role]]
name = "breakglass"
connections = ["pg-prod"]
may_lift = ["unmask:*"]
max_duration = "30m"
approvals = 0
break_glass = true

[[role]]
name = "analyst"
connections = ["pg-analytics"]

[[role]]
name = "everywhere"
connections = ["*"]
"#;

pub fn policy() -> Policy {
    Policy::parse(POLICY, "policy.toml").expect("the fixture policy is valid")
}

/// 2026-05-04 10:00 UTC plus `secs`.
pub fn at(secs: i64) -> OffsetDateTime {
    datetime!(2026-05-04 10:00 UTC) + time::Duration::seconds(secs)
}

pub fn who(name: &str, roles: &[&str]) -> Identity {
    Identity::new(name, roles.iter().copied())
}

pub fn shields(list: &[&str]) -> Vec<Shield> {
    list.iter()
        .map(|s| s.parse().expect("test shield"))
        .collect()
}

pub fn mins(n: u64) -> Duration {
    Duration::from_secs(n * 60)
}

pub fn decide_at(
    policy: &Policy,
    identity: &Identity,
    connection: &str,
    grants: &[Grant],
    now: OffsetDateTime,
) -> Decision {
    decide(&PolicyInput {
        policy,
        identity,
        connection,
        grants,
        now,
    })
}

/// Requests `lifts` as `requester` at `now` and has each of `approvers` approve
/// until granted; panics if the workflow does not end in a grant.
pub fn granted(
    policy: &Policy,
    requester: &Identity,
    connection: &str,
    lifts: &[&str],
    duration: Duration,
    approvers: &[&Identity],
    now: OffsetDateTime,
) -> Grant {
    let plan = validate_request(
        policy,
        requester,
        connection,
        &shields(lifts),
        duration,
        "INC-4411: refund stuck",
        now,
    )
    .expect("request is valid");
    let mut request = match plan.open("req_1") {
        Opened::Granted { grant, .. } => return grant.into_grant("gr_1"),
        Opened::Pending(r) => r,
    };
    for approver in approvers {
        match periscope_policy::apply_approval(&request, approver, now).expect("approval accepted")
        {
            ApprovalOutcome::Granted { grant, .. } => return grant.into_grant("gr_1"),
            ApprovalOutcome::Pending { request: r, .. } => request = r,
        }
    }
    panic!("not enough approvers for {request:?}")
}
