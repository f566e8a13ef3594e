//! The retention sweep: recordings older than `[recordings] retention` are
//! deleted, hourly and once at start. Each deleted sealed recording is
//! audited first (`recording.expired`), then removed, so that a verification
//! never reports as missing a file the gateway deleted on purpose, and a
//! deletion nobody recorded still shows as missing.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use periscope_audit::actions;
use serde_json::json;

use crate::gateway::{Gateway, SYSTEM_ACTOR};
use crate::shutdown::Shutdown;

/// How often the sweep runs.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// A file the sweep will delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The file.
    pub path: PathBuf,
    /// The recording id when it is a closed (sealed) recording; `None` for
    /// a `.part` left by a gateway that stopped mid-recording.
    pub id: Option<String>,
    /// The file's name.
    pub file: String,
}

/// The recordings in `dir` last written before `cutoff`, oldest first.
pub fn candidates(dir: &Path, cutoff: SystemTime) -> io::Result<Vec<Candidate>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let id = if let Some(id) = super::file_id(&name) {
            Some(id.to_string())
        } else if name.ends_with(".cast.part") || name.ends_with(".sql.jsonl.part") {
            None
        } else {
            continue;
        };
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified()?;
        if modified < cutoff {
            out.push((
                modified,
                Candidate {
                    path: entry.path(),
                    id,
                    file: name,
                },
            ));
        }
    }
    out.sort_by_key(|(m, _)| *m);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// One sweep: audit, then delete, each expired recording.
pub async fn sweep_once(gateway: &Gateway) -> io::Result<usize> {
    let config = gateway.config();
    let retention = config.config.recordings.retention;
    let dir = super::recordings_dir(gateway);
    let now = gateway.now().unix_timestamp();
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let Some(cutoff) = now.checked_sub(retention) else {
        return Ok(0);
    };
    let found = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || candidates(&dir, cutoff))
            .await
            .map_err(io::Error::other)??
    };
    let mut deleted = 0;
    for candidate in found {
        if let Some(id) = &candidate.id {
            let draft = gateway
                .draft(SYSTEM_ACTOR, actions::RECORDING_EXPIRED, id.clone())
                .with_details(json!({
                    "recording": id,
                    "file": candidate.file,
                    "retention": humantime::format_duration(retention).to_string(),
                }));
            if let Err(e) = gateway.audit(draft).await {
                tracing::error!(recording = %id, error = %e, "cannot audit a recording's expiry; kept");
                continue;
            }
        }
        match tokio::fs::remove_file(&candidate.path).await {
            Ok(()) => deleted += 1,
            Err(e) => {
                tracing::warn!(file = %candidate.path.display(), error = %e, "cannot delete an expired recording")
            }
        }
    }
    Ok(deleted)
}

/// Sweeps at start, then every [`SWEEP_EVERY`], until shutdown.
pub async fn run(gateway: Gateway, mut stop: Shutdown) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match sweep_once(&gateway).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "recordings past their retention deleted"),
                    Err(e) => tracing::warn!(error = %e, "the recordings sweep failed"),
                }
            }
            () = stop.wait() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_recordings_are_candidates() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "ses_a.cast",
            "ses_b.cast.part",
            "notes.txt",
            "ses_c.sql.jsonl",
            "ses_d.sql.jsonl.part",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let future = SystemTime::now() + Duration::from_secs(60);
        let found = candidates(dir.path(), future).unwrap();
        let ids: Vec<_> = found.iter().map(|c| c.id.clone()).collect();
        assert_eq!(found.len(), 4);
        assert!(ids.contains(&Some("ses_a".to_string())));
        assert!(ids.contains(&Some("ses_c".to_string())));
        assert_eq!(ids.iter().filter(|i| i.is_none()).count(), 2);
        let past = SystemTime::now() - Duration::from_secs(3600);
        assert!(candidates(dir.path(), past).unwrap().is_empty());
        assert!(
            candidates(&dir.path().join("none"), future)
                .unwrap()
                .is_empty()
        );
    }
}
