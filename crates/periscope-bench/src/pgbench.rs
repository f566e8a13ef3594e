//! Runs `pgbench` against one endpoint and reads its figures: TPS from its
//! summary, latency percentiles from its per-transaction log.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::setup::Endpoint;

/// What to run.
#[derive(Debug, Clone)]
pub struct Workload {
    /// `prepared` or `simple`.
    pub protocol: &'static str,
    /// Concurrent clients (`-c`).
    pub clients: u32,
    /// Worker threads (`-j`).
    pub jobs: u32,
    /// Seconds (`-T`).
    pub seconds: u32,
    /// A new connection per transaction (`-C`): the connection setup rate.
    pub reconnect: bool,
}

/// The figures of one run.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Transactions per second as pgbench reports them.
    pub tps: f64,
    /// Median transaction latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile transaction latency, microseconds.
    pub p99_us: f64,
    /// Transactions logged.
    pub transactions: usize,
}

/// Runs `pgbench -n -S` with `workload` against `endpoint`.
pub fn run(
    pgbench: &Path,
    endpoint: &Endpoint,
    workload: &Workload,
    workdir: &Path,
) -> anyhow::Result<Outcome> {
    let logdir = tempfile::Builder::new()
        .prefix("pgbench-log-")
        .tempdir_in(workdir)?;
    let prefix = logdir.path().join("tx");
    let mut command = Command::new(pgbench);
    command
        .args(["-n", "-S", "-M", workload.protocol])
        .args(["-c", &workload.clients.to_string()])
        .args(["-j", &workload.jobs.min(workload.clients).to_string()])
        .args(["-T", &workload.seconds.to_string()])
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .envs(endpoint.libpq_env())
        .current_dir(logdir.path());
    if workload.reconnect {
        command.arg("-C");
    }
    let out = command.output().context("running pgbench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench against {} failed ({}):\n{stdout}\n{}",
            endpoint.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .with_context(|| format!("no `tps = ` line in pgbench's output:\n{stdout}"))?;
    if let Some(failed) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        && failed > 0
    {
        bail!(
            "pgbench against {}: {failed} failed transactions",
            endpoint.name
        );
    }
    let mut latencies = read_latencies(logdir.path())?;
    if latencies.is_empty() {
        bail!("pgbench against {} logged no transaction", endpoint.name);
    }
    latencies.sort_unstable();
    Ok(Outcome {
        tps,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
        transactions: latencies.len(),
    })
}

/// The `time` column (latency in microseconds) of every log file in `dir`:
/// `client_id transaction_no time script_no time_epoch time_us`.
fn read_latencies(dir: &Path) -> anyhow::Result<Vec<u64>> {
    let mut all = Vec::new();
    let files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        all.extend(parse_log(&text));
    }
    Ok(all)
}

/// Latencies of one pgbench per-transaction log.
fn parse_log(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.lines()
        .filter_map(|line| line.split_whitespace().nth(2)?.parse().ok())
}

/// The value at quantile `q` of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_per_transaction_log_lines() {
        let log = "0 1 243 0 1764408000 123456\n1 1 198 0 1764408000 123500\n";
        assert_eq!(parse_log(log).collect::<Vec<_>>(), vec![243, 198]);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.50), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7], 0.99), 7.0);
    }
}
