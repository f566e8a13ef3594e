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
//!   logs/shop.log             the shop's log (fake personal data and tokens) for `shop-logs`
//!   env/{alice,bob,admin}.env   0600, PERISCOPE_URL/TOKEN/CA_FILE and PGPASSWORD
//! ```

use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use periscope_api::{CreateIdentity, CreateToken, CreatedToken, Identity};
use periscope_gateway::{ConfigSource, Running, ServerOverrides};
use periscope_localpg::PgCluster;
use periscope_localpg::seed::ShopCounts;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use super::output::shell_quote;
use super::up::{self, LogFormat};
use crate::client::{Client, Target, parse_url};

mod database;
mod files;
mod progress;
mod sso;
mod tour;

use database::{Database, drop_database, local_database, upstream_database, without_password};
use files::{config_toml, env_file, shop_log, write_file};
use progress::Progress;
use tour::{narrate, print_tour};

/// The connection the demo creates.
pub const CONNECTION: &str = "shop-prod";
/// The demo's logs connection (the shop's application log).
pub const LOGS_CONNECTION: &str = "shop-logs";
/// The demo's exec connection (a harmless local command).
pub const EXEC_CONNECTION: &str = "shop-tools";
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

    /// Also start a test identity provider (people carol and dan, no
    /// password) and turn on single sign-on: `periscope login --sso` and the
    /// browser sign-in work without any account.
    #[arg(long)]
    sso: bool,

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
        idp: None,
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
    let lines = demo.teardown(args.keep).await;
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
    /// The test identity provider of `--sso`.
    idp: Option<sso::DemoIdp>,
}

impl Demo {
    /// Stops the gateway (final audit checkpoint), the cluster, drops the
    /// upstream database this run created and removes the directory, unless
    /// `keep`. Returns one line per thing done.
    async fn teardown(&mut self, keep: bool) -> Vec<String> {
        // A resumed directory was not made by this run: it stays.
        let keep = keep || self.dir.resumed;
        let mut done = Vec::new();
        if let Some(running) = self.running.take() {
            match running.shutdown().await {
                Ok(()) => done.push("gateway stopped (final audit checkpoint signed)".to_string()),
                Err(e) => done.push(format!("error: the gateway did not stop cleanly: {e}")),
            }
        }
        if let Some(mut idp) = self.idp.take() {
            idp.idp.stop().await;
            done.push("test identity provider stopped".to_string());
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

/// What the tour needs once everything runs.
struct Ready {
    api_url: String,
    pg_addr: SocketAddr,
    ca_file: PathBuf,
    upstream_label: String,
    counts: Option<ShopCounts>,
    notes: Vec<String>,
    /// The test identity provider's issuer, with `--sso`.
    sso_issuer: Option<String>,
}

/// Resolves once Ctrl-C or SIGTERM arrived.
async fn wait_stop(stop: &watch::Receiver<bool>) {
    let mut stop = stop.clone();
    let _ = stop.wait_for(|stopping| *stopping).await;
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
    let mut config_text = config_toml(&demo.dir, &owner_db, api_listen, pg_listen);
    if args.sso {
        let step = progress.step("starting the test identity provider");
        let idp = sso::start(&demo.dir).await?;
        notes.extend(idp.note.clone());
        config_text.push_str(&idp.config_toml(&demo.dir));
        step.done(format!(
            "test identity provider on {}",
            idp.idp.issuer_url()
        ));
        demo.idp = Some(idp);
    }
    write_file(&config_path, &config_text, 0o644)?;
    shop_log(&demo.dir)?;
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
    // `gateway_options` always passes the PostgreSQL listener and `start`
    // returns only once it is bound, so this is an internal error.
    let Some(pg_addr) = pg_addr else {
        return Err(anyhow!("the gateway started without its PostgreSQL listener").into());
    };
    step.done(format!(
        "gateway on {api_url} (API) and {pg_addr} (PostgreSQL)"
    ));
    // The background profile would start with the first session; the demo
    // starts it now and waits, so that the tour's first query already shows
    // what it found masked.
    if let Some(profile) = periscope_gateway::discover::profile_now(&gateway, CONNECTION) {
        let step = progress.step(&format!(
            "profiling {CONNECTION} for sensitive data under neutral names (bounded samples)"
        ));
        tokio::select! {
            _ = profile => {}
            _ = wait_stop(stop) => return Err(Halt::Interrupted),
        }
        let found = periscope_gateway::discover::background(&gateway, CONNECTION)
            .and_then(|b| b.report.and_then(|r| r.applied))
            .map_or(0, |a| a.added.len());
        step.done(format!(
            "profiled {CONNECTION}: {found} column(s) masked by discovery (`periscope discover {CONNECTION} --review` says why)"
        ));
    }
    let sso_issuer = match &demo.idp {
        Some(idp) => {
            let redirect = gateway
                .sso_redirect_url()
                .map_err(|e| anyhow!("single sign-on: {e}"))?;
            idp.register(&redirect)?;
            Some(idp.idp.issuer_url().to_string())
        }
        None => None,
    };
    check(stop)?;

    // alice and bob, through the gateway's API like any administrator.
    let ca_file = gateway.ca_file().to_path_buf();
    let tokens = match bootstrap {
        Some(admin) => {
            let step = progress.step("creating alice (developer) and bob (approver)");
            let admin_token = admin.token.as_str().to_string();
            let token = SecretString::from(admin_token.as_str());
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
        sso_issuer,
    })
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
