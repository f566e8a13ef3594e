//! One command's process: argv only, an explicit environment, its own
//! process group.

use std::process::Stdio;

use periscope_policy::ExecConfig;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// A process that could not be started; the message names the program, never
/// the arguments (they may hold personal data).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The connection has no program (a checked configuration always has one).
    #[error("the connection has no command to run")]
    NoProgram,
    /// The operating system refused to start it.
    #[error("cannot start `{program}`: {source}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It started without the pipes this crate asked for.
    #[error("`{program}` started without its output pipes")]
    NoPipes {
        /// The program.
        program: String,
    },
}

/// A running command: the child (leader of its own process group) and its
/// output pipes. Dropping it kills the leader; [`ExecProcess::kill_group`]
/// kills every process of the group.
#[derive(Debug)]
pub struct ExecProcess {
    /// The child; its pid is the process group's id.
    pub child: Child,
    /// Its standard output.
    pub stdout: ChildStdout,
    /// Its standard error.
    pub stderr: ChildStderr,
    group: Option<rustix::process::Pid>,
}

/// Starts `exec.command` followed by `args`, with no shell: the environment
/// is exactly `exec.env`, stdin is empty, the working directory is
/// `exec.working_dir` (when set), and the process leads a new process group.
pub fn spawn(exec: &ExecConfig, args: &[String]) -> Result<ExecProcess, SpawnError> {
    let (program, base) = exec.command.split_first().ok_or(SpawnError::NoProgram)?;
    let mut command = Command::new(program);
    command
        .args(base)
        .args(args)
        .env_clear()
        .envs(&exec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &exec.working_dir {
        command.current_dir(dir);
    }
    let mut child = command.spawn().map_err(|source| SpawnError::Start {
        program: program.clone(),
        source,
    })?;
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(SpawnError::NoPipes {
            program: program.clone(),
        });
    };
    Ok(ExecProcess {
        child,
        stdout,
        stderr,
        group,
    })
}

impl ExecProcess {
    /// Kills every process of the group with SIGKILL (a process that ignores
    /// SIGTERM must still end within the second a grant's end allows). A
    /// group already gone is not an error.
    pub fn kill_group(&self) {
        if let Some(group) = self.group {
            match rustix::process::kill_process_group(group, rustix::process::Signal::KILL) {
                Ok(()) => {}
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => tracing::warn!(error = %e, "cannot kill a command's process group"),
            }
        }
    }
}
