//! The Ed25519 key pair behind checkpoints: the gateway signs, the auditor verifies.
//!
//! Both keys use the standard PEM files (PKCS#8 `PRIVATE KEY`, SPKI `PUBLIC KEY`) that
//! OpenSSL and every crypto library read, so an auditor can inspect the key and check
//! a signature without Periscope at all (`docs/audit.md` shows how).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::checkpoint::{Checkpoint, CheckpointSignature, checkpoint_message};
use crate::hash::Head;
use crate::timestamp::AuditTime;

/// A short name for a public key: the first 8 bytes of SHA-256 of its 32 raw bytes,
/// as 16 lowercase hex digits.
///
/// Every checkpoint carries the id of the key that signed it, so a verifier holding
/// several keys (rotation, one key per replica) knows which one applies, and an
/// auditor can tell at a glance whether the key file they were given is the right one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// Computes the id of a raw Ed25519 public key.
    pub fn of_public_key(public_key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(public_key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Parses the 16-lowercase-hex-digit form.
    pub fn from_hex(text: &str) -> Result<Self, KeyIdParseError> {
        if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(KeyIdParseError(text.chars().take(40).collect()));
        }
        let mut id = [0u8; 8];
        hex::decode_to_slice(text, &mut id).map_err(|_| KeyIdParseError(text.to_owned()))?;
        Ok(KeyId(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = KeyIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyId::from_hex(s)
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        KeyId::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// A key id that is not 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a key id must be 16 lowercase hex digits, found {0:?}")]
pub struct KeyIdParseError(String);

/// Why a key could not be created, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system could not provide randomness for a new key.
    #[error("could not get randomness from the operating system for a new audit key: {0}")]
    Randomness(String),
    /// The text is a PEM document, but not a valid Ed25519 key of the expected kind.
    #[error("not a valid Ed25519 {kind} key in PEM form: {reason}")]
    Pem {
        /// `private` or `public`.
        kind: &'static str,
        /// What the decoder objected to.
        reason: String,
    },
    /// A private key was given where the public key is expected.
    #[error(
        "this is a private key; an auditor needs only the public key (`BEGIN PUBLIC KEY`), \
         and the private key must not leave the gateway"
    )]
    PrivateKeyGiven,
    /// The text is in none of the accepted public key forms.
    #[error(
        "unrecognised public key: expected a PEM public key (`-----BEGIN PUBLIC KEY-----`), \
         64 hex digits or base64 of 32 bytes"
    )]
    UnrecognisedPublicKey,
    /// The bytes are not a usable Ed25519 public key.
    #[error("not a usable Ed25519 public key: {0}")]
    InvalidPublicKey(&'static str),
}

/// The gateway's signing key for checkpoints. Created once at init, kept in a file
/// readable only by the gateway (mode 0600: writing that file is the caller's job).
///
/// `Debug` shows only the key id, so the secret cannot leak into logs.
pub struct AuditSigner {
    key: SigningKey,
}

impl AuditSigner {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Randomness(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// The key for a given 32-byte secret (Ed25519 seed). Deterministic: for tests and
    /// for keys held elsewhere (a secrets manager).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        AuditSigner {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Reads an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as written by
    /// [`AuditSigner::to_pem`] or `openssl genpkey -algorithm ed25519`.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| KeyError::Pem {
            kind: "private",
            reason: e.to_string(),
        })?;
        Ok(AuditSigner { key })
    }

    /// The key as PKCS#8 PEM text (version 1, the form OpenSSL writes), to save in the
    /// gateway's key file. Zeroed from memory when dropped.
    pub fn to_pem(&self) -> Zeroizing<String> {
        let bytes = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        };
        bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encoding a 32-byte Ed25519 seed as PKCS#8 cannot fail")
    }

    /// The public half, to hand to auditors.
    pub fn verifier_key(&self) -> AuditVerifierKey {
        AuditVerifierKey::from_verifying_key(self.key.verifying_key())
    }

    /// The id every checkpoint signed by this key carries.
    pub fn key_id(&self) -> KeyId {
        KeyId::of_public_key(self.key.verifying_key().as_bytes())
    }

    /// Signs the chain position `head` (usually the last stored event, see
    /// [`crate::AuditEvent::head`]) at `time`: the checkpoint vouches that the chain up
    /// to `head.seq` ends in `head.hash`.
    pub fn sign_checkpoint(&self, head: Head, time: AuditTime) -> Checkpoint {
        let message = checkpoint_message(head.seq, &head.hash, &time);
        let signature = self.key.sign(message.as_bytes());
        Checkpoint {
            seq: head.seq,
            hash: head.hash,
            time,
            key_id: self.key_id(),
            signature: CheckpointSignature::from_bytes(signature.to_bytes()),
        }
    }
}

impl fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSigner")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// The public key an auditor uses to check checkpoints; all they need besides the log.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditVerifierKey {
    key: VerifyingKey,
    id: KeyId,
}

impl AuditVerifierKey {
    fn from_verifying_key(key: VerifyingKey) -> Self {
        AuditVerifierKey {
            id: KeyId::of_public_key(key.as_bytes()),
            key,
        }
    }

    /// From the 32 raw bytes of an Ed25519 public key. Refuses bytes that are not a
    /// curve point and small-order ("weak") points, under which forged signatures
    /// could verify.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| KeyError::InvalidPublicKey("the bytes are not a point on the curve"))?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey(
                "it is a small-order point, under which signatures prove nothing",
            ));
        }
        Ok(Self::from_verifying_key(key))
    }

    /// Reads the key an auditor was given, in any of these forms (surrounding
    /// whitespace ignored): a PEM `PUBLIC KEY` (SPKI, as written by
    /// [`AuditVerifierKey::to_pem`] or `openssl pkey -pubout`), 64 hex digits, or
    /// standard base64 of the 32 raw bytes.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.contains("PRIVATE KEY-----") {
            return Err(KeyError::PrivateKeyGiven);
        }
        if text.starts_with("-----BEGIN") {
            let key = VerifyingKey::from_public_key_pem(text).map_err(|e| KeyError::Pem {
                kind: "public",
                reason: e.to_string(),
            })?;
            return Self::from_bytes(key.as_bytes());
        }
        let mut raw = [0u8; 32];
        if text.len() == 64 && hex::decode_to_slice(text, &mut raw).is_ok() {
            return Self::from_bytes(&raw);
        }
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) if bytes.len() == 32 => {
                raw.copy_from_slice(&bytes);
                Self::from_bytes(&raw)
            }
            _ => Err(KeyError::UnrecognisedPublicKey),
        }
    }

    /// The key as PEM `PUBLIC KEY` text: the file to give auditors.
    pub fn to_pem(&self) -> String {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .expect("encoding a 32-byte Ed25519 public key as SPKI cannot fail")
    }

    /// The 32 raw bytes as 64 lowercase hex digits, short enough to read out or paste.
    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The id that checkpoints signed with the matching private key carry.
    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// Whether `checkpoint` carries a valid signature by this key over its seq, hash
    /// and time. Uses strict verification (no malleable or small-order forms).
    pub fn verify_checkpoint(&self, checkpoint: &Checkpoint) -> bool {
        let message = checkpoint_message(checkpoint.seq, &checkpoint.hash, &checkpoint.time);
        let signature = ed25519_dalek::Signature::from_bytes(checkpoint.signature.as_bytes());
        checkpoint.key_id == self.id
            && self
                .key
                .verify_strict(message.as_bytes(), &signature)
                .is_ok()
    }
}

impl fmt::Debug for AuditVerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditVerifierKey({} {})", self.id, self.to_hex())
    }
}

impl FromStr for AuditVerifierKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditVerifierKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        let signer = AuditSigner::generate().unwrap();
        let pem = signer.to_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{}", *pem);
        let again = AuditSigner::from_pem(&pem).unwrap();
        assert_eq!(again.key_id(), signer.key_id());

        let public = signer.verifier_key();
        let public_pem = public.to_pem();
        assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        for text in [
            public_pem.clone(),
            format!("\n  {public_pem}\n"),
            public.to_hex(),
            public.to_hex().to_uppercase(),
            base64::engine::general_purpose::STANDARD.encode(public.to_bytes()),
        ] {
            assert_eq!(AuditVerifierKey::parse(&text).unwrap(), public, "{text}");
        }
    }

    #[test]
    fn reads_keys_written_by_openssl() {
        // Generated with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
        let private = "-----BEGIN PRIVATE KEY-----\n\
                       MC4CAQAwBQYDK2VwBCIEICoOWfggKdeAfv1QmhBkYB8c9/ZSN1EI5aYQp5+X74ZN\n\
                       -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
                      MCowBQYDK2VwAyEAVnIsemGCiyQV0hMgpWEqs9jm3W4I8jTh4X56vAn9Fm4=\n\
                      -----END PUBLIC KEY-----\n";
        let signer = AuditSigner::from_pem(private).unwrap();
        assert_eq!(signer.to_pem().as_str(), private);
        assert_eq!(
            signer.verifier_key(),
            AuditVerifierKey::parse(public).unwrap()
        );
        assert_eq!(signer.verifier_key().to_pem(), public);
    }

    #[test]
    fn precise_errors_for_wrong_key_text() {
        let signer = AuditSigner::from_seed(&[7; 32]);
        let cases: Vec<(String, &str)> = vec![
            (
                signer.to_pem().to_string(),
                "this is a private key; an auditor needs only the public key",
            ),
            ("hello".into(), "unrecognised public key"),
            ("ab".repeat(31), "unrecognised public key"),
            (
                "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into(),
                "not a valid Ed25519 public key in PEM form",
            ),
            // The identity point: small order.
            (
                format!("01{}", "00".repeat(31)),
                "not a usable Ed25519 public key: it is a small-order point",
            ),
        ];
        for (text, message) in cases {
            let err = AuditVerifierKey::parse(&text).unwrap_err().to_string();
            assert!(err.starts_with(message), "{text:?}: {err}");
        }
        let err =
            AuditSigner::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("not a valid Ed25519 private key in PEM form"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let signer = AuditSigner::from_seed(&[7; 32]);
        let shown = format!("{signer:?}");
        assert!(shown.contains(&signer.key_id().to_string()));
        assert!(!shown.contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn key_id_parses_strictly() {
        let id = AuditSigner::from_seed(&[1; 32]).key_id();
        assert_eq!(KeyId::from_hex(&id.to_string()), Ok(id));
        assert!(KeyId::from_hex(&id.to_string().to_uppercase()).is_err());
        assert!(KeyId::from_hex("abc").is_err());
    }
}
