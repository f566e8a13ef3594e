//! Signed checkpoints: the gateway's signature over a chain position.
//!
//! A hash chain alone only proves the log is self-consistent: someone who can write
//! to the store can rewrite events and recompute every later hash. A checkpoint is
//! an Ed25519 signature over `(seq, hash, time)`; the private key never leaves the
//! gateway, so events up to a checkpoint cannot be rewritten, and the chain cannot
//! be cut short before it, without the verifier noticing.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{ChainHash, Head};
use crate::keys::KeyId;
use crate::timestamp::AuditTime;

/// First line of every signed checkpoint message; versioned and distinct from the
/// event hash prefix, so a signature can never be replayed as anything else.
pub const CHECKPOINT_DOMAIN: &str = "periscope-audit-checkpoint-v1";

/// The exact text a checkpoint signature covers (UTF-8, `\n` after every line):
///
/// ```text
/// periscope-audit-checkpoint-v1
/// seq=<decimal seq>
/// hash=<64 lowercase hex digits>
/// time=<YYYY-MM-DDTHH:MM:SS.ffffffZ>
/// ```
pub fn checkpoint_message(seq: u64, hash: &ChainHash, time: &AuditTime) -> String {
    format!("{CHECKPOINT_DOMAIN}\nseq={seq}\nhash={hash}\ntime={time}\n")
}

/// A signature that events up to `seq` form a chain ending in `hash`.
///
/// The gateway signs one every N events and at shutdown; the store keeps them beside
/// the events; verification checks each against the event at its seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Seq of the last event covered.
    pub seq: u64,
    /// Hash of the event at `seq`.
    pub hash: ChainHash,
    /// When the checkpoint was signed.
    pub time: AuditTime,
    /// Which key signed it.
    pub key_id: KeyId,
    /// Ed25519 signature over [`checkpoint_message`].
    pub signature: CheckpointSignature,
}

impl Checkpoint {
    /// The chain position this checkpoint vouches for.
    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// The text the signature covers, for auditors checking it with other tools.
    pub fn signed_message(&self) -> String {
        checkpoint_message(self.seq, &self.hash, &self.time)
    }
}

/// The 64 bytes of an Ed25519 signature; serialised as 128 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CheckpointSignature([u8; 64]);

impl CheckpointSignature {
    /// Wraps raw signature bytes (e.g. from a binary column).
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        CheckpointSignature(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// Parses 128 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<Self, SignatureParseError> {
        let mut bytes = [0u8; 64];
        let lowercase_hex = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if text.len() != 128 || !lowercase_hex || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(SignatureParseError(text.chars().count()));
        }
        Ok(CheckpointSignature(bytes))
    }
}

impl fmt::Display for CheckpointSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CheckpointSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSignature({self})")
    }
}

impl Serialize for CheckpointSignature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CheckpointSignature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        CheckpointSignature::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A signature that is not 128 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a signature must be 128 lowercase hex digits, found {0} characters")]
pub struct SignatureParseError(usize);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::AuditSigner;

    fn checkpoint() -> (AuditSigner, Checkpoint) {
        let signer = AuditSigner::from_seed(&[3; 32]);
        let head = Head {
            seq: 42,
            hash: ChainHash::from_bytes([9; 32]),
        };
        let time = AuditTime::parse("2026-11-29T05:00:00.000000Z").unwrap();
        let cp = signer.sign_checkpoint(head, time);
        (signer, cp)
    }

    #[test]
    fn message_layout() {
        let (_, cp) = checkpoint();
        assert_eq!(
            cp.signed_message(),
            format!(
                "periscope-audit-checkpoint-v1\nseq=42\nhash={}\ntime=2026-11-29T05:00:00.000000Z\n",
                "09".repeat(32)
            )
        );
    }

    #[test]
    fn signature_covers_seq_hash_time_and_key() {
        let (signer, cp) = checkpoint();
        let key = signer.verifier_key();
        assert!(key.verify_checkpoint(&cp));

        let mut edits: Vec<Checkpoint> = vec![cp.clone(), cp.clone(), cp.clone(), cp.clone()];
        edits[0].seq += 1;
        edits[1].hash = ChainHash::ZERO;
        edits[2].time = AuditTime::parse("2026-11-29T05:00:00.000001Z").unwrap();
        edits[3].signature.0[0] ^= 1;
        for edited in &edits {
            assert!(!key.verify_checkpoint(edited), "{edited:?}");
        }
        let other = AuditSigner::from_seed(&[4; 32]).verifier_key();
        assert!(!other.verify_checkpoint(&cp));
    }

    #[test]
    fn serde_round_trip_and_strict_signature_text() {
        let (_, cp) = checkpoint();
        let text = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), cp);
        let upper = text.replace(
            &cp.signature.to_string(),
            &cp.signature.to_string().to_uppercase(),
        );
        let err = serde_json::from_str::<Checkpoint>(&upper).unwrap_err();
        assert!(
            err.to_string().contains("128 lowercase hex digits"),
            "{err}"
        );
    }
}
