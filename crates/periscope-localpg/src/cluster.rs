//! Private PostgreSQL clusters: throwaway ones for tests, kept ones for the demo.
//!
//! Every [`PgCluster`] is a private server: its own data directory, its own
//! free port on 127.0.0.1, password (SCRAM) authentication, stopped when the
//! value is dropped. Nothing ever touches a shared server's state.
//!
//! A throwaway cluster lives in a temp dir deleted on drop, with fast
//! non-durable settings. `initdb` is its slow part (about a second), so it runs
//! once per machine and PostgreSQL version into a template directory and each
//! cluster starts from a copy. A kept cluster ([`PgClusterBuilder::data_dir`])
//! is initialised in the directory given, with a random superuser password
//! stored beside it, and can be started again from there later.
//!
//! PostgreSQL refuses to run as root, so when the caller is root (as CI and
//! many containers are) every server-side binary runs as the `postgres`
//! system user, in directories that user owns.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::LocalPgError;

/// Name of the superuser of every throwaway cluster.
pub const SUPERUSER: &str = "testkit";
/// Password of [`SUPERUSER`]. Throwaway clusters listen on loopback only, for
/// one test; kept clusters get a random password instead.
pub const SUPERUSER_PASSWORD: &str = "testkit-superuser-password";
/// Name of the superuser of a kept cluster ([`PgClusterBuilder::data_dir`]).
const KEPT_SUPERUSER: &str = "periscope";
/// File of a kept cluster's directory holding its superuser password.
const PASSWORD_FILE: &str = "superuser.password";

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
    /// `/usr/lib/postgresql/*/bin` (Debian, Ubuntu) or `/usr/pgsql-*/bin`
    /// (PGDG packages) that has `initdb`, else the first `PATH` entry holding
    /// both `initdb` and `pg_ctl` (Fedora, Homebrew).
    pub fn locate() -> Result<Self, LocalPgError> {
        let dir = match std::env::var_os("PERISCOPE_PG_BINDIR") {
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !has_server_binaries(&dir) {
                    return Err(LocalPgError::PostgresNotInstalled {
                        searched: format!(
                            "PERISCOPE_PG_BINDIR={} holds no initdb and pg_ctl",
                            dir.display()
                        ),
                    });
                }
                dir
            }
            None => newest_packaged_bindir()
                .or_else(bindir_on_path)
                .ok_or_else(|| LocalPgError::PostgresNotInstalled {
                    searched: "looked in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin and PATH"
                        .to_string(),
                })?,
        };
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

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The version string, e.g. `15.20`.
    pub fn version(&self) -> &str {
        &self.version
    }
}

fn has_server_binaries(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// The newest versioned installation: `/usr/lib/postgresql/<major>/bin`
/// (Debian) or `/usr/pgsql-<major>/bin` (PGDG RPMs).
fn newest_packaged_bindir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.filter_map(Result::ok) {
            if let Some(major) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                found.push((major, entry.path().join("bin")));
            }
        }
    }
    if let Ok(entries) = fs::read_dir("/usr") {
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let major = name
                .to_str()
                .and_then(|n| n.strip_prefix("pgsql-"))
                .and_then(|v| v.parse().ok());
            if let Some(major) = major {
                found.push((major, entry.path().join("bin")));
            }
        }
    }
    found.retain(|(_, bin)| has_server_binaries(bin));
    found.sort();
    found.pop().map(|(_, dir)| dir)
}

fn bindir_on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| has_server_binaries(dir))
}

/// Options for starting a cluster.
#[derive(Debug, Clone, Default)]
pub struct PgClusterBuilder {
    settings: Vec<(String, String)>,
    durable: bool,
    kept_in: Option<PathBuf>,
}

impl PgClusterBuilder {
    /// Adds a server setting (`-c name=value`), e.g. `max_connections`.
    pub fn setting(mut self, name: &str, value: impl ToString) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Keeps `fsync` on. By default throwaway clusters trade durability
    /// against a crash of the machine (not of the server) for speed; benchmarks that compare against a production-like server, and
    /// clusters that outlive the process, want it on.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Keeps the cluster in `root` instead of a temp dir: `root/data` (the
    /// data directory), `root/sock`, `root/postgres.log` and
    /// `root/superuser.password`. It is initialised there on the first start
    /// (with a random superuser password) and started again from there on
    /// later ones, so a caller can resume what it left. Dropping the cluster
    /// stops the server but deletes nothing. Implies [`Self::durable`].
    pub fn data_dir(mut self, root: impl Into<PathBuf>) -> Self {
        self.kept_in = Some(root.into());
        self.durable = true;
        self
    }

    /// Whether a kept cluster already exists in `root` (see [`Self::data_dir`]).
    pub fn exists_in(root: &Path) -> bool {
        root.join("data").join("PG_VERSION").is_file()
    }

    /// Creates the cluster (from the template, or in its kept directory) and
    /// starts it on a free port.
    pub fn start(self) -> Result<PgCluster, LocalPgError> {
        let bins = PgBinaries::locate()?;
        let as_postgres = running_as_root();
        let (root, superuser, password) = match &self.kept_in {
            None => {
                let template = ensure_template(&bins, as_postgres)?;
                let root = tempfile::Builder::new()
                    .prefix("periscope-pg-")
                    .tempdir()
                    .map_err(|e| LocalPgError::io("creating the cluster directory", e))?;
                copy_dir(&template.join("data"), &root.path().join("data"))?;
                if as_postgres {
                    chown_to_postgres(root.path())?;
                }
                (
                    ClusterRoot::Temp(root),
                    SUPERUSER.to_string(),
                    SUPERUSER_PASSWORD.to_string(),
                )
            }
            Some(root) => {
                let password = prepare_kept(&bins, as_postgres, root)?;
                (
                    ClusterRoot::Kept(root.clone()),
                    KEPT_SUPERUSER.to_string(),
                    password,
                )
            }
        };
        let data_dir = root.path().join("data");
        let socket_dir = root.path().join("sock");
        if !socket_dir.is_dir() {
            fs::create_dir(&socket_dir).map_err(|e| LocalPgError::io("creating socket dir", e))?;
        }
        if as_postgres {
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
            // Only the machine's crash is given up: a commit still reaches
            // the OS before it returns (`synchronous_commit` stays on), so a
            // server killed by [`PgCluster::kill`] keeps every commit, as a
            // real server would. With it off, a kill shortly after setup
            // lost the roles the setup had just created.
            for (k, v) in [("fsync", "off"), ("full_page_writes", "off")] {
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
            superuser,
            password,
            settings,
            running: false,
        };
        cluster.start_on_free_port()?;
        Ok(cluster)
    }
}

/// Where a cluster lives: a temp dir deleted on drop, or a directory the
/// caller keeps.
#[derive(Debug)]
enum ClusterRoot {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl ClusterRoot {
    fn path(&self) -> &Path {
        match self {
            ClusterRoot::Temp(dir) => dir.path(),
            ClusterRoot::Kept(path) => path,
        }
    }
}

/// Initialises a kept cluster in `root` unless one is there already, and
/// returns its superuser password.
fn prepare_kept(bins: &PgBinaries, as_postgres: bool, root: &Path) -> Result<String, LocalPgError> {
    let password_file = root.join(PASSWORD_FILE);
    if PgClusterBuilder::exists_in(root) {
        let password =
            fs::read_to_string(&password_file).map_err(|e| LocalPgError::NotACluster {
                path: root.to_path_buf(),
                reason: format!("cannot read {}: {e}", password_file.display()),
            })?;
        return Ok(password.trim().to_string());
    }
    if root.exists() {
        let mut entries =
            fs::read_dir(root).map_err(|e| LocalPgError::io("reading the cluster directory", e))?;
        if entries.next().is_some() {
            return Err(LocalPgError::NotACluster {
                path: root.to_path_buf(),
                reason: "it is not empty and holds no data/PG_VERSION".to_string(),
            });
        }
    } else {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| LocalPgError::io("creating the cluster directory", e))?;
    }
    if as_postgres {
        chown_to_postgres(root)?;
        // Every parent must be traversable by `postgres`; say so plainly
        // rather than through initdb's "Permission denied".
        let writable = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-w"])
            .arg(root)
            .status()
            .is_ok_and(|status| status.success());
        if !writable {
            return Err(LocalPgError::NotAccessible {
                path: root.to_path_buf(),
            });
        }
    }
    let mut random = [0u8; 18];
    getrandom::fill(&mut random).map_err(|e| LocalPgError::CommandFailed {
        what: "generating the superuser password".into(),
        detail: e.to_string(),
    })?;
    let password = hex::encode(random);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&password_file)
        .and_then(|mut file| {
            use std::io::Write as _;
            file.write_all(password.as_bytes())
        })
        .map_err(|e| LocalPgError::io("writing the superuser password", e))?;
    if as_postgres {
        chown_to_postgres_file(&password_file)?;
    }
    let data = root.join("data");
    initdb(
        bins,
        as_postgres,
        &data,
        KEPT_SUPERUSER,
        &password_file,
        true,
    )?;
    write_hba(&data, false)?;
    Ok(password)
}

/// A running PostgreSQL server of its own. Stopped on drop; a throwaway one
/// is also deleted.
#[derive(Debug)]
pub struct PgCluster {
    root: ClusterRoot,
    data_dir: PathBuf,
    port: u16,
    bins: PgBinaries,
    as_postgres: bool,
    superuser: String,
    password: String,
    settings: Vec<(String, String)>,
    running: bool,
}

impl PgCluster {
    /// Starts a throwaway cluster with the default (fast, non-durable) settings.
    pub fn start() -> Result<Self, LocalPgError> {
        PgClusterBuilder::default().start()
    }

    /// A builder for clusters that need extra settings or a kept directory.
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

    /// The directory holding the cluster (`data/`, `sock/`, the log).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The PostgreSQL data directory (`pg_ctl -D`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the server binaries run as the `postgres` user (the caller is root).
    pub fn runs_as_postgres(&self) -> bool {
        self.as_postgres
    }

    /// The superuser's name: [`SUPERUSER`] for throwaway clusters.
    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    /// The superuser's password: [`SUPERUSER_PASSWORD`] for throwaway clusters,
    /// a random one for kept clusters.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The server log, for diagnosing a failure.
    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("postgres.log")
    }

    /// A libpq key/value connection string for the superuser.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={} password={} dbname={dbname}",
            self.port, self.superuser, self.password
        )
    }

    /// A `postgres://` URL for the superuser.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{dbname}",
            self.superuser, self.password, self.port
        )
    }

    /// Runs SQL through `psql` as the superuser and returns its unaligned,
    /// tuples-only output. Stops at the first error.
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, LocalPgError> {
        let out = run(
            Command::new(self.bins.path("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", &self.superuser, "-d", dbname, "-c", sql])
                .env("PGPASSWORD", &self.password)
                .env("PGCONNECT_TIMEOUT", "10"),
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    /// Creates a database owned by the superuser.
    pub fn create_database(&self, name: &str) -> Result<(), LocalPgError> {
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
    ) -> Result<(), LocalPgError> {
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
    pub fn kill(&mut self) -> Result<(), LocalPgError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let pid = fs::read_to_string(&pid_file)
            .map_err(|e| LocalPgError::io("reading postmaster.pid", e))?
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
                return Err(LocalPgError::CommandFailed {
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
    pub fn restart(&mut self) -> Result<(), LocalPgError> {
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
    pub fn stop(&mut self) -> Result<(), LocalPgError> {
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

    fn start_on_free_port(&mut self) -> Result<(), LocalPgError> {
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
        Err(last_error.unwrap_or(LocalPgError::NoFreePort))
    }

    fn pg_ctl_start(&mut self) -> Result<(), LocalPgError> {
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
            Err(LocalPgError::CommandFailed { what, detail }) => {
                let tail = log_tail(&self.log_path());
                Err(LocalPgError::CommandFailed {
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
            // A throwaway cluster's data is deleted next, so there is nothing
            // to flush; a kept one shuts down cleanly for its next start.
            let mode = match self.root {
                ClusterRoot::Temp(_) => "immediate",
                ClusterRoot::Kept(_) => "fast",
            };
            let data = self.data_dir.display().to_string();
            let mut cmd = self.server_command("pg_ctl");
            cmd.args(["stop", "-D", &data, "-m", mode, "-w", "-t", "30"]);
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
fn ensure_template(bins: &PgBinaries, as_postgres: bool) -> Result<PathBuf, LocalPgError> {
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
    fs::create_dir(&building).map_err(|e| LocalPgError::io("creating template dir", e))?;
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
        Err(LocalPgError::CommandFailed {
            what: "building the initdb template".into(),
            detail: format!("{} is incomplete; remove it and retry", template.display()),
        })
    }
}

/// Runs `initdb` into `data` with `superuser` and the password in `pwfile`,
/// SCRAM for every connection, UTF-8 and the C locale (the same results on
/// every machine). `sync` lets initdb flush its files (kept clusters).
fn initdb(
    bins: &PgBinaries,
    as_postgres: bool,
    data: &Path,
    superuser: &str,
    pwfile: &Path,
    sync: bool,
) -> Result<(), LocalPgError> {
    let mut cmd = server_command(bins, "initdb", as_postgres);
    cmd.arg("-D")
        .arg(data)
        .args(["-U", superuser, "--auth=scram-sha-256"])
        .arg(format!("--pwfile={}", pwfile.display()))
        .args(["-E", "UTF8", "--locale=C"]);
    if !sync {
        cmd.arg("--no-sync");
    }
    run(&mut cmd, "initdb").map(drop)
}

/// Password authentication for every role, loopback only. `method_groups`
/// adds the MD5 and cleartext groups of [`PasswordMethod`] (throwaway
/// clusters, for tests), first because pg_hba.conf is matched top to bottom.
fn write_hba(data: &Path, method_groups: bool) -> Result<(), LocalPgError> {
    let mut hba = String::from("# Written by periscope-localpg.\n");
    if method_groups {
        hba.push_str(&format!(
            "host all +{MD5_GROUP} 127.0.0.1/32 md5\n\
             host all +{CLEARTEXT_GROUP} 127.0.0.1/32 password\n"
        ));
    }
    hba.push_str(
        "local all all scram-sha-256\n\
         host all all 127.0.0.1/32 scram-sha-256\n\
         host all all ::1/128 scram-sha-256\n",
    );
    fs::write(data.join("pg_hba.conf"), hba).map_err(|e| LocalPgError::io("writing pg_hba.conf", e))
}

fn build_template(bins: &PgBinaries, as_postgres: bool, dir: &Path) -> Result<(), LocalPgError> {
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, SUPERUSER_PASSWORD).map_err(|e| LocalPgError::io("writing pwfile", e))?;
    if as_postgres {
        chown_to_postgres(dir)?;
        chown_to_postgres(&pwfile)?;
    }
    let data_path = dir.join("data");
    initdb(bins, as_postgres, &data_path, SUPERUSER, &pwfile, false)?;
    fs::remove_file(&pwfile).map_err(|e| LocalPgError::io("removing pwfile", e))?;
    write_hba(&data_path, true)?;
    let data = data_path.display().to_string();

    // The group roles exist in the template so every cluster has them.
    let mut single = server_command(bins, "postgres", as_postgres);
    single
        .args(["--single", "-D", &data, "-j", "postgres"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = single
        .spawn()
        .map_err(|e| LocalPgError::io("starting postgres --single", e))?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or(LocalPgError::CommandFailed {
            what: "postgres --single".into(),
            detail: "no stdin".into(),
        })?;
        write!(
            stdin,
            "CREATE ROLE {MD5_GROUP} NOLOGIN;\nCREATE ROLE {CLEARTEXT_GROUP} NOLOGIN;\n"
        )
        .map_err(|e| LocalPgError::io("writing to postgres --single", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| LocalPgError::io("waiting for postgres --single", e))?;
    if !out.status.success() {
        return Err(LocalPgError::CommandFailed {
            what: "postgres --single (creating group roles)".into(),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    fs::write(dir.join("ready"), "").map_err(|e| LocalPgError::io("marking template ready", e))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), LocalPgError> {
    // `cp -a` keeps owners and the 0700 mode PostgreSQL insists on.
    run(
        Command::new("cp").arg("-a").arg(from).arg(to),
        "cp -a template",
    )
    .map(drop)
}

fn chown_to_postgres(path: &Path) -> Result<(), LocalPgError> {
    let out = run(
        Command::new("id").args(["-u", "postgres"]),
        "id -u postgres",
    )
    .map_err(|_| LocalPgError::NoPostgresUser)?;
    let uid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| LocalPgError::NoPostgresUser)?;
    let out = run(
        Command::new("id").args(["-g", "postgres"]),
        "id -g postgres",
    )?;
    let gid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| LocalPgError::NoPostgresUser)?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| LocalPgError::io("chown to postgres", e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(|e| LocalPgError::io("chmod 0700", e))
}

/// Gives a file to the `postgres` user, keeping it private (0600).
fn chown_to_postgres_file(path: &Path) -> Result<(), LocalPgError> {
    chown_to_postgres(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| LocalPgError::io("chmod 0600", e))
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

fn free_port() -> Result<u16, LocalPgError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| LocalPgError::io("finding a free port", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| LocalPgError::io("finding a free port", e))?
        .port();
    Ok(port)
}

fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, LocalPgError> {
    let out = cmd.output().map_err(|e| LocalPgError::io(what, e))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LocalPgError::CommandFailed {
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
