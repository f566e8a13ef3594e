//! One command from start to end.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use periscope_redact::{Counts, Masker};
use periscope_shield::grants::CutNotice;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use crate::process::ExecProcess;
use crate::stream::StreamMasker;

/// Bytes read from a pipe at a time.
const READ_SIZE: usize = 16 * 1024;

/// A piece of masked output, in the order the gateway read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Masked standard output.
    Stdout(String),
    /// Masked standard error.
    Stderr(String),
}

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The group is killed after this long.
    pub timeout: Duration,
    /// The group is killed once stdout and stderr together passed this many
    /// bytes (before masking).
    pub max_output: u64,
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The process exited by itself.
    Exited,
    /// The time limit passed: the group was killed.
    Timeout,
    /// The output limit passed: the group was killed.
    OutputLimit,
    /// The session was cut (a grant it relied on ended, or its identity was
    /// disabled): the group was killed.
    Cut(CutNotice),
    /// The client stopped listening: the group was killed.
    ClientGone,
    /// An interactive shell saw neither input nor output for its
    /// `idle_timeout`: its session was killed.
    Idle,
}

impl EndReason {
    /// A short code for the audit and the client (`exited`, `timeout`...).
    pub fn code(&self) -> &'static str {
        match self {
            EndReason::Exited => "exited",
            EndReason::Timeout => "timeout",
            EndReason::OutputLimit => "output_limit",
            EndReason::Cut(_) => "cut",
            EndReason::ClientGone => "client_gone",
            EndReason::Idle => "idle",
        }
    }
}

/// What a run did: how it ended, its exit status, and how much it wrote;
/// counts only, never output.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Why it ended.
    pub reason: EndReason,
    /// The exit code, when the process exited by itself.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Bytes the process wrote on stdout, before masking.
    pub stdout_bytes: u64,
    /// Bytes the process wrote on stderr, before masking.
    pub stderr_bytes: u64,
    /// Masked values, per entity, both streams together.
    pub masked: Counts,
    /// From start to end.
    pub duration: Duration,
}

impl Outcome {
    /// The exit code a client should end with: the process's own, or 128 +
    /// the signal that killed it (as shells do).
    pub fn client_exit_code(&self) -> i32 {
        match (self.exit_code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }
}

/// Which pipe a read came from.
#[derive(Clone, Copy)]
enum Pipe {
    Out,
    Err,
}

/// Runs `process` to its end: each read of stdout and stderr is masked
/// (`masker`, line-aware) and sent on `out`, which applies back-pressure:
/// the pipes are not read while the client is behind. The group is killed
/// when `cut` fires, when `out` closes, or at a limit; once the leader
/// exits, whatever it left in its group is killed too, so the pipes close.
pub async fn run(
    mut process: ExecProcess,
    masker: &Masker,
    out: mpsc::Sender<Output>,
    mut cut: oneshot::Receiver<CutNotice>,
    limits: Limits,
) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::sleep(limits.timeout);
    tokio::pin!(deadline);
    let mut streams = [StreamMasker::new(masker), StreamMasker::new(masker)];
    let (mut buf_out, mut buf_err) = (vec![0u8; READ_SIZE], vec![0u8; READ_SIZE]);
    let (mut out_open, mut err_open) = (true, true);
    let mut cut_open = true;
    let mut status = None;
    let mut reason = None;
    while out_open || err_open || status.is_none() {
        let (pipe, read) = tokio::select! {
            notice = &mut cut, if cut_open => match notice {
                Ok(notice) => { reason = Some(EndReason::Cut(notice)); break; }
                // The session side dropped its sender: nothing can cut any more.
                Err(_) => { cut_open = false; continue; }
            },
            () = out.closed() => { reason = Some(EndReason::ClientGone); break; }
            () = &mut deadline => { reason = Some(EndReason::Timeout); break; }
            exited = process.child.wait(), if status.is_none() => {
                status = Some(exited);
                // Children left behind would keep the pipes open.
                process.kill_group();
                continue;
            }
            n = process.stdout.read(&mut buf_out), if out_open => (Pipe::Out, n),
            n = process.stderr.read(&mut buf_err), if err_open => (Pipe::Err, n),
        };
        let n = match read {
            Ok(0) | Err(_) => {
                match pipe {
                    Pipe::Out => out_open = false,
                    Pipe::Err => err_open = false,
                }
                continue;
            }
            Ok(n) => n,
        };
        let (index, data) = match pipe {
            Pipe::Out => (0, &buf_out[..n]),
            Pipe::Err => (1, &buf_err[..n]),
        };
        let mut masked = String::new();
        streams[index].push(data, &mut masked);
        let total = streams[0].bytes_in() + streams[1].bytes_in();
        if !masked.is_empty() {
            let piece = match pipe {
                Pipe::Out => Output::Stdout(masked),
                Pipe::Err => Output::Stderr(masked),
            };
            // Back-pressure, but a cut or the deadline still ends the wait.
            tokio::select! {
                sent = out.send(piece) => if sent.is_err() {
                    reason = Some(EndReason::ClientGone);
                    break;
                },
                notice = &mut cut, if cut_open => {
                    if let Ok(notice) = notice {
                        reason = Some(EndReason::Cut(notice));
                        break;
                    }
                    cut_open = false;
                }
                () = &mut deadline => { reason = Some(EndReason::Timeout); break; }
            }
        }
        if total > limits.max_output {
            reason = Some(EndReason::OutputLimit);
            break;
        }
    }
    if reason.is_some() {
        process.kill_group();
        let _ = process.child.start_kill();
    }
    let status = match status {
        Some(s) => s.ok(),
        None => process.child.wait().await.ok(),
    };
    // What remains of each stream once the process is gone: its last line
    // without a newline, shown (masked) only when the process ended by
    // itself. A line cut short by a kill may end inside a value that the
    // detectors cannot recognise any more (`grace@exa`), so it is dropped.
    if reason.is_none() {
        for (i, stream) in streams.iter_mut().enumerate() {
            let mut rest = String::new();
            stream.finish(&mut rest);
            if !rest.is_empty() {
                let piece = if i == 0 {
                    Output::Stdout(rest)
                } else {
                    Output::Stderr(rest)
                };
                let _ = out.try_send(piece);
            }
        }
    }
    let mut masked = *streams[0].counts();
    masked.merge(streams[1].counts());
    Outcome {
        reason: reason.unwrap_or(EndReason::Exited),
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        stdout_bytes: streams[0].bytes_in(),
        stderr_bytes: streams[1].bytes_in(),
        masked,
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_policy::Config;
    use periscope_redact::{Entity, ScanConfig};

    fn exec(command: &str, env: &str) -> periscope_policy::ExecConfig {
        let text = format!(
            "[[connection]]\nname = \"t\"\nkind = \"exec\"\ncommand = {command}\nenv = {env}\n"
        );
        Config::parse(&text, "p").unwrap().connections[0]
            .exec
            .clone()
            .unwrap()
    }

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(30),
            max_output: 1 << 20,
        }
    }

    async fn collect(
        process: ExecProcess,
        cut: oneshot::Receiver<CutNotice>,
        limits: Limits,
    ) -> (String, String, Outcome) {
        let masker = Masker::new(ScanConfig::new().build());
        let (tx, mut rx) = mpsc::channel(16);
        let reader = tokio::spawn(async move {
            let (mut o, mut e) = (String::new(), String::new());
            while let Some(piece) = rx.recv().await {
                match piece {
                    Output::Stdout(s) => o.push_str(&s),
                    Output::Stderr(s) => e.push_str(&s),
                }
            }
            (o, e)
        });
        let outcome = run(process, &masker, tx, cut, limits).await;
        let (o, e) = reader.await.unwrap();
        (o, e, outcome)
    }

    #[tokio::test]
    async fn output_is_masked_and_the_exit_code_kept() {
        let exec = exec(
            r#"["/bin/sh", "-c", "echo mail frank@example.com; echo $HOME >&2; echo key=$KEY; exit 3"]"#,
            r#"{ KEY = "AKIAIOSFODNN7EXAMPLE" }"#,
        );
        let process = crate::process::spawn(&exec, &[]).unwrap();
        let (_keep, cut) = oneshot::channel();
        let (out, err, outcome) = collect(process, cut, limits()).await;
        assert_eq!(out, "mail [email]\nkey=[aws_access_key]\n");
        // Nothing inherited: HOME is unset in the child.
        assert_eq!(err, "\n");
        assert_eq!(outcome.reason, EndReason::Exited);
        assert_eq!(outcome.exit_code, Some(3));
        assert_eq!(outcome.masked.get(Entity::Email), 1);
        assert_eq!(outcome.masked.get(Entity::AwsAccessKey), 1);
    }

    #[tokio::test]
    async fn a_cut_kills_the_whole_group_at_once() {
        // The leader waits on a child that ignores SIGTERM; both must die.
        let exec = exec(
            r#"["/bin/sh", "-c", "trap '' TERM; /bin/sleep 300 & echo started; wait"]"#,
            "{}",
        );
        let process = crate::process::spawn(&exec, &[]).unwrap();
        let (cut_tx, cut) = oneshot::channel();
        let (tx, mut rx) = mpsc::channel(16);
        let handle = tokio::spawn(async move {
            let masker = Masker::new(ScanConfig::new().build());
            run(process, &masker, tx, cut, limits()).await
        });
        // Started once it said so; then cut.
        assert_eq!(rx.recv().await, Some(Output::Stdout("started\n".into())));
        let at = Instant::now();
        cut_tx
            .send(CutNotice {
                message: "grant gr_1 expired".into(),
                detail: None,
                hint: None,
            })
            .unwrap();
        let outcome = handle.await.unwrap();
        assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());
        assert_eq!(rx.recv().await, None);
        assert_eq!(outcome.reason.code(), "cut");
        assert_eq!(outcome.signal, Some(9));
        assert_eq!(outcome.client_exit_code(), 137);
    }

    #[tokio::test]
    async fn limits_end_the_run() {
        let yes = exec(r#"["/usr/bin/yes", "grace@example.com"]"#, "{}");
        let process = crate::process::spawn(&yes, &[]).unwrap();
        let (_keep, cut) = oneshot::channel();
        let small = Limits {
            timeout: Duration::from_secs(30),
            max_output: 100_000,
        };
        let (out, _, outcome) = collect(process, cut, small).await;
        assert_eq!(outcome.reason, EndReason::OutputLimit);
        assert!(!out.contains('@'));
        let sleeper = exec(r#"["/bin/sleep", "30"]"#, "{}");
        let process = crate::process::spawn(&sleeper, &[]).unwrap();
        let (_keep, cut) = oneshot::channel();
        let short = Limits {
            timeout: Duration::from_millis(300),
            max_output: 1 << 20,
        };
        let (_, _, outcome) = collect(process, cut, short).await;
        assert_eq!(outcome.reason, EndReason::Timeout);
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let exec = exec(r#"["/nonexistent/tool"]"#, "{}");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(async { crate::process::spawn(&exec, &[]) })
            .unwrap_err();
        assert!(
            err.to_string().contains("cannot start `/nonexistent/tool`"),
            "{err}"
        );
    }
}
