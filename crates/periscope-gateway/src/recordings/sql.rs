//! The writer of a PostgreSQL session's recording: each statement with a
//! sample of its masked result, as JSON lines, off the statements' path.
//!
//! The session hands each [`StatementRecord`] to a [`SqlRecorder`] after the
//! statement's outcome (or refusal) with [`SqlRecorder::record`], which
//! never waits: statements are gathered in batches ([`BATCH`] statements,
//! or [`BATCH_BYTES`] of samples, or [`BATCH_AGE`]) and each batch goes
//! through a bounded channel ([`QUEUE`] batches) to a writer task that
//! decodes the samples to text, formats the lines, hashes them and writes
//! them through a buffer, so a busy session wakes the writer once per batch,
//! not once per statement. The statement's own audit event stays on its
//! durability path; the recording adds no write there. When the channel is
//! full the batch is not recorded: its statements are counted, the next
//! line that fits is preceded by a note saying how many are missing, and
//! the seal carries the total.
//!
//! The file is `<session>.sql.jsonl` (`.part` while written), hashed over
//! exactly the bytes written, and its format is documented in
//! docs/recordings.md:
//!
//! ```text
//! {"format":"periscope-sql","version":1,"session":...,"identity":...,"connection":...,"started_at":...,...}
//! {"t":0.0123,"type":"statement","text":"SELECT ...","class":"select","outcome":"ok","rows":5,
//!  "columns":[{"name":"email","type":"text","masked":"email"}],"sample":[["[email]"]],"sample_truncated":false,...}
//! {"t":1.5,"type":"note","text":"periscope: ..."}
//! ```

use std::io;
use std::time::{Duration, Instant};

use periscope_shield::record::{RecordedOutcome, StatementRecord};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::cast::{HashedFile, RecordingFile};

/// Batches queued between a session and its writer task.
pub const QUEUE: usize = 16;
/// Statements gathered before they are handed to the writer.
pub const BATCH: usize = 16;
/// Sample bytes gathered before they are handed to the writer (bounds the
/// memory a session holds for its recording with [`QUEUE`]).
pub const BATCH_BYTES: usize = 64 * 1024;
/// Longest a statement waits in a batch when the session goes on (checked
/// at the next statement; the session's end hands over the rest).
pub const BATCH_AGE: Duration = Duration::from_millis(200);
/// The suffix of a SQL recording's file name.
pub const SUFFIX: &str = ".sql.jsonl";
/// The `format` of a SQL recording's header.
pub const FORMAT: &str = "periscope-sql";

/// What a SQL recording's header says.
#[derive(Debug, Clone)]
pub struct SqlHeader {
    /// The session id.
    pub session: String,
    /// Whose session.
    pub identity: String,
    /// On which connection.
    pub connection: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it started (Unix seconds).
    pub timestamp: i64,
    /// Where the client connected from.
    pub client_addr: String,
    /// What the client calls itself.
    pub application_name: Option<String>,
    /// Rows kept per statement.
    pub sample_rows: usize,
    /// Bytes kept per statement.
    pub sample_bytes: usize,
}

/// A closed SQL recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlWritten {
    /// The file's name in the recordings directory.
    pub file: String,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Size of the file.
    pub bytes: u64,
    /// Statements written.
    pub statements: u64,
    /// Whether `max_size` cut the recording short.
    pub truncated: bool,
    /// Statements not recorded because the writer fell behind.
    pub dropped_statements: u64,
    /// From the start to the close.
    pub duration: Duration,
}

enum Item {
    Statements(Vec<StatementRecord>),
    Note(f64, String),
}

struct TaskOutcome {
    file: String,
    sha256: String,
    bytes: u64,
    statements: u64,
    truncated: bool,
}

/// The session's side of a SQL recording.
pub struct SqlRecorder {
    tx: mpsc::Sender<Item>,
    batch: Vec<StatementRecord>,
    batch_bytes: usize,
    batch_since: Option<Instant>,
    task: JoinHandle<io::Result<TaskOutcome>>,
    started: Instant,
    pending_drop: u64,
    dropped_total: u64,
}

impl std::fmt::Debug for SqlRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlRecorder")
            .field("dropped", &self.dropped_total)
            .finish_non_exhaustive()
    }
}

fn missing_note(n: u64) -> String {
    format!(
        "periscope: the recorder fell behind; {n} statement{} missing here",
        if n == 1 { " is" } else { "s are" }
    )
}

impl SqlRecorder {
    /// Starts the writer task of the recording of `header.session` in
    /// `file.dir`. Errors surface in [`SqlRecorder::finish`].
    pub fn start(file: RecordingFile, header: SqlHeader) -> SqlRecorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(file, header, rx));
        SqlRecorder {
            tx,
            batch: Vec::new(),
            batch_bytes: 0,
            batch_since: None,
            task,
            started: Instant::now(),
            pending_drop: 0,
            dropped_total: 0,
        }
    }

    /// Records one statement; never waits.
    pub fn record(&mut self, record: StatementRecord) {
        let sample_bytes = record.sample.as_ref().map_or(0, |s| s.held_bytes());
        let now = Instant::now();
        let since = *self.batch_since.get_or_insert(now);
        self.batch.push(record);
        self.batch_bytes += sample_bytes;
        if self.batch.len() >= BATCH
            || self.batch_bytes >= BATCH_BYTES
            || now.duration_since(since) >= BATCH_AGE
        {
            self.hand_over();
        }
    }

    /// Hands the batch to the writer, or counts it as dropped.
    fn hand_over(&mut self) {
        self.batch_since = None;
        self.batch_bytes = 0;
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        let n = batch.len() as u64;
        if self.pending_drop > 0 {
            let at = batch[0].at.as_secs_f64();
            if self
                .tx
                .try_send(Item::Note(at, missing_note(self.pending_drop)))
                .is_err()
            {
                self.pending_drop += n;
                self.dropped_total += n;
                return;
            }
            self.pending_drop = 0;
        }
        if self.tx.try_send(Item::Statements(batch)).is_err() {
            self.pending_drop += n;
            self.dropped_total += n;
        }
    }

    /// Closes the recording: the writer drains what is queued, flushes the
    /// file to disk and renames it to its final name.
    pub async fn finish(mut self) -> io::Result<SqlWritten> {
        let duration = self.started.elapsed();
        if !self.batch.is_empty() {
            // The channel is drained from here on: wait for room.
            let batch = std::mem::take(&mut self.batch);
            if self.pending_drop > 0 {
                let at = batch[0].at.as_secs_f64();
                let _ = self
                    .tx
                    .send(Item::Note(at, missing_note(self.pending_drop)))
                    .await;
                self.pending_drop = 0;
            }
            let _ = self.tx.send(Item::Statements(batch)).await;
        }
        if self.pending_drop > 0 {
            let _ = self
                .tx
                .send(Item::Note(
                    duration.as_secs_f64(),
                    missing_note(self.pending_drop),
                ))
                .await;
        }
        drop(self.tx);
        let outcome = self
            .task
            .await
            .map_err(|e| io::Error::other(format!("the recording task failed: {e}")))??;
        Ok(SqlWritten {
            file: outcome.file,
            sha256: outcome.sha256,
            bytes: outcome.bytes,
            statements: outcome.statements,
            truncated: outcome.truncated,
            dropped_statements: self.dropped_total,
            duration,
        })
    }
}

/// Seconds, to the microsecond.
fn round(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1_000_000.0
}

/// The line of one statement, serialised straight from the record (no
/// intermediate JSON value: the writer formats one per statement).
#[derive(Serialize)]
struct StatementLine<'a> {
    t: f64,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    text: &'a str,
    class: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqlstate: Option<&'a str>,
    /// Refusals only; `null` when no shield is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    shield: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    rows: u64,
    duration_ms: f64,
    masked: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    columns: Option<Vec<ColumnLine<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<&'a [Vec<Option<String>>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_truncated: Option<bool>,
}

/// A column of a statement line's sample.
#[derive(Serialize)]
struct ColumnLine<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    masked: Option<&'a str>,
}

/// Appends the line of one statement to `out`: the sample decoded to text
/// here, in the writer task.
fn write_statement_line(out: &mut Vec<u8>, record: StatementRecord) -> io::Result<()> {
    let sample = record.sample.map(|sample| sample.decode());
    let (outcome, sqlstate, shield, message) = match &record.outcome {
        RecordedOutcome::Ok => ("ok", None, None, None),
        RecordedOutcome::Error(code) => ("error", Some(code.as_str()), None, None),
        RecordedOutcome::Refused { shield, message } => (
            "refused",
            None,
            Some(shield.as_deref()),
            Some(message.as_str()),
        ),
    };
    let line = StatementLine {
        t: round(record.at.as_secs_f64()),
        kind: "statement",
        seq: (record.query_seq > 0).then_some(record.query_seq),
        text: &record.text,
        class: &record.class,
        outcome,
        sqlstate,
        shield,
        message,
        rows: record.rows,
        duration_ms: round(record.duration.as_secs_f64()) * 1000.0,
        masked: &record.masked,
        columns: sample.as_ref().map(|sample| {
            sample
                .columns
                .iter()
                .map(|c| ColumnLine {
                    name: &c.name,
                    type_name: &c.type_name,
                    masked: c.masked.as_deref(),
                })
                .collect()
        }),
        sample: sample.as_ref().map(|sample| sample.rows.as_slice()),
        sample_truncated: sample.as_ref().map(|sample| sample.truncated),
    };
    serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
    out.push(b'\n');
    Ok(())
}

/// One line of the recording, before it is encoded.
enum Entry {
    Statement(StatementRecord),
    Note(f64, String),
}

impl Entry {
    /// Appends the line to `out`; returns when it happened (seconds from
    /// the start) and whether it is a statement.
    fn encode(self, out: &mut Vec<u8>) -> io::Result<(f64, bool)> {
        match self {
            Entry::Statement(record) => {
                let at = record.at.as_secs_f64();
                write_statement_line(out, record)?;
                Ok((at, true))
            }
            Entry::Note(at, text) => {
                let note = json!({ "t": round(at), "type": "note", "text": text });
                serde_json::to_writer(&mut *out, &note).map_err(io::Error::other)?;
                out.push(b'\n');
                Ok((at, false))
            }
        }
    }
}

async fn write(
    settings: RecordingFile,
    header: SqlHeader,
    mut rx: mpsc::Receiver<Item>,
) -> io::Result<TaskOutcome> {
    let max_size = settings.max_size;
    let file = format!("{}{SUFFIX}", header.session);
    // The file is created once the first batch (or the session's end)
    // arrives, not while the session's first statement runs: on a busy
    // machine, creating it took CPU from that statement's first row.
    let mut next = rx.recv().await;
    let mut out = HashedFile::create(&settings, &file).await?;
    out.line(&json!({
        "format": FORMAT,
        "version": 1,
        "session": header.session,
        "identity": header.identity,
        "connection": header.connection,
        "started_at": header.started_at,
        "timestamp": header.timestamp,
        "client_addr": header.client_addr,
        "application_name": header.application_name,
        "sample_rows": header.sample_rows,
        "sample_bytes": header.sample_bytes,
    }))
    .await?;
    let (mut statements, mut truncated) = (0u64, false);
    let mut line = Vec::with_capacity(4096);
    loop {
        let item = match next.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => break,
            },
        };
        if truncated {
            continue;
        }
        // Each item's lines, formatted one by one into `line`.
        let (records, note) = match item {
            Item::Statements(batch) => (batch, None),
            Item::Note(at, text) => (Vec::new(), Some(Entry::Note(at, text))),
        };
        let entries = note
            .into_iter()
            .chain(records.into_iter().map(Entry::Statement));
        for entry in entries {
            line.clear();
            let (at, is_statement) = entry.encode(&mut line)?;
            if out.bytes + line.len() as u64 + 256 > max_size {
                truncated = true;
                out.line(&json!({
                    "t": round(at),
                    "type": "note",
                    "text": format!("periscope: the recording reached its max_size ({max_size} bytes); the rest of the session is not recorded"),
                }))
                .await?;
                break;
            }
            out.raw(&line).await?;
            if is_statement {
                statements += 1;
            }
        }
    }
    let closed = out.close().await?;
    Ok(TaskOutcome {
        file,
        sha256: closed.sha256,
        bytes: closed.bytes,
        statements,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::super::cast::file_in;
    use super::*;
    use periscope_shield::record::{DecodedSample, ResultSample, SampleColumn};
    use sha2::{Digest, Sha256};

    #[derive(Debug)]
    struct Fixed(DecodedSample);

    impl ResultSample for Fixed {
        fn decode(self: Box<Self>) -> DecodedSample {
            self.0
        }

        fn held_bytes(&self) -> usize {
            10
        }
    }

    fn header(id: &str) -> SqlHeader {
        SqlHeader {
            session: id.into(),
            identity: "alice".into(),
            connection: "pg".into(),
            started_at: "2026-12-07T00:00:00Z".into(),
            timestamp: 0,
            client_addr: "127.0.0.1:1".into(),
            application_name: Some("psql".into()),
            sample_rows: 10,
            sample_bytes: 8192,
        }
    }

    fn record(outcome: RecordedOutcome) -> StatementRecord {
        StatementRecord {
            at: Duration::from_millis(5),
            duration: Duration::from_millis(1),
            text: "SELECT email FROM customers LIMIT ?".into(),
            class: "select".into(),
            query_seq: 7,
            outcome,
            rows: 1,
            masked: json!({"email": 1}),
            sample: Some(Box::new(Fixed(DecodedSample {
                columns: vec![SampleColumn {
                    name: "email".into(),
                    type_name: "text".into(),
                    masked: Some("email".into()),
                }],
                rows: vec![vec![Some("[email]".into())]],
                truncated: false,
            }))),
        }
    }

    #[tokio::test]
    async fn writes_statements_and_hashes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SqlRecorder::start(file_in(dir.path(), 1 << 20), header("ses_a"));
        r.record(record(RecordedOutcome::Ok));
        r.record(record(RecordedOutcome::Refused {
            shield: Some("write".into()),
            message: "blocked".into(),
        }));
        let w = r.finish().await.unwrap();
        let bytes = std::fs::read(dir.path().join("ses_a.sql.jsonl")).unwrap();
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!((w.statements, w.bytes), (2, bytes.len() as u64));
        let lines: Vec<Value> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["format"], FORMAT);
        assert_eq!(lines[1]["sample"], json!([["[email]"]]));
        assert_eq!(lines[1]["columns"][0]["masked"], "email");
        assert_eq!(lines[1]["seq"], 7);
        assert_eq!(lines[2]["outcome"], "refused");
        assert_eq!(lines[2]["shield"], "write");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_that_falls_behind_never_blocks_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SqlRecorder::start(file_in(dir.path(), 1 << 24), header("ses_b"));
        // The writer cannot run meanwhile: QUEUE batches fit, two more do
        // not, and the last three statements are still gathering.
        for _ in 0..((QUEUE + 2) * BATCH + 3) {
            r.record(record(RecordedOutcome::Ok));
        }
        let w = r.finish().await.unwrap();
        assert_eq!(w.dropped_statements, 2 * BATCH as u64);
        assert_eq!(w.statements, (QUEUE * BATCH + 3) as u64);
        let text = std::fs::read_to_string(dir.path().join("ses_b.sql.jsonl")).unwrap();
        assert!(
            text.contains(&format!("{} statements are missing", 2 * BATCH)),
            "{text}"
        );
    }

    #[tokio::test]
    async fn max_size_truncates_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SqlRecorder::start(file_in(dir.path(), 4096), header("ses_c"));
        for _ in 0..100 {
            r.record(record(RecordedOutcome::Error("42P01".into())));
        }
        let w = r.finish().await.unwrap();
        assert!(w.truncated && w.bytes <= 4096, "{w:?}");
        let text = std::fs::read_to_string(dir.path().join("ses_c.sql.jsonl")).unwrap();
        assert!(text.lines().last().unwrap().contains("max_size"), "{text}");
    }
}
