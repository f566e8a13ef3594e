//! The test vector published in docs/audit.md: fixed events, fixed hashes, a fixed
//! signature and the exact export text. It was cross-checked outside Rust (Python's
//! hashlib + json, and `openssl pkeyutl -verify`), as docs/audit.md shows. If this test
//! has to change, every existing audit log would stop verifying: bump the version
//! prefixes instead.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use periscope_audit::{
    AuditEvent, AuditSigner, AuditTime, Chain, Checkpoint, JsonlHeader, Start, verify_jsonl,
    write_jsonl,
};
use serde_json::json;

const BODY_1: &str = r#"{"action":"query","actor":"alice","details":{"masked":{"email":1},"rows":1,"sql":"SELECT email FROM customers WHERE id = $1"},"grant_ids":["g-42"],"seq":1,"target":"pg-prod","time":"2026-11-29T05:00:00.123456Z"}"#;
const HASH_1: &str = "1d52e7c37aa2f4d4517479a635b57268d6e8c0a530c96d8ccdd5ef68b5d91dd0";
const BODY_2: &str = r#"{"action":"session.end","actor":"alice","details":{"reason":"client closed \"psql\"\tnormally","who":"José"},"grant_ids":[],"seq":2,"target":"pg-prod","time":"2026-11-29T05:00:01.000000Z"}"#;
const HASH_2: &str = "3ade4ab737ede09b41db8d76be9df740cd74bdcf43e171981008a6a838492290";
const PUBLIC_KEY_HEX: &str = "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61";
const PUBLIC_KEY_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAGX9rI+FshTLGq8g4+s1ep4m+DHaykgM0A5v6iz02jWE=
-----END PUBLIC KEY-----
";
const KEY_ID: &str = "b600306cfa76723f";
const SIGNATURE: &str = "b90e6792a24c59f98aa2790743522c4b0b0b0b73520881d51fdee4b1bcb691ebc34e20f0d73837fd40e04c586cbee376776cfaa9e0029c2f66754f3996c6d70c";
const EXPORT: &str = r#"{"type":"header","format":"periscope-audit-jsonl","version":1,"key_id":"b600306cfa76723f"}
{"type":"event","seq":1,"time":"2026-11-29T05:00:00.123456Z","actor":"alice","action":"query","target":"pg-prod","details":{"masked":{"email":1},"rows":1,"sql":"SELECT email FROM customers WHERE id = $1"},"grant_ids":["g-42"],"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1d52e7c37aa2f4d4517479a635b57268d6e8c0a530c96d8ccdd5ef68b5d91dd0"}
{"type":"event","seq":2,"time":"2026-11-29T05:00:01.000000Z","actor":"alice","action":"session.end","target":"pg-prod","details":{"reason":"client closed \"psql\"\tnormally","who":"José"},"grant_ids":[],"prev_hash":"1d52e7c37aa2f4d4517479a635b57268d6e8c0a530c96d8ccdd5ef68b5d91dd0","hash":"3ade4ab737ede09b41db8d76be9df740cd74bdcf43e171981008a6a838492290"}
{"type":"checkpoint","seq":2,"hash":"3ade4ab737ede09b41db8d76be9df740cd74bdcf43e171981008a6a838492290","time":"2026-11-29T05:00:02.000000Z","key_id":"b600306cfa76723f","signature":"b90e6792a24c59f98aa2790743522c4b0b0b0b73520881d51fdee4b1bcb691ebc34e20f0d73837fd40e04c586cbee376776cfaa9e0029c2f66754f3996c6d70c"}
"#;

fn vector() -> (AuditSigner, AuditEvent, AuditEvent, Checkpoint) {
    let mut chain = Chain::new();
    let first = chain
        .append(
            periscope_audit::EventDraft::new(
                AuditTime::parse("2026-11-29T05:00:00.123456Z").unwrap(),
                "alice",
                "query",
                "pg-prod",
            )
            .with_details(json!({
                "sql": "SELECT email FROM customers WHERE id = $1",
                "rows": 1,
                "masked": {"email": 1},
            }))
            .with_grant("g-42"),
        )
        .unwrap();
    let second = chain
        .append(
            periscope_audit::EventDraft::new(
                AuditTime::parse("2026-11-29T05:00:01.000000Z").unwrap(),
                "alice",
                "session.end",
                "pg-prod",
            )
            .with_details(json!({"reason": "client closed \"psql\"\tnormally", "who": "José"})),
        )
        .unwrap();
    let signer = AuditSigner::from_seed(&[0x2a; 32]);
    let checkpoint = signer.sign_checkpoint(
        second.head(),
        AuditTime::parse("2026-11-29T05:00:02.000000Z").unwrap(),
    );
    (signer, first, second, checkpoint)
}

#[test]
fn event_hashes_are_fixed() {
    let (_, first, second, _) = vector();
    assert_eq!(first.canonical_body(), BODY_1);
    assert_eq!(first.hash.to_hex(), HASH_1);
    assert_eq!(second.canonical_body(), BODY_2);
    assert_eq!(second.prev_hash.to_hex(), HASH_1);
    assert_eq!(second.hash.to_hex(), HASH_2);

    let mut bytes = b"periscope-audit-v1\n".to_vec();
    bytes.extend_from_slice(&[0; 32]);
    bytes.extend_from_slice(BODY_1.as_bytes());
    assert_eq!(first.hashed_bytes(), bytes);
}

#[test]
fn key_and_signature_are_fixed() {
    let (signer, _, second, checkpoint) = vector();
    let key = signer.verifier_key();
    assert_eq!(key.to_hex(), PUBLIC_KEY_HEX);
    assert_eq!(key.to_pem(), PUBLIC_KEY_PEM);
    assert_eq!(key.key_id().to_string(), KEY_ID);
    assert_eq!(checkpoint.key_id.to_string(), KEY_ID);
    assert_eq!(checkpoint.signature.to_string(), SIGNATURE);
    assert_eq!(
        checkpoint.signed_message(),
        format!(
            "periscope-audit-checkpoint-v1\nseq=2\nhash={HASH_2}\ntime=2026-11-29T05:00:02.000000Z\n"
        )
    );
    assert_eq!(checkpoint.head(), second.head());
}

#[test]
fn export_text_is_fixed_and_verifies_with_only_the_public_key() {
    let (signer, first, second, checkpoint) = vector();
    let mut out = Vec::new();
    write_jsonl(
        &mut out,
        Some(&JsonlHeader::new(Some(signer.key_id()))),
        [first, second].map(Ok::<_, std::io::Error>),
        &[checkpoint],
    )
    .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), EXPORT);

    let key = periscope_audit::AuditVerifierKey::parse(PUBLIC_KEY_PEM).unwrap();
    let report = verify_jsonl(EXPORT.as_bytes(), &[key], Start::Genesis).unwrap();
    assert_eq!(report.events_checked, 2);
    assert_eq!(report.checkpoints_verified, 1);
    assert_eq!(report.uncovered_events, 0);
    assert!(report.warnings().is_empty());
}
