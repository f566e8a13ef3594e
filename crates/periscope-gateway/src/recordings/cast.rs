//! The asciicast v2 writer of one recording, off the stream's hot path.
//!
//! A [`Recorder`] is fed by the session with [`Recorder::record`], which
//! never waits: each piece goes into a bounded channel ([`QUEUE`] pieces, so
//! at most a few MiB per session) to a writer task that formats the event
//! lines, hashes them and writes them through a buffer. When the channel is
//! full (a slow disk), the piece is not recorded: its bytes are counted and
//! the next piece that fits is preceded by a marker event (`"m"`) saying how
//! many bytes are missing; [`Written::dropped_bytes`] carries the total into
//! the seal. Blocking the engineer's stream on the recorder, or buffering
//! without bound, would both be worse.
//!
//! The file is `<id>.cast.part` while written, renamed to `<id>.cast` once
//! complete and flushed to disk, and its SHA-256 is computed over exactly the
//! bytes written, so the seal can be checked against the file as it lies.
//!
//! Format (<https://docs.asciinema.org/manual/asciicast/v2/>): a header line
//! `{"version": 2, "width", "height", "timestamp", "title", "env"}`, then one
//! `[seconds, "o", text]` line per piece of output (stdout and stderr alike:
//! both reached the engineer's terminal) and `[seconds, "m", text]` markers
//! for what the recorder itself has to say (fell behind, truncated).

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Pieces queued between a session and its writer task.
pub const QUEUE: usize = 64;
/// Buffer of the file writes.
const WRITE_BUFFER: usize = 64 * 1024;

/// What the cast's header says.
#[derive(Debug, Clone)]
pub struct CastHeader {
    /// Terminal columns the player should use.
    pub width: u16,
    /// Terminal rows the player should use.
    pub height: u16,
    /// Start of the session, Unix seconds.
    pub timestamp: i64,
    /// What was run (masked), shown by players.
    pub title: String,
}

/// A closed recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file's name in the recordings directory.
    pub file: String,
    /// SHA-256 of the whole file, lowercase hex.
    pub sha256: String,
    /// Size of the file.
    pub bytes: u64,
    /// Output events written (markers excluded).
    pub events: u64,
    /// Whether `max_size` cut the recording short.
    pub truncated: bool,
    /// Output bytes not recorded because the writer fell behind.
    pub dropped_bytes: u64,
    /// From the first to the last piece offered.
    pub duration: Duration,
}

enum Piece {
    Output(f64, String),
    Marker(f64, String),
}

/// What the writer task reports.
struct TaskOutcome {
    file: String,
    sha256: String,
    bytes: u64,
    events: u64,
    truncated: bool,
}

/// The session's side of a recording.
pub struct Recorder {
    tx: mpsc::Sender<Piece>,
    task: JoinHandle<io::Result<TaskOutcome>>,
    started: Instant,
    /// Bytes dropped since the last marker went through.
    pending_drop: u64,
    dropped_total: u64,
}

/// Where and how a recording's file is written (every kind alike).
#[derive(Debug, Clone)]
pub struct RecordingFile {
    /// The recordings directory (created 0700 if needed).
    pub dir: PathBuf,
    /// The size past which the rest of the session is not recorded.
    pub max_size: u64,
    /// `fsync` the file before it is renamed and sealed: with `[audit]
    /// durability = "power-loss"`, so a sealed recording survives a power
    /// loss as its seal does. With `process-crash` the file is handed to the
    /// OS like the audit events themselves: an fsync per closed recording
    /// bought nothing the seal keeps, and when many sessions ended together
    /// their fsyncs held the filesystem's journal and delayed the next
    /// session's first row by about 2 ms (docs/benchmarks.md).
    pub sync: bool,
}

impl Recorder {
    /// Starts the writer task of recording `id` in `file.dir`. Errors (a
    /// read-only disk) surface in [`Recorder::finish`]: the session never
    /// waits for the disk, not even to open the file.
    pub fn start(file: RecordingFile, id: String, header: CastHeader) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write(file, id, header, rx));
        Recorder {
            tx,
            task,
            started: Instant::now(),
            pending_drop: 0,
            dropped_total: 0,
        }
    }

    /// Records `text`, shown now; never waits.
    pub fn record(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        let at = self.started.elapsed().as_secs_f64();
        if self.pending_drop > 0 {
            let note = format!(
                "periscope: the recorder fell behind; {} bytes of output are missing here",
                self.pending_drop
            );
            if self.tx.try_send(Piece::Marker(at, note)).is_err() {
                self.drop_bytes(text.len());
                return;
            }
            self.pending_drop = 0;
        }
        if self
            .tx
            .try_send(Piece::Output(at, text.to_owned()))
            .is_err()
        {
            self.drop_bytes(text.len());
        }
    }

    fn drop_bytes(&mut self, n: usize) {
        self.pending_drop += n as u64;
        self.dropped_total += n as u64;
    }

    /// Closes the recording: the writer drains what is queued, flushes the
    /// file to disk and renames it to its final name.
    pub async fn finish(self) -> io::Result<Written> {
        let duration = self.started.elapsed();
        if self.pending_drop > 0 {
            let note = format!(
                "periscope: the recorder fell behind; {} bytes of output are missing here",
                self.pending_drop
            );
            // The channel is drained from here on: wait for room.
            let _ = self
                .tx
                .send(Piece::Marker(duration.as_secs_f64(), note))
                .await;
        }
        drop(self.tx);
        let outcome = self
            .task
            .await
            .map_err(|e| io::Error::other(format!("the recording task failed: {e}")))??;
        Ok(Written {
            file: outcome.file,
            sha256: outcome.sha256,
            bytes: outcome.bytes,
            events: outcome.events,
            truncated: outcome.truncated,
            dropped_bytes: self.dropped_total,
            duration,
        })
    }
}

/// Writes lines and hashes exactly what it writes (shared by the SQL
/// recordings' writer).
pub(super) struct HashedFile {
    out: BufWriter<tokio::fs::File>,
    hash: Sha256,
    /// Bytes written so far.
    pub(super) bytes: u64,
    /// `<file>.part`, while written.
    part: PathBuf,
    /// The final name.
    path: PathBuf,
    /// `fsync` before the rename (see [`RecordingFile::sync`]).
    sync: bool,
}

/// A recording file closed: its name, SHA-256 and size.
pub(super) struct Closed {
    pub(super) sha256: String,
    pub(super) bytes: u64,
}

impl HashedFile {
    /// Creates `dir` (0700) if needed and `dir/<file>.part` (0600, never an
    /// existing file): every recording kind is written the same way.
    pub(super) async fn create(settings: &RecordingFile, file: &str) -> io::Result<HashedFile> {
        let dir = settings.dir.as_path();
        let make_dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&make_dir)
        })
        .await
        .map_err(io::Error::other)?
        .map_err(|e| with_context(e, "cannot create the recordings directory", dir))?;
        let part = dir.join(format!("{file}.part"));
        let handle = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&part)
            .await
            .map_err(|e| with_context(e, "cannot create the recording", &part))?;
        Ok(HashedFile {
            out: BufWriter::with_capacity(WRITE_BUFFER, handle),
            hash: Sha256::new(),
            bytes: 0,
            part,
            path: dir.join(file),
            sync: settings.sync,
        })
    }

    /// Hands the rest of the file to the OS (and to the disk, with
    /// [`RecordingFile::sync`]), then gives it its final name: the hash
    /// covers exactly what is under that name.
    pub(super) async fn close(mut self) -> io::Result<Closed> {
        self.out.flush().await?;
        let handle = self.out.into_inner();
        if self.sync {
            handle.sync_all().await?;
        }
        drop(handle);
        tokio::fs::rename(&self.part, &self.path)
            .await
            .map_err(|e| with_context(e, "cannot close the recording", &self.path))?;
        Ok(Closed {
            sha256: hex::encode(self.hash.finalize()),
            bytes: self.bytes,
        })
    }

    /// Writes `bytes` (a whole line, newline included) as they are.
    pub(super) async fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out.write_all(bytes).await
    }

    /// Writes `value` as one JSON line.
    pub(super) async fn line(&mut self, value: &serde_json::Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
        line.push(b'\n');
        self.raw(&line).await
    }
}

pub(super) fn with_context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

async fn write(
    settings: RecordingFile,
    id: String,
    header: CastHeader,
    mut rx: mpsc::Receiver<Piece>,
) -> io::Result<TaskOutcome> {
    let max_size = settings.max_size;
    let file = format!("{id}.cast");
    let mut out = HashedFile::create(&settings, &file).await?;
    out.line(&json!({
        "version": 2,
        "width": header.width,
        "height": header.height,
        "timestamp": header.timestamp,
        "title": header.title,
        "env": { "TERM": "xterm-256color", "SHELL": "periscope" },
    }))
    .await?;
    let (mut events, mut truncated) = (0u64, false);
    while let Some(piece) = rx.recv().await {
        if truncated {
            // Drain, so the session never finds the channel full for this.
            continue;
        }
        let line = match &piece {
            Piece::Output(at, text) => json!([round(*at), "o", text]),
            Piece::Marker(at, text) => json!([round(*at), "m", text]),
        };
        let at = match &piece {
            Piece::Output(at, _) | Piece::Marker(at, _) => *at,
        };
        // Room for the line and for the note that would say it was cut.
        let size = serde_json::to_vec(&line).map_or(0, |v| v.len() as u64 + 1);
        if out.bytes + size + 256 > max_size {
            truncated = true;
            out.line(&json!([
                round(at),
                "m",
                format!("periscope: the recording reached its max_size ({max_size} bytes); the rest of the session is not recorded")
            ]))
            .await?;
            continue;
        }
        out.line(&line).await?;
        if matches!(piece, Piece::Output(..)) {
            events += 1;
        }
    }
    let closed = out.close().await?;
    Ok(TaskOutcome {
        file,
        sha256: closed.sha256,
        bytes: closed.bytes,
        events,
        truncated,
    })
}

/// Times in microseconds, as asciinema writes them.
fn round(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1_000_000.0
}

/// Test settings: files in `dir`, synced like under `power-loss`.
#[cfg(test)]
pub(super) fn file_in(dir: &Path, max_size: u64) -> RecordingFile {
    RecordingFile {
        dir: dir.to_path_buf(),
        max_size,
        sync: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CastHeader {
        CastHeader {
            width: 80,
            height: 24,
            timestamp: 1_700_000_000,
            title: "t".into(),
        }
    }

    #[tokio::test]
    async fn writes_a_cast_and_hashes_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::start(file_in(dir.path(), 1 << 20), "ses_a".into(), header());
        r.record("hello [email]\n");
        r.record("");
        r.record("bye\n");
        let w = r.finish().await.unwrap();
        let bytes = std::fs::read(dir.path().join("ses_a.cast")).unwrap();
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(w.bytes, bytes.len() as u64);
        assert_eq!(w.events, 2);
        assert!(!dir.path().join("ses_a.cast.part").exists());
        let text = String::from_utf8(bytes).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[1][2], "hello [email]\n");
        assert_eq!(lines[2][2], "bye\n");
    }

    #[tokio::test]
    async fn max_size_truncates_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::start(file_in(dir.path(), 4096), "ses_b".into(), header());
        for _ in 0..100 {
            r.record(&"x".repeat(100));
        }
        let w = r.finish().await.unwrap();
        assert!(w.truncated);
        assert!(w.bytes <= 4096, "{}", w.bytes);
        let text = std::fs::read_to_string(dir.path().join("ses_b.cast")).unwrap();
        assert!(text.lines().last().unwrap().contains("max_size"), "{text}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_writer_that_falls_behind_never_blocks_and_says_so() {
        // On a current-thread runtime the writer task cannot run while this
        // test offers pieces: the queue fills, and the rest is counted.
        let dir = tempfile::tempdir().unwrap();
        let mut r = Recorder::start(file_in(dir.path(), 1 << 20), "ses_c".into(), header());
        for _ in 0..(QUEUE + 10) {
            r.record("line\n");
        }
        let w = r.finish().await.unwrap();
        assert_eq!(w.dropped_bytes, 50);
        assert_eq!(w.events, QUEUE as u64);
        let text = std::fs::read_to_string(dir.path().join("ses_c.cast")).unwrap();
        assert!(
            text.contains("the recorder fell behind; 50 bytes of output are missing"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_unwritable_directory_is_an_error_at_finish() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let mut r = Recorder::start(
            file_in(&file.join("rec"), 1 << 20),
            "ses_d".into(),
            header(),
        );
        r.record("a\n");
        let err = r.finish().await.unwrap_err();
        assert!(err.to_string().contains("recordings directory"), "{err}");
    }
}
