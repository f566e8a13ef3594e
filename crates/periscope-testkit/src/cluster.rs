//! Throwaway PostgreSQL clusters for tests.
//!
//! Every [`PgCluster`] is a private server: its own data directory in a temp dir,
//! its own free port on 127.0.0.1, password (SCRAM) authentication, stopped and
//! deleted when the value is dropped. Tests never touch a shared server's state.
//!
//! `initdb` is the slow part (about a second), so it runs once per machine and
//! PostgreSQL version into a template directory; each cluster starts from a copy.
//! PostgreSQL refuses to run as root, so when the tests run as root (as CI does)
//! every server-side binary runs as the `postgres` system user, in directories
//! that user owns.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::TestkitError;

/// Name of the superuser created in every cluster.
pub const SUPERUSER: &str = "testkit";
/// Password of [`SUPERUSER`]. Clusters listen on loopback only, for one test.
pub const SUPERUSER_PASSWORD: &str = "testkit-superuser-password";

/// Group role whose members authenticate with MD5 (see [`PasswordMethod::Md5`]).
const MD5_GROUP: &str = "testkit_md5";
/// Group role whose members authenticate with a cleartext password.
const CLEARTEXT_GROUP: &str = "testkit_cleartext";

/// How a login role created by [`PgCluster::create_login_role`] authenticates,
/// so tests can exercise every upstream method a gateway must speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMethod {
    /// SCRAM-SHA-256, the PostgreSQL default.
    Scram,
    /// MD5 challenge-response (legacy servers).
    Md5,
    /// The password sent in clear (`password` in pg_hba.conf).
    Cleartext,
}

/// The PostgreSQL binaries of one installed version.
#[derive(Debug, Clone)]
pub struct PgBinaries {
    dir: PathBuf,
    version: String,
}

impl PgBinaries {
    /// Finds the server binaries: `$PERISCOPE_PG_BINDIR` if set, else the newest
    /// `/usr/lib/postgresql/*/bin` that has `initdb`.
    pub fn locate() -> Result<Self, TestkitError> {
        let dir = match std::env::var_os("PERISCOPE_PG_BINDIR") {
            Some(dir) => PathBuf::from(dir),
            None => newest_debian_bindir().ok_or(TestkitError::PostgresNotInstalled)?,
        };
        if !dir.join("initdb").is_file() || !dir.join("pg_ctl").is_file() {
            return Err(TestkitError::PostgresNotInstalled);
        }
        let out = run(
            Command::new(dir.join("initdb")).arg("--version"),
            "initdb --version",
        )?;
        let version = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .unwrap_or("unknown")
            .to_string();
        Ok(Self { dir, version })
    }

    /// Path of one binary (`psql`, `pgbench`, ...) of this installation.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The version string, e.g. `15.20`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn newest_debian_bindir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

/// Options for starting a cluster.
#[derive(Debug, Clone, Default)]
pub struct PgClusterBuilder {
    settings: Vec<(String, String)>,
    durable: bool,
}

impl PgClusterBuilder {
    /// Adds a server setting (`-c name=value`), e.g. `max_connections`.
    pub fn setting(mut self, name: &str, value: impl ToString) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Keeps `fsync` on. By default test clusters trade durability for speed;
    /// benchmarks that compare against a production-like server want it on.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Creates the cluster from the template and starts it on a free port.
    pub fn start(self) -> Result<PgCluster, TestkitError> {
        let bins = PgBinaries::locate()?;
        let as_postgres = running_as_root();
        let template = ensure_template(&bins, as_postgres)?;

        let root = tempfile::Builder::new()
            .prefix("periscope-pg-")
            .tempdir()
            .map_err(|e| TestkitError::io("creating the cluster directory", e))?;
        let data_dir = root.path().join("data");
        copy_dir(&template.join("data"), &data_dir)?;
        let socket_dir = root.path().join("sock");
        fs::create_dir(&socket_dir).map_err(|e| TestkitError::io("creating socket dir", e))?;
        if as_postgres {
            chown_to_postgres(root.path())?;
            chown_to_postgres(&socket_dir)?;
        }

        let mut settings = vec![
            ("listen_addresses".to_string(), "127.0.0.1".to_string()),
            (
                "unix_socket_directories".to_string(),
                socket_dir.display().to_string(),
            ),
        ];
        if !self.durable {
            for (k, v) in [
                ("fsync", "off"),
                ("synchronous_commit", "off"),
                ("full_page_writes", "off"),
            ] {
                settings.push((k.to_string(), v.to_string()));
            }
        }
        settings.extend(self.settings);

        let mut cluster = PgCluster {
            root,
            data_dir,
            port: 0,
            bins,
            as_postgres,
            settings,
            running: false,
        };
        cluster.start_on_free_port()?;
        Ok(cluster)
    }
}

/// A running throwaway PostgreSQL server. Stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    root: tempfile::TempDir,
    data_dir: PathBuf,
    port: u16,
    bins: PgBinaries,
    as_postgres: bool,
    settings: Vec<(String, String)>,
    running: bool,
}

impl PgCluster {
    /// Starts a cluster with the default (fast, non-durable) settings.
    pub fn start() -> Result<Self, TestkitError> {
        PgClusterBuilder::default().start()
    }

    /// A builder for clusters that need extra settings.
    pub fn builder() -> PgClusterBuilder {
        PgClusterBuilder::default()
    }

    /// The TCP port the server listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Always `127.0.0.1`: clusters never listen beyond loopback.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The binaries this cluster runs, for tools such as `psql` and `pgbench`.
    pub fn binaries(&self) -> &PgBinaries {
        &self.bins
    }

    /// The server log, for diagnosing a failing test.
    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("postgres.log")
    }

    /// A libpq key/value connection string for the superuser.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} password={SUPERUSER_PASSWORD} dbname={dbname}",
            self.port
        )
    }

    /// A `postgres://` URL for the superuser.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{dbname}",
            self.port
        )
    }

    /// Runs SQL through `psql` as the superuser and returns its unaligned,
    /// tuples-only output. Stops at the first error.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, TestkitError> {
        let out = run(
            Command::new(self.bins.path("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", SUPERUSER, "-d", dbname, "-c", sql])
                .env("PGPASSWORD", SUPERUSER_PASSWORD)
                .env("PGCONNECT_TIMEOUT", "10"),
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// Creates a database owned by the superuser.
    pub fn create_database(&self, name: &str) -> Result<(), TestkitError> {
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {}", quote_ident(name)),
        )
        .map(drop)
    }

    /// Creates a login role that authenticates with `method`, so a test can
    /// exercise SCRAM, MD5 and cleartext upstream authentication.
    pub fn create_login_role(
        &self,
        name: &str,
        password: &str,
        method: PasswordMethod,
    ) -> Result<(), TestkitError> {
        let (encryption, group) = match method {
            PasswordMethod::Scram => ("scram-sha-256", None),
            PasswordMethod::Md5 => ("md5", Some(MD5_GROUP)),
            PasswordMethod::Cleartext => ("scram-sha-256", Some(CLEARTEXT_GROUP)),
        };
        let in_role = group.map(|g| format!(" IN ROLE {g}")).unwrap_or_default();
        self.psql(
            "postgres",
            &format!(
                "SET password_encryption = '{encryption}'; CREATE ROLE {} LOGIN PASSWORD {}{in_role}",
                quote_ident(name),
                quote_literal(password)
            ),
        )
        .map(drop)
    }

    /// Kills the server with SIGKILL, as a crash would, for fault tests.
    pub fn kill(&mut self) -> Result<(), TestkitError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let pid = fs::read_to_string(&pid_file)
            .map_err(|e| TestkitError::io("reading postmaster.pid", e))?
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        run(
            Command::new("kill").args(["-KILL", &pid]),
            "kill -KILL postmaster",
        )?;
        self.running = false;
        // SIGKILL is asynchronous: wait until the postmaster is really gone, or
        // a restart would find its lock file still owned by a live process.
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_alive(&proc_dir) {
            if std::time::Instant::now() > deadline {
                return Err(TestkitError::CommandFailed {
                    what: "kill -KILL postmaster".into(),
                    detail: format!("process {pid} still alive after 10 s"),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    /// Starts the server again on the same port after [`PgCluster::stop`] or
    /// [`PgCluster::kill`] (crash recovery runs as in production).
    pub fn restart(&mut self) -> Result<(), TestkitError> {
        if self.running {
            self.stop()?;
        }
        // After SIGKILL, backends notice the postmaster's death on their own
        // schedule and may hold the shared memory or port a little longer:
        // retry while the log says so, for a bounded time.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let log = log_tail(&self.log_path());
                    let transient = log.contains("still in use")
                        || log.contains("could not bind")
                        || log.contains("already exists");
                    if !transient || std::time::Instant::now() > deadline {
                        return Err(err);
                    }
                }
            }
        }
    }

    /// Stops the server (fast shutdown), keeping its data for a restart.
    pub fn stop(&mut self) -> Result<(), TestkitError> {
        if !self.running {
            return Ok(());
        }
        let data = self.data_dir.display().to_string();
        let mut cmd = self.server_command("pg_ctl");
        cmd.args(["stop", "-D", &data, "-m", "fast", "-w", "-t", "60"]);
        run(&mut cmd, "pg_ctl stop")?;
        self.running = false;
        Ok(())
    }

    fn start_on_free_port(&mut self) -> Result<(), TestkitError> {
        let mut last_error = None;
        for _ in 0..5 {
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let log = fs::read_to_string(self.log_path()).unwrap_or_default();
                    if !log.contains("could not bind") && !log.contains("in use") {
                        return Err(err);
                    }
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or(TestkitError::NoFreePort))
    }

    fn pg_ctl_start(&mut self) -> Result<(), TestkitError> {
        let mut options = format!("-c port={}", self.port);
        for (name, value) in &self.settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let data = self.data_dir.display().to_string();
        let log = self.log_path().display().to_string();
        let mut cmd = self.server_command("pg_ctl");
        cmd.args([
            "start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options,
        ]);
        match run(&mut cmd, "pg_ctl start") {
            Ok(_) => {
                self.running = true;
                Ok(())
            }
            Err(TestkitError::CommandFailed { what, detail }) => {
                let tail = log_tail(&self.log_path());
                Err(TestkitError::CommandFailed {
                    what,
                    detail: format!("{detail}\nserver log:\n{tail}"),
                })
            }
            Err(other) => Err(other),
        }
    }

    fn server_command(&self, binary: &str) -> Command {
        server_command(&self.bins, binary, self.as_postgres)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir.display().to_string();
            let mut cmd = self.server_command("pg_ctl");
            cmd.args(["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"]);
            let _ = cmd.output();
        }
    }
}

fn server_command(bins: &PgBinaries, binary: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bins.path(binary));
        cmd
    } else {
        Command::new(bins.path(binary))
    }
}

/// Builds the initdb template once per machine, user and version. Concurrent
/// test processes race safely: each builds in its own directory and the first
/// atomic rename wins.
fn ensure_template(bins: &PgBinaries, as_postgres: bool) -> Result<PathBuf, TestkitError> {
    let uid = current_uid();
    let template = std::env::temp_dir().join(format!(
        "periscope-testkit-template-v1-pg{}-uid{uid}",
        bins.version()
    ));
    if template.join("ready").is_file() {
        return Ok(template);
    }

    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let building = std::env::temp_dir().join(format!(
        "periscope-testkit-building-{}-{nonce}",
        std::process::id()
    ));
    fs::create_dir(&building).map_err(|e| TestkitError::io("creating template dir", e))?;
    let result = build_template(bins, as_postgres, &building);
    if let Err(err) = result {
        let _ = fs::remove_dir_all(&building);
        return Err(err);
    }
    if fs::rename(&building, &template).is_err() {
        // Another process finished first; its template is as good as ours.
        let _ = fs::remove_dir_all(&building);
    }
    if template.join("ready").is_file() {
        Ok(template)
    } else {
        Err(TestkitError::CommandFailed {
            what: "building the initdb template".into(),
            detail: format!("{} is incomplete; remove it and retry", template.display()),
        })
    }
}

fn build_template(bins: &PgBinaries, as_postgres: bool, dir: &Path) -> Result<(), TestkitError> {
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, SUPERUSER_PASSWORD).map_err(|e| TestkitError::io("writing pwfile", e))?;
    if as_postgres {
        chown_to_postgres(dir)?;
        chown_to_postgres(&pwfile)?;
    }
    let data = dir.join("data").display().to_string();
    let mut initdb = server_command(bins, "initdb", as_postgres);
    initdb
        .args(["-D", &data, "-U", SUPERUSER, "--auth=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--locale=C", "--no-sync"]);
    run(&mut initdb, "initdb")?;
    fs::remove_file(&pwfile).map_err(|e| TestkitError::io("removing pwfile", e))?;

    // Per-method groups come first: pg_hba.conf is matched top to bottom.
    let hba = format!(
        "# Written by periscope-testkit.\n\
         host all +{MD5_GROUP} 127.0.0.1/32 md5\n\
         host all +{CLEARTEXT_GROUP} 127.0.0.1/32 password\n\
         local all all scram-sha-256\n\
         host all all 127.0.0.1/32 scram-sha-256\n\
         host all all ::1/128 scram-sha-256\n"
    );
    fs::write(dir.join("data").join("pg_hba.conf"), hba)
        .map_err(|e| TestkitError::io("writing pg_hba.conf", e))?;

    // The group roles exist in the template so every cluster has them.
    let mut single = server_command(bins, "postgres", as_postgres);
    single
        .args(["--single", "-D", &data, "-j", "postgres"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = single
        .spawn()
        .map_err(|e| TestkitError::io("starting postgres --single", e))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or(TestkitError::CommandFailed {
            what: "postgres --single".into(),
            detail: "no stdin".into(),
        })?;
        write!(
            stdin,
            "CREATE ROLE {MD5_GROUP} NOLOGIN;\nCREATE ROLE {CLEARTEXT_GROUP} NOLOGIN;\n"
        )
        .map_err(|e| TestkitError::io("writing to postgres --single", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| TestkitError::io("waiting for postgres --single", e))?;
    if !out.status.success() {
        return Err(TestkitError::CommandFailed {
            what: "postgres --single (creating group roles)".into(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    fs::write(dir.join("ready"), "").map_err(|e| TestkitError::io("marking template ready", e))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), TestkitError> {
    // `cp -a` keeps owners and the 0700 mode PostgreSQL insists on.
    run(
        Command::new("cp").arg("-a").arg(from).arg(to),
        "cp -a template",
    )
    .map(drop)
}

fn chown_to_postgres(path: &Path) -> Result<(), TestkitError> {
    let out = run(
        Command::new("id").args(["-u", "postgres"]),
        "id -u postgres",
    )
    .map_err(|_| TestkitError::NoPostgresUser)?;
    let uid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| TestkitError::NoPostgresUser)?;
    let out = run(
        Command::new("id").args(["-g", "postgres"]),
        "id -g postgres",
    )?;
    let gid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| TestkitError::NoPostgresUser)?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| TestkitError::io("chown to postgres", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| TestkitError::io("chmod 0700", e))
}

fn running_as_root() -> bool {
    current_uid() == 0
}

fn current_uid() -> u32 {
    // The effective uid, read from procfs: avoids libc (and unsafe) for geteuid().
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse().ok()
        })
        .unwrap_or(u32::MAX)
}

fn process_alive(proc_dir: &Path) -> bool {
    // A zombie (state Z) is dead for our purposes; its parent reaps it.
    match fs::read_to_string(proc_dir.join("stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn free_port() -> Result<u16, TestkitError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| TestkitError::io("finding a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| TestkitError::io("finding a free port", e))?
        .port();
    Ok(port)
}

fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, TestkitError> {
    let out = cmd.output().map_err(|e| TestkitError::io(what, e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(TestkitError::CommandFailed {
            what: what.to_string(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            ),
        })
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
