//! Recordings of sessions as the engineer saw them (masked), sealed into
//! the audit chain at the session's end: terminal sessions (exec today,
//! logs and shells next) in asciicast v2, PostgreSQL sessions as each
//! statement with a sample of its masked result ([`sql`]).
//!
//! ```text
//! <recordings dir>/             0700 (default: <data-dir>/recordings)
//!   ses_....cast.part           being written (0600)
//!   ses_....cast                closed and sealed: its SHA-256 is in a
//!                               `recording.sealed` audit event
//!   ses_....sql.jsonl(.part)    a PostgreSQL session's recording, alike
//! ```
//!
//! - [`cast`]: the writer. A session hands each masked piece to a
//!   [`Recorder`] without waiting (a bounded channel to a writer task): a
//!   slow disk never slows or blocks the stream the engineer sees. If the
//!   writer falls behind, the pieces that do not fit are counted, a marker
//!   in the recording says how many bytes are missing, and the seal says so
//!   too.
//! - [`Recording`]: what a data plane calls: [`Recording::begin`],
//!   [`Recording::relay`] (one call puts the recorder between a run and its
//!   client), [`Recording::seal`] (the `recording.sealed` event).
//! - [`sql`]: the SQL recordings' writer, fed by the PostgreSQL session's
//!   audit sink after each statement's outcome, sealed before its
//!   `session.end` (`shutdown::Sealing` lets shutdown wait for those
//!   seals); [`start_sql`] starts one.
//! - [`verify`]: recompute each sealed recording's hash; used by
//!   `POST /v1/audit/verify` and offline by `periscope audit verify
//!   --recordings DIR`.
//! - [`sweep`]: the retention sweep (hourly), each deletion audited as
//!   `recording.expired` so verification stops expecting the file.

pub mod cast;
pub mod sql;
pub mod sweep;
pub mod verify;

use std::future::Future;
use std::path::PathBuf;

use periscope_audit::actions;
use periscope_exec::run::Output;
use periscope_policy::AuditDurability;
use periscope_shield::record::AuditSink;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

pub use cast::{CastHeader, Recorder, RecordingFile, Written};

use crate::audit_sink::GatewaySink;
use crate::gateway::Gateway;

/// The recordings directory in force: `[recordings] dir`, or `recordings/`
/// under the data directory.
pub fn recordings_dir(gateway: &Gateway) -> PathBuf {
    gateway
        .config()
        .config
        .recordings
        .dir
        .clone()
        .unwrap_or_else(|| gateway.data_dir().join("recordings"))
}

/// How recording files are written under the configuration in force: in
/// [`recordings_dir`], within `[recordings] max_size`, synced to disk when
/// `[audit] durability = "power-loss"` (see [`RecordingFile::sync`]).
pub fn recording_file(gateway: &Gateway) -> RecordingFile {
    let config = gateway.config();
    RecordingFile {
        dir: recordings_dir(gateway),
        max_size: config.config.recordings.max_size,
        sync: config.config.audit.durability == AuditDurability::PowerLoss,
    }
}

/// Whether `id` can name a recording file: session ids only (`ses_...`),
/// so no path can be smuggled in.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The recording id a file of the recordings directory holds, for the
/// names the gateway writes (`<id>.cast`, `<id>.sql.jsonl`): seals name
/// nothing else, so nothing else is ever verified or served.
pub fn file_id(file: &str) -> Option<&str> {
    file.strip_suffix(".cast")
        .or_else(|| file.strip_suffix(sql::SUFFIX))
        .filter(|id| valid_id(id))
}

/// The media type a recording file is served with.
pub fn content_type(file: &str) -> &'static str {
    if file.ends_with(sql::SUFFIX) {
        periscope_api::SQL_RECORDING_CONTENT_TYPE
    } else {
        periscope_api::CAST_CONTENT_TYPE
    }
}

/// Starts the recording of PostgreSQL session `session` (statements with a
/// sample of their masked results) when `[recordings]` says so: the
/// recorder, and the session's start (RFC 3339) for the seal. The writer
/// task opens the file: the session never waits.
pub fn start_sql(
    gateway: &Gateway,
    ctx: &crate::audit_sink::SessionContext,
    session: &str,
) -> Option<(sql::SqlRecorder, String)> {
    let config = gateway.config();
    let settings = &config.config.recordings;
    if !(settings.enabled && settings.sql && valid_id(session)) {
        return None;
    }
    let started_at = gateway.now();
    let started = started_at.format(&Rfc3339).unwrap_or_default();
    let header = sql::SqlHeader {
        session: session.to_string(),
        identity: ctx.identity.clone(),
        connection: ctx.connection.clone(),
        started_at: started.clone(),
        timestamp: started_at.unix_timestamp(),
        client_addr: ctx.client_addr.to_string(),
        application_name: ctx.application_name.clone(),
        sample_rows: settings.sql_sample_rows,
        sample_bytes: settings.sql_sample_bytes,
    };
    let recorder = sql::SqlRecorder::start(recording_file(gateway), header);
    Some((recorder, started))
}

/// A piece of a stream a recorder can keep: its text as the engineer saw it.
pub trait Recordable {
    /// The masked text.
    fn text(&self) -> &str;
}

impl Recordable for Output {
    fn text(&self) -> &str {
        // stdout and stderr both end up on the engineer's terminal: both are
        // recorded as asciicast output (`"o"`), in the order they were sent.
        match self {
            Output::Stdout(s) | Output::Stderr(s) => s,
        }
    }
}

/// One session's recording, or nothing when recordings are disabled or the
/// file could not be created (the session goes on; the gateway logs why).
pub struct Recording {
    recorder: Option<Recorder>,
    id: String,
    session: String,
    started_at: OffsetDateTime,
}

impl Recording {
    /// Starts recording session `session` (its id names the file), titled
    /// `title` (e.g. the masked command line).
    pub fn begin(gateway: &Gateway, session: &str, title: String) -> Recording {
        Self::begin_sized(gateway, session, title, 120, 40)
    }

    /// [`Recording::begin`] for a terminal of a known size (a shell: the
    /// client's window at start), which players use for their screen.
    pub fn begin_sized(
        gateway: &Gateway,
        session: &str,
        title: String,
        width: u16,
        height: u16,
    ) -> Recording {
        let config = gateway.config();
        let settings = &config.config.recordings;
        let started_at = gateway.now();
        let recorder = if settings.enabled && valid_id(session) {
            let header = CastHeader {
                width,
                height,
                timestamp: started_at.unix_timestamp(),
                title,
            };
            Some(Recorder::start(
                recording_file(gateway),
                session.to_string(),
                header,
            ))
        } else {
            None
        };
        Recording {
            recorder,
            id: session.to_string(),
            session: session.to_string(),
            started_at,
        }
    }

    /// Puts the recorder between a producer and its client: returns the
    /// sender the producer writes to, and the future that forwards every
    /// piece to `to` (recording it on the way) until the producer is done or
    /// the client is gone (then the producer's sends fail, as if the client
    /// had gone itself). The future gives the recording back, to be sealed.
    pub fn relay<T: Recordable + Send + 'static>(
        mut self,
        to: mpsc::Sender<T>,
        capacity: usize,
    ) -> (mpsc::Sender<T>, impl Future<Output = Recording> + Send) {
        let (tx, mut rx) = mpsc::channel::<T>(capacity.max(1));
        let relay = async move {
            loop {
                let piece = tokio::select! {
                    piece = rx.recv() => piece,
                    () = to.closed() => None,
                };
                let Some(piece) = piece else { break };
                if let Some(recorder) = self.recorder.as_mut() {
                    recorder.record(piece.text());
                }
                if to.send(piece).await.is_err() {
                    break;
                }
            }
            self
        };
        (tx, relay)
    }

    /// Closes the file and seals its hash into the audit chain
    /// (`recording.sealed`, through the session's sink, so it precedes the
    /// session's end event). Nothing when there was no recording.
    pub async fn seal(self, sink: &GatewaySink) {
        let Some(recorder) = self.recorder else {
            return;
        };
        let sealed = recorder.finish().await;
        let details = match &sealed {
            Ok(w) => json!({
                "recording": self.id,
                "session": self.session,
                "file": w.file,
                "sha256": w.sha256,
                "bytes": w.bytes,
                "events": w.events,
                "truncated": w.truncated,
                "dropped_bytes": w.dropped_bytes,
                "started_at": self.started_at.format(&Rfc3339).unwrap_or_default(),
                "duration_ms": w.duration.as_millis() as u64,
            }),
            Err(e) => {
                tracing::error!(recording = %self.id, error = %e, "a recording could not be written");
                json!({
                    "recording": self.id,
                    "session": self.session,
                    "file": null,
                    "error": e.to_string(),
                })
            }
        };
        let draft = sink.draft(actions::RECORDING_SEALED).with_details(details);
        if let Err(e) = sink.submit(draft).await {
            tracing::error!(recording = %self.id, error = %e, "a recording's seal was not recorded");
        }
    }
}
