//! The 32-byte digests that link the chain, and the chain's head position.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest as it appears in the chain (`hash`, `prev_hash`, checkpoint `hash`).
///
/// Kept as raw bytes so hashing never depends on how a database or a file spelled it;
/// every serialised form is exactly 64 lowercase hex digits, so there is one spelling
/// per value and a hash can be compared as text by auditors and SQL alike.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// The `prev_hash` of the first event (seq 1): there is nothing before it to link to.
    pub const ZERO: ChainHash = ChainHash([0; 32]);

    /// Wraps raw digest bytes, e.g. read from a `BLOB`/`bytea` column.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ChainHash(bytes)
    }

    /// The raw bytes, as they enter the next event's hash and a store's binary column.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The one accepted text form: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(64);
        self.push_hex(&mut text);
        text
    }

    /// Appends the text form to `out`, without a string of its own: every
    /// appended event writes a line holding two hashes.
    pub(crate) fn push_hex(&self, out: &mut String) {
        // `encode_to_slice` is a plain loop over a table; `hex::encode`
        // collects an iterator of chars, several times slower.
        let mut digits = [0u8; 64];
        match hex::encode_to_slice(self.0, &mut digits) {
            Ok(()) => out.extend(digits.iter().map(|&d| char::from(d))),
            Err(_) => out.push_str(&hex::encode(self.0)),
        }
    }

    /// Parses the text form strictly (64 lowercase hex digits), so that a value edited
    /// into another spelling is reported rather than silently normalised.
    pub fn from_hex(text: &str) -> Result<Self, HashParseError> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return Err(HashParseError::Length(text.chars().count()));
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            match (lower_hex_digit(pair[0]), lower_hex_digit(pair[1])) {
                (Some(high), Some(low)) => *byte = high << 4 | low,
                _ => {
                    let bad = text
                        .chars()
                        .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    return Err(HashParseError::Digit(bad));
                }
            }
        }
        Ok(ChainHash(bytes))
    }
}

/// The value of one lowercase hex digit (this parser's hot path: two per event hash).
pub(crate) fn lower_hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({})", self.to_hex())
    }
}

impl FromStr for ChainHash {
    type Err = HashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainHash::from_hex(s)
    }
}

impl Serialize for ChainHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChainHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(HashVisitor)
    }
}

/// Reads the hex text without an intermediate `String` (two hashes per event).
struct HashVisitor;

impl serde::de::Visitor<'_> for HashVisitor {
    type Value = ChainHash;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a hash of 64 lowercase hex digits")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ChainHash, E> {
        ChainHash::from_hex(text).map_err(E::custom)
    }
}

/// Why a text hash was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    /// The text is not 64 characters long.
    #[error("a hash must be 64 lowercase hex digits, found {0} characters")]
    Length(usize),
    /// The text contains something other than `0-9a-f`.
    #[error("a hash must be 64 lowercase hex digits, found {0:?}")]
    Digit(char),
}

/// A position in the chain: the seq and hash of its last event.
///
/// This is all a writer needs to append the next event and all a verifier needs to
/// resume where a previous verification stopped; `Head::GENESIS` is the empty chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    /// Seq of the last event (0 for the empty chain).
    pub seq: u64,
    /// Hash of the last event ([`ChainHash::ZERO`] for the empty chain).
    pub hash: ChainHash,
}

impl Head {
    /// The empty chain: the next event is seq 1 and links to [`ChainHash::ZERO`].
    pub const GENESIS: Head = Head {
        seq: 0,
        hash: ChainHash::ZERO,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_is_lowercase() {
        let h = ChainHash::from_bytes([0xAB; 32]);
        assert_eq!(h.to_hex(), "ab".repeat(32));
        assert_eq!(ChainHash::from_hex(&h.to_hex()), Ok(h));
    }

    #[test]
    fn refuses_other_spellings() {
        assert_eq!(
            ChainHash::from_hex(&"AB".repeat(32)),
            Err(HashParseError::Digit('A'))
        );
        assert_eq!(ChainHash::from_hex("abc"), Err(HashParseError::Length(3)));
        assert_eq!(
            ChainHash::from_hex(&"é".repeat(32)),
            Err(HashParseError::Digit('é'))
        );
        let err = serde_json::from_str::<ChainHash>("\"00\"").unwrap_err();
        assert!(err.to_string().contains("found 2 characters"), "{err}");
    }
}
