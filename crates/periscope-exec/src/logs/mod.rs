//! The logs data plane: named sources of a `logs` connection, read or
//! followed, masked as they stream.
//!
//! A source is one of:
//!
//! - **files** matching globs ([`files`]), read by the gateway itself and
//!   followed across rotation and truncation;
//! - the **journal** of systemd units: `journalctl -u UNIT... -o short-iso
//!   --no-pager [--since=...] [-f]`, run like an exec command;
//! - a **command** whose standard output is the log stream (argv only, an
//!   explicit environment), with `follow_args` added to follow.
//!
//! Whatever the source, the bytes go through the same line-aware
//! [`crate::stream::StreamMasker`] as exec output, and then through the
//! read's [`filter::LineFilter`] (`--since`, `--grep`), which therefore
//! only ever sees masked text.

mod files;
pub mod filter;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use periscope_policy::{ExecConfig, LogSource, LogsConfig};
use periscope_redact::Masker;
use periscope_shield::grants::CutNotice;
use tokio::sync::{mpsc, oneshot};

use crate::process::SpawnError;
use crate::run::{Limits, Outcome, Output};

pub use files::{MAX_FILES, POLL};
use filter::LineFilter;

/// Pieces queued between the source and the filter.
const QUEUE: usize = 16;
/// How long the end of a read waits for the filtered output to reach the
/// client before it gives up on a client that stopped reading.
const DRAIN: Duration = Duration::from_millis(500);

/// How one read of a source is done.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The gateway reads the files itself.
    Files {
        /// The source's globs.
        globs: Vec<PathBuf>,
        /// Keep following after the end.
        follow: bool,
        /// Unix seconds of `--since`.
        since: Option<i64>,
    },
    /// A process writes the log on its stdout (journal and command sources).
    Process(ExecConfig),
}

/// A read the source cannot do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--follow` on a command source without `follow_args`.
    #[error(
        "log source `{source_name}` is a command that cannot be followed (the connection gives it \
         no `follow_args`)"
    )]
    CannotFollow {
        /// The source.
        source_name: String,
    },
}

/// How the source of `source_name` on `config` is read: `follow` keeps
/// reading after the end, `since` (Unix seconds) starts there.
pub fn plan(
    config: &LogsConfig,
    source_name: &str,
    source: &LogSource,
    follow: bool,
    since: Option<i64>,
) -> Result<Plan, PlanError> {
    let process = |command: Vec<String>| {
        Plan::Process(ExecConfig {
            command,
            allow: Vec::new(),
            sensitive: Vec::new(),
            working_dir: config.working_dir.clone(),
            env: config.env.clone(),
            timeout: config.timeout,
            max_output: config.max_output,
        })
    };
    Ok(match source {
        LogSource::Files(globs) => Plan::Files {
            globs: globs.clone(),
            follow,
            since,
        },
        LogSource::Journal(units) => {
            let mut argv = vec![
                config.journalctl.to_string_lossy().into_owned(),
                "--no-pager".to_string(),
                "--output=short-iso".to_string(),
            ];
            for unit in units {
                argv.push(format!("--unit={unit}"));
            }
            if let Some(since) = since {
                argv.push(format!("--since={}", filter::journal_time(since)));
            }
            if follow {
                argv.push("--follow".to_string());
            }
            process(argv)
        }
        LogSource::Command {
            command,
            follow_args,
        } => {
            if follow && follow_args.is_empty() {
                return Err(PlanError::CannotFollow {
                    source_name: source_name.to_string(),
                });
            }
            let mut argv = command.clone();
            if follow {
                argv.extend(follow_args.iter().cloned());
            }
            process(argv)
        }
    })
}

/// What a read did: the source's outcome (bytes read, masked counts, why it
/// ended) and how many lines passed the filter; counts only.
#[derive(Debug, Clone)]
pub struct LogsOutcome {
    /// How the source ended; `stdout_bytes` are the bytes read.
    pub outcome: Outcome,
    /// Whole lines that passed `--since` and `--grep` and were handed on.
    pub lines: u64,
}

/// Starts a read: the program of a journal or command source is spawned
/// here, so that one that cannot start is an error of the request rather
/// than an end.
pub fn start(plan: Plan) -> Result<Started, SpawnError> {
    Ok(match plan {
        Plan::Process(exec) => {
            Started(Inner::Process(Box::new(crate::process::spawn(&exec, &[])?)))
        }
        Plan::Files {
            globs,
            follow,
            since,
        } => Started(Inner::Files {
            globs,
            follow,
            since,
        }),
    })
}

/// Runs one read to its end: the source masked (`masker`), filtered
/// (`filter`) and sent on `out` with back-pressure. It ends at the end of
/// the source (without follow), when `cut` fires (a grant's end), when `out`
/// closes (the client went away), or at a limit.
pub async fn run(
    source: Started,
    masker: &Masker,
    filter: LineFilter,
    out: mpsc::Sender<Output>,
    cut: oneshot::Receiver<CutNotice>,
    limits: Limits,
) -> LogsOutcome {
    let (tx, rx) = mpsc::channel(QUEUE);
    let lines = Arc::new(AtomicU64::new(0));
    let mut filtering = tokio::spawn(filter_output(rx, out, filter, Arc::clone(&lines)));
    let outcome = match source.0 {
        Inner::Process(process) => crate::run::run(*process, masker, tx, cut, limits).await,
        Inner::Files {
            globs,
            follow,
            since,
        } => files::run(&globs, follow, since, masker, tx, cut, limits).await,
    };
    if tokio::time::timeout(DRAIN, &mut filtering).await.is_err() {
        filtering.abort();
    }
    LogsOutcome {
        outcome,
        lines: lines.load(Ordering::Relaxed),
    }
}

/// A read started by [`start`], for [`run`].
#[derive(Debug)]
pub struct Started(Inner);

#[derive(Debug)]
enum Inner {
    Process(Box<crate::process::ExecProcess>),
    Files {
        globs: Vec<PathBuf>,
        follow: bool,
        since: Option<i64>,
    },
}

/// Between the source and the client: stdout filtered line by line,
/// stderr (the source's own errors, masked too) passed as it is.
async fn filter_output(
    mut rx: mpsc::Receiver<Output>,
    out: mpsc::Sender<Output>,
    mut filter: LineFilter,
    lines: Arc<AtomicU64>,
) {
    loop {
        let piece = tokio::select! {
            piece = rx.recv() => piece,
            () = out.closed() => return,
        };
        let piece = match piece {
            None => return,
            Some(Output::Stdout(text)) => {
                let mut kept = String::new();
                let n = filter.apply(&text, &mut kept);
                lines.fetch_add(n, Ordering::Relaxed);
                if kept.is_empty() {
                    continue;
                }
                Output::Stdout(kept)
            }
            Some(err @ Output::Stderr(_)) => err,
        };
        if out.send(piece).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::EndReason;
    use periscope_redact::{Entity, ScanConfig};
    use std::io::Write;
    use std::path::Path;

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(60),
            max_output: 1 << 30,
        }
    }

    fn append(path: &Path, text: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text).unwrap();
    }

    /// Receives until the output holds `needle` (10 s at most).
    async fn until(rx: &mut mpsc::Receiver<Output>, seen: &mut String, needle: &str) {
        let wait = async {
            while !seen.contains(needle) {
                match rx.recv().await {
                    Some(Output::Stdout(s) | Output::Stderr(s)) => seen.push_str(&s),
                    None => panic!("the read ended before `{needle}`:\n{seen}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("`{needle}` never came:\n{seen}"));
    }

    fn masker() -> Masker {
        Masker::new(ScanConfig::new().build())
    }

    #[tokio::test]
    async fn a_read_masks_every_matching_file_oldest_first_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("app.log.1");
        let new = dir.path().join("app.log");
        append(&old, b"old line by alice@example.com\n");
        // Older by its modification time, whatever the names.
        let f = std::fs::File::options().write(true).open(&old).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        append(
            &new,
            b"token AKIAIOSFODNN7EXAMPLE\r\nlast line \xff no newline",
        );
        append(&dir.path().join("other.txt"), b"not matched\n");
        let plan = Plan::Files {
            globs: vec![dir.path().join("app.log*")],
            follow: false,
            since: None,
        };
        let m = masker();
        let (tx, mut rx) = mpsc::channel(16);
        let (_keep, cut) = oneshot::channel();
        let filter = LineFilter::new(None, None).unwrap();
        let done = run(start(plan).unwrap(), &m, filter, tx, cut, limits()).await;
        let mut out = String::new();
        while let Some(Output::Stdout(s) | Output::Stderr(s)) = rx.recv().await {
            out.push_str(&s);
        }
        assert_eq!(
            out,
            "old line by [email]\ntoken [aws_access_key]\r\nlast line \u{fffd} no newline\n"
        );
        assert_eq!(done.outcome.reason, EndReason::Exited);
        assert_eq!(done.outcome.masked.get(Entity::Email), 1);
        assert_eq!(done.outcome.masked.get(Entity::AwsAccessKey), 1);
        assert_eq!(done.lines, 3);
    }

    #[tokio::test]
    async fn a_follow_sees_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, b"one bob@example.org\n");
        let plan = Plan::Files {
            globs: vec![dir.path().join("app.log*")],
            follow: true,
            since: Some(0),
        };
        let (tx, mut rx) = mpsc::channel(16);
        let (cut_tx, cut) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let m = masker();
            let filter = LineFilter::new(None, None).unwrap();
            run(start(plan).unwrap(), &m, filter, tx, cut, limits()).await
        });
        let mut seen = String::new();
        until(&mut rx, &mut seen, "one [email]\n").await;
        // Appended, in two writes that split a value.
        append(&log, b"two carol@exa");
        append(&log, b"mple.com\n");
        until(&mut rx, &mut seen, "two [email]\n").await;
        // Rotated: renamed (still matched by the glob) and a new file made;
        // a line written to the old file before the poll is not lost.
        append(&log, b"three before rotation\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, b"four in the new file\n");
        until(&mut rx, &mut seen, "four in the new file\n").await;
        // Truncated under the tail, then a short line.
        std::fs::File::create(&log).unwrap();
        append(&log, b"five\n");
        until(&mut rx, &mut seen, "five\n").await;
        assert_eq!(
            seen,
            "one [email]\ntwo [email]\nthree before rotation\nfour in the new file\nfive\n"
        );
        let at = std::time::Instant::now();
        cut_tx
            .send(CutNotice {
                message: "grant gr_1 was revoked".into(),
                detail: None,
                hint: None,
            })
            .unwrap();
        let done = handle.await.unwrap();
        assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());
        assert_eq!(done.outcome.reason.code(), "cut");
        assert_eq!(done.outcome.masked.get(Entity::Email), 2);
    }

    #[tokio::test]
    async fn a_huge_line_without_newline_streams_in_bounded_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let mut f = std::fs::File::create(&log).unwrap();
        let block = "x".repeat(1 << 20);
        for _ in 0..8 {
            f.write_all(block.as_bytes()).unwrap();
        }
        f.write_all(b" dave@example.com\nafter\n").unwrap();
        drop(f);
        let plan = Plan::Files {
            globs: vec![log],
            follow: false,
            since: None,
        };
        let m = masker();
        let (tx, mut rx) = mpsc::channel(4);
        let (_keep, cut) = oneshot::channel();
        let reader = tokio::spawn(async move {
            let (mut total, mut largest, mut tail) = (0usize, 0usize, String::new());
            while let Some(Output::Stdout(s) | Output::Stderr(s)) = rx.recv().await {
                total += s.len();
                largest = largest.max(s.len());
                tail = s;
            }
            (total, largest, tail)
        });
        let filter = LineFilter::new(None, None).unwrap();
        let done = run(start(plan).unwrap(), &m, filter, tx, cut, limits()).await;
        let (total, largest, tail) = reader.await.unwrap();
        assert!(total > 8 << 20, "{total}");
        // No piece larger than the masker's bound plus one read.
        assert!(
            largest <= crate::stream::MAX_LINE + 16 * 1024,
            "a piece of {largest} bytes"
        );
        assert!(tail.ends_with("[email]\nafter\n"), "{tail}");
        assert_eq!(done.outcome.masked.get(Entity::Email), 1);
    }

    #[tokio::test]
    async fn grep_and_since_see_masked_text() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(
            &log,
            b"2025-12-06T17:00:00Z old erin@example.com\n2025-12-06T18:30:00Z login erin@example.com\n2025-12-06T18:31:00Z logout\n",
        );
        let since = filter::leading_timestamp("2025-12-06T18:00:00Z");
        let read = |grep: &str| {
            let plan = Plan::Files {
                globs: vec![log.clone()],
                follow: false,
                since,
            };
            let filter = LineFilter::new(since, Some(grep)).unwrap();
            async move {
                let m = masker();
                let (tx, mut rx) = mpsc::channel(16);
                let (_keep, cut) = oneshot::channel();
                let done = run(start(plan).unwrap(), &m, filter, tx, cut, limits()).await;
                let mut out = String::new();
                while let Some(Output::Stdout(s) | Output::Stderr(s)) = rx.recv().await {
                    out.push_str(&s);
                }
                (out, done.lines)
            }
        };
        // A grep for the value itself finds nothing: it is masked.
        assert_eq!(read("erin@example").await, (String::new(), 0));
        assert_eq!(
            read("login|logout").await,
            (
                "2025-12-06T18:30:00Z login [email]\n2025-12-06T18:31:00Z logout\n".to_string(),
                2
            )
        );
    }

    #[tokio::test]
    async fn journal_and_command_sources_run_their_programs() {
        let text = r#"
[[connection]]
name = "l"
kind = "logs"
journalctl = "/bin/echo"
env = { GREETING = "frank@example.com" }
[connection.sources.web]
journal = ["nginx.service", "app@1.service"]
[connection.sources.env]
command = ["/bin/sh", "-c", "echo $GREETING; env | wc -l"]
[connection.sources.once]
command = ["/bin/echo", "once"]
"#;
        let config = periscope_policy::Config::parse(text, "p").unwrap();
        let logs = config.connections[0].logs.clone().unwrap();
        let read = |name: &str, follow: bool, since: Option<i64>| {
            let plan = plan(&logs, name, &logs.sources[name], follow, since);
            async move {
                let plan = plan?;
                let m = masker();
                let (tx, mut rx) = mpsc::channel(16);
                let (_keep, cut) = oneshot::channel();
                let filter = LineFilter::new(None, None).unwrap();
                run(start(plan).unwrap(), &m, filter, tx, cut, limits()).await;
                let mut out = String::new();
                while let Some(Output::Stdout(s) | Output::Stderr(s)) = rx.recv().await {
                    out.push_str(&s);
                }
                Ok::<_, PlanError>(out)
            }
        };
        assert_eq!(
            read("web", true, Some(1_765_044_131)).await.unwrap(),
            "--no-pager --output=short-iso --unit=nginx.service --unit=app@1.service \
             --since=2025-12-06 18:02:11 UTC --follow\n"
        );
        // Only the configured environment (sh adds PWD, SHLVL and _).
        let env = read("env", false, None).await.unwrap();
        assert!(env.starts_with("[email]\n"), "{env}");
        assert_eq!(
            read("once", true, None).await,
            Err(PlanError::CannotFollow {
                source_name: "once".into()
            })
        );
    }
}
