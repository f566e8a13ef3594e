//! The processes a run measures: a durable throwaway PostgreSQL cluster with
//! TLS and the benchmark data, pgbouncer in front of it, and the real
//! `periscope up` gateway with masking on.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use periscope_localpg::{PasswordMethod, PgCluster, seed};
use periscope_testkit::{GatewayOptions, GatewayProcess};

use crate::tls::Pki;

/// The upstream role every leg ends up as, and the benchmark database.
pub const ROLE: &str = "bench";
/// The database (and, through Periscope, the connection name).
pub const DATABASE: &str = "bench";
/// Distinct generated customers the wide table cycles through.
pub const DISTINCT_CUSTOMERS: usize = 1000;
/// Seed of the wide table's values.
pub const SEED: u64 = 20_261_129;

/// Where a client connects, and as whom.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `direct`, `pgbouncer` or `periscope`.
    pub name: &'static str,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// User name (the upstream role, or the Periscope identity).
    pub user: String,
    /// Password (or the Periscope token).
    pub password: String,
    /// Database name (or the Periscope connection name).
    pub dbname: String,
    /// CA to verify the server with; `None` connects without TLS.
    pub ca: Option<PathBuf>,
    /// The process whose memory this leg adds (pgbouncer, gateway).
    pub pid: Option<u32>,
}

impl Endpoint {
    /// libpq environment for `pgbench`/`psql`.
    pub fn libpq_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", "127.0.0.1".into()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGPASSWORD", self.password.clone()),
            ("PGDATABASE", self.dbname.clone()),
            (
                "PGSSLMODE",
                if self.ca.is_some() {
                    "require"
                } else {
                    "disable"
                }
                .into(),
            ),
            ("PGCONNECT_TIMEOUT", "10".into()),
            ("PGAPPNAME", "periscope-bench".into()),
        ]
    }

    /// A tokio-postgres configuration.
    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(&self.dbname)
            .application_name("periscope-bench")
            .connect_timeout(Duration::from_secs(10))
            .ssl_mode(if self.ca.is_some() {
                tokio_postgres::config::SslMode::Require
            } else {
                tokio_postgres::config::SslMode::Disable
            });
        config
    }
}

/// uid and gid of the `postgres` system user (servers refuse to run as root).
fn postgres_ids() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .context("no `postgres` user: install the postgresql package")?;
    let fields: Vec<&str> = line.split(':').collect();
    let uid = fields.get(2).and_then(|f| f.parse().ok());
    let gid = fields.get(3).and_then(|f| f.parse().ok());
    uid.zip(gid)
        .context("malformed /etc/passwd entry for postgres")
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Writes a private file (0600) owned by `owner` when given.
fn write_private(path: &Path, content: &str, owner: Option<(u32, u32)>) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// A free port on 127.0.0.1 (for processes that cannot be told port 0).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until something accepts TCP connections on `port`.
fn wait_listening(port: u16, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited with {status} before listening");
        }
        if Instant::now() > deadline {
            bail!("{what} is not listening on {port} after 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The benchmark cluster: durable (fsync on), TLS on, `max_connections` for
/// every leg at once, with pgbench's tables and the wide `customers` table.
pub struct Cluster {
    /// The running server.
    pub pg: PgCluster,
    /// The password of [`ROLE`].
    pub password: String,
}

/// Starts and fills the cluster.
pub fn cluster(pki: &Pki, scale: u32, rows: u64) -> anyhow::Result<Cluster> {
    eprintln!("bench: starting a durable PostgreSQL cluster");
    let mut pg = PgCluster::builder()
        .durable()
        .setting("max_connections", 400)
        .start()?;
    let owner = if pg.runs_as_postgres() {
        Some(postgres_ids()?)
    } else {
        None
    };
    write_private(&pg.data_dir().join("server.crt"), &pki.cert_pem, owner)?;
    write_private(&pg.data_dir().join("server.key"), &pki.key_pem, owner)?;
    pg.psql("postgres", "ALTER SYSTEM SET ssl = on")?;
    pg.restart()?;
    let ssl = pg.psql("postgres", "SHOW ssl")?;
    if ssl.trim() != "on" {
        bail!("PostgreSQL did not turn TLS on (ssl = {ssl})");
    }
    let password = format!("bench-{}", std::process::id());
    pg.create_login_role(ROLE, &password, PasswordMethod::Scram)?;
    pg.psql(
        "postgres",
        &format!("CREATE DATABASE {DATABASE} OWNER {ROLE}"),
    )?;

    eprintln!("bench: pgbench -i -s {scale}");
    let out = Command::new(pg.binaries().path("pgbench"))
        .args(["-i", "-q", "-s", &scale.to_string()])
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args(["-U", ROLE, DATABASE])
        .env("PGPASSWORD", &password)
        .output()
        .context("running pgbench -i")?;
    if !out.status.success() {
        bail!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    eprintln!("bench: filling customers with {rows} rows");
    let customers_ddl = seed::SHOP_SCHEMA
        .split(";\n")
        .find(|s| s.contains("CREATE TABLE customers"))
        .context("SHOP_SCHEMA has no customers table")?;
    let (fill, _) = seed::bulk_customers_sql(rows, DISTINCT_CUSTOMERS, SEED);
    // The staging copy needs `created_at`'s default too (NOT NULL).
    let fill = fill.replace("(LIKE customers)", "(LIKE customers INCLUDING DEFAULTS)");
    let mut sql = String::new();
    let _ = writeln!(sql, "{customers_ddl};");
    sql.push_str(&fill);
    let _ = writeln!(sql, "ALTER TABLE customers OWNER TO {ROLE};");
    let _ = writeln!(sql, "VACUUM ANALYZE customers;");
    // Too long for one argument: psql reads it from a file.
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), sql)?;
    let out = Command::new(pg.binaries().path("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(file.path())
        .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
        .args(["-U", pg.superuser(), "-d", DATABASE])
        .env("PGPASSWORD", pg.superuser_password())
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "filling customers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Cluster { pg, password })
}

/// The values of the wide table a masked result must never show.
pub fn seeded_emails() -> std::collections::HashSet<String> {
    seed::customers(DISTINCT_CUSTOMERS, SEED)
        .into_iter()
        .map(|c| c.email)
        .collect()
}

/// A pgbouncer process, killed on drop.
pub struct Pgbouncer {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `pgbouncer --version`'s first line.
    pub version: String,
}

impl Pgbouncer {
    /// Its process id (memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pgbouncer_binary() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
        .context("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
}

/// Starts pgbouncer in `pool_mode` in front of the cluster, with client TLS
/// when `tls` (server side in plain text on loopback, as usually deployed).
pub fn pgbouncer(
    cluster: &Cluster,
    pki: &Pki,
    pool_mode: &str,
    tls: bool,
) -> anyhow::Result<Pgbouncer> {
    let binary = pgbouncer_binary()?;
    let version = Command::new(&binary)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .unwrap_or_default();
    let dir = tempfile::Builder::new()
        .prefix("periscope-bench-pgbouncer-")
        .tempdir()?;
    let owner = if running_as_root() {
        Some(postgres_ids()?)
    } else {
        None
    };
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    let d = dir.path().display();
    let port = free_port()?;
    write_private(
        &dir.path().join("userlist.txt"),
        &format!("\"{ROLE}\" \"{}\"\n", cluster.password),
        owner,
    )?;
    let mut ini = format!(
        "[databases]\n\
         {DATABASE} = host=127.0.0.1 port={pgport} dbname={DATABASE}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = scram-sha-256\n\
         auth_file = {d}/userlist.txt\n\
         pool_mode = {pool_mode}\n\
         max_client_conn = 1000\n\
         default_pool_size = 100\n\
         ignore_startup_parameters = extra_float_digits\n\
         logfile = {d}/pgbouncer.log\n\
         log_connections = 0\n\
         log_disconnections = 0\n\
         server_tls_sslmode = disable\n",
        pgport = cluster.pg.port(),
    );
    if tls {
        write_private(&dir.path().join("server.crt"), &pki.cert_pem, owner)?;
        write_private(&dir.path().join("server.key"), &pki.key_pem, owner)?;
        let _ = write!(
            ini,
            "client_tls_sslmode = require\n\
             client_tls_cert_file = {d}/server.crt\n\
             client_tls_key_file = {d}/server.key\n"
        );
    }
    write_private(&dir.path().join("pgbouncer.ini"), &ini, owner)?;
    let mut command = Command::new(&binary);
    command
        .arg(dir.path().join("pgbouncer.ini"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    let mut child = command.spawn().context("starting pgbouncer")?;
    wait_listening(port, &mut child, "pgbouncer")?;
    Ok(Pgbouncer {
        child,
        _dir: dir,
        port,
        version,
    })
}

/// The real gateway with a `[[connection]]` to the cluster (masking on: no
/// data policy, so the fully shielded defaults), an identity allowed to
/// connect, and its token.
pub struct Periscope {
    /// The `periscope up` process.
    pub process: GatewayProcess,
    /// The bench identity's API token (its PostgreSQL password).
    pub token: String,
    /// The PostgreSQL listener's port.
    pub port: u16,
}

/// The gateway configuration the Periscope leg runs with.
pub fn periscope_config(cluster: &Cluster, password_file: &Path, extra: &str) -> String {
    format!(
        "{extra}\n\
         [[connection]]\n\
         name = \"{DATABASE}\"\n\
         kind = \"postgres\"\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         database = \"{DATABASE}\"\n\
         user = \"{ROLE}\"\n\
         password_file = \"{pw}\"\n\
         upstream_tls = \"disable\"\n\
         \n\
         [[role]]\n\
         name = \"bencher\"\n\
         connections = [\"{DATABASE}\"]\n",
        port = cluster.pg.port(),
        pw = password_file.display(),
    )
}

/// Starts `binary up` and creates the bench identity and its token.
pub async fn periscope(
    binary: &Path,
    cluster: &Cluster,
    workdir: &Path,
    extra_config: &str,
) -> anyhow::Result<Periscope> {
    let password_file = workdir.join("upstream.password");
    write_private(&password_file, &cluster.password, None)?;
    let config = periscope_config(cluster, &password_file, extra_config);
    let process = GatewayProcess::start(
        binary,
        GatewayOptions::default()
            .config(config)
            .env("RUST_LOG", "warn"),
    )
    .context("starting periscope up")?;
    let Some(addr) = process.pg_addr() else {
        bail!(
            "this periscope binary starts no PostgreSQL listener (its ready line says pg=off); \
             build one with the pg listener wired in"
        );
    };
    let token =
        crate::identity::identity_token(&process, ROLE, "bencher", "periscope-bench").await?;
    Ok(Periscope {
        process,
        token,
        port: addr.port(),
    })
}
