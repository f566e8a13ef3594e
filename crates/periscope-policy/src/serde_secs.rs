//! Serialises a [`Duration`] as whole seconds: the unit grants are kept in, and
//! the one a JSON or SQL reader expects without a parsing library.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Writes the duration as whole seconds.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(d.as_secs())
}

/// Reads whole seconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_secs)
}
