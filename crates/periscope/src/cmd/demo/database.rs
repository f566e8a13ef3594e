//! The demo database: a throwaway cluster in the demo directory, or a
//! `periscope_demo` database on `--upstream`, reached with `psql` (libpq, so
//! TLS and every authentication method work) and seeded with the fake shop.

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context as _, anyhow, bail};
use periscope_localpg::seed::{DEMO_SEED, Shop, ShopCounts};
use periscope_localpg::{PgBinaries, PgCluster, PgClusterBuilder, quote_ident, quote_literal};
use tokio::io::AsyncWriteExt as _;
use tokio::sync::watch;

use super::files::{random_secret, read_secret_file, write_file};
use super::progress::Progress;
use super::{BATCH, DATABASE, Demo, DemoArgs, Halt, OWNER, PASSWORD_FILE, check, running_as_root};

/// A database to reach with libpq tools, as a given user.
#[derive(Debug, Clone)]
pub(super) struct Database {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) user: String,
    pub(super) password: Option<String>,
    pub(super) dbname: String,
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
    psql: PathBuf,
}

impl Database {
    /// libpq keyword/value connection string (no password: it goes in the
    /// environment, out of `ps`).
    pub(super) fn conninfo(&self) -> String {
        let mut parts = vec![
            format!("host={}", conninfo_value(&self.host)),
            format!("port={}", self.port),
            format!("user={}", conninfo_value(&self.user)),
            format!("dbname={}", conninfo_value(&self.dbname)),
        ];
        if let Some(mode) = &self.sslmode {
            parts.push(format!("sslmode={}", conninfo_value(mode)));
        }
        if let Some(ca) = &self.sslrootcert {
            parts.push(format!("sslrootcert={}", conninfo_value(ca)));
        }
        parts.join(" ")
    }

    fn on(&self, dbname: &str) -> Database {
        Database {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.psql);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg(self.conninfo())
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGSERVICE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
        cmd
    }

    /// Runs SQL and returns its unaligned, tuples-only output.
    pub(super) async fn psql(&self, sql: &str) -> anyhow::Result<String> {
        let out = self
            .command()
            .arg("-c")
            .arg(sql)
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.psql.display()))?;
        if !out.status.success() {
            bail!(
                "psql on {}:{}/{} failed: {}",
                self.host,
                self.port,
                self.dbname,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

/// A libpq connection-string value, quoted when it needs to be.
pub(super) fn conninfo_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+,".contains(&b))
    {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

pub(super) async fn drop_database(maintenance: &Database) -> anyhow::Result<()> {
    let name = quote_ident(DATABASE);
    // WITH (FORCE) ends leftover sessions (PostgreSQL 13+); older servers
    // need the plain form.
    if maintenance
        .psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .is_err()
    {
        maintenance
            .psql(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
    }
    Ok(())
}

/// The throwaway cluster: created (or resumed) in `DIR/postgres`, with the
/// demo database owned by [`OWNER`] and seeded.
pub(super) async fn local_database(
    args: &DemoArgs,
    demo: &mut Demo,
    progress: &Progress,
    stop: &watch::Receiver<bool>,
) -> Result<(Database, Option<ShopCounts>), Halt> {
    let root = demo.dir.join("postgres");
    let fresh = !PgClusterBuilder::exists_in(&root);
    if fresh && demo.dir.resumed {
        return Err(anyhow!("{} holds no PostgreSQL cluster to resume", root.display()).into());
    }
    let bins = tokio::task::spawn_blocking(PgBinaries::locate).await??;
    if fresh && running_as_root() {
        // The server runs as `postgres`, which must reach DIR/postgres.
        std::fs::set_permissions(&demo.dir.path, std::fs::Permissions::from_mode(0o711))
            .with_context(|| {
                format!(
                    "cannot open {} to the postgres user",
                    demo.dir.path.display()
                )
            })?;
    }
    let step = progress.step(&if fresh {
        format!("creating a PostgreSQL {} cluster", bins.version())
    } else {
        format!("starting the PostgreSQL {} cluster", bins.version())
    });
    let builder_root = root.clone();
    let cluster =
        tokio::task::spawn_blocking(move || PgCluster::builder().data_dir(builder_root).start())
            .await??;
    step.done(format!(
        "PostgreSQL {} on 127.0.0.1:{}",
        cluster.binaries().version(),
        cluster.port()
    ));
    let port = cluster.port();
    let psql = cluster.binaries().path("psql");
    let superuser = Database {
        host: "127.0.0.1".into(),
        port,
        user: cluster.superuser().to_string(),
        password: Some(cluster.superuser_password().to_string()),
        dbname: "postgres".into(),
        sslmode: Some("disable".into()),
        sslrootcert: None,
        psql,
    };
    demo.cluster = Some(cluster);
    check(stop)?;

    let password_path = demo.dir.join(PASSWORD_FILE);
    let password = if fresh {
        let password = random_secret()?;
        superuser
            .psql(&format!(
                "CREATE ROLE {} LOGIN PASSWORD {}",
                quote_ident(OWNER),
                quote_literal(&password),
            ))
            .await?;
        // Alone: CREATE DATABASE refuses to run inside psql -c's transaction.
        superuser
            .psql(&format!(
                "CREATE DATABASE {} OWNER {}",
                quote_ident(DATABASE),
                quote_ident(OWNER)
            ))
            .await?;
        write_file(&password_path, &password, 0o600)?;
        password
    } else {
        read_secret_file(&password_path)?
    };
    let owner = Database {
        user: OWNER.into(),
        password: Some(password),
        dbname: DATABASE.into(),
        ..superuser
    };
    let counts = if fresh {
        Some(seed(&owner, args.rows, progress, stop).await?)
    } else {
        None
    };
    Ok((owner, counts))
}

/// `--upstream`: a `periscope_demo` database created there (or resumed).
pub(super) async fn upstream_database(
    url: &str,
    args: &DemoArgs,
    demo: &mut Demo,
    progress: &Progress,
    stop: &watch::Receiver<bool>,
) -> Result<(Database, Option<ShopCounts>), Halt> {
    let password_path = demo.dir.join(PASSWORD_FILE);
    let mut maintenance = parse_upstream(url)?;
    if demo.dir.resumed {
        if password_path.is_file() {
            maintenance.password = Some(read_secret_file(&password_path)?);
        }
    } else if let Some(password) = &maintenance.password {
        write_file(&password_path, password, 0o600)?;
    }
    if maintenance.dbname == DATABASE {
        return Err(anyhow!(
            "--upstream must name another database than {DATABASE} (e.g. /postgres): \
             the demo creates {DATABASE} itself"
        )
        .into());
    }
    let step = progress.step(&format!(
        "connecting to {}:{}",
        maintenance.host, maintenance.port
    ));
    let exists = maintenance
        .psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = {}",
            quote_literal(DATABASE)
        ))
        .await?
        == "1";
    let version = maintenance.psql("SHOW server_version").await?;
    step.done(format!(
        "PostgreSQL {version} on {}:{}",
        maintenance.host, maintenance.port
    ));
    let target = maintenance.on(DATABASE);
    if demo.dir.resumed {
        if !exists {
            return Err(anyhow!(
                "database {DATABASE} is gone from {}:{}: start a new demo",
                maintenance.host,
                maintenance.port
            )
            .into());
        }
        return Ok((target, None));
    }
    if exists {
        return Err(anyhow!(
            "database {DATABASE} already exists on {}:{} (left by `periscope demo --keep`?): \
             resume that demo with its --data-dir, or drop it with DROP DATABASE {DATABASE}",
            maintenance.host,
            maintenance.port
        )
        .into());
    }
    check(stop)?;
    maintenance
        .psql(&format!("CREATE DATABASE {}", quote_ident(DATABASE)))
        .await?;
    demo.created_database = Some(maintenance);
    let counts = seed(&target, args.rows, progress, stop).await?;
    Ok((target, Some(counts)))
}

/// Loads the shop through one psql in one transaction, showing progress per batch.
async fn seed(
    db: &Database,
    customers: u32,
    progress: &Progress,
    stop: &watch::Receiver<bool>,
) -> Result<ShopCounts, Halt> {
    let bar = progress.bar(
        &format!("seeding {customers} customers with their orders, payments and integrations"),
        u64::from(customers),
    );
    let mut child = db
        .command()
        .args(["--single-transaction", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", db.psql.display()))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| anyhow!("psql has no stdin"))?;
    let mut shop = Shop::new(customers as usize, DEMO_SEED, BATCH);
    // A write fails only when psql stopped reading (it failed): its stderr,
    // read below, says why.
    let mut outcome = stdin.write_all(Shop::schema().as_bytes()).await;
    if outcome.is_ok() {
        for batch in shop.by_ref() {
            if *stop.borrow() {
                // Dropping the child kills psql: its transaction rolls back.
                return Err(Halt::Interrupted);
            }
            outcome = stdin.write_all(batch.sql.as_bytes()).await;
            if outcome.is_err() {
                break;
            }
            bar.inc(batch.counts.customers);
        }
    }
    if outcome.is_ok() {
        outcome = stdin.write_all(b"ANALYZE;\n").await;
    }
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .context("psql did not finish")?;
    if !out.status.success() {
        return Err(anyhow!(
            "seeding {DATABASE} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    outcome.context("cannot send the data to psql")?;
    let counts = shop.produced();
    bar.done(format!(
        "seeded {} customers, {} orders, {} payments, {} integrations ({} rows)",
        counts.customers,
        counts.orders,
        counts.payments,
        counts.integrations,
        counts.total(),
    ));
    Ok(counts)
}

/// Parses `--upstream`: `postgres[ql]://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=..&sslrootcert=..]`.
fn parse_upstream(text: &str) -> anyhow::Result<Database> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        anyhow!("--upstream is not a URL ({e}): use postgres://USER:PASSWORD@HOST:PORT/postgres")
    })?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        bail!("--upstream must be a postgres:// URL");
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("--upstream needs a TCP host: postgres://USER@HOST:PORT/postgres"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let user = percent_decode(url.username());
    if user.is_empty() {
        bail!("--upstream needs a user: postgres://USER@HOST:PORT/postgres");
    }
    let password = url.password().map(percent_decode);
    let dbname = match url.path().trim_start_matches('/') {
        "" => "postgres".to_string(),
        db => percent_decode(db),
    };
    let mut sslmode = None;
    let mut sslrootcert = None;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "sslmode" => sslmode = Some(value.into_owned()),
            "sslrootcert" => sslrootcert = Some(value.into_owned()),
            other => {
                bail!("--upstream: unsupported parameter {other:?} (sslmode and sslrootcert are)")
            }
        }
    }
    if let Some(mode) = &sslmode
        && upstream_tls(mode).is_none()
    {
        bail!("--upstream: sslmode={mode} is not one of disable, prefer, require, verify-full");
    }
    let psql = match PgBinaries::locate() {
        Ok(bins) if bins.path("psql").is_file() => bins.path("psql"),
        _ => on_path("psql").ok_or_else(|| {
            anyhow!(
                "psql (the PostgreSQL client) not found: install it (`apt-get install \
                 postgresql-client` on Debian/Ubuntu, `dnf install postgresql` on Fedora, \
                 `brew install libpq` on macOS)"
            )
        })?,
    };
    Ok(Database {
        host,
        port: url.port().unwrap_or(5432),
        user,
        password,
        dbname,
        sslmode,
        sslrootcert,
        psql,
    })
}

/// The gateway's `upstream_tls` word for a libpq `sslmode`.
pub(super) fn upstream_tls(sslmode: &str) -> Option<&'static str> {
    match sslmode {
        "disable" => Some("disable"),
        "allow" | "prefer" => Some("prefer"),
        "require" => Some("require"),
        "verify-ca" | "verify-full" => Some("verify-full"),
        _ => None,
    }
}

/// The URL as given, without its password (what `demo.toml` keeps).
pub(super) fn without_password(text: &str) -> String {
    match reqwest::Url::parse(text.trim()) {
        Ok(mut url) => {
            let _ = url.set_password(None);
            url.to_string()
        }
        Err(_) => String::new(),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
