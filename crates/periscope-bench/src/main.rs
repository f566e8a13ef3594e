//! `periscope-bench`: measures what the Periscope PostgreSQL proxy costs.
//!
//! One run starts a durable throwaway PostgreSQL cluster (TLS on), pgbouncer
//! in front of it and the real `periscope up` gateway (masking on), all on
//! loopback, then measures each workload on every leg in turn, round after
//! round, rotating the order so that machine drift cancels out, and prints
//! medians with each figure as a ratio to direct:
//!
//! 1. `pgbench -S` (select-only), prepared and simple protocol, 8 and 32
//!    clients: TPS, latency p50/p99 from the per-transaction log;
//! 2. `SELECT * FROM customers` (1,000,000 rows of PII): wall time, time to
//!    first row, peak RSS of the process in between (gateway, pgbouncer);
//! 3. connection setup rate (`pgbench -S -C`: connect, authenticate, one
//!    query, disconnect).
//!
//! `scripts/bench-pg` builds everything in release mode and runs this.

mod identity;
mod pgbench;
mod procfs;
mod report;
mod setup;
mod tls;
mod wide;

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use clap::Parser;

use crate::report::{Column, Compare, Results};
use crate::setup::Endpoint;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Benchmark the Periscope PostgreSQL proxy against direct and pgbouncer")]
struct Args {
    /// Rounds of every workload (each round runs every leg once).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds per pgbench run.
    #[arg(long, default_value_t = 10)]
    seconds: u32,
    /// Client counts of the select-only runs.
    #[arg(long, value_delimiter = ',', default_values_t = [8u32, 32])]
    clients: Vec<u32>,
    /// Protocols of the select-only runs.
    #[arg(long, value_delimiter = ',', default_values = ["prepared", "simple"])]
    protocols: Vec<String>,
    /// pgbench worker threads.
    #[arg(long, default_value_t = 2)]
    jobs: u32,
    /// pgbench scale factor (100,000 accounts each).
    #[arg(long, default_value_t = 10)]
    scale: u32,
    /// Rows of the wide `customers` table.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Clients of the connection-rate runs.
    #[arg(long, default_value_t = 8)]
    connect_clients: u32,
    /// Legs to run, in the first round's order.
    #[arg(long, value_delimiter = ',', default_values = ["direct", "pgbouncer", "periscope"])]
    legs: Vec<String>,
    /// Workloads to run.
    #[arg(long, value_delimiter = ',', default_values = ["select", "wide", "connect"])]
    only: Vec<String>,
    /// pgbouncer's pool mode (prepared statements need `session` with pgbouncer 1.18).
    #[arg(long, default_value = "session")]
    pool_mode: String,
    /// Run every leg without TLS (default: TLS everywhere, PGSSLMODE=require).
    #[arg(long)]
    no_tls: bool,
    /// The `periscope` binary (default: beside this one).
    #[arg(long)]
    periscope: Option<PathBuf>,
    /// TOML prepended to the gateway's configuration (e.g. an `[audit]` table).
    #[arg(long, default_value = "")]
    periscope_config: String,
    /// Append the results as markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

/// Every leg's order for one round: the first round as given, then rotated.
fn rotated<T: Clone>(items: &[T], round: u32) -> Vec<T> {
    let mut v = items.to_vec();
    if !v.is_empty() {
        let n = round as usize % v.len();
        v.rotate_left(n);
    }
    v
}

async fn run(args: Args) -> anyhow::Result<()> {
    let workdir = tempfile::Builder::new()
        .prefix("periscope-bench-")
        .tempdir()?;
    let load_start = procfs::load_average();
    let pki = tls::make_pki(workdir.path())?;
    let tls = !args.no_tls;
    let cluster = setup::cluster(&pki, args.scale, args.rows)?;
    let pg_version = cluster.pg.binaries().version().to_owned();
    let pgbench = cluster.pg.binaries().path("pgbench");

    let want = |leg: &str| args.legs.iter().any(|l| l == leg);
    let mut endpoints: Vec<Endpoint> = Vec::new();
    let ca = tls.then(|| pki.ca.clone());
    endpoints.push(Endpoint {
        name: "direct",
        port: cluster.pg.port(),
        user: setup::ROLE.into(),
        password: cluster.password.clone(),
        dbname: setup::DATABASE.into(),
        ca: ca.clone(),
        pid: None,
    });
    let bouncer = if want("pgbouncer") {
        let b = setup::pgbouncer(&cluster, &pki, &args.pool_mode, tls)?;
        endpoints.push(Endpoint {
            name: "pgbouncer",
            port: b.port,
            user: setup::ROLE.into(),
            password: cluster.password.clone(),
            dbname: setup::DATABASE.into(),
            ca: ca.clone(),
            pid: Some(b.pid()),
        });
        Some(b)
    } else {
        None
    };
    let periscope = if want("periscope") {
        let binary = match &args.periscope {
            // Absolute: the gateway is started from its own working directory.
            Some(p) => std::path::absolute(p)
                .with_context(|| format!("the periscope binary {}", p.display()))?,
            None => std::env::current_exe()?.with_file_name("periscope"),
        };
        let p = setup::periscope(&binary, &cluster, workdir.path(), &args.periscope_config)
            .await
            .context("starting the Periscope leg")?;
        endpoints.push(Endpoint {
            name: "periscope",
            port: p.port,
            user: setup::ROLE.into(),
            password: p.token.clone(),
            dbname: setup::DATABASE.into(),
            ca: tls.then(|| p.process.ca_file()),
            pid: p.process.pid(),
        });
        Some(p)
    } else {
        None
    };
    // The legs in the order asked for; direct always runs (it is the baseline).
    let mut legs: Vec<Endpoint> = Vec::new();
    for name in std::iter::once("direct").chain(args.legs.iter().map(String::as_str)) {
        if let Some(e) = endpoints.iter().find(|e| e.name == name)
            && !legs.iter().any(|l| l.name == e.name)
        {
            legs.push(e.clone());
        }
    }
    let leg_names: Vec<&'static str> = legs.iter().map(|l| l.name).collect();
    let mut results = Results::default();
    let only = |w: &str| args.only.iter().any(|o| o == w);

    if only("select") {
        // Warm-up: caches, the gateway's analysis cache, pgbouncer's pool.
        for leg in &legs {
            let warm = pgbench::Workload {
                protocol: "prepared",
                clients: 8,
                jobs: args.jobs,
                seconds: 3,
                reconnect: false,
            };
            pgbench::run(&pgbench, leg, &warm, workdir.path())?;
        }
        for protocol in &args.protocols {
            let protocol: &'static str = if protocol == "simple" {
                "simple"
            } else {
                "prepared"
            };
            for &clients in &args.clients {
                let group = format!("-S -M {protocol} -c {clients}");
                let workload = pgbench::Workload {
                    protocol,
                    clients,
                    jobs: args.jobs,
                    seconds: args.seconds,
                    reconnect: false,
                };
                for round in 0..args.rounds {
                    for leg in rotated(&legs, round) {
                        let cpu_before = leg.pid.and_then(procfs::cpu_micros);
                        let o = pgbench::run(&pgbench, &leg, &workload, workdir.path())?;
                        // CPU of the process between client and server, per statement.
                        let cpu = match (cpu_before, leg.pid.and_then(procfs::cpu_micros)) {
                            (Some(before), Some(after)) if o.transactions > 0 => {
                                Some((after - before) / o.transactions as f64)
                            }
                            _ => None,
                        };
                        eprintln!(
                            "bench: {group} {:<9} round {round}: {:>8.0} tps  p50 {:>6.0} us  p99 {:>6.0} us  cpu {} us/stmt  ({} tx, load {})",
                            leg.name,
                            o.tps,
                            o.p50_us,
                            o.p99_us,
                            cpu.map_or("-".into(), |c| format!("{c:.1}")),
                            o.transactions,
                            procfs::load_average()
                        );
                        if let Some(cpu) = cpu {
                            results.add(&group, leg.name, "cpu", cpu);
                        }
                        results.add(&group, leg.name, "tps", o.tps);
                        results.add(&group, leg.name, "p50", o.p50_us);
                        results.add(&group, leg.name, "p99", o.p99_us);
                    }
                }
            }
        }
    }

    if only("wide") {
        let emails = setup::seeded_emails();
        let sql = "SELECT * FROM customers";
        let group = format!("{sql} ({} rows)", args.rows);
        for leg in &legs {
            wide::run(leg, &emails, "SELECT * FROM customers LIMIT 1000").await?;
        }
        for round in 0..args.rounds {
            for leg in rotated(&legs, round) {
                let o = wide::run(&leg, &emails, sql).await?;
                eprintln!(
                    "bench: wide {:<9} round {round}: {} rows {:.0} MB in {:.2} s, first row {:.1} ms, peak RSS {:?} MiB (before {:?}), raw emails {} (load {})",
                    leg.name,
                    o.rows,
                    o.bytes as f64 / 1e6,
                    o.wall_s,
                    o.first_row_ms,
                    o.peak_rss_mib,
                    o.rss_before_mib,
                    o.raw_emails,
                    procfs::load_average()
                );
                results.add(&group, leg.name, "wall", o.wall_s);
                results.add(&group, leg.name, "first", o.first_row_ms);
                results.add(&group, leg.name, "mb", o.bytes as f64 / 1e6);
                results.add(&group, leg.name, "raw", o.raw_emails as f64);
                if let Some(peak) = o.peak_rss_mib {
                    results.add(&group, leg.name, "peak", peak);
                }
                if let Some(before) = o.rss_before_mib {
                    results.add(&group, leg.name, "before", before);
                }
            }
        }
    }

    if only("connect") {
        let group = format!(
            "connect+auth+SELECT+disconnect, -c {}",
            args.connect_clients
        );
        let workload = pgbench::Workload {
            protocol: "simple",
            clients: args.connect_clients,
            jobs: args.jobs,
            seconds: args.seconds,
            reconnect: true,
        };
        for round in 0..args.rounds {
            for leg in rotated(&legs, round) {
                let o = pgbench::run(&pgbench, &leg, &workload, workdir.path())?;
                eprintln!(
                    "bench: connect {:<9} round {round}: {:>7.0} connections/s  p50 {:>6.0} us (load {})",
                    leg.name,
                    o.tps,
                    o.p50_us,
                    procfs::load_average()
                );
                results.add(&group, leg.name, "cps", o.tps);
                results.add(&group, leg.name, "p50", o.p50_us);
            }
        }
    }

    let load_end = procfs::load_average();
    let pgbouncer_version = bouncer.as_ref().map(|b| b.version.clone());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {}; PostgreSQL {pg_version}; {}; {rustc}; load average at start {load_start}, at end {load_end}.\n\
         Legs: direct and pgbouncer ({} mode) {}; Periscope {} with masking on (no data policy: fully shielded), upstream in plain text on loopback.\n\
         {} rounds, legs rotated each round; medians.\n\n",
        procfs::machine(),
        pgbouncer_version.as_deref().unwrap_or("pgbouncer not run"),
        args.pool_mode,
        if tls { "over TLS (PGSSLMODE=require)" } else { "without TLS" },
        if tls { "over TLS" } else { "without TLS (not allowed by default)" },
        args.rounds,
    ));
    let groups = results.groups();
    let select: Vec<String> = groups
        .iter()
        .filter(|g| g.starts_with("-S"))
        .cloned()
        .collect();
    if !select.is_empty() {
        md.push_str(&format!(
            "Select-only, `pgbench -n -S -j {} -T {}`, latency in microseconds:\n\n",
            args.jobs, args.seconds
        ));
        md.push_str(&results.table(
            &select,
            &leg_names,
            &[
                Column {
                    metric: "tps",
                    header: "TPS",
                    decimals: 0,
                    compare: Compare::Ratio,
                },
                Column {
                    metric: "p50",
                    header: "p50 us",
                    decimals: 0,
                    compare: Compare::Difference,
                },
                Column {
                    metric: "p99",
                    header: "p99 us",
                    decimals: 0,
                    compare: Compare::Ratio,
                },
                Column {
                    metric: "cpu",
                    header: "proxy CPU us/stmt",
                    decimals: 1,
                    compare: Compare::None,
                },
            ],
        ));
        md.push('\n');
    }
    let wide: Vec<String> = groups
        .iter()
        .filter(|g| g.starts_with("SELECT"))
        .cloned()
        .collect();
    if !wide.is_empty() {
        md.push_str("Wide PII result (simple protocol, text values; RSS of the process between client and server):\n\n");
        md.push_str(&results.table(
            &wide,
            &leg_names,
            &[
                Column {
                    metric: "wall",
                    header: "wall s",
                    decimals: 2,
                    compare: Compare::Ratio,
                },
                Column {
                    metric: "first",
                    header: "first row ms",
                    decimals: 1,
                    compare: Compare::Difference,
                },
                Column {
                    metric: "mb",
                    header: "MB received",
                    decimals: 0,
                    compare: Compare::None,
                },
                Column {
                    metric: "peak",
                    header: "peak RSS MiB",
                    decimals: 1,
                    compare: Compare::None,
                },
                Column {
                    metric: "before",
                    header: "RSS before MiB",
                    decimals: 1,
                    compare: Compare::None,
                },
                Column {
                    metric: "raw",
                    header: "raw emails seen",
                    decimals: 0,
                    compare: Compare::None,
                },
            ],
        ));
        md.push('\n');
    }
    let connect: Vec<String> = groups
        .iter()
        .filter(|g| g.starts_with("connect"))
        .cloned()
        .collect();
    if !connect.is_empty() {
        md.push_str(&format!(
            "Connection setup, `pgbench -n -S -C -M simple -T {}`:\n\n",
            args.seconds
        ));
        md.push_str(&results.table(
            &connect,
            &leg_names,
            &[
                Column {
                    metric: "cps",
                    header: "connections/s",
                    decimals: 0,
                    compare: Compare::Ratio,
                },
                Column {
                    metric: "p50",
                    header: "p50 us",
                    decimals: 0,
                    compare: Compare::Difference,
                },
            ],
        ));
        md.push('\n');
    }
    println!("{md}");
    if let Some(path) = &args.markdown {
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.write_all(md.as_bytes())?;
    }
    drop(periscope);
    drop(bouncer);
    Ok(())
}
