//! `periscope demo`: the whole story on one machine, in one command.
//!
//! It starts a throwaway PostgreSQL cluster from the machine's binaries (or
//! uses `--upstream`), seeds a fake shop in it, writes a gateway configuration
//! with one connection (`shop-prod`) and two roles, starts the gateway in this
//! process exactly as `periscope up` does, creates `alice` (developer) and
//! `bob` (approver) through the gateway's own API, and prints a tour: each
//! step's exact command and what it shows. Ctrl-C (SIGINT or SIGTERM) stops
//! everything and removes everything it created, unless `--keep`.
//!
//! Stdout is for people and for the end-to-end test alike: every tour command
//! sits alone on a line after `$ `, a line typed inside psql after
//! `shop-prod=> `, and one machine-readable line says it is ready:
//!
//! ```text
//! periscope: ready api=https://127.0.0.1:8443 pg=127.0.0.1:15432 data_dir=/tmp/periscope-demo-x1y2
//! ```
//!
//! Progress (creating the cluster, seeding, starting) goes to stderr: bars on
//! a terminal, one line per step otherwise.
//!
//! The directory holds:
//!
//! ```text
//! DIR/
//!   demo.toml                 what this directory is; a kept one is resumed
//!   periscope.toml            the gateway configuration
//!   gateway/                  the gateway's data dir (store, tls/ca.pem, keys)
//!   postgres/                 the throwaway cluster (not with --upstream)
//!   secrets/shop-prod.password  0600, the upstream password the gateway injects
//!   env/{alice,bob,admin}.env   0600, PERISCOPE_URL/TOKEN/CA_FILE and PGPASSWORD
//! ```

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use periscope_api::{CreateIdentity, CreateToken, CreatedToken, Identity};
use periscope_gateway::{ConfigSource, EndReason, GrantEvent, Running, ServerOverrides};
use periscope_localpg::seed::{DEMO_SEED, Shop, ShopCounts};
use periscope_localpg::{PgBinaries, PgCluster, PgClusterBuilder, quote_ident, quote_literal};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::output::shell_quote;
use super::up::{self, LogFormat};
use crate::client::{Client, Secret, Target, parse_url};

/// The connection the demo creates.
pub const CONNECTION: &str = "shop-prod";
/// The database the demo creates (in its cluster, or on `--upstream`).
pub const DATABASE: &str = "periscope_demo";
/// The login role owning the demo database in the throwaway cluster.
const OWNER: &str = "shop_owner";
/// Default API address; a free port is used when it is taken.
const DEFAULT_API: &str = "127.0.0.1:8443";
/// Default PostgreSQL listener address; a free port is used when it is taken.
const DEFAULT_PG: &str = "127.0.0.1:15432";
/// Customers per seeding batch (one progress step).
const BATCH: usize = 250;
/// Longest grant role `developer` may ask for.
const MAX_GRANT: Duration = Duration::from_secs(3600);
/// Format of `demo.toml`.
const STATE_VERSION: u32 = 1;

/// Arguments of `periscope demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for everything the demo creates [default: a new temp dir].
    /// A directory left by `--keep` is resumed: same data, same tokens.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Leave the directory (and a database created with --upstream) in place
    /// on exit, and print how to resume.
    #[arg(long)]
    keep: bool,

    /// Use this PostgreSQL server instead of a throwaway cluster: the demo
    /// creates and seeds a `periscope_demo` database there (and drops it on
    /// exit unless --keep), never touching any other. The user needs CREATEDB.
    #[arg(long, value_name = "postgres://USER[:PASSWORD]@HOST[:PORT]/DB")]
    upstream: Option<String>,

    /// Customers to generate, each with up to four orders and payments.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    rows: u32,

    /// API listen address [default: 127.0.0.1:8443, or a free port if taken].
    #[arg(long, value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,

    /// PostgreSQL listen address [default: 127.0.0.1:15432, or a free port if taken].
    #[arg(long, value_name = "ADDR:PORT")]
    pg_listen: Option<SocketAddr>,

    /// How long the grant the tour requests lasts (1m to 1h), short enough to
    /// watch it expire.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_expire_in)]
    expire_in: String,

    /// Test only: start the gateway with a clock the administrator can move
    /// forward through `POST /v1/test/clock`.
    #[arg(long, hide = true)]
    test_clock: bool,
}

fn parse_expire_in(text: &str) -> Result<String, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 2m, 10m)"))?;
    if d < Duration::from_secs(60) || d > MAX_GRANT {
        return Err("a grant lasts from 1m to 1h".into());
    }
    Ok(text.to_owned())
}

/// Runs `periscope demo` until Ctrl-C.
pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    // The tour is the output: gateway logs stay quiet unless RUST_LOG asks.
    up::init_logging(LogFormat::Text, "warn,sqlx=warn");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(args, started))
}

/// Why preparation stopped.
enum Halt {
    /// Ctrl-C.
    Interrupted,
    /// Something failed; the message says what.
    Failed(anyhow::Error),
    /// The gateway refused to start; it has been reported with its exit code.
    GatewayRefused(ExitCode),
}

impl From<anyhow::Error> for Halt {
    fn from(e: anyhow::Error) -> Self {
        Halt::Failed(e)
    }
}

impl From<periscope_localpg::LocalPgError> for Halt {
    fn from(e: periscope_localpg::LocalPgError) -> Self {
        Halt::Failed(e.into())
    }
}

impl From<crate::client::CliError> for Halt {
    fn from(e: crate::client::CliError) -> Self {
        Halt::Failed(e.into())
    }
}

impl From<tokio::task::JoinError> for Halt {
    fn from(e: tokio::task::JoinError) -> Self {
        Halt::Failed(anyhow!("a preparation task failed: {e}"))
    }
}

async fn demo(args: DemoArgs, started: Instant) -> anyhow::Result<ExitCode> {
    // Signal handlers first, so Ctrl-C during preparation is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
    });

    let dir = match DemoDir::open(args.data_dir.as_deref()) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("periscope: error: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut demo = Demo {
        dir,
        cluster: None,
        created_database: None,
        running: None,
    };
    let progress = Progress::new();
    let ready = match prepare(&args, &mut demo, &progress, &stop).await {
        Ok(ready) => ready,
        Err(halt) => {
            let code = match halt {
                Halt::Interrupted => {
                    eprintln!("periscope demo: interrupted; cleaning up");
                    ExitCode::from(130)
                }
                Halt::Failed(e) => {
                    eprintln!("periscope: error: {e:#}");
                    ExitCode::from(1)
                }
                Halt::GatewayRefused(code) => code,
            };
            // What a failed preparation made is useless: remove it even with --keep.
            for line in demo.teardown(false).await {
                eprintln!("periscope demo: {line}");
            }
            return Ok(code);
        }
    };
    print_tour(&args, &demo, &ready, started.elapsed()).context("cannot write to stdout")?;
    if let Some(running) = &demo.running {
        tokio::spawn(narrate(running.gateway().clone()));
    }

    let mut stop = stop;
    let _ = stop.wait_for(|stopping| *stopping).await;
    println!();
    println!("periscope demo: stopping");
    let keep = args.keep || demo.dir.resumed;
    let lines = demo.teardown(keep).await;
    let mut failed = false;
    for line in lines {
        failed |= line.starts_with("error");
        println!("periscope demo: {line}");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Everything the demo started or created, so that it can all be undone.
struct Demo {
    dir: DemoDir,
    cluster: Option<PgCluster>,
    /// A database created on `--upstream` by this run (dropped on exit).
    created_database: Option<Database>,
    running: Option<Running>,
}

impl Demo {
    /// Stops the gateway (final audit checkpoint), the cluster, drops the
    /// upstream database this run created and removes the directory, unless
    /// `keep`. Returns one line per thing done.
    async fn teardown(&mut self, keep: bool) -> Vec<String> {
        let mut done = Vec::new();
        if let Some(running) = self.running.take() {
            match running.shutdown().await {
                Ok(()) => done.push("gateway stopped (final audit checkpoint signed)".to_string()),
                Err(e) => done.push(format!("error: the gateway did not stop cleanly: {e}")),
            }
        }
        if let Some(mut cluster) = self.cluster.take() {
            let stopped = tokio::task::spawn_blocking(move || cluster.stop()).await;
            match stopped {
                Ok(Ok(())) => done.push("PostgreSQL stopped".to_string()),
                Ok(Err(e)) => done.push(format!("error: PostgreSQL did not stop cleanly: {e}")),
                Err(e) => done.push(format!("error: PostgreSQL did not stop cleanly: {e}")),
            }
        }
        if let Some(db) = self.created_database.take() {
            if keep {
                done.push(format!(
                    "kept database {DATABASE} on {}:{}",
                    db.host, db.port
                ));
            } else {
                match drop_database(&db).await {
                    Ok(()) => done.push(format!(
                        "dropped database {DATABASE} on {}:{}",
                        db.host, db.port
                    )),
                    Err(e) => done.push(format!(
                        "error: could not drop database {DATABASE} on {}:{}: {e:#}",
                        db.host, db.port
                    )),
                }
            }
        }
        if keep {
            let dir = self.dir.path.display();
            done.push(format!("kept {dir}"));
            done.push(format!(
                "resume it with: periscope demo --data-dir {}",
                shell_quote(&dir.to_string())
            ));
            done.push(format!(
                "remove it with: rm -rf {}",
                shell_quote(&dir.to_string())
            ));
        } else {
            match self.dir.remove_created() {
                Ok(()) => done.push(format!("removed {}", self.dir.path.display())),
                Err(e) => done.push(format!(
                    "error: could not remove {}: {e}",
                    self.dir.path.display()
                )),
            }
        }
        done
    }
}

/// The demo's directory, and whether this run created it.
struct DemoDir {
    path: PathBuf,
    /// This run created the directory itself (else it was empty, or resumed).
    created: bool,
    /// It holds a demo kept by an earlier run.
    resumed: bool,
}

impl DemoDir {
    fn open(given: Option<&Path>) -> anyhow::Result<DemoDir> {
        let (path, created) = match given {
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("periscope-demo-")
                    .tempdir()
                    .context("cannot create a temp directory")?;
                (dir.keep(), true)
            }
            Some(path) if !path.exists() => {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (path.to_path_buf(), true)
            }
            Some(path) => (path.to_path_buf(), false),
        };
        let path = std::fs::canonicalize(&path)
            .with_context(|| format!("cannot resolve {}", path.display()))?;
        let resumed = path.join(STATE_FILE).is_file();
        if !created && !resumed {
            let mut entries = std::fs::read_dir(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty and holds no demo: give a new or empty directory \
                     (or one left by `periscope demo --keep`)",
                    path.display()
                );
            }
        }
        Ok(DemoDir {
            path,
            created,
            resumed,
        })
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Removes what this run created: the whole directory if it made it,
    /// else everything inside (it was empty). A resumed one stays.
    fn remove_created(&self) -> std::io::Result<()> {
        if self.resumed {
            return Ok(());
        }
        if self.created {
            return std::fs::remove_dir_all(&self.path);
        }
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }
}

const STATE_FILE: &str = "demo.toml";
const CONFIG_FILE: &str = "periscope.toml";
const PASSWORD_FILE: &str = "secrets/shop-prod.password";

/// `demo.toml`: enough to resume a kept directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoState {
    /// Format of this file.
    version: u32,
    /// Customers seeded.
    customers: u32,
    /// The `--upstream` URL without its password; none for the throwaway cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upstream: Option<String>,
}

/// A database to reach with libpq tools, as a given user.
#[derive(Debug, Clone)]
struct Database {
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: String,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    psql: PathBuf,
}

impl Database {
    /// libpq keyword/value connection string (no password: it goes in the
    /// environment, out of `ps`).
    fn conninfo(&self) -> String {
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
    async fn psql(&self, sql: &str) -> anyhow::Result<String> {
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
fn conninfo_value(value: &str) -> String {
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

async fn drop_database(maintenance: &Database) -> anyhow::Result<()> {
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

/// What the tour needs once everything runs.
struct Ready {
    api_url: String,
    pg_addr: SocketAddr,
    ca_file: PathBuf,
    upstream_label: String,
    counts: Option<ShopCounts>,
    notes: Vec<String>,
}

fn check(stop: &watch::Receiver<bool>) -> Result<(), Halt> {
    if *stop.borrow() {
        Err(Halt::Interrupted)
    } else {
        Ok(())
    }
}

async fn prepare(
    args: &DemoArgs,
    demo: &mut Demo,
    progress: &Progress,
    stop: &watch::Receiver<bool>,
) -> Result<Ready, Halt> {
    let mut notes = Vec::new();
    let state = if demo.dir.resumed {
        let path = demo.dir.join(STATE_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let state: DemoState =
            toml::from_str(&text).with_context(|| format!("{} is damaged", path.display()))?;
        if state.version != STATE_VERSION {
            return Err(anyhow!(
                "{} was written by another version of periscope demo: start a new demo",
                path.display()
            )
            .into());
        }
        if args.upstream.is_some() || args.rows != 1000 {
            notes.push(format!(
                "resuming {}: --upstream and --rows apply only to a new demo",
                demo.dir.path.display()
            ));
        }
        Some(state)
    } else {
        None
    };
    let upstream_url = match &state {
        Some(s) => s.upstream.clone(),
        None => args.upstream.clone(),
    };

    // The database, its owner's credentials, and the data.
    let (owner_db, upstream_label, counts) = match upstream_url {
        None => {
            let (db, counts) = local_database(args, demo, progress, stop).await?;
            let label = format!(
                "throwaway PostgreSQL {} in {}",
                demo.cluster.as_ref().map_or("", |c| c.binaries().version()),
                demo.dir.join("postgres").display()
            );
            (db, label, counts)
        }
        Some(url) => {
            let (db, counts) = upstream_database(&url, args, demo, progress, stop).await?;
            let label = format!("{}:{} (--upstream), database {DATABASE}", db.host, db.port);
            (db, label, counts)
        }
    };
    check(stop)?;

    // The gateway, exactly as `periscope up` starts it.
    let (api_listen, api_note) = listen_addr(args.api_listen, DEFAULT_API, "API")?;
    let (pg_listen, pg_note) = listen_addr(args.pg_listen, DEFAULT_PG, "PostgreSQL listener")?;
    notes.extend(api_note);
    notes.extend(pg_note);
    let config_path = demo.dir.join(CONFIG_FILE);
    write_file(
        &config_path,
        &config_toml(&demo.dir, &owner_db, api_listen, pg_listen),
        0o644,
    )?;
    let step = progress.step("starting the gateway");
    let options = up::gateway_options(
        ConfigSource::File(config_path),
        Some(demo.dir.join("gateway")),
        ServerOverrides {
            api_listen: Some(api_listen),
            pg_listen: Some(pg_listen),
        },
        args.test_clock,
    );
    let mut running = match periscope_gateway::start(options).await {
        Ok(running) => running,
        Err(e) => {
            drop(step);
            return Err(Halt::GatewayRefused(up::start_failed(&e)));
        }
    };
    let gateway = running.gateway().clone();
    let api_url = up::api_url(&gateway, running.api_addr());
    let pg_addr = running.endpoints().protocol("pg");
    let bootstrap = running.take_bootstrap();
    demo.running = Some(running);
    let Some(pg_addr) = pg_addr else {
        return Err(anyhow!(
            "this build of periscope starts no PostgreSQL listener, so the tour cannot run"
        )
        .into());
    };
    step.done(format!(
        "gateway on {api_url} (API) and {pg_addr} (PostgreSQL)"
    ));
    check(stop)?;

    // alice and bob, through the gateway's API like any administrator.
    let ca_file = gateway.ca_file().to_path_buf();
    let tokens = match bootstrap {
        Some(admin) => {
            let step = progress.step("creating alice (developer) and bob (approver)");
            let admin_token = admin.token.as_str().to_string();
            let Ok(token) = Secret::from_str(&admin_token);
            let client = Client::new(&Target {
                url: parse_url(&api_url)?,
                token,
                ca_file: Some(ca_file.clone()),
            })?;
            let alice = create_identity(&client, "alice", "developer").await?;
            let bob = create_identity(&client, "bob", "approver").await?;
            step.done("alice (developer) and bob (approver) have their tokens");
            Tokens {
                admin: admin_token,
                alice,
                bob,
            }
        }
        None if demo.dir.resumed => Tokens::read(&demo.dir)?,
        None => {
            return Err(anyhow!(
                "the gateway store in {} already existed, so the demo cannot create its users",
                demo.dir.join("gateway").display()
            )
            .into());
        }
    };
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    for (name, token, role) in [
        ("alice", &tokens.alice, "role developer"),
        ("bob", &tokens.bob, "role approver"),
        ("admin", &tokens.admin, "the administrator"),
    ] {
        let path = demo.dir.join(&format!("env/{name}.env"));
        let text = env_file(
            &path,
            name,
            role,
            token,
            &api_url,
            &ca_file,
            bin_dir.as_deref(),
        );
        write_file(&path, &text, 0o600)?;
    }
    if !demo.dir.resumed {
        let state = DemoState {
            version: STATE_VERSION,
            customers: args.rows,
            upstream: args.upstream.as_deref().map(without_password),
        };
        let text = format!(
            "# Written by `periscope demo`: `periscope demo --data-dir {}` resumes this directory.\n{}",
            demo.dir.path.display(),
            toml::to_string(&state).context("cannot write demo.toml")?
        );
        write_file(&demo.dir.join(STATE_FILE), &text, 0o644)?;
    }
    Ok(Ready {
        api_url,
        pg_addr,
        ca_file,
        upstream_label,
        counts,
        notes,
    })
}

/// The throwaway cluster: created (or resumed) in `DIR/postgres`, with the
/// demo database owned by [`OWNER`] and seeded.
async fn local_database(
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
async fn upstream_database(
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
fn upstream_tls(sslmode: &str) -> Option<&'static str> {
    match sslmode {
        "disable" => Some("disable"),
        "allow" | "prefer" => Some("prefer"),
        "require" => Some("require"),
        "verify-ca" | "verify-full" => Some("verify-full"),
        _ => None,
    }
}

/// The URL as given, without its password (what `demo.toml` keeps).
fn without_password(text: &str) -> String {
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

/// `default` unless it is taken, then a free port, with a note saying so.
/// An address given on the command line is used as is.
fn listen_addr(
    given: Option<SocketAddr>,
    default: &str,
    what: &str,
) -> anyhow::Result<(SocketAddr, Option<String>)> {
    if let Some(addr) = given {
        return Ok((addr, None));
    }
    let addr: SocketAddr = default.parse()?;
    match TcpListener::bind(addr) {
        Ok(_) => Ok((addr, None)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Ok((
            SocketAddr::new(addr.ip(), 0),
            Some(format!(
                "{default} is in use (another gateway?): the {what} listens on a free port instead"
            )),
        )),
        Err(e) => Err(anyhow!("cannot listen on {default}: {e}")),
    }
}

/// An address as the configuration file keeps it: port 0 ("any free port",
/// passed as an override) is not an address to serve again later.
fn in_file(addr: SocketAddr, default: &str) -> String {
    if addr.port() == 0 {
        default.to_string()
    } else {
        addr.to_string()
    }
}

/// The gateway configuration: one connection, two roles.
fn config_toml(dir: &DemoDir, db: &Database, api: SocketAddr, pg: SocketAddr) -> String {
    let q = |s: &str| toml::Value::String(s.to_string()).to_string();
    let path = |rel: &str| q(&dir.join(rel).display().to_string());
    let mut text = format!(
        "# Written by `periscope demo`: a gateway in front of a fake shop database.\n\
         # `periscope demo --data-dir {dir}` serves it again (after --keep).\n\
         \n\
         [server]\n\
         api_listen = {api}\n\
         pg_listen = {pg}\n\
         data_dir = {data_dir}\n\
         \n\
         [audit]\n\
         # Signed checkpoints often, so `periscope audit verify` has some to check.\n\
         checkpoint_every = 20\n\
         \n\
         # No data_policy: the connection is fully shielded (read-only, every\n\
         # secret and personal value masked) until a grant lifts a shield.\n\
         [[connection]]\n\
         name = {name}\n\
         kind = \"postgres\"\n\
         host = {host}\n\
         port = {port}\n\
         database = {database}\n\
         user = {user}\n",
        dir = dir.path.display(),
        api = q(&in_file(api, DEFAULT_API)),
        pg = q(&in_file(pg, DEFAULT_PG)),
        data_dir = path("gateway"),
        name = q(CONNECTION),
        host = q(&db.host),
        port = db.port,
        database = q(&db.dbname),
        user = q(&db.user),
    );
    if db.password.is_some() {
        let _ = writeln!(text, "password_file = {}", path(PASSWORD_FILE));
    }
    let tls = db
        .sslmode
        .as_deref()
        .and_then(upstream_tls)
        .unwrap_or("prefer");
    let _ = writeln!(text, "upstream_tls = {}", q(tls));
    if let Some(ca) = &db.sslrootcert
        && matches!(tls, "require" | "verify-full")
    {
        let _ = writeln!(text, "upstream_ca_file = {}", q(ca));
    }
    text.push_str(
        "labels = { env = \"prod\" }\n\
         \n\
         # Developers reach shop-prod and may ask to see emails and phones, or to\n\
         # write, for up to an hour, with one approval from an approver.\n\
         [[role]]\n\
         name = \"developer\"\n\
         connections = [\"shop-prod\"]\n\
         may_lift = [\"unmask:email\", \"unmask:phone\", \"write\"]\n\
         max_duration = \"1h\"\n\
         approvals = 1\n\
         approvers = [\"approver\"]\n\
         \n\
         # Approvers decide on requests; they reach no connection themselves.\n\
         [[role]]\n\
         name = \"approver\"\n",
    );
    text
}

/// API tokens of the three identities the tour uses.
struct Tokens {
    admin: String,
    alice: String,
    bob: String,
}

impl Tokens {
    /// The tokens a kept demo wrote into its env files.
    fn read(dir: &DemoDir) -> anyhow::Result<Tokens> {
        let read = |name: &str| -> anyhow::Result<String> {
            let path = dir.join(&format!("env/{name}.env"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            text.lines()
                .find_map(|l| l.strip_prefix("export PERISCOPE_TOKEN="))
                .map(|v| v.trim_matches('\'').to_string())
                .ok_or_else(|| anyhow!("{} holds no PERISCOPE_TOKEN", path.display()))
        };
        Ok(Tokens {
            admin: read("admin")?,
            alice: read("alice")?,
            bob: read("bob")?,
        })
    }
}

async fn create_identity(client: &Client, name: &str, role: &str) -> anyhow::Result<String> {
    client
        .post::<_, Identity>(
            client.url(&["v1", "admin", "users"], &[]),
            Some(&CreateIdentity {
                name: name.to_string(),
                roles: vec![role.to_string()],
            }),
        )
        .await?;
    let created = client
        .post::<_, CreatedToken>(
            client.url(&["v1", "admin", "users", name, "tokens"], &[]),
            Some(&CreateToken {
                description: Some("periscope demo".to_string()),
                expires_in: None,
            }),
        )
        .await?;
    Ok(created.value.token)
}

fn env_file(
    path: &Path,
    name: &str,
    role: &str,
    token: &str,
    api_url: &str,
    ca_file: &Path,
    bin_dir: Option<&Path>,
) -> String {
    let mut text = format!(
        "# periscope demo: act as {name} ({role}). Load it with `. {}`.\n",
        shell_quote(&path.display().to_string())
    );
    if let Some(dir) = bin_dir {
        let _ = writeln!(
            text,
            "# The periscope binary that runs the demo comes first on PATH.\nexport PATH={}:\"$PATH\"",
            shell_quote(&dir.display().to_string())
        );
    }
    let _ = write!(
        text,
        "export PERISCOPE_URL={}\n\
         export PERISCOPE_TOKEN={}\n\
         export PERISCOPE_CA_FILE={}\n\
         # psql asks the gateway for a password: the Periscope token is it.\n\
         export PGPASSWORD=\"$PERISCOPE_TOKEN\"\n",
        shell_quote(api_url),
        shell_quote(token),
        shell_quote(&ca_file.display().to_string()),
    );
    text
}

/// Writes `contents` to `path` with `mode`, creating parent directories (0700).
fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn read_secret_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn random_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness for a password: {e}"))?;
    Ok(hex::encode(bytes))
}

fn running_as_root() -> bool {
    // The effective uid from procfs: no libc (and no unsafe) for geteuid().
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        })
        == Some(0)
}

/// Tells, in the demo's terminal, when a grant starts and ends.
async fn narrate(gateway: periscope_gateway::Gateway) {
    let mut events = gateway.subscribe();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let line = match event {
            GrantEvent::Started(g) => format!(
                "grant {} started: {} now sees what it lifts on {}, in sessions opened from now on",
                g.grant_id, g.identity, g.connection
            ),
            GrantEvent::Ended(g) => {
                let why = match g.reason {
                    EndReason::Expired => "expired".to_string(),
                    EndReason::Revoked { by } => format!("revoked by {by}"),
                };
                format!(
                    "grant {} {why}: the shields are back for {} on {}, and sessions that relied on it are ended",
                    g.grant_id, g.identity, g.connection
                )
            }
            _ => continue,
        };
        println!("periscope demo: {line}");
    }
}

/// The banner, the tour and the ready line.
fn print_tour(
    args: &DemoArgs,
    demo: &Demo,
    ready: &Ready,
    elapsed: Duration,
) -> std::io::Result<()> {
    let dir = &demo.dir.path;
    let env = |name: &str| shell_quote(&dir.join(format!("env/{name}.env")).display().to_string());
    let conninfo = format!(
        "host={} port={} user=alice dbname={CONNECTION} sslmode=verify-full sslrootcert={}",
        ready.pg_addr.ip(),
        ready.pg_addr.port(),
        conninfo_value(&ready.ca_file.display().to_string())
    );
    let psql = format!("psql \"{}\"", conninfo.replace('"', "\\\""));
    let for_ = &args.expire_in;
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "Periscope demo {}, ready in {:.1}s.",
        env!("CARGO_PKG_VERSION"),
        elapsed.as_secs_f64()
    )?;
    let kept = if args.keep || demo.dir.resumed {
        "kept on exit"
    } else {
        "removed on Ctrl-C; --keep keeps it"
    };
    writeln!(out, "  directory:   {} ({kept})", dir.display())?;
    writeln!(
        out,
        "  gateway:     {} (API), {} (PostgreSQL)",
        ready.api_url, ready.pg_addr
    )?;
    writeln!(
        out,
        "  connection:  {CONNECTION} -> {}",
        ready.upstream_label
    )?;
    if let Some(c) = &ready.counts {
        writeln!(
            out,
            "  data:        {} customers, {} orders, {} payments, {} integrations (all fake)",
            c.customers, c.orders, c.payments, c.integrations
        )?;
    }
    writeln!(
        out,
        "  identities:  alice (role developer), bob (role approver), admin; tokens in {}",
        dir.join("env").display()
    )?;
    for note in &ready.notes {
        writeln!(out, "  note:        {note}")?;
    }
    let steps: Vec<(String, Vec<String>)> = vec![
        (
            "Act as alice, a developer: her token and the gateway's CA are in an env file.".into(),
            vec![format!(". {}", env("alice"))],
        ),
        (
            "Read customers through the gateway. Emails, phones and card numbers arrive masked, \
             in the notes too: nobody asked to see them, so they never leave the gateway in clear."
                .into(),
            vec![format!(
                "{psql} -c \"SELECT id, name, email, phone, card_number, notes FROM customers ORDER BY id LIMIT 5\""
            )],
        ),
        (
            "Secrets stay masked even under a grant: API keys, and the GitHub token pasted into a note."
                .into(),
            vec![format!(
                "{psql} -c \"SELECT provider, api_key, notes FROM integrations ORDER BY id LIMIT 3\""
            )],
        ),
        (
            "Try to change data: refused with SQLSTATE 42501, because a connection is read-only \
             until a grant lifts `write`; the HINT is the exact command to ask for it."
                .into(),
            vec![format!(
                "{psql} -v VERBOSITY=verbose -c \"UPDATE customers SET email = 'new@example.com' WHERE id = 1\""
            )],
        ),
        (
            format!(
                "Ask to see emails for {for_}, with a reason. Role developer needs one approval \
                 from role approver; note the request id it prints."
            ),
            vec![format!(
                "periscope request {CONNECTION} --lift unmask:email --for {for_} --reason \"INC-1042: customer 1 says the receipt never arrived\""
            )],
        ),
        (
            "Act as bob, an approver, and approve it (put the id from the previous step in \
             place of REQUEST_ID). Nobody can approve their own request."
                .into(),
            vec![
                format!(". {}", env("bob")),
                "periscope approve REQUEST_ID".into(),
            ],
        ),
        (
            "Back as alice, in a new session: emails are in clear now, phones and cards stay \
             masked (the grant lifts unmask:email only; role developer may never lift card)."
                .into(),
            vec![
                format!(". {}", env("alice")),
                format!(
                    "{psql} -c \"SELECT id, email, phone, card_number FROM customers ORDER BY id LIMIT 5\""
                ),
            ],
        ),
        (
            format!(
                "Keep a session open and let the grant expire ({for_} after the approval; \
                 `periscope grants` shows the time left). The gateway ends sessions that relied \
                 on it: the next statement gets FATAL, and a new session sees masked emails again."
            ),
            vec![psql.clone()],
        ),
        (
            "Check the trail as the administrator: every login, statement, refusal, request, \
             approval and expiry is in a hash-chained audit log with signed checkpoints."
                .into(),
            vec![
                format!(". {}", env("admin")),
                "periscope audit tail -n 15".into(),
                "periscope audit verify".into(),
            ],
        ),
    ];
    writeln!(out)?;
    writeln!(
        out,
        "The tour: run these in another terminal (lines after $ are commands)."
    )?;
    for (i, (text, commands)) in steps.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "{}. {}", i + 1, wrap(text, 3))?;
        for command in commands {
            writeln!(out, "   $ {command}")?;
        }
        if i == 7 {
            writeln!(
                out,
                "   {CONNECTION}=> SELECT id, email FROM customers WHERE id = 1;"
            )?;
            writeln!(
                out,
                "   (again once the grant has expired; then quit with \\q)"
            )?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "periscope: ready api={} pg={} data_dir={}",
        ready.api_url,
        ready.pg_addr,
        dir.display()
    )?;
    writeln!(
        out,
        "Ctrl-C stops the gateway and PostgreSQL{}.",
        if args.keep || demo.dir.resumed {
            " and keeps the directory"
        } else {
            " and removes the directory"
        }
    )?;
    out.flush()
}

/// Wraps a sentence to fit 88 columns after a prefix of `indent`
/// characters; continuation lines are indented by as much.
fn wrap(text: &str, indent: usize) -> String {
    let width = 88 - indent;
    let mut out = String::new();
    let mut line = 0;
    for word in text.split_whitespace() {
        if line > 0 && line + 1 + word.len() > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// Progress on stderr: spinners and bars on a terminal, plain lines otherwise.
struct Progress {
    terminal: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn step(&self, message: &str) -> Step {
        let bar = if self.terminal {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                bar.set_style(style);
            }
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("periscope demo: {message}...");
            None
        };
        Step {
            bar,
            started: Instant::now(),
        }
    }

    fn bar(&self, message: &str, total: u64) -> Step {
        let bar = if self.terminal {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{msg}\n  [{bar:40}] {pos}/{len} ({eta} left)")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(message.to_string());
            Some(bar)
        } else {
            eprintln!("periscope demo: {message}...");
            None
        };
        Step {
            bar,
            started: Instant::now(),
        }
    }
}

/// One step in progress.
struct Step {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn done(self, message: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!(
            "periscope demo: {} ({:.1}s)",
            message.as_ref(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
