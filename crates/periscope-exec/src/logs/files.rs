//! A `files` source: the files matching its globs, read to their end, or
//! followed the way `tail -F` does.
//!
//! Following polls (every [`POLL`]) rather than waiting on inotify: a poll
//! works the same on every file system (NFS, overlay, bind mounts), sees a
//! rotation that happened between two events, and needs no dependency; a
//! tenth of a second of delay is nothing for a person reading logs. Each
//! poll:
//!
//! - reads every followed file from where it stopped to its end;
//! - a file shorter than what was read was **truncated** (`copytruncate`,
//!   `> app.log`): it is read again from its new start;
//! - a path that now names another file, or nothing, was **rotated** (or
//!   removed): what the old file still held is read, then it is let go and
//!   the new file is read from its start. The old file, renamed to a name
//!   the glob also matches (`app.log.1`), is recognised by its inode and not
//!   read twice;
//! - a file that appeared since is read from its start.
//!
//! Memory stays bounded whatever the files hold: one read buffer, and per
//! file a [`StreamMasker`] whose carry-over is bounded (a line of many
//! megabytes without a newline is masked in pieces). A file is read only as
//! fast as the client takes its output (back-pressure).

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant, SystemTime};

use periscope_redact::{Counts, Masker};
use periscope_shield::grants::CutNotice;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;

use crate::run::{EndReason, Limits, Outcome, Output};
use crate::stream::StreamMasker;

/// Most files one source follows at once (the most recently modified).
pub const MAX_FILES: usize = 64;
/// How often a follow looks for new lines, truncation and rotation.
pub const POLL: Duration = Duration::from_millis(100);
/// Bytes read from a file at a time.
const READ_SIZE: usize = 16 * 1024;

/// A file's identity: device and inode.
type FileId = (u64, u64);

fn file_id(m: &Metadata) -> FileId {
    (m.dev(), m.ino())
}

/// One followed file.
struct Tracked<'m> {
    path: PathBuf,
    file: File,
    id: FileId,
    offset: u64,
    stream: StreamMasker<'m>,
}

/// What a read needs to watch while it works: the client, the cut, the
/// deadline and the output limit.
struct Tail<'m> {
    masker: &'m Masker,
    out: mpsc::Sender<Output>,
    cut: oneshot::Receiver<CutNotice>,
    cut_open: bool,
    deadline: Pin<Box<Sleep>>,
    max_output: u64,
    bytes: u64,
    masked: Counts,
    buf: Vec<u8>,
}

/// Reads the files matching `globs` to their end, or (`follow`) keeps
/// following them until `cut` fires, `out` closes or a limit passes.
/// Without `since`, a follow starts at the files' current end; with it,
/// files modified before `since` are skipped and the others read whole
/// (the line filter keeps the recent lines).
pub(crate) async fn run(
    globs: &[PathBuf],
    follow: bool,
    since: Option<i64>,
    masker: &Masker,
    out: mpsc::Sender<Output>,
    cut: oneshot::Receiver<CutNotice>,
    limits: Limits,
) -> Outcome {
    let started = Instant::now();
    let mut tail = Tail {
        masker,
        out,
        cut,
        cut_open: true,
        deadline: Box::pin(tokio::time::sleep(limits.timeout)),
        max_output: limits.max_output,
        bytes: 0,
        masked: Counts::default(),
        buf: vec![0; READ_SIZE],
    };
    let mut tracked = Vec::new();
    let reason = match tail.go(globs, follow, since, &mut tracked).await {
        Ok(()) => EndReason::Exited,
        Err(reason) => reason,
    };
    for t in &tracked {
        tail.masked.merge(t.stream.counts());
    }
    Outcome {
        exit_code: (reason == EndReason::Exited).then_some(0),
        reason,
        signal: None,
        stdout_bytes: tail.bytes,
        stderr_bytes: 0,
        masked: tail.masked,
        duration: started.elapsed(),
    }
}

impl<'m> Tail<'m> {
    async fn go(
        &mut self,
        globs: &[PathBuf],
        follow: bool,
        since: Option<i64>,
        tracked: &mut Vec<Tracked<'m>>,
    ) -> Result<(), EndReason> {
        let start_at_end = follow && since.is_none();
        let found = matches(globs);
        if found.is_empty() {
            let what = if follow {
                "waiting for one to appear"
            } else {
                "nothing to read"
            };
            self.send(Output::Stderr(format!(
                "periscope: no file matches {}: {what}\n",
                display_globs(globs)
            )))
            .await?;
        }
        for (path, meta) in found {
            let old = since.is_some_and(|s| modified(&meta) < s);
            if old && !follow {
                continue;
            }
            let at_end = start_at_end || old;
            if let Some(t) = self.open(&path, at_end).await? {
                tracked.push(t);
            }
        }
        if !follow {
            for mut t in tracked.drain(..) {
                // What is there now: a file that keeps growing does not
                // keep a read without --follow going.
                let upto = t.file.metadata().map(|m| m.len()).unwrap_or(0);
                self.drain(&mut t, Some(upto)).await?;
                self.finish(&mut t).await?;
                self.masked.merge(t.stream.counts());
            }
            return Ok(());
        }
        let mut retired: HashSet<FileId> = HashSet::new();
        loop {
            for t in tracked.iter_mut() {
                self.drain(t, None).await?;
            }
            self.wait().await?;
            self.rescan(globs, tracked, &mut retired).await?;
        }
    }

    /// Opens a file to follow, at its start or its end; a file that cannot
    /// be read is said on stderr and skipped.
    async fn open(&mut self, path: &Path, at_end: bool) -> Result<Option<Tracked<'m>>, EndReason> {
        let opened = File::open(path).and_then(|mut f| {
            let meta = f.metadata()?;
            let offset = if at_end { meta.len() } else { 0 };
            f.seek(SeekFrom::Start(offset))?;
            Ok((f, file_id(&meta), offset))
        });
        match opened {
            Ok((file, id, offset)) => Ok(Some(Tracked {
                path: path.to_path_buf(),
                file,
                id,
                offset,
                stream: StreamMasker::new(self.masker),
            })),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a log file");
                self.send(Output::Stderr(format!(
                    "periscope: cannot read {}: {}\n",
                    path.display(),
                    e.kind()
                )))
                .await?;
                Ok(None)
            }
        }
    }

    /// Reads `t` from where it stopped to its end (or to `upto`), masking
    /// and sending as it goes. A file now shorter than what was read was
    /// truncated: its unfinished line is shown and it is read from its start.
    async fn drain(&mut self, t: &mut Tracked<'m>, upto: Option<u64>) -> Result<(), EndReason> {
        let len = match t.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => return Ok(()),
        };
        if len < t.offset {
            self.finish(t).await?;
            t.offset = 0;
            if t.file.seek(SeekFrom::Start(0)).is_err() {
                return Ok(());
            }
        }
        loop {
            self.check()?;
            let want = match upto {
                Some(limit) if t.offset >= limit => return Ok(()),
                Some(limit) => usize::try_from(limit - t.offset)
                    .unwrap_or(READ_SIZE)
                    .min(READ_SIZE),
                None => READ_SIZE,
            };
            let n = match t.file.read(&mut self.buf[..want]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), error = %e, "a log file read failed");
                    return Ok(());
                }
            };
            t.offset += n as u64;
            self.bytes += n as u64;
            let mut masked = String::new();
            t.stream.push(&self.buf[..n], &mut masked);
            if !masked.is_empty() {
                self.send(Output::Stdout(masked)).await?;
            }
            if self.bytes > self.max_output {
                return Err(EndReason::OutputLimit);
            }
        }
    }

    /// Shows the unfinished last line of a file that will not be read on
    /// (rotated away, truncated, or the end of a read).
    async fn finish(&mut self, t: &mut Tracked<'m>) -> Result<(), EndReason> {
        let mut rest = String::new();
        t.stream.finish(&mut rest);
        if !rest.is_empty() {
            rest.push('\n');
            self.send(Output::Stdout(rest)).await?;
        }
        Ok(())
    }

    /// Rotation, removal and new files, after a poll.
    async fn rescan(
        &mut self,
        globs: &[PathBuf],
        tracked: &mut Vec<Tracked<'m>>,
        retired: &mut HashSet<FileId>,
    ) -> Result<(), EndReason> {
        let mut i = 0;
        while i < tracked.len() {
            let same =
                std::fs::metadata(&tracked[i].path).is_ok_and(|m| file_id(&m) == tracked[i].id);
            if same {
                i += 1;
                continue;
            }
            // Rotated or removed: what was written before is read, then the
            // file is let go (its new name is not read again).
            let mut t = tracked.remove(i);
            self.drain(&mut t, None).await?;
            self.finish(&mut t).await?;
            self.masked.merge(t.stream.counts());
            retired.insert(t.id);
        }
        let found = matches(globs);
        // An inode no glob matches any more is free to come back as a new file.
        retired.retain(|id| found.iter().any(|(_, m)| file_id(m) == *id));
        for (path, meta) in found {
            let id = file_id(&meta);
            if tracked.len() >= MAX_FILES
                || retired.contains(&id)
                || tracked.iter().any(|t| t.id == id)
            {
                continue;
            }
            if let Some(t) = self.open(&path, false).await? {
                tracked.push(t);
            }
        }
        Ok(())
    }

    /// Why the read must end now, if it must.
    fn check(&mut self) -> Result<(), EndReason> {
        if self.cut_open {
            match self.cut.try_recv() {
                Ok(notice) => return Err(EndReason::Cut(notice)),
                Err(oneshot::error::TryRecvError::Closed) => self.cut_open = false,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
        }
        if self.out.is_closed() {
            return Err(EndReason::ClientGone);
        }
        if self.deadline.is_elapsed() {
            return Err(EndReason::Timeout);
        }
        Ok(())
    }

    /// Hands a piece to the client (back-pressure), unless the read ends
    /// meanwhile.
    async fn send(&mut self, piece: Output) -> Result<(), EndReason> {
        loop {
            tokio::select! {
                permit = self.out.reserve() => {
                    let permit = permit.map_err(|_| EndReason::ClientGone)?;
                    permit.send(piece);
                    return Ok(());
                }
                notice = &mut self.cut, if self.cut_open => match notice {
                    Ok(notice) => return Err(EndReason::Cut(notice)),
                    // The session side dropped its sender: nothing can cut any more.
                    Err(_) => self.cut_open = false,
                },
                () = &mut self.deadline => return Err(EndReason::Timeout),
            }
        }
    }

    /// Waits for the next poll, unless the read ends meanwhile: a cut ends a
    /// follow at once, not at the next poll.
    async fn wait(&mut self) -> Result<(), EndReason> {
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL) => return Ok(()),
                notice = &mut self.cut, if self.cut_open => match notice {
                    Ok(notice) => return Err(EndReason::Cut(notice)),
                    Err(_) => self.cut_open = false,
                },
                () = self.out.closed() => return Err(EndReason::ClientGone),
                () = &mut self.deadline => return Err(EndReason::Timeout),
            }
        }
    }
}

/// The regular files matching `globs` now, oldest first (modification time,
/// then name), at most the [`MAX_FILES`] most recent.
pub(crate) fn matches(globs: &[PathBuf]) -> Vec<(PathBuf, Metadata)> {
    let mut found: Vec<(PathBuf, Metadata)> = Vec::new();
    for glob in globs {
        let (Some(dir), Some(pattern)) = (glob.parent(), glob.file_name()) else {
            continue;
        };
        let pattern = pattern.as_encoded_bytes();
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !wildcard(pattern, name.as_encoded_bytes()) {
                continue;
            }
            let path = entry.path();
            // Follows a symbolic link to the file it names.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_file() && !found.iter().any(|(p, _)| *p == path) {
                found.push((path, meta));
            }
        }
    }
    found.sort_by(|(pa, ma), (pb, mb)| modified(ma).cmp(&modified(mb)).then(pa.cmp(pb)));
    if found.len() > MAX_FILES {
        found.drain(..found.len() - MAX_FILES);
    }
    found
}

/// Modification time, Unix seconds.
fn modified(m: &Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn display_globs(globs: &[PathBuf]) -> String {
    globs
        .iter()
        .map(|g| format!("`{}`", g.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` matches `pattern`, where `*` stands for any run of bytes
/// and `?` for one byte. Linear in practice: one backtrack point.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard(b"*.log", b"app.log"));
        assert!(wildcard(b"app.log*", b"app.log.1"));
        assert!(wildcard(b"app-?.log", b"app-1.log"));
        assert!(!wildcard(b"*.log", b"app.log.1"));
        assert!(wildcard(b"current", b"current"));
        assert!(!wildcard(b"current", b"current2"));
        assert!(wildcard(b"*a*b*", b"xxaxxbxx"));
        assert!(!wildcard(b"*a*b", b"xxaxxbxx"));
    }
}
