//! Proving recordings untouched: each `recording.sealed` event of a verified
//! chain names a file and its SHA-256; the file as it lies must hash the
//! same. A recording the retention sweep deleted has a `recording.expired`
//! event and is no longer expected.
//!
//! The collector takes events one by one, so the offline verifier feeds it
//! from the same stream it verifies, and the gateway from its store.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use periscope_audit::AuditEvent;
use periscope_audit::actions;
use sha2::{Digest, Sha256};

/// A recording the chain vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Seq of its `recording.sealed` event.
    pub seq: u64,
    /// The recording id (the session id).
    pub id: String,
    /// Its file, relative to the recordings directory.
    pub file: String,
    /// The sealed SHA-256, lowercase hex.
    pub sha256: String,
}

/// What is wrong with one sealed recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file is not in the directory.
    Missing,
    /// The file's hash differs from the seal.
    Tampered {
        /// The hash of the file as it lies.
        actual: String,
    },
    /// The file could not be read.
    Unreadable(String),
    /// The seal names something that is not a plain file name.
    BadName,
}

/// The outcome of checking a recordings directory against the seals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Sealed recordings checked.
    pub checked: u64,
    /// Of which intact.
    pub intact: u64,
    /// Sealed recordings deleted by the retention sweep (not checked).
    pub expired: u64,
    /// Each recording that failed, with why.
    pub problems: Vec<(Sealed, Problem)>,
}

impl Report {
    /// Whether every sealed recording is intact.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// One sentence per failed recording.
    pub fn problem_lines(&self) -> Vec<String> {
        self.problems
            .iter()
            .map(|(s, p)| {
                format!(
                    "recording {} (sealed at seq {}): {}",
                    s.id,
                    s.seq,
                    p.describe(s)
                )
            })
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ok() {
            write!(
                f,
                "recordings intact: {} sealed recording{} checked",
                self.checked,
                if self.checked == 1 { "" } else { "s" }
            )?;
        } else {
            write!(
                f,
                "{} of {} sealed recordings failed: {}",
                self.problems.len(),
                self.checked,
                self.problem_lines().join("; ")
            )?;
        }
        if self.expired > 0 {
            write!(f, " ({} deleted by retention)", self.expired)?;
        }
        Ok(())
    }
}

impl Problem {
    fn describe(&self, s: &Sealed) -> String {
        match self {
            Problem::Missing => format!("file {} is missing", s.file),
            Problem::Tampered { actual } => format!(
                "file {} was altered: its SHA-256 is {actual}, the seal says {}",
                s.file, s.sha256
            ),
            Problem::Unreadable(e) => format!("file {} cannot be read: {e}", s.file),
            Problem::BadName => format!("the seal names {:?}, which is not a file name", s.file),
        }
    }
}

/// Gathers the seals of a chain, event by event.
#[derive(Debug, Default)]
pub struct Collector {
    sealed: BTreeMap<String, Sealed>,
    expired: u64,
}

impl Collector {
    /// Looks at one (verified) event.
    pub fn add(&mut self, event: &AuditEvent) {
        let id = event.details["recording"].as_str().unwrap_or_default();
        if event.action == actions::RECORDING_SEALED {
            let (Some(file), Some(sha256)) = (
                event.details["file"].as_str(),
                event.details["sha256"].as_str(),
            ) else {
                // A recording that could not be written: nothing to check.
                return;
            };
            self.sealed.insert(
                id.to_string(),
                Sealed {
                    seq: event.seq,
                    id: id.to_string(),
                    file: file.to_string(),
                    sha256: sha256.to_string(),
                },
            );
        } else if event.action == actions::RECORDING_EXPIRED && self.sealed.remove(id).is_some() {
            self.expired += 1;
        }
    }

    /// Checks every sealed recording still expected against `dir`.
    pub fn check(&self, dir: &Path) -> Report {
        let mut report = Report {
            expired: self.expired,
            ..Report::default()
        };
        for sealed in self.sealed.values() {
            report.checked += 1;
            match check_one(dir, sealed) {
                None => report.intact += 1,
                Some(problem) => report.problems.push((sealed.clone(), problem)),
            }
        }
        report
    }
}

/// Checks the recordings sealed in the gateway's own chain against its
/// recordings directory (the store's events are read by pages, oldest
/// first); `None` when nothing was ever recorded and the directory does
/// not exist.
pub async fn check_gateway(
    gateway: &crate::gateway::Gateway,
) -> Result<Option<Report>, periscope_store::StoreError> {
    const PAGE: u32 = 10_000;
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = gateway
            .store()
            .search_audit(&periscope_store::AuditQuery {
                action: Some("recording.".to_string()),
                before_seq: before,
                limit: PAGE,
                ..periscope_store::AuditQuery::default()
            })
            .await?;
        let full = page.len() as u32 == PAGE;
        before = page.first().map(|e| e.seq);
        events.extend(page);
        if !full {
            break;
        }
    }
    let dir = super::recordings_dir(gateway);
    if events.is_empty() && !dir.exists() {
        return Ok(None);
    }
    events.sort_by_key(|e| e.seq);
    let mut collector = Collector::default();
    for e in &events {
        collector.add(e);
    }
    let report = tokio::task::spawn_blocking(move || collector.check(&dir))
        .await
        .unwrap_or_default();
    Ok(Some(report))
}

fn check_one(dir: &Path, sealed: &Sealed) -> Option<Problem> {
    if super::file_id(&sealed.file).is_none() {
        return Some(Problem::BadName);
    }
    let file = match std::fs::File::open(dir.join(&sealed.file)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Problem::Missing),
        Err(e) => return Some(Problem::Unreadable(e.to_string())),
    };
    match sha256_of(file) {
        Ok(actual) if actual == sealed.sha256 => None,
        Ok(actual) => Some(Problem::Tampered { actual }),
        Err(e) => Some(Problem::Unreadable(e.to_string())),
    }
}

/// SHA-256 of everything `input` holds, lowercase hex.
pub fn sha256_of(mut input: impl Read) -> io::Result<String> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_audit::{AuditTime, ChainHash};
    use serde_json::json;

    fn event(seq: u64, action: &str, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            seq,
            time: AuditTime::parse("2026-12-06T00:00:00.000000Z").unwrap(),
            actor: "dana".into(),
            action: action.into(),
            target: "files".into(),
            details,
            grant_ids: vec![],
            prev_hash: ChainHash::ZERO,
            hash: ChainHash::ZERO,
        }
    }

    #[test]
    fn names_missing_altered_and_expired_recordings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ses_a.cast"), "intact").unwrap();
        std::fs::write(dir.path().join("ses_b.cast"), "edited").unwrap();
        std::fs::write(dir.path().join("ses_s.sql.jsonl"), "statements").unwrap();
        std::fs::write(dir.path().join("ses_t.sql.jsonl"), "edited").unwrap();
        let hash = |t: &str| sha256_of(t.as_bytes()).unwrap();
        let mut c = Collector::default();
        for (seq, id, text) in [
            (1, "ses_a", "intact"),
            (2, "ses_b", "original"),
            (3, "ses_c", "x"),
            (4, "ses_d", "y"),
        ] {
            c.add(&event(
                seq,
                "recording.sealed",
                json!({"recording": id, "file": format!("{id}.cast"), "sha256": hash(text)}),
            ));
        }
        for (seq, id, text) in [(8, "ses_s", "statements"), (9, "ses_t", "original")] {
            c.add(&event(
                seq,
                "recording.sealed",
                json!({"recording": id, "format": "periscope-sql",
                       "file": format!("{id}.sql.jsonl"), "sha256": hash(text)}),
            ));
        }
        c.add(&event(
            5,
            "recording.expired",
            json!({"recording": "ses_d"}),
        ));
        c.add(&event(
            6,
            "recording.sealed",
            json!({"recording": "ses_e", "file": null}),
        ));
        c.add(&event(
            7,
            "recording.sealed",
            json!({"recording": "x", "file": "../etc/passwd", "sha256": "00"}),
        ));
        let report = c.check(dir.path());
        assert_eq!((report.checked, report.intact, report.expired), (6, 2, 1));
        let lines = report.problem_lines().join("\n");
        assert!(
            lines.contains("recording ses_b (sealed at seq 2): file ses_b.cast was altered"),
            "{lines}"
        );
        assert!(
            lines.contains("recording ses_c (sealed at seq 3): file ses_c.cast is missing"),
            "{lines}"
        );
        assert!(lines.contains("not a file name"), "{lines}");
        assert!(
            lines.contains("recording ses_t (sealed at seq 9): file ses_t.sql.jsonl was altered"),
            "{lines}"
        );
        assert!(!report.ok());
    }
}
