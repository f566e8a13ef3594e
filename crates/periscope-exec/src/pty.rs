//! A shell's process on a pseudo-terminal.
//!
//! The PTY comes from `portable-pty` (wezterm's): it does what this
//! workspace forbids itself (`unsafe`: `setsid` and the controlling terminal
//! in the child), so that the shell has job control and Ctrl-C, typed as a
//! byte, becomes SIGINT for the foreground job as on any terminal.
//!
//! The shell leads a new session. A shell with job control puts each job in
//! its own process group, so killing the shell's group is not enough: the
//! gateway ends a shell by signalling **every process of its session**
//! (found in `/proc`), SIGHUP and SIGTERM first, then SIGKILL after a grace.
//! A process that starts a session of its own (`setsid`) leaves the shell's
//! and is not found; the same holds for a daemon started from a terminal.

use std::io::{Read, Write};
use std::path::Path;

use periscope_policy::ShellConfig;
use portable_pty::{CommandBuilder, MasterPty, PtySize};
use rustix::process::{Pid, Signal};

/// A shell that could not be started; the message names the program only.
#[derive(Debug, thiserror::Error)]
pub enum PtyError {
    /// The connection has no program (a checked configuration always has one).
    #[error("the connection has no shell to run")]
    NoProgram,
    /// The pseudo-terminal could not be opened.
    #[error("cannot open a pseudo-terminal: {0}")]
    Open(String),
    /// The operating system refused to start the shell.
    #[error("cannot start `{program}`: {reason}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        reason: String,
    },
    /// A terminal operation (resize) failed.
    #[error("terminal: {0}")]
    Terminal(String),
}

/// A running shell: the PTY's master side and the session it leads.
pub struct PtyShell {
    master: Box<dyn MasterPty + Send>,
    /// Keeps the child handle (not waited through it: see [`PtyShell::pid`]).
    _child: Box<dyn portable_pty::Child + Send + Sync>,
    pid: Pid,
}

impl std::fmt::Debug for PtyShell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtyShell").field("pid", &self.pid).finish()
    }
}

/// A terminal size, as the client's window has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSize {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl WindowSize {
    fn pty(self) -> PtySize {
        PtySize {
            rows: self.rows.max(1),
            cols: self.cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        }
    }
}

/// Starts `shell.command` on a new PTY of `size`: the environment is exactly
/// `shell.env` (plus `SHELL`, the program, unless `env` sets it), the working
/// directory `shell.working_dir` or the gateway's own.
pub fn spawn(shell: &ShellConfig, size: WindowSize) -> Result<PtyShell, PtyError> {
    let program = shell.command.first().ok_or(PtyError::NoProgram)?;
    let pair = portable_pty::native_pty_system()
        .openpty(size.pty())
        .map_err(|e| PtyError::Open(e.to_string()))?;
    let mut command = CommandBuilder::new(program);
    command.args(&shell.command[1..]);
    command.env_clear();
    if !shell.env.contains_key("SHELL") {
        command.env("SHELL", program);
    }
    for (key, value) in &shell.env {
        command.env(key, value);
    }
    let dir = match &shell.working_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| Path::new("/").to_path_buf()),
    };
    command.cwd(dir);
    let start = |reason: String| PtyError::Start {
        program: program.clone(),
        reason,
    };
    let child = pair
        .slave
        .spawn_command(command)
        .map_err(|e| start(e.to_string()))?;
    // The shell holds the slave side now; the gateway keeps only the master,
    // so that the reader sees the end once the session's processes are gone.
    drop(pair.slave);
    let pid = child
        .process_id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
        .ok_or_else(|| start("it has no process id".into()))?;
    Ok(PtyShell {
        master: pair.master,
        _child: child,
        pid,
    })
}

impl PtyShell {
    /// The shell's process id: also its session's and process group's.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// A reader of the terminal's output (blocking).
    pub fn reader(&self) -> Result<Box<dyn Read + Send>, PtyError> {
        self.master
            .try_clone_reader()
            .map_err(|e| PtyError::Terminal(e.to_string()))
    }

    /// The writer of the terminal's input (blocking); once only.
    pub fn writer(&self) -> Result<Box<dyn Write + Send>, PtyError> {
        self.master
            .take_writer()
            .map_err(|e| PtyError::Terminal(e.to_string()))
    }

    /// Tells the terminal (and so the foreground program, by SIGWINCH) its
    /// new size.
    pub fn resize(&self, size: WindowSize) -> Result<(), PtyError> {
        self.master
            .resize(size.pty())
            .map_err(|e| PtyError::Terminal(e.to_string()))
    }

    /// Sends `signal` to the terminal's foreground process group (the job
    /// the engineer is running), or to the shell when there is none.
    pub fn signal_foreground(&self, signal: Signal) {
        let group = self
            .master
            .process_group_leader()
            .and_then(Pid::from_raw)
            .unwrap_or(self.pid);
        if let Err(e) = rustix::process::kill_process_group(group, signal)
            && e != rustix::io::Errno::SRCH
        {
            tracing::warn!(error = %e, "cannot signal a shell's foreground job");
        }
    }

    /// Sends `signal` to every process of the shell's session.
    pub fn signal_session(&self, signal: Signal) {
        signal_session(self.pid, signal);
    }
}

/// Sends `signal` to every process whose session is `sid` (read from
/// `/proc/PID/stat`), and to the process group `sid`.
pub fn signal_session(sid: Pid, signal: Signal) {
    let _ = rustix::process::kill_process_group(sid, signal);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if session_of(&stat) == Some(sid.as_raw_nonzero().get()) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

/// The session id in a `/proc/PID/stat` line: the fourth field after the
/// command name (which is in parentheses and may hold anything).
fn session_of(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(3)?.parse().ok()
}

/// Waits (blocking) for the shell to exit: (exit code, signal).
pub fn wait(pid: Pid) -> (Option<i32>, Option<i32>) {
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => {
                return (status.exit_status(), status.terminating_signal());
            }
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return (None, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_read_past_a_command_name_with_spaces() {
        let stat = "4242 (my (odd) prog) S 1 4242 4242 34816 4242 4194560 ...";
        assert_eq!(session_of(stat), Some(4242));
        assert_eq!(session_of("garbage"), None);
    }
}
