//! `decide()`: deny by default, role coverage, the shields in force, what grants
//! lift and for how long, refusals and explanations.

use crate::common::*;
use periscope_policy::{
    DenyReason, FunctionName, Grant, Policy, Shield, ShieldState, TableName, Verdict, revoke_grant,
};
use periscope_redact::{Entity, Operator, Tier};

fn deny_reason(policy: &Policy, identity: &periscope_policy::Identity, conn: &str) -> DenyReason {
    match decide_at(policy, identity, conn, &[], at(0)).verdict {
        Verdict::Deny(reason) => reason,
        Verdict::Allow(a) => panic!("allowed through {:?}", a.role_names()),
    }
}

#[test]
fn deny_by_default() {
    let policy = policy();
    let alice = who("alice", &["dev"]);

    let r = deny_reason(&policy, &alice, "pg-nope");
    assert_eq!(r.code(), "unknown_connection");
    assert_eq!(r.to_string(), "unknown connection `pg-nope`");

    let nobody = who("mallory", &[]);
    let r = deny_reason(&policy, &nobody, "pg-prod");
    assert_eq!(r.code(), "no_role");

    // A role removed from the config by a reload is ignored, not an error.
    let stale = who("mallory", &["removed-role"]);
    assert_eq!(deny_reason(&policy, &stale, "pg-prod").code(), "no_role");

    let dave = who("dave", &["analyst"]);
    let r = deny_reason(&policy, &dave, "pg-prod");
    assert_eq!(r.code(), "not_covered");
    assert_eq!(
        r.to_string(),
        "none of `dave`'s roles (analyst) covers `pg-prod`"
    );

    // The builtin admin role manages the gateway but reaches no data.
    let root = who("root", &["admin"]);
    assert_eq!(deny_reason(&policy, &root, "pg-prod").code(), "not_covered");
    assert!(policy.is_admin(&root));
    assert!(!policy.is_admin(&alice));
}

#[test]
fn users_cannot_tell_unknown_connections_from_forbidden_ones() {
    let policy = policy();
    let dave = who("dave", &["analyst"]);
    let unknown = deny_reason(&policy, &dave, "pg-secret").user_message();
    let forbidden = deny_reason(&policy, &dave, "pg-prod").user_message();
    assert_eq!(
        unknown.replace("pg-secret", "X"),
        forbidden.replace("pg-prod", "X")
    );
}

#[test]
fn roles_cover_by_name_by_label_and_by_star() {
    let policy = policy();
    let roles_for = |roles: &[&str], conn: &str| -> Vec<String> {
        decide_at(&policy, &who("u", roles), conn, &[], at(0))
            .allowance()
            .map(|a| a.role_names().iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    };
    // `dev` selects team=payments: prod and staging, not analytics.
    assert_eq!(roles_for(&["dev"], "pg-prod"), ["dev"]);
    assert_eq!(roles_for(&["dev"], "pg-staging"), ["dev"]);
    assert!(roles_for(&["dev"], "pg-analytics").is_empty());
    // By name.
    assert_eq!(roles_for(&["analyst"], "pg-analytics"), ["analyst"]);
    assert!(roles_for(&["analyst"], "pg-staging").is_empty());
    // `*`.
    assert_eq!(roles_for(&["everywhere"], "pg-analytics"), ["everywhere"]);
    // Several roles at once.
    assert_eq!(
        roles_for(&["dev", "lead", "analyst"], "pg-prod"),
        ["dev", "lead"]
    );
}

#[test]
fn a_label_selector_needs_every_label() {
    let text = r#"
[[connection]]
name = "a"
kind = "postgres"
host = "h"
database = "d"
user = "u"
labels = { env = "prod", team = "payments" }

[[connection]]
name = "b"
kind = "postgres"
host = "h"
database = "d"
user = "u"
labels = { env = "staging", team = "payments" }

[[role]]
name = "prod-payments"
connection_labels = { env = "prod", team = "payments" }
"#;
    let policy = Policy::parse(text, "p").unwrap();
    assert_eq!(
        policy
            .connection("a")
            .unwrap()
            .roles
            .iter()
            .collect::<Vec<_>>(),
        ["prod-payments"]
    );
    assert!(policy.connection("b").unwrap().roles.is_empty());
}

#[test]
fn a_connection_without_data_policy_is_fully_shielded() {
    let policy = policy();
    let decision = decide_at(&policy, &who("alice", &["dev"]), "pg-staging", &[], at(0));
    let s = decision.allowance().unwrap().shields();
    assert!(s.blocks_write() && s.blocks_ddl() && s.blocks_unbounded_write());
    assert!(s.refuses_unanalysable());
    for &entity in Entity::ALL {
        let expected = entity.tier() != Tier::Optional;
        assert_eq!(s.mask_operator(entity).is_some(), expected, "{entity}");
    }
    assert_eq!(s.mask_operator(Entity::Email), Some(Operator::Redact));
    let read_file: FunctionName = "pg_read_file".parse().unwrap();
    assert!(s.blocks_function(&read_file, true));
    assert!(!s.blocks_function(&read_file, false));
    assert!(s.lifted().is_empty() && s.next_change().is_none());
}

#[test]
fn a_data_policy_adds_shields() {
    let policy = policy();
    let decision = decide_at(&policy, &who("alice", &["dev"]), "pg-prod", &[], at(0));
    let s = decision.allowance().unwrap().shields();
    assert_eq!(s.mask_operator(Entity::Email), Some(Operator::Partial));
    assert!(s.blocks_table(&TableName::new("payments", "cards")));
    assert!(!s.blocks_table(&TableName::new("public", "orders")));
    assert!(s.blocks_function(&"dblink_exec".parse().unwrap(), false));
    let notes = "public.customers.notes".parse().unwrap();
    let (target, op) = s.column_mask(&notes).unwrap();
    assert_eq!(
        (target.to_string(), op),
        ("confidential".to_string(), Operator::Redact)
    );
    // Tagging a column with an optional entity turns that entity on.
    assert!(s.mask_operator(Entity::PersonName).is_some());
    assert!(
        s.column_mask(&"public.customers.email".parse().unwrap())
            .is_none()
    );
}

#[test]
fn an_active_grant_lifts_exactly_its_shields_until_it_ends() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let bob = who("bob", &["lead"]);
    let grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["unmask:email", "write"],
        mins(30),
        &[&bob],
        at(0),
    );
    assert_eq!((grant.starts_at, grant.expires_at), (at(0), at(1800)));

    let during = decide_at(
        &policy,
        &alice,
        "pg-prod",
        std::slice::from_ref(&grant),
        at(60),
    );
    let s = during.allowance().unwrap().shields();
    assert_eq!(s.mask_operator(Entity::Email), None);
    assert!(!s.blocks_write());
    // Only what was named: phone stays masked, DDL and unbounded writes stay blocked.
    assert!(s.mask_operator(Entity::Phone).is_some());
    assert!(s.blocks_ddl() && s.blocks_unbounded_write());
    assert_eq!(s.grant_ids().into_iter().collect::<Vec<_>>(), ["gr_1"]);
    assert_eq!(s.next_change(), Some(at(1800)));
    let lift = &s.lifted()[&"write".parse::<Shield>().unwrap()];
    assert_eq!(
        (lift.grant_id.as_str(), lift.expires_at),
        ("gr_1", at(1800))
    );

    // At expiry the shields are back by themselves.
    let after = decide_at(
        &policy,
        &alice,
        "pg-prod",
        std::slice::from_ref(&grant),
        at(1800),
    );
    let s = after.allowance().unwrap().shields();
    assert!(s.blocks_write() && s.mask_operator(Entity::Email).is_some());
    assert!(s.grant_ids().is_empty());

    // Revoked, likewise.
    let revoked = revoke_grant(&policy, &grant, &bob, at(120)).unwrap();
    let s = decide_at(&policy, &alice, "pg-prod", &[revoked], at(121));
    assert!(s.allowance().unwrap().shields().blocks_write());
}

#[test]
fn grants_only_count_for_their_identity_and_connection() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["write"],
        mins(30),
        &[&who("bob", &["lead"])],
        at(0),
    );
    let erin = who("erin", &["dev"]);
    let other_user = decide_at(
        &policy,
        &erin,
        "pg-prod",
        std::slice::from_ref(&grant),
        at(1),
    );
    assert!(other_user.allowance().unwrap().shields().blocks_write());
    let other_conn = decide_at(&policy, &alice, "pg-staging", &[grant], at(1));
    assert!(other_conn.allowance().unwrap().shields().blocks_write());
}

#[test]
fn the_latest_grant_wins_when_two_lift_the_same_shield() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let bob = who("bob", &["lead"]);
    let a = granted(
        &policy,
        &alice,
        "pg-prod",
        &["unmask:email"],
        mins(60),
        &[&bob],
        at(0),
    );
    let mut b = granted(
        &policy,
        &alice,
        "pg-prod",
        &["unmask:email", "unmask:phone"],
        mins(10),
        &[&bob],
        at(0),
    );
    b.id = "gr_2".into();
    let d = decide_at(&policy, &alice, "pg-prod", &[a, b], at(1));
    let s = d.allowance().unwrap().shields();
    assert_eq!(
        s.lifted()[&"unmask:email".parse::<Shield>().unwrap()].grant_id,
        "gr_1"
    );
    assert_eq!(
        s.lifted()[&"unmask:phone".parse::<Shield>().unwrap()].grant_id,
        "gr_2"
    );
    // The session must re-decide when phone comes back.
    assert_eq!(s.next_change(), Some(at(600)));
}

#[test]
fn secrets_stay_masked_without_a_break_glass_grant() {
    let policy = policy();
    let bob = who("bob", &["lead"]);
    // A grant record claiming a secret without the break-glass flag (a corrupted
    // or hand-edited row) lifts nothing.
    let mut forged = granted(
        &policy,
        &bob,
        "pg-prod",
        &["unmask:email"],
        mins(30),
        &[&who("carol", &["lead"])],
        at(0),
    );
    forged.lifts = shields(&["unmask:github_token", "unmask:email"]);
    let d = decide_at(&policy, &bob, "pg-prod", &[forged], at(1));
    let s = d.allowance().unwrap().shields();
    assert!(s.mask_operator(Entity::GithubToken).is_some());
    assert!(s.mask_operator(Entity::Email).is_none());
    assert!(d.explanation.notes.iter().any(|n| n.contains("`unmask:github_token` but it is not lifted: a secret can only be lifted by a break-glass grant")), "{:?}", d.explanation.notes);

    // Through the break-glass role: granted at once, flagged, and honoured.
    let oscar = who("oscar", &["breakglass"]);
    let g = granted(
        &policy,
        &oscar,
        "pg-prod",
        &["unmask:github_token"],
        mins(15),
        &[],
        at(0),
    );
    assert!(g.break_glass && g.approvers.is_empty());
    let d = decide_at(&policy, &oscar, "pg-prod", &[g], at(1));
    let s = d.allowance().unwrap().shields();
    assert!(s.mask_operator(Entity::GithubToken).is_none());
    assert!(s.lifted().values().all(|l| l.break_glass));
}

#[test]
fn a_reload_that_narrows_a_role_narrows_live_grants() {
    let before = policy();
    let alice = who("alice", &["dev"]);
    let grant = granted(
        &before,
        &alice,
        "pg-prod",
        &["write", "unmask:email"],
        mins(30),
        &[&who("bob", &["lead"])],
        at(0),
    );
    let after = Policy::parse(
        &crate::common::POLICY.replace(
            "may_lift = [\"unmask:email\", \"unmask:phone\", \"unmask:confidential\", \"write\", \"table:payments.*\"]",
            "may_lift = [\"unmask:email\"]",
        ),
        "policy.toml",
    )
    .unwrap();
    let d = decide_at(
        &after,
        &alice,
        "pg-prod",
        std::slice::from_ref(&grant),
        at(60),
    );
    let s = d.allowance().unwrap().shields();
    assert!(s.blocks_write());
    assert!(s.mask_operator(Entity::Email).is_none());
    assert!(
        d.explanation
            .notes
            .iter()
            .any(|n| n.contains("role `dev` no longer permits it"))
    );

    // Losing the role entirely drops the grant too.
    let demoted = who("alice", &["everywhere"]);
    let d = decide_at(&before, &demoted, "pg-prod", &[grant], at(60));
    assert!(d.allowance().unwrap().shields().lifted().is_empty());
}

#[test]
fn refusals_name_the_shield_and_the_command_that_lifts_it() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let d = decide_at(&policy, &alice, "pg-prod", &[], at(0));
    let a = d.allowance().unwrap();

    let r = a.refusal(&Shield::Write, "UPDATE");
    assert_eq!(
        r.message,
        "UPDATE blocked by shield `write` on connection `pg-prod`"
    );
    assert_eq!(
        r.hint,
        "to request it: periscope request pg-prod --lift write --for 30m --reason \"...\" (role dev: up to 2h, 1 approval from lead)"
    );
    assert!(r.to_string().contains("read-only"));

    let r = a.refusal(&Shield::Ddl, "DROP TABLE");
    assert_eq!(
        r.hint,
        "none of your roles (dev) may lift it; ask an administrator"
    );

    let r = a.refusal(
        &"table:payments.cards".parse().unwrap(),
        "SELECT from payments.cards",
    );
    assert!(r.hint.contains("--lift table:payments.cards"), "{}", r.hint);

    // unbounded-write needs write as well; the hint asks for both.
    let erin = who("erin", &["writer"]);
    let d = decide_at(&policy, &erin, "pg-prod", &[], at(0));
    let r = d
        .allowance()
        .unwrap()
        .refusal(&Shield::UnboundedWrite, "DELETE without WHERE");
    assert!(
        r.hint.contains("--lift write --lift unbounded-write"),
        "{}",
        r.hint
    );
    assert!(r.hint.contains("2 approvals from lead"), "{}", r.hint);

    // A secret: the lead role's `unmask:*` does not reach it.
    let bob = who("bob", &["lead"]);
    let d = decide_at(&policy, &bob, "pg-prod", &[], at(0));
    let r = d
        .allowance()
        .unwrap()
        .refusal(&"unmask:jwt".parse().unwrap(), "reading a token");
    assert_eq!(
        r.hint,
        "it reveals a secret: only a break-glass role may lift it"
    );
}

#[test]
fn explain_text_says_what_alice_may_do_now() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let bob = who("bob", &["lead"]);
    let grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["unmask:phone"],
        mins(30),
        &[&bob],
        at(0),
    );
    let text = decide_at(&policy, &alice, "pg-prod", &[grant], at(300))
        .explanation
        .to_text();

    for expected in [
        "alice on pg-prod at 2026-05-04T10:05:00Z",
        "may connect: yes, through dev",
        "unanalysable SQL: refused",
        "  unmask:email: email values are masked (operator: partial)",
        "    lift through role dev: up to 2h, 1 approval from lead",
        "      periscope request pg-prod --lift unmask:email --for 30m --reason \"...\"",
        "  unmask:card: card values are masked (operator: redact)",
        "    not liftable: none of your roles (dev) may lift it\n",
        "  unmask:confidential: columns tagged `confidential` are masked whole: public.customers.notes",
        "  unmask:<secret>: secrets are always masked: private_key, aws_access_key,",
        "  write: the session is read-only",
        "      periscope request pg-prod --lift write --for 30m --reason \"...\"",
        "  table:payments.cards: table payments.cards is sensitive",
        "  function:dblink_exec: calls to dblink_exec() are refused",
        "  function:*: the built-in dangerous functions",
        "lifted by your grants:\n  unmask:phone: by grant gr_1 until 2026-05-04T10:30:00Z (25m left)",
        "active grants:\n  gr_1 (role dev): unmask:phone until 2026-05-04T10:30:00Z, reason \"INC-4411: refund stuck\"",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // The lifted shield is not listed as in force.
    assert!(
        !text.contains("  unmask:phone: phone values are masked"),
        "{text}"
    );
}

#[test]
fn explain_lists_liftable_secrets_separately_for_break_glass_roles() {
    let policy = policy();
    let oscar = who("oscar", &["breakglass"]);
    let text = decide_at(&policy, &oscar, "pg-prod", &[], at(0))
        .explanation
        .to_text();
    assert!(
        text.contains("  unmask:github_token: github_token values are masked"),
        "{text}"
    );
    assert!(text.contains("lift through role breakglass: up to 30m, granted at once, no approval needed (break-glass, audited)"), "{text}");
    assert!(
        text.contains("periscope request pg-prod --lift unmask:github_token --for 30m"),
        "{text}"
    );
    assert!(!text.contains("unmask:<secret>"), "{text}");
}

#[test]
fn explain_of_a_refusal_says_why_and_who_could() {
    let policy = policy();
    let d = decide_at(
        &policy,
        &who("dave", &["analyst", "ghost"]),
        "pg-prod",
        &[],
        at(0),
    );
    assert!(!d.explanation.may_connect);
    let text = d.explanation.to_text();
    assert!(
        text.contains("may connect: no: none of `dave`'s roles (analyst) covers `pg-prod`"),
        "{text}"
    );
    assert!(
        text.contains("roles covering `pg-prod`: breakglass, dev, everywhere, lead, writer"),
        "{text}"
    );
    assert!(text.contains("role `ghost` is not defined"), "{text}");
}

#[test]
fn the_explanation_serialises_for_the_api() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["write"],
        mins(30),
        &[&who("bob", &["lead"])],
        at(0),
    );
    let d = decide_at(&policy, &alice, "pg-prod", &[grant], at(0));
    let json = serde_json::to_value(&d.explanation).unwrap();
    assert_eq!(json["may_connect"], true);
    assert_eq!(json["via_roles"], serde_json::json!(["dev"]));
    let lines = json["shields"].as_array().unwrap();
    let email = lines
        .iter()
        .find(|l| l["shield"] == "unmask:email")
        .unwrap();
    assert_eq!(email["state"], "in_force");
    assert_eq!(email["lift"][0]["role"], "dev");
    assert_eq!(email["lift"][0]["approvers"], serde_json::json!(["lead"]));
    let write = lines.iter().find(|l| l["shield"] == "write").unwrap();
    assert_eq!(write["state"], "lifted");
    assert_eq!(write["grant"], "gr_1");
    assert_eq!(write["expires_at"], "2026-05-04T10:30:00Z");
    assert_eq!(json["grants"][0]["remaining_secs"], 1800);
}

#[test]
fn grants_outside_their_window_are_ignored() {
    let policy = policy();
    let alice = who("alice", &["dev"]);
    let mut future: Grant = granted(
        &policy,
        &alice,
        "pg-prod",
        &["write"],
        mins(30),
        &[&who("bob", &["lead"])],
        at(0),
    );
    future.starts_at = at(100);
    future.expires_at = at(200);
    for t in [99, 200, 10_000] {
        let d = decide_at(
            &policy,
            &alice,
            "pg-prod",
            std::slice::from_ref(&future),
            at(t),
        );
        assert!(d.allowance().unwrap().shields().blocks_write(), "t={t}");
    }
    let d = decide_at(&policy, &alice, "pg-prod", &[future], at(100));
    assert!(!d.allowance().unwrap().shields().blocks_write());
    let write = d
        .explanation
        .shields
        .iter()
        .find(|l| l.shield == "write")
        .unwrap();
    assert_eq!(
        write.state,
        ShieldState::Lifted {
            grant: "gr_1".into(),
            expires_at: at(200)
        }
    );
}

#[test]
fn explain_shows_how_to_lift_a_named_dangerous_function() {
    let text = format!(
        "{}may_lift = [\"function:pg_read_file\"]\napprovers = [\"lead\"]\n",
        crate::common::POLICY.replace(
            "[[role]]\nname = \"everywhere\"\nconnections = [\"*\"]\n",
            ""
        ) + "[[role]]\nname = \"everywhere\"\nconnections = [\"*\"]\n"
    );
    let policy = Policy::parse(&text, "p").unwrap();
    let d = decide_at(
        &policy,
        &who("u", &["everywhere"]),
        "pg-staging",
        &[],
        at(0),
    );
    let out = d.explanation.to_text();
    assert!(
        out.contains("  function:pg_read_file: calls to pg_read_file() are refused when it is on the built-in dangerous list\n    lift through role everywhere: up to 1h, 1 approval from lead\n      periscope request pg-staging --lift function:pg_read_file --for 30m"),
        "{out}"
    );
}

#[test]
fn a_shell_connection_is_always_behind_the_shell_shield_until_a_grant_lifts_it() {
    let policy = Policy::parse(
        r#"
[[connection]]
name = "box"
kind = "shell"
command = ["/bin/sh"]

[[connection]]
name = "db"
kind = "postgres"
host = "h"
database = "d"
user = "u"

[[role]]
name = "dev"
connections = ["box", "db"]
may_lift = ["shell", "unmask:email"]
approvals = 0
"#,
        "p",
    )
    .unwrap();
    let alice = who("alice", &["dev"]);
    let without = decide_at(&policy, &alice, "box", &[], at(0));
    let s = without.allowance().unwrap().shields();
    assert!(s.blocks_shell());
    // A shell has no SQL flows to shield.
    assert!(!s.blocks_write());
    let refusal = without
        .allowance()
        .unwrap()
        .refusal(&Shield::Shell, "shell");
    assert_eq!(
        refusal.message,
        "shell blocked by shield `shell` on connection `box`"
    );
    assert!(
        refusal
            .hint
            .contains("periscope request box --lift shell --for"),
        "{}",
        refusal.hint
    );
    let grant = granted(&policy, &alice, "box", &["shell"], mins(30), &[], at(0));
    let with = decide_at(&policy, &alice, "box", std::slice::from_ref(&grant), at(60));
    assert!(!with.allowance().unwrap().shields().blocks_shell());
    // `shell` is a shield of shell connections only.
    let err = periscope_policy::validate_request(
        &policy,
        &alice,
        "db",
        &shields(&["shell"]),
        mins(30),
        "INC-4411: refund stuck",
        at(0),
    )
    .unwrap_err();
    assert!(err.to_string().contains("shell"), "{err}");
    assert!(
        !decide_at(&policy, &alice, "db", &[], at(0))
            .allowance()
            .unwrap()
            .shields()
            .blocks_shell()
    );
}
