//! Identities, the bootstrap admin and tokens, on both backends.
#![allow(clippy::unwrap_used)]

use crate::common::{TestDb, TestResult, t};
use periscope_store::{EventDraft, NewIdentity, NewToken, StoreError, TokenScope};

fn alice(roles: &[&str]) -> NewIdentity {
    NewIdentity {
        name: "alice".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        created_at: t(0),
    }
}

fn token(id: &str, identity: &str, scope: TokenScope) -> NewToken {
    NewToken {
        token_id: id.into(),
        identity: identity.into(),
        scope,
        secret_hash: vec![0xab; 32],
        description: "laptop".into(),
        created_at: t(1),
        expires_at: None,
    }
}

async fn identity_lifecycle(db: TestDb) -> TestResult {
    let store = &db.store;
    let audit = vec![EventDraft::new(t(0), "root", "admin.user_add", "alice")];
    let created = store.create_identity(alice(&["dev"]), audit).await?;
    assert_eq!(created.roles, vec!["dev"]);
    assert!(created.is_enabled());

    let dup = store
        .create_identity(alice(&["ops"]), vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(
            dup,
            StoreError::AlreadyExists {
                kind: "identity",
                ..
            }
        ),
        "{dup:?}"
    );
    assert_eq!(dup.to_string(), "identity alice already exists");

    let updated = store
        .update_identity_roles("alice", vec!["dev".into(), "oncall".into()], vec![])
        .await?;
    assert_eq!(updated.roles, vec!["dev", "oncall"]);
    assert_eq!(store.get_identity("alice").await?, updated);

    assert!(
        store
            .disable_identity(
                "alice",
                &t(5),
                vec![EventDraft::new(t(5), "root", "admin.user_remove", "alice")]
            )
            .await?
    );
    assert!(
        !store
            .disable_identity(
                "alice",
                &t(6),
                vec![EventDraft::new(t(6), "root", "admin.user_remove", "alice")]
            )
            .await?
    );
    assert_eq!(store.get_identity("alice").await?.disabled_at, Some(t(5)));
    assert!(store.enable_identity("alice", vec![]).await?);
    assert!(store.get_identity("alice").await?.is_enabled());

    // Only the changes that happened were audited: add, one disable.
    let actions: Vec<String> = store
        .audit_tail(10)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, vec!["admin.user_add", "admin.user_remove"]);

    let missing = store.get_identity("bob").await.unwrap_err();
    assert_eq!(missing.to_string(), "identity bob not found");
    assert!(matches!(
        store.disable_identity("bob", &t(1), vec![]).await,
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

async fn identity_names_are_checked(db: TestDb) -> TestResult {
    for bad in ["", "al ice", "bob\n"] {
        let mut id = alice(&[]);
        id.name = bad.into();
        let err = db.store.create_identity(id, vec![]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err:?}");
    }
    assert!(db.store.list_identities().await?.is_empty());
    Ok(())
}

async fn a_refused_audit_draft_undoes_the_change(db: TestDb) -> TestResult {
    let bad = vec![EventDraft::new(t(0), "", "admin.user_add", "alice")];
    let err = db.store.create_identity(alice(&[]), bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Audit(_)), "{err:?}");
    assert!(matches!(
        db.store.get_identity("alice").await,
        Err(StoreError::NotFound { .. })
    ));
    Ok(())
}

async fn bootstrap_happens_once_across_replicas(db: TestDb) -> TestResult {
    let replicas = [
        db.store.clone(),
        db.replica().await,
        db.replica().await,
        db.replica().await,
    ];
    let mut tasks = Vec::new();
    for (i, store) in replicas.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let admin = NewIdentity {
                name: format!("admin{i}"),
                roles: vec!["admin".into()],
                created_at: t(0),
            };
            let audit = vec![EventDraft::new(
                t(0),
                "periscope",
                "admin.user_add",
                admin.name.clone(),
            )];
            store
                .bootstrap_admin(
                    admin,
                    token(&format!("tok{i}"), &format!("admin{i}"), TokenScope::Api),
                    audit,
                )
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await?? {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let identities = db.store.list_identities().await?;
    assert_eq!(identities.len(), 1);
    assert_eq!(
        db.store.bootstrap_admin_name().await?,
        Some(identities[0].name.clone())
    );
    assert_eq!(db.store.audit_head().await?.seq, 1);
    let tokens = db.store.list_tokens(&identities[0].name).await?;
    assert_eq!(tokens.len(), 1);
    Ok(())
}

async fn token_lifecycle(db: TestDb) -> TestResult {
    let store = &db.store;
    store.create_identity(alice(&["dev"]), vec![]).await?;
    let missing_owner = store
        .create_token(token("t1", "bob", TokenScope::Api), vec![])
        .await
        .unwrap_err();
    assert_eq!(missing_owner.to_string(), "identity bob not found");

    let mut api = token("t1", "alice", TokenScope::Api);
    api.expires_at = Some(t(3600));
    store
        .create_token(
            api,
            vec![EventDraft::new(t(1), "alice", "token.create", "t1")],
        )
        .await?;
    let dup = store
        .create_token(token("t1", "alice", TokenScope::Api), vec![])
        .await
        .unwrap_err();
    assert_eq!(dup.to_string(), "token t1 already exists");
    let connect = TokenScope::Connect {
        connection: "pg-prod".into(),
    };
    let mut session = token("s1", "alice", connect.clone());
    session.expires_at = Some(t(301));
    store.create_token(session, vec![]).await?;

    let record = store.find_token("t1").await?.expect("token t1 was created");
    assert_eq!(record.secret_hash, vec![0xab; 32]);
    assert_eq!(record.identity.roles, vec!["dev"]);
    assert!(record.is_usable(&t(2)));
    assert!(!record.is_usable(&t(3600)), "expired at expires_at");
    assert!(
        !format!("{record:?}").contains("abab"),
        "Debug hides the hash"
    );
    assert_eq!(
        store.find_token("s1").await?.map(|r| r.scope),
        Some(connect)
    );
    assert!(store.find_token("nope").await?.is_none());

    // last_used_at: written on first use, then at most once a minute.
    assert!(record.needs_touch(&t(10)));
    assert!(store.touch_token("t1", &t(10)).await?);
    assert!(!store.touch_token("t1", &t(30)).await?);
    let touched = store.find_token("t1").await?.expect("still there");
    assert_eq!(touched.last_used_at, Some(t(10)));
    assert!(!touched.needs_touch(&t(69)));
    assert!(touched.needs_touch(&t(70)));
    assert!(store.touch_token("t1", &t(70)).await?);

    // Listing never carries hashes (the type has no such field); newest first.
    let listed = store.list_tokens("alice").await?;
    assert_eq!(
        listed
            .iter()
            .map(|s| s.token_id.as_str())
            .collect::<Vec<_>>(),
        ["s1", "t1"]
    );

    assert!(
        store
            .revoke_token(
                "t1",
                &t(80),
                vec![EventDraft::new(t(80), "alice", "token.revoke", "t1")]
            )
            .await?
    );
    assert!(
        !store
            .revoke_token(
                "t1",
                &t(81),
                vec![EventDraft::new(t(81), "alice", "token.revoke", "t1")]
            )
            .await?
    );
    assert!(
        !store
            .find_token("t1")
            .await?
            .expect("kept after revoke")
            .is_usable(&t(82))
    );
    assert!(matches!(
        store.revoke_token("nope", &t(1), vec![]).await,
        Err(StoreError::NotFound { .. })
    ));

    // Disabling the owner stops its tokens.
    store.disable_identity("alice", &t(90), vec![]).await?;
    assert!(!store.find_token("s1").await?.expect("s1").is_usable(&t(91)));

    // Expired connect secrets are purged; API tokens stay.
    assert_eq!(store.purge_expired_connect_secrets(&t(400)).await?, 1);
    assert!(store.find_token("s1").await?.is_none());
    assert!(store.find_token("t1").await?.is_some());

    let actions: Vec<String> = store
        .audit_tail(10)
        .await?
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, vec!["token.create", "token.revoke"]);
    Ok(())
}

async fn reopening_keeps_data_and_schema(db: TestDb) -> TestResult {
    db.store.create_identity(alice(&["dev"]), vec![]).await?;
    db.store.close().await;
    let again = db.replica().await;
    assert_eq!(again.get_identity("alice").await?.roles, vec!["dev"]);
    Ok(())
}

both_backends!(
    identity_lifecycle,
    identity_names_are_checked,
    a_refused_audit_draft_undoes_the_change,
    bootstrap_happens_once_across_replicas,
    token_lifecycle,
    reopening_keeps_data_and_schema,
);
