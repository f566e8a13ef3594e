//! `periscope-soak`: many concurrent sessions through the real gateway for a
//! bounded time, checking that nothing goes wrong and nothing accumulates.
//!
//! It starts a throwaway PostgreSQL cluster seeded with the fake shop (plus
//! secrets in an `api_clients` table and in a note), the real `periscope up`
//! in front of it, then runs `--sessions` clients (default 200) doing a mix
//! of statements for `--seconds` (default 60): extended and simple
//! protocol, masked columns, joins, transactions, refused writes (42501) and
//! server errors (22012); each client reconnects every `--reconnect-every`
//! statements, so sessions open and close throughout.
//!
//! It fails (exit 1) on any unexpected error, on any raw seeded value in
//! what a client received, and when the gateway's resident set at the end
//! exceeds the one after warm-up by more than a quarter (and 32 MiB). It
//! prints the gateway's RSS after warm-up (start), the peak and at the end.
//!
//! `scripts/soak-pg` builds in release mode and runs this.

mod identity;
// Shared with periscope-bench, which uses more of it.
#[allow(dead_code)]
mod procfs;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use periscope_localpg::{PasswordMethod, PgCluster, quote_literal, seed};
use periscope_testkit::{GatewayOptions, GatewayProcess};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    about = "Soak the Periscope PostgreSQL proxy: many sessions, mixed statements, flat memory"
)]
struct Args {
    /// How long the load runs, in seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// Each client closes its session and opens a new one after this many
    /// statements.
    #[arg(long, default_value_t = 200)]
    reconnect_every: u64,
    /// Seeded customers.
    #[arg(long, default_value_t = 200)]
    customers: usize,
    /// The `periscope` binary to run as the gateway.
    #[arg(long, default_value = "target/release/periscope")]
    periscope: PathBuf,
}

/// The upstream role the gateway logs in as.
const UPSTREAM_USER: &str = "periscope_soak";
/// Secrets stored in `api_clients.api_token`.
const API_TOKENS: [&str; 3] = [
    "ghp_Xq3Lk9Vb2Nc7Mz5Rt8Yw1Pd4Hf6Js0AeUiOo",
    "ghp_Bm8Nc2Vx5Zl9Kj3Hg7Fd1Sa4Qw6Er0TyUiOp",
    "ghp_Zx1Cv2Bn3Mq4Wl5Ek6Rj7Th8Yg9Uf0IdOsPa",
];
/// A token written into customer 2's notes.
const NOTE_TOKEN: &str = "ghp_Lp0Ok9Ij8Uh7Yg6Tf5Rd4Es3Wa2Qz1XcVbNm";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// The seeded cluster; returns it with every raw value a client must not
/// see and the upstream role's password.
fn cluster(args: &Args) -> anyhow::Result<(PgCluster, Vec<String>, String)> {
    eprintln!(
        "soak: starting PostgreSQL and seeding {} customers",
        args.customers
    );
    let pg = PgCluster::builder()
        .setting("max_connections", args.sessions + 50)
        .start()?;
    pg.create_database("shop")?;
    pg.psql("shop", seed::SHOP_SCHEMA)?;
    let customers = seed::customers(args.customers, 7);
    pg.psql("shop", &seed::insert_sql(&customers))?;
    let mut sql = String::from(
        "CREATE TABLE api_clients (id bigint PRIMARY KEY, customer_id bigint NOT NULL, api_token text NOT NULL);\n",
    );
    for (i, token) in API_TOKENS.iter().enumerate() {
        sql.push_str(&format!(
            "INSERT INTO api_clients VALUES ({0}, {0}, {1});\n",
            i + 1,
            quote_literal(token)
        ));
    }
    sql.push_str(&format!(
        "UPDATE customers SET notes = 'Integration key pasted by support: ' || {} WHERE id = 2;\n",
        quote_literal(NOTE_TOKEN)
    ));
    pg.psql("shop", &sql)?;
    let password = format!("soak-{}", std::process::id());
    pg.create_login_role(UPSTREAM_USER, &password, PasswordMethod::Scram)?;
    pg.psql(
        "shop",
        &format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {UPSTREAM_USER}"),
    )?;
    let mut raw: Vec<String> = customers
        .iter()
        .flat_map(|c| c.sensitive_values().into_iter().map(str::to_owned))
        .collect();
    raw.extend(API_TOKENS.iter().map(|t| t.to_string()));
    raw.push(NOTE_TOKEN.to_owned());
    Ok((pg, raw, password))
}

fn config(port: u16) -> String {
    format!(
        r#"
[[connection]]
name = "shop"
kind = "postgres"
host = "127.0.0.1"
port = {port}
database = "shop"
user = "{UPSTREAM_USER}"
password_env = "SOAK_UPSTREAM_PASSWORD"
upstream_tls = "disable"
client_tls = "optional"

[[role]]
name = "soaker"
connections = ["shop"]
"#
    )
}

/// Starts the gateway and returns it with the soak identity's token.
async fn gateway(
    args: &Args,
    pg: &PgCluster,
    password: &str,
) -> anyhow::Result<(GatewayProcess, String)> {
    let process = GatewayProcess::start(
        &args.periscope,
        GatewayOptions::default()
            .config(config(pg.port()))
            .env("SOAK_UPSTREAM_PASSWORD", password)
            .env("RUST_LOG", "warn"),
    )
    .with_context(|| format!("starting {} up", args.periscope.display()))?;
    let token = identity::identity_token(&process, "soak", "soaker", "periscope-soak").await?;
    Ok((process, token))
}

/// What all clients share.
struct Shared {
    raw: Vec<String>,
    customers: u64,
    statements: AtomicU64,
    sessions_opened: AtomicU64,
    refused: AtomicU64,
    server_errors: AtomicU64,
    /// Clients that finished their first round of the mix.
    warm: AtomicU64,
    problems: Mutex<Vec<String>>,
}

impl Shared {
    fn problem(&self, what: String) {
        let mut p = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() < 1000 {
            p.push(what);
        }
    }
}

/// Runs statement `i` of the mix; returns what the client received.
async fn step(c: &tokio_postgres::Client, i: u64, shared: &Shared) -> Result<String, String> {
    let id = i64::try_from(1 + (i * 7) % shared.customers).unwrap_or(1);
    let fail = |e: tokio_postgres::Error| format!("statement {}: {e}", i % 8);
    let expect_code =
        |r: Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error>, code: &str| {
            match r {
                Ok(_) => Err(format!("statement {} succeeded, {code} expected", i % 8)),
                Err(e) => match e.as_db_error() {
                    Some(db) if db.code().code() == code => Ok(db.message().to_owned()),
                    _ => Err(format!("statement {}: {e}, {code} expected", i % 8)),
                },
            }
        };
    let text = |messages: Vec<tokio_postgres::SimpleQueryMessage>| {
        messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|k| r.get(k).unwrap_or("NULL"))
                        .collect::<Vec<_>>()
                        .join("\t"),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(match i % 8 {
        0 => {
            let rows = c
                .query(
                    "SELECT id, name, email, phone, ssn, card_number, iban, notes FROM customers WHERE id = $1",
                    &[&id],
                )
                .await
                .map_err(fail)?;
            let mut out = String::new();
            for r in &rows {
                for k in 1..8 {
                    out.push_str(&r.get::<_, Option<String>>(k).unwrap_or_default());
                    out.push('\t');
                }
                if r.get::<_, String>(2) != "[email]" {
                    return Err(format!("email not masked as [email] for customer {id}"));
                }
            }
            out
        }
        1 => text(
            c.simple_query("SELECT * FROM customers ORDER BY id LIMIT 20")
                .await
                .map_err(fail)?,
        ),
        2 => text(
            c.simple_query(
                "SELECT c.email, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.email ORDER BY 2 DESC LIMIT 5",
            )
            .await
            .map_err(fail)?,
        ),
        3 => {
            let m = expect_code(
                c.simple_query(&format!("UPDATE customers SET notes = 'x' WHERE id = {id}"))
                    .await,
                "42501",
            )?;
            shared.refused.fetch_add(1, Ordering::Relaxed);
            m
        }
        4 => {
            let m = expect_code(
                c.simple_query("SELECT 1 / (id - id) FROM customers WHERE id = 1")
                    .await,
                "22012",
            )?;
            shared.server_errors.fetch_add(1, Ordering::Relaxed);
            m
        }
        5 => text(
            c.simple_query(&format!(
                "BEGIN; SELECT api_token FROM api_clients ORDER BY id; SELECT notes FROM customers WHERE id = {id}; COMMIT"
            ))
            .await
            .map_err(fail)?,
        ),
        6 => {
            let n: i64 = c
                .query_one(
                    "SELECT count(*) FROM orders WHERE customer_id <= $1",
                    &[&id],
                )
                .await
                .map_err(fail)?
                .get(0);
            n.to_string()
        }
        _ => text(
            c.simple_query(&format!(
                "SELECT name, email || ' / ' || phone AS contact FROM customers WHERE id IN ({id}, {})",
                id + 1
            ))
            .await
            .map_err(fail)?,
        ),
    })
}

/// One client: sessions one after another until `until`.
async fn client(
    n: usize,
    config: tokio_postgres::Config,
    shared: Arc<Shared>,
    until: Instant,
    reconnect_every: u64,
) {
    let mut i = n as u64;
    let mut warm = false;
    while Instant::now() < until {
        let (c, connection) = match config.connect(tokio_postgres::NoTls).await {
            Ok(pair) => pair,
            Err(e) => {
                shared.problem(format!("client {n}: connect: {e}"));
                return;
            }
        };
        shared.sessions_opened.fetch_add(1, Ordering::Relaxed);
        let conn = tokio::spawn(connection);
        for _ in 0..reconnect_every {
            if warm && Instant::now() >= until {
                break;
            }
            match step(&c, i, &shared).await {
                Ok(received) => {
                    if let Some(v) = shared.raw.iter().find(|v| received.contains(v.as_str())) {
                        shared.problem(format!("client {n}: raw value {v:?} reached the client"));
                    }
                }
                Err(e) => shared.problem(format!("client {n}: {e}")),
            }
            shared.statements.fetch_add(1, Ordering::Relaxed);
            i += 1;
            if !warm && i >= n as u64 + 8 {
                warm = true;
                shared.warm.fetch_add(1, Ordering::SeqCst);
            }
        }
        drop(c);
        match conn.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => shared.problem(format!("client {n}: session ended badly: {e}")),
            Err(e) => shared.problem(format!("client {n}: {e}")),
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

async fn run(mut args: Args) -> anyhow::Result<()> {
    // The gateway runs in its own directory: a relative path would not resolve.
    args.periscope = std::fs::canonicalize(&args.periscope)
        .with_context(|| format!("no gateway binary at {}", args.periscope.display()))?;
    let (pg, raw, password) = cluster(&args)?;
    let (gw, token) = gateway(&args, &pg, &password).await?;
    let pid = gw.pid().context("the gateway runs")?;
    let port = gw.pg_addr().context("no pg listener")?.port();
    let rss = || procfs::status_kib(pid, "VmRSS").unwrap_or(0);
    eprintln!(
        "soak: {} sessions for {} s through the gateway (pid {pid}, RSS {} idle); load {}",
        args.sessions,
        args.seconds,
        mib(rss()),
        procfs::load_average()
    );

    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("soak")
        .password(&token)
        .dbname("shop")
        .application_name("periscope-soak")
        .connect_timeout(Duration::from_secs(30));
    let shared = Arc::new(Shared {
        raw,
        customers: args.customers as u64,
        statements: AtomicU64::new(0),
        sessions_opened: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        warm: AtomicU64::new(0),
        problems: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.sessions)
        .map(|n| {
            tokio::spawn(client(
                n,
                config.clone(),
                Arc::clone(&shared),
                until,
                args.reconnect_every,
            ))
        })
        .collect();

    // Start: every client connected and ran a full round of the mix.
    while shared.warm.load(Ordering::SeqCst) < args.sessions as u64 && Instant::now() < until {
        if !shared
            .problems
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let warm_after = started.elapsed();
    let start_rss = rss();
    let mut peak = start_rss;
    let mut end_rss = start_rss;
    let mut last_report = Instant::now();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = rss();
        if now > 0 {
            end_rss = now;
            peak = peak.max(now);
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            eprintln!(
                "soak: {:>4.0} s  {} statements  RSS {}",
                started.elapsed().as_secs_f64(),
                shared.statements.load(Ordering::Relaxed),
                mib(now)
            );
        }
    }
    for t in tasks {
        if let Err(e) = t.await {
            shared.problem(format!("a client task failed: {e}"));
        }
    }
    let elapsed = started.elapsed();
    let idle = std::time::Instant::now() + Duration::from_secs(10);
    // Sessions end asynchronously in the gateway; give it a moment to settle.
    while Instant::now() < idle && gw.is_running() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if rss() <= end_rss {
            break;
        }
    }
    let idle_rss = rss();

    let statements = shared.statements.load(Ordering::Relaxed);
    println!(
        "soak: {} sessions ({} opened), {statements} statements in {:.1} s ({:.0}/s), {} refused as expected, {} server errors as expected",
        args.sessions,
        shared.sessions_opened.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        statements as f64 / elapsed.as_secs_f64(),
        shared.refused.load(Ordering::Relaxed),
        shared.server_errors.load(Ordering::Relaxed),
    );
    println!(
        "soak: gateway RSS start {} (after warm-up, {:.1} s), peak {}, end {}, idle after the sessions closed {} (anonymous {}, file {})",
        mib(start_rss),
        warm_after.as_secs_f64(),
        mib(peak),
        mib(end_rss),
        mib(idle_rss),
        mib(procfs::status_kib(pid, "RssAnon").unwrap_or(0)),
        mib(procfs::status_kib(pid, "RssFile").unwrap_or(0)),
    );
    if !gw.is_running() {
        bail!("the gateway exited:\n{}", gw.stderr());
    }
    let problems = shared
        .problems
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !problems.is_empty() {
        for p in problems.iter().take(20) {
            eprintln!("soak: {p}");
        }
        bail!("{} problems (first 20 above)", problems.len());
    }
    if start_rss == 0 {
        bail!("could not read the gateway's RSS");
    }
    let allowed = start_rss + (start_rss / 4).max(32 * 1024);
    if end_rss > allowed {
        bail!(
            "the gateway's RSS grew from {} to {} (allowed up to {})",
            mib(start_rss),
            mib(end_rss),
            mib(allowed)
        );
    }
    println!("soak: ok");
    drop(gw);
    drop(pg);
    Ok(())
}
