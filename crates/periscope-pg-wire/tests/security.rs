//! Who gets in and how: client TLS (require, verify-full), plaintext refusal,
//! token and connection-name rejections, upstream SCRAM/MD5/cleartext and
//! TLS, credentials never shown, malformed startup packets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::support::*;
use bytes::BytesMut;
use periscope_pg_wire::{ClientTls, ProxyConfig, UpstreamTls};
use periscope_testkit::{PasswordMethod, PgCluster, Psql};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A throwaway CA and a certificate for `localhost` / `127.0.0.1` signed by it.
struct TestPki {
    ca_pem: PathBuf,
    cert_pem: String,
    key_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

fn make_pki(dir: &Path) -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Periscope test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &*ca).unwrap();

    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.pem()).unwrap();
    TestPki {
        ca_pem,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        chain: vec![cert.der().clone()],
        key_der: key.serialize_der(),
    }
}

fn server_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
    let config =
        rustls::ServerConfig::builder_with_provider(periscope_pg_wire::stream::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                pki.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
            )
            .unwrap();
    Arc::new(config)
}

#[tokio::test]
async fn tls_required_accepts_require_and_verify_full_and_refuses_plaintext() {
    let cluster = start_cluster();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = ProxyConfig::new(ClientTls::Required(server_config(&pki)));
    let gw = Gateway::with_config(Upstream::superuser(&cluster), config)
        .start()
        .await;
    let base = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={USER} password={TOKEN} dbname={CONNECTION}",
        gw.port()
    );

    let out = psql(
        &cluster,
        &format!("{base} sslmode=require"),
        "SELECT 'over tls'",
    )
    .await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "over tls");

    let verify = format!(
        "{base} sslmode=verify-full sslrootcert={}",
        pki.ca_pem.display()
    );
    let out = psql(&cluster, &verify, "SELECT 'verified'").await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "verified");

    // The certificate does not name this host: verify-full must fail.
    let wrong_name = format!(
        "host=127.0.0.2 hostaddr=127.0.0.1 port={} user={USER} password={TOKEN} dbname={CONNECTION} \
         sslmode=verify-full sslrootcert={}",
        gw.port(),
        pki.ca_pem.display()
    );
    let out = psql(&cluster, &wrong_name, "SELECT 1").await;
    assert!(!out.success);

    let out = psql(&cluster, &format!("{base} sslmode=disable"), "SELECT 1").await;
    assert!(!out.success);
    assert!(
        out.stderr
            .contains("requires TLS: connect with sslmode=require"),
        "{}",
        out.stderr
    );
    let err = connect(&format!("{base} sslmode=disable"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code().unwrap().code(), "28000");
}

#[tokio::test]
async fn plaintext_tokens_are_refused_unless_explicitly_allowed() {
    let cluster = start_cluster();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // TLS offered but not required, plaintext passwords not allowed.
    let config = ProxyConfig::new(ClientTls::Optional(server_config(&pki)));
    let gw = Gateway::with_config(Upstream::superuser(&cluster), config)
        .start()
        .await;
    let out = psql(&cluster, &gw.conninfo(), "SELECT 1").await;
    assert!(!out.success);
    assert!(out.stderr.contains("sslmode=require"), "{}", out.stderr);
    // libpq's default (prefer) upgrades and gets in.
    let prefer = gw.conninfo().replace("sslmode=disable", "sslmode=prefer");
    let out = psql(&cluster, &prefer, "SELECT 'preferred'").await;
    assert!(out.success, "{}", out.stderr);
    assert_eq!(out.out(), "preferred");
}

#[tokio::test]
async fn bad_tokens_and_unknown_connections_are_refused_with_their_codes() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;

    let out = psql(
        &cluster,
        &gw.conninfo_with("wrong-token", CONNECTION),
        "SELECT 1",
    )
    .await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("FATAL:  invalid Periscope token"),
        "{}",
        out.stderr
    );
    let err = connect(&gw.conninfo_with("wrong-token", CONNECTION))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code().unwrap().code(), "28P01");

    let out = psql(&cluster, &gw.conninfo_with(TOKEN, "pg-nope"), "SELECT 1").await;
    assert!(!out.success);
    assert!(
        out.stderr.contains("no connection named \"pg-nope\""),
        "{}",
        out.stderr
    );
    let err = connect(&gw.conninfo_with(TOKEN, "pg-nope"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code().unwrap().code(), "3D000");
    assert_eq!(gw.metrics.auth_rejections(), 4);
    assert_eq!(gw.metrics.sessions_total(), 0);
}

async fn current_user_via(cluster: &PgCluster, role: &str, password: &str) -> String {
    let gw = Gateway::plaintext(Upstream {
        port: cluster.port(),
        database: "postgres".into(),
        user: role.into(),
        password: password.into(),
    })
    .start()
    .await;
    let (client, _conn) = gw.connect().await;
    let row = client
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn upstream_scram_md5_and_cleartext_authentication() {
    let cluster = start_cluster();
    for (role, method) in [
        ("via_scram", PasswordMethod::Scram),
        ("via_md5", PasswordMethod::Md5),
        ("via_cleartext", PasswordMethod::Cleartext),
    ] {
        cluster
            .create_login_role(role, "injected-secret", method)
            .unwrap();
        assert_eq!(
            current_user_via(&cluster, role, "injected-secret").await,
            role,
            "{method:?}"
        );
    }
}

#[tokio::test]
async fn upstream_auth_failure_never_reveals_the_injected_credentials() {
    let cluster = start_cluster();
    cluster
        .create_login_role("svc_injected", "right-secret", PasswordMethod::Md5)
        .unwrap();
    let gw = Gateway::plaintext(Upstream {
        port: cluster.port(),
        database: "postgres".into(),
        user: "svc_injected".into(),
        password: "stale-secret".into(),
    })
    .start()
    .await;
    let err = connect(&gw.conninfo()).await.err().unwrap();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "08004");
    assert_eq!(
        db.message(),
        "upstream authentication for connection \"pg-test\" failed; ask an administrator"
    );
    let out = psql(&cluster, &gw.conninfo(), "SELECT 1").await;
    assert!(!out.success);
    for secret in ["svc_injected", "stale-secret", "right-secret"] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
        assert!(!format!("{err:?}").contains(secret));
    }
    assert_eq!(gw.metrics.upstream_failures(), 2);
}

/// A cluster with TLS on, its certificate signed by `pki`'s CA.
fn tls_cluster(dir: &Path, pki: &TestPki) -> PgCluster {
    use std::os::unix::fs::PermissionsExt;
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The server refuses a key others can read, and runs as `postgres`
    // when the tests run as root.
    let status = std::process::Command::new("id")
        .args(["-u"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&status.stdout).trim() == "0" {
        let ok = std::process::Command::new("chown")
            .arg("postgres")
            .arg(&cert)
            .arg(&key)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown the server key to postgres");
    }
    PgCluster::builder()
        .setting("ssl", "on")
        .setting("ssl_cert_file", cert.display())
        .setting("ssl_key_file", key.display())
        .start()
        .expect("start a TLS cluster")
}

#[tokio::test]
async fn upstream_tls_require_and_verify_full() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let cluster = tls_cluster(dir.path(), &pki);

    for tls in [
        UpstreamTls::Require,
        UpstreamTls::VerifyFull {
            ca_file: pki.ca_pem.clone(),
        },
    ] {
        let gw = Gateway::plaintext(Upstream::superuser(&cluster))
            .upstream_tls(tls.clone())
            .start()
            .await;
        let (client, _conn) = gw.connect().await;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        assert!(
            row.get::<_, bool>(0),
            "upstream connection is TLS with {tls:?}"
        );
    }

    // A CA that did not sign the server's certificate: verify-full refuses.
    let other = tempfile::tempdir().unwrap();
    let other_pki = make_pki(other.path());
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .upstream_tls(UpstreamTls::VerifyFull {
            ca_file: other_pki.ca_pem.clone(),
        })
        .start()
        .await;
    let err = connect(&gw.conninfo()).await.err().unwrap();
    assert_eq!(err.code().unwrap().code(), "08001", "{err:?}");

    // A plain server and `require`: refused, `prefer`: falls back.
    let plain = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&plain))
        .upstream_tls(UpstreamTls::Require)
        .start()
        .await;
    assert_eq!(
        connect(&gw.conninfo())
            .await
            .err()
            .unwrap()
            .code()
            .unwrap()
            .code(),
        "08001"
    );
    let gw = Gateway::plaintext(Upstream::superuser(&plain))
        .upstream_tls(UpstreamTls::Prefer)
        .start()
        .await;
    let (client, _conn) = gw.connect().await;
    client.simple_query("SELECT 1").await.unwrap();
}

async fn expect_protocol_violation(gw: &Gateway, bytes: &[u8]) -> String {
    let mut raw = RawClient::connect(gw.addr).await;
    raw.send(bytes).await;
    let msgs = raw.until_eof().await;
    assert_eq!(msgs.len(), 1, "one FATAL, then close: {msgs:?}");
    let fields = msgs[0].error().expect("an ErrorResponse");
    assert_eq!(fields.code(), Some("08P01"));
    assert_eq!(fields.severity(), Some("FATAL"));
    fields.message().unwrap().to_string()
}

#[tokio::test]
async fn malformed_startup_packets_get_08p01_and_the_listener_keeps_serving() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;

    let msg = expect_protocol_violation(&gw, &[0, 0, 0, 3]).await;
    assert!(msg.contains("length 3"), "{msg}");

    let msg = expect_protocol_violation(&gw, &[0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]).await;
    assert!(msg.contains("length -16"), "{msg}");

    let mut v2 = BytesMut::new();
    v2.extend_from_slice(&[0, 0, 0, 9, 0, 2, 0, 0, 0]);
    let msg = expect_protocol_violation(&gw, &v2).await;
    assert!(msg.contains("unsupported frontend protocol 2.0"), "{msg}");

    let msg = expect_protocol_violation(&gw, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(msg.contains("exceeds the limit of 10240 bytes"), "{msg}");

    // Parameters without their final terminator.
    let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
    packet.extend_from_slice(b"user\0alice\0database\0pg-test");
    let len = packet.len() as i32;
    packet[..4].copy_from_slice(&len.to_be_bytes());
    let msg = expect_protocol_violation(&gw, &packet).await;
    assert!(msg.contains("not NUL-terminated"), "{msg}");

    // SSLRequest with plaintext bytes stuffed behind it (CVE-2021-23214).
    let mut stuffed = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    stuffed.extend_from_slice(&packet);
    let msg = expect_protocol_violation(&gw, &stuffed).await;
    assert!(msg.contains("unencrypted data after SSLRequest"), "{msg}");

    // A client that announces more than it sends and leaves.
    let mut raw = RawClient::connect(gw.addr).await;
    raw.send(&[0, 0, 0, 100, 0, 3]).await;
    drop(raw);

    // The listener still serves.
    let (client, _conn) = gw.connect().await;
    assert_eq!(
        client
            .query_one("SELECT 1::int4", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    let out = psql(&cluster, &gw.conninfo(), "SELECT 'still serving'").await;
    assert_eq!(out.out(), "still serving");
    assert!(gw.metrics.handshake_failures() >= 6);
}

#[tokio::test]
async fn a_malformed_message_mid_session_ends_only_that_session() {
    let cluster = start_cluster();
    let gw = Gateway::plaintext(Upstream::superuser(&cluster))
        .start()
        .await;
    let (mut raw, _) = raw_login(gw.addr, &[]).await;
    // A message type the protocol does not define never reaches the upstream.
    raw.send(&[b'?', 0, 0, 0, 4]).await;
    let msgs = raw.until_eof().await;
    let fields = msgs.last().unwrap().error().unwrap();
    assert_eq!(fields.code(), Some("08P01"));
    assert!(
        fields
            .message()
            .unwrap()
            .contains("unknown frontend message type")
    );

    let (client, _conn) = gw.connect().await;
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn ctrl_c_in_psql_cancels_a_running_query_over_tls() {
    let cluster = start_cluster();
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = ProxyConfig::new(ClientTls::Required(server_config(&pki)));
    let gw = Gateway::with_config(Upstream::superuser(&cluster), config)
        .start()
        .await;
    let conninfo = format!(
        "host=127.0.0.1 port={} user={USER} password={TOKEN} dbname={CONNECTION} sslmode=require",
        gw.port()
    );
    let child = Psql::new(cluster.binaries(), &conninfo)
        .command("SELECT pg_sleep(60)")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_until_active(&cluster, "SELECT pg_sleep(60)%").await;

    // What Ctrl-C does: SIGINT makes psql send a CancelRequest carrying the
    // gateway-issued key.
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("psql ends promptly after Ctrl-C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("canceling statement due to user request"),
        "{stderr}"
    );
    assert_eq!(gw.metrics.cancels_forwarded(), 1);
}
