//! The gateway in-process, through the handle protocol proxies use: grant
//! ends reach a bus subscriber within a second (expiry by the background
//! task, revocation at once, revocation on another replica), and
//! `authenticate_password` checks owner and scope.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use periscope_api::CreateRequest;
use periscope_gateway::{
    Caller, ConfigSource, EndReason, GatewayOptions, GrantEvent, NewSession, Running,
    ServerOverrides, start,
};
use periscope_testkit::{PgCluster, SUPERUSER, SUPERUSER_PASSWORD};
use tokio::sync::broadcast;

const POLICY: &str = r#"
[[connection]]
name = "pg-prod"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"

[[connection]]
name = "pg-staging"
kind = "postgres"
host = "127.0.0.1"
database = "shop"
user = "periscope"

[[role]]
name = "dev"
connections = ["pg-prod", "pg-staging"]
may_lift = ["unmask:email", "write"]
max_duration = "1h"
approvals = 0
"#;

async fn gateway(dir: &std::path::Path, test_clock: bool) -> Running {
    let config = dir.join("periscope.toml");
    std::fs::write(&config, POLICY).unwrap();
    let mut options = GatewayOptions::new(ConfigSource::File(config));
    options.data_dir = Some(dir.join("data"));
    options.overrides = ServerOverrides {
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        pg_listen: None,
    };
    options.test_clock = test_clock;
    start(options).await.unwrap()
}

/// An identity with role `dev`, as the API would authenticate it.
async fn dev(running: &Running, name: &str) -> Caller {
    let gateway = running.gateway().clone();
    gateway
        .store()
        .create_identity(
            periscope_store::NewIdentity {
                name: name.to_string(),
                roles: vec!["dev".to_string()],
                created_at: gateway.clock().audit_now(),
            },
            vec![],
        )
        .await
        .unwrap();
    let identity = gateway.store().get_identity(name).await.unwrap();
    Caller {
        policy_identity: periscope_policy::Identity::from(&identity),
        identity,
        token_id: "test".into(),
        token_expires_at: None,
    }
}

fn ask(lifts: &[&str], duration: &str) -> CreateRequest {
    CreateRequest {
        connection: "pg-prod".into(),
        lifts: lifts.iter().map(|s| s.to_string()).collect(),
        duration: duration.into(),
        reason: "INC-9000: seam test".into(),
    }
}

/// The next `Ended` event, within `limit`.
async fn ended(
    bus: &mut broadcast::Receiver<GrantEvent>,
    limit: Duration,
) -> periscope_gateway::GrantEnded {
    tokio::time::timeout(limit, async {
        loop {
            if let GrantEvent::Ended(e) = bus.recv().await.unwrap() {
                return e;
            }
        }
    })
    .await
    .expect("the grant end is published in time")
}

fn session(gateway: &periscope_gateway::Gateway, identity: &str, grant: &str) -> NewSession {
    NewSession {
        identity: identity.into(),
        connection: "pg-prod".into(),
        grants: vec![grant.into()],
        client_addr: "127.0.0.1:40000".parse().unwrap(),
        application_name: Some("psql".into()),
        started_at: gateway.now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grant_ends_reach_subscribers_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let running = gateway(dir.path(), true).await;
    let gateway = running.gateway().clone();
    let alice = dev(&running, "alice").await;
    let mut bus = gateway.subscribe();

    let (_, grant) = gateway
        .create_request(&alice, &ask(&["unmask:email"], "30m"))
        .await
        .unwrap();
    let grant = grant.expect("approvals = 0 grants at once");
    let guard = gateway
        .sessions()
        .register(session(&gateway, "alice", &grant.id));
    assert_eq!(
        gateway.sessions().list()[0].grants,
        std::slice::from_ref(&grant.id)
    );

    // Move time past the expiry without sweeping: the background task must
    // notice and publish within a second.
    gateway
        .test_clock()
        .unwrap()
        .advance(Duration::from_secs(31 * 60))
        .unwrap();
    let moved = Instant::now();
    let end = ended(&mut bus, Duration::from_secs(1)).await;
    let took = moved.elapsed();
    assert_eq!(end.grant_id, grant.id);
    assert_eq!(end.identity, "alice");
    assert_eq!(end.connection, "pg-prod");
    assert_eq!(end.reason, EndReason::Expired);
    assert!(took < Duration::from_secs(1), "{took:?}");
    let decision = gateway
        .decide(&alice.policy_identity, "pg-prod")
        .await
        .unwrap();
    assert!(
        decision
            .allowance()
            .unwrap()
            .shields()
            .mask_operator(periscope_redact::Entity::Email)
            .is_some(),
        "the shield is back"
    );
    drop(guard);
    assert!(gateway.sessions().is_empty());

    // Revocation is published at once, and only once.
    let (_, grant) = gateway
        .create_request(&alice, &ask(&["write"], "30m"))
        .await
        .unwrap();
    let grant = grant.unwrap();
    let _guard = gateway
        .sessions()
        .register(session(&gateway, "alice", &grant.id));
    let revoked_at = Instant::now();
    gateway
        .revoke(&alice, &grant.id, Some("done"))
        .await
        .unwrap();
    let end = ended(&mut bus, Duration::from_millis(500)).await;
    assert!(revoked_at.elapsed() < Duration::from_millis(500));
    assert_eq!(end.reason, EndReason::Revoked { by: "alice".into() });
    assert!(
        tokio::time::timeout(Duration::from_millis(1200), async {
            loop {
                if let GrantEvent::Ended(e) = bus.recv().await.unwrap() {
                    return e;
                }
            }
        })
        .await
        .is_err(),
        "a grant's end is announced once per replica"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_on_one_replica_reaches_sessions_on_another() {
    let cluster = tokio::task::spawn_blocking(|| {
        let cluster = PgCluster::start()?;
        cluster.create_database("periscope")?;
        Ok::<_, periscope_testkit::TestkitError>(cluster)
    })
    .await
    .unwrap()
    .unwrap();
    // The store password by file: both in-process gateways read it.
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), SUPERUSER_PASSWORD).unwrap();
    let url = format!(
        "postgres://{SUPERUSER}@127.0.0.1:{}/periscope",
        cluster.port()
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with_file = |dir: &std::path::Path| {
        let config = dir.join("periscope.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\nurl = \"{url}\"\npassword_file = \"{}\"\n{POLICY}",
                secret.path().display()
            ),
        )
        .unwrap();
        let mut options = GatewayOptions::new(ConfigSource::File(config));
        options.data_dir = Some(dir.join("data"));
        options.overrides = ServerOverrides {
            api_listen: Some("127.0.0.1:0".parse().unwrap()),
            pg_listen: None,
        };
        options
    };
    let a = start(with_file(dir_a.path())).await.unwrap();
    let b = start(with_file(dir_b.path())).await.unwrap();
    let (gw_a, gw_b) = (a.gateway().clone(), b.gateway().clone());
    let alice = dev(&a, "alice").await;

    let (_, grant) = gw_a
        .create_request(&alice, &ask(&["write"], "30m"))
        .await
        .unwrap();
    let grant = grant.unwrap();
    // A session on replica B relies on the grant; the revocation happens on A.
    let mut bus_b = gw_b.subscribe();
    let _guard = gw_b.sessions().register(session(&gw_b, "alice", &grant.id));
    let revoked_at = Instant::now();
    gw_a.revoke(&alice, &grant.id, None).await.unwrap();
    let end = ended(&mut bus_b, Duration::from_secs(1)).await;
    assert_eq!(end.grant_id, grant.id);
    assert_eq!(end.reason, EndReason::Revoked { by: "alice".into() });
    assert!(revoked_at.elapsed() < Duration::from_secs(1));
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread")]
async fn password_authentication_checks_owner_scope_and_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = gateway(dir.path(), false).await;
    let gateway = running.gateway().clone();
    let bootstrap = running.take_bootstrap().unwrap();
    let token = bootstrap.token.as_str();

    let ok = gateway
        .authenticate_password("admin", "pg-prod", token, None)
        .await
        .unwrap();
    assert_eq!(ok.identity.name, "admin");
    assert!(!ok.session_secret);
    let wrong_user = gateway
        .authenticate_password("alice", "pg-prod", token, None)
        .await
        .unwrap_err();
    assert_eq!(wrong_user.code(), "wrong_user");
    let garbage = gateway
        .authenticate_password("admin", "pg-prod", "hunter2", None)
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), "malformed");

    let logins = gateway
        .store()
        .search_audit(&periscope_store::AuditQuery {
            action: Some("auth.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = logins
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert!(actions.contains(&("auth.login", "admin")), "{actions:?}");
    // Failures are recorded in the background; wait for them.
    let failures = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let events = gateway
                .store()
                .search_audit(&periscope_store::AuditQuery {
                    action: Some("auth.login_failed".into()),
                    ..Default::default()
                })
                .await
                .unwrap();
            if events.len() >= 2 {
                return events;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    assert!(
        failures
            .iter()
            .all(|e| !e.details.to_string().contains(token))
    );

    // A `periscope connect` secret opens sessions on its connection only.
    let alice = dev(&running, "alice").await;
    let (secret, _) = gateway
        .issue_session_secret(&alice, "pg-prod")
        .await
        .unwrap();
    let session = gateway
        .authenticate_password("alice", "pg-prod", &secret, None)
        .await
        .unwrap();
    assert!(session.session_secret);
    let elsewhere = gateway
        .authenticate_password("alice", "pg-staging", &secret, None)
        .await
        .unwrap_err();
    assert_eq!(elsewhere.code(), "wrong_scope");
    assert!(
        elsewhere
            .to_string()
            .contains("periscope connect pg-staging")
    );
    let refused = gateway
        .issue_session_secret(&alice, "pg-nope")
        .await
        .unwrap_err();
    assert!(
        matches!(refused, periscope_gateway::ConnectError::Refused(_)),
        "{refused:?}"
    );
    assert_eq!(periscope_gateway::Failure::from(refused).status, 403);
    running.shutdown().await.unwrap();
}
