//! What the proxy adds to a session: round-trip latency of a trivial query
//! and wall time of a one-million-row result, each measured directly against
//! PostgreSQL and through the proxy (pass-through hooks), in the same run.
//!
//! ```text
//! cargo run --release -p periscope-pg-wire --example relay_overhead [ROUNDS] [ROWS]
//! ```
//!
//! Starts a throwaway cluster (periscope-testkit) and the proxy on loopback.
//! The formal benchmarks come later; this keeps the hot path honest meanwhile.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, pin_mut};
use periscope_pg_wire::{
    AuthRejection, AuthRequest, Authenticated, Authenticator, ClientTls, PassThrough, PgListener,
    ProxyConfig, SessionTarget, UpstreamTls,
};
use periscope_testkit::{PgCluster, SUPERUSER, SUPERUSER_PASSWORD};

struct ToCluster {
    port: u16,
}

impl Authenticator for ToCluster {
    type Hooks = PassThrough;

    async fn authenticate(
        &self,
        _request: &AuthRequest,
    ) -> Result<Authenticated<PassThrough>, AuthRejection> {
        Ok(Authenticated {
            target: SessionTarget {
                host: "127.0.0.1".into(),
                port: self.port,
                database: "postgres".into(),
                user: SUPERUSER.into(),
                password: SUPERUSER_PASSWORD.into(),
                tls: UpstreamTls::Disable,
                parameters: Vec::new(),
            },
            hooks: PassThrough,
        })
    }
}

async fn client(conninfo: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn latencies(
    client: &tokio_postgres::Client,
    rounds: usize,
) -> Result<Vec<Duration>, tokio_postgres::Error> {
    let stmt = client.prepare("SELECT 1::int4").await?;
    for _ in 0..rounds / 10 {
        client.query_one(&stmt, &[]).await?; // warm-up
    }
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        client.query_one(&stmt, &[]).await?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(samples)
}

async fn fetch_all(
    client: &tokio_postgres::Client,
    rows: i64,
) -> Result<Duration, tokio_postgres::Error> {
    let start = Instant::now();
    let stream = client
        .query_raw(
            "SELECT g, 'customer note number ' || g FROM generate_series(1, $1::int8) g",
            [rows],
        )
        .await?;
    pin_mut!(stream);
    let mut n = 0i64;
    while let Some(row) = stream.next().await {
        row?;
        n += 1;
    }
    assert_eq!(n, rows);
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5_000);
    let rows: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);

    let cluster = PgCluster::start()?;
    let mut config = ProxyConfig::new(ClientTls::Disabled);
    config.allow_plaintext_password = true; // loopback only
    let listener = PgListener::bind(
        "127.0.0.1:0",
        config,
        ToCluster {
            port: cluster.port(),
        },
    )
    .await?;
    let proxy_port = listener.local_addr()?.port();
    tokio::spawn(listener.serve(std::future::pending()));

    let direct = client(&cluster.conninfo("postgres")).await?;
    let proxied = client(&format!(
        "host=127.0.0.1 port={proxy_port} user=bench password=any dbname=bench"
    ))
    .await?;

    let d = latencies(&direct, rounds).await?;
    let p = latencies(&proxied, rounds).await?;
    println!("round trip of a prepared SELECT 1 ({rounds} rounds)");
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let (dq, pq) = (percentile(&d, q), percentile(&p, q));
        println!(
            "  {name}: direct {:>8.1} us   proxied {:>8.1} us   added {:>7.1} us",
            dq.as_secs_f64() * 1e6,
            pq.as_secs_f64() * 1e6,
            (pq.as_secs_f64() - dq.as_secs_f64()) * 1e6
        );
    }

    // Alternate to spread noise from the other processes on the machine.
    let mut direct_times = Vec::new();
    let mut proxied_times = Vec::new();
    for _ in 0..3 {
        direct_times.push(fetch_all(&direct, rows).await?);
        proxied_times.push(fetch_all(&proxied, rows).await?);
    }
    direct_times.sort();
    proxied_times.sort();
    let (dm, pm) = (direct_times[1], proxied_times[1]);
    println!(
        "{rows} rows (median of 3): direct {:.3} s   proxied {:.3} s   ratio {:.2}",
        dm.as_secs_f64(),
        pm.as_secs_f64(),
        pm.as_secs_f64() / dm.as_secs_f64()
    );
    Ok(())
}
