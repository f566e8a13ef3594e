//! `[recordings]`: what the gateway keeps of each session (exec runs as
//! asciicast, PostgreSQL sessions as statements with result samples), as
//! the engineer saw it (masked), and for how long.
//!
//! Kept in a file of its own so the section's model, its raw form and its
//! checks read together; `validate` calls [`validate`] once.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::Reporter;
use super::raw::S;

/// Default `retention`: long enough for an incident review, short enough
/// that masked output does not pile up.
pub const DEFAULT_RECORDING_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Shortest `retention`: a sweep runs every hour.
pub const MIN_RECORDING_RETENTION: Duration = Duration::from_secs(3600);
/// Longest `retention` (ten years).
pub const MAX_RECORDING_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Default `max_size` of one recording, in bytes: the default `max_output`
/// of an exec connection, plus room for the cast's framing.
pub const DEFAULT_RECORDING_MAX_SIZE: u64 = 80 * 1024 * 1024;
/// Largest `max_size` of one recording, in bytes.
pub const MAX_RECORDING_MAX_SIZE: u64 = 16 * 1024 * 1024 * 1024;
/// Default `sql_sample_rows`: enough rows to see what a statement showed.
pub const DEFAULT_SQL_SAMPLE_ROWS: usize = 10;
/// Largest `sql_sample_rows`.
pub const MAX_SQL_SAMPLE_ROWS: usize = 1000;
/// Default `sql_sample_bytes`: a few screens of text per statement.
pub const DEFAULT_SQL_SAMPLE_BYTES: usize = 8 * 1024;
/// Largest `sql_sample_bytes` (1 MiB per statement).
pub const MAX_SQL_SAMPLE_BYTES: usize = 1024 * 1024;

/// `[recordings]`: recordings of exec sessions (asciicast v2), sealed into
/// the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingsConfig {
    /// Whether sessions are recorded (default true: a recording is part of
    /// the audit trail, opt-out like every shield).
    pub enabled: bool,
    /// Where recordings are written; `None` means `recordings/` under the
    /// data directory.
    pub dir: Option<PathBuf>,
    /// Recordings older than this are deleted by the hourly sweep (default
    /// 30 days); each deletion is audited so verification does not report
    /// it as missing.
    pub retention: Duration,
    /// A recording stops growing at this many bytes (the session goes on;
    /// the recording and its seal say it was truncated).
    pub max_size: u64,
    /// Whether PostgreSQL sessions are recorded too (each statement with a
    /// sample of its masked result); only when `enabled`.
    pub sql: bool,
    /// Rows of each statement's result a SQL recording keeps (0: none).
    pub sql_sample_rows: usize,
    /// Bytes of each statement's result rows a SQL recording keeps.
    pub sql_sample_bytes: usize,
}

impl Default for RecordingsConfig {
    fn default() -> Self {
        RecordingsConfig {
            enabled: true,
            dir: None,
            retention: DEFAULT_RECORDING_RETENTION,
            max_size: DEFAULT_RECORDING_MAX_SIZE,
            sql: true,
            sql_sample_rows: DEFAULT_SQL_SAMPLE_ROWS,
            sql_sample_bytes: DEFAULT_SQL_SAMPLE_BYTES,
        }
    }
}

/// The section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecordings {
    pub enabled: Option<bool>,
    pub dir: Option<S<String>>,
    pub retention: Option<S<String>>,
    pub max_size: Option<S<i64>>,
    pub sql: Option<bool>,
    pub sql_sample_rows: Option<S<i64>>,
    pub sql_sample_bytes: Option<S<i64>>,
}

/// Checks `[recordings]`, reporting each mistake at its span.
pub(crate) fn validate(raw: RawRecordings, r: &mut Reporter<'_>) -> RecordingsConfig {
    let defaults = RecordingsConfig::default();
    let dir = raw.dir.and_then(|d| {
        let path = PathBuf::from(d.get_ref());
        if path.is_absolute() {
            Some(path)
        } else {
            r.error(
                d.span(),
                "`dir` must be an absolute path (or left out: `recordings/` under the data directory)",
            );
            None
        }
    });
    let retention = match raw.retention {
        None => defaults.retention,
        Some(text) => super::validate::duration(
            r,
            &text,
            "retention",
            MIN_RECORDING_RETENTION,
            MAX_RECORDING_RETENTION,
        )
        .unwrap_or(defaults.retention),
    };
    let max_size = match raw.max_size {
        None => defaults.max_size,
        Some(n) => match u64::try_from(*n.get_ref()) {
            Ok(v) if (4096..=MAX_RECORDING_MAX_SIZE).contains(&v) => v,
            _ => {
                r.error(
                    n.span(),
                    format!(
                        "`max_size` is a number of bytes between 4096 and {MAX_RECORDING_MAX_SIZE}"
                    ),
                );
                defaults.max_size
            }
        },
    };
    let mut bounded = |value: Option<S<i64>>, key: &str, max: usize, default: usize| match value {
        None => default,
        Some(n) => match usize::try_from(*n.get_ref()) {
            Ok(v) if v <= max => v,
            _ => {
                r.error(n.span(), format!("`{key}` is a number between 0 and {max}"));
                default
            }
        },
    };
    let sql_sample_rows = bounded(
        raw.sql_sample_rows,
        "sql_sample_rows",
        MAX_SQL_SAMPLE_ROWS,
        defaults.sql_sample_rows,
    );
    let sql_sample_bytes = bounded(
        raw.sql_sample_bytes,
        "sql_sample_bytes",
        MAX_SQL_SAMPLE_BYTES,
        defaults.sql_sample_bytes,
    );
    RecordingsConfig {
        enabled: raw.enabled.unwrap_or(defaults.enabled),
        dir,
        retention,
        max_size,
        sql: raw.sql.unwrap_or(defaults.sql),
        sql_sample_rows,
        sql_sample_bytes,
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn defaults_and_bad_values() {
        let c = Config::parse("", "p").unwrap();
        assert!(c.recordings.enabled);
        assert_eq!(c.recordings.retention.as_secs(), 30 * 24 * 3600);
        assert!(c.recordings.sql);
        assert_eq!(
            (c.recordings.sql_sample_rows, c.recordings.sql_sample_bytes),
            (10, 8192)
        );
        let c = Config::parse(
            "[recordings]\nsql = false\nsql_sample_rows = 0\nsql_sample_bytes = 100\n",
            "p",
        )
        .unwrap();
        assert!(!c.recordings.sql);
        assert_eq!(
            (c.recordings.sql_sample_rows, c.recordings.sql_sample_bytes),
            (0, 100)
        );
        let c = Config::parse(
            "[recordings]\nenabled = false\nretention = \"7d\"\nmax_size = 1048576\ndir = \"/var/rec\"\n",
            "p",
        )
        .unwrap();
        assert!(!c.recordings.enabled);
        assert_eq!(c.recordings.max_size, 1 << 20);
        assert_eq!(
            c.recordings.dir.as_deref(),
            Some(std::path::Path::new("/var/rec"))
        );
        let err = Config::parse(
            "[recordings]\nretention = \"1m\"\nmax_size = 10\ndir = \"rel\"\nsql_sample_rows = -1\n",
            "p",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`retention` must be between"), "{err}");
        assert!(err.contains("`max_size` is a number of bytes"), "{err}");
        assert!(err.contains("`dir` must be an absolute path"), "{err}");
        assert!(err.contains("`sql_sample_rows` is a number"), "{err}");
    }
}
