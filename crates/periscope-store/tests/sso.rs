//! Single sign-on state, on both backends: identities bound to a subject,
//! single-use flows, browser sessions.
#![allow(clippy::unwrap_used)]

use crate::common::{TestDb, TestResult, t};
use periscope_store::{
    EventDraft, NewIdentity, NewWebSession, SsoFlow, SsoFlowKind, SsoSignIn, SsoSignInOutcome,
    SsoSubject,
};

fn sign_in(name: &str, subject: &str, roles: &[&str], create: bool) -> SsoSignIn {
    SsoSignIn {
        name: name.into(),
        subject: SsoSubject {
            provider: "okta".into(),
            issuer: "https://idp.example.com".into(),
            subject: subject.into(),
        },
        groups: vec!["eng".into()],
        roles: roles.iter().map(|r| r.to_string()).collect(),
        create,
        at: t(10),
    }
}

fn one_event(outcome: &SsoSignInOutcome) -> Vec<EventDraft> {
    let what = match outcome {
        SsoSignInOutcome::Created(_) => "created",
        SsoSignInOutcome::Updated { .. } => "updated",
        SsoSignInOutcome::Missing => "missing",
        SsoSignInOutcome::Disabled(_) => "disabled",
        SsoSignInOutcome::NameTaken { .. } => "taken",
    };
    vec![EventDraft::new(t(10), "sso", "auth.sso.test", what)]
}

async fn sign_ins_bind_to_the_subject(db: TestDb) -> TestResult {
    let store = &db.store;
    // A refused first sign-in creates nothing.
    let missing = store
        .sso_sign_in(sign_in("carol", "sub-1", &[], false), one_event)
        .await?;
    assert_eq!(missing, SsoSignInOutcome::Missing);
    assert!(store.get_identity("carol").await.is_err());

    let created = store
        .sso_sign_in(sign_in("carol", "sub-1", &["dev", "lead"], true), one_event)
        .await?;
    let SsoSignInOutcome::Created(identity) = created else {
        panic!("{created:?}");
    };
    assert_eq!(identity.roles, ["dev", "lead"]);
    let binding = store.sso_binding("carol").await?.unwrap();
    assert_eq!(binding.subject.subject, "sub-1");
    assert_eq!(binding.groups, ["eng"]);

    // The same subject under a new name keeps its identity; roles follow.
    let updated = store
        .sso_sign_in(sign_in("carol.new", "sub-1", &["dev"], true), one_event)
        .await?;
    match updated {
        SsoSignInOutcome::Updated {
            identity,
            roles_before,
        } => {
            assert_eq!(identity.name, "carol");
            assert_eq!(identity.roles, ["dev"]);
            assert_eq!(roles_before, ["dev", "lead"]);
        }
        other => panic!("{other:?}"),
    }
    // Another subject cannot take the name, nor can anyone take a local one.
    let taken = store
        .sso_sign_in(sign_in("carol", "sub-2", &["dev"], true), one_event)
        .await?;
    assert_eq!(
        taken,
        SsoSignInOutcome::NameTaken {
            holder_provider: Some("okta".into())
        }
    );
    store
        .create_identity(
            NewIdentity {
                name: "alice".into(),
                roles: vec!["dev".into()],
                created_at: t(0),
            },
            vec![],
        )
        .await?;
    let local = store
        .sso_sign_in(sign_in("alice", "sub-3", &["dev"], true), one_event)
        .await?;
    assert_eq!(
        local,
        SsoSignInOutcome::NameTaken {
            holder_provider: None
        }
    );
    assert!(store.sso_binding("alice").await?.is_none());
    // Disabled: nothing changes.
    store.disable_identity("carol", &t(20), vec![]).await?;
    let disabled = store
        .sso_sign_in(sign_in("carol", "sub-1", &["admin"], true), one_event)
        .await?;
    assert!(matches!(disabled, SsoSignInOutcome::Disabled(ref i) if i.roles == ["dev"]));
    // Every outcome's audit event was committed with it.
    let events = store
        .search_audit(&periscope_store::AuditQuery {
            action: Some("auth.sso.test".into()),
            ..Default::default()
        })
        .await?;
    let targets: Vec<&str> = events.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "missing", "created", "updated", "taken", "taken", "disabled"
        ]
    );
    Ok(())
}

fn flow(id: &str, kind: SsoFlowKind, expires: i64) -> SsoFlow {
    SsoFlow {
        flow_id: id.into(),
        kind,
        provider: "okta".into(),
        redirect_uri: "https://gw/sso/callback".into(),
        return_to: Some("/".into()),
        cli_challenge: None,
        poll_secs: Some(5),
        identity: None,
        created_at: t(0),
        expires_at: t(expires),
    }
}

async fn flows_are_taken_once(db: TestDb) -> TestResult {
    let store = &db.store;
    store
        .insert_sso_flow(&flow("f1", SsoFlowKind::Web, 600))
        .await?;
    store
        .insert_sso_flow(&flow("f2", SsoFlowKind::Device, 5))
        .await?;
    assert!(store.take_sso_flow("f1", SsoFlowKind::Cli).await?.is_none());
    let taken = store.take_sso_flow("f1", SsoFlowKind::Web).await?.unwrap();
    assert_eq!(taken, flow("f1", SsoFlowKind::Web, 600));
    assert!(store.take_sso_flow("f1", SsoFlowKind::Web).await?.is_none());
    // A device flow is read while polled, then purged once expired.
    assert!(
        store
            .get_sso_flow("f2", SsoFlowKind::Device)
            .await?
            .is_some()
    );
    assert!(
        store
            .get_sso_flow("f2", SsoFlowKind::Device)
            .await?
            .is_some()
    );
    assert_eq!(store.purge_sso_flows(&t(6)).await?, 1);
    assert!(
        store
            .get_sso_flow("f2", SsoFlowKind::Device)
            .await?
            .is_none()
    );
    Ok(())
}

async fn web_sessions_end_once_and_with_their_identity(db: TestDb) -> TestResult {
    let store = &db.store;
    store
        .create_identity(
            NewIdentity {
                name: "carol".into(),
                roles: vec!["dev".into()],
                created_at: t(0),
            },
            vec![],
        )
        .await?;
    let session = |id: &str| NewWebSession {
        session_id: id.into(),
        secret_hash: vec![7; 32],
        identity: "carol".into(),
        method: "sso:okta".into(),
        created_at: t(0),
        expires_at: t(3600),
        idle_secs: 600,
    };
    store.create_web_session(session("ws_1"), vec![]).await?;
    store.create_web_session(session("ws_2"), vec![]).await?;
    let found = store.find_web_session("ws_1").await?.unwrap();
    assert_eq!(found.identity.name, "carol");
    assert_eq!(found.idle_deadline(), Some(t(600)));
    assert!(!store.touch_web_session("ws_1", &t(30)).await?);
    assert!(store.touch_web_session("ws_1", &t(90)).await?);
    assert_eq!(
        store.find_web_session("ws_1").await?.unwrap().last_seen_at,
        t(90)
    );
    assert!(
        store
            .end_web_session("ws_1", &t(100), "sign_out", vec![])
            .await?
    );
    assert!(
        !store
            .end_web_session("ws_1", &t(101), "sign_out", vec![])
            .await?
    );
    assert_eq!(store.live_web_sessions("carol").await?, ["ws_2"]);
    store.disable_identity("carol", &t(200), vec![]).await?;
    let ended = store.find_web_session("ws_2").await?.unwrap();
    assert_eq!(ended.end_reason.as_deref(), Some("identity_disabled"));
    assert!(store.live_web_sessions("carol").await?.is_empty());
    assert_eq!(store.purge_web_sessions(&t(4000)).await?, 2);
    Ok(())
}

both_backends!(
    sign_ins_bind_to_the_subject,
    flows_are_taken_once,
    web_sessions_end_once_and_with_their_identity
);
