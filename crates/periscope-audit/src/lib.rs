//! Periscope's tamper-evident audit log: the event format, the hash chain, signed
//! checkpoints and the verifier.
//!
//! This crate is the single definition of what an audit record is and how it is
//! proven; the store persists what it produces, the gateway appends through it, and
//! `periscope audit verify` (online or on an exported file with only the public key)
//! checks with it. It is pure: no I/O beyond the readers and writers callers pass in,
//! no async, no database.
//!
//! - Each [`AuditEvent`] carries `hash = SHA-256("periscope-audit-v1\n" || prev_hash ||
//!   canonical JSON of its other fields)`, so editing, deleting, inserting or
//!   reordering a record breaks a link ([`next_event`], [`Chain`]).
//! - A [`Checkpoint`] is an Ed25519 signature by the gateway's [`AuditSigner`] over a
//!   chain position, so the chain cannot be rewritten as a whole, or cut short, up to
//!   a signed position without the [`AuditVerifierKey`] noticing.
//! - [`verify`] / [`verify_jsonl`] / [`ChainVerifier`] walk a chain in one streaming
//!   pass and return a [`VerifyReport`], or the first broken link as a [`ChainError`]
//!   whose message says where and what, in plain words.
//!
//! The byte-exact format, with a test vector, is in `docs/audit.md`.
//!
//! `details` are kept forever and shown to every auditor: they must never hold a
//! secret or an unmasked sensitive value (query text arrives with its literals
//! already redacted by the proxy).
//!
//! ```
//! use periscope_audit::{
//!     actions, verify, AuditSigner, AuditTime, Chain, EventDraft, Start,
//! };
//!
//! let signer = AuditSigner::from_seed(&[42; 32]);
//! let time = AuditTime::parse("2026-11-29T05:00:00.123456Z")?;
//! let mut chain = Chain::new();
//! let mut events = Vec::new();
//! for action in [actions::SESSION_START, actions::QUERY, actions::SESSION_END] {
//!     events.push(chain.append(EventDraft::new(time.clone(), "alice", action, "pg-prod"))?);
//! }
//! let checkpoint = signer.sign_checkpoint(chain.head(), time);
//!
//! let key = signer.verifier_key();
//! let ok = verify(
//!     events.iter().cloned().map(Ok::<_, std::io::Error>),
//!     [checkpoint.clone()],
//!     std::slice::from_ref(&key),
//!     Start::Genesis,
//! )?;
//! assert_eq!((ok.events_checked, ok.checkpoints_verified), (3, 1));
//!
//! // Someone edits event 2 in the store:
//! events[1].target = "pg-staging".into();
//! let err = verify(
//!     events.into_iter().map(Ok::<_, std::io::Error>),
//!     [checkpoint],
//!     &[key],
//!     Start::Genesis,
//! )
//! .unwrap_err();
//! assert_eq!(err.seq(), Some(2));
//! assert!(err.to_string().starts_with("event seq 2 was altered after it was written"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod actions;
mod canonical;
mod chain;
mod checkpoint;
mod event;
mod hash;
mod jsonl;
mod keys;
mod timestamp;
mod verify;

pub use canonical::canonical_json;
pub use chain::{Chain, next_event, next_event_line};
pub use checkpoint::{
    CHECKPOINT_DOMAIN, Checkpoint, CheckpointSignature, SignatureParseError, checkpoint_message,
};
pub use event::{AuditEvent, DraftError, EVENT_HASH_DOMAIN, EventDraft, EventLine};
pub use hash::{ChainHash, HashParseError, Head};
pub use jsonl::{
    ExportError, ExportSummary, JSONL_FORMAT, JSONL_VERSION, JsonlError, JsonlHeader, JsonlProblem,
    JsonlReader, JsonlRecord, JsonlWriter, MAX_LINE_BYTES, verify_jsonl, write_jsonl,
};
pub use keys::{AuditSigner, AuditVerifierKey, KeyError, KeyId, KeyIdParseError};
pub use timestamp::{AUDIT_TIME_LEN, AuditTime, TimeError};
pub use verify::{ChainError, ChainVerifier, LinkFrom, Start, VerifyReport, verify};
