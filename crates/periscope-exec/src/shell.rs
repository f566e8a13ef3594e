//! One interactive shell from start to end.
//!
//! The terminal's output is read on a blocking thread (the PTY is a plain
//! file descriptor) into a bounded channel, masked by a
//! [`TerminalMasker`] and handed on, with back-pressure: the terminal is
//! not read while the client is behind. Input (keystrokes, resizes,
//! signals) comes from the client on another channel; keystrokes go to the
//! terminal through a blocking writer thread.
//!
//! An unfinished line (a prompt, the echo of what is typed) is shown once
//! the output has been quiet for [`QUIET`]. The session ends when the shell
//! exits (what it left in its session is killed), or when the gateway ends
//! it: a cut (a grant's end), the client gone, the time limit or the idle
//! limit. Then every process of the session gets SIGHUP and SIGTERM, and
//! SIGKILL after [`KILL_GRACE`] for those that ignore them.

use std::time::{Duration, Instant};

use periscope_redact::Masker;
use periscope_shield::grants::CutNotice;
use rustix::process::Signal;
use tokio::sync::{mpsc, oneshot};

use crate::pty::{self, PtyShell, WindowSize};
use crate::run::{EndReason, Outcome, Output};
use crate::terminal::TerminalMasker;

/// Quiet time after which an unfinished line is shown.
pub const QUIET: Duration = Duration::from_millis(25);
/// Time the session's processes get after SIGHUP and SIGTERM before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_millis(300);
/// Bytes read from the terminal at a time.
const READ_SIZE: usize = 16 * 1024;
/// Reads queued between the reader thread and the session.
const READ_QUEUE: usize = 4;

/// What the client sends a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes typed (Ctrl-C is the byte 0x03: the terminal turns it into
    /// SIGINT for the foreground job).
    Data(Vec<u8>),
    /// The client's window changed size.
    Resize(WindowSize),
    /// A signal for the foreground job.
    Signal(ShellSignal),
}

/// The signals a client may send to the foreground job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellSignal {
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGTERM.
    Term,
    /// SIGHUP.
    Hup,
    /// SIGKILL.
    Kill,
    /// SIGTSTP.
    Tstp,
    /// SIGCONT.
    Cont,
}

impl ShellSignal {
    /// Every signal, by its name without `SIG`.
    pub const NAMES: [&'static str; 7] = ["INT", "QUIT", "TERM", "HUP", "KILL", "TSTP", "CONT"];

    /// The signal named `name` (`INT` or `SIGINT`, any case).
    pub fn parse(name: &str) -> Option<ShellSignal> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Some(match bare {
            "INT" => ShellSignal::Int,
            "QUIT" => ShellSignal::Quit,
            "TERM" => ShellSignal::Term,
            "HUP" => ShellSignal::Hup,
            "KILL" => ShellSignal::Kill,
            "TSTP" => ShellSignal::Tstp,
            "CONT" => ShellSignal::Cont,
            _ => return None,
        })
    }

    fn signal(self) -> Signal {
        match self {
            ShellSignal::Int => Signal::INT,
            ShellSignal::Quit => Signal::QUIT,
            ShellSignal::Term => Signal::TERM,
            ShellSignal::Hup => Signal::HUP,
            ShellSignal::Kill => Signal::KILL,
            ShellSignal::Tstp => Signal::TSTP,
            ShellSignal::Cont => Signal::CONT,
        }
    }
}

/// Limits of one shell.
#[derive(Debug, Clone, Copy)]
pub struct ShellLimits {
    /// The shell is ended this long after it started.
    pub timeout: Duration,
    /// The shell is ended after this long without input or output.
    pub idle_timeout: Duration,
}

/// Runs `shell` to its end: its output masked and sent on `out` (as
/// [`Output::Stdout`]: a terminal has one stream), `input` written to it.
/// The session ends when the shell exits, when `cut` fires, when `input`
/// or `out` closes (the client is gone), or at a limit.
pub async fn run(
    shell: PtyShell,
    masker: &Masker,
    out: mpsc::Sender<Output>,
    mut input: mpsc::Receiver<Input>,
    mut cut: oneshot::Receiver<CutNotice>,
    limits: ShellLimits,
) -> Outcome {
    let started = Instant::now();
    let pid = shell.pid();
    // The leader's exit, waited on a blocking thread.
    let (exit_tx, mut exit_rx) = oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let _ = exit_tx.send(pty::wait(pid));
    });
    // The terminal's output, read on a blocking thread.
    let (read_tx, mut read_rx) = mpsc::channel::<Vec<u8>>(READ_QUEUE);
    match shell.reader() {
        Ok(mut reader) => {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; READ_SIZE];
                loop {
                    match reader.read(&mut buf) {
                        // EIO once every process holding the terminal is gone.
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if read_tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "cannot read a shell's terminal"),
    }
    // Keystrokes, written on a blocking thread (a program that does not
    // read its input must not block the session).
    let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    match shell.writer() {
        Ok(mut writer) => {
            std::thread::spawn(move || {
                while let Ok(bytes) = write_rx.recv() {
                    if writer
                        .write_all(&bytes)
                        .and_then(|()| writer.flush())
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        Err(e) => tracing::error!(error = %e, "cannot write to a shell's terminal"),
    }

    let mut terminal = TerminalMasker::new(masker);
    let deadline = tokio::time::sleep(limits.timeout);
    tokio::pin!(deadline);
    let idle = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(idle);
    let quiet = tokio::time::sleep(QUIET);
    tokio::pin!(quiet);
    let mut quiet_armed = false;
    let mut cut_open = true;
    let mut input_open = true;
    let mut reading = true;
    let mut status: Option<(Option<i32>, Option<i32>)> = None;
    let mut reason: Option<EndReason> = None;
    let mut bytes_in = 0u64;

    while reading || status.is_none() {
        let mut masked = String::new();
        tokio::select! {
            notice = &mut cut, if cut_open => match notice {
                Ok(notice) => { reason = Some(EndReason::Cut(notice)); break; }
                Err(_) => { cut_open = false; continue; }
            },
            () = out.closed() => { reason = Some(EndReason::ClientGone); break; }
            () = &mut deadline => { reason = Some(EndReason::Timeout); break; }
            () = &mut idle => { reason = Some(EndReason::Idle); break; }
            exited = &mut exit_rx, if status.is_none() => {
                status = Some(exited.unwrap_or((None, None)));
                // What the shell left in its session would keep the terminal
                // open (and running).
                pty::signal_session(pid, Signal::KILL);
                continue;
            }
            message = input.recv(), if input_open => {
                match message {
                    None => {
                        input_open = false;
                        if status.is_none() {
                            reason = Some(EndReason::ClientGone);
                            break;
                        }
                    }
                    Some(Input::Data(bytes)) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                        if write_tx.try_send(bytes).is_err() {
                            tracing::debug!("a shell's input is full; keystrokes dropped");
                        }
                    }
                    Some(Input::Resize(size)) => {
                        if let Err(e) = shell.resize(size) {
                            tracing::warn!(error = %e, "cannot resize a shell's terminal");
                        }
                    }
                    Some(Input::Signal(signal)) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                        shell.signal_foreground(signal.signal());
                    }
                }
                continue;
            }
            () = &mut quiet, if quiet_armed => {
                quiet_armed = false;
                terminal.flush_partial(&mut masked);
            }
            chunk = read_rx.recv(), if reading => match chunk {
                None => { reading = false; continue; }
                Some(bytes) => {
                    bytes_in += bytes.len() as u64;
                    idle.as_mut().reset(tokio::time::Instant::now() + limits.idle_timeout);
                    terminal.push(&bytes, &mut masked);
                    quiet_armed = terminal.has_partial();
                    if quiet_armed {
                        quiet.as_mut().reset(tokio::time::Instant::now() + QUIET);
                    }
                }
            },
        }
        if !masked.is_empty() {
            // Back-pressure, but a cut or the deadline still ends the wait.
            tokio::select! {
                sent = out.send(Output::Stdout(masked)) => if sent.is_err() {
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
    }
    drop(write_tx);
    if reason.is_some() && status.is_none() {
        // HUP as a terminal that hangs up, TERM for the rest; KILL for
        // whatever ignores both.
        pty::signal_session(pid, Signal::HUP);
        pty::signal_session(pid, Signal::TERM);
        pty::signal_session(pid, Signal::CONT);
        status = match tokio::time::timeout(KILL_GRACE, &mut exit_rx).await {
            Ok(Ok(s)) => Some(s),
            _ => None,
        };
        pty::signal_session(pid, Signal::KILL);
        if status.is_none() {
            status = Some(exit_rx.await.unwrap_or((None, None)));
        }
    } else {
        pty::signal_session(pid, Signal::KILL);
    }
    // As for commands: the last unfinished line is shown only when the
    // shell ended by itself.
    if reason.is_none() {
        let mut rest = String::new();
        terminal.finish(&mut rest);
        if !rest.is_empty() {
            let _ = out.try_send(Output::Stdout(rest));
        }
    }
    let (exit_code, signal) = status.unwrap_or((None, None));
    Outcome {
        reason: reason.unwrap_or(EndReason::Exited),
        exit_code,
        signal,
        stdout_bytes: bytes_in,
        stderr_bytes: 0,
        masked: *terminal.counts(),
        duration: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_policy::Config;
    use periscope_redact::ScanConfig;

    fn shell_config(command: &str) -> periscope_policy::ShellConfig {
        let text = format!(
            "[[connection]]\nname = \"t\"\nkind = \"shell\"\ncommand = {command}\nenv = {{ PATH = \"/usr/bin:/bin\" }}\n"
        );
        Config::parse(&text, "p").unwrap().connections[0]
            .shell
            .clone()
            .unwrap()
    }

    fn limits() -> ShellLimits {
        ShellLimits {
            timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }

    const SIZE: WindowSize = WindowSize { cols: 91, rows: 17 };

    #[tokio::test]
    async fn a_shell_runs_masked_and_exits_with_its_code() {
        let config = shell_config(r#"["/bin/sh"]"#);
        let shell = pty::spawn(&config, SIZE).unwrap();
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::channel(16);
        let (_keep, cut) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let masker = Masker::new(ScanConfig::new().build());
            run(shell, &masker, out_tx, in_rx, cut, limits()).await
        });
        in_tx
            .send(Input::Data(
                b"D=example.com; echo \"mail ivy@$D\"; stty size; exit 7\n".to_vec(),
            ))
            .await
            .unwrap();
        let mut seen = String::new();
        while let Some(Output::Stdout(s) | Output::Stderr(s)) = out_rx.recv().await {
            seen.push_str(&s);
        }
        let outcome = handle.await.unwrap();
        assert!(seen.contains("mail [email]"), "{seen:?}");
        assert!(!seen.contains("ivy@example.com"), "{seen:?}");
        assert!(seen.contains("17 91"), "{seen:?}");
        assert_eq!(outcome.reason, EndReason::Exited);
        assert_eq!(outcome.exit_code, Some(7));
    }

    #[tokio::test]
    async fn a_cut_ends_a_shell_that_ignores_hangups() {
        let config = shell_config(r#"["/bin/sh"]"#);
        let shell = pty::spawn(&config, SIZE).unwrap();
        let (out_tx, mut out_rx) = mpsc::channel(16);
        let (in_tx, in_rx) = mpsc::channel(16);
        let (cut_tx, cut) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let masker = Masker::new(ScanConfig::new().build());
            run(shell, &masker, out_tx, in_rx, cut, limits()).await
        });
        in_tx
            .send(Input::Data(
                b"trap '' HUP TERM; echo READY; /bin/sleep 300\n".to_vec(),
            ))
            .await
            .unwrap();
        let mut seen = String::new();
        while !seen.contains("READY\r\n") {
            match out_rx.recv().await {
                Some(Output::Stdout(s) | Output::Stderr(s)) => seen.push_str(&s),
                None => panic!("the shell ended early: {seen:?}"),
            }
        }
        let at = Instant::now();
        cut_tx
            .send(CutNotice {
                message: "grant gr_1 was revoked".into(),
                detail: None,
                hint: None,
            })
            .unwrap();
        let outcome = handle.await.unwrap();
        assert!(at.elapsed() < Duration::from_secs(1), "{:?}", at.elapsed());
        assert_eq!(outcome.reason.code(), "cut");
        assert_eq!(outcome.signal, Some(9));
        drop(in_tx);
    }

    #[tokio::test]
    async fn the_idle_and_absolute_limits_end_a_shell() {
        async fn ends(limits: ShellLimits) -> Outcome {
            let shell = pty::spawn(&shell_config(r#"["/bin/sh"]"#), SIZE).unwrap();
            let (out_tx, mut out_rx) = mpsc::channel(16);
            let (in_tx, in_rx) = mpsc::channel(16);
            let (_keep, cut) = oneshot::channel();
            let drain = tokio::spawn(async move { while out_rx.recv().await.is_some() {} });
            let outcome = {
                let masker = Masker::new(ScanConfig::new().build());
                run(shell, &masker, out_tx, in_rx, cut, limits).await
            };
            drop(in_tx);
            drain.await.unwrap();
            outcome
        }
        let idle = ends(ShellLimits {
            timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_millis(300),
        })
        .await;
        assert_eq!(idle.reason, EndReason::Idle);
        assert!(idle.signal.is_some() || idle.exit_code.is_some());
        let timeout = ends(ShellLimits {
            timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_secs(30),
        })
        .await;
        assert_eq!(timeout.reason, EndReason::Timeout);
    }

    #[test]
    fn signals_are_named_as_kill_names_them() {
        assert_eq!(ShellSignal::parse("int"), Some(ShellSignal::Int));
        assert_eq!(ShellSignal::parse("SIGTERM"), Some(ShellSignal::Term));
        assert_eq!(ShellSignal::parse("USR1"), None);
        for name in ShellSignal::NAMES {
            assert!(ShellSignal::parse(name).is_some());
        }
    }
}
