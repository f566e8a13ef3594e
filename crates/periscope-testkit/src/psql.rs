//! The one way tests run the real `psql`: a client engineers use every day,
//! so a test through it checks what a user sees (TLS negotiation, libpq's
//! error rendering, meta-commands, COPY).
//!
//! Defaults: no `.psqlrc` (`-X`), unaligned tuples only (`-A -t`), stop at
//! the first error (`ON_ERROR_STOP=1`), a 10 s connect timeout, and no
//! `PGPASSWORD`/`PGSSLMODE` inherited from the environment, so a test only
//! authenticates the way it says.

use std::path::{Path, PathBuf};
use std::time::Duration;

use periscope_localpg::PgBinaries;

/// How long a run may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// A `psql` invocation being built.
#[derive(Debug, Clone)]
pub struct Psql {
    bin: PathBuf,
    conninfo: String,
    password: Option<String>,
    args: Vec<String>,
    cwd: Option<PathBuf>,
}

/// What a run printed, and whether it succeeded.
#[derive(Debug, Clone)]
pub struct PsqlOutput {
    /// Exit status 0.
    pub success: bool,
    /// Standard output, as printed (trailing newline included).
    pub stdout: String,
    /// Standard error: libpq's and the server's messages.
    pub stderr: String,
}

impl PsqlOutput {
    /// Standard output without its trailing newlines: one value or a few
    /// `|`-separated rows compare directly.
    pub fn out(&self) -> &str {
        self.stdout.trim_end()
    }

    /// Everything printed, standard output then standard error: what a
    /// test searches for values that must never reach a client.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Psql {
    /// `psql` from `binaries` against `conninfo` (a libpq connection string
    /// or URI).
    pub fn new(binaries: &PgBinaries, conninfo: impl Into<String>) -> Psql {
        Psql {
            bin: binaries.path("psql"),
            conninfo: conninfo.into(),
            password: None,
            args: vec![
                "-X".into(),
                "-A".into(),
                "-t".into(),
                "-v".into(),
                "ON_ERROR_STOP=1".into(),
            ],
            cwd: None,
        }
    }

    /// Authenticates with `password` (as `PGPASSWORD`).
    pub fn password(mut self, password: impl Into<String>) -> Psql {
        self.password = Some(password.into());
        self
    }

    /// Errors with their SQLSTATE and every field (`ERROR:  42501: ...`,
    /// DETAIL, HINT).
    pub fn verbose(self) -> Psql {
        self.arg("-v").arg("VERBOSITY=verbose")
    }

    /// Prints column headers and the row count (no `-t`), as a user sees
    /// meta-commands and tables.
    pub fn headers(mut self) -> Psql {
        self.args.retain(|a| a != "-t");
        self
    }

    /// One more command-line argument, before `-c`.
    pub fn arg(mut self, arg: impl Into<String>) -> Psql {
        self.args.push(arg.into());
        self
    }

    /// Runs in `dir` (for `\copy ... to 'file'`).
    pub fn cwd(mut self, dir: &Path) -> Psql {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// The command for `sql`, to spawn and drive (signals, stdin).
    pub fn command(&self, sql: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(&self.args)
            .args(["-d", &self.conninfo, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSSLMODE")
            .kill_on_drop(true);
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    /// Runs `sql` and waits for psql to end.
    pub async fn run(&self, sql: &str) -> PsqlOutput {
        let out = tokio::time::timeout(RUN_TIMEOUT, self.command(sql).output())
            .await
            .expect("psql finishes within two minutes")
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        PsqlOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}
